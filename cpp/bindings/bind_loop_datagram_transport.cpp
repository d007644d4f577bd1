// _core.DatagramTransport: the native half of socketeer.aio.Loop's datagram transport (see
// loop_datagram_transport.hpp). socketeer.aio.datagram_transport.DatagramTransport is the
// asyncio.DatagramTransport users see; it binds the per-datagram methods straight to this object.
//
// Policies: the GIL is held throughout: every syscall here is non-blocking (MSG_DONTWAIT) and at
// most one per call, cheaper than releasing and retaking the GIL. The object takes part in
// Python's garbage collection: it refers to its transport, protocol and loop, which refer back.
#include "fast_method.hpp"
#include "loop_datagram_transport.hpp"

namespace socketeer::bindings {

namespace {

LoopDatagramTransport* of(PyObject* self) {
  auto holder = reinterpret_cast<py::detail::instance*>(self)->get_value_and_holder();
  return holder.holder_constructed() ? holder.value_ptr<LoopDatagramTransport>() : nullptr;
}

// The per-datagram methods, as METH_FASTCALL functions (fast_method.hpp).
PyObject* read_ready(PyObject* self, PyObject*) {
  return guarded([&] {
    cpp_self<LoopDatagramTransport>(self)->read_ready();
    Py_RETURN_NONE;
  });
}

PyObject* is_closing(PyObject* self, PyObject*) {
  return guarded([&] { return py::bool_(cpp_self<LoopDatagramTransport>(self)->is_closing()).release().ptr(); });
}

PyObject* sendto(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<2> parsed;
    if (!parsed.parse("sendto", args, nargs, kwnames, {"data", "addr"}, 1)) return nullptr;
    cpp_self<LoopDatagramTransport>(self)->sendto(parsed.values[0], parsed.values[1] ? parsed.values[1] : Py_None);
    Py_RETURN_NONE;
  });
}

PyObject* flush_output(PyObject* self, PyObject*) {
  return guarded([&] {
    cpp_self<LoopDatagramTransport>(self)->flush_output();
    Py_RETURN_NONE;
  });
}

PyMethodDef transport_methods[] = {
    {"flush_output", flush_output, METH_NOARGS, "The loop's end-of-turn flush: sendmmsg of the queue."},
    {"read_ready", read_ready, METH_NOARGS, "The reader callback: one recvmmsg, then datagram_received per datagram."},
    {"is_closing", is_closing, METH_NOARGS, "Whether close() or a fatal error began closing it."},
    {"sendto", fastcall(sendto), METH_FASTCALL | METH_KEYWORDS,
     "sendto(data, addr=None): sends at once; queues (copied) what the kernel cannot take yet."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

void init_loop_datagram_transport(py::module_& m) {
  py::class_<LoopDatagramTransport> cls(m, "DatagramTransport", py::custom_type_setup([](PyHeapTypeObject* heap_type) {
                                          auto* type = &heap_type->ht_type;
                                          type->tp_flags |= Py_TPFLAGS_HAVE_GC;
                                          type->tp_traverse = [](PyObject* self, visitproc visit, void* arg) {
                                            Py_VISIT(Py_TYPE(self));
                                            LoopDatagramTransport* transport = of(self);
                                            return transport ? transport->traverse(visit, arg) : 0;
                                          };
                                          type->tp_clear = [](PyObject* self) {
                                            if (LoopDatagramTransport* transport = of(self)) transport->clear();
                                            return 0;
                                          };
                                        }),
                                        "The native half of a socketeer.aio.Loop datagram transport: the state, the\n"
                                        "receive batch and the output queue. Use it through aio's DatagramTransport.");
  cls.def(py::init<py::object, py::object, py::object, py::object, py::object, bool>(), py::arg("transport"),
          py::arg("loop"), py::arg("sock"), py::arg("protocol"), py::arg("address"), py::arg("connected"))
      .def("start_reading", &LoopDatagramTransport::start_reading, "Registers read_ready with the loop unless closing.")
      .def("write_ready", &LoopDatagramTransport::write_ready, "The writer callback while the queue is not empty.")
      .def("set_high_water", &LoopDatagramTransport::set_high_water, py::arg("high"))
      .def("get_write_buffer_size", &LoopDatagramTransport::write_buffer_size)
      .def("close", &LoopDatagramTransport::close)
      .def("force_close", &LoopDatagramTransport::force_close, py::arg("exc"))
      .def("fatal_error",
           [](LoopDatagramTransport& self, py::object exc, const std::string& message) { self.fatal_error(exc, message.c_str()); },
           py::arg("exc"), py::arg("message"))
      .def("call_connection_lost", &LoopDatagramTransport::call_connection_lost, py::arg("exc"))
      .def("set_protocol", &LoopDatagramTransport::set_protocol, py::arg("protocol"))
      .def_property_readonly("protocol", &LoopDatagramTransport::protocol)
      .def_property_readonly("sock", &LoopDatagramTransport::sock, "The socket object, None once the connection is lost.")
      .def_property_readonly("fd", &LoopDatagramTransport::fd)
      .def_property_readonly("writer_polling", &LoopDatagramTransport::writer_polling);
  add_fast_methods(cls, transport_methods);
}

}  // namespace socketeer::bindings
