#include "socketeer/socket.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "socketeer/error.hpp"
#include "socketeer/deadline.hpp"
#include "socketeer/interrupt.hpp"
#include "socketeer/names.hpp"
#include "socketeer/nocancel.hpp"
#include "socketeer/sigpipe.hpp"

namespace socketeer {
namespace {

using namespace std::chrono_literals;
constexpr int kSocketTypeFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;

std::string to_target(const Address& address) { return "to " + to_string(address); }
std::string on_target(const Address& address) { return "on " + to_string(address); }

bool would_block(int code) { return code == EAGAIN || code == EWOULDBLOCK; }

// The kernel's SCM_MAX_FD: no message carries more fds, so no control buffer needs more room.
constexpr size_t kMaxFdsPerMessage = 253;

[[noreturn]] void throw_closed(const char* operation) { throw Error(EBADF, operation, {}, "socket is closed"); }

// Where a timed-out call was going, for its error: "from"/"to" the peer of a connected socket,
// else "on" the bound address; nothing for an unnamed one (a socketpair) or a family without
// an Address type.
std::string target_of(int fd, short events) {
  try {
    AddressBuffer name;
    if (::getpeername(fd, name.get(), &name.length) == 0 && name.length > sizeof(sa_family_t))
      return ((events & POLLOUT) ? "to " : "from ") + to_string(name.address());
    name = AddressBuffer{};
    if (::getsockname(fd, name.get(), &name.length) == 0 && name.length > sizeof(sa_family_t))
      return on_target(name.address());
  } catch (const std::exception&) {  // no Address for this family: the operation alone
  }
  return {};
}

// What a call made with MSG_DONTWAIT returned: its count, or nullopt when it would have blocked.
std::optional<size_t> dontwait_result(ssize_t n, std::string_view operation) {
  if (n >= 0) return static_cast<size_t>(n);
  if (would_block(errno)) return std::nullopt;
  throw_error(errno, operation);
}

// Waits with poll() until fd is ready; false once the timeout has passed. EINTR, and a poll
// cut short by the int milliseconds poll() takes (24.8 days), go on with the time left.
bool poll_fd(int fd, short events, Timeout timeout) {
  pollfd entry{fd, events, 0};
  auto end = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  for (;;) {
    int ready = ::poll(&entry, 1, timeout_to_ms(timeout));
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) throw_error(errno, "poll");
    if (ready < 0) on_interrupt();
    if (!timeout) continue;
    auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(end - Clock::now());
    if (ready == 0 && left <= 0ns) return false;
    timeout = std::max(0ns, left);
  }
}

size_t control_space(std::span<const ControlMessage> control) {
  size_t total = 0;
  for (const auto& message : control) total += CMSG_SPACE(message.data.size());
  return total;
}

void pack_control(std::span<const ControlMessage> control, msghdr& header, std::vector<char>& buffer) {
  buffer.assign(control_space(control), 0);
  header.msg_control = buffer.empty() ? nullptr : buffer.data();
  header.msg_controllen = buffer.size();
  cmsghdr* item = buffer.empty() ? nullptr : CMSG_FIRSTHDR(&header);
  for (const auto& message : control) {
    item->cmsg_level = message.level;
    item->cmsg_type = message.type;
    item->cmsg_len = CMSG_LEN(message.data.size());
    std::memcpy(CMSG_DATA(item), message.data.data(), message.data.size());
    item = CMSG_NXTHDR(&header, item);
  }
}

// The control messages the kernel wrote (msg_controllen is what it used). A truncated last one
// (MSG_CTRUNC) is cut at the end of the buffer; a malformed length ends the list.
std::vector<ControlMessage> unpack_control(msghdr& header) {
  std::vector<ControlMessage> messages;
  auto end = static_cast<const char*>(header.msg_control) + header.msg_controllen;
  for (cmsghdr* item = CMSG_FIRSTHDR(&header); item; item = CMSG_NXTHDR(&header, item)) {
    auto data = reinterpret_cast<const char*>(CMSG_DATA(item));
    auto start = reinterpret_cast<const char*>(item);
    if (item->cmsg_len < CMSG_LEN(0) || data > end) break;
    size_t size = std::min<size_t>(item->cmsg_len - (data - start), end - data);
    messages.push_back({item->cmsg_level, item->cmsg_type, std::string(data, size)});
  }
  return messages;
}

std::optional<Address> name_of(const AddressBuffer& name) {
  if (name.length == 0) return std::nullopt;
  return name.address();
}

}  // namespace

