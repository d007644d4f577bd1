// Test helpers for the netlink tests: a fresh network namespace, and the Error a call throws.
#pragma once

#include <fcntl.h>
#include <sched.h>

#include <thread>

#include "socketeer/error.hpp"
#include "socketeer/fd.hpp"
#include "testing.hpp"

namespace socketeer::testing {

// A fresh network namespace (only "lo", down), as an fd: made by a thread that unshares and
// exits, so no thread of the test ever runs in it.
inline Fd new_netns() {
  Fd netns;
  std::thread([&] {
    check(::unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)");
    netns.reset(check(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), "open netns"));
  }).join();
  CHECK(netns.valid());
  return netns;
}

// The Error `call` throws; fails the test if it throws none.
template <class F>
Error error_from(F&& call) {
  try {
    call();
  } catch (const Error& error) {
    return error;
  }
  FAIL_AT("no error");
}

}  // namespace socketeer::testing
