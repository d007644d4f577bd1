// The hot I/O methods of _core.Socket, as vectorcall methods (see fast_method.hpp for why):
// fileno, getsockname, getpeername, send, sendall, sendto, recv, recv_into, recvfrom, recvfrom_into.
// Signatures, defaults and error types are the stdlib's. The GIL is released around a call that
// may wait (a blocking socket, or one with a timeout); on a non-blocking socket (timeout 0) each
// is one syscall that cannot wait, and keeps it (ReleaseGil's note says what that saves).
#include "bindings.hpp"
#include "fast_method.hpp"
#include "socketeer/error.hpp"
#include "socketeer/socket.hpp"

namespace socketeer::bindings {
namespace {

PyObject* new_int(size_t value) { return PyLong_FromSize_t(value); }

PyObject* address_or_none(const std::optional<Address>& address) {
  return address ? to_tuple(*address).release().ptr() : py::none().release().ptr();
}

template <typename Buffer>
Buffer buffer_arg(PyObject* object) {
  Buffer buffer;
  if (!buffer.acquire(object)) throw py::error_already_set();
  return buffer;
}

// A writable buffer, with the stdlib's TypeError for read-only ones (bytes).
WriteBuffer writable_arg(PyObject* object, const char* function) {
  WriteBuffer buffer;
  if (!buffer.acquire(object)) {
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError, "%s() argument 1 must be read-write bytes-like object, not %.200s", function,
                 Py_TYPE(object)->tp_name);
    throw py::error_already_set();
  }
  return buffer;
}

size_t size_within(const WriteBuffer& buffer, Py_ssize_t nbytes, const char* function) {
  if (nbytes < 0) throw py::value_error(std::string("negative buffersize in ") + function);
  if (nbytes == 0) return buffer.size();
  if (static_cast<size_t>(nbytes) > buffer.size())
    throw py::value_error(std::string("buffer too small for requested bytes in ") + function);
  return static_cast<size_t>(nbytes);
}

// A bytes object of `size` is filled without the GIL (nothing else can see it yet) when the
// receive may wait, and shrunk to what arrived, as CPython's recv() does.
template <typename Receive>
py::object receive_bytes(const Socket& socket, Py_ssize_t size, const char* function, Receive&& receive) {
  if (size < 0) throw py::value_error(std::string("negative buffersize in ") + function);
  auto data = py::reinterpret_steal<py::object>(PyBytes_FromStringAndSize(nullptr, size));
  if (!data) throw py::error_already_set();
  size_t received;
  {
    ReleaseGil release(socket.may_wait());
    received = receive(PyBytes_AS_STRING(data.ptr()), static_cast<size_t>(size));
  }
  if (static_cast<Py_ssize_t>(received) != size) {
    PyObject* resized = data.release().ptr();
    if (_PyBytes_Resize(&resized, static_cast<Py_ssize_t>(received)) < 0) throw py::error_already_set();
    data = py::reinterpret_steal<py::object>(resized);
  }
  return data;
}

template <typename T>
T ready(std::optional<T>&& result, const char* operation) {
  if (!result) throw Error(EAGAIN, operation, {}, "Resource temporarily unavailable");
  return std::move(*result);
}

PyObject* fileno(PyObject* self, PyObject*) {
  return guarded([&] { return PyLong_FromLong(cpp_self<Socket>(self)->fd()); });
}

PyObject* send(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<2> a;
    if (!a.parse("send", args, nargs, kwnames, {"data", "flags"}, 1)) return nullptr;
    auto data = buffer_arg<ReadBuffer>(a.values[0]);
    int flags = int_arg(a.values[1], 0);
    Socket* socket = cpp_self<Socket>(self);
    size_t sent;
    {
      ReleaseGil release(socket->may_wait());
      sent = ready(socket->send(data.data(), data.size(), flags), "send");
    }
    return new_int(sent);
  });
}

PyObject* sendall(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<2> a;
    if (!a.parse("sendall", args, nargs, kwnames, {"data", "flags"}, 1)) return nullptr;
    auto data = buffer_arg<ReadBuffer>(a.values[0]);
    int flags = int_arg(a.values[1], 0);
    Socket* socket = cpp_self<Socket>(self);
    {
      ReleaseGil release;
      socket->send_all(data.data(), data.size(), flags);
    }
    Py_RETURN_NONE;
  });
}

// sendto(data, address) or sendto(data, flags, address), as the stdlib's.
PyObject* sendto(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<3> a;
    if (!a.parse("sendto", args, nargs, kwnames, {"data", "flags", "address"}, 2)) return nullptr;
    bool with_flags = a.values[2] != nullptr;
    auto data = buffer_arg<ReadBuffer>(a.values[0]);
    int flags = with_flags ? int_arg(a.values[1], 0) : 0;
    Socket* socket = cpp_self<Socket>(self);
    Address to = to_address(socket->family(), with_flags ? a.values[2] : a.values[1]);
    size_t sent;
    {
      ReleaseGil release(socket->may_wait());
      sent = ready(socket->send_to(data.data(), data.size(), flags, to), "sendto");
    }
    return new_int(sent);
  });
}

