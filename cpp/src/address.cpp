#include "socketeer/address.hpp"

#include <arpa/inet.h>
#include <net/if.h>

#include <cctype>
#include <charconv>
#include <cstring>
#include <algorithm>
#include <functional>
#include <type_traits>

#include "socketeer/error.hpp"
#include "socketeer/names.hpp"
#include "address_parts.hpp"

namespace socketeer {
namespace detail {

void invalid(std::string message) { throw InvalidArgument(std::move(message)); }


// Quotes a caller's text for an error message. Paths are bytes, not text, and the path limit
// cuts them short (possibly inside a UTF-8 sequence), so every byte that is not printable ASCII
// is written as \xNN: the message is always valid text.
std::string quoted(std::string_view text) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = "'";
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += digits[c >> 4];
      out += digits[c & 0xf];
    }
  }
  return out + "'";
}

}  // namespace detail

namespace {

using detail::invalid;
using detail::quoted;

uint16_t checked_port(int port) {
  if (port < 0 || port > 65535)
    invalid("port must be 0-65535, got " + std::to_string(port));
  return htons(static_cast<uint16_t>(port));
}

// Digits only: from_chars alone would also read "-0" as port 0.
int parse_port(std::string_view text, std::string_view whole) {
  int port = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || text[0] < '0' || text[0] > '9' || ec != std::errc{} || end != text.data() + text.size() ||
      port > 65535)
    invalid("bad port " + quoted(text) + " in address " + quoted(whole) + " (want 0-65535)");
  return port;
}

// An interface name or number after '%' in a scoped IPv6 address. A NUL would end the name early
// for if_nametoindex ("lo\0x" would pass as "lo"), so it makes the name unknown.
uint32_t parse_scope(std::string_view scope, std::string_view whole) {
  uint32_t index = 0;
  auto [end, ec] = std::from_chars(scope.data(), scope.data() + scope.size(), index);
  if (!scope.empty() && scope[0] >= '0' && scope[0] <= '9' && ec == std::errc{} &&
      end == scope.data() + scope.size())
    return index;
  index = interface_index(scope);
  if (index == 0) invalid("unknown interface " + quoted(scope) + " in IPv6 address " + quoted(whole));
  return index;
}

// Copies a numeric host into a C string for inet_pton; false if it cannot be one (too long, or
// a NUL inside, which inet_pton would take for the end: "1.2.3.4\0x" is not 1.2.3.4).
bool host_buffer(std::string_view host, char (&buffer)[INET6_ADDRSTRLEN]) {
  if (host.size() >= INET6_ADDRSTRLEN || host.find('\0') != std::string_view::npos) return false;
  std::memcpy(buffer, host.data(), host.size());
  buffer[host.size()] = '\0';
  return true;
}

template <typename T>
std::strong_ordering compare_bytes(const T& a, const T& b) {
  int c = std::memcmp(&a, &b, sizeof(T));
  return c <=> 0;
}

}  // namespace

// --- IPv4 ------------------------------------------------------------------------------------

std::optional<InetAddress> InetAddress::parse_host(std::string_view host, int port) {
  InetAddress address;
  address.raw.sin_port = checked_port(port);
  char buffer[INET6_ADDRSTRLEN];
  if (!host_buffer(host, buffer) || ::inet_pton(AF_INET, buffer, &address.raw.sin_addr) != 1) return std::nullopt;
  return address;
}

InetAddress::InetAddress(std::string_view host, int port) {
  auto parsed = parse_host(host, port);
  if (!parsed) invalid("not a numeric IPv4 address: " + quoted(host));
  *this = *parsed;
}

std::string InetAddress::host() const {
  char buffer[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &raw.sin_addr, buffer, sizeof buffer);
  return buffer;
}

std::string InetAddress::to_string() const { return host() + ":" + std::to_string(port()); }

std::strong_ordering InetAddress::operator<=>(const InetAddress& other) const {
  if (auto c = compare_bytes(raw.sin_addr, other.raw.sin_addr); c != 0) return c;
  return port() <=> other.port();
}

// --- IPv6 ------------------------------------------------------------------------------------

std::optional<Inet6Address> Inet6Address::parse_host(std::string_view host, int port,
                                                     uint32_t flowinfo, uint32_t scope_id) {
  Inet6Address address;
  address.raw.sin6_port = checked_port(port);
  address.raw.sin6_flowinfo = htonl(flowinfo);
  address.raw.sin6_scope_id = scope_id;
  if (auto percent = host.find('%'); percent != std::string_view::npos) {
    address.raw.sin6_scope_id = parse_scope(host.substr(percent + 1), host);
    host = host.substr(0, percent);
  }
  char buffer[INET6_ADDRSTRLEN];
  if (!host_buffer(host, buffer) || ::inet_pton(AF_INET6, buffer, &address.raw.sin6_addr) != 1) return std::nullopt;
  return address;
}

