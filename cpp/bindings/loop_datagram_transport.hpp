// socketeer.aio.Loop's datagram transport, the part that runs per datagram:
// _core.DatagramTransport. It holds the transport's state (closing, connection lost) beside the
// C++ DatagramTransportCore (receive batch, output queue), receives a batch per wake-up and calls
// the protocol once per datagram, sends at once and queues what the kernel could not take. The
// Python class socketeer.aio.datagram_transport.DatagramTransport (an asyncio.DatagramTransport)
// wraps it: extra info, connection_made, and asyncio's flow control (pause_writing /
// resume_writing), which this object calls when the queue crosses the water marks.
//
// Every behaviour follows the stdlib's _SelectorDatagramTransport (selector_events.py).
#pragma once

#include <array>
#include <optional>

#include "loop_transport_closing.hpp"
#include "socketeer/datagram_transport.hpp"

namespace socketeer::bindings {

class LoopDatagramTransport final : public LoopTransportClosing {
 public:
  // transport: the Python DatagramTransport; loop: the asyncio loop (its _add_reader,
  // _remove_reader, _add_writer, _remove_writer and call_soon are used); sock: the socket
  // object, which owns the fd and is closed once the connection is lost; address: the
  // connected address create_datagram_endpoint() was given, or None; connected: whether the
  // socket has a peer (then datagrams leave with send, not sendto).
  LoopDatagramTransport(py::object transport, py::object loop, py::object sock, py::object protocol,
                        py::object address, bool connected);

  void read_ready();
  void start_reading();
  void sendto(py::handle data, py::handle address);
  void write_ready();
  void flush_output();  // the loop's end-of-turn flush
  // The write-buffer high-water mark (set_write_buffer_limits): above it, pause_writing().
  void set_high_water(size_t high) { high_water_ = high; }
  size_t write_buffer_size() const { return core_.queued_bytes(); }

  // close, force_close, fatal_error: LoopTransportClosing
  void call_connection_lost(py::object exc);

  void set_protocol(py::object protocol);

  int traverse(visitproc visit, void* arg);
  void clear();

 private:
  // The destination of a sendto on an unconnected socket; the last one is kept, so replying to
  // the tuple datagram_received() was given converts nothing.
  const Address& destination(py::handle address);
  py::object sender(size_t i);
  py::object self() override { return py::cast(this, py::return_value_policy::reference); }
  std::array<py::object*, 9> held() {
    return {&transport_, &loop_, &sock_, &protocol_, &address_, &on_datagram_, &flush_hook_, &last_to_object_, &last_from_tuple_};
  }

  // The queue LoopTransportClosing measures and drops.
  size_t queued() const override { return core_.queued(); }
  void discard_queued() override { core_.discard(); }
  DatagramTransportCore core_;
  py::object address_;
  py::object on_datagram_;  // protocol.datagram_received, looked up once
  py::object flush_hook_;
  int family_;
  bool connected_;
  py::object last_to_object_ = py::none();
  Address last_to_;
  std::optional<Address> last_from_;  // the last sender and its tuple, reused while it repeats
  py::object last_from_tuple_ = py::none();
  bool may_be_paused_ = false;    // pause_writing() may have been called: resume once drained
  bool flush_scheduled_ = false;  // _flush_at_end_of_turn was told this turn
  size_t high_water_ = 64 * 1024;  // the stdlib's default
};

}  // namespace socketeer::bindings
