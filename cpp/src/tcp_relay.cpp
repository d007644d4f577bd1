// The FaultProxy's TCP relay: accepts clients, connects each to the upstream, and moves the bytes
// of each direction as its StreamSchedule says. While no fault shapes a direction, its bytes go
// socket -> pipe -> socket with splice(2), never copied into user space; otherwise they are read
// into the schedule's queue and written when due.
#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <climits>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "socketeer/error.hpp"
#include "socketeer/fault_relay.hpp"
#include "socketeer/fd.hpp"
#include "socketeer/interrupt.hpp"
#include "socketeer/sigpipe.hpp"

namespace socketeer {
namespace {

using namespace std::chrono_literals;
using End = StreamSchedule::End;

constexpr size_t kReadSize = 256 * 1024;
constexpr size_t kQueueLimit = 4 * 1024 * 1024;  // per direction: stop reading above this
constexpr size_t kPipeSize = 1024 * 1024;
// reset_after / close_after: the receiver's last bytes must leave our send queue before the
// socket goes (a RST, or a close() with unread input, which is one, would discard them). The queue is looked at after 1 ms, then ever less often up to every 10 ms; a
// receiver that takes nothing for kDrainStall is reset anyway.
constexpr std::chrono::milliseconds kFirstLook{1}, kLastLook{10};
constexpr std::chrono::seconds kDrainStall{2};

// A pipe for splice(): bytes move socket -> pipe -> socket as page references, never copied
// into user space. Used only while no fault shapes the data in that direction.
struct SplicePipe {
  Fd read_end, write_end;
  size_t held = 0;  // bytes in the pipe, not yet sent on

  SplicePipe() {
    int fds[2];
    check(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), "pipe2");
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
    ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(kPipeSize));  // best effort: the default is 64 KiB
  }
};

// One splice(2); nullopt when it would block, 0 at end of stream. splice has no MSG_NOSIGNAL:
// into a socket whose peer is gone it raises SIGPIPE, which the guard takes back.
std::optional<size_t> splice_now(int from, int to, size_t size) {
  SigpipeGuard guard;
  ssize_t n = retry_eintr([&] { return ::splice(from, nullptr, to, nullptr, size, SPLICE_F_MOVE | SPLICE_F_NONBLOCK); });
  if (n >= 0) return static_cast<size_t>(n);
  if (errno == EAGAIN) return std::nullopt;
  if (errno == EPIPE) guard.consume();
  throw_error(errno, "splice");
}

