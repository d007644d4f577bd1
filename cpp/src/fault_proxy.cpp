#include "socketeer/fault_proxy.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "socketeer/error.hpp"
#include "socketeer/fd.hpp"
#include "socketeer/interrupt.hpp"
#include "socketeer/poller.hpp"

namespace socketeer {
namespace {

using namespace std::chrono_literals;
using TimePoint = Clock::time_point;

constexpr size_t kReadSize = 256 * 1024;
constexpr size_t kQueueLimit = 4 * 1024 * 1024;  // per direction: stop reading above this
constexpr auto kPacingSlice = 10ms;              // bandwidth is paced in slices this long
constexpr auto kReorderHold = 50ms;              // a held-back datagram waits at most this

constexpr size_t kPipeSize = 1024 * 1024;

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

// One splice(2); nullopt when it would block, 0 at end of stream.
std::optional<size_t> splice_now(int from, int to, size_t size) {
  ssize_t n = retry_eintr([&] { return ::splice(from, nullptr, to, nullptr, size, SPLICE_F_MOVE | SPLICE_F_NONBLOCK); });
  if (n >= 0) return static_cast<size_t>(n);
  if (errno == EAGAIN) return std::nullopt;
  throw_error(errno, "splice");
}

struct Piece {
  std::string data;
  size_t offset = 0;
  TimePoint due;
};

void reset_socket(Socket& socket) {
  if (socket.closed()) return;
  linger hard{1, 0};
  try {
    socket.set_option_bytes(SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  } catch (const Error&) {
  }
  socket.close();
}

}  // namespace

struct FaultProxy::Loop {
  struct Flow {  // one direction of one connection
    std::deque<Piece> queue;
    size_t queued = 0;
    uint64_t read = 0;  // bytes taken from the source (what reset/close_after count)
    TimePoint last_due{};
    TimePoint next_send{};  // bandwidth pacing
    bool faulty = true;     // the probability roll for this connection
    bool source_done = false;
    bool reset_when_sent = false;
    bool close_when_sent = false;
    bool shut = false;      // FIN sent to the receiver
    bool paused = false;    // stopped reading at kQueueLimit: read again once it drains
    std::unique_ptr<SplicePipe> pipe;  // the zero-copy path, made on first use
  };

  struct Pair {
    Pair(uint64_t id_, Socket client_) : id(id_), client(std::move(client_)) {}
    uint64_t id;
    Socket client;
    std::optional<Socket> server;
    bool connected = false;
    bool silent = false;  // black hole
    bool dead = false;
    Flow flows[2];  // [upstream]: client -> server, [downstream]: server -> client
  };

  struct Datagram {  // UDP: one upstream socket per client address
    Socket server;
    Address client;
  };

  struct HeldDatagram {
    std::string data;
    Address client;
    int direction;
    TimePoint due;
  };

  Loop(Socket listener_socket, Address upstream_address)
      : listener(std::move(listener_socket)), server_address(std::move(upstream_address)),
        datagram(listener.type() == SOCK_DGRAM), random(std::random_device{}()) {
    listener.set_timeout(0ns);
    poller.add(listener.fd(), Ready::readable, Mode::edge);
  }

  Poller poller;
  Socket listener;
  Address server_address;  // the real server the proxy stands in front of
  bool datagram;
  std::mt19937_64 random;
  std::atomic<bool> stopping{false};

  mutable std::mutex settings_mutex;
  Faults settings[2];
  bool black_hole = false;
  mutable std::mutex stats_mutex;
  FaultProxyStats stats;

  uint64_t next_id = 1;
  std::map<uint64_t, std::unique_ptr<Pair>> pairs;
  std::unordered_map<int, std::pair<Pair*, int>> by_fd;  // fd -> (pair, side 0 client / 1 server)
  std::vector<std::unique_ptr<Datagram>> datagram_clients;
  std::unordered_map<int, Datagram*> datagram_by_fd;
  std::vector<HeldDatagram> held;  // UDP pieces waiting for latency or reordering

  Faults current(int direction) {
    std::lock_guard lock(settings_mutex);
    return settings[direction];
  }

  bool roll(double probability) {
    if (probability >= 1.0) return true;
    if (probability <= 0.0) return false;
    return std::uniform_real_distribution<double>(0, 1)(random) < probability;
  }

  TimePoint schedule(Flow& flow, const Faults& faults, TimePoint now) {
    auto delay = flow.faulty ? faults.latency : 0ns;
    if (flow.faulty && faults.jitter > 0ns) {
      auto jitter = std::uniform_int_distribution<int64_t>(-faults.jitter.count(), faults.jitter.count())(random);
      delay = std::max(0ns, delay + std::chrono::nanoseconds(jitter));
    }
    return std::max(now + delay, flow.last_due);  // jitter never reorders a stream
  }

