"""Stream and Listener over real loopback (127.0.0.1, ::1, unix paths, abstract names), mostly
with the stdlib's socket module as the peer: buffered reads (recv_until, recv_exactly, lines,
messages at every byte boundary), oversize frames, peers that vanish mid-message, timeouts,
half-close, abort, accept woken by close, serve(), Happy Eyeballs and bad input."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket as stdlib
import threading
import time
from collections.abc import Iterator

import pytest

import socketeer
from socketeer import IncompleteReadError, MessageTooLarge, Stream, framing, opening, streams

TIMEOUT = 10  # seconds: bounds every blocking call that is expected to succeed

pytestmark = pytest.mark.timeout(60)


# --- peers -------------------------------------------------------------------------------------

STREAM_KINDS = ["tcp4", "tcp6", "unix", "abstract"]


def stdlib_server(kind: str, tmp: str) -> tuple[stdlib.socket, str]:
    """A listening stdlib socket and the socketeer endpoint that reaches it."""
    if kind == "tcp4":
        server = stdlib.create_server(("127.0.0.1", 0))
        return server, f"tcp://127.0.0.1:{server.getsockname()[1]}"
    if kind == "tcp6":
        server = stdlib.create_server(("::1", 0), family=stdlib.AF_INET6)
        return server, f"tcp://[::1]:{server.getsockname()[1]}"
    server = stdlib.socket(stdlib.AF_UNIX, stdlib.SOCK_STREAM)
    if kind == "unix":
        path = os.path.join(tmp, "s.sock")
        server.bind(path)
        endpoint = f"unix:{path}"
    else:
        name = f"socketeer-test-{os.getpid()}-{threading.get_ident()}"
        server.bind(b"\0" + name.encode())
        endpoint = f"unix:@{name}"
    server.listen()
    return server, endpoint


@pytest.fixture(params=STREAM_KINDS)
def pair(request, short_tmp) -> Iterator[tuple[Stream, stdlib.socket]]:
    """(socketeer Stream, connected stdlib socket) over each kind of loopback stream."""
    server, endpoint = stdlib_server(request.param, str(short_tmp))
    with server:
        client = socketeer.connect(endpoint, timeout=TIMEOUT)
        peer, _ = server.accept()
    peer.settimeout(TIMEOUT)
    with client, peer:
        yield client, peer


@pytest.fixture
def tcp_pair() -> Iterator[tuple[Stream, stdlib.socket]]:
    with stdlib.create_server(("127.0.0.1", 0)) as server:
        client = socketeer.connect(f"tcp://127.0.0.1:{server.getsockname()[1]}", timeout=TIMEOUT)
        peer, _ = server.accept()
    peer.settimeout(TIMEOUT)
    with client, peer:
        yield client, peer


@pytest.fixture
def seqpacket_pair() -> Iterator[tuple[Stream, stdlib.socket]]:
    """Over SOCK_SEQPACKET every send is one record and one recv takes at most one: the peer
    decides exactly where the reader's receives split the byte stream."""
    a, b = stdlib.socketpair(stdlib.AF_UNIX, stdlib.SOCK_SEQPACKET)
    with a, b:
        stream = Stream(socketeer.Socket(fileno=os.dup(a.fileno())))
        b.settimeout(TIMEOUT)
        with stream:
            yield stream, b


