// rtnetlink records against the real kernel, all changes inside network namespaces made here
// (unshare on a thread that exits, never the host's): links, addresses, routes dumped and
// parsed, the changes that make them, their errors, a hand-built message parsed without reading
// past its end, and the monitor (an event, and close() from another thread ending a wait).
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "socketeer/rtnetlink.hpp"
#include "netns_testing.hpp"

using namespace socketeer;
using namespace socketeer::rtnl;
using socketeer::testing::error_from;
using socketeer::testing::new_netns;

namespace {

IpAddress ipv4(const char* text) {
  IpAddress address;
  address.family = AF_INET;
  CHECK(::inet_pton(AF_INET, text, address.bytes.data()) == 1);
  return address;
}

Link find_link(const std::vector<Link>& links, std::string_view name) {
  auto it = std::find_if(links.begin(), links.end(), [&](const Link& link) { return link.name == name; });
  if (it == links.end()) FAIL_AT("no link " + std::string(name));
  return *it;
}

}  // namespace

TEST(fresh_namespace_has_loopback_down_then_up) {
  Fd netns = new_netns();
  NetlinkSocket sock(NETLINK_ROUTE, 0, netns.get());
  auto links = dump_links(sock);
  CHECK_EQ(links.size(), size_t{1});
  CHECK_EQ(links[0].name, std::string("lo"));
  CHECK_EQ(links[0].index, 1);
  CHECK(!links[0].up());
  CHECK_EQ(links[0].address.size(), size_t{6});  // 00:00:00:00:00:00
  CHECK(links[0].stats.has_value());
  set_link(sock, Interface{0, "lo"}, true, std::nullopt);
  CHECK(dump_links(sock)[0].up());
  set_link(sock, Interface{1, ""}, std::nullopt, 1500u);
  CHECK_EQ(dump_links(sock)[0].mtu, 1500u);
}

TEST(veth_pair_across_namespaces_address_and_route) {
  Fd a = new_netns(), b = new_netns();
  NetlinkSocket in_a(NETLINK_ROUTE, 0, a.get()), in_b(NETLINK_ROUTE, 0, b.get());
  add_veth(in_a, "va", "vb", b.get());
  Link va = find_link(dump_links(in_a), "va");
  CHECK_EQ(va.kind, std::string("veth"));
  CHECK_EQ(va.address.size(), size_t{6});
  auto links_b = dump_links(in_b);
  Link vb = find_link(links_b, "vb");
  CHECK_EQ(vb.kind, std::string("veth"));
  CHECK_EQ(vb.link, va.index);  // the peer's index, in the other namespace
  set_link(in_a, Interface{0, "va"}, true, std::nullopt);

  add_address(in_a, Interface{0, "va"}, ipv4("10.9.0.1"), 24);
  auto addresses = dump_addresses(in_a, AF_INET, va.index);
  CHECK_EQ(addresses.size(), size_t{1});
  CHECK_EQ(addresses[0].address.text(), std::string("10.9.0.1"));
  CHECK_EQ(addresses[0].prefix_len, 24);
  CHECK(!addresses[0].peer.has_value());
  CHECK_EQ(addresses[0].label, std::string("va"));
  Error duplicate = error_from([&] { add_address(in_a, Interface{0, "va"}, ipv4("10.9.0.1"), 24); });
  CHECK_EQ(duplicate.code_value(), EEXIST);
  CHECK_EQ(duplicate.operation(), std::string("add address 10.9.0.1/24 on va"));

  add_route(in_a, RouteSpec{ipv4("10.10.0.0"), 16, ipv4("10.9.0.2"), std::nullopt, 100u});
  auto routes = dump_routes(in_a, AF_INET, 100u);
  CHECK_EQ(routes.size(), size_t{1});
  CHECK_EQ(routes[0].destination.text(), std::string("10.10.0.0"));
  CHECK_EQ(routes[0].prefix_len, 16);
  CHECK_EQ(routes[0].gateway.value_or(IpAddress{}).text(), std::string("10.9.0.2"));
  CHECK_EQ(routes[0].oif, va.index);
  CHECK_EQ(routes[0].table, 100u);
  CHECK_EQ(routes[0].protocol, RTPROT_BOOT);
  // The main table holds the prefix route of the address, not the table-100 one.
  for (const Route& route : dump_routes(in_a, AF_INET, RT_TABLE_MAIN)) CHECK_EQ(route.table, uint32_t{RT_TABLE_MAIN});
  add_route(in_a, RouteSpec{IpAddress{AF_INET, {}}, 0, ipv4("10.9.0.254"), std::nullopt, std::nullopt});
  bool found_default = false;
  for (const Route& route : dump_routes(in_a, AF_INET, RT_TABLE_MAIN))
    found_default |= route.prefix_len == 0 && route.destination.text() == "0.0.0.0";
  CHECK(found_default);

  delete_address(in_a, Interface{va.index, ""}, ipv4("10.9.0.1"), 24);
  CHECK(dump_addresses(in_a, AF_INET, va.index).empty());
  delete_link(in_a, Interface{0, "va"});
  CHECK_EQ(dump_links(in_a).size(), size_t{1});
}