// A call that may wait: counted in calls_ from construction to destruction, so that close()
// leaves the fd open, and its number taken, until the call has gone.
class Socket::Waiting {
 public:
  Waiting(const Socket& socket, const char* operation) : socket_(socket), operation_(operation) {
    uint32_t before = socket.calls_.fetch_add(1, std::memory_order_acquire);
    fd_ = socket.fd_.get();  // stays open while we are counted, unless closing had begun
    if ((before & kClosing) || fd_ < 0) [[unlikely]] {
      socket.leave();
      throw_closed(operation);
    }
  }
  ~Waiting() { socket_.leave(); }
  Waiting(const Waiting&) = delete;
  Waiting& operator=(const Waiting&) = delete;

  int fd() const noexcept { return fd_; }
  bool closing() const noexcept { return socket_.calls_.load(std::memory_order_acquire) & kClosing; }
  // EBADF once close() has begun: nothing the call does after that may be handed out.
  void check() const {
    if (closing()) [[unlikely]] throw_closed(operation_);
  }

 private:
  const Socket& socket_;
  const char* operation_;
  int fd_ = -1;
};

void Socket::leave() const noexcept {
  if (calls_.fetch_sub(1, std::memory_order_acq_rel) == (kClosing | 1)) retired_.reset();
}

int timeout_to_ms(Timeout timeout) {
  if (!timeout) return -1;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
  return static_cast<int>(std::clamp<long long>(ms, 0, INT_MAX));
}

// --- life cycle ------------------------------------------------------------------------------

Socket::Socket(int family, int type, int protocol)
    : family_(family), type_(type & ~kSocketTypeFlags), protocol_(protocol) {
  int fd = ::socket(family, type | SOCK_CLOEXEC, protocol);
  if (fd < 0) {
    int code = errno;  // before anything below can change it
    // Appended piece by piece: g++ 12 warns (-Wrestrict, a false positive) on the same text
    // built with operator+ chains.
    std::string what = "(";
    what.append(family_name(family)).append(", ").append(type_name(type));
    if (protocol) what.append(", protocol ").append(std::to_string(protocol));
    throw_error(code, "socket", what.append(")"));
  }
  fd_.reset(fd);
  if (type & SOCK_NONBLOCK) set_timeout_value(0ns);
}

Socket::Socket(Fd fd, int family, int type, int protocol)
    : fd_(std::move(fd)), family_(family), type_(type), protocol_(protocol) {}

Socket::Socket(Socket&& other) noexcept
    : fd_(std::move(other.fd_)),
      family_(other.family_),
      type_(other.type_),
      protocol_(other.protocol_),
      timeout_ns_(other.timeout_ns_.load(std::memory_order_relaxed)) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    fd_ = std::move(other.fd_);
    retired_.reset();
    calls_.store(0, std::memory_order_relaxed);
    family_ = other.family_;
    type_ = other.type_;
    protocol_ = other.protocol_;
    timeout_ns_.store(other.timeout_ns_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
  return *this;
}

Socket Socket::take(Socket& other) {
  Timeout timeout = other.timeout();
  Socket taken(other.detach(), other.family_, other.type_, other.protocol_);
  taken.set_timeout_value(timeout);
  return taken;
}

