// AcceptBackoff's table (retry, pause, fatal), against accept(2)'s errno values, and the count
// of pauses in a row that lets a caller log once per shortage. The reactor obeying it under a
// real EMFILE is in tests/test_accept_backoff.py (a child process out of fds).
#include <cerrno>

#include "socketeer/accept_backoff.hpp"
#include "testing.hpp"

using namespace socketeer;
using Action = AcceptBackoff::Action;

TEST(errors_about_one_connection_are_retried) {
  for (int code : {ECONNABORTED, EINTR, EPROTO, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP,
                   ENETUNREACH, ETIMEDOUT})
    CHECK(AcceptBackoff::classify(code) == Action::retry);
}

TEST(running_out_of_resources_pauses) {
  for (int code : {EMFILE, ENFILE, ENOBUFS, ENOMEM}) CHECK(AcceptBackoff::classify(code) == Action::pause);
  CHECK(AcceptBackoff::kPause == std::chrono::milliseconds(100));
}

TEST(anything_else_is_fatal) {
  for (int code : {EBADF, EINVAL, ENOTSOCK, EFAULT, EPERM, EAGAIN, 0, -1, 99999})
    CHECK(AcceptBackoff::classify(code) == Action::fatal);
}

TEST(pauses_are_counted_until_an_accept_works) {
  AcceptBackoff backoff;
  CHECK(backoff.failed(ECONNABORTED) == Action::retry);
  CHECK_EQ(backoff.pauses(), 0u);
  CHECK(backoff.failed(EMFILE) == Action::pause);
  CHECK_EQ(backoff.pauses(), 1u);  // the first of a shortage: the one to log
  CHECK(backoff.failed(ENFILE) == Action::pause);
  CHECK(backoff.failed(ECONNABORTED) == Action::retry);
  CHECK_EQ(backoff.pauses(), 2u);
  CHECK_EQ(backoff.succeeded(), 2u);
  CHECK_EQ(backoff.pauses(), 0u);
  CHECK_EQ(backoff.succeeded(), 0u);
}

int main() { return socketeer::testing::run_all(); }
