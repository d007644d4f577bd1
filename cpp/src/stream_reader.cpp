#include "socketeer/stream_reader.hpp"

#include <poll.h>

#include <algorithm>
#include <cstring>

#include "socketeer/error.hpp"

namespace socketeer {

IncompleteRead::IncompleteRead(std::string partial, std::string expected)
    : std::runtime_error("stream ended after " + std::to_string(partial.size()) + " bytes, expected " +
                         std::move(expected)),
      partial_(std::move(partial)) {}

StreamReader::StreamReader(size_t capacity) : buffer_(std::max<size_t>(capacity, 1024)) {}

// Makes room for `wanted` bytes in all: first by moving the unread bytes to the front (cheap,
// they are few once a message has been taken), only then by growing.
void StreamReader::reserve(size_t wanted) {
  if (buffer_.size() - start_ >= wanted && end_ < buffer_.size()) return;
  size_t unread = end_ - start_;
  if (start_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + start_, unread);
    start_ = 0;
    end_ = unread;
  }
  if (buffer_.size() < wanted || end_ == buffer_.size())
    buffer_.resize(std::max({wanted, buffer_.size() * 2, unread + 1024}));
}

bool StreamReader::fill(Socket& socket, Deadline& deadline, const char* operation) {
  if (eof_) return false;
  reserve(end_ - start_ + 1);
  for (;;) {
    auto n = socket.recv_now(buffer_.data() + end_, buffer_.size() - end_);
    if (n) {
      end_ += *n;
      eof_ = *n == 0;
      return !eof_;
    }
    Timeout left = deadline.remaining(operation);
    if (!socket.wait(POLLIN, left) && left) throw_timeout(operation);
  }
}

std::string_view StreamReader::take(size_t size) {
  std::string_view taken(buffer_.data() + start_, size);
  start_ += size;
  if (start_ == end_) start_ = end_ = 0;  // the view stays valid: the bytes are not moved
  return taken;
}

std::string_view StreamReader::read_some(Socket& socket, size_t max, Timeout timeout) {
  Deadline deadline(timeout);
  if (start_ == end_) fill(socket, deadline, "recv");
  return take(std::min(max, end_ - start_));
}

std::string_view StreamReader::read_exactly(Socket& socket, size_t size, Timeout timeout) {
  Deadline deadline(timeout);
  reserve(size);
  while (end_ - start_ < size) {
    if (!fill(socket, deadline, "recv_exactly"))
      throw IncompleteRead(std::string(buffered()), std::to_string(size));
  }
  return take(size);
}

std::string_view StreamReader::read_until(Socket& socket, std::string_view delimiter, size_t max_size,
                                          Timeout timeout) {
  Framing framing = Framing::delimited(std::string(delimiter), max_size);
  Deadline deadline(timeout);
  for (;;) {
    if (auto frame = framing.next(buffered())) return take(frame->total());
    if (!fill(socket, deadline, "recv_until"))
      throw IncompleteRead(std::string(buffered()), "a delimiter");
  }
}

std::vector<std::string_view> StreamReader::read_frames(Socket& socket, const Framing& framing, Timeout timeout) {
  Deadline deadline(timeout);
  std::vector<std::string_view> messages;
  for (;;) {
    try {
      while (auto frame = framing.next(buffered())) {
        messages.push_back(take(frame->total()).substr(frame->header, frame->payload));
      }
    } catch (const FrameTooLarge&) {
      // Hand out the whole messages that came before the oversize one; the next call raises.
      if (messages.empty()) throw;
      return messages;
    }
    if (!messages.empty()) return messages;
    if (!fill(socket, deadline, "messages")) {
      if (start_ == end_) return messages;
      throw IncompleteRead(std::string(buffered()), "the rest of a message");
    }
  }
}

}  // namespace socketeer
