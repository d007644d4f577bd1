// _core.LoopCore: socketeer.aio.Loop's run loop. It holds the loop's ready queue and timer heap
// (socketeer::ReadyQueue and TimerHeap, in the core), the fd -> reader/writer table (loop_fds.hpp)
// and its own socketeer::Poller, and runs whole loop turns in C++: sweep cancelled timers, one
// poll with the GIL released, ready fds' handles queued, due timers queued, the ready handles
// run, then the transports that asked for it flushed (flush_at_end_of_turn). A turn has the
// stdlib's order and semantics (BaseEventLoop._run_once): callbacks scheduled by this turn's
// callbacks run in the next turn, after the next poll.
//
// The hot entry points (call_soon, call_soon_threadsafe, call_later, call_at, time, add_reader
// and friends) are vectorcall methods; socketeer.aio.Loop binds them onto its instances, so a
// call from Python reaches C++ without a Python frame. Debug mode's checks and the slow-callback
// warning stay in Python (aio/loop.py): there the core runs each handle through the loop's
// _run_handle_debug().

#include "loop_core.hpp"

namespace socketeer::bindings {
namespace {

using namespace loop_core;


// (fixed..., callback, *args, context=None): the call_* signatures. args becomes a new tuple.
struct CallArgs {
  PyObject* callback = nullptr;
  PyObject* args = nullptr;
  PyObject* context = nullptr;  // nullptr: copy the current context
};

bool parse_call(const char* name, PyObject* const* a, Py_ssize_t nargs, PyObject* kwnames, Py_ssize_t fixed,
                CallArgs& out) {
  for (Py_ssize_t k = 0; kwnames && k < PyTuple_GET_SIZE(kwnames); ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);
    if (PyUnicode_CompareWithASCIIString(key, "context") != 0) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", name, key);
      return false;
    }
    if (a[nargs + k] != Py_None) out.context = Py_NewRef(a[nargs + k]);
  }
  if (nargs < fixed + 1) {
    Py_CLEAR(out.context);
    PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", name, nargs < fixed ? "when" : "callback");
    return false;
  }
  out.callback = a[fixed];
  out.args = PyTuple_New(nargs - fixed - 1);
  if (!out.args) {
    Py_CLEAR(out.context);
    return false;
  }
  for (Py_ssize_t i = fixed + 1; i < nargs; ++i) PyTuple_SET_ITEM(out.args, i - fixed - 1, Py_NewRef(a[i]));
  return true;
}

LoopCore& core_of(PyObject* self) { return *cpp_self<LoopCore>(self); }

template <bool Threadsafe>
PyObject* call_soon(PyObject* self, PyObject* const* a, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    LoopCore& core = core_of(self);
    core.check_open();
    CallArgs call;
    if (!parse_call(Threadsafe ? "call_soon_threadsafe" : "call_soon", a, nargs, kwnames, 0, call)) return nullptr;
    PyObject* handle = core.soon(call.callback, call.args, call.context);
    if (Threadsafe && handle) core.wake_if_polling();
    return handle;
  });
}

double when_arg(PyObject* value, const char* none_message) {
  if (value == Py_None) throw py::type_error(none_message);
  double when = PyFloat_AsDouble(value);
  if (when == -1.0 && PyErr_Occurred()) throw py::error_already_set();
  return when;
}

PyObject* call_at(PyObject* self, PyObject* const* a, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    LoopCore& core = core_of(self);
    double when = nargs ? when_arg(a[0], "when cannot be None") : 0;
    core.check_open();
    CallArgs call;
    if (!parse_call("call_at", a, nargs, kwnames, 1, call)) return nullptr;
    return core.at(when, call.callback, call.args, call.context);
  });
}

PyObject* call_later(PyObject* self, PyObject* const* a, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    LoopCore& core = core_of(self);
    double delay = nargs ? when_arg(a[0], "delay must not be None") : 0;
    core.check_open();
    CallArgs call;
    if (!parse_call("call_later", a, nargs, kwnames, 1, call)) return nullptr;
    return core.at(monotonic() + delay, call.callback, call.args, call.context);
  });
}

