// The netlink core against the real kernel: a multipart dump, an error with the kernel's
// extended ACK text, a refused request, attribute parsing that never reads past the end, and a
// socket opened inside another network namespace (made here by unshare, never the host's).
#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <sched.h>
#include <sys/stat.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "socketeer/netlink.hpp"
#include "socketeer/netns.hpp"
#include "netns_testing.hpp"

using namespace socketeer;
using socketeer::testing::error_from;
using socketeer::testing::new_netns;

namespace {

std::vector<std::pair<int, std::string>> links(NetlinkSocket& sock) {
  NetlinkRequest request(RTM_GETLINK, 0);
  request.body<ifinfomsg>().ifi_family = AF_UNSPEC;
  std::vector<std::pair<int, std::string>> found;
  sock.dump(request, "dump links", [&](const nlmsghdr& message) {
    CHECK_EQ(message.nlmsg_type, RTM_NEWLINK);
    auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(&message));
    auto name = Attributes::of_message(message, sizeof(ifinfomsg)).string_view(IFLA_IFNAME);
    CHECK(name.has_value());
    found.emplace_back(info->ifi_index, std::string(*name));
  });
  return found;
}

}  // namespace

TEST(dump_links_finds_loopback) {
  NetlinkSocket sock(NETLINK_ROUTE);
  CHECK(sock.port_id() != 0);
  CHECK(::fcntl(sock.fd(), F_GETFD) & FD_CLOEXEC);
  auto found = links(sock);
  bool lo = false;
  for (auto& [index, name] : found) lo |= name == "lo" && index == static_cast<int>(::if_nametoindex("lo"));
  CHECK(lo);
  // The same socket dumps again (fresh sequence number, same buffer).
  CHECK_EQ(links(sock).size(), found.size());
}

TEST(two_sockets_get_different_port_ids) {
  NetlinkSocket a(NETLINK_ROUTE), b(NETLINK_ROUTE);
  CHECK(a.port_id() != b.port_id());
}

TEST(refused_request_names_it) {
  NetlinkSocket sock(NETLINK_ROUTE);
  NetlinkRequest request(RTM_GETLINK, 0);
  request.body<ifinfomsg>().ifi_index = 0x7ffffff0;  // no such link
  Error error = error_from([&] { sock.request(request, "get link 2147483632"); });
  CHECK_EQ(error.code_value(), ENODEV);
  CHECK_EQ(error.operation(), std::string("get link 2147483632"));
  // The socket is still usable afterwards.
  CHECK(!links(sock).empty());
}

TEST(netns_socket_sees_that_namespace_and_thread_returns) {
  Fd netns = new_netns();
  struct ::stat before{}, after{};
  CHECK(::stat("/proc/thread-self/ns/net", &before) == 0);
  NetlinkSocket sock(NETLINK_ROUTE, 0, netns.get());
  CHECK(::stat("/proc/thread-self/ns/net", &after) == 0);
  CHECK_EQ(before.st_ino, after.st_ino);  // this thread is back home
  auto found = links(sock);
  CHECK_EQ(found.size(), size_t{1});
  CHECK_EQ(found[0].second, std::string("lo"));
}

TEST(netns_open_errors_name_the_path) {
  Error error = error_from([] { open_netns("socketeer-no-such-netns"); });
  CHECK_EQ(error.code_value(), ENOENT);
  CHECK_EQ(error.target(), std::string("/run/netns/socketeer-no-such-netns"));
  CHECK_THROWS_AS(open_netns(""), InvalidArgument);
  // A bad namespace fd fails before any socket is made, and leaves the thread where it was.
  CHECK_THROWS_ERRNO(NetlinkSocket(NETLINK_ROUTE, 0, -1), EBADF);
}

TEST(bad_prefix_is_refused_with_the_kernels_message) {
  Fd netns = new_netns();
  NetlinkSocket sock(NETLINK_ROUTE, 0, netns.get());
  NetlinkRequest request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  auto& ifa = request.body<ifaddrmsg>();
  request.attribute_u32(IFA_LOCAL, htonl(0x0a000001));
  ifa.ifa_family = AF_INET;  // filled in after an attribute: body() references stay valid
  ifa.ifa_prefixlen = 33;
  ifa.ifa_index = 1;  // lo, in the new namespace
  request.attribute_u32(IFA_ADDRESS, htonl(0x0a000001));
  Error error = error_from([&] { sock.request(request, "add address 10.0.0.1/33 on lo"); });
  CHECK_EQ(error.code_value(), EINVAL);
  CHECK_EQ(error.operation(), std::string("add address 10.0.0.1/33 on lo"));
  std::string reason = error.reason();
  std::printf("     reason: %s\n", reason.c_str());
  CHECK(reason.starts_with(std::strerror(EINVAL)));
  // Kernels with extended ACK messages say why (6.x: "Invalid prefix length").
  if (reason.find("(kernel: ") != std::string::npos) CHECK(reason.find("prefix") != std::string::npos);
}

