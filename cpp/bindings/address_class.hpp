// What every address class shares in Python (bind_address.cpp, bind_link_address.cpp): text,
// repr, ordering, hashing, pickling and to_tuple, so a new family's class is one call away.
#pragma once

#include <string>

#include "bindings.hpp"

namespace socketeer::bindings {

// Bytes (a unix path, an interface name) as str, the way os.fsdecode shows them.
py::str fs_str(const std::string& bytes);

// The repr of each class: InetAddress('1.2.3.4', 80), NetlinkAddress(pid=1, groups=0) ...
std::string repr_of(const InetAddress& a);
std::string repr_of(const Inet6Address& a);
std::string repr_of(const UnixAddress& a);
std::string repr_of(const NetlinkAddress& a);
std::string repr_of(const PacketAddress& a);

// Methods every address class shares: text, ordering, hashing, pickling, to_tuple.
template <typename T>
void add_common(py::class_<T>& cls, py::module_ module) {
  cls.def("__str__", [](const T& a) { return fs_str(a.to_string()); })
      .def("__repr__", [](const T& a) { return repr_of(a); })
      .def("__hash__", [](const T& a) { return hash_of(a); })
      .def("__eq__", [](const T& a, const Address& b) { return Address(a) == b; }, py::is_operator())
      .def("__ne__", [](const T& a, const Address& b) { return Address(a) != b; }, py::is_operator())
      .def("__lt__", [](const T& a, const Address& b) { return Address(a) < b; }, py::is_operator())
      .def("__le__", [](const T& a, const Address& b) { return Address(a) <= b; }, py::is_operator())
      .def("__gt__", [](const T& a, const Address& b) { return Address(a) > b; }, py::is_operator())
      .def("__ge__", [](const T& a, const Address& b) { return Address(a) >= b; }, py::is_operator())
      .def("to_tuple", [](const T& a) { return to_tuple(a); },
           "The standard library's form of this address (what socket.getsockname() returns).")
      // Pickled as address_from_sockaddr(the kernel's bytes): exact for every family (the text
      // has no spelling for an IPv6 flowinfo, the stdlib's packet tuple none for an interface
      // index without a name or a hardware address over 8 bytes), and __reduce__ (unlike
      // py::pickle's __getstate__/__setstate__) serves pickle protocols 0 and 1 too, where copyreg
      // cannot allocate a pybind11 instance.
      .def("__reduce__", [module](const T& a) {
        Address address(a);
        auto raw = reinterpret_cast<const char*>(sockaddr_of(address));
        return py::make_tuple(module.attr("address_from_sockaddr"), py::make_tuple(py::bytes(raw, length_of(address))));
      });
}

}  // namespace socketeer::bindings
