#include "socketeer/fault_proxy.hpp"

#include <optional>
#include <stdexcept>
#include <string>

#include "socketeer/error.hpp"
#include "socketeer/poller.hpp"
#include "socketeer/sigpipe.hpp"

namespace socketeer {

using namespace std::chrono_literals;

namespace {

// A fault set that the proxy's transport has no use for (and would silently ignore), or null.
const char* meaningless_fault(const Faults& f, bool datagram) {
  if (datagram) {
    if (f.bandwidth) return "bandwidth";
    if (f.slice_size) return "slice";
    if (f.reset_after >= 0) return "reset_after";
    if (f.close_after >= 0) return "close_after";
    if (f.half_close) return "half_close";
    if (f.slow_close > 0ns) return "slow_close";
    if (f.timeout >= 0ns) return "timeout";
    return nullptr;
  }
  if (f.drop > 0) return "drop";
  if (f.duplicate > 0) return "duplicate";
  if (f.reorder > 0) return "reorder";
  return nullptr;
}

}  // namespace

// The proxy thread's state: its poller, the relay for the listener's transport, and the controls
// other threads use.
struct FaultProxy::Loop {
  Loop(Socket listener, Address upstream_address) {
    bool datagram = listener.type() == SOCK_DGRAM;
    relay = datagram ? make_udp_relay(poller, std::move(listener), std::move(upstream_address), controls)
                     : make_tcp_relay(poller, std::move(listener), std::move(upstream_address), controls);
  }

  Poller poller;
  FaultControls controls;
  std::unique_ptr<FaultRelay> relay;  // declared after what it refers to: destroyed first
  std::atomic<bool> stopping{false};

  void turn() {
    for (const Event& event : poller.poll(relay->timeout())) relay->on_ready(event);
    relay->after_events();
  }

  void run() {
    // Our thread, so SIGPIPE stays blocked for its whole life: the guard around each splice
    // (which has no MSG_NOSIGNAL) is then nested in this one and makes no syscall of its own.
    SigpipeGuard for_this_thread;
    while (!stopping.load()) turn();
  }
};

// SO_REUSEADDR before any connection is accepted (they inherit it): up() binds the address anew
// while the connections down() closed wait in TIME_WAIT on it, which only sockets that all have
// SO_REUSEADDR may do.
static Socket reusable(Socket listener) {
  listener.set_option(SOL_SOCKET, SO_REUSEADDR, 1);
  return listener;
}

FaultProxy::FaultProxy(Socket listener, Address upstream_address)
    : upstream_(upstream_address), local_(listener.local_address()), datagram_(listener.type() == SOCK_DGRAM),
      loop_(std::make_unique<Loop>(reusable(std::move(listener)), std::move(upstream_address))) {}

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
  halt();
  if (loop_) loop_->relay->reset_all();
}

void FaultProxy::halt() {
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

Faults FaultProxy::faults(Direction direction) const { return loop().controls.faults(direction); }

void FaultProxy::set_faults(Direction direction, const Faults& faults) {
  if (faults.probability < 0 || faults.probability > 1) throw InvalidArgument("probability must be within 0..1");
  for (double p : {faults.drop, faults.duplicate, faults.reorder})
    if (p < 0 || p > 1) throw InvalidArgument("drop, duplicate and reorder are probabilities within 0..1");
  if (faults.latency < 0ns || faults.jitter < 0ns || faults.slice_delay < 0ns)
    throw InvalidArgument("latency, jitter and slice delay must not be negative");
  if (const char* name = meaningless_fault(faults, datagram_))
    throw InvalidArgument(std::string(name) + " on the " + (datagram_ ? "UDP" : "TCP") + " proxy at " +
                          to_string(local_) + ": " + name +
                          (datagram_ ? " is a TCP fault (it shapes a byte stream); a UDP proxy relays datagrams"
                                     : " is a UDP fault (it acts per datagram); a TCP proxy relays a byte stream"));
  loop().controls.set_faults(direction, faults);
  loop_->poller.wake();  // open connections pick it up on the next turn
}

bool FaultProxy::black_hole() const { return loop().controls.black_hole(); }

void FaultProxy::set_black_hole(bool enabled) {
  loop().controls.set_black_hole(enabled);
  loop_->poller.wake();  // open connections are held (or let go) on the next turn
}

bool FaultProxy::enabled() const { return loop().relay->listening(); }

Socket FaultProxy::new_listener() const {
  Socket listener(family_of(local_), datagram_ ? SOCK_DGRAM : SOCK_STREAM);
  listener.set_option(SOL_SOCKET, SO_REUSEADDR, 1);
  listener.bind(local_);
  if (!datagram_) listener.listen(1024);
  return listener;
}

// The relay is changed with its thread stopped (halt, then start again): nothing races it, and
// once this returns the listener is gone (or back).
void FaultProxy::set_enabled(bool enabled) {
  FaultRelay& relay = *loop().relay;
  if (enabled == relay.listening()) return;
  std::optional<Socket> listener;
  if (enabled) listener.emplace(new_listener());  // a bind error leaves the proxy down, running
  bool was_running = running();
  halt();
  if (enabled) {
    relay.listen_on(std::move(*listener));
  } else {
    relay.stop_listening();
    relay.close_all();
  }
  if (was_running) start();
}

FaultProxyStats FaultProxy::stats() const { return loop().controls.stats(); }

}  // namespace socketeer
