"""``Socket``: a drop-in for ``socket.socket`` over socketeer's C++ core, plus the extras.

Like the standard library's ``socket.socket``, which subclasses ``_socket.socket``, this class
subclasses the C++ ``_core.Socket``: the hot methods (``send``, ``recv_into``, ``sendto``,
``recvfrom``, ``fileno`` ...) are the C++ ones, called with no Python frame in between, and only
the ergonomics live here.
"""

from __future__ import annotations

import io
import os
import socket as _stdlib
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from . import _core
from ._display import Pretty, html_table, shown
from .address import AnyAddress
from .constants import AF_INET, AF_UNIX, SOCK_STREAM, AddressFamily, SocketKind, TcpState, to_family, to_kind

__all__ = ["Socket", "PeerCredentials", "TcpInfo", "socketpair", "fromfd"]


@dataclass(frozen=True)
class PeerCredentials:
    """The process on the other end of a unix socket, as the kernel saw it at connect time."""

    pid: int
    uid: int
    gid: int


@dataclass(frozen=True)
class TcpInfo(Pretty):
    """The kernel's ``struct tcp_info`` (getsockopt TCP_INFO). Times are in microseconds
    (``rtt``, ``rttvar``, ``rto``, ``min_rtt`` ...), windows in segments (``snd_cwnd``)."""

    state: TcpState | int
    ca_state: int
    retransmits: int
    probes: int
    backoff: int
    options: int
    rto: int
    ato: int
    snd_mss: int
    rcv_mss: int
    unacked: int
    sacked: int
    lost: int
    retrans: int
    fackets: int
    last_data_sent: int
    last_ack_recv: int
    last_data_recv: int
    last_ack_sent: int
    pmtu: int
    rcv_ssthresh: int
    rtt: int
    rttvar: int
    snd_ssthresh: int
    snd_cwnd: int
    advmss: int
    reordering: int
    rcv_rtt: int
    rcv_space: int
    total_retrans: int
    bytes_acked: int
    bytes_received: int
    bytes_sent: int
    bytes_retrans: int
    segs_out: int
    segs_in: int
    notsent_bytes: int
    min_rtt: int
    delivery_rate_app_limited: int
    delivery_rate: int

    def _repr_html_(self) -> str:
        """The fields one looks at first; the repr has them all."""
        rows: list[tuple[str, object]] = [
            ("state", _name(self.state)), ("rtt", f"{self.rtt} µs (±{self.rttvar})"), ("min rtt", f"{self.min_rtt} µs"),
            ("rto", f"{self.rto} µs"), ("snd_cwnd", f"{self.snd_cwnd} segments of {self.snd_mss} bytes"),
            ("unacked", self.unacked), ("retransmits", f"{self.retransmits} now, {self.total_retrans} in all"),
            ("bytes sent", self.bytes_sent), ("bytes received", self.bytes_received),
            ("not sent", self.notsent_bytes), ("delivery rate", f"{self.delivery_rate} bytes/s")]
        return html_table("socketeer.TcpInfo", rows)




