// _core.InetAddress, Inet6Address, UnixAddress, parse_address, address_from_tuple, resolve.
// (NetlinkAddress and PacketAddress are in bind_link_address.cpp, the stdlib forms of families
// without a class in other_families.cpp.)
#include <sys/un.h>

#include <cstring>

#include "address_class.hpp"
#include "fast_method.hpp"
#include "socketeer/error.hpp"
#include "socketeer/resolve.hpp"

namespace socketeer::bindings {
namespace {

// Unix paths are bytes to the kernel: str goes through the filesystem encoding, as os.fsencode.
// Not PyUnicode_FSConverter: it rejects embedded NULs, and the stdlib spells an abstract name
// with a leading NUL (b"\0name", as getsockname returns it).
std::string fs_bytes(py::handle object) {
  auto path = py::reinterpret_steal<py::object>(PyOS_FSPath(object.ptr()));
  if (path && PyUnicode_Check(path.ptr())) path = py::reinterpret_steal<py::object>(PyUnicode_EncodeFSDefault(path.ptr()));
  if (!path) throw py::error_already_set();
  return std::string(py::reinterpret_borrow<py::bytes>(path));
}


// Address text as bytes, the way a unix path's str() was made from them: the filesystem
// encoding with surrogateescape (os.fsencode), so a path of any bytes survives str() -> parse().
// A character no bytes stand for (a lone surrogate outside U+DC80..U+DCFF) is a ValueError
// naming it, as every malformed address is.
std::string address_text(py::handle text) {
  auto bytes = py::reinterpret_steal<py::object>(PyUnicode_EncodeFSDefault(text.ptr()));
  if (bytes) return std::string(py::reinterpret_borrow<py::bytes>(bytes));
  py::error_already_set error;
  if (!error.matches(PyExc_UnicodeEncodeError)) throw error;
  auto start = error.value().attr("start").cast<Py_ssize_t>();
  auto character = py::reinterpret_steal<py::object>(PySequence_GetItem(text.ptr(), start));
  if (!character) throw py::error_already_set();
  throw py::value_error("bad character " + std::string(py::repr(character)) + " at position " +
                        std::to_string(start) + " in address " + std::string(py::repr(text)) +
                        ": no bytes stand for it (a lone surrogate)");
}

// The stdlib spells an abstract address as a path whose first byte is NUL.
UnixAddress unix_from_path(py::handle object) {
  std::string path = fs_bytes(object);
  if (!path.empty() && path[0] == '\0') return UnixAddress(std::string_view(path).substr(1), true);
  return UnixAddress(path, false);
}

std::string host_text(py::handle host) {
  if (PyUnicode_Check(host.ptr())) {
    Py_ssize_t size = 0;
    const char* text = PyUnicode_AsUTF8AndSize(host.ptr(), &size);
    if (!text) throw py::error_already_set();
    return std::string(text, static_cast<size_t>(size));
  }
  if (PyBytes_Check(host.ptr())) return std::string(py::reinterpret_borrow<py::bytes>(host));
  throw py::type_error(std::string("host must be str or bytes, not '") + Py_TYPE(host.ptr())->tp_name + "'");
}

long ranged(py::handle number, long low, long high, const char* what) {
  long value = PyLong_AsLong(number.ptr());
  if (value == -1 && PyErr_Occurred()) throw py::error_already_set();
  if (value < low || value > high) {
    PyErr_Format(PyExc_OverflowError, "%s must be %ld-%ld, got %ld", what, low, high, value);
    throw py::error_already_set();
  }
  return value;
}

InetAddress inet_from_tuple(py::tuple pair) {
  if (pair.size() != 2)
    throw py::type_error("AF_INET address must be a pair (host, port), got " + std::to_string(pair.size()) + " items");
  std::string host = host_text(pair[0]);
  int port = static_cast<int>(ranged(pair[1], 0, 65535, "port"));
  if (auto numeric = InetAddress::parse_host(host, port)) return *numeric;
  py::gil_scoped_release release;
  return resolve_inet(host, port);
}

Inet6Address inet6_from_tuple(py::tuple items) {
  if (items.size() < 2 || items.size() > 4)
    throw py::type_error("AF_INET6 address must be (host, port[, flowinfo[, scope_id]]), got " +
                         std::to_string(items.size()) + " items");
  std::string host = host_text(items[0]);
  int port = static_cast<int>(ranged(items[1], 0, 65535, "port"));
  auto flowinfo = static_cast<uint32_t>(items.size() > 2 ? ranged(items[2], 0, 0xfffff, "flowinfo") : 0);
  auto scope_id = static_cast<uint32_t>(items.size() > 3 ? ranged(items[3], 0, 0xffffffffL, "scope_id") : 0);
  if (auto numeric = Inet6Address::parse_host(host, port, flowinfo, scope_id)) return *numeric;
  py::gil_scoped_release release;
  return resolve_inet6(host, port, flowinfo, scope_id);
}

// Families with an Address class; the others have only their stdlib tuple (other_families.cpp).
bool has_class(int family) {
  return family == AF_INET || family == AF_INET6 || family == AF_UNIX || family == AF_NETLINK || family == AF_PACKET;
}

}  // namespace

py::str fs_str(const std::string& bytes) {
  return py::reinterpret_steal<py::str>(
      PyUnicode_DecodeFSDefaultAndSize(bytes.data(), static_cast<Py_ssize_t>(bytes.size())));
}

std::string repr_of(const InetAddress& a) { return "InetAddress('" + a.host() + "', " + std::to_string(a.port()) + ")"; }

std::string repr_of(const Inet6Address& a) {
  std::string extra;
  if (a.flowinfo()) extra += ", flowinfo=" + std::to_string(a.flowinfo());
  if (a.scope_id()) extra += ", scope_id=" + std::to_string(a.scope_id());
  return "Inet6Address('" + a.host_without_scope() + "', " + std::to_string(a.port()) + extra + ")";
}

std::string repr_of(const UnixAddress& a) {
  return "UnixAddress(" + std::string(py::repr(fs_str(a.path()))) + (a.abstract() ? ", abstract=True)" : ")");
}

py::object to_tuple(const Address& address) {
  if (auto a = std::get_if<InetAddress>(&address)) return py::make_tuple(a->host(), a->port());
  if (auto a = std::get_if<Inet6Address>(&address))
    return py::make_tuple(a->host_without_scope(), a->port(), a->flowinfo(), a->scope_id());
  if (auto a = std::get_if<NetlinkAddress>(&address)) return py::make_tuple(a->pid(), a->groups());
  if (auto a = std::get_if<PacketAddress>(&address)) return packet_to_tuple(*a);
  if (auto a = std::get_if<OtherAddress>(&address)) return other_to_tuple(*a);
  const auto& unix_address = std::get<UnixAddress>(address);
  if (unix_address.abstract()) return py::bytes(std::string(1, '\0') + unix_address.path());
  return fs_str(unix_address.path());
}

Address address_from_tuple(int family, py::handle object) {
  if (!has_class(family)) return other_from_python(family, object);
  if (family == AF_UNIX) return unix_from_path(object);
  if (!PyTuple_Check(object.ptr())) {
    auto name = family == AF_NETLINK ? "AF_NETLINK address must be tuple" : family == AF_PACKET ?
        "AF_PACKET address must be tuple" : "an address tuple is required for this family";
    throw py::type_error(std::string(name) + ", not '" + Py_TYPE(object.ptr())->tp_name + "'");
  }
  auto items = py::reinterpret_borrow<py::tuple>(object);
  if (family == AF_INET) return inet_from_tuple(items);
  if (family == AF_NETLINK) return netlink_from_tuple(items);
  if (family == AF_PACKET) return packet_from_tuple(items);
  return inet6_from_tuple(items);
}

// The exact Python type of each Address alternative, for a cast without pybind11's type
// lookup (a per-datagram cost on the server's send_to path). Subclasses take the general path.
template <typename T>
const T* exactly(py::handle object) {
  static PyTypeObject* type = reinterpret_cast<PyTypeObject*>(py::type::of<T>().ptr());
  return Py_TYPE(object.ptr()) == type ? cpp_self<T>(object.ptr()) : nullptr;
}

Address to_address(int family, py::handle object) {
  if (auto* inet = exactly<InetAddress>(object)) return *inet;
  if (auto* inet6 = exactly<Inet6Address>(object)) return *inet6;
  if (PyTuple_Check(object.ptr()) || !has_class(family)) return address_from_tuple(family, object);
  if (family == AF_UNIX && !py::isinstance<UnixAddress>(object)) return unix_from_path(object);
  if (PyUnicode_Check(object.ptr())) return parse_address(address_text(object));
  try {
    return object.cast<Address>();
  } catch (const py::cast_error&) {
    throw py::type_error(std::string("address must be an Address, a tuple or a string, not '") +
                         Py_TYPE(object.ptr())->tp_name + "'");
  }
}

void init_address(py::module_& m) {
  py::class_<InetAddress> inet(m, "InetAddress", "An IPv4 address and port (immutable).");
  inet.def(py::init<std::string_view, int>(), py::arg("host"), py::arg("port"))
      .def_property_readonly("host", &InetAddress::host, "The IPv4 address, dotted (\"127.0.0.1\").")
      .def_property_readonly("port", &InetAddress::port, "The port, 0..65535.");
  add_common(inet, m);

  py::class_<Inet6Address> inet6(m, "Inet6Address", "An IPv6 address, port, flow info and scope (immutable).");
  inet6.def(py::init<std::string_view, int, uint32_t, uint32_t>(), py::arg("host"), py::arg("port"),
            py::arg("flowinfo") = 0, py::arg("scope_id") = 0)
      .def_property_readonly("host", &Inet6Address::host,
                             "The IPv6 address, compressed (\"::1\"), with %SCOPE for a link-local one with a scope.")
      .def_property_readonly("port", &Inet6Address::port, "The port, 0..65535.")
      .def_property_readonly("flowinfo", &Inet6Address::flowinfo, "The flow label (sin6_flowinfo, 20 bits).")
      .def_property_readonly("scope_id", &Inet6Address::scope_id, "The interface index of the scope (0: none).");
  add_common(inet6, m);

  py::class_<UnixAddress> unix_class(m, "UnixAddress",
                                     "A unix socket path, or a name in Linux's abstract namespace (immutable).");
  unix_class
      .def(py::init([](py::handle path, bool abstract) {
             if (abstract) return UnixAddress(fs_bytes(path), true);
             return unix_from_path(path);
           }),
           py::arg("path"), py::arg("abstract") = false)
      .def_property_readonly("path", [](const UnixAddress& a) { return fs_str(a.path()); },
                             "The path, or the abstract name without its leading NUL; \"\" when unnamed.")
      .def_property_readonly("abstract", &UnixAddress::abstract, "Whether the name is in the abstract namespace.")
      .def_property_readonly("unnamed", &UnixAddress::unnamed,
                             "Whether the socket has no name (unbound, or one end of a socketpair).");
  add_common(unix_class, m);

  m.def("parse_address", [](const py::str& text) { return parse_address(address_text(text)); }, py::arg("text"));
  m.def("address_from_tuple", &address_from_tuple, py::arg("family"), py::arg("address"));
  m.def("to_address", &to_address, py::arg("family"), py::arg("address"));
  m.def(
      "address_from_sockaddr",
      [](const py::bytes& data) {
        std::string_view bytes(data);
        if (bytes.size() < sizeof(sa_family_t) || bytes.size() > sizeof(sockaddr_storage))
          throw py::value_error("a sockaddr is " + std::to_string(sizeof(sa_family_t)) + "-" +
                                std::to_string(sizeof(sockaddr_storage)) + " bytes, got " + std::to_string(bytes.size()));
        sockaddr_storage storage{};
        std::memcpy(&storage, bytes.data(), bytes.size());
        return address_from_sockaddr(storage, static_cast<socklen_t>(bytes.size()));
      },
      py::arg("data"), "The Address of a sockaddr's bytes, as the kernel writes them (pickles use it).");
  m.def("max_unix_path", [] { return UnixAddress::max_path; });
  m.def(
      "resolve",
      [](const std::string& host, const std::string& service, int family, int type, int protocol, int flags) {
        std::vector<ResolvedAddress> found;
        {
          py::gil_scoped_release release;
          found = resolve(host, service, family, type, protocol, flags);
        }
        py::list results;
        for (auto& item : found)
          results.append(py::make_tuple(item.family, item.type, item.protocol, item.canonical_name, item.address));
        return results;
      },
      py::arg("host"), py::arg("service"), py::arg("family") = 0, py::arg("type") = 0, py::arg("protocol") = 0,
      py::arg("flags") = 0);
}

}  // namespace socketeer::bindings
