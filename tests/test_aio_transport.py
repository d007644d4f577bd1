"""socketeer.aio.Loop's native socket transport, each behaviour checked on the stock loop too
(the stdlib is the oracle) unless it is one the stock transport does not have (one send per
turn). The CPython suites in test_aio_loop_cpython.py cover the rest of the asyncio contract."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings
from collections.abc import Callable

import pytest
from aio_loops import CallRecorder
from aio_loops import stock_or_ours_loop as loop  # noqa: F401  (the fixture: stock, then ours)

from socketeer import Socket, aio

pytestmark = pytest.mark.timeout(30)


class Recorder(CallRecorder, asyncio.Protocol):
    """Records every callback; connection_lost resolves .lost."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_data: Callable[["Recorder", bytes], None] | None = None):
        super().__init__(loop)
        self.data = bytearray()
        self.on_data = on_data

    def data_received(self, data):
        self.data += data
        if self.on_data:
            self.on_data(self, data)

    def eof_received(self):
        self.calls.append("eof")


def connect(loop, sock: socket.socket, protocol=None):
    protocol = protocol or Recorder(loop)
    transport, _ = loop.run_until_complete(loop.connect_accepted_socket(lambda: protocol, sock))
    return transport, protocol


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.create_connection(listener.getsockname())
        peer, _ = listener.accept()
    return ours, peer


@pytest.mark.parametrize("factory", [aio.new_event_loop])
def test_two_writes_in_one_callback_leave_as_one_send(factory):
    # Both transports set TCP_NODELAY, so each send(2) of a few bytes leaves as a TCP segment of
    # its own: the peer's segs_in counts our sends. (With the stock loop's factory this test
    # fails: 2 segments, one per send.)
    loop = factory()
    ours, peer_stdlib = tcp_pair()
    peer = Socket.from_stdlib(peer_stdlib)
    try:
        transport, protocol = connect(loop, ours)
        before = peer.tcp_info().segs_in

        def reply():
            transport.write(b"one,")
            transport.writelines([b"two,", b"three"])

        loop.call_soon(reply)
        loop.run_until_complete(asyncio.sleep(0))
        peer_stdlib.settimeout(10)
        received = b""
        while len(received) < 13:
            received += peer_stdlib.recv(100)
        assert received == b"one,two,three"
        assert peer.tcp_info().segs_in - before == 1
        transport.close()
        loop.run_until_complete(protocol.lost)
    finally:
        peer.close()
        peer_stdlib.close()
        loop.close()


def test_output_queued_outside_a_callback_leaves_when_the_loop_runs(loop):
    ours, peer = socket.socketpair()
    with peer:
        transport, protocol = connect(loop, ours)
        transport.write(b"before")
        transport.close()
        assert loop.run_until_complete(protocol.lost) is None
        peer.settimeout(10)
        assert peer.recv(100) == b"before" and peer.recv(100) == b""


@pytest.mark.parametrize("data, error, message", [
    ("text", TypeError, "data argument must be a bytes-like object"),
    (12, TypeError, "data argument must be a bytes-like object"),
    (None, TypeError, "data argument must be a bytes-like object"),
    (memoryview(b"abcd").cast("i")[0:1].cast("B").cast("i", shape=[]), TypeError, "0-dim memory"),
])
def test_write_rejects_what_the_stdlib_rejects(loop, data, error, message):
    ours, peer = socket.socketpair()
    with peer:
        transport, protocol = connect(loop, ours)
        with pytest.raises(error, match=message):
            transport.write(data)
        transport.write_eof()
        with pytest.raises(RuntimeError, match="Cannot call write\\(\\) after write_eof\\(\\)"):
            transport.write(b"late")
        transport.close()
        loop.run_until_complete(protocol.lost)


def test_protocol_error_goes_to_the_exception_handler_and_closes_once(loop):
    seen = []
    loop.set_exception_handler(lambda _, context: seen.append(context))

    def fail(protocol, data):
        raise ValueError("protocol bug")

    ours, peer = socket.socketpair()
    with peer:
        transport, protocol = connect(loop, ours, Recorder(loop, fail))
        peer.send(b"x")
        exc = loop.run_until_complete(protocol.lost)
        assert isinstance(exc, ValueError) and protocol.calls == ["made", "lost"]
        assert [c["message"] for c in seen] == ["Fatal error: protocol.data_received() call failed."]
        assert seen[0]["transport"] is transport and seen[0]["protocol"] is protocol
        assert transport.is_closing() and transport.get_extra_info("socket") is not None


