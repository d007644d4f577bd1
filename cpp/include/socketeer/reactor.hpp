// Reactor: the C++ event loop behind socketeer.Server.
//
// One thread runs run(). Each turn: poll (edge-triggered), accept every pending connection,
// read every ready connection into its own buffer and split it into messages with the
// Framing, then hand the whole turn's events to the Dispatcher in ONE call (for Python: one
// GIL acquisition per turn, not per message), then flush every connection that has output
// with one sendmsg (writev) each.
//
// Connections of a SOCK_SEQPACKET listener carry records, not a byte stream: each recv is one
// record and one record is one message (the framing must be raw), and each send()/
// send_message() is one record, flushed with one sendmmsg per batch (reactor_records.cpp).
//
// Memory: after a burst of connections closes, the loop gives what it freed back to the kernel
// once it is quiet (see reactor_memory.cpp); a busy turn never pays for it.
//
// Lifetimes that make this zero-copy:
//  - a message event's bytes are a view into its connection's input buffer; the buffer is not
//    moved, grown or consumed until the turn's dispatch and flush are over;
//  - output is a queue of chunks that may point at memory the reactor does not own (the input
//    buffer, for echo; a Python bytes object, for a handler's reply). Unsent borrowed chunks
//    are copied before the input they point at is consumed; chunks carrying a token are
//    reported back to the dispatcher (release()) once sent or dropped, so it can free them.
//
// The I/O engine is an IoEngine (io_engine.hpp), the epoll Poller unless the constructor is
// given another: the loop registers each socket once with its object as the token, polls once
// per turn, and removes a socket before closing it; the calls per event are none.
//
// Edge-triggered epoll reports a readable fd once per change, so a connection that stopped
// reading before EAGAIN (its buffer filled, its turn's budget ran out, or backpressure paused
// it) is remembered in `read_again_` and read again without waiting for a new event.
//
// Where it lives (libuv keeps stream.c and udp.c apart too): the loop, listeners, dispatch and
// posting in reactor.cpp; a stream connection's state machine (read, frame, queue, flush, close)
// in reactor_stream.cpp, its record-oriented variant in reactor_records.cpp; datagram endpoints
// in reactor_datagram.cpp; giving memory back in reactor_memory.cpp; what they share (per-object
// state, poller tokens) in reactor_parts.hpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "socketeer/allocator.hpp"
#include "socketeer/datagram_batch.hpp"
#include "socketeer/error.hpp"
#include "socketeer/framing.hpp"
#include "socketeer/io_engine.hpp"
#include "socketeer/seqlock.hpp"
#include "socketeer/socket.hpp"

namespace socketeer {

struct ReactorEvent {
  enum class Kind : uint8_t { opened, message, closed, datagram };
  Kind kind;
  uint64_t id;             // connection id, or datagram endpoint id
  std::string_view data;   // message payload, datagram payload, or close reason
  std::string_view frame;  // message: the whole frame as it arrived (prefix/delimiter included)
  const Address* from = nullptr;  // datagram: the sender (valid during dispatch)
  // message: the connection's input block that data and frame lie in. They are valid during
  // dispatch; a dispatcher that keeps a copy of this keeps them valid for as long as it holds
  // it (a memoryview lent to Python that outlived its handler), and the connection reads on
  // into a fresh block instead of overwriting them.
  const std::shared_ptr<char[]>* buffer = nullptr;
  size_t buffer_size = 0;  // of that block
};

class Reactor;

// What the Python side keeps of a connection: readable from any thread, kept alive by whoever
// holds it (the reactor drops its reference when the connection is destroyed).
struct ConnectionState {
  uint64_t id = 0;
  uint64_t listener = 0;
  std::optional<Address> peer;
  std::optional<Address> local;
  std::atomic<bool> open{true};
};

class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  // All events of one loop turn. May call send/send_to/close on the reactor.
  virtual void dispatch(Reactor& reactor, std::span<const ReactorEvent> events) = 0;
  // Tokens of sent (or dropped) chunks; called on the loop thread, outside dispatch.
  virtual void release(std::span<const uint64_t> tokens) { (void)tokens; }
};

// Built-in handlers that need no Python: echo every message back as it came, or drop it.
class EchoDispatcher : public Dispatcher {
 public:
  void dispatch(Reactor& reactor, std::span<const ReactorEvent> events) override;
};
class DiscardDispatcher : public Dispatcher {
 public:
  void dispatch(Reactor&, std::span<const ReactorEvent>) override {}
};
// Answers every message with the same bytes (say, a canned HTTP response).
class FixedResponseDispatcher : public Dispatcher {
 public:
  explicit FixedResponseDispatcher(std::string response) : response_(std::move(response)) {}
  void dispatch(Reactor& reactor, std::span<const ReactorEvent> events) override;

