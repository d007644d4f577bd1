// _core.Poller, _core.PollEvent and _core.Timer over socketeer::Poller and socketeer::Timer.
//
// The hot calls (poll, _select, _register, _modify, _unregister) are vectorcall methods (see
// fast_method.hpp). poll() runs the whole C++ poll (pending changes, epoll_wait, filtering) with
// the GIL released, then builds the result in one pass: one small PollEvent per ready fd, a
// fixed-size object that is not tracked by the garbage collector. _select() does the same for
// socketeer.selectors, building the (SelectorKey, events) pairs of the stdlib's select() with a
// dict lookup per event and no Python frame.

#include "bindings.hpp"
#include "fast_method.hpp"
#include "socketeer/error.hpp"
#include "socketeer/poller.hpp"
#include "socketeer/timer.hpp"
#include "timeouts.hpp"

namespace socketeer::bindings {
namespace {

using std::chrono::nanoseconds;

// --- PollEvent: (fd, events) with named flags; unpacks as a 2-tuple ----------------------------

struct PollEventObject {
  PyObject_HEAD
  int fd;
  uint32_t events;
};

PyTypeObject* poll_event_type = nullptr;

PyObject* new_poll_event(const Event& event) {
  auto* object = PyObject_New(PollEventObject, poll_event_type);
  if (object) {
    object->fd = event.fd;
    object->events = event.events;
  }
  return reinterpret_cast<PyObject*>(object);
}

PollEventObject* as_event(PyObject* self) { return reinterpret_cast<PollEventObject*>(self); }

void poll_event_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  PyObject_Free(self);
  Py_DECREF(type);
}

PyObject* poll_event_tuple(PyObject* self) {
  return Py_BuildValue("(iI)", as_event(self)->fd, as_event(self)->events);
}

PyObject* poll_event_repr(PyObject* self) {
  static const std::pair<uint32_t, const char*> names[] = {
      {Ready::readable, "readable"}, {Ready::writable, "writable"}, {Ready::priority, "priority"},
      {Ready::read_closed, "read_closed"}, {Ready::error, "error"}, {Ready::hangup, "hangup"}};
  std::string flags;
  for (auto [bit, name] : names) {
    if (!(as_event(self)->events & bit)) continue;
    if (!flags.empty()) flags.push_back('|');
    flags.append(name);
  }
  return PyUnicode_FromFormat("PollEvent(fd=%d, events=%u: %s)", as_event(self)->fd, as_event(self)->events,
                              flags.empty() ? "none" : flags.c_str());
}

// Equal to another PollEvent or to the tuple (fd, events), and hashed like that tuple.
PyObject* poll_event_compare(PyObject* self, PyObject* other, int op) {
  if (op != Py_EQ && op != Py_NE) Py_RETURN_NOTIMPLEMENTED;
  if (Py_TYPE(other) != Py_TYPE(self) && !PyTuple_Check(other)) Py_RETURN_NOTIMPLEMENTED;
  auto mine = py::reinterpret_steal<py::object>(poll_event_tuple(self));
  auto theirs = py::reinterpret_steal<py::object>(PyTuple_Check(other) ? Py_NewRef(other) : poll_event_tuple(other));
  if (!mine || !theirs) return nullptr;
  return PyObject_RichCompare(mine.ptr(), theirs.ptr(), op);
}

Py_hash_t poll_event_hash(PyObject* self) {
  auto tuple = py::reinterpret_steal<py::object>(poll_event_tuple(self));
  return tuple ? PyObject_Hash(tuple.ptr()) : -1;
}

Py_ssize_t poll_event_length(PyObject*) { return 2; }

PyObject* poll_event_item(PyObject* self, Py_ssize_t index) {
  if (index == 0) return PyLong_FromLong(as_event(self)->fd);
  if (index == 1) return PyLong_FromUnsignedLong(as_event(self)->events);
  PyErr_SetString(PyExc_IndexError, "PollEvent index out of range");
  return nullptr;
}

template <uint32_t Bit>
PyObject* flag_getter(PyObject* self, void*) {
  return PyBool_FromLong((as_event(self)->events & Bit) != 0);
}

PyObject* fd_getter(PyObject* self, void*) { return PyLong_FromLong(as_event(self)->fd); }
PyObject* events_getter(PyObject* self, void*) { return PyLong_FromUnsignedLong(as_event(self)->events); }

PyGetSetDef poll_event_getset[] = {
    {"fd", fd_getter, nullptr, "The file descriptor.", nullptr},
    {"events", events_getter, nullptr, "EVENT_* bits, plus 16 for error and 32 for hangup.", nullptr},
    {"readable", flag_getter<Ready::readable>, nullptr, "Data (or a connection, or EOF) can be read.", nullptr},
    {"writable", flag_getter<Ready::writable>, nullptr, "Data can be written.", nullptr},
    {"priority", flag_getter<Ready::priority>, nullptr, "Out-of-band data is waiting (EPOLLPRI).", nullptr},
    {"read_closed", flag_getter<Ready::read_closed>, nullptr, "The peer will send no more (EPOLLRDHUP or hangup).",
     nullptr},
    {"error", flag_getter<Ready::error>, nullptr, "A pending error (EPOLLERR); always reported.", nullptr},
    {"hangup", flag_getter<Ready::hangup>, nullptr, "Both directions are closed (EPOLLHUP); always reported.",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot poll_event_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(poll_event_dealloc)},
    {Py_tp_repr, reinterpret_cast<void*>(poll_event_repr)},
    {Py_tp_richcompare, reinterpret_cast<void*>(poll_event_compare)},
    {Py_tp_hash, reinterpret_cast<void*>(poll_event_hash)},
    {Py_tp_getset, poll_event_getset},
    {Py_sq_length, reinterpret_cast<void*>(poll_event_length)},
    {Py_sq_item, reinterpret_cast<void*>(poll_event_item)},
    {Py_tp_doc, const_cast<char*>("A ready fd: .fd, .events and one flag per bit; unpacks as (fd, events).")},
    {0, nullptr}};

PyType_Spec poll_event_spec = {"socketeer._core.PollEvent", sizeof(PollEventObject), 0, Py_TPFLAGS_DEFAULT,
                               poll_event_slots};

// --- conversions -------------------------------------------------------------------------------

// The selectors module's timeout rules on top of the bindings' (timeouts.hpp): None blocks,
// anything <= 0 polls without waiting, the rest is rounded up (to whole milliseconds by the core).
Timeout poll_timeout(PyObject* value) { return timeout_arg(value, "timeout", NonPositive::no_wait); }

std::span<const Event> poll_without_gil(Poller& poller, Timeout timeout) {
  ReleaseGil release;
  return poller.poll(timeout);
}

// --- Poller's hot methods ------------------------------------------------------------------------

PyObject* poll(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<1> a;
    if (!a.parse("poll", args, nargs, kwnames, {"timeout"}, 0)) return nullptr;
    auto events = poll_without_gil(*cpp_self<Poller>(self), poll_timeout(a.values[0]));
    PyObject* list = PyList_New(static_cast<Py_ssize_t>(events.size()));
    if (!list) return nullptr;
    for (size_t i = 0; i < events.size(); ++i) {
      PyObject* item = new_poll_event(events[i]);
      if (!item) {
        Py_DECREF(list);
        return nullptr;
      }
      PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), item);
    }
    return list;
  });
}