Inet6Address::Inet6Address(std::string_view host, int port, uint32_t flowinfo, uint32_t scope_id) {
  auto parsed = parse_host(host, port, flowinfo, scope_id);
  if (!parsed) invalid("not a numeric IPv6 address: " + quoted(host));
  *this = *parsed;
}

std::string Inet6Address::host_without_scope() const {
  char buffer[INET6_ADDRSTRLEN];
  ::inet_ntop(AF_INET6, &raw.sin6_addr, buffer, sizeof buffer);
  return buffer;
}

std::string Inet6Address::host() const {
  std::string text = host_without_scope();
  if (scope_id() != 0) {
    char name[IF_NAMESIZE];
    text += '%';
    text += ::if_indextoname(scope_id(), name) ? std::string(name) : std::to_string(scope_id());
  }
  return text;
}

std::string Inet6Address::to_string() const {
  return "[" + host() + "]:" + std::to_string(port());
}

std::strong_ordering Inet6Address::operator<=>(const Inet6Address& other) const {
  if (auto c = compare_bytes(raw.sin6_addr, other.raw.sin6_addr); c != 0) return c;
  if (auto c = port() <=> other.port(); c != 0) return c;
  if (auto c = flowinfo() <=> other.flowinfo(); c != 0) return c;
  return scope_id() <=> other.scope_id();
}

// --- UNIX ------------------------------------------------------------------------------------

UnixAddress::UnixAddress(std::string_view path, bool is_abstract) {
  raw.sun_family = AF_UNIX;
  if (path.size() > max_path)
    invalid("unix socket " + std::string(is_abstract ? "abstract name" : "path") + " is " +
            std::to_string(path.size()) + " bytes, the limit is " + std::to_string(max_path) +
            ": " + quoted(path.substr(0, 40)) + "...");
  if (!is_abstract && path.find('\0') != std::string_view::npos)
    invalid("unix socket path contains a NUL byte");
  if (!is_abstract && path.empty()) return;  // unnamed
  size_t offset = is_abstract ? 1 : 0;
  std::memcpy(raw.sun_path + offset, path.data(), path.size());
  // Path sockets count the terminating NUL, as the kernel does for getsockname; abstract names
  // are exactly the bytes given (a trailing NUL would be part of the name).
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + offset + path.size() +
                                  (is_abstract ? 0 : 1));
}

std::string UnixAddress::path() const {
  if (unnamed()) return {};
  size_t size = length - offsetof(sockaddr_un, sun_path);
  if (abstract()) return std::string(raw.sun_path + 1, size - 1);
  return std::string(raw.sun_path, strnlen(raw.sun_path, size));
}

// The text rule is in address.hpp: "//" before a path that would otherwise read as abstract
// ("@x") or lose its first slashes to the reader ("//x").
std::string UnixAddress::to_string() const {
  std::string name = path();
  if (abstract()) return "unix:@" + name;
  bool needs_slashes = name.starts_with('@') || name.starts_with("//");
  return (needs_slashes ? "unix://" : "unix:") + name;
}

std::strong_ordering UnixAddress::operator<=>(const UnixAddress& other) const {
  if (auto c = abstract() <=> other.abstract(); c != 0) return c;
  return path() <=> other.path();
}

namespace {

// The text after "unix:", read by the rule in address.hpp.
UnixAddress parse_unix(std::string_view body) {
  if (body.starts_with('@')) return UnixAddress(body.substr(1), true);
  if (body.starts_with("//")) body.remove_prefix(2);
  return UnixAddress(body, false);
}

}  // namespace


// --- any other family ------------------------------------------------------------------------

OtherAddress::OtherAddress(const void* sockaddr, socklen_t size) {
  length = std::min<socklen_t>(size, sizeof raw);
  std::memcpy(&raw, sockaddr, length);
}

std::string_view OtherAddress::data() const {
  constexpr socklen_t start = sizeof(sa_family_t);
  if (length <= start) return {};
  return {reinterpret_cast<const char*>(&raw) + start, static_cast<size_t>(length - start)};
}

std::string OtherAddress::to_string() const {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text = family_name(family()) + " address ";
  for (unsigned char c : data()) {
    text += digits[c >> 4];
    text += digits[c & 0xf];
  }
  return data().empty() ? text + "(empty)" : text;
}

std::strong_ordering OtherAddress::operator<=>(const OtherAddress& other) const {
  if (auto c = family() <=> other.family(); c != 0) return c;
  return data() <=> other.data();
}

// --- any address -----------------------------------------------------------------------------

