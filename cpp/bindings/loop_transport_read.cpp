// LoopTransport: reading, the protocol, closing and the connection-lost step. The messages and
// the order of every step are the stdlib's _SelectorSocketTransport's.
#include "loop_transport.hpp"

#include "loop_core.hpp"

#include "socketeer/error.hpp"

namespace socketeer::bindings {

namespace {

// asyncio's module objects, looked up once and kept for the life of the process (leaked on
// purpose: they must outlive every transport, even during interpreter shutdown).
py::handle asyncio_attr(const char* name) {
  return py::object(py::module_::import("asyncio").attr(name)).release();
}

// method(argument) by vectorcall: no argument tuple per message, as py::object's call builds.
void call_one(const py::object& method, const py::object& argument) {
  PyObject* args[2] = {nullptr, argument.ptr()};
  PyObject* result = PyObject_Vectorcall(method.ptr(), args + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
  if (!result) throw py::error_already_set();
  Py_DECREF(result);
}

bool is_buffered(py::handle protocol) {
  static py::handle buffered_protocol = asyncio_attr("BufferedProtocol");
  int result = PyObject_IsInstance(protocol.ptr(), buffered_protocol.ptr());
  if (result < 0) throw py::error_already_set();
  return result == 1;
}

}  // namespace

py::handle asyncio_logger() {
  static py::handle instance = py::object(py::module_::import("asyncio.log").attr("logger")).release();
  return instance;
}

LoopTransport::LoopTransport(py::object transport, py::object loop, py::object sock, py::object protocol,
                             py::object server)
    : LoopTransportClosing(std::move(transport), std::move(loop), sock),
      core_(fd()),
      server_(std::move(server)),
      flush_hook_(loop_.attr("_flush_at_end_of_turn")),
      loop_core_(py::getattr(loop_, "_core", py::none())) {
  if (!py::isinstance<loop_core::LoopCore>(loop_core_)) loop_core_ = py::none();
  set_protocol(std::move(protocol));
}

template <typename Call>
bool LoopTransport::or_fatal(const char* message, Call&& call) {
  try {
    call();
    return true;
  } catch (py::error_already_set& error) {
    if (error.matches(PyExc_SystemExit) || error.matches(PyExc_KeyboardInterrupt)) throw;
    fatal_error(error.value(), message);
    return false;
  } catch (const Error& error) {
    fatal_error(os_error(error), message);
    return false;
  }
}

py::object LoopTransport::protocol_method(const py::object& cached, const char* name) const {
  return cached.is_none() ? py::object(protocol_.attr(name)) : cached;
}

void LoopTransport::set_protocol(py::object protocol) {
  buffered_ = is_buffered(protocol);
  // A protocol without the method fails when data comes, as the stdlib's transport does.
  on_data_ = py::getattr(protocol, buffered_ ? "buffer_updated" : "data_received", py::none());
  get_buffer_ = buffered_ ? py::getattr(protocol, "get_buffer", py::none()) : py::none();
  protocol_ = std::move(protocol);
  protocol_connected_ = true;
}

void LoopTransport::read_ready() {
  if (conn_lost_) return;
  std::optional<size_t> got;
  if (buffered_) {
    WriteBuffer buffer;
    if (!or_fatal("Fatal error: protocol.get_buffer() call failed.", [&] {
          py::object target = protocol_method(get_buffer_, "get_buffer")(-1);
          if (!buffer.acquire(target.ptr())) throw py::error_already_set();
          if (buffer.size() == 0) {
            PyErr_SetString(PyExc_RuntimeError, "get_buffer() returned an empty buffer");
            throw py::error_already_set();
          }
        }))
      return;
    if (!or_fatal("Fatal read error on socket transport", [&] { got = core_.recv_into(buffer.data(), buffer.size()); }))
      return;
    buffer = WriteBuffer();  // released before the protocol looks at it
    if (!got) return;
    if (*got == 0) return read_eof();
    or_fatal("Fatal error: protocol.buffer_updated() call failed.",
            [&] { call_one(protocol_method(on_data_, "buffer_updated"), py::int_(*got)); });
    return;
  }
  // Through the reused buffer, copied out into the bytes object data_received() takes. (Reading
  // straight into a new bytes object of the full read size, as sock.recv(max_size) does, costs
  // an mmap, page faults and an mremap per read: more than copying even 64 KiB.)
  std::optional<std::span<const char>> data;
  if (!or_fatal("Fatal read error on socket transport", [&] { data = core_.recv(); })) return;
  if (!data) return;
  if (data->empty()) return read_eof();
  py::bytes chunk(data->data(), data->size());
  or_fatal("Fatal error: protocol.data_received() call failed.",
          [&] { call_one(protocol_method(on_data_, "data_received"), chunk); });
}

void LoopTransport::read_eof() {
  if (loop_.attr("get_debug")().cast<bool>()) asyncio_logger().attr("debug")("%r received EOF", transport_);
  py::object keep_open;
  if (!or_fatal("Fatal error: protocol.eof_received() call failed.",
               [&] { keep_open = protocol_.attr("eof_received")(); }))
    return;
  if (PyObject_IsTrue(keep_open.ptr()) == 1) {
    // Keep the connection open so the protocol can still write; nothing more can be read.
    loop_.attr("_remove_reader")(fd());
  } else {
    close();
  }
}

void LoopTransport::start_reading() {
  if (is_reading()) loop_.attr("_add_reader")(fd(), self().attr("read_ready"));
}

void LoopTransport::pause_reading() {
  if (!is_reading()) return;
  paused_ = true;
  loop_.attr("_remove_reader")(fd());
  if (loop_.attr("get_debug")().cast<bool>()) asyncio_logger().attr("debug")("%r pauses reading", transport_);
}

void LoopTransport::resume_reading() {
  if (closing_ || !paused_) return;
  paused_ = false;
  start_reading();
  if (loop_.attr("get_debug")().cast<bool>()) asyncio_logger().attr("debug")("%r resumes reading", transport_);
}

void LoopTransport::call_connection_lost(py::object exc) {
  if (sock_.is_none()) return;  // already done (the GC cleared this object, or a second call)
  auto finish = [&] {
    py::object sock = std::exchange(sock_, py::none());
    py::object server = std::exchange(server_, py::none());
    py::object waiter = std::exchange(empty_waiter_, py::none());
    protocol_ = on_data_ = get_buffer_ = flush_hook_ = loop_core_ = py::none();
    loop_ = py::none();
    py::object transport = std::exchange(transport_, py::none());
    sock.attr("close")();
    if (!server.is_none()) {
#if PY_VERSION_HEX >= 0x030D0000
      server.attr("_detach")(transport);  // 3.13 tracks its transports (Server.close_clients)
#else
      server.attr("_detach")();
#endif
    }
    if (!waiter.is_none()) {
      waiter.attr("set_exception")(
          py::reinterpret_borrow<py::object>(PyExc_ConnectionError)("Connection is closed by peer"));
    }
  };
  try {
    if (protocol_connected_) protocol_.attr("connection_lost")(exc);
  } catch (...) {
    finish();
    throw;
  }
  finish();
}

int LoopTransport::traverse(visitproc visit, void* arg) {
  for (auto* object : held()) Py_VISIT(object->ptr());
  return 0;
}

void LoopTransport::clear() {
  for (auto* object : held()) *object = py::none();
}

}  // namespace socketeer::bindings
