// Socket: one method per syscall over an owned, CLOEXEC file descriptor.
//
// Blocking behaviour follows CPython's socket module: a timeout of "none" means a blocking fd;
// zero means a non-blocking fd whose calls report would-block; a positive timeout means a
// non-blocking fd where each call waits with poll() until a deadline. Would-block is a return
// value (std::nullopt), never an exception, so hot non-blocking loops pay nothing for it.
//
// close() while another thread is blocked in a call on the socket. A call that may wait (one
// with a timeout or on a blocking fd: the I/O methods, accept, connect, send_all, wait) holds
// the fd number for as long as it runs, so the number cannot be reused under it: one atomic
// word counts those calls and carries a "closing" bit. Each registers on entry (EBADF at once
// if closing has begun) and deregisters on exit. close() sets closing; with no call in flight
// it closes the fd there and then. Otherwise it calls shutdown(SHUT_RDWR), which wakes every
// thread sleeping on the socket (poll, or the kernel's own wait in recv/accept/send/connect;
// even unconnected UDP and listening sockets: see inet_shutdown's "Hack to wake up other
// listeners" in net/ipv4/af_inet.c), and the last call to leave closes the fd. A woken call
// sees closing and throws EBADF ("socket is closed"); whatever its syscall returned after
// close() began is dropped (an accepted connection is closed). The price of the wake-up: the
// peer sees the end of the stream at once, and dup()ed fds of the same socket are shut down
// too. Calls that cannot wait (timeout zero, and the *_now MSG_DONTWAIT methods of the reactor's
// hot path) only load the fd: no atomic read-modify-write on them.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "socketeer/address.hpp"
#include "socketeer/datagram_batch.hpp"
#include "socketeer/deadline.hpp"
#include "socketeer/fd.hpp"

namespace socketeer {


struct ControlMessage {
  int level = 0;
  int type = 0;
  std::string data;
};

struct ReceivedMessage {
  size_t size = 0;  // bytes written into the buffers
  std::vector<ControlMessage> control;
  int flags = 0;  // MSG_TRUNC, MSG_CTRUNC, MSG_EOR ...
  std::optional<Address> address;
};

struct ReceivedFds {
  size_t size = 0;
  std::vector<Fd> fds;
  int flags = 0;
  std::optional<Address> address;
};

struct PeerCredentials {
  int pid = 0;
  unsigned uid = 0;
  unsigned gid = 0;
};

struct TcpInfo {
  int state, ca_state, retransmits, probes, backoff, options;
  uint32_t rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets;
  uint32_t last_data_sent, last_ack_recv, last_data_recv, last_ack_sent;
  uint32_t pmtu, rcv_ssthresh, rtt, rttvar, snd_ssthresh, snd_cwnd, advmss, reordering;
  uint32_t rcv_rtt, rcv_space, total_retrans;
  uint64_t bytes_acked, bytes_received, bytes_sent, bytes_retrans;
  uint32_t segs_out, segs_in, notsent_bytes, min_rtt, delivery_rate_app_limited;
  uint64_t delivery_rate;
};

// The kernel's struct tcp_info (as getsockopt(TCP_INFO) or sock_diag's INET_DIAG_INFO hand it
// over, `size` bytes, possibly an older and shorter version) as a TcpInfo.
TcpInfo tcp_info_from_kernel(const void* data, size_t size);

class Socket {
 public:
  Socket(int family, int type, int protocol = 0);
  // Takes ownership of an open socket fd, reading its family, type and protocol from the kernel.
  // If fd is not a socket, throws and leaves it open (the caller still owns it).
  static Socket adopt(int fd);
  static std::pair<Socket, Socket> pair(int family, int type, int protocol = 0);

  // Moving a socket that a call in another thread is blocked on is a bug (that call would keep
  // the number while the new owner may close it): take() refuses it, with EBUSY.
  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  // The socket moved out of `other`, which is left closed; EBUSY while a call waits on it.
  static Socket take(Socket& other);

  int fd() const noexcept { return fd_.get(); }
  bool closed() const noexcept { return !fd_.valid(); }
  int family() const noexcept { return family_; }
  int type() const noexcept { return type_; }
  int protocol() const noexcept { return protocol_; }

  Timeout timeout() const noexcept {
    auto ns = timeout_ns_.load(std::memory_order_relaxed);
    return ns < 0 ? Timeout() : Timeout(std::chrono::nanoseconds(ns));
  }
  void set_timeout(Timeout timeout);  // sets O_NONBLOCK unless timeout is "none"
  // Whether a call may wait: false for a timeout of zero (the fd is non-blocking, each call one
  // syscall that reports would-block), true for a blocking fd or a positive timeout.
  bool may_wait() const noexcept { return timeout_ns_.load(std::memory_order_relaxed) != 0; }

  void bind(const Address& address);
  void listen(int backlog);
  std::optional<std::pair<Socket, Address>> accept();
  void connect(const Address& address);
  int connect_ex(const Address& address);  // 0 or the errno, like the stdlib's

