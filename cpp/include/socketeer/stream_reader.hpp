// StreamReader: buffered reading from a stream socket: exactly n bytes, up to a delimiter, or
// whole framed messages, each with one deadline for the whole call.
//
// Bytes are received straight into the reader's own buffer (no allocation per read: it grows
// only when one message is larger than it) and handed out as views into it, valid until the
// next call on the reader. Waiting is poll() on the socket, so the socket's own timeout mode
// does not matter.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "socketeer/deadline.hpp"
#include "socketeer/framing.hpp"
#include "socketeer/socket.hpp"

namespace socketeer {

// The peer closed the stream in the middle of a message; partial holds what did arrive.
class IncompleteRead : public std::runtime_error {
 public:
  IncompleteRead(std::string partial, std::string expected);
  const std::string& partial() const noexcept { return partial_; }

 private:
  std::string partial_;
};

class StreamReader {
 public:
  explicit StreamReader(size_t capacity = 64 * 1024);

  std::string_view buffered() const { return {buffer_.data() + start_, end_ - start_}; }
  bool at_eof() const { return eof_ && start_ == end_; }

  // Up to max bytes: what is buffered, else one receive. Empty at end of stream.
  std::string_view read_some(Socket& socket, size_t max, Timeout timeout);
  std::string_view read_exactly(Socket& socket, size_t size, Timeout timeout);
  // Up to and including the delimiter; FrameTooLarge past max_size bytes without one.
  std::string_view read_until(Socket& socket, std::string_view delimiter, size_t max_size, Timeout timeout);
  // Every complete message buffered after at least one arrived (payloads only). Empty at a
  // clean end of stream; IncompleteRead if it ended inside a message.
  std::vector<std::string_view> read_frames(Socket& socket, const Framing& framing, Timeout timeout);

 private:
  // One receive into free space (waiting if nothing is there); false at end of stream.
  bool fill(Socket& socket, Deadline& deadline, const char* operation);
  void reserve(size_t wanted);
  std::string_view take(size_t size);

  std::vector<char> buffer_;
  size_t start_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
};

}  // namespace socketeer
