#include "socketeer/netns.hpp"

#include <fcntl.h>
#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "socketeer/error.hpp"

namespace socketeer {

Fd open_netns(std::string_view name_or_path) {
  if (name_or_path.empty() || name_or_path == "." || name_or_path == "..")
    throw InvalidArgument("network namespace name is empty or not a name: '" +
                          std::string(name_or_path) + "'");
  std::string path = name_or_path.find('/') == std::string_view::npos
                         ? "/run/netns/" + std::string(name_or_path)
                         : std::string(name_or_path);
  return Fd(check(::open(path.c_str(), O_RDONLY | O_CLOEXEC), "open network namespace", path));
}

NetnsScope::NetnsScope(int netns_fd)
    : original_(check(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC),
                      "open network namespace", "/proc/thread-self/ns/net")) {
  check(::setns(netns_fd, CLONE_NEWNET), "enter network namespace");
}

NetnsScope::~NetnsScope() {
  // Going back into a namespace we were in (through an fd we hold) does not fail short of a
  // kernel bug; if it ever did, this thread would go on in the wrong namespace and every later
  // socket it made would silently land there: stopping is the only safe answer.
  if (::setns(original_.get(), CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "socketeer: cannot return to the original network namespace: %s\n",
                 std::strerror(errno));
    std::abort();
  }
}

}  // namespace socketeer
