"""The contract socketeer.Socket shares with socket.socket, written once and run against both.

Every test takes ``impl`` (the stdlib or socketeer: its socket class, socketpair and fromfd) and
asserts the behaviour the stdlib has, so the stdlib run proves each expectation is the stdlib's
own. Where a peer is needed it is the stdlib's socket, in both directions (``role``). Error paths
are also compared directly: the same failing call on both must raise the same exception type with
the same errno. Deliberate differences (socketeer's messages name the operation and the address;
a unix path over the limit is a ValueError) are asserted separately at the end.
"""

from __future__ import annotations

import array
import errno
import io
import os
import re
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Any, Callable

import pytest

import socketeer


@dataclass(frozen=True)
class Impl:
    name: str
    cls: type
    pair: Callable[..., tuple[Any, Any]]
    from_fd: Callable[..., Any]


STDLIB = Impl("stdlib", socket.socket, socket.socketpair, socket.fromfd)
SOCKETEER = Impl("socketeer", socketeer.Socket, socketeer.socketpair, socketeer.fromfd)
IMPLS = [STDLIB, SOCKETEER]


class Factory:
    """Makes sockets of one implementation; each is closed when the test ends."""

    def __init__(self, impl: Impl, closing):
        self.impl, self.name, self.cls, self._closing = impl, impl.name, impl.cls, closing

    def make(self, family=socket.AF_INET, kind=socket.SOCK_STREAM, proto=0):
        return self._closing(self.cls(family, kind, proto))

    def socketpair(self, family=socket.AF_UNIX, kind=socket.SOCK_STREAM):
        a, b = self.impl.pair(family, kind)
        return self._closing(a), self._closing(b)

    def fromfd(self, fd, family, kind):
        return self._closing(self.impl.from_fd(fd, family, kind))

    def keep(self, sock):
        return self._closing(sock)

    def listener(self, family=socket.AF_INET, host="127.0.0.1"):
        sock = self.make(family)
        sock.bind((host, 0))
        sock.listen()
        return sock

    def tcp_pair(self, family=socket.AF_INET, host="127.0.0.1"):
        """(client, accepted), both of this implementation, over loopback TCP."""
        server = self.listener(family, host)
        client = self.make(family)
        client.connect(server.getsockname())
        accepted, _ = server.accept()
        return client, self.keep(accepted)


@pytest.fixture(params=IMPLS, ids=lambda impl: impl.name)
def impl(request, closing) -> Factory:
    return Factory(request.param, closing)


@pytest.fixture
def stdlib(closing) -> Factory:
    """The peer: always the standard library."""
    return Factory(STDLIB, closing)


def refused_address(stdlib: Factory) -> tuple[str, int]:
    """A loopback port that refuses connections for the whole test: bound, never listening."""
    holder = stdlib.make()
    holder.bind(("127.0.0.1", 0))
    return holder.getsockname()


def full_backlog_listener(stdlib: Factory):
    """A listener whose accept queue is full, so a further connect's SYN is dropped and the
    connect hangs until its timeout: a black hole on loopback, with no other host involved."""
    server = stdlib.listener()
    server.listen(0)
    client = stdlib.make()
    client.connect(server.getsockname())  # fills the queue (backlog 0 admits one)
    return server


# --- life cycle over every family, both directions ------------------------------------------------

@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")],
                         ids=["inet", "inet6"])
def test_tcp_life_cycle_with_the_stdlib_as_peer(impl, stdlib, role, family, host):
    server_side, client_side = (impl, stdlib) if role == "server" else (stdlib, impl)
    server = server_side.listener(family, host)
    client = client_side.make(family)
    assert client.connect(server.getsockname()) is None
    accepted, peer = server.accept()
    server_side.keep(accepted)
    assert type(accepted) is server_side.cls
    assert peer == client.getsockname() == accepted.getpeername()
    assert client.getpeername() == server.getsockname() == accepted.getsockname()
    assert accepted.family == family and accepted.type == socket.SOCK_STREAM
    assert accepted.gettimeout() is None

    assert client.send(b"ping") == 4
    assert accepted.recv(4) == b"ping"
    assert accepted.sendall(b"pong" * 1000) is None
    received = b""
    while len(received) < 4000:
        received += client.recv(4000 - len(received))
    assert received == b"pong" * 1000


@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_SEQPACKET], ids=["stream", "seqpacket"])
@pytest.mark.parametrize("where", ["path", "abstract"])
def test_unix_life_cycle_with_the_stdlib_as_peer(impl, stdlib, short_tmp, role, kind, where):
    name = str(short_tmp / "s") if where == "path" else b"\0socketeer-contract-%d" % os.getpid()
    server_side, client_side = (impl, stdlib) if role == "server" else (stdlib, impl)
    server = server_side.make(socket.AF_UNIX, kind)
    server.bind(name)
    server.listen()
    assert server.getsockname() == name
    client = client_side.make(socket.AF_UNIX, kind)
    client.connect(name)
    accepted, peer = server.accept()
    server_side.keep(accepted)
    assert peer == client.getsockname() == ""  # an unbound client has no name: the stdlib's ''
    assert client.getpeername() == name
    client.sendall(b"one")
    client.sendall(b"two")
    if kind == socket.SOCK_SEQPACKET:  # record boundaries are kept
        assert (accepted.recv(100), accepted.recv(100)) == (b"one", b"two")
    else:
        received = b""
        while len(received) < 6:
            received += accepted.recv(100)
        assert received == b"onetwo"


@pytest.mark.parametrize("role", ["receiver", "sender"])
@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")],
                         ids=["inet", "inet6"])
