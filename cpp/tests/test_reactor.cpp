// The reactor alone, in C++: a Reactor running in a thread with a C++ dispatcher, and blocking
// client sockets over loopback. Built with the sanitizers too (SOCKETEER_SANITIZE=ON), which is
// where buffer lifetimes (views into input buffers, the datagram arena) are really checked.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "socketeer/poller.hpp"
#include "socketeer/reactor.hpp"
#include "testing.hpp"

using namespace socketeer;
using namespace std::chrono_literals;

namespace {

constexpr auto kDeadline = 10s;

// A reactor on 127.0.0.1:0 (one listener, optionally one UDP endpoint) running in a thread
// until the fixture goes out of scope.
struct Running {
  Reactor reactor;
  Address address;
  Address udp_address;
  std::thread thread;

  // extra: one more listener, added before the loop starts (a seqpacket one, say).
  // engine: the reactor's I/O engine (none: its own epoll Poller).
  Running(Dispatcher& dispatcher, ReactorOptions options = {}, bool udp = false, std::optional<Socket> extra = {},
          std::unique_ptr<IoEngine> engine = nullptr)
      : reactor(std::move(options), std::move(engine)), address(InetAddress()), udp_address(InetAddress()) {
    if (extra) reactor.add_listener(std::move(*extra));
    Socket listener(AF_INET, SOCK_STREAM);
    listener.bind(InetAddress("127.0.0.1", 0));
    listener.listen(128);
    address = reactor.local_address(reactor.add_listener(std::move(listener)));
    if (udp) {
      Socket endpoint(AF_INET, SOCK_DGRAM);
      endpoint.bind(InetAddress("127.0.0.1", 0));
      udp_address = reactor.local_address(reactor.add_datagram(std::move(endpoint)));
    }
    reactor.set_dispatcher(&dispatcher);
    thread = std::thread([this] { reactor.run(); });
  }
  ~Running() { stop(); }
  void stop() {
    reactor.stop();
    if (thread.joinable()) thread.join();
  }

  Socket client(int type = SOCK_STREAM) const {
    Socket socket(AF_INET, type);
    socket.set_timeout(kDeadline);
    socket.connect(type == SOCK_STREAM ? address : udp_address);
    return socket;
  }

  // Waits (bounded) until the loop's published counters satisfy predicate.
  template <typename Predicate>
  ReactorStats wait_stats(Predicate predicate) const {
    auto deadline = Clock::now() + kDeadline;
    for (;;) {
      ReactorStats stats = reactor.stats();
      if (predicate(stats)) return stats;
      if (Clock::now() > deadline) FAIL_AT("timed out waiting for the reactor's stats");
      std::this_thread::sleep_for(1ms);
    }
  }
};

std::string recv_exactly(Socket& socket, size_t size) {
  std::string data(size, '\0');
  for (size_t got = 0; got < size;) {
    auto n = socket.recv(data.data() + got, size - got);
    if (!n || *n == 0) FAIL_AT("connection ended after " + std::to_string(got) + " of " + std::to_string(size));
    got += *n;
  }
  return data;
}

std::string recv_to_eof(Socket& socket) {
  std::string data;
  char buffer[65536];
  for (;;) {
    auto n = socket.recv(buffer, sizeof buffer);
    if (!n) FAIL_AT("timed out waiting for the end of the stream");
    if (*n == 0) return data;
    data.append(buffer, *n);
  }
}

std::string pattern(size_t size) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
  return data;
}

// Echo that also records each message's payload and every close reason (under a lock: the test
// thread reads them).
class Recording : public EchoDispatcher {
 public:
  void dispatch(Reactor& reactor, std::span<const ReactorEvent> events) override {
    EchoDispatcher::dispatch(reactor, events);
    std::lock_guard lock(mutex);
    for (const auto& event : events) {
      if (event.kind == ReactorEvent::Kind::message) messages.emplace_back(event.data);
      if (event.kind == ReactorEvent::Kind::closed) reasons.emplace_back(event.data);
    }
  }
  std::vector<std::string> taken_messages() {
    std::lock_guard lock(mutex);
    return std::exchange(messages, {});
  }
  std::vector<std::string> taken_reasons() {
    std::lock_guard lock(mutex);
    return std::exchange(reasons, {});
  }