// The stdlib EpollSelector's mapping: error or hangup wakes both readers and writers.
long selector_events(uint32_t events) {
  return (events & (Ready::error | Ready::hangup)) ? 3 : static_cast<long>(events & 3);
}

// One (key, events & key.events) pair, or nullptr with no error set if fd has no key.
PyObject* selector_pair(PyObject* keys, const Event& event) {
  auto fd = py::reinterpret_steal<py::object>(PyLong_FromLong(event.fd));
  if (!fd) throw py::error_already_set();
  PyObject* key = PyDict_GetItemWithError(keys, fd.ptr());  // borrowed
  if (!key) {
    if (PyErr_Occurred()) throw py::error_already_set();
    return nullptr;
  }
  if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) < 3) throw py::type_error("selector keys must be SelectorKeys");
  long wanted = PyLong_AsLong(PyTuple_GET_ITEM(key, 2));
  if (wanted == -1 && PyErr_Occurred()) throw py::error_already_set();
  PyObject* pair = PyTuple_New(2);
  PyObject* mask = PyLong_FromLong(selector_events(event.events) & wanted);
  if (!pair || !mask) {
    Py_XDECREF(pair);
    Py_XDECREF(mask);
    throw py::error_already_set();
  }
  PyTuple_SET_ITEM(pair, 0, Py_NewRef(key));
  PyTuple_SET_ITEM(pair, 1, mask);
  return pair;
}

