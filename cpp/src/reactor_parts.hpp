// The Reactor's private pieces (reactor.hpp declares them): what it keeps per connection,
// listener and datagram endpoint, and the output queue they share. Internal to cpp/src: the
// loop (reactor.cpp), stream connections (reactor_stream.cpp), message-oriented ones
// (reactor_records.cpp), datagram endpoints (reactor_datagram.cpp) and giving memory back
// (reactor_memory.cpp) all work on them.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "socketeer/reactor.hpp"

namespace socketeer::reactor_parts {

// What a poller registration's token names (mio's Token, libuv's uv__io_t): the object's address
// with its kind in the three low bits, which every one of them leaves free (alignment, checked
// below). kNone is the token of an event that a removal invalidated (poller_epoll.cpp,
// comment 7); the interrupt fd's token is its kind alone.
constexpr uint8_t kNone = 0, kConnection = 1, kListener = 2, kDatagram = 3, kInterrupt = 4;
constexpr uint64_t kKindBits = 7;

template <typename T>
uint64_t token_of(uint8_t kind, T* object) {
  return reinterpret_cast<uintptr_t>(object) | kind;
}
inline uint8_t kind_of(uint64_t token) { return static_cast<uint8_t>(token & kKindBits); }
template <typename T>
T& object_of(uint64_t token) {
  static_assert(alignof(T) > kKindBits, "the kind bits of a token must be free in the address");
  return *reinterpret_cast<T*>(static_cast<uintptr_t>(token & ~kKindBits));
}
constexpr size_t kReadsPerTurn = 8;     // fairness: reads of one connection per turn
// Messages of one connection handed out per turn. Backpressure can only act between turns (the
// replies are queued during dispatch), so without this cap one 64 KiB read of tiny requests,
// each answered with a large reply, would queue thousands of replies past the high watermark.
constexpr size_t kMessagesPerTurn = 16;
constexpr size_t kMaxIovecs = 64;
// A connection's read block is this much longer than ReactorOptions::read_buffer. A recv that
// fills its room cannot be told from one that left bytes behind, so it costs one more recv to
// find out. Messages are often a power of two long, like read_buffer itself; with a block of
// exactly read_buffer, every message of that size (64 KiB echoes) would take two recvs.
constexpr size_t kReadSlack = 64;
// Giving memory back (reactor_memory.cpp): due once the loop has freed kReleaseAfter since it
// last did, and done when the loop has been quiet for kQuiet (or its connections fell far below
// their peak).
constexpr size_t kReleaseAfter = 8 << 20;
constexpr std::chrono::milliseconds kQuiet{200};

// A FIFO over a vector that keeps its capacity: queued output is pushed at the back and sent
// from the front every turn, and std::deque allocated and freed a block every few elements
// (a reply to a datagram carries its Address: three per 512-byte block).
template <typename T>
class OutputQueue {
 public:
  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }
  T& front() { return items_[head_]; }
  auto begin() { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() { return items_.end(); }
  void push_back(T item) { items_.push_back(std::move(item)); }
  void pop_front() {
    if (++head_ == items_.size()) {
      clear();
    } else if (head_ >= 64 && head_ * 2 >= items_.size()) {  // a queue that never empties
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void clear() {
    items_.clear();
    head_ = 0;
  }
  // Gives the kept capacity back, when empty (the reactor does this once it is idle).
  void shrink() {
    if (!empty()) return;
    std::vector<T>().swap(items_);
    head_ = 0;
  }

 private:
  std::vector<T> items_;
  size_t head_ = 0;
};

}  // namespace socketeer::reactor_parts

namespace socketeer {

struct Reactor::Chunk {
  const char* data;
  size_t size;
  uint64_t token;                  // released once sent or dropped (0: none)
  std::unique_ptr<char[]> owned;   // set once the bytes have been copied to us
  bool borrowed = false;           // points into an input buffer (echo): copy before consuming
};

struct Reactor::Connection {
  Connection(uint64_t id_, Socket socket_)
      : id(id_), socket(std::move(socket_)), records(socket.type() == SOCK_SEQPACKET) {}
  uint64_t id;
  Socket socket;
  // SOCK_SEQPACKET: each recv is one record and each record one message; each chunk of output
  // is one record, sent whole or not at all (reactor_records.cpp).
  const bool records;
  std::shared_ptr<ConnectionState> state;
  // Shared only when a dispatcher kept the block (ReactorEvent::buffer); read() then moves
  // the unconsumed bytes to a new one instead of writing over what the keeper still reads.
  std::shared_ptr<char[]> input;
  size_t input_size = 0;
  size_t in_start = 0;   // first unconsumed byte
  size_t in_parsed = 0;  // end of the messages handed out this turn
  size_t in_end = 0;     // end of received bytes
  size_t in_searched = 0;  // bytes after in_parsed already searched for a message end
  size_t handed_out = 0; // messages handed out this turn (kMessagesPerTurn)
  reactor_parts::OutputQueue<Chunk> output;
  size_t output_bytes = 0;
  Clock::time_point last_active;
  bool read_paused = false;   // backpressure
  bool queued_read = false;   // in read_again_
  bool dirty = false;         // in dirty_
  bool touched = false;       // in touched_
  bool closing = false;       // close once output is flushed
  bool peer_closed = false;
  bool dead = false;          // closed; in the graveyard until the turn ends
};

struct Reactor::Listener {
  uint64_t id;
  Socket socket;
  bool adopted = false;  // by the loop (registered before: events until then are ignored)
};

struct Reactor::Outgoing {
  Chunk chunk;
  Address to;
};

struct Reactor::DatagramEndpoint {
  DatagramEndpoint(uint64_t id_, Socket socket_, DatagramBatch batch_, bool segment_offload_)
      : id(id_), socket(std::move(socket_)), batch(std::move(batch_)), segment_offload(segment_offload_) {}
  uint64_t id;
  Socket socket;
  DatagramBatch batch;
  bool segment_offload = false;  // GSO: until the kernel refuses a GSO message
  OutgoingBatch outgoing{reactor_parts::kMaxIovecs};
  std::vector<Address> senders;  // this turn's, so events can point at them
  reactor_parts::OutputQueue<Outgoing> output;
  bool adopted = false;  // as Listener::adopted
  bool dirty = false;
  bool read_again = false;
  uint64_t read_in_turn = UINT64_MAX;  // stats_.turns of the last recvmmsg
};

// After a send took `bytes` of a connection's output (flush, flush_records): runs once per
// flush, so always inlined (GCC's inliner would weigh it against flush's size).
[[gnu::always_inline]] inline void Reactor::count_sent(Connection& c, size_t bytes) {
  c.output_bytes -= bytes;
  stats_.queued_bytes -= bytes;
  stats_.sent_bytes += bytes;
  c.last_active = now_;  // a slow reader that is draining is not idle
}

}  // namespace socketeer