def test_udp_sendto_recvfrom_with_the_stdlib_as_peer(impl, stdlib, role, family, host):
    receiver_side, sender_side = (impl, stdlib) if role == "receiver" else (stdlib, impl)
    receiver = receiver_side.make(family, socket.SOCK_DGRAM)
    receiver.bind((host, 0))
    sender = sender_side.make(family, socket.SOCK_DGRAM)
    sender.bind((host, 0))
    assert sender.sendto(b"first", receiver.getsockname()) == 5
    assert sender.sendto(b"second", 0, receiver.getsockname()) == 6
    assert sender.sendto(memoryview(b"third!"), receiver.getsockname()) == 6
    assert receiver.recvfrom(100) == (b"first", sender.getsockname())
    buffer = bytearray(10)
    assert receiver.recvfrom_into(buffer, 3) == (3, sender.getsockname())  # the rest is dropped
    assert buffer[:4] == b"sec\0"
    assert receiver.recvfrom_into(buffer) == (6, sender.getsockname())
    assert buffer[:6] == b"third!"


def test_connected_udp(impl, stdlib):
    receiver = stdlib.make(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    sock = impl.make(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(receiver.getsockname())
    assert sock.getpeername() == receiver.getsockname()
    assert sock.send(b"hello") == 5
    data, sender = receiver.recvfrom(100)
    assert (data, sender) == (b"hello", sock.getsockname())
    receiver.sendto(b"back", sender)
    assert sock.recv(100) == b"back"


@pytest.mark.parametrize("sender_name", ["unbound", "path", "abstract"])
def test_unix_dgram_recvfrom_reports_the_sender_as_the_stdlib_does(impl, stdlib, short_tmp, sender_name):
    receiver = impl.make(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(short_tmp / "r"))
    sender = stdlib.make(socket.AF_UNIX, socket.SOCK_DGRAM)
    expected = {"unbound": None, "path": str(short_tmp / "s"),
                "abstract": b"\0socketeer-sender-%d" % os.getpid()}[sender_name]
    if expected is not None:
        sender.bind(expected)
    sender.sendto(b"x", str(short_tmp / "r"))
    assert receiver.recvfrom(10) == (b"x", expected)
    if expected is not None:  # and the reply goes back to that very form
        receiver.sendto(b"y", expected)
        assert sender.recv(10) == b"y"


def test_recv_variants(impl):
    a, b = impl.socketpair()
    b.sendall(b"abcdefgh")
    assert a.recv(3, socket.MSG_PEEK) == b"abc"
    buffer = bytearray(5)
    assert a.recv_into(buffer, 2) == 2 and buffer == b"ab\0\0\0"
    view = memoryview(buffer)[1:]
    assert a.recv_into(view) == 4 and buffer == b"acdef"
    array_buffer = array.array("b", [0, 0])
    assert a.recv_into(array_buffer) == 2 and array_buffer.tobytes() == b"gh"
    b.sendall(b"z")
    assert a.recv(0) == b""  # asks for nothing, gets nothing, and leaves the data
    assert a.recv(10) == b"z"


def test_sendall_larger_than_the_socket_buffer(impl):
    a, b = impl.socketpair()
    payload = os.urandom(4 << 20)
    received = bytearray()

    def read_all():
        while len(received) < len(payload):
            chunk = b.recv(1 << 16)
            if not chunk:
                break
            received.extend(chunk)

    reader = threading.Thread(target=read_all)
    reader.start()
    try:
        assert a.sendall(payload) is None
    finally:
        reader.join(30)
    assert not reader.is_alive()
    assert bytes(received) == payload


# --- messages and ancillary data ------------------------------------------------------------------

def test_sendmsg_recvmsg_passes_an_fd(impl, stdlib):
    a, b = impl.socketpair()
    read_end, write_end = os.pipe()
    try:
        fds = array.array("i", [write_end])
        assert a.sendmsg([b"ab", memoryview(b"cd")], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]) == 4
        data, ancdata, flags, address = b.recvmsg(10, socket.CMSG_SPACE(fds.itemsize))
        assert (data, flags, address) == (b"abcd", 0, None)
        [(level, kind, raw)] = ancdata
        assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
        [received] = array.array("i", raw)
        try:
            assert received != write_end
            os.write(received, b"through the passed fd")
            assert os.read(read_end, 100) == b"through the passed fd"
        finally:
            os.close(received)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_recvmsg_into_scatters_and_reports_truncation(impl):
    a, b = impl.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.sendmsg([b"0123", b"456789"])
    first, second = bytearray(3), bytearray(4)
    size, ancdata, flags, address = b.recvmsg_into([first, memoryview(second)])
    assert (size, ancdata, address) == (7, [], None)
    assert flags & socket.MSG_TRUNC  # the datagram had 10 bytes
    assert (first, second) == (b"012", b"3456")
    a.send(b"short")
    assert b.recvmsg(100) == (b"short", [], 0, None)


def test_recvmsg_reports_control_truncation(impl):
    a, b = impl.socketpair()
    read_end, write_end = os.pipe()
    try:
        a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [read_end, write_end, read_end]))])
        data, ancdata, flags, _ = b.recvmsg(1, socket.CMSG_SPACE(4))  # room for one or two fds of three
        assert data == b"x"
        assert flags & socket.MSG_CTRUNC
        arrived = [fd for _, _, raw in ancdata for fd in array.array("i", raw[: len(raw) - len(raw) % 4])]
        for fd in arrived:  # the ones that fit are ours to close
            os.close(fd)
        assert len(arrived) < 3
    finally:
        os.close(read_end)
        os.close(write_end)


