// Socket: timeouts (and what their errors name), would-block results, close() racing calls
// blocked in other threads, recv_fds truncation, send_all over partial writes.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "socketeer/interrupt.hpp"
#include "socketeer/socket.hpp"
#include "testing.hpp"

using namespace socketeer;
using namespace std::chrono_literals;

namespace {

Address loopback() { return InetAddress("127.0.0.1", 0); }

Socket listener() {
  Socket sock(AF_INET, SOCK_STREAM);
  sock.bind(loopback());
  sock.listen(16);
  return sock;
}

struct TcpPair {
  Socket server = listener();
  Socket client{AF_INET, SOCK_STREAM};
  Socket accepted{AF_INET, SOCK_STREAM};
  TcpPair() {
    client.connect(server.local_address());
    accepted = std::move(server.accept()->first);
  }
};

size_t open_fds() {
  size_t count = 0;
  for ([[maybe_unused]] auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++count;
  return count;
}

bool fd_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// The error a call threw, or a failure if it threw none.
template <typename Call>
Error error_from(Call&& call) {
  try {
    call();
  } catch (const Error& error) {
    return error;
  }
  FAIL_AT("no error");
}

// Runs call() in a thread and records the errno of the Error it ends with (0: it returned).
class Blocked {
 public:
  template <typename Call>
  explicit Blocked(Call call)
      : thread_([this, call] {
          tid_ = ::gettid();
          try {
            call();
          } catch (const Error& error) {
            operation_ = error.operation();
            code_ = error.code_value();
          }
          done_ = true;
        }) {
    // Blocked = asleep in the kernel (state S in /proc), which only the socket call puts it in.
    // Not failing here if it never gets there: a call that registers after close() began gets
    // EBADF at once, which the test checks all the same.
    for (auto end = Clock::now() + 10s; Clock::now() < end && !done_;) {
      if (tid_ && state() == 'S') return;
      std::this_thread::yield();
    }
  }
  ~Blocked() {
    if (thread_.joinable()) thread_.join();
  }

  // Waits (bounded) for the call to end; its errno.
  int finish() {
    for (auto end = Clock::now() + 10s; Clock::now() < end && !done_;) std::this_thread::sleep_for(1ms);
    if (!done_) FAIL_AT("the blocked call did not end");
    thread_.join();
    return code_;
  }
  const std::string& operation() const { return operation_; }
  pthread_t handle() { return thread_.native_handle(); }

 private:
  char state() const {
    std::ifstream stat("/proc/self/task/" + std::to_string(tid_.load()) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), {});
    auto paren = text.rfind(')');
    return paren == std::string::npos || paren + 2 >= text.size() ? '?' : text[paren + 2];
  }

  std::atomic<pid_t> tid_{0};
  std::atomic<bool> done_{false};
  std::string operation_;
  int code_ = 0;
  std::thread thread_;
};

}  // namespace

// --- timeouts and would-block -------------------------------------------------------------------

TEST(timeout_names_the_operation_and_the_peer) {
  TcpPair tcp;
  tcp.client.set_timeout(20ms);
  char buffer[16];
  try {
    tcp.client.recv(buffer, sizeof buffer);
    FAIL_AT("no timeout");
  } catch (const TimedOut& error) {
    CHECK_EQ(error.operation(), std::string("recv"));
    CHECK_EQ(error.target(), "from " + to_string(tcp.server.local_address()));
    CHECK_EQ(error.reason(), std::string("timed out"));
  }
}

TEST(accept_timeout_names_the_listening_address) {
  Socket server = listener();
  server.set_timeout(20ms);
  try {
    server.accept();
    FAIL_AT("no timeout");
  } catch (const TimedOut& error) {
    CHECK_EQ(error.context(), "accept on " + to_string(server.local_address()));
  }
}

TEST(a_timeout_covers_the_whole_send_all) {
  auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM);
  a.set_timeout(50ms);
  std::string big(16 << 20, 'x');
  auto start = Clock::now();
  CHECK_THROWS_AS(a.send_all(big.data(), big.size()), TimedOut);
  CHECK(Clock::now() - start < 5s);
}

