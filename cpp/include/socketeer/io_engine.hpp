// IoEngine: what the Reactor needs from the kernel's I/O notification, so that the engine can be
// replaced (epoll now: Poller, poller.hpp; io_uring later) without touching the loop. Its words
// (Ready bits, Mode bits, Event) are defined here; the Poller and its Python bindings use them.
//
//   engine.add(fd, Ready::readable | Ready::writable, Mode::edge, token);  // once per socket
//   for (const Event& event : engine.poll(timeout)) handle(event.token, event.events);
//   engine.remove(fd);                                                     // before close(fd)
//   engine.wake();                                                         // any thread
//
// Cost: one virtual call per poll() (a loop turn), per add() and remove() (a connection's life)
// and per wake(); none per event, since poll() hands back the whole batch as a span. Code that
// holds the Poller itself (the Python bindings, the FaultProxy) calls it directly: Poller is
// final, so those calls are not virtual at all.
//
// The contract, as the epoll engine keeps it:
//  - a registration carries the caller's token, handed back in each of its events;
//  - remove() by the polling thread invalidates the fd's events left in the current batch (fd -1,
//    no bits, token 0: skip them), so no event is handed out for an object its owner removed (and
//    may have freed) earlier in the same batch (poller_epoll.cpp, comment 7);
//  - add() acts at once, so its errors reach its caller; modify() may be deferred to poll();
//  - wake() makes the current or next poll() return, from any thread; wake-ups are not events.
//
// What an io_uring engine would need, said honestly: this interface is readiness-shaped. An event
// says "this fd can be read (written) now", and the Reactor then makes the syscalls itself
// (accept until EAGAIN, recv into the connection's block, one writev per flush). io_uring can
// implement it as it stands, with a multishot IORING_OP_POLL_ADD per registration (user_data =
// the token; remove() = IORING_OP_POLL_REMOVE, and dropping the removed token's completions
// still in the ring, as comment 7 drops events; wake() = a write to an eventfd it polls, or
// IORING_OP_MSG_RING): that trades epoll_ctl and epoll_wait for one io_uring_enter per turn but
// saves none of the reads and writes. What io_uring is for, completions (the kernel reads into a
// buffer it was handed beforehand and reports "n bytes are in it"), does not fit through this
// interface. It needs the Reactor to hand over operations rather than interest: a recv into the
// connection's input block (or a multishot recv from a provided-buffer ring), a multishot
// accept, a sendmsg of the queued chunks, with completions that carry the token and a byte
// count or an errno. Two lifetimes then change: a buffer belongs to the kernel from submission
// to completion (the Reactor moves and grows a connection's input block between turns, and lets
// output chunks point at the input, reactor.hpp), and a close must cancel its operations and
// wait for their completions before the token's object is freed. That is a second interface
// (submit operations, reap completions) beside this one; listeners, the waker and the
// interrupt fd would stay readiness-driven on either engine.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "socketeer/socket.hpp"  // Timeout

namespace socketeer {

// Interest bits (what a registration waits for) and the bits of a ready Event. readable and
// writable equal selectors.EVENT_READ and EVENT_WRITE.
namespace Ready {
constexpr uint32_t readable = 1;
constexpr uint32_t writable = 2;
constexpr uint32_t priority = 4;     // out-of-band data, EPOLLPRI
constexpr uint32_t read_closed = 8;  // the peer shut down its writing side (EPOLLRDHUP) or hangup
constexpr uint32_t error = 16;       // always reported, never requested
constexpr uint32_t hangup = 32;      // always reported, never requested
constexpr uint32_t interest_mask = readable | writable | priority | read_closed;
}  // namespace Ready

// How a registration triggers; edge and oneshot combine, exclusive combines with edge only.
namespace Mode {
constexpr uint32_t level = 0;
constexpr uint32_t edge = 1;       // EPOLLET: reported once per change; drain until EAGAIN
constexpr uint32_t oneshot = 2;    // EPOLLONESHOT: disarmed after one report; modify() re-arms
constexpr uint32_t exclusive = 4;  // EPOLLEXCLUSIVE: one of several pollers sharing the fd wakes
constexpr uint32_t mask = edge | oneshot | exclusive;
}  // namespace Mode

struct Event {
  int fd;           // -1: invalidated by a remove() while the batch was worked off; skip it
  uint32_t events;  // Ready bits
  uint64_t token;   // the registration's token (add()); 0 if none was given
};

class IoEngine {
 public:
  virtual ~IoEngine() = default;
  // Registers fd for the Ready interest bits, in a Mode, with the caller's token. false if fd is
  // registered already; throws the kernel's refusal (Error) or InvalidArgument for bad bits.
  virtual bool add(int fd, uint32_t interest, uint32_t mode, uint64_t token) = 0;
  // Changes the interest (and the mode, if given); keeps the token. false if fd is not registered.
  virtual bool modify(int fd, uint32_t interest, std::optional<uint32_t> mode) = 0;
  // Before close(fd). false if fd is not registered.
  virtual bool remove(int fd) = 0;
  // Waits up to timeout (nullopt: no limit) and returns what is ready; valid until the next poll.
  virtual std::span<const Event> poll(Timeout timeout) = 0;
  // Makes the current or next poll() return. Any thread.
  virtual void wake() = 0;
};

}  // namespace socketeer
