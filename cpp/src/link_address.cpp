// NetlinkAddress and PacketAddress: the link-layer and kernel families' addresses, their text
// forms (address.hpp's header comment) and the parsers address.cpp's parse_address calls.
#include <net/if.h>

#include <cctype>
#include <charconv>
#include <cstring>
#include <iterator>

#include "socketeer/address.hpp"
#include "socketeer/error.hpp"
#include "address_parts.hpp"

namespace socketeer {

using detail::invalid;
using detail::quoted;

// --- netlink ---------------------------------------------------------------------------------

NetlinkAddress::NetlinkAddress(uint32_t pid, uint32_t groups) {
  raw.nl_family = AF_NETLINK;
  raw.nl_pid = pid;
  raw.nl_groups = groups;
}

std::string NetlinkAddress::to_string() const {
  std::string text = "netlink:" + std::to_string(pid());
  if (groups() == 0) return text;
  char hex[16];
  auto end = std::to_chars(hex, hex + sizeof hex, groups(), 16).ptr;
  return text + "/0x" + std::string(hex, end);
}

std::strong_ordering NetlinkAddress::operator<=>(const NetlinkAddress& other) const {
  if (auto c = pid() <=> other.pid(); c != 0) return c;
  return groups() <=> other.groups();
}

// --- packet ----------------------------------------------------------------------------------

static_assert(offsetof(PacketAddress, hwaddr_rest) == sizeof(sockaddr_ll), "sll_addr continues in hwaddr_rest");

unsigned interface_index(std::string_view name) {
  if (name.empty() || name.size() >= IF_NAMESIZE || name.find('\0') != std::string_view::npos) return 0;
  return ::if_nametoindex(std::string(name).c_str());
}

PacketAddress::PacketAddress(int ifindex, uint16_t protocol, uint8_t pkttype, uint16_t hatype, std::string_view hwaddr) {
  if (hwaddr.size() > max_given_hwaddr)
    invalid("hardware address is " + std::to_string(hwaddr.size()) + " bytes, the limit is 8");
  raw.sll_family = AF_PACKET;
  raw.sll_ifindex = ifindex;
  raw.sll_protocol = htons(protocol);
  raw.sll_pkttype = pkttype;
  raw.sll_hatype = hatype;
  raw.sll_halen = static_cast<unsigned char>(hwaddr.size());
  if (!hwaddr.empty()) std::memcpy(raw.sll_addr, hwaddr.data(), hwaddr.size());
}

PacketAddress::PacketAddress(const void* sockaddr, socklen_t size) {
  constexpr socklen_t start = offsetof(sockaddr_ll, sll_addr);
  auto copied = std::min<size_t>(size, start + max_hwaddr);
  auto bytes = static_cast<const char*>(sockaddr);
  std::memcpy(&raw, bytes, std::min(copied, sizeof raw));
  if (copied > sizeof raw) std::memcpy(hwaddr_rest, bytes + sizeof raw, copied - sizeof raw);
  raw.sll_family = AF_PACKET;
  size_t written = copied > start ? copied - start : 0;
  raw.sll_halen = static_cast<unsigned char>(std::min<size_t>(raw.sll_halen, written));
}

std::string PacketAddress::ifname() const {
  char name[IF_NAMESIZE] = "";
  if (ifindex() <= 0 || !::if_indextoname(static_cast<unsigned>(ifindex()), name)) return {};
  return name;
}

std::string_view PacketAddress::hwaddr() const {
  return {reinterpret_cast<const char*>(raw.sll_addr), raw.sll_halen};
}

socklen_t PacketAddress::length() const {
  return static_cast<socklen_t>(std::max(sizeof raw, offsetof(sockaddr_ll, sll_addr) + raw.sll_halen));
}

namespace {

constexpr std::string_view pkttype_names[] = {"host",     "broadcast", "multicast", "otherhost",
                                              "outgoing", "loopback",  "user",      "kernel"};

std::string hex_number(unsigned value, int width) {
  char digits[16];
  auto end = std::to_chars(digits, digits + sizeof digits, value, 16).ptr;
  std::string text(digits, end);
  if (static_cast<int>(text.size()) < width) text.insert(0, width - text.size(), '0');
  return "0x" + text;
}

}  // namespace

std::string PacketAddress::to_string() const {
  std::string name = ifname();
  std::string text = "packet:" + (name.empty() || name.starts_with('#') ? "#" + std::to_string(ifindex()) : name);
  std::string fields[4] = {hex_number(protocol(), 4),
                           pkttype() < std::size(pkttype_names) ? std::string(pkttype_names[pkttype()])
                                                                : std::to_string(pkttype()),
                           std::to_string(hatype()), {}};
  static constexpr char digits[] = "0123456789abcdef";
  for (unsigned char c : hwaddr()) {
    if (!fields[3].empty()) fields[3] += ':';
    fields[3] += digits[c >> 4];
    fields[3] += digits[c & 0xf];
  }
  // Trailing fields that are zero are left out.
  size_t count = !hwaddr().empty() ? 4 : hatype() ? 3 : pkttype() ? 2 : protocol() ? 1 : 0;
  for (size_t i = 0; i < count; ++i) text += "/" + fields[i];
  return text;
}

std::strong_ordering PacketAddress::operator<=>(const PacketAddress& other) const {
  if (auto c = ifindex() <=> other.ifindex(); c != 0) return c;
  if (auto c = protocol() <=> other.protocol(); c != 0) return c;
  if (auto c = pkttype() <=> other.pkttype(); c != 0) return c;
  if (auto c = hatype() <=> other.hatype(); c != 0) return c;
  return hwaddr() <=> other.hwaddr();
}

namespace {

// A whole unsigned number no larger than high: decimal, or hex after "0x". False otherwise.
bool parse_number(std::string_view text, uint32_t high, uint32_t& value) {
  int base = 10;
  if (text.starts_with("0x") || text.starts_with("0X")) {
    text.remove_prefix(2);
    base = 16;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  bool digit_first = !text.empty() && std::isxdigit(static_cast<unsigned char>(text[0]));
  return digit_first && ec == std::errc{} && end == text.data() + text.size() && value <= high;
}

uint32_t number_field(std::string_view text, uint32_t high, const char* what, std::string_view whole) {
  uint32_t value = 0;
  if (!parse_number(text, high, value))
    invalid("bad " + std::string(what) + " " + quoted(text) + " in address " + quoted(whole) + " (want 0-" +
            std::to_string(high) + ")");
  return value;
}

int packet_interface(std::string_view text, std::string_view whole) {
  if (text.starts_with('#')) return static_cast<int>(number_field(text.substr(1), 0x7fffffff, "interface index", whole));
  unsigned index = interface_index(text);
  if (index == 0) invalid("unknown interface " + quoted(text) + " in packet address " + quoted(whole));
  return static_cast<int>(index);
}

uint8_t packet_type(std::string_view text, std::string_view whole) {
  for (size_t i = 0; i < std::size(pkttype_names); ++i)
    if (text == pkttype_names[i]) return static_cast<uint8_t>(i);
  return static_cast<uint8_t>(number_field(text, 255, "packet type", whole));
}

std::string hardware_address(std::string_view text, std::string_view whole) {
  std::string bytes;
  for (size_t at = 0; at <= text.size(); at += 3) {
    uint32_t byte = 0;
    auto pair = text.substr(at, 2);
    bool separated = at + 2 == text.size() || (at + 2 < text.size() && text[at + 2] == ':');
    auto [end, ec] = std::from_chars(pair.data(), pair.data() + pair.size(), byte, 16);
    if (pair.size() != 2 || !separated || ec != std::errc{} || end != pair.data() + 2 || !std::isxdigit(pair[0]) ||
        bytes.size() == PacketAddress::max_given_hwaddr)
      invalid("bad hardware address " + quoted(text) + " in address " + quoted(whole) +
              " (want up to 8 hex bytes separated by ':')");
    bytes += static_cast<char>(byte);
  }
  return bytes;
}

}  // namespace

// The text after "netlink:": PID or PID/GROUPS.
NetlinkAddress detail::parse_netlink(std::string_view body, std::string_view whole) {
  auto slash = body.find('/');
  uint32_t pid = number_field(body.substr(0, slash), 0xffffffffU, "netlink pid", whole);
  uint32_t groups = 0;
  if (slash != std::string_view::npos) groups = number_field(body.substr(slash + 1), 0xffffffffU, "netlink groups", whole);
  return NetlinkAddress(pid, groups);
}

// The text after "packet:": IFACE[/PROTO[/PKTTYPE[/HATYPE[/HWADDR]]]].
PacketAddress detail::parse_packet(std::string_view body, std::string_view whole) {
  std::string_view parts[5];
  size_t count = 0;
  for (size_t start = 0;; ++count) {
    auto slash = body.find('/', start);
    if (count == std::size(parts))
      invalid("too many fields in packet address " + quoted(whole) +
              " (want packet:IFACE[/PROTO[/PKTTYPE[/HATYPE[/HWADDR]]]])");
    parts[count] = body.substr(start, slash - start);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  int ifindex = packet_interface(parts[0], whole);
  auto protocol = static_cast<uint16_t>(count >= 1 ? number_field(parts[1], 0xffff, "protocol", whole) : 0);
  uint8_t pkttype = count >= 2 ? packet_type(parts[2], whole) : 0;
  auto hatype = static_cast<uint16_t>(count >= 3 ? number_field(parts[3], 0xffff, "hardware type", whole) : 0);
  std::string hwaddr = count >= 4 ? hardware_address(parts[4], whole) : std::string();
  return PacketAddress(ifindex, protocol, pkttype, hatype, hwaddr);
}

}  // namespace socketeer
