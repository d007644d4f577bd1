// Links: RTM_NEWLINK into a Link, the link dump, finding an interface by name, and the link
// changes (up/down and mtu, a veth pair, deleting).
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include <algorithm>
#include <cstring>

#include "rtnl_parts.hpp"

namespace socketeer::rtnl {
namespace {

std::optional<LinkStats> stats(const Attributes& attrs) {
  auto payload = attrs.find(IFLA_STATS64);
  if (!payload) return std::nullopt;
  // The struct grew over kernel versions: copy what both sides have, the rest stays zero.
  rtnl_link_stats64 raw{};
  std::memcpy(&raw, payload->data(), std::min(sizeof raw, payload->size()));
  return LinkStats{raw.rx_packets, raw.tx_packets, raw.rx_bytes,   raw.tx_bytes,
                   raw.rx_errors,  raw.tx_errors,  raw.rx_dropped, raw.tx_dropped};
}

void check_name(std::string_view name, std::string_view what) {
  if (name.empty() || name.size() >= IFNAMSIZ || name.find('\0') != std::string_view::npos)
    throw InvalidArgument(std::string(what) + ": interface name '" + std::string(name) +
                          "' is not a name (1-15 bytes, no NUL)");
}

// The ifinfomsg of a request about one existing interface: by index, or by IFLA_IFNAME.
void address_link(NetlinkRequest& request, ifinfomsg& info, const Interface& interface,
                  std::string_view what) {
  info.ifi_family = AF_UNSPEC;
  if (interface.index > 0) {
    info.ifi_index = interface.index;
  } else {
    check_name(interface.name, what);
    request.attribute_string(IFLA_IFNAME, interface.name);
  }
}

}  // namespace

std::string hardware_text(const HardwareAddress& address) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text;
  for (uint8_t byte : address) {
    if (!text.empty()) text += ':';
    text += digits[byte >> 4];
    text += digits[byte & 15];
  }
  return text;
}

std::string Interface::text() const { return index > 0 ? "index " + std::to_string(index) : name; }

bool Link::up() const noexcept { return flags & IFF_UP; }
bool Link::running() const noexcept { return flags & IFF_RUNNING; }
bool Link::lower_up() const noexcept { return flags & IFF_LOWER_UP; }

std::string operstate_name(uint8_t operstate) {
  static constexpr const char* names[] = {"UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN",
                                          "TESTING", "DORMANT",    "UP"};
  return operstate < std::size(names) ? names[operstate] : std::to_string(operstate);
}

std::optional<Link> parse_link(const nlmsghdr& message) {
  auto fixed = fixed_header<ifinfomsg>(message, RTM_NEWLINK, RTM_DELLINK);
  if (!fixed) return std::nullopt;
  const ifinfomsg& info = fixed->header;
  const Attributes& attrs = fixed->attrs;
  Link link;
  link.index = info.ifi_index;
  link.flags = info.ifi_flags;
  link.type = info.ifi_type;
  link.name = attrs.string_view(IFLA_IFNAME).value_or("");
  link.mtu = attrs.u32(IFLA_MTU).value_or(0);
  link.address = hardware_attribute(attrs, IFLA_ADDRESS);
  link.broadcast = hardware_attribute(attrs, IFLA_BROADCAST);
  link.kind = attrs.nested(IFLA_LINKINFO).string_view(IFLA_INFO_KIND).value_or("");
  link.master = static_cast<int>(attrs.u32(IFLA_MASTER).value_or(0));
  link.link = static_cast<int>(attrs.u32(IFLA_LINK).value_or(0));
  link.operstate = attrs.u8(IFLA_OPERSTATE).value_or(IF_OPER_UNKNOWN);
  link.txqlen = attrs.u32(IFLA_TXQLEN).value_or(0);
  link.stats = stats(attrs);
  return link;
}

std::vector<Link> dump_links(NetlinkSocket& socket) {
  NetlinkRequest request(RTM_GETLINK, 0);
  request.body<ifinfomsg>().ifi_family = AF_UNSPEC;
  // Link dumps are not flagged NLM_F_DUMP_INTR today, but nothing promises that.
  return dump_records(socket, request, "dump links", parse_link, [](const Link&) { return true; });
}

int interface_index(NetlinkSocket& socket, const Interface& interface, std::string_view what) {
  if (interface.index > 0) return interface.index;
  NetlinkRequest request(RTM_GETLINK, 0);
  auto& info = request.body<ifinfomsg>();
  address_link(request, info, interface, what);
  request.attribute_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  int index = 0;
  socket.request(request, what, [&](const nlmsghdr& message) {
    if (auto link = parse_link(message)) index = link->index;
  });
  if (index <= 0) throw Error(ENODEV, std::string(what), {}, "no interface named '" + interface.name + "'");
  return index;
}

void set_link(NetlinkSocket& socket, const Interface& interface, std::optional<bool> up,
              std::optional<uint32_t> mtu) {
  std::string what = "set link " + interface.text();
  if (up) what += *up ? " up" : " down";
  if (mtu) what += " mtu " + std::to_string(*mtu);
  if (!up && !mtu) throw InvalidArgument(what + ": nothing to change (give up or mtu)");
  NetlinkRequest request(RTM_NEWLINK, 0);
  auto& info = request.body<ifinfomsg>();
  address_link(request, info, interface, what);
  if (up) {
    info.ifi_change = IFF_UP;
    info.ifi_flags = *up ? IFF_UP : 0;
  }
  if (mtu) request.attribute_u32(IFLA_MTU, *mtu);
  socket.request(request, what);
}

void add_veth(NetlinkSocket& socket, std::string_view name, std::string_view peer,
              std::optional<int> peer_netns_fd) {
  std::string what = "add veth " + std::string(name) + " peer " + std::string(peer);
  check_name(name, what);
  check_name(peer, what);
  NetlinkRequest request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  request.body<ifinfomsg>().ifi_family = AF_UNSPEC;
  request.attribute_string(IFLA_IFNAME, name);
  size_t linkinfo = request.begin_nested(IFLA_LINKINFO | NLA_F_NESTED);
  request.attribute_string(IFLA_INFO_KIND, "veth");
  size_t data = request.begin_nested(IFLA_INFO_DATA | NLA_F_NESTED);
  // VETH_INFO_PEER holds a whole ifinfomsg, then the peer's own attributes.
  size_t peer_info = request.begin_nested(VETH_INFO_PEER | NLA_F_NESTED);
  request.body<ifinfomsg>().ifi_family = AF_UNSPEC;
  request.attribute_string(IFLA_IFNAME, peer);
  if (peer_netns_fd) request.attribute_u32(IFLA_NET_NS_FD, static_cast<uint32_t>(*peer_netns_fd));
  request.end_nested(peer_info);
  request.end_nested(data);
  request.end_nested(linkinfo);
  socket.request(request, what);
}

void delete_link(NetlinkSocket& socket, const Interface& interface) {
  std::string what = "delete link " + interface.text();
  NetlinkRequest request(RTM_DELLINK, 0);
  auto& info = request.body<ifinfomsg>();
  address_link(request, info, interface, what);
  socket.request(request, what);
}

}  // namespace socketeer::rtnl