def test_connection_lost_raising_in_the_end_of_turn_flush_names_the_transport():
    # Ours only: write() then close() in one callback leave connection_lost to the turn's flush
    # (the stock transport sent at once and calls it from a Handle). The flush is a C++ call from
    # the loop core straight into the transport; its error report still names the transport
    # users hold, and the socket is closed all the same.
    loop = aio.new_event_loop()
    seen = []
    loop.set_exception_handler(lambda _, context: seen.append(context))

    class Broken(Recorder):
        def connection_lost(self, exc):
            super().connection_lost(exc)
            raise ValueError("connection_lost bug")

    ours, peer = socket.socketpair()
    try:
        transport, protocol = connect(loop, ours, Broken(loop))
        loop.call_soon(lambda: (transport.write(b"last"), transport.close()))
        assert loop.run_until_complete(protocol.lost) is None
        assert [c["message"] for c in seen] == ["Exception in transport flush"]
        assert seen[0]["transport"] is transport and isinstance(seen[0]["exception"], ValueError)
        peer.settimeout(10)
        assert peer.recv(100) == b"last" and peer.recv(100) == b""
        assert ours.fileno() == -1
    finally:
        peer.close()
        loop.close()


def test_peer_reset_is_connection_lost_with_the_oserror(loop):
    ours, peer = socket.socketpair()
    transport, protocol = connect(loop, ours)
    peer.close()  # the next send fails with EPIPE: a fatal OSError, no exception handler call
    transport.write(b"x" * 100)
    exc = loop.run_until_complete(protocol.lost)
    assert isinstance(exc, (BrokenPipeError, ConnectionResetError))
    assert protocol.calls == ["made", "lost"]


def test_pause_and_resume_writing_at_the_water_marks(loop):
    ours, peer = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    with peer:
        transport, protocol = connect(loop, ours)
        transport.set_write_buffer_limits(high=1000, low=100)
        assert transport.get_write_buffer_limits() == (100, 1000)
        transport.write(b"a" * 500)
        assert protocol.calls == ["made"]  # below the high-water mark: no pause
        transport.write(b"b" * 2_000_000)  # far more than the socket buffers take
        assert protocol.calls == ["made", "pause"]
        assert transport.get_write_buffer_size() > 1000
        received = bytearray()

        async def drain_peer():
            peer.setblocking(False)
            while len(received) < 2_000_500:
                received.extend(await loop.sock_recv(peer, 1 << 20))

        loop.run_until_complete(asyncio.wait_for(drain_peer(), 20))
        loop.run_until_complete(asyncio.sleep(0))
        assert protocol.calls == ["made", "pause", "resume"] and transport.get_write_buffer_size() == 0
        assert received == b"a" * 500 + b"b" * 2_000_000
        transport.close()
        loop.run_until_complete(protocol.lost)


def test_eof_received_and_half_close(loop):
    ours, peer = socket.socketpair()
    with peer:
        transport, protocol = connect(loop, ours)
        peer.shutdown(socket.SHUT_WR)
        peer.settimeout(10)
        loop.run_until_complete(protocol.lost)  # eof_received returned None: the transport closes
        assert protocol.calls == ["made", "eof", "lost"]
        assert peer.recv(10) == b""


def test_an_unclosed_transport_warns_and_closes_its_socket(loop):
    ours, peer = socket.socketpair()
    with peer:
        transport, protocol = connect(loop, ours)
        fd = ours.fileno()
        transport.pause_reading()  # the loop's registration holds no reference to it then
        del transport, protocol
        ours = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        assert any("unclosed transport" in str(w.message) for w in caught)
        peer.settimeout(10)
        assert peer.recv(10) == b""  # its socket was closed: fd is free again
        with pytest.raises(OSError):
            socket.socket(fileno=fd)


def test_bulk_then_small_reads_arrive_intact(loop):
    # Large reads go straight into fresh bytes objects, small ones through the reused buffer:
    # switching between the two must neither lose nor repeat a byte.
    ours, peer = socket.socketpair()
    with peer:
        transport, protocol = connect(loop, ours)
        payload = bytes(range(256)) * 4096 + b"tail" + bytes(range(256)) * 2048  # 1.5 MiB
        sent = 0

        async def send_then_trickle():
            nonlocal sent
            peer.setblocking(False)
            await loop.sock_sendall(peer, payload)
            for i in range(5):  # then small messages, one at a time
                await loop.sock_sendall(peer, b"%d" % i)
                while not protocol.data.endswith(b"%d" % i):
                    await asyncio.sleep(0.001)
            peer.shutdown(socket.SHUT_WR)

        loop.run_until_complete(asyncio.wait_for(send_then_trickle(), 20))
        loop.run_until_complete(asyncio.wait_for(protocol.lost, 20))
        assert bytes(protocol.data) == payload + b"01234"
