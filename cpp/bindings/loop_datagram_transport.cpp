// LoopDatagramTransport: receiving, sending and closing. The messages and the order of every
// step are the stdlib's _SelectorDatagramTransport's; the differences: one wake-up receives up
// to a batch of datagrams (one recvmmsg) and hands each to datagram_received, and the queue the
// kernel could not take leaves with sendmmsg.
#include "loop_datagram_transport.hpp"

#include "socketeer/error.hpp"

namespace socketeer::bindings {

namespace {

// The stdlib's constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES.
constexpr unsigned connlost_writes_before_warning = 5;
// Datagrams leave at the end of the loop turn, all of the turn's in one sendmmsg (udp 10x64 B
// echo: 4.1 us of server CPU per request against 5.2 with a sendto per datagram).
constexpr bool kDeferSends = true;

// UDP datagrams are at most 64 KiB: a batch of them. Other families (unix datagrams can be
// larger) receive one datagram of the stdlib's max_size per wake-up.
size_t slots_for(int family) { return family == AF_INET || family == AF_INET6 ? 8 : 1; }
size_t slot_size_for(int family) {
  return family == AF_INET || family == AF_INET6 ? 64 * 1024 : DatagramTransportCore::max_datagram;
}

bool is_exit(py::error_already_set& error) {
  return error.matches(PyExc_SystemExit) || error.matches(PyExc_KeyboardInterrupt);
}

}  // namespace

LoopDatagramTransport::LoopDatagramTransport(py::object transport, py::object loop, py::object sock,
                                             py::object protocol, py::object address, bool connected)
    : LoopTransportClosing(std::move(transport), std::move(loop), sock),
      core_(fd(), slots_for(sock.attr("family").cast<int>()),
            slot_size_for(sock.attr("family").cast<int>())),
      address_(std::move(address)),
      flush_hook_(loop_.attr("_flush_at_end_of_turn")),
      family_(sock_.attr("family").cast<int>()),
      connected_(connected) {
  set_protocol(std::move(protocol));
}

void LoopDatagramTransport::set_protocol(py::object protocol) {
  on_datagram_ = py::getattr(protocol, "datagram_received", py::none());
  protocol_ = std::move(protocol);
}

py::object LoopDatagramTransport::sender(size_t i) {
  std::optional<Address> from = core_.received().address(i);
  if (!from) return py::none();
  if (!last_from_ || !(*last_from_ == *from)) {
    last_from_tuple_ = to_tuple(*from);
    last_from_ = std::move(from);
  }
  return last_from_tuple_;
}

void LoopDatagramTransport::read_ready() {
  if (conn_lost_) return;
  size_t count;
  try {
    count = core_.receive();
  } catch (const Error& error) {
    protocol_.attr("error_received")(os_error(error));
    return;
  }
  for (size_t i = 0; i < count && !closing_; ++i) {
    std::string_view data = core_.received().data(i);
    py::bytes chunk(data.data(), data.size());
    py::object from = sender(i);
    if (i + 1 == count) {
      // The last one raises into the loop's handler, as the stdlib's _read_ready does.
      (on_datagram_.is_none() ? py::object(protocol_.attr("datagram_received")) : on_datagram_)(chunk, from);
      return;
    }
    try {
      (on_datagram_.is_none() ? py::object(protocol_.attr("datagram_received")) : on_datagram_)(chunk, from);
    } catch (py::error_already_set& error) {
      // The rest of the batch still goes to the protocol; the error to the loop's handler.
      if (is_exit(error)) throw;
      py::dict context;
      context["message"] = "Exception in datagram_received()";
      context["exception"] = error.value();
      context["transport"] = transport_;
      context["protocol"] = protocol_;
      loop_.attr("call_exception_handler")(context);
    }
  }
}

void LoopDatagramTransport::start_reading() {
  if (!closing_) loop_.attr("_add_reader")(fd(), self().attr("read_ready"));
}

const Address& LoopDatagramTransport::destination(py::handle address) {
  if (address.is_none()) {  // what the stdlib's sock.sendto(data, None) raises, for every family
    PyErr_SetString(PyExc_TypeError, "sendto() needs an address on a socket that is not connected");
    throw py::error_already_set();
  }
  if (!last_to_object_.is(address)) {
    last_to_ = address_from_tuple(family_, address);
    last_to_object_ = py::reinterpret_borrow<py::object>(address);
  }
  return last_to_;
}

void LoopDatagramTransport::sendto(py::handle data, py::handle address) {
  if (!PyBytes_Check(data.ptr()) && !PyByteArray_Check(data.ptr()) && !PyMemoryView_Check(data.ptr())) {
    PyErr_Format(PyExc_TypeError, "data argument must be a bytes-like object, not '%s'", Py_TYPE(data.ptr())->tp_name);
    throw py::error_already_set();
  }
  ReadBuffer bytes;
  if (!bytes.acquire(data.ptr())) throw py::error_already_set();
#if PY_VERSION_HEX < 0x030C0000
  if (bytes.size() == 0) return;  // 3.12 sends empty datagrams, older versions drop them
#endif
  if (!address_.is_none()) {
    if (!address.is_none()) {
      int same = PyObject_RichCompareBool(address.ptr(), address_.ptr(), Py_EQ);
      if (same < 0) throw py::error_already_set();
      if (!same) {
        PyErr_Format(PyExc_ValueError, "Invalid address: must be None or %S", address_.ptr());
        throw py::error_already_set();
      }
    }
    address = address_;
    if (conn_lost_) {
      if (conn_lost_ >= connlost_writes_before_warning) asyncio_logger().attr("warning")("socket.send() raised exception.");
      ++conn_lost_;
      return;
    }
  }
  if (sock_.is_none()) return;  // the connection is lost: the fd is closed
  const Address* to = nullptr;
  if (!connected_) {
    try {
      to = &destination(address);
    } catch (py::error_already_set& error) {
      // As the stdlib's sock.sendto(data, address): OSError to error_received, the rest fatal.
      if (is_exit(error)) throw;
      last_to_object_ = py::none();
      if (error.matches(PyExc_OSError)) {
        protocol_.attr("error_received")(error.value());
      } else {
        fatal_error(error.value(), "Fatal write error on datagram transport");
      }
      return;
    } catch (const Error& error) {
      last_to_object_ = py::none();
      protocol_.attr("error_received")(os_error(error));
      return;
    }
  }
  if (kDeferSends && !writer_registered_) {
    core_.enqueue(bytes.data(), bytes.size(), to ? std::optional<Address>(*to) : std::nullopt);
    if (!flush_scheduled_) {
      flush_scheduled_ = true;
      flush_hook_(transport_);
    }
    if (core_.queued_bytes() > high_water_) {
      may_be_paused_ = true;
      transport_.attr("_maybe_pause_protocol")();
    }
    return;
  }
  if (core_.queued() == 0) {
    try {
      if (core_.send_direct(bytes.data(), bytes.size(), to)) return;
    } catch (const Error& error) {
      protocol_.attr("error_received")(os_error(error));
      return;
    }
    writer_registered_ = true;
    loop_.attr("_add_writer")(fd(), self().attr("write_ready"));
  }
  core_.enqueue(bytes.data(), bytes.size(), to ? std::optional<Address>(*to) : std::nullopt);
  transport_.attr("_maybe_pause_protocol")();
}

void LoopDatagramTransport::flush_output() {
  flush_scheduled_ = false;
  if (conn_lost_ || writer_registered_ || core_.queued() == 0) return;
  while (core_.queued() != 0) {
    try {
      if (core_.flush() == 0) break;
    } catch (const Error& error) {
      protocol_.attr("error_received")(os_error(error));
    }
  }
  if (core_.queued() != 0) {
    writer_registered_ = true;
    loop_.attr("_add_writer")(fd(), self().attr("write_ready"));
    return;
  }
  if (std::exchange(may_be_paused_, false)) transport_.attr("_maybe_resume_protocol")();
  if (closing_ && core_.queued() == 0) call_connection_lost(py::none());
}

void LoopDatagramTransport::write_ready() {
  while (core_.queued() != 0) {
    try {
      if (core_.flush() == 0) break;  // the socket buffer is full: wait for the writer again
    } catch (const Error& error) {
      protocol_.attr("error_received")(os_error(error));
      return;
    }
  }
  transport_.attr("_maybe_resume_protocol")();  // may queue more
  if (core_.queued() == 0) {
    if (writer_registered_) {
      writer_registered_ = false;
      loop_.attr("_remove_writer")(fd());
    }
    if (closing_) call_connection_lost(py::none());
  }
}

void LoopDatagramTransport::call_connection_lost(py::object exc) {
  if (sock_.is_none()) return;  // already done
  auto finish = [&] {
    py::object sock = std::exchange(sock_, py::none());
    protocol_ = on_datagram_ = flush_hook_ = py::none();
    loop_ = py::none();
    transport_ = py::none();
    sock.attr("close")();
  };
  try {
    protocol_.attr("connection_lost")(exc);
  } catch (...) {
    finish();
    throw;
  }
  finish();
}

int LoopDatagramTransport::traverse(visitproc visit, void* arg) {
  for (auto* object : held()) Py_VISIT(object->ptr());
  return 0;
}

void LoopDatagramTransport::clear() {
  for (auto* object : held()) *object = py::none();
}

}  // namespace socketeer::bindings