class Socket(_core.Socket):
    """A socket with the method set and semantics of ``socket.socket``.

    Addresses may be given as :class:`~socketeer.Address` objects, as the stdlib's tuples, or as
    strings (``"127.0.0.1:80"``; on AF_UNIX sockets a string is a path, as in the stdlib).
    Errors are the stdlib's OSError subclasses, naming the operation and the address.

    Netlink and packet sockets have Address classes of their own (:class:`~socketeer.NetlinkAddress`,
    :class:`~socketeer.PacketAddress`): ``local_address`` and ``peer_address`` return them, and
    every method taking an address takes them, their text (``"netlink:0"``, ``"packet:lo/0x0003"``)
    or the stdlib's tuples, AF_NETLINK ``(pid, groups)`` and AF_PACKET ``(ifname, proto[, pkttype[,
    hatype[, addr]]])``, which the stdlib-shaped methods (getsockname, recvfrom ...) return, as
    for every family. Any other family uses the stdlib's forms both ways, ``local_address`` and
    ``peer_address`` included: ``(family, sa_data)`` out (the 14 bytes after the family field,
    as the stdlib's makesockaddr) and OSError("bad family") in. Unlike the stdlib, a number
    outside its field (a pid over 2**32 - 1, a pkttype over 255) raises OverflowError instead of
    being truncated, and an AF_PACKET interface name is looked up whole (if_nametoindex: OSError
    ENODEV for an unknown one, also for a name of 16 bytes or more, which the stdlib cuts short).
    ``repr()`` and ``_repr_html_()`` never raise, whatever the socket's family or state.

    The GIL is released while a call may wait: on a blocking socket, or one with a timeout. On a
    non-blocking socket (``settimeout(0)``, as event loops use them) send, recv and their kin are
    one syscall that cannot wait, and keep the GIL, as uvloop's do (benchmarks/bench_calls.py:
    64 B send + recv_into at 0.77x the stdlib's time non-blocking, 0.85x blocking, where both
    release it).
    """

    __slots__ = ("_io_refs", "_closed")

    def __init__(self, family: int = -1, type: int = -1, proto: int = -1, fileno: Optional[int] = None):
        if fileno is None:
            super().__init__(AF_INET if family == -1 else int(family), SOCK_STREAM if type == -1 else int(type),
                             0 if proto == -1 else int(proto))
        else:
            super().__init__(_core.Socket.adopt(_fileno_of(fileno)))
        self._io_refs = 0
        self._closed = False
        default = _stdlib.getdefaulttimeout()
        if default is not None and self.gettimeout() != 0.0:
            self.settimeout(default)

    @classmethod
    def _wrap(cls, core: _core.Socket) -> "Socket":
        """A Socket taking over the fd of a bare ``_core.Socket`` (from accept, dup, pair)."""
        sock = cls.__new__(cls)
        _core.Socket.__init__(sock, core)
        sock._io_refs = 0
        sock._closed = False
        return sock

    # --- what it is ------------------------------------------------------------------------

    @property
    def family(self) -> AddressFamily | int:
        """The address family (``AddressFamily.AF_INET`` ...)."""
        return to_family(self.family_number)

    @property
    def type(self) -> SocketKind | int:
        """The socket kind (``SocketKind.SOCK_STREAM`` ...)."""
        return to_kind(self.type_number)

    def __repr__(self) -> str:
        """As the stdlib's: fd, family, type, proto and the addresses that can be read. Never
        raises (a family without an Address class shows its stdlib tuple)."""
        parts = [f"fd={self.fileno()}"]
        if not self.closed:
            parts += [f"family={_name(self.family)}", f"type={_name(self.type)}", f"proto={self.proto}"]
            for label, method in (("laddr", self.getsockname), ("raddr", self.getpeername)):
                address = shown(method, None)
                if address:
                    parts.append(f"{label}={address!r}")
        closed = " [closed]" if self.closed else ""
        return f"<{type(self).__module__}.{type(self).__qualname__}{closed} {', '.join(parts)}>"

    def _repr_html_(self) -> str:
        return html_table(f"socketeer.{type(self).__name__}", self._describe())

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def _describe(self) -> list[tuple[str, object]]:
        if self.closed:
            return [("fd", -1), ("state", "closed")]
        rows: list[tuple[str, object]] = [("fd", self.fileno()), ("family", _name(self.family)),
                                          ("kind", _name(self.type))]
        rows.append(("timeout", "blocking" if self.gettimeout() is None else self.gettimeout()))
        rows += [("local", shown(lambda: self.local_address)), ("peer", shown(lambda: self.peer_address))]
        if self.family_number in (AddressFamily.AF_INET, AddressFamily.AF_INET6) and self.type_number == SOCK_STREAM:
            info = shown(self.tcp_info, None)  # None if the fd is no longer a TCP socket
            if isinstance(info, TcpInfo):
                rows.append(("tcp state", _name(info.state)))
                if info.state == TcpState.ESTABLISHED:
                    rows.append(("rtt", f"{info.rtt} µs (±{info.rttvar})"))
        return rows

    # --- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> "Socket":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_closed", True) is False and not self.closed:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
            self._close()

    def close(self) -> None:
        """Closes the socket (idempotent). With files from makefile() still open, the fd is
        closed when the last of them is.

        A call blocked on the socket in another thread (``recv``, ``accept``, ``sendall``,
        ``connect`` ..., with a timeout or without) is woken at once and raises OSError(EBADF);
        it never returns data, or a connection, that came after close() began. To wake it the
        socket is shut down (``SHUT_RDWR``): the peer sees the end of the stream, and so do
        the socket's ``dup()`` copies. The fd number stays taken until that call has left, so it
        cannot be handed to a new socket under it."""
        self._closed = True
        if self._io_refs <= 0:
            self._close()

    def _decref_socketios(self) -> None:
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    def accept(self) -> tuple["Socket", Any]:
        """Accepts a connection: ``(Socket, address_tuple)``, like the stdlib's."""
        core, address = self._accept()
        sock = self._wrap(core)
        default = _stdlib.getdefaulttimeout()
        if default is not None:
            sock.settimeout(default)
        return sock, address

    def dup(self) -> "Socket":
        """A new Socket on a duplicate (CLOEXEC) fd, with the same timeout."""
        return self._wrap(self._dup())

    def get_inheritable(self) -> bool:
        """Whether a child process inherits the fd (False: every fd socketeer opens is CLOEXEC)."""
        return os.get_inheritable(self.fileno())

    def set_inheritable(self, inheritable: bool) -> None:
        """Lets a child process inherit the fd (True), or not (False), as ``socket.set_inheritable``."""
        os.set_inheritable(self.fileno(), inheritable)

    # --- extras ----------------------------------------------------------------------------

    def send_fds(self, data: Any, fds: Sequence[int], flags: int = 0, address: Any = None) -> int:
        """Sends ``data`` with open fds attached (SCM_RIGHTS). ``data`` is bytes-like or a list of
        them, as in ``socket.send_fds``."""
        if isinstance(data, (list, tuple)):
            data = b"".join(data)
        return super().send_fds(data, [_fileno_of(fd) for fd in fds], flags, address)

    def recv_fds(self, bufsize: int, maxfds: int, flags: int = 0) -> tuple[bytes, list[int], int, Any]:
        """Receives ``(data, fds, msg_flags, address)``. The fds are new, CLOEXEC and yours to
        close. If more than ``maxfds`` were sent, the ones that arrived are closed and OSError
        (EMSGSIZE) is raised rather than handing over a silently truncated list."""
        return super().recv_fds(bufsize, maxfds, flags)

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
        """``(data, ancdata, msg_flags, address)``, as ``socket.recvmsg``."""
        if bufsize < 0:
            raise ValueError("negative buffer size in recvmsg()")
        if ancbufsize < 0:
            raise ValueError("invalid ancillary data buffer length")
        buffer = bytearray(bufsize)
        size, ancdata, msg_flags, address = self.recvmsg_into([buffer], ancbufsize, flags)
        return bytes(buffer[:size]), ancdata, msg_flags, address

    def peer_credentials(self) -> PeerCredentials:
        """The pid, uid and gid of the peer of a connected unix socket (SO_PEERCRED)."""
        return PeerCredentials(*self._peer_credentials())

    def tcp_info(self) -> TcpInfo:
        """The kernel's TCP_INFO for this TCP socket: state, rtt, rttvar, snd_cwnd, retransmits ..."""
        info: TcpInfo = self._tcp_info()
        return info

    @classmethod
    def from_stdlib(cls, sock: _stdlib.socket) -> "Socket":
        """A socketeer Socket on a duplicate of a stdlib socket's fd (both stay usable)."""
        dup = cls._wrap(_core.Socket.adopt(os.dup(sock.fileno())))
        dup.settimeout(sock.gettimeout())
        return dup

    def to_stdlib(self) -> _stdlib.socket:
        """A stdlib ``socket.socket`` on a duplicate of this socket's fd (both stay usable)."""
        dup = self._dup()
        sock = _stdlib.socket(self.family_number, self.type_number, self.proto, fileno=dup.detach())
        sock.settimeout(self.gettimeout())
        return sock

    # The stdlib's own implementations, which only call public socket methods.
    makefile = _stdlib.socket.makefile
    _sendfile_use_send = _stdlib.socket._sendfile_use_send  # type: ignore[attr-defined]
    _check_sendfile_params = _stdlib.socket._check_sendfile_params  # type: ignore[attr-defined]

    def sendfile(self, file: Any, offset: int = 0, count: Optional[int] = None) -> int:
        """Sends ``file`` (opened in binary mode) from ``offset`` to its end, or ``count`` bytes,
        with sendfile(2); returns how many bytes were sent and leaves the file position after the
        last one, also when an error ends it. The stdlib's contract: a file without a file
        descriptor (``io.BytesIO``), or one sendfile(2) refuses before sending anything, goes with
        ``send()`` instead; non-blocking sockets and non-stream sockets raise ValueError; the
        socket's timeout applies to each wait for room. Unlike the stdlib's (os.sendfile), a peer
        that is gone raises BrokenPipeError even where SIGPIPE is at its default action: the
        C++ call keeps the signal from the process."""
        self._check_sendfile_params(file, offset, count)
        try:
            fileno = file.fileno()
            size = os.fstat(fileno).st_size
        except (AttributeError, io.UnsupportedOperation, OSError):
            return self._sendfile_use_send(file, offset, count)  # not a regular file
        if not size:
            return 0  # empty (or a pipe), as the stdlib's
        if self.gettimeout() == 0:
            raise ValueError("non-blocking sockets are not supported")
        total = 0
        try:
            while True:
                block = min(count - total if count else size, 2**30)  # 1 GiB at most per call (bpo-38319)
                if block <= 0:
                    break
                try:
                    sent = self._send_file(fileno, offset, block)
                except TimeoutError:
                    raise
                except OSError:
                    if total == 0:
                        return self._sendfile_use_send(file, offset, count)
                    raise
                if sent == 0:
                    break  # end of file
                offset += sent
                total += sent
            return total
        finally:
            if total > 0 and hasattr(file, "seek"):
                file.seek(offset)


