#include "socketeer/datagram_transport.hpp"

#include <sys/socket.h>

#include <cerrno>

#include "socketeer/error.hpp"
#include "socketeer/interrupt.hpp"
#include "socketeer/nocancel.hpp"

namespace socketeer {

namespace {

constexpr size_t max_per_flush = 64;  // datagrams per sendmmsg

bool would_block(int code) { return code == EAGAIN || code == EWOULDBLOCK; }

}  // namespace

DatagramTransportCore::DatagramTransportCore(int fd, size_t slots, size_t slot_size)
    : fd_(fd), slots_(slots), slot_size_(slot_size) {
  if (slots == 0 || slot_size == 0) throw InvalidArgument("a datagram transport needs at least one slot of at least one byte");
}

size_t DatagramTransportCore::receive() {
  if (!batch_) batch_.emplace(slots_, slot_size_);
  int n = retry_eintr(
      [&] { return nocancel::recvmmsg(fd_, batch_->prepare(), static_cast<unsigned>(batch_->slots()), MSG_DONTWAIT); });
  if (n < 0) {
    if (would_block(errno)) return 0;
    throw_error(errno, "recvmmsg");
  }
  return static_cast<size_t>(n);
}

bool DatagramTransportCore::send_direct(const char* data, size_t size, const Address* to) {
  ssize_t n = retry_eintr([&] {
    return nocancel::sendto(fd_, data, size, MSG_DONTWAIT | MSG_NOSIGNAL, to ? sockaddr_of(*to) : nullptr,
                            to ? length_of(*to) : 0);
  });
  if (n < 0) {
    if (would_block(errno)) return false;
    throw_error(errno, to ? "sendto" : "send");
  }
  return true;
}

void DatagramTransportCore::enqueue(const char* data, size_t size, std::optional<Address> to) {
  if (queued() == 0) {
    bytes_.clear();
    entries_.clear();
    head_ = 0;
  }
  entries_.push_back({bytes_.size(), size, std::move(to)});
  bytes_.insert(bytes_.end(), data, data + size);
  queued_bytes_ += size;
}

size_t DatagramTransportCore::flush() {
  if (queued() == 0) return 0;
  if (!outgoing_) outgoing_.emplace(max_per_flush);
  outgoing_->reset(false);  // one datagram per message: sendmmsg's count is of datagrams
  for (size_t i = head_; i < entries_.size(); ++i) {
    const Entry& entry = entries_[i];
    if (!outgoing_->add({bytes_.data() + entry.offset, entry.size, entry.to ? &*entry.to : nullptr})) break;
  }
  int n = retry_eintr([&] {
    return nocancel::sendmmsg(fd_, outgoing_->headers(), static_cast<unsigned>(outgoing_->messages()),
                              MSG_DONTWAIT | MSG_NOSIGNAL);
  });
  if (n < 0) {
    int code = errno;
    if (would_block(code)) return 0;
    pop_front(1);
    throw_error(code, "sendmmsg");
  }
  pop_front(static_cast<size_t>(n));
  return static_cast<size_t>(n);
}

void DatagramTransportCore::pop_front(size_t count) noexcept {
  for (size_t i = 0; i < count && head_ < entries_.size(); ++i) queued_bytes_ -= entries_[head_++].size;
  if (queued() == 0) discard();
}

void DatagramTransportCore::discard() noexcept {
  bytes_.clear();
  entries_.clear();
  head_ = 0;
  queued_bytes_ = 0;
}

}  // namespace socketeer
