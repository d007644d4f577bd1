// The I/O half of an asyncio stream transport (socketeer.aio.Loop's SocketTransport): the
// output queue that collects a turn's writes and leaves in one send, the reused read buffer,
// the write-buffer water marks and the half-close state. It knows nothing of Python or of the
// loop: the binding (cpp/bindings/loop_transport*.cpp) calls the protocol and registers the fd.
//
// The fd is borrowed, never closed here: the Python socket object the transport was made from
// owns it and outlives this object (the transport closes that socket only after it is done
// with this core, in its connection-lost step).
//
// Every method is at most one syscall, non-blocking (MSG_DONTWAIT), and never raises SIGPIPE
// (MSG_NOSIGNAL). Failures throw socketeer::Error naming the operation.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace socketeer {

class StreamTransportCore {
 public:
  // The stdlib's _SelectorTransport.max_size: how much one recv asks for.
  static constexpr size_t read_size = 256 * 1024;

  explicit StreamTransportCore(int fd) : fd_(fd) {}
  int fd() const noexcept { return fd_; }

  // --- reading ---------------------------------------------------------------------------
  // One recv into the reused buffer: the bytes read (empty at EOF), or nullopt when nothing is
  // ready (EAGAIN). The span is valid until the next call.
  std::optional<std::span<const char>> recv();
  // One recv into the caller's buffer (a BufferedProtocol's get_buffer()): nullopt for EAGAIN.
  std::optional<size_t> recv_into(char* buffer, size_t size);

  // --- writing ---------------------------------------------------------------------------
  // Bytes queued and not yet sent.
  size_t queued() const noexcept { return out_.size() - head_; }
  // Copies bytes to the end of the queue.
  void enqueue(const char* data, size_t size);
  // One send of the whole queue; drops what the kernel took. Returns the bytes sent (0 when the
  // socket buffer is full).
  size_t flush();
  // One send of the caller's bytes, bypassing the queue (only when the queue is empty, so order
  // holds): the bytes sent, 0 when the socket buffer is full.
  size_t send_direct(const char* data, size_t size);
  // Drops everything queued (the connection is lost).
  void discard() noexcept;
  // shutdown(SHUT_WR): the half-close write_eof() asks for, once the queue is empty.
  void shutdown_write();

  // --- the write-buffer water marks (the stdlib's defaults: 64 KiB and a quarter of it) ----
  size_t high_water() const noexcept { return high_; }
  size_t low_water() const noexcept { return low_; }
  // Throws InvalidArgument unless high >= low.
  void set_water_marks(size_t high, size_t low);
  bool above_high_water() const noexcept { return queued() > high_; }

 private:
  int fd_;
  std::vector<char> out_;  // queued bytes are out_[head_, size)
  size_t head_ = 0;
  std::unique_ptr<char[]> in_;  // the read buffer, allocated on the first recv
  size_t high_ = 64 * 1024;
  size_t low_ = 16 * 1024;
};

}  // namespace socketeer