 private:
  std::string response_;
};

struct ReactorOptions {
  Framing framing = Framing::raw(64 * 1024);
  size_t read_buffer = 64 * 1024;
  size_t high_watermark = 4 * 1024 * 1024;  // queued output that pauses reading
  size_t low_watermark = 1024 * 1024;       // ... and resumes it
  Timeout idle_timeout;                     // close connections silent for this long
  size_t datagram_batch = 64;               // datagrams per recvmmsg
  // The longest datagram received. A longer one arrives cut short (MSG_TRUNC): it is dropped
  // and counted (truncated_datagrams), never handed out as if it were whole.
  size_t datagram_size = 65536;
  size_t max_datagram_queue = 4096;         // queued replies per endpoint; more are dropped
  // UDP segmentation offloads on UDP endpoints: GRO (receive several datagrams of one sender in
  // one slot; only when datagram_size can hold a coalesced 64 KiB) and GSO (send a run of
  // equal-size replies to one address as one message). Off: one datagram per message, always.
  bool udp_gso = true;
  // Python handlers get a fresh bytes object per message; with glibc's defaults, freeing a
  // 64 KiB one hands the heap top back to the kernel and the next message faults it in again
  // (measured: 82 -> 44 us of server CPU per 64 KiB echo). When set, run() raises glibc's trim
  // threshold and fixes its mmap threshold once per process, unless the user set MALLOC_* .
  bool tune_allocator = true;
};

struct ReactorStats {
  uint64_t accepted = 0, closed = 0, messages = 0, datagrams = 0, turns = 0, dropped_datagrams = 0;
  uint64_t received_bytes = 0, sent_bytes = 0;  // stream connections
  uint64_t reads = 0;         // recv calls on stream connections, those that found nothing too
  uint64_t paused_reads = 0;  // times a connection stopped reading at the high watermark
  uint64_t gro_segments = 0;  // datagrams that arrived coalesced (GRO) and were split here
  uint64_t gso_datagrams = 0; // datagrams that left inside GSO messages
  uint64_t truncated_datagrams = 0;  // longer than datagram_size: dropped on arrival
  size_t queued_bytes = 0;    // output waiting in connections' queues now
  size_t connections = 0;
};

class Reactor {
 public:
  // engine: the I/O engine (io_engine.hpp); none: the epoll Poller.
  explicit Reactor(ReactorOptions options = {}, std::unique_ptr<IoEngine> engine = nullptr);
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Takes over a bound, listening stream or seqpacket socket. Returns the listener's id.
  // Any thread, also while run() runs: the loop thread then adopts it in its next turn (the
  // socket listens already, so connections made meanwhile wait in its backlog). A seqpacket
  // listener needs raw framing (a record is a message): InvalidArgument otherwise.
  uint64_t add_listener(Socket listener);
  // Takes over a bound datagram socket. Returns the endpoint's id. Any thread, as add_listener.
  uint64_t add_datagram(Socket endpoint);
  // The bound address of a listener or datagram endpoint. Any thread.
  Address local_address(uint64_t id) const;

  void set_dispatcher(Dispatcher* dispatcher) { dispatcher_ = dispatcher; }
  // An fd that becomes readable when the loop's thread got a signal (a signal wakeup pipe):
  // run() watches it, drains it and calls on_interrupt(). A signal that lands while the loop is
  // between polls interrupts no syscall, so without it the next poll would sleep through it.
  void set_interrupt_fd(int fd) { interrupt_fd_ = fd; }
  // Runs until stop(); everything still open is closed (reason "server stopped") on the way out.
  void run();
  // Any thread; run() returns soon after.
  void stop();
  bool running() const { return running_.load(); }
  bool in_loop_thread() const { return on_loop_thread(); }

  // On the loop thread (inside dispatch) these act at once: data must stay valid until token is
  // released (token 0: the reactor copies what it cannot send at once, or borrows it when it
  // points into this turn's input). From other threads the data is copied at once, applied on
  // the loop thread, and the token is ignored (pass 0).
  bool send(uint64_t connection, const char* data, size_t size, uint64_t token = 0);
  // send() framed with the reactor's framing (length prefix or delimiter added, the payload not
  // copied); throws FrameTooLarge/InvalidArgument, before taking the token, for a message the
  // framing cannot carry as one.
  bool send_message(uint64_t connection, const char* data, size_t size, uint64_t token = 0);
  bool send_to(uint64_t endpoint, const char* data, size_t size, const Address& to, uint64_t token = 0);
  // Graceful: queued output is flushed first. abort: RST at once, output dropped.
  void close(uint64_t connection, bool abort = false);
  // On the loop thread (say, while dispatching an `opened` event).
  std::shared_ptr<const ConnectionState> connection_state(uint64_t connection) const;

  ReactorStats stats() const;
  const ReactorOptions& options() const { return options_; }

