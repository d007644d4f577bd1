"""UDP segmentation offloads in socketeer.Server, over real loopback with the stdlib as the peer.

GRO (receive): a peer that sends with UDP_SEGMENT (as QUIC stacks do) hands the kernel one
large buffer that travels as one packet; with UDP_GRO on, the server's socket gets it in one
read and the reactor must cut it back into datagrams. GSO (send): replies of one size to one
address leave as one message, and a plain peer must still get separate datagrams, in order.

Synchronisation is by what a client receives or by events set in handlers; counters are read
after stop(), which publishes them, so no test sleeps or polls.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import socketeer
from socketeer import _core
from socketeer.server import Server

DEADLINE = 10.0  # seconds any single wait may take before the test fails
UDP_SEGMENT = 103  # linux/udp.h; the stdlib has no name for it
SO_NO_CHECK = 11   # asm-generic/socket.h: makes the kernel refuse GSO sends (EINVAL)

ENDPOINTS = ["udp://127.0.0.1:0", "udp://[::1]:0"]


# --- helpers ---------------------------------------------------------------------------------


def target_of(address: Any) -> Any:
    if address.family == socket.AF_UNIX:
        return "\0" + address.path if address.abstract else address.path
    return (address.host, address.port)


def udp_client(address: Any, segment: int = 0) -> socket.socket:
    """A stdlib UDP socket connected to address; with segment, every send leaves as datagrams
    of that many bytes (UDP_SEGMENT), the last one possibly shorter."""
    family = int(address.family)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.settimeout(DEADLINE)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # room for every reply
        sock.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
        sock.connect(target_of(address))
        if segment:
            try:
                sock.setsockopt(socket.SOL_UDP, UDP_SEGMENT, segment)
            except OSError as error:
                if error.errno in (errno.ENOPROTOOPT, errno.EINVAL):
                    pytest.skip("this kernel has no UDP GSO (Linux >= 4.18)")
                raise
    except BaseException:
        sock.close()
        raise
    return sock


def receive(sock: socket.socket, count: int) -> list[bytes]:
    return [sock.recv(65536) for _ in range(count)]


def segments(*sizes: int, start: int = 0) -> list[bytes]:
    """Datagrams of these sizes, each filled with its own letter, so order and content show."""
    return [bytes([65 + (start + i) % 26]) * size for i, size in enumerate(sizes)]


class Recorder:
    """Remembers every datagram (with its sender) and echoes it; done is set once `expected`
    datagrams have arrived."""

    def __init__(self, expected: int, echo: bool = True) -> None:
        self.datagrams: list[tuple[bytes, Any]] = []
        self.expected = expected
        self.echo = echo
        self.done = threading.Event()

    def on_datagram(self, endpoint: Any, data: bytes, address: Any) -> None:
        self.datagrams.append((data, address))
        if self.echo:
            endpoint.send_to(data, address)
        if len(self.datagrams) >= self.expected:
            self.done.set()

    def wait(self) -> list[bytes]:
        assert self.done.wait(DEADLINE), f"only {len(self.datagrams)} of {self.expected} datagrams arrived"
        return [data for data, _ in self.datagrams]


@pytest.fixture
def serve() -> Iterator[Any]:
    """serve(handler_or_None, endpoint, **options) -> (server, address), started; closed after."""
    servers: list[Server] = []

    def start(handler: Any, endpoint: str, **options: Any) -> tuple[Server, Any]:
        server = Server(handler, **options)
        servers.append(server)
        address = server.bind(endpoint)
        server.start()
        return server, address

    yield start
    for server in servers:
        server.close()


# --- GRO: a coalesced arrival is split into its datagrams ---------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("sizes", [(100,) * 10, (100,) * 10 + (50,)], ids=["1000", "1050"])
def test_gso_sender_reaches_the_handler_as_separate_datagrams(serve: Any, endpoint: str, sizes: tuple[int, ...]) -> None:
    sent = segments(*sizes)
    handler = Recorder(len(sent), echo=False)
    server, address = serve(handler, endpoint)
    with udp_client(address, segment=100) as sock:
        sock.send(b"".join(sent))  # one send: one packet of 10 or 11 datagrams
        assert handler.wait() == sent
        me = sock.getsockname()
        assert {(a.host, a.port) for _, a in handler.datagrams} == {(me[0], me[1])}
    server.stop()
    stats = server.stats()
    assert stats["datagrams"] == len(sent)
    assert stats["gro_segments"] >= 10  # it did arrive coalesced, and was split


# --- GSO: replies of one size to one address leave as one message --------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("udp_gso", [True, False], ids=["gso", "no-gso"])
def test_echoed_burst_arrives_as_separate_datagrams_in_order(serve: Any, endpoint: str, udp_gso: bool) -> None:
    sent = segments(*(100,) * 10)
    handler = Recorder(len(sent))
    server, address = serve(handler, endpoint, udp_gso=udp_gso)
    with udp_client(address, segment=100) as sock:
        sock.send(b"".join(sent))  # the ten arrive in one turn, so their echoes leave together
        assert receive(sock, len(sent)) == sent
    assert handler.wait() == sent
    server.stop()
    stats = server.stats()
    if udp_gso:
        assert stats["gro_segments"] == 10
        assert stats["gso_datagrams"] == 10
    else:
        assert stats["gro_segments"] == stats["gso_datagrams"] == 0
    assert stats["dropped_datagrams"] == 0


class Script:
    """On any datagram, sends the scripted replies, (client index, payload) pairs, all from one
    handler call, so that they go out in one flush."""

    def __init__(self, clients: list[Any], replies: list[tuple[int, bytes]]) -> None:
        self.clients = clients
        self.replies = replies

    def on_datagram(self, endpoint: Any, data: bytes, address: Any) -> None:
        for index, payload in self.replies:
            endpoint.send_to(payload, self.clients[index])


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("udp_gso", [True, False], ids=["gso", "no-gso"])
def test_mixed_sizes_and_destinations_arrive_in_order_per_client(serve: Any, endpoint: str, udp_gso: bool) -> None:
    a, b = 0, 1
    plan = [(a, 100), (a, 100), (a, 100), (a, 50),  # one GSO message, the last one shorter
            (a, 100),                               # a run of one: a plain datagram
            (b, 100), (b, 100),                     # one GSO message to the other client
            (a, 100), (a, 200), (a, 200),           # a longer one starts a new run
            (b, 7), (a, 0), (a, 0),                 # empty datagrams are never coalesced
            (a, 1500)] + [(b, 1500)] * 60           # more than fit one message (65507 bytes)
    replies = [(who, payload) for (who, _), payload in zip(plan, segments(*(size for _, size in plan)))]
    clients: list[Any] = []
    script = Script(clients, replies)
    server, address = serve(script, endpoint, udp_gso=udp_gso)
    with udp_client(address) as first, udp_client(address) as second:
        family = first.family
        clients += [socketeer.Address.from_tuple(family, s.getsockname()) for s in (first, second)]
        first.send(b"go")
        for index, sock in enumerate((first, second)):
            expected = [payload for who, payload in replies if who == index]
            assert receive(sock, len(expected)) == expected
    server.stop()
    stats = server.stats()
    assert stats["dropped_datagrams"] == 0
    # 4 + 2 + 2 + 60 went in GSO messages: the runs the packing rules allow, nothing else (and
    # no run was refused: that would have turned GSO off for the rest).
    assert stats["gso_datagrams"] == (68 if udp_gso else 0)


def test_refused_gso_falls_back_and_loses_nothing() -> None:
    """A socket the kernel will not segment for (SO_NO_CHECK: EINVAL on every GSO send, as on
    some devices) still delivers every reply, one datagram per message."""
    replies = segments(*(100,) * 10)

    class Ten:
        def on_datagram(self, endpoint: Any, data: bytes, address: Any) -> None:
            for payload in replies:
                endpoint.send_to(payload, address)

    reactor = _core.Reactor(udp_gso=True)
    reactor.set_handler(Ten(), lambda conn, error: None)
    sock = socketeer.Socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
    endpoint_id = reactor.add_datagram(sock)
    sock.close()
    loop = threading.Thread(target=reactor.run)
    loop.start()
    try:
        with udp_client(reactor.local_address(endpoint_id)) as client:
            client.send(b"go")
            assert receive(client, len(replies)) == replies
    finally:
        reactor.stop()
        loop.join()
        stats = reactor.stats()
        reactor.close()
    assert stats["gso_datagrams"] == 0
    assert stats["dropped_datagrams"] == 0


# --- built-in echo and unix datagrams ----------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_builtin_echo_returns_every_segment(serve: Any, endpoint: str) -> None:
    sent = segments(*(100,) * 10 + (50,))
    server, address = serve(None, endpoint, builtin="echo")
    with udp_client(address, segment=100) as sock:
        sock.send(b"".join(sent))
        assert receive(sock, len(sent)) == sent
        sock.send(b"".join(sent))  # and again, from the next turn
        assert receive(sock, len(sent)) == sent
    server.stop()
    stats = server.stats()
    assert stats["datagrams"] == 2 * len(sent)
    assert stats["gro_segments"] == 2 * len(sent)
    assert stats["gso_datagrams"] == 2 * len(sent)


def test_unix_datagram_endpoint_is_unaffected(serve: Any, short_tmp: Any) -> None:
    sent = segments(*(100,) * 10)
    handler = Recorder(len(sent) + 1)
    server, address = serve(handler, f"unix+dgram:{short_tmp}/d")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.settimeout(DEADLINE)
        sock.bind(f"{short_tmp}/c")
        sock.connect(target_of(address))
        for payload in sent:
            sock.send(payload)
        assert receive(sock, len(sent)) == sent
        # A peer passing an fd: the endpoint gives the kernel no room for control messages
        # (that room is for UDP_GRO only), so the kernel closes it instead of installing it in
        # this process, where the fd-leak guard would catch it.
        reader, writer = os.pipe()
        try:
            socket.send_fds(sock, [b"with an fd"], [reader])
        finally:
            os.close(reader)
            os.close(writer)
        assert sock.recv(100) == b"with an fd"
    assert handler.wait() == sent + [b"with an fd"]
    server.stop()
    stats = server.stats()
    assert stats["gro_segments"] == stats["gso_datagrams"] == 0
