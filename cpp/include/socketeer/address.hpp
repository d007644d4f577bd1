// Socket addresses as value types over the kernel's own sockaddr structures.
//
// Address is a std::variant of one struct per family, so code that takes "any address" is
// checked by the compiler, and the Python layer gets one class per family for free. A family
// without a struct of its own (AF_BLUETOOTH, AF_VSOCK, ...) is an OtherAddress: the kernel's
// bytes, kept as they came, so every socket can be named, bound and sent to.
// Text forms (parse and to_string round-trip):
//   127.0.0.1:80    [::1]:80    [fe80::1%lo]:80    unix:/run/app.sock    unix:@name    unix:
//   netlink:1234    netlink:0/0x11    packet:lo/0x0003    packet:eth0/0x0800/host/1/02:00:00:00:00:01
// A unix text is "unix:" and then: nothing (unnamed), "@" and an abstract name, or a path. A path
// that begins with "@" or "//" is written after "//" ("unix://@x" is the path "@x", "unix:////x"
// the path "//x"), and a reader drops the "//" before any path ("unix:///run/x" is "/run/x", the
// URL habit). Nothing else is escaped: names are the kernel's bytes (NULs in abstract names too).
// A netlink text is "netlink:PID", then "/GROUPS" if any multicast group is set: PID in decimal,
// GROUPS (a bit mask) written in hex after "0x" (read in decimal too).
// A packet text follows the stdlib's tuple (ifname, proto, pkttype, hatype, addr):
// "packet:IFACE[/PROTO[/PKTTYPE[/HATYPE[/HWADDR]]]]", trailing fields that are zero (or an empty
// hardware address) left out. IFACE is the interface's name, or "#" and its index where the index
// has no name (any more), is 0 (every interface), or has a name that itself begins with "#"
// (the kernel forbids "/" and ":" in names, not "#"). PROTO is the ETH_P_ number in host order,
// written as 0x and four hex digits (read in decimal too); PKTTYPE is host, broadcast, multicast,
// otherhost, outgoing, loopback, user or kernel (PACKET_HOST ...), or a number for any other;
// HATYPE the ARPHRD_ number in decimal; HWADDR up to 8 hex bytes separated by ':'. Reading a
// name looks it up (if_nametoindex), writing an index too (if_indextoname), as for an IPv6 scope.
#pragma once

#include <linux/netlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <compare>
#include <cstddef>
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

// A netlink socket's address: a port id (often, not always, a process id; 0 is the kernel) and
// a bit mask of multicast groups (the first 32; more are joined with NETLINK_ADD_MEMBERSHIP).
struct NetlinkAddress {
  static constexpr int family = AF_NETLINK;
  sockaddr_nl raw{};

  NetlinkAddress() { raw.nl_family = AF_NETLINK; }
  NetlinkAddress(uint32_t pid, uint32_t groups);

  uint32_t pid() const { return raw.nl_pid; }
  uint32_t groups() const { return raw.nl_groups; }
  std::string to_string() const;  // netlink:PID or netlink:PID/0xGROUPS
  std::strong_ordering operator<=>(const NetlinkAddress& other) const;
  bool operator==(const NetlinkAddress& other) const { return (*this <=> other) == 0; }
};

// A packet socket's address (struct sockaddr_ll): an interface by index, an ethernet protocol
// (ETH_P_*), and on received frames the packet type, the link's ARPHRD_ type and the sender's
// hardware address. sll_addr holds 8 bytes, but a link's address may be longer (up to the
// kernel's MAX_ADDR_LEN, 32: InfiniBand's are 20): the kernel then writes past sll_addr, so the
// struct keeps room after it. An address built here holds at most 8 (as the stdlib's do).
struct PacketAddress {
  static constexpr int family = AF_PACKET;
  static constexpr size_t max_hwaddr = 32;       // the kernel's MAX_ADDR_LEN
  static constexpr size_t max_given_hwaddr = 8;  // sizeof sll_addr
  sockaddr_ll raw{};
  unsigned char hwaddr_rest[max_hwaddr - max_given_hwaddr]{};  // sll_addr continued

  PacketAddress() { raw.sll_family = AF_PACKET; }
  // protocol in host order; hwaddr at most 8 bytes (InvalidArgument otherwise).
  PacketAddress(int ifindex, uint16_t protocol, uint8_t pkttype = PACKET_HOST, uint16_t hatype = 0,
                std::string_view hwaddr = {});
  // From what the kernel wrote: length bytes of a sockaddr_ll (the hardware address may run past
  // sll_addr; it is cut to what was written).
  PacketAddress(const void* sockaddr, socklen_t length);

  int ifindex() const { return raw.sll_ifindex; }
  std::string ifname() const;  // empty when the index names no interface (now)
  uint16_t protocol() const { return ntohs(raw.sll_protocol); }
  uint8_t pkttype() const { return raw.sll_pkttype; }
  uint16_t hatype() const { return raw.sll_hatype; }
  std::string_view hwaddr() const;
  // What bind/sendto pass: the whole sockaddr_ll, and the hardware address past it if longer.
  socklen_t length() const;
  std::string to_string() const;  // see the header comment
  std::strong_ordering operator<=>(const PacketAddress& other) const;
  bool operator==(const PacketAddress& other) const { return (*this <=> other) == 0; }
};

// The index of the interface named name, or 0 if there is none (a NUL in name makes it none).
unsigned interface_index(std::string_view name);

// An address of any family without a struct above (AF_BLUETOOTH, AF_VSOCK, ...): the sockaddr's
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

using Address = std::variant<InetAddress, Inet6Address, UnixAddress, NetlinkAddress, PacketAddress, OtherAddress>;

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
