// Network namespaces: open one by name or path, and run a piece of code with the calling thread
// inside one. A socket stays in the namespace it was created in, so creating it inside a
// NetnsScope is all it takes to talk to (or list the sockets of) another namespace.
#pragma once

#include <string_view>

#include "socketeer/fd.hpp"

namespace socketeer {

// Opens a network namespace: `name_or_path` containing a '/' is a path (/proc/PID/ns/net,
// /run/netns/NAME), anything else a name under /run/netns (as `ip netns` makes them). ENOENT
// and the like name the path; O_CLOEXEC.
Fd open_netns(std::string_view name_or_path);

// Moves the calling thread into the namespace of `netns_fd` (setns CLONE_NEWNET) and back into
// the one it was in when the scope ends, also when it ends by an exception. Only this thread
// moves; other threads of the process stay where they are.
class NetnsScope {
 public:
  explicit NetnsScope(int netns_fd);
  ~NetnsScope();
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;

 private:
  Fd original_;
};

}  // namespace socketeer