TEST(would_block_is_a_result_not_an_error) {
  auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK);
  char buffer[16];
  CHECK(!a.recv(buffer, sizeof buffer));
  CHECK(!a.recv_now(buffer, sizeof buffer));
  Socket server = listener();
  server.set_timeout(0ns);
  CHECK(!server.accept());
  std::string chunk(1 << 16, 'x');
  size_t sent = 0;
  while (auto n = a.send(chunk.data(), chunk.size())) sent += *n;  // until the buffer is full
  CHECK(sent > 0);
  CHECK(!a.send_now("x", 1));
  CHECK_THROWS_ERRNO(a.send_all(chunk.data(), chunk.size()), EAGAIN);  // non-blocking: what fits, then EAGAIN
}

TEST(send_all_goes_on_over_partial_writes) {
  auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM);
  std::string sent(8 << 20, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 7 + i / 4096);
  std::string received;
  std::thread reader([&, &b = b] {
    char buffer[1000];  // small reads: the sender's writes are cut short again and again
    while (received.size() < sent.size()) received.append(buffer, *b.recv(buffer, sizeof buffer));
  });
  a.send_all(sent.data(), sent.size());
  reader.join();
  CHECK(received == sent);
}

// --- close() racing a blocked call ------------------------------------------------------------

TEST(close_wakes_a_recv_with_a_timeout_and_it_raises_ebadf) {
  auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM);
  a.set_timeout(5s);
  char buffer[16];
  Blocked blocked([&, &a = a] { a.recv(buffer, sizeof buffer); });
  a.close();
  CHECK(a.closed() && a.fd() == -1);
  CHECK_EQ(blocked.finish(), EBADF);
  CHECK_EQ(blocked.operation(), std::string("recv"));
}

TEST(close_wakes_calls_blocked_in_the_kernel) {
  {
    auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM);  // a blocking fd: recv sleeps in the kernel
    char buffer[16];
    Blocked blocked([&, &a = a] { a.recv(buffer, sizeof buffer); });
    a.close();
    CHECK_EQ(blocked.finish(), EBADF);
  }
  {
    Socket server = listener();
    Blocked blocked([&] { server.accept(); });
    server.close();
    CHECK_EQ(blocked.finish(), EBADF);
  }
  {
    Socket udp(AF_INET, SOCK_DGRAM);  // unconnected: shutdown fails with ENOTCONN, yet wakes it
    udp.bind(loopback());
    char buffer[16];
    Blocked blocked([&] { udp.recv_from(buffer, sizeof buffer); });
    udp.close();
    CHECK_EQ(blocked.finish(), EBADF);
  }
  {
    auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM);
    std::string big(32 << 20, 'x');
    Blocked blocked([&, &a = a] { a.send_all(big.data(), big.size()); });
    a.close();
    CHECK_EQ(blocked.finish(), EBADF);
  }
}

TEST(wait_raises_ebadf_naming_its_operation) {
  auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM);
  Blocked blocked([&, &a = a] { a.wait(POLLIN, std::nullopt, "recv_until"); });
  a.close();
  CHECK_EQ(blocked.finish(), EBADF);
  CHECK_EQ(blocked.operation(), std::string("recv_until"));
}

TEST(a_call_after_close_raises_ebadf_at_once) {
  auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM);
  a.set_timeout(5s);
  a.close();
  char buffer[4];
  Error error = error_from([&, &a = a] { a.recv(buffer, sizeof buffer); });
  CHECK_EQ(error.code_value(), EBADF);
  CHECK_EQ(error.reason(), std::string("socket is closed"));
  CHECK_THROWS_ERRNO(a.wait(POLLIN, 1s), EBADF);
  a.close();  // idempotent
}

TEST(detach_is_refused_while_a_call_waits_and_works_after) {
  auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM);
  a.set_timeout(5s);
  char buffer[16];
  Blocked blocked([&, &a = a] { a.recv(buffer, sizeof buffer); });
  CHECK_THROWS_ERRNO(a.detach(), EBUSY);
  CHECK_THROWS_ERRNO(Socket::take(a), EBUSY);
  CHECK(!a.closed());
  b.send_all("x", 1);
  CHECK_EQ(blocked.finish(), 0);
  Fd fd = a.detach();
  CHECK(fd.valid() && a.closed());
}

