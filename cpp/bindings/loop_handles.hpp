// _core.Handle and _core.TimerHandle: socketeer.aio.Loop's callback handles, the public API of
// asyncio.Handle and asyncio.TimerHandle (cancel, cancelled, get_context, when, _run, and the
// attributes asyncio itself reads: _callback, _args, _cancelled, _loop, _context,
// _source_traceback, _repr, _when, _scheduled), as fixed-size C objects, since the stdlib's are
// Python classes and building one costs more than the rest of call_soon. (uvloop has its own
// in Cython for the same reason.) bind_loop_core.cpp creates and runs them.
#pragma once

#include <Python.h>

#include <pybind11/pybind11.h>

namespace socketeer::bindings {

struct HandleObject {
  PyObject_HEAD
  PyObject* callback;  // None once cancelled
  PyObject* args;      // a tuple; None once cancelled
  PyObject* context;   // the contextvars.Context the callback runs in
  PyObject* loop;
  PyObject* repr;  // kept by cancel() in debug mode, as the stdlib does
  PyObject* source_traceback;
  PyObject* weakrefs;
  double when;  // TimerHandle only
  bool cancelled;
  bool scheduled;  // TimerHandle: in the loop's heap
};

extern PyTypeObject* handle_type;
extern PyTypeObject* timer_handle_type;

inline HandleObject* as_handle(PyObject* object) { return reinterpret_cast<HandleObject*>(object); }
inline bool is_our_handle(PyObject* object) {
  return Py_IS_TYPE(object, handle_type) || Py_IS_TYPE(object, timer_handle_type);
}

// A new handle (type handle_type or timer_handle_type) that steals args and context; context
// nullptr copies the current one. nullptr with an exception set on failure.
HandleObject* new_handle(PyTypeObject* type, PyObject* callback, PyObject* args, PyObject* context, PyObject* loop);

// Runs the callback in its context, as asyncio.Handle._run does: an exception other than
// SystemExit and KeyboardInterrupt goes to loop.call_exception_handler() with 'message',
// 'exception' and 'handle'; those two propagate (returns -1 with the error set).
int run_handle(HandleObject* handle);

// Any asyncio.Handle-like object: ours directly, others through their _run().
int run_any_handle(PyObject* handle);
// handle.cancel(): 0, or -1 with the error set.
int cancel_handle(PyObject* handle);
// Whether a handle (ours or another asyncio.Handle) is cancelled: 1, 0, or -1 on error.
int handle_cancelled(PyObject* handle);

void init_loop_handles(pybind11::module_& m);

}  // namespace socketeer::bindings