 private:
  std::mutex mutex;
  std::vector<std::string> messages, reasons;
};

}  // namespace

TEST(echo_round_trips_many_clients) {
  EchoDispatcher echo;
  Running server(echo);
  std::vector<Socket> clients;
  for (int i = 0; i < 20; ++i) clients.push_back(server.client());
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < clients.size(); ++i) {
      std::string message = "client " + std::to_string(i) + " round " + std::to_string(round);
      clients[i].send_all(message.data(), message.size());
    }
    for (size_t i = 0; i < clients.size(); ++i)
      CHECK_EQ(recv_exactly(clients[i], ("client " + std::to_string(i) + " round " + std::to_string(round)).size()),
               "client " + std::to_string(i) + " round " + std::to_string(round));
  }
  clients.clear();
  server.wait_stats([](const ReactorStats& s) { return s.closed == 20 && s.connections == 0; });
}

TEST(large_message_echo) {
  EchoDispatcher echo;
  Running server(echo);
  Socket client = server.client();
  std::string payload = pattern(4 << 20);
  std::string echoed;
  std::thread reader([&] { echoed = recv_exactly(client, payload.size()); });
  client.send_all(payload.data(), payload.size());
  reader.join();
  CHECK(echoed == payload);
}

// Each piece is read by the reactor (its received_bytes counter says so) before the next is
// sent, so the frames really arrive split at every byte boundary.
TEST(frames_split_at_every_byte) {
  for (int prefix : {1, 2, 4, 8}) {
    Recording recording;
    ReactorOptions options;
    options.framing = Framing::length_prefixed(prefix, prefix != 8, 1 << 20);
    std::string wire = options.framing.encode("first") + options.framing.encode("") +
                       options.framing.encode("and the second message");
    Running server(recording, options);
    Socket client = server.client();
    client.set_option(IPPROTO_TCP, TCP_NODELAY, 1);
    uint64_t sent = 0;
    auto send_piece = [&](std::string_view piece) {
      client.send_all(piece.data(), piece.size());
      sent += piece.size();
      server.wait_stats([&](const ReactorStats& s) { return s.received_bytes >= sent; });
    };
    for (size_t split = 1; split < wire.size(); ++split) {
      send_piece(std::string_view(wire).substr(0, split));
      send_piece(std::string_view(wire).substr(split));
      CHECK(recv_exactly(client, wire.size()) == wire);
      CHECK(recording.taken_messages() == (std::vector<std::string>{"first", "", "and the second message"}));
    }
    for (char byte : wire) send_piece(std::string_view(&byte, 1));
    CHECK(recv_exactly(client, wire.size()) == wire);
    CHECK_EQ(recording.taken_messages().size(), 3u);
  }
}

TEST(delimited_split_and_oversize) {
  Recording recording;
  ReactorOptions options;
  options.framing = Framing::delimited("\r\n", 16);
  Running server(recording, options);
  Socket client = server.client();
  std::string wire = "one\r\ntwo\r\n";
  for (size_t split = 1; split < wire.size(); ++split) {
    client.send_all(wire.data(), split);
    server.wait_stats([&](const ReactorStats& s) { return s.received_bytes >= 10 * (split - 1) + split; });
    client.send_all(wire.data() + split, wire.size() - split);
    CHECK(recv_exactly(client, wire.size()) == wire);
    CHECK(recording.taken_messages() == (std::vector<std::string>{"one", "two"}));
  }
  std::string too_long(40, 'x');
  client.send_all(too_long.data(), too_long.size());
  try {
    CHECK(recv_to_eof(client).empty());
  } catch (const Error& error) {
    CHECK_EQ(error.code_value(), ECONNRESET);  // closed abortively: the rest was never read
  }
  server.wait_stats([](const ReactorStats& s) { return s.connections == 0; });
  auto reasons = recording.taken_reasons();
  CHECK_EQ(reasons.size(), 1u);
  CHECK(reasons[0].starts_with("message of ") && reasons[0].ends_with(" bytes exceeds max_size=16"));
}

