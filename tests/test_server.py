"""socketeer.Server over real loopback (127.0.0.1, ::1, unix paths and abstract names), with the
stdlib socket module and socketeer.connect as clients.

Synchronisation is by events set in handlers, by what a client receives, or by the server's own
counters (stats()), never by sleeping. Every loop is bounded by a count and a deadline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import socketeer
from socketeer import framing
from socketeer.server import Server

DEADLINE = 10.0  # seconds any single wait may take before the test fails


# --- helpers ---------------------------------------------------------------------------------


def family_and_target(address: Any) -> tuple[int, Any]:
    if address.family == socket.AF_UNIX:
        return socket.AF_UNIX, ("\0" + address.path if address.abstract else address.path)
    return int(address.family), (address.host, address.port)


def client(server: Server, index: int = 0, kind: int = socket.SOCK_STREAM) -> socket.socket:
    family, target = family_and_target(server.addresses[index])
    sock = socket.socket(family, kind)
    sock.settimeout(DEADLINE)
    try:
        sock.connect(target)
    except BaseException:
        sock.close()
        raise
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError(f"connection closed with {size} bytes still expected")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def recv_to_eof(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


@contextlib.contextmanager
def serving(handler: Any = None, endpoint: str = "tcp://127.0.0.1:0", **options: Any) -> Iterator[Server]:
    server = Server(handler, **options)
    try:
        server.listen(endpoint)
        server.start()
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def serving_datagrams(handler: Any, endpoint: str, **options: Any) -> Iterator[tuple[Server, Any]]:
    """serving() for a datagram endpoint: a started Server bound to it, and the bound address."""
    server = Server(handler, **options)
    try:
        address = server.bind(endpoint)
        server.start()
        yield server, address
    finally:
        server.close()


class Echo:
    """Echoes each message, re-framed with the server's framing."""

    def __init__(self, framing_: Any = None) -> None:
        self.framing = framing_
        self.messages: list[bytes] = []
        self.closed: list[str] = []
        self.all_closed = threading.Event()

    def on_message(self, conn: Any, data: bytes) -> None:
        self.messages.append(data)
        conn.send(self.framing.encode(data) if self.framing else data)

    def on_close(self, conn: Any, reason: str) -> None:
        self.closed.append(reason)


ENDPOINTS = ["tcp://127.0.0.1:0", "tcp://[::1]:0", "unix:{tmp}/s", "unix:@socketeer-test-{pid}-{n}"]
_counter = iter(range(1 << 30))


def endpoint_for(template: str, short_tmp: Any) -> str:
    return template.format(tmp=short_tmp, pid=os.getpid(), n=next(_counter))


# --- many clients ------------------------------------------------------------------------------


@pytest.mark.parametrize("template", ENDPOINTS)
@pytest.mark.parametrize("builtin", [False, True], ids=["python", "builtin"])
def test_many_concurrent_clients(template: str, builtin: bool, short_tmp: Any, wait_until: Any) -> None:
    options: dict[str, Any] = {"framing": framing.lines()}
    handler = None if builtin else Echo(framing.lines())
    if builtin:
        options["builtin"] = "echo"
    with serving(handler, endpoint_for(template, short_tmp), **options) as server:
        clients = [client(server) for _ in range(50)]
        try:
            for round_ in range(3):
                for i, sock in enumerate(clients):
                    sock.sendall(b"client %d round %d\n" % (i, round_))
                for i, sock in enumerate(clients):
                    expected = b"client %d round %d\n" % (i, round_)
                    assert recv_exactly(sock, len(expected)) == expected
            # stats() are published at the end of each turn, just after the replies went out
            wait_until(lambda: server.stats()["messages"] == 150, what="150 messages counted")
            assert server.stats()["accepted"] == 50
            assert server.stats()["connections"] == 50
        finally:
            for sock in clients:
                sock.close()
        wait_until(lambda: server.stats()["closed"] == 50, what="the server to see every client close")
    if handler:
        assert handler.closed == ["eof"] * 50
        assert len(handler.messages) == 150


def test_socketeer_connect_as_client() -> None:
    with serving(Echo(framing.length_prefixed(2)), framing=framing.length_prefixed(2)) as server:
        with socketeer.connect(server.endpoint(), timeout=DEADLINE) as stream:
            for size in (0, 1, 1000, 65535):
                stream.send_message(b"m" * size, framing.length_prefixed(2))
                assert next(stream.messages(framing.length_prefixed(2))) == b"m" * size


# --- large messages and split frames ---------------------------------------------------------


def test_one_mebibyte_message_python_handler() -> None:
    lp = framing.length_prefixed(4, max_size=2 << 20)
    payload = os.urandom(1 << 20)
    with serving(Echo(lp), framing=lp) as server, client(server) as sock:
        sock.sendall(lp.encode(payload) * 2)
        for _ in range(2):
            assert recv_exactly(sock, 4) == (1 << 20).to_bytes(4, "big")
            assert recv_exactly(sock, 1 << 20) == payload


