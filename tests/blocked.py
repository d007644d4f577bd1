"""Is a thread blocked in the kernel, and in which call? /proc/self/task/<tid>/syscall says,
with no guessing from timing. For tests that must act once a call really waits."""

from __future__ import annotations

import platform

import pytest

# Syscall numbers per architecture, by what a blocked socketeer call waits in.
RECV = {"x86_64": {45, 7, 271}, "aarch64": {207, 73}}  # recvfrom, and poll/ppoll (a recv with a timeout)
# Any socket call or readiness wait: poll, ppoll, recvfrom, sendto, connect, accept, accept4, recvmsg,
# sendmsg, epoll_wait, epoll_pwait.
SOCKET_WAIT = {"x86_64": {7, 271, 45, 44, 42, 43, 288, 47, 46, 232, 281},
               "aarch64": {73, 207, 206, 203, 202, 242, 212, 211, 22}}


def blocked_in(thread_id: int, table: dict[str, set[int]]) -> bool:
    """True while the thread is in one of the table's syscalls (False once it has ended)."""
    numbers = table.get(platform.machine())
    if numbers is None:
        pytest.skip(f"no syscall numbers known for {platform.machine()}")
    try:
        with open(f"/proc/self/task/{thread_id}/syscall") as file:
            first = file.read().split()[0]
    except (FileNotFoundError, ProcessLookupError):  # the thread ended (before or while reading)
        return False
    return first.isdigit() and int(first) in numbers
