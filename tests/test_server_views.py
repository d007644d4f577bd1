"""socketeer.Server(views=True): handlers get read-only memoryviews of the reactor's read buffer.

The same echo bodies run with bytes (the oracle) and with views. The tests that matter most
keep views past their handler while the connection goes on reading into its buffer: a view
must still show its own message then, never bytes that arrived later.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import threading
import weakref
from typing import Any

import pytest

from socketeer import framing
from socketeer.server import Server
from test_server import DEADLINE, recv_exactly, serving


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection((server.address.host, server.address.port), timeout=DEADLINE)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def message(index: int, size: int) -> bytes:
    """Distinct content per message, so a view showing a later message's bytes is caught."""
    unit = b"%08d|abcdefg" % index
    return (unit * (size // len(unit) + 1))[:size]


class Keeper:
    """Echoes with send_message and keeps every message it got, as given (bytes or a view)."""

    def __init__(self) -> None:
        self.kept: list[Any] = []

    def on_message(self, conn: Any, data: Any) -> None:
        self.kept.append(data)
        conn.send_message(data)


FRAMINGS = {
    "lines": lambda: framing.lines(max_size=1 << 20),
    "lp4": lambda: framing.length_prefixed(4, max_size=1 << 20),
}


@pytest.mark.parametrize("views", [False, True], ids=["bytes", "views"])
@pytest.mark.parametrize("framing_name", list(FRAMINGS))
def test_kept_messages_stay_intact_while_the_connection_reads_on(views: bool, framing_name: str) -> None:
    f = FRAMINGS[framing_name]()
    sizes = [1, 100, 5000, 70000, 0, 3, 200000, 64, 65536]  # some larger than one read buffer
    messages = [message(i, size) for i, size in enumerate(sizes * 3)]
    keeper = Keeper()
    with serving(keeper, framing=f, views=views) as server, connect(server) as sock:
        for data in messages:  # one at a time, so each one is read into a buffer others reuse
            wire = f.encode(data)
            sock.sendall(wire)
            assert recv_exactly(sock, len(wire)) == wire
        burst = b"".join(f.encode(m) for m in messages)  # and many per read
        sock.sendall(burst)
        assert recv_exactly(sock, len(burst)) == burst
    assert all(isinstance(data, memoryview if views else bytes) for data in keeper.kept)
    assert [bytes(data) for data in keeper.kept] == messages * 2  # after the server closed, too


KEEPERS = {
    "the view": lambda data: data,
    "a slice": lambda data: data[2:],
    "its exporter": lambda data: data.obj,
    "a new view of its exporter": lambda data: memoryview(data.obj),
    "a cast of it": lambda data: data.cast("c"),
    # A buffer another exporter got from the view (as numpy.frombuffer would): it holds the
    # view's memory address itself, not the view.
    "an export of it": lambda data: memoryview(pickle.PickleBuffer(data)),
}


@pytest.mark.parametrize("keeper", list(KEEPERS))
def test_whatever_keeps_a_message_keeps_its_bytes(keeper: str) -> None:
    kept: list[tuple[bytes, Any]] = []

    class Keep:
        def on_message(self, conn: Any, data: memoryview) -> None:
            assert data.readonly
            with pytest.raises(TypeError, match="read-only"):
                data[0] = 0
            if data[:1] == b"k":
                kept.append((bytes(data), KEEPERS[keeper](data)))
            conn.send(data)

    with serving(Keep(), views=True) as server, connect(server) as sock:
        for i in range(20):  # each read into the same place, unless something kept the buffer
            piece = b"%s%02d:%s" % (b"kd"[i % 2 : i % 2 + 1], i, b"." * i)
            sock.sendall(piece)
            assert recv_exactly(sock, len(piece)) == piece
    assert len(kept) == 10
    for message_, what in kept:
        shown = memoryview(what).tobytes()
        assert shown == (message_[2:] if keeper == "a slice" else message_)


def test_a_small_kept_view_is_copied_out_and_a_large_one_keeps_its_read_block() -> None:
    # A kept view that nothing else points into is repointed at a copy of its message when the
    # message is small beside the read block (up to a quarter): keeping many small messages
    # must not keep a 64 KiB block alive for each. Larger ones keep sharing the block. (The block
    # is a few bytes longer than read_buffer, so the line falls just above 16 KiB.)
    f = framing.length_prefixed(4, max_size=1 << 20)
    keeper = Keeper()
    sizes = [5, 0, 16384, 16384 + 1024, 40000]
    messages = [message(i, size) for i, size in enumerate(sizes)]
    with serving(keeper, framing=f, views=True, read_buffer=64 * 1024) as server, connect(server) as sock:
        for data in messages:
            wire = f.encode(data)
            sock.sendall(wire)
            assert recv_exactly(sock, len(wire)) == wire
    assert [bytes(view) for view in keeper.kept] == messages
    assert [repr(view.obj).rsplit(", ", 1)[1] for view in keeper.kept] == [
        "copied>", "copied>", "copied>", "sharing a read block>", "sharing a read block>"]


def test_a_view_nothing_kept_is_reused_for_the_next_message() -> None:
    # No allocation per message: the memoryview (and its exporter) nothing kept is pointed at
    # the next message. It must still behave as a new view each time: length, hash, contents.
    views: set[int] = set()
    hashes: list[tuple[int, int]] = []

    class Echo:
        def on_message(self, conn: Any, data: memoryview) -> None:
            views.add(id(data))
            views.add(id(data.obj))
            assert repr(data.obj) == f"<socketeer message buffer, {len(data)} bytes, lent>"
            hashes.append((hash(data), hash(bytes(data))))
            conn.send(data)

    with serving(Echo(), views=True) as server, connect(server) as sock:
        for i in range(50):
            ping = b"ping %d" % i * (i + 1)
            sock.sendall(ping)
            assert recv_exactly(sock, len(ping)) == ping
    assert len(views) == 2, "one memoryview and one exporter, reused"
    assert all(a == b for a, b in hashes)
    assert len({a for a, _ in hashes}) == 50


def test_a_view_released_or_weakly_referenced_by_the_handler_is_not_reused() -> None:
    refs: list[Any] = []

    class Odd:
        def on_message(self, conn: Any, data: memoryview) -> None:
            conn.send(bytes(data))
            if data[:1] == b"w":
                refs.append((bytes(data), weakref.ref(data)))
            elif data[:1] == b"r":
                with data:  # releases it
                    pass

    with serving(Odd(), views=True) as server, connect(server) as sock:
        for piece in [b"release me", b"after the release", b"weak", b"after the weak reference"]:
            sock.sendall(piece)
            assert recv_exactly(sock, len(piece)) == piece
        assert len(refs) == 1
        for first, ref in refs:  # dead, or still showing its own message: never a later one
            assert ref() is None or bytes(ref()) == first


def test_views_survive_abort_and_close() -> None:
    kept: list[memoryview] = []

    class KeepAndAbort:
        def on_message(self, conn: Any, data: memoryview) -> None:
            kept.append(data)
            conn.abort()

    lp = framing.length_prefixed(4)
    payload = os.urandom(30000)
    with serving(KeepAndAbort(), framing=lp, views=True) as server, connect(server) as sock:
        sock.sendall(lp.encode(payload))
        with contextlib.suppress(ConnectionResetError):
            while sock.recv(65536):
                pass
    # The connection and the whole reactor are gone; what the views show is not.
    assert [bytes(v) for v in kept] == [payload]


def test_batch_mode_gets_views_and_kept_ones_stay_intact() -> None:
    kept: dict[int, list[memoryview]] = {}

    class Batch:
        def on_messages(self, batch: list[tuple[Any, memoryview]]) -> None:
            for conn, data in batch:
                assert isinstance(data, memoryview)
                if bytes(data[:1]) == b"k":
                    kept.setdefault(conn.id, []).append(data)
                conn.send_message(data)

    lines = [b"%s%05d" % (b"k" if i % 3 == 0 else b"d", i) * 50 for i in range(300)]
    with serving(Batch(), framing=framing.lines(), views=True) as server, connect(server) as a, \
            connect(server) as b:
        wire = b"".join(line + b"\n" for line in lines)
        for _ in range(3):
            a.sendall(wire)
            b.sendall(wire)
            assert recv_exactly(a, len(wire)) == wire
            assert recv_exactly(b, len(wire)) == wire
    assert len(kept) == 2
    for views in kept.values():  # per connection, in order
        assert [bytes(v) for v in views] == [line for line in lines if line[:1] == b"k"] * 3


def test_a_view_forwarded_to_a_slow_reader_arrives_intact(wait_until: Any) -> None:
    # A's messages go to B, which reads only once A has sent them all: what waits in B's queue
    # must not point into A's buffer, which A's later messages overwrite.
    connections: list[Any] = []
    both = threading.Event()

    class Forward:
        def on_connect(self, conn: Any) -> None:
            connections.append(conn)
            if len(connections) == 2:
                both.set()

        def on_message(self, conn: Any, data: memoryview) -> None:
            if conn is connections[0]:
                connections[1].send_message(data)

    lp = framing.length_prefixed(4, max_size=1 << 20)
    wire = b"".join(lp.encode(message(i, 60000)) for i in range(100))  # more than B's kernel buffers
    with serving(Forward(), framing=lp, views=True) as server, connect(server) as a:
        b = socket.socket()
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        b.settimeout(DEADLINE)
        with b:
            b.connect((server.address.host, server.address.port))
            assert both.wait(DEADLINE)
            assert connections[0].peer_address.port == a.getsockname()[1]
            a.sendall(wire)
            wait_until(lambda: server.stats()["received_bytes"] >= len(wire), what="the server to read A")
            assert server.stats()["queued_bytes"] > 0  # B's share really waited in the queue
            assert recv_exactly(b, len(wire)) == wire


def test_datagrams_stay_bytes_with_views() -> None:
    got: list[Any] = []

    class Datagrams:
        def on_datagram(self, endpoint: Any, data: Any, address: Any) -> None:
            got.append(data)
            endpoint.send_to(data, address)

    server = Server(Datagrams(), views=True)
    try:
        address = server.bind("udp://127.0.0.1:0")
        server.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(DEADLINE)
            sock.sendto(b"datagram", (address.host, address.port))
            assert sock.recv(100) == b"datagram"
    finally:
        server.close()
    assert got == [b"datagram"] and type(got[0]) is bytes