@contextlib.contextmanager
def sending(peer: stdlib.socket, pieces: list[bytes], *, shutdown: bool = True) -> Iterator[None]:
    """Sends each piece with its own send() from a thread (a record per piece on SOCK_SEQPACKET),
    then half-closes; the with-block reads meanwhile, so the peer's queue never fills."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            for piece in pieces:
                peer.sendall(piece)
            if shutdown:
                peer.shutdown(stdlib.SHUT_WR)
        except BaseException as error:  # noqa: BLE001 -- re-raised in the test thread
            failure.append(error)

    sender = threading.Thread(target=run)
    sender.start()
    try:
        yield
    finally:
        sender.join(TIMEOUT)
    assert not sender.is_alive()
    if failure:
        raise failure[0]


# --- basics ------------------------------------------------------------------------------------

def test_send_all_and_recv_both_ways(pair):
    stream, peer = pair
    stream.send_all(b"hello " * 10000)
    got = b""
    while len(got) < 60000:
        got += peer.recv(65536)
    assert got == b"hello " * 10000
    peer.sendall(b"back")
    assert stream.recv(timeout=TIMEOUT) == b"back"


def test_addresses(tcp_pair):
    stream, peer = tcp_pair
    assert stream.peer_address == socketeer.InetAddress(*peer.getsockname())
    assert stream.local_address == socketeer.InetAddress(*peer.getpeername())
    assert stream.tcp_info().state == socketeer.TcpState.ESTABLISHED
    assert "127.0.0.1" in repr(stream)


def test_recv_max_size_leaves_the_rest_buffered(pair):
    stream, peer = pair
    peer.sendall(b"abcdef")
    assert stream.recv_exactly(1, timeout=TIMEOUT) == b"a"
    assert stream.recv(2, timeout=TIMEOUT) == b"bc"
    assert stream.recv(100, timeout=TIMEOUT) == b"def"


def test_recv_at_end_of_stream_is_empty(pair):
    stream, peer = pair
    peer.sendall(b"x")
    peer.shutdown(stdlib.SHUT_WR)
    assert stream.recv(timeout=TIMEOUT) == b"x"
    assert stream.recv(timeout=TIMEOUT) == b""
    assert stream.recv(timeout=TIMEOUT) == b""


# --- recv_until / recv_exactly -----------------------------------------------------------------

def test_recv_until_includes_the_delimiter(pair):
    stream, peer = pair
    peer.sendall(b"one\ntwo\r\nthree||four")
    assert stream.recv_until(timeout=TIMEOUT) == b"one\n"
    assert stream.recv_until(b"\r\n", timeout=TIMEOUT) == b"two\r\n"
    assert stream.recv_until(b"||", timeout=TIMEOUT) == b"three||"
    assert stream.recv(timeout=TIMEOUT) == b"four"


def test_recv_until_with_the_delimiter_split_across_receives(seqpacket_pair):
    stream, peer = seqpacket_pair
    for piece in (b"ab", b"c\r", b"\nde\r", b"\n"):
        peer.send(piece)
    assert stream.recv_until(b"\r\n", timeout=TIMEOUT) == b"abc\r\n"
    assert stream.recv_until(b"\r\n", timeout=TIMEOUT) == b"de\r\n"


def test_recv_until_over_max_size_raises_without_waiting_for_more(pair):
    stream, peer = pair
    peer.sendall(b"x" * 101)  # no delimiter, and the peer stays open: only max_size can end it
    with pytest.raises(MessageTooLarge) as raised:
        stream.recv_until(b"\n", max_size=100, timeout=TIMEOUT)
    assert raised.value.limit == 100


def test_recv_until_at_max_size_succeeds(pair):
    stream, peer = pair
    peer.sendall(b"x" * 100 + b"\n")
    assert stream.recv_until(b"\n", max_size=100, timeout=TIMEOUT) == b"x" * 100 + b"\n"


def test_recv_until_when_the_peer_closes_first(pair):
    stream, peer = pair
    peer.sendall(b"no newline")
    peer.shutdown(stdlib.SHUT_WR)
    with pytest.raises(IncompleteReadError) as raised:
        stream.recv_until(timeout=TIMEOUT)
    assert raised.value.partial == b"no newline"
    assert isinstance(raised.value, EOFError)


def test_recv_exactly(pair):
    stream, peer = pair
    peer.sendall(b"0123456789")
    assert stream.recv_exactly(3, timeout=TIMEOUT) == b"012"
    assert stream.recv_exactly(0, timeout=TIMEOUT) == b""
    assert stream.recv_exactly(7, timeout=TIMEOUT) == b"3456789"


def test_recv_exactly_larger_than_the_buffer(tcp_pair):
    stream, peer = tcp_pair
    data = os.urandom(300_000)
    sender = threading.Thread(target=peer.sendall, args=(data,))
    sender.start()
    try:
        assert stream.recv_exactly(len(data), timeout=TIMEOUT) == data
    finally:
        sender.join(TIMEOUT)


def test_recv_exactly_when_the_peer_closes_mid_message(pair):
    stream, peer = pair
    peer.sendall(b"abc")
    peer.close()
    with pytest.raises(IncompleteReadError) as raised:
        stream.recv_exactly(10, timeout=TIMEOUT)
    assert raised.value.partial == b"abc"
    assert "3 bytes" in str(raised.value) and "10" in str(raised.value)


# --- lines -------------------------------------------------------------------------------------

def test_lines_strip_lf_and_crlf_and_keep_a_last_line_without_newline(pair):
    stream, peer = pair
    peer.sendall(b"unix\nwindows\r\n\nlone\rcr\nlast")
    peer.shutdown(stdlib.SHUT_WR)
    assert list(stream.lines(timeout=TIMEOUT)) == [b"unix", b"windows", b"", b"lone\rcr", b"last"]


def test_lines_decoded(pair):
    stream, peer = pair
    peer.sendall("grüße\r\nend\n".encode())
    peer.shutdown(stdlib.SHUT_WR)
    assert list(stream.lines(encoding="utf-8", timeout=TIMEOUT)) == ["grüße", "end"]


def test_lines_at_every_byte_boundary(seqpacket_pair):
    stream, peer = seqpacket_pair
    wire = b"ab\r\ncd\n\nef"
    with sending(peer, [bytes([byte]) for byte in wire]):
        assert list(stream.lines(timeout=TIMEOUT)) == [b"ab", b"cd", b"", b"ef"]


def test_lines_longer_than_max_size_raise(pair):
    stream, peer = pair
    peer.sendall(b"short\n" + b"y" * 50)
    lines = stream.lines(max_size=10, timeout=TIMEOUT)
    assert next(lines) == b"short"
    with pytest.raises(MessageTooLarge):
        next(lines)


# --- messages ----------------------------------------------------------------------------------

FRAMINGS = [pytest.param(framing.length_prefixed(size, order), id=f"prefix{size}-{order}")
            for size in (1, 2, 4, 8) for order in ("big", "little")]
FRAMINGS += [pytest.param(framing.delimited(b"\n"), id="newline"),
             pytest.param(framing.delimited(b"\r\n\r\n"), id="crlfcrlf")]
MESSAGES = [b"", b"a", b"hello", b"\x00\x01\x02", b"z" * 200]


@pytest.mark.parametrize("f", FRAMINGS)
def test_messages_split_at_every_byte_boundary(seqpacket_pair, f):
    stream, peer = seqpacket_pair
    wire = b"".join(f.encode(m) for m in MESSAGES)
    for cut in range(1, len(wire)):  # two receives, split at this byte
        peer.send(wire[:cut])
        peer.send(wire[cut:])  # the stream reads each before the next cut: the queue stays short
        got = []
        messages = stream.messages(f, timeout=TIMEOUT)
        while len(got) < len(MESSAGES):
            got.append(next(messages))
        assert got == MESSAGES, f"split at byte {cut}"
        assert stream._reader.buffered_size == 0


@pytest.mark.parametrize("f", FRAMINGS)
def test_messages_from_a_peer_sending_byte_by_byte(seqpacket_pair, f):
    stream, peer = seqpacket_pair
    wire = b"".join(f.encode(m) for m in MESSAGES)
    with sending(peer, [bytes([byte]) for byte in wire]):  # one record, so one receive, per byte
        assert list(stream.messages(f, timeout=TIMEOUT)) == MESSAGES


@pytest.mark.parametrize("f", FRAMINGS)
def test_messages_over_tcp_with_nodelay_byte_by_byte(tcp_pair, f):
    stream, peer = tcp_pair
    peer.setsockopt(stdlib.IPPROTO_TCP, stdlib.TCP_NODELAY, 1)
    wire = b"".join(f.encode(m) for m in MESSAGES)
    with sending(peer, [bytes([byte]) for byte in wire]):
        assert list(stream.messages(f, timeout=TIMEOUT)) == MESSAGES


def test_send_message_round_trip(pair):
    stream, peer = pair
    f = framing.length_prefixed(2, "little")
    stream.send_message(b"ping", f)
    assert peer.recv(100) == b"\x04\x00ping"
    peer.sendall(f.encode(b"pong"))
    assert next(stream.messages(f, timeout=TIMEOUT)) == b"pong"


def test_many_messages_in_one_receive(pair):
    stream, peer = pair
    f = framing.length_prefixed(4)
    messages = [str(i).encode() for i in range(5000)]
    sender = threading.Thread(target=lambda: (peer.sendall(b"".join(map(f.encode, messages))),
                                              peer.shutdown(stdlib.SHUT_WR)))
    sender.start()
    try:
        assert list(stream.messages(f, timeout=TIMEOUT)) == messages
    finally:
        sender.join(TIMEOUT)


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_oversize_length_prefix_raises_before_the_payload_arrives(pair, size):
    stream, peer = pair
    f = framing.length_prefixed(size, max_size=100)
    # the prefix announces 101 (or 2**63) bytes; none of the payload is ever sent
    peer.sendall(f.encode(b"ok") + (min(2 ** (8 * size) - 1, 2 ** 63) if size > 1 else 101).to_bytes(size, "big"))
    messages = stream.messages(f, timeout=TIMEOUT)
    assert next(messages) == b"ok"  # what came before the oversize one is still delivered
    with pytest.raises(MessageTooLarge) as raised:
        next(messages)
    assert raised.value.limit == 100 and raised.value.size > 100


def test_oversize_delimited_message_raises_with_bounded_buffering(tcp_pair):
    stream, peer = tcp_pair
    f = framing.delimited(b"\n", max_size=1000)
    stop = threading.Event()

    def flood() -> None:  # a peer that never sends a newline
        try:
            while not stop.is_set():
                peer.sendall(b"x" * 4096)
        except OSError:
            pass

    sender = threading.Thread(target=flood)
    sender.start()
    try:
        with pytest.raises(MessageTooLarge):
            next(stream.messages(f, timeout=TIMEOUT))
        assert stream._reader.buffered_size <= 64 * 1024 + 4096  # one buffer's worth at most
    finally:
        stop.set()
        stream.abort()
        sender.join(TIMEOUT)


@pytest.mark.parametrize("f", FRAMINGS)
def test_peer_closing_mid_message_gives_incomplete_read(pair, f):
    stream, peer = pair
    wire = f.encode(b"complete") + f.encode(b"cut short")[:-1]
    peer.sendall(wire)
    peer.shutdown(stdlib.SHUT_WR)
    messages = stream.messages(f, timeout=TIMEOUT)
    assert next(messages) == b"complete"
    with pytest.raises(IncompleteReadError) as raised:
        next(messages)
    assert raised.value.partial == f.encode(b"cut short")[:-1]


def test_messages_end_cleanly_at_end_of_stream(pair):
    stream, peer = pair
    peer.shutdown(stdlib.SHUT_WR)
    assert list(stream.messages(framing.length_prefixed(), timeout=TIMEOUT)) == []


# --- an iterator holds nothing: what it did not hand out stays in the stream ------------------
# Each test sends its whole batch first (one SOCK_SEQPACKET record: one receive takes all of
# it), so every read after the first finds its bytes buffered and timeout=0 ("only what is
# already here") is exact: a message the first iterator swallowed times out instead.

ITERATOR_FRAMINGS = [pytest.param(framing.length_prefixed(2), id="prefix2"),
                     pytest.param(framing.delimited(b"\r\n"), id="crlf")]
BATCH = [b"one", b"two", b"three", b"", b"four"]


def numbered(count: int) -> list[bytes]:
    """count distinct messages of varied length (about 27 bytes each on average)."""
    return [b"%d:" % i + b"x" * (i % 50) for i in range(count)]


@pytest.mark.parametrize("f", ITERATOR_FRAMINGS)
def test_an_abandoned_messages_iterator_leaves_the_rest_buffered(seqpacket_pair, f):
    stream, peer = seqpacket_pair
    peer.send(b"".join(map(f.encode, BATCH)))
    assert next(stream.messages(f, timeout=TIMEOUT)) == b"one"
    assert [next(stream.messages(f, timeout=0)) for _ in BATCH[1:]] == BATCH[1:]
    assert stream._reader.buffered_size == 0


def test_an_abandoned_lines_iterator_leaves_the_rest_buffered(seqpacket_pair):
    stream, peer = seqpacket_pair
    peer.send(b"one\ntwo\r\n\nlast")
    peer.shutdown(stdlib.SHUT_WR)
    assert next(stream.lines(timeout=TIMEOUT)) == b"one"
    assert next(stream.lines(timeout=0)) == b"two"
    assert next(stream.lines(encoding="ascii", timeout=0)) == ""
    assert next(stream.lines(timeout=0)) == b"last"
    assert list(stream.lines(timeout=0)) == []


@pytest.mark.parametrize("f", ITERATOR_FRAMINGS)
def test_next_and_recv_interleaved_read_the_stream_in_order(seqpacket_pair, f):
    stream, peer = seqpacket_pair
    wire = [f.encode(m) for m in (b"one", b"two", b"three", b"four")]
    peer.send(b"".join(wire))
    messages = stream.messages(f, timeout=TIMEOUT)
    assert next(messages) == b"one"
    assert stream.recv_exactly(len(wire[1]), timeout=0) == wire[1]  # the bytes of "two", once
    assert next(messages) == b"three"  # the same iterator goes on after the recv
    assert stream.recv(timeout=0) == wire[3]
    peer.shutdown(stdlib.SHUT_WR)
    assert list(messages) == []


@pytest.mark.parametrize("f", ITERATOR_FRAMINGS)
def test_each_message_by_a_new_iterator_over_more_than_one_buffer(tcp_pair, f):
    stream, peer = tcp_pair
    messages = numbered(3000)  # ~80 KB: more than the stream's 64 KiB buffer takes in one receive
    with sending(peer, [b"".join(map(f.encode, messages))]):
        got = [next(stream.messages(f, timeout=TIMEOUT), None) for _ in messages]
        assert list(stream.messages(f, timeout=TIMEOUT)) == []
    assert got == messages


# --- timeouts ----------------------------------------------------------------------------------

def assert_bounded(started: float, timeout: float) -> None:
    elapsed = time.monotonic() - started
    assert timeout * 0.9 <= elapsed < timeout + 2, elapsed


@pytest.mark.parametrize("read, prefill", [
    (lambda s: s.recv(timeout=0.2), b""),
    (lambda s: s.recv_exactly(5, timeout=0.2), b"ab"),
    (lambda s: s.recv_until(b"\n", timeout=0.2), b"ab"),
    (lambda s: next(s.lines(timeout=0.2)), b"ab"),
    (lambda s: next(s.messages(framing.length_prefixed(), timeout=0.2)), b"\0\0\0\5ab"),
], ids=["recv", "recv_exactly", "recv_until", "lines", "messages"])
def test_read_timeouts(pair, read, prefill):
    stream, peer = pair
    if prefill:
        peer.sendall(prefill)  # something, but never enough
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        read(stream)
    assert_bounded(started, 0.2)


@pytest.mark.parametrize("read, operation", [
    (lambda s: s.recv(timeout=0.01), "recv"),
    (lambda s: s.recv_exactly(5, timeout=0.01), "recv_exactly"),
    (lambda s: s.recv_until(b"\n", timeout=0.01), "recv_until"),
    (lambda s: next(s.lines(timeout=0.01)), "lines"),
    (lambda s: next(s.messages(framing.length_prefixed(), timeout=0.01)), "messages"),
], ids=["recv", "recv_exactly", "recv_until", "lines", "messages"])
def test_read_timeouts_name_the_operation_and_the_peer(tcp_pair, read, operation):
    """A Stream's timeout reads like a Socket's: the stdlib's TimeoutError shape (no errno),
    saying which call timed out and whose bytes it waited for."""
    stream, peer = tcp_pair
    host, port = peer.getsockname()[:2]
    with pytest.raises(TimeoutError) as caught:
        read(stream)
    assert caught.value.errno is None
    assert caught.value.args == (f"timed out: '{operation} from {host}:{port}'",)


def test_accept_and_connect_timeouts_read_as_socket_timeouts():
    """Listener.accept() and connect() wait in Python (poll), and still raise the shape a Socket's
    own timeout has: no errno, "timed out: 'accept on ADDRESS'"."""
    with socketeer.listen("tcp://127.0.0.1:0") as listener:
        with pytest.raises(TimeoutError) as caught:
            listener.accept(timeout=0.01)
        assert caught.value.errno is None and caught.value.args == (f"timed out: 'accept on {listener.address}'",)
    with full_backlog() as hanging:
        with pytest.raises(TimeoutError) as caught:
            socketeer.connect(f"tcp://{hanging}", timeout=0.05)
        assert caught.value.errno is None and caught.value.args == (f"timed out: 'connect to {hanging}'",)


def test_timeout_bounds_the_whole_call_not_each_receive(seqpacket_pair):
    stream, peer = seqpacket_pair
    stop = threading.Event()

    def trickle() -> None:  # a byte every 50 ms: each receive is quick, the call is not
        while not stop.wait(0.05):
            try:
                peer.send(b".")
            except OSError:
                return

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            stream.recv_until(b"\n", timeout=0.5)
        assert_bounded(started, 0.5)
    finally:
        stop.set()
        sender.join(TIMEOUT)


def test_default_timeout_and_per_call_override(pair):
    stream, peer = pair
    stream.timeout = 0.2
    assert stream.timeout == 0.2
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        stream.recv()
    assert_bounded(started, 0.2)
    peer.sendall(b"late")
    assert stream.recv(timeout=None) == b"late"


def test_timeout_keeps_buffered_bytes(pair):
    stream, peer = pair
    peer.sendall(b"abc")
    with pytest.raises(TimeoutError):
        stream.recv_exactly(4, timeout=0.1)
    peer.sendall(b"d")
    assert stream.recv_exactly(4, timeout=TIMEOUT) == b"abcd"


def test_send_timeout(tcp_pair):
    stream, peer = tcp_pair
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        stream.send_all(b"x" * 64 * 1024 * 1024, timeout=0.3)  # the peer never reads
    assert_bounded(started, 0.3)


def test_connect_timeout_against_a_full_backlog():
    with full_backlog() as hanging:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            socketeer.connect(f"tcp://{hanging}", timeout=0.3)
        assert_bounded(started, 0.3)


def test_negative_timeout_is_a_value_error(pair):
    stream, _ = pair
    with pytest.raises(ValueError, match="timeout"):
        stream.recv(timeout=-1)


# --- half-close and abort ----------------------------------------------------------------------

def test_close_write_is_a_half_close(pair):
    stream, peer = pair
    stream.send_all(b"request")
    stream.close_write()
    received = b""
    while chunk := peer.recv(100):
        received += chunk
    assert received == b"request"  # the peer saw end of stream...
    peer.sendall(b"response")  # ...and can still answer
    peer.shutdown(stdlib.SHUT_WR)
    assert stream.recv_exactly(8, timeout=TIMEOUT) == b"response"
    with pytest.raises(OSError):
        stream.send_all(b"more")


def test_abort_resets_the_connection(tcp_pair):
    stream, peer = tcp_pair
    stream.abort()
    assert stream.closed
    with pytest.raises(ConnectionResetError):
        peer.recv(100)


def test_abort_after_close_is_harmless(pair):
    stream, _ = pair
    stream.close()
    stream.abort()
    stream.close()
    assert "closed" in repr(stream)


def test_use_after_close_raises(pair):
    stream, _ = pair
    stream.close()
    with pytest.raises(OSError):
        stream.recv(timeout=TIMEOUT)
    with pytest.raises(OSError):
        stream.send_all(b"x")


# --- one reader at a time ----------------------------------------------------------------------

BUSY = r"^\w+: another thread is already reading this stream$"


def held_by_another_reader(stream: Stream) -> bool:
    """True once a read on another thread holds the stream (this probe raises RuntimeError);
    False while none does (the probe times out at once, taking nothing: nothing is buffered)."""
    try:
        stream.recv(1, timeout=0)
    except RuntimeError as error:
        assert "another thread is already reading this stream" in str(error)
        return True
    except TimeoutError:
        return False
    raise AssertionError("the probe took bytes meant for the blocked reader")


def test_a_second_reader_thread_is_refused_and_the_first_gets_its_data_intact(tcp_pair, wait_until):
    stream, peer = tcp_pair
    payload = os.urandom(1 << 20)  # 16 times the reader's buffer: it grows while the probes run
    got: list[object] = []

    def read() -> None:
        try:
            got.append(stream.recv_exactly(len(payload), timeout=TIMEOUT))
        except BaseException as error:  # noqa: BLE001 -- handed to the test thread
            got.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    sender = threading.Thread(target=peer.sendall, args=(payload,))
    try:
        wait_until(lambda: held_by_another_reader(stream), what="the reader thread to wait in recv_exactly")
        for call in (lambda: stream.recv(timeout=TIMEOUT), lambda: stream.recv_exactly(1, timeout=TIMEOUT),
                     lambda: stream.recv_until(b"\n", timeout=TIMEOUT), lambda: next(stream.lines(timeout=TIMEOUT)),
                     lambda: next(stream.messages(framing.length_prefixed(4), timeout=TIMEOUT))):
            with pytest.raises(RuntimeError, match=BUSY):
                call()
        # Every entry point of the C++ reader, the asyncio driver's too, refuses while it is held.
        core = stream._reader
        for call in (lambda: core.take_some(1), lambda: core.take_exactly(1), lambda: core.take_until(b"\n", 10),
                     lambda: core.take_line(10), lambda: core.take_frame(framing.length_prefixed(4)),
                     lambda: core.fill_now(stream.socket), lambda: core.buffered, lambda: core.buffered_size,
                     lambda: core.eof, lambda: core.at_eof, lambda: core.capacity,
                     lambda: core.read_some(stream.socket, 1, 0), lambda: core.read_line(stream.socket, 10, 0)):
            with pytest.raises(RuntimeError, match=BUSY):
                call()
        assert "socketeer.Stream" in stream._repr_html_()  # a display never raises
        sender.start()
        deadline = time.monotonic() + TIMEOUT
        while reader.is_alive() and time.monotonic() < deadline:  # probe while the buffer fills and grows
            held_by_another_reader(stream)
    finally:
        reader.join(TIMEOUT)
        if sender.ident is not None:
            sender.join(TIMEOUT)
    assert not reader.is_alive()
    assert len(got) == 1 and not isinstance(got[0], BaseException), got
    assert got[0] == payload
    peer.sendall(b"after\n")  # the stream is free again, for any thread
    assert stream.recv_until(timeout=TIMEOUT) == b"after\n"


# --- Listener ----------------------------------------------------------------------------------

LISTEN_ENDPOINTS = ["tcp://127.0.0.1:0", "tcp://[::1]:0", "unix:@socketeer-test-listen",
                    "unix+seqpacket:@socketeer-test-listen-sp"]


@pytest.mark.parametrize("endpoint", LISTEN_ENDPOINTS)
def test_listener_accepts_stdlib_clients(endpoint):
    with socketeer.listen(endpoint) as listener:
        address = listener.address
        family = address.family
        kind = stdlib.SOCK_SEQPACKET if "seqpacket" in endpoint else stdlib.SOCK_STREAM
        with stdlib.socket(family, kind) as client:
            client.settimeout(TIMEOUT)
            client.connect(address.to_tuple())
            with listener.accept(timeout=TIMEOUT) as server:
                client.sendall(b"hi")
                assert server.recv_exactly(2, timeout=TIMEOUT) == b"hi"
                server.send_all(b"yo")
                assert client.recv(10) == b"yo"


def test_listen_on_a_unix_path_removes_the_file(short_tmp):
    path = short_tmp / "x.sock"
    with socketeer.listen(f"unix:{path}") as listener:
        assert path.exists()
        assert "unix:" in repr(listener)
    assert not path.exists()
    assert "closed" in repr(listener)


def test_reprs_never_raise_after_the_socket_was_closed_behind_their_back():
    with socketeer.listen("tcp://127.0.0.1:0") as listener, socketeer.bind("udp://127.0.0.1:0") as datagram:
        with socketeer.connect(f"tcp://{listener.address}", timeout=TIMEOUT) as client:
            with listener.accept(timeout=TIMEOUT) as server:
                for obj in (listener, datagram, client, server):
                    obj.socket.close()  # not obj.close(): the object still thinks it is open
                    assert repr(obj).startswith("<socketeer.") and obj._repr_html_().startswith("<table>")
                assert repr(listener) == "<socketeer.Listener ->"


def test_accept_timeout():
    with socketeer.listen("tcp://127.0.0.1:0") as listener:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            listener.accept(timeout=0.2)
        assert_bounded(started, 0.2)


def test_close_from_another_thread_wakes_a_blocked_accept(wait_until):
    listener = socketeer.listen("tcp://127.0.0.1:0")
    outcome: list[BaseException] = []
    entered = threading.Event()

    def accept() -> None:
        entered.set()
        try:
            listener.accept()
        except BaseException as error:  # noqa: BLE001 -- handed to the test thread
            outcome.append(error)

    waiter = threading.Thread(target=accept)
    waiter.start()
    assert entered.wait(TIMEOUT)
    wait_until(lambda: listener._waiting == 1, what="the thread to block in accept")
    listener.close()
    waiter.join(TIMEOUT)
    assert not waiter.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], OSError) and outcome[0].errno == errno.EBADF
    listener.close()  # idempotent
    with pytest.raises(OSError):
        listener.accept(timeout=0)


def test_iteration_ends_when_the_listener_closes():
    listener = socketeer.listen("tcp://127.0.0.1:0")
    accepted: list[bytes] = []
    done = threading.Event()

    def loop() -> None:
        for stream in listener:
            with stream:
                accepted.append(stream.recv_exactly(1, timeout=TIMEOUT))
                stream.send_all(b"k")
        done.set()

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        for i in range(3):
            with socketeer.connect(listener.endpoint, timeout=TIMEOUT) as client:
                client.send_all(bytes([65 + i]))
                assert client.recv_exactly(1, timeout=TIMEOUT) == b"k"
    finally:
        listener.close()
        assert done.wait(TIMEOUT)
        worker.join(TIMEOUT)
    assert accepted == [b"A", b"B", b"C"]


def test_serve_with_threads_and_a_failing_handler(caplog):
    listener = socketeer.listen("tcp://127.0.0.1:0")
    concurrent = threading.Barrier(3, timeout=TIMEOUT)

    def handler(stream: Stream) -> None:
        for line in stream.lines(timeout=TIMEOUT):
            if line == b"sync":
                concurrent.wait()  # three handlers at once: the pool really runs them together
            if line == b"boom":
                raise RuntimeError("handler exploded")
            stream.send_all(line.upper() + b"\n")

    server = threading.Thread(target=listener.serve, args=(handler,), kwargs={"threads": 4})
    server.start()
    try:
        with caplog.at_level(logging.ERROR, logger="socketeer"):
            clients = [socketeer.connect(listener.endpoint, timeout=TIMEOUT) for _ in range(3)]
            try:
                for client in clients:
                    client.send_all(b"sync\n")
                for client in clients:
                    assert client.recv_until(timeout=TIMEOUT) == b"SYNC\n"
                clients[0].send_all(b"boom\n")
                assert clients[0].recv(timeout=TIMEOUT) == b""  # only that connection is closed
                for client in clients[1:]:
                    client.send_all(b"still here\n")
                    assert client.recv_until(timeout=TIMEOUT) == b"STILL HERE\n"
            finally:
                for client in clients:
                    client.close()
    finally:
        listener.close()
        server.join(TIMEOUT)
    assert not server.is_alive()
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert failures[0].exc_info and "handler exploded" in str(failures[0].exc_info[1])


def test_listen_errors():
    with socketeer.listen("tcp://127.0.0.1:0") as first:
        with pytest.raises(OSError) as raised:
            socketeer.listen(f"tcp://127.0.0.1:{first.address.port}")
        assert raised.value.errno == errno.EADDRINUSE
    with pytest.raises(ValueError):
        socketeer.listen("tcp://127.0.0.1:99999")


def test_reuse_port_lets_two_listeners_share_a_port():
    with socketeer.listen("tcp://127.0.0.1:0", reuse_port=True) as first:
        with socketeer.listen(f"tcp://127.0.0.1:{first.address.port}", reuse_port=True) as second:
            assert second.address == first.address


# --- connect and Happy Eyeballs ----------------------------------------------------------------

def refused_address() -> socketeer.InetAddress:
    """A loopback port that refuses connections (bound, then closed, so nothing listens)."""
    with stdlib.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return socketeer.InetAddress(*probe.getsockname())


@contextlib.contextmanager
def full_backlog() -> Iterator[socketeer.InetAddress]:
    """A 127.0.0.1 listener whose accept queue is full, so a new connect hangs (until a timeout)."""
    with stdlib.create_server(("127.0.0.1", 0), backlog=0) as server:
        fillers = [stdlib.socket() for _ in range(4)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(server.getsockname())
            yield socketeer.InetAddress(*server.getsockname())
        finally:
            for filler in fillers:
                filler.close()


def test_connect_refused():
    with pytest.raises(ConnectionRefusedError):
        socketeer.connect(f"tcp://{refused_address()}", timeout=TIMEOUT)


def test_connect_by_name():
    with socketeer.listen("tcp://127.0.0.1:0") as listener:
        with socketeer.connect(f"tcp://localhost:{listener.address.port}", timeout=TIMEOUT) as client:
            with listener.accept(timeout=TIMEOUT):
                assert client.peer_address == listener.address


def test_happy_eyeballs_moves_on_at_once_when_the_first_address_fails():
    with socketeer.listen("tcp://[::1]:0") as listener:
        addresses = [refused_address(), listener.address]
        endpoint = socketeer.parse_endpoint("tcp://localhost:1")
        started = time.monotonic()
        sock = streams._happy_eyeballs(addresses, endpoint, TIMEOUT)
        with Stream(sock) as client, listener.accept(timeout=TIMEOUT):
            assert client.peer_address == listener.address
        # a refusal starts the next attempt at once, not after the 250 ms attempt delay
        assert time.monotonic() - started < opening.HAPPY_EYEBALLS_DELAY


def test_happy_eyeballs_overtakes_a_hanging_first_address():
    with full_backlog() as hanging, socketeer.listen("tcp://[::1]:0") as listener:
        started = time.monotonic()
        sock = streams._happy_eyeballs([hanging, listener.address], socketeer.parse_endpoint("tcp://x:1"), TIMEOUT)
        elapsed = time.monotonic() - started
        with Stream(sock) as client, listener.accept(timeout=TIMEOUT):
            assert client.peer_address == listener.address
        assert opening.HAPPY_EYEBALLS_DELAY * 0.9 <= elapsed < TIMEOUT


def test_happy_eyeballs_overall_timeout():
    with full_backlog() as hanging:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            streams._happy_eyeballs([hanging, hanging, hanging], socketeer.parse_endpoint("tcp://x:1"), 0.6)
        assert_bounded(started, 0.6)


def test_happy_eyeballs_every_address_refused():
    addresses = [refused_address(), refused_address()]
    with pytest.raises(ConnectionRefusedError) as raised:
        streams._happy_eyeballs(addresses, socketeer.parse_endpoint("tcp://x:1"), TIMEOUT)
    assert "2 addresses tried" in str(raised.value)


def test_interleave_alternates_families():
    v4 = [socketeer.InetAddress("127.0.0.1", p) for p in (1, 2, 3)]
    v6 = [socketeer.Inet6Address("::1", p) for p in (1, 2)]
    assert opening.interleave_families(v6 + v4) == [v6[0], v4[0], v6[1], v4[1], v4[2]]


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, message", [
    (lambda s: s.recv(-1), ValueError, "max_size"),
    (lambda s: s.recv_exactly(-1), ValueError, "size"),
    (lambda s: s.recv_until(b""), ValueError, "delimiter"),
    (lambda s: s.recv_until("\n"), TypeError, "bytes"),
    (lambda s: s.recv_until(b"\n", max_size=-1), ValueError, "max_size"),
    (lambda s: next(s.lines(max_size=-1)), ValueError, "max_size"),
    (lambda s: next(s.messages(None)), TypeError, "framing"),
    (lambda s: s.send_message(b"x", b"\n"), TypeError, "framing"),
    (lambda s: s.send_all("text"), TypeError, "bytes"),
])
def test_bad_arguments(pair, call, error, message):
    stream, _ = pair
    with pytest.raises(error, match=message):
        call(stream)


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1", "bogus://x:1", "unix:"])
def test_connect_to_malformed_endpoint(endpoint):
    with pytest.raises(ValueError):
        socketeer.connect(endpoint)
