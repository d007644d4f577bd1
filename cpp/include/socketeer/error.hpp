// Errors: every failing syscall becomes a socketeer::Error (a std::system_error) thrown by
// check(). It carries the operation and, where there is one, the address involved, so the
// Python layer can say "connect to 127.0.0.1:1: [Errno 111] Connection refused".
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

namespace socketeer {

class Error : public std::system_error {
 public:
  Error(int code, std::string operation, std::string target = {}, std::string reason = {});
  int code_value() const noexcept { return code().value(); }
  // strerror(code), unless a more precise reason was given ("timed out").
  std::string reason() const;
  const std::string& operation() const noexcept { return operation_; }
  const std::string& target() const noexcept { return target_; }
  // "connect to 127.0.0.1:1" or just "connect".
  std::string context() const;

 private:
  std::string operation_;
  std::string target_;
  std::string reason_;
};

// The deadline of a socket timeout passed (not the kernel's own ETIMEDOUT): a type of its own,
// so callers can tell the two apart (connect_ex answers EWOULDBLOCK for it, as CPython does).
class TimedOut : public Error {
 public:
  using Error::Error;
};

// Throws TimedOut: errno ETIMEDOUT, reason "timed out" (the stdlib's), naming the operation and,
// where there is one, the address ("recv from 127.0.0.1:5000", "accept on ...").
[[noreturn]] void throw_timeout(std::string_view operation, std::string_view target = {});

// A mistake in a value the caller passed (a malformed address, an out-of-range port): the
// Python layer raises ValueError for it.
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

[[noreturn]] void throw_error(int code, std::string_view operation, std::string_view target = {});

// Turns a -1 return into an Error built from errno; returns the value otherwise.
template <typename T>
inline T check(T ret, std::string_view operation, std::string_view target = {}) {
  if (ret < 0) [[unlikely]]
    throw_error(errno, operation, target);
  return ret;
}

// Like check(), but the target is only formatted when the call failed.
template <typename T, typename Describe>
inline T check_with(T ret, std::string_view operation, const Describe& describe_target) {
  if (ret < 0) [[unlikely]] {
    int code = errno;
    throw_error(code, operation, describe_target());
  }
  return ret;
}

}  // namespace socketeer