PyObject* select(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<2> a;
    if (!a.parse("_select", args, nargs, kwnames, {"keys", "timeout"}, 1)) return nullptr;
    if (!PyDict_Check(a.values[0])) throw py::type_error("_select() needs the fd -> SelectorKey dict");
    auto events = poll_without_gil(*cpp_self<Poller>(self), poll_timeout(a.values[1]));
    auto list = py::reinterpret_steal<py::object>(PyList_New(0));
    if (!list) return nullptr;
    for (const Event& event : events) {
      PyObject* pair = selector_pair(a.values[0], event);
      if (pair && PyList_Append(list.ptr(), pair) < 0) {
        Py_DECREF(pair);
        return nullptr;
      }
      Py_XDECREF(pair);
    }
    return list.release().ptr();
  });
}

// register/modify/unregister take an fd int (the Python layer turns file objects into fds) and
// return False where the stdlib raises KeyError, which the Python layer raises with its names.
PyObject* register_fd(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<3> a;
    if (!a.parse("_register", args, nargs, kwnames, {"fd", "events", "mode"}, 2)) return nullptr;
    int fd = int_arg(a.values[0], -1);
    auto events = static_cast<uint32_t>(int_arg(a.values[1], 0));
    auto mode = static_cast<uint32_t>(int_arg(a.values[2], 0));
    return PyBool_FromLong(cpp_self<Poller>(self)->add(fd, events, mode));
  });
}

// now=True: applied at once, raising the kernel's refusal (Poller::modify_now), for selectors.
PyObject* modify_fd(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<4> a;
    if (!a.parse("_modify", args, nargs, kwnames, {"fd", "events", "mode", "now"}, 2)) return nullptr;
    int fd = int_arg(a.values[0], -1);
    auto events = static_cast<uint32_t>(int_arg(a.values[1], 0));
    std::optional<uint32_t> mode;
    if (a.values[2] && a.values[2] != Py_None) mode = static_cast<uint32_t>(int_arg(a.values[2], 0));
    Poller& poller = *cpp_self<Poller>(self);
    int now = a.values[3] ? PyObject_IsTrue(a.values[3]) : 0;
    if (now < 0) return nullptr;
    return PyBool_FromLong(now ? poller.modify_now(fd, events, mode) : poller.modify(fd, events, mode));
  });
}

PyObject* unregister_fd(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<1> a;
    if (!a.parse("_unregister", args, nargs, kwnames, {"fd"}, 1)) return nullptr;
    return PyBool_FromLong(cpp_self<Poller>(self)->remove(int_arg(a.values[0], -1)));
  });
}