TEST(bad_input_names_the_request) {
  Fd netns = new_netns();
  NetlinkSocket sock(NETLINK_ROUTE, 0, netns.get());
  Error unknown = error_from([&] { add_address(sock, Interface{0, "nope0"}, ipv4("10.0.0.1"), 24); });
  CHECK_EQ(unknown.code_value(), ENODEV);
  CHECK_EQ(unknown.operation(), std::string("add address 10.0.0.1/24 on nope0"));
  CHECK_EQ(error_from([&] { set_link(sock, Interface{0, "nope0"}, true, std::nullopt); }).code_value(), ENODEV);
  CHECK_THROWS_AS(add_address(sock, Interface{0, "lo"}, ipv4("10.0.0.1"), 33), InvalidArgument);
  CHECK_THROWS_AS(set_link(sock, Interface{0, std::string(16, 'x')}, true, std::nullopt), InvalidArgument);
  CHECK_THROWS_AS(IpAddress::make(AF_INET, std::vector<uint8_t>(16)), InvalidArgument);
  Error exists = error_from([&] { add_veth(sock, "lo", "peer0"); });
  CHECK_EQ(exists.code_value(), EEXIST);
}

TEST(parse_link_reads_a_built_message_and_nothing_past_it) {
  NetlinkRequest message(RTM_NEWLINK, 0);
  auto& info = message.body<ifinfomsg>();
  info.ifi_index = 7;
  info.ifi_flags = IFF_UP | IFF_RUNNING;
  message.attribute_string(IFLA_IFNAME, "eth7");
  message.attribute_u32(IFLA_MTU, 9000);
  const uint8_t mac[6] = {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  message.attribute(IFLA_ADDRESS, mac, sizeof mac);
  size_t nest = message.begin_nested(IFLA_LINKINFO);
  message.attribute_string(IFLA_INFO_KIND, "bridge");
  message.end_nested(nest);
  uint64_t short_stats[2] = {11, 22};  // an old kernel's shorter struct: the rest stays zero
  message.attribute(IFLA_STATS64, short_stats, sizeof short_stats);
  auto link = parse_link(*message.header());
  CHECK(link.has_value());
  CHECK_EQ(link->index, 7);
  CHECK_EQ(link->name, std::string("eth7"));
  CHECK(link->up() && link->running() && !link->lower_up());
  CHECK_EQ(link->mtu, 9000u);
  CHECK(link->address == HardwareAddress(mac, mac + 6));
  CHECK_EQ(hardware_text(link->address), std::string("aa:bb:cc:dd:ee:ff"));
  CHECK_EQ(link->kind, std::string("bridge"));
  CHECK_EQ(link->stats->rx_packets, 11u);
  CHECK_EQ(link->stats->tx_packets, 22u);
  CHECK_EQ(link->stats->rx_dropped, 0u);
  // A message cut short of its fixed header, or of another type, is no link.
  nlmsghdr cut = *message.header();
  cut.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg) - 1);
  CHECK(!parse_link(cut).has_value());
  CHECK(!parse_route(*message.header()).has_value());
}

TEST(parse_route_default_and_names) {
  NetlinkRequest message(RTM_NEWROUTE, 0);
  auto& header = message.body<rtmsg>();
  header.rtm_family = AF_INET6;
  header.rtm_table = RT_TABLE_MAIN;
  header.rtm_type = RTN_UNICAST;
  message.attribute_u32(RTA_TABLE, 1000);
  message.attribute_u32(RTA_PRIORITY, 1024);
  uint8_t gateway[16] = {0xfe, 0x80, 15, 1};
  message.attribute(RTA_GATEWAY, gateway, sizeof gateway);
  message.attribute(RTA_PREFSRC, gateway, 4);  // wrong size for IPv6: ignored
  auto route = parse_route(*message.header());
  CHECK(route.has_value());
  CHECK_EQ(route->destination.text(), std::string("::"));
  CHECK_EQ(route->prefix_len, 0);
  CHECK_EQ(route->table, 1000u);  // RTA_TABLE over the 8-bit rtm_table
  CHECK_EQ(route->priority.value_or(0), 1024u);
  CHECK_EQ(route->gateway->text(), std::string("fe80:f01::"));
  CHECK(!route->source.has_value());
  CHECK_EQ(operstate_name(IF_OPER_LOWERLAYERDOWN), std::string("LOWERLAYERDOWN"));
  CHECK_EQ(neighbour_state_name(0x02 | 0x04), std::string("REACHABLE,STALE"));
}

TEST(monitor_sees_a_link_change_and_close_wakes_it) {
  Fd netns = new_netns();
  const std::string groups[] = {"link", "address"};
  Monitor monitor(monitor_groups(groups), netns.get());
  NetlinkSocket sock(NETLINK_ROUTE, 0, netns.get());
  set_link(sock, Interface{0, "lo"}, true, std::nullopt);
  bool seen = false;
  for (int i = 0; i < 20 && !seen && monitor.wait(5000); ++i)
    for (const Event& event : monitor.read())
      if (auto* link = std::get_if<Link>(&event.record)) seen |= event.added && link->name == "lo" && link->up();
  CHECK(seen);
  CHECK_THROWS_AS(monitor_groups(std::vector<std::string>{"links"}), InvalidArgument);

  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a wait() in progress, most likely
    monitor.close();
  });
  auto start = std::chrono::steady_clock::now();
  while (monitor.wait(-1)) monitor.read();  // drains what is left, then ends on close()
  closer.join();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  CHECK(!monitor.wait(0));
}

int main() { return socketeer::testing::run_all(); }
