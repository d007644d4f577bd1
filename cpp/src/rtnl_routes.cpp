// Routes: RTM_NEWROUTE into a Route, the route dump (one table or all), and adding a route.
#include <linux/rtnetlink.h>

#include <cstring>

#include "rtnl_parts.hpp"

namespace socketeer::rtnl {

std::optional<Route> parse_route(const nlmsghdr& message) {
  auto fixed = fixed_header<rtmsg>(message, RTM_NEWROUTE, RTM_DELROUTE);
  if (!fixed) return std::nullopt;
  const rtmsg& header = fixed->header;
  const Attributes& attrs = fixed->attrs;
  if (header.rtm_family != AF_INET && header.rtm_family != AF_INET6) return std::nullopt;  // ipmr, mpls ...
  auto ip = [&](uint16_t type) { return ip_attribute(attrs, type, header.rtm_family); };
  Route route;
  route.family = header.rtm_family;
  route.destination.family = header.rtm_family;  // all zeros: the default route
  if (auto destination = ip(RTA_DST)) route.destination = *destination;
  route.prefix_len = header.rtm_dst_len;
  route.gateway = ip(RTA_GATEWAY);
  route.source = ip(RTA_PREFSRC);
  route.oif = static_cast<int>(attrs.u32(RTA_OIF).value_or(0));
  route.table = attrs.u32(RTA_TABLE).value_or(header.rtm_table);
  route.protocol = header.rtm_protocol;
  route.scope = header.rtm_scope;
  route.type = header.rtm_type;
  route.priority = attrs.u32(RTA_PRIORITY);
  return route;
}

std::vector<Route> dump_routes(NetlinkSocket& socket, int family, std::optional<uint32_t> table) {
  NetlinkRequest request(RTM_GETROUTE, 0);
  request.body<rtmsg>().rtm_family = static_cast<uint8_t>(family);
  if (table) request.attribute_u32(RTA_TABLE, *table);  // a filter under strict checking
  return dump_records(socket, request, "dump routes", parse_route, [&](const Route& route) {
    return (family == 0 || route.family == family) && (!table || route.table == *table);
  });
}

void add_route(NetlinkSocket& socket, const RouteSpec& spec) {
  const IpAddress& destination = spec.destination;
  std::string what = "add route " + destination.text() + "/" + std::to_string(spec.prefix_len);
  if (spec.gateway) what += " via " + spec.gateway->text();
  if (spec.interface) what += " dev " + spec.interface->text();
  if (spec.table) what += " table " + std::to_string(*spec.table);
  check_prefix_len(destination, spec.prefix_len, what);
  if (!spec.gateway && !spec.interface) throw InvalidArgument(what + ": give a gateway, an interface or both");
  if (spec.gateway && spec.gateway->family != destination.family)
    throw InvalidArgument(what + ": the gateway's family differs from the destination's");
  int oif = spec.interface ? interface_index(socket, *spec.interface, what) : 0;
  uint32_t table = spec.table.value_or(RT_TABLE_MAIN);

  NetlinkRequest request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  auto& header = request.body<rtmsg>();
  header.rtm_family = destination.family;
  header.rtm_dst_len = static_cast<uint8_t>(spec.prefix_len);
  header.rtm_table = table < 256 ? static_cast<uint8_t>(table) : static_cast<uint8_t>(RT_TABLE_UNSPEC);  // RTA_TABLE holds it all
  header.rtm_protocol = RTPROT_BOOT;  // as `ip route add` marks it
  header.rtm_type = RTN_UNICAST;
  // A route with no gateway reaches its destination on the link itself (iproute2's rule).
  header.rtm_scope = spec.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  request.attribute(RTA_DST, destination.bytes.data(), destination.size());
  request.attribute_u32(RTA_TABLE, table);
  if (spec.gateway) request.attribute(RTA_GATEWAY, spec.gateway->bytes.data(), spec.gateway->size());
  if (oif) request.attribute_u32(RTA_OIF, static_cast<uint32_t>(oif));
  socket.request(request, what);
}

}  // namespace socketeer::rtnl