def test_sendmsg_to_an_address(impl, stdlib):
    receiver = stdlib.make(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    sock = impl.make(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    assert sock.sendmsg([b"to ", b"you"], [], 0, receiver.getsockname()) == 6
    assert receiver.recvfrom(10) == (b"to you", sock.getsockname())
    receiver.sendto(b"reply", sock.getsockname())
    assert sock.recvmsg(10) == (b"reply", [], 0, receiver.getsockname())


# --- netlink and packet sockets: the stdlib's tuple forms -----------------------------------------

NETLINK_ROUTE, RTM_NEWLINK, RTM_GETLINK, NLMSG_DONE = 0, 16, 18, 3
NLM_F_REQUEST_DUMP = 0x301  # NLM_F_REQUEST | NLM_F_DUMP
ETH_P_EXPERIMENTAL = 0x88B5  # IEEE 802 "local experimental": no protocol stack reads these frames
ARPHRD_LOOPBACK = 772
AF_XDP = 44  # a family neither the stdlib nor socketeer has an address form for


def getlink_dump_request(seq: int) -> bytes:
    """RTM_GETLINK with NLM_F_DUMP: a struct nlmsghdr and a zeroed struct ifinfomsg."""
    return struct.pack("=IHHII", 32, RTM_GETLINK, NLM_F_REQUEST_DUMP, seq, 0) + bytes(16)


def netlink_headers(data: bytes) -> list[tuple[int, int, int]]:
    """(type, seq, pid) of each netlink message in one datagram."""
    headers, offset = [], 0
    while offset + 16 <= len(data):
        length, kind, _, seq, pid = struct.unpack_from("=IHHII", data, offset)
        headers.append((kind, seq, pid))
        offset += max(16, (length + 3) & ~3)
    return headers


def packet_socket(factory: Factory, kind=socket.SOCK_RAW):
    try:
        return factory.make(socket.AF_PACKET, kind, 0)
    except PermissionError:
        pytest.skip("AF_PACKET sockets need CAP_NET_RAW (CI runs as root)")


def test_netlink_route_dump_with_the_kernel_as_peer(impl):
    sock = impl.make(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    sock.settimeout(10)
    assert sock.getsockname() == (0, 0)
    sock.bind((0, 0))  # port id 0: the kernel assigns one
    pid, groups = sock.getsockname()
    assert pid != 0 and groups == 0
    assert sock.getpeername() == (0, 0)  # the kernel
    request = getlink_dump_request(1)
    assert sock.sendto(request, (0, 0)) == len(request)
    kinds: list[int] = []
    while NLMSG_DONE not in kinds:
        data, sender = sock.recvfrom(65536)
        assert sender == (0, 0)
        for kind, seq, to in netlink_headers(data):
            assert (seq, to) == (1, pid)
            kinds.append(kind)
    assert RTM_NEWLINK in kinds  # lo, at least
    request = getlink_dump_request(2)
    assert sock.sendmsg([request], [], 0, (0, 0)) == len(request)
    data, _, _, sender = sock.recvmsg(65536)
    assert sender == (0, 0)
    assert netlink_headers(data)[0] == (RTM_NEWLINK, 2, pid)


def test_packet_socket_on_loopback(impl):
    sock = packet_socket(impl)
    assert sock.getsockname() == ("", 0, 0, 0, b"")  # not bound: no interface
    sock.bind(("lo", ETH_P_EXPERIMENTAL))
    assert sock.getsockname() == ("lo", ETH_P_EXPERIMENTAL, 0, ARPHRD_LOOPBACK, bytes(6))
    sock.settimeout(10)
    marker = os.urandom(8)
    frame = bytes(12) + struct.pack("!H", ETH_P_EXPERIMENTAL) + marker  # to and from 00:00:00:00:00:00
    assert sock.sendto(frame, ("lo", ETH_P_EXPERIMENTAL, 0, 0, bytes(6))) == len(frame)
    while True:  # lo loops the frame back; skip anyone else's on this experimental type
        data, sender = sock.recvfrom(2048)
        if data == frame:
            break
    assert sender == ("lo", ETH_P_EXPERIMENTAL, socket.PACKET_HOST, ARPHRD_LOOPBACK, bytes(6))


# --- shutdown, close, detach, dup ---------------------------------------------------------------

def test_half_close(impl, stdlib):
    client, accepted = impl.tcp_pair()
    client.sendall(b"request")
    client.shutdown(socket.SHUT_WR)
    received = b""
    while chunk := accepted.recv(100):
        received += chunk
    assert received == b"request"
    assert accepted.recv(100) == b""  # end of stream stays end of stream
    accepted.sendall(b"response")  # the other direction still works
    accepted.shutdown(socket.SHUT_WR)
    assert client.recv(100) == b"response"
    assert client.recv(100) == b""


def test_shutdown_both_ways_on_a_socketpair(impl):
    a, b = impl.socketpair()
    a.shutdown(socket.SHUT_RDWR)
    assert b.recv(10) == b""
    with pytest.raises(BrokenPipeError) as caught:
        a.send(b"x")
    assert caught.value.errno == errno.EPIPE


USE_AFTER_CLOSE = {
    "recv": lambda s: s.recv(1),
    "recv_into": lambda s: s.recv_into(bytearray(1)),
    "recvfrom": lambda s: s.recvfrom(1),
    "recvfrom_into": lambda s: s.recvfrom_into(bytearray(1)),
    "recvmsg": lambda s: s.recvmsg(1),
    "recvmsg_into": lambda s: s.recvmsg_into([bytearray(1)]),
    "send": lambda s: s.send(b"x"),
    "sendall": lambda s: s.sendall(b"x"),
    "sendto": lambda s: s.sendto(b"x", ("127.0.0.1", 9)),
    "sendmsg": lambda s: s.sendmsg([b"x"]),
    "bind": lambda s: s.bind(("127.0.0.1", 0)),
    "listen": lambda s: s.listen(),
    "accept": lambda s: s.accept(),
    "connect": lambda s: s.connect(("127.0.0.1", 9)),
    "shutdown": lambda s: s.shutdown(socket.SHUT_RDWR),
    "getsockname": lambda s: s.getsockname(),
    "getpeername": lambda s: s.getpeername(),
    "getsockopt": lambda s: s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE),
    "setsockopt": lambda s: s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1),
    "setblocking": lambda s: s.setblocking(False),
    "settimeout": lambda s: s.settimeout(1.0),
    "dup": lambda s: s.dup(),
}


@pytest.mark.parametrize("operation", USE_AFTER_CLOSE)
def test_use_after_close_raises_ebadf(impl, operation):
    sock = impl.make()
    sock.close()
    assert sock.fileno() == -1
    with pytest.raises(OSError) as caught:
        USE_AFTER_CLOSE[operation](sock)
    assert type(caught.value) is OSError
    assert caught.value.errno == errno.EBADF


def test_close_is_idempotent_and_connect_ex_answers_ebadf(impl):
    sock = impl.make()
    fd = sock.fileno()
    sock.close()
    sock.close()
    assert sock.fileno() == -1
    assert sock.detach() == -1
    assert sock.connect_ex(("127.0.0.1", 9)) == errno.EBADF
    with pytest.raises(OSError) as caught:
        os.fstat(fd)  # really closed (nothing else opened it since: this test opens nothing more)
    assert caught.value.errno == errno.EBADF
    assert "closed" in repr(sock)


def test_detach_hands_over_the_fd(impl):
    a, b = impl.socketpair()
    fd = a.detach()
    assert a.fileno() == -1
    try:
        os.write(fd, b"still open")
        assert b.recv(100) == b"still open"
    finally:
        os.close(fd)
    a.close()  # closing the detached socket does not touch the fd (the guard would see a double close)


def test_dup(impl):
    a, b = impl.socketpair()
    a.settimeout(7.5)
    copy = impl.keep(a.dup())
    assert type(copy) is impl.cls
    assert copy.fileno() not in (a.fileno(), -1)
    assert (copy.family, copy.type, copy.gettimeout()) == (a.family, a.type, 7.5)
    a.close()
    copy.sendall(b"via the dup")
    assert b.recv(100) == b"via the dup"


# --- options and attributes ---------------------------------------------------------------------

def test_getsockopt_setsockopt(impl):
    sock = impl.make()
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
    assert sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1) is None
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 5))
    assert struct.unpack("ii", sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)) == (1, 5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bytearray(struct.pack("i", 65536)))
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4)
    assert isinstance(raw, bytes) and len(raw) == 4
    assert struct.unpack("i", raw)[0] == sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 65536
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


