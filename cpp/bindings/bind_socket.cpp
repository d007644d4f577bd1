// _core.Socket: the stdlib socket.socket method set over socketeer::Socket.
//
// Every call that can block runs with the GIL released. Hot methods take buffers through the
// buffer protocol (no copies, no allocation) and have exactly one signature (no overload sets).
#include <poll.h>

#include "bindings.hpp"
#include "socketeer/error.hpp"
#include "socketeer/socket.hpp"
#include "timeouts.hpp"

namespace socketeer::bindings {
namespace {

using namespace std::chrono_literals;

[[noreturn]] void would_block(const char* operation) {
  throw Error(EAGAIN, operation, {}, "Resource temporarily unavailable");
}

template <typename T>
T ready_or_raise(std::optional<T>&& result, const char* operation) {
  if (!result) would_block(operation);
  return std::move(*result);
}

py::object optional_tuple(const std::optional<Address>& address) {
  return address ? to_tuple(*address) : py::object(py::none());
}

py::list control_to_python(const std::vector<ControlMessage>& control) {
  py::list items;
  for (const auto& item : control) items.append(py::make_tuple(item.level, item.type, py::bytes(item.data)));
  return items;
}

std::vector<ControlMessage> control_from_python(py::handle ancdata) {
  std::vector<ControlMessage> control;
  for (auto item : ancdata) {
    auto triple = py::reinterpret_borrow<py::tuple>(item);
    if (!py::isinstance<py::tuple>(item) || triple.size() != 3)
      throw py::type_error("ancillary data items must be (level, type, data) tuples");
    ReadBuffer data;
    if (!data.acquire(triple[2].ptr())) throw py::error_already_set();
    control.push_back({triple[0].cast<int>(), triple[1].cast<int>(), std::string(data.data(), data.size())});
  }
  return control;
}

void bind_lifecycle(py::class_<Socket>& cls) {
  cls.def(py::init<int, int, int>(), py::arg("family"), py::arg("type"), py::arg("proto") = 0)
      .def(py::init([](Socket& other) { return Socket::take(other); }), py::arg("other"),
           "Takes over another Socket's fd (the other is left closed); EBUSY while a call waits on it.")
      .def_static("adopt", &Socket::adopt, py::arg("fileno"),
                  "Takes ownership of an open socket fd; raises (leaving it open) if it is not a socket.")
      .def_static("pair", &Socket::pair, py::arg("family"), py::arg("type"), py::arg("proto") = 0,
                  "Two connected sockets (socketpair(2), CLOEXEC). Use socketeer.socketpair().")
      .def_property_readonly("family_number", &Socket::family, "The address family as a plain int (AF_INET is 2).")
      .def_property_readonly("type_number", &Socket::type, "The socket kind as a plain int (SOCK_STREAM is 1).")
      .def_property_readonly("proto", &Socket::protocol, "The protocol number given at creation (0: the default).")
      .def_property_readonly("closed", &Socket::closed, "Whether close() (or detach()) has been called.")
      .def("_close", &Socket::close)
      .def("timeout_error",
           [](const Socket& self, const std::string& operation, bool write) {
             std::string where = self.where(write ? POLLOUT : POLLIN);
             return timeout_error(where.empty() ? operation : operation + " " + where);
           },
           py::arg("operation"), py::arg("write") = false,
           "The TimeoutError for `operation` on this socket passing its deadline, as the socket's own\n"
           "calls raise it: TimeoutError(\"timed out: 'recv from 127.0.0.1:5000'\") (from/to the peer\n"
           "when connected, else on the bound address). For code that waits in its own way (asyncio).")
      .def("detach", [](Socket& self) { return self.detach().release(); },
           "Gives up the fd without closing it and returns it (-1 if closed); the socket is left\n"
           "closed. Raises OSError(EBUSY) while a call is blocked on the socket in another thread:\n"
           "the fd's new owner could close it, and its number be reused, under that call.")
      .def("_dup", &Socket::dup)
      .def("bind", [](Socket& self, py::handle address) { self.bind(to_address(self.family(), address)); },
           py::arg("address"),
           "Gives the socket its local address (bind(2)): an Address, the stdlib's tuple, or text\n"
           "(\"127.0.0.1:0\", \"[::1]:80\"; on AF_UNIX a string is a path, as in the stdlib: an abstract\n"
           "name is Address.parse(\"unix:@name\")). Port 0 lets the kernel pick a free port;\n"
           "local_address says which. Never blocks. Errors name the address: OSError(EADDRINUSE)\n"
           "\"bind on 127.0.0.1:8080\"; ValueError naming the bad part of malformed text.")
      .def("listen", [](Socket& self, int backlog) { self.listen(backlog); }, py::arg("backlog") = 128,
           "Makes a stream or seqpacket socket accept connections (listen(2)); the kernel queues up to\n"
           "backlog completed connections (capped at net.core.somaxconn) until accept() takes them.\n"
           "An unbound TCP socket gets a free port first (the kernel's rule). Never blocks.")
      .def("_accept",
           [](Socket& self) {
             std::optional<std::pair<Socket, Address>> accepted;
             {
               py::gil_scoped_release release;
               accepted = self.accept();
             }
             auto [socket, peer] = ready_or_raise(std::move(accepted), "accept");
             return py::make_tuple(std::move(socket), to_tuple(peer));
           })
      .def("connect",
           [](Socket& self, py::handle address) {
             Address target = to_address(self.family(), address);
             py::gil_scoped_release release;
             self.connect(target);
           },
           py::arg("address"),
           "Connects to address (connect(2)): an Address, the stdlib's tuple or text, as bind() takes.\n"
           "Stream sockets complete the handshake; datagram sockets only fix their peer. Waits as the\n"
           "socket's timeout says (the GIL released; Ctrl-C interrupts it): TimeoutError after it,\n"
           "BlockingIOError(EINPROGRESS) at once on a non-blocking socket, the handshake going on. A\n"
           "signal does not restart the handshake: the call waits for it to finish. Failures are the\n"
           "stdlib's OSError subclasses naming the address: ConnectionRefusedError \"connect to\n"
           "127.0.0.1:1\".")
      .def("connect_ex",
           [](Socket& self, py::handle address) {
             Address target = to_address(self.family(), address);
             py::gil_scoped_release release;
             return self.connect_ex(target);
           },
           py::arg("address"),
           "As connect(), but a failure of the connection is returned as its errno (0: connected;\n"
           "EINPROGRESS on a non-blocking socket) instead of raised, as socket.connect_ex. Malformed\n"
           "addresses still raise.")
      .def("shutdown", [](Socket& self, int how) { self.shutdown(how); }, py::arg("how"),
           "Ends one direction or both (shutdown(2)): SHUT_WR sends the end of the stream (the peer's\n"
           "recv returns b\"\") and the socket can still read; SHUT_RD, SHUT_RDWR. The fd stays open:\n"
           "close() releases it. OSError(ENOTCONN) on a socket that is not connected.")
      .def("settimeout", [](Socket& self, py::handle value) { self.set_timeout(timeout_arg(value.ptr(), "timeout")); },
           py::arg("value"),
           "Seconds each blocking call may wait (TimeoutError after), as socket.settimeout: None blocks\n"
           "(a blocking fd), 0 makes the socket non-blocking, a positive value waits with poll() on a\n"
           "non-blocking fd. More than 1e9 s (31.7 years; inf too) is no timeout at all: the same as\n"
           "None, and gettimeout() says None (the stdlib raises OverflowError). ValueError for NaN or a\n"
           "negative value, TypeError for what is not a number.")
      .def("gettimeout", [](const Socket& self) { return timeout_to_python(self.timeout()); },
           "The timeout in seconds settimeout() set: None for a blocking socket, 0.0 for a\n"
           "non-blocking one.")
      .def_property_readonly("timeout", [](const Socket& self) { return timeout_to_python(self.timeout()); },
                             "The timeout in seconds, as gettimeout() (read-only, as socket.socket's).")
      .def("setblocking", [](Socket& self, bool flag) { self.set_timeout(flag ? Timeout() : Timeout(0ns)); }, py::arg("flag"),
           "setblocking(True) is settimeout(None), setblocking(False) is settimeout(0.0).")
      .def("getblocking", [](const Socket& self) { return !self.timeout() || *self.timeout() != 0ns; },
           "False for a non-blocking socket (timeout 0.0), True otherwise, with a timeout too.");
}

void bind_messages(py::class_<Socket>& cls) {
  cls.def("sendmsg",
          [](Socket& self, py::iterable buffers, py::iterable ancdata, int flags, py::handle address) {
            std::vector<ReadBuffer> held;
            for (auto item : buffers) {
              held.emplace_back();
              if (!held.back().acquire(item.ptr())) throw py::error_already_set();
            }
            std::vector<iovec> vectors;
            for (auto& buffer : held) vectors.push_back({buffer.data(), buffer.size()});
            auto control = control_from_python(ancdata);
            std::optional<Address> to;
            if (!address.is_none()) to = to_address(self.family(), address);
            py::gil_scoped_release release;
            return ready_or_raise(self.send_msg(vectors, control, flags, to), "sendmsg");
          },
          py::arg("buffers"), py::arg("ancdata") = py::tuple(), py::arg("flags") = 0, py::arg("address") = py::none(),
          "Sends the buffers as one message with ancillary data [(level, type, data), ...]\n"
          "(sendmsg(2), MSG_NOSIGNAL always), to address if given; returns the bytes sent. As\n"
          "socket.sendmsg; the GIL is released while it waits.")
      .def("recvmsg_into",
           [](Socket& self, py::iterable buffers, Py_ssize_t ancbufsize, int flags) {
             if (ancbufsize < 0) throw py::value_error("invalid ancillary data buffer length");
             std::vector<WriteBuffer> held;
             for (auto item : buffers) {
               held.emplace_back();
               if (!held.back().acquire(item.ptr())) throw py::error_already_set();
             }
             std::vector<iovec> vectors;
             for (auto& buffer : held) vectors.push_back({buffer.data(), buffer.size()});
             std::optional<ReceivedMessage> message;
             {
               py::gil_scoped_release release;
               message = self.recv_msg(vectors, static_cast<size_t>(ancbufsize), flags);
             }
             auto received = ready_or_raise(std::move(message), "recvmsg_into");
             return py::make_tuple(received.size, control_to_python(received.control), received.flags,
                                   optional_tuple(received.address));
           },
           py::arg("buffers"), py::arg("ancbufsize") = 0, py::arg("flags") = 0,
           "Receives one message into the writable buffers (recvmsg(2), no copy), with up to\n"
           "ancbufsize bytes of ancillary data: (nbytes, [(level, type, data), ...], flags, address),\n"
           "as socket.recvmsg_into. Received fds are CLOEXEC (MSG_CMSG_CLOEXEC).")
      .def("send_fds",
           [](Socket& self, const ReadBuffer& data, std::vector<int> fds, int flags, py::handle address) {
             std::optional<Address> to;
             if (!address.is_none()) to = to_address(self.family(), address);
             py::gil_scoped_release release;
             return ready_or_raise(self.send_fds(data.data(), data.size(), fds, flags, to), "send_fds");
           },
           py::arg("data"), py::arg("fds"), py::arg("flags") = 0, py::arg("address") = py::none())
      .def("recv_fds",
           [](Socket& self, Py_ssize_t bufsize, size_t maxfds, int flags) {
             if (bufsize < 0) throw py::value_error("negative buffersize in recv_fds");
             std::string data(static_cast<size_t>(bufsize), '\0');
             std::optional<ReceivedFds> message;
             {
               py::gil_scoped_release release;
               message = self.recv_fds(data.data(), data.size(), maxfds, flags);
             }
             auto received = ready_or_raise(std::move(message), "recv_fds");
             py::list fds;
             for (auto& fd : received.fds) fds.append(fd.get());
             for (auto& fd : received.fds) fd.release();  // the caller owns them from here on
             return py::make_tuple(py::bytes(data.data(), received.size), fds, received.flags,
                                   optional_tuple(received.address));
           },
           py::arg("bufsize"), py::arg("maxfds"), py::arg("flags") = 0);
}

// Datagrams in batches: one sendmmsg / recvmmsg per call.
void bind_batches(py::module_& m, py::class_<Socket>& cls) {
  py::class_<DatagramBatch>(m, "DatagramBatch", "Reusable room for receiving many datagrams in one call.")
      .def(py::init<size_t, size_t>(), py::arg("slots"), py::arg("slot_size"))
      .def_property_readonly("slots", &DatagramBatch::slots)
      .def_property_readonly("slot_size", &DatagramBatch::slot_size);
  cls.def("send_many",
          [](Socket& self, py::iterable messages, int flags) {
            std::vector<ReadBuffer> payloads;
            std::vector<std::optional<Address>> addresses;
            for (auto item : messages) {
              py::handle data = item, to = py::none();
              if (PyTuple_Check(item.ptr()) && PyTuple_GET_SIZE(item.ptr()) == 2) {
                data = PyTuple_GET_ITEM(item.ptr(), 0);
                to = PyTuple_GET_ITEM(item.ptr(), 1);
              }
              payloads.emplace_back();
              if (!payloads.back().acquire(data.ptr())) throw py::error_already_set();
              addresses.push_back(to.is_none() ? std::nullopt : std::optional(to_address(self.family(), to)));
            }
            if (payloads.empty()) return size_t{0};
            OutgoingBatch batch(payloads.size());
            batch.reset(false);  // one datagram per message: the count returned is of datagrams
            for (size_t i = 0; i < payloads.size(); ++i)
              batch.add({payloads[i].data(), payloads[i].size(), addresses[i] ? &*addresses[i] : nullptr});
            py::gil_scoped_release release;
            return ready_or_raise(self.send_many(batch, flags), "sendmmsg");
          },
          py::arg("messages"), py::arg("flags") = 0,
          "Sends [(data, address), ...] (or [data, ...] when connected) in one sendmmsg; returns how many went.")
      .def("recv_many",
           [](Socket& self, DatagramBatch& batch, int flags) {
             size_t count;
             {
               py::gil_scoped_release release;
               count = ready_or_raise(self.recv_many(batch, flags), "recvmmsg");
             }
             py::list received;
             for (size_t i = 0; i < count; ++i) {
               auto data = batch.data(i);
               received.append(py::make_tuple(py::bytes(data.data(), data.size()), batch.address(i)));
             }
             return received;
           },
           py::arg("batch"), py::arg("flags") = 0,
           "Receives up to batch.slots datagrams in one recvmmsg (waiting for the first): [(bytes, Address), ...].");
}

void bind_options(py::class_<Socket>& cls) {
  cls.def_property_readonly("local_address", &Socket::local_address, "The bound Address (getsockname).")
      .def_property_readonly("peer_address", &Socket::peer_address, "The connected peer's Address (getpeername).")
      .def("getsockopt",
           [](const Socket& self, int level, int name, py::object buflen) -> py::object {
             long size = buflen.is_none() ? 0 : buflen.cast<long>();
             if (size == 0) return py::int_(self.get_option(level, name));  // as CPython: 0 means the int form
             if (size < 0 || size > 1024) {  // the stdlib raises a bare OSError here
               PyErr_SetString(PyExc_OSError, "getsockopt buflen out of range");
               throw py::error_already_set();
             }
             return py::bytes(self.get_option_bytes(level, name, static_cast<size_t>(size)));
           },
           py::arg("level"), py::arg("optname"), py::arg("buflen") = py::none(),
           "The option's value (getsockopt(2)): an int, or with buflen (1..1024) its raw bytes, as\n"
           "socket.getsockopt.")
      .def("setsockopt",
           [](Socket& self, int level, int name, py::handle value, py::handle optlen) {
             if (value.is_none()) {
               if (optlen.is_none()) throw py::type_error("setsockopt: value None needs optlen");
               self.set_option_bytes(level, name, nullptr, optlen.cast<size_t>());
             } else if (PyLong_Check(value.ptr())) {
               self.set_option(level, name, value.cast<int>());
             } else {
               ReadBuffer data;
               if (!data.acquire(value.ptr())) throw py::error_already_set();
               self.set_option_bytes(level, name, data.data(), data.size());
             }
           },
           py::arg("level"), py::arg("optname"), py::arg("value"), py::arg("optlen") = py::none(),
           "Sets an option (setsockopt(2)) to an int, to the bytes of a buffer, or, with value None,\n"
           "to optlen zero bytes, as socket.setsockopt.")
      .def("_peer_credentials",
           [](const Socket& self) {
             auto c = self.peer_credentials();
             return py::make_tuple(c.pid, c.uid, c.gid);
           })
      .def("_tcp_info", [](const Socket& self) { return tcp_info_object(self.tcp_info()); });
}

// sendfile(2), one call per _send_file: socketeer.Socket.sendfile loops over it as the stdlib's
// sendfile loops over os.sendfile.
void bind_files(py::class_<Socket>& cls) {
  cls.def("_send_file",
          [](Socket& self, int in_fd, int64_t offset, size_t count) {
            py::gil_scoped_release release;
            return ready_or_raise(self.send_file(in_fd, offset, count), "sendfile");
          },
          py::arg("in_fd"), py::arg("offset"), py::arg("count"),
          "One sendfile(2) of up to count bytes of the file in_fd from offset (0 at its end); the "
          "socket's timeout applies; never raises SIGPIPE.");
}

}  // namespace


void init_socket(py::module_& m) {
  py::class_<Socket> cls(m, "Socket", "The C++ socket. Use socketeer.Socket, which adds the stdlib's ergonomics.");
  bind_lifecycle(cls);
  init_socket_io(cls);
  bind_messages(cls);
  bind_options(cls);
  bind_batches(m, cls);
  bind_files(cls);
}

}  // namespace socketeer::bindings
