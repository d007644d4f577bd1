// rtnetlink on the netlink core: typed records parsed from RTM_NEWLINK / RTM_NEWADDR /
// RTM_NEWROUTE / RTM_NEWNEIGH messages, dumps of each table, and the few changes the project's
// own test hosts need (links up and down, addresses, routes, veth pairs). Every function takes a
// NetlinkSocket (NETLINK_ROUTE), so it works in whichever network namespace that socket was made
// in. Each change is one request with an ack; its `what` names what was asked ("add address
// 10.0.0.1/24 on veth0"), so a refusal reads "add address 10.0.0.1/24 on veth0: [Errno 17] File
// exists". The parse_* functions are the one place a message becomes a record: the dumps and the
// monitor (multicast groups) both use them.
#pragma once

#include <linux/netlink.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "socketeer/netlink.hpp"
#include "socketeer/waker.hpp"

namespace socketeer::rtnl {

// An IPv4 or IPv6 address in network byte order.
struct IpAddress {
  uint8_t family = 0;  // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};

  size_t size() const noexcept;  // 4, 16 (0 for any other family)
  std::span<const uint8_t> view() const noexcept { return {bytes.data(), size()}; }
  std::string text() const;  // inet_ntop's form
  // The payload of an address attribute, if it is as long as the family's address.
  static std::optional<IpAddress> from(uint8_t family, std::span<const std::byte> payload);
  // family AF_INET/AF_INET6 and exactly 4/16 bytes, else InvalidArgument naming the input.
  static IpAddress make(int family, std::span<const uint8_t> packed);
};

// The largest prefix length of the family (32, 128); InvalidArgument naming `what` for a family
// that is neither or a longer prefix, checked before anything is sent.
void check_prefix_len(const IpAddress& address, int prefix_len, std::string_view what);

using HardwareAddress = std::vector<uint8_t>;  // MAC and other link-layer addresses
// "aa:bb:cc:dd:ee:ff" (lower case, as iproute2 prints it); "" for an empty one.
std::string hardware_text(const HardwareAddress& address);

// An interface as the caller named it: by index (> 0) or by name.
struct Interface {
  int index = 0;
  std::string name;
  std::string text() const;  // the name, or "index N"
};

struct LinkStats {  // IFLA_STATS64
  uint64_t rx_packets = 0, tx_packets = 0, rx_bytes = 0, tx_bytes = 0;
  uint64_t rx_errors = 0, tx_errors = 0, rx_dropped = 0, tx_dropped = 0;
};

struct Link {
  int index = 0;
  std::string name;
  uint32_t flags = 0;  // IFF_*
  uint16_t type = 0;   // ARPHRD_*
  uint32_t mtu = 0;
  HardwareAddress address, broadcast;
  std::string kind;  // IFLA_INFO_KIND ("veth", "bridge" ...), empty for none
  int master = 0;    // IFLA_MASTER, 0 for none
  int link = 0;      // IFLA_LINK (a veth's peer, a vlan's parent), 0 for none
  uint8_t operstate = 0;  // IF_OPER_*
  uint32_t txqlen = 0;
  std::optional<LinkStats> stats;
  bool up() const noexcept;
  bool running() const noexcept;
  bool lower_up() const noexcept;
};

struct InterfaceAddress {
  int index = 0;
  uint8_t family = 0;
  IpAddress address;  // the interface's own: IFA_LOCAL where the kernel sends it, else IFA_ADDRESS
  std::optional<IpAddress> peer;  // IFA_ADDRESS where it differs (the far end of a point-to-point)
  std::optional<IpAddress> broadcast;
  uint8_t prefix_len = 0;
  uint8_t scope = 0;   // RT_SCOPE_*
  uint32_t flags = 0;  // IFA_F_*, from IFA_FLAGS (all 32 bits) over ifa_flags (8)
  std::string label;
};

struct Route {
  uint8_t family = 0;
  IpAddress destination;  // all zeros for the default route
  uint8_t prefix_len = 0;
  std::optional<IpAddress> gateway, source;  // RTA_GATEWAY, RTA_PREFSRC
  int oif = 0;
  uint32_t table = 0;  // RTA_TABLE over rtm_table (which holds only 8 bits)
  uint8_t protocol = 0, scope = 0, type = 0;
  std::optional<uint32_t> priority;  // RTA_PRIORITY, the metric
};

struct Neighbour {
  int index = 0;
  uint8_t family = 0;
  IpAddress address;
  HardwareAddress lladdr;  // empty while unresolved
  uint16_t state = 0;      // NUD_*
  uint8_t flags = 0;       // NTF_*
};

// Names as iproute2 prints them: "UP", "LOWERLAYERDOWN" ...; "REACHABLE", "STALE" ... (a
// state of several bits joins them with ","); the number for anything unknown.
std::string operstate_name(uint8_t operstate);
std::string neighbour_state_name(uint16_t state);

// One message into one record; nullopt for another message type or one too short for its
// fixed header.
std::optional<Link> parse_link(const nlmsghdr& message);
std::optional<InterfaceAddress> parse_address(const nlmsghdr& message);
std::optional<Route> parse_route(const nlmsghdr& message);
std::optional<Neighbour> parse_neighbour(const nlmsghdr& message);

// The dumps. family AF_UNSPEC (0) for all; index 0 for every interface; table nullopt for every
// table. Filters are asked of the kernel (strict checking) and applied again here, so a kernel
// that ignores one still gives the right answer. Interrupted dumps are retried.
std::vector<Link> dump_links(NetlinkSocket& socket);
std::vector<InterfaceAddress> dump_addresses(NetlinkSocket& socket, int family = 0, int index = 0);
std::vector<Route> dump_routes(NetlinkSocket& socket, int family = 0, std::optional<uint32_t> table = {});
std::vector<Neighbour> dump_neighbours(NetlinkSocket& socket, int family = 0, int index = 0);

// The index of the interface (one RTM_GETLINK by name in the socket's namespace); a name not
// there: Error ENODEV naming `what` (the change that needed it). An index is returned as given;
// a name that cannot be one (empty, longer than 15 bytes) is InvalidArgument.
int interface_index(NetlinkSocket& socket, const Interface& interface, std::string_view what);

// Changes. Each is one request with an ack; adds are NLM_F_CREATE | NLM_F_EXCL.
void set_link(NetlinkSocket& socket, const Interface& interface, std::optional<bool> up,
              std::optional<uint32_t> mtu);
void add_address(NetlinkSocket& socket, const Interface& interface, const IpAddress& address, int prefix_len);
void delete_address(NetlinkSocket& socket, const Interface& interface, const IpAddress& address,
                    int prefix_len);
struct RouteSpec {
  IpAddress destination;
  int prefix_len = 0;
  std::optional<IpAddress> gateway;
  std::optional<Interface> interface;
  std::optional<uint32_t> table;  // main (RT_TABLE_MAIN) when not given
};
void add_route(NetlinkSocket& socket, const RouteSpec& route);
// A veth pair `name` <-> `peer`; the peer is made inside the namespace of peer_netns_fd when
// given (IFLA_NET_NS_FD in the peer's ifinfomsg).
void add_veth(NetlinkSocket& socket, std::string_view name, std::string_view peer,
              std::optional<int> peer_netns_fd = {});
void delete_link(NetlinkSocket& socket, const Interface& interface);

// --- monitoring --------------------------------------------------------------------------------

// "link", "address", "route", "neighbour" -> the RTMGRP_* bits (IPv4 and IPv6 both);
// InvalidArgument naming anything else.
uint32_t monitor_groups(std::span<const std::string> names);

struct Event {
  bool added = true;  // RTM_NEW* (false: RTM_DEL*)
  std::variant<Link, InterfaceAddress, Route, Neighbour> record;
};

// A NETLINK_ROUTE socket bound to multicast groups, and a Waker so that close() from another
// thread ends a wait() in progress.
class Monitor {
 public:
  static constexpr size_t kBufferSize = 64 * 1024;
  Monitor(uint32_t groups, std::optional<int> netns_fd);

  int fd() const noexcept { return socket_.fd(); }
  // poll() on the socket and the waker: true if the socket is readable, false on timeout or
  // after close(). timeout_ms -1 blocks. EINTR goes through the interrupt hook.
  bool wait(int timeout_ms);
  // One datagram (call after wait() said readable, or it blocks) parsed into events; messages
  // of other types are skipped. ENOBUFS (the kernel dropped events) is thrown, never skipped.
  std::vector<Event> read();
  // Wakes a wait() in any thread; later waits return false at once.
  void close() noexcept;
  bool closed() const noexcept;

 private:
  NetlinkSocket socket_;
  Waker waker_;
  std::atomic<bool> closed_{false};
  std::vector<std::byte> buffer_;
};

}  // namespace socketeer::rtnl