def test_getsockopt_buflen_zero_is_the_int_form(impl):
    sock = impl.make()
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE, 0) == socket.SOCK_STREAM


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET])
def test_socketpair_kinds(impl, kind):
    a, b = impl.socketpair(socket.AF_UNIX, kind)
    for sock in (a, b):
        assert type(sock) is impl.cls
        assert (sock.family, sock.type, sock.proto) == (socket.AF_UNIX, kind, 0)
        assert isinstance(sock.family, socket.AddressFamily) and isinstance(sock.type, socket.SocketKind)
    a.send(b"hi")
    assert b.recv(10) == b"hi"


def test_family_type_attributes(impl):
    sock = impl.make(socket.AF_INET6, socket.SOCK_DGRAM)
    assert sock.family is socket.AF_INET6 and sock.type is socket.SOCK_DGRAM
    assert sock.proto == 0


def test_fromfd(impl, stdlib):
    original = stdlib.make(socket.AF_INET, socket.SOCK_DGRAM)
    original.bind(("127.0.0.1", 0))
    sock = impl.fromfd(original.fileno(), socket.AF_INET, socket.SOCK_DGRAM)
    assert type(sock) is impl.cls
    assert sock.fileno() != original.fileno()
    assert sock.getsockname() == original.getsockname()
    sock.sendto(b"self", original.getsockname())
    assert original.recv(10) == b"self"  # the same socket under two fds
    sock.close()
    assert original.getsockname()[1] != 0  # still open


def test_repr(impl):
    server = impl.listener()
    client = impl.make()
    client.connect(server.getsockname())
    text = repr(client)
    assert f"fd={client.fileno()}" in text
    assert re.search(r"family=(AddressFamily\.)?(AF_INET|2)\b", text)
    assert re.search(r"type=(SocketKind\.)?(SOCK_STREAM|1)\b", text)
    assert f"laddr={client.getsockname()!r}" in text
    assert f"raddr={client.getpeername()!r}" in text
    assert "raddr" not in repr(server)
    client.close()
    assert "[closed]" in repr(client) and "fd=-1" in repr(client)


def test_context_manager(impl):
    with impl.make() as sock:
        assert type(sock) is impl.cls
        assert sock.fileno() >= 0
    assert sock.fileno() == -1
    with pytest.raises(ZeroDivisionError):
        with impl.make() as other:
            1 / 0
    assert other.fileno() == -1


def test_makefile_readline_and_write(impl):
    client, accepted = impl.tcp_pair()
    stream = accepted.makefile("rwb")
    try:
        client.sendall(b"first line\nsecond line\nno newline")
        client.shutdown(socket.SHUT_WR)
        assert stream.readline() == b"first line\n"
        stream.write(b"reply\n")
        stream.flush()
        assert client.recv(100) == b"reply\n"
        accepted.close()  # the file keeps the fd alive until it is closed too
        assert stream.readline() == b"second line\n"
        assert stream.read() == b"no newline"
    finally:
        stream.close()
    assert accepted.fileno() == -1


