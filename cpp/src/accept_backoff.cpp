#include "socketeer/accept_backoff.hpp"

#include <cerrno>
#include <utility>

namespace socketeer {

AcceptBackoff::Action AcceptBackoff::classify(int code) noexcept {
  switch (code) {
    case ECONNABORTED:
    case EINTR:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case ETIMEDOUT:
      return Action::retry;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      return Action::pause;
    default:
      return Action::fatal;
  }
}

AcceptBackoff::Action AcceptBackoff::failed(int code) noexcept {
  Action action = classify(code);
  if (action == Action::pause) ++pauses_;
  return action;
}

unsigned AcceptBackoff::succeeded() noexcept { return std::exchange(pauses_, 0); }

}  // namespace socketeer