PyMethodDef poller_methods[] = {
    {"poll", fastcall(poll), METH_FASTCALL | METH_KEYWORDS,
     "poll(timeout=None) -> list[PollEvent]\n\nWaits (None: forever; <= 0: not at all) and returns the ready fds."},
    {"_select", fastcall(select), METH_FASTCALL | METH_KEYWORDS,
     "_select(keys, timeout=None) -> list[(SelectorKey, int)]: poll() shaped like selectors' select()."},
    {"_register", fastcall(register_fd), METH_FASTCALL | METH_KEYWORDS,
     "_register(fd, events, mode=0) -> bool: False if fd is already registered."},
    {"_modify", fastcall(modify_fd), METH_FASTCALL | METH_KEYWORDS,
     "_modify(fd, events, mode=None, now=False) -> bool: False if fd is not registered; applied by the next "
     "poll(), or at once with now=True (the kernel's refusal is then raised here). OSError if an earlier refusal "
     "lost the registration."},
    {"_unregister", fastcall(unregister_fd), METH_FASTCALL | METH_KEYWORDS,
     "_unregister(fd) -> bool: False if fd is not registered."},
    {nullptr, nullptr, 0, nullptr}};

void bind_poller_class(py::module_& m) {
  py::class_<Poller> cls(m, "Poller", "The C++ epoll poller. Use socketeer.Poller.");
  cls.def(py::init<>())
      .def("wake", &Poller::wake, "Makes the current or next poll() return. Safe from any thread.")
      .def("close", &Poller::close, "Closes the epoll fd and the waker (idempotent). While another thread polls, "
                                     "that poll() is woken and they close as it returns.")
      .def_property_readonly("closed", &Poller::closed, "Whether close() has been called.")
      .def("fileno", &Poller::fd, "The epoll fd.")
      .def("__len__", &Poller::size)
      .def(
          "_registration",
          [](const Poller& self, int fd) -> py::object {
            auto registration = self.registration(fd);
            if (!registration) return py::none();
            return py::make_tuple(registration->interest, registration->mode);
          },
          py::arg("fd"), "(events, mode) of fd's registration, or None.");
  add_fast_methods(cls, poller_methods);
  m.attr("MODE_EDGE") = Mode::edge;
  m.attr("MODE_ONESHOT") = Mode::oneshot;
  m.attr("MODE_EXCLUSIVE") = Mode::exclusive;
  m.attr("EVENT_ERROR") = Ready::error;
  m.attr("EVENT_HANGUP") = Ready::hangup;
}

void bind_timer_class(py::module_& m) {
  using Seconds = std::chrono::duration<double>;
  py::class_<Timer>(m, "Timer", "The C++ timerfd. Use socketeer.Timer.")
      .def(py::init<>())
      .def(
          "set",
          [](Timer& self, py::handle delay, py::handle interval) {
            // A delay of forever (None, or beyond the bound) never comes: the timer stays
            // disarmed; a period of forever is no period (one-shot).
            Timeout first = timeout_arg(delay.ptr(), "delay", NonPositive::no_wait);
            Timeout every = timeout_arg(interval.ptr(), "interval");
            if (first) self.arm(*first, every.value_or(nanoseconds(0)));
            else self.disarm();
          },
          py::arg("delay"), py::arg("interval") = py::none(),
          "Arms the timer: it expires delay seconds from now (<= 0: at once; None: never), then every\n"
          "interval seconds if given.")
      .def("cancel", &Timer::disarm, "Disarms the timer; set() arms it again.")
      .def("read", &Timer::expirations, "Expirations since the last read (0 if none); never blocks.")
      .def("_setting",
           [](const Timer& self) {
             auto setting = self.setting();
             return py::make_tuple(Seconds(setting.remaining).count(), Seconds(setting.interval).count());
           })
      .def("fileno", &Timer::fd, "The timerfd, readable when the timer has expired (register it with a Poller).")
      .def("close", &Timer::close, "Closes the timerfd (idempotent).")
      .def_property_readonly("closed", &Timer::closed, "Whether close() has been called.");
}

}  // namespace

void init_poller(py::module_& m) {
  poll_event_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&poll_event_spec));
  if (!poll_event_type) throw py::error_already_set();
  m.attr("PollEvent") = py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject*>(poll_event_type));
  py::setattr(m.attr("PollEvent"), "__match_args__", py::make_tuple("fd", "events"));
  bind_poller_class(m);
  bind_timer_class(m);
}

}  // namespace socketeer::bindings
