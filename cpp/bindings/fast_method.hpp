// Hot methods as CPython METH_FASTCALL methods attached to a pybind11 class.
//
// pybind11's dispatcher costs ~100-150 ns per call (argument loaders, overload chain, kwargs
// handling), which is 5-10 % of a syscall-bound send/recv on loopback. The few methods that
// sit on hot paths are therefore plain vectorcall methods: arguments are read straight from
// the argument array, and any C++ exception goes through pybind11's registered translators
// (the same single translator every other binding uses).
#pragma once

#include <pybind11/pybind11.h>

#include <array>
#include <climits>
#include <string>

namespace socketeer::bindings {

namespace py = pybind11;

// The C++ object inside a pybind11 instance (simple layout: one C++ type, no multiple
// inheritance, which holds for Python subclasses too). Raises if __init__ never ran.
template <typename T>
T* cpp_self(PyObject* self) {
  auto* instance = reinterpret_cast<py::detail::instance*>(self);
  if (instance->simple_layout && instance->simple_holder_constructed) [[likely]]
    return static_cast<T*>(instance->simple_value_holder[0]);
  return py::handle(self).cast<T*>();
}

// An argument that must be an instance of the pybind11 class bound to T (or of a Python
// subclass): its C++ object, checked with one type test instead of pybind11's caster lookup.
template <typename T>
T& cpp_arg(PyObject* value, const char* function, const char* name) {
  static auto* type = reinterpret_cast<PyTypeObject*>(py::type::of<T>().ptr());
  if (!PyObject_TypeCheck(value, type)) {
    PyErr_Format(PyExc_TypeError, "%s() argument '%s' must be %s, not %.200s", function, name, type->tp_name,
                 Py_TYPE(value)->tp_name);
    throw py::error_already_set();
  }
  return *cpp_self<T>(value);
}

// Positional-or-keyword arguments by position: values[i] is nullptr where not given.
template <size_t N>
struct FastArgs {
  std::array<PyObject*, N> values{};

  bool parse(const char* function, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
             const std::array<const char*, N>& names, size_t required) {
    if (static_cast<size_t>(nargs) > N) {
      PyErr_Format(PyExc_TypeError, "%s() takes at most %zu arguments (%zd given)", function, N, nargs);
      return false;
    }
    for (Py_ssize_t i = 0; i < nargs; ++i) values[i] = args[i];
    if (kwnames && !parse_keywords(function, args + nargs, kwnames, names)) return false;
    for (size_t i = 0; i < required; ++i) {
      if (!values[i]) {
        PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s' (pos %zu)", function, names[i], i + 1);
        return false;
      }
    }
    return true;
  }

 private:
  bool parse_keywords(const char* function, PyObject* const* kwvalues, PyObject* kwnames,
                      const std::array<const char*, N>& names) {
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kwnames); ++k) {
      PyObject* name = PyTuple_GET_ITEM(kwnames, k);
      size_t index = N;
      for (size_t i = 0; i < N; ++i)
        if (PyUnicode_CompareWithASCIIString(name, names[i]) == 0) index = i;
      if (index == N) {
        PyErr_Format(PyExc_TypeError, "'%U' is an invalid keyword argument for %s()", name, function);
        return false;
      }
      if (values[index]) {
        PyErr_Format(PyExc_TypeError, "argument for %s() given by name ('%s') and position (%zu)", function,
                     names[index], index + 1);
        return false;
      }
      values[index] = kwvalues[k];
    }
    return true;
  }
};

// An int argument (via __index__, as the stdlib's "i" format), or fallback when absent.
inline int int_arg(PyObject* value, int fallback) {
  if (!value) return fallback;
  long number = PyLong_AsLong(value);
  if (number == -1 && PyErr_Occurred()) throw py::error_already_set();
  if (number < INT_MIN || number > INT_MAX) {
    PyErr_SetString(PyExc_OverflowError, "signed integer is greater than maximum");
    throw py::error_already_set();
  }
  return static_cast<int>(number);
}

// A size argument (the stdlib's "n" format: __index__, OverflowError when too large).
inline Py_ssize_t size_arg(PyObject* value, Py_ssize_t fallback) {
  if (!value) return fallback;
  Py_ssize_t number = PyNumber_AsSsize_t(value, PyExc_OverflowError);
  if (number == -1 && PyErr_Occurred()) throw py::error_already_set();
  return number;
}

// Runs body, turning any C++ exception into the Python error pybind11's translators choose.
template <typename Body>
PyObject* guarded(Body&& body) noexcept {
  try {
    return body();
  } catch (py::error_already_set& error) {
    error.restore();
  } catch (...) {
    py::detail::try_translate_exceptions();
  }
  return nullptr;
}

// Releases the GIL for one C++ call; cheaper than py::gil_scoped_release, which also
// consults pybind11's internals on every use.
class ReleaseGil {
 public:
  ReleaseGil() noexcept : state_(PyEval_SaveThread()) {}
  // Released only when `release`: for a call that waits only on some sockets (see
  // Socket::may_wait). A syscall that cannot wait keeps the GIL, as uvloop's do: a release and
  // re-take is ~700 instructions (two mutexes and a condition variable), measured as 5 % of
  // socketeer.aio's whole echo on aio.Loop.
  explicit ReleaseGil(bool release) noexcept : state_(release ? PyEval_SaveThread() : nullptr) {}
  ~ReleaseGil() {
    if (state_) PyEval_RestoreThread(state_);
  }
  ReleaseGil(const ReleaseGil&) = delete;
  ReleaseGil& operator=(const ReleaseGil&) = delete;

 private:
  PyThreadState* state_;
};

// A METH_FASTCALL function as the PyCFunction a PyMethodDef holds (CPython casts it back by
// the flags).
template <typename Function>
PyCFunction fastcall(Function function) {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(function));
}

// Attaches methods to a pybind11 class as ordinary method descriptors. The PyMethodDef array
// must outlive the type (a static array).
inline void add_fast_methods(py::handle cls, PyMethodDef* methods) {
  for (PyMethodDef* method = methods; method->ml_name; ++method) {
    auto descriptor = py::reinterpret_steal<py::object>(
        PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), method));
    if (!descriptor) throw py::error_already_set();
    py::setattr(cls, method->ml_name, descriptor);
  }
}

}  // namespace socketeer::bindings
