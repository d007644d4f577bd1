// The hot loop's syscalls, made without glibc's cancellation-point wrappers.
//
// recv, send, sendmsg and epoll_wait are pthread cancellation points. Once a process has a second
// thread (any Python program that started one: Server.start(), Jupyter's kernel, pytest-timeout),
// glibc wraps each of them in a switch to asynchronous cancellation and back: two atomic
// read-modify-writes on the thread descriptor around every call. In the reactor's profile that
// was 12 % of its user-space time (10x64 B echo). socketeer never cancels threads, so the calls
// made once or more per message go through syscall(2), which is not a cancellation point. The
// results are the same as the wrappers' (-1 and errno on failure).
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace socketeer::nocancel {

inline ssize_t recv(int fd, void* buffer, size_t size, int flags) {
  return ::syscall(SYS_recvfrom, fd, buffer, size, flags, nullptr, nullptr);
}

inline ssize_t send(int fd, const void* data, size_t size, int flags) {
  return ::syscall(SYS_sendto, fd, data, size, flags, nullptr, 0);
}

inline ssize_t sendto(int fd, const void* data, size_t size, int flags, const sockaddr* to, socklen_t length) {
  return ::syscall(SYS_sendto, fd, data, size, flags, to, length);
}

inline int recvmmsg(int fd, mmsghdr* headers, unsigned count, int flags) {
  return static_cast<int>(::syscall(SYS_recvmmsg, fd, headers, count, flags, nullptr));
}

inline int sendmmsg(int fd, mmsghdr* headers, unsigned count, int flags) {
  return static_cast<int>(::syscall(SYS_sendmmsg, fd, headers, count, flags));
}

inline ssize_t sendmsg(int fd, const msghdr* header, int flags) {
  return ::syscall(SYS_sendmsg, fd, header, flags);
}

inline int epoll_wait(int epoll_fd, epoll_event* events, int capacity, int timeout_ms) {
  // epoll_pwait with no mask is epoll_wait, and exists on every architecture (arm64 has no
  // plain epoll_wait); the last argument is the kernel's sigset size.
  return static_cast<int>(::syscall(SYS_epoll_pwait, epoll_fd, events, capacity, timeout_ms, nullptr, 8));
}

}  // namespace socketeer::nocancel
