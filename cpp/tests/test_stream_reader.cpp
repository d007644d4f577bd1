// StreamReader over real socketpairs: every take on the buffer alone (nothing there, part of a
// result, a whole one, end of stream before or inside it), fill_now (would block, data, end of
// stream, never a receive after it), the buffer moving its unread bytes to the front or growing
// for a message larger than it, and the blocking reads: data trickling in from a thread, end of
// stream mid-message, timeouts that keep what did arrive. SOCK_SEQPACKET makes each send one
// receive, so the tests decide exactly where the reader's receives split the bytes.
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "socketeer/stream_reader.hpp"
#include "testing.hpp"

using namespace socketeer;
using namespace std::chrono_literals;

namespace {

struct Pair {
  Socket reader_side, peer;
  explicit Pair(int type = SOCK_SEQPACKET) : Pair(Socket::pair(AF_UNIX, type)) {}
  explicit Pair(std::pair<Socket, Socket> sockets)
      : reader_side(std::move(sockets.first)), peer(std::move(sockets.second)) {}
  void send(std::string_view data) { peer.send_all(data.data(), data.size()); }
};

std::string text(std::optional<std::string_view> view) {
  if (!view) FAIL_AT("no result where one was expected");
  return std::string(*view);
}

// Receives everything the socket holds now.
void fill_all(StreamReader& reader, Socket& socket) {
  while (auto n = reader.fill_now(socket))
    if (*n == 0) break;
}

std::string prefixed(std::string_view message) { return Framing::length_prefixed(2, true, 1 << 20).encode(message); }

}  // namespace

// --- the buffer alone ------------------------------------------------------------------------

TEST(fill_now_would_block_reads_and_sees_the_end) {
  Pair pair;
  StreamReader reader;
  CHECK(!reader.fill_now(pair.reader_side));
  pair.send("abc");
  CHECK_EQ(reader.fill_now(pair.reader_side), std::optional<size_t>(3));
  CHECK_EQ(reader.buffered(), "abc");
  pair.peer.shutdown(SHUT_WR);
  CHECK_EQ(reader.fill_now(pair.reader_side), std::optional<size_t>(0));
  CHECK(reader.eof() && !reader.at_eof());
  pair.reader_side.close();  // after the end no receive is made: a closed socket is not touched
  CHECK_EQ(reader.fill_now(pair.reader_side), std::optional<size_t>(0));
}

TEST(take_some) {
  Pair pair;
  StreamReader reader;
  CHECK(!reader.take_some(10));
  pair.send("hello");
  fill_all(reader, pair.reader_side);
  CHECK_EQ(text(reader.take_some(2)), "he");
  CHECK_EQ(text(reader.take_some(0)), "");
  CHECK_EQ(text(reader.take_some(100)), "llo");
  CHECK(!reader.take_some(100));
  pair.peer.shutdown(SHUT_WR);
  fill_all(reader, pair.reader_side);
  CHECK(reader.at_eof());
  CHECK_EQ(text(reader.take_some(100)), "");  // the end reads as empty, again and again
  CHECK_EQ(text(reader.take_some(100)), "");
}

TEST(take_exactly_waits_for_all_of_it_and_makes_room_for_it) {
  Pair pair;
  StreamReader reader(1024);
  pair.send("abc");
  fill_all(reader, pair.reader_side);
  CHECK(!reader.take_exactly(5000));
  CHECK(reader.capacity() >= 5000);  // one message larger than the buffer: room for all of it
  CHECK_EQ(reader.buffered(), "abc");
  CHECK_EQ(text(reader.take_exactly(2)), "ab");
  CHECK_EQ(text(reader.take_exactly(0)), "");
  pair.send("de");
  pair.peer.shutdown(SHUT_WR);
  fill_all(reader, pair.reader_side);
  try {
    (void)reader.take_exactly(4);
    FAIL_AT("no IncompleteRead");
  } catch (const IncompleteRead& error) {
    CHECK_EQ(error.partial(), "cde");
  }
  CHECK_EQ(text(reader.take_exactly(3)), "cde");  // the bytes are still there for a smaller read
}

TEST(take_until) {
  Pair pair;
  StreamReader reader;
  pair.send("one\r");
  fill_all(reader, pair.reader_side);
  CHECK(!reader.take_until("\r\n", 100));  // the delimiter may be half there
  pair.send("\ntwo\r\nthree");
  fill_all(reader, pair.reader_side);
  CHECK_EQ(text(reader.take_until("\r\n", 100)), "one\r\n");
  CHECK_EQ(text(reader.take_until("\r\n", 3)), "two\r\n");  // exactly max_size bytes before it
  CHECK_THROWS_AS(reader.take_until("\r\n", 3), FrameTooLarge);  // "three" is past 3 + 1
  CHECK(!reader.take_until("\r\n", 100));
  CHECK_THROWS_AS(reader.take_until("", 100), InvalidArgument);
  pair.peer.shutdown(SHUT_WR);
  fill_all(reader, pair.reader_side);
  try {
    (void)reader.take_until("\r\n", 100);
    FAIL_AT("no IncompleteRead");
  } catch (const IncompleteRead& error) {
    CHECK_EQ(error.partial(), "three");
  }
}

