#include "socketeer/datagram_batch.hpp"

#include "socketeer/error.hpp"

namespace socketeer {

DatagramBatch::DatagramBatch(size_t slots, size_t slot_size)
    : slot_size_(slot_size), arena_(slots * slot_size), vectors_(slots), names_(slots), headers_(slots) {
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

}  // namespace socketeer
