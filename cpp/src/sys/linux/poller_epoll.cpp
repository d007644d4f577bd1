// Poller over epoll. What follows in comments is what epoll does that its man page makes easy
// to miss; each piece of code below that depends on it points back here.
//
// 1. A registration belongs to the open file description, not to the fd number.
//    epoll keys its interest set by the pair (fd number, open file description), looked up in
//    the fd table when epoll_ctl runs. Closing an fd removes the registration only when that
//    close drops the last reference to the description. dup(), fork() and SCM_RIGHTS make more
//    references, so after close(fd) the registration can live on: events keep arriving under
//    the old number, and nothing can remove them any more (epoll_ctl(DEL, fd) now looks up
//    whatever fd holds, or nothing). If the number is reused and registered again, events from
//    the old file are reported as if they came from the new one. Defences here:
//    - remove() acts at once (never deferred), so "remove, then close" always works;
//    - remove() of an fd closed first succeeds quietly (EBADF/ENOENT): the kernel dropped the
//      registration, or it is out of reach and there is nothing better to do;
//    - every kernel registration carries a generation number next to the fd (epoll_data.u64),
//      and events from a registration we no longer own are dropped instead of being misreported
//      for the new file that took the number;
//    - a change the kernel refuses is never retried as an ADD, which would register the file
//      that took the number (comment 6);
//    - oneshot mode bounds the damage of a lost level-triggered registration (trio's choice): one
//      stray report, then silence. A lost level-triggered registration on a readable file would
//      make every epoll_wait return at once; the cure is to remove before closing.
//
// 2. Edge-triggered (EPOLLET) registrations report a change, not a state. After a readable
//    event the caller must read (or accept, or recv) until EAGAIN; data left behind is not
//    reported again until more arrives. The converse surprise: edge mode is not "exactly once
//    per transition" either, as each new arrival wakes the waiters again, so a second event may
//    come while the first is still being drained. The waker relies on exactly that (below).
//
// 3. EPOLLERR and EPOLLHUP are always reported, whatever the interest (even none). A pending
//    socket error (a refused connect) is EPOLLERR until read with SO_ERROR or a failing call; a
//    socket that was never connected reports EPOLLOUT|EPOLLHUP at once. In level mode a hung-up
//    fd is reported on every poll until the caller removes or closes it. EPOLLRDHUP (peer shut
//    down its side) is reported only when asked for; hangup implies it, so read_closed is set
//    for both.
//
// 4. fork(): the child's copy of the epoll fd refers to the same epoll instance, so the two
//    processes share one interest set: a child's epoll_ctl changes the parent's registrations,
//    and an event goes to whichever process waits first. A child must not use (or remove from)
//    an inherited Poller; it should close it and make its own. The epoll fd, the waker and every
//    fd the core makes are CLOEXEC, so exec() drops them.
//
// 5. EPOLLEXCLUSIVE cannot be changed with EPOLL_CTL_MOD (EINVAL), so a change to or from an
//    exclusive registration is a DEL followed by an ADD. It accepts only EPOLLIN, EPOLLOUT and
//    EPOLLET, and not EPOLLONESHOT; those mistakes are refused before the kernel sees them.
//
// 6. A change the kernel refuses is never retried as an ADD. epoll_ctl(MOD) of a closed fd is
//    EBADF, and of a number that now names another file ENOENT (the pair (number, file now
//    behind it) was never added, comment 1). An ADD at that point would succeed: it would
//    register the number's next owner under the old registration, whose events would then be
//    reported as the old owner's, and its interest changed by the old owner's calls. So a refused
//    change loses the registration for good:
//    - it leaves the kernel's set (as far as we know), and its generation moves on, so whatever
//      the kernel may still hold for it (the file kept open by a dup, comment 1) is dropped;
//    - the refusal is reported once, at a fixed point: a deferred change by the poll() that
//      applies it, as an error event for that fd (modify() returned long before, and one bad fd
//      must not stop the loop for the others); modify_now() by throwing it;
//    - after that, every modify() and modify_now() of it throws that same refusal (errno,
//      "epoll_ctl(MOD) fd N"), since a change that can never be applied must not be accepted in
//      silence; remove() forgets it quietly, and only add() registers the number again.
//    The DEL + ADD of comment 5 keeps to this: the DEL succeeds only if the number still names
//    the file add() registered (nothing else ADDs a number to this set), so the ADD re-registers
//    that same file; a failed DEL (ENOENT or EBADF) loses the registration instead. An fd closed
//    by another thread between the two calls could still slip through, as it could between any
//    caller's check and add(): a registration must not be changed while another thread closes
//    its fd. libuv answers a refused change by abort() (uv__io_poll: only EEXIST is retried, as
//    a MOD), since its handles own their fds and uv_close() removes them first
//    (uv__platform_invalidate_fd); mio does not defer, so reregister() returns the MOD's error to
//    its caller. Neither ever ADDs on a failed MOD.
//    Not detected, here or there: an fd closed while registered, with no change pending. If that
//    close dropped the last reference, epoll forgot the registration without a word; the Poller
//    learns of it at the next modify() (lost, as above) or remove() (quiet, comment 1). Until
//    then the registration holds the number, so add() of its next owner is refused as a
//    duplicate: remove before closing.
//
// 7. A batch outlives the registrations it reports. poll() hands back every ready fd at once, and
//    the caller works them off in order; handling one may remove and close another whose event
//    is still further down the batch, and the fd number can be taken (accept, socket) and added
//    again before that event's turn comes. Keyed by fd number alone, that event would then be
//    handled as the new file's; carrying a token (a pointer to the caller's object, mio's Token,
//    libuv's uv__io_t), it would name an object that may be gone. The generation of comment 1
//    does not help: the event was collected while the registration was still ours. So remove(),
//    called by the thread that polled (between polls, while it works the batch off), invalidates
//    that fd's events still in the batch: fd -1, no bits, token 0, for the caller to skip
//    (libuv's uv__platform_invalidate_fd does the same). A remove() from another thread leaves
//    the batch alone: the polling thread reads it without the lock, and such a caller races with
//    the event's handling anyway. A batch holds at most one event per fd (epoll reports each
//    registration once per epoll_wait; a refused change's error event loses the registration, and
//    its generation drops whatever the kernel reports for it after), so each Watcher keeps the
//    index of its fd's event in the batch, and remove() invalidates it in O(1): a store per
//    event, never a scan of the batch per removal (a loop that removes most of what was ready
//    would make that quadratic).
#include <sys/epoll.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "socketeer/error.hpp"
#include "socketeer/interrupt.hpp"
#include "socketeer/nocancel.hpp"
#include "socketeer/poller.hpp"

