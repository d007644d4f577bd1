// rtnetlink for socketeer.netlink: each dump or change opens a NETLINK_ROUTE socket (inside
// the namespace given: None, an fd, or a name or path for open_netns), runs with the GIL
// released, and hands back finished records.
//
// The record types are socketeer.netlink's frozen dataclasses, registered once by
// _core.rtnl_records(); the records are built here by calling them with keyword arguments,
// their address fields already ipaddress objects. Why not pybind11 classes: the dataclasses give
// value equality, hashing, dataclasses.replace/asdict and pickling for free, their fields are
// real Python objects (ipaddress, str) instead of getters converting on every access, and the
// reprs and HTML tables live with the rest of the Python ergonomics.
#include <sys/socket.h>

#include <variant>

#include "bindings.hpp"
#include "socketeer/netns.hpp"
#include "socketeer/rtnetlink.hpp"

namespace socketeer::bindings {
namespace {

using namespace socketeer::rtnl;
using namespace pybind11::literals;
using NetnsArg = std::optional<std::variant<int, std::string>>;
using InterfaceArg = std::variant<int, std::string>;

// The Python record types. Held for the life of the process (never decref'd at shutdown).
struct RecordTypes {
  py::object link, link_stats, address, route, neighbour, event;
};
RecordTypes* record_types = nullptr;

const RecordTypes& records() {
  if (!record_types) throw std::runtime_error("socketeer.netlink's record types are not registered");
  return *record_types;
}

// A namespace argument as an fd: the caller's own, or one opened here (by name or path) and
// closed with this object; no fd for None (the calling thread's namespace).
struct NetnsFd {
  explicit NetnsFd(const NetnsArg& netns) {
    if (netns && std::holds_alternative<std::string>(*netns)) {
      opened = open_netns(std::get<std::string>(*netns));
      fd = opened.get();
    } else if (netns) {
      fd = std::get<int>(*netns);
    }
  }
  Fd opened;
  std::optional<int> fd;
};

// Runs fn(socket) on a NETLINK_ROUTE socket in the namespace `netns`. Call with the GIL released.
template <class F>
auto in_netns(const NetnsArg& netns, F&& fn) {
  NetnsFd where(netns);
  NetlinkSocket socket = where.fd ? NetlinkSocket(NETLINK_ROUTE, 0, *where.fd) : NetlinkSocket(NETLINK_ROUTE);
  return fn(socket);
}

Interface interface_of(const InterfaceArg& arg) {
  if (auto* name = std::get_if<std::string>(&arg)) return Interface{0, *name};
  int index = std::get<int>(arg);
  if (index <= 0) throw InvalidArgument("interface index must be positive, not " + std::to_string(index));
  return Interface{index, {}};
}

IpAddress ip_of(const py::bytes& packed) {
  std::string_view bytes = packed;
  int family = bytes.size() == 4 ? AF_INET : AF_INET6;
  return IpAddress::make(family, std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

// --- C++ records -> Python records (GIL held) -------------------------------------------------

struct Converter {
  py::object ip_address = py::module_::import("ipaddress").attr("ip_address");
  py::object ip_network = py::module_::import("ipaddress").attr("ip_network");

  py::object ip(const IpAddress& address) const {
    auto view = address.view();
    return ip_address(py::bytes(reinterpret_cast<const char*>(view.data()), view.size()));
  }
  py::object ip(const std::optional<IpAddress>& address) const { return address ? ip(*address) : py::none(); }
  static py::object hardware(const HardwareAddress& address) {
    return address.empty() ? py::none() : py::object(py::str(hardware_text(address)));
  }
  static py::object index(int value) { return value ? py::object(py::int_(value)) : py::none(); }
  static py::object text(const std::string& value) { return value.empty() ? py::none() : py::object(py::str(value)); }

  py::object operator()(const Link& link) const {
    py::object stats = py::none();
    if (link.stats) {
      const LinkStats& s = *link.stats;
      stats = records().link_stats(
          "rx_packets"_a = s.rx_packets, "rx_bytes"_a = s.rx_bytes, "rx_errors"_a = s.rx_errors,
          "rx_dropped"_a = s.rx_dropped, "tx_packets"_a = s.tx_packets, "tx_bytes"_a = s.tx_bytes,
          "tx_errors"_a = s.tx_errors, "tx_dropped"_a = s.tx_dropped);
    }
    return records().link(
        "index"_a = link.index, "name"_a = link.name, "flags"_a = link.flags, "up"_a = link.up(),
        "running"_a = link.running(), "lower_up"_a = link.lower_up(), "mtu"_a = link.mtu,
        "address"_a = hardware(link.address), "broadcast"_a = hardware(link.broadcast), "kind"_a = text(link.kind),
        "master"_a = index(link.master), "link"_a = index(link.link), "operstate"_a = operstate_name(link.operstate),
        "txqlen"_a = link.txqlen, "type"_a = link.type, "stats"_a = stats);
  }
  py::object operator()(const InterfaceAddress& a) const {
    return records().address("index"_a = a.index, "family"_a = a.family, "address"_a = ip(a.address),
                             "prefix_len"_a = a.prefix_len, "peer"_a = ip(a.peer), "broadcast"_a = ip(a.broadcast),
                             "scope"_a = a.scope, "flags"_a = a.flags, "label"_a = text(a.label));
  }
  py::object operator()(const Route& r) const {
    auto view = r.destination.view();
    py::object destination = ip_network(
        py::make_tuple(py::bytes(reinterpret_cast<const char*>(view.data()), view.size()), r.prefix_len),
        "strict"_a = false);
    py::object priority = r.priority ? py::object(py::int_(*r.priority)) : py::none();
    return records().route("family"_a = r.family, "destination"_a = destination, "gateway"_a = ip(r.gateway),
                           "oif"_a = index(r.oif), "table"_a = r.table, "protocol"_a = r.protocol,
                           "scope"_a = r.scope, "type"_a = r.type, "priority"_a = priority,
                           "source"_a = ip(r.source));
  }
  py::object operator()(const Neighbour& n) const {
    return records().neighbour("index"_a = n.index, "family"_a = n.family, "address"_a = ip(n.address),
                               "lladdr"_a = hardware(n.lladdr), "state"_a = neighbour_state_name(n.state),
                               "flags"_a = n.flags);
  }
  py::object operator()(const Event& event) const {
    return records().event("action"_a = event.added ? "new" : "del",
                           "record"_a = std::visit([&](const auto& record) { return (*this)(record); }, event.record));
  }

  template <class Record>
  py::list list(const std::vector<Record>& found) const {
    py::list out(found.size());
    for (size_t i = 0; i < found.size(); ++i) out[i] = (*this)(found[i]);
    return out;
  }
};

// Runs a dump with the GIL released, then converts its records with the GIL held.
template <class F>
py::list dumped(F&& dump) {
  auto found = [&] {
    py::gil_scoped_release release;
    return dump();
  }();
  return Converter().list(found);
}

// The monitor as Python holds it. wait()/read() keep their own reference to the C++ monitor
// while the GIL is released, so close() from another thread only wakes them: the fds are
// closed by whichever of the two lets go last.
class PyMonitor {
 public:
  PyMonitor(const std::vector<std::string>& groups, const NetnsArg& netns) {
    uint32_t bits = monitor_groups(groups);
    py::gil_scoped_release release;
    NetnsFd where(netns);
    monitor_ = std::make_shared<Monitor>(bits, where.fd);
  }
  int fileno() const { return monitor_ ? monitor_->fd() : -1; }
  bool closed() const { return !monitor_; }
  bool wait(int timeout_ms) {
    auto monitor = monitor_;
    if (!monitor) return false;
    py::gil_scoped_release release;
    return monitor->wait(timeout_ms);
  }
  py::list read() {
    auto monitor = monitor_;
    if (!monitor) return py::list();
    auto events = [&] {
      py::gil_scoped_release release;
      return monitor->read();
    }();
    return Converter().list(events);
  }
  void close() {
    if (auto monitor = std::exchange(monitor_, nullptr)) monitor->close();
  }

 private:
  std::shared_ptr<Monitor> monitor_;
};

}  // namespace

void init_netlink(py::module_& m) {
  m.def(
      "rtnl_records",
      [](py::object link, py::object link_stats, py::object address, py::object route, py::object neighbour,
         py::object event) {
        delete record_types;
        record_types = new RecordTypes{link, link_stats, address, route, neighbour, event};
      },
      "link"_a, "link_stats"_a, "address"_a, "route"_a, "neighbour"_a, "event"_a,
      "Registers socketeer.netlink's record types, which the rtnl_* functions build.");
  m.def(
      "rtnl_links", [](const NetnsArg& netns) { return dumped([&] { return in_netns(netns, dump_links); }); },
      "netns"_a, "Dumps the links (RTM_GETLINK) of a network namespace.");
  m.def(
      "rtnl_addresses",
      [](int family, std::optional<InterfaceArg> interface, const NetnsArg& netns) {
        return dumped([&] {
          return in_netns(netns, [&](NetlinkSocket& socket) {
            int index = interface ? interface_index(socket, interface_of(*interface),
                                                    "dump addresses on " + interface_of(*interface).text())
                                  : 0;
            return dump_addresses(socket, family, index);
          });
        });
      },
      "family"_a, "interface"_a, "netns"_a, "Dumps the addresses (RTM_GETADDR); family 0 for all.");
  m.def(
      "rtnl_routes",
      [](int family, std::optional<uint32_t> table, const NetnsArg& netns) {
        return dumped([&] {
          return in_netns(netns, [&](NetlinkSocket& socket) { return dump_routes(socket, family, table); });
        });
      },
      "family"_a, "table"_a, "netns"_a, "Dumps the routes (RTM_GETROUTE) of one table, or all (None).");
  m.def(
      "rtnl_neighbours",
      [](int family, const NetnsArg& netns) {
        return dumped([&] {
          return in_netns(netns, [&](NetlinkSocket& socket) { return dump_neighbours(socket, family); });
        });
      },
      "family"_a, "netns"_a, "Dumps the neighbour tables (RTM_GETNEIGH).");
  m.def(
      "rtnl_set_link",
      [](const InterfaceArg& interface, std::optional<bool> up, std::optional<uint32_t> mtu, const NetnsArg& netns) {
        Interface which = interface_of(interface);
        py::gil_scoped_release release;
        in_netns(netns, [&](NetlinkSocket& socket) { set_link(socket, which, up, mtu); });
      },
      "interface"_a, "up"_a, "mtu"_a, "netns"_a);
  m.def(
      "rtnl_change_address",
      [](bool add, const InterfaceArg& interface, const py::bytes& address, int prefix_len, const NetnsArg& netns) {
        Interface which = interface_of(interface);
        IpAddress ip = ip_of(address);
        py::gil_scoped_release release;
        in_netns(netns, [&](NetlinkSocket& socket) {
          add ? add_address(socket, which, ip, prefix_len) : delete_address(socket, which, ip, prefix_len);
        });
      },
      "add"_a, "interface"_a, "address"_a, "prefix_len"_a, "netns"_a);
  m.def(
      "rtnl_add_route",
      [](const py::bytes& destination, int prefix_len, std::optional<py::bytes> gateway,
         std::optional<InterfaceArg> interface, std::optional<uint32_t> table, const NetnsArg& netns) {
        RouteSpec spec{ip_of(destination), prefix_len, {}, {}, table};
        if (gateway) spec.gateway = ip_of(*gateway);
        if (interface) spec.interface = interface_of(*interface);
        py::gil_scoped_release release;
        in_netns(netns, [&](NetlinkSocket& socket) { add_route(socket, spec); });
      },
      "destination"_a, "prefix_len"_a, "gateway"_a, "interface"_a, "table"_a, "netns"_a);
  m.def(
      "rtnl_add_veth",
      [](const std::string& name, const std::string& peer, const NetnsArg& peer_netns, const NetnsArg& netns) {
        py::gil_scoped_release release;
        NetnsFd peer_where(peer_netns);
        in_netns(netns, [&](NetlinkSocket& socket) { add_veth(socket, name, peer, peer_where.fd); });
      },
      "name"_a, "peer"_a, "peer_netns"_a, "netns"_a);
  m.def(
      "rtnl_delete_link",
      [](const InterfaceArg& interface, const NetnsArg& netns) {
        Interface which = interface_of(interface);
        py::gil_scoped_release release;
        in_netns(netns, [&](NetlinkSocket& socket) { delete_link(socket, which); });
      },
      "interface"_a, "netns"_a);

  py::class_<PyMonitor>(m, "RtnlMonitor", "A NETLINK_ROUTE socket on multicast groups. Use socketeer.netlink.monitor.")
      .def(py::init<const std::vector<std::string>&, const NetnsArg&>(), "groups"_a, "netns"_a)
      .def("fileno", &PyMonitor::fileno)
      .def("wait", &PyMonitor::wait, "timeout_ms"_a)
      .def("read", &PyMonitor::read)
      .def("close", &PyMonitor::close)
      .def_property_readonly("closed", &PyMonitor::closed);
}

}  // namespace socketeer::bindings
