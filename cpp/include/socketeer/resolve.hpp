// Name resolution: getaddrinfo turned into Address values.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "socketeer/address.hpp"

namespace socketeer {

// getaddrinfo failed: code is the EAI_* value (negative on glibc), message gai_strerror's.
class ResolveError : public std::runtime_error {
 public:
  ResolveError(int code, std::string host);
  int code() const noexcept { return code_; }
  const std::string& host() const noexcept { return host_; }

 private:
  int code_;
  std::string host_;
};

struct ResolvedAddress {
  int family = 0;
  int type = 0;
  int protocol = 0;
  std::string canonical_name;
  Address address;
};

// Blocks while the resolver works: callers from Python release the GIL around it.
std::vector<ResolvedAddress> resolve(const std::string& host, const std::string& service,
                                     int family = 0, int type = 0, int protocol = 0,
                                     int flags = 0);

// host may be a numeric address (no lookup), "" (the wildcard) or a name (looked up).
InetAddress resolve_inet(const std::string& host, int port);
Inet6Address resolve_inet6(const std::string& host, int port, uint32_t flowinfo, uint32_t scope_id);

}  // namespace socketeer