namespace socketeer {
namespace {

// The waker's registration; user registrations carry (generation << 32) | fd with generation >= 1.
constexpr uint64_t kWakerTag = ~uint64_t{0};
// The bits EPOLLONESHOT leaves in place when it disarms a registration after one report.
constexpr uint32_t kModeBits = EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE;
constexpr size_t kMinEvents = 64;

uint32_t to_epoll(uint32_t interest, uint32_t mode) {
  uint32_t bits = 0;
  if (interest & Ready::readable) bits |= EPOLLIN;
  if (interest & Ready::writable) bits |= EPOLLOUT;
  if (interest & Ready::priority) bits |= EPOLLPRI;
  if (interest & Ready::read_closed) bits |= EPOLLRDHUP;
  if (mode & Mode::edge) bits |= EPOLLET;
  if (mode & Mode::oneshot) bits |= EPOLLONESHOT;
  if (mode & Mode::exclusive) bits |= EPOLLEXCLUSIVE;
  return bits;
}

uint32_t interest_of(uint32_t bits) {
  return ((bits & EPOLLIN) ? Ready::readable : 0) | ((bits & EPOLLOUT) ? Ready::writable : 0) |
         ((bits & EPOLLPRI) ? Ready::priority : 0) | ((bits & EPOLLRDHUP) ? Ready::read_closed : 0);
}

uint32_t mode_of(uint32_t bits) {
  return ((bits & EPOLLET) ? Mode::edge : 0) | ((bits & EPOLLONESHOT) ? Mode::oneshot : 0) |
         ((bits & EPOLLEXCLUSIVE) ? Mode::exclusive : 0);
}

// Branch-free: this runs once per ready fd. Hangup implies read_closed (comment 3).
uint32_t ready_bits(uint32_t bits) {
  uint32_t hangup = (bits & EPOLLHUP) ? Ready::hangup | Ready::read_closed : 0;
  return (bits & EPOLLIN) | ((bits & EPOLLOUT) >> 1) | ((bits & EPOLLPRI) << 1) |
         ((bits & EPOLLRDHUP) >> 10) | ((bits & EPOLLERR) << 1) | hangup;
}
static_assert(EPOLLIN == 1 && EPOLLOUT == 4 && EPOLLPRI == 2 && EPOLLERR == 8 && EPOLLRDHUP == 0x2000);

void validate(uint32_t interest, uint32_t mode) {
  if (interest & ~Ready::interest_mask)
    throw InvalidArgument("invalid interest bits " + std::to_string(interest));
  if (mode & ~Mode::mask) throw InvalidArgument("invalid mode bits " + std::to_string(mode));
  if ((mode & Mode::exclusive) && (mode & Mode::oneshot))
    throw InvalidArgument("an exclusive registration cannot also be oneshot");
  if ((mode & Mode::exclusive) && (interest & (Ready::priority | Ready::read_closed)))
    throw InvalidArgument("an exclusive registration can only wait for readable and writable");
}

void check_fd_number(int fd) {
  if (fd < 0) throw InvalidArgument("invalid file descriptor: " + std::to_string(fd));
}

uint32_t next_generation(uint32_t generation) { return generation == UINT32_MAX ? 1 : generation + 1; }

const char* operation_name(int op) {
  return op == EPOLL_CTL_ADD ? "epoll_ctl(ADD)" : op == EPOLL_CTL_DEL ? "epoll_ctl(DEL)" : "epoll_ctl(MOD)";
}

// Comment 6: the refusal that lost a registration, thrown again by each later change of it.
[[noreturn]] void throw_lost(int fd, uint8_t op, uint8_t code) {
  throw_error(code, operation_name(op), "fd " + std::to_string(fd));
}
static_assert(EHWPOISON < 256, "an errno fits the Watcher's uint8_t");

}  // namespace

Poller::Poller() : epoll_(check(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1")) {
  // Edge-triggered: every wake() is a new edge (comment 2), so poll() never has to read the
  // eventfd to re-arm it. The counter saturates only after 2^64 - 2 wakes.
  epoll_event event{};
  event.events = EPOLLIN | EPOLLET;
  event.data.u64 = kWakerTag;
  check(::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, waker_.fd(), &event), "epoll_ctl(ADD)", "waker");
}

int Poller::checked_fd() const {
  if (!epoll_.valid() || close_requested_) throw InvalidArgument("I/O operation on closed poller");
  return epoll_.get();
}

int Poller::control(int op, int fd, const Watcher& watcher) {
  epoll_event event{};
  event.events = watcher.wanted;
  event.data.u64 = (uint64_t{watcher.generation} << 32) | static_cast<uint32_t>(fd);
  return ::epoll_ctl(epoll_.get(), op, fd, &event);
}

bool Poller::add(int fd, uint32_t interest, uint32_t mode, uint64_t token) {
  check_fd_number(fd);
  validate(interest, mode);
  std::lock_guard lock(mutex_);
  checked_fd();
  if (watchers_.size() <= static_cast<size_t>(fd)) watchers_.resize(static_cast<size_t>(fd) + 1);
  Watcher& watcher = watchers_[fd];
  if (watcher.registered) return false;
  Watcher next{to_epoll(interest, mode), 0, next_generation(watcher.generation)};
  next.token = token;
  check_with(control(EPOLL_CTL_ADD, fd, next), "epoll_ctl(ADD)",  // throws with the table unchanged
             [&] { return "fd " + std::to_string(fd); });
  next.armed = next.wanted;
  next.registered = true;
  watcher = next;
  ++registered_;
  return true;
}

// Records the interest modify() and modify_now() ask for; nullptr if fd is not registered.
// A lost registration (comment 6) is never queued: it throws the refusal that lost it.
Poller::Watcher* Poller::want(int fd, uint32_t interest, std::optional<uint32_t> mode) {
  checked_fd();
  Watcher* watcher = find(fd);
  if (!watcher || !watcher->registered) return nullptr;
  uint32_t next_mode = mode.value_or(mode_of(watcher->wanted));
  validate(interest, next_mode);
  if (watcher->lost_op) throw_lost(fd, watcher->lost_op, watcher->lost_errno);
  watcher->wanted = to_epoll(interest, next_mode);
  return watcher;
}

bool Poller::modify(int fd, uint32_t interest, std::optional<uint32_t> mode) {
  std::lock_guard lock(mutex_);
  Watcher* watcher = want(fd, interest, mode);
  if (!watcher) return false;
  if (!watcher->queued) {
    watcher->queued = true;
    pending_.push_back(fd);
  }
  return true;
}

// Comment 6: a closed fd is EBADF, and a reused number ENOENT, so the caller learns of either here.
bool Poller::modify_now(int fd, uint32_t interest, std::optional<uint32_t> mode) {
  std::lock_guard lock(mutex_);
  Watcher* watcher = want(fd, interest, mode);
  if (!watcher) return false;
  watcher->queued = false;  // applied here: flush() skips the entry left in pending_
  if (apply(fd, *watcher) != 0) throw_lost(fd, watcher->lost_op, watcher->lost_errno);
  return true;
}

bool Poller::remove(int fd) {
  std::lock_guard lock(mutex_);
  checked_fd();
  Watcher* watcher = find(fd);
  if (!watcher || !watcher->registered) return false;
  bool in_kernel = !watcher->lost_op;
  uint32_t event = watcher->event;
  *watcher = Watcher{0, 0, watcher->generation};
  --registered_;
  if (polled_by_ == std::this_thread::get_id()) invalidate(fd, event);  // comment 7
  // Comment 1: EBADF or ENOENT mean the fd was closed (and maybe reused) before its removal.
  if (in_kernel && ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) < 0 && errno != EBADF && errno != ENOENT)
    throw_error(errno, "epoll_ctl(DEL)", "fd " + std::to_string(fd));
  return true;
}

