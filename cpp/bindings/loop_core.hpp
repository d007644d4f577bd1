// LoopCore: socketeer.aio.Loop's run loop state and its turn (see bind_loop_core.cpp for the
// Python methods). Only bind_loop_core.cpp includes it.
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
inline int fd_of(PyObject* fileobj) {
  if (PyLong_CheckExact(fileobj)) {
    int fd = int_arg(fileobj, -1);
    if (fd < 0) throw py::value_error("Invalid file descriptor: " + std::to_string(fd));
    return fd;
  }
  static PyObject* convert = py::object(py::module_::import("selectors").attr("_fileobj_to_fd")).release().ptr();
  return py::handle(convert)(py::handle(fileobj)).cast<int>();
}

struct LoopCore {
  PyObject* loop;  // strong; the GC sees it (tp_traverse below)
  Poller poller;
  ReadyQueue ready;
  TimerHeap timers;
  FdCallbacks fds;
  std::vector<PyObject*> flushes;  // transports to _flush_now() at the end of this turn
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
  PyObject* add(int fd, uint32_t bit, PyObject* callback, PyObject* args) {
    check_open();
    auto handle = steal(reinterpret_cast<PyObject*>(new_handle(handle_type, callback, args, nullptr, loop)));
    FdCallbacks::Entry* entry = fds.find(fd);
    if (!entry) {
      if (!poller.add(fd, bit)) poller.modify_now(fd, bit);  // never while the table and poller agree
      fds.at(fd).*slot(bit) = handle.inc_ref().ptr();
      return handle.release().ptr();
    }
    PyObject* old = entry->*slot(bit);
    if (!old) change(fd, *entry, interest(*entry) | bit);
    entry->*slot(bit) = handle.inc_ref().ptr();
    if (old) {
      auto dropped = steal(old);
      if (cancel_handle(old) < 0) throw py::error_already_set();
    }
    return handle.release().ptr();
  }

  bool remove(int fd, uint32_t bit) {
    if (closed) return false;
    FdCallbacks::Entry* entry = fds.find(fd);
    if (!entry || !(entry->*slot(bit))) return false;
    uint32_t left = interest(*entry) & ~bit;
    auto old = steal(std::exchange(entry->*slot(bit), nullptr));
    if (left) change(fd, *entry, left);
    else poller.remove(fd);
    if (cancel_handle(old.ptr()) < 0) throw py::error_already_set();
    return true;
  }

  static PyObject* FdCallbacks::Entry::*slot(uint32_t bit) {
    return bit == Ready::readable ? &FdCallbacks::Entry::reader : &FdCallbacks::Entry::writer;
  }
  static uint32_t interest(const FdCallbacks::Entry& entry) {
    return (entry.reader ? Ready::readable : 0) | (entry.writer ? Ready::writable : 0);
  }
  // The kernel refused the change (the fd was closed): the registration is gone, as the
  // stdlib's selector drops its key, so drop the fd's callbacks too, then raise.
  void change(int fd, FdCallbacks::Entry& entry, uint32_t wanted) {
    try {
      poller.modify_now(fd, wanted);
    } catch (...) {
      poller.remove(fd);
      Py_CLEAR(entry.reader);
      Py_CLEAR(entry.writer);
      throw;
    }
  }

  // --- one turn ---------------------------------------------------------------------------
  void run() {
    do turn();
    while (!stopping);
  }

  void turn() {
    swept.clear();  // released after the sweep: a release may run Python code that schedules
    timers.sweep([](Token t) { return as_handle(as_object(t))->cancelled; },
                 [&](Token t) {
                   as_handle(as_object(t))->scheduled = false;
                   swept.push_back(as_object(t));
                 });
    for (PyObject* handle : std::exchange(swept, {})) Py_DECREF(handle);
    // The clock costs ~100 ns on a VM: read it only where a timer needs it, and when the first
    // timer was already due before a poll that did not wait, keep that reading for the "due"
    // test after it (a timer due during that short poll runs in the next turn instead).
    Timeout timeout;
    double now = 0;
    bool now_is_fresh = false;
    if (!ready.empty() || stopping || !flushes.empty()) {
      timeout = std::chrono::nanoseconds(0);
    } else if (!timers.empty()) {
      now = monotonic();
      double wait = std::clamp(timers.top().when - now, 0.0, kMaximumTimeout);
      timeout = std::chrono::nanoseconds(static_cast<int64_t>(wait * 1e9));
      now_is_fresh = wait == 0;
    }
    dispatch(poll(timeout));
    if (!timers.empty()) {
      double end = (now_is_fresh ? now : monotonic()) + kClockResolution;
      while (!timers.empty() && timers.top().when < end) {
        Token token = timers.pop();
        as_handle(as_object(token))->scheduled = false;
        ready.push(token);  // the heap's reference passes to the queue
      }
    }
    for (size_t todo = ready.size(); todo && !ready.empty(); --todo) {
      auto handle = steal(as_object(ready.pop()));
      int cancelled = handle_cancelled(handle.ptr());
      if (cancelled < 0) throw py::error_already_set();
      if (cancelled) continue;
      if (debug) handle = steal(PyObject_CallMethod(loop, "_run_handle_debug", "O", handle.ptr()));
      else if (run_any_handle(handle.ptr()) < 0) throw py::error_already_set();
    }
    flush();
  }

