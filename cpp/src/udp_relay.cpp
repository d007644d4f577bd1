// The FaultProxy's UDP relay: one upstream socket per client address (so replies find their way
// back), and per client and direction a DatagramSchedule that rolls each datagram's fate
// (dropped, duplicated, delayed, held back) and says when the survivors go.
#include <algorithm>
#include <memory>
#include <string>
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
    for (auto& flow : flows_)
      for (auto& schedule : flow->schedules)
        if (auto due = schedule.next_due()) next = next ? std::min(*next, *due) : *due;
    if (!next) return std::nullopt;
    return std::max(0ns, std::chrono::duration_cast<std::chrono::nanoseconds>(*next - Clock::now()));
  }

  // A client's upstream socket is registered with its Flow's address as the token; token 0 is
  // the listener's, or an event a removal invalidated (poller_epoll.cpp, comment 7).
  void on_ready(const Event& event) override {
    if (event.fd == listener_.fd()) return read_datagrams();
    if (event.token) read_replies(*reinterpret_cast<Flow*>(static_cast<uintptr_t>(event.token)));
  }

  void after_events() override {
    for (auto& flow : flows_) {
      send_due(*flow, kUpstream);
      send_due(*flow, kDownstream);
    }
  }

  void reset_all() override {}  // datagrams have no connection to reset

  void close_all() override {  // down: each client's upstream socket goes, and what waited
    for (auto& flow : flows_) poller_.remove(flow->server.fd());
    flows_.clear();
  }

 private:
  struct Flow {  // one client: its upstream socket, and what waits to go each way
    Flow(Socket server_, Address client_) : server(std::move(server_)), client(std::move(client_)) {}
    Socket server;
    Address client;
    DatagramSchedule schedules[2];  // [kUpstream]: client -> server, [kDownstream]: server -> client
  };

  Flow& client_flow(const Address& client) {
    for (auto& entry : flows_)
      if (entry->client == client) return *entry;
    auto entry = std::make_unique<Flow>(Socket(family_of(upstream_), SOCK_DGRAM), client);
    entry->server.set_timeout(0ns);
    entry->server.connect(upstream_);
    poller_.add(entry->server.fd(), Ready::readable, Mode::edge, reinterpret_cast<uintptr_t>(entry.get()));
    flows_.push_back(std::move(entry));
    return *flows_.back();
  }

  void relay_datagram(Flow& flow, std::string data, int direction) {
    if (controls_.black_hole()) {  // everything in, nothing out
      ++controls_.counters.datagrams;
      ++controls_.counters.dropped;
      return;
    }
    auto fate = flow.schedules[direction].arrive(std::move(data), controls_.faults(direction), Clock::now(), random_);
    ++controls_.counters.datagrams;
    if (fate.dropped) ++controls_.counters.dropped;
    if (fate.duplicated) ++controls_.counters.duplicated;
    if (fate.reordered) ++controls_.counters.reordered;
    send_due(flow, direction);
  }

  void send_due(Flow& flow, int direction) {
    auto now = Clock::now();
    while (auto data = flow.schedules[direction].pop_due(now)) {
      try {
        if (direction == kUpstream) flow.server.send_now(data->data(), data->size());
        else listener_.send_to(data->data(), data->size(), 0, flow.client);
        controls_.count_bytes(direction, data->size());
      } catch (const Error&) {
        // UDP: a datagram that cannot go is lost, as on a real network
      }
    }
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
      // The upstream socket is made now, so replies have somewhere to come to.
      relay_datagram(client_flow(*got->second), std::string(buffer, got->first), kUpstream);
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
      relay_datagram(flow, std::string(buffer, *n), kDownstream);
    }
  }

  std::vector<std::unique_ptr<Flow>> flows_;
};

}  // namespace

std::unique_ptr<FaultRelay> make_udp_relay(Poller& poller, Socket listener, Address upstream, FaultControls& controls) {
  return std::make_unique<UdpRelay>(poller, std::move(listener), std::move(upstream), controls);
}

}  // namespace socketeer
