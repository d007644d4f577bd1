// _core.list_sockets and _core.SocketRecord: sock_diag (socketeer.sockets()). The dump and the
// /proc scan run with the GIL released; records are built in C++ as one Python object each,
// whose properties convert on access. tcp_info (tcp_info.cpp's converter) is built on first
// access and kept. The Python types the properties hand out (AddressFamily, SocketKind, TcpState,
// SocketProcess) are given once by socketeer.diag through _diag_types().
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bindings.hpp"
#include "socketeer/netns.hpp"
#include "socketeer/sock_diag.hpp"

namespace socketeer::bindings {
namespace {

// Set once at import of socketeer.diag; kept for the interpreter's life (never released, so
// nothing runs at static destruction after Python is gone).
struct Types {
  PyObject* family = nullptr;    // callable: int -> AddressFamily | int
  PyObject* kind = nullptr;      // callable: int -> SocketKind | int
  PyObject* state = nullptr;     // callable: int -> TcpState | int
  PyObject* process = nullptr;   // SocketProcess(pid, fd, name)
} types;

py::object call(PyObject* callable, py::object argument) {
  if (!callable) return argument;  // before socketeer.diag registered its types: plain values
  return py::reinterpret_borrow<py::object>(callable)(argument);
}

// One Python object per record, pointing into the dump's records, which all of them share (a
// record is ~570 bytes: moving each into an object of its own cost more than the dump itself).
struct Record {
  std::shared_ptr<const SocketRecords> all;
  const SocketRecord* record;
  std::vector<SocketOwner> owners;
  bool processes_asked = false;
  py::object tcp_info;  // built on first access
  const SocketRecord& r() const { return *record; }
};

const char* netid(const SocketRecord& r) {
  if (r.family == AF_UNIX) {
    switch (r.kind) {
      case SOCK_STREAM: return "u_str";
      case SOCK_DGRAM: return "u_dgr";
      case SOCK_SEQPACKET: return "u_seq";
      default: return "unix";
    }
  }
  switch (r.kind) {
    case SOCK_STREAM: return "tcp";
    case SOCK_DGRAM: return "udp";
    default: return "raw";
  }
}

constexpr int kListen = 10;

std::optional<uint16_t> port_arg(std::optional<long> value, const char* name) {
  if (!value) return std::nullopt;
  if (*value < 0 || *value > 65535)
    throw py::value_error(std::string(name) + " must be 0-65535, got " + std::to_string(*value));
  return static_cast<uint16_t>(*value);
}

py::list list_sockets_binding(bool tcp, bool udp, bool raw, uint32_t unix_kinds, bool inet4, bool inet6,
                              uint32_t states, std::optional<long> port, std::optional<long> sport,
                              std::optional<long> dport, bool tcp_info, bool processes, py::object netns,
                              bool skip_unsupported) {
  SocketQuery query;
  query.tcp = tcp;
  query.udp = udp;
  query.raw = raw;
  query.unix_kinds = unix_kinds;
  query.inet4 = inet4;
  query.inet6 = inet6;
  query.states = states;
  query.ports = {port_arg(port, "port"), port_arg(sport, "sport"), port_arg(dport, "dport")};
  query.tcp_info = tcp_info;
  query.skip_unsupported = skip_unsupported;
  int netns_fd = -1;
  std::optional<std::string> netns_path;
  if (PyLong_Check(netns.ptr())) {
    netns_fd = netns.cast<int>();
    if (netns_fd < 0) throw py::value_error("netns fd must be >= 0, got " + std::to_string(netns_fd));
  } else if (!netns.is_none()) {
    auto path = py::reinterpret_steal<py::object>(PyOS_FSPath(netns.ptr()));
    if (!path) throw py::error_already_set();
    if (PyBytes_Check(path.ptr())) path = py::reinterpret_steal<py::object>(PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(path.ptr())));
    netns_path = path.cast<std::string>();
  }
  auto records = std::make_shared<SocketRecords>();
  std::unordered_multimap<uint64_t, SocketOwner> owners;
  {
    py::gil_scoped_release release;
    Fd opened;
    if (netns_path) {
      opened = open_netns(*netns_path);
      netns_fd = opened.get();
    }
    *records = list_sockets(query, netns_fd);
    if (processes) {
      std::vector<uint64_t> inodes;
      inodes.reserve(records->size());
      for (auto& r : *records) inodes.push_back(r.inode);
      if (!inodes.empty()) owners = socket_owners(inodes);
    }
  }
  py::list out(records->size());
  std::shared_ptr<const SocketRecords> all = records;
  for (size_t i = 0; i < all->size(); ++i) {
    Record record{all, &(*all)[i], {}, processes, {}};
    if (processes) {
      auto [first, last] = owners.equal_range(record.r().inode);
      for (auto it = first; it != last; ++it) record.owners.push_back(it->second);
    }
    PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), py::cast(std::move(record)).release().ptr());
  }
  return out;
}

