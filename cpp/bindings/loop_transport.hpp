// socketeer.aio.Loop's stream transport, the part that runs per message: _core.StreamTransport.
// It holds the transport's whole state (closing, EOF, paused, connection lost) beside the C++
// StreamTransportCore (output queue, read buffer, water marks), reads and calls the protocol,
// queues writes and flushes them once per loop turn. The Python class
// socketeer.aio.transport.SocketTransport (an asyncio.Transport) wraps it: it makes the
// connection (extra info, TCP_NODELAY, connection_made), reports fatal errors and holds the flow
// control of asyncio's _FlowControlMixin (pause_writing/resume_writing), which this object calls
// only when the queue crosses the water marks.
//
// Every behaviour follows the stdlib's _SelectorSocketTransport (selector_events.py); where it
// differs (writes leave at the end of the turn) the Python docstring says so.
#pragma once

#include <array>

#include "loop_transport_closing.hpp"
#include "socketeer/stream_transport.hpp"

namespace socketeer::bindings {

namespace loop_core {
struct LoopCore;
}

class LoopTransport final : public LoopTransportClosing {
 public:
  // transport: the Python SocketTransport; loop: the asyncio loop (its _add_reader,
  // _remove_reader, _add_writer, _remove_writer, call_soon and _flush_at_end_of_turn are used);
  // sock: the socket object, which owns the fd and is closed once the connection is lost;
  // server: an asyncio Server to _detach() then, or None.
  LoopTransport(py::object transport, py::object loop, py::object sock, py::object protocol, py::object server);

  // --- reading (loop_transport_read.cpp) ------------------------------------------------
  void read_ready();
  void read_eof();       // the peer shut down its side: eof_received() decides
  void start_reading();  // registers read_ready with the loop, unless paused or closing
  void pause_reading();
  void resume_reading();
  bool is_reading() const { return !closing_ && !paused_; }

  // --- writing (loop_transport_write.cpp) -----------------------------------------------
  void write(py::handle data);
  void writelines(py::handle lines);
  void flush_output();  // the loop's end-of-turn flush
  void write_ready();   // the writer callback while the kernel's buffer is full
  void write_eof();
  size_t write_buffer_size() const { return core_.queued(); }
  void set_water_marks(size_t high, size_t low);
  py::object make_empty_waiter();
  void reset_empty_waiter() { empty_waiter_ = py::none(); }

  // --- closing (LoopTransportClosing; connection_lost in loop_transport_read.cpp) ------------
  void call_connection_lost(py::object exc);

  void set_protocol(py::object protocol);

  // For the garbage collector: the transport, protocol and loop refer back to this object.
  int traverse(visitproc visit, void* arg);
  void clear();

 private:
  py::object self() override { return py::cast(this, py::return_value_policy::reference); }
  // Asks the loop for this turn's flush: straight into the LoopCore (a C++ call at the end of the
  // turn) when the loop runs on one, else through its _flush_at_end_of_turn(transport).
  void request_flush();
  static void flush_native(PyObject* self);
  // Sends what is queued; registers the writer when the kernel took only part. Returns false
  // when the send failed (the transport is then closing with the error).
  bool send_queued();
  void drained();
  // The protocol's method: the one set_protocol() looked up, or (if it had none) a fresh lookup
  // that raises AttributeError into the caller's fatal-error path.
  py::object protocol_method(const py::object& cached, const char* name) const;
  std::array<py::object*, 10> held() {
    return {&transport_, &loop_, &sock_, &protocol_, &server_, &empty_waiter_, &on_data_, &get_buffer_, &flush_hook_, &loop_core_};
  }  // the queue emptied: the sendfile waiter, a pending close or write_eof
  void enqueue(py::handle data);
  // Runs a protocol callback; an exception other than SystemExit/KeyboardInterrupt goes to
  // fatal_error(message) and false is returned.
  template <typename Call>
  bool or_fatal(const char* message, Call&& call);

  // The queue LoopTransportClosing measures and drops.
  size_t queued() const override { return core_.queued(); }
  void discard_queued() override { core_.discard(); }
  StreamTransportCore core_;
  py::object server_;
  // Looked up once (as uvloop does): the protocol's per-message method (data_received, or
  // get_buffer and buffer_updated) and the loop's end-of-turn hook.
  py::object on_data_, get_buffer_, flush_hook_;
  py::object loop_core_;  // the loop's _core.LoopCore, or None (a loop without one)
  PyObject* self_ = nullptr;  // this object's own Python instance (borrowed: it owns this object)
  py::object empty_waiter_ = py::none();
  bool buffered_ = false;          // the protocol is an asyncio.BufferedProtocol
  bool protocol_connected_ = false;
  bool paused_ = false;            // pause_reading()
  bool eof_ = false;               // write_eof() asked; shutdown once the queue is empty
  bool flush_scheduled_ = false;   // _flush_at_end_of_turn was told this turn
  bool may_be_paused_ = false;     // pause_writing() may have been called: resume when it drains
};

}  // namespace socketeer::bindings