  // One poll with the GIL released. The events are copied out of the poller (into a vector
  // reused from turn to turn) because dispatch() may run Python code, which cannot poll this
  // poller but may make the poller's own span stale in a future change.
  const std::vector<Event>& poll(Timeout timeout) {
    struct Polling {
      bool& flag;
      explicit Polling(bool& f) : flag(f) { flag = true; }
      ~Polling() { flag = false; }
    } polling_now(polling);
    std::span<const Event> ready_fds;
    {
      ReleaseGil release;
      ready_fds = poller.poll(timeout);
    }
    events.assign(ready_fds.begin(), ready_fds.end());
    return events;
  }

  // The stdlib's _process_events: a ready fd queues its reader and/or writer Handle (the
  // registered one, no new object); a cancelled one is removed instead. Error and hangup wake both.
  void dispatch(const std::vector<Event>& events) {
    for (const Event& event : events) {
      uint32_t bits = (event.events & (Ready::error | Ready::hangup)) ? 3 : (event.events & 3);
      for (uint32_t bit : {Ready::readable, Ready::writable}) {
        FdCallbacks::Entry* entry = fds.find(event.fd);
        PyObject* handle = entry && (bits & bit) ? entry->*slot(bit) : nullptr;
        if (!handle) continue;
        if (as_handle(handle)->cancelled) remove(event.fd, bit);
        else ready.push(as_token(Py_NewRef(handle)));
      }
    }
  }

  // Transports that asked during this turn: each transport._flush_now(), once, in order.
  void flush() {
    static PyObject* flush_now = PyUnicode_InternFromString("_flush_now");
    std::vector<PyObject*> due;
    due.swap(flushes);
    for (size_t i = 0; i < due.size(); ++i) {
      auto transport = steal(due[i]);
      PyObject* done = PyObject_CallMethodNoArgs(transport.ptr(), flush_now);
      if (done) {
        Py_DECREF(done);
        continue;
      }
      if (PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        flushes.insert(flushes.begin(), due.begin() + i + 1, due.end());  // their references move back
        throw py::error_already_set();
      }
      report_flush_error(transport);  // and the others still flush
    }
  }

  void report_flush_error(const py::object& transport) {
    py::error_already_set error;
    py::dict context;
    context["message"] = "Exception in transport flush";
    context["exception"] = error.value();
    context["transport"] = transport;
    py::handle(loop).attr("call_exception_handler")(context);
  }

  // Drops every handle and transport the core holds (loop.close(), and the GC's tp_clear).
  void clear() {
    ready.clear([](Token t) { Py_DECREF(as_object(t)); });
    timers.clear([](Token t) {
      as_handle(as_object(t))->scheduled = false;
      Py_DECREF(as_object(t));
    });
    fds.for_each([](int, FdCallbacks::Entry& entry) {
      Py_CLEAR(entry.reader);
      Py_CLEAR(entry.writer);
    });
    for (PyObject* transport : std::exchange(flushes, {})) Py_DECREF(transport);
  }

  int traverse(visitproc visit, void* arg) {
    int stop = 0;
    auto each = [&](PyObject* object) {
      if (!stop && object) stop = visit(object, arg);
    };
    each(loop);
    ready.for_each([&](Token t) { each(as_object(t)); });
    timers.for_each([&](Token t) { each(as_object(t)); });
    fds.for_each([&](int, FdCallbacks::Entry& entry) {
      each(entry.reader);
      each(entry.writer);
    });
    for (PyObject* transport : flushes) each(transport);
    return stop;
  }
};


}  // namespace loop_core
}  // namespace socketeer::bindings