TEST(dump_error_inside_done_is_thrown_with_its_message) {
  // With strict checking (NETLINK_GET_STRICT_CHK) an address dump whose header asks for a
  // filter the kernel does not have fails from inside the dump: the error rides in NLMSG_DONE.
  NetlinkSocket sock(NETLINK_ROUTE);
  NetlinkRequest request(RTM_GETADDR, 0);
  request.body<ifaddrmsg>().ifa_prefixlen = 8;
  int messages = 0;
  Error error = error_from([&] { sock.dump(request, "dump addresses", [&](const nlmsghdr&) { ++messages; }); });
  CHECK_EQ(error.code_value(), EINVAL);
  CHECK_EQ(messages, 0);
  std::printf("     reason: %s\n", error.reason().c_str());
  if (error.reason().find("(kernel: ") != std::string::npos)
    CHECK(error.reason().find("header") != std::string::npos);
  CHECK(!links(sock).empty());  // what is left of the failed dump does not confuse the next one
}

TEST(request_builds_nested_attributes) {
  NetlinkRequest request(RTM_NEWLINK, 0);
  request.body<ifinfomsg>();
  size_t nest = request.begin_nested(IFLA_LINKINFO);
  request.attribute_string(IFLA_INFO_KIND, "veth");
  request.end_nested(nest);
  request.attribute_u32(IFLA_MTU, 1400);
  auto* h = request.header();
  CHECK(h->nlmsg_flags & NLM_F_REQUEST);
  CHECK_EQ(h->nlmsg_len, request.bytes().size());
  CHECK_EQ(h->nlmsg_len % NLMSG_ALIGNTO, 0u);
  Attributes attrs = Attributes::of_message(*h, sizeof(ifinfomsg));
  CHECK_EQ(attrs.nested(IFLA_LINKINFO).string_view(IFLA_INFO_KIND).value_or(""), std::string_view("veth"));
  CHECK_EQ(attrs.u32(IFLA_MTU).value_or(0), 1400u);
  CHECK(!attrs.u32(IFLA_IFNAME).has_value());
  CHECK_THROWS_AS(NetlinkRequest(RTM_NEWLINK, 0, 32).attribute(1, "x", 64), InvalidArgument);
}

TEST(malformed_attributes_are_never_read_past) {
  // type 1: a u16 (too short for u32); type 2|NLA_F_NESTED: u32 7; then a header claiming 200
  // bytes with 8 left.
  alignas(4) unsigned char bytes[24] = {};
  auto put = [&](size_t at, uint16_t len, uint16_t type) {
    std::memcpy(bytes + at, &len, 2);
    std::memcpy(bytes + at + 2, &type, 2);
  };
  put(0, 6, 1);
  put(8, 8, 2 | NLA_F_NESTED);
  uint32_t seven = 7;
  std::memcpy(bytes + 12, &seven, 4);
  put(16, 200, 3);
  Attributes attrs(bytes, sizeof bytes);
  int count = 0;
  for (Attribute attr : attrs) {
    ++count;
    CHECK(attr.payload.data() + attr.payload.size() <= reinterpret_cast<std::byte*>(bytes) + sizeof bytes);
  }
  CHECK_EQ(count, 2);
  CHECK(!attrs.u32(1).has_value());
  CHECK_EQ(attrs.u16(1).value_or(0), 0);
  CHECK_EQ(attrs.u32(2).value_or(0), 7u);  // NLA_F_NESTED masked off
  CHECK(!attrs.find(3).has_value());
  // A header shorter than itself ends the walk too.
  put(0, 2, 1);
  CHECK(Attributes(bytes, sizeof bytes).begin() == Attributes(bytes, sizeof bytes).end());
  CHECK(Attributes(bytes, 3).begin() == Attributes().end());
}

int main() { return socketeer::testing::run_all(); }