// One change of a registration in the kernel: usually one epoll_ctl, none if the change was
// undone in the same turn, never an ADD of a number the kernel no longer knows as ours
// (comment 6). Returns 0, or the errno of the kernel's refusal, which loses the registration.
// Comment 7: fd's event, if it is in the batch this thread is working off. An index left from an
// earlier batch names another fd's event, or one that is fd's own (at most one per batch).
void Poller::invalidate(int fd, uint32_t event) {
  if (event < ready_.size() && ready_[event].fd == fd) ready_[event] = Event{-1, 0, 0};
}

int Poller::apply(int fd, Watcher& watcher) {
  if (watcher.wanted == watcher.armed) return 0;
  if ((watcher.wanted | watcher.armed) & EPOLLEXCLUSIVE) {  // comment 5
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) < 0) return lose(watcher, EPOLL_CTL_DEL, errno);
    if (control(EPOLL_CTL_ADD, fd, watcher) < 0) return lose(watcher, EPOLL_CTL_ADD, errno);
  } else if (control(EPOLL_CTL_MOD, fd, watcher) < 0) {
    return lose(watcher, EPOLL_CTL_MOD, errno);
  }
  watcher.armed = watcher.wanted;
  return 0;
}

int Poller::lose(Watcher& watcher, int op, int code) {
  watcher.lost_op = static_cast<uint8_t>(op);
  watcher.lost_errno = static_cast<uint8_t>(code);
  watcher.generation = next_generation(watcher.generation);  // what the kernel still holds is not ours
  return code;
}

