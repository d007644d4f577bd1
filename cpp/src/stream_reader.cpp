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

std::string_view StreamReader::take(size_t size) {
  std::string_view taken(buffer_.data() + start_, size);
  start_ += size;
  if (start_ == end_) start_ = end_ = 0;  // the view stays valid: the bytes are not moved
  return taken;
}

void StreamReader::incomplete(std::string expected) const {
  throw IncompleteRead(std::string(buffered()), std::move(expected));
}

// --- the buffer alone -------------------------------------------------------------------------

std::optional<std::string_view> StreamReader::take_some(size_t max) {
  if (start_ == end_ && !eof_) return std::nullopt;
  return take(std::min(max, end_ - start_));
}

std::optional<std::string_view> StreamReader::take_exactly(size_t size) {
  if (end_ - start_ >= size) return take(size);
  if (eof_) incomplete(std::to_string(size));
  reserve(size);  // room for all of it, so the fills need not grow the buffer step by step
  return std::nullopt;
}

std::optional<std::string_view> StreamReader::take_until(std::string_view delimiter, size_t max_size) {
  Framing framing = Framing::delimited(std::string(delimiter), max_size);  // refuses an empty one
  if (auto frame = framing.next(buffered())) return take(frame->total());
  if (eof_) incomplete("a delimiter");
  return std::nullopt;
}

std::optional<std::string_view> StreamReader::take_frame(const Framing& framing) {
  if (auto frame = framing.next(buffered())) return take(frame->total()).substr(frame->header, frame->payload);
  if (eof_ && start_ != end_) incomplete("the rest of a message");
  return std::nullopt;
}

std::optional<std::string_view> StreamReader::take_line(size_t max_size) {
  std::optional<std::string_view> line;
  if (auto frame = Framing::delimited("\n", max_size).next(buffered()))
    line = take(frame->total()).substr(0, frame->payload);
  else if (eof_ && start_ != end_)
    line = take(end_ - start_);  // the last line, without a newline
  else
    return std::nullopt;
  if (line->ends_with('\r')) line->remove_suffix(1);
  return line;
}

std::optional<size_t> StreamReader::fill_now(Socket& socket) {
  if (eof_) return 0;
  reserve(end_ - start_ + 1);
  auto n = socket.recv_now(buffer_.data() + end_, buffer_.size() - end_);
  if (n) {
    end_ += *n;
    eof_ = *n == 0;
  }
  return n;
}

// --- blocking ---------------------------------------------------------------------------------

// take() until it has a result; in between, one receive, waiting for the socket to become
// readable when it has nothing. The takes answer end of stream themselves, so once it was seen
// a "not yet" is final (a clean end for take_frame and take_line).
template <typename Take>
std::optional<std::string_view> StreamReader::read(Socket& socket, Timeout timeout, const char* operation,
                                                   Take&& take) {
  Deadline deadline(timeout);
  for (;;) {
    if (auto result = take()) return result;
    if (eof_) return std::nullopt;
    while (!fill_now(socket)) socket.wait_until(POLLIN, deadline, operation);
  }
}

std::string_view StreamReader::read_some(Socket& socket, size_t max, Timeout timeout) {
  return *read(socket, timeout, "recv", [&] { return take_some(max); });
}

std::string_view StreamReader::read_exactly(Socket& socket, size_t size, Timeout timeout) {
  return *read(socket, timeout, "recv_exactly", [&] { return take_exactly(size); });
}

std::string_view StreamReader::read_until(Socket& socket, std::string_view delimiter, size_t max_size,
                                          Timeout timeout) {
  return *read(socket, timeout, "recv_until", [&] { return take_until(delimiter, max_size); });
}

std::optional<std::string_view> StreamReader::read_frame(Socket& socket, const Framing& framing, Timeout timeout) {
  return read(socket, timeout, "messages", [&] { return take_frame(framing); });
}

std::optional<std::string_view> StreamReader::read_line(Socket& socket, size_t max_size, Timeout timeout) {
  return read(socket, timeout, "lines", [&] { return take_line(max_size); });
}

}  // namespace socketeer
