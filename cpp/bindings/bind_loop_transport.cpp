// _core.StreamTransport: the native half of socketeer.aio.Loop's socket transport (see
// loop_transport.hpp). socketeer.aio.transport.SocketTransport is the asyncio.Transport users
// see; it forwards to this object, and binds the per-message methods (write, writelines,
// is_closing) straight to it.
//
// Policies: the GIL is held throughout: every syscall here is non-blocking (MSG_DONTWAIT) and
// at most one per call, cheaper than releasing and retaking the GIL. The object takes part in
// Python's garbage collection: it refers to its transport, protocol and loop, which refer back.
#include "fast_method.hpp"
#include "loop_transport.hpp"

namespace socketeer::bindings {

namespace {

// The C++ object of an instance, or nullptr before __init__ ran (the collector may visit then).
LoopTransport* of(PyObject* self) {
  auto holder = reinterpret_cast<py::detail::instance*>(self)->get_value_and_holder();
  return holder.holder_constructed() ? holder.value_ptr<LoopTransport>() : nullptr;
}

// The per-message methods, as METH_FASTCALL functions (fast_method.hpp): pybind11's dispatcher
// would add ~100 ns to each.
PyObject* read_ready(PyObject* self, PyObject*) {
  return guarded([&] {
    cpp_self<LoopTransport>(self)->read_ready();
    Py_RETURN_NONE;
  });
}

PyObject* flush_output(PyObject* self, PyObject*) {
  return guarded([&] {
    cpp_self<LoopTransport>(self)->flush_output();
    Py_RETURN_NONE;
  });
}

PyObject* is_closing(PyObject* self, PyObject*) {
  return guarded([&] { return py::bool_(cpp_self<LoopTransport>(self)->is_closing()).release().ptr(); });
}

PyObject* write(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<1> parsed;
    if (!parsed.parse("write", args, nargs, kwnames, {"data"}, 1)) return nullptr;
    cpp_self<LoopTransport>(self)->write(parsed.values[0]);
    Py_RETURN_NONE;
  });
}

PyMethodDef transport_methods[] = {
    {"read_ready", read_ready, METH_NOARGS, "The reader callback: one recv, then the protocol."},
    {"flush_output", flush_output, METH_NOARGS, "The loop's end-of-turn flush: one send of the queue."},
    {"is_closing", is_closing, METH_NOARGS, "Whether close() or a fatal error began closing it."},
    {"write", fastcall(write), METH_FASTCALL | METH_KEYWORDS,
     "write(data): queues bytes (copied) to leave with the rest of this loop turn's output in one send."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

void init_loop_transport(py::module_& m) {
  py::class_<LoopTransport> cls(m, "StreamTransport", py::custom_type_setup([](PyHeapTypeObject* heap_type) {
                              auto* type = &heap_type->ht_type;
                              type->tp_flags |= Py_TPFLAGS_HAVE_GC;
                              type->tp_traverse = [](PyObject* self, visitproc visit, void* arg) {
                                Py_VISIT(Py_TYPE(self));
                                LoopTransport* transport = of(self);
                                return transport ? transport->traverse(visit, arg) : 0;
                              };
                              type->tp_clear = [](PyObject* self) {
                                if (LoopTransport* transport = of(self)) transport->clear();
                                return 0;
                              };
                            }),
                            "The native half of a socketeer.aio.Loop socket transport: the state, the output queue\n"
                            "flushed once per loop turn, the read buffer. Use it through SocketTransport.");
  cls.def(py::init<py::object, py::object, py::object, py::object, py::object>(), py::arg("transport"),
           py::arg("loop"), py::arg("sock"), py::arg("protocol"), py::arg("server"))
      .def("start_reading", &LoopTransport::start_reading, "Registers read_ready with the loop unless paused or closing.")
      .def("pause_reading", &LoopTransport::pause_reading)
      .def("resume_reading", &LoopTransport::resume_reading)
      .def("is_reading", &LoopTransport::is_reading)
      .def("writelines", &LoopTransport::writelines, py::arg("list_of_data"))
      .def("write_ready", &LoopTransport::write_ready, "The writer callback while the kernel's buffer is full.")
      .def("write_eof", &LoopTransport::write_eof)
      .def("get_write_buffer_size", &LoopTransport::write_buffer_size)
      .def("set_water_marks", &LoopTransport::set_water_marks, py::arg("high"), py::arg("low"))
      .def("make_empty_waiter", &LoopTransport::make_empty_waiter)
      .def("reset_empty_waiter", &LoopTransport::reset_empty_waiter)
      .def("close", &LoopTransport::close)
      .def("force_close", &LoopTransport::force_close, py::arg("exc"))
      .def("fatal_error", [](LoopTransport& self, py::object exc, const std::string& message) { self.fatal_error(exc, message.c_str()); },
           py::arg("exc"), py::arg("message"))
      .def("call_connection_lost", &LoopTransport::call_connection_lost, py::arg("exc"))
      .def("set_protocol", &LoopTransport::set_protocol, py::arg("protocol"))
      .def_property_readonly("protocol", &LoopTransport::protocol)
      .def_property_readonly("sock", &LoopTransport::sock, "The socket object, None once the connection is lost.")
      .def_property_readonly("fd", &LoopTransport::fd)
      .def_property_readonly("writer_polling", &LoopTransport::writer_polling);
  add_fast_methods(cls, transport_methods);
}

}  // namespace socketeer::bindings
