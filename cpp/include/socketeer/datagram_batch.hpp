// DatagramBatch: reusable room for recvmmsg, so receiving many datagrams in one syscall
// allocates nothing: slots of a fixed size in one arena, with their headers and addresses.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string_view>
#include <vector>

#include "socketeer/address.hpp"

namespace socketeer {

class DatagramBatch {
 public:
  DatagramBatch(size_t slots, size_t slot_size);

  size_t slots() const { return headers_.size(); }
  size_t slot_size() const { return slot_size_; }
  // After a receive of n messages, for i < n:
  std::string_view data(size_t i) const;
  std::optional<Address> address(size_t i) const;  // nullopt when the sender has no name
  bool truncated(size_t i) const { return headers_[i].msg_hdr.msg_flags & MSG_TRUNC; }

  // Prepares every header for the next recvmmsg (lengths are overwritten by the kernel).
  mmsghdr* prepare();

 private:
  size_t slot_size_;
  std::vector<char> arena_;
  std::vector<iovec> vectors_;
  std::vector<sockaddr_storage> names_;
  std::vector<mmsghdr> headers_;
};

struct OutgoingDatagram {
  const void* data;
  size_t size;
  const Address* to;  // nullptr on a connected socket
};

}  // namespace socketeer
