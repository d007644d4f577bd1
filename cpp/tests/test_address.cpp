#include "socketeer/address.hpp"

#include <linux/netlink.h>
#include <linux/vm_sockets.h>
#include <net/if.h>

#include <cstring>
#include "testing.hpp"

using namespace socketeer;

TEST(parse_and_format_round_trip) {
  for (const char* text : {"127.0.0.1:8080", "[::1]:8080", "[fe80::1%lo]:80", "unix:/run/app.sock",
                           "unix:@name", "0.0.0.0:0", "[::]:65535"}) {
    CHECK_EQ(to_string(parse_address(text)), std::string(text));
  }
}

TEST(families) {
  CHECK_EQ(family_of(parse_address("1.2.3.4:5")), AF_INET);
  CHECK_EQ(family_of(parse_address("[::1]:5")), AF_INET6);
  CHECK_EQ(family_of(parse_address("unix:@x")), AF_UNIX);
}

TEST(bad_addresses_name_the_bad_part) {
  CHECK_THROWS_AS(parse_address("1.2.3.4"), InvalidArgument);
  CHECK_THROWS_AS(parse_address("1.2.3.4:65536"), InvalidArgument);
  CHECK_THROWS_AS(parse_address("[::1:80"), InvalidArgument);
  CHECK_THROWS_AS(parse_address("::1:80"), InvalidArgument);
  CHECK_THROWS_AS(parse_address("[fe80::1%nosuchif0]:80"), InvalidArgument);
  CHECK_THROWS_AS(parse_address("unix:" + std::string(108, 'x')), InvalidArgument);
  try {
    parse_address("1.2.3:80");
    FAIL_AT("no error");
  } catch (const InvalidArgument& error) {
    CHECK(std::string(error.what()).find("'1.2.3'") != std::string::npos);
  }
}

TEST(unix_path_limit_is_107_bytes) {
  UnixAddress longest(std::string(107, 'p'), false);
  CHECK_EQ(longest.path().size(), 107u);
  UnixAddress abstract(std::string(107, 'a'), true);
  CHECK(abstract.abstract());
  CHECK_EQ(abstract.path().size(), 107u);
}

TEST(ordering_and_equality) {
  CHECK(parse_address("1.2.3.4:5") == parse_address("1.2.3.4:5"));
  CHECK(parse_address("1.2.3.4:5") < parse_address("1.2.3.4:6"));
  CHECK(parse_address("1.2.3.4:9") < parse_address("1.2.3.5:1"));
  CHECK(parse_address("255.0.0.0:1") < parse_address("[::]:0"));  // by family first
  CHECK_EQ(hash_of(parse_address("unix:@a")), hash_of(parse_address("unix:@a")));
}

TEST(unix_text_keeps_paths_that_begin_with_at_or_two_slashes) {
  CHECK_EQ(UnixAddress("@x", false).to_string(), std::string("unix://@x"));
  CHECK_EQ(UnixAddress("//tmp/x", false).to_string(), std::string("unix:////tmp/x"));
  CHECK_EQ(UnixAddress("//x", true).to_string(), std::string("unix:@//x"));
  for (const auto& address : {UnixAddress("@x", false), UnixAddress("//tmp/x", false), UnixAddress("@", false),
                              UnixAddress("", false), UnixAddress("", true), UnixAddress(std::string("a\0b", 3), true)})
    CHECK(std::get<UnixAddress>(parse_address(address.to_string())) == address);
  CHECK(std::get<UnixAddress>(parse_address("unix:///run/x")) == UnixAddress("/run/x", false));
}

TEST(nul_bytes_and_signs_are_not_part_of_a_host_or_port) {
  for (std::string text : {std::string("1.2.3.4\0junk:80", 15), std::string("[::1\0junk]:80", 13),
                           std::string("[fe80::1%lo\0x]:80", 17), std::string("1.2.3.4:-0")})
    CHECK_THROWS_AS(parse_address(text), InvalidArgument);
}

