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

// What a call made with MSG_DONTWAIT returned: its count, or nullopt when it would have blocked.
std::optional<size_t> dontwait_result(ssize_t n, std::string_view operation) {
  if (n >= 0) return static_cast<size_t>(n);
  if (would_block(errno)) return std::nullopt;
  throw_error(errno, operation);
}

// Waits with poll() until fd is ready; false on timeout. EINTR recomputes the time left.
bool poll_fd(int fd, short events, Timeout timeout) {
  pollfd entry{fd, events, 0};
  auto end = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  for (;;) {
    int ready = ::poll(&entry, 1, timeout_to_ms(timeout));
    if (ready >= 0) return ready > 0;
    if (errno != EINTR) throw_error(errno, "poll");
    on_interrupt();
    if (timeout) timeout = std::max(0ns, std::chrono::duration_cast<std::chrono::nanoseconds>(end - Clock::now()));
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

std::vector<ControlMessage> unpack_control(msghdr& header) {
  std::vector<ControlMessage> messages;
  for (cmsghdr* item = CMSG_FIRSTHDR(&header); item; item = CMSG_NXTHDR(&header, item)) {
    auto data = reinterpret_cast<const char*>(CMSG_DATA(item));
    size_t size = item->cmsg_len - (data - reinterpret_cast<const char*>(item));
    messages.push_back({item->cmsg_level, item->cmsg_type, std::string(data, size)});
  }
  return messages;
}

std::optional<Address> name_of(const AddressBuffer& name) {
  if (name.length == 0) return std::nullopt;
  return name.address();
}

}  // namespace

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
  if (type & SOCK_NONBLOCK) timeout_ = 0ns;
}

Socket::Socket(Fd fd, int family, int type, int protocol)
    : fd_(std::move(fd)), family_(family), type_(type), protocol_(protocol) {}

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
  if (flags & O_NONBLOCK) adopted.timeout_ = 0ns;
  return adopted;
}

std::pair<Socket, Socket> Socket::pair(int family, int type, int protocol) {
  int fds[2];
  if (::socketpair(family, type | SOCK_CLOEXEC, protocol, fds) < 0)
    throw_error(errno, "socketpair", "(" + family_name(family) + ", " + type_name(type) + ")");
  int clean_type = type & ~kSocketTypeFlags;
  std::pair<Socket, Socket> sockets{Socket(Fd(fds[0]), family, clean_type, protocol),
                                    Socket(Fd(fds[1]), family, clean_type, protocol)};
  if (type & SOCK_NONBLOCK) sockets.first.timeout_ = sockets.second.timeout_ = 0ns;
  return sockets;
}

int Socket::checked_fd(const char* operation) const {
  if (!fd_.valid()) throw Error(EBADF, operation, {}, "socket is closed");
  return fd_.get();
}

void Socket::set_timeout(Timeout timeout) {
  int fd = checked_fd("settimeout");
  int flags = check(::fcntl(fd, F_GETFL), "fcntl");
  int wanted = timeout ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (wanted != flags) check(::fcntl(fd, F_SETFL, wanted), "fcntl");
  timeout_ = timeout;
}

void Socket::close() { fd_.close(); }

Socket Socket::dup() const {
  Socket copy(dup_cloexec(checked_fd("dup")), family_, type_, protocol_);
  copy.timeout_ = timeout_;
  return copy;
}

void Socket::shutdown(int how) { check(::shutdown(checked_fd("shutdown"), how), "shutdown"); }

bool Socket::wait(short events, Timeout timeout) const {
  return poll_fd(checked_fd("wait"), events, timeout);
}

// --- I/O with CPython's timeout semantics ----------------------------------------------------

template <typename Call>
std::optional<ssize_t> Socket::io(short events, const char* operation, Call&& call) {
  int fd = checked_fd(operation);
  Deadline deadline(timeout_);
  for (;;) {
    ssize_t n = call(fd);
    if (n >= 0) return n;
    int code = errno;
    if (code == EINTR) {
      on_interrupt();
      continue;
    }
    if (!would_block(code) || !timeout_ || *timeout_ == 0ns) {
      if (would_block(code)) return std::nullopt;
      return -code;  // the caller names its target in the error
    }
    if (!poll_fd(fd, events, deadline.remaining(operation))) throw_timeout(operation);
  }
}

void Socket::bind(const Address& address) {
  check_with(::bind(checked_fd("bind"), sockaddr_of(address), length_of(address)), "bind",
             [&] { return on_target(address); });
}

void Socket::listen(int backlog) { check(::listen(checked_fd("listen"), backlog), "listen"); }

std::optional<std::pair<Socket, Address>> Socket::accept() {
  AddressBuffer peer;
  auto n = io(POLLIN, "accept", [&](int fd) {
    peer.length = sizeof peer.storage;
    return static_cast<ssize_t>(::accept4(fd, peer.get(), &peer.length, SOCK_CLOEXEC));
  });
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
  int fd = checked_fd("connect");
  if (::connect(fd, sockaddr_of(address), length_of(address)) == 0) return;
  int code = errno;
  bool in_progress = code == EINPROGRESS || code == EINTR;
  if (!in_progress || (timeout_ && *timeout_ == 0ns))
    throw_error(code, "connect", to_target(address));
  if (code == EINTR) on_interrupt();
  Deadline deadline(timeout_);
  for (;;) {
    Timeout left = deadline.remaining("connect");
    if (poll_fd(fd, POLLOUT, left)) break;
    if (left) throw_timeout("connect " + to_target(address));
  }
  code = get_option(SOL_SOCKET, SO_ERROR);
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
  int fd = checked_fd("sendall");
  Deadline deadline(timeout_);
  while (size > 0) {
    ssize_t n = ::send(fd, bytes, size, flags | MSG_NOSIGNAL);
    if (n >= 0) {
      bytes += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    int code = errno;
    if (code == EINTR) {
      on_interrupt();
      continue;
    }
    if (!would_block(code) || !timeout_ || *timeout_ == 0ns) throw_error(code, "sendall");
    if (!poll_fd(fd, POLLOUT, deadline.remaining("sendall"))) throw_timeout("sendall");
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

std::optional<ReceivedFds> Socket::recv_fds(void* buffer, size_t size, size_t max_fds, int flags) {
  iovec data{buffer, size};
  auto message = recv_msg(std::span(&data, 1), CMSG_SPACE(max_fds * sizeof(int)), flags);
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
  if (received.flags & MSG_CTRUNC)
    throw Error(EMSGSIZE, "recv_fds", {},
                "more file descriptors were sent than maxfds=" + std::to_string(max_fds) +
                    " (MSG_CTRUNC); the " + std::to_string(received.fds.size()) +
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
