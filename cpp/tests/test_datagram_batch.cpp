// OutgoingBatch's packing rules for UDP GSO, without sockets: which queued datagrams may share
// one message (same address, same size, the last one possibly shorter) and the kernel's limits.
#include <netinet/in.h>
#include <netinet/udp.h>

#include <cstring>
#include <string>
#include <vector>

#include "socketeer/datagram_batch.hpp"
#include "testing.hpp"

using namespace socketeer;

namespace {

const Address kAlice = InetAddress("127.0.0.1", 1000);
const Address kAliceAgain = InetAddress("127.0.0.1", 1000);  // equal, but another object
const Address kBob = InetAddress("127.0.0.1", 2000);

// Packs datagrams of these sizes (to the given addresses) and returns each message's segment
// count, e.g. {3, 1} for one GSO message of three datagrams and one plain message.
std::vector<size_t> pack(OutgoingBatch& batch, const std::vector<std::pair<size_t, const Address*>>& datagrams,
                         bool coalesce = true) {
  static const std::string bytes(70000, 'x');
  batch.reset(coalesce);
  for (auto [size, to] : datagrams) CHECK(batch.add({bytes.data(), size, to}));
  std::vector<size_t> segments;
  for (size_t i = 0; i < batch.messages(); ++i) segments.push_back(batch.segments(i));
  return segments;
}

uint16_t segment_size_of(OutgoingBatch& batch, size_t i) {
  msghdr& header = batch.headers()[i].msg_hdr;
  cmsghdr* item = CMSG_FIRSTHDR(&header);
  CHECK(item != nullptr);
  CHECK_EQ(item->cmsg_level, SOL_UDP);
  CHECK_EQ(item->cmsg_type, UDP_SEGMENT);
  uint16_t size;
  std::memcpy(&size, CMSG_DATA(item), sizeof size);
  return size;
}

}  // namespace

TEST(equal_sizes_to_one_address_share_a_message) {
  OutgoingBatch batch(64);
  auto segments = pack(batch, {{100, &kAlice}, {100, &kAliceAgain}, {100, &kAlice}, {40, &kAlice}});
  CHECK(segments == std::vector<size_t>{4});
  CHECK_EQ(segment_size_of(batch, 0), 100);
  CHECK_EQ(batch.datagrams(), 4u);
  CHECK_EQ(batch.datagrams_in(1), 4u);
}

TEST(a_shorter_datagram_ends_the_run_and_a_longer_one_starts_another) {
  OutgoingBatch batch(64);
  // 100 100 50 | 100 | 200 200
  auto segments = pack(batch, {{100, &kAlice}, {100, &kAlice}, {50, &kAlice}, {100, &kAlice}, {200, &kAlice}, {200, &kAlice}});
  CHECK(segments == (std::vector<size_t>{3, 1, 2}));
  CHECK_EQ(batch.datagrams_in(0), 0u);
  CHECK_EQ(batch.datagrams_in(1), 3u);
  CHECK_EQ(batch.datagrams_in(2), 4u);
  CHECK_EQ(batch.datagrams_in(3), 6u);
  CHECK_EQ(batch.headers()[1].msg_hdr.msg_controllen, 0u);  // a run of one goes as today
  CHECK_EQ(segment_size_of(batch, 2), 200);
}

TEST(another_address_starts_another_message) {
  OutgoingBatch batch(64);
  auto segments = pack(batch, {{100, &kAlice}, {100, &kBob}, {100, &kBob}, {100, &kAlice}, {100, nullptr}, {100, nullptr}});
  CHECK(segments == (std::vector<size_t>{1, 2, 1, 2}));
}

TEST(empty_datagrams_are_never_coalesced) {
  OutgoingBatch batch(64);
  auto segments = pack(batch, {{0, &kAlice}, {0, &kAlice}, {100, &kAlice}, {0, &kAlice}});
  CHECK(segments == (std::vector<size_t>{1, 1, 1, 1}));
}

TEST(coalescing_off_sends_one_datagram_a_message) {
  OutgoingBatch batch(64);
  auto segments = pack(batch, {{100, &kAlice}, {100, &kAlice}, {100, &kAlice}}, false);
  CHECK(segments == (std::vector<size_t>{1, 1, 1}));
  CHECK_EQ(batch.headers()[0].msg_hdr.msg_controllen, 0u);
}

TEST(segment_and_byte_limits_split_long_runs) {
  OutgoingBatch batch(200);
  std::vector<std::pair<size_t, const Address*>> small(150, {10, &kAlice});
  CHECK(pack(batch, small) == (std::vector<size_t>{64, 64, 22}));
  // 65507 / 1400 = 46 datagrams of 1400 bytes fit one message.
  std::vector<std::pair<size_t, const Address*>> large(50, {1400, &kAlice});
  CHECK(pack(batch, large) == (std::vector<size_t>{46, 4}));
  // Two datagrams that together exceed one UDP datagram's payload cannot share a message.
  CHECK(pack(batch, {{40000, &kAlice}, {40000, &kAlice}}) == (std::vector<size_t>{1, 1}));
}

TEST(a_full_batch_refuses_more) {
  static const char data[8] = {};
  OutgoingBatch batch(3);
  batch.reset(true);
  for (int i = 0; i < 3; ++i) CHECK(batch.add({data, sizeof data, &kAlice}));
  CHECK(!batch.add({data, sizeof data, &kAlice}));
  CHECK_EQ(batch.datagrams(), 3u);
  CHECK_EQ(batch.messages(), 1u);
  batch.reset(true);
  CHECK_EQ(batch.messages(), 0u);
  CHECK(batch.add({data, sizeof data, &kBob}));
  CHECK_EQ(batch.datagrams(), 1u);
}

TEST(receive_batches_report_no_segment_size_without_room_for_it) {
  DatagramBatch plain(4, 100);
  mmsghdr* headers = plain.prepare();
  CHECK(headers[0].msg_hdr.msg_control == nullptr);
  CHECK_EQ(plain.segment_size(0), 0u);
  DatagramBatch offload(4, 100, true);
  headers = offload.prepare();
  CHECK(headers[3].msg_hdr.msg_control != nullptr);
  CHECK(headers[3].msg_hdr.msg_controllen >= CMSG_SPACE(sizeof(int)));
}

int main() { return socketeer::testing::run_all(); }