def _name(value: int) -> str:
    return getattr(value, "name", str(value))


def _enum_or_value(enum_type: Any, value: int) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        return value


def _fileno_of(obj: Any) -> int:
    if isinstance(obj, int):
        return obj
    fileno = getattr(obj, "fileno", None)
    if fileno is None:
        raise TypeError(f"expected an fd (int) or an object with fileno(), not {type(obj).__name__!r}")
    return fileno()


def socketpair(family: int = AF_UNIX, type: int = SOCK_STREAM, proto: int = 0) -> tuple[Socket, Socket]:
    """A pair of connected Sockets (unix STREAM by default), like ``socket.socketpair``."""
    a, b = _core.Socket.pair(int(family), int(type), int(proto))
    pair = Socket._wrap(a), Socket._wrap(b)
    default = _stdlib.getdefaulttimeout()
    if default is not None:  # as the stdlib's, which builds both ends with socket(fileno=...)
        for sock in pair:
            sock.settimeout(default)
    return pair


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> Socket:
    """A Socket on a duplicate of ``fd`` (the original stays open and yours), like ``socket.fromfd``."""
    duplicate = os.dup(_fileno_of(fd))
    try:
        return Socket(family, type, proto, fileno=duplicate)
    except BaseException:
        os.close(duplicate)
        raise


# The core hands TCP_INFO out (Socket.tcp_info(), socketeer.sockets(tcp_info=True)) as this
# TcpInfo, built in C++ by one converter (cpp/bindings/tcp_info.cpp), its state a TcpState.
_core._tcp_info_types(TcpInfo, lambda state: _enum_or_value(TcpState, state))