void reset_socket(Socket& socket) {
  if (socket.closed()) return;
  linger hard{1, 0};
  try {
    socket.set_option_bytes(SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  } catch (const Error&) {
  }
  socket.close();
}

class TcpRelay final : public FaultRelay {
 public:
  using FaultRelay::FaultRelay;

  Timeout timeout() const override {
    if (!read_later_.empty()) return 0ns;
    std::optional<TimePoint> next;
    auto consider = [&](TimePoint t) { next = next ? std::min(*next, t) : t; };
    for (auto& [id, pair] : pairs_) {
      if (pair->drain) consider(pair->drain->next_look);
      for (auto& flow : pair->flows) {
        if (auto due = flow.schedule.next_due(); due && !flow.hold.held()) consider(*due);
        if (auto expiry = flow.hold.expiry()) consider(*expiry);
      }
    }
    if (!next) return std::nullopt;
    return std::max(0ns, std::chrono::duration_cast<std::chrono::nanoseconds>(*next - Clock::now()));
  }

  // A connection's socket is registered with its pair's address as the token, and its side in
  // the low bit; token 0 is the listener's, or an event a removal invalidated (poller_epoll.cpp,
  // comment 7: a pair killed earlier in the batch, whose fd numbers a new pair may have taken).
  void on_ready(const Event& event) override {
    if (event.fd == listener_.fd()) return accept_all();
    if (event.token)
      on_event(*reinterpret_cast<Pair*>(static_cast<uintptr_t>(event.token & ~uint64_t{1})),
               static_cast<int>(event.token & 1), event.events);
  }

  void after_events() override {
    auto again = std::move(read_later_);
    read_later_.clear();
    for (uint64_t id : again) {
      auto it = pairs_.find(id);
      if (it != pairs_.end() && !it->second->dead && it->second->connected && !it->second->drain) {
        read(*it->second, kUpstream);
        read(*it->second, kDownstream);
      }
    }
    auto now = Clock::now();
    for (auto& [id, pair] : pairs_) {
      if (pair->seen != controls_.version() || pair->flows[0].hold.held() || pair->flows[1].hold.held())
        update_holds(*pair, now);
      write(*pair, kUpstream);
      write(*pair, kDownstream);
      if (pair->drain && !pair->dead) look_at_drain(*pair, now);
    }
    for (auto it = pairs_.begin(); it != pairs_.end();) it = it->second->dead ? pairs_.erase(it) : std::next(it);
  }

  void reset_all() override {
    for (auto& [id, pair] : pairs_) kill(*pair, true);
    pairs_.clear();
  }

  void close_all() override {
    for (auto& [id, pair] : pairs_) kill(*pair, false);
    pairs_.clear();
  }

 private:
  struct Flow {  // one direction of one connection
    StreamSchedule schedule;
    bool source_done = false;
    bool shut = false;    // FIN sent to the receiver
    bool paused = false;  // stopped reading at kQueueLimit: read again once it drains
    StreamHold hold;      // timeout / black hole: nothing read or sent while held
    std::unique_ptr<SplicePipe> pipe;  // the zero-copy path, made on first use
  };

  struct Drain {  // reset/close_after reached: the sender is gone, the receiver drains first
    int receiver;        // its side: 0 client, 1 server
    bool reset;          // then a RST; else a close (its FIN is queued behind the data)
    int unsent;          // its send queue at the last look (SIOCOUTQ: unsent + unacknowledged)
    TimePoint progress;  // when that last went down
    TimePoint next_look;
    std::chrono::milliseconds interval;
  };

  struct Pair {
    Pair(uint64_t id_, Socket client_) : id(id_), client(std::move(client_)) {}
    uint64_t id;
    Socket client;
    std::optional<Socket> server;
    bool connected = false;
    bool silent = false;  // black hole
    bool dead = false;
    uint64_t seen = 0;  // the controls' version its holds were last updated for
    std::optional<Drain> drain;  // nothing more is relayed
    Flow flows[2];  // [kUpstream]: client -> server, [kDownstream]: server -> client
  };

  Socket& side(Pair& pair, int which) { return which == 0 ? pair.client : *pair.server; }
  static uint64_t token_of(Pair& pair, int which) {
    static_assert(alignof(Pair) > 1, "the side's bit of a token must be free in the address");
    return reinterpret_cast<uintptr_t>(&pair) | static_cast<uint64_t>(which);
  }

  void accept_all() {
    for (;;) {
      std::optional<std::pair<Socket, Address>> accepted;
      try {
        accepted = listener_.accept();
      } catch (const Error&) {
        return;  // out of fds and the like: the next edge retries
      }
      if (!accepted) return;
      auto pair = std::make_unique<Pair>(next_id_++, std::move(accepted->first));
      pair->client.set_timeout(0ns);
      pair->silent = controls_.black_hole();
      for (int d = 0; d < 2; ++d) pair->flows[d].schedule = StreamSchedule(roll(random_, controls_.faults(d).probability));
      ++controls_.counters.connections;
      ++controls_.counters.active;
      if (!pair->silent) {
        // Non-blocking connect: writable once the handshake is done, SO_ERROR says how.
        pair->server.emplace(family_of(upstream_), SOCK_STREAM);
        pair->server->set_timeout(0ns);
        if (::connect(pair->server->fd(), sockaddr_of(upstream_), length_of(upstream_)) < 0 && errno != EINPROGRESS) {
          controls_.count_connect_error(errno);
          reset_socket(pair->client);
          pair->dead = true;
          --controls_.counters.active;  // kill() does this for the pairs that got further
        } else {
          poller_.add(pair->server->fd(), Ready::readable | Ready::writable | Ready::read_closed, Mode::edge,
                      token_of(*pair, 1));
          poller_.add(pair->client.fd(), Ready::readable | Ready::writable | Ready::read_closed, Mode::edge,
                      token_of(*pair, 0));
        }
      }
      pairs_.emplace(pair->id, std::move(pair));
    }
  }

  void on_event(Pair& pair, int which, uint32_t events) {
    if (pair.dead) return;
    if (pair.drain) {  // the receiver's data and FIN go nowhere now; only its reset matters
      if (events & Ready::error) kill(pair, pair.drain->reset);
      return;
    }
    if (which == 1 && !pair.connected) {
      if (!(events & (Ready::writable | Ready::error | Ready::hangup))) return;
      int code = pair.server->get_option(SOL_SOCKET, SO_ERROR);
      if (code != 0) {
        controls_.count_connect_error(code);
        return kill(pair, true);
      }
      pair.connected = true;
      update_holds(pair, Clock::now());
      apply_half_close(pair);
      read(pair, kUpstream);
      read(pair, kDownstream);
      return;
    }
    if (!pair.connected) return;
    // Data read from side `which` flows in direction `which` (0 = client -> upstream).
    read(pair, which);
    if (!pair.dead) write(pair, 1 - which);
  }

  // timeout and black hole, for this connection now: held directions stop, a timeout that has
  // run out closes it, and a direction let go reads on (edge-triggered: what waited in the
  // kernel raises no new event).
  void update_holds(Pair& pair, TimePoint now) {
    if (pair.dead || !pair.connected || pair.drain) return;
    pair.seen = controls_.version();
    bool black_hole = controls_.black_hole();
    for (int d = 0; d < 2; ++d) {
      Flow& flow = pair.flows[d];
      bool was_held = flow.hold.held();
      auto state = flow.hold.update(controls_.faults(d), flow.schedule.faulty(), black_hole, now);
      if (state == StreamHold::State::expired) return kill(pair, false);
      if (was_held && state == StreamHold::State::flowing) read(pair, d);
      if (pair.dead) return;
    }
  }

  // Whether direction `direction` may move data now (faults changed since its holds were updated: update them).
  bool flowing(Pair& pair, int direction) {
    if (pair.seen != controls_.version()) update_holds(pair, Clock::now());
    return !pair.dead && !pair.flows[direction].hold.held();
  }

  void apply_half_close(Pair& pair) {
    for (int d = 0; d < 2; ++d) {
      Flow& flow = pair.flows[d];
      if (flow.schedule.faulty() && controls_.faults(d).half_close && !flow.shut) {
        flow.shut = true;
        try {
          side(pair, 1 - d).shutdown(SHUT_WR);
        } catch (const Error&) {
        }
      }
    }
  }

  // Sends on what the pipe holds; false while some is left (the receiver is full).
  bool drain_pipe(Pair& pair, int direction) {
    Flow& flow = pair.flows[direction];
    if (!flow.pipe) return true;
    SplicePipe& pipe = *flow.pipe;
    while (pipe.held > 0) {
      auto sent = splice_now(pipe.read_end.get(), side(pair, 1 - direction).fd(), pipe.held);
      if (!sent) return false;  // its writable edge continues
      pipe.held -= *sent;
      flow.schedule.passed(*sent);
      controls_.count_bytes(direction, *sent);
    }
    return true;
  }

  // The zero-copy path: while nothing is queued and no fault shapes the bytes, splice them
  // through a pipe. Returns false to fall back to recv/send (faults, or queued data that the
  // new bytes must stay behind).
  bool splice_through(Pair& pair, int direction) {
    Flow& flow = pair.flows[direction];
    if (!flow.schedule.direct(controls_.faults(direction))) return false;
    if (!flow.pipe) flow.pipe = std::make_unique<SplicePipe>();
    try {
      while (flowing(pair, direction) && drain_pipe(pair, direction) && !flow.source_done) {
        auto got = splice_now(side(pair, direction).fd(), flow.pipe->write_end.get(), kPipeSize);
        if (!got) break;  // drained
        if (*got == 0) flow.source_done = true;
        flow.pipe->held += *got;
      }
    } catch (const Error&) {
      kill(pair, true);
    }
    return true;
  }

  void read(Pair& pair, int direction) {
    if (!flowing(pair, direction)) return;
    Flow& flow = pair.flows[direction];
    Socket& source = side(pair, direction);
    Socket& target = side(pair, 1 - direction);
    if (splice_through(pair, direction)) return write(pair, direction);
    // flowing() each time round: a hold set while this loop runs applies from the next read.
    while (flowing(pair, direction) && !flow.source_done && flow.schedule.end() == End::none &&
           flow.schedule.queued() < kQueueLimit) {
      std::optional<size_t> n;
      try {
        n = source.recv_now(scratch_.data(), scratch_.size());
      } catch (const Error&) {
        return kill(pair, true);  // reset by the peer: pass the reset on
      }
      if (!n) break;
      if (*n == 0) {
        flow.source_done = true;
        break;
      }
      Faults faults = controls_.faults(direction);
      size_t offset = 0;
      // Fast path: nothing queued and no fault shaping the bytes: send straight on, and queue
      // only what the receiver could not take now.
      if (flow.schedule.direct(faults)) {
        std::optional<size_t> sent;
        try {
          sent = target.send_now(scratch_.data(), *n);
        } catch (const Error&) {
          return kill(pair, true);
        }
        offset = sent.value_or(0);
        flow.schedule.passed(offset);
        controls_.count_bytes(direction, offset);
      }
      if (offset < *n)
        flow.schedule.arrive(std::string_view(scratch_.data() + offset, *n - offset), faults, Clock::now(), random_);
    }
    flow.paused = flow.schedule.queued() >= kQueueLimit;
    write(pair, direction);
  }

  // Sends what is due in direction `direction`, paced by the bandwidth limit.
  void write(Pair& pair, int direction) {
    if (pair.dead || !pair.connected || pair.drain || !flowing(pair, direction)) return;
    Flow& flow = pair.flows[direction];
    Socket& target = side(pair, 1 - direction);
    Faults faults = controls_.faults(direction);
    auto now = Clock::now();
    if (flow.pipe) {
      try {
        if (!drain_pipe(pair, direction)) return;  // spliced bytes go before anything queued later
      } catch (const Error&) {
        return kill(pair, true);
      }
      // Edge-triggered: the source was left undrained when the receiver filled up, and will
      // raise no new event for those bytes; go on splicing now that there is room.
      if (flow.schedule.queued() == 0 && !flow.source_done && splice_through(pair, direction) &&
          (pair.dead || flow.pipe->held > 0))
        return;
    }
    for (;;) {
      std::string_view due = flow.schedule.sendable(faults, now);
      if (due.empty()) break;
      std::optional<size_t> sent;
      try {
        sent = target.send_now(due.data(), due.size());
      } catch (const Error&) {
        return kill(pair, true);
      }
      if (!sent) return;  // full: the next writable edge continues
      flow.schedule.sent(*sent, faults, now);
      controls_.count_bytes(direction, *sent);
    }
    if (flow.schedule.queued() > 0) return;  // the rest is not due yet
    if (flow.schedule.end() != End::none) return end_when_drained(pair, direction, flow.schedule.end() == End::reset);
    if (flow.source_done && !flow.shut && flow.schedule.fin_due(faults, now)) {  // slow_close may hold it
      flow.shut = true;
      try {
        target.shutdown(SHUT_WR);
      } catch (const Error&) {
      }
    }
    if (pair.flows[0].shut && pair.flows[1].shut && pair.flows[0].source_done && pair.flows[1].source_done)
      kill(pair, false);
    else if (flow.paused && flow.schedule.queued() < kQueueLimit / 2) {
      flow.paused = false;
      read_later_.push_back(pair.id);  // edge-triggered: the data it left unread raises no new event
    }
  }

  // The last byte reset/close_after lets through is written, but a RST now would discard what
  // is still in our send queue, and so would a close() with unread input: the receiver would get
  // fewer than N bytes. So the sender goes at once (reset, or closed), and the receiver once the
  // queue is empty (all N bytes, and for a close the FIN, acknowledged by its kernel), or once it
  // has taken nothing for kDrainStall (it is not reading: what it had not taken is lost).
  void end_when_drained(Pair& pair, int direction, bool reset) {
    int sender = direction;
    Socket& socket = side(pair, sender);
    poller_.remove(socket.fd());
    if (reset) {
      reset_socket(socket);
    } else {
      socket.close();
      try {
        side(pair, 1 - sender).shutdown(SHUT_WR);  // the receiver's FIN, queued behind the data
      } catch (const Error&) {
      }
    }
    auto now = Clock::now();
    pair.drain = Drain{1 - sender, reset, INT_MAX, now, now, kFirstLook};
    look_at_drain(pair, now);
  }

  void look_at_drain(Pair& pair, TimePoint now) {
    Drain& drain = *pair.drain;
    if (now < drain.next_look) return;
    int unsent = 0;
    if (::ioctl(side(pair, drain.receiver).fd(), SIOCOUTQ, &unsent) < 0 || unsent == 0) return kill(pair, drain.reset);
    if (unsent < drain.unsent) {
      drain.unsent = unsent;
      drain.progress = now;
    } else if (now - drain.progress >= kDrainStall) {
      return kill(pair, drain.reset);
    }
    drain.next_look = now + drain.interval;
    drain.interval = std::min(drain.interval * 2, kLastLook);
  }

  void kill(Pair& pair, bool reset) {
    if (pair.dead) return;
    pair.dead = true;
    for (Socket* socket : {&pair.client, pair.server ? &*pair.server : nullptr}) {
      if (!socket || socket->closed()) continue;
      poller_.remove(socket->fd());
      if (reset) reset_socket(*socket);
      else socket->close();
    }
    --controls_.counters.active;
  }

  uint64_t next_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Pair>> pairs_;
  std::vector<uint64_t> read_later_;
  std::vector<char> scratch_ = std::vector<char>(kReadSize);
};

}  // namespace

std::unique_ptr<FaultRelay> make_tcp_relay(Poller& poller, Socket listener, Address upstream, FaultControls& controls) {
  return std::make_unique<TcpRelay>(poller, std::move(listener), std::move(upstream), controls);
}

}  // namespace socketeer
