#include "socketeer/address.hpp"

#include <linux/netlink.h>

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
  storage.ss_family = AF_NETLINK;
  reinterpret_cast<unsigned char*>(&storage)[4] = 0x2a;  // nl_pid's first byte
  Address netlink = address_from_sockaddr(storage, 12);
  CHECK_EQ(family_of(netlink), AF_NETLINK);
  CHECK_EQ(length_of(netlink), socklen_t{12});
  CHECK_EQ(std::get<OtherAddress>(netlink).data().size(), 10u);
  CHECK_EQ(to_string(netlink), std::string("AF_NETLINK address 00002a00000000000000"));
  CHECK(std::memcmp(sockaddr_of(netlink), &storage, 12) == 0);
  Address same = address_from_sockaddr(storage, 12);
  CHECK(netlink == same);
  CHECK_EQ(hash_of(netlink), hash_of(same));
  reinterpret_cast<unsigned char*>(&storage)[4] = 0x2b;
  CHECK(netlink < address_from_sockaddr(storage, 12));
  CHECK(parse_address("unix:@x") < netlink);  // by variant alternative first
  storage.ss_family = 44;
  CHECK_EQ(to_string(address_from_sockaddr(storage, 2)), std::string("family 44 address (empty)"));
}

int main() { return socketeer::testing::run_all(); }