def test_makefile_text_mode(impl):
    a, b = impl.socketpair()
    with a.makefile("w", encoding="utf-8", newline="\n") as writer:
        writer.write("héllo\nworld\n")
    with b.makefile("r", encoding="utf-8") as reader:
        assert reader.readline() == "héllo\n"
        assert reader.readline() == "world\n"


# --- blocking, non-blocking and timeouts ---------------------------------------------------------

@pytest.mark.parametrize(("setting", "timeout", "blocking", "fd_blocking"), [
    (lambda s: None, None, True, True),
    (lambda s: s.settimeout(0), 0.0, False, False),
    (lambda s: s.settimeout(0.25), 0.25, True, False),
    (lambda s: s.settimeout(None), None, True, True),
    (lambda s: s.setblocking(False), 0.0, False, False),
    (lambda s: s.setblocking(True), None, True, True),
    (lambda s: (s.settimeout(3), s.setblocking(True)), None, True, True),
    (lambda s: (s.settimeout(3), s.setblocking(False)), 0.0, False, False),
], ids=["default", "timeout-0", "timeout-positive", "timeout-none", "setblocking-false",
        "setblocking-true", "timeout-then-blocking", "timeout-then-nonblocking"])
def test_timeout_settings(impl, setting, timeout, blocking, fd_blocking):
    sock = impl.make()
    setting(sock)
    assert sock.gettimeout() == timeout
    assert sock.getblocking() is blocking
    assert os.get_blocking(sock.fileno()) is fd_blocking  # O_NONBLOCK as the stdlib sets it


def test_timeout_accepts_ints_and_floats(impl):
    sock = impl.make()
    sock.settimeout(2)
    assert sock.gettimeout() == 2.0 and isinstance(sock.gettimeout(), float)


@pytest.mark.parametrize("setting", [None, 0.0, 2.5], ids=["blocking", "nonblocking", "timeout"])
def test_timeout_attribute_is_gettimeout_and_read_only(impl, setting):
    sock = impl.make()
    sock.settimeout(setting)
    assert sock.timeout == sock.gettimeout() == setting
    with pytest.raises(AttributeError):
        sock.timeout = 1.0
    assert sock.gettimeout() == setting


def test_inheritable_is_false_by_default_and_can_be_set(impl):
    sock = impl.make()
    assert sock.get_inheritable() is False  # CLOEXEC, as every fd either library opens
    sock.set_inheritable(True)
    assert sock.get_inheritable() is True and os.get_inheritable(sock.fileno()) is True
    sock.set_inheritable(False)
    assert sock.get_inheritable() is False and os.get_inheritable(sock.fileno()) is False
    assert [s.get_inheritable() for s in impl.socketpair()] == [False, False]


def test_inheritable_on_a_closed_socket_raises_ebadf(impl):
    sock = impl.make()
    sock.close()
    for call in (sock.get_inheritable, lambda: sock.set_inheritable(True)):
        with pytest.raises(OSError) as caught:
            call()
        assert caught.value.errno == errno.EBADF


def test_nonblocking_recv_and_accept_raise_blocking_io_error(impl):
    a, _ = impl.socketpair()
    a.setblocking(False)
    for call in (lambda: a.recv(1), lambda: a.recv_into(bytearray(1)), lambda: a.recvfrom(1),
                 lambda: a.recvmsg(1)):
        with pytest.raises(BlockingIOError) as caught:
            call()
        assert caught.value.errno == errno.EAGAIN
    server = impl.listener()
    server.setblocking(False)
    with pytest.raises(BlockingIOError) as caught:
        server.accept()
    assert caught.value.errno == errno.EAGAIN


def test_nonblocking_send_to_a_full_buffer_raises_blocking_io_error(impl):
    a, _ = impl.socketpair()
    a.setblocking(False)
    with pytest.raises(BlockingIOError) as caught:
        while True:
            a.send(b"x" * 65536)
    assert caught.value.errno == errno.EAGAIN


def _expect_timeout(call):
    with pytest.raises(TimeoutError) as caught:
        call()
    assert isinstance(caught.value, OSError) and isinstance(caught.value, socket.timeout)
    return caught.value


def test_positive_timeout_raises_timeout_error(impl):
    a, _ = impl.socketpair()
    a.settimeout(0.05)
    for call in (lambda: a.recv(1), lambda: a.recv_into(bytearray(1)), lambda: a.recvfrom(1),
                 lambda: a.recvmsg(1), lambda: a.sendall(b"x" * (16 << 20))):
        _expect_timeout(call)
    server = impl.listener()
    server.settimeout(0.05)
    _expect_timeout(server.accept)


def test_timeout_error_errno_matches_the_stdlib(impl):
    a, _ = impl.socketpair()
    a.settimeout(0.01)
    error = _expect_timeout(lambda: a.recv(1))
    assert error.errno is None  # the stdlib's TimeoutError("timed out") has no errno


def test_connect_timeout(impl, stdlib):
    black_hole = full_backlog_listener(stdlib)
    sock = impl.make()
    sock.settimeout(0.1)
    _expect_timeout(lambda: sock.connect(black_hole.getsockname()))


def test_blocking_recv_waits_for_data(impl):
    a, b = impl.socketpair()
    assert a.gettimeout() is None
    sender = threading.Thread(target=lambda: b.sendall(b"later"))
    sender.start()
    try:
        assert a.recv(5) == b"later"  # blocks until the thread's data is there, however late
    finally:
        sender.join(10)