Socket Socket::adopt(int fd) {
  auto option = [fd](int name) {
    int value = 0;
    socklen_t size = sizeof value;
    check(::getsockopt(fd, SOL_SOCKET, name, &value, &size), "fromfd", "fd " + std::to_string(fd));
    return value;
  };
  int family = option(SO_DOMAIN), type = option(SO_TYPE), protocol = option(SO_PROTOCOL);
  int flags = check(::fcntl(fd, F_GETFL), "fcntl");
  Socket adopted(Fd(fd), family, type, protocol);
  if (flags & O_NONBLOCK) adopted.set_timeout_value(0ns);
  return adopted;
}

std::pair<Socket, Socket> Socket::pair(int family, int type, int protocol) {
  int fds[2];
  if (::socketpair(family, type | SOCK_CLOEXEC, protocol, fds) < 0)
    throw_error(errno, "socketpair", "(" + family_name(family) + ", " + type_name(type) + ")");
  int clean_type = type & ~kSocketTypeFlags;
  std::pair<Socket, Socket> sockets{Socket(Fd(fds[0]), family, clean_type, protocol),
                                    Socket(Fd(fds[1]), family, clean_type, protocol)};
  if (type & SOCK_NONBLOCK) {
    sockets.first.set_timeout_value(0ns);
    sockets.second.set_timeout_value(0ns);
  }
  return sockets;
}

int Socket::checked_fd(const char* operation) const {
  int fd = fd_.get();
  if (fd < 0) throw_closed(operation);
  return fd;
}

void Socket::set_timeout(Timeout timeout) {
  int fd = checked_fd("settimeout");
  int flags = check(::fcntl(fd, F_GETFL), "fcntl");
  int wanted = timeout ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (wanted != flags) check(::fcntl(fd, F_SETFL, wanted), "fcntl");
  set_timeout_value(timeout);
}

// Sets closing and counts itself in, so the fd stays ours while it shuts the socket down; then
// whoever leaves last, this call or a woken one, closes it.
void Socket::close() {
  uint32_t state = calls_.load(std::memory_order_relaxed);
  do {
    if (state & kClosing) return;  // closed already, or another thread is closing it
  } while (!calls_.compare_exchange_weak(state, (state | kClosing) + 1, std::memory_order_acq_rel,
                                         std::memory_order_relaxed));
  retired_.reset(fd_.release());
  // Wakes the waiting calls. Its error is of no interest: on an unconnected UDP socket it is
  // ENOTCONN, and the sleepers are woken all the same.
  if (state & kCallCount) ::shutdown(retired_.get(), SHUT_RDWR);
  if (calls_.fetch_sub(1, std::memory_order_acq_rel) == (kClosing | 1)) retired_.close();
}

Fd Socket::detach() {
  uint32_t state = calls_.load(std::memory_order_relaxed);
  do {
    if (state & kClosing) return Fd();
    if (state & kCallCount)
      throw Error(EBUSY, "detach", {}, "a call on the socket is waiting in another thread");
  } while (!calls_.compare_exchange_weak(state, kClosing, std::memory_order_acq_rel, std::memory_order_relaxed));
  return Fd(fd_.release());
}

Socket Socket::dup() const {
  Socket copy(dup_cloexec(checked_fd("dup")), family_, type_, protocol_);
  copy.set_timeout_value(timeout());
  return copy;
}

void Socket::shutdown(int how) { check(::shutdown(checked_fd("shutdown"), how), "shutdown"); }

bool Socket::wait(short events, Timeout timeout, const char* operation) const {
  Waiting waiting(*this, operation);
  bool ready = poll_fd(waiting.fd(), events, timeout);
  waiting.check();
  return ready;
}

std::string Socket::where(short events) const {
  int fd = fd_.get();
  return fd < 0 ? std::string() : target_of(fd, events);
}

void Socket::wait_until(short events, Deadline& deadline, const char* operation) const {
  Waiting waiting(*this, operation);
  wait_ready(waiting, events, deadline, operation);
}

