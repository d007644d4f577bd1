// LoopCore: socketeer.aio.Loop's run loop, its state and its turn (loop_core.cpp); the Python
// methods that drive it are in bind_loop_core.cpp.
#pragma once

#include <time.h>

#include <algorithm>
#include <vector>

#include "bindings.hpp"
#include "fast_method.hpp"
#include "loop_fds.hpp"
#include "loop_handles.hpp"
#include "socketeer/poller.hpp"
#include "socketeer/timer_heap.hpp"

namespace socketeer::bindings {
namespace loop_core {

constexpr double kMaximumTimeout = 24 * 3600.0;  // asyncio's MAXIMUM_SELECT_TIMEOUT
constexpr double kClockResolution = 1e-9;        // time.get_clock_info('monotonic').resolution

inline double monotonic() {
  timespec now;
  ::clock_gettime(CLOCK_MONOTONIC, &now);  // time.monotonic()'s clock
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

inline PyObject* as_object(Token token) { return reinterpret_cast<PyObject*>(token); }
inline Token as_token(PyObject* object) { return reinterpret_cast<Token>(object); }
inline py::object steal(PyObject* object) {
  if (!object) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(object);
}

// An fd from an int or an object with fileno(), with the selectors module's errors.
int fd_of(PyObject* fileobj);

// A transport to flush at the end of this turn. A native one (the stream transport) is flushed
// by a C++ call, flush(native), with no Python method lookup; any other by calling its
// flush_output() method.
struct FlushRequest {
  PyObject* transport;                     // strong: what the error report names
  PyObject* native = nullptr;              // strong: the object flush() takes, or nullptr
  void (*flush)(PyObject* native) = nullptr;  // may throw (translated as pybind11 does)
};

struct LoopCore {
  PyObject* loop;  // strong; the GC sees it (tp_traverse below)
  Poller poller;
  ReadyQueue ready;
  TimerHeap timers;
  FdCallbacks fds;
  std::vector<FlushRequest> flushes;  // transports to flush at the end of this turn, in order
  std::vector<FlushRequest> flushing;  // flush()'s: the requests it is running (a vector reused
                                       // from turn to turn; the GC need not see them)
  bool stopping = false;
  bool closed = false;
  bool debug = false;
  bool polling = false;  // inside poll(): another thread's call_soon_threadsafe must wake it
  std::vector<PyObject*> swept;  // turn()'s scratch space, kept to spare an allocation per turn
  std::vector<Event> events;

  explicit LoopCore(py::handle owner) : loop(Py_NewRef(owner.ptr())) {}
  ~LoopCore() { clear(); }
  LoopCore(const LoopCore&) = delete;
  LoopCore& operator=(const LoopCore&) = delete;

  void check_open() const {
    if (!closed && loop) return;  // loop is null only after the GC's tp_clear
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    throw py::error_already_set();
  }

  PyObject* soon(PyObject* callback, PyObject* args, PyObject* context) {
    HandleObject* handle = new_handle(handle_type, callback, args, context, loop);
    if (!handle) return nullptr;
    ready.push(as_token(Py_NewRef(handle)));
    return reinterpret_cast<PyObject*>(handle);
  }

  PyObject* at(double when, PyObject* callback, PyObject* args, PyObject* context) {
    HandleObject* handle = new_handle(timer_handle_type, callback, args, context, loop);
    if (!handle) return nullptr;
    handle->when = when;
    handle->scheduled = true;
    timers.push(when, as_token(Py_NewRef(handle)));
    return reinterpret_cast<PyObject*>(handle);
  }

  void wake_if_polling() {
    if (polling) poller.wake();
  }

  // --- readers and writers: Ready::readable is the reader's bit, Ready::writable the writer's
  PyObject* add(int fd, uint32_t bit, PyObject* callback, PyObject* args);

  bool remove(int fd, uint32_t bit);

  static PyObject* FdCallbacks::Entry::*slot(uint32_t bit) {
    return bit == Ready::readable ? &FdCallbacks::Entry::reader : &FdCallbacks::Entry::writer;
  }
  static uint32_t interest(const FdCallbacks::Entry& entry) {
    return (entry.reader ? Ready::readable : 0) | (entry.writer ? Ready::writable : 0);
  }
  // The kernel refused the change (the fd was closed): the registration is gone, as the
  // stdlib's selector drops its key, so drop the fd's callbacks too, then raise.
  void change(int fd, FdCallbacks::Entry& entry, uint32_t wanted);

  // --- one turn ---------------------------------------------------------------------------
  void run() {
    do turn();
    while (!stopping);
  }

  void turn();

  // One poll with the GIL released. The events are copied out of the poller (into a vector
  // reused from turn to turn) because dispatch() may run Python code, which cannot poll this
  // poller but may make the poller's own span stale in a future change.
  const std::vector<Event>& poll(Timeout timeout);

  // The stdlib's _process_events: a ready fd queues its reader and/or writer Handle (the
  // registered one, no new object); a cancelled one is removed instead. Error and hangup wake both.
  void dispatch(const std::vector<Event>& ready_events);

  // Asks for one flush at the end of this turn (the caller asks once per turn).
  void flush_at_end_of_turn(PyObject* transport, PyObject* native = nullptr, void (*flush)(PyObject*) = nullptr) {
    flushes.push_back({Py_NewRef(transport), Py_XNewRef(native), flush});
  }

  // Transports that asked during this turn: each flushed once, in order.
  void flush();

  void report_flush_error(const py::object& transport);

  // Drops every handle and transport the core holds (loop.close(), and the GC's tp_clear).
  void clear();

  int traverse(visitproc visit, void* arg);
};

}  // namespace loop_core
}  // namespace socketeer::bindings
