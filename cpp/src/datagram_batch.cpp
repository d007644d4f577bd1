#include "socketeer/datagram_batch.hpp"

#include <netinet/in.h>
#include <netinet/udp.h>

#include <cstring>

#include "socketeer/error.hpp"

namespace socketeer {

// --- receiving ---------------------------------------------------------------------------------

DatagramBatch::DatagramBatch(size_t slots, size_t slot_size, bool segment_sizes)
    : slot_size_(slot_size),
      arena_(slots * slot_size),
      vectors_(slots),
      names_(slots),
      controls_(segment_sizes ? slots : 0),
      headers_(slots) {
  if (slots == 0 || slot_size == 0) throw InvalidArgument("a datagram batch needs at least one slot of at least one byte");
  if (slots > 1024) throw InvalidArgument("at most 1024 datagrams per batch (UIO_MAXIOV), got " + std::to_string(slots));
}

mmsghdr* DatagramBatch::prepare() {
  for (size_t i = 0; i < headers_.size(); ++i) {
    vectors_[i] = {arena_.data() + i * slot_size_, slot_size_};
    headers_[i] = mmsghdr{};
    headers_[i].msg_hdr.msg_iov = &vectors_[i];
    headers_[i].msg_hdr.msg_iovlen = 1;
    headers_[i].msg_hdr.msg_name = &names_[i];
    headers_[i].msg_hdr.msg_namelen = sizeof names_[i];
    if (!controls_.empty()) {
      headers_[i].msg_hdr.msg_control = controls_[i].bytes;
      headers_[i].msg_hdr.msg_controllen = sizeof controls_[i].bytes;
    }
  }
  return headers_.data();
}

std::string_view DatagramBatch::data(size_t i) const {
  return {arena_.data() + i * slot_size_, std::min<size_t>(headers_[i].msg_len, slot_size_)};
}

std::optional<Address> DatagramBatch::address(size_t i) const {
  if (headers_[i].msg_hdr.msg_namelen == 0) return std::nullopt;
  return address_from_sockaddr(names_[i], headers_[i].msg_hdr.msg_namelen);
}

size_t DatagramBatch::segment_size(size_t i) const {
  if (controls_.empty()) return 0;
  auto& header = const_cast<msghdr&>(headers_[i].msg_hdr);  // CMSG_NXTHDR takes no const
  for (cmsghdr* item = CMSG_FIRSTHDR(&header); item; item = CMSG_NXTHDR(&header, item)) {
    if (item->cmsg_level != SOL_UDP || item->cmsg_type != UDP_GRO) continue;
    int size = 0;
    std::memcpy(&size, CMSG_DATA(item), sizeof size);
    return size > 0 ? static_cast<size_t>(size) : 0;
  }
  return 0;
}

// --- sending -----------------------------------------------------------------------------------

OutgoingBatch::OutgoingBatch(size_t capacity)
    : vectors_(capacity), headers_(capacity), controls_(capacity), destinations_(capacity), message_bytes_(capacity) {
  if (capacity == 0) throw InvalidArgument("an outgoing batch needs room for at least one datagram");
}

void OutgoingBatch::reset(bool coalesce) {
  messages_ = datagrams_ = 0;
  coalesce_ = coalesce;
}

bool OutgoingBatch::add(const OutgoingDatagram& datagram) {
  if (datagrams_ == capacity()) return false;
  vectors_[datagrams_] = {const_cast<void*>(datagram.data), datagram.size};
  if (joins_last(datagram)) {
    size_t last = messages_ - 1;
    if (segments(last) == 1) mark_segmented(last);
    ++headers_[last].msg_hdr.msg_iovlen;
    message_bytes_[last] += datagram.size;
  } else {
    msghdr& header = (headers_[messages_] = mmsghdr{}).msg_hdr;
    header.msg_iov = &vectors_[datagrams_];
    header.msg_iovlen = 1;
    if (datagram.to) {
      header.msg_name = const_cast<sockaddr*>(sockaddr_of(*datagram.to));
      header.msg_namelen = length_of(*datagram.to);
    }
    destinations_[messages_] = datagram.to;
    message_bytes_[messages_] = datagram.size;
    ++messages_;
  }
  ++datagrams_;
  return true;
}

// The kernel cuts a GSO message into pieces of the segment size, so only the last piece can be
// shorter: a datagram joins the last message if it goes to the same address, is no longer than
// the message's first datagram, and no shorter one has already ended the message.
bool OutgoingBatch::joins_last(const OutgoingDatagram& datagram) const {
  if (!coalesce_ || messages_ == 0 || datagram.size == 0) return false;
  size_t last = messages_ - 1;
  const msghdr& header = headers_[last].msg_hdr;
  size_t segment = header.msg_iov[0].iov_len;
  size_t tail = header.msg_iov[header.msg_iovlen - 1].iov_len;
  if (datagram.size > segment || tail < segment || header.msg_iovlen == kMaxSegments) return false;
  if (message_bytes_[last] + datagram.size > kMaxCoalescedBytes) return false;
  const Address* to = destinations_[last];
  return to == datagram.to || (to && datagram.to && *to == *datagram.to);
}

// Message i carries more than one datagram from now on: it gets its UDP_SEGMENT control message.
void OutgoingBatch::mark_segmented(size_t i) {
  msghdr& header = headers_[i].msg_hdr;
  SegmentSizeControl& control = controls_[i];
  std::memset(control.bytes, 0, sizeof control.bytes);
  header.msg_control = control.bytes;
  header.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
  cmsghdr* item = CMSG_FIRSTHDR(&header);
  item->cmsg_level = SOL_UDP;
  item->cmsg_type = UDP_SEGMENT;
  item->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  auto segment = static_cast<uint16_t>(header.msg_iov[0].iov_len);
  std::memcpy(CMSG_DATA(item), &segment, sizeof segment);
}

size_t OutgoingBatch::datagrams_in(size_t count) const {
  if (count >= messages_) return datagrams_;
  return static_cast<size_t>(headers_[count].msg_hdr.msg_iov - vectors_.data());
}

}  // namespace socketeer
