#include "socketeer/stream_transport.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "socketeer/error.hpp"
#include "socketeer/interrupt.hpp"
#include "socketeer/nocancel.hpp"

namespace socketeer {

namespace {

bool would_block(int code) { return code == EAGAIN || code == EWOULDBLOCK; }

// One non-blocking send that never raises SIGPIPE: the bytes sent, 0 when the buffer is full.
size_t send_some(int fd, const char* data, size_t size) {
  ssize_t n = retry_eintr([&] { return nocancel::send(fd, data, size, MSG_DONTWAIT | MSG_NOSIGNAL); });
  if (n < 0) {
    if (would_block(errno)) return 0;
    throw_error(errno, "send");
  }
  return static_cast<size_t>(n);
}

}  // namespace

std::optional<std::span<const char>> StreamTransportCore::recv() {
  if (!in_) in_ = std::make_unique_for_overwrite<char[]>(read_size);
  auto n = recv_into(in_.get(), read_size);
  if (!n) return std::nullopt;
  return std::span<const char>(in_.get(), *n);
}

std::optional<size_t> StreamTransportCore::recv_into(char* buffer, size_t size) {
  ssize_t n = retry_eintr([&] { return nocancel::recv(fd_, buffer, size, MSG_DONTWAIT); });
  if (n < 0) {
    if (would_block(errno)) return std::nullopt;
    throw_error(errno, "recv");
  }
  return static_cast<size_t>(n);
}

void StreamTransportCore::enqueue(const char* data, size_t size) {
  if (head_ == out_.size()) {
    out_.clear();
    head_ = 0;
  } else if (head_ > out_.size() / 2) {
    // Most of the vector is already sent: slide the rest down rather than grow.
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  out_.insert(out_.end(), data, data + size);
}

size_t StreamTransportCore::flush() {
  if (queued() == 0) return 0;
  size_t n = send_some(fd_, out_.data() + head_, queued());
  head_ += n;
  if (head_ == out_.size()) {
    out_.clear();
    head_ = 0;
  }
  return n;
}

size_t StreamTransportCore::send_direct(const char* data, size_t size) { return send_some(fd_, data, size); }

void StreamTransportCore::discard() noexcept {
  out_.clear();
  head_ = 0;
}

void StreamTransportCore::shutdown_write() { check(::shutdown(fd_, SHUT_WR), "shutdown"); }

void StreamTransportCore::set_water_marks(size_t high, size_t low) {
  if (high < low) throw InvalidArgument("high (" + std::to_string(high) + ") must be >= low (" + std::to_string(low) + ")");
  high_ = high;
  low_ = low;
}

}  // namespace socketeer
