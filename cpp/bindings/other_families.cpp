// The stdlib's tuple forms of the families that have no Address class (yet: issue 16 gives
// AF_NETLINK and AF_PACKET classes of their own). As CPython's socketmodule.c makesockaddr and
// getsockaddrarg spell them:
//   AF_NETLINK  (pid, groups)
//   AF_PACKET   (ifname, proto[, pkttype[, hatype[, addr]]]), the interface by name
//   any other   (family, sa_data) out, the 14 bytes after the family field; "bad family" in
// Two policies differ from CPython's, both stated in socketeer.Socket's docstring: numbers out of
// their field's range raise OverflowError (CPython truncates them silently), and the interface
// name is looked up with if_nametoindex, so a name of 16 bytes or more is refused (CPython cuts it
// to 15 and may find another interface).
#include <net/if.h>
#include <linux/netlink.h>
#include <netpacket/packet.h>

#include <cstring>

#include "bindings.hpp"
#include "socketeer/error.hpp"
#include "socketeer/names.hpp"

namespace socketeer::bindings {
namespace {

// The kernel's struct for this family, from an OtherAddress (bytes it does not hold are zero).
template <typename Struct>
Struct unpacked(const OtherAddress& address) {
  Struct raw{};
  std::memcpy(&raw, &address.raw, std::min<size_t>(sizeof raw, address.length));
  return raw;
}

// An integer item in [0, high], or OverflowError naming it; TypeError for a non-integer.
unsigned long field(py::handle item, unsigned long high, const char* family, const char* what) {
  long long value = PyLong_AsLongLong(item.ptr());
  if (value == -1 && PyErr_Occurred()) throw py::error_already_set();
  if (value < 0 || static_cast<unsigned long long>(value) > high) {
    PyErr_Format(PyExc_OverflowError, "%s address: %s must be 0-%lu, got %lld", family, what, high, value);
    throw py::error_already_set();
  }
  return static_cast<unsigned long>(value);
}

py::object netlink_to_tuple(const OtherAddress& address) {
  auto nl = unpacked<sockaddr_nl>(address);
  return py::make_tuple(nl.nl_pid, nl.nl_groups);
}

OtherAddress netlink_from_tuple(const py::tuple& items) {
  if (items.size() != 2)
    throw py::type_error("AF_NETLINK address must be a pair (pid, groups), got " + std::to_string(items.size()) +
                         " items");
  sockaddr_nl nl{};
  nl.nl_family = AF_NETLINK;
  nl.nl_pid = static_cast<uint32_t>(field(items[0], 0xffffffffUL, "AF_NETLINK", "pid"));
  nl.nl_groups = static_cast<uint32_t>(field(items[1], 0xffffffffUL, "AF_NETLINK", "groups"));
  return OtherAddress(&nl, sizeof nl);
}

// The hardware address may be longer than sll_addr's 8 bytes (the kernel then reports a longer
// sockaddr): it is read from the bytes the kernel wrote, up to sll_halen.
py::object packet_to_tuple(const OtherAddress& address) {
  auto ll = unpacked<sockaddr_ll>(address);
  char name[IF_NAMESIZE] = "";
  if (ll.sll_ifindex > 0 && !::if_indextoname(static_cast<unsigned>(ll.sll_ifindex), name)) name[0] = '\0';
  constexpr size_t start = offsetof(sockaddr_ll, sll_addr);
  size_t written = address.length > start ? address.length - start : 0;
  auto hardware = reinterpret_cast<const char*>(&address.raw) + start;
  return py::make_tuple(py::reinterpret_steal<py::str>(PyUnicode_DecodeFSDefault(name)), ntohs(ll.sll_protocol),
                        ll.sll_pkttype, ll.sll_hatype, py::bytes(hardware, std::min<size_t>(ll.sll_halen, written)));
}

// Checked in CPython's order: the items' types, the interface, the hardware address, the ranges.
OtherAddress packet_from_tuple(const py::tuple& items) {
  if (items.size() < 2 || items.size() > 5)
    throw py::type_error("AF_PACKET address must be (ifname, proto[, pkttype[, hatype[, addr]]]), got " +
                         std::to_string(items.size()) + " items");
  if (!PyUnicode_Check(items[0].ptr()))
    throw py::type_error(std::string("AF_PACKET address: ifname must be str, not '") +
                         Py_TYPE(items[0].ptr())->tp_name + "'");
  Py_ssize_t size = 0;
  const char* text = PyUnicode_AsUTF8AndSize(items[0].ptr(), &size);
  if (!text) throw py::error_already_set();
  std::string ifname(text, static_cast<size_t>(size));
  if (ifname.find('\0') != std::string::npos) throw py::value_error("AF_PACKET address: ifname contains a NUL");
  ReadBuffer hardware;
  if (items.size() > 4 && !hardware.acquire(items[4].ptr())) throw py::error_already_set();
  unsigned ifindex = ::if_nametoindex(ifname.c_str());
  if (ifindex == 0) throw_error(errno ? errno : ENODEV, "find interface", "'" + ifname + "'");
  if (hardware.size() > 8) throw py::value_error("Hardware address must be 8 bytes or less");
  sockaddr_ll ll{};
  ll.sll_family = AF_PACKET;
  ll.sll_protocol = htons(static_cast<uint16_t>(field(items[1], 0xffff, "AF_PACKET", "proto")));
  ll.sll_ifindex = static_cast<int>(ifindex);
  ll.sll_pkttype = static_cast<unsigned char>(items.size() > 2 ? field(items[2], 0xff, "AF_PACKET", "pkttype")
                                                              : PACKET_HOST);
  ll.sll_hatype = static_cast<unsigned short>(items.size() > 3 ? field(items[3], 0xffff, "AF_PACKET", "hatype") : 0);
  ll.sll_halen = static_cast<unsigned char>(hardware.size());
  if (hardware.size()) std::memcpy(ll.sll_addr, hardware.data(), hardware.size());
  return OtherAddress(&ll, sizeof ll);
}

}  // namespace

py::object other_to_tuple(const OtherAddress& address) {
  if (address.family() == AF_NETLINK) return netlink_to_tuple(address);
  if (address.family() == AF_PACKET) return packet_to_tuple(address);
  auto generic = unpacked<sockaddr>(address);
  return py::make_tuple(address.family(), py::bytes(generic.sa_data, sizeof generic.sa_data));
}

OtherAddress other_from_python(int family, py::handle object) {
  if (family != AF_NETLINK && family != AF_PACKET) {
    std::string message = "bad family: socketeer has no address form for " + family_name(family) + " sockets";
    PyErr_SetString(PyExc_OSError, message.c_str());
    throw py::error_already_set();
  }
  const char* name = family == AF_NETLINK ? "AF_NETLINK" : "AF_PACKET";
  if (!PyTuple_Check(object.ptr()))
    throw py::type_error(std::string(name) + " address must be tuple, not '" + Py_TYPE(object.ptr())->tp_name + "'");
  auto items = py::reinterpret_borrow<py::tuple>(object);
  return family == AF_NETLINK ? netlink_from_tuple(items) : packet_from_tuple(items);
}

}  // namespace socketeer::bindings