PyObject* recv(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<2> a;
    if (!a.parse("recv", args, nargs, kwnames, {"bufsize", "flags"}, 1)) return nullptr;
    Py_ssize_t size = size_arg(a.values[0], 0);
    int flags = int_arg(a.values[1], 0);
    Socket* socket = cpp_self<Socket>(self);
    return receive_bytes(*socket, size, "recv", [&](char* buffer, size_t capacity) {
             return ready(socket->recv(buffer, capacity, flags), "recv");
           }).release().ptr();
  });
}

PyObject* recv_into(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<3> a;
    if (!a.parse("recv_into", args, nargs, kwnames, {"buffer", "nbytes", "flags"}, 1)) return nullptr;
    auto buffer = writable_arg(a.values[0], "recv_into");
    size_t size = size_within(buffer, size_arg(a.values[1], 0), "recv_into");
    int flags = int_arg(a.values[2], 0);
    Socket* socket = cpp_self<Socket>(self);
    size_t received;
    {
      ReleaseGil release(socket->may_wait());
      received = ready(socket->recv(buffer.data(), size, flags), "recv_into");
    }
    return new_int(received);
  });
}

PyObject* recvfrom(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<2> a;
    if (!a.parse("recvfrom", args, nargs, kwnames, {"bufsize", "flags"}, 1)) return nullptr;
    Py_ssize_t size = size_arg(a.values[0], 0);
    int flags = int_arg(a.values[1], 0);
    Socket* socket = cpp_self<Socket>(self);
    std::optional<Address> from;
    py::object data = receive_bytes(*socket, size, "recvfrom", [&](char* buffer, size_t capacity) {
      auto [received, sender] = ready(socket->recv_from(buffer, capacity, flags), "recvfrom");
      from = std::move(sender);
      return received;
    });
    return PyTuple_Pack(2, data.ptr(), py::reinterpret_steal<py::object>(address_or_none(from)).ptr());
  });
}

PyObject* recvfrom_into(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return guarded([&]() -> PyObject* {
    FastArgs<3> a;
    if (!a.parse("recvfrom_into", args, nargs, kwnames, {"buffer", "nbytes", "flags"}, 1)) return nullptr;
    auto buffer = writable_arg(a.values[0], "recvfrom_into");
    size_t size = size_within(buffer, size_arg(a.values[1], 0), "recvfrom_into");
    int flags = int_arg(a.values[2], 0);
    Socket* socket = cpp_self<Socket>(self);
    std::pair<size_t, std::optional<Address>> result;
    {
      ReleaseGil release(socket->may_wait());
      result = ready(socket->recv_from(buffer.data(), size, flags), "recvfrom_into");
    }
    py::object count = py::reinterpret_steal<py::object>(new_int(result.first));
    py::object from = py::reinterpret_steal<py::object>(address_or_none(result.second));
    return PyTuple_Pack(2, count.ptr(), from.ptr());
  });
}

PyObject* getsockname(PyObject* self, PyObject*) {
  return guarded([&] { return to_tuple(cpp_self<Socket>(self)->local_address()).release().ptr(); });
}

PyObject* getpeername(PyObject* self, PyObject*) {
  return guarded([&] { return to_tuple(cpp_self<Socket>(self)->peer_address()).release().ptr(); });
}

PyMethodDef io_methods[] = {
    {"fileno", fileno, METH_NOARGS, "The socket's fd, or -1 once closed."},
    {"getsockname", getsockname, METH_NOARGS, "The bound address in the stdlib's form."},
    {"getpeername", getpeername, METH_NOARGS, "The peer's address in the stdlib's form."},
    {"send", fastcall(send), METH_FASTCALL | METH_KEYWORDS,
     "send(data, flags=0) -> int\n\nSends what fits in the socket's buffer now (MSG_NOSIGNAL always: a gone peer is "
     "BrokenPipeError, never SIGPIPE) and returns how many bytes that was; waits only for room."},
    {"sendall", fastcall(sendall), METH_FASTCALL | METH_KEYWORDS,
     "sendall(data, flags=0) -> None\n\nSends every byte of data, waiting for room as needed; a timeout covers the whole "
     "call, not each wait."},
    {"sendto", fastcall(sendto), METH_FASTCALL | METH_KEYWORDS,
     "sendto(data[, flags], address) -> int\n\nSends one datagram to address (an Address, tuple or text); returns the bytes "
     "sent."},
    {"recv", fastcall(recv), METH_FASTCALL | METH_KEYWORDS,
     "recv(bufsize, flags=0) -> bytes\n\nUp to bufsize bytes, waiting until some arrive; b'' at the end of the stream."},
    {"recv_into", fastcall(recv_into), METH_FASTCALL | METH_KEYWORDS,
     "recv_into(buffer, nbytes=0, flags=0) -> int\n\nReceives into a writable buffer (no copy; at most nbytes "
     "if given) and returns the count."},
    {"recvfrom", fastcall(recvfrom), METH_FASTCALL | METH_KEYWORDS,
     "recvfrom(bufsize, flags=0) -> (bytes, address)\n\nOne datagram (or up to bufsize bytes) and the sender's "
     "address in the stdlib's form."},
    {"recvfrom_into", fastcall(recvfrom_into), METH_FASTCALL | METH_KEYWORDS,
     "recvfrom_into(buffer, nbytes=0, flags=0) -> (int, address)\n\nAs recvfrom, into a writable buffer (no "
     "copy)."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

void init_socket_io(py::class_<Socket>& cls) { add_fast_methods(cls, io_methods); }

}  // namespace socketeer::bindings