// A client that sends without reading: the reactor stops reading at the high watermark, so its
// queue stays bounded and the client's sends block; once it reads, everything arrives intact.
TEST(backpressure_pauses_reading) {
  EchoDispatcher echo;
  ReactorOptions options;
  options.high_watermark = 256 * 1024;
  options.low_watermark = 64 * 1024;
  Running server(echo, options);
  Socket client = server.client();
  client.set_timeout(0ns);
  std::string payload = pattern(64 << 20);
  size_t sent = 0;
  auto deadline = Clock::now() + kDeadline;
  while (sent < payload.size() && Clock::now() < deadline) {
    auto n = client.send(payload.data() + sent, std::min<size_t>(65536, payload.size() - sent));
    if (n) {
      sent += *n;
    } else if (server.reactor.stats().paused_reads > 0) {
      break;
    } else {
      std::this_thread::sleep_for(1ms);
    }
  }
  ReactorStats stats = server.wait_stats([](const ReactorStats& s) { return s.paused_reads > 0; });
  CHECK(sent < payload.size());
  // The watermark plus at most one turn's reads (8 reads of the 64 KiB buffer).
  CHECK(stats.queued_bytes <= options.high_watermark + 8 * 65536);
  client.set_timeout(kDeadline);
  client.shutdown(SHUT_WR);
  std::string echoed = recv_to_eof(client);
  CHECK_EQ(echoed.size(), sent);
  CHECK(echoed == payload.substr(0, sent));
  server.wait_stats([](const ReactorStats& s) { return s.queued_bytes == 0 && s.connections == 0; });
}

// Replies far larger than requests: a turn hands out a bounded number of messages, so a burst
// of requests cannot queue a reply for each of them past the watermark.
class BigReplies : public Dispatcher {
 public:
  explicit BigReplies(size_t size) : reply(pattern(size)) {}
  void dispatch(Reactor& reactor, std::span<const ReactorEvent> events) override {
    for (const auto& event : events)
      if (event.kind == ReactorEvent::Kind::message) reactor.send(event.id, reply.data(), reply.size(), 1);
  }
  std::string reply;
};

TEST(backpressure_bounds_replies_per_turn) {
  BigReplies big(1 << 20);
  ReactorOptions options;
  options.framing = Framing::delimited("\n", 100);
  options.high_watermark = 2 << 20;
  options.low_watermark = 1 << 20;
  Running server(big, options);
  Socket client = server.client();
  std::string requests(2000, '\n');  // 2000 empty messages in one segment
  client.send_all(requests.data(), requests.size());
  ReactorStats stats = server.wait_stats([](const ReactorStats& s) { return s.paused_reads > 0; });
  CHECK(stats.queued_bytes <= options.high_watermark + 16 * big.reply.size());
  for (int i = 0; i < 20; ++i) CHECK(recv_exactly(client, big.reply.size()) == big.reply);
  server.stop();
}

// A dispatcher that closes (and aborts) connections while the reactor is handing it events: the
// close events it causes must neither disturb the batch being dispatched nor be lost.
class Closer : public Dispatcher {
 public:
  void dispatch(Reactor& reactor, std::span<const ReactorEvent> events) override {
    std::lock_guard lock(mutex);
    for (const auto& event : events) {
      if (event.kind == ReactorEvent::Kind::message) reactor.close(event.id, event.id % 2 == 0);
      if (event.kind == ReactorEvent::Kind::closed) reasons.emplace_back(event.data);
    }
  }
  std::mutex mutex;
  std::vector<std::string> reasons;
};

