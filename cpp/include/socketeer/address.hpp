// Socket addresses as value types over the kernel's own sockaddr structures.
//
// Address is a std::variant of one struct per family, so code that takes "any address" is
// checked by the compiler, and the Python layer gets one class per family for free. A family
// without a struct of its own (AF_NETLINK, AF_PACKET, ...) is an OtherAddress: the kernel's
// bytes, kept as they came, so every socket can be named, bound and sent to.
// Text forms (parse and to_string round-trip):
//   127.0.0.1:80    [::1]:80    [fe80::1%lo]:80    unix:/run/app.sock    unix:@name    unix:
// A unix text is "unix:" and then: nothing (unnamed), "@" and an abstract name, or a path. A path
// that begins with "@" or "//" is written after "//" ("unix://@x" is the path "@x", "unix:////x"
// the path "//x"), and a reader drops the "//" before any path ("unix:///run/x" is "/run/x", the
// URL habit). Nothing else is escaped: names are the kernel's bytes (NULs in abstract names too).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace socketeer {

struct InetAddress {
  static constexpr int family = AF_INET;
  sockaddr_in raw{};

  InetAddress() { raw.sin_family = AF_INET; }
  // host must be a numeric IPv4 address; throws InvalidArgument naming the bad part.
  InetAddress(std::string_view host, int port);
  static std::optional<InetAddress> parse_host(std::string_view host, int port);

  std::string host() const;
  int port() const { return ntohs(raw.sin_port); }
  std::string to_string() const;
  std::strong_ordering operator<=>(const InetAddress& other) const;
  bool operator==(const InetAddress& other) const { return (*this <=> other) == 0; }
};

struct Inet6Address {
  static constexpr int family = AF_INET6;
  sockaddr_in6 raw{};

  Inet6Address() { raw.sin6_family = AF_INET6; }
  // host: numeric IPv6, optionally with %scope (interface name or number).
  Inet6Address(std::string_view host, int port, uint32_t flowinfo = 0, uint32_t scope_id = 0);
  static std::optional<Inet6Address> parse_host(std::string_view host, int port,
                                                uint32_t flowinfo = 0, uint32_t scope_id = 0);

  std::string host() const;  // with %scope for scoped addresses, as getnameinfo writes it
  std::string host_without_scope() const;  // as the stdlib's tuples carry it
  int port() const { return ntohs(raw.sin6_port); }
  uint32_t flowinfo() const { return ntohl(raw.sin6_flowinfo); }
  uint32_t scope_id() const { return raw.sin6_scope_id; }
  std::string to_string() const;
  std::strong_ordering operator<=>(const Inet6Address& other) const;
  bool operator==(const Inet6Address& other) const { return (*this <=> other) == 0; }
};

struct UnixAddress {
  static constexpr int family = AF_UNIX;
  sockaddr_un raw{};
  socklen_t length = sizeof(sa_family_t);  // unnamed until a path is set

  // Longest path or abstract name (path sockets need room for the terminating NUL).
  static constexpr size_t max_path = sizeof(sockaddr_un::sun_path) - 1;

  UnixAddress() { raw.sun_family = AF_UNIX; }
  // A filesystem path, or (abstract = true) a name in Linux's abstract namespace.
  UnixAddress(std::string_view path, bool abstract);

  bool unnamed() const { return length <= sizeof(sa_family_t); }
  bool abstract() const { return !unnamed() && raw.sun_path[0] == '\0'; }
  std::string path() const;  // the abstract name without its leading NUL
  std::string to_string() const;  // unix:/path, unix:@name, unix:, unix://@path (see above)
  std::strong_ordering operator<=>(const UnixAddress& other) const;
  bool operator==(const UnixAddress& other) const { return (*this <=> other) == 0; }
};

// An address of any family without a struct above (AF_NETLINK, AF_PACKET, ...): the sockaddr's
// bytes as the kernel wrote them or a caller packed them. Compared and hashed by family, then
// bytes; written as "AF_NETLINK address 0000...": the bytes after the family field, in hex.
struct OtherAddress {
  sockaddr_storage raw{};
  socklen_t length = 0;

  OtherAddress() = default;
  // Copies length bytes of a sockaddr (at least its family field, at most sockaddr_storage).
  OtherAddress(const void* sockaddr, socklen_t length);

  int family() const { return raw.ss_family; }
  std::string_view data() const;  // the bytes after the family field
  std::string to_string() const;
  std::strong_ordering operator<=>(const OtherAddress& other) const;
  bool operator==(const OtherAddress& other) const { return (*this <=> other) == 0; }
};

using Address = std::variant<InetAddress, Inet6Address, UnixAddress, OtherAddress>;

Address parse_address(std::string_view text);
std::string to_string(const Address& address);
int family_of(const Address& address);
size_t hash_of(const Address& address);

const sockaddr* sockaddr_of(const Address& address);
socklen_t length_of(const Address& address);
// Builds an Address from what the kernel wrote (accept, getsockname, recvfrom ...).
Address address_from_sockaddr(const sockaddr_storage& storage, socklen_t length);

// Room for any address the kernel returns, passed to accept/recvfrom/getsockname.
struct AddressBuffer {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  Address address() const { return address_from_sockaddr(storage, length); }
};

}  // namespace socketeer
