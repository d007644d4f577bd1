"""File descriptor snapshots for the fd-leak guard: which fds are open, and what each one is.

Standard library only at import (no ``socketeer._core``), so the guard works even when the
extension does not import: a leaked socket is described from sock_diag when it can be, from
/proc/self/net/* when not.
"""

from __future__ import annotations

import gc
import os
from typing import Optional

__all__ = ["FdGuard", "open_fds", "leaked_fds", "describe_fd", "describe_fds", "describe_leaks", "socket_details"]

# /proc/self/net files that list sockets by inode, and how to name their kind.
_SOCKET_TABLES = [("tcp", "tcp"), ("tcp6", "tcp6"), ("udp", "udp"), ("udp6", "udp6"), ("raw", "raw"),
                  ("raw6", "raw6"), ("unix", "unix")]
_TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
               7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


def open_fds() -> dict[int, str]:
    """{fd: readlink target} for every fd of this process ('socket:[123]', 'pipe:[45]', a path)."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the directory fd listdir itself used, closed by now
            pass
    return fds


def leaked_fds(before: dict[int, str], after: dict[int, str]) -> dict[int, str]:
    """fds open in ``after`` that were not open in ``before`` (or now point somewhere else)."""
    return {fd: target for fd, target in after.items() if before.get(fd) != target}


def describe_fd(fd: int, target: str) -> str:
    """'fd 7 -> socket:[1234] (tcp 127.0.0.1:40000 -> 127.0.0.1:8080 ESTABLISHED)' and the like."""
    return describe_fds({fd: target})[fd]


def describe_fds(fds: dict[int, str]) -> dict[int, str]:
    """{fd: describe_fd(fd, target)} for several fds, their sockets looked up in one dump."""
    details = socket_details({fd: int(target[len("socket:["):-1]) for fd, target in fds.items()
                              if target.startswith("socket:[")})
    return {fd: _describe(fd, target, details.get(fd)) for fd, target in fds.items()}


def _describe(fd: int, target: str, socket: Optional[str]) -> str:
    detail = socket
    if target.startswith("pipe:["):
        detail = "pipe"
    elif target.startswith("anon_inode:"):
        detail = target[len("anon_inode:"):].strip("[]")
    elif target.startswith("/"):
        detail = "file"
    return f"fd {fd} -> {target}" + (f" ({detail})" if detail else "")


def describe_leaks(leaked: dict[int, str]) -> str:
    """The leaked fds ({fd: what /proc said}), one indented line each, as the guard reports them."""
    described = describe_fds(leaked)
    return "\n".join("  " + described[fd] for fd in sorted(leaked))


def socket_details(sockets: dict[int, int]) -> dict[int, str]:
    """{fd: 'tcp 127.0.0.1:40000 -> 127.0.0.1:8080 ESTABLISHED'} for socket fds ``{fd: inode}``.

    From the kernel's socket list (sock_diag: the peer of a unix socket, the bytes queued, and
    sockets made inside another network namespace too); where the extension does not import or
    sock_diag fails, and for the sockets it does not list, from /proc/self/net/* as before."""
    found: dict[int, str] = {}
    if sockets:
        try:
            from .sockets import describe_socket_fds
            found = describe_socket_fds(sockets)
        except (ImportError, OSError):
            pass
    for fd, inode in sockets.items():
        if fd not in found:
            found[fd] = _describe_socket(str(inode))
    return found


def _describe_socket(inode: str) -> str:
    """The /proc/self/net/* description of a socket (the fallback), 'socket' if none lists it."""
    for table, kind in _SOCKET_TABLES:
        try:
            with open(f"/proc/self/net/{table}") as file:
                rows = file.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if table == "unix":
                if len(fields) >= 7 and fields[6] == inode:
                    path = fields[7] if len(fields) > 7 else ""
                    kinds = {"0001": "stream", "0002": "dgram", "0005": "seqpacket"}
                    return f"unix {kinds.get(fields[4], fields[4])}" + (f" {path}" if path else "")
            elif len(fields) >= 10 and fields[9] == inode:
                local, remote = _inet(fields[1]), _inet(fields[2])
                state = _TCP_STATES.get(int(fields[3], 16), "") if kind.startswith("tcp") else ""
                return " ".join(part for part in (kind, local, "->", remote, state) if part)
    return "socket"


def _inet(text: str) -> str:
    """'0100007F:1F90' (the kernel's hex, host byte order per 32-bit word) -> '127.0.0.1:8080'."""
    host_hex, port_hex = text.split(":")
    raw = bytes.fromhex(host_hex)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    port = int(port_hex, 16)
    if len(words) == 4:
        return f"{'.'.join(str(b) for b in words)}:{port}"
    import ipaddress
    return f"[{ipaddress.IPv6Address(words)}]:{port}"


class FdGuard:
    """The fds open when the test started; ``check()`` fails the test if any new one is open.
    Descriptors opened by the setup of a class/module/session fixture are excused: they belong to
    the fixture, which outlives the test."""

    def __init__(self) -> None:
        self.before = open_fds()
        self.excused: set[tuple[int, str]] = set()

    def leaks(self) -> dict[int, str]:
        leaked = self._new_fds()
        if leaked:
            # Objects that only a reference cycle kept alive close their fds once collected. Only
            # then: a full collection costs ~35 ms in a test session that has imported a few big
            # packages, and ran for every test it was half of this project's suite's time.
            gc.collect()
            leaked = self._new_fds()
        return leaked

    def _new_fds(self) -> dict[int, str]:
        leaked = leaked_fds(self.before, open_fds())
        return {fd: target for fd, target in leaked.items() if (fd, target) not in self.excused}

    def check(self) -> None:
        """Fails the running test (pytest.fail) naming each leaked fd."""
        leaked = self.leaks()
        if leaked:
            import pytest
            pytest.fail(f"test leaked {len(leaked)} file descriptor(s):\n{describe_leaks(leaked)}", pytrace=False)
