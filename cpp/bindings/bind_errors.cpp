// The one place where C++ errors become Python exceptions:
//   socketeer::TimedOut        -> TimeoutError("timed out: 'recv from 127.0.0.1:5000'"), errno
//                                 None, as the stdlib's socket timeout
//   socketeer::Error           -> the OSError subclass for its errno (OSError(errno, ...) itself
//                                 picks ConnectionRefusedError, TimeoutError, BlockingIOError ...)
//                                 with the stdlib's strerror; the operation and address go in
//                                 .filename, so str() reads
//                                 "[Errno 111] Connection refused: 'connect to 127.0.0.1:1'"
//   socketeer::ResolveError    -> socket.gaierror, as the stdlib raises for getaddrinfo
//   socketeer::InvalidArgument -> ValueError naming the bad part
//   socketeer::IncompleteRead  -> _core.IncompleteReadError (an EOFError) with .partial bytes
//   socketeer::FrameTooLarge   -> _core.MessageTooLarge (a ValueError) with .size and .limit
#include "bindings.hpp"
#include "socketeer/error.hpp"
#include "socketeer/framing.hpp"
#include "socketeer/stream_reader.hpp"
#include "socketeer/interrupt.hpp"
#include "socketeer/resolve.hpp"

namespace socketeer::bindings {
namespace {

// A new reference to the OSError (subclass) for an Error, or nullptr with the Python error set.
PyObject* os_error_new(const Error& error) {
  return PyObject_CallFunction(PyExc_OSError, "iss", error.code_value(), error.reason().c_str(),
                               error.context().c_str());
}

void raise_os_error(const Error& error) {
  // The stdlib's socket timeout is TimeoutError("timed out") with no errno; keep that shape
  // (code that checks errno is None still works) and name the operation and, where there is
  // one, the address: "timed out: 'recv from 127.0.0.1:5000'".
  if (dynamic_cast<const TimedOut*>(&error)) {
    PyErr_SetObject(PyExc_TimeoutError, timeout_error(error.context()).ptr());
    return;
  }
  PyObject* exception = os_error_new(error);
  if (!exception) return;  // the constructor's own error stays set
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exception)), exception);
  Py_DECREF(exception);
}

PyObject* incomplete_read_type = nullptr;
PyObject* message_too_large_type = nullptr;

void raise_with_attributes(PyObject* type, const char* message, py::dict attributes) {
  auto exception = py::reinterpret_steal<py::object>(PyObject_CallFunction(type, "s", message));
  if (!exception) return;
  for (auto [name, value] : attributes) py::setattr(exception, name, value);
  PyErr_SetObject(type, exception.ptr());
}

void raise_resolve_error(const ResolveError& error) {
  py::object gaierror = py::module_::import("socket").attr("gaierror");
  std::string message = std::string(error.what()) + " (resolving '" + error.host() + "')";
  PyErr_SetObject(gaierror.ptr(), py::make_tuple(error.code(), message).ptr());
}

// Runs after EINTR with the GIL released: lets Python's signal handlers run (Ctrl-C raises
// KeyboardInterrupt), and abandons the C++ call if one of them raised.
void check_python_signals() {
  py::gil_scoped_acquire acquire;
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

}  // namespace

py::object os_error(const Error& error) {
  PyObject* exception = os_error_new(error);
  if (!exception) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(exception);
}

py::object timeout_error(const std::string& context) {
  return py::reinterpret_borrow<py::object>(PyExc_TimeoutError)("timed out: '" + context + "'");
}

void init_errors(py::module_& m) {
  incomplete_read_type = PyErr_NewExceptionWithDoc(
      "socketeer._core.IncompleteReadError",
      "The stream ended in the middle of a message; .partial holds the bytes that did arrive.",
      PyExc_EOFError, nullptr);
  message_too_large_type = PyErr_NewExceptionWithDoc(
      "socketeer._core.MessageTooLarge",
      "A message exceeds the framing's max_size (.size, .limit); the stream cannot be resynchronised.",
      PyExc_ValueError, nullptr);
  if (!incomplete_read_type || !message_too_large_type) throw py::error_already_set();
  m.attr("IncompleteReadError") = py::handle(incomplete_read_type);
  m.attr("MessageTooLarge") = py::handle(message_too_large_type);
  py::register_exception_translator([](std::exception_ptr pointer) {
    try {
      if (pointer) std::rethrow_exception(pointer);
    } catch (const Error& error) {
      raise_os_error(error);
    } catch (const ResolveError& error) {
      raise_resolve_error(error);
    } catch (const IncompleteRead& error) {
      py::dict attributes;
      attributes["partial"] = py::bytes(error.partial());
      raise_with_attributes(incomplete_read_type, error.what(), attributes);
    } catch (const FrameTooLarge& error) {
      py::dict attributes;
      attributes["size"] = error.size();
      attributes["limit"] = error.limit();
      raise_with_attributes(message_too_large_type, error.what(), attributes);
    } catch (const InvalidArgument& error) {
      PyErr_SetString(PyExc_ValueError, error.what());
    }
  });
  m.def("timeout_error", &timeout_error, py::arg("context"),
        "The TimeoutError a passed deadline raises, shaped as every socketeer timeout is: no errno,\n"
        "and the message \"timed out: '<context>'\" (context: the operation and where, e.g.\n"
        "'connect to tcp://127.0.0.1:80').");
  set_interrupt_hook(check_python_signals);
}

}  // namespace socketeer::bindings
