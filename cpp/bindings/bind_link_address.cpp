// _core.NetlinkAddress and _core.PacketAddress, and their stdlib tuples, as CPython's
// socketmodule.c makesockaddr and getsockaddrarg spell them:
//   AF_NETLINK  (pid, groups)
//   AF_PACKET   (ifname, proto[, pkttype[, hatype[, addr]]]), the interface by name
// Two policies differ from CPython's, both stated in socketeer.Socket's docstring: numbers out of
// their field's range raise OverflowError (CPython truncates them silently), and the interface
// name is looked up with if_nametoindex, so a name of 16 bytes or more is refused (CPython cuts it
// to 15 and may find another interface).
#include <linux/if_ether.h>
#include <net/if.h>

#include <cstdio>
#include <iterator>

#include "address_class.hpp"
#include "socketeer/error.hpp"

namespace socketeer::bindings {
namespace {

// An integer in [0, high], or OverflowError naming it; TypeError for a non-integer.
unsigned long field(py::handle item, unsigned long high, const char* family, const char* what) {
  long long value = PyLong_AsLongLong(item.ptr());
  if (value == -1 && PyErr_Occurred()) throw py::error_already_set();
  if (value < 0 || static_cast<unsigned long long>(value) > high) {
    PyErr_Format(PyExc_OverflowError, "%s address: %s must be 0-%lu, got %lld", family, what, high, value);
    throw py::error_already_set();
  }
  return static_cast<unsigned long>(value);
}

NetlinkAddress netlink_from_python(py::handle pid, py::handle groups) {
  return NetlinkAddress(static_cast<uint32_t>(field(pid, 0xffffffffUL, "AF_NETLINK", "pid")),
                        static_cast<uint32_t>(field(groups, 0xffffffffUL, "AF_NETLINK", "groups")));
}

// An interface name (str) looked up whole, or (index_allowed) an index; OSError ENODEV naming an
// unknown name, as the stdlib's bind(("nosuchif0", 0)) raises.
int interface_from_python(py::handle interface, bool index_allowed) {
  if (index_allowed && PyLong_Check(interface.ptr()))
    return static_cast<int>(field(interface, 0x7fffffffUL, "AF_PACKET", "interface index"));
  if (!PyUnicode_Check(interface.ptr()))
    throw py::type_error(std::string("AF_PACKET address: ifname must be str") + (index_allowed ? " or int" : "") +
                         ", not '" + Py_TYPE(interface.ptr())->tp_name + "'");
  Py_ssize_t size = 0;
  const char* text = PyUnicode_AsUTF8AndSize(interface.ptr(), &size);
  if (!text) throw py::error_already_set();
  std::string_view name(text, static_cast<size_t>(size));
  if (name.find('\0') != std::string_view::npos) throw py::value_error("AF_PACKET address: ifname contains a NUL");
  unsigned index = interface_index(name);
  if (index == 0) throw_error(ENODEV, "find interface", "'" + std::string(name) + "'");
  return static_cast<int>(index);
}

// Checked in CPython's order: the items' types, the interface, the hardware address, the ranges.
PacketAddress packet_from_python(py::handle interface, bool index_allowed, py::handle protocol, py::handle pkttype,
                                 py::handle hatype, py::handle hwaddr) {
  ReadBuffer hardware;
  if (hwaddr && !hardware.acquire(hwaddr.ptr())) throw py::error_already_set();
  int ifindex = interface_from_python(interface, index_allowed);
  if (hardware.size() > PacketAddress::max_given_hwaddr)
    throw py::value_error("Hardware address must be 8 bytes or less, got " + std::to_string(hardware.size()));
  return PacketAddress(ifindex, static_cast<uint16_t>(field(protocol, 0xffff, "AF_PACKET", "proto")),
                       static_cast<uint8_t>(pkttype ? field(pkttype, 0xff, "AF_PACKET", "pkttype") : PACKET_HOST),
                       static_cast<uint16_t>(hatype ? field(hatype, 0xffff, "AF_PACKET", "hatype") : 0),
                       std::string_view(hardware.data(), hardware.size()));
}

constexpr const char* pkttype_names[] = {"PACKET_HOST",     "PACKET_BROADCAST", "PACKET_MULTICAST",
                                         "PACKET_OTHERHOST", "PACKET_OUTGOING",  "PACKET_LOOPBACK",
                                         "PACKET_USER",      "PACKET_KERNEL"};

py::object ifname_or_none(const PacketAddress& a) {
  std::string name = a.ifname();
  return name.empty() ? py::object(py::none()) : py::object(fs_str(name));
}

}  // namespace

std::string repr_of(const NetlinkAddress& a) {
  char groups[16];
  std::snprintf(groups, sizeof groups, a.groups() ? "0x%x" : "0", a.groups());  // a bit mask
  return "NetlinkAddress(pid=" + std::to_string(a.pid()) + ", groups=" + groups + ")";
}

// PacketAddress('lo', protocol=0x0003), with pkttype, hatype and hwaddr where they are not the
// defaults; the interface by index where no name stands for it.
std::string repr_of(const PacketAddress& a) {
  std::string name = a.ifname();
  char protocol[8];
  std::snprintf(protocol, sizeof protocol, "0x%04x", a.protocol());
  std::string text = "PacketAddress(" + (name.empty() ? std::to_string(a.ifindex()) : std::string(py::repr(fs_str(name)))) +
                     ", protocol=" + protocol;
  if (a.pkttype() != PACKET_HOST)
    text += ", pkttype=" + (a.pkttype() < std::size(pkttype_names) ? std::string(pkttype_names[a.pkttype()])
                                                                   : std::to_string(a.pkttype()));
  if (a.hatype()) text += ", hatype=" + std::to_string(a.hatype());
  if (!a.hwaddr().empty()) text += ", hwaddr=" + std::string(py::repr(py::bytes(a.hwaddr().data(), a.hwaddr().size())));
  return text + ")";
}

NetlinkAddress netlink_from_tuple(const py::tuple& items) {
  if (items.size() != 2)
    throw py::type_error("AF_NETLINK address must be a pair (pid, groups), got " + std::to_string(items.size()) +
                         " items");
  return netlink_from_python(items[0], items[1]);
}

PacketAddress packet_from_tuple(const py::tuple& items) {
  if (items.size() < 2 || items.size() > 5)
    throw py::type_error("AF_PACKET address must be (ifname, proto[, pkttype[, hatype[, addr]]]), got " +
                         std::to_string(items.size()) + " items");
  auto item = [&](size_t i) { return i < items.size() ? py::handle(items[i]) : py::handle(); };
  return packet_from_python(items[0], false, items[1], item(2), item(3), item(4));
}

// As CPython's makesockaddr: "" for an index without a name, the whole hardware address.
py::object packet_to_tuple(const PacketAddress& a) {
  return py::make_tuple(fs_str(a.ifname()), a.protocol(), a.pkttype(), a.hatype(),
                        py::bytes(a.hwaddr().data(), a.hwaddr().size()));
}

void init_link_address(py::module_& m) {
  py::class_<NetlinkAddress> netlink(m, "NetlinkAddress",
                                     "A netlink socket's address: a port id (0 is the kernel) and a bit mask of "
                                     "multicast groups (immutable).");
  netlink
      .def(py::init([](py::handle pid, py::handle groups) { return netlink_from_python(pid, groups); }),
           py::arg("pid") = 0, py::arg("groups") = 0)
      .def_property_readonly("pid", &NetlinkAddress::pid, "The port id (0: the kernel).")
      .def_property_readonly("groups", &NetlinkAddress::groups, "The bit mask of multicast groups (RTMGRP_* ...).");
  add_common(netlink, m);

  py::class_<PacketAddress> packet(m, "PacketAddress",
                                   "A packet socket's address (struct sockaddr_ll): an interface, an ethernet "
                                   "protocol and, on received frames, the packet type, ARPHRD_* type and sender's "
                                   "hardware address (immutable).");
  packet
      .def(py::init([](py::handle interface, py::handle protocol, py::handle pkttype, py::handle hatype,
                       py::handle hwaddr) { return packet_from_python(interface, true, protocol, pkttype, hatype, hwaddr); }),
           py::arg("interface"), py::arg("protocol") = ETH_P_ALL, py::arg("pkttype") = PACKET_HOST,
           py::arg("hatype") = 0, py::arg("hwaddr") = py::bytes())
      .def_property_readonly("ifindex", &PacketAddress::ifindex, "The interface index (0: every interface).")
      .def_property_readonly("ifname", &ifname_or_none, "The interface's name, None if its index has none (now).")
      .def_property_readonly("protocol", &PacketAddress::protocol, "The ethernet protocol, ETH_P_* (host byte order).")
      .def_property_readonly("pkttype", &PacketAddress::pkttype, "The packet type, PACKET_HOST, PACKET_OUTGOING ...")
      .def_property_readonly("hatype", &PacketAddress::hatype, "The hardware type, ARPHRD_* (1 is ethernet).")
      .def_property_readonly("hwaddr", [](const PacketAddress& a) { return py::bytes(a.hwaddr().data(), a.hwaddr().size()); },
                             "The hardware address (b\"\" when not given).");
  add_common(packet, m);
}

}  // namespace socketeer::bindings