Address parse_address(std::string_view text) {
  if (text.starts_with("unix:")) return parse_unix(text.substr(5));
  if (text.starts_with("netlink:")) return detail::parse_netlink(text.substr(8), text);
  if (text.starts_with("packet:")) return detail::parse_packet(text.substr(7), text);
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos)
      invalid("missing ']' in IPv6 address " + quoted(text) + " (want [HOST]:PORT)");
    if (close + 1 >= text.size() || text[close + 1] != ':')
      invalid("missing ':PORT' after ']' in address " + quoted(text));
    auto host = text.substr(1, close - 1);
    int port = parse_port(text.substr(close + 2), text);
    auto parsed = Inet6Address::parse_host(host, port);
    if (!parsed) invalid("not a numeric IPv6 address: " + quoted(host) + " in " + quoted(text));
    return *parsed;
  }
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos)
    invalid("missing ':PORT' in address " + quoted(text) +
            " (want HOST:PORT, [HOST6]:PORT, unix:PATH, unix:@NAME, netlink:PID or packet:IFACE)");
  auto host = text.substr(0, colon);
  if (host.find(':') != std::string_view::npos)
    invalid("IPv6 address " + quoted(text) + " needs brackets: [HOST]:PORT");
  int port = parse_port(text.substr(colon + 1), text);
  auto parsed = InetAddress::parse_host(host, port);
  if (!parsed)
    invalid("not a numeric IPv4 address: " + quoted(host) + " in " + quoted(text) +
            " (use resolve() for host names)");
  return *parsed;
}

std::string to_string(const Address& address) {
  return std::visit([](const auto& a) { return a.to_string(); }, address);
}

// Every alternative's raw struct begins with the family field, set for its family.
int family_of(const Address& address) { return sockaddr_of(address)->sa_family; }

// Hashes the fields operator<=> compares, straight from the raw structs: servers hash a
// sender's address per datagram, so no formatting here.
size_t hash_of(const Address& address) {
  auto mix = [](size_t seed, size_t value) { return seed ^ (value + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2)); };
  auto bytes = [](const auto& field) {
    return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(&field), sizeof field));
  };
  size_t seed = address.index();
  if (auto* a = std::get_if<InetAddress>(&address)) return mix(mix(seed, a->raw.sin_addr.s_addr), a->raw.sin_port);
  if (auto* a = std::get_if<Inet6Address>(&address)) {
    seed = mix(mix(seed, bytes(a->raw.sin6_addr)), a->raw.sin6_port);
    return mix(mix(seed, a->raw.sin6_flowinfo), a->raw.sin6_scope_id);
  }
  if (auto* a = std::get_if<NetlinkAddress>(&address)) return mix(mix(seed, a->pid()), a->groups());
  if (auto* a = std::get_if<PacketAddress>(&address)) {
    seed = mix(mix(seed, static_cast<size_t>(a->ifindex())), a->protocol());
    seed = mix(mix(seed, a->pkttype()), a->hatype());
    return mix(seed, std::hash<std::string_view>{}(a->hwaddr()));
  }
  if (auto* other = std::get_if<OtherAddress>(&address))
    return mix(mix(seed, static_cast<size_t>(other->family())), std::hash<std::string_view>{}(other->data()));
  const auto& unix_address = std::get<UnixAddress>(address);
  return mix(mix(seed, unix_address.abstract()), std::hash<std::string>{}(unix_address.path()));
}

const sockaddr* sockaddr_of(const Address& address) {
  return std::visit([](const auto& a) { return reinterpret_cast<const sockaddr*>(&a.raw); },
                    address);
}

socklen_t length_of(const Address& address) {
  if (auto unix_address = std::get_if<UnixAddress>(&address)) return unix_address->length;
  if (auto other = std::get_if<OtherAddress>(&address)) return other->length;
  if (auto packet = std::get_if<PacketAddress>(&address)) return packet->length();
  return std::visit([](const auto& a) { return static_cast<socklen_t>(sizeof(a.raw)); }, address);
}

Address address_from_sockaddr(const sockaddr_storage& storage, socklen_t length) {
  switch (storage.ss_family) {
    case AF_INET: {
      InetAddress a;
      std::memcpy(&a.raw, &storage, sizeof a.raw);
      return a;
    }
    case AF_INET6: {
      Inet6Address a;
      std::memcpy(&a.raw, &storage, sizeof a.raw);
      return a;
    }
    case AF_UNIX: {
      UnixAddress a;
      a.length = std::min<socklen_t>(length, sizeof a.raw);
      std::memcpy(&a.raw, &storage, a.length);
      a.raw.sun_family = AF_UNIX;
      // Linux may report a path's length without its NUL; keep our convention (with NUL).
      if (!a.unnamed() && !a.abstract()) a = UnixAddress(a.path(), false);
      return a;
    }
    case AF_NETLINK: {
      NetlinkAddress a;
      std::memcpy(&a.raw, &storage, std::min<size_t>(length, sizeof a.raw));
      a.raw.nl_family = AF_NETLINK;
      return a;
    }
    case AF_PACKET:
      return PacketAddress(&storage, length);
    default:
      return OtherAddress(&storage, length);
  }
}

}  // namespace socketeer
