// The I/O half of an asyncio datagram transport (socketeer.aio.Loop's DatagramTransport): the
// receive batch (one recvmmsg into a reused DatagramBatch, several datagrams per wake-up) and the
// output queue that holds datagrams the kernel could not take yet (sent with sendmmsg). It knows
// nothing of Python or of the loop: the binding (cpp/bindings/loop_datagram_transport*.cpp)
// calls the protocol and registers the fd.
//
// The fd is borrowed, never closed here: the Python socket object the transport was made from
// owns it and outlives this object.
//
// Every method is at most one syscall, non-blocking (MSG_DONTWAIT), and never raises SIGPIPE
// (MSG_NOSIGNAL). Failures throw socketeer::Error naming the operation.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

#include "socketeer/address.hpp"
#include "socketeer/datagram_batch.hpp"

namespace socketeer {

class DatagramTransportCore {
 public:
  // The stdlib's _SelectorTransport.max_size: the largest datagram one receive takes whole.
  static constexpr size_t max_datagram = 256 * 1024;

  // slots datagrams of up to slot_size bytes per receive (a longer one is truncated to it, as
  // the stdlib's recvfrom(max_size) truncates). The batch is allocated on the first receive.
  DatagramTransportCore(int fd, size_t slots, size_t slot_size);
  int fd() const noexcept { return fd_; }

  // --- receiving -------------------------------------------------------------------------
  // One recvmmsg: how many datagrams arrived (0 when none was ready). They are received(i)
  // until the next call. An error queued on the socket (an ICMP error) throws.
  size_t receive();
  const DatagramBatch& received() const { return *batch_; }

  // --- sending ---------------------------------------------------------------------------
  // One send (to: nullptr on a connected socket): false when the socket buffer is full.
  bool send_direct(const char* data, size_t size, const Address* to);
  // Copies a datagram to the end of the queue.
  void enqueue(const char* data, size_t size, std::optional<Address> to);
  // One sendmmsg of the queue's head: the datagrams sent (0 when the buffer is full). When the
  // first queued datagram fails, it is dropped and the error thrown (the stdlib drops it too).
  size_t flush();
  size_t queued() const noexcept { return entries_.size() - head_; }  // datagrams
  size_t queued_bytes() const noexcept { return queued_bytes_; }
  void discard() noexcept;

 private:
  struct Entry {
    size_t offset;
    size_t size;
    std::optional<Address> to;
  };
  void pop_front(size_t count) noexcept;

  int fd_;
  size_t slots_;
  size_t slot_size_;
  std::optional<DatagramBatch> batch_;
  std::vector<char> bytes_;     // the queued datagrams' bytes, side by side
  std::vector<Entry> entries_;  // queued are entries_[head_, size)
  size_t head_ = 0;
  size_t queued_bytes_ = 0;
  std::optional<OutgoingBatch> outgoing_;
};

}  // namespace socketeer