  std::optional<size_t> send(const void* data, size_t size, int flags = 0);
  std::optional<size_t> send_to(const void* data, size_t size, int flags, const Address& to);
  void send_all(const void* data, size_t size, int flags = 0);
  // One sendfile(2): up to `count` bytes of the file `in_fd` from `offset` (in_fd's own file
  // position is left alone); 0 at the end of the file. Timeouts as send(). sendfile has no
  // MSG_NOSIGNAL: a SigpipeGuard keeps SIGPIPE away from a peer that is gone (EPIPE is thrown).
  std::optional<size_t> send_file(int in_fd, int64_t offset, size_t count);
  std::optional<size_t> send_msg(std::span<const iovec> buffers,
                                 std::span<const ControlMessage> control, int flags,
                                 const std::optional<Address>& to);
  std::optional<size_t> send_fds(const void* data, size_t size, std::span<const int> fds,
                                 int flags, const std::optional<Address>& to);

  // sendmmsg of the batch's messages: returns how many went out (all, unless the buffer filled;
  // batch.datagrams_in() says how many datagrams that is). An error is about the first message:
  // the kernel reports a later one's only when it comes first in the next call.
  std::optional<size_t> send_many(OutgoingBatch& batch, int flags = 0);
  // recvmmsg: fills up to batch.slots() datagrams; returns how many arrived (at least one).
  std::optional<size_t> recv_many(DatagramBatch& batch, int flags = 0);

  std::optional<size_t> recv(void* buffer, size_t size, int flags = 0);
  // One recv/send with MSG_DONTWAIT whatever the socket's timeout: nullopt when it would
  // block. For callers that wait on their own terms (StreamReader, the reactor).
  std::optional<size_t> recv_now(void* buffer, size_t size);
  std::optional<size_t> send_now(const void* data, size_t size);
  // The same as one sendmsg of several buffers (writev with MSG_NOSIGNAL); one buffer goes
  // with send(2), which the kernel handles with less work.
  std::optional<size_t> send_vectors_now(std::span<const iovec> buffers);
  std::optional<std::pair<size_t, std::optional<Address>>> recv_from(void* buffer, size_t size,
                                                                     int flags = 0);
  std::optional<ReceivedMessage> recv_msg(std::span<const iovec> buffers, size_t control_size,
                                          int flags);
  // Receives data and SCM_RIGHTS fds. If the kernel truncated the control data (more fds were
  // sent than max_fds), the fds that did arrive are closed and EMSGSIZE is thrown.
  std::optional<ReceivedFds> recv_fds(void* buffer, size_t size, size_t max_fds, int flags = 0);

  void shutdown(int how);
  // Closes the fd, or, while calls wait on it in other threads, wakes them and leaves the
  // closing to the last of them (see the top of this file). Idempotent.
  void close();
  // Gives up the fd without closing it; the socket is left closed. EBUSY while a call waits on
  // it in another thread: the fd's new owner could close it under that call.
  Fd detach();
  Socket dup() const;

  Address local_address() const;
  Address peer_address() const;
  int get_option(int level, int name) const;
  std::string get_option_bytes(int level, int name, size_t size) const;
  void set_option(int level, int name, int value);
  void set_option_bytes(int level, int name, const void* value, size_t size);
  PeerCredentials peer_credentials() const;
  TcpInfo tcp_info() const;

  // Waits (poll) until the fd is ready for events or the timeout expires; false on timeout.
  // A call that may wait: EBADF, naming `operation`, if the socket is closed meanwhile.
  bool wait(short events, Timeout timeout, const char* operation = "wait") const;
  // Waits until the fd is ready for events within the deadline: TimedOut naming the operation
  // and the address (as the socket's own calls do) once it passes, EBADF if closed meanwhile.
  void wait_until(short events, Deadline& deadline, const char* operation) const;
  // Where a call waiting for events on this socket goes, as its timeout names it: "from PEER"
  // (POLLOUT: "to PEER") when connected, else "on LOCAL"; empty when unnamed or closed.
  std::string where(short events) const;

 private:
  class Waiting;  // a call that may wait, registered for as long as it runs (socket.cpp)
  static constexpr uint32_t kClosing = 1u << 31;
  static constexpr uint32_t kCallCount = kClosing - 1;

  Socket(Fd fd, int family, int type, int protocol);
  int checked_fd(const char* operation) const;
  void set_timeout_value(Timeout timeout) noexcept {
    timeout_ns_.store(timeout ? timeout->count() : -1, std::memory_order_relaxed);
  }
  void leave() const noexcept;
  // Runs a non-blocking-style call, waiting for readiness per the socket's timeout. If close()
  // began meanwhile, a result the call got is handed to discard() and EBADF thrown.
  template <typename Call, typename Discard>
  std::optional<ssize_t> io(short events, const char* operation, Call&& call, Discard&& discard);
  template <typename Call>
  std::optional<ssize_t> io(short events, const char* operation, Call&& call) {
    return io(events, operation, std::forward<Call>(call), [](ssize_t) {});
  }
  // Waits until the fd is ready for events: TimedOut naming the address when the deadline
  // passes, EBADF once closing.
  void wait_ready(const Waiting& waiting, short events, Deadline& deadline, const char* operation,
                  const Address* to = nullptr) const;

  Fd fd_;
  mutable Fd retired_;                     // the fd close() took while calls were in flight
  mutable std::atomic<uint32_t> calls_{0};  // kClosing | the number of calls that may wait
  int family_ = 0;
  int type_ = 0;
  int protocol_ = 0;
  std::atomic<int64_t> timeout_ns_{-1};  // -1: none (a blocking fd)
};

// Rounds a timeout up to whole milliseconds for poll()/epoll_wait(), as CPython does, so a
// tiny positive timeout waits 1 ms instead of spinning with 0.
int timeout_to_ms(Timeout timeout);

}  // namespace socketeer