TEST(take_frame_hands_out_one_message_and_keeps_the_rest) {
  for (const Framing& framing : {Framing::length_prefixed(2, true, 100), Framing::delimited("\r\n", 100)}) {
    Pair pair;
    StreamReader reader;
    std::string wire = framing.encode("one") + framing.encode("") + framing.encode("three");
    pair.send(wire + framing.encode("four").substr(0, 3));
    fill_all(reader, pair.reader_side);
    CHECK_EQ(text(reader.take_frame(framing)), "one");
    CHECK_EQ(reader.buffered().size(), wire.size() + 3 - framing.encode("one").size());
    CHECK_EQ(text(reader.take_frame(framing)), "");
    CHECK_EQ(text(reader.take_frame(framing)), "three");
    CHECK(!reader.take_frame(framing));  // a part of "four": not yet
    CHECK(!reader.take_frame(framing));
    pair.send(framing.encode("four").substr(3));
    fill_all(reader, pair.reader_side);
    CHECK_EQ(text(reader.take_frame(framing)), "four");
    pair.peer.shutdown(SHUT_WR);
    fill_all(reader, pair.reader_side);
    CHECK(!reader.take_frame(framing));  // a clean end: nothing, and at_eof
    CHECK(reader.at_eof());
  }
}

TEST(take_frame_at_the_end_inside_a_message) {
  Framing framing = Framing::delimited("\n", 100);
  Pair pair;
  StreamReader reader;
  pair.send("a\ncut");
  pair.peer.shutdown(SHUT_WR);
  fill_all(reader, pair.reader_side);
  CHECK_EQ(text(reader.take_frame(framing)), "a");
  try {
    (void)reader.take_frame(framing);
    FAIL_AT("no IncompleteRead");
  } catch (const IncompleteRead& error) {
    CHECK_EQ(error.partial(), "cut");
  }
  CHECK_EQ(reader.buffered(), "cut");  // still there, for a read of another kind
}

TEST(take_line) {
  Pair pair;
  StreamReader reader;
  pair.send("unix\nwindows\r\n\nlone\rcr\nlong line");
  fill_all(reader, pair.reader_side);
  for (std::string line : {"unix", "windows", "", "lone\rcr"}) CHECK_EQ(text(reader.take_line(100)), line);
  CHECK(!reader.take_line(100));  // "long line" may go on
  CHECK_THROWS_AS(reader.take_line(4), FrameTooLarge);
  pair.send("\r");
  pair.peer.shutdown(SHUT_WR);
  fill_all(reader, pair.reader_side);
  CHECK_EQ(text(reader.take_line(100)), "long line");  // the last line needs no newline
  CHECK(!reader.take_line(100));
  CHECK(reader.at_eof());
}

TEST(take_frame_too_large_only_once_it_is_first) {
  Framing framing = Framing::length_prefixed(1, true, 3);
  Pair pair;
  StreamReader reader;
  pair.send(framing.encode("ok") + "\x09" + "abc");  // announces 9 bytes: over max_size 3
  fill_all(reader, pair.reader_side);
  CHECK_EQ(text(reader.take_frame(framing)), "ok");
  CHECK_THROWS_AS(reader.take_frame(framing), FrameTooLarge);
  CHECK_EQ(reader.buffered().size(), 4u);  // nothing taken: the next read raises again
  CHECK_THROWS_AS(reader.take_frame(framing), FrameTooLarge);
}

TEST(takes_of_every_kind_interleave_in_order) {
  Framing framing = Framing::length_prefixed(2, true, 100);
  Pair pair;
  StreamReader reader;
  pair.send(prefixed("one") + prefixed("two") + "raw bytes" + prefixed("three"));
  fill_all(reader, pair.reader_side);
  CHECK_EQ(text(reader.take_frame(framing)), "one");
  CHECK_EQ(text(reader.take_exactly(5)), prefixed("two"));
  CHECK_EQ(text(reader.take_until("bytes", 100)), "raw bytes");
  CHECK_EQ(text(reader.take_frame(framing)), "three");
  CHECK(reader.buffered().empty());
}

// --- the buffer: moving and growing ------------------------------------------------------------

TEST(small_messages_never_grow_the_buffer) {
  Framing framing = Framing::length_prefixed(2, true, 100);
  Pair pair(SOCK_STREAM);
  StreamReader reader(1024);
  std::string message(29, 'm');
  std::thread sender([&] {
    for (int i = 0; i < 2000; ++i) pair.send(prefixed(message));  // 62 KB through a 1 KiB buffer
    pair.peer.shutdown(SHUT_WR);
  });
  int count = 0;
  try {
    while (auto got = reader.read_frame(pair.reader_side, framing, 10s)) {
      CHECK_EQ(*got, message);
      ++count;
    }
  } catch (...) {
    sender.join();
    throw;
  }
  sender.join();
  CHECK_EQ(count, 2000);
  CHECK_EQ(reader.capacity(), 1024u);  // the unread bytes move to the front instead
}

