// LoopTransport: writing. write() copies into the C++ queue and tells the loop once per turn
// (_flush_at_end_of_turn); the loop's flush_output() then sends the whole turn's output in one
// syscall. Two exceptions keep the stdlib's flow control and its memory bounds: a write that
// takes the queue above the high-water mark is flushed at once (so pause_writing() is called
// exactly when the stdlib would, and a loop of write()+drain() cannot grow the queue without
// bound), and a large write into an empty queue is sent from the caller's buffer, uncopied.
#include "loop_transport.hpp"

#include "fast_method.hpp"
#include "loop_core.hpp"

#include "socketeer/error.hpp"

namespace socketeer::bindings {

namespace {

// From this size a write into an empty queue is sent from the caller's buffer: copying 64 KiB
// costs a few microseconds, a tenth of what such an echo takes.
constexpr size_t direct_send_size = 16 * 1024;
// The stdlib's constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES.
constexpr unsigned connlost_writes_before_warning = 5;

void check_bytes_like(py::handle data) {
  if (PyMemoryView_Check(data.ptr()) && PyMemoryView_GET_BUFFER(data.ptr())->ndim == 0) {
    // The stock transport's `if not data` asks its length: a 0-dim memoryview has none.
    PyErr_SetString(PyExc_TypeError, "0-dim memory has no length");
    throw py::error_already_set();
  }
  if (PyBytes_Check(data.ptr()) || PyByteArray_Check(data.ptr()) || PyMemoryView_Check(data.ptr())) return;
  PyErr_Format(PyExc_TypeError, "data argument must be a bytes-like object, not '%s'", Py_TYPE(data.ptr())->tp_name);
  throw py::error_already_set();
}

[[noreturn]] void raise_runtime_error(const char* message) {
  PyErr_SetString(PyExc_RuntimeError, message);
  throw py::error_already_set();
}

}  // namespace

void LoopTransport::enqueue(py::handle data) {
  // A bytes object (what data_received hands out, so what an echo writes back) is read in
  // place; anything else through the buffer protocol.
  ReadBuffer view;
  const char* start;
  size_t size;
  if (PyBytes_CheckExact(data.ptr())) {
    start = PyBytes_AS_STRING(data.ptr());
    size = static_cast<size_t>(PyBytes_GET_SIZE(data.ptr()));
  } else {
    if (!view.acquire(data.ptr())) throw py::error_already_set();
    start = view.data();
    size = view.size();
  }
  if (size == 0) return;
  if (core_.queued() == 0 && !writer_registered_ && size >= direct_send_size) {
    size_t sent = 0;
    try {
      sent = core_.send_direct(start, size);
    } catch (const Error& error) {
      fatal_error(os_error(error), "Fatal write error on socket transport");
      return;
    }
    start += sent;
    size -= sent;
    if (size == 0) return;
    core_.enqueue(start, size);
    writer_registered_ = true;
    loop_.attr("_add_writer")(fd(), self().attr("write_ready"));
    return;
  }
  core_.enqueue(start, size);
  if (writer_registered_) return;  // write_ready sends it
  if (core_.above_high_water()) {
    send_queued();
  } else if (!flush_scheduled_) {
    flush_scheduled_ = true;
    request_flush();
  }
}

void LoopTransport::request_flush() {
  if (loop_core_.is_none()) {
    flush_hook_(transport_);
    return;
  }
  if (!self_) self_ = self().ptr();
  cpp_self<loop_core::LoopCore>(loop_core_.ptr())->flush_at_end_of_turn(transport_.ptr(), self_, &flush_native);
}

void LoopTransport::flush_native(PyObject* self) { cpp_self<LoopTransport>(self)->flush_output(); }

void LoopTransport::write(py::handle data) {
  check_bytes_like(data);
  if (eof_) raise_runtime_error("Cannot call write() after write_eof()");
  if (!empty_waiter_.is_none()) raise_runtime_error("unable to write; sendfile is in progress");
  Py_ssize_t length = PyBytes_CheckExact(data.ptr()) ? PyBytes_GET_SIZE(data.ptr()) : PyObject_Length(data.ptr());
  if (length < 0) throw py::error_already_set();
  if (length == 0) return;
  if (conn_lost_) {
    if (conn_lost_ >= connlost_writes_before_warning) asyncio_logger().attr("warning")("socket.send() raised exception.");
    ++conn_lost_;
    return;
  }
  enqueue(data);
  if (core_.above_high_water()) {
    may_be_paused_ = true;
    transport_.attr("_maybe_pause_protocol")();
  }
}

void LoopTransport::writelines(py::handle lines) {
  // The stdlib's writelines is write(b''.join(lines)): the same checks, and one queue entry.
  py::object joined = py::bytes("").attr("join")(lines);
  write(joined);
}

bool LoopTransport::send_queued() {
  try {
    core_.flush();
  } catch (const Error& error) {
    core_.discard();
    py::object exc = os_error(error);
    if (writer_registered_) {
      writer_registered_ = false;
      loop_.attr("_remove_writer")(fd());
    }
    fatal_error(exc, "Fatal write error on socket transport");
    if (!empty_waiter_.is_none()) empty_waiter_.attr("set_exception")(exc);
    return false;
  }
  if (may_be_paused_) {
    transport_.attr("_maybe_resume_protocol")();  // may write more
    if (core_.queued() == 0) may_be_paused_ = false;
  }
  if (core_.queued() != 0) {
    if (!writer_registered_) {
      writer_registered_ = true;
      loop_.attr("_add_writer")(fd(), self().attr("write_ready"));
    }
    return true;
  }
  if (writer_registered_) {
    writer_registered_ = false;
    loop_.attr("_remove_writer")(fd());
  }
  drained();
  return true;
}

void LoopTransport::flush_output() {
  flush_scheduled_ = false;
  if (conn_lost_ || writer_registered_ || core_.queued() == 0) return;
  send_queued();
}

void LoopTransport::write_ready() {
  if (conn_lost_) return;
  send_queued();
}

void LoopTransport::drained() {
  if (!empty_waiter_.is_none()) empty_waiter_.attr("set_result")(py::none());
  if (closing_) {
    ++conn_lost_;
    call_connection_lost(py::none());
  } else if (eof_) {
    core_.shutdown_write();
  }
}

void LoopTransport::write_eof() {
  if (closing_ || eof_) return;
  eof_ = true;
  if (core_.queued() == 0) core_.shutdown_write();
}

void LoopTransport::set_water_marks(size_t high, size_t low) {
  core_.set_water_marks(high, low);
  may_be_paused_ = true;  // set_write_buffer_limits() may pause the protocol right after
}

py::object LoopTransport::make_empty_waiter() {
  if (!empty_waiter_.is_none()) raise_runtime_error("Empty waiter is already set");
  empty_waiter_ = loop_.attr("create_future")();
  if (core_.queued() == 0) empty_waiter_.attr("set_result")(py::none());
  return empty_waiter_;
}

}  // namespace socketeer::bindings
