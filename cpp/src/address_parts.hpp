// What address.cpp and link_address.cpp share (not part of the public core API).
#pragma once

#include <string>
#include <string_view>

#include "socketeer/address.hpp"

namespace socketeer::detail {

// Throws InvalidArgument: a malformed address the caller gave.
[[noreturn]] void invalid(std::string message);
// A caller's text quoted for an error message, every byte that is not printable ASCII as \xNN.
std::string quoted(std::string_view text);

// The text after "netlink:" / "packet:" (whole: the entire address text, for messages).
NetlinkAddress parse_netlink(std::string_view body, std::string_view whole);
PacketAddress parse_packet(std::string_view body, std::string_view whole);

}  // namespace socketeer::detail
