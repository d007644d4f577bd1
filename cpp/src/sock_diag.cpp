#include "socketeer/sock_diag.hpp"

#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#include <cstring>
#include <string_view>

namespace socketeer {
namespace {

constexpr uint32_t kAllStates = ~0u;

// The kernel's TCP_NEW_SYN_RECV: connections not yet accepted, reported as SYN_RECV. Asking for
// SYN_RECV means asking for those too (as ss does).
constexpr int kSynRecv = 3, kNewSynRecv = 12;

uint32_t kernel_states(uint32_t states) {
  if (states == 0) return kAllStates;
  if (states & (1u << kSynRecv)) states |= 1u << kNewSynRecv;
  return states;
}

Address inet_address(int family, const __be32* addr, __be16 port, uint32_t ifindex) {
  if (family == AF_INET) {
    InetAddress a;
    a.raw.sin_addr.s_addr = addr[0];
    a.raw.sin_port = port;
    return a;
  }
  Inet6Address a;
  std::memcpy(&a.raw.sin6_addr, addr, sizeof a.raw.sin6_addr);
  a.raw.sin6_port = port;
  if (IN6_IS_ADDR_LINKLOCAL(&a.raw.sin6_addr)) a.raw.sin6_scope_id = ifindex;
  return a;
}

int kind_of(int protocol) {
  switch (protocol) {
    case IPPROTO_TCP: return SOCK_STREAM;
    case IPPROTO_UDP: case IPPROTO_UDPLITE: return SOCK_DGRAM;
    default: return SOCK_RAW;
  }
}

const char* dump_name(int family, int protocol) {
  bool v6 = family == AF_INET6;
  switch (protocol) {
    case IPPROTO_TCP:
      if (family == AF_UNSPEC) return "list TCP and TCP/IPv6 sockets (sock_diag)";
      return v6 ? "list TCP/IPv6 sockets (sock_diag)" : "list TCP sockets (sock_diag)";
    case IPPROTO_UDP: return v6 ? "list UDP/IPv6 sockets (sock_diag)" : "list UDP sockets (sock_diag)";
    default: return v6 ? "list raw IPv6 sockets (sock_diag)" : "list raw sockets (sock_diag)";
  }
}

// A unix name as the kernel reports it: an abstract name starts with NUL; a path may carry its
// terminating NUL (the kernel counts it when it makes the address).
UnixAddress unix_name(std::span<const std::byte> payload) {
  std::string_view name(reinterpret_cast<const char*>(payload.data()), payload.size());
  if (name.empty()) return UnixAddress();
  if (name[0] == '\0') return UnixAddress(name.substr(1), true);
  return UnixAddress(name.substr(0, name.find('\0')), false);
}

}  // namespace

std::vector<std::byte> port_filter_bytecode(const PortFilter& filter) {
  // The kernel runs the ops from the start: a true test moves `yes` bytes on, a false one `no`
  // bytes (JMP always takes `no`); the socket matches if that lands exactly on the end, so
  // "reject" is a jump to 4 bytes past it. A port test is two ops: the test, then one carrying
  // the port (host byte order) in `no`. The kernel's audit walks the `yes` chain and wants every
  // jump to land on it, which is why "either port" is iproute2's shape for OR:
  //   S_EQ(no: to D_EQ)  port  JMP(no: past D_EQ)  D_EQ(no: reject)  port
  constexpr uint16_t op = sizeof(inet_diag_bc_op);
  std::vector<inet_diag_bc_op> ops;
  std::vector<size_t> rejects;  // ops whose `no` is "reject", patched once the length is known
  auto test = [&](uint8_t code, uint16_t port) {
    rejects.push_back(ops.size());
    ops.push_back({code, 2 * op, 0});
    ops.push_back({INET_DIAG_BC_NOP, 0, port});
  };
  if (filter.port) {
    ops.push_back({INET_DIAG_BC_S_EQ, 2 * op, 3 * op});
    ops.push_back({INET_DIAG_BC_NOP, 0, *filter.port});
    ops.push_back({INET_DIAG_BC_JMP, op, 3 * op});
    test(INET_DIAG_BC_D_EQ, *filter.port);
  }
  if (filter.sport) test(INET_DIAG_BC_S_EQ, *filter.sport);
  if (filter.dport) test(INET_DIAG_BC_D_EQ, *filter.dport);
  for (size_t at : rejects) ops[at].no = static_cast<uint16_t>((ops.size() - at + 1) * op);
  std::vector<std::byte> bytes(ops.size() * op);
  if (!ops.empty()) std::memcpy(bytes.data(), ops.data(), bytes.size());
  return bytes;
}

void dump_inet_sockets(NetlinkSocket& sock, int family, int protocol, const SocketQuery& query,
                       SocketRecords& out) {
  bool want_info = query.tcp_info && protocol == IPPROTO_TCP;
  uint8_t extensions = want_info ? 1 << (INET_DIAG_INFO - 1) : 0;
  // TCP of both families: the old TCPDIAG_GETSOCK request lists both in one walk of the
  // kernel's hash tables (it means "AF_UNSPEC"); SOCK_DIAG_BY_FAMILY needs one walk per family,
  // and the walk of an empty 256k-bucket table costs milliseconds. ss does the same.
  bool both = family == AF_UNSPEC;
  if (both && protocol != IPPROTO_TCP) throw InvalidArgument("sock_diag: AF_UNSPEC is for TCP only");
  uint16_t type = both ? TCPDIAG_GETSOCK : SOCK_DIAG_BY_FAMILY;
  NetlinkRequest request(type, 0);
  if (both) {
    auto& req = request.body<inet_diag_req>();
    req.idiag_states = kernel_states(query.states);
    req.idiag_ext = extensions;
  } else {
    auto& req = request.body<inet_diag_req_v2>();
    req.sdiag_family = static_cast<uint8_t>(family);
    req.sdiag_protocol = static_cast<uint8_t>(protocol);
    req.idiag_states = kernel_states(query.states);
    req.idiag_ext = extensions;
  }
  if (!query.ports.empty()) {
    auto bytecode = port_filter_bytecode(query.ports);
    request.attribute(INET_DIAG_REQ_BYTECODE, bytecode.data(), bytecode.size());
  }
  sock.dump(request, dump_name(family, protocol), [&](const nlmsghdr& message) {
    if (message.nlmsg_type != type || message.nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) return;
    inet_diag_msg msg;
    std::memcpy(&msg, NLMSG_DATA(&message), sizeof msg);
    if (msg.idiag_family != AF_INET && msg.idiag_family != AF_INET6) return;
    Attributes attrs = Attributes::of_message(message, sizeof(inet_diag_msg));
    SocketRecord& r = out.emplace_back();
    r.family = msg.idiag_family;
    r.protocol = protocol;
    r.kind = kind_of(protocol);
    r.state = msg.idiag_state;
    r.local = inet_address(r.family, msg.id.idiag_src, msg.id.idiag_sport, msg.id.idiag_if);
    r.remote = inet_address(r.family, msg.id.idiag_dst, msg.id.idiag_dport, msg.id.idiag_if);
    r.recv_queue = msg.idiag_rqueue;
    r.send_queue = msg.idiag_wqueue;
    r.inode = msg.idiag_inode;
    r.uid = msg.idiag_uid;
    r.cookie = msg.id.idiag_cookie[0] | (uint64_t{msg.id.idiag_cookie[1]} << 32);
    r.timer = msg.idiag_timer;
    r.timer_expires_ms = msg.idiag_expires;
    r.retransmits = msg.idiag_retrans;
    // One pass over the attributes (a TCP socket's reply carries ~8): two find()s cost 10 % of
    // a 10,000-socket listing in perf.
    for (Attribute attr : attrs) {
      if (attr.type == INET_DIAG_PROTOCOL && !attr.payload.empty())
        r.protocol = static_cast<int>(attr.payload[0]);
      else if (attr.type == INET_DIAG_INFO && want_info)
        r.tcp_info = tcp_info_from_kernel(attr.payload.data(), attr.payload.size());
    }
  });
}

void dump_unix_sockets(NetlinkSocket& sock, const SocketQuery& query, SocketRecords& out) {
  NetlinkRequest request(SOCK_DIAG_BY_FAMILY, 0);
  auto& req = request.body<unix_diag_req>();
  req.sdiag_family = AF_UNIX;
  req.udiag_states = kernel_states(query.states);
  req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_UID;
  sock.dump(request, "list unix sockets (sock_diag)", [&](const nlmsghdr& message) {
    if (message.nlmsg_type != SOCK_DIAG_BY_FAMILY ||
        message.nlmsg_len < NLMSG_LENGTH(sizeof(unix_diag_msg)))
      return;
    unix_diag_msg msg;
    std::memcpy(&msg, NLMSG_DATA(&message), sizeof msg);
    if (msg.udiag_type >= 32 || !(query.unix_kinds & (1u << msg.udiag_type))) return;
    Attributes attrs = Attributes::of_message(message, sizeof(unix_diag_msg));
    SocketRecord& r = out.emplace_back();
    r.family = AF_UNIX;
    r.kind = msg.udiag_type;
    r.state = msg.udiag_state;
    r.inode = msg.udiag_ino;
    r.local = UnixAddress();
    r.remote = UnixAddress();
    if (auto name = attrs.find(UNIX_DIAG_NAME)) r.local = unix_name(*name);
    r.peer_inode = attrs.u32(UNIX_DIAG_PEER).value_or(0);
    if (auto rqlen = attrs.get<unix_diag_rqlen>(UNIX_DIAG_RQLEN)) {
      r.recv_queue = rqlen->udiag_rqueue;
      r.send_queue = rqlen->udiag_wqueue;
    }
    if (auto vfs = attrs.get<unix_diag_vfs>(UNIX_DIAG_VFS)) {
      r.vfs_inode = vfs->udiag_vfs_ino;
      r.vfs_dev = vfs->udiag_vfs_dev;
    }
    r.uid = attrs.u32(UNIX_DIAG_UID);
  });
}

namespace {

// Runs one dump; ENOENT (the kernel has no diag module for it) is skipped or explained.
template <class Dump>
void run_dump(const SocketQuery& query, SocketRecords& out, Dump&& dump) {
  size_t before = out.size();
  try {
    dump();
  } catch (const Error& error) {
    if (error.code_value() != ENOENT) throw;
    out.resize(before);
    if (query.skip_unsupported) return;
    throw Error(ENOENT, error.operation(), {},
                error.reason() + " (this kernel has no sock_diag module for these sockets)");
  }
}

}  // namespace

SocketRecords list_sockets(const SocketQuery& query, int netns_fd) {
  NetlinkSocket sock = netns_fd >= 0 ? NetlinkSocket(NETLINK_SOCK_DIAG, 0, netns_fd)
                                     : NetlinkSocket(NETLINK_SOCK_DIAG);
  SocketRecords out;
  for (auto [wanted, protocol] : {std::pair{query.tcp, IPPROTO_TCP}, std::pair{query.udp, IPPROTO_UDP},
                                  std::pair{query.raw, IPPROTO_RAW}}) {
    if (!wanted) continue;
    if (protocol == IPPROTO_TCP && query.inet4 && query.inet6) {
      run_dump(query, out, [&] { dump_inet_sockets(sock, AF_UNSPEC, protocol, query, out); });
      continue;
    }
    for (auto [family, asked] : {std::pair{AF_INET, query.inet4}, std::pair{AF_INET6, query.inet6}}) {
      if (asked) run_dump(query, out, [&] { dump_inet_sockets(sock, family, protocol, query, out); });
    }
  }
  if (query.unix_kinds) {
    size_t first = out.size();
    run_dump(query, out, [&] { dump_unix_sockets(sock, query, out); });
    // The peer's name is the remote end (a client's peer is the accepted socket, which carries
    // the listener's name). Peers outside the listed states are not looked up.
    std::unordered_map<uint64_t, size_t> by_inode;
    by_inode.reserve(out.size() - first);
    for (size_t i = first; i < out.size(); ++i) by_inode.emplace(out[i].inode, i);
    for (size_t i = first; i < out.size(); ++i) {
      if (!out[i].peer_inode) continue;
      auto peer = by_inode.find(out[i].peer_inode);
      if (peer != by_inode.end()) out[i].remote = out[peer->second].local;
    }
  }
  return out;
}

}  // namespace socketeer
