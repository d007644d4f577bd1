// DatagramTransportCore over real sockets: a batch of datagrams in one receive with each
// sender's address, EAGAIN as "nothing", a queued error (ICMP port unreachable) thrown by the
// next receive, direct sends connected and addressed, the queue flushed in order with sendmmsg
// once the peer drains, a failing queued datagram dropped and its error thrown, discard().
#include <sys/socket.h>

#include <string>

#include "socketeer/datagram_transport.hpp"
#include "socketeer/socket.hpp"
#include "testing.hpp"

using namespace socketeer;

namespace {

Socket udp_on_loopback() {
  Socket socket(AF_INET, SOCK_DGRAM);
  socket.bind(InetAddress("127.0.0.1", 0));
  return socket;
}

std::string receive(Socket& peer) {
  std::string buffer(70000, '\0');
  auto n = peer.recv_now(buffer.data(), buffer.size());
  if (!n) FAIL_AT("nothing to receive");
  buffer.resize(*n);
  return buffer;
}

}  // namespace

TEST(one_receive_takes_a_batch_with_each_senders_address) {
  Socket ours = udp_on_loopback(), alice = udp_on_loopback(), bob = udp_on_loopback();
  DatagramTransportCore core(ours.fd(), 8, 65536);
  CHECK_EQ(core.receive(), 0u);  // nothing yet: EAGAIN is "none"
  Address to = ours.local_address();
  alice.send_to("one", 3, 0, to);
  bob.send_to("two", 3, 0, to);
  alice.send_to("three", 5, 0, to);
  CHECK_EQ(core.receive(), 3u);
  CHECK(core.received().data(0) == "one" && core.received().data(1) == "two" && core.received().data(2) == "three");
  CHECK(*core.received().address(0) == alice.local_address());
  CHECK(*core.received().address(1) == bob.local_address());
  CHECK_EQ(core.receive(), 0u);
}

TEST(an_icmp_error_is_thrown_by_the_next_receive) {
  Socket ours = udp_on_loopback();
  Address gone;
  {
    Socket closed = udp_on_loopback();
    gone = closed.local_address();
  }
  ours.connect(gone);
  DatagramTransportCore core(ours.fd(), 8, 65536);
  CHECK(core.send_direct("x", 1, nullptr));
  CHECK_THROWS_ERRNO(core.receive(), ECONNREFUSED);
}

TEST(direct_sends_go_to_the_address_or_the_peer) {
  Socket ours = udp_on_loopback(), peer = udp_on_loopback();
  DatagramTransportCore core(ours.fd(), 1, 100);
  Address to = peer.local_address();
  CHECK(core.send_direct("addressed", 9, &to));
  CHECK_EQ(receive(peer), "addressed");
  ours.connect(to);
  CHECK(core.send_direct("connected", 9, nullptr));
  CHECK_EQ(receive(peer), "connected");
}

TEST(the_queue_leaves_in_order_once_the_peer_drains) {
  auto [ours, peer] = Socket::pair(AF_UNIX, SOCK_DGRAM);
  DatagramTransportCore core(ours.fd(), 1, 4096);
  std::string datagram(1000, '.');
  size_t direct = 0;
  while (core.send_direct(datagram.data(), datagram.size(), nullptr)) ++direct;  // until EAGAIN
  for (int i = 0; i < 100; ++i) {
    std::string numbered = std::to_string(i) + datagram;
    core.enqueue(numbered.data(), numbered.size(), std::nullopt);
  }
  CHECK_EQ(core.queued(), 100u);
  CHECK_EQ(core.flush(), 0u);  // still full
  for (size_t i = 0; i < direct; ++i) receive(peer);
  int next = 0;
  while (core.queued() != 0 || next < 100) {
    core.flush();
    std::string got(2000, '\0');
    while (auto n = peer.recv_now(got.data(), got.size())) {
      CHECK_EQ(std::string(got.data(), *n), std::to_string(next) + datagram);
      ++next;
    }
  }
  CHECK_EQ(core.queued_bytes(), 0u);
}

TEST(a_failing_queued_datagram_is_dropped_and_its_error_thrown) {
  Socket ours = udp_on_loopback(), peer = udp_on_loopback();
  DatagramTransportCore core(ours.fd(), 1, 100);
  Address to = peer.local_address();
  std::string too_big(70000, 'x');  // more than a UDP datagram can carry: EMSGSIZE
  core.enqueue(too_big.data(), too_big.size(), to);
  core.enqueue("fine", 4, to);
  CHECK_THROWS_ERRNO(core.flush(), EMSGSIZE);
  CHECK_EQ(core.queued(), 1u);
  CHECK_EQ(core.queued_bytes(), 4u);
  CHECK_EQ(core.flush(), 1u);
  CHECK_EQ(receive(peer), "fine");
}

TEST(discard_empties_the_queue) {
  Socket ours = udp_on_loopback();
  DatagramTransportCore core(ours.fd(), 1, 100);
  core.enqueue("x", 1, InetAddress("127.0.0.1", 9));
  core.discard();
  CHECK_EQ(core.queued(), 0u);
  CHECK_EQ(core.queued_bytes(), 0u);
  CHECK_EQ(core.flush(), 0u);
}

int main() { return socketeer::testing::run_all(); }
