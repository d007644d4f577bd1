"""``socketeer.sockets()``: the kernel's own list of sockets (sock_diag), the ``ss`` of this library.

>>> for s in socketeer.sockets("tcp", listening=True):
...     print(s.local, s.state.name, s.listen_queue)
>>> socketeer.sockets("tcp", port=8080, tcp_info=True)[0].tcp_info.rtt

The dumps run in C++ with the GIL released; each :class:`SocketRecord` is one C++ object whose
properties convert on access, and ``.tcp_info`` is built on first access. Filters on state and
port run in the kernel: a filtered listing never copies the sockets it leaves out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import NamedTuple, Union

from . import _core
from ._display import html_grid, html_table
from .address import UnixAddress
from .constants import (AF_INET, AF_INET6, AF_UNIX, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, TcpState, to_family,
                        to_kind, to_tcp_states)
from . import socket as _socket  # noqa: F401  (registers TcpInfo with the core: .tcp_info hands it out)

__all__ = ["sockets", "SocketRecord", "SocketList", "SocketProcess"]

SocketRecord = _core.SocketRecord


class SocketProcess(NamedTuple):
    """A process holding a socket: its pid, the fd number in it, and its name (/proc/PID/comm)."""

    pid: int
    fd: int
    name: str


def _state(value: int) -> TcpState | int:
    try:
        return TcpState(value)
    except ValueError:
        return value


_core._diag_types(to_family, to_kind, _state, SocketProcess)

_INET_KINDS = ("tcp", "udp", "raw")
_UNIX_KINDS = {"unix": (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET), "unix_stream": (SOCK_STREAM,),
               "unix_dgram": (SOCK_DGRAM,), "unix_seqpacket": (SOCK_SEQPACKET,)}
_KINDS = (*_INET_KINDS, *_UNIX_KINDS)
_ALL_STATES = frozenset(TcpState)
# ss's default: the connections, not listeners, unconnected sockets, TIME_WAIT or half-open ones.
_CONNECTED = _ALL_STATES - {TcpState.LISTEN, TcpState.CLOSE, TcpState.TIME_WAIT, TcpState.SYN_RECV,
                            TcpState.NEW_SYN_RECV}
# ss -l: listeners, and the unconnected UDP, raw and unix sockets (ss's UNCONN), which wait too.
_LISTENING = frozenset({TcpState.LISTEN, TcpState.CLOSE})

NetnsArg = Union[str, "os.PathLike[str]", int, None]


def _kinds(kind: str | Iterable[str] | None) -> set[str]:
    if kind is None:
        return {"tcp", "udp", "raw", "unix"}
    names = [kind] if isinstance(kind, str) else list(kind)
    for name in names:
        if name not in _KINDS:
            raise ValueError(f"sockets(): unknown kind {name!r}; expected one of {', '.join(_KINDS)}")
    return set(names)


def _states(state: TcpState | int | str | Iterable[TcpState | int | str] | None, listening: bool,
            all: bool) -> frozenset[TcpState]:
    if state is None:
        if all:
            return _ALL_STATES
        return _LISTENING if listening else _CONNECTED
    if listening or all:
        raise ValueError("sockets(): state= names the states itself; give it or listening=/all=, not both")
    try:
        return to_tcp_states(state)
    except ValueError as error:
        raise ValueError(f"sockets(): {error}") from None


def _families(family: int | Iterable[int] | None) -> set[int]:
    if family is None:
        return {AF_INET, AF_INET6, AF_UNIX}
    items = [family] if isinstance(family, int) else list(family)
    for item in items:
        if item not in (AF_INET, AF_INET6, AF_UNIX):
            raise ValueError(f"sockets(): unsupported family {item!r}; expected AF_INET, AF_INET6 or AF_UNIX")
    return set(items)


class SocketList(list[SocketRecord]):
    """The records ``sockets()`` returns: a list, shown in Jupyter as a table like ``ss``'s."""

    def _repr_html_(self) -> str:
        headers = ("netid", "state", "recv-q", "send-q", "local", "peer", "inode")
        return html_grid(f"{len(self)} sockets", headers, (_columns(s) for s in self))


def _peer(s: SocketRecord) -> object:
    """What ss shows as the peer: the address, or for unix sockets the peer's name, its inode
    when it has no name, or "-" when not connected."""
    remote = s.remote
    if s.family != AF_UNIX:
        return remote
    if s.peer_inode is None:
        return "-"
    return f"inode {s.peer_inode}" if isinstance(remote, UnixAddress) and remote.unnamed else remote