TEST(close_during_dispatch) {
  Closer closer;
  Running server(closer);
  std::vector<Socket> clients;
  for (int i = 0; i < 64; ++i) clients.push_back(server.client());
  server.wait_stats([](const ReactorStats& s) { return s.accepted == 64; });
  for (auto& client : clients) client.send_all("x", 1);
  server.wait_stats([](const ReactorStats& s) { return s.closed == 64; });
  std::lock_guard lock(closer.mutex);
  CHECK_EQ(closer.reasons.size(), 64u);
  for (const auto& reason : closer.reasons) CHECK(reason == "closed" || reason == "aborted");
}

TEST(graceful_close_after_large_output) {
  class SendAndClose : public Dispatcher {
   public:
    std::string data = pattern(8 << 20);
    void dispatch(Reactor& reactor, std::span<const ReactorEvent> events) override {
      for (const auto& event : events) {
        if (event.kind != ReactorEvent::Kind::opened) continue;
        reactor.send(event.id, data.data(), data.size(), 1);
        reactor.close(event.id);
      }
    }
  } dispatcher;
  Running server(dispatcher);
  Socket client = server.client();
  CHECK(recv_to_eof(client) == dispatcher.data);
  server.wait_stats([](const ReactorStats& s) { return s.connections == 0; });
}

TEST(half_close_still_answered) {
  EchoDispatcher echo;
  Running server(echo);
  Socket client = server.client();
  client.send_all("last words", 10);
  client.shutdown(SHUT_WR);
  CHECK(recv_to_eof(client) == "last words");
}

TEST(udp_hundred_datagrams) {
  EchoDispatcher echo;
  Running server(echo, {}, true);
  Socket client(AF_INET, SOCK_DGRAM);
  client.set_timeout(kDeadline);
  client.bind(InetAddress("127.0.0.1", 0));
  client.connect(server.udp_address);
  for (int i = 0; i < 100; ++i) {
    std::string datagram = "datagram " + std::to_string(i);
    client.send_all(datagram.data(), datagram.size());
  }
  std::vector<bool> seen(100);
  for (int i = 0; i < 100; ++i) {
    char buffer[64];
    auto n = client.recv(buffer, sizeof buffer);
    CHECK(n.has_value());
    std::string datagram(buffer, *n);
    CHECK(datagram.starts_with("datagram "));
    int index = std::stoi(datagram.substr(9));
    CHECK(!seen[static_cast<size_t>(index)]);
    seen[static_cast<size_t>(index)] = true;
  }
}

// --- UDP segmentation offloads (GSO on send, GRO on receive) ---

namespace {

// Echoes every datagram and keeps what each event carried (under a lock: the test reads it).
class DatagramRecording : public EchoDispatcher {
 public:
  void dispatch(Reactor& reactor, std::span<const ReactorEvent> events) override {
    EchoDispatcher::dispatch(reactor, events);
    std::lock_guard lock(mutex);
    for (const auto& event : events)
      if (event.kind == ReactorEvent::Kind::datagram) datagrams.emplace_back(event.data);
  }
  std::vector<std::string> taken() {
    std::lock_guard lock(mutex);
    return std::exchange(datagrams, {});
  }