@pytest.mark.parametrize("template", ENDPOINTS)
def test_one_mebibyte_builtin_echo(template: str, short_tmp: Any) -> None:
    payload = os.urandom(1 << 20)
    with serving(None, endpoint_for(template, short_tmp), builtin="echo") as server, client(server) as sock:
        received: list[bytes] = []
        reader = threading.Thread(target=lambda: received.append(recv_exactly(sock, len(payload))))
        reader.start()
        sock.sendall(payload)
        reader.join(DEADLINE)
        assert not reader.is_alive()
        assert received == [payload]


FRAMINGS = {
    "raw": lambda: framing.raw(),
    "lines": lambda: framing.lines(),
    "crlf": lambda: framing.delimited(b"\r\n"),
    "lp1": lambda: framing.length_prefixed(1),
    "lp2": lambda: framing.length_prefixed(2),
    "lp4": lambda: framing.length_prefixed(4),
    "lp8-little": lambda: framing.length_prefixed(8, "little"),
}


class MessageEcho:
    """Echoes each message with conn.send_message: the server adds the framing."""

    def on_message(self, conn: Any, data: bytes) -> None:
        conn.send_message(data)


@pytest.mark.parametrize("framing_name", list(FRAMINGS))
def test_send_message_frames_like_encode(framing_name: str) -> None:
    # Framing.encode is the oracle: send_message must put exactly those bytes on the wire.
    framing_ = FRAMINGS[framing_name]()
    payloads = [b"x", b"hello world", bytes(range(32, 127)), b"y" * 250]
    if framing_name != "raw":
        payloads.append(b"")  # an empty message still has its prefix or delimiter
    with serving(MessageEcho(), framing=framing_) as server, client(server) as sock:
        for payload in payloads:  # one at a time: raw framing has no boundaries of its own
            expected = framing_.encode(payload)
            sock.sendall(expected)
            assert recv_exactly(sock, len(expected)) == expected
        if framing_name != "raw":  # several in one segment come back as several frames
            burst = b"".join(framing_.encode(p) for p in payloads)
            sock.sendall(burst)
            assert recv_exactly(sock, len(burst)) == burst


class RememberConnections:
    """Keeps every connection on_connect sees, for a test to use from its own thread."""

    def __init__(self) -> None:
        self.connections: list[Any] = []
        self.connected = threading.Event()

    def on_connect(self, conn: Any) -> None:
        self.connections.append(conn)
        self.connected.set()


def test_send_message_from_another_thread() -> None:
    handler = RememberConnections()
    with serving(handler, framing=framing.length_prefixed(2)) as server, client(server) as sock:
        assert handler.connected.wait(DEADLINE)
        assert handler.connections[0].send_message(b"pushed") is True  # not the loop thread: queued
        assert recv_exactly(sock, 8) == b"\x00\x06pushed"


@pytest.mark.parametrize("framing_name, message, error", [
    ("lines", b"two\nlines", ValueError),
    ("lp1", b"z" * 256, ValueError),
    ("small", b"z" * 33, socketeer.MessageTooLarge),
])
def test_send_message_refuses_what_the_framing_cannot_carry(framing_name: str, message: bytes, error: type,
                                                            wait_until: Any) -> None:
    made = {"small": lambda: framing.length_prefixed(4, max_size=32), **FRAMINGS}[framing_name]()
    errors: list[BaseException] = []

    class Refused:
        def on_message(self, conn: Any, data: bytes) -> None:
            conn.send_message(message)

    server = Server(Refused(), framing=made, on_error=lambda conn, exc: errors.append(exc))
    try:
        server.listen("tcp://127.0.0.1:0")
        server.start()
        with client(server) as sock:
            sock.sendall(made.encode(b"go"))
            assert recv_to_eof(sock) == b""  # nothing of the refused message went out
        wait_until(lambda: errors, what="the handler error")
        assert isinstance(errors[0], error), errors
        assert str(errors[0])
    finally:
        server.close()


def split_points_test(framing_name: str, builtin: bool, byte_by_byte: bool, wait_until: Any) -> None:
    f = FRAMINGS[framing_name]()
    messages = [b"first message", b"", b"the second, a bit longer"]
    if f.kind != "length_prefixed":
        messages = [m for m in messages if m]  # an empty raw chunk or line is no message to send
    wire = b"".join(f.encode(m) for m in messages)
    handler = None if builtin else Echo(f)
    options: dict[str, Any] = {"framing": f}
    if builtin:
        options["builtin"] = "echo"
    with serving(handler, **options) as server, client(server) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        received = 0

        def send_piece(piece: bytes) -> None:
            # Each piece is read by the server before the next is sent, so the frame really
            # arrives split where the test says.
            nonlocal received
            sock.sendall(piece)
            received += len(piece)
            wait_until(lambda: server.stats()["received_bytes"] >= received, what="the server to read a piece")

        if byte_by_byte:
            splits = [[wire[i : i + 1] for i in range(len(wire))]]
        else:
            splits = [[wire[:i], wire[i:]] for i in range(1, len(wire))]
        for pieces in splits:
            for piece in pieces:
                send_piece(piece)
            assert recv_exactly(sock, len(wire)) == wire
            if handler is not None:
                if f.kind == "raw":
                    assert b"".join(handler.messages) == wire
                else:
                    assert handler.messages == messages
                handler.messages.clear()