// Deterministic: the blocked call's thread gets a signal; after EINTR the core runs the
// interrupt hook inside the call, and the hook holds the thread there while the main thread
// closes the socket and tries to get its fd number. Only when the call has left may it be free.
namespace {
std::atomic<int> hook_stage{0};  // 1: the hook is running; 2: the main thread is done checking
void hold_in_hook() {
  hook_stage = 1;
  while (hook_stage != 2) std::this_thread::yield();
}
}  // namespace

TEST(the_fd_number_stays_taken_until_the_blocked_call_leaves) {
  struct sigaction action {};
  action.sa_handler = [](int) {};  // no SA_RESTART: the blocked recv returns EINTR
  struct sigaction previous {};
  sigaction(SIGUSR1, &action, &previous);
  set_interrupt_hook(hold_in_hook);
  hook_stage = 0;
  auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM);
  int number = a.fd();
  char buffer[16];
  Blocked blocked([&, &a = a] { a.recv(buffer, sizeof buffer); });
  struct Release {  // lets the call go even when a check fails (before `blocked` joins it)
    struct sigaction previous;
    ~Release() {
      hook_stage = 2;
      set_interrupt_hook(nullptr);
      sigaction(SIGUSR1, &previous, nullptr);
    }
  } release{previous};
  for (auto end = Clock::now() + 10s; hook_stage != 1 && Clock::now() < end;) {
    pthread_kill(blocked.handle(), SIGUSR1);
    std::this_thread::sleep_for(1ms);
  }
  CHECK_EQ(hook_stage.load(), 1);
  a.close();
  CHECK(fd_open(number));  // still ours: the call is in flight
  Socket other(AF_UNIX, SOCK_STREAM);
  CHECK(other.fd() != number);
  hook_stage = 2;
  CHECK_EQ(blocked.finish(), EBADF);
  CHECK(!fd_open(number));  // closed as the call left
}

TEST(many_threads_racing_close_leak_nothing) {
  size_t before = open_fds();
  for (int round = 0; round < 200; ++round) {
    auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM);
    a.set_timeout(round % 2 ? Timeout(5s) : Timeout());
    std::atomic<int> ended{0};
    std::thread readers[3];
    for (auto& reader : readers)
      reader = std::thread([&, &a = a] {
        char buffer[8];
        try {
          while (a.recv(buffer, sizeof buffer)) {
          }
        } catch (const Error& error) {
          if (error.code_value() != EBADF) std::abort();
        }
        ++ended;
      });
    b.send_all("abc", 3);
    a.close();
    for (auto& reader : readers) reader.join();
    CHECK_EQ(ended.load(), 3);
  }
  CHECK_EQ(open_fds(), before);
}

// --- recv_fds -----------------------------------------------------------------------------------

TEST(recv_fds_never_returns_more_than_max_fds) {
  for (size_t max_fds : {1u, 3u, 5u}) {
    auto [a, b] = Socket::pair(AF_UNIX, SOCK_STREAM);
    std::vector<int> fds(max_fds + 1, a.fd());
    a.send_fds("x", 1, fds, 0, std::nullopt);
    size_t before = open_fds();
    char buffer[4];
    Error error = error_from([&, &b = b] { b.recv_fds(buffer, sizeof buffer, max_fds); });
    CHECK_EQ(error.code_value(), EMSGSIZE);
    CHECK_EQ(open_fds(), before);  // the fds that did arrive were closed
    fds.pop_back();
    a.send_fds("y", 1, fds, 0, std::nullopt);
    auto received = b.recv_fds(buffer, sizeof buffer, max_fds);
    CHECK_EQ(received->fds.size(), max_fds);
  }
}

TEST(recv_fds_truncated_by_the_kernel_closes_what_arrived) {
  auto [a, b] = Socket::pair(AF_UNIX, SOCK_DGRAM);
  std::vector<int> fds(9, a.fd());
  a.send_fds("x", 1, fds, 0, std::nullopt);
  size_t before = open_fds();
  char buffer[4];
  Error error = error_from([&, &b = b] { b.recv_fds(buffer, sizeof buffer, 2); });
  CHECK_EQ(error.code_value(), EMSGSIZE);
  CHECK(std::string(error.reason()).find("MSG_CTRUNC") != std::string::npos);
  CHECK_EQ(open_fds(), before);
}

int main() { return socketeer::testing::run_all(); }
