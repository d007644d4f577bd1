// Monitoring: a NETLINK_ROUTE socket bound to multicast groups, read into Events through the
// same parse_* functions the dumps use. A Waker beside the socket lets close() end a blocked
// wait() from another thread (netlink sockets have no shutdown() to do it).
#include <linux/rtnetlink.h>
#include <poll.h>

#include "socketeer/interrupt.hpp"
#include "socketeer/rtnetlink.hpp"

namespace socketeer::rtnl {

uint32_t monitor_groups(std::span<const std::string> names) {
  uint32_t groups = 0;
  for (const std::string& name : names) {
    if (name == "link") groups |= RTMGRP_LINK;
    else if (name == "address") groups |= RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
    else if (name == "route") groups |= RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
    else if (name == "neighbour") groups |= RTMGRP_NEIGH;
    else
      throw InvalidArgument("monitor: unknown group '" + name + "' (link, address, route, neighbour)");
  }
  if (!groups) throw InvalidArgument("monitor: no groups given (link, address, route, neighbour)");
  return groups;
}

namespace {

NetlinkSocket open_socket(uint32_t groups, std::optional<int> netns_fd) {
  return netns_fd ? NetlinkSocket(NETLINK_ROUTE, groups, *netns_fd) : NetlinkSocket(NETLINK_ROUTE, groups);
}

template <class Record>
void add(std::vector<Event>& events, bool added, std::optional<Record> record) {
  if (record) events.push_back(Event{added, std::move(*record)});
}

}  // namespace

Monitor::Monitor(uint32_t groups, std::optional<int> netns_fd)
    : socket_(open_socket(groups, netns_fd)), buffer_(kBufferSize) {}

bool Monitor::wait(int timeout_ms) {
  if (closed()) return false;
  pollfd fds[2] = {{socket_.fd(), POLLIN, 0}, {waker_.fd(), POLLIN, 0}};
  int ready = check(retry_eintr([&] { return ::poll(fds, 2, timeout_ms); }), "poll (rtnetlink monitor)");
  if (closed()) return false;
  return ready > 0 && (fds[0].revents & (POLLIN | POLLERR));
}

std::vector<Event> Monitor::read() {
  size_t size;
  try {
    size = socket_.receive(buffer_);
  } catch (const Error& error) {
    if (error.code_value() != ENOBUFS) throw;
    throw Error(ENOBUFS, "monitor rtnetlink events", {},
                "No buffer space available (the kernel dropped events: the socket's receive "
                "buffer overflowed; dump the tables again to resynchronise)");
  }
  std::vector<Event> events;
  for_each_message(std::span<const std::byte>(buffer_.data(), size), [&](const nlmsghdr& message) {
    switch (message.nlmsg_type) {
      case RTM_NEWLINK:
      case RTM_DELLINK:
        return add(events, message.nlmsg_type == RTM_NEWLINK, parse_link(message));
      case RTM_NEWADDR:
      case RTM_DELADDR:
        return add(events, message.nlmsg_type == RTM_NEWADDR, parse_address(message));
      case RTM_NEWROUTE:
      case RTM_DELROUTE:
        return add(events, message.nlmsg_type == RTM_NEWROUTE, parse_route(message));
      case RTM_NEWNEIGH:
      case RTM_DELNEIGH:
        return add(events, message.nlmsg_type == RTM_NEWNEIGH, parse_neighbour(message));
      default:
        return;
    }
  });
  return events;
}

void Monitor::close() noexcept {
  closed_.store(true, std::memory_order_release);
  waker_.wake();
}

bool Monitor::closed() const noexcept { return closed_.load(std::memory_order_acquire); }

}  // namespace socketeer::rtnl