 private:
  std::mutex mutex;
  std::vector<std::string> datagrams;
};

// A client whose every send leaves as datagrams of `segment` bytes (UDP_SEGMENT), the last
// one possibly shorter: what a QUIC stack sends.
Socket segmenting_client(const Address& server, int segment) {
  Socket client(AF_INET, SOCK_DGRAM);
  client.set_timeout(kDeadline);
  client.bind(InetAddress("127.0.0.1", 0));
  client.connect(server);
  client.set_option(SOL_UDP, UDP_SEGMENT, segment);
  return client;
}

std::vector<std::string> recv_datagrams(Socket& client, size_t count) {
  std::vector<std::string> received;
  char buffer[65536];
  for (size_t i = 0; i < count; ++i) {
    auto n = client.recv(buffer, sizeof buffer);
    if (!n) FAIL_AT("timed out after " + std::to_string(i) + " of " + std::to_string(count) + " datagrams");
    received.emplace_back(buffer, *n);
  }
  return received;
}

void udp_burst_round_trip(bool udp_gso) {
  DatagramRecording recording;
  ReactorOptions options;
  options.udp_gso = udp_gso;
  Running server(recording, options, true);
  Socket client = segmenting_client(server.udp_address, 100);
  std::string burst = pattern(1050);  // 10 datagrams of 100 bytes and one of 50
  client.send_all(burst.data(), burst.size());
  std::vector<std::string> expected;
  for (size_t offset = 0; offset < burst.size(); offset += 100) expected.push_back(burst.substr(offset, 100));
  CHECK(recv_datagrams(client, expected.size()) == expected);
  server.stop();
  CHECK(recording.taken() == expected);
  ReactorStats stats = server.reactor.stats();
  CHECK_EQ(stats.datagrams, 11u);
  CHECK_EQ(stats.gro_segments, udp_gso ? 11u : 0u);   // arrived as one, split by the reactor
  CHECK_EQ(stats.gso_datagrams, udp_gso ? 11u : 0u);  // the echoes left as one GSO message
}

}  // namespace

TEST(udp_gso_burst_is_split_and_echoed_in_one_message) { udp_burst_round_trip(true); }
TEST(udp_gso_off_still_delivers_every_datagram) { udp_burst_round_trip(false); }

// A datagram longer than datagram_size arrives cut short (MSG_TRUNC): it is dropped and
// counted, never handed out as if it were whole.
TEST(udp_datagram_longer_than_its_slot_is_dropped_and_counted) {
  DatagramRecording recording;
  ReactorOptions options;
  options.datagram_size = 100;
  Running server(recording, options, true);
  Socket client(AF_INET, SOCK_DGRAM);
  client.set_timeout(kDeadline);
  client.connect(server.udp_address);
  std::string too_long = pattern(101), fits = pattern(100);
  client.send_all(too_long.data(), too_long.size());
  client.send_all(fits.data(), fits.size());
  CHECK(recv_datagrams(client, 1) == std::vector<std::string>{fits});
  server.stop();
  CHECK(recording.taken() == std::vector<std::string>{fits});
  CHECK_EQ(server.reactor.stats().truncated_datagrams, 1u);
  CHECK_EQ(server.reactor.stats().datagrams, 1u);
}

// SO_NO_CHECK makes the kernel refuse GSO messages (EINVAL), as some devices do: the replies
// must still arrive, one datagram per message.
TEST(udp_refused_gso_falls_back_without_loss) {
  class TenReplies : public Dispatcher {
   public:
    void dispatch(Reactor& reactor, std::span<const ReactorEvent> events) override {
      for (const auto& event : events)
        for (char tag = 'a'; event.kind == ReactorEvent::Kind::datagram && tag < 'a' + 10; ++tag)
          reactor.send_to(event.id, std::string(100, tag).data(), 100, *event.from);
    }
  } replies;
  Reactor reactor;
  Socket endpoint(AF_INET, SOCK_DGRAM);
  endpoint.bind(InetAddress("127.0.0.1", 0));
  endpoint.set_option(SOL_SOCKET, SO_NO_CHECK, 1);
  Address address = reactor.local_address(reactor.add_datagram(std::move(endpoint)));
  reactor.set_dispatcher(&replies);
  std::thread loop([&] { reactor.run(); });
  struct StopOnExit {  // a failed check must not leave the loop running (or the thread joinable)
    Reactor& reactor;
    std::thread& loop;
    ~StopOnExit() {
      reactor.stop();
      if (loop.joinable()) loop.join();
    }
  } stop_on_exit{reactor, loop};
  Socket client(AF_INET, SOCK_DGRAM);
  client.set_timeout(kDeadline);
  client.connect(address);
  client.send_all("go", 2);
  std::vector<std::string> expected;
  for (char tag = 'a'; tag < 'a' + 10; ++tag) expected.emplace_back(100, tag);
  CHECK(recv_datagrams(client, 10) == expected);
  reactor.stop();
  loop.join();  // the stats of the last turn are published
  CHECK_EQ(reactor.stats().gso_datagrams, 0u);
  CHECK_EQ(reactor.stats().dropped_datagrams, 0u);
}

