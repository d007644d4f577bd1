// _core.AcceptBackoff: the reactor's accept-failure policy (cpp/include/socketeer/accept_backoff.hpp)
// for the Python accept loops, so socketeer.Listener and socketeer.aio.Listener back off exactly
// as the Server does.
#include "bindings.hpp"
#include "socketeer/accept_backoff.hpp"

namespace socketeer::bindings {

void init_accept(py::module_& m) {
  using std::chrono::duration;
  py::class_<AcceptBackoff>(m, "AcceptBackoff",
                            "What an accept loop does after accept() failed: retry at once, pause, or raise.")
      .def(py::init<>())
      .def("failed", [](AcceptBackoff& backoff, int code) -> std::optional<double> {
        switch (backoff.failed(code)) {
          case AcceptBackoff::Action::retry: return 0.0;
          case AcceptBackoff::Action::pause: return duration<double>(AcceptBackoff::kPause).count();
          case AcceptBackoff::Action::fatal: break;
        }
        return std::nullopt;
      }, py::arg("errno"),
           "Seconds to stop accepting after accept() failed with errno: 0.0 to accept again at once, "
           "None when the error is fatal (raise it).")
      .def("succeeded", &AcceptBackoff::succeeded,
           "An accept worked: how many pauses in a row it ended (0: there was no shortage).")
      .def_property_readonly("pauses", &AcceptBackoff::pauses, "Pauses in a row since the last accept that worked.");
}

}  // namespace socketeer::bindings