@pytest.mark.parametrize("framing_name", FRAMINGS)
@pytest.mark.parametrize("builtin", [False, True], ids=["python", "builtin"])
def test_split_at_every_byte_boundary(framing_name: str, builtin: bool, wait_until: Any) -> None:
    split_points_test(framing_name, builtin, False, wait_until)


@pytest.mark.parametrize("framing_name", FRAMINGS)
def test_byte_by_byte(framing_name: str, wait_until: Any) -> None:
    split_points_test(framing_name, False, True, wait_until)


def test_many_messages_in_one_segment() -> None:
    lp = framing.length_prefixed(2)
    messages = [b"%d" % i * (i % 7) for i in range(2000)]
    with serving(Echo(lp), framing=lp) as server, client(server) as sock:
        wire = b"".join(lp.encode(m) for m in messages)
        sock.sendall(wire)
        assert recv_exactly(sock, len(wire)) == wire


@pytest.mark.parametrize("builtin", [False, True], ids=["python", "builtin"])
def test_a_message_as_long_as_the_read_buffer_takes_one_recv(builtin: bool, wait_until: Any) -> None:
    # A recv that fills the whole buffer cannot tell whether more is waiting, so it costs one
    # more recv to find out. Messages as long as read_buffer (both powers of two) must not.
    size, rounds = 4096, 40  # one loopback segment: the message arrives whole
    options: dict[str, Any] = {"builtin": "echo"} if builtin else {"handler": Echo()}
    with serving(read_buffer=size, **options) as server, client(server) as sock:
        for i in range(rounds):
            message = bytes([i]) * size
            sock.sendall(message)
            assert recv_exactly(sock, size) == message
        sock.close()
        wait_until(lambda: server.stats()["closed"] == 1, what="the server to see the close")
        reads = server.stats()["reads"]
    # One recv per message, plus the ones that found nothing: after the accept, and the end of
    # stream. A full buffer each time would take two per message.
    assert rounds <= reads <= rounds + 3, reads


# --- backpressure ------------------------------------------------------------------------------

REPLY = 1 << 20
REQUEST = 8 * 1024
HIGH = 4 * 1024 * 1024


class BigReplies:
    """Answers each 8 KiB request line with 1 MiB: a fresh bytes object each time, numbered, so
    the reactor cannot share one buffer and the client can tell the replies apart."""

    def __init__(self) -> None:
        self.requests = 0

    def on_message(self, conn: Any, data: bytes) -> None:
        assert len(data) == REQUEST - 1
        header = b"reply %08d " % self.requests
        self.requests += 1
        conn.send(header + b"x" * (REPLY - len(header)))