TEST(stop_while_busy_closes_everything) {
  Recording recording;
  Running server(recording);
  std::vector<Socket> clients;
  std::string payload = pattern(1 << 20);
  for (int i = 0; i < 5; ++i) {
    clients.push_back(server.client());
    clients.back().set_timeout(0ns);
    (void)clients.back().send(payload.data(), payload.size());  // echoed back, never read
  }
  server.wait_stats([](const ReactorStats& s) { return s.accepted == 5 && s.received_bytes > 0; });
  server.stop();
  CHECK_EQ(server.reactor.stats().connections, 0u);
  auto reasons = recording.taken_reasons();
  CHECK_EQ(reasons.size(), 5u);
  for (const auto& reason : reasons) CHECK(reason == "server stopped");
  for (auto& client : clients) {
    client.set_timeout(kDeadline);
    try {
      (void)recv_to_eof(client);
    } catch (const Error& error) {
      CHECK_EQ(error.code_value(), ECONNRESET);
    }
  }
}

TEST(send_from_another_thread) {
  class Remember : public Dispatcher {
   public:
    std::atomic<uint64_t> id{0};
    void dispatch(Reactor&, std::span<const ReactorEvent> events) override {
      for (const auto& event : events)
        if (event.kind == ReactorEvent::Kind::opened) id = event.id;
    }
  } dispatcher;
  Running server(dispatcher);
  Socket client = server.client();
  server.wait_stats([](const ReactorStats& s) { return s.accepted == 1 && s.turns > 0; });
  auto deadline = Clock::now() + kDeadline;
  while (dispatcher.id == 0 && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  CHECK(server.reactor.send(dispatcher.id, "pushed", 6));
  CHECK_EQ(recv_exactly(client, 6), "pushed");
  server.reactor.close(dispatcher.id);
  CHECK(recv_to_eof(client).empty());
}

// --- unix+seqpacket: one record is one message, both ways ---

namespace {

// A listening seqpacket socket on a fresh abstract name (for Running's extra listener).
std::pair<Socket, UnixAddress> seqpacket_listener() {
  static std::atomic<int> serial{0};
  UnixAddress name("socketeer-test-reactor-" + std::to_string(::getpid()) + "-" + std::to_string(serial++), true);
  Socket listener(AF_UNIX, SOCK_SEQPACKET);
  listener.bind(name);
  listener.listen(16);
  return {std::move(listener), name};
}

Socket seqpacket_client(const UnixAddress& name) {
  Socket client(AF_UNIX, SOCK_SEQPACKET);
  client.set_timeout(kDeadline);
  client.connect(name);
  return client;
}

std::vector<std::string> recv_records(Socket& client, size_t count) {
  std::vector<std::string> records;
  std::string buffer(1 << 20, '\0');
  for (size_t i = 0; i < count; ++i) {
    auto n = client.recv(buffer.data(), buffer.size(), MSG_TRUNC);
    if (!n) FAIL_AT("timed out after " + std::to_string(i) + " of " + std::to_string(count) + " records");
    CHECK(*n <= buffer.size());
    records.emplace_back(buffer.data(), *n);
  }
  return records;
}

}  // namespace

// Sent back to back, so the reactor finds several queued at once: its echoes must not merge
// into one record (one writev of several chunks is ONE record on a seqpacket socket), and an
// empty record is a message, not the end.
TEST(seqpacket_records_keep_their_boundaries) {
  Recording recording;
  auto [listener, name] = seqpacket_listener();
  Running server(recording, {}, false, std::move(listener));
  Socket client = seqpacket_client(name);
  std::vector<std::string> records{"a", "bb", "ccc", "", pattern(1000), pattern(65536), "last"};
  for (int round = 0; round < 3; ++round) {
    for (const auto& record : records) CHECK_EQ(client.send(record.data(), record.size()).value_or(0), record.size());
    CHECK(recv_records(client, records.size()) == records);
  }
  server.stop();
  auto messages = recording.taken_messages();
  CHECK_EQ(messages.size(), 3 * records.size());
  CHECK(std::vector<std::string>(messages.begin(), messages.begin() + 7) == records);
}

// Records queued while the dispatcher is busy are all read once it returns, with nothing more
// arriving: a short read of a seqpacket socket says nothing about what is still queued.
TEST(seqpacket_records_queued_during_a_slow_dispatch_are_all_read) {
  class Slow : public Recording {
   public:
    std::atomic<bool> entered{false}, release{false};
    void dispatch(Reactor& reactor, std::span<const ReactorEvent> events) override {
      if (!entered.exchange(true))
        while (!release) std::this_thread::sleep_for(1ms);
      Recording::dispatch(reactor, events);
    }
  } slow;
  auto [listener, name] = seqpacket_listener();
  Running server(slow, {}, false, std::move(listener));
  Socket client = seqpacket_client(name);
  client.send_all("first", 5);
  auto deadline = Clock::now() + kDeadline;
  while (!slow.entered && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  for (int i = 0; i < 40; ++i) client.send_all(pattern(10 + i).data(), 10 + i);
  slow.release = true;
  // no reply is read before all are received: reading would wake the server's socket (writable)
  server.wait_stats([](const ReactorStats& s) { return s.messages == 41; });
  std::vector<std::string> expected{"first"};
  for (int i = 0; i < 40; ++i) expected.push_back(pattern(10 + i));
  CHECK(recv_records(client, 41) == expected);
}

TEST(seqpacket_record_that_cannot_be_sent_closes_the_connection) {
  class Huge : public Dispatcher {
   public:
    std::string reply = pattern(8 << 20);  // longer than any seqpacket send buffer: EMSGSIZE
    void dispatch(Reactor& reactor, std::span<const ReactorEvent> events) override {
      std::lock_guard lock(mutex);
      for (const auto& event : events) {
        if (event.kind == ReactorEvent::Kind::message) reactor.send(event.id, reply.data(), reply.size(), 1);
        if (event.kind == ReactorEvent::Kind::closed) reasons.emplace_back(event.data);
      }
    }
    std::mutex mutex;
    std::vector<std::string> reasons;
  } huge;
  auto [listener, name] = seqpacket_listener();
  Running server(huge, {}, false, std::move(listener));
  Socket client = seqpacket_client(name);
  client.send_all("go", 2);
  char byte;
  CHECK_EQ(client.recv(&byte, 1).value_or(1), 0u);  // the end, not a loop retrying the send
  server.wait_stats([](const ReactorStats& s) { return s.connections == 0 && s.queued_bytes == 0; });
  server.stop();  // its close event is dispatched by then
  std::lock_guard lock(huge.mutex);
  CHECK_EQ(huge.reasons.size(), 1u);
  CHECK(huge.reasons[0].find("Message too long") != std::string::npos);
}

TEST(seqpacket_listener_needs_raw_framing) {
  ReactorOptions options;
  options.framing = Framing::delimited("\n", 100);
  Reactor reactor(options);
  CHECK_THROWS_AS(reactor.add_listener(seqpacket_listener().first), InvalidArgument);
}

// --- endpoints added while the loop runs ---

TEST(endpoints_added_while_running_are_served) {
  EchoDispatcher echo;
  for (int round = 0; round < 20; ++round) {
    Running server(echo);  // its thread may or may not be in the loop yet
    // read from another thread while this one adds (a failed CHECK there would end the process)
    std::jthread other([&] {
      if (!(server.reactor.local_address(1) == server.address)) std::abort();
    });
    Socket listener(AF_INET, SOCK_STREAM);
    listener.bind(InetAddress("127.0.0.1", 0));
    listener.listen(16);
    Address tcp = server.reactor.local_address(server.reactor.add_listener(std::move(listener)));
    Socket endpoint(AF_INET, SOCK_DGRAM);
    endpoint.bind(InetAddress("127.0.0.1", 0));
    Address udp = server.reactor.local_address(server.reactor.add_datagram(std::move(endpoint)));
    other.join();
    Socket stream(AF_INET, SOCK_STREAM);
    stream.set_timeout(kDeadline);
    stream.connect(tcp);
    stream.send_all("stream", 6);
    CHECK_EQ(recv_exactly(stream, 6), "stream");
    Socket datagram(AF_INET, SOCK_DGRAM);
    datagram.set_timeout(kDeadline);
    datagram.connect(udp);
    datagram.send_all("datagram", 8);
    char buffer[16];
    CHECK_EQ(datagram.recv(buffer, sizeof buffer).value_or(0), 8u);
  }
}

namespace {

// An I/O engine that hands every call on to a Poller and counts them (io_engine.hpp). The
// counts live outside it: the reactor owns (and frees) the engine.
struct EngineCalls {
  std::atomic<int> adds{0}, removes{0}, polls{0};
};

class CountingEngine final : public IoEngine {
 public:
  explicit CountingEngine(EngineCalls& calls) : calls_(calls) {}
  bool add(int fd, uint32_t interest, uint32_t mode, uint64_t token) override {
    ++calls_.adds;
    return poller_.add(fd, interest, mode, token);
  }
  bool modify(int fd, uint32_t interest, std::optional<uint32_t> mode) override {
    return poller_.modify(fd, interest, mode);
  }
  bool remove(int fd) override {
    ++calls_.removes;
    return poller_.remove(fd);
  }
  std::span<const Event> poll(Timeout timeout) override {
    ++calls_.polls;
    return poller_.poll(timeout);
  }
  void wake() override { poller_.wake(); }

 private:
  EngineCalls& calls_;
  Poller poller_;
};

}  // namespace

// The loop reaches the kernel's readiness only through the IoEngine it was given: every socket
// registered and removed through it, every turn's poll (what an io_uring engine would be handed).
TEST(the_loop_runs_on_the_io_engine_it_is_given) {
  EngineCalls calls;
  Recording echo;
  {
    Running server(echo, {}, true, {}, std::make_unique<CountingEngine>(calls));
    std::vector<Socket> clients;
    for (int i = 0; i < 3; ++i) clients.push_back(server.client());
    for (auto& client : clients) {
      client.send_all("ping", 4);
      CHECK_EQ(recv_exactly(client, 4), "ping");
    }
    Socket datagram = server.client(SOCK_DGRAM);
    datagram.send_all("datagram", 8);
    char buffer[16];
    CHECK_EQ(datagram.recv(buffer, sizeof buffer).value_or(0), 8u);
    clients.clear();
    server.wait_stats([](const ReactorStats& s) { return s.closed == 3 && s.connections == 0; });
    server.stop();
  }
  CHECK_EQ(calls.adds.load(), 1 + 1 + 3);  // the listener, the datagram endpoint, the connections
  CHECK_EQ(calls.removes.load(), 3);
  CHECK(calls.polls.load() > 0);
  CHECK_EQ(echo.taken_reasons().size(), 3u);
}

int main() { return socketeer::testing::run_all(); }
