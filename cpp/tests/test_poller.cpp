#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "socketeer/poller.hpp"
#include "socketeer/timer.hpp"
#include "socketeer/waker.hpp"
#include "testing.hpp"

using namespace socketeer;
using namespace std::chrono_literals;

namespace {

struct Pair {
  Fd a, b;
  Pair() {
    int fds[2];
    check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), "socketpair");
    a.reset(fds[0]);
    b.reset(fds[1]);
  }
};

void send_byte(const Fd& fd) { check(::send(fd.get(), "x", 1, MSG_NOSIGNAL), "send"); }

std::vector<Event> poll_now(Poller& poller) {
  auto events = poller.poll(0ns);
  return {events.begin(), events.end()};
}

uint32_t events_for(Poller& poller, int fd) {
  for (const Event& event : poller.poll(0ns))
    if (event.fd == fd) return event.events;
  return 0;
}

}  // namespace

TEST(readable_and_writable) {
  Poller poller;
  Pair pair;
  CHECK(poller.add(pair.a.get(), Ready::readable | Ready::writable));
  CHECK_EQ(events_for(poller, pair.a.get()), Ready::writable);
  send_byte(pair.b);
  CHECK_EQ(events_for(poller, pair.a.get()), Ready::readable | Ready::writable);
  CHECK_EQ(poller.size(), 1u);
}

TEST(level_repeats_edge_does_not) {
  Poller poller;
  Pair level, edge;
  poller.add(level.a.get(), Ready::readable);
  poller.add(edge.a.get(), Ready::readable, Mode::edge);
  send_byte(level.b);
  send_byte(edge.b);
  CHECK_EQ(poll_now(poller).size(), 2u);
  auto again = poll_now(poller);
  CHECK_EQ(again.size(), 1u);
  CHECK_EQ(again[0].fd, level.a.get());
  send_byte(edge.b);  // a new arrival is a new edge, though the fd was never drained
  CHECK_EQ(events_for(poller, edge.a.get()), Ready::readable);
}

TEST(oneshot_is_disarmed_until_modify) {
  Poller poller;
  Pair pair;
  poller.add(pair.a.get(), Ready::readable, Mode::oneshot);
  send_byte(pair.b);
  CHECK_EQ(events_for(poller, pair.a.get()), Ready::readable);
  CHECK_EQ(events_for(poller, pair.a.get()), 0u);
  poller.modify(pair.a.get(), Ready::readable);  // same interest re-arms; mode kept
  CHECK_EQ(events_for(poller, pair.a.get()), Ready::readable);
  CHECK_EQ(poller.registration(pair.a.get())->mode, Mode::oneshot);
}

TEST(modify_changes_are_coalesced) {
  Poller poller;
  Pair pair;
  poller.add(pair.a.get(), Ready::readable);
  send_byte(pair.b);
  poller.modify(pair.a.get(), Ready::writable);
  poller.modify(pair.a.get(), Ready::readable | Ready::writable);
  poller.modify(pair.a.get(), Ready::writable);
  CHECK_EQ(events_for(poller, pair.a.get()), Ready::writable);
  // A change undone in the same turn never reaches the kernel: on a closed fd it would fail.
  Fd keep = dup_cloexec(pair.a.get());
  int number = pair.a.release();
  ::close(number);
  poller.modify(number, Ready::readable);
  poller.modify(number, Ready::writable);
  for (const Event& event : poll_now(poller)) CHECK(!(event.events & Ready::error));
  poller.modify(number, Ready::readable);
  bool reported = false;  // the failed change is reported as an error event
  for (const Event& event : poll_now(poller)) reported |= event.fd == number && event.events == Ready::error;
  CHECK(reported);
  CHECK(poller.remove(number));
}

TEST(modify_now_throws_the_kernels_refusal) {
  Poller poller;
  Pair pair;
  int number = pair.a.get();
  poller.add(number, Ready::readable);
  poller.modify(number, Ready::writable);  // queued, then overtaken by modify_now
  CHECK(poller.modify_now(number, Ready::readable));
  send_byte(pair.b);
  CHECK_EQ(events_for(poller, number), Ready::readable);
  CHECK(!poller.modify_now(pair.b.get(), Ready::readable));  // not registered
  ::close(pair.a.release());
  CHECK_THROWS_ERRNO(poller.modify_now(number, Ready::writable), EBADF);
  CHECK(poller.remove(number));
  Pair other;
  number = other.a.get();
  poller.add(number, Ready::readable);
  ::close(other.a.release());
  Waker reused;  // takes the lowest free number: the one just closed
  CHECK_EQ(reused.fd(), number);
  CHECK_THROWS_ERRNO(poller.modify_now(number, Ready::writable), ENOENT);
  reused.wake();
  CHECK_THROWS_ERRNO(poller.modify_now(number, Ready::readable), ENOENT);  // lost: never an ADD
  CHECK_EQ(poll_now(poller).size(), 0u);  // so the reused number is not watched for the old owner
  CHECK(!poller.add(reused.fd(), Ready::readable));  // the failed registration stays until remove()
  CHECK(poller.remove(number));
  CHECK(poller.add(reused.fd(), Ready::readable));
  reused.wake();
  CHECK_EQ(events_for(poller, reused.fd()), Ready::readable);
  CHECK(poller.remove(reused.fd()));
}

