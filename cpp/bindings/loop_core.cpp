// LoopCore's turn and its fd callbacks (see loop_core.hpp and bind_loop_core.cpp).

#include "loop_core.hpp"

namespace socketeer::bindings::loop_core {

int fd_of(PyObject* fileobj) {
  if (PyLong_CheckExact(fileobj)) {
    int fd = int_arg(fileobj, -1);
    if (fd < 0) throw py::value_error("Invalid file descriptor: " + std::to_string(fd));
    return fd;
  }
  static PyObject* convert = py::object(py::module_::import("selectors").attr("_fileobj_to_fd")).release().ptr();
  return py::handle(convert)(py::handle(fileobj)).cast<int>();
}

PyObject* LoopCore::add(int fd, uint32_t bit, PyObject* callback, PyObject* args) {
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

bool LoopCore::remove(int fd, uint32_t bit) {
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

void LoopCore::change(int fd, FdCallbacks::Entry& entry, uint32_t wanted) {
  try {
    poller.modify_now(fd, wanted);
  } catch (...) {
    poller.remove(fd);
    Py_CLEAR(entry.reader);
    Py_CLEAR(entry.writer);
    throw;
  }
}

void LoopCore::turn() {
  // Output queued outside any turn (a write() before run_until_complete, or from a callback of
  // another loop's thread) leaves before this turn's callbacks run, as the stock loop's write()
  // would have sent it at once: a peer that already closed is then seen as the write's EPIPE,
  // not as an EOF read first.
  if (!flushes.empty()) flush();
  swept.clear();  // released after the sweep: a release may run Python code that schedules
  timers.sweep([](Token t) { return as_handle(as_object(t))->cancelled; },
               [&](Token t) {
                 as_handle(as_object(t))->scheduled = false;
                 swept.push_back(as_object(t));
               });
  for (PyObject* handle : swept) Py_DECREF(handle);
  swept.clear();
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

const std::vector<Event>& LoopCore::poll(Timeout timeout) {
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

void LoopCore::dispatch(const std::vector<Event>& ready_events) {
  for (const Event& event : ready_events) {
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

void LoopCore::flush() {
  static PyObject* flush_now = PyUnicode_InternFromString("flush_output");
  std::vector<FlushRequest>& due = flushing;
  due.clear();  // (only what a flush that raised left: references already given up)
  due.swap(flushes);
  for (size_t i = 0; i < due.size(); ++i) {
    auto transport = steal(due[i].transport);
    auto native = py::reinterpret_steal<py::object>(due[i].native);
    void (*native_flush)(PyObject*) = due[i].flush;
    PyObject* done = native_flush ? guarded([&] {
      native_flush(native.ptr());
      Py_RETURN_NONE;
    })
                                  : PyObject_CallMethodNoArgs(transport.ptr(), flush_now);
    if (done) {
      Py_DECREF(done);
      continue;
    }
    if (PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
      flushes.insert(flushes.begin(), due.begin() + i + 1, due.end());  // their references move back
      due.clear();
      throw py::error_already_set();
    }
    report_flush_error(transport);  // and the others still flush
  }
  due.clear();
}

void LoopCore::report_flush_error(const py::object& transport) {
  py::error_already_set error;
  py::dict context;
  context["message"] = "Exception in transport flush";
  context["exception"] = error.value();
  context["transport"] = transport;
  py::handle(loop).attr("call_exception_handler")(context);
}

void LoopCore::clear() {
  ready.clear([](Token t) { Py_DECREF(as_object(t)); });
  timers.clear([](Token t) {
    as_handle(as_object(t))->scheduled = false;
    Py_DECREF(as_object(t));
  });
  fds.for_each([](int, FdCallbacks::Entry& entry) {
    Py_CLEAR(entry.reader);
    Py_CLEAR(entry.writer);
  });
  for (FlushRequest& request : std::exchange(flushes, {})) {
    Py_DECREF(request.transport);
    Py_XDECREF(request.native);
  }
}

int LoopCore::traverse(visitproc visit, void* arg) {
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
  for (const FlushRequest& request : flushes) {
    each(request.transport);
    each(request.native);
  }
  return stop;
}

}  // namespace socketeer::bindings::loop_core
