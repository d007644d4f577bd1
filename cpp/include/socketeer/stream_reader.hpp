// StreamReader: buffered reading from a stream socket: up to n bytes, exactly n bytes, up to a
// delimiter, or one framed message.
//
// One buffer core, two kinds of drivers. The take_* operations work on the buffer alone: no
// I/O, and "not yet" (nullopt) when it does not hold a complete result. fill_now() is one
// non-blocking receive into the buffer's free space. A driver loops "take; else fill; else wait
// for readability": the blocking read_* methods here wait with poll() (one deadline for the
// whole call), the asyncio Stream waits on its event loop. Each take hands out exactly one
// result and leaves everything after it buffered, so nothing is ever held anywhere but here:
// a caller that stops asking (an abandoned iterator, a timeout, a cancelled task) loses
// nothing, and the next read of any kind starts where the last one stopped.
//
// End of stream is part of the buffer's state (fill_now saw it), so the takes answer it the
// same way for every driver: take_some gives what is left, then empty views; take_exactly,
// take_until and take_frame throw IncompleteRead when it cut their result short, take_line
// gives the rest as a last line; take_frame and take_line return nullopt with at_eof() true at
// a clean end.
//
// Bytes are received straight into the reader's own buffer (no allocation per read: it grows
// only when one message is larger than it) and handed out as views into it, valid until the
// next non-const call on the reader. Waiting is poll() on the socket, so the socket's own
// timeout mode does not matter.
#pragma once

#include <optional>
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
  size_t capacity() const { return buffer_.size(); }
  bool eof() const { return eof_; }                            // the peer has closed its side
  bool at_eof() const { return eof_ && start_ == end_; }       // ... and every byte was taken

  // --- the buffer alone: no I/O --------------------------------------------------------------
  // Up to max bytes of what is buffered; an empty view at end of stream; nullopt when nothing
  // is buffered yet.
  std::optional<std::string_view> take_some(size_t max);
  std::optional<std::string_view> take_exactly(size_t size);
  // Up to and including the delimiter; FrameTooLarge once more than max_size bytes precede it.
  std::optional<std::string_view> take_until(std::string_view delimiter, size_t max_size);
  // The payload of the first message; FrameTooLarge if it is known to exceed the framing's
  // max_size. At a clean end of stream nullopt (and at_eof()).
  std::optional<std::string_view> take_frame(const Framing& framing);
  // The first line without its "\n" or "\r\n" (FrameTooLarge past max_size bytes); at end of
  // stream the bytes after the last newline are one last line, then nullopt (and at_eof()).
  std::optional<std::string_view> take_line(size_t max_size);

  // One receive into free space, never waiting: bytes read, 0 at end of stream (also once it
  // was seen), nullopt when the socket has nothing now. Makes room first (moving the unread
  // bytes to the front, or growing when they fill the buffer).
  std::optional<size_t> fill_now(Socket& socket);

  // --- blocking: take, else wait (poll) and fill, within one deadline for the whole call ------
  std::string_view read_some(Socket& socket, size_t max, Timeout timeout);
  std::string_view read_exactly(Socket& socket, size_t size, Timeout timeout);
  std::string_view read_until(Socket& socket, std::string_view delimiter, size_t max_size, Timeout timeout);
  // nullopt at a clean end of stream.
  std::optional<std::string_view> read_frame(Socket& socket, const Framing& framing, Timeout timeout);
  std::optional<std::string_view> read_line(Socket& socket, size_t max_size, Timeout timeout);

 private:
  template <typename Take>
  std::optional<std::string_view> read(Socket& socket, Timeout timeout, const char* operation, Take&& take);
  void reserve(size_t wanted);
  std::string_view take(size_t size);
  [[noreturn]] void incomplete(std::string expected) const;

  std::vector<char> buffer_;
  size_t start_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
};

}  // namespace socketeer
