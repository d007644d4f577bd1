// The stdlib's form of the families without an Address class (not INET, INET6, UNIX, NETLINK or
// PACKET), as CPython's socketmodule.c makesockaddr and getsockaddrarg spell a family they do
// not know: (family, sa_data) out, the 14 bytes after the family field; "bad family" in.
#include <cstring>

#include "bindings.hpp"
#include "socketeer/names.hpp"

namespace socketeer::bindings {

py::object other_to_tuple(const OtherAddress& address) {
  sockaddr generic{};
  std::memcpy(&generic, &address.raw, std::min<size_t>(sizeof generic, address.length));
  return py::make_tuple(address.family(), py::bytes(generic.sa_data, sizeof generic.sa_data));
}

OtherAddress other_from_python(int family, py::handle) {
  std::string message = "bad family: socketeer has no address form for " + family_name(family) + " sockets";
  PyErr_SetString(PyExc_OSError, message.c_str());
  throw py::error_already_set();
}

}  // namespace socketeer::bindings
