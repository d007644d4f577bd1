// What the rtnl_*.cpp files share: reading a message's fixed header, and a filtered dump into
// records. Private to cpp/src.
#pragma once

#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "socketeer/rtnetlink.hpp"

namespace socketeer::rtnl {

// The fixed header (ifinfomsg, ifaddrmsg ...) of a message of type `added` or `removed`, and
// the attributes after it; nullopt for another type or a message too short for the header.
template <class Header>
struct Fixed {
  Header header;
  Attributes attrs;
};
template <class Header>
std::optional<Fixed<Header>> fixed_header(const nlmsghdr& message, uint16_t added, uint16_t removed) {
  if ((message.nlmsg_type != added && message.nlmsg_type != removed) ||
      message.nlmsg_len < NLMSG_LENGTH(sizeof(Header)))
    return std::nullopt;
  Fixed<Header> fixed;
  std::memcpy(&fixed.header, NLMSG_DATA(&message), sizeof(Header));
  fixed.attrs = Attributes::of_message(message, sizeof(Header));
  return fixed;
}

// The address attribute `type` of a message of that family, if present and of the right size.
inline std::optional<IpAddress> ip_attribute(const Attributes& attrs, uint16_t type, uint8_t family) {
  auto payload = attrs.find(type);
  return payload ? IpAddress::from(family, *payload) : std::nullopt;
}

// The payload of a link-layer address attribute (empty if absent).
inline HardwareAddress hardware_attribute(const Attributes& attrs, uint16_t type) {
  auto payload = attrs.find(type);
  if (!payload) return {};
  auto* start = reinterpret_cast<const uint8_t*>(payload->data());
  return {start, start + payload->size()};
}

// A dump (restarted if the kernel flags it interrupted) of the records parse() makes from its
// messages and keep() accepts.
template <class Parse, class Keep>
auto dump_records(NetlinkSocket& socket, NetlinkRequest& request, std::string_view what, Parse parse,
                  Keep keep) {
  std::vector<typename std::invoke_result_t<Parse, const nlmsghdr&>::value_type> found;
  socket.dump_consistent(
      request, what, [&] { found.clear(); },
      [&](const nlmsghdr& message) {
        auto record = parse(message);
        if (record && keep(*record)) found.push_back(std::move(*record));
      });
  return found;
}

}  // namespace socketeer::rtnl
