"""Socket-state assertions for tests, from the kernel's own socket list (sock_diag, through
``socketeer.sockets``): "this test left no socket in CLOSE_WAIT", "nobody listens on port 8080",
and the one-line description of a socket the fd-leak report prints.

Importing this module does not import the extension: ``socketeer.sockets`` is reached inside the
calls, so the pytest plugin can import this at start-up even when the build is broken.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Optional, Union

from ..constants import AF_INET6, AF_UNIX, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, TcpState, to_tcp_states

if TYPE_CHECKING:
    from ..diag import SocketList, SocketRecord

__all__ = ["SocketWatch", "StateArg", "parse_states", "describe_socket", "describe_socket_fds", "socket_fds"]

StateArg = Union[TcpState, int, str, Iterable[Union[TcpState, int, str]]]
NetnsLike = Union[str, "os.PathLike[str]", int, Any]  # a name, a path, an fd, or a NetNamespace

SIOCGSKNS = 0x894C  # linux/sockios.h: an fd for the network namespace a socket lives in

_UNIX_KINDS: dict[int, str] = {SOCK_STREAM: "stream", SOCK_DGRAM: "dgram", SOCK_SEQPACKET: "seqpacket"}
# States a socket is in with no fd left (its inode is 0): no process holds them.
_OWNERLESS = frozenset({TcpState.TIME_WAIT, TcpState.SYN_RECV, TcpState.NEW_SYN_RECV})
_WILDCARD_HOSTS = ("0.0.0.0", "::")


def parse_states(state: StateArg) -> frozenset[TcpState]:
    """TcpStates from names, numbers or TcpStates, ss's spellings too (see
    :func:`socketeer.constants.to_tcp_states`); ValueError naming an unknown one."""
    return to_tcp_states(state)


def socket_fds() -> dict[int, int]:
    """{inode: fd} for the sockets this process has open (from /proc/self/fd)."""
    from .fds import open_fds
    return {int(target[8:-1]): fd for fd, target in open_fds().items() if target.startswith("socket:[")}


def _unix_name(address: Any) -> Optional[str]:
    if address is None or address.unnamed:
        return None
    return f"@{address.path}" if address.abstract else str(address.path)


def describe_socket(record: "SocketRecord") -> str:
    """One line for a SocketRecord, in the fd-leak report's form: 'tcp 127.0.0.1:40000 ->
    127.0.0.1:8080 ESTABLISHED', 'udp6 [::1]:53 -> [::]:0', 'unix stream /run/x.sock',
    'unix stream -> inode 4242' (the peer of a socketpair). Bytes waiting in a connection's
    queues follow: ', recv-q 1' (a CLOSE_WAIT socket's unread FIN counts one)."""
    if record.family == AF_UNIX:
        parts = [f"unix {_UNIX_KINDS.get(int(record.kind), str(record.kind))}"]
        local = _unix_name(record.local)
        if local:
            parts.append(local)
        if record.peer_inode:
            parts += ["->", _unix_name(record.remote) or f"inode {record.peer_inode}"]
        return " ".join(parts)
    netid = record.netid + ("6" if record.family == AF_INET6 else "")
    state = record.state
    line = f"{netid} {record.local} -> {record.remote}"
    if netid.startswith("tcp"):
        line += f" {getattr(state, 'name', state)}"
    queues = [f"{name} {value}" for name, value in (("recv-q", record.recv_queue), ("send-q", record.send_queue))
              if value]
    if queues and state != TcpState.LISTEN:  # a listener's queues are its backlog, not data
        line += ", " + " ".join(queues)
    return line


def describe_socket_fds(fds: Mapping[int, int]) -> dict[int, str]:
    """{fd: describe_socket(...)} for this process's socket fds ``{fd: inode}``, from sock_diag.
    A socket made inside another network namespace (a test's ``socketeer_netns``) is looked up
    there (the kernel names a socket's namespace: SIOCGSKNS), its line ending ', netns NAME'.
    Sockets sock_diag does not list (netlink, packet) are left out. Raises ImportError when the
    extension does not import, OSError when sock_diag fails."""
    from ..diag import sockets
    by_inode = {inode: fd for fd, inode in fds.items()}
    found = {by_inode[r.inode]: describe_socket(r) for r in sockets(all=True) if r.inode in by_inode}
    for fd, netns_fd in _foreign_namespaces(fd for fd in fds if fd not in found):
        with os.fdopen(netns_fd, "rb", buffering=0) as netns:
            inode, name = fds[fd], _netns_name(os.fstat(netns.fileno()).st_ino)
            for record in sockets(all=True, netns=netns.fileno()):
                if record.inode == inode:
                    found[fd] = f"{describe_socket(record)}, netns {name}"
    return found


def _foreign_namespaces(fds: Iterable[int]) -> Iterator[tuple[int, int]]:
    """(fd, an fd of its network namespace) for each socket fd living in another namespace."""
    own = os.stat("/proc/self/ns/net").st_ino
    for fd in fds:
        try:
            netns_fd = fcntl.ioctl(fd, SIOCGSKNS)
        except OSError:  # not a socket any more, or a kernel without SIOCGSKNS
            continue
        if os.fstat(netns_fd).st_ino == own:
            os.close(netns_fd)
        else:
            yield fd, netns_fd


def _netns_name(inode: int) -> str:
    """The ``ip netns`` name of the namespace with that inode, or 'net:[INODE]'."""
    try:
        names = os.listdir("/run/netns")
    except OSError:
        names = []
    for name in names:
        try:
            if os.stat(f"/run/netns/{name}").st_ino == inode:
                return name
        except OSError:
            continue
    return f"net:[{inode}]"


def _open_netns(netns: NetnsLike) -> int:
    if isinstance(netns, int):
        return os.dup(netns)  # non-inheritable, like every fd Python makes
    path = os.fspath(getattr(netns, "path", netns))
    return os.open(path if os.sep in path else f"/run/netns/{path}", os.O_RDONLY | os.O_CLOEXEC)


class SocketWatch:
    """This process's sockets as the kernel sees them, from the moment the watch was made; the
    ``socketeer_sockets`` fixture (see its docstring for the whole API)."""

    def __init__(self, netns: Optional[NetnsLike] = None):
        self.started = frozenset(socket_fds())  # the inodes of this process's sockets at start
        self.netns_fd: Optional[int] = None
        self.netns_label = "this network namespace"
        if netns is not None:
            self.netns_label = f"network namespace {getattr(netns, 'name', netns)}"
            # Held open, so the namespace stays listable until close() even once its name is gone.
            self.netns_fd = _open_netns(netns)
        self.expected: list[tuple[str, Any]] = []
        self.children: list[SocketWatch] = []

    # --- what is there --------------------------------------------------------------------------

    def list(self, kind: Any = None, **filters: Any) -> "SocketList":
        """``socketeer.sockets(kind, **filters)`` in the watched namespace (all states unless
        ``state=``/``listening=`` is given)."""
        from ..diag import sockets
        if not {"state", "listening", "all"} & filters.keys():
            filters["all"] = True
        return sockets(kind, netns=self.netns_fd, **filters)

    def mine(self) -> "SocketList":
        """This process's sockets now (every state), as SocketRecords."""
        return self._select(self.list(), socket_fds())

    def new(self) -> "SocketList":
        """This process's sockets opened since the watch started and still open."""
        fds = socket_fds()
        return self._select(self.list(), {inode: fd for inode, fd in fds.items() if inode not in self.started})

    @staticmethod
    def _select(records: "SocketList", inodes: Mapping[int, int]) -> "SocketList":
        from ..diag import SocketList
        return SocketList(r for r in records if r.inode in inodes)

    # --- assertions -----------------------------------------------------------------------------

    def assert_none(self, state: Optional[StateArg] = None, *, port: Optional[int] = None, kind: Any = None,
                    mine: bool = True, new: bool = False) -> None:
        """Fails (AssertionError) if a socket is in one of ``state`` (any state when None) with
        ``port`` at either end: of this process (``mine=True``), of those opened since the watch
        started (``new=True``), or anybody's in the namespace (``mine=False``). The message
        names each socket found: fd, kind, local -> remote, state, queues."""
        states = parse_states(state) if state is not None else None
        if mine and states is not None and states <= _OWNERLESS:
            raise ValueError(f"assert_none({', '.join(s.name for s in states)}): a socket in that state has no fd, "
                             "so it is no process's; pass mine=False (and port=) to look at the whole namespace")
        filters: dict[str, Any] = {"port": port} if port is not None else {}
        if states is not None:
            filters["state"] = states
        records = self.list(kind, **filters)
        fds = socket_fds()
        if new:
            records = self._select(records, {i: fd for i, fd in fds.items() if i not in self.started})
        elif mine:
            records = self._select(records, fds)
        if records:
            whose = "opened by this test" if new else "of this process" if mine else f"in {self.netns_label}"
            what = "/".join(s.name for s in sorted(states)) if states is not None else "any state"
            at = f" on port {port}" if port is not None else ""
            raise AssertionError(f"{len(records)} socket(s) {whose}{at} in {what}:\n"
                                 + self._describe(records, fds, processes=not (mine or new)))

    def listeners(self, port: int, host: Optional[str] = None) -> "SocketList":
        """The TCP sockets listening on ``port`` (any process), on ``host`` or a wildcard
        address (which accepts for every host) when ``host`` is given."""
        records = self.list("tcp", state=TcpState.LISTEN, sport=port)
        if host is None:
            return records
        from ..diag import SocketList
        return SocketList(r for r in records if str(getattr(r.local, "host", "")) in (host, *_WILDCARD_HOSTS))

    def assert_no_listener(self, port: int, host: Optional[str] = None) -> None:
        """Fails (AssertionError) if any process listens on TCP ``port`` (on ``host``, or a
        wildcard address, when given), naming each listener and who holds it."""
        found = self.listeners(port, host)
        if found:
            where = f"{host}:{port}" if host else f"port {port}"
            raise AssertionError(f"{len(found)} listener(s) on {where} in {self.netns_label}:\n"
                                 + self._describe(found, socket_fds(), processes=True))

    def assert_listening(self, port: int, host: Optional[str] = None) -> "SocketList":
        """Fails (AssertionError) unless some process listens on TCP ``port`` (on ``host``, or a
        wildcard address, when given); returns the listeners."""
        found = self.listeners(port, host)
        if not found:
            where = f"{host}:{port}" if host else f"port {port}"
            raise AssertionError(f"nobody listens on {where} in {self.netns_label}")
        return found

    def _describe(self, records: "SocketList", fds: Mapping[int, int], processes: bool) -> str:
        holders: dict[int, str] = {}
        if processes:  # who holds the sockets of other processes: asked only to word a failure
            for r in self.list(processes=True):
                holders[r.inode] = ", ".join(f"{p.name}[{p.pid}] fd {p.fd}" for p in r.processes or ())
        lines = []
        for r in records:
            holder = f"fd {fds[r.inode]}" if r.inode in fds else holders.get(r.inode) or "no process"
            lines.append(f"  {holder}: {describe_socket(r)} (inode {r.inode})")
        return "\n".join(lines)

    # --- at teardown ----------------------------------------------------------------------------

    def expect_at_teardown(self, *, no_state: Optional[StateArg] = None,
                           no_listener: Union[int, Iterable[int], None] = None) -> None:
        """Checks for the end of the test: no socket opened since the watch started left in
        ``no_state`` (``assert_none(no_state, new=True)``), nobody listening on ``no_listener``
        (a port or several). Run by ``check_teardown()``, which the fixture calls."""
        if no_state is not None:
            parse_states(no_state)  # a typo fails now, not at teardown
            self.expected.append(("no_state", no_state))
        ports = [no_listener] if isinstance(no_listener, int) else list(no_listener or ())
        self.expected += [("no_listener", port) for port in ports]

    def inside(self, netns: NetnsLike) -> "SocketWatch":
        """A watch on another network namespace (a NetNamespace, a name, a path or an fd),
        sharing this one's start; its teardown checks run with this one's."""
        child = SocketWatch(netns)
        child.started = self.started
        self.children.append(child)
        return child

    def check_teardown(self) -> None:
        """Runs the expect_at_teardown() checks (of this watch and those from inside()),
        raising one AssertionError naming every failure."""
        failures = []
        for watch in (self, *self.children):
            for check, value in watch.expected:
                try:
                    if check == "no_state":
                        watch.assert_none(value, new=True)
                    else:
                        watch.assert_no_listener(value)
                except AssertionError as error:
                    failures.append(str(error))
        if failures:
            raise AssertionError("at teardown: " + "\n".join(failures))

    def close(self) -> None:
        """Closes the namespace fds this watch and its inside() watches hold."""
        for watch in (*self.children, self):
            if watch.netns_fd is not None:
                os.close(watch.netns_fd)
                watch.netns_fd = None

    def __enter__(self) -> "SocketWatch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SocketWatch {self.netns_label}, {len(self.started)} socket(s) at start>"