def test_default_timeout_applies_to_new_and_accepted_sockets(impl, stdlib, default_timeout):
    blocking_client = stdlib.make()
    default_timeout(2.5)
    sock = impl.make()
    assert sock.gettimeout() == 2.5 and not os.get_blocking(sock.fileno())
    server = impl.listener()
    client = stdlib.make()
    client.connect(server.getsockname())
    accepted, _ = server.accept()
    impl.keep(accepted)
    assert accepted.gettimeout() == 2.5
    fd_copy = impl.fromfd(blocking_client.fileno(), socket.AF_INET, socket.SOCK_STREAM)
    assert fd_copy.gettimeout() == 2.5
    default_timeout(None)
    assert impl.make().gettimeout() is None


def test_default_timeout_applies_to_socketpair(impl, default_timeout):
    default_timeout(1.5)
    a, b = impl.socketpair()
    assert (a.gettimeout(), b.gettimeout()) == (1.5, 1.5)


# --- connect outcomes -----------------------------------------------------------------------------

def test_connect_refused(impl, stdlib):
    sock = impl.make()
    with pytest.raises(ConnectionRefusedError) as caught:
        sock.connect(refused_address(stdlib))
    assert caught.value.errno == errno.ECONNREFUSED


def test_connect_ex_return_values(impl, stdlib):
    server = stdlib.listener()
    assert impl.make().connect_ex(server.getsockname()) == 0
    assert impl.make().connect_ex(refused_address(stdlib)) == errno.ECONNREFUSED
    nonblocking = impl.make()
    nonblocking.setblocking(False)
    assert nonblocking.connect_ex(server.getsockname()) == errno.EINPROGRESS
    timing_out = impl.make()
    timing_out.settimeout(0.05)
    assert timing_out.connect_ex(full_backlog_listener(stdlib).getsockname()) == errno.EWOULDBLOCK
    unix = impl.make(socket.AF_UNIX, socket.SOCK_STREAM)
    assert unix.connect_ex("/nonexistent/socketeer.sock") == errno.ENOENT


def test_nonblocking_connect_raises_blocking_io_error_einprogress(impl, stdlib):
    server = stdlib.listener()
    sock = impl.make()
    sock.setblocking(False)
    with pytest.raises(BlockingIOError) as caught:
        sock.connect(server.getsockname())
    assert caught.value.errno == errno.EINPROGRESS


def test_send_after_peer_closed_raises_broken_pipe(impl):
    a, b = impl.socketpair()
    b.close()
    for call in (lambda: a.send(b"x"), lambda: a.sendall(b"x"), lambda: a.sendmsg([b"x"])):
        with pytest.raises(BrokenPipeError) as caught:  # an exception, not SIGPIPE
            call()
        assert caught.value.errno == errno.EPIPE


def test_tcp_send_after_peer_reset(impl, stdlib, wait_until):
    client, accepted = impl.tcp_pair()
    accepted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    accepted.close()  # linger 0: the close sends a RST
    client.settimeout(10)
    with pytest.raises(ConnectionResetError) as caught:
        client.recv(10)  # waits for the RST
    assert caught.value.errno == errno.ECONNRESET
    with pytest.raises((BrokenPipeError, ConnectionResetError)):
        client.send(b"after the reset")


# --- sendfile ------------------------------------------------------------------------------------