  void count(int direction, uint64_t bytes) {
    std::lock_guard lock(stats_mutex);
    (direction == upstream ? stats.upstream_bytes : stats.downstream_bytes) += bytes;
  }

  // --- TCP ---------------------------------------------------------------------------------

  void accept_all() {
    for (;;) {
      std::optional<std::pair<Socket, Address>> accepted;
      try {
        accepted = listener.accept();
      } catch (const Error&) {
        return;  // out of fds and the like: the next edge retries
      }
      if (!accepted) return;
      auto pair = std::make_unique<Pair>(next_id++, std::move(accepted->first));
      pair->client.set_timeout(0ns);
      {
        std::lock_guard lock(settings_mutex);
        pair->silent = black_hole;
        for (int d = 0; d < 2; ++d) pair->flows[d].faulty = roll(settings[d].probability);
      }
      {
        std::lock_guard lock(stats_mutex);
        ++stats.connections;
        ++stats.active;
      }
      if (!pair->silent) {
        // Non-blocking connect: writable once the handshake is done, SO_ERROR says how.
        pair->server.emplace(family_of(server_address), SOCK_STREAM);
        pair->server->set_timeout(0ns);
        if (::connect(pair->server->fd(), sockaddr_of(server_address), length_of(server_address)) < 0 && errno != EINPROGRESS) {
          reset_socket(pair->client);
          pair->dead = true;
        } else {
          poller.add(pair->server->fd(), Ready::readable | Ready::writable | Ready::read_closed, Mode::edge);
          by_fd[pair->server->fd()] = {pair.get(), 1};
          poller.add(pair->client.fd(), Ready::readable | Ready::writable | Ready::read_closed, Mode::edge);
          by_fd[pair->client.fd()] = {pair.get(), 0};
        }
      }
      pairs.emplace(pair->id, std::move(pair));
    }
  }

  Socket& side(Pair& pair, int which) { return which == 0 ? pair.client : *pair.server; }

  void on_event(Pair& pair, int which, uint32_t events) {
    if (pair.dead) return;
    if (which == 1 && !pair.connected) {
      if (!(events & (Ready::writable | Ready::error | Ready::hangup))) return;
      int code = pair.server->get_option(SOL_SOCKET, SO_ERROR);
      if (code != 0) return kill(pair, true);
      pair.connected = true;
      apply_half_close(pair);
      read(pair, upstream);
      read(pair, downstream);
      return;
    }
    if (!pair.connected) return;
    // Data read from side `which` flows in direction `which` (0 = client -> upstream).
    read(pair, which);
    if (!pair.dead) write(pair, 1 - which);
  }

  void apply_half_close(Pair& pair) {
    for (int d = 0; d < 2; ++d) {
      Flow& flow = pair.flows[d];
      if (flow.faulty && current(d).half_close && !flow.shut) {
        flow.shut = true;
        try {
          side(pair, 1 - d).shutdown(SHUT_WR);
        } catch (const Error&) {
        }
      }
    }
  }

  // Faults that change what happens to bytes in flight (not just connection set-up).
  static bool shapes_data(const Faults& f) {
    return f.latency > 0ns || f.jitter > 0ns || f.bandwidth || f.slice_size || f.reset_after >= 0 ||
           f.close_after >= 0;
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
      flow.read += *sent;
      count(direction, *sent);
    }
    return true;
  }

