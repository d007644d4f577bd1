// Shared pieces of the pybind11 glue: one init_<area> per file, buffer-protocol arguments
// without copies, and the conversions between Address values and the stdlib's tuples.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <utility>

#include "socketeer/address.hpp"

namespace py = pybind11;

namespace socketeer::bindings {

void init_errors(py::module_& m);
void init_address(py::module_& m);
void init_link_address(py::module_& m);
void init_socket(py::module_& m);
void init_stream(py::module_& m);
void init_server(py::module_& m);
void init_proxy(py::module_& m);
void init_poller(py::module_& m);
void init_accept(py::module_& m);
void init_timeouts(py::module_& m);
void init_netlink(py::module_& m);
void init_loop_core(py::module_& m);  // also _core.Handle and _core.TimerHandle
void init_loop_transport(py::module_& m);
void init_loop_datagram_transport(py::module_& m);
}  // namespace socketeer::bindings

namespace socketeer {
class Error;
class Socket;
struct TcpInfo;
}

namespace socketeer::bindings {
void init_socket_io(py::class_<Socket>& cls);  // the hot methods, in bind_socket_io.cpp
void init_sock_diag(py::module_& m);
void init_tcp_info(py::module_& m);
// A TcpInfo as a dict of its fields by name (the keyword arguments of socketeer.TcpInfo); the
// state stays an int. Socket._tcp_info and SocketRecord.tcp_info both build from it.
// socketeer.TcpInfo for the core's TcpInfo (tcp_info.cpp): the one converter, state as a TcpState.
py::object tcp_info_object(const TcpInfo& info);

// A Py_buffer held for the duration of one call. PyObject_GetBuffer with PyBUF_SIMPLE needs
// no shape or strides, so unlike py::buffer nothing is allocated per call.
template <int Flags>
class BufferArg {
 public:
  BufferArg() = default;
  BufferArg(BufferArg&& other) noexcept : view_(other.view_), held_(std::exchange(other.held_, false)) {}
  BufferArg& operator=(BufferArg&& other) noexcept {
    release();
    view_ = other.view_;
    held_ = std::exchange(other.held_, false);
    return *this;
  }
  ~BufferArg() { release(); }

  bool acquire(PyObject* object) {
    release();
    held_ = PyObject_GetBuffer(object, &view_, Flags) == 0;
    return held_;
  }
  char* data() const { return static_cast<char*>(view_.buf); }
  size_t size() const { return static_cast<size_t>(view_.len); }

 private:
  void release() {
    if (std::exchange(held_, false)) PyBuffer_Release(&view_);
  }
  Py_buffer view_{};
  bool held_ = false;
};

using ReadBuffer = BufferArg<PyBUF_SIMPLE>;
using WriteBuffer = BufferArg<PyBUF_WRITABLE>;

// The exception a passed deadline raises, the stdlib's socket timeout shape (TimeoutError with
// no errno) naming what timed out: TimeoutError("timed out: 'recv from 127.0.0.1:5000'"). The
// error translator raises it for the core's TimedOut; Python-side deadlines build it with
// _core.timeout_error() / Socket.timeout_error(), so every timeout reads the same.
py::object timeout_error(const std::string& context);
// The OSError (the subclass its errno picks) the error translator raises for an Error, as an
// object: for code that hands the exception on (a transport's _fatal_error) instead of raising.
py::object os_error(const Error& error);

// Address <-> the stdlib's forms: ('1.2.3.4', 80), ('::1', 80, flowinfo, scope_id), a unix path
// as str, an abstract name as bytes starting with NUL, '' for an unnamed unix socket, and for
// netlink and packet (pid, groups), (ifname, proto, pkttype, hatype, addr), and for families
// without an Address class the generic tuple of other_families.cpp.
py::object to_tuple(const Address& address);
// Accepts an Address object, a stdlib tuple (host names are resolved with the GIL released),
// a path for AF_UNIX, or an address string ("127.0.0.1:80", "[::1]:80", "unix:@name"); for a
// family without an Address class, only its stdlib tuple.
Address to_address(int family, py::handle object);
// Like to_address, but takes only the stdlib's form (a tuple, or a path for AF_UNIX).
Address address_from_tuple(int family, py::handle object);
// NetlinkAddress and PacketAddress from the stdlib's tuples and back (bind_link_address.cpp):
// TypeError/OverflowError/ValueError for a malformed tuple, OSError ENODEV for an unknown interface.
NetlinkAddress netlink_from_tuple(const py::tuple& items);
PacketAddress packet_from_tuple(const py::tuple& items);
py::object packet_to_tuple(const PacketAddress& address);
// The families without an Address class (other_families.cpp): (family, sa_data) out, and
// other_from_python raises OSError("bad family ...") for every address given in.
py::object other_to_tuple(const OtherAddress& address);
OtherAddress other_from_python(int family, py::handle object);

}  // namespace socketeer::bindings

namespace pybind11::detail {

// An OtherAddress reaches Python as its stdlib tuple (there is no class for it), so every
// Address a binding returns (local_address, recv_many's senders ...) works for every family.
// Nothing converts to one implicitly: bindings build them with other_from_python.
template <>
struct type_caster<socketeer::OtherAddress> {
  PYBIND11_TYPE_CASTER(socketeer::OtherAddress, const_name("tuple"));
  bool load(handle, bool) { return false; }
  static handle cast(const socketeer::OtherAddress& address, return_value_policy, handle) {
    return socketeer::bindings::other_to_tuple(address).release();
  }
};

template <int Flags>
struct type_caster<socketeer::bindings::BufferArg<Flags>> {
  PYBIND11_TYPE_CASTER(socketeer::bindings::BufferArg<Flags>, const_name("collections.abc.Buffer"));
  // Raises the stdlib's TypeError ("a bytes-like object is required, not 'str'") instead of
  // pybind11's generic overload message.
  bool load(handle source, bool) {
    if (!value.acquire(source.ptr())) throw error_already_set();
    return true;
  }
};

}  // namespace pybind11::detail
