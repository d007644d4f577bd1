// sock_diag: the kernel's own list of sockets (what `ss` prints), read over NETLINK_SOCK_DIAG
// into typed records. INET and INET6 (TCP, UDP, raw) through inet_diag_req_v2, with the state
// mask and port filters applied in the kernel (the state mask in the request, ports as
// INET_DIAG_REQ_BYTECODE); UNIX through unix_diag_req, its types filtered here (the kernel has
// no type filter for them).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "socketeer/address.hpp"
#include "socketeer/netlink.hpp"
#include "socketeer/socket.hpp"

namespace socketeer {

struct SocketRecord {
  int family = 0;    // AF_INET, AF_INET6, AF_UNIX
  int kind = 0;      // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW
  int protocol = 0;  // IPPROTO_TCP, IPPROTO_UDP, the raw protocol; 0 for unix
  int state = 0;     // the kernel's TCP state numbers (unix and UDP too: 7 = CLOSE = unconnected)
  Address local;     // a unix socket without a name: an unnamed UnixAddress
  Address remote;    // inet: the peer (0.0.0.0:0 if none); unix: the peer's name, if it has one
  uint32_t recv_queue = 0;  // bytes waiting to be read; for a listener, connections waiting
  uint32_t send_queue = 0;  // bytes not yet acknowledged / sent; for a listener, its backlog
  uint64_t inode = 0;       // the socket's inode: os.fstat(fd).st_ino, socket:[inode] in /proc
  std::optional<uint32_t> uid;  // the owner (unix: kernels >= 5.3)
  uint64_t cookie = 0;          // inet: the kernel's socket cookie (SO_COOKIE)
  // inet: the timer running (idiag_timer: 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT,
  // 4 zero window probe), when it expires (ms from now), and retransmissions so far.
  uint8_t timer = 0;
  uint32_t timer_expires_ms = 0;
  uint8_t retransmits = 0;
  std::optional<TcpInfo> tcp_info;  // TCP, when asked for (not for TIME_WAIT / SYN_RECV)
  uint32_t peer_inode = 0;          // unix: the connected peer's inode (0: none)
  uint64_t vfs_inode = 0, vfs_dev = 0;  // unix bound to a path: the file's inode and device
};

// A deque: records are big (two addresses and a tcp_info) and a dump's count is unknown until
// it ends; growing never moves the ones already made.
using SocketRecords = std::deque<SocketRecord>;

// Kernel-side port filter: a socket matches when every port given matches (port: either end).
struct PortFilter {
  std::optional<uint16_t> port, sport, dport;
  bool empty() const { return !port && !sport && !dport; }
};

// What to list. kinds is a mask: 1 << SOCK_STREAM etc. per family group; states a mask of
// 1 << state (TCP state numbers; 0 means all).
struct SocketQuery {
  bool tcp = false, udp = false, raw = false;  // INET/INET6
  uint32_t unix_kinds = 0;                     // 1 << SOCK_STREAM | 1 << SOCK_DGRAM | ...
  bool inet4 = true, inet6 = true;             // which INET families
  uint32_t states = 0;
  PortFilter ports;                            // INET only
  bool tcp_info = false;
  // A kernel without the diag module for a kind (raw_diag is often left out) answers ENOENT:
  // skip that kind instead of failing (for "list everything"). When false, the Error says why.
  bool skip_unsupported = false;
};

// The inet_diag bytecode for a port filter (empty for none), as INET_DIAG_REQ_BYTECODE takes it.
std::vector<std::byte> port_filter_bytecode(const PortFilter& filter);

// One dump each, appended to `out`. family AF_UNSPEC (TCP only): both families in one dump.
void dump_inet_sockets(NetlinkSocket& sock, int family, int protocol, const SocketQuery& query,
                       SocketRecords& out);
void dump_unix_sockets(NetlinkSocket& sock, const SocketQuery& query, SocketRecords& out);

// Every dump the query asks for, over one NETLINK_SOCK_DIAG socket, made in the network
// namespace netns_fd if >= 0. Unix records get `remote` from their peer's record.
SocketRecords list_sockets(const SocketQuery& query, int netns_fd = -1);

// Who holds a socket: a process, its fd number (from /proc/PID/fd/N -> socket:[inode]) and its
// name (/proc/PID/comm; empty if it exited before we read it).
struct SocketOwner {
  int pid;
  int fd;
  std::string name;
};

// Scans /proc/*/fd for the inodes in `inodes` (all sockets if empty). Processes and fds that
// vanish mid-scan, or that we may not read, are skipped.
std::unordered_multimap<uint64_t, SocketOwner> socket_owners(const std::vector<uint64_t>& inodes = {});

}  // namespace socketeer
