"""socketeer.Server on ``unix+seqpacket:`` endpoints: one record is one message, both ways.

A SOCK_SEQPACKET connection carries records: each send is one record, each recv returns one
record (never part of one, never two). The stdlib socket module is the peer and the oracle:
what a client sends as N records must come back as the same N records, whatever the sizes,
however many are queued at once, and whether the handler is C++ (builtin echo) or Python.

Synchronisation is by what a client receives or by events set in handlers, never by sleeping.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from socketeer import framing
from socketeer.server import Server
from test_server import DEADLINE, Echo

SIZES = [1, 2, 3, 100, 1000, 4096, 10000, 65535, 65536]  # 1 B .. 64 KiB (the default max_size)
ENDPOINTS = ["unix+seqpacket:{tmp}/s", "unix+seqpacket:@socketeer-seqpacket-{pid}-{n}"]
_counter = iter(range(1 << 30))


def record(index: int, size: int) -> bytes:
    """Distinct content per record, so a record merged with, or cut into, another shows."""
    unit = b"<%06d>" % index
    return (unit * (size // len(unit) + 1))[:size]


@contextlib.contextmanager
def seqpacket_server(handler: Any, short_tmp: Any, template: str = ENDPOINTS[0],
                     **options: Any) -> Iterator[tuple[Server, socket.socket]]:
    """A started Server on a seqpacket endpoint and a stdlib client connected to it."""
    server = Server(handler, **options)
    try:
        address = server.listen(template.format(tmp=short_tmp, pid=os.getpid(), n=next(_counter)))
        server.start()
        target = "\0" + address.path if address.abstract else address.path
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            sock.settimeout(DEADLINE)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            sock.connect(target)
            yield server, sock
    finally:
        server.close()


def recv_records(sock: socket.socket, count: int) -> list[bytes]:
    """count records, each with one recv (MSG_TRUNC: a record longer than expected shows as such)."""
    received = []
    for _ in range(count):
        data, _, flags, _ = sock.recvmsg(1 << 20)
        assert not flags & socket.MSG_TRUNC
        received.append(data)
    return received


class RecordEcho(Echo):
    """test_server's Echo, replying with send() or send_message(), and saying when it closed."""

    def __init__(self, framed: bool = False) -> None:
        super().__init__()
        self.framed = framed

    def on_message(self, conn: Any, data: bytes) -> None:
        if self.framed:
            self.messages.append(data)
            conn.send_message(data)
        else:
            super().on_message(conn, data)

    def on_close(self, conn: Any, reason: str) -> None:
        super().on_close(conn, reason)
        self.all_closed.set()


# --- boundaries kept both ways ---------------------------------------------------------------


@pytest.mark.parametrize("template", ENDPOINTS, ids=["path", "abstract"])
@pytest.mark.parametrize("handler", ["builtin", "send", "send_message"])
def test_records_of_every_size_come_back_as_sent(template: str, handler: str, short_tmp: Any) -> None:
    """Every record is sent before any reply is read: the server finds several queued at once
    and must neither merge their replies into one record nor cut one into several."""
    echo = None if handler == "builtin" else RecordEcho(framed=handler == "send_message")
    options = {"builtin": "echo"} if echo is None else {}
    records = [record(i, size) for i, size in enumerate(SIZES * 3)]
    with seqpacket_server(echo, short_tmp, template, **options) as (_, sock):
        for data in records:
            sock.send(data)
        assert recv_records(sock, len(records)) == records
    if echo:
        assert echo.messages == records


def test_small_records_sent_in_one_burst_stay_apart(short_tmp: Any) -> None:
    """a, bb, ccc queued together: the echo is three records, not one record 'abbccc'."""
    with seqpacket_server(None, short_tmp, builtin="echo") as (_, sock):
        for _ in range(50):
            for data in (b"a", b"bb", b"ccc"):
                sock.send(data)
            assert recv_records(sock, 3) == [b"a", b"bb", b"ccc"]


def test_empty_records_are_messages_not_the_end(short_tmp: Any) -> None:
    """A zero-length record is a record (recv returns b'' for it, as for the end of stream):
    it is delivered as an empty message and echoed, and the connection stays open."""
    echo = RecordEcho()
    with seqpacket_server(echo, short_tmp) as (_, sock):
        sock.send(b"before")
        sock.send(b"")
        sock.send(b"after")
        assert recv_records(sock, 3) == [b"before", b"", b"after"]
        sock.send(b"still open")
        assert recv_records(sock, 1) == [b"still open"]
    assert echo.messages == [b"before", b"", b"after", b"still open"]


