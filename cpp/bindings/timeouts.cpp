// _core.timeout_seconds and the converter behind every time in seconds (rules in timeouts.hpp).
#include "timeouts.hpp"

#include <cmath>
#include <string>

namespace socketeer::bindings {
namespace {

[[noreturn]] void raise(PyObject* type, const std::string& message) {
  PyErr_SetString(type, message.c_str());
  throw py::error_already_set();
}

// The value as a double: ints of any size (too large for a double: +-inf), floats, and what
// converts like them; TypeError for the rest.
double seconds_of(PyObject* value, const char* parameter) {
  if (PyFloat_Check(value)) return PyFloat_AS_DOUBLE(value);
  if (PyIndex_Check(value)) {
    auto number = py::reinterpret_steal<py::object>(PyNumber_Index(value));
    if (!number) throw py::error_already_set();
    double seconds = PyLong_AsDouble(number.ptr());
    if (seconds == -1.0 && PyErr_Occurred()) {
      if (!PyErr_ExceptionMatches(PyExc_OverflowError)) throw py::error_already_set();
      PyErr_Clear();
      return number < py::int_(0) ? -HUGE_VAL : HUGE_VAL;
    }
    return seconds;
  }
  if (Py_TYPE(value)->tp_as_number && Py_TYPE(value)->tp_as_number->nb_float) {
    double seconds = PyFloat_AsDouble(value);
    if (seconds == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    return seconds;
  }
  raise(PyExc_TypeError, std::string(parameter) + " must be a number of seconds or None, not '" +
                             Py_TYPE(value)->tp_name + "'");
}

}  // namespace

Timeout timeout_arg(PyObject* value, const char* parameter, NonPositive rule) {
  if (!value || value == Py_None) return std::nullopt;
  double seconds = seconds_of(value, parameter);
  if (std::isnan(seconds)) raise(PyExc_ValueError, std::string(parameter) + " must be a number of seconds, not NaN");
  if (seconds <= 0 && rule == NonPositive::no_wait) return std::chrono::nanoseconds(0);
  if (seconds < 0)
    raise(PyExc_ValueError, std::string(parameter) + " must be >= 0 or None, not " + std::string(py::repr(value)));
  if (seconds > kMaxSeconds) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<int64_t>(std::ceil(seconds * 1e9)));
}

std::chrono::nanoseconds duration_arg(PyObject* value, const char* parameter) {
  Timeout timeout = timeout_arg(value, parameter);
  return timeout ? *timeout : std::chrono::nanoseconds(static_cast<int64_t>(kMaxSeconds * 1e9));
}

py::object timeout_to_python(Timeout timeout) {
  if (!timeout) return py::none();
  return py::float_(std::chrono::duration<double>(*timeout).count());
}

void init_timeouts(py::module_& m) {
  m.def(
      "timeout_seconds",
      [](py::handle value, const char* name) { return timeout_to_python(timeout_arg(value.ptr(), name)); },
      py::arg("value"), py::arg("name") = "timeout",
      "The rule every timeout in seconds follows, for Python-side deadlines: None (wait forever)\n"
      "for None or more than 1e9 s (31.7 years; inf too), else the seconds as a float (rounded\n"
      "up to whole nanoseconds). ValueError for NaN or a negative value, TypeError for what is not\n"
      "a number; both name the parameter `name`.");
}

}  // namespace socketeer::bindings
