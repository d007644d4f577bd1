// SigpipeGuard and the calls that need it, with SIGPIPE at its default action (death): a test that
// fails here ends the whole program, which ctest reports.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "socketeer/sigpipe.hpp"
#include "socketeer/socket.hpp"
#include "testing.hpp"

using namespace socketeer;

namespace {

bool sigpipe_blocked() {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, SIGPIPE);
}

bool sigpipe_pending() {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, SIGPIPE);
}

// A file of `size` bytes, already unlinked.
Fd temporary_file(size_t size) {
  char path[] = "/tmp/socketeer-sigpipe-XXXXXX";
  Fd file(check(::mkostemp(path, O_CLOEXEC), "mkostemp"));
  ::unlink(path);
  std::string data(size, 'x');
  check(::write(file.get(), data.data(), data.size()), "write");
  return file;
}

// A unix stream socket whose peer is closed: every write is EPIPE (and SIGPIPE without a flag).
Socket orphan() {
  auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM);
  b.close();
  return std::move(a);
}

struct DefaultSigpipe {  // whatever the test runner set, these tests need the default action
  struct sigaction old {};
  DefaultSigpipe() {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, &old);
  }
  ~DefaultSigpipe() { sigaction(SIGPIPE, &old, nullptr); }
};

}  // namespace

TEST(send_file_to_a_closed_peer_throws_epipe_and_the_process_lives) {
  DefaultSigpipe dfl;
  Fd file = temporary_file(100'000);
  Socket socket = orphan();
  CHECK_THROWS_ERRNO(socket.send_file(file.get(), 0, 100'000), EPIPE);
  CHECK_THROWS_ERRNO(socket.send_file(file.get(), 0, 100'000), EPIPE);
  CHECK(!sigpipe_blocked());  // the mask is as it was
  CHECK(!sigpipe_pending());  // and nothing is left waiting
}

TEST(send_file_sends_from_the_offset_and_leaves_the_file_position) {
  Fd file = temporary_file(1000);
  auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM);
  auto sent = a.send_file(file.get(), 990, 100);
  CHECK(sent && *sent == 10);
  CHECK_EQ(::lseek(file.get(), 0, SEEK_CUR), 1000);  // write() left it at the end; sendfile did not move it
  char buffer[32];
  CHECK_EQ(b.recv_now(buffer, sizeof buffer).value_or(0), 10u);
  auto at_end = a.send_file(file.get(), 1000, 100);
  CHECK(at_end && *at_end == 0);
}

TEST(send_file_of_a_bad_fd_names_sendfile) {
  Socket socket = orphan();
  try {
    socket.send_file(-1, 0, 1);
    FAIL_AT("no error");
  } catch (const Error& error) {
    CHECK_EQ(error.code_value(), EBADF);
    CHECK_EQ(error.operation(), std::string("sendfile"));
  }
}

TEST(guards_nest_and_only_the_outermost_touches_the_mask) {
  CHECK(!sigpipe_blocked());
  {
    SigpipeGuard outer;
    CHECK(sigpipe_blocked());
    {
      SigpipeGuard inner;
      CHECK(sigpipe_blocked());
    }
    CHECK(sigpipe_blocked());  // the inner one did not unblock it under the outer one
  }
  CHECK(!sigpipe_blocked());
}

TEST(a_thread_that_blocks_sigpipe_itself_keeps_it_blocked) {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  { SigpipeGuard guard; }
  CHECK(sigpipe_blocked());
  pthread_sigmask(SIG_UNBLOCK, &pipe, nullptr);
}

TEST(a_sigpipe_pending_before_the_guard_is_not_taken) {
  DefaultSigpipe dfl;
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  pthread_kill(pthread_self(), SIGPIPE);  // someone else's, waiting for this thread
  CHECK(sigpipe_pending());
  {
    SigpipeGuard guard;
    Fd file = temporary_file(10);
    CHECK_THROWS_ERRNO(orphan().send_file(file.get(), 0, 10), EPIPE);  // consumes only its own
    guard.consume();  // as after another EPIPE: must leave the other SIGPIPE alone
  }
  CHECK(sigpipe_pending());
  timespec zero{0, 0};
  CHECK_EQ(sigtimedwait(&pipe, nullptr, &zero), SIGPIPE);  // take it back before unblocking
  pthread_sigmask(SIG_UNBLOCK, &pipe, nullptr);
}

TEST(consume_keeps_errno) {
  SigpipeGuard guard;
  errno = EPIPE;
  guard.consume();  // nothing pending: sigtimedwait fails with EAGAIN inside
  CHECK_EQ(errno, EPIPE);
}

int main() { return socketeer::testing::run_all(); }