 private:
  struct Chunk;
  struct Connection;
  struct Listener;
  struct DatagramEndpoint;
  struct Outgoing;

  bool on_loop_thread() const { return std::this_thread::get_id() == loop_thread_; }
  void post(std::function<void()> command);
  // Runs what other threads posted and adopts the endpoints they added.
  void run_posted();
  void take_posted(bool keep_adopting);
  void turn();
  void handle(const Event& event);
  template <typename Entry>
  uint64_t hand_over(std::unique_ptr<Entry> entry, std::vector<std::unique_ptr<Entry>>& pending);
  void adopt(std::unique_ptr<Listener> listener, bool running);
  void adopt(std::unique_ptr<DatagramEndpoint> endpoint, bool running);
  void accept_all(Listener& listener);
  // stop_on_short_read: only for a readable event whose mask says the peer has not closed.
  void read(Connection& connection, bool stop_on_short_read = false);
  void read_records(Connection& connection);
  bool hand_out(Connection& connection);
  bool enqueue(uint64_t id, std::string_view header, std::string_view payload, uint64_t token,
               std::string_view trailer);
  void read_next_turn(Connection& connection);
  void drop_output(Connection& connection);
  std::exception_ptr shutdown();
  void publish_stats();
  void dispatch();
  void read_datagrams(DatagramEndpoint& endpoint);
  void flush(Connection& connection);
  bool flush_records(Connection& connection);
  void count_sent(Connection& connection, size_t bytes);
  void close_after_error(Connection& connection, const Error& error);
  void flush(DatagramEndpoint& endpoint);
  void finish_turn();
  void begin_close(Connection& connection, std::string reason, bool abort);
  void destroy(Connection& connection);
  void check_idle();
  void release_memory_if_due(bool nothing_ready);
  void release_memory();
  Timeout next_timeout() const;
  void release_tokens();
  Connection* find(uint64_t id) const;
  uint32_t free_slot();

  ReactorOptions options_;
  std::unique_ptr<IoEngine> engine_;  // readiness (io_engine.hpp): epoll's Poller unless given one
  Dispatcher* dispatcher_ = nullptr;
  int interrupt_fd_ = -1;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_requested_{false};
  std::thread::id loop_thread_;

  uint64_t next_id_ = 1;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::unique_ptr<DatagramEndpoint>> datagrams_;
  // Connections by slot, an id's low 32 bits (find(): an array index per send). A poller event
  // names its object by its registration's token (reactor_parts.hpp), so there is no fd table.
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<uint32_t> free_slots_;
  size_t connection_count_ = 0;
  OutgoingBatch records_out_;  // a record connection's flush (one at a time, on the loop thread)

  std::vector<ReactorEvent> events_;
  std::vector<ReactorEvent> dispatching_;  // events_ of this turn, while the dispatcher has them
  std::deque<std::string> reasons_;  // close reasons referenced by undelivered events
  std::vector<Connection*> read_again_;
  std::vector<Connection*> dirty_;      // have output to flush this turn
  std::vector<Connection*> touched_;    // read this turn: input to consume after flushing
  std::vector<DatagramEndpoint*> datagram_dirty_;
  std::vector<Connection*> again_, flushing_;  // read_again_ and dirty_ while being worked off
  std::vector<DatagramEndpoint*> flushing_datagrams_;
  std::vector<std::unique_ptr<Connection>> graveyard_;  // closed this turn, freed after dispatch
  std::vector<uint64_t> released_;
  Clock::time_point now_ = Clock::now();  // read once per turn, after the poll
  Clock::time_point accept_resume_{};  // after EMFILE, accepting pauses until then
  bool accept_paused_ = false;

  mutable std::mutex posted_mutex_;
  std::vector<std::function<void()>> posted_;
  std::atomic<bool> has_posted_{false};  // posted_ or pending_* not empty (read without the lock)
  // Endpoints, under posted_mutex_: ids and bound addresses for any thread (local_address), and
  // those added while the loop runs (loop_adopts_), which its thread adopts in its next turn.
  uint64_t next_endpoint_id_ = 1;
  std::vector<std::pair<uint64_t, Address>> endpoint_addresses_;
  std::vector<std::unique_ptr<Listener>> pending_listeners_;
  std::vector<std::unique_ptr<DatagramEndpoint>> pending_datagrams_;
  bool loop_adopts_ = false;
  ReactorStats stats_;              // loop thread only
  Seqlock<ReactorStats> published_stats_;  // a copy per turn, for other threads

  // What release_memory() has to give back: bytes of connection buffers freed since it last
  // ran, the most connections open at once since then, and when the loop last had work.
  size_t freed_since_release_ = 0;
  size_t peak_connections_ = 0;
  Clock::time_point quiet_since_{};
};

}  // namespace socketeer