void Poller::flush() {
  for (int fd : pending_) {
    Watcher& watcher = watchers_[fd];
    if (!watcher.queued) continue;  // removed since, or already applied (fds may repeat)
    watcher.queued = false;
    if (watcher.registered && apply(fd, watcher) != 0) {
      watcher.event = static_cast<uint32_t>(ready_.size());
      ready_.push_back({fd, Ready::error, watcher.token});
    }
  }
  pending_.clear();
}

int Poller::wait(int epoll_fd, Timeout timeout) {
  // A zero timeout (a busy loop's poll) needs no clock: it never waits, so never resumes.
  bool waits = !timeout || *timeout > std::chrono::nanoseconds(0);
  auto deadline = timeout && waits ? Clock::now() + *timeout : Clock::time_point::max();
  for (;;) {
    int count = nocancel::epoll_wait(epoll_fd, kernel_events_.data(), static_cast<int>(kernel_events_.size()),
                                     timeout_to_ms(timeout));
    if (count >= 0) return count;
    if (errno != EINTR) throw_error(errno, "epoll_wait");
    on_interrupt();
    if (timeout && waits) timeout = std::max(std::chrono::nanoseconds(0), deadline - Clock::now());
  }
}

void Poller::collect(int count) {
  for (int i = 0; i < count; ++i) {
    const epoll_event& event = kernel_events_[i];
    if (event.data.u64 == kWakerTag) continue;
    int fd = static_cast<int>(event.data.u64 & 0xffffffffu);
    Watcher* watcher = find(fd);
    // A registration we no longer own (comment 1), or one removed while we waited.
    if (!watcher || !watcher->registered || watcher->generation != event.data.u64 >> 32) continue;
    if (watcher->armed & EPOLLONESHOT) watcher->armed &= kModeBits;  // the kernel disarmed it
    watcher->event = static_cast<uint32_t>(ready_.size());
    ready_.push_back({fd, ready_bits(event.events), watcher->token});
  }
}