def _columns(s: SocketRecord) -> tuple[object, ...]:
    state = s.state.name if isinstance(s.state, TcpState) else s.state
    return (s.netid, state, s.recv_queue, s.send_queue, s.local, _peer(s), s.inode)


def _record_html(self: SocketRecord) -> str:
    rows: list[tuple[str, object]] = [
        ("netid", self.netid), ("state", getattr(self.state, "name", self.state)), ("local", self.local),
        ("remote", _peer(self)), ("recv_queue", self.recv_queue), ("send_queue", self.send_queue),
        ("inode", self.inode), ("uid", self.uid)]
    if self.family == AF_UNIX:
        rows.append(("peer_inode", self.peer_inode))
    else:
        rows += [("timer", self.timer), ("timer_expires", self.timer_expires), ("retransmits", self.retransmits)]
    info = self.tcp_info
    if info is not None:
        rows += [("rtt (us)", info.rtt), ("snd_cwnd", info.snd_cwnd), ("retransmits", info.retransmits)]
    if self.processes is not None:
        rows.append(("processes", ", ".join(f"{p.name}[{p.pid}] fd {p.fd}" for p in self.processes) or "-"))
    return html_table("SocketRecord", rows)


# The records are built in C++ in bulk (one object each, no Python subclass to instantiate), so
# their notebook display is attached here, as address.py does for the Address classes.
SocketRecord._repr_html_ = _record_html


def sockets(kind: str | Iterable[str] | None = None, *, family: int | Iterable[int] | None = None,
            state: TcpState | int | str | Iterable[TcpState | int | str] | None = None,
            listening: bool = False, all: bool = False, port: int | None = None, sport: int | None = None,
            dport: int | None = None, tcp_info: bool = False, processes: bool = False,
            netns: NetnsArg = None) -> SocketList:
    """The sockets the kernel knows of (sock_diag), as :class:`SocketRecord` objects.

    kind: ``"tcp"``, ``"udp"``, ``"raw"``, ``"unix"`` (or ``"unix_stream"``, ``"unix_dgram"``,
    ``"unix_seqpacket"``), or a list of them; None: all of tcp, udp, raw and unix.
    family: AF_INET, AF_INET6, AF_UNIX or a list (None: all three).
    Which states, as ``ss`` chooses them: by default the connections (not listeners, not
    unconnected UDP/unix sockets, not TIME_WAIT or SYN_RECV); ``listening=True`` the listeners
    and unconnected sockets (``ss -l``); ``all=True`` every state (``ss -a``); or ``state=`` a
    TcpState, its name, or several. The state mask is applied in the kernel.
    port / sport / dport: keep INET sockets with that port at either end / locally / remotely
    (all given must match), filtered in the kernel; a port filter leaves unix sockets out.
    tcp_info: also fetch each TCP socket's TcpInfo (``.tcp_info``, built on first access).
    processes: also fill ``.processes`` with the (pid, fd, name) holding each socket, from
    /proc (only the processes this user may inspect).
    netns: list another network namespace's sockets: a name (as ``ip netns`` makes them, under
    /run/netns), a path (/proc/PID/ns/net), or an open fd of one. Only the netlink socket is
    made inside it; no thread of the caller changes namespace for longer than that.

    A kind whose sock_diag module the kernel lacks (often raw_diag) is left out of the default
    listing; asked for by name, it raises FileNotFoundError saying so.

    Raises ValueError for an unknown kind, state or family, FileNotFoundError for a namespace
    that does not exist, and the OSError of the netlink request that failed otherwise.
    """
    kinds = _kinds(kind)
    families = _families(family)
    states = _states(state, listening, all)
    mask = 0
    for s in states:
        mask |= 1 << s
    ports = (port, sport, dport)
    unix_kinds = 0
    if AF_UNIX in families and not any(p is not None for p in ports):
        for name in kinds & _UNIX_KINDS.keys():
            for k in _UNIX_KINDS[name]:
                unix_kinds |= 1 << k
    inet4, inet6 = AF_INET in families, AF_INET6 in families
    inet = inet4 or inet6
    records = _core.list_sockets("tcp" in kinds and inet, "udp" in kinds and inet, "raw" in kinds and inet,
                                 unix_kinds, inet4, inet6, mask, port, sport, dport, tcp_info, processes, netns,
                                 kind is None)
    return SocketList(records)
