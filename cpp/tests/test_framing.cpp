// Framing alone (no sockets): length prefixes of 1/2/4/8 bytes in both byte orders against a
// hand-written encoding, delimited messages with a delimiter of one and several bytes, every
// way of cutting a stream of messages (next() finds exactly the messages that end before the
// cut, and a resumed delimiter search finds what a full one does), max_size at and past the
// limit, and the arguments the constructors and encode() refuse.
#include <cstdint>
#include <string>
#include <vector>

#include "socketeer/error.hpp"
#include "socketeer/framing.hpp"
#include "testing.hpp"

using namespace socketeer;

namespace {

// The payloads next() finds in data, one after the other, and how many bytes they took.
std::pair<std::vector<std::string>, size_t> split(const Framing& framing, std::string_view data) {
  std::vector<std::string> messages;
  size_t used = 0;
  while (auto frame = framing.next(data.substr(used))) {
    messages.emplace_back(data.substr(used + frame->header, frame->payload));
    used += frame->total();
  }
  return {messages, used};
}

std::string prefix(uint64_t length, int size, bool big_endian) {
  std::string bytes(static_cast<size_t>(size), '\0');
  for (int i = 0; i < size; ++i) {
    int shift = 8 * (big_endian ? size - 1 - i : i);
    bytes[static_cast<size_t>(i)] = static_cast<char>((length >> shift) & 0xff);
  }
  return bytes;
}

std::vector<Framing> all_framings(size_t max_size) {
  std::vector<Framing> framings;
  for (int size : {1, 2, 4, 8})
    for (bool big : {true, false}) framings.push_back(Framing::length_prefixed(size, big, max_size));
  framings.push_back(Framing::delimited("\n", max_size));
  framings.push_back(Framing::delimited("\r\n\r\n", max_size));
  return framings;
}

const std::vector<std::string> kMessages = {"", "a", "hello", std::string("\0\1\2", 3), std::string(200, 'z'), "\r\n\r"};

}  // namespace

TEST(length_prefix_bytes) {
  for (int size : {1, 2, 4, 8}) {
    for (bool big : {true, false}) {
      Framing framing = Framing::length_prefixed(size, big, 1000);
      for (std::string message : {std::string(), std::string("x"), std::string(255, 'y')})
        CHECK_EQ(framing.encode(message), prefix(message.size(), size, big) + message);
      auto frame = framing.next(prefix(3, size, big) + "abcdef");
      CHECK(frame && frame->header == static_cast<size_t>(size) && frame->payload == 3 && frame->trailer == 0);
    }
  }
  CHECK_EQ(Framing::length_prefixed(2, true, 1 << 20).encode(std::string(0x1234, 'q')).substr(0, 2), "\x12\x34");
  CHECK_EQ(Framing::length_prefixed(2, false, 1 << 20).encode(std::string(0x1234, 'q')).substr(0, 2), "\x34\x12");
}

TEST(delimited_frames) {
  Framing framing = Framing::delimited("--", 100);
  CHECK_EQ(framing.encode("abc"), "abc--");
  auto frame = framing.next("abc--def");
  CHECK(frame && frame->header == 0 && frame->payload == 3 && frame->trailer == 2);
  CHECK(!framing.next("abc-"));
  CHECK(!framing.next(""));
}

TEST(split_at_every_byte_boundary) {
  for (const Framing& framing : all_framings(1000)) {
    std::string wire;
    std::vector<size_t> ends;
    std::vector<std::string> sent;
    for (const std::string& message : kMessages) {
      if (framing.kind() == Framing::Kind::delimited && message.find(framing.delimiter()) != std::string::npos)
        continue;
      wire += framing.encode(message);
      ends.push_back(wire.size());
      sent.push_back(message);
    }
    for (size_t cut = 0; cut <= wire.size(); ++cut) {
      auto [first, used] = split(framing, std::string_view(wire).substr(0, cut));
      size_t complete = 0;
      while (complete < ends.size() && ends[complete] <= cut) ++complete;
      CHECK_EQ(first.size(), complete);  // exactly the messages whose last byte is before the cut
      CHECK_EQ(used, complete ? ends[complete - 1] : 0);
      auto [rest, rest_used] = split(framing, std::string_view(wire).substr(used));
      first.insert(first.end(), rest.begin(), rest.end());
      CHECK(first == sent);
      CHECK_EQ(used + rest_used, wire.size());
    }
  }
}