std::string repr(const Record& self) {
  const SocketRecord& r = self.r();
  py::object state_object = call(types.state, py::int_(r.state));
  std::string state = py::str(py::hasattr(state_object, "name") ? state_object.attr("name") : state_object);
  std::string text = std::string("SocketRecord(") + netid(r) + " " + state + " " + to_string(r.local);
  bool has_remote = r.family != AF_UNIX || r.peer_inode;
  if (has_remote) text += " -> " + (r.family == AF_UNIX && std::get<UnixAddress>(r.remote).unnamed()
                                        ? "inode " + std::to_string(r.peer_inode)
                                        : to_string(r.remote));
  return text + ", inode=" + std::to_string(r.inode) + ")";
}

}  // namespace

void init_sock_diag(py::module_& m) {
  py::class_<Record> cls(m, "SocketRecord",
                         "One socket as the kernel lists it (sock_diag): see socketeer.sockets().");
  cls.def_property_readonly("family", [](const Record& s) { return call(types.family, py::int_(s.r().family)); },
                            "AF_INET, AF_INET6 or AF_UNIX (an AddressFamily).")
      .def_property_readonly("kind", [](const Record& s) { return call(types.kind, py::int_(s.r().kind)); },
                             "SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET or SOCK_RAW (a SocketKind).")
      .def_property_readonly("protocol", [](const Record& s) { return s.r().protocol; },
                             "IPPROTO_TCP, IPPROTO_UDP, the raw protocol; 0 for unix sockets.")
      .def_property_readonly("netid", [](const Record& s) { return netid(s.r()); },
                             "ss's name for the kind: tcp, udp, raw, u_str, u_dgr, u_seq.")
      .def_property_readonly("state", [](const Record& s) { return call(types.state, py::int_(s.r().state)); },
                             "A TcpState; UDP, raw and unix sockets use ESTABLISHED (connected), "
                             "LISTEN, and CLOSE (not connected: ss's UNCONN).")
      .def_property_readonly("local", [](const Record& s) { return s.r().local; },
                             "The local address (an Address; an unnamed UnixAddress for a unix socket without a name).")
      .def_property_readonly("remote", [](const Record& s) { return s.r().remote; },
                             "The peer's address: 0.0.0.0:0 / [::]:0 when not connected; for unix "
                             "sockets the peer's name (unnamed if it has none or was not listed).")
      .def_property_readonly("recv_queue", [](const Record& s) { return s.r().recv_queue; },
                             "Bytes received and not yet read; for a listener, connections waiting to be accepted.")
      .def_property_readonly("send_queue", [](const Record& s) { return s.r().send_queue; },
                             "Bytes sent and not yet acknowledged (TCP) or not yet sent; for a listener, its backlog.")
      .def_property_readonly("listen_queue",
                             [](const Record& s) -> std::optional<uint32_t> {
                               if (s.r().state != kListen) return std::nullopt;
                               return s.r().recv_queue;
                             },
                             "For a listener, the connections waiting to be accepted; None otherwise.")
      .def_property_readonly("inode", [](const Record& s) { return s.r().inode; },
                             "The socket's inode: os.fstat(fd).st_ino, and socket:[inode] in /proc/PID/fd.")
      .def_property_readonly("uid", [](const Record& s) { return s.r().uid; },
                             "The owner's uid (None for unix sockets on kernels before 5.3).")
      .def_property_readonly("cookie", [](const Record& s) { return s.r().cookie; },
                             "INET: the kernel's socket cookie (SO_COOKIE); 0 for unix sockets.")
      .def_property_readonly("timer", [](const Record& s) { return s.r().timer; },
                             "INET: the timer running: 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero window probe.")
      .def_property_readonly("timer_expires", [](const Record& s) { return s.r().timer_expires_ms / 1000.0; },
                             "Seconds until that timer fires.")
      .def_property_readonly("retransmits", [](const Record& s) { return s.r().retransmits; },
                             "INET: retransmissions (or keepalive probes) the timer has made.")
      .def_property_readonly("tcp_info",
                             [](Record& s) -> py::object {
                               if (!s.r().tcp_info) return py::none();
                               if (!s.tcp_info) s.tcp_info = tcp_info_object(*s.r().tcp_info);
                               return s.tcp_info;
                             },
                             "The TcpInfo (as Socket.tcp_info() gives) when asked for with tcp_info=True; "
                             "None otherwise, and for TIME_WAIT and SYN_RECV entries. Built on first access.")
      .def_property_readonly("peer_inode",
                             [](const Record& s) -> std::optional<uint64_t> {
                               if (s.r().family != AF_UNIX || !s.r().peer_inode) return std::nullopt;
                               return s.r().peer_inode;
                             },
                             "Unix: the connected peer's inode (None if not connected).")
      .def_property_readonly("vfs_inode",
                             [](const Record& s) -> std::optional<uint64_t> {
                               if (!s.r().vfs_inode) return std::nullopt;
                               return s.r().vfs_inode;
                             },
                             "Unix bound to a path: the inode of the socket file (os.stat(path).st_ino).")
      .def_property_readonly("processes",
                             [](const Record& s) -> py::object {
                               if (!s.processes_asked) return py::none();
                               py::tuple found(s.owners.size());
                               for (size_t i = 0; i < s.owners.size(); ++i) {
                                 auto& o = s.owners[i];
                                 py::tuple args = py::make_tuple(o.pid, o.fd, o.name);
                                 found[i] = types.process ? py::reinterpret_borrow<py::object>(types.process)(*args)
                                                          : py::object(args);
                               }
                               return found;
                             },
                             "With processes=True, the (pid, fd, name) SocketProcess entries that hold "
                             "this socket (empty if none we may see); None otherwise.")
      .def("__repr__", &repr);

  m.def("list_sockets", &list_sockets_binding, py::arg("tcp"), py::arg("udp"), py::arg("raw"),
        py::arg("unix_kinds"), py::arg("inet4"), py::arg("inet6"), py::arg("states"), py::arg("port"),
        py::arg("sport"), py::arg("dport"), py::arg("tcp_info"), py::arg("processes"), py::arg("netns"),
        py::arg("skip_unsupported"),
        "The sock_diag dumps the arguments ask for (socketeer.sockets() builds them), as a list of "
        "SocketRecord; the dumps and the /proc scan run with the GIL released. skip_unsupported: "
        "leave out a kind whose diag module the kernel lacks instead of raising.");
  m.def(
      "_diag_types",
      [](py::object family, py::object kind, py::object state, py::object process) {
        types = {family.release().ptr(), kind.release().ptr(), state.release().ptr(), process.release().ptr()};
      },
      py::arg("family"), py::arg("kind"), py::arg("state"), py::arg("process"),
      "Called once by socketeer.diag: the converters SocketRecord's properties hand values through.");
}

}  // namespace socketeer::bindings
