// Message framing: where one message ends in a byte stream.
//
//   Framing::raw()                      every chunk of bytes is a message
//   Framing::delimited("\n", max)       messages end with a delimiter (not part of the message)
//   Framing::length_prefixed(4, big, max)  a 1/2/4/8-byte length, then that many bytes
//
// Used by both the blocking StreamReader and the reactor, so Python sees whole messages.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace socketeer {

// A message would exceed the framing's max_size: the stream cannot be resynchronised.
class FrameTooLarge : public std::length_error {
 public:
  FrameTooLarge(size_t size, size_t limit);
  size_t size() const noexcept { return size_; }
  size_t limit() const noexcept { return limit_; }

 private:
  size_t size_;
  size_t limit_;
};

struct Frame {
  size_t header = 0;   // bytes before the payload (the length prefix)
  size_t payload = 0;  // the message itself
  size_t trailer = 0;  // bytes after it (the delimiter)
  size_t total() const { return header + payload + trailer; }
};

class Framing {
 public:
  enum class Kind { raw, delimited, length_prefixed };

  static Framing raw(size_t max_size);
  static Framing delimited(std::string delimiter, size_t max_size);
  static Framing length_prefixed(int prefix_size, bool big_endian, size_t max_size);

  Kind kind() const { return kind_; }
  const std::string& delimiter() const { return delimiter_; }
  int prefix_size() const { return prefix_size_; }
  bool big_endian() const { return big_endian_; }
  size_t max_size() const { return max_size_; }

  // The first complete message at the start of data, or nullopt if more bytes are needed.
  // Throws FrameTooLarge as soon as the message is known to exceed max_size. searched: how much
  // of data an earlier call already saw without finding a message end (data has only grown
  // since), so a delimiter search resumes there instead of rescanning a long partial line.
  std::optional<Frame> next(std::string_view data, size_t searched = 0) const {
    if (kind_ == Kind::raw) {  // inline: the reactor's default framing asks once or twice per read
      if (data.empty()) return std::nullopt;
      return Frame{0, data.size() < max_size_ ? data.size() : max_size_, 0};
    }
    return next_framed(data, searched);
  }
  // The bytes that carry one message on the wire (prefix or delimiter added).
  std::string encode(std::string_view message) const;
  // The three parts of encode(), for senders that queue the message without copying it:
  // check_message throws (FrameTooLarge, InvalidArgument) for a message that would not arrive
  // as one; write_header writes the length prefix (0 bytes unless length-prefixed, at most 8);
  // trailer is the delimiter (empty unless delimited).
  void check_message(std::string_view message) const;
  size_t write_header(size_t payload_size, char* out) const;
  std::string_view trailer() const { return kind_ == Kind::delimited ? std::string_view(delimiter_) : std::string_view(); }
  static constexpr size_t kMaxHeader = 8;

 private:
  std::optional<Frame> next_framed(std::string_view data, size_t searched) const;  // delimited, length-prefixed

  Kind kind_ = Kind::raw;
  std::string delimiter_;
  int prefix_size_ = 0;
  bool big_endian_ = true;
  size_t max_size_ = 0;
};

}  // namespace socketeer