TEST(a_resumed_delimiter_search_finds_what_a_full_one_does) {
  Framing framing = Framing::delimited("\r\n\r\n", 1000);
  std::string wire = "header: one\r\nheader: two\r\n\r\nbody";
  for (size_t seen = 0; seen <= wire.size(); ++seen) {
    if (framing.next(std::string_view(wire).substr(0, seen))) break;  // searched means: nothing found there
    for (size_t now = seen; now <= wire.size(); ++now) {
      auto resumed = framing.next(std::string_view(wire).substr(0, now), seen);
      auto full = framing.next(std::string_view(wire).substr(0, now));
      CHECK_EQ(resumed.has_value(), full.has_value());
      if (full) CHECK_EQ(resumed->payload, full->payload);
    }
  }
}

TEST(max_size) {
  for (int size : {1, 2, 4, 8}) {
    Framing framing = Framing::length_prefixed(size, true, 100);
    CHECK(framing.next(framing.encode(std::string(100, 'x'))));  // at the limit
    // only the prefix: the payload never needs to be buffered to know it is too large
    CHECK_THROWS_AS(framing.next(prefix(101, size, true)), FrameTooLarge);
    CHECK_THROWS_AS(framing.encode(std::string(101, 'x')), FrameTooLarge);
  }
  try {
    (void)Framing::length_prefixed(8, true, 100).next(std::string(8, '\xff'));
    FAIL_AT("no FrameTooLarge");
  } catch (const FrameTooLarge& error) {
    CHECK_EQ(error.size(), UINT64_MAX);
    CHECK_EQ(error.limit(), 100u);
  }
  Framing lines = Framing::delimited("\r\n", 4);
  CHECK(!lines.next("abcd\r"));  // could still be "abcd" + "\r\n"
  CHECK(lines.next("abcd\r\n"));
  CHECK(!lines.next("abcde"));  // the delimiter could start at its last byte: not known yet
  CHECK_THROWS_AS(lines.next("abcdef"), FrameTooLarge);
  CHECK_THROWS_AS(lines.next("abcde\r\n"), FrameTooLarge);
  CHECK_THROWS_AS(lines.next(std::string(1000, 'x')), FrameTooLarge);
}

TEST(raw_chunks) {
  Framing framing = Framing::raw(3);
  auto [chunks, used] = split(framing, "abcdefg");
  CHECK(chunks == (std::vector<std::string>{"abc", "def", "g"}));
  CHECK_EQ(used, 7u);
  CHECK(!framing.next(""));
  CHECK_EQ(framing.encode("abc"), "abc");
  CHECK_THROWS_AS(framing.encode("abcd"), FrameTooLarge);
}

TEST(bad_arguments) {
  CHECK_THROWS_AS(Framing::raw(0), InvalidArgument);  // an empty raw frame would never consume a byte
  CHECK_THROWS_AS(Framing::delimited("", 10), InvalidArgument);
  for (int size : {0, 3, 5, 16, -1}) CHECK_THROWS_AS(Framing::length_prefixed(size, true, 10), InvalidArgument);
  CHECK_THROWS_AS(Framing::delimited("\n", 100).encode("a\nb"), InvalidArgument);
  CHECK_THROWS_AS(Framing::length_prefixed(1, true, 1000).encode(std::string(256, 'x')), InvalidArgument);
  CHECK_EQ(Framing::length_prefixed(1, true, 1000).encode(std::string(255, 'x')).size(), 256u);
}

TEST(the_parts_of_encode) {
  Framing framing = Framing::length_prefixed(4, true, 100);
  char header[Framing::kMaxHeader];
  CHECK_EQ(framing.write_header(5, header), 4u);
  CHECK_EQ(std::string(header, 4), prefix(5, 4, true));
  CHECK(framing.trailer().empty());
  Framing lines = Framing::delimited("\r\n", 100);
  CHECK_EQ(lines.write_header(5, header), 0u);
  CHECK_EQ(lines.trailer(), "\r\n");
}

int main() { return socketeer::testing::run_all(); }