class BlockFirst(RecordEcho):
    """Holds the loop inside its first on_message until released, so records pile up unread."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def on_message(self, conn: Any, data: bytes) -> None:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(DEADLINE)
        super().on_message(conn, data)


def test_records_queued_while_the_handler_blocks_are_all_read(short_tmp: Any, wait_until: Any) -> None:
    """Records that arrive while the loop is busy must all be read once it is free again,
    without the client doing anything more to wake it (a short read of a SEQPACKET socket says
    nothing about what is still queued: each recv returns one record). The client reads no
    reply before the handler has had every record: reading would wake the server (its socket
    turns writable) and hide a reactor that waits for a new event before reading on."""
    handler = BlockFirst()
    burst = [record(i, 10 + i) for i in range(40)]
    with seqpacket_server(handler, short_tmp) as (_, sock):
        sock.send(b"first")
        assert handler.entered.wait(DEADLINE)
        for data in burst:
            sock.send(data)
        handler.release.set()
        wait_until(lambda: len(handler.messages) == 1 + len(burst), what="every queued record to be read")
        assert handler.messages == [b"first"] + burst
        assert recv_records(sock, 1 + len(burst)) == [b"first"] + burst


# --- limits: too large on the way in or out, a peer that does not read -------------------------


def test_record_longer_than_max_size_closes_that_connection(short_tmp: Any) -> None:
    echo = RecordEcho()
    with seqpacket_server(echo, short_tmp, framing=framing.raw(max_size=100)) as (_, sock):
        sock.send(b"x" * 100)
        assert recv_records(sock, 1) == [b"x" * 100]
        sock.send(b"y" * 101)
        assert sock.recv(200) == b""  # closed
        assert echo.all_closed.wait(DEADLINE)
    assert echo.closed == ["message of 101 bytes exceeds max_size=100"]
    assert echo.messages == [b"x" * 100]


class HugeReply(RecordEcho):
    def on_message(self, conn: Any, data: bytes) -> None:
        self.messages.append(data)
        conn.send(b"z" * (8 << 20) if data == b"huge" else data)


def test_reply_too_large_for_a_record_closes_that_connection(short_tmp: Any) -> None:
    """A record larger than the socket can ever send (EMSGSIZE) cannot go out whole: the
    connection closes with that reason, the server does not retry it forever."""
    handler = HugeReply()
    with seqpacket_server(handler, short_tmp) as (server, sock):
        sock.send(b"fine")
        assert recv_records(sock, 1) == [b"fine"]
        sock.send(b"huge")
        assert sock.recv(100) == b""
        assert handler.all_closed.wait(DEADLINE)
        assert "Message too long" in handler.closed[0], handler.closed
        assert server.stats()["queued_bytes"] == 0


def test_backpressure_with_a_peer_that_reads_late(short_tmp: Any, wait_until: Any) -> None:
    """The client sends 24 MiB of records and reads nothing until the server has stopped reading
    at the high watermark (its replies wait for room, whole); then everything arrives intact.
    (The kernel's queues between them hold a few MiB at most, so the server must pause before
    the sender can finish.)"""
    records = [record(i, 65536 - i) for i in range(384)]
    with seqpacket_server(None, short_tmp, builtin="echo", high_watermark=1 << 20,
                          low_watermark=256 << 10) as (server, sock):
        sender = threading.Thread(target=lambda: [sock.send(data) for data in records])
        sender.start()
        try:
            wait_until(lambda: server.stats()["paused_reads"] > 0, timeout=DEADLINE,
                       what="the server to stop reading at its high watermark")
            assert recv_records(sock, len(records)) == records
        finally:
            sender.join(DEADLINE)
        assert not sender.is_alive()


def test_idle_timeout_closes_a_silent_seqpacket_connection(short_tmp: Any) -> None:
    echo = RecordEcho()
    with seqpacket_server(echo, short_tmp, idle_timeout=0.2) as (_, sock):
        sock.send(b"hello")
        assert recv_records(sock, 1) == [b"hello"]
        assert sock.recv(100) == b""  # then silence, and the server closes it
        assert echo.all_closed.wait(DEADLINE)
    assert echo.closed == ["idle timeout"]


def test_send_from_another_thread_is_one_record(short_tmp: Any) -> None:
    class Remember(RecordEcho):
        def __init__(self) -> None:
            super().__init__()
            self.conn: Any = None
            self.opened = threading.Event()

        def on_connect(self, conn: Any) -> None:
            self.conn = conn
            self.opened.set()

    handler = Remember()
    with seqpacket_server(handler, short_tmp) as (_, sock):
        assert handler.opened.wait(DEADLINE)
        for data in (b"one", b"", b"three"):
            assert handler.conn.send(data)
        assert recv_records(sock, 3) == [b"one", b"", b"three"]


# --- framing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [framing.lines, lambda: framing.length_prefixed(4)], ids=["lines", "lp4"])
def test_framed_server_refuses_a_seqpacket_endpoint(make: Any, short_tmp: Any) -> None:
    """A record already is a message: a length prefix or a delimiter inside records has no one
    meaning, so listen() refuses it, names the endpoint, and leaves no socket file behind."""
    server = Server(builtin="echo", framing=make())
    try:
        with pytest.raises(ValueError, match=r"unix\+seqpacket:.*raw framing"):
            server.listen(f"unix+seqpacket:{short_tmp}/framed")
        assert not os.path.exists(f"{short_tmp}/framed")
        assert server.addresses == []
        server.listen(f"unix:{short_tmp}/stream")  # the same framing on a stream is fine
    finally:
        server.close()