PyObject* time_now(PyObject*, PyObject*) { return PyFloat_FromDouble(monotonic()); }

template <uint32_t Bit>
PyObject* add_fd(PyObject* self, PyObject* const* a, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    const char* name = Bit == Ready::readable ? "add_reader" : "add_writer";
    if (kwnames && PyTuple_GET_SIZE(kwnames)) {
      PyErr_Format(PyExc_TypeError, "%s() takes no keyword arguments", name);
      return nullptr;
    }
    if (nargs < 2) {
      PyErr_Format(PyExc_TypeError, "%s() needs fd and callback", name);
      return nullptr;
    }
    LoopCore& core = core_of(self);
    core.check_open();
    int fd = fd_of(a[0]);
    auto args = steal(PyTuple_New(nargs - 2));
    for (Py_ssize_t i = 2; i < nargs; ++i) PyTuple_SET_ITEM(args.ptr(), i - 2, Py_NewRef(a[i]));
    return core.add(fd, Bit, a[1], args.release().ptr());
  });
}

template <uint32_t Bit>
PyObject* remove_fd(PyObject* self, PyObject* fileobj) {
  return guarded([&]() -> PyObject* {
    LoopCore& core = core_of(self);
    if (core.closed) Py_RETURN_FALSE;
    return PyBool_FromLong(core.remove(fd_of(fileobj), Bit));
  });
}

PyObject* flush_at_end_of_turn(PyObject* self, PyObject* transport) {
  core_of(self).flush_at_end_of_turn(transport);
  Py_RETURN_NONE;
}

PyObject* timer_cancelled(PyObject* self, PyObject* handle) {
  if (is_our_handle(handle) && as_handle(handle)->scheduled) core_of(self).timers.cancelled();
  Py_RETURN_NONE;
}

PyMethodDef core_methods[] = {
    {"call_soon", fastcall(call_soon<false>), METH_FASTCALL | METH_KEYWORDS,
     "call_soon(callback, *args, context=None) -> Handle: runs callback in the next turn."},
    {"call_soon_threadsafe", fastcall(call_soon<true>), METH_FASTCALL | METH_KEYWORDS,
     "call_soon_threadsafe(callback, *args, context=None) -> Handle: call_soon from any thread (wakes the poll)."},
    {"call_at", fastcall(call_at), METH_FASTCALL | METH_KEYWORDS,
     "call_at(when, callback, *args, context=None) -> TimerHandle: runs callback once time() >= when."},
    {"call_later", fastcall(call_later), METH_FASTCALL | METH_KEYWORDS,
     "call_later(delay, callback, *args, context=None) -> TimerHandle: call_at(time() + delay, ...)."},
    {"time", time_now, METH_NOARGS, "time() -> float: the loop's clock, time.monotonic()'s."},
    {"add_reader", fastcall(add_fd<Ready::readable>), METH_FASTCALL | METH_KEYWORDS,
     "add_reader(fd, callback, *args) -> Handle: runs callback while fd is readable (replaces the old one)."},
    {"add_writer", fastcall(add_fd<Ready::writable>), METH_FASTCALL | METH_KEYWORDS,
     "add_writer(fd, callback, *args) -> Handle: runs callback while fd is writable (replaces the old one)."},
    {"remove_reader", remove_fd<Ready::readable>, METH_O, "remove_reader(fd) -> bool: False if fd had none."},
    {"remove_writer", remove_fd<Ready::writable>, METH_O, "remove_writer(fd) -> bool: False if fd had none."},
    {"flush_at_end_of_turn", flush_at_end_of_turn, METH_O,
     "flush_at_end_of_turn(transport): transport.flush_output() once this turn's callbacks ran. Ask once per turn."},
    {"timer_cancelled", timer_cancelled, METH_O,
     "timer_cancelled(handle): a TimerHandle in the heap was cancelled (counted; swept lazily)."},
    {nullptr, nullptr, 0, nullptr}};

