// Interface addresses: IpAddress itself, RTM_NEWADDR into an InterfaceAddress, the address
// dump, and adding/deleting an address on an interface.
#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include <cstring>

#include "rtnl_parts.hpp"

namespace socketeer::rtnl {

// --- IpAddress ----------------------------------------------------------------------------------

size_t IpAddress::size() const noexcept { return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0; }

std::string IpAddress::text() const {
  char text[INET6_ADDRSTRLEN] = "";
  if (!::inet_ntop(family, bytes.data(), text, sizeof text)) return "?";
  return text;
}

std::optional<IpAddress> IpAddress::from(uint8_t family, std::span<const std::byte> payload) {
  IpAddress address;
  address.family = family;
  if (address.size() == 0 || payload.size() != address.size()) return std::nullopt;
  std::memcpy(address.bytes.data(), payload.data(), address.size());
  return address;
}

IpAddress IpAddress::make(int family, std::span<const uint8_t> packed) {
  auto address = from(static_cast<uint8_t>(family), std::as_bytes(packed));
  if (family != AF_INET && family != AF_INET6)
    throw InvalidArgument("IP address family must be AF_INET or AF_INET6, not " + std::to_string(family));
  if (!address)
    throw InvalidArgument("IP address of family " + std::to_string(family) + " must be " +
                          (family == AF_INET ? "4" : "16") + " bytes, not " + std::to_string(packed.size()));
  return *address;
}

void check_prefix_len(const IpAddress& address, int prefix_len, std::string_view what) {
  int longest = static_cast<int>(address.size()) * 8;
  if (prefix_len < 0 || prefix_len > longest)
    throw InvalidArgument(std::string(what) + ": prefix length " + std::to_string(prefix_len) +
                          " is out of range for " + (address.family == AF_INET ? "IPv4" : "IPv6") +
                          " (0-" + std::to_string(longest) + ")");
}

// --- parsing and the dump ---------------------------------------------------------------------

std::optional<InterfaceAddress> parse_address(const nlmsghdr& message) {
  auto fixed = fixed_header<ifaddrmsg>(message, RTM_NEWADDR, RTM_DELADDR);
  if (!fixed) return std::nullopt;
  const ifaddrmsg& header = fixed->header;
  const Attributes& attrs = fixed->attrs;
  auto ip = [&](uint16_t type) { return ip_attribute(attrs, type, header.ifa_family); };
  auto local = ip(IFA_LOCAL), address = ip(IFA_ADDRESS);
  if (!local && !address) return std::nullopt;  // not IPv4/IPv6, or malformed
  InterfaceAddress record;
  record.index = static_cast<int>(header.ifa_index);
  record.family = header.ifa_family;
  record.address = local ? *local : *address;
  if (local && address && local->bytes != address->bytes) record.peer = address;
  record.broadcast = ip(IFA_BROADCAST);
  record.prefix_len = header.ifa_prefixlen;
  record.scope = header.ifa_scope;
  record.flags = attrs.u32(IFA_FLAGS).value_or(header.ifa_flags);
  record.label = attrs.string_view(IFA_LABEL).value_or("");
  return record;
}

std::vector<InterfaceAddress> dump_addresses(NetlinkSocket& socket, int family, int index) {
  NetlinkRequest request(RTM_GETADDR, 0);
  auto& header = request.body<ifaddrmsg>();
  header.ifa_family = static_cast<uint8_t>(family);
  header.ifa_index = static_cast<uint32_t>(index);  // a filter under strict checking
  return dump_records(socket, request, "dump addresses", parse_address, [&](const InterfaceAddress& record) {
    return (family == 0 || record.family == family) && (index == 0 || record.index == index);
  });
}

// --- changes --------------------------------------------------------------------------------

namespace {

void change_address(NetlinkSocket& socket, uint16_t type, uint16_t flags, const char* verb,
                    const Interface& interface, const IpAddress& address, int prefix_len) {
  std::string what = std::string(verb) + " address " + address.text() + "/" + std::to_string(prefix_len) +
                     " on " + interface.text();
  check_prefix_len(address, prefix_len, what);
  int index = interface_index(socket, interface, what);
  NetlinkRequest request(type, flags);
  auto& header = request.body<ifaddrmsg>();
  header.ifa_family = address.family;
  header.ifa_prefixlen = static_cast<uint8_t>(prefix_len);
  header.ifa_index = static_cast<uint32_t>(index);
  // IPv4 wants both: IFA_LOCAL is the interface's address, IFA_ADDRESS the prefix (the peer on
  // a point-to-point link). IPv6 takes IFA_ADDRESS alone.
  if (address.family == AF_INET) request.attribute(IFA_LOCAL, address.bytes.data(), address.size());
  request.attribute(IFA_ADDRESS, address.bytes.data(), address.size());
  socket.request(request, what);
}

}  // namespace

void add_address(NetlinkSocket& socket, const Interface& interface, const IpAddress& address, int prefix_len) {
  change_address(socket, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, "add", interface, address, prefix_len);
}

void delete_address(NetlinkSocket& socket, const Interface& interface, const IpAddress& address,
                    int prefix_len) {
  change_address(socket, RTM_DELADDR, 0, "delete", interface, address, prefix_len);
}

}  // namespace socketeer::rtnl
