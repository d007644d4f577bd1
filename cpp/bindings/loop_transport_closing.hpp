// The closing state machine aio.Loop's two native transports share (_core.StreamTransport and
// _core.DatagramTransport): close() once the queue drains, force_close() dropping the queue,
// fatal_error() reporting as the stdlib's _SelectorTransport._fatal_error does, and the state
// they move through (closing, writer registered, connection lost). Each transport derives from
// it, says how its queue is measured and dropped, and keeps its own call_connection_lost (what it
// releases differs).
//
// Every behaviour follows the stdlib's _SelectorTransport (selector_events.py).
#pragma once

#include <cstddef>

#include "bindings.hpp"

namespace socketeer::bindings {

// asyncio's logger (asyncio.log.logger), which the stdlib's transports log to.
py::handle asyncio_logger();

class LoopTransportClosing {
 public:
  // Stops reading; connection_lost follows at once when nothing is queued, else once the
  // queue is sent (the transport's own drain path calls call_connection_lost).
  void close();
  // Drops what is queued, stops reading and writing, and schedules connection_lost(exc).
  void force_close(py::object exc);
  // An OSError is logged in debug mode only; anything else goes to the loop's exception handler.
  // Then force_close(exc).
  void fatal_error(py::object exc, const char* message);
  bool is_closing() const { return closing_; }

  py::object protocol() const { return protocol_; }
  py::object sock() const { return sock_; }
  bool writer_polling() const { return writer_registered_; }

  int fd() const { return fd_; }

 protected:
  LoopTransportClosing(py::object transport, py::object loop, py::object sock)
      : transport_(std::move(transport)),
        loop_(std::move(loop)),
        sock_(std::move(sock)),
        fd_(sock_.attr("fileno")().cast<int>()) {}
  virtual ~LoopTransportClosing() = default;

  // This object's Python instance (the derived class is the registered type).
  virtual py::object self() = 0;
  virtual size_t queued() const = 0;
  virtual void discard_queued() = 0;

  py::object transport_, loop_, sock_, protocol_;
  bool closing_ = false;
  bool writer_registered_ = false;
  unsigned conn_lost_ = 0;  // the stdlib's _conn_lost: writes counted after the loss

 private:
  int fd_;  // the socket's, for the loop's reader and writer (sock_ owns it)
};

}  // namespace socketeer::bindings