TEST(other_families_keep_the_kernels_bytes) {
  sockaddr_storage storage{};
  storage.ss_family = AF_VSOCK;
  reinterpret_cast<unsigned char*>(&storage)[4] = 0x2a;
  Address vsock = address_from_sockaddr(storage, 12);
  CHECK_EQ(family_of(vsock), AF_VSOCK);
  CHECK_EQ(length_of(vsock), socklen_t{12});
  CHECK_EQ(std::get<OtherAddress>(vsock).data().size(), 10u);
  CHECK_EQ(to_string(vsock), std::string("family 40 address 00002a00000000000000"));
  CHECK(std::memcmp(sockaddr_of(vsock), &storage, 12) == 0);
  Address same = address_from_sockaddr(storage, 12);
  CHECK(vsock == same);
  CHECK_EQ(hash_of(vsock), hash_of(same));
  reinterpret_cast<unsigned char*>(&storage)[4] = 0x2b;
  CHECK(vsock < address_from_sockaddr(storage, 12));
  CHECK(parse_address("packet:#1") < vsock);  // by variant alternative first
  storage.ss_family = 44;
  CHECK_EQ(to_string(address_from_sockaddr(storage, 2)), std::string("family 44 address (empty)"));
}

TEST(netlink_addresses_from_the_kernel_and_as_text) {
  sockaddr_nl nl{};
  nl.nl_family = AF_NETLINK;
  nl.nl_pid = 1234;
  nl.nl_groups = 0x11;
  sockaddr_storage storage{};
  std::memcpy(&storage, &nl, sizeof nl);
  Address netlink = address_from_sockaddr(storage, sizeof nl);
  CHECK_EQ(family_of(netlink), AF_NETLINK);
  CHECK_EQ(length_of(netlink), socklen_t{sizeof nl});
  CHECK_EQ(std::get<NetlinkAddress>(netlink).pid(), 1234u);
  CHECK_EQ(std::get<NetlinkAddress>(netlink).groups(), 0x11u);
  CHECK(std::memcmp(sockaddr_of(netlink), &nl, sizeof nl) == 0);
  CHECK_EQ(to_string(netlink), std::string("netlink:1234/0x11"));
  CHECK_EQ(to_string(NetlinkAddress(0, 0)), std::string("netlink:0"));
  CHECK(parse_address("netlink:1234/17") == netlink);
  CHECK(parse_address("netlink:4294967295/0xffffffff") == Address(NetlinkAddress(0xffffffffU, 0xffffffffU)));
  CHECK_EQ(hash_of(netlink), hash_of(parse_address("netlink:1234/0x11")));
  CHECK(parse_address("netlink:1/0xff") < parse_address("netlink:2"));  // pid first
  CHECK(parse_address("unix:@x") < netlink);
  for (const std::string& bad : std::initializer_list<std::string>{"netlink:", "netlink:x", "netlink:-1", "netlink:4294967296", "netlink:1/", "netlink:1/2/3",
                          "netlink:0x", "netlink: 1", std::string("netlink:1\0", 10)})
    CHECK_THROWS_AS(parse_address(bad), InvalidArgument);
}

