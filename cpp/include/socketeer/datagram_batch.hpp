// DatagramBatch and OutgoingBatch: reusable room for recvmmsg and sendmmsg, so that receiving
// or sending many datagrams in one syscall allocates nothing: headers, buffers, addresses and
// control messages are set up once and reused.
//
// Both know UDP's segmentation offloads (Linux >= 4.18 for GSO, >= 5.0 for GRO):
//  - GRO (receive): with setsockopt(SOL_UDP, UDP_GRO, 1) the kernel may hand over several
//    datagrams of ONE sender in one slot, all of one size but the last (which may be shorter),
//    and says that size in a UDP_GRO control message: segment_size(i).
//  - GSO (send): one message whose payload is several datagrams for ONE address, all of one
//    size but the last (which may be shorter, never longer), with a UDP_SEGMENT control message
//    saying that size. The kernel cuts it up as late as possible, so the stack (route lookup,
//    netfilter, the device queue) is walked once per message instead of once per datagram.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "socketeer/address.hpp"

namespace socketeer {

// Room for one control message carrying one int (the UDP_GRO segment size), aligned for cmsghdr.
union SegmentSizeControl {
  cmsghdr header;
  char bytes[CMSG_SPACE(sizeof(int))];
};

class DatagramBatch {
 public:
  // segment_sizes: give the kernel room for a UDP_GRO control message per slot. Only for
  // sockets with UDP_GRO on: on a unix socket the same room would let a peer's SCM_RIGHTS fd
  // arrive (and leak), where without room the kernel closes it.
  DatagramBatch(size_t slots, size_t slot_size, bool segment_sizes = false);

  size_t slots() const { return headers_.size(); }
  size_t slot_size() const { return slot_size_; }
  // After a receive of n messages, for i < n:
  std::string_view data(size_t i) const;
  std::optional<Address> address(size_t i) const;  // nullopt when the sender has no name
  bool truncated(size_t i) const { return headers_[i].msg_hdr.msg_flags & MSG_TRUNC; }
  // GRO: the size of each datagram coalesced into slot i, or 0 when it holds one datagram.
  size_t segment_size(size_t i) const;

  // Prepares every header for the next recvmmsg (lengths are overwritten by the kernel).
  mmsghdr* prepare();

 private:
  size_t slot_size_;
  std::vector<char> arena_;
  std::vector<iovec> vectors_;
  std::vector<sockaddr_storage> names_;
  std::vector<SegmentSizeControl> controls_;  // empty unless segment_sizes
  std::vector<mmsghdr> headers_;
};

struct OutgoingDatagram {
  const void* data;
  size_t size;
  const Address* to;  // nullptr on a connected socket
};

// The messages of one sendmmsg, built by add(). With coalescing on, consecutive datagrams to
// the same address with the same size become one GSO message (one iovec per datagram and a
// UDP_SEGMENT control message); otherwise, and for a run of one, a message is one datagram.
class OutgoingBatch {
 public:
  // The kernel's limit per GSO message (UDP_MAX_SEGMENTS: 64 on older kernels, 128 on recent
  // ones); 64 is accepted by all of them.
  static constexpr size_t kMaxSegments = 64;
  // A GSO message is one UDP datagram until it is cut up, so its whole payload must fit one:
  // 65535 - 20 (IPv4 header) - 8 (UDP header). IPv6 allows 20 bytes more; one limit serves both.
  static constexpr size_t kMaxCoalescedBytes = 65507;

  // Room for up to `capacity` datagrams (and as many messages) per send.
  explicit OutgoingBatch(size_t capacity);

  // Empties the batch; coalesce: whether add() may build GSO messages.
  void reset(bool coalesce);
  // Appends a datagram (its bytes and address must stay valid until the send); false when the
  // batch is full and the datagram was not added.
  bool add(const OutgoingDatagram& datagram);

  size_t capacity() const { return vectors_.size(); }
  size_t messages() const { return messages_; }
  size_t datagrams() const { return datagrams_; }
  // Datagrams in message i: 1, or more for a GSO message.
  size_t segments(size_t i) const { return headers_[i].msg_hdr.msg_iovlen; }
  // Datagrams carried by the first `count` messages (what a sendmmsg that sent `count` sent).
  size_t datagrams_in(size_t count) const;
  mmsghdr* headers() { return headers_.data(); }

 private:
  bool joins_last(const OutgoingDatagram& datagram) const;
  void mark_segmented(size_t i);

  std::vector<iovec> vectors_;     // one per datagram, a message's side by side
  std::vector<mmsghdr> headers_;   // one per message
  std::vector<SegmentSizeControl> controls_;  // one per message, used by GSO messages
  std::vector<const Address*> destinations_;  // one per message
  std::vector<size_t> message_bytes_;         // one per message
  size_t messages_ = 0;
  size_t datagrams_ = 0;
  bool coalesce_ = false;
};

}  // namespace socketeer
