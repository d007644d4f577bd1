// _core.FaultProxy: the C++ fault-injecting proxy (see fault_proxy.hpp); socketeer.faults
// gives it its Python API.
#include "bindings.hpp"
#include "socketeer/fault_proxy.hpp"
#include "timeouts.hpp"

namespace socketeer::bindings {
namespace {

double in_seconds(std::chrono::nanoseconds value) { return std::chrono::duration<double>(value).count(); }

Faults faults_from(const py::dict& d) {
  Faults f;
  for (auto [key, value] : d) {
    std::string name = py::str(key);
    if (name == "probability") f.probability = value.cast<double>();
    else if (name == "latency") f.latency = duration_arg(value.ptr(), "latency");
    else if (name == "jitter") f.jitter = duration_arg(value.ptr(), "jitter");
    else if (name == "bandwidth") f.bandwidth = value.cast<uint64_t>();
    else if (name == "slice_size") f.slice_size = value.cast<size_t>();
    else if (name == "slice_delay") f.slice_delay = duration_arg(value.ptr(), "slice_delay");
    else if (name == "reset_after") f.reset_after = value.cast<int64_t>();
    else if (name == "close_after") f.close_after = value.cast<int64_t>();
    else if (name == "half_close") f.half_close = value.cast<bool>();
    else if (name == "slow_close") f.slow_close = duration_arg(value.ptr(), "slow_close");
    else if (name == "timeout") f.timeout = value.is_none() ? std::chrono::nanoseconds(-1) : duration_arg(value.ptr(), "timeout");
    else if (name == "drop") f.drop = value.cast<double>();
    else if (name == "duplicate") f.duplicate = value.cast<double>();
    else if (name == "reorder") f.reorder = value.cast<double>();
    else throw py::value_error("unknown fault '" + name + "'");
  }
  return f;
}

py::dict faults_to(const Faults& f) {
  py::dict d;
  d["probability"] = f.probability;
  d["latency"] = in_seconds(f.latency);
  d["jitter"] = in_seconds(f.jitter);
  d["bandwidth"] = f.bandwidth;
  d["slice_size"] = f.slice_size;
  d["slice_delay"] = in_seconds(f.slice_delay);
  d["reset_after"] = f.reset_after;
  d["close_after"] = f.close_after;
  d["half_close"] = f.half_close;
  d["slow_close"] = in_seconds(f.slow_close);
  d["timeout"] = f.timeout < std::chrono::nanoseconds(0) ? py::object(py::none()) : py::float_(in_seconds(f.timeout));
  d["drop"] = f.drop;
  d["duplicate"] = f.duplicate;
  d["reorder"] = f.reorder;
  return d;
}

FaultProxy::Direction direction_of(int value) {
  if (value != 0 && value != 1) throw py::value_error("direction must be 0 (upstream) or 1 (downstream)");
  return static_cast<FaultProxy::Direction>(value);
}

}  // namespace

void init_proxy(py::module_& m) {
  py::class_<FaultProxy>(m, "FaultProxy", "The C++ fault proxy; use socketeer.FaultProxy.")
      .def(py::init([](Socket& listener, const Address& upstream) {
             return std::make_unique<FaultProxy>(std::move(listener), upstream);
           }),
           py::arg("listener"), py::arg("upstream"), "Takes over a bound (listening, for TCP) socket.")
      .def_property_readonly("local_address", &FaultProxy::local_address)
      .def_property_readonly("upstream_address", &FaultProxy::upstream_address)
      .def_property_readonly("datagram", &FaultProxy::datagram)
      .def_property_readonly("running", &FaultProxy::running)
      .def("start", &FaultProxy::start)
      .def("stop", &FaultProxy::stop, py::call_guard<py::gil_scoped_release>())
      .def("close", &FaultProxy::close, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("closed", &FaultProxy::closed)
      .def("faults", [](const FaultProxy& p, int direction) { return faults_to(p.faults(direction_of(direction))); })
      .def("set_faults", [](FaultProxy& p, int direction, const py::dict& faults) {
        p.set_faults(direction_of(direction), faults_from(faults));
      })
      .def_property("black_hole", &FaultProxy::black_hole, &FaultProxy::set_black_hole)
      .def_property("enabled", &FaultProxy::enabled,
                    py::cpp_function(&FaultProxy::set_enabled, py::call_guard<py::gil_scoped_release>()))
      .def("stats", [](const FaultProxy& p) {
        FaultProxyStats s = p.stats();
        py::dict d;
        d["connections"] = s.connections;
        d["active"] = s.active;
        d["upstream_bytes"] = s.upstream_bytes;
        d["downstream_bytes"] = s.downstream_bytes;
        d["datagrams"] = s.datagrams;
        d["dropped"] = s.dropped;
        d["duplicated"] = s.duplicated;
        d["reordered"] = s.reordered;
        d["connect_errors"] = s.connect_errors;
        d["connect_errno"] = s.connect_errno;
        return d;
      });
}

}  // namespace socketeer::bindings