def test_backpressure_pauses_reading_and_memory_stays_bounded(wait_until: Any) -> None:
    handler = BigReplies()
    with serving(handler, framing=framing.lines(max_size=REQUEST), high_watermark=HIGH,
                 low_watermark=HIGH // 4) as server, client(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
        sock.setblocking(False)
        request = b"r" * (REQUEST - 1) + b"\n"
        sent = 0
        deadline = time.monotonic() + DEADLINE
        # Send requests without reading until the kernel refuses more: the server stopped reading.
        while time.monotonic() < deadline and sent < 100_000:
            try:
                n = sock.send(request[sent % REQUEST :])
            except BlockingIOError:  # kernel buffers full: has the server stopped reading?
                if server.stats()["paused_reads"]:
                    break
                time.sleep(0.001)
                continue
            sent += n
        stats = wait_until(lambda: (s := server.stats())["paused_reads"] >= 1 and s, what="reading to pause")
        # Queued output: at most the high watermark plus what one turn's messages added.
        assert stats["queued_bytes"] <= HIGH + 16 * REPLY, stats
        assert handler.requests * REQUEST <= stats["received_bytes"]

        # Now read: every reply arrives, intact and in order, and reading resumes.
        sock.setblocking(True)
        sock.settimeout(DEADLINE)
        requests = sent // REQUEST
        for i in range(requests):
            reply = recv_exactly(sock, REPLY)
            header = b"reply %08d " % i
            assert reply[: len(header)] == header
            assert reply.count(b"x") == REPLY - len(header)
        wait_until(lambda: server.stats()["queued_bytes"] == 0, what="the queue to drain")
        assert handler.requests == requests


def test_backpressure_peak_queue_is_bounded(wait_until: Any) -> None:
    """Many requests in one segment each answered with 1 MiB: the reactor must not hand out all of
    them in one turn, or one read of 64 KiB could queue gigabytes."""
    handler = BigReplies()
    with serving(handler, framing=framing.lines(max_size=REQUEST), high_watermark=HIGH,
                 low_watermark=HIGH // 4) as server, client(server) as sock:
        burst = (b"r" * (REQUEST - 1) + b"\n") * 24  # 192 KiB: fits the kernel buffers at once
        sock.sendall(burst)
        wait_until(lambda: server.stats()["paused_reads"] >= 1, what="reading to pause")
        peak = server.stats()["queued_bytes"]
        assert peak <= HIGH + 16 * REPLY, peak
        for i in range(24):
            assert recv_exactly(sock, REPLY)[:15] == b"reply %08d " % i
        assert handler.requests == 24


def test_builtin_echo_client_that_does_not_read() -> None:
    """A raw echo whose client only sends: the server stops reading at the watermark, so the
    client's sends block instead of the server queueing without bound."""
    with serving(None, builtin="echo", high_watermark=256 * 1024, low_watermark=64 * 1024) as server:
        with client(server) as sock:
            sock.setblocking(False)
            sent = 0
            chunk = bytes(range(256)) * 256
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline:
                try:
                    sent += sock.send(chunk[sent % 256 :])  # the stream stays the 0..255 pattern
                except BlockingIOError:
                    if server.stats()["paused_reads"]:
                        break
                    time.sleep(0.001)
            stats = server.stats()
            assert stats["paused_reads"] >= 1
            assert stats["queued_bytes"] <= 256 * 1024 + 8 * 64 * 1024, stats
            sock.setblocking(True)
            sock.settimeout(DEADLINE)
            sock.shutdown(socket.SHUT_WR)
            echoed = recv_to_eof(sock)
            assert len(echoed) == sent
            assert echoed == (chunk * (sent // len(chunk) + 1))[:sent]


# --- handler errors --------------------------------------------------------------------------


class Fragile:
    def __init__(self) -> None:
        self.closed: dict[int, str] = {}

    def on_message(self, conn: Any, data: bytes) -> None:
        if data == b"boom":
            raise RuntimeError("handler exploded on purpose")
        conn.send(data + b"\n")

    def on_close(self, conn: Any, reason: str) -> None:
        self.closed[conn.id] = reason


def test_handler_exception_is_logged_and_closes_only_that_connection(caplog: pytest.LogCaptureFixture,
                                                                    wait_until: Any) -> None:
    handler = Fragile()
    caplog.set_level(logging.ERROR, logger="socketeer.server")
    with serving(handler, framing=framing.lines()) as server, client(server) as good, client(server) as bad:
        good.sendall(b"before\n")
        assert recv_exactly(good, 7) == b"before\n"
        bad.sendall(b"boom\n")
        assert recv_to_eof(bad) == b""
        good.sendall(b"after\n")
        assert recv_exactly(good, 6) == b"after\n"
        wait_until(lambda: len(handler.closed) == 1, what="on_close of the failed connection")
    records = [r for r in caplog.records if r.name == "socketeer.server"]
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.ERROR
    assert record.exc_info and isinstance(record.exc_info[1], RuntimeError)
    assert "handler exploded on purpose" in caplog.text
    assert "Traceback" in caplog.text
    assert list(handler.closed.values())[0] == "closed"


def test_exception_in_on_connect_and_on_close(caplog: pytest.LogCaptureFixture, wait_until: Any) -> None:
    class Bad:
        def on_connect(self, conn: Any) -> None:
            raise ValueError("no thanks")

        def on_close(self, conn: Any, reason: str) -> None:
            raise KeyError("close failed")

    caplog.set_level(logging.ERROR, logger="socketeer.server")
    with serving(Bad()) as server:
        for _ in range(3):
            with client(server) as sock:
                assert recv_to_eof(sock) == b""
        wait_until(lambda: server.stats()["closed"] == 3, what="three closes")
    messages = [r.exc_info[1] for r in caplog.records if r.name == "socketeer.server"]
    assert sum(isinstance(e, ValueError) for e in messages) == 3
    assert sum(isinstance(e, KeyError) for e in messages) == 3


# --- life cycle ------------------------------------------------------------------------------


def test_stop_while_busy(wait_until: Any) -> None:
    handler = BigReplies()
    closed: list[str] = []
    handler.on_close = lambda conn, reason: closed.append(reason)  # type: ignore[attr-defined]
    server = Server(handler, framing=framing.lines(max_size=REQUEST))
    try:
        server.listen("tcp://127.0.0.1:0")
        server.start()
        clients = [client(server) for _ in range(5)]
        try:
            for sock in clients:  # every client is sent megabytes it does not read
                sock.sendall((b"r" * (REQUEST - 1) + b"\n") * 4)
            wait_until(lambda: handler.requests >= 20, what="every request to be handled")
            server.stop()
            assert not any(r.running for r in server._reactors)
            assert sorted(closed) == ["server stopped"] * 5
            for sock in clients:  # whatever was queued may be cut short, but the end comes
                with contextlib.suppress(ConnectionResetError):
                    recv_to_eof(sock)
        finally:
            for sock in clients:
                sock.close()
    finally:
        server.close()


def test_close_is_idempotent_and_start_twice_raises() -> None:
    server = Server(builtin="echo")
    server.listen("tcp://127.0.0.1:0")
    server.start()
    with pytest.raises(RuntimeError, match="already started"):
        server.start()
    with client(server) as sock:
        sock.sendall(b"ping")
        assert recv_exactly(sock, 4) == b"ping"
    server.close()
    server.close()
    server.stop()
    assert "stopped" in repr(server)


def test_context_manager_starts_and_closes(short_tmp: Any) -> None:
    path = f"{short_tmp}/cm"
    srv = Server(builtin="fixed", response=b"ok\n")
    srv.listen(f"unix:{path}")
    with srv as running:
        assert running is srv
        assert repr(srv).startswith("<socketeer.Server running")  # at once, before any traffic
        with client(srv) as sock:
            sock.sendall(b"anything")
            assert recv_exactly(sock, 3) == b"ok\n"
        assert repr(srv).startswith("<socketeer.Server running")
        srv.listen("tcp://127.0.0.1:0")  # endpoints can be added while it runs
        with client(srv, 1) as sock:
            sock.sendall(b"anything")
            assert recv_exactly(sock, 3) == b"ok\n"
    assert repr(srv).startswith("<socketeer.Server stopped")
    assert not os.path.exists(path)
    with Server(builtin="discard"):
        pass


def interrupted_run(server: Server, before_signal: Any) -> list[Any]:
    """Runs server.run() in the main thread while a helper thread connects, calls
    before_signal(sock) (which returns once the loop is known to be running), sends SIGINT to
    the main thread, then reads the connection to its end. Checks that run() raised
    KeyboardInterrupt; returns what before_signal returned and what the read got."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals go to the main thread")
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default handler here")
    main = threading.main_thread().ident
    assert main is not None
    outcome: list[Any] = []
    sock = client(server)

    def interrupt() -> None:
        try:
            outcome.append(before_signal(sock))
        finally:
            signal.pthread_kill(main, signal.SIGINT)
        with contextlib.suppress(OSError):
            outcome.append(recv_to_eof(sock))

    helper = threading.Thread(target=interrupt)
    helper.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            server.run()
    finally:
        helper.join(DEADLINE)
        sock.close()
    assert not helper.is_alive()
    assert not server._reactors[0].running
    assert signal.set_wakeup_fd(-1) == -1  # run() took its wakeup fd away again
    return outcome


def test_keyboard_interrupt_in_run_stops_cleanly() -> None:
    accepted = threading.Event()
    closed: list[str] = []

    class Handler:
        def on_connect(self, conn: Any) -> None:
            accepted.set()

        def on_close(self, conn: Any, reason: str) -> None:
            closed.append(reason)

    server = Server(Handler())
    try:
        server.listen("tcp://127.0.0.1:0")
        outcome = interrupted_run(server, lambda sock: accepted.wait(DEADLINE))
        assert outcome == [True, b""]  # accepted, then closed on the way out
        assert closed == ["server stopped"]
    finally:
        server.close()


def test_keyboard_interrupt_builtin_echo_repeatedly() -> None:
    """No Python runs in the loop here, so only the signal itself can end the poll: it may land
    while the loop is between polls (interrupting no syscall), which the signal wakeup fd covers.
    Ten rounds, each signalled right after an echo came back (the loop just flushed it)."""

    def echo_once(sock: socket.socket) -> bytes:
        sock.sendall(b"x")
        return recv_exactly(sock, 1)

    for _ in range(10):
        server = Server(builtin="echo")
        try:
            server.listen("tcp://127.0.0.1:0")
            assert interrupted_run(server, echo_once) == [b"x", b""]
        finally:
            server.close()


# --- framing errors and idle timeouts -------------------------------------------------------


@pytest.mark.parametrize(
    "f, wire, reason",
    [
        (framing.length_prefixed(4, max_size=100), (1000).to_bytes(4, "big"), "message of 1000 bytes exceeds max_size=100"),
        (framing.length_prefixed(1, max_size=10), b"\x0b", "message of 11 bytes exceeds max_size=10"),
        (framing.length_prefixed(8, max_size=1 << 20), (1 << 40).to_bytes(8, "big"),
         f"message of {1 << 40} bytes exceeds max_size={1 << 20}"),
        # how much of an unterminated line was buffered when it was refused depends on the reads
        (framing.lines(max_size=100), b"x" * 200, r"message of \d+\+? bytes exceeds max_size=100"),
    ],
    ids=["lp4", "lp1", "lp8", "lines"],
)
def test_oversize_frame_closes_only_that_connection(f: Any, wire: bytes, reason: str, wait_until: Any) -> None:
    handler = Echo(f)
    with serving(handler, framing=f) as server, client(server) as good, client(server) as bad:
        bad.sendall(wire)
        with contextlib.suppress(ConnectionResetError):
            assert recv_to_eof(bad) == b""
        wait_until(lambda: handler.closed, what="on_close")
        assert len(handler.closed) == 1
        assert re.fullmatch(reason, handler.closed[0]), handler.closed
        good.sendall(f.encode(b"still fine"))
        expected = f.encode(b"still fine")
        assert recv_exactly(good, len(expected)) == expected


def test_idle_timeout_closes_silent_connections(wait_until: Any) -> None:
    handler = Echo(framing.lines())
    with serving(handler, framing=framing.lines(), idle_timeout=0.2) as server:
        with client(server) as sock:
            started = time.monotonic()
            assert recv_to_eof(sock) == b""
            assert time.monotonic() - started >= 0.15
        wait_until(lambda: handler.closed, what="on_close")
        assert handler.closed == ["idle timeout"]


# --- UDP and unix datagrams -------------------------------------------------------------------


class DatagramEcho:
    def __init__(self) -> None:
        self.senders: list[Any] = []
        self.threads: set[int] = set()

    def on_datagram(self, endpoint: Any, data: bytes, address: Any) -> None:
        self.senders.append(address)
        endpoint.send_to(data, address)


def datagram_client(address: Any, bind_to: Any = None) -> socket.socket:
    family, target = family_and_target(address)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(DEADLINE)
    try:
        sock.bind(bind_to if bind_to is not None else (("127.0.0.1" if family == socket.AF_INET else "::1"), 0))
        sock.connect(target)
    except BaseException:
        sock.close()
        raise
    return sock


@pytest.mark.parametrize("endpoint", ["udp://127.0.0.1:0", "udp://[::1]:0"])
def test_udp_hundred_datagrams_echoed(endpoint: str) -> None:
    handler = DatagramEcho()
    with serving_datagrams(handler, endpoint) as (server, address):
        with datagram_client(address) as sock:
            for i in range(100):
                sock.send(b"datagram %d" % i)
            echoed = sorted(sock.recv(100) for _ in range(100))
            assert echoed == sorted(b"datagram %d" % i for i in range(100))
            me = sock.getsockname()
            assert {(a.host, a.port) for a in handler.senders} == {(me[0], me[1])}
        server.stop()  # stats are published after each turn's replies went out: final once stopped
        assert server.stats()["datagrams"] == 100


def test_udp_builtin_echo_and_several_clients() -> None:
    with Server(builtin="echo") as server:
        pass
    with serving_datagrams(None, "udp://127.0.0.1:0", builtin="echo") as (server, address):
        socks = [datagram_client(address) for _ in range(5)]
        try:
            for i, sock in enumerate(socks):
                for j in range(20):
                    sock.send(b"%d/%d" % (i, j))
            for i, sock in enumerate(socks):
                assert sorted(sock.recv(100) for _ in range(20)) == sorted(b"%d/%d" % (i, j) for j in range(20))
        finally:
            for sock in socks:
                sock.close()


@pytest.mark.parametrize("endpoint", ["udp://127.0.0.1:0", "udp://[::1]:0"])
def test_udp_python_handler_keeps_senders_apart(endpoint: str) -> None:
    # Sender Address objects are reused per peer: each client must still get only its own
    # replies, and each address must equal (and hash like) a fresh one for the same peer.
    handler = DatagramEcho()
    with serving_datagrams(handler, endpoint) as (server, address):
        socks = [datagram_client(address) for _ in range(4)]
        try:
            for round_ in range(3):
                for i, sock in enumerate(socks):
                    sock.send(b"%d/%d" % (i, round_))
                for i, sock in enumerate(socks):
                    assert sock.recv(100) == b"%d/%d" % (i, round_)
            names = {sock.getsockname()[:2] for sock in socks}
            assert {(a.host, a.port) for a in handler.senders} == names
            assert len(handler.senders) == 12
            cls = type(handler.senders[0])
            fresh = {cls(*name) for name in names}
            assert set(handler.senders) == fresh and len(fresh) == 4
        finally:
            for sock in socks:
                sock.close()


def test_unix_datagram_endpoint(short_tmp: Any) -> None:
    handler = DatagramEcho()
    with serving_datagrams(handler, f"unix+dgram:{short_tmp}/d") as (server, address):
        with datagram_client(address, bind_to=f"{short_tmp}/c") as sock:
            for i in range(10):
                sock.send(b"unix %d" % i)
            assert sorted(sock.recv(100) for _ in range(10)) == sorted(b"unix %d" % i for i in range(10))
        assert {a.path for a in handler.senders} == {f"{short_tmp}/c"}
    assert not os.path.exists(f"{short_tmp}/d")


def test_unix_datagram_longer_than_datagram_size_is_dropped_not_cut(short_tmp: Any) -> None:
    # A unix datagram may be longer than any UDP one: one past datagram_size would arrive cut
    # short (MSG_TRUNC). It must be counted and dropped; the datagrams around it still arrive.
    handler = DatagramEcho()
    with serving_datagrams(handler, f"unix+dgram:{short_tmp}/d", datagram_size=1000) as (server, address):
        with datagram_client(address, bind_to=f"{short_tmp}/c") as sock:
            sock.send(b"a" * 1000)  # exactly datagram_size: whole
            sock.send(b"b" * 1001)
            sock.send(b"c" * 100_000)
            sock.send(b"last")
            assert sock.recv(200_000) == b"a" * 1000
            assert sock.recv(200_000) == b"last"
        server.stop()
        assert server.stats()["truncated_datagrams"] == 2
        assert server.stats()["datagrams"] == 2


def test_udp_builtin_echo_drops_truncated_datagrams() -> None:
    with serving_datagrams(None, "udp://127.0.0.1:0", builtin="echo", datagram_size=512) as (server, address):
        with datagram_client(address) as sock:
            sock.send(b"x" * 513)
            sock.send(b"y" * 512)
            assert sock.recv(2048) == b"y" * 512
        server.stop()
        assert server.stats()["truncated_datagrams"] == 1


@pytest.mark.parametrize("option", [{"datagram_size": 0}, {"datagram_batch": 0}, {"datagram_size": -1}])
def test_datagram_sizes_must_be_positive(option: dict) -> None:
    with pytest.raises(ValueError, match="datagram_batch and datagram_size must be >= 1"):
        Server(builtin="echo", **option)


def test_datagram_endpoint_send_from_outside_the_loop() -> None:
    with serving_datagrams(DatagramEcho(), "udp://127.0.0.1:0") as (server, address):
        with datagram_client(address) as sock:
            (endpoint,) = server.datagram_endpoints()
            assert endpoint.address == address
            assert endpoint.send_to(b"unprompted", sock.getsockname())
            assert sock.recv(100) == b"unprompted"


# --- several reactors ------------------------------------------------------------------------


def test_two_reactors_share_a_port(wait_until: Any) -> None:
    threads: set[int] = set()
    lock = threading.Lock()

    class Where:
        def on_connect(self, conn: Any) -> None:
            with lock:
                threads.add(threading.get_ident())

        def on_message(self, conn: Any, data: bytes) -> None:
            conn.send(data)

    with serving(Where(), threads=2) as server:
        assert len(server._reactors) == 2
        for _ in range(40):
            with client(server) as sock:
                sock.sendall(b"x")
                assert recv_exactly(sock, 1) == b"x"
            if len(threads) == 2:
                break
        wait_until(lambda: server.stats()["accepted"] >= 2, what="accepts")
    assert len(threads) == 2


def test_two_reactors_builtin_echo(wait_until: Any) -> None:
    with serving(None, builtin="echo", threads=2) as server:
        clients = [client(server) for _ in range(40)]
        try:
            for i, sock in enumerate(clients):
                sock.sendall(b"%d" % i)
            for i, sock in enumerate(clients):
                assert recv_exactly(sock, len(b"%d" % i)) == b"%d" % i
            # Stats are published at the end of a loop turn, after that turn's replies went out.
            wait_until(lambda: sum(r.stats()["accepted"] for r in server._reactors) == 40, what="40 accepts counted")
            per_reactor = [r.stats()["accepted"] for r in server._reactors]
            assert all(per_reactor), per_reactor
        finally:
            for sock in clients:
                sock.close()


# --- connection objects -----------------------------------------------------------------------


def test_state_on_conn_persists_and_send_after_close() -> None:
    results: list[Any] = []
    done = threading.Event()
    held: list[Any] = []

    class Counter:
        def on_connect(self, conn: Any) -> None:
            conn.count = 0
            conn.log = []
            held.append(conn)

        def on_message(self, conn: Any, data: bytes) -> None:
            conn.count += 1
            conn.log.append(data)
            conn.send(b"%d\n" % conn.count)
            if data == b"bye":
                conn.close()
                results.append(conn.send(b"too late"))

        def on_close(self, conn: Any, reason: str) -> None:
            results.append((conn.count, list(conn.log), reason, conn.open, conn.send(b"after")))
            done.set()

    with serving(Counter(), framing=framing.lines()) as server, client(server) as sock:
        for i in range(1, 4):
            sock.sendall(b"msg%d\n" % i)
            assert recv_exactly(sock, 2) == b"%d\n" % i
        sock.sendall(b"bye\n")
        assert recv_to_eof(sock) == b"4\n"
        assert done.wait(DEADLINE)
        assert results == [False, (4, [b"msg1", b"msg2", b"msg3", b"bye"], "closed", False, False)]
        (conn,) = held
        assert conn.send(b"from outside, after close") is False
        assert not conn.open
        assert "closed" in repr(conn)


class MethodsEcho:
    def on_connect(self, conn: Any) -> None:
        conn.tag = b"m:"

    def on_message(self, conn: Any, data: bytes) -> None:
        conn.send(conn.tag + data)


class ClassAndStaticEcho:
    @classmethod
    def on_connect(cls, conn: Any) -> None:
        conn.tag = cls.__name__.encode()[:2] + b":"

    @staticmethod
    def on_message(conn: Any, data: bytes) -> None:
        conn.send(conn.tag + data)


class CallableEcho:
    """Handler callbacks that are objects with __call__, set on the instance."""

    class Reply:
        def __call__(self, conn: Any, data: bytes) -> None:
            conn.send(b"c:" + data)

    def __init__(self) -> None:
        self.on_connect = None  # None: not called, as if absent (calling it would close the connection)
        self.on_message = self.Reply()


def namespace_echo() -> Any:
    """A handler that is no class of ours: a namespace of plain functions."""
    import types

    def on_message(conn: Any, data: bytes) -> None:
        conn.send(conn.tag + data)

    return types.SimpleNamespace(on_connect=lambda conn: setattr(conn, "tag", b"n:"), on_message=on_message,
                                 on_datagram=None)


@pytest.mark.parametrize("make_handler, tag", [(MethodsEcho, b"m:"), (ClassAndStaticEcho, b"Cl:"),
                                               (CallableEcho, b"c:"), (namespace_echo, b"n:")],
                         ids=["methods", "classmethod-staticmethod", "callable-attributes", "namespace"])
def test_every_kind_of_handler_callable_is_called_with_its_arguments(make_handler: Any, tag: bytes) -> None:
    # The server calls a bound method's function directly with its self; anything else as it is.
    with serving(make_handler(), framing=framing.lines()) as server, client(server) as sock:
        for line in (b"one", b"two"):
            sock.sendall(line + b"\n")
            assert recv_exactly(sock, len(tag) + len(line)) == tag + line
        sock.shutdown(socket.SHUT_WR)
        assert recv_to_eof(sock) == b""


def test_send_arguments_by_position_and_name_and_the_errors_of_wrong_ones() -> None:
    outcomes: list[Any] = []

    class Try:
        def on_connect(self, conn: Any) -> None:
            for call in (lambda: conn.send(b"a"), lambda: conn.send(data=b"b"), lambda: conn.send_message(data=b"c"),
                         lambda: conn.send(), lambda: conn.send(b"x", b"y"), lambda: conn.send(datum=b"z"),
                         lambda: conn.send(123)):
                try:
                    outcomes.append(call())
                except TypeError as error:
                    outcomes.append(str(error))
            conn.close()

    with serving(Try(), framing=framing.lines()) as server, client(server) as sock:
        assert recv_to_eof(sock) == b"abc\n"
    assert outcomes[:3] == [True, True, True]
    assert outcomes[3] == "send() missing required argument 'data' (pos 1)"
    assert outcomes[4] == "send() takes at most 1 arguments (2 given)"
    assert outcomes[5] == "'datum' is an invalid keyword argument for send()"
    assert "bytes-like" in outcomes[6] and "int" in outcomes[6]


def test_conn_addresses() -> None:
    seen: list[Any] = []

    class Look:
        def on_connect(self, conn: Any) -> None:
            seen.append((conn.peer_address, conn.local_address))
            conn.close()

    with serving(Look()) as server, client(server) as sock:
        assert recv_to_eof(sock) == b""
        ((peer, local),) = seen
        assert (peer.host, peer.port) == sock.getsockname()
        assert local == server.address


def test_send_from_another_thread() -> None:
    handler = RememberConnections()
    with serving(handler) as server, client(server) as sock:
        assert handler.connected.wait(DEADLINE)
        (conn,) = handler.connections
        assert conn.send(b"pushed")
        assert recv_exactly(sock, 6) == b"pushed"
        conn.close()
        assert recv_to_eof(sock) == b""


def test_on_messages_batch_mode() -> None:
    batches: list[int] = []

    class Batch:
        def on_messages(self, batch: list[tuple[Any, bytes]]) -> None:
            batches.append(len(batch))
            for conn, data in batch:
                conn.send(data.upper() + b"\n")

    with serving(Batch(), framing=framing.lines()) as server, client(server) as a, client(server) as b:
        a.sendall(b"".join(b"a%d\n" % i for i in range(100)))
        b.sendall(b"b\n")
        expected = b"".join(b"A%d\n" % i for i in range(100))
        assert recv_exactly(a, len(expected)) == expected
        assert recv_exactly(b, 2) == b"B\n"
    assert sum(batches) == 101
    assert max(batches) > 1


def test_graceful_close_flushes_large_output(wait_until: Any) -> None:
    payload = os.urandom(8 << 20)

    class SendAndClose:
        def on_connect(self, conn: Any) -> None:
            conn.send(payload)
            conn.close()

    with serving(SendAndClose()) as server, client(server) as sock:
        assert recv_to_eof(sock) == payload
        wait_until(lambda: server.stats()["connections"] == 0, what="the connection to be released")


def test_abort_resets() -> None:
    class Abort:
        def on_message(self, conn: Any, data: bytes) -> None:
            conn.send(b"never seen" * 1000)
            conn.abort()

    with serving(Abort()) as server, client(server) as sock:
        sock.sendall(b"x")
        with pytest.raises(ConnectionResetError):
            recv_to_eof(sock)
