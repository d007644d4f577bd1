// FaultProxy end to end with real loopback sockets, under ASan/UBSan: the relays' bookkeeping
// (pairs dying mid-turn, drains, held datagrams) with a real thread and real peers. The
// schedule's arithmetic is tested on its own in test_fault_schedule.cpp.
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>

#include "socketeer/fault_proxy.hpp"
#include "testing.hpp"

using namespace socketeer;
using namespace std::chrono_literals;

namespace {

Socket tcp_listener() {
  Socket listener(AF_INET, SOCK_STREAM);
  listener.bind(InetAddress("127.0.0.1", 0));
  listener.listen(16);
  return listener;
}

Socket udp_socket() {
  Socket socket(AF_INET, SOCK_DGRAM);
  socket.bind(InetAddress("127.0.0.1", 0));
  socket.set_timeout(5s);
  return socket;
}

Socket connected(const Address& to) {
  Socket client(AF_INET, SOCK_STREAM);
  client.set_timeout(5s);
  client.connect(to);
  return client;
}

Socket accepted(Socket& listener) {
  listener.set_timeout(5s);
  auto got = listener.accept();
  CHECK(got.has_value());
  got->first.set_timeout(5s);
  return std::move(got->first);
}

// Waits (a bounded poll) for a condition the proxy thread brings about.
template <typename Predicate>
void wait_for(Predicate&& done) {
  auto give_up = Clock::now() + 10s;
  while (!done()) {
    if (Clock::now() > give_up) FAIL_AT("timed out waiting for the proxy");
    std::this_thread::sleep_for(1ms);
  }
}

struct Proxied {  // an upstream listener and a started proxy in front of it
  Socket upstream = tcp_listener();
  FaultProxy proxy{tcp_listener(), upstream.local_address()};
  Proxied() { proxy.start(); }
};

}  // namespace

TEST(tcp_bytes_pass_both_ways) {
  Proxied p;
  Socket client = connected(p.proxy.local_address());
  Socket server = accepted(p.upstream);
  client.send_all("hello", 5);
  char buffer[16];
  CHECK_EQ(server.recv(buffer, 5, MSG_WAITALL).value_or(0), 5u);
  server.send_all("world", 5);
  CHECK_EQ(client.recv(buffer, 5, MSG_WAITALL).value_or(0), 5u);
  CHECK_EQ(std::string(buffer, 5), std::string("world"));
  CHECK_EQ(p.proxy.stats().upstream_bytes, 5u);
}

TEST(reset_after_delivers_exactly_n_bytes_to_a_late_reader) {
  Proxied p;
  constexpr size_t kLimit = 600'000, kStream = 1'000'000;
  Faults faults;
  faults.reset_after = kLimit;
  p.proxy.set_faults(FaultProxy::downstream, faults);
  Socket client = connected(p.proxy.local_address());
  Socket server = accepted(p.upstream);
  std::thread sender([&] {
    std::string data(kStream, 'x');
    try {
      server.send_all(data.data(), data.size());
    } catch (const Error&) {  // the reset cuts it short
    }
  });
  wait_for([&] { return p.proxy.stats().downstream_bytes >= kLimit; });
  size_t received = 0;
  std::string buffer(64 * 1024, '\0');
  try {
    while (auto n = client.recv(buffer.data(), buffer.size())) {
      if (*n == 0) FAIL_AT("an orderly end instead of a reset");
      received += *n;
    }
  } catch (const Error& error) {
    CHECK_EQ(error.code_value(), ECONNRESET);
  }
  sender.join();
  CHECK_EQ(received, kLimit);
}