// Comment 6 of poller_epoll.cpp: a deferred change the kernel refuses is one error event, and the
// lost registration is never put back in the kernel, where it would watch the fd's next owner.
TEST(a_refused_change_never_registers_the_fds_next_owner) {
  for (uint32_t mode : {Mode::level, Mode::exclusive}) {  // MOD, and the DEL + ADD of comment 5
    Poller poller;
    Pair pair;
    int number = pair.a.get();
    poller.add(number, Ready::readable, mode);
    ::close(pair.a.release());
    Waker reused;  // takes the lowest free number: the one just closed
    CHECK_EQ(reused.fd(), number);
    reused.wake();  // the next owner is readable: any registration of it would show
    if (mode == Mode::level)
      poller.modify(number, Ready::readable | Ready::writable);  // an epoll_ctl(MOD)
    else
      poller.modify(number, Ready::readable, Mode::level);  // a DEL, then an ADD
    auto events = poll_now(poller);
    CHECK_EQ(events.size(), 1u);
    CHECK_EQ(events[0].fd, number);
    CHECK_EQ(events[0].events, Ready::error);
    try {
      poller.modify(number, Ready::readable | Ready::writable);
      FAIL_AT("a change of a lost registration was accepted");
    } catch (const Error& error) {
      CHECK_EQ(error.code_value(), ENOENT);
      CHECK_EQ(error.context(), std::string(mode ? "epoll_ctl(DEL)" : "epoll_ctl(MOD)") + " fd " + std::to_string(number));
    }
    CHECK_THROWS_ERRNO(poller.modify_now(number, Ready::readable), ENOENT);
    CHECK_EQ(poll_now(poller).size(), 0u);
    CHECK(poller.remove(number));
    CHECK(poller.add(number, Ready::readable));  // the next owner, registered by its own add()
    CHECK_EQ(events_for(poller, number), Ready::readable);
  }
}

TEST(a_lost_registration_reports_nothing_more) {
  Poller poller;
  Pair pair;
  int number = pair.a.get();
  poller.add(number, Ready::readable);
  Fd keep = dup_cloexec(number);  // keeps the file, and so its registration in the kernel
  ::close(pair.a.release());
  poller.modify(number, Ready::readable | Ready::writable);
  CHECK_EQ(events_for(poller, number), Ready::error);  // EBADF
  send_byte(pair.b);  // the old file turns readable under its old registration
  CHECK_EQ(poll_now(poller).size(), 0u);
  CHECK_THROWS_ERRNO(poller.modify(number, Ready::readable), EBADF);
  CHECK(poller.remove(number));
}

TEST(registration_errors) {
  Poller poller;
  Pair pair;
  CHECK_THROWS_AS(poller.add(-1, Ready::readable), InvalidArgument);
  CHECK_THROWS_AS(poller.add(pair.a.get(), 64), InvalidArgument);
  CHECK_THROWS_AS(poller.add(pair.a.get(), Ready::readable, 8), InvalidArgument);
  CHECK_THROWS_AS(poller.add(pair.a.get(), Ready::readable, Mode::exclusive | Mode::oneshot), InvalidArgument);
  CHECK_THROWS_AS(poller.add(pair.a.get(), Ready::priority, Mode::exclusive), InvalidArgument);
  CHECK(poller.add(pair.a.get(), Ready::readable));
  CHECK(!poller.add(pair.a.get(), Ready::readable));
  CHECK_THROWS_AS(poller.modify(pair.a.get(), Ready::error), InvalidArgument);
  CHECK(!poller.modify(pair.b.get(), Ready::readable));
  CHECK(!poller.remove(pair.b.get()));
  CHECK(!poller.remove(-1));
  CHECK(!poller.registration(pair.b.get()));
  CHECK(poller.remove(pair.a.get()));
  CHECK_EQ(poller.size(), 0u);
  int closed = pair.b.release();
  ::close(closed);
  CHECK_THROWS_ERRNO(poller.add(closed, Ready::readable), EBADF);
  Fd file(check(::open("/proc/self/status", O_RDONLY | O_CLOEXEC), "open"));
  CHECK_THROWS_ERRNO(poller.add(file.get(), Ready::readable), EPERM);
  CHECK_EQ(poller.size(), 0u);
}

