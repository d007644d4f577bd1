#include "socketeer/framing.hpp"

#include "socketeer/error.hpp"

namespace socketeer {

FrameTooLarge::FrameTooLarge(size_t size, size_t limit)
    : std::length_error("message of " + std::to_string(size) + (size > limit ? "" : "+") +
                        " bytes exceeds max_size=" + std::to_string(limit)),
      size_(size),
      limit_(limit) {}

Framing Framing::raw(size_t max_size) {
  // A raw message of at most 0 bytes would be an empty frame that consumes nothing: split()
  // and a reader would loop forever taking empty messages off the same bytes.
  if (max_size == 0) throw InvalidArgument("raw framing needs max_size >= 1");
  Framing framing;
  framing.max_size_ = max_size;
  return framing;
}

Framing Framing::delimited(std::string delimiter, size_t max_size) {
  if (delimiter.empty()) throw InvalidArgument("delimiter must not be empty");
  Framing framing;
  framing.kind_ = Kind::delimited;
  framing.delimiter_ = std::move(delimiter);
  framing.max_size_ = max_size;
  return framing;
}

Framing Framing::length_prefixed(int prefix_size, bool big_endian, size_t max_size) {
  if (prefix_size != 1 && prefix_size != 2 && prefix_size != 4 && prefix_size != 8)
    throw InvalidArgument("length prefix must be 1, 2, 4 or 8 bytes, got " + std::to_string(prefix_size));
  Framing framing;
  framing.kind_ = Kind::length_prefixed;
  framing.prefix_size_ = prefix_size;
  framing.big_endian_ = big_endian;
  framing.max_size_ = max_size;
  return framing;
}

std::optional<Frame> Framing::next_framed(std::string_view data, size_t searched) const {
  switch (kind_) {
    case Kind::raw:
      break;  // next() handles it inline
    case Kind::delimited: {
      // A delimiter may straddle the end of what was searched: back up by all but one byte.
      size_t end = data.find(delimiter_, searched >= delimiter_.size() ? searched - (delimiter_.size() - 1) : 0);
      if (end == std::string_view::npos) {
        // Not found yet: fail early once even the bytes before a delimiter would be too many.
        if (data.size() > max_size_ + delimiter_.size() - 1) throw FrameTooLarge(data.size(), max_size_);
        return std::nullopt;
      }
      if (end > max_size_) throw FrameTooLarge(end, max_size_);
      return Frame{0, end, delimiter_.size()};
    }
    case Kind::length_prefixed: {
      auto header = static_cast<size_t>(prefix_size_);
      if (data.size() < header) return std::nullopt;
      uint64_t length = 0;
      for (size_t i = 0; i < header; ++i) {
        auto byte = static_cast<uint8_t>(data[big_endian_ ? i : header - 1 - i]);
        length = (length << 8) | byte;
      }
      if (length > max_size_) throw FrameTooLarge(length, max_size_);
      if (data.size() - header < length) return std::nullopt;
      return Frame{header, static_cast<size_t>(length), 0};
    }
  }
  return std::nullopt;
}

void Framing::check_message(std::string_view message) const {
  if (message.size() > max_size_) throw FrameTooLarge(message.size(), max_size_);
  if (kind_ == Kind::delimited && message.find(delimiter_) != std::string_view::npos)
    throw InvalidArgument("message contains the delimiter, so it would arrive as two messages");
  auto header = static_cast<size_t>(prefix_size_);
  if (kind_ == Kind::length_prefixed && header < 8 && message.size() >> (8 * header) != 0)
    throw InvalidArgument("message of " + std::to_string(message.size()) + " bytes does not fit a " +
                          std::to_string(header) + "-byte length prefix");
}

size_t Framing::write_header(size_t payload_size, char* out) const {
  if (kind_ != Kind::length_prefixed) return 0;
  auto header = static_cast<size_t>(prefix_size_);
  uint64_t length = payload_size;
  for (size_t i = 0; i < header; ++i) {
    out[big_endian_ ? header - 1 - i : i] = static_cast<char>(length & 0xff);
    length >>= 8;
  }
  return header;
}

std::string Framing::encode(std::string_view message) const {
  check_message(message);
  char header[kMaxHeader];
  std::string wire(header, write_header(message.size(), header));
  wire.append(message);
  return wire.append(trailer());
}

}  // namespace socketeer