def _read_exactly(sock, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"end of stream after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def _client_of_a_stdlib_peer(impl, stdlib):
    """(client of impl, its accepted stdlib peer with a 10 s timeout), over loopback TCP."""
    client = impl.make()
    server = stdlib.listener()
    client.connect(server.getsockname())
    peer, _ = server.accept()
    stdlib.keep(peer)
    peer.settimeout(10)
    return client, peer


@pytest.fixture
def data_file(tmp_path):
    data = os.urandom(200_000)
    path = tmp_path / "data"
    path.write_bytes(data)
    with open(path, "rb") as file:
        yield file, data


def test_sendfile_from_an_offset_for_a_count_moves_the_file_position(impl, stdlib, data_file):
    file, data = data_file
    client, peer = _client_of_a_stdlib_peer(impl, stdlib)
    assert client.sendfile(file, 1000, 50_000) == 50_000
    assert file.tell() == 51_000
    assert _read_exactly(peer, 50_000) == data[1000:51_000]
    assert client.sendfile(file) == len(data)  # offset 0 by default, whatever the position
    assert file.tell() == len(data)
    assert _read_exactly(peer, len(data)) == data
    assert client.sendfile(file, len(data)) == 0  # nothing left from there


def test_sendfile_of_a_file_without_a_descriptor_uses_send(impl, stdlib):
    client, peer = _client_of_a_stdlib_peer(impl, stdlib)
    file = io.BytesIO(b"0123456789")
    assert client.sendfile(file, 2, 5) == 5
    assert file.tell() == 7
    assert _read_exactly(peer, 5) == b"23456"


def test_sendfile_refuses_what_the_stdlib_refuses(impl, data_file):
    file, _ = data_file
    a, _ = impl.socketpair()
    a.setblocking(False)
    with pytest.raises(ValueError, match="non-blocking"):
        a.sendfile(file)
    with pytest.raises(ValueError, match="SOCK_STREAM"):
        impl.make(socket.AF_INET, socket.SOCK_DGRAM).sendfile(file)
    with pytest.raises(ValueError, match="count"):
        a.sendfile(file, 0, 0)


def test_sendfile_times_out_with_the_file_position_after_what_went(impl, stdlib, tmp_path):
    path = tmp_path / "big"
    with open(path, "wb") as out:
        out.truncate(64 * 1024 * 1024)  # more than any loopback socket buffers hold
    client, _ = _client_of_a_stdlib_peer(impl, stdlib)  # the peer never reads
    client.settimeout(0.1)
    with open(path, "rb") as file:
        with pytest.raises(TimeoutError):
            client.sendfile(file)
        assert 0 < file.tell() < 64 * 1024 * 1024


# --- error paths: same exception type and errno as the stdlib -------------------------------------

def _unix_dgram(impl):
    return impl.make(socket.AF_UNIX, socket.SOCK_DGRAM)


ERROR_PATHS: dict[str, Callable[[Factory], Any]] = {
    "send-str": lambda f: f.socketpair()[0].send("text"),
    "sendall-str": lambda f: f.socketpair()[0].sendall("text"),
    "sendto-str": lambda f: f.make(socket.AF_INET, socket.SOCK_DGRAM).sendto("x", ("127.0.0.1", 9)),
    "sendmsg-str": lambda f: f.socketpair()[0].sendmsg(["text"]),
    "sendmsg-bad-ancillary": lambda f: f.socketpair()[0].sendmsg([b"x"], [(1, 2)]),
    "recv-negative": lambda f: f.socketpair()[0].recv(-1),
    "recvfrom-negative": lambda f: f.socketpair()[0].recvfrom(-1),
    "recvmsg-negative": lambda f: f.socketpair()[0].recvmsg(-1),
    "recvmsg-negative-ancbufsize": lambda f: f.socketpair()[0].recvmsg(1, -1),
    "recv_into-bytes": lambda f: f.socketpair()[0].recv_into(b"read-only"),
    "recv_into-negative": lambda f: f.socketpair()[0].recv_into(bytearray(4), -1),
    "recv_into-too-many": lambda f: f.socketpair()[0].recv_into(bytearray(4), 5),
    "recvfrom_into-too-many": lambda f: f.socketpair()[0].recvfrom_into(bytearray(4), 5),
    "recv-str-size": lambda f: f.socketpair()[0].recv("1"),
    "bind-port-too-big": lambda f: f.make().bind(("127.0.0.1", 65536)),
    "bind-port-negative": lambda f: f.make().bind(("127.0.0.1", -1)),
    "bind-port-str": lambda f: f.make().bind(("127.0.0.1", "80")),
    "bind-tuple-1": lambda f: f.make().bind(("127.0.0.1",)),
    "bind-tuple-3": lambda f: f.make().bind(("127.0.0.1", 0, 0)),
    "bind-list": lambda f: f.make().bind(["127.0.0.1", 0]),
    "bind-host-int": lambda f: f.make().bind((127, 0)),
    "bind-inet6-tuple-5": lambda f: f.make(socket.AF_INET6).bind(("::1", 0, 0, 0, 0)),
    "bind-inet6-flowinfo": lambda f: f.make(socket.AF_INET6).bind(("::1", 0, 1 << 20, 0)),
    "bind-in-use": lambda f: f.make().bind(f.listener().getsockname()),
    "bind-not-local": lambda f: f.make().bind(("192.0.2.1", 0)),  # never sent: bind fails locally
    "bind-twice": lambda f: f.listener().bind(("127.0.0.1", 0)),
    "bind-unix-int": lambda f: _unix_dgram(f).bind(3),
    "bind-unix-missing-dir": lambda f: _unix_dgram(f).bind("/nonexistent/dir/s"),
    "connect-refused": lambda f: f.make().connect(refused_address(f)),
    "connect-unix-missing": lambda f: f.make(socket.AF_UNIX).connect("/nonexistent/s"),
    "connect-port-too-big": lambda f: f.make().connect(("127.0.0.1", 70000)),
    "connect-ex-bad-tuple": lambda f: f.make().connect_ex(("127.0.0.1",)),
    "connect-twice": lambda f: f.tcp_pair()[0].connect(f.listener().getsockname()),
    "accept-not-listening": lambda f: f.make().accept(),
    "listen-on-udp": lambda f: f.make(socket.AF_INET, socket.SOCK_DGRAM).listen(),
    "recv-not-connected": lambda f: f.make().recv(1),
    "send-not-connected": lambda f: f.make().send(b"x"),
    "sendto-on-stream": lambda f: f.make().sendto(b"x", ("127.0.0.1", 9)),
    "getpeername-not-connected": lambda f: f.make().getpeername(),
    "shutdown-not-connected": lambda f: f.make().shutdown(socket.SHUT_RDWR),
    "shutdown-bad-how": lambda f: f.socketpair()[0].shutdown(7),
    "getsockopt-unknown": lambda f: f.make().getsockopt(socket.SOL_SOCKET, 9999),
    "getsockopt-buflen-too-big": lambda f: f.make().getsockopt(socket.SOL_SOCKET, socket.SO_TYPE, 2000),
    "setsockopt-unknown": lambda f: f.make().setsockopt(socket.SOL_SOCKET, 9999, 1),
    "setsockopt-str": lambda f: f.make().setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, "1"),
    "settimeout-negative": lambda f: f.make().settimeout(-1),
    "settimeout-nan": lambda f: f.make().settimeout(float("nan")),
    "settimeout-str": lambda f: f.make().settimeout("1"),
    "socket-bad-family": lambda f: f.make(12345, socket.SOCK_STREAM),
    "socket-bad-type": lambda f: f.make(socket.AF_INET, 12345),
    "socket-bad-proto": lambda f: f.make(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_UDP),
    "socketpair-inet": lambda f: f.socketpair(socket.AF_INET),
    # (A str is an address text to socketeer, "netlink:0": tests/test_address_netlink_packet.py.)
    "bind-netlink-bytes": lambda f: f.make(socket.AF_NETLINK, socket.SOCK_RAW).bind(b"0:0"),
    "bind-netlink-list": lambda f: f.make(socket.AF_NETLINK, socket.SOCK_RAW).bind([0, 0]),
    "bind-netlink-tuple-3": lambda f: f.make(socket.AF_NETLINK, socket.SOCK_RAW).bind((0, 0, 0)),
    "bind-netlink-pid-str": lambda f: f.make(socket.AF_NETLINK, socket.SOCK_RAW).bind(("0", 0)),
    "sendto-netlink-tuple-1": lambda f: f.make(socket.AF_NETLINK, socket.SOCK_RAW).sendto(b"", (0,)),
    "bind-packet-unknown-interface": lambda f: packet_socket(f).bind(("no-such-if0", 0)),
    "bind-packet-long-interface": lambda f: packet_socket(f).bind(("lo" * 10, 0)),
    "bind-packet-ifname-bytes": lambda f: packet_socket(f).bind((b"lo", 0)),
    "bind-packet-tuple-1": lambda f: packet_socket(f).bind(("lo",)),
    "bind-packet-tuple-6": lambda f: packet_socket(f).bind(("lo", 0, 0, 0, b"", 0)),
    "bind-packet-proto-too-big": lambda f: packet_socket(f).bind(("lo", 0x10000)),
    "bind-packet-hwaddr-too-long": lambda f: packet_socket(f).bind(("lo", 0, 0, 0, bytes(9))),
    "bind-packet-hwaddr-str": lambda f: packet_socket(f).bind(("lo", 0, 0, 0, "00")),
    "bind-other-family": lambda f: f.make(AF_XDP, socket.SOCK_RAW).bind((0, 0)),
    "sendto-other-family": lambda f: f.make(AF_XDP, socket.SOCK_RAW).sendto(b"x", (0, 0)),
}


