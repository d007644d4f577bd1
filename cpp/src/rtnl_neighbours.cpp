// Neighbours (the ARP and NDP caches): RTM_NEWNEIGH into a Neighbour, and the neighbour dump.
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include <cstring>

#include "rtnl_parts.hpp"

namespace socketeer::rtnl {

std::string neighbour_state_name(uint16_t state) {
  static constexpr std::pair<uint16_t, const char*> names[] = {
      {NUD_INCOMPLETE, "INCOMPLETE"}, {NUD_REACHABLE, "REACHABLE"}, {NUD_STALE, "STALE"},
      {NUD_DELAY, "DELAY"},           {NUD_PROBE, "PROBE"},         {NUD_FAILED, "FAILED"},
      {NUD_NOARP, "NOARP"},           {NUD_PERMANENT, "PERMANENT"}};
  if (state == NUD_NONE) return "NONE";
  std::string text;
  for (auto [bit, name] : names) {
    if (!(state & bit)) continue;
    if (!text.empty()) text += ",";
    text += name;
    state = static_cast<uint16_t>(state & ~bit);
  }
  if (state) text += (text.empty() ? "" : ",") + std::to_string(state);
  return text;
}

std::optional<Neighbour> parse_neighbour(const nlmsghdr& message) {
  auto fixed = fixed_header<ndmsg>(message, RTM_NEWNEIGH, RTM_DELNEIGH);
  if (!fixed) return std::nullopt;
  const ndmsg& header = fixed->header;
  const Attributes& attrs = fixed->attrs;
  auto address = ip_attribute(attrs, NDA_DST, header.ndm_family);
  if (!address) return std::nullopt;  // a bridge's fdb entry, or malformed
  Neighbour neighbour;
  neighbour.index = header.ndm_ifindex;
  neighbour.family = header.ndm_family;
  neighbour.address = *address;
  neighbour.lladdr = hardware_attribute(attrs, NDA_LLADDR);
  neighbour.state = header.ndm_state;
  neighbour.flags = header.ndm_flags;
  return neighbour;
}

std::vector<Neighbour> dump_neighbours(NetlinkSocket& socket, int family, int index) {
  NetlinkRequest request(RTM_GETNEIGH, 0);
  request.body<ndmsg>().ndm_family = static_cast<uint8_t>(family);
  if (index) request.attribute_u32(NDA_IFINDEX, static_cast<uint32_t>(index));  // a filter under strict checking
  return dump_records(socket, request, "dump neighbours", parse_neighbour, [&](const Neighbour& neighbour) {
    return (family == 0 || neighbour.family == family) && (index == 0 || neighbour.index == index);
  });
}

}  // namespace socketeer::rtnl
