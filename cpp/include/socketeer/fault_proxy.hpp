// FaultProxy: a TCP or UDP proxy in its own thread that injects faults between a client and a
// real upstream, for tests (toxiproxy's idea, in process and with UDP).
//
// Faults are set per direction (upstream = client to server, downstream = server to client)
// and may change while connections are open: each piece of data is scheduled with the faults
// in force when it was read. A fault set's `probability` is rolled once per connection (TCP)
// or per datagram (UDP): with 0.5, about half the connections see the faults at all.
//
//   latency + jitter   every piece is held for latency +- jitter (order is kept)
//   bandwidth          bytes per second, paced in slices of at most 10 ms worth
//   slice              pieces are cut into `slice_size` bytes, `slice_delay` apart
//   reset_after        after N bytes in this direction, both sides get a reset (RST)
//   close_after        after N bytes in this direction, both sides get a close (FIN; a sender
//                      still sending gets a RST, as from any peer that closed)
//                      With either, the sender's socket goes at once, the receiver's only once
//                      it has all N bytes: the proxy waits for its send queue to empty. A
//                      receiver that takes nothing for 2 s gets its end anyway, and loses what
//                      it had not taken.
//   half_close         the receiving side of this direction gets a FIN at once; the other
//                      direction keeps flowing
//   slow_close         the FIN that follows the source's end waits this long (toxiproxy's
//                      slow_close)
//   timeout            data stops (held where it is, nothing read or sent) and, after this
//                      long, the connection closes; 0: it never closes, and the data flows on
//                      once the fault goes (toxiproxy's timeout). Existing connections too.
//   black_hole         (global) new connections are accepted, then nothing: no upstream, no
//                      data; existing ones stop relaying (data held, as with timeout 0) until
//                      it is lifted. UDP: every datagram is dropped.
//   enabled            (global) down: the listener is closed (connecting is refused) and every
//                      connection closed; up: listening again on the same address (toxiproxy's
//                      enabled=false / true)
//   drop / duplicate / reorder   UDP: per datagram (reorder: a datagram held back goes right
//                      after the next one; see DatagramSchedule)
//
// Faults a transport has no use for are refused (InvalidArgument): drop, duplicate and reorder
// on TCP; bandwidth, slice, reset_after, close_after, half_close, slow_close and timeout on UDP.
// (toxiproxy's limit_data is close_after: the Python API has it under both names.)
//
// Three pieces: the fault schedule decides (fault_schedule.hpp, pure), a relay per transport
// moves the data (fault_relay.hpp), and this class runs the relay in its thread.
#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "socketeer/address.hpp"
#include "socketeer/fault_relay.hpp"
#include "socketeer/fault_schedule.hpp"
#include "socketeer/socket.hpp"

namespace socketeer {

class FaultProxy {
 public:
  enum Direction { upstream = kUpstream, downstream = kDownstream };
  // listener: a bound socket (listening for TCP; a datagram socket for UDP), taken over.
  FaultProxy(Socket listener, Address upstream_address);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  Address local_address() const { return local_; }
  const Address& upstream_address() const { return upstream_; }
  bool datagram() const { return datagram_; }

  void start();  // the proxy thread
  void stop();   // joins it; open connections are reset
  // Down (false): stops listening and closes every connection; up (true): listens again on the
  // same address (throws, staying down, if the address was taken meanwhile). Synchronous: once
  // it returns, connecting is refused (down) or accepted (up).
  void set_enabled(bool enabled);
  bool enabled() const;
  void close();  // stop(), then close the listener and every other fd; only the addresses stay
  bool running() const { return thread_.joinable(); }
  bool closed() const { return !loop_; }

  Faults faults(Direction direction) const;
  void set_faults(Direction direction, const Faults& faults);
  bool black_hole() const;
  void set_black_hole(bool enabled);
  FaultProxyStats stats() const;

 private:
  struct Loop;
  Loop& loop() const;  // throws EBADF once closed
  void halt();         // joins the thread, connections left as they are
  Socket new_listener() const;
  Address upstream_;
  Address local_;
  bool datagram_;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace socketeer