def outcome(factory: Factory, call: Callable[[Factory], Any]):
    try:
        call(factory)
    except Exception as error:  # noqa: BLE001 - the exception is the result
        return type(error), getattr(error, "errno", None)
    return "no exception", None


@pytest.mark.parametrize("case", ERROR_PATHS)
def test_error_paths_match_the_stdlib(case, closing):
    expected = outcome(Factory(STDLIB, closing), ERROR_PATHS[case])
    assert expected[0] != "no exception", "the oracle must fail here, or the case tests nothing"
    assert outcome(Factory(SOCKETEER, closing), ERROR_PATHS[case]) == expected


def test_bind_to_a_name_that_does_not_resolve_matches_the_stdlib(closing, socketeer_netns):
    # Both run in a thread inside a fresh network namespace (no route to any resolver), so the
    # lookup fails on this host: no DNS query leaves it.
    def bind_unknown_host(f: Factory) -> Any:
        return f.make().bind(("no-such-host.invalid", 0))

    expected = socketeer_netns.call(outcome, Factory(STDLIB, closing), bind_unknown_host)
    assert expected[0] is socket.gaierror
    assert socketeer_netns.call(outcome, Factory(SOCKETEER, closing), bind_unknown_host) == expected


# --- deliberate differences: socketeer says more ------------------------------------------------

def test_socketeer_errors_name_the_operation_and_the_address(stdlib, closing):
    ours = Factory(SOCKETEER, closing)
    host, port = refused_address(stdlib)
    with pytest.raises(ConnectionRefusedError) as caught:
        ours.make().connect((host, port))
    assert str(caught.value) == f"[Errno 111] Connection refused: 'connect to {host}:{port}'"
    assert caught.value.strerror == "Connection refused"
    in_use = stdlib.listener().getsockname()
    with pytest.raises(OSError, match=re.escape(f"bind on 127.0.0.1:{in_use[1]}")) as caught:
        ours.make().bind(in_use)
    assert caught.value.errno == errno.EADDRINUSE
    with pytest.raises(BrokenPipeError, match="'send'"):
        a, b = ours.socketpair()
        b.close()
        a.send(b"x")


def test_socketeer_timeouts_name_the_operation_and_the_address(stdlib, closing):
    """The stdlib's socket timeout is TimeoutError("timed out") with no errno: ours keeps that
    shape and says which call timed out, and where."""
    ours = Factory(SOCKETEER, closing)
    client, _ = ours.tcp_pair()
    client.settimeout(0.01)
    listener = ours.listener()
    listener.settimeout(0.01)
    udp = ours.make(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.01)
    black_hole = full_backlog_listener(stdlib)
    connecting = ours.make()
    connecting.settimeout(0.05)
    where = lambda sock_address: "%s:%d" % sock_address[:2]  # noqa: E731
    cases = [
        (lambda: client.recv(1), f"recv from {where(client.getpeername())}"),
        (lambda: client.recvmsg(1), f"recvmsg from {where(client.getpeername())}"),
        (lambda: client.sendall(b"x" * (32 << 20)), f"sendall to {where(client.getpeername())}"),
        (listener.accept, f"accept on {where(listener.getsockname())}"),
        (lambda: udp.recvfrom(1), f"recvfrom on {where(udp.getsockname())}"),
        (lambda: connecting.connect(black_hole.getsockname()), f"connect to {where(black_hole.getsockname())}"),
    ]
    for call, expected in cases:
        error = _expect_timeout(call)
        assert error.errno is None and error.args == (f"timed out: '{expected}'",)


def test_socketeer_rejects_a_too_long_unix_path_with_value_error(closing):
    """The stdlib raises OSError('AF_UNIX path too long'); socketeer a ValueError naming the limit."""
    long_path = "/tmp/" + "x" * 103  # 108 bytes
    with socket.socket(socket.AF_UNIX) as oracle, pytest.raises(OSError, match="too long"):
        oracle.bind(long_path)
    sock = Factory(SOCKETEER, closing).make(socket.AF_UNIX)
    with pytest.raises(ValueError, match="108 bytes, the limit is 107"):
        sock.bind(long_path)
