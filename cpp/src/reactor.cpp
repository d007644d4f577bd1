#include "socketeer/reactor.hpp"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "socketeer/accept_backoff.hpp"
#include "socketeer/error.hpp"
#include "socketeer/interrupt.hpp"
#include "reactor_parts.hpp"

namespace socketeer {

using namespace reactor_parts;

namespace {

using namespace std::chrono_literals;

// A connection's read block is this much longer than ReactorOptions::read_buffer. A recv that
// fills its room cannot be told from one that left bytes behind, so it costs one more recv to
// find out. Messages are often a power of two long, like read_buffer itself; with a block of
// exactly read_buffer, every message of that size (64 KiB echoes) would take two recvs.
constexpr size_t kReadSlack = 64;
constexpr auto kAcceptBackoff = AcceptBackoff::kPause;  // after EMFILE/ENFILE

bool is_reset(int code) { return code == ECONNRESET || code == EPIPE || code == ETIMEDOUT; }

// Giving memory back (release_memory): due once the loop has freed this much since it last
// did, and done when the loop has been quiet for kQuiet (or its connections fell far below
// their peak).
constexpr size_t kReleaseAfter = 8 << 20;
constexpr auto kQuiet = 200ms;

// --- UDP segmentation offloads (see datagram_batch.hpp) ---

// GRO may hand over up to 64 KiB in one slot (the kernel's limit for a coalesced packet, with
// the default gro_max_size); a smaller slot would truncate it and lose whole datagrams, so
// endpoints with smaller slots go without GRO.
constexpr size_t kCoalescedRoom = 65536;

bool is_udp(const Socket& socket) {
  return (socket.family() == AF_INET || socket.family() == AF_INET6) && socket.type() == SOCK_DGRAM &&
         (socket.protocol() == 0 || socket.protocol() == IPPROTO_UDP);
}

// UDP_GRO arrived in Linux 5.0, UDP_SEGMENT in 4.18; older kernels answer ENOPROTOOPT (EINVAL).
bool unknown_option(int code) { return code == ENOPROTOOPT || code == EINVAL; }

bool enable_receive_offload(Socket& socket) {
  try {
    socket.set_option(SOL_UDP, UDP_GRO, 1);
    return true;
  } catch (const Error& error) {
    if (!unknown_option(error.code_value())) throw;
    return false;
  }
}

// GSO is asked for per message, with a UDP_SEGMENT control message, and a kernel older than
// 4.18 ignores control messages of SOL_UDP: it would send a whole run as ONE datagram. So ask
// first whether the socket option of the same name (and age) exists.
bool supports_segment_offload(const Socket& socket) {
  try {
    (void)socket.get_option(SOL_UDP, UDP_SEGMENT);
    return true;
  } catch (const Error& error) {
    if (!unknown_option(error.code_value())) throw;
    return false;
  }
}

// A kernel that knows GSO may still refuse a GSO message: a device without checksum offload or
// a UDP-Lite socket (EIO), a segment larger than the route's MTU (EINVAL), a driver without
// support (EOPNOTSUPP). The same datagrams one per message may well go, so they are tried so.
bool refuses_segmentation(int code) {
  return code == EIO || code == EINVAL || code == ENOPROTOOPT || code == EOPNOTSUPP || code == EMSGSIZE;
}

}  // namespace

// --- built-in dispatchers ----------------------------------------------------------------------

void EchoDispatcher::dispatch(Reactor& reactor, std::span<const ReactorEvent> events) {
  for (const auto& event : events) {
    if (event.kind == ReactorEvent::Kind::message)
      reactor.send(event.id, event.frame.data(), event.frame.size());
    else if (event.kind == ReactorEvent::Kind::datagram)
      reactor.send_to(event.id, event.data.data(), event.data.size(), *event.from);
  }
}

void FixedResponseDispatcher::dispatch(Reactor& reactor, std::span<const ReactorEvent> events) {
  for (const auto& event : events) {
    if (event.kind == ReactorEvent::Kind::message)
      reactor.send(event.id, response_.data(), response_.size());
    else if (event.kind == ReactorEvent::Kind::datagram)
      reactor.send_to(event.id, response_.data(), response_.size(), *event.from);
  }
}

// --- set-up ------------------------------------------------------------------------------------

Reactor::Reactor(ReactorOptions options) : options_(std::move(options)), records_out_(kMaxIovecs) {
  if (options_.low_watermark > options_.high_watermark)
    throw InvalidArgument("low_watermark must not exceed high_watermark");
}

// Python bytes still queued hold references that only the dispatcher can drop.
Reactor::~Reactor() {
  for (auto& connection : connections_)
    if (connection)
      for (auto& chunk : connection->output)
        if (chunk.token) released_.push_back(chunk.token);
  for (auto& endpoint : datagrams_)
    for (auto& outgoing : endpoint->output)
      if (outgoing.chunk.token) released_.push_back(outgoing.chunk.token);
  try {
    release_tokens();
  } catch (...) {
  }
}

uint64_t Reactor::add_listener(Socket listener) {
  if (listener.type() == SOCK_SEQPACKET && options_.framing.kind() != Framing::Kind::raw)
    throw InvalidArgument("a seqpacket listener needs raw framing: each record is one message");
  listener.set_timeout(0ns);
  auto entry = std::make_unique<Listener>(Listener{0, std::move(listener), false});
  poller_.add(entry->socket.fd(), Ready::readable, Mode::edge, token_of(kListener, entry.get()));
  return hand_over(std::move(entry), pending_listeners_);
}

uint64_t Reactor::add_datagram(Socket endpoint) {
  endpoint.set_timeout(0ns);
  bool offload = options_.udp_gso && is_udp(endpoint);
  bool receive_offload = offload && options_.datagram_size >= kCoalescedRoom && enable_receive_offload(endpoint);
  bool segment_offload = offload && supports_segment_offload(endpoint);
  auto entry = std::make_unique<DatagramEndpoint>(
      0, std::move(endpoint), DatagramBatch(options_.datagram_batch, options_.datagram_size, receive_offload),
      segment_offload);
  poller_.add(entry->socket.fd(), Ready::readable | Ready::writable, Mode::edge, token_of(kDatagram, entry.get()));
  return hand_over(std::move(entry), pending_datagrams_);
}

// Gives a new endpoint (registered with the poller already, so errors reached the caller) its
// id, and its tables entry: at once while no loop runs, else through the loop thread, which
// alone touches the tables while it runs. Its address is kept here, for any thread.
template <typename Entry>
uint64_t Reactor::hand_over(std::unique_ptr<Entry> entry, std::vector<std::unique_ptr<Entry>>& pending) {
  Address address = entry->socket.local_address();
  std::unique_lock lock(posted_mutex_);
  uint64_t id = entry->id = next_endpoint_id_++;
  endpoint_addresses_.emplace_back(id, std::move(address));
  if (!loop_adopts_) {
    adopt(std::move(entry), false);
    return id;
  }
  pending.push_back(std::move(entry));
  has_posted_.store(true, std::memory_order_release);
  lock.unlock();
  poller_.wake();
  return id;
}

// running: adopted by the loop thread, which may have polled the fd's first readiness before it
// adopted it (an event for an endpoint not yet adopted is ignored, and an edge is reported only
// once), so it looks for itself: accepts what is waiting, reads what arrived.
void Reactor::adopt(std::unique_ptr<Listener> listener, bool running) {
  Listener& adopted = *listeners_.emplace_back(std::move(listener));
  adopted.adopted = true;
  if (running) accept_all(adopted);
}

void Reactor::adopt(std::unique_ptr<DatagramEndpoint> endpoint, bool running) {
  DatagramEndpoint& adopted = *datagrams_.emplace_back(std::move(endpoint));
  adopted.adopted = true;
  adopted.read_again = running;
}

Address Reactor::local_address(uint64_t id) const {
  std::lock_guard lock(posted_mutex_);
  for (const auto& [endpoint, address] : endpoint_addresses_)
    if (endpoint == id) return address;
  throw InvalidArgument("no listener or datagram endpoint with id " + std::to_string(id));
}

// --- the loop ----------------------------------------------------------------------------------

void Reactor::run() {
  if (running_.exchange(true)) throw std::logic_error("the reactor is already running");
  if (options_.tune_allocator) tune_allocator_for_messages();
  loop_thread_ = std::this_thread::get_id();
  std::exception_ptr error;  // from a turn (a dispatcher that raised, say KeyboardInterrupt)
  int interrupt_fd = interrupt_fd_;
  bool interrupt_registered = false;
  now_ = quiet_since_ = Clock::now();
  try {
    take_posted(true);  // from here on, endpoints added from other threads go through this one
    if (interrupt_fd >= 0) {
      poller_.add(interrupt_fd, Ready::readable, Mode::edge, token_of<void>(kInterrupt, nullptr));
      interrupt_registered = true;
    }
    // An endpoint added while the last run() was ending may have had its first edge taken by
    // that loop's last poll (see adopt): look for what is waiting on each, once.
    for (auto& listener : listeners_) accept_all(*listener);
    for (auto& endpoint : datagrams_) endpoint->read_again = true;
    while (!stop_requested_.load()) turn();
  } catch (...) {
    error = std::current_exception();
  }
  if (interrupt_registered) poller_.remove(interrupt_fd);
  try {
    take_posted(false);  // endpoints added meanwhile are kept; added from now on, adopted at once
  } catch (...) {
    if (!error) error = std::current_exception();
  }
  std::exception_ptr late = shutdown();
  stop_requested_ = false;
  loop_thread_ = {};
  running_ = false;
  if (error) std::rethrow_exception(error);
  if (late) std::rethrow_exception(late);
}

// Every connection still open is closed with reason "server stopped", and the dispatcher hears
// of it; output the kernel does not take at once is dropped, since no loop runs to send it
// later (a stopped server must not keep sockets open behind its users' backs).
std::exception_ptr Reactor::shutdown() {
  dispatching_.clear();  // a dispatch cut short by an exception: the rest is not delivered
  for (auto& connection : connections_)
    if (connection && !connection->closing) begin_close(*connection, "server stopped", false);
  std::exception_ptr error;
  try {
    dispatch();
  } catch (...) {
    error = std::current_exception();
  }
  dispatching_.clear();
  events_.clear();
  reasons_.clear();
  finish_turn();
  for (auto& connection : connections_)
    if (connection) destroy(*connection);  // empties the slot
  graveyard_.clear();
  read_again_.clear();
  release_tokens();
  publish_stats();
  return error;
}

void Reactor::stop() {
  stop_requested_ = true;
  poller_.wake();
}

void Reactor::turn() {
  Timeout wait = next_timeout();
  // While memory is due to be given back, the poll wakes after kQuiet to see whether it went quiet.
  if (freed_since_release_ >= kReleaseAfter) [[unlikely]]
    wait = wait ? std::min<std::chrono::nanoseconds>(*wait, kQuiet) : kQuiet;
  auto ready = poller_.poll(wait);
  // The loop's clock, read once per turn (libuv's uv_now): idle timeouts and the accept back-off
  // need no finer grain, and a clock read per read and per write was 15 % of the user time.
  now_ = Clock::now();
  if (freed_since_release_ >= kReleaseAfter) [[unlikely]]
    release_memory_if_due(ready.empty());
  // After the poll, not before: what other threads posted (sends, closes) is flushed at the end
  // of this same turn instead of waiting for some later event to end the next poll.
  run_posted();
  for (const Event& event : ready) handle(event);
  // Swapped with scratch vectors, not moved out: a moved-from vector has no capacity left,
  // and the next push_back would allocate every turn.
  again_.clear();  // left over if an exception cut the last pass short
  again_.swap(read_again_);
  for (Connection* connection : again_) {
    connection->queued_read = false;
    if (!connection->dead) read(*connection);
  }
  again_.clear();
  for (auto& endpoint : datagrams_) {
    if (std::exchange(endpoint->read_again, false)) read_datagrams(*endpoint);
  }
  dispatch();
  finish_turn();
  release_tokens();
  check_idle();
  ++stats_.turns;
  publish_stats();
}

// Hands the turn's events to the dispatcher. Handlers may close connections meanwhile, which
// adds events: they go to a fresh events_ (the vector being dispatched must not move under the
// dispatcher) and are delivered next turn, as are closes begun after dispatch (a failed flush,
// an idle timeout). A reason lives in reasons_ until its event has been dispatched.
void Reactor::dispatch() {
  if (events_.empty()) return;
  dispatching_.swap(events_);
  size_t reasons = reasons_.size();
  if (dispatcher_) dispatcher_->dispatch(*this, dispatching_);
  stats_.messages += std::count_if(dispatching_.begin(), dispatching_.end(),
                                   [](const auto& e) { return e.kind == ReactorEvent::Kind::message; });
  dispatching_.clear();
  if (reasons) reasons_.erase(reasons_.begin(), reasons_.begin() + static_cast<std::ptrdiff_t>(reasons));
}

void Reactor::publish_stats() {
  stats_.connections = connection_count_;
  published_stats_.store(stats_);
}

Timeout Reactor::next_timeout() const {
  if (!read_again_.empty() || !events_.empty() || stop_requested_) return 0ns;
  for (const auto& endpoint : datagrams_)
    if (endpoint->read_again) return 0ns;
  Timeout timeout;
  if (options_.idle_timeout) timeout = std::max<std::chrono::nanoseconds>(*options_.idle_timeout / 4, 1ms);
  if (accept_paused_) timeout = timeout ? std::min<std::chrono::nanoseconds>(*timeout, kAcceptBackoff) : kAcceptBackoff;
  return timeout;
}

// The event's token names its object (reactor_parts.hpp); an event invalidated by a removal
// earlier in this batch has token 0 (poller_epoll.cpp, comment 7), and is skipped as kNone.
void Reactor::handle(const Event& event) {
  switch (kind_of(event.token)) {
    case kListener: {
      auto& listener = object_of<Listener>(event.token);
      if (listener.adopted) accept_all(listener);
      break;
    }
    case kDatagram: {
      auto& endpoint = object_of<DatagramEndpoint>(event.token);
      if (!endpoint.adopted) break;
      if (event.events & Ready::writable) flush(endpoint);
      if (event.events & (Ready::readable | Ready::error)) read_datagrams(endpoint);
      break;
    }
    case kConnection: {
      auto& connection = object_of<Connection>(event.token);
      if (connection.dead) break;
      if (event.events & Ready::writable && !connection.output.empty()) {
        flush(connection);
        // A graceful close waiting for its output to drain ends here, when the last of it went.
        if (connection.closing && !connection.dead && connection.output.empty()) destroy(connection);
      }
      if (!connection.dead && event.events & (Ready::readable | Ready::read_closed | Ready::hangup | Ready::error))
        read(connection, !(event.events & (Ready::read_closed | Ready::hangup | Ready::error)));
      break;
    }
    case kInterrupt: {
      char drain[64];
      while (::read(event.fd, drain, sizeof drain) > 0) {
      }
      on_interrupt();  // may throw (Python: KeyboardInterrupt), which ends run()
      break;
    }
    default:
      break;
  }
}

// Accepts until EAGAIN: the listener is edge-triggered, so one event may stand for many
// connections. A failure is handled by AcceptBackoff's policy: EMFILE/ENFILE (out of fds)
// pause accepting instead of spinning on the same pending connection.
void Reactor::accept_all(Listener& listener) {
  if (accept_paused_) return;
  for (;;) {
    std::optional<std::pair<Socket, Address>> accepted;
    try {
      accepted = listener.socket.accept();
    } catch (const Error& error) {
      switch (AcceptBackoff::classify(error.code_value())) {
        case AcceptBackoff::Action::retry:
          continue;
        case AcceptBackoff::Action::pause:
          accept_paused_ = true;
          accept_resume_ = now_ + kAcceptBackoff;
          return;
        case AcceptBackoff::Action::fatal:
          throw;
      }
    }
    if (!accepted) return;
    auto [socket, peer] = std::move(*accepted);
    socket.set_timeout(0ns);
    // The id carries the connection's slot, so the lookup per send is an array index (find());
    // the serial in the high half keeps ids unique when a slot is used again.
    uint32_t slot = free_slot();  // taken below, once nothing can throw
    uint64_t id = next_id_++ << 32 | slot;
    auto connection = std::make_unique<Connection>(id, std::move(socket));
    connection->state = std::make_shared<ConnectionState>();
    connection->state->id = connection->id;
    connection->state->listener = listener.id;
    connection->state->peer = peer;
    connection->state->local = connection->socket.local_address();
    connection->input_size = options_.read_buffer + kReadSlack;
    connection->input = std::make_shared_for_overwrite<char[]>(connection->input_size);
    connection->last_active = now_;
    int fd = connection->socket.fd();
    poller_.add(fd, Ready::readable | Ready::writable | Ready::read_closed, Mode::edge,
                token_of(kConnection, connection.get()));
    events_.push_back({ReactorEvent::Kind::opened, connection->id, {}, {}, nullptr});
    ++stats_.accepted;
    Connection* raw = connection.get();
    free_slots_.pop_back();
    connections_[slot] = std::move(connection);
    ++connection_count_;
    // Data may have arrived with the handshake: edge-triggered epoll only reports changes
    // after registration, so read once now.
    read(*raw);
  }
}

void Reactor::read(Connection& c, bool stop_on_short_read) {
  if (c.read_paused || c.closing) return;
  if (!c.touched) {
    c.touched = true;
    touched_.push_back(&c);
    // No message views into the buffer yet this turn: it may still be moved or grown.
    size_t kept = c.in_end - c.in_start;
    size_t size = c.input_size;
    size_t frame_room = options_.framing.max_size() + 16 + options_.framing.delimiter().size();
    if (kept == size && size < frame_room) size = std::min(size * 2, frame_room);
    if (size != c.input_size || c.input.use_count() > 1) {
      auto block = std::make_shared_for_overwrite<char[]>(size);
      std::memcpy(block.get(), c.input.get() + c.in_start, kept);
      c.input = std::move(block);
      c.input_size = size;
    } else if (c.in_start > 0) {
      std::memmove(c.input.get(), c.input.get() + c.in_start, kept);
    }
    c.in_end = kept;
    c.in_parsed = c.in_start = 0;
  }
  c.last_active = now_;
  if (c.records) return read_records(c);
  // Messages left over from an earlier turn (kMessagesPerTurn, or a pause) come first; so does
  // an end of stream that arrived behind them.
  bool drained = false;
  for (size_t reads = 0;; ++reads) {
    if (c.in_parsed < c.in_end && !hand_out(c)) return;
    if (c.peer_closed) {
      // Messages that arrived with the end of stream (a client that half-closes after its
      // request) must still be answerable: close once they are dispatched, next turn.
      if (c.handed_out) read_next_turn(c);
      else begin_close(c, c.in_parsed == c.in_end ? "eof" : "eof in the middle of a message", false);
      return;
    }
    // A short read emptied the socket's queue, and bytes arriving from now on raise a new edge
    // (epoll reports each arrival), so the recv that would only say EAGAIN can be saved. Not
    // when the peer may have closed already: a FIN that arrived with the last bytes raises no
    // edge of its own, and only another recv (returning 0) would show it. So this is only for
    // events whose mask, computed when epoll reported them, has no read_closed/hangup/error.
    if (drained && stop_on_short_read) return;
    if (c.in_end == c.input_size || reads == kReadsPerTurn) {
      read_next_turn(c);  // more may be waiting
      return;
    }
    size_t room = c.input_size - c.in_end;
    std::optional<size_t> n;
    try {
      ++stats_.reads;
      n = c.socket.recv_now(c.input.get() + c.in_end, room);
    } catch (const Error& error) {
      close_after_error(c, error);
      return;
    }
    if (!n) return;  // drained: wait for the next edge
    if (*n == 0) c.peer_closed = true;
    drained = *n < room;
    c.in_end += *n;
    stats_.received_bytes += *n;
  }
}

// Splits the received bytes into message events, up to this turn's share. False once the
// connection is closing (a frame too large) or its share is used up (read again next turn).
bool Reactor::hand_out(Connection& c) {
  try {
    std::string_view rest(c.input.get() + c.in_parsed, c.in_end - c.in_parsed);
    while (c.handed_out < kMessagesPerTurn) {
      auto frame = options_.framing.next(rest, c.in_searched);
      if (!frame) {
        c.in_searched = rest.size();
        return true;
      }
      c.in_searched = 0;
      std::string_view wire = rest.substr(0, frame->total());
      events_.push_back(
          {ReactorEvent::Kind::message, c.id, wire.substr(frame->header, frame->payload), wire, nullptr, &c.input,
           c.input_size});
      rest.remove_prefix(frame->total());
      c.in_parsed += frame->total();
      ++c.handed_out;
    }
  } catch (const FrameTooLarge& error) {
    begin_close(c, error.what(), true);
    return false;
  }
  read_next_turn(c);
  return false;
}

void Reactor::read_next_turn(Connection& c) {
  if (!c.queued_read) read_again_.push_back(&c);
  c.queued_read = true;
}

void Reactor::read_datagrams(DatagramEndpoint& endpoint) {
  // One recvmmsg per turn: its arena is what this turn's events point into, so a second one
  // before dispatch would overwrite datagrams not yet delivered.
  if (endpoint.read_in_turn == stats_.turns) {
    endpoint.read_again = true;
    return;
  }
  endpoint.read_in_turn = stats_.turns;
  std::optional<size_t> count;
  try {
    count = endpoint.socket.recv_many(endpoint.batch);
  } catch (const Error&) {
    return;  // ICMP errors (ECONNREFUSED ...) surface here on UDP; nothing to close
  }
  if (!count) return;
  endpoint.senders.clear();
  endpoint.senders.reserve(*count);
  for (size_t i = 0; i < *count; ++i) endpoint.senders.push_back(endpoint.batch.address(i).value_or(UnixAddress()));
  size_t before = events_.size();
  for (size_t i = 0; i < *count; ++i) {
    if (endpoint.batch.truncated(i)) {
      ++stats_.truncated_datagrams;  // the rest of it is gone: a part is not the datagram sent
      continue;
    }
    std::string_view data = endpoint.batch.data(i);
    const Address* from = &endpoint.senders[i];
    // GRO: the kernel coalesces datagrams of one sender that arrive back to back while they
    // have one size, and a shorter one ends the run; so the slot holds pieces of segment_size
    // bytes, the last one possibly shorter. Each is a datagram of its own, with the same sender.
    size_t segment = endpoint.batch.segment_size(i);
    if (segment == 0 || data.size() <= segment) {
      events_.push_back({ReactorEvent::Kind::datagram, endpoint.id, data, {}, from});
      continue;
    }
    for (; !data.empty(); data.remove_prefix(std::min(segment, data.size()))) {
      events_.push_back({ReactorEvent::Kind::datagram, endpoint.id, data.substr(0, segment), {}, from});
      ++stats_.gro_segments;
    }
  }
  stats_.datagrams += events_.size() - before;
  if (*count == endpoint.batch.slots()) endpoint.read_again = true;
}

// --- output ------------------------------------------------------------------------------------

Reactor::Connection* Reactor::find(uint64_t id) const {
  auto slot = static_cast<size_t>(id & 0xffffffffu);
  if (slot >= connections_.size() || !connections_[slot]) return nullptr;
  Connection* c = connections_[slot].get();
  return c->id == id && !c->dead ? c : nullptr;
}

// The free slot in connections_ that the next connection takes (the last one freed: its memory
// is the warmest); it is the last of free_slots_ until the caller pops it.
uint32_t Reactor::free_slot() {
  if (free_slots_.empty()) {
    free_slots_.push_back(static_cast<uint32_t>(connections_.size()));
    connections_.emplace_back();
  }
  return free_slots_.back();
}

bool Reactor::send(uint64_t id, const char* data, size_t size, uint64_t token) {
  return enqueue(id, {}, std::string_view(data, size), token, {});
}

bool Reactor::send_message(uint64_t id, const char* data, size_t size, uint64_t token) {
  const Framing& framing = options_.framing;
  framing.check_message(std::string_view(data, size));  // before anything is queued or taken
  char header[Framing::kMaxHeader];
  return enqueue(id, std::string_view(header, framing.write_header(size, header)), std::string_view(data, size), token,
                 framing.trailer());
}

// Queues header (copied: a few bytes), payload (sent from the caller's memory when a token keeps
// it alive or it lies in this turn's input, else copied) and trailer (the framing's delimiter,
// which lives as long as the reactor: never copied).
bool Reactor::enqueue(uint64_t id, std::string_view header, std::string_view payload, uint64_t token,
                      std::string_view trailer) {
  if (!on_loop_thread()) {
    auto copy = std::make_shared<std::string>();
    copy->append(header).append(payload).append(trailer);
    post([this, id, copy] { send(id, copy->data(), copy->size()); });
    return true;
  }
  Connection* c = find(id);
  if (!c || c->closing || payload.empty()) [[unlikely]] {
    if (token) released_.push_back(std::exchange(token, 0));
    if (!c || c->closing) return false;
  }
  // Always inlined: GCC's inliner weighs it against enqueue's size, and one more branch in
  // enqueue (empty records) was enough for it to call it, and vector::push_back, out of line.
  auto push = [&](Chunk chunk) __attribute__((always_inline)) {
    c->output_bytes += chunk.size;
    stats_.queued_bytes += chunk.size;
    c->output.push_back(std::move(chunk));
  };
  auto copied = [](std::string_view bytes) {
    Chunk chunk{nullptr, bytes.size(), 0, std::make_unique<char[]>(bytes.size()), false};
    std::memcpy(chunk.owned.get(), bytes.data(), bytes.size());
    chunk.data = chunk.owned.get();
    return chunk;
  };
  if (!header.empty()) push(copied(header));
  // On a record connection an empty payload is an empty record (on a byte stream, nothing).
  if (!payload.empty() || c->records) {
    const char* data = payload.data();
    bool borrowed = !token && data >= c->input.get() && data < c->input.get() + c->input_size;
    if (token || borrowed || payload.empty()) push(Chunk{data, payload.size(), token, nullptr, borrowed});
    else push(copied(payload));  // the caller's bytes may not outlive this call
  }
  if (!trailer.empty()) push(Chunk{trailer.data(), trailer.size(), 0, nullptr, false});
  if (c->output.empty()) return true;  // nothing at all to send
  if (!c->dirty) {
    c->dirty = true;
    dirty_.push_back(c);
  }
  if (c->output_bytes > options_.high_watermark && !c->read_paused) {
    c->read_paused = true;
    ++stats_.paused_reads;
  }
  return true;
}

bool Reactor::send_to(uint64_t id, const char* data, size_t size, const Address& to, uint64_t token) {
  if (!on_loop_thread()) {
    auto copy = std::make_shared<std::string>(data, size);
    post([this, id, copy, to] { send_to(id, copy->data(), copy->size(), to); });
    return true;
  }
  for (auto& endpoint : datagrams_) {
    if (endpoint->id != id) continue;
    if (endpoint->output.size() >= options_.max_datagram_queue) {
      ++stats_.dropped_datagrams;
      if (token) released_.push_back(token);
      return false;
    }
    // Datagrams from this turn's arena stay valid until the flush below; others are copied.
    Chunk chunk{data, size, token, nullptr, false};
    bool in_arena = !token && !endpoint->senders.empty() && data >= endpoint->batch.data(0).data() &&
                    data < endpoint->batch.data(0).data() + endpoint->batch.slots() * endpoint->batch.slot_size();
    if (!token && !in_arena) {
      chunk.owned = std::make_unique<char[]>(size);
      std::memcpy(chunk.owned.get(), data, size);
      chunk.data = chunk.owned.get();
    }
    chunk.borrowed = in_arena;
    endpoint->output.push_back({std::move(chunk), to});
    if (!endpoint->dirty) {
      endpoint->dirty = true;
      datagram_dirty_.push_back(endpoint.get());
    }
    return true;
  }
  if (token) released_.push_back(token);
  return false;
}

// One sendmsg (writev) of up to 64 queued chunks, repeated until the queue is empty or the
// socket is full; a full socket reports writable again (edge) once it drains. Records go their
// own way: flush_records.
void Reactor::flush(Connection& c) {
  if (c.records) [[unlikely]] {
    if (!flush_records(c)) return;
  } else {
    while (!c.output.empty()) {
      iovec vectors[kMaxIovecs];
      size_t count = 0;
      for (auto it = c.output.begin(); it != c.output.end() && count < kMaxIovecs; ++it, ++count)
        vectors[count] = {const_cast<char*>(it->data), it->size};
      std::optional<size_t> sent;
      try {
        sent = c.socket.send_vectors_now(std::span(vectors, count));
      } catch (const Error& error) {
        close_after_error(c, error);
        return;
      }
      if (!sent) break;
      size_t left = *sent;
      count_sent(c, left);
      while (left > 0) {
        Chunk& front = c.output.front();
        size_t used = std::min(left, front.size);
        front.data += used;
        front.size -= used;
        left -= used;
        if (front.size == 0) {
          if (front.token) released_.push_back(front.token);
          c.output.pop_front();
        }
      }
    }
  }
  if (c.read_paused && c.output_bytes <= options_.low_watermark) {
    c.read_paused = false;
    read_next_turn(c);  // edge-triggered: data may be waiting
  }
}

[[gnu::cold]] void Reactor::close_after_error(Connection& c, const Error& error) {
  begin_close(c, is_reset(error.code_value()) ? "connection reset" : error.what(), true);
}

// One sendmmsg of up to kMaxIovecs queued datagrams, repeated until the queue is empty or the
// socket is full (it reports writable again, edge, once it drains). With GSO, a run of replies
// to one address with one size goes as one message; it counts as all its datagrams.
void Reactor::flush(DatagramEndpoint& endpoint) {
  OutgoingBatch& batch = endpoint.outgoing;
  while (!endpoint.output.empty()) {
    batch.reset(endpoint.segment_offload);
    for (const Outgoing& outgoing : endpoint.output)
      if (!batch.add({outgoing.chunk.data, outgoing.chunk.size, &outgoing.to})) break;
    size_t done = 0;  // datagrams sent, or dropped
    try {
      auto sent = endpoint.socket.send_many(batch);
      if (!sent) break;
      done = batch.datagrams_in(*sent);
      for (size_t i = 0; i < *sent; ++i)
        if (batch.segments(i) > 1) stats_.gso_datagrams += batch.segments(i);
    } catch (const Error& error) {
      // The error is the first message's. A refused GSO message is not lost: GSO goes off for
      // this endpoint and the same datagrams are packed again, one per message.
      if (batch.segments(0) > 1 && refuses_segmentation(error.code_value())) {
        endpoint.segment_offload = false;
        continue;
      }
      // Otherwise the message cannot go (unreachable, too big ...): drop it, keep the rest.
      done = batch.datagrams_in(1);
      stats_.dropped_datagrams += done;
    }
    for (size_t i = 0; i < done; ++i) {
      if (endpoint.output.front().chunk.token) released_.push_back(endpoint.output.front().chunk.token);
      endpoint.output.pop_front();
    }
  }
  // What could not go now must not point into the arena the next recvmmsg overwrites.
  for (auto& outgoing : endpoint.output) {
    Chunk& chunk = outgoing.chunk;
    if (!chunk.borrowed) continue;
    chunk.owned = std::make_unique<char[]>(chunk.size);
    std::memcpy(chunk.owned.get(), chunk.data, chunk.size);
    chunk.data = chunk.owned.get();
    chunk.borrowed = false;
  }
}

// After dispatch: flush what handlers queued, copy borrowed bytes that did not go out, consume
// the input that was handed out, and close what finished closing.
void Reactor::finish_turn() {
  flushing_.clear();
  flushing_.swap(dirty_);
  for (Connection* c : flushing_) {
    c->dirty = false;
    if (!c->dead) flush(*c);
    for (auto& chunk : c->output) {
      if (!chunk.borrowed) continue;
      chunk.owned = std::make_unique<char[]>(chunk.size);
      std::memcpy(chunk.owned.get(), chunk.data, chunk.size);
      chunk.data = chunk.owned.get();
      chunk.borrowed = false;
    }
    if (c->closing && !c->dead && c->output.empty()) destroy(*c);
  }
  flushing_.clear();
  flushing_datagrams_.clear();
  flushing_datagrams_.swap(datagram_dirty_);
  for (DatagramEndpoint* endpoint : flushing_datagrams_) {
    endpoint->dirty = false;
    flush(*endpoint);
  }
  flushing_datagrams_.clear();
  for (Connection* c : touched_) {
    c->touched = false;
    c->handed_out = 0;
    c->in_start = c->in_parsed;
    if (c->in_start == c->in_end) c->in_start = c->in_parsed = c->in_end = 0;
    if (c->closing && !c->dead && c->output.empty()) destroy(*c);
  }
  touched_.clear();
  graveyard_.clear();
}

void Reactor::begin_close(Connection& c, std::string reason, bool abort) {
  if (c.closing && !abort) return;
  if (!c.closing) {
    reasons_.push_back(std::move(reason));
    events_.push_back({ReactorEvent::Kind::closed, c.id, reasons_.back(), {}, nullptr});
  }
  c.closing = true;
  c.state->open = false;
  if (abort) {
    linger hard{1, 0};
    try {
      c.socket.set_option_bytes(SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    } catch (const Error&) {
    }
    drop_output(c);
  }
  // Closed for real at the end of the turn (finish_turn), after its events were dispatched.
  if (!c.dirty) {
    c.dirty = true;
    dirty_.push_back(&c);
  }
}

void Reactor::destroy(Connection& c) {
  // What the allocator holds free once the graveyard lets go of it: release_memory's due.
  size_t freed = sizeof c + c.input_size;
  if (freed_since_release_ < kReleaseAfter && freed_since_release_ + freed >= kReleaseAfter) quiet_since_ = now_;
  freed_since_release_ += freed;
  peak_connections_ = std::max(peak_connections_, connection_count_);
  poller_.remove(c.socket.fd());  // and so its events still in this turn's batch (comment 7 there)
  c.dead = true;
  c.state->open = false;
  drop_output(c);
  // Nothing may reach it after this turn: the graveyard frees it when the turn ends.
  if (c.queued_read) std::erase(read_again_, &c);
  if (c.dirty) std::erase(dirty_, &c);
  c.queued_read = c.dirty = false;
  c.socket.close();
  ++stats_.closed;
  auto slot = static_cast<uint32_t>(c.id & 0xffffffffu);
  graveyard_.push_back(std::move(connections_[slot]));  // events of this turn may still point at it
  free_slots_.push_back(slot);
  --connection_count_;
}

void Reactor::drop_output(Connection& c) {
  for (auto& chunk : c.output)
    if (chunk.token) released_.push_back(chunk.token);
  c.output.clear();
  stats_.queued_bytes -= c.output_bytes;
  c.output_bytes = 0;
}

void Reactor::close(uint64_t id, bool abort) {
  if (!on_loop_thread()) {
    post([this, id, abort] { close(id, abort); });
    return;
  }
  if (Connection* c = find(id)) begin_close(*c, abort ? "aborted" : "closed", abort);
}

std::shared_ptr<const ConnectionState> Reactor::connection_state(uint64_t id) const {
  Connection* c = find(id);
  return c ? c->state : nullptr;
}

void Reactor::check_idle() {
  auto now = now_;
  if (accept_paused_ && now >= accept_resume_) {
    accept_paused_ = false;
    for (auto& listener : listeners_) accept_all(*listener);
  }
  if (!options_.idle_timeout) return;
  for (auto& c : connections_) {
    if (c && !c->closing && now - c->last_active > *options_.idle_timeout) begin_close(*c, "idle timeout", false);
  }
}

void Reactor::release_tokens() {
  if (released_.empty()) return;
  if (dispatcher_) dispatcher_->release(released_);
  released_.clear();
}

// --- giving memory back ----------------------------------------------------------------------

// A burst leaves its connections' buffers free inside the allocator's heaps, and glibc keeps
// them there (allocator.hpp). Once the loop freed kReleaseAfter since the last release, the
// next release comes when the loop has been quiet for kQuiet (its polls found nothing, nothing
// was posted, nothing is left over to read or deliver), or at once when the connections fell
// to a quarter of their peak but not to none (a few that keep talking after a burst would keep
// the loop from ever being quiet): once per such fall, never in every turn. The last ones
// closing wait for quiet instead: what the dispatcher frees as it hears of the closes comes
// after. Called after the poll, before the turn's work: nothing_ready says whether the poll
// found anything.
void Reactor::release_memory_if_due(bool nothing_ready) {
  bool quiet = nothing_ready && !has_posted_.load(std::memory_order_relaxed) && next_timeout() != 0ns;
  if (!quiet) quiet_since_ = now_;
  bool fell = connection_count_ > 0 && connection_count_ * 4 <= peak_connections_;
  if (fell || now_ - quiet_since_ >= kQuiet) release_memory();
}

// The loop's own tables go back to what the connections open now need, buffers that grew for a
// large message go back to their usual size, and the allocator returns its free pages.
void Reactor::release_memory() {
  size_t usual = options_.read_buffer + kReadSlack;
  for (auto& c : connections_) {
    if (!c) continue;
    c->output.shrink();
    if (!c->records && c->input_size > usual && c->in_start == c->in_end) {
      c->input = std::make_shared_for_overwrite<char[]>(usual);
      c->input_size = usual;
      c->in_start = c->in_parsed = c->in_end = c->in_searched = 0;
    }
  }
  for (auto& endpoint : datagrams_) endpoint->output.shrink();
  auto shrink = [](auto&... tables) { (tables.shrink_to_fit(), ...); };
  shrink(events_, dispatching_, reasons_, read_again_, dirty_, touched_, datagram_dirty_, again_, flushing_,
         flushing_datagrams_, graveyard_, released_);
  // The slot table down to its last connection; the free slots beyond it go with it.
  size_t slots = connections_.size();
  while (slots > 0 && !connections_[slots - 1]) --slots;
  connections_.resize(slots);
  std::erase_if(free_slots_, [slots](uint32_t slot) { return slot >= slots; });
  shrink(connections_, free_slots_);
  release_free_memory();
  freed_since_release_ = 0;
  peak_connections_ = connection_count_;
}

void Reactor::post(std::function<void()> command) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(command));
    has_posted_.store(true, std::memory_order_release);
  }
  poller_.wake();
}

void Reactor::run_posted() {
  // Most turns have nothing posted: one load instead of a lock. A command posted after this
  // check woke the poller, so the next turn sees it.
  if (has_posted_.load(std::memory_order_acquire)) take_posted(true);
}

// Adopts the endpoints other threads added and runs the commands they posted. keep_adopting:
// whether endpoints added from now on still go through the loop thread (false as run() ends:
// then they are adopted at once by whoever adds them).
void Reactor::take_posted(bool keep_adopting) {
  std::vector<std::function<void()>> commands;
  std::vector<std::unique_ptr<Listener>> listeners;
  std::vector<std::unique_ptr<DatagramEndpoint>> datagrams;
  {
    std::lock_guard lock(posted_mutex_);
    commands.swap(posted_);
    listeners.swap(pending_listeners_);
    datagrams.swap(pending_datagrams_);
    has_posted_.store(false, std::memory_order_relaxed);
    loop_adopts_ = keep_adopting;
  }
  for (auto& listener : listeners) adopt(std::move(listener), keep_adopting);
  for (auto& endpoint : datagrams) adopt(std::move(endpoint), keep_adopting);
  for (auto& command : commands) command();
}

ReactorStats Reactor::stats() const { return published_stats_.load(); }

}  // namespace socketeer
