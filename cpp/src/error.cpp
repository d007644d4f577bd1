#include "socketeer/error.hpp"

#include <cstring>

namespace socketeer {

Error::Error(int code, std::string operation, std::string target, std::string reason)
    : std::system_error(code, std::generic_category(),
                        target.empty() ? operation : operation + " " + target),
      operation_(std::move(operation)),
      target_(std::move(target)),
      reason_(std::move(reason)) {}

std::string Error::context() const {
  return target_.empty() ? operation_ : operation_ + " " + target_;
}

std::string Error::reason() const {
  return reason_.empty() ? std::string(std::strerror(code_value())) : reason_;
}

void throw_error(int code, std::string_view operation, std::string_view target) {
  throw Error(code, std::string(operation), std::string(target));
}

void throw_timeout(std::string_view operation, std::string_view target) {
  throw TimedOut(ETIMEDOUT, std::string(operation), std::string(target), "timed out");
}

}  // namespace socketeer
