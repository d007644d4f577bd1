// Seconds from Python: the one converter every binding that takes a time in seconds uses (a
// socket's timeout, a stream call's, the poller's, the server's idle timeout, the fault proxy's
// latencies, the timer's delays). The rules:
//
//   None                            -> wait forever
//   an int or a float (or anything  -> that many seconds, rounded up to whole nanoseconds, so a
//   with __index__ or __float__)       tiny positive timeout still waits
//   NaN                             -> ValueError
//   negative                        -> ValueError ("timeout must be >= 0 or None, not -1")
//   more than kMaxSeconds (1e9 s,   -> wait forever. A deadline is a steady-clock time point in
//   about 31.7 years; inf included)    int64 nanoseconds: the bound keeps now + timeout far from
//                                      overflowing, and no wait that long is meant as a limit
//   anything else (str, bytes ...)  -> TypeError naming the parameter
//
// One rule may be stated on top, where a caller's contract says so: NonPositive::no_wait, the
// selectors module's "a timeout <= 0 polls without waiting" (Poller.poll, a timer's delay).
// Each error names the parameter as the Python caller knows it. Python-side deadlines (aio,
// Listener.accept, connect) follow the same rules through _core.timeout_seconds().
#pragma once

#include <chrono>

#include "bindings.hpp"
#include "socketeer/deadline.hpp"

namespace socketeer::bindings {

inline constexpr double kMaxSeconds = 1e9;

enum class NonPositive { reject, no_wait };

// value (nullptr counts as None) as a Timeout: nullopt is "wait forever".
Timeout timeout_arg(PyObject* value, const char* parameter, NonPositive rule = NonPositive::reject);
// A duration that must be finite (a proxy's latency): the rules above, with "forever" held to
// kMaxSeconds.
std::chrono::nanoseconds duration_arg(PyObject* value, const char* parameter);
// None for "forever", else float seconds: what gettimeout() and timeout_seconds() return.
py::object timeout_to_python(Timeout timeout);

// A pybind11 argument named `timeout`, converted by the rules above.
struct TimeoutArg {
  Timeout value;
};

}  // namespace socketeer::bindings

namespace pybind11::detail {

template <>
struct type_caster<socketeer::bindings::TimeoutArg> {
  PYBIND11_TYPE_CASTER(socketeer::bindings::TimeoutArg, const_name("float | None"));
  bool load(handle source, bool) {
    value.value = socketeer::bindings::timeout_arg(source.ptr(), "timeout");
    return true;
  }
};

}  // namespace pybind11::detail
