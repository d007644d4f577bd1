// Poller: readiness notification over epoll (the IoEngine the Reactor runs on, io_engine.hpp),
// with coalesced interest changes, a built-in waker and a reusable event array.
//
//   Poller poller;
//   poller.add(fd, Ready::readable, Mode::level);   // epoll_ctl(ADD) now: errors surface here
//   poller.add(fd2, Ready::readable, Mode::edge, token);  // token: comes back in its events
//   poller.modify(fd, Ready::readable | Ready::writable);  // remembered; applied by poll()
//   for (const Event& event : poller.poll(std::chrono::milliseconds(100))) ...
//   poller.wake();                                  // from any thread: poll() returns
//
// Each registered fd has one Watcher (libuv's uv__io_t idea) that holds the interest the kernel
// has ("armed") and the interest the caller wants ("wanted"). modify() only updates "wanted" and
// queues the fd; poll() first applies each queued change with one epoll_ctl, so a loop turn that
// turns writable interest on and off again costs nothing, and several changes cost one call.
// add() and remove() act at once: add() so that a closed fd, a regular file (EPERM) or a
// duplicate is refused to the caller that made the mistake, remove() because callers close the
// fd right after, and a removal deferred past close() could no longer be made (see poller_epoll.cpp).
// modify_now() is modify() without the queue, for callers whose contract is to raise the
// kernel's refusal from the call itself (selectors' modify(), bpo-30014): one epoll_ctl each.
//
// A registration may carry a token, a number of the caller's (mio's Token, libuv's uv__io_t: a
// pointer to the object that owns the fd, say), handed back in each of its events, so the caller
// needs no fd -> object table of its own. A remove() by the thread that polled invalidates the
// fd's events still in the batch it works off (fd -1, no bits, token 0: skip them), so an
// event of a removed registration is never handed out under its old token, nor under the token
// of the fd number's next owner (poller_epoll.cpp, comment 7).
//
// Threads: add/modify/remove/wake/close may be called from any thread, also while another
// thread is blocked in poll(); poll() itself runs in one thread at a time. The span poll()
// returns stays valid until the next poll().
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "socketeer/fd.hpp"
#include "socketeer/io_engine.hpp"  // Ready, Mode, Event, and the interface Poller implements
#include "socketeer/socket.hpp"  // Timeout
#include "socketeer/waker.hpp"

namespace socketeer {

struct Registration {
  uint32_t interest;
  uint32_t mode;
  uint64_t token;
};

// The epoll engine behind the Reactor (io_engine.hpp), and socketeer.Poller's core. final: code
// that holds a Poller (the bindings, the FaultProxy) calls it without a virtual call.
class Poller final : public IoEngine {
 public:
  // epoll_create1(EPOLL_CLOEXEC), plus the waker's eventfd registered in it.
  Poller();

  // false if fd is already registered. Throws Error for the kernel's refusals (EBADF, EPERM
  // for regular files, ...) and InvalidArgument for bad interest or mode bits. token comes
  // back in each event of this registration; modify() keeps it.
  bool add(int fd, uint32_t interest, uint32_t mode = Mode::level, uint64_t token = 0) override;
  // false if fd is not registered. Keeps the mode unless one is given. Deferred to poll():
  // a change the kernel then refuses (the fd was closed meanwhile) is reported as an error
  // event for that fd, since poll() cannot hand an exception to the caller of modify(), and
  // loses the registration (poller_epoll.cpp, comment 6): it is never put back in the kernel
  // (that could register the fd number's next owner), and every later modify() or
  // modify_now() of it throws the kernel's refusal (Error: EBADF or ENOENT, "epoll_ctl(MOD)
  // fd N") until remove().
  bool modify(int fd, uint32_t interest, std::optional<uint32_t> mode = std::nullopt) override;
  // modify(), applied now (a change queued for fd is applied with it). Throws Error when the
  // kernel refuses: EBADF if fd was closed, ENOENT if its number now names a file that was never
  // added. The registration is then lost, as above.
  bool modify_now(int fd, uint32_t interest, std::optional<uint32_t> mode = std::nullopt);
  // false if fd is not registered. An fd closed before its removal is forgotten quietly. Called
  // by the thread that polled, it invalidates fd's events left in the last poll()'s batch.
  bool remove(int fd) override;

  // Applies queued changes, then one epoll_wait (timeout rounded up to whole milliseconds;
  // nullopt blocks). EINTR is retried with the time that is left. Wake-ups are not reported.
  std::span<const Event> poll(Timeout timeout) override;
  // Makes the current or next poll() return. Any thread.
  void wake() override;

  std::optional<Registration> registration(int fd) const;
  size_t size() const;
  int fd() const;
  bool closed() const;
  // Closes the epoll fd and the waker. If another thread is inside poll(), it is woken and the
  // fds are closed when it returns, so no fd number is ever closed under a running epoll_wait.
  void close();

 private:
  struct Watcher {  // 32 bytes: collect() looks one up per ready fd
    uint32_t wanted = 0;      // epoll bits the caller asked for (interest and mode)
    uint32_t armed = 0;       // epoll bits the kernel has
    uint32_t generation = 0;  // bumped by each add() and loss; stamped into each kernel registration
    bool registered = false;  // between add() and remove()
    bool queued = false;      // in pending_
    uint8_t lost_op = 0;      // the EPOLL_CTL_* the kernel refused (comment 6); 0: in the kernel
    uint8_t lost_errno = 0;   // and its errno
    uint64_t token = 0;       // the caller's, handed back in each event
    uint32_t event = 0;       // index of its event in ready_, if the batch has one (comment 7)
  };

  int checked_fd() const;
  Watcher* find(int fd) {  // inline: runs once per ready fd
    return fd >= 0 && static_cast<size_t>(fd) < watchers_.size() ? &watchers_[fd] : nullptr;
  }
  const Watcher* find(int fd) const { return const_cast<Poller*>(this)->find(fd); }
  int control(int op, int fd, const Watcher& watcher);  // epoll_ctl's result
  Watcher* want(int fd, uint32_t interest, std::optional<uint32_t> mode);  // modify's bookkeeping
  int apply(int fd, Watcher& watcher);                                     // 0 or the errno
  static int lose(Watcher& watcher, int op, int code);                     // returns code
  void invalidate(int fd, uint32_t event);
  void flush();
  int wait(int epoll_fd, Timeout timeout);
  void collect(int count);
  void close_now();

  mutable std::mutex mutex_;
  Fd epoll_;
  Waker waker_;
  std::vector<Watcher> watchers_;  // indexed by fd
  std::vector<int> pending_;       // fds whose wanted interest changed since the last poll
  std::vector<epoll_event> kernel_events_;
  std::vector<Event> ready_;
  size_t registered_ = 0;
  bool polling_ = false;
  std::thread::id polled_by_;  // the thread that polled last: its remove()s invalidate (comment 7)
  bool close_requested_ = false;
};

}  // namespace socketeer
