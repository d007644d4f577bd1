// The one converter from the core's TcpInfo to socketeer.TcpInfo, used by Socket.tcp_info()
// and by sock_diag's records (socketeer.sockets(tcp_info=True)).
//
// Why not TcpInfo(**fields): a frozen 40-field dataclass's __init__ sets each field through
// object.__setattr__, ~12 us per object here, ~25 us through pybind11's kwargs path; listing
// 10,000 sockets' TCP_INFO spent 0.25 s in it. The object is allocated as object.__new__ does
// and its __dict__ filled with what the dataclass's __init__ would have set: ~1.5 us.
// That needs a class whose instances keep a __dict__; for any other class registered (slots)
// the converter calls it with keyword arguments.
#include <iterator>

#include "bindings.hpp"
#include "socketeer/socket.hpp"

namespace socketeer::bindings {
namespace {

// Set once by socketeer.socket at import; kept for the interpreter's life (never released, so
// nothing runs at static destruction after Python is gone).
PyTypeObject* tcp_info_type = nullptr;
PyObject* tcp_state = nullptr;  // callable: int -> TcpState | int

// TcpInfo's fields, in the Python class's order.
#define SOCKETEER_TCP_INFO_FIELDS(X) \
  X(state) X(ca_state) X(retransmits) X(probes) X(backoff) X(options) X(rto) X(ato) X(snd_mss) X(rcv_mss) \
  X(unacked) X(sacked) X(lost) X(retrans) X(fackets) X(last_data_sent) X(last_ack_recv) X(last_data_recv) \
  X(last_ack_sent) X(pmtu) X(rcv_ssthresh) X(rtt) X(rttvar) X(snd_ssthresh) X(snd_cwnd) X(advmss) \
  X(reordering) X(rcv_rtt) X(rcv_space) X(total_retrans) X(bytes_acked) X(bytes_received) X(bytes_sent) \
  X(bytes_retrans) X(segs_out) X(segs_in) X(notsent_bytes) X(min_rtt) X(delivery_rate_app_limited) \
  X(delivery_rate)

// The field names in TcpInfo's order, interned once (as attribute names are, so lookups on the
// finished object compare by identity) and kept for the interpreter's life.
constexpr const char* kFieldNames[] = {
#define SOCKETEER_NAME(name) #name,
    SOCKETEER_TCP_INFO_FIELDS(SOCKETEER_NAME)
#undef SOCKETEER_NAME
};
constexpr size_t kFields = std::size(kFieldNames);

PyObject* const* field_names() {
  static PyObject* names[kFields] = {};
  if (!names[0])
    for (size_t k = 0; k < kFields; ++k)
      if (!(names[k] = PyUnicode_InternFromString(kFieldNames[k]))) throw py::error_already_set();
  return names;
}

py::dict fields_of(const TcpInfo& i) {
  const unsigned long long values[] = {
#define SOCKETEER_VALUE(name) static_cast<unsigned long long>(i.name),
      SOCKETEER_TCP_INFO_FIELDS(SOCKETEER_VALUE)
#undef SOCKETEER_VALUE
  };
  static_assert(std::size(values) == kFields);
  PyObject* const* names = field_names();
  py::dict d;
  for (size_t k = 0; k < kFields; ++k) {
    auto value = py::reinterpret_steal<py::object>(PyLong_FromUnsignedLongLong(values[k]));
    if (!value || PyDict_SetItem(d.ptr(), names[k], value.ptr()) < 0) throw py::error_already_set();
  }
  return d;
}

}  // namespace

py::object tcp_info_object(const TcpInfo& info) {
  py::dict fields = fields_of(info);
  if (!tcp_info_type) return fields;  // before socketeer.socket registered its types
  fields["state"] = py::reinterpret_borrow<py::object>(tcp_state)(info.state);
  PyObject* object = nullptr;
  if (tcp_info_type->tp_dictoffset != 0) {  // -1: a managed __dict__ (3.11+), also fine
    // The object's own __dict__ (made on first use) filled in, not replaced: 3.13 keeps a new
    // object's attributes inline and its lookups never consulted a dict handed to
    // PyObject_GenericSetDict (every field read raised AttributeError there).
    object = tcp_info_type->tp_alloc(tcp_info_type, 0);
    PyObject* dict = object ? PyObject_GenericGetDict(object, nullptr) : nullptr;
    if (!dict || PyDict_Update(dict, fields.ptr()) < 0) Py_CLEAR(object);
    Py_XDECREF(dict);
  } else {
    py::tuple no_args;
    object = PyObject_Call(reinterpret_cast<PyObject*>(tcp_info_type), no_args.ptr(), fields.ptr());
  }
  if (!object) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(object);
}

void init_tcp_info(py::module_& m) {
  m.def(
      "_tcp_info_types",
      [](py::type type, py::object state) {
        tcp_info_type = reinterpret_cast<PyTypeObject*>(type.release().ptr());
        tcp_state = state.release().ptr();
      },
      py::arg("tcp_info"), py::arg("state"),
      "Called once by socketeer.socket: the TcpInfo class the core's TCP_INFO is handed out as, and "
      "the converter of its state field (int -> TcpState, or the int when it names none).");
}

}  // namespace socketeer::bindings
