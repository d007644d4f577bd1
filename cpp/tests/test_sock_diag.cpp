// sock_diag against the kernel: our own sockets show up with their state, addresses, inode and
// queues; the kernel-side filters (states, ports) keep exactly what they should.
#include <sys/stat.h>

#include <algorithm>

#include "socketeer/sock_diag.hpp"
#include "testing.hpp"

using namespace socketeer;

namespace {

uint64_t inode_of(const Socket& sock) {
  struct ::stat st{};
  check(::fstat(sock.fd(), &st), "fstat");
  return st.st_ino;
}

const SocketRecord* find(const SocketRecords& records, const Socket& sock) {
  auto it = std::find_if(records.begin(), records.end(), [&](auto& r) { return r.inode == inode_of(sock); });
  return it == records.end() ? nullptr : &*it;
}

struct TcpPair {
  Socket server{AF_INET, SOCK_STREAM};
  Socket client{AF_INET, SOCK_STREAM};
  Socket accepted{AF_INET, SOCK_STREAM};
  TcpPair() {
    server.bind(InetAddress("127.0.0.1", 0));
    server.listen(8);
    client.connect(server.local_address());
    accepted = std::move(server.accept()->first);
  }
  uint16_t port() const { return static_cast<uint16_t>(std::get<InetAddress>(server.local_address()).port()); }
};

}  // namespace

TEST(tcp_sockets_with_states_addresses_and_tcp_info) {
  TcpPair pair;
  SocketQuery query;
  query.tcp = true;
  query.tcp_info = true;
  auto records = list_sockets(query);
  auto* listener = find(records, pair.server);
  auto* client = find(records, pair.client);
  CHECK(listener && client);
  CHECK_EQ(listener->state, 10);  // LISTEN
  CHECK_EQ(client->state, 1);     // ESTABLISHED
  CHECK(client->local == pair.client.local_address());
  CHECK(client->remote == pair.client.peer_address());
  CHECK_EQ(client->kind, SOCK_STREAM);
  CHECK_EQ(client->protocol, IPPROTO_TCP);
  CHECK(client->tcp_info.has_value());
  CHECK_EQ(client->tcp_info->state, 1);
  CHECK_EQ(client->tcp_info->snd_mss, pair.client.tcp_info().snd_mss);
}

TEST(kernel_filters_keep_exactly_the_matching_sockets) {
  TcpPair pair, other;
  SocketQuery query;
  query.tcp = true;
  query.ports.port = pair.port();
  query.states = 1u << 1;  // ESTABLISHED only
  auto records = list_sockets(query);
  CHECK_EQ(records.size(), size_t{2});  // the client (dport) and the accepted (sport)
  CHECK(find(records, pair.client) && find(records, pair.accepted));
  query.ports = {};
  query.ports.sport = pair.port();
  query.states = 0;
  records = list_sockets(query);
  CHECK_EQ(records.size(), size_t{2});  // the listener and the accepted socket
  CHECK(find(records, pair.server) && find(records, pair.accepted));
  query.ports.dport = pair.port();  // AND: only a socket talking to itself would match
  CHECK(list_sockets(query).empty());
}

TEST(unix_pair_peers_point_at_each_other) {
  auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM);
  char byte = 'x';
  CHECK_EQ(::send(a.fd(), &byte, 1, 0), 1);
  SocketQuery query;
  query.unix_kinds = 1u << SOCK_STREAM;
  auto records = list_sockets(query);
  auto* ra = find(records, a);
  auto* rb = find(records, b);
  CHECK(ra && rb);
  CHECK_EQ(ra->peer_inode, rb->inode);
  CHECK_EQ(rb->peer_inode, ra->inode);
  CHECK_EQ(rb->recv_queue, 1u);
  query.unix_kinds = 1u << SOCK_DGRAM;
  CHECK(!find(list_sockets(query), a));
}

TEST(owners_include_this_process) {
  TcpPair pair;
  auto owners = socket_owners({inode_of(pair.client)});
  auto [first, last] = owners.equal_range(inode_of(pair.client));
  CHECK(first != last);
  CHECK_EQ(first->second.pid, ::getpid());
  CHECK_EQ(first->second.fd, pair.client.fd());
}

int main() { return socketeer::testing::run_all(); }