std::span<const Event> Poller::poll(Timeout timeout) {
  int epoll_fd;
  {
    std::lock_guard lock(mutex_);
    epoll_fd = checked_fd();
    if (polling_) throw std::logic_error("poll() is already running in another thread");
    ready_.clear();
    flush();
    if (!ready_.empty()) timeout = std::chrono::nanoseconds(0);  // failed changes to report now
    kernel_events_.resize(std::max(kMinEvents, registered_ + 1));
    polling_ = true;
    polled_by_ = std::this_thread::get_id();
  }
  struct Finish {  // runs with or without an exception from wait()
    Poller& self;
    ~Finish() {
      self.polling_ = false;
      if (self.close_requested_) self.close_now();
    }
  };
  int count = 0;
  try {
    count = wait(epoll_fd, timeout);
  } catch (...) {
    std::lock_guard lock(mutex_);
    Finish finish{*this};
    throw;
  }
  std::lock_guard lock(mutex_);
  Finish finish{*this};
  collect(count);
  return ready_;
}

void Poller::wake() {
  std::lock_guard lock(mutex_);  // so a concurrent close() cannot hand the fd number to another file
  checked_fd();
  waker_.wake();
}

std::optional<Registration> Poller::registration(int fd) const {
  std::lock_guard lock(mutex_);
  const Watcher* watcher = find(fd);
  if (!watcher || !watcher->registered) return std::nullopt;
  return Registration{interest_of(watcher->wanted), mode_of(watcher->wanted), watcher->token};
}

size_t Poller::size() const {
  std::lock_guard lock(mutex_);
  return registered_;
}

int Poller::fd() const {
  std::lock_guard lock(mutex_);
  return checked_fd();
}

bool Poller::closed() const {
  std::lock_guard lock(mutex_);
  return !epoll_.valid() || close_requested_;
}

void Poller::close() {
  std::lock_guard lock(mutex_);
  if (!epoll_.valid() || close_requested_) return;
  if (polling_) {
    close_requested_ = true;
    waker_.wake();
    return;
  }
  close_now();
}

void Poller::close_now() {
  epoll_.reset();
  waker_.close();
  watchers_.clear();
  pending_.clear();
  registered_ = 0;
  close_requested_ = false;
}

}  // namespace socketeer
