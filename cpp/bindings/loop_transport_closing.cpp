// The closing state machine of aio.Loop's native transports (see loop_transport_closing.hpp).
#include "loop_transport_closing.hpp"

namespace socketeer::bindings {

void LoopTransportClosing::close() {
  if (closing_) return;
  closing_ = true;
  loop_.attr("_remove_reader")(fd());
  if (queued() == 0) {
    ++conn_lost_;
    loop_.attr("call_soon")(self().attr("call_connection_lost"), py::none());
  }
  // Otherwise the transport's last flush of the queue calls connection_lost.
}

void LoopTransportClosing::fatal_error(py::object exc, const char* message) {
  if (PyObject_IsInstance(exc.ptr(), PyExc_OSError) == 1) {
    if (loop_.attr("get_debug")().cast<bool>())
      asyncio_logger().attr("debug")("%r: %s", transport_, message, py::arg("exc_info") = exc);
  } else {
    py::dict context;
    context["message"] = message;
    context["exception"] = exc;
    context["transport"] = transport_;
    context["protocol"] = protocol_;
    loop_.attr("call_exception_handler")(context);
  }
  force_close(std::move(exc));
}

void LoopTransportClosing::force_close(py::object exc) {
  if (conn_lost_) return;
  if (queued() != 0) {
    discard_queued();
    if (writer_registered_) {
      writer_registered_ = false;
      loop_.attr("_remove_writer")(fd());
    }
  }
  if (!closing_) {
    closing_ = true;
    loop_.attr("_remove_reader")(fd());
  }
  ++conn_lost_;
  loop_.attr("call_soon")(self().attr("call_connection_lost"), exc);
}

}  // namespace socketeer::bindings