TEST(packet_addresses_from_the_kernel_and_as_text) {
  unsigned lo = if_nametoindex("lo");
  CHECK(lo != 0);
  PacketAddress all(static_cast<int>(lo), 0x0003);
  CHECK_EQ(all.to_string(), std::string("packet:lo/0x0003"));
  CHECK_EQ(all.ifname(), std::string("lo"));
  CHECK_EQ(length_of(all), socklen_t{sizeof(sockaddr_ll)});
  CHECK(parse_address("packet:lo/0x0003") == Address(all));
  CHECK(parse_address("packet:lo/3") == Address(all));
  CHECK(parse_address("packet:#" + std::to_string(lo) + "/0x3") == Address(all));
  PacketAddress full(static_cast<int>(lo), 0x0800, PACKET_OUTGOING, 772, std::string(6, '\x01'));
  CHECK_EQ(full.to_string(), std::string("packet:lo/0x0800/outgoing/772/01:01:01:01:01:01"));
  CHECK(parse_address(full.to_string()) == Address(full));
  CHECK_EQ(PacketAddress(0, 0).to_string(), std::string("packet:#0"));
  CHECK_EQ(PacketAddress(0, 0, 0, 1).to_string(), std::string("packet:#0/0x0000/host/1"));
  CHECK_EQ(PacketAddress(0, 0, 9).to_string(), std::string("packet:#0/0x0000/9"));
  CHECK(parse_address("packet:#0/0/9") == Address(PacketAddress(0, 0, 9)));
  CHECK(parse_address("packet:#7") < parse_address("packet:#8"));  // ifindex first
  CHECK(parse_address("packet:#7/0x0800") < parse_address("packet:#7/0x86dd"));
  CHECK_THROWS_AS(PacketAddress(1, 0, 0, 0, std::string(9, 'x')), InvalidArgument);
  for (std::string bad : {"packet:", "packet:nosuchif0", "packet:lo/0x10000", "packet:lo/3/nosuchtype",
                          "packet:lo/3/host/1/00:11:2", "packet:lo/3/host/1/001122", "packet:lo/3/host/1/",
                          "packet:lo/3/host/1/00:00:00:00:00:00:00:00:00", "packet:lo/3/host/1/00/x",
                          "packet:#x", "packet:#-1"})
    CHECK_THROWS_AS(parse_address(bad), InvalidArgument);
  try {
    parse_address("packet:nosuchif0/3");
    FAIL_AT("no error");
  } catch (const InvalidArgument& error) {
    CHECK(std::string(error.what()).find("unknown interface 'nosuchif0'") != std::string::npos);
  }
}

TEST(packet_hardware_addresses_longer_than_sll_addr_survive) {
  // InfiniBand's 20-byte address, as the kernel writes it past sll_addr's 8 bytes.
  sockaddr_storage storage{};
  auto* ll = reinterpret_cast<sockaddr_ll*>(&storage);
  ll->sll_family = AF_PACKET;
  ll->sll_ifindex = 3;
  ll->sll_protocol = htons(0x0800);
  ll->sll_hatype = 32;
  ll->sll_halen = 20;
  auto* hardware = reinterpret_cast<unsigned char*>(&storage) + offsetof(sockaddr_ll, sll_addr);
  for (int i = 0; i < 20; ++i) hardware[i] = static_cast<unsigned char>(i + 1);
  Address packet = address_from_sockaddr(storage, offsetof(sockaddr_ll, sll_addr) + 20);
  const auto& a = std::get<PacketAddress>(packet);
  CHECK_EQ(a.hwaddr().size(), 20u);
  CHECK_EQ(static_cast<int>(a.hwaddr()[19]), 20);
  CHECK_EQ(length_of(packet), socklen_t{offsetof(sockaddr_ll, sll_addr) + 20});
  CHECK(std::memcmp(sockaddr_of(packet), &storage, offsetof(sockaddr_ll, sll_addr) + 20) == 0);
  CHECK_EQ(a.protocol(), 0x0800);
  CHECK_EQ(a.ifindex(), 3);
  // Cut to what the kernel wrote when sll_halen says more.
  Address cut = address_from_sockaddr(storage, offsetof(sockaddr_ll, sll_addr) + 4);
  CHECK_EQ(std::get<PacketAddress>(cut).hwaddr().size(), 4u);
  CHECK_EQ(length_of(cut), socklen_t{sizeof(sockaddr_ll)});
  CHECK(cut != packet);
  CHECK_EQ(hash_of(packet), hash_of(address_from_sockaddr(storage, offsetof(sockaddr_ll, sll_addr) + 20)));
}

int main() { return socketeer::testing::run_all(); }