TEST(remove_after_close_is_quiet_and_stale_events_are_dropped) {
  Poller poller;
  Pair pair;
  int number = pair.a.get();
  poller.add(number, Ready::readable);
  Fd keep = dup_cloexec(number);  // keeps the open file description, and so its registration
  ::close(pair.a.release());
  CHECK(poller.remove(number));  // EBADF from the kernel, swallowed
  send_byte(pair.b);             // the lost registration is now readable under the old number
  Waker reused;                  // takes the lowest free number: the one just closed
  CHECK_EQ(reused.fd(), number);
  CHECK(poller.add(reused.fd(), Ready::readable));
  CHECK_EQ(poll_now(poller).size(), 0u);  // nothing from the old file under the new number
  reused.wake();
  CHECK_EQ(events_for(poller, reused.fd()), Ready::readable);
  poller.remove(reused.fd());
}

TEST(tokens_come_back_with_events) {
  Poller poller;
  Pair with, without;
  CHECK(poller.add(with.a.get(), Ready::readable, Mode::edge, 0x1234'5678'9abc'def0));
  CHECK(poller.add(without.a.get(), Ready::readable));  // the old call: token 0
  CHECK_EQ(poller.registration(with.a.get())->token, 0x1234'5678'9abc'def0u);
  CHECK_EQ(poller.registration(without.a.get())->token, 0u);
  send_byte(with.b);
  send_byte(without.b);
  auto events = poll_now(poller);
  CHECK_EQ(events.size(), 2u);
  for (const Event& event : events)
    CHECK_EQ(event.token, event.fd == with.a.get() ? 0x1234'5678'9abc'def0u : 0u);
  // A change keeps the token, and so does the error event of a change the kernel refuses.
  poller.modify(with.a.get(), Ready::readable | Ready::writable);
  CHECK(events_for(poller, with.a.get()) & Ready::writable);
  int number = with.a.get();
  Fd keep = dup_cloexec(number);
  ::close(with.a.release());
  poller.modify(number, Ready::readable);
  int errors = 0;
  for (const Event& event : poll_now(poller)) {
    if (event.fd != number) continue;
    ++errors;
    CHECK_EQ(event.events, Ready::error);
    CHECK_EQ(event.token, 0x1234'5678'9abc'def0u);
  }
  CHECK_EQ(errors, 1);
  poller.remove(number);
}

// Comment 7 of poller_epoll.cpp: handling one event of a batch removes and closes another fd
// whose event is further down, and its number is reused and added with a new token before that
// event's turn: it must not be handed out, under the old token or the new one.
TEST(a_removal_invalidates_the_fds_events_left_in_the_batch) {
  Poller poller;
  Pair first, second;
  constexpr uint64_t kFirst = 0x10, kSecond = 0x20, kReused = 0x30;
  poller.add(first.a.get(), Ready::readable, Mode::level, kFirst);
  poller.add(second.a.get(), Ready::readable, Mode::level, kSecond);
  send_byte(first.b);
  send_byte(second.b);  // epoll reports in the order of readiness: first, then second
  int number = second.a.get();
  Pair reuse;
  std::vector<uint64_t> seen;
  auto events = poller.poll(0ns);
  CHECK_EQ(events.size(), 2u);
  for (const Event& event : events) {
    if (event.fd < 0) {
      CHECK_EQ(event.token, 0u);
      CHECK_EQ(event.events, 0u);
      continue;
    }
    seen.push_back(event.token);
    if (event.token != kFirst) continue;
    CHECK(poller.remove(number));
    second.a.reset();
    CHECK_EQ(::dup3(reuse.a.get(), number, O_CLOEXEC), number);  // the number's next owner
    send_byte(reuse.b);
    CHECK(poller.add(number, Ready::readable, Mode::level, kReused));
  }
  CHECK_EQ(seen.size(), 1u);
  CHECK_EQ(seen[0], kFirst);
  // The new registration reports itself from the next poll on, under its own token.
  bool reported = false;
  for (const Event& event : poller.poll(0ns))
    if (event.fd == number) reported = event.token == kReused;
  CHECK(reported);
  poller.remove(number);
  ::close(number);
}

// What a registration remembers of its last event (its index in a batch) must not reach into a
// later batch where that index holds another fd's event.
TEST(a_removal_leaves_the_other_fds_events_alone) {
  Poller poller;
  Pair first, second;
  poller.add(first.a.get(), Ready::readable, Mode::level, 1);
  poller.add(second.a.get(), Ready::readable, Mode::level, 2);
  send_byte(first.b);
  send_byte(second.b);
  CHECK_EQ(poll_now(poller).size(), 2u);  // first's event at index 0, second's at 1
  char byte;
  CHECK_EQ(::recv(first.a.get(), &byte, 1, 0), 1);
  auto events = poller.poll(0ns);  // second's event alone, at index 0
  CHECK_EQ(events.size(), 1u);
  CHECK(poller.remove(first.a.get()));
  CHECK_EQ(events[0].fd, second.a.get());
  CHECK_EQ(events[0].token, 2u);
}

// The batch belongs to the thread that polled: a removal from another thread leaves it alone
// (the polling thread reads it without a lock).
TEST(a_removal_from_another_thread_leaves_the_batch_alone) {
  Poller poller;
  Pair pair;
  poller.add(pair.a.get(), Ready::readable, Mode::level, 7);
  send_byte(pair.b);
  auto events = poller.poll(0ns);
  std::thread([&] { poller.remove(pair.a.get()); }).join();
  CHECK_EQ(events.size(), 1u);
  CHECK_EQ(events[0].fd, pair.a.get());
  CHECK_EQ(events[0].token, 7u);
}

TEST(hangup_error_and_read_closed) {
  Poller poller;
  Pair half, full;
  poller.add(half.a.get(), Ready::read_closed);
  poller.add(full.a.get(), 0);  // no interest: hangup is reported anyway
  check(::shutdown(half.b.get(), SHUT_WR), "shutdown");
  full.b.reset();
  CHECK_EQ(events_for(poller, half.a.get()), Ready::read_closed);
  uint32_t events = events_for(poller, full.a.get());
  CHECK(events & Ready::hangup);
  CHECK(events & Ready::read_closed);
}

TEST(exclusive_registration_can_be_modified) {
  Poller poller;
  Pair pair;
  poller.add(pair.a.get(), Ready::readable, Mode::exclusive);
  poller.modify(pair.a.get(), Ready::writable);
  CHECK_EQ(events_for(poller, pair.a.get()), Ready::writable);
  poller.modify(pair.a.get(), Ready::readable, Mode::level);
  send_byte(pair.b);
  CHECK_EQ(events_for(poller, pair.a.get()), Ready::readable);
  CHECK_EQ(poller.registration(pair.a.get())->mode, Mode::level);
}

TEST(wake_from_another_thread) {
  Poller poller;
  poller.wake();  // a wake before poll() makes it return at once, reporting nothing
  CHECK_EQ(poller.poll(10s).size(), 0u);
  auto start = Clock::now();
  std::thread waker([&] {
    std::this_thread::sleep_for(20ms);
    poller.wake();
  });
  CHECK_EQ(poller.poll(std::nullopt).size(), 0u);
  waker.join();
  CHECK(Clock::now() - start < 5s);
}

TEST(close_while_polling_in_another_thread) {
  Poller poller;
  std::thread closer([&] {
    std::this_thread::sleep_for(20ms);
    poller.close();
  });
  poller.poll(std::nullopt);
  closer.join();
  CHECK(poller.closed());
  CHECK_THROWS_AS(poller.poll(0ns), InvalidArgument);
  CHECK_THROWS_AS(poller.wake(), InvalidArgument);
  poller.close();  // idempotent
}

TEST(timeouts_are_rounded_up) {
  Poller poller;
  auto start = Clock::now();
  poller.poll(1us);  // one whole millisecond, not a busy zero
  CHECK(Clock::now() - start >= 1ms);
}

TEST(timers_are_ordinary_events) {
  Poller poller;
  Timer once, periodic;
  poller.add(once.fd(), Ready::readable);
  poller.add(periodic.fd(), Ready::readable);
  CHECK_EQ(once.expirations(), 0u);
  once.arm(0ns);
  periodic.arm(1ms, 1ms);
  CHECK(periodic.setting().interval == 1ms);
  int seen_once = 0, seen_periodic = 0;
  while (seen_periodic < 3) {
    for (const Event& event : poller.poll(1s)) {
      if (event.fd == once.fd()) seen_once += static_cast<int>(once.expirations());
      if (event.fd == periodic.fd()) seen_periodic += static_cast<int>(periodic.expirations());
    }
  }
  CHECK_EQ(seen_once, 1);
  periodic.disarm();
  CHECK(periodic.setting().remaining == 0ns);
  CHECK_THROWS_AS(once.arm(1ms, -1ms), InvalidArgument);
  once.close();
  CHECK_THROWS_AS(once.expirations(), InvalidArgument);
}

TEST(waker_counts) {
  Waker waker;
  CHECK_EQ(waker.drain(), 0u);
  waker.wake();
  waker.wake();
  CHECK_EQ(waker.drain(), 2u);
}

TEST(every_fd_is_cloexec) {
  Poller poller;
  Timer timer;
  Waker waker;
  for (int fd : {poller.fd(), timer.fd(), waker.fd()}) CHECK(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

int main() { return socketeer::testing::run_all(); }