TEST(clients_resetting_mid_stream_leave_the_process_alive) {
  struct sigaction dfl {}, old {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, &old);
  Proxied p;
  std::string payload(128 * 1024, 'x');
  for (int round = 0; round < 10; ++round) {
    Socket client = connected(p.proxy.local_address());
    Socket server = accepted(p.upstream);
    server.send_all(payload.data(), payload.size());
    if (round % 2) client.shutdown(SHUT_WR);
    char byte;
    CHECK_EQ(client.recv(&byte, 1).value_or(0), 1u);
    linger hard{1, 0};
    client.set_option_bytes(SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    client.close();  // a RST while the proxy still has data for it
    try {
      server.send_all(payload.data(), payload.size());  // keeps the splice path busy
    } catch (const Error&) {
    }
  }
  wait_for([&] { return p.proxy.stats().active == 0; });
  sigaction(SIGPIPE, &old, nullptr);
}

TEST(udp_reorder_one_swaps_each_pair) {
  Socket upstream = udp_socket();
  FaultProxy proxy(udp_socket(), upstream.local_address());
  Faults faults;
  faults.reorder = 1.0;
  proxy.set_faults(FaultProxy::upstream, faults);
  proxy.start();
  Socket client = udp_socket();
  client.connect(proxy.local_address());
  OutgoingBatch batch(4);
  batch.reset(false);  // one datagram per message (no GSO coalescing)
  const char* numbers[] = {"1", "2", "3", "4"};
  for (const char* number : numbers) batch.add({number, 1, nullptr});
  CHECK_EQ(client.send_many(batch).value_or(0), 4u);  // together, in one sendmmsg
  std::string order;
  for (int i = 0; i < 4; ++i) {
    char byte;
    CHECK_EQ(upstream.recv(&byte, 1).value_or(0), 1u);
    order += byte;
  }
  CHECK_EQ(order, std::string("2143"));
  CHECK_EQ(proxy.stats().reordered, 2u);
}

TEST(faults_a_transport_cannot_honour_are_refused) {
  Proxied p;
  Faults dropping;
  dropping.drop = 0.5;
  CHECK_THROWS_AS(p.proxy.set_faults(FaultProxy::upstream, dropping), InvalidArgument);
  Socket upstream = udp_socket();
  FaultProxy udp(udp_socket(), upstream.local_address());
  Faults slicing;
  slicing.slice_size = 10;
  CHECK_THROWS_AS(udp.set_faults(FaultProxy::downstream, slicing), InvalidArgument);
  CHECK_EQ(udp.faults(FaultProxy::downstream).slice_size, 0u);
}

// Whether `socket` gets nothing (no data, no end) for `within`: a bounded wait.
bool nothing_arrives(Socket& socket, std::chrono::milliseconds within = 200ms) {
  socket.set_timeout(within);
  char byte;
  bool nothing = false;
  try {
    nothing = !socket.recv(&byte, 1).has_value();
  } catch (const TimedOut&) {
    nothing = true;
  }
  socket.set_timeout(5s);
  return nothing;
}

TEST(black_hole_and_timeout_hold_open_connections_until_lifted) {
  Proxied p;
  Socket client = connected(p.proxy.local_address());
  Socket server = accepted(p.upstream);
  char buffer[16];
  client.send_all("a", 1);
  CHECK_EQ(server.recv(buffer, 1).value_or(0), 1u);
  p.proxy.set_black_hole(true);
  client.send_all("held", 4);
  CHECK(nothing_arrives(server));
  p.proxy.set_black_hole(false);
  CHECK_EQ(server.recv(buffer, 4, MSG_WAITALL).value_or(0), 4u);
  Faults holding;
  holding.timeout = 0s;
  p.proxy.set_faults(FaultProxy::downstream, holding);
  server.send_all("back", 4);
  CHECK(nothing_arrives(client));
  p.proxy.set_faults(FaultProxy::downstream, Faults{});
  CHECK_EQ(client.recv(buffer, 4, MSG_WAITALL).value_or(0), 4u);
  CHECK_EQ(std::string(buffer, 4), std::string("back"));
}

TEST(down_refuses_and_closes_up_listens_again_on_the_same_address) {
  Proxied p;
  Socket client = connected(p.proxy.local_address());
  Socket server = accepted(p.upstream);
  p.proxy.set_enabled(false);
  CHECK(!p.proxy.enabled());
  CHECK_EQ(p.proxy.stats().active, 0u);
  char byte;
  CHECK_EQ(client.recv(&byte, 1).value_or(1), 0u);  // the end of stream
  Socket refused(AF_INET, SOCK_STREAM);
  CHECK_EQ(refused.connect_ex(p.proxy.local_address()), ECONNREFUSED);
  p.proxy.set_enabled(true);
  Socket again = connected(p.proxy.local_address());
  Socket again_server = accepted(p.upstream);
  again.send_all("x", 1);
  CHECK_EQ(again_server.recv(&byte, 1).value_or(0), 1u);
}

int main() { return socketeer::testing::run_all(); }
