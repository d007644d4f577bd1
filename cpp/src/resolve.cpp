#include "socketeer/resolve.hpp"

#include <netdb.h>

#include <cstring>
#include <memory>

#include "socketeer/error.hpp"

namespace socketeer {

ResolveError::ResolveError(int code, std::string host)
    : std::runtime_error(::gai_strerror(code)), code_(code), host_(std::move(host)) {}

std::vector<ResolvedAddress> resolve(const std::string& host, const std::string& service,
                                     int family, int type, int protocol, int flags) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = type;
  hints.ai_protocol = protocol;
  hints.ai_flags = flags;
  addrinfo* found = nullptr;
  int code = ::getaddrinfo(host.empty() ? nullptr : host.c_str(),
                           service.empty() ? nullptr : service.c_str(), &hints, &found);
  if (code == EAI_SYSTEM) throw_error(errno, "getaddrinfo", "for '" + host + "'");
  if (code != 0) throw ResolveError(code, host);
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, ::freeaddrinfo);
  std::vector<ResolvedAddress> results;
  for (auto item = found; item; item = item->ai_next) {
    if (item->ai_family != AF_INET && item->ai_family != AF_INET6) continue;
    sockaddr_storage storage{};
    std::memcpy(&storage, item->ai_addr, item->ai_addrlen);
    results.push_back({item->ai_family, item->ai_socktype, item->ai_protocol,
                       item->ai_canonname ? item->ai_canonname : "",
                       address_from_sockaddr(storage, item->ai_addrlen)});
  }
  return results;
}

namespace {

template <typename T>
T resolve_first(const std::string& host, int port) {
  auto found = resolve(host, std::to_string(port), T::family, SOCK_STREAM, 0, AI_NUMERICSERV);
  return std::get<T>(found.at(0).address);
}

}  // namespace

// The stdlib's conventions: "" is the wildcard address, "<broadcast>" the broadcast one.
InetAddress resolve_inet(const std::string& host, int port) {
  if (host.empty()) return *InetAddress::parse_host("0.0.0.0", port);
  if (host == "<broadcast>") return *InetAddress::parse_host("255.255.255.255", port);
  if (auto numeric = InetAddress::parse_host(host, port)) return *numeric;
  InetAddress::parse_host("0.0.0.0", port);  // checks the port before a slow lookup
  return resolve_first<InetAddress>(host, port);
}

Inet6Address resolve_inet6(const std::string& host, int port, uint32_t flowinfo, uint32_t scope_id) {
  if (host.empty()) return *Inet6Address::parse_host("::", port, flowinfo, scope_id);
  if (auto numeric = Inet6Address::parse_host(host, port, flowinfo, scope_id)) return *numeric;
  auto found = resolve_first<Inet6Address>(host, port);
  found.raw.sin6_flowinfo = htonl(flowinfo);
  if (scope_id) found.raw.sin6_scope_id = scope_id;
  return found;
}

}  // namespace socketeer