TEST(a_message_larger_than_the_buffer_grows_it) {
  Framing framing = Framing::length_prefixed(4, false, 1 << 20);
  Pair pair(SOCK_STREAM);  // a SEQPACKET record larger than the free space would be cut short
  StreamReader reader(1024);
  std::string big(100'000, 'b');
  big[0] = 'B';
  big.back() = 'E';
  std::string wire = framing.encode(big) + framing.encode("after");
  std::thread sender([&] {
    for (size_t at = 0; at < wire.size(); at += 3000) pair.send(std::string_view(wire).substr(at, 3000));
  });
  std::optional<std::string_view> got, after;
  try {
    got = reader.read_frame(pair.reader_side, framing, 10s);
    CHECK(got && *got == big);
    after = reader.read_frame(pair.reader_side, framing, 10s);
  } catch (...) {
    sender.join();
    throw;
  }
  sender.join();
  CHECK(after && *after == "after");
  CHECK(reader.capacity() >= big.size() + 4);
}

// --- blocking reads ----------------------------------------------------------------------------

TEST(blocking_reads_wait_for_a_trickle) {
  Pair pair;
  StreamReader reader(1024);
  std::string wire = prefixed("framed") + "exactly-" + "until\n" + "a line\r\n" + "some";
  std::thread sender([&] {
    for (char byte : wire) pair.send(std::string(1, byte));  // a receive per byte
  });
  try {
    CHECK_EQ(text(reader.read_frame(pair.reader_side, Framing::length_prefixed(2, true, 100), 10s)), "framed");
    CHECK_EQ(reader.read_exactly(pair.reader_side, 8, 10s), "exactly-");
    CHECK_EQ(reader.read_until(pair.reader_side, "\n", 100, 10s), "until\n");
    CHECK_EQ(text(reader.read_line(pair.reader_side, 100, 10s)), "a line");
    std::string rest;
    while (rest.size() < 4) rest += reader.read_some(pair.reader_side, 100, 10s);
    CHECK_EQ(rest, "some");
  } catch (...) {
    sender.join();
    throw;
  }
  sender.join();
}

TEST(blocking_reads_at_the_end_of_the_stream) {
  Framing framing = Framing::delimited("\n", 100);
  {
    Pair pair;
    StreamReader reader;
    pair.peer.shutdown(SHUT_WR);
    CHECK(!reader.read_frame(pair.reader_side, framing, 10s));  // a clean end
    CHECK_EQ(reader.read_some(pair.reader_side, 10, 10s), "");
    CHECK_THROWS_AS(reader.read_exactly(pair.reader_side, 1, 10s), IncompleteRead);
    CHECK_THROWS_AS(reader.read_until(pair.reader_side, "\n", 100, 10s), IncompleteRead);
  }
  {
    Pair pair;
    StreamReader reader;
    pair.send("whole\ncut");
    pair.peer.shutdown(SHUT_WR);
    CHECK_EQ(text(reader.read_frame(pair.reader_side, framing, 10s)), "whole");
    CHECK_THROWS_AS(reader.read_frame(pair.reader_side, framing, 10s), IncompleteRead);
    CHECK_EQ(text(reader.read_line(pair.reader_side, 100, 10s)), "cut");
    CHECK(!reader.read_line(pair.reader_side, 100, 10s));
    CHECK(!reader.read_frame(pair.reader_side, framing, 10s));
  }
}

TEST(a_timeout_bounds_the_call_and_keeps_what_arrived) {
  Pair pair;
  StreamReader reader;
  pair.send("ab");
  auto started = Clock::now();
  CHECK_THROWS_ERRNO(reader.read_exactly(pair.reader_side, 4, 50ms), ETIMEDOUT);
  CHECK(Clock::now() - started >= 50ms);
  CHECK_THROWS_AS(reader.read_exactly(pair.reader_side, 4, 50ms), TimedOut);
  pair.send("cd");
  CHECK_EQ(reader.read_exactly(pair.reader_side, 4, 10s), "abcd");
}

TEST(timeout_zero_reads_only_what_is_there) {
  Framing framing = Framing::length_prefixed(2, true, 100);
  Pair pair;
  StreamReader reader;
  CHECK_THROWS_AS(reader.read_frame(pair.reader_side, framing, 0ns), TimedOut);
  pair.send(prefixed("one") + prefixed("two"));
  CHECK_EQ(text(reader.read_frame(pair.reader_side, framing, 0ns)), "one");  // one receive, no wait
  CHECK_EQ(text(reader.read_frame(pair.reader_side, framing, 0ns)), "two");  // buffered already
  CHECK_THROWS_AS(reader.read_frame(pair.reader_side, framing, 0ns), TimedOut);
}

TEST(a_closed_socket_is_ebadf) {
  Pair pair(SOCK_STREAM);
  StreamReader reader;
  pair.reader_side.close();
  CHECK_THROWS_ERRNO(reader.read_some(pair.reader_side, 10, 1s), EBADF);
  CHECK_THROWS_ERRNO(reader.fill_now(pair.reader_side), EBADF);
}

int main() { return socketeer::testing::run_all(); }
