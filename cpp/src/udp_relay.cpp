// The FaultProxy's UDP relay: one upstream socket per client address (so replies find their way
// back), and each datagram's fate (dropped, duplicated, delayed, held back) rolled on its own.
#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "socketeer/error.hpp"
#include "socketeer/fault_relay.hpp"

namespace socketeer {
namespace {

using namespace std::chrono_literals;

class UdpRelay final : public FaultRelay {
 public:
  using FaultRelay::FaultRelay;

  Timeout timeout() const override {
    std::optional<TimePoint> next;
    for (auto& item : held_) next = next ? std::min(*next, item.due) : item.due;
    if (!next) return std::nullopt;
    return std::max(0ns, std::chrono::duration_cast<std::chrono::nanoseconds>(*next - Clock::now()));
  }

  void on_ready(const Event& event) override {
    if (event.fd == listener_.fd()) return read_datagrams();
    if (auto it = by_fd_.find(event.fd); it != by_fd_.end()) read_replies(*it->second);
  }

  void after_events() override { send_due(); }

  void reset_all() override {}  // datagrams have no connection to reset

 private:
  struct Flow {  // one client: its upstream socket
    Socket server;
    Address client;
  };

  struct HeldDatagram {
    std::string data;
    Address client;
    int direction;
    TimePoint due;
  };

  Flow& client_flow(const Address& client) {
    for (auto& entry : flows_)
      if (entry->client == client) return *entry;
    auto entry = std::make_unique<Flow>(Flow{Socket(family_of(upstream_), SOCK_DGRAM), client});
    entry->server.set_timeout(0ns);
    entry->server.connect(upstream_);
    poller_.add(entry->server.fd(), Ready::readable, Mode::edge);
    by_fd_[entry->server.fd()] = entry.get();
    flows_.push_back(std::move(entry));
    return *flows_.back();
  }

  void relay_datagram(std::string data, const Address& client, int direction) {
    DatagramFate fate = datagram_fate(controls_.faults(direction), Clock::now(), random_);
    ++controls_.counters.datagrams;
    if (fate.dropped) {
      ++controls_.counters.dropped;
      return;
    }
    if (fate.duplicated) ++controls_.counters.duplicated;
    if (fate.held) ++controls_.counters.reordered;
    for (int i = 0; i < (fate.duplicated ? 2 : 1); ++i) {
      // A reordered datagram waits until the next one in its direction went out (or a while).
      held_.push_back({data, client, direction, fate.due});
      if (!fate.held) release_reordered(direction);
    }
    send_due();
  }

  void release_reordered(int direction) {
    auto now = Clock::now();
    for (auto& item : held_)
      if (item.direction == direction && item.due > now + kReorderHold / 2) item.due = now + 1ms;
  }

  void send_datagram(const HeldDatagram& item) {
    try {
      if (item.direction == kUpstream) {
        Flow& flow = client_flow(item.client);
        flow.server.send_now(item.data.data(), item.data.size());
      } else {
        listener_.send_to(item.data.data(), item.data.size(), 0, item.client);
      }
      controls_.count_bytes(item.direction, item.data.size());
    } catch (const Error&) {
      // UDP: a datagram that cannot go is lost, as on a real network
    }
  }

  void send_due() {
    auto now = Clock::now();
    std::stable_sort(held_.begin(), held_.end(), [](const auto& a, const auto& b) { return a.due < b.due; });
    size_t sent = 0;
    while (sent < held_.size() && held_[sent].due <= now) send_datagram(held_[sent++]);
    held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(sent));
  }

  void read_datagrams() {
    char buffer[65536];
    for (;;) {
      std::optional<std::pair<size_t, std::optional<Address>>> got;
      try {
        got = listener_.recv_from(buffer, sizeof buffer);
      } catch (const Error&) {
        return;
      }
      if (!got) return;
      if (!got->second) continue;
      client_flow(*got->second);  // the upstream socket for replies exists before they come
      relay_datagram(std::string(buffer, got->first), *got->second, kUpstream);
    }
  }

  void read_replies(Flow& flow) {
    char buffer[65536];
    for (;;) {
      std::optional<size_t> n;
      try {
        n = flow.server.recv_now(buffer, sizeof buffer);
      } catch (const Error&) {
        return;  // ICMP port unreachable from upstream: nothing to relay
      }
      if (!n) return;
      relay_datagram(std::string(buffer, *n), flow.client, kDownstream);
    }
  }

  std::vector<std::unique_ptr<Flow>> flows_;
  std::unordered_map<int, Flow*> by_fd_;
  std::vector<HeldDatagram> held_;  // datagrams waiting for latency or reordering
};

}  // namespace

std::unique_ptr<FaultRelay> make_udp_relay(Poller& poller, Socket listener, Address upstream, FaultControls& controls) {
  return std::make_unique<UdpRelay>(poller, std::move(listener), std::move(upstream), controls);
}

}  // namespace socketeer