  // The zero-copy path: while nothing is queued and no fault shapes the bytes, splice them
  // through a pipe. Returns false to fall back to recv/send (faults, or queued data that the
  // new bytes must stay behind).
  bool splice_through(Pair& pair, int direction) {
    Flow& flow = pair.flows[direction];
    if (!flow.queue.empty() || (flow.faulty && shapes_data(current(direction)))) return false;
    if (!flow.pipe) flow.pipe = std::make_unique<SplicePipe>();
    try {
      while (drain_pipe(pair, direction) && !flow.source_done) {
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
    Flow& flow = pair.flows[direction];
    Socket& source = side(pair, direction);
    Socket& target = side(pair, 1 - direction);
    if (splice_through(pair, direction)) return write(pair, direction);
    while (!pair.dead && !flow.source_done && !flow.reset_when_sent && !flow.close_when_sent &&
           flow.queued < kQueueLimit) {
      std::optional<size_t> n;
      try {
        n = source.recv_now(scratch.data(), scratch.size());
      } catch (const Error&) {
        return kill(pair, true);  // reset by the peer: pass the reset on
      }
      if (!n) break;
      if (*n == 0) {
        flow.source_done = true;
        break;
      }
      size_t offset = 0;
      // Fast path: nothing queued and no fault shaping the bytes: send straight on, and queue
      // only what the receiver could not take now.
      if (flow.queue.empty() && !(flow.faulty && shapes_data(current(direction)))) {
        std::optional<size_t> sent;
        try {
          sent = target.send_now(scratch.data(), *n);
        } catch (const Error&) {
          return kill(pair, true);
        }
        offset = sent.value_or(0);
        flow.read += offset;
        count(direction, offset);
      }
      if (offset < *n) enqueue(flow, direction, std::string(scratch.data() + offset, *n - offset));
    }
    flow.paused = flow.queued >= kQueueLimit;
    write(pair, direction);
  }

  std::vector<char> scratch = std::vector<char>(kReadSize);

  void enqueue(Flow& flow, int direction, std::string data) {
    Faults faults = current(direction);
    bool faulty = flow.faulty;
    int64_t limit = -1;
    if (faulty && faults.reset_after >= 0) limit = faults.reset_after;
    if (faulty && faults.close_after >= 0 && (limit < 0 || faults.close_after < limit)) limit = faults.close_after;
    if (limit >= 0 && flow.read + data.size() >= static_cast<uint64_t>(limit)) {
      data.resize(static_cast<size_t>(limit) - std::min<uint64_t>(flow.read, limit));
      if (faults.reset_after >= 0 && limit == faults.reset_after) flow.reset_when_sent = true;
      else flow.close_when_sent = true;
    }
    flow.read += data.size();
    auto now = Clock::now();
    TimePoint due = schedule(flow, faults, now);
    size_t slice = faulty && faults.slice_size ? faults.slice_size : data.size();
    for (size_t offset = 0; offset < data.size(); offset += slice) {
      Piece piece{slice >= data.size() ? std::move(data) : data.substr(offset, slice), 0, due};
      flow.queued += piece.data.size();
      flow.queue.push_back(std::move(piece));
      flow.last_due = due;
      if (faulty) due += faults.slice_delay;
    }
  }

  // Sends what is due in direction `direction`, paced by the bandwidth limit.
  void write(Pair& pair, int direction) {
    if (pair.dead || !pair.connected) return;
    Flow& flow = pair.flows[direction];
    Socket& target = side(pair, 1 - direction);
    Faults faults = current(direction);
    uint64_t bandwidth = flow.faulty ? faults.bandwidth : 0;
    auto now = Clock::now();
    if (flow.pipe) {
      try {
        if (!drain_pipe(pair, direction)) return;  // spliced bytes go before anything queued later
      } catch (const Error&) {
        return kill(pair, true);
      }
      // Edge-triggered: the source was left undrained when the receiver filled up, and will
      // raise no new event for those bytes; go on splicing now that there is room.
      if (flow.queue.empty() && !flow.source_done && splice_through(pair, direction) &&
          (pair.dead || flow.pipe->held > 0))
        return;
    }
    while (!flow.queue.empty()) {
      Piece& piece = flow.queue.front();
      if (piece.due > now || (bandwidth && flow.next_send > now)) return;
      size_t size = piece.data.size() - piece.offset;
      if (bandwidth) {
        auto slice_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(kPacingSlice).count();
        size = std::min<size_t>(size, std::max<uint64_t>(1, bandwidth * static_cast<uint64_t>(slice_ns) / 1'000'000'000ULL));
      }
      std::optional<size_t> sent;
      try {
        sent = target.send_now(piece.data.data() + piece.offset, size);
      } catch (const Error&) {
        return kill(pair, true);
      }
      if (!sent) return;  // full: the next writable edge continues
      piece.offset += *sent;
      flow.queued -= *sent;
      count(direction, *sent);
      if (bandwidth) flow.next_send = std::max(flow.next_send, now) + std::chrono::nanoseconds(*sent * 1'000'000'000ULL / bandwidth);
      if (piece.offset == piece.data.size()) flow.queue.pop_front();
    }
    if (flow.reset_when_sent) return kill(pair, true);
    if (flow.close_when_sent) return kill(pair, false);
    if (flow.source_done && !flow.shut) {
      flow.shut = true;
      try {
        target.shutdown(SHUT_WR);
      } catch (const Error&) {
      }
    }
    if (pair.flows[0].shut && pair.flows[1].shut && pair.flows[0].source_done && pair.flows[1].source_done)
      kill(pair, false);
    else if (flow.paused && flow.queued < kQueueLimit / 2) {
      flow.paused = false;
      read_later.push_back(pair.id);  // edge-triggered: the data it left unread raises no new event
    }
  }

  std::vector<uint64_t> read_later;

  void kill(Pair& pair, bool reset) {
    if (pair.dead) return;
    pair.dead = true;
    for (Socket* socket : {&pair.client, pair.server ? &*pair.server : nullptr}) {
      if (!socket || socket->closed()) continue;
      poller.remove(socket->fd());
      by_fd.erase(socket->fd());
      if (reset) reset_socket(*socket);
      else socket->close();
    }
    std::lock_guard lock(stats_mutex);
    --stats.active;
  }

  // --- UDP ---------------------------------------------------------------------------------

  Datagram& client_flow(const Address& client) {
    for (auto& entry : datagram_clients)
      if (entry->client == client) return *entry;
    auto entry = std::make_unique<Datagram>(Datagram{Socket(family_of(server_address), SOCK_DGRAM), client});
    entry->server.set_timeout(0ns);
    entry->server.connect(server_address);
    poller.add(entry->server.fd(), Ready::readable, Mode::edge);
    datagram_by_fd[entry->server.fd()] = entry.get();
    datagram_clients.push_back(std::move(entry));
    return *datagram_clients.back();
  }

  void relay_datagram(std::string data, const Address& client, int direction) {
    Faults faults = current(direction);
    bool faulty = roll(faults.probability);
    {
      std::lock_guard lock(stats_mutex);
      ++stats.datagrams;
    }
    if (faulty && roll(faults.drop)) {
      std::lock_guard lock(stats_mutex);
      ++stats.dropped;
      return;
    }
    int copies = faulty && roll(faults.duplicate) ? 2 : 1;
    if (copies == 2) {
      std::lock_guard lock(stats_mutex);
      ++stats.duplicated;
    }
    auto now = Clock::now();
    auto due = now + (faulty ? faults.latency : 0ns);
    bool hold = faulty && roll(faults.reorder);
    if (hold) {
      std::lock_guard lock(stats_mutex);
      ++stats.reordered;
    }
    for (int i = 0; i < copies; ++i) {
      // A reordered datagram waits until the next one in its direction went out (or a while).
      held.push_back({data, client, direction, hold ? due + kReorderHold : due});
      if (!hold) release_reordered(direction);
    }
    send_due();
  }

  void release_reordered(int direction) {
    auto now = Clock::now();
    for (auto& item : held)
      if (item.direction == direction && item.due > now + kReorderHold / 2) item.due = now + 1ms;
  }

  void send_datagram(const HeldDatagram& item) {
    try {
      if (item.direction == upstream) {
        Datagram& flow = client_flow(item.client);
        flow.server.send_now(item.data.data(), item.data.size());
      } else {
        listener.send_to(item.data.data(), item.data.size(), 0, item.client);
      }
      count(item.direction, item.data.size());
    } catch (const Error&) {
      // UDP: a datagram that cannot go is lost, as on a real network
    }
  }

  void send_due() {
    auto now = Clock::now();
    std::stable_sort(held.begin(), held.end(), [](const auto& a, const auto& b) { return a.due < b.due; });
    size_t sent = 0;
    while (sent < held.size() && held[sent].due <= now) send_datagram(held[sent++]);
    held.erase(held.begin(), held.begin() + static_cast<std::ptrdiff_t>(sent));
  }

  void read_datagrams() {
    char buffer[65536];
    for (;;) {
      std::optional<std::pair<size_t, std::optional<Address>>> got;
      try {
        got = listener.recv_from(buffer, sizeof buffer);
      } catch (const Error&) {
        return;
      }
      if (!got) return;
      if (!got->second) continue;
      client_flow(*got->second);  // the upstream socket for replies exists before they come
      relay_datagram(std::string(buffer, got->first), *got->second, upstream);
    }
  }

  void read_replies(Datagram& flow) {
    char buffer[65536];
    for (;;) {
      std::optional<size_t> n;
      try {
        n = flow.server.recv_now(buffer, sizeof buffer);
      } catch (const Error&) {
        return;  // ICMP port unreachable from upstream: nothing to relay
      }
      if (!n) return;
      relay_datagram(std::string(buffer, *n), flow.client, downstream);
    }
  }

  // --- the loop ----------------------------------------------------------------------------

  Timeout next_timeout() {
    if (!read_later.empty()) return 0ns;
    std::optional<TimePoint> next;
    auto consider = [&](TimePoint t) { next = next ? std::min(*next, t) : t; };
    for (auto& [id, pair] : pairs) {
      for (auto& flow : pair->flows) {
        if (flow.queue.empty()) continue;
        consider(std::max(flow.queue.front().due, flow.next_send));
      }
    }
    for (auto& item : held) consider(item.due);
    if (!next) return std::nullopt;
    return std::max(0ns, std::chrono::duration_cast<std::chrono::nanoseconds>(*next - Clock::now()));
  }

  void turn() {
    for (const Event& event : poller.poll(next_timeout())) {
      if (event.fd == listener.fd()) {
        if (datagram) read_datagrams();
        else accept_all();
      } else if (auto it = by_fd.find(event.fd); it != by_fd.end()) {
        on_event(*it->second.first, it->second.second, event.events);
      } else if (auto dt = datagram_by_fd.find(event.fd); dt != datagram_by_fd.end()) {
        read_replies(*dt->second);
      }
    }
    auto again = std::move(read_later);
    read_later.clear();
    for (uint64_t id : again) {
      auto it = pairs.find(id);
      if (it != pairs.end() && !it->second->dead && it->second->connected) {
        read(*it->second, upstream);
        read(*it->second, downstream);
      }
    }
    for (auto& [id, pair] : pairs) {
      write(*pair, upstream);
      write(*pair, downstream);
    }
    for (auto it = pairs.begin(); it != pairs.end();) it = it->second->dead ? pairs.erase(it) : std::next(it);
    send_due();
  }

  void run() {
    while (!stopping.load()) turn();
    for (auto& [id, pair] : pairs) kill(*pair, true);
    pairs.clear();
  }
};

FaultProxy::FaultProxy(Socket listener, Address upstream_address)
    : upstream_(upstream_address), local_(listener.local_address()), datagram_(listener.type() == SOCK_DGRAM),
      loop_(std::make_unique<Loop>(std::move(listener), std::move(upstream_address))) {}

FaultProxy::~FaultProxy() {
  try {
    stop();
  } catch (...) {
    // A destructor must not throw (that terminates); the thread is joined either way.
  }
}

void FaultProxy::close() {
  stop();
  loop_.reset();  // the listener, epoll fd, waker and any pipes
}

FaultProxy::Loop& FaultProxy::loop() const {
  if (!loop_) throw Error(EBADF, "fault proxy", {}, "the proxy is closed");
  return *loop_;
}

void FaultProxy::start() {
  if (thread_.joinable()) throw std::logic_error("the proxy is already running");
  loop().stopping = false;
  // An exception leaving a std::thread terminates the process; a proxy whose loop failed
  // (its fds closed behind its back, say) stops instead, and its clients see resets.
  thread_ = std::thread([this] {
    try {
      loop_->run();
    } catch (...) {
    }
  });
}

void FaultProxy::stop() {
  if (!thread_.joinable()) return;
  loop_->stopping = true;
  try {
    loop_->poller.wake();
  } catch (const Error&) {
    // The waker is gone (its fd closed behind our back): the loop still sees `stopping` at
    // its next turn, so join anyway rather than leave a joinable thread (which terminates).
  }
  thread_.join();
}

Faults FaultProxy::faults(Direction direction) const {
  std::lock_guard lock(loop().settings_mutex);
  return loop_->settings[direction];
}

void FaultProxy::set_faults(Direction direction, const Faults& faults) {
  if (faults.probability < 0 || faults.probability > 1) throw InvalidArgument("probability must be within 0..1");
  for (double p : {faults.drop, faults.duplicate, faults.reorder})
    if (p < 0 || p > 1) throw InvalidArgument("drop, duplicate and reorder are probabilities within 0..1");
  if (faults.latency < 0ns || faults.jitter < 0ns || faults.slice_delay < 0ns)
    throw InvalidArgument("latency, jitter and slice delay must not be negative");
  {
    std::lock_guard lock(loop().settings_mutex);
    loop_->settings[direction] = faults;
  }
  loop_->poller.wake();  // open connections pick it up on the next turn
}

bool FaultProxy::black_hole() const {
  std::lock_guard lock(loop().settings_mutex);
  return loop_->black_hole;
}

void FaultProxy::set_black_hole(bool enabled) {
  std::lock_guard lock(loop().settings_mutex);
  loop_->black_hole = enabled;
}

FaultProxyStats FaultProxy::stats() const {
  std::lock_guard lock(loop().stats_mutex);
  return loop_->stats;
}

}  // namespace socketeer