void setup_gc(PyHeapTypeObject* heap_type) {
  auto* type = &heap_type->ht_type;
  type->tp_flags |= Py_TPFLAGS_HAVE_GC;
  type->tp_traverse = [](PyObject* self, visitproc visit, void* arg) -> int {
    auto* instance = reinterpret_cast<py::detail::instance*>(self);
    Py_VISIT(Py_TYPE(self));
    if (!instance->simple_layout || !instance->simple_holder_constructed) return 0;
    return cpp_self<LoopCore>(self)->traverse(visit, arg);
  };
  type->tp_clear = [](PyObject* self) -> int {
    auto* instance = reinterpret_cast<py::detail::instance*>(self);
    if (!instance->simple_layout || !instance->simple_holder_constructed) return 0;
    LoopCore& core = *cpp_self<LoopCore>(self);
    core.clear();
    Py_CLEAR(core.loop);
    return 0;
  };
}

}  // namespace

void init_loop_core(py::module_& m) {
  init_loop_handles(m);
  py::class_<LoopCore> cls(m, "LoopCore", py::custom_type_setup(setup_gc),
                           "socketeer.aio.Loop's run loop: ready queue, timers, fd callbacks and poller.");
  cls.def(py::init<py::handle>(), py::arg("loop"))
      .def("run", &LoopCore::run, "Runs loop turns until stopping is set (run_forever's loop).")
      .def("run_once", &LoopCore::turn, "Runs one loop turn.")
      .def("stop", [](LoopCore& self) { self.stopping = true; }, "Ends run() after the current turn.")
      .def_readwrite("stopping", &LoopCore::stopping)
      .def_readwrite("closed", &LoopCore::closed)
      .def_readwrite("debug", &LoopCore::debug, "Run each handle through loop._run_handle_debug(handle).")
      .def("push", [](LoopCore& self, py::handle handle) {
        int cancelled = handle_cancelled(handle.ptr());
        if (cancelled < 0) throw py::error_already_set();
        if (!cancelled) self.ready.push(as_token(handle.inc_ref().ptr()));
      }, py::arg("handle"), "Queues any asyncio Handle to run in the next turn, unless it is cancelled.")
      .def("wake", &LoopCore::wake_if_polling, "Wakes the poll if the loop is blocked in it.")
      .def("clear_ready", [](LoopCore& self) { self.ready.clear([](Token t) { Py_DECREF(as_object(t)); }); })
      .def("clear_timers", [](LoopCore& self) {
        self.timers.clear([](Token t) {
          as_handle(as_object(t))->scheduled = false;
          Py_DECREF(as_object(t));
        });
      })
      .def_property_readonly("ready_count", [](const LoopCore& self) { return self.ready.size(); })
      .def_property_readonly("timer_count", [](const LoopCore& self) { return self.timers.size(); })
      .def("fd_key", [](LoopCore& self, int fd) -> py::object {
        FdCallbacks::Entry* entry = self.fds.find(fd);
        if (!entry) return py::none();
        auto object = [](PyObject* o) { return py::reinterpret_borrow<py::object>(o ? o : Py_None); };
        return py::make_tuple(LoopCore::interest(*entry), object(entry->reader), object(entry->writer));
      }, py::arg("fd"), "(events, reader, writer) registered for fd, or None.")
      .def("fds", [](LoopCore& self) {
        std::vector<int> all;
        self.fds.for_each([&](int fd, FdCallbacks::Entry&) { all.push_back(fd); });
        return all;
      }, "The fds with a reader or a writer.")
      .def("close_poller", [](LoopCore& self) {
        self.fds.for_each([](int, FdCallbacks::Entry& entry) {
          Py_CLEAR(entry.reader);
          Py_CLEAR(entry.writer);
        });
        self.poller.close();
      }, "Forgets every fd callback and closes the epoll fd.")
      .def("fileno", [](const LoopCore& self) { return self.poller.fd(); }, "The epoll fd.");
  add_fast_methods(cls, core_methods);
}

}  // namespace socketeer::bindings
