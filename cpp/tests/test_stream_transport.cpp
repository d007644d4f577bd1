// StreamTransportCore over real socketpairs: a turn's writes leaving in one send (SOCK_SEQPACKET
// makes each send one record the peer receives whole), a partial send keeping the rest queued
// in order, the queue sliding down instead of growing, EAGAIN as "nothing", EOF, a dead peer
// as EPIPE without SIGPIPE, shutdown_write, the water marks.
#include <sys/socket.h>

#include <string>

#include "socketeer/socket.hpp"
#include "socketeer/stream_transport.hpp"
#include "testing.hpp"

using namespace socketeer;

namespace {

std::string receive(Socket& peer, size_t size = 1 << 20) {
  std::string buffer(size, '\0');
  auto n = peer.recv_now(buffer.data(), buffer.size());
  if (!n) FAIL_AT("nothing to receive");
  buffer.resize(*n);
  return buffer;
}

}  // namespace

TEST(queued_writes_leave_in_one_send) {
  auto [ours, peer] = Socket::pair(AF_UNIX, SOCK_SEQPACKET);
  StreamTransportCore core(ours.fd());
  core.enqueue("one,", 4);
  core.enqueue("two", 3);
  CHECK_EQ(core.queued(), 7u);
  CHECK_EQ(core.flush(), 7u);
  CHECK_EQ(core.queued(), 0u);
  CHECK_EQ(receive(peer), "one,two");
  CHECK_EQ(core.flush(), 0u);  // nothing queued: no syscall, nothing sent
}

TEST(a_partial_send_keeps_the_rest_in_order) {
  auto [ours, peer] = Socket::pair(AF_UNIX, SOCK_STREAM);
  ours.set_option(SOL_SOCKET, SO_SNDBUF, 4096);
  StreamTransportCore core(ours.fd());
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>('a' + i % 26));
  core.enqueue(data.data(), data.size());
  size_t sent = core.flush();
  CHECK(sent > 0 && sent < data.size());
  CHECK_EQ(core.queued(), data.size() - sent);
  CHECK_EQ(core.flush(), 0u);  // the buffer is full: EAGAIN is "sent nothing", not an error
  std::string received;
  while (received.size() < data.size()) {
    std::string chunk(65536, '\0');
    if (auto n = peer.recv_now(chunk.data(), chunk.size())) received.append(chunk.data(), *n);
    core.flush();
  }
  CHECK(received == data);
  CHECK_EQ(core.queued(), 0u);
}

TEST(the_queue_slides_down_when_mostly_sent) {
  auto [ours, peer] = Socket::pair(AF_UNIX, SOCK_STREAM);
  ours.set_option(SOL_SOCKET, SO_SNDBUF, 4096);
  StreamTransportCore core(ours.fd());
  std::string block(50000, 'x');
  core.enqueue(block.data(), block.size());
  core.flush();
  core.enqueue("end", 3);  // appended after the unsent rest, whatever was sent
  std::string received;
  while (core.queued() != 0 || received.size() < block.size() + 3) {
    std::string chunk(65536, '\0');
    if (auto n = peer.recv_now(chunk.data(), chunk.size())) received.append(chunk.data(), *n);
    core.flush();
  }
  CHECK(received == block + "end");
}

TEST(recv_reads_into_the_reused_buffer) {
  auto [ours, peer] = Socket::pair(AF_UNIX, SOCK_STREAM);
  StreamTransportCore core(ours.fd());
  CHECK(!core.recv().has_value());  // nothing ready
  peer.send_all("hello", 5);
  auto first = core.recv();
  CHECK(first && std::string(first->data(), first->size()) == "hello");
  peer.send_all("again", 5);
  auto second = core.recv();
  CHECK(second && second->data() == first->data());  // the same buffer, no allocation per read
  peer.shutdown(SHUT_WR);
  auto eof = core.recv();
  CHECK(eof && eof->empty());
}

TEST(a_dead_peer_is_epipe_not_sigpipe) {
  auto [ours, peer] = Socket::pair(AF_UNIX, SOCK_STREAM);
  StreamTransportCore core(ours.fd());
  peer.close();
  core.enqueue("x", 1);
  CHECK_THROWS_ERRNO(core.flush(), EPIPE);  // the process is still here: MSG_NOSIGNAL
  CHECK_THROWS_ERRNO(core.send_direct("x", 1), EPIPE);
  core.discard();
  CHECK_EQ(core.queued(), 0u);
}

TEST(shutdown_write_is_eof_for_the_peer) {
  auto [ours, peer] = Socket::pair(AF_UNIX, SOCK_STREAM);
  StreamTransportCore core(ours.fd());
  core.enqueue("last", 4);
  core.flush();
  core.shutdown_write();
  CHECK_EQ(receive(peer), "last");
  CHECK_EQ(receive(peer), "");
}

TEST(water_marks) {
  auto [ours, peer] = Socket::pair(AF_UNIX, SOCK_STREAM);
  StreamTransportCore core(ours.fd());
  CHECK_EQ(core.high_water(), 64u * 1024);
  CHECK_EQ(core.low_water(), 16u * 1024);
  core.set_water_marks(10, 2);
  core.enqueue("0123456789", 10);
  CHECK(!core.above_high_water());
  core.enqueue("!", 1);
  CHECK(core.above_high_water());
  CHECK_THROWS_AS(core.set_water_marks(1, 2), InvalidArgument);
  CHECK_EQ(core.high_water(), 10u);
}

int main() { return socketeer::testing::run_all(); }