void Socket::wait_ready(const Waiting& waiting, short events, Deadline& deadline, const char* operation,
                        const Address* to) const {
  for (;;) {
    Timeout left = deadline.left();
    if (left && *left <= 0ns) throw_timeout(operation, to ? to_target(*to) : target_of(waiting.fd(), events));
    bool ready = poll_fd(waiting.fd(), events, left);
    waiting.check();
    if (ready) return;
  }
}

// --- I/O with CPython's timeout semantics ----------------------------------------------------

// With a timeout of zero the call cannot wait: one try, the fd only loaded. Otherwise it is a
// call that may wait, registered for close() (see socket.hpp).
template <typename Call, typename Discard>
std::optional<ssize_t> Socket::io(short events, const char* operation, Call&& call, Discard&& discard) {
  Timeout timeout = this->timeout();
  std::optional<Waiting> waiting;
  int fd = timeout && *timeout == 0ns ? checked_fd(operation) : waiting.emplace(*this, operation).fd();
  Deadline deadline(timeout);
  for (;;) {
    ssize_t n = call(fd);
    int code = errno;
    if (waiting && waiting->closing()) [[unlikely]] {
      if (n >= 0) discard(n);
      throw_closed(operation);
    }
    if (n >= 0) return n;
    if (code == EINTR) {
      on_interrupt();
      if (!waiting) fd = checked_fd(operation);  // the handler may have closed it
      continue;
    }
    if (!would_block(code)) return -code;  // the caller names its target in the error
    // Would-block on a blocking fd: O_NONBLOCK was set behind our back (a dup's owner).
    if (!waiting || !timeout) return std::nullopt;
    wait_ready(*waiting, events, deadline, operation);
  }
}

void Socket::bind(const Address& address) {
  check_with(::bind(checked_fd("bind"), sockaddr_of(address), length_of(address)), "bind",
             [&] { return on_target(address); });
}

void Socket::listen(int backlog) { check(::listen(checked_fd("listen"), backlog), "listen"); }

std::optional<std::pair<Socket, Address>> Socket::accept() {
  AddressBuffer peer;
  auto n = io(
      POLLIN, "accept",
      [&](int fd) {
        peer.length = sizeof peer.storage;
        return static_cast<ssize_t>(::accept4(fd, peer.get(), &peer.length, SOCK_CLOEXEC));
      },
      [](ssize_t accepted) { Fd(static_cast<int>(accepted)).reset(); });  // accepted after close began
  if (!n) return std::nullopt;
  if (*n < 0) throw_error(static_cast<int>(-*n), "accept");
  Socket accepted(Fd(static_cast<int>(*n)), family_, type_, protocol_);
  if (peer.length == 0) return std::pair{std::move(accepted), Address(UnixAddress())};
  return std::pair{std::move(accepted), peer.address()};
}

// Non-blocking connect: the kernel answers EINPROGRESS and finishes the handshake in the
// background; the fd turns writable when it is done, and SO_ERROR then holds the outcome.
// A blocking connect interrupted by a signal also goes on in the background (retrying would
// give EALREADY), so it is finished the same way.
void Socket::connect(const Address& address) {
  Timeout timeout = this->timeout();
  if (timeout && *timeout == 0ns) {
    check_with(::connect(checked_fd("connect"), sockaddr_of(address), length_of(address)), "connect",
               [&] { return to_target(address); });
    return;
  }
  Waiting waiting(*this, "connect");
  int result = ::connect(waiting.fd(), sockaddr_of(address), length_of(address));
  int code = errno;
  waiting.check();
  if (result == 0) return;
  if (code != EINPROGRESS && code != EINTR) throw_error(code, "connect", to_target(address));
  if (code == EINTR) on_interrupt();
  Deadline deadline(timeout);
  wait_ready(waiting, POLLOUT, deadline, "connect", &address);
  socklen_t size = sizeof code;
  check(::getsockopt(waiting.fd(), SOL_SOCKET, SO_ERROR, &code, &size), "getsockopt(SO_ERROR)");
  if (code != 0) throw_error(code, "connect", to_target(address));
}

