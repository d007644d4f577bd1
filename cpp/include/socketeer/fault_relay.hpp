// The two halves of a FaultProxy's thread, apart from the thread itself: the relay that moves
// data for one transport (TCP in tcp_relay.cpp, UDP in udp_relay.cpp), and the controls it
// shares with the threads that set faults and read counters (FaultControls).
//
// A relay owns the listener and every socket it opens, registers them in the proxy's Poller,
// and asks the fault schedule (fault_schedule.hpp) what to do with each byte or datagram. The
// FaultProxy's loop is: poll(relay.timeout()), relay.on_ready(event) for each event, then
// relay.after_events(); stopping, relay.reset_all().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "socketeer/address.hpp"
#include "socketeer/fault_schedule.hpp"
#include "socketeer/poller.hpp"
#include "socketeer/socket.hpp"

namespace socketeer {

// Direction indexes (FaultProxy::Direction's values): client to server, server to client.
inline constexpr int kUpstream = 0;
inline constexpr int kDownstream = 1;

struct FaultProxyStats {
  uint64_t connections = 0, active = 0;
  uint64_t upstream_bytes = 0, downstream_bytes = 0;
  uint64_t datagrams = 0, dropped = 0, duplicated = 0, reordered = 0;
  // TCP: upstream connects that failed (the client was reset), and the errno of the last one.
  uint64_t connect_errors = 0, connect_errno = 0;
};

// What the proxy thread shares with the others: the faults in force (set from any thread, read
// by the relay each time it applies them) and the counters (bumped by the relay, read anywhere).
class FaultControls {
 public:
  Faults faults(int direction) const {
    std::lock_guard lock(mutex_);
    return faults_[direction];
  }
  void set_faults(int direction, const Faults& faults) {
    std::lock_guard lock(mutex_);
    faults_[direction] = faults;
    ++version_;
  }
  bool black_hole() const {
    std::lock_guard lock(mutex_);
    return black_hole_;
  }
  void set_black_hole(bool enabled) {
    std::lock_guard lock(mutex_);
    black_hole_ = enabled;
    ++version_;
  }
  // Bumped by every change above: a relay that saw this version has nothing new to apply.
  uint64_t version() const noexcept { return version_.load(); }

  struct Counters {
    std::atomic<uint64_t> connections{0}, active{0}, upstream_bytes{0}, downstream_bytes{0};
    std::atomic<uint64_t> datagrams{0}, dropped{0}, duplicated{0}, reordered{0};
    std::atomic<uint64_t> connect_errors{0}, connect_errno{0};
  };
  Counters counters;
  void count_connect_error(int code) {
    counters.connect_errno = uint64_t(code);  // first: a reader that sees the count sees an errno
    ++counters.connect_errors;
  }
  void count_bytes(int direction, uint64_t bytes) {
    (direction == kUpstream ? counters.upstream_bytes : counters.downstream_bytes) += bytes;
  }
  FaultProxyStats stats() const {
    return {counters.connections, counters.active, counters.upstream_bytes, counters.downstream_bytes,
            counters.datagrams,   counters.dropped, counters.duplicated,    counters.reordered,
            counters.connect_errors, counters.connect_errno};
  }

 private:
  mutable std::mutex mutex_;
  Faults faults_[2];
  bool black_hole_ = false;
  std::atomic<uint64_t> version_{0};
};

class FaultRelay {
 public:
  // Takes the listener over: non-blocking, registered edge-triggered for reading.
  FaultRelay(Poller& poller, Socket listener, Address upstream, FaultControls& controls)
      : poller_(poller), listener_(std::move(listener)), upstream_(std::move(upstream)), controls_(controls),
        random_(std::random_device{}()) {
    listen_on(Socket::take(listener_));
  }
  virtual ~FaultRelay() = default;
  // How long the loop may wait for events before after_events() has work (nullopt: no timer).
  virtual Timeout timeout() const = 0;
  // One ready fd of this relay's (the listener or any socket it opened).
  virtual void on_ready(const Event& event) = 0;
  // After each poll: sends what came due, retries what waited for room.
  virtual void after_events() = 0;
  // The proxy stops: every open connection is reset.
  virtual void reset_all() = 0;
  // The proxy goes down: every open connection is closed (FIN; a RST where input is unread).
  virtual void close_all() = 0;

  // Down: the listener is closed, so connecting gets ECONNREFUSED (a UDP client, ICMP
  // unreachable). Up again: a new listener bound to the same address takes its place.
  void stop_listening() {
    if (listener_.closed()) return;
    poller_.remove(listener_.fd());
    listener_.close();
  }
  void listen_on(Socket listener) {
    stop_listening();
    listener_ = std::move(listener);
    listener_.set_timeout(Timeout(std::chrono::nanoseconds(0)));
    poller_.add(listener_.fd(), Ready::readable, Mode::edge);
  }
  bool listening() const noexcept { return !listener_.closed(); }

 protected:
  Poller& poller_;
  Socket listener_;
  Address upstream_;  // the real server the proxy stands in front of
  FaultControls& controls_;
  FaultRandom random_;
};

// listener: bound and listening (TCP) or bound (UDP); registered in `poller` and taken over.
std::unique_ptr<FaultRelay> make_tcp_relay(Poller& poller, Socket listener, Address upstream, FaultControls& controls);
std::unique_ptr<FaultRelay> make_udp_relay(Poller& poller, Socket listener, Address upstream, FaultControls& controls);

}  // namespace socketeer
