// Reactor: the loop (a turn: poll, handle each event, dispatch, flush), listeners and accepting,
// endpoints added from other threads, posting and idle timeouts. A connection's byte stream is
// reactor_stream.cpp (its records reactor_records.cpp), a datagram endpoint
// reactor_datagram.cpp, giving memory back after a burst reactor_memory.cpp.
#include "socketeer/reactor.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "socketeer/accept_backoff.hpp"
#include "socketeer/error.hpp"
#include "socketeer/interrupt.hpp"
#include "socketeer/poller.hpp"
#include "reactor_parts.hpp"

namespace socketeer {

using namespace reactor_parts;

namespace {

using namespace std::chrono_literals;

constexpr auto kAcceptBackoff = AcceptBackoff::kPause;  // after EMFILE/ENFILE

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

Reactor::Reactor(ReactorOptions options, std::unique_ptr<IoEngine> engine)
    : options_(std::move(options)), engine_(engine ? std::move(engine) : std::make_unique<Poller>()), records_out_(kMaxIovecs) {
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
  engine_->add(entry->socket.fd(), Ready::readable, Mode::edge, token_of(kListener, entry.get()));
  return hand_over(std::move(entry), pending_listeners_);
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
  engine_->wake();
  return id;
}
// add_datagram (reactor_datagram.cpp) hands its endpoints over too.
template uint64_t Reactor::hand_over(std::unique_ptr<DatagramEndpoint>, std::vector<std::unique_ptr<DatagramEndpoint>>&);

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
      engine_->add(interrupt_fd, Ready::readable, Mode::edge, token_of<void>(kInterrupt, nullptr));
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
  if (interrupt_registered) engine_->remove(interrupt_fd);
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
  engine_->wake();
}

void Reactor::turn() {
  Timeout wait = next_timeout();
  // While memory is due to be given back, the poll wakes after kQuiet to see whether it went quiet.
  if (freed_since_release_ >= kReleaseAfter) [[unlikely]]
    wait = wait ? std::min<std::chrono::nanoseconds>(*wait, kQuiet) : kQuiet;
  auto ready = engine_->poll(wait);
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
    engine_->add(fd, Ready::readable | Ready::writable | Ready::read_closed, Mode::edge,
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

void Reactor::post(std::function<void()> command) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(command));
    has_posted_.store(true, std::memory_order_release);
  }
  engine_->wake();
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