// As CPython's: every failure of the connect is returned, EBADF on a closed socket included,
// and a passed socket timeout is EWOULDBLOCK (the kernel's own ETIMEDOUT stays ETIMEDOUT).
int Socket::connect_ex(const Address& address) {
  try {
    connect(address);
    return 0;
  } catch (const TimedOut&) {
    return EWOULDBLOCK;
  } catch (const Error& error) {
    return error.code_value();
  }
}

std::optional<size_t> Socket::send(const void* data, size_t size, int flags) {
  auto n = io(POLLOUT, "send", [&](int fd) { return ::send(fd, data, size, flags | MSG_NOSIGNAL); });
  if (n && *n < 0) throw_error(static_cast<int>(-*n), "send");
  return n;
}

std::optional<size_t> Socket::send_to(const void* data, size_t size, int flags, const Address& to) {
  auto n = io(POLLOUT, "sendto", [&](int fd) {
    return ::sendto(fd, data, size, flags | MSG_NOSIGNAL, sockaddr_of(to), length_of(to));
  });
  if (n && *n < 0) throw_error(static_cast<int>(-*n), "sendto", to_target(to));
  return n;
}

// Sends everything, looping over partial writes. With a timeout, the deadline covers the whole
// call (CPython >= 3.5); a non-blocking socket raises would-block as soon as the buffer is full.
void Socket::send_all(const void* data, size_t size, int flags) {
  auto bytes = static_cast<const char*>(data);
  Timeout timeout = this->timeout();
  std::optional<Waiting> waiting;
  int fd = timeout && *timeout == 0ns ? checked_fd("sendall") : waiting.emplace(*this, "sendall").fd();
  Deadline deadline(timeout);
  while (size > 0) {
    ssize_t n = ::send(fd, bytes, size, flags | MSG_NOSIGNAL);
    int code = errno;
    if (waiting) waiting->check();
    if (n >= 0) {
      bytes += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (code == EINTR) {
      on_interrupt();
      if (!waiting) fd = checked_fd("sendall");
      continue;
    }
    if (!would_block(code) || !waiting || !timeout) throw_error(code, "sendall");
    wait_ready(*waiting, POLLOUT, deadline, "sendall");
  }
}

std::optional<size_t> Socket::send_file(int in_fd, int64_t offset, size_t count) {
  SigpipeGuard guard;
  auto n = io(POLLOUT, "sendfile", [&](int fd) {
    off_t position = offset;
    ssize_t sent = ::sendfile(fd, in_fd, &position, count);
    if (sent < 0 && errno == EPIPE) guard.consume();
    return sent;
  });
  if (n && *n < 0) throw_error(static_cast<int>(-*n), "sendfile");
  return n;
}

std::optional<size_t> Socket::send_msg(std::span<const iovec> buffers,
                                       std::span<const ControlMessage> control, int flags,
                                       const std::optional<Address>& to) {
  msghdr header{};
  header.msg_iov = const_cast<iovec*>(buffers.data());
  header.msg_iovlen = buffers.size();
  if (to) {
    header.msg_name = const_cast<sockaddr*>(sockaddr_of(*to));
    header.msg_namelen = length_of(*to);
  }
  std::vector<char> control_buffer;
  pack_control(control, header, control_buffer);
  auto n = io(POLLOUT, "sendmsg", [&](int fd) { return ::sendmsg(fd, &header, flags | MSG_NOSIGNAL); });
  if (n && *n < 0) throw_error(static_cast<int>(-*n), "sendmsg", to ? to_target(*to) : "");
  return n;
}

std::optional<size_t> Socket::send_fds(const void* data, size_t size, std::span<const int> fds,
                                       int flags, const std::optional<Address>& to) {
  iovec buffer{const_cast<void*>(data), size};
  ControlMessage rights{SOL_SOCKET, SCM_RIGHTS,
                        std::string(reinterpret_cast<const char*>(fds.data()), fds.size_bytes())};
  std::span<const ControlMessage> control(&rights, fds.empty() ? 0 : 1);
  return send_msg(std::span(&buffer, 1), control, flags, to);
}

std::optional<size_t> Socket::send_many(OutgoingBatch& batch, int flags) {
  auto n = io(POLLOUT, "sendmmsg", [&](int fd) {
    return static_cast<ssize_t>(::sendmmsg(fd, batch.headers(), static_cast<unsigned>(batch.messages()), flags | MSG_NOSIGNAL));
  });
  if (n && *n < 0) throw_error(static_cast<int>(-*n), "sendmmsg");
  return n;
}

std::optional<size_t> Socket::recv_many(DatagramBatch& batch, int flags) {
  auto n = io(POLLIN, "recvmmsg", [&](int fd) {
    return static_cast<ssize_t>(::recvmmsg(fd, batch.prepare(), static_cast<unsigned>(batch.slots()), flags | MSG_WAITFORONE, nullptr));
  });
  if (n && *n < 0) throw_error(static_cast<int>(-*n), "recvmmsg");
  return n;
}

std::optional<size_t> Socket::recv_now(void* buffer, size_t size) {
  ssize_t n = retry_eintr([&] { return nocancel::recv(checked_fd("recv"), buffer, size, MSG_DONTWAIT); });
  return dontwait_result(n, "recv");
}

std::optional<size_t> Socket::send_now(const void* data, size_t size) {
  ssize_t n = retry_eintr([&] { return nocancel::send(checked_fd("send"), data, size, MSG_DONTWAIT | MSG_NOSIGNAL); });
  return dontwait_result(n, "send");
}

std::optional<size_t> Socket::send_vectors_now(std::span<const iovec> buffers) {
  // sendmsg makes the kernel copy in a msghdr and an iovec array that send(2) does without:
  // about 90 ns more per call on a unix socketpair here, 2-3 % of a small echo's round trip.
  if (buffers.size() == 1) return send_now(buffers[0].iov_base, buffers[0].iov_len);
  msghdr header{};
  header.msg_iov = const_cast<iovec*>(buffers.data());
  header.msg_iovlen = buffers.size();
  ssize_t n = retry_eintr([&] { return nocancel::sendmsg(checked_fd("send"), &header, MSG_DONTWAIT | MSG_NOSIGNAL); });
  return dontwait_result(n, "send");
}

std::optional<size_t> Socket::recv(void* buffer, size_t size, int flags) {
  auto n = io(POLLIN, "recv", [&](int fd) { return ::recv(fd, buffer, size, flags); });
  if (n && *n < 0) throw_error(static_cast<int>(-*n), "recv");
  return n;
}

std::optional<std::pair<size_t, std::optional<Address>>> Socket::recv_from(void* buffer, size_t size,
                                                                           int flags) {
  AddressBuffer from;
  auto n = io(POLLIN, "recvfrom", [&](int fd) {
    from.length = sizeof from.storage;
    return ::recvfrom(fd, buffer, size, flags, from.get(), &from.length);
  });
  if (!n) return std::nullopt;
  if (*n < 0) throw_error(static_cast<int>(-*n), "recvfrom");
  return std::pair{static_cast<size_t>(*n), name_of(from)};
}

std::optional<ReceivedMessage> Socket::recv_msg(std::span<const iovec> buffers, size_t control_size,
                                                int flags) {
  AddressBuffer from;
  std::vector<char> control(control_size);
  msghdr header{};
  auto n = io(POLLIN, "recvmsg", [&](int fd) {
    header = msghdr{};
    header.msg_name = from.get();
    header.msg_namelen = sizeof from.storage;
    header.msg_iov = const_cast<iovec*>(buffers.data());
    header.msg_iovlen = buffers.size();
    header.msg_control = control.empty() ? nullptr : control.data();
    header.msg_controllen = control.size();
    // Fds passed to us must be CLOEXEC like every other fd we open.
    return ::recvmsg(fd, &header, flags | MSG_CMSG_CLOEXEC);
  });
  if (!n) return std::nullopt;
  if (*n < 0) throw_error(static_cast<int>(-*n), "recvmsg");
  from.length = header.msg_namelen;
  // The kernel echoes MSG_CMSG_CLOEXEC back in msg_flags; it is our request, not news.
  return ReceivedMessage{static_cast<size_t>(*n), unpack_control(header),
                         header.msg_flags & ~MSG_CMSG_CLOEXEC, name_of(from)};
}

// CMSG_SPACE pads the room to a multiple of 8 bytes, so an odd max_fds leaves room for one fd
// more: the count is checked here, not left to the kernel's MSG_CTRUNC.
std::optional<ReceivedFds> Socket::recv_fds(void* buffer, size_t size, size_t max_fds, int flags) {
  iovec data{buffer, size};
  size_t room = std::min(max_fds, kMaxFdsPerMessage);
  auto message = recv_msg(std::span(&data, 1), CMSG_SPACE(room * sizeof(int)), flags);
  if (!message) return std::nullopt;
  ReceivedFds received{message->size, {}, message->flags, std::move(message->address)};
  for (const auto& item : message->control) {
    if (item.level != SOL_SOCKET || item.type != SCM_RIGHTS) continue;
    for (size_t offset = 0; offset + sizeof(int) <= item.data.size(); offset += sizeof(int)) {
      int fd;
      std::memcpy(&fd, item.data.data() + offset, sizeof fd);
      received.fds.emplace_back(fd);  // owned from here on: closed if we throw below
    }
  }
  bool truncated = received.flags & MSG_CTRUNC;
  if (truncated || received.fds.size() > max_fds)
    throw Error(EMSGSIZE, "recv_fds", {},
                "more file descriptors were sent than maxfds=" + std::to_string(max_fds) +
                    (truncated ? " (MSG_CTRUNC)" : "") + "; the " + std::to_string(received.fds.size()) +
                    " that arrived were closed");
  return received;
}

// --- names and options -----------------------------------------------------------------------

Address Socket::local_address() const {
  AddressBuffer name;
  check(::getsockname(checked_fd("getsockname"), name.get(), &name.length), "getsockname");
  if (name.length == 0) return UnixAddress();
  return name.address();
}

Address Socket::peer_address() const {
  AddressBuffer name;
  check(::getpeername(checked_fd("getpeername"), name.get(), &name.length), "getpeername");
  if (name.length == 0) return UnixAddress();
  return name.address();
}

int Socket::get_option(int level, int name) const {
  int value = 0;
  socklen_t size = sizeof value;
  check(::getsockopt(checked_fd("getsockopt"), level, name, &value, &size), "getsockopt");
  return value;
}

std::string Socket::get_option_bytes(int level, int name, size_t size) const {
  std::string value(size, '\0');
  auto length = static_cast<socklen_t>(size);
  check(::getsockopt(checked_fd("getsockopt"), level, name, value.data(), &length), "getsockopt");
  value.resize(length);
  return value;
}

void Socket::set_option(int level, int name, int value) {
  check(::setsockopt(checked_fd("setsockopt"), level, name, &value, sizeof value), "setsockopt");
}

void Socket::set_option_bytes(int level, int name, const void* value, size_t size) {
  check(::setsockopt(checked_fd("setsockopt"), level, name, value, static_cast<socklen_t>(size)),
        "setsockopt");
}

PeerCredentials Socket::peer_credentials() const {
  ucred credentials{};
  socklen_t size = sizeof credentials;
  check(::getsockopt(checked_fd("peer_credentials"), SOL_SOCKET, SO_PEERCRED, &credentials, &size),
        "getsockopt(SO_PEERCRED)");
  return {credentials.pid, credentials.uid, credentials.gid};
}

}  // namespace socketeer
