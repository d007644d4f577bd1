"""socketeer.aio over real loopback, each test on every loop of aio_loops.LOOPS (the stock loop,
asyncio.SelectorEventLoop over socketeer.selectors.EpollSelector, uvloop and socketeer.aio.Loop),
run with asyncio.run-style runners (no pytest-asyncio) and bounded by asyncio.wait_for."""

from __future__ import annotations

import array
import asyncio
import errno
import logging
import os
import socket as stdlib
import time
from collections.abc import Awaitable, Callable

import pytest

from aio_loops import run_on
from socketeer import IncompleteReadError, MessageTooLarge, UnixAddress, aio, framing, parse_endpoint
from socketeer.aio import opening as aio_opening
from test_streams import (BATCH, FRAMINGS, ITERATOR_FRAMINGS, MESSAGES, assert_bounded, full_backlog, numbered,
                          refused_address)

BOUND = 20  # seconds: asyncio.wait_for around every test body
TIMEOUT = 10  # per call expected to succeed

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def run(loop_kind: str) -> Callable[[Callable[[], Awaitable]], object]:
    """run(main) runs main() bounded by BOUND seconds on a fresh loop of each kind (aio_loops.LOOPS)."""

    def runner(main: Callable[[], Awaitable]) -> object:
        return run_on(loop_kind, main, BOUND)

    return runner


STREAMS = ["tcp://127.0.0.1:0", "tcp://[::1]:0", "unix:{tmp}/s.sock", "unix:@socketeer-aio-{pid}"]


@pytest.fixture(params=STREAMS, ids=["tcp4", "tcp6", "unix", "abstract"])
def listen_endpoint(request, short_tmp) -> str:
    return request.param.format(tmp=short_tmp, pid=os.getpid())


async def pair(endpoint: str) -> tuple[aio.Stream, aio.Stream, aio.Listener]:
    listener = await aio.listen(endpoint)
    client = await aio.connect(listener.endpoint, timeout=TIMEOUT)
    server = await listener.accept(timeout=TIMEOUT)
    return client, server, listener


def stdlib_seqpacket_pair() -> tuple[aio.Stream, stdlib.socket]:
    """(aio Stream, stdlib peer) over SOCK_SEQPACKET: each send is one record, each receive takes
    at most one, so the peer decides where the reader's receives split the bytes."""
    from socketeer import Socket

    a, b = stdlib.socketpair(stdlib.AF_UNIX, stdlib.SOCK_SEQPACKET)
    stream = aio.Stream(Socket(fileno=a.detach()))
    b.setblocking(False)
    return stream, b


# --- streams -----------------------------------------------------------------------------------

def test_stream_round_trip(run, listen_endpoint):
    async def main():
        client, server, listener = await pair(listen_endpoint)
        async with listener, client, server:
            _, got = await asyncio.gather(client.send_all(b"x" * 300_000),
                                          server.recv_exactly(300_000, timeout=TIMEOUT))
            assert got == b"x" * 300_000
            await server.send_all(b"back")
            assert await client.recv(timeout=TIMEOUT) == b"back"
            assert client.peer_address == listener.address
            assert server.local_address == listener.address

    run(main)


def test_stream_with_a_stdlib_peer(run):
    async def main():
        loop = asyncio.get_running_loop()
        with stdlib.create_server(("127.0.0.1", 0)) as server:
            server.setblocking(False)
            client = await aio.connect(f"tcp://127.0.0.1:{server.getsockname()[1]}", timeout=TIMEOUT)
            peer, _ = await loop.sock_accept(server)
        with peer:
            async with client:
                await loop.sock_sendall(peer, b"one\ntwo\r\nthree")
                peer.shutdown(stdlib.SHUT_WR)
                assert await client.recv_until(timeout=TIMEOUT) == b"one\n"
                assert [line async for line in client.lines(timeout=TIMEOUT)] == [b"two", b"three"]
                await client.send_all(b"reply")
                client.close_write()
                assert await loop.sock_recv(peer, 100) == b"reply"
                assert await loop.sock_recv(peer, 100) == b""

    run(main)


def test_recv_until_and_its_errors(run):
    async def main():
        client, server, listener = await pair("tcp://127.0.0.1:0")
        async with listener, client, server:
            await client.send_all(b"ab||cd\r\nx" * 1 + b"y" * 20)
            assert await server.recv_until(b"||", timeout=TIMEOUT) == b"ab||"
            assert await server.recv_until(b"\r\n", timeout=TIMEOUT) == b"cd\r\n"
            with pytest.raises(MessageTooLarge) as raised:
                await server.recv_until(b"\n", max_size=10, timeout=TIMEOUT)
            assert raised.value.limit == 10
            client.close_write()
            with pytest.raises(IncompleteReadError) as raised:
                await server.recv_until(b"\n", timeout=TIMEOUT)
            assert raised.value.partial == b"x" + b"y" * 20

    run(main)


def test_recv_exactly_when_the_peer_closes_mid_message(run):
    async def main():
        client, server, listener = await pair("unix:@socketeer-aio-exact")
        async with listener, server:
            await client.send_all(b"abc")
            client.close()
            with pytest.raises(IncompleteReadError) as raised:
                await server.recv_exactly(10, timeout=TIMEOUT)
            assert raised.value.partial == b"abc"
            assert isinstance(raised.value, EOFError)

    run(main)


def test_lines_strip_endings_and_keep_the_last_line(run):
    async def main():
        client, server, listener = await pair("tcp://[::1]:0")
        async with listener, client, server:
            await client.send_all("unix\nwindows\r\n\nlast €".encode())
            client.close_write()
            lines = [line async for line in server.lines(encoding="utf-8", timeout=TIMEOUT)]
            assert lines == ["unix", "windows", "", "last €"]
            assert await server.recv(timeout=TIMEOUT) == b""

    run(main)


@pytest.mark.parametrize("f", FRAMINGS)
def test_messages_split_at_every_byte_boundary(run, f):
    async def main():
        stream, peer = stdlib_seqpacket_pair()
        with peer:
            async with stream:
                wire = b"".join(f.encode(m) for m in MESSAGES)
                for cut in range(1, len(wire)):
                    peer.send(wire[:cut])
                    peer.send(wire[cut:])
                    got = []
                    messages = stream.messages(f, timeout=TIMEOUT)
                    while len(got) < len(MESSAGES):
                        got.append(await messages.__anext__())
                    await messages.aclose()
                    assert got == MESSAGES, f"split at byte {cut}"

    run(main)


@pytest.mark.parametrize("f", FRAMINGS)
def test_messages_from_a_peer_sending_byte_by_byte(run, f):
    async def main():
        loop = asyncio.get_running_loop()
        stream, peer = stdlib_seqpacket_pair()
        wire = b"".join(f.encode(m) for m in MESSAGES)

        async def send() -> None:
            for byte in wire:  # a record, so a receive, per byte
                await loop.sock_sendall(peer, bytes([byte]))
            peer.shutdown(stdlib.SHUT_WR)

        with peer:
            async with stream:
                sender = asyncio.ensure_future(send())
                assert [m async for m in stream.messages(f, timeout=TIMEOUT)] == MESSAGES
                await sender

    run(main)


def test_oversize_frame_raises_after_the_messages_before_it(run):
    async def main():
        client, server, listener = await pair("tcp://127.0.0.1:0")
        async with listener, client, server:
            f = framing.length_prefixed(8, max_size=100)
            await client.send_all(f.encode(b"ok") + (2 ** 62).to_bytes(8, "big"))  # no payload follows
            messages = server.messages(f, timeout=TIMEOUT)
            assert await messages.__anext__() == b"ok"
            with pytest.raises(MessageTooLarge) as raised:
                await messages.__anext__()
            assert (raised.value.size, raised.value.limit) == (2 ** 62, 100)

    run(main)


def test_delimited_flood_raises_with_bounded_buffering(run):
    async def main():
        client, server, listener = await pair("tcp://127.0.0.1:0")
        async with listener, client, server:
            async def flood() -> None:
                try:
                    while True:
                        await client.send_all(b"x" * 4096)
                except OSError:
                    pass

            flooder = asyncio.ensure_future(flood())
            with pytest.raises(MessageTooLarge):
                async for _ in server.messages(framing.delimited(b"\n", max_size=1000), timeout=TIMEOUT):
                    pass
            assert server._reader.buffered_size <= 1000 + 64 * 1024
            flooder.cancel()
            await asyncio.gather(flooder, return_exceptions=True)

    run(main)


@pytest.mark.parametrize("f", FRAMINGS[::3])
def test_peer_closing_mid_message(run, f):
    async def main():
        client, server, listener = await pair("unix:@socketeer-aio-mid")
        async with listener, server:
            await client.send_all(f.encode(b"whole") + f.encode(b"cut")[:-1])
            client.close()
            messages = server.messages(f, timeout=TIMEOUT)
            assert await messages.__anext__() == b"whole"
            with pytest.raises(IncompleteReadError) as raised:
                await messages.__anext__()
            assert raised.value.partial == f.encode(b"cut")[:-1]

    run(main)


def test_send_message(run):
    async def main():
        client, server, listener = await pair("tcp://127.0.0.1:0")
        async with listener, client, server:
            f = framing.length_prefixed(2, "little")
            await client.send_message(b"ping", f)
            assert await server.recv_exactly(6, timeout=TIMEOUT) == b"\x04\x00ping"
            client.close_write()
            assert [m async for m in server.messages(f, timeout=TIMEOUT)] == []

    run(main)


# --- an iterator holds nothing (as in test_streams.py: the batch is one record, so timeout=0 ----
# --- reads exactly what is already buffered) ----------------------------------------------------

@pytest.mark.parametrize("f", ITERATOR_FRAMINGS)
def test_an_abandoned_messages_iterator_leaves_the_rest_buffered(run, f):
    async def main():
        stream, peer = stdlib_seqpacket_pair()
        with peer:
            async with stream:
                peer.send(b"".join(map(f.encode, BATCH)))
                assert await anext(stream.messages(f, timeout=TIMEOUT)) == b"one"
                assert [await anext(stream.messages(f, timeout=0)) for _ in BATCH[1:]] == BATCH[1:]
                assert stream._reader.buffered_size == 0

    run(main)


def test_an_abandoned_lines_iterator_leaves_the_rest_buffered(run):
    async def main():
        stream, peer = stdlib_seqpacket_pair()
        with peer:
            async with stream:
                peer.send(b"one\ntwo\r\n\nlast")
                peer.shutdown(stdlib.SHUT_WR)
                assert await anext(stream.lines(timeout=TIMEOUT)) == b"one"
                assert await anext(stream.lines(timeout=0)) == b"two"
                assert await anext(stream.lines(encoding="ascii", timeout=0)) == ""
                assert await anext(stream.lines(timeout=0)) == b"last"
                assert [line async for line in stream.lines(timeout=0)] == []

    run(main)


@pytest.mark.parametrize("f", ITERATOR_FRAMINGS)
def test_next_and_recv_interleaved_read_the_stream_in_order(run, f):
    async def main():
        stream, peer = stdlib_seqpacket_pair()
        with peer:
            async with stream:
                wire = [f.encode(m) for m in (b"one", b"two", b"three", b"four")]
                peer.send(b"".join(wire))
                messages = stream.messages(f, timeout=TIMEOUT)
                assert await anext(messages) == b"one"
                assert await stream.recv_exactly(len(wire[1]), timeout=0) == wire[1]
                assert await anext(messages) == b"three"
                assert await stream.recv(timeout=0) == wire[3]
                peer.shutdown(stdlib.SHUT_WR)
                assert [m async for m in messages] == []

    run(main)


@pytest.mark.parametrize("f", ITERATOR_FRAMINGS)
def test_each_message_by_a_new_iterator_over_more_than_one_buffer(run, f):
    async def main():
        client, server, listener = await pair("tcp://127.0.0.1:0")
        async with listener, client, server:
            messages = numbered(3000)  # ~80 KB: more than one 64 KiB receive

            async def send() -> None:
                await client.send_all(b"".join(map(f.encode, messages)))
                client.close_write()

            sender = asyncio.ensure_future(send())
            got = [await anext(server.messages(f, timeout=TIMEOUT), None) for _ in messages]
            assert [m async for m in server.messages(f, timeout=TIMEOUT)] == []
            await sender
            assert got == messages

    run(main)


# --- timeouts and cancellation ------------------------------------------------------------------

@pytest.mark.parametrize("read", [
    lambda s: s.recv(timeout=0.2),
    lambda s: s.recv_exactly(5, timeout=0.2),
    lambda s: s.recv_until(b"\n", timeout=0.2),
    lambda s: s.lines(timeout=0.2).__anext__(),
    lambda s: s.messages(framing.length_prefixed(), timeout=0.2).__anext__(),
], ids=["recv", "recv_exactly", "recv_until", "lines", "messages"])
def test_read_timeouts_are_bounded(run, read):
    async def main():
        client, server, listener = await pair("tcp://127.0.0.1:0")
        async with listener, client, server:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await read(server)
            assert_bounded(started, 0.2)

    run(main)


@pytest.mark.parametrize("read, operation", [
    (lambda s: s.recv(timeout=0.01), "recv"),
    (lambda s: s.recv_exactly(5, timeout=0.01), "recv_exactly"),
    (lambda s: s.recv_until(b"\n", timeout=0.01), "recv_until"),
    (lambda s: s.lines(timeout=0.01).__anext__(), "lines"),
    (lambda s: s.messages(framing.length_prefixed(), timeout=0.01).__anext__(), "messages"),
], ids=["recv", "recv_exactly", "recv_until", "lines", "messages"])
def test_timeouts_read_as_the_sync_streams_do(run, read, operation):
    """An asyncio timeout has the shape of every socketeer timeout (the stdlib's TimeoutError, no
    errno), naming the call and the peer whose bytes it waited for; accept and connect too."""
    async def main():
        client, server, listener = await pair("tcp://127.0.0.1:0")
        async with listener, client, server:
            with pytest.raises(TimeoutError) as caught:
                await read(server)
            assert caught.value.errno is None
            assert caught.value.args == (f"timed out: '{operation} from {client.local_address}'",)
            with pytest.raises(TimeoutError) as caught:
                await listener.accept(timeout=0.01)
            assert caught.value.errno is None and caught.value.args == (f"timed out: 'accept on {listener.address}'",)
        with full_backlog() as hanging:
            with pytest.raises(TimeoutError) as caught:
                await aio.connect(f"tcp://{hanging}", timeout=0.05)
            assert caught.value.errno is None and caught.value.args == (f"timed out: 'connect to {hanging}'",)

    run(main)


def test_default_timeout(run):
    async def main():
        client, server, listener = await pair("unix:@socketeer-aio-default")
        async with listener, client, server:
            server.timeout = 0.1
            with pytest.raises(TimeoutError):
                await server.recv()
            await client.send_all(b"!")
            assert await server.recv(timeout=None) == b"!"

    run(main)


def test_timeout_and_cancellation_lose_no_bytes(run):
    async def main():
        client, server, listener = await pair("tcp://127.0.0.1:0")
        async with listener, client, server:
            await client.send_all(b"abc")
            with pytest.raises(TimeoutError):
                await server.recv_exactly(5, timeout=0.1)
            reader = asyncio.ensure_future(server.recv_exactly(5))
            await asyncio.sleep(0)  # let it start waiting
            reader.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reader
            await client.send_all(b"de")
            assert await server.recv_exactly(5, timeout=TIMEOUT) == b"abcde"

    run(main)


def test_send_timeout(run):
    async def main():
        client, server, listener = await pair("tcp://127.0.0.1:0")
        async with listener, client, server:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await client.send_all(b"x" * 64 * 1024 * 1024, timeout=0.3)  # nobody reads
            assert_bounded(started, 0.3)

    run(main)


def test_accept_timeout(run):
    async def main():
        async with await aio.listen("tcp://127.0.0.1:0") as listener:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await listener.accept(timeout=0.2)
            assert_bounded(started, 0.2)

    run(main)


def test_connect_timeout(run):
    async def main():
        with full_backlog() as hanging:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await aio.connect(f"tcp://{hanging}", timeout=0.3)
            assert_bounded(started, 0.3)

    run(main)


# --- half-close, abort, close -------------------------------------------------------------------

def test_close_write_and_abort(run):
    async def main():
        client, server, listener = await pair("tcp://127.0.0.1:0")
        async with listener, client, server:
            await client.send_all(b"request")
            client.close_write()
            assert await server.recv_exactly(7, timeout=TIMEOUT) == b"request"
            assert await server.recv(timeout=TIMEOUT) == b""
            await server.send_all(b"response")
            assert await client.recv_exactly(8, timeout=TIMEOUT) == b"response"
            server.abort()
            assert server.closed
            with pytest.raises(ConnectionResetError):
                await client.recv(timeout=TIMEOUT)

    run(main)


def test_close_wakes_a_waiting_reader(run):
    async def main():
        client, server, listener = await pair("unix:@socketeer-aio-close")
        async with listener, client:
            reader = asyncio.ensure_future(server.recv())
            await asyncio.sleep(0)
            server.close()
            with pytest.raises(OSError) as raised:
                await reader
            assert raised.value.errno == errno.EBADF
            with pytest.raises(OSError):
                await server.recv()

    run(main)


def test_a_second_concurrent_reader_is_refused(run):
    async def main():
        client, server, listener = await pair("tcp://127.0.0.1:0")
        async with listener, client, server:
            first = asyncio.ensure_future(server.recv())
            await asyncio.sleep(0)
            with pytest.raises(RuntimeError, match="another task"):
                await server.recv()
            await client.send_all(b"1")
            assert await first == b"1"

    run(main)


# --- Listener ----------------------------------------------------------------------------------

def test_aclose_wakes_accept_and_ends_iteration(run):
    async def main():
        listener = await aio.listen("tcp://127.0.0.1:0")
        accepted = []

        async def acceptor() -> None:
            async for stream in listener:
                async with stream:
                    accepted.append(await stream.recv_exactly(1, timeout=TIMEOUT))

        task = asyncio.ensure_future(acceptor())
        for letter in b"AB":
            async with await aio.connect(listener.endpoint, timeout=TIMEOUT) as client:
                await client.send_all(bytes([letter]))
        while len(accepted) < 2:
            await asyncio.sleep(0.01)
        await listener.aclose()
        await asyncio.wait_for(task, TIMEOUT)
        assert accepted == [b"A", b"B"]
        with pytest.raises(OSError):
            await listener.accept()

    run(main)


def test_unix_listener_removes_its_file(run, short_tmp):
    async def main():
        path = short_tmp / "l.sock"
        async with await aio.listen(f"unix:{path}") as listener:
            assert listener.address == UnixAddress(str(path))
            assert path.exists()
        assert not path.exists()

    run(main)


def test_serve_runs_a_task_per_connection_and_logs_a_failing_handler(run, caplog):
    async def main():
        listener = await aio.listen("tcp://127.0.0.1:0")
        arrived = asyncio.Event()
        waiting = 0

        async def handler(stream: aio.Stream) -> None:
            nonlocal waiting
            async for line in stream.lines(timeout=TIMEOUT):
                if line == b"sync":  # three handlers at once
                    waiting += 1
                    if waiting == 3:
                        arrived.set()
                    await asyncio.wait_for(arrived.wait(), TIMEOUT)
                if line == b"boom":
                    raise RuntimeError("handler exploded")
                await stream.send_all(line.upper() + b"\n")

        server = asyncio.ensure_future(listener.serve(handler))
        clients = [await aio.connect(listener.endpoint, timeout=TIMEOUT) for _ in range(3)]
        try:
            for client in clients:
                await client.send_all(b"sync\n")
            for client in clients:
                assert await client.recv_until(timeout=TIMEOUT) == b"SYNC\n"
            await clients[0].send_all(b"boom\n")
            assert await clients[0].recv(timeout=TIMEOUT) == b""  # only that connection closed
            for client in clients[1:]:
                await client.send_all(b"alive\n")
                assert await client.recv_until(timeout=TIMEOUT) == b"ALIVE\n"
        finally:
            for client in clients:
                client.close()
        listener.close()
        await asyncio.wait_for(server, TIMEOUT)  # handlers end as their clients closed

    with caplog.at_level(logging.ERROR, logger="socketeer"):
        run(main)
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1 and "handler exploded" in str(failures[0].exc_info[1])


def test_cancelling_serve_cancels_the_handlers(run):
    async def main():
        listener = await aio.listen("unix:@socketeer-aio-serve-cancel")
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def handler(stream: aio.Stream) -> None:
            started.set()
            try:
                await stream.recv()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        server = asyncio.ensure_future(listener.serve(handler))
        async with await aio.connect(listener.endpoint, timeout=TIMEOUT):
            await started.wait()
            server.cancel()
            with pytest.raises(asyncio.CancelledError):
                await server
            assert cancelled.is_set()
        listener.close()

    run(main)


# --- Happy Eyeballs ----------------------------------------------------------------------------

def test_happy_eyeballs_after_a_refused_address(run):
    async def main():
        async with await aio.listen("tcp://[::1]:0") as listener:
            started = time.monotonic()
            sock = await aio_opening._happy_eyeballs([refused_address(), listener.address],
                                             parse_endpoint("tcp://x:1"), None)
            async with aio.Stream(sock) as client, await listener.accept(timeout=TIMEOUT):
                assert client.peer_address == listener.address
            assert time.monotonic() - started < aio_opening.HAPPY_EYEBALLS_DELAY  # no waiting after a refusal

    run(main)


def test_happy_eyeballs_overtakes_a_hanging_address_and_times_out(run):
    async def main():
        with full_backlog() as hanging:
            async with await aio.listen("tcp://[::1]:0") as listener:
                started = time.monotonic()
                sock = await aio_opening._happy_eyeballs([hanging, listener.address], parse_endpoint("tcp://x:1"), None)
                async with aio.Stream(sock) as client, await listener.accept(timeout=TIMEOUT):
                    assert client.peer_address == listener.address
                assert time.monotonic() - started >= aio_opening.HAPPY_EYEBALLS_DELAY * 0.9
            loop = asyncio.get_running_loop()
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await aio_opening._happy_eyeballs([hanging, hanging], parse_endpoint("tcp://x:1"), loop.time() + 0.5)
            assert_bounded(started, 0.5)
        with pytest.raises(ConnectionRefusedError):
            await aio_opening._happy_eyeballs([refused_address(), refused_address()], parse_endpoint("tcp://x:1"), None)

    run(main)


def test_connect_by_name(run):
    async def main():
        async with await aio.listen("tcp://127.0.0.1:0") as listener:
            async with await aio.connect(f"tcp://localhost:{listener.address.port}", timeout=TIMEOUT) as client:
                async with await listener.accept(timeout=TIMEOUT):
                    assert client.peer_address == listener.address
            with pytest.raises(ConnectionRefusedError):
                await aio.connect(f"tcp://{refused_address()}", timeout=TIMEOUT)

    run(main)


# --- Datagram ----------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ["udp://127.0.0.1:0", "udp://[::1]:0"])
def test_datagram_send_to_recv_from_and_batches(run, endpoint):
    async def main():
        async with await aio.bind(endpoint) as a, await aio.bind(endpoint) as b:
            assert await a.send_to(b"hello", b.address) == 5
            assert await b.recv_from(timeout=TIMEOUT) == (b"hello", a.address)
            assert await a.send_batch([(f"m{i}".encode(), b.address) for i in range(5)]) == 5
            received = []
            while len(received) < 5:
                received += await b.recv_batch(timeout=TIMEOUT)
            assert received == [(f"m{i}".encode(), a.address) for i in range(5)]
            assert await a.send_batch([]) == 0
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await b.recv_batch(timeout=0.2)
            assert_bounded(started, 0.2)

    run(main)


def test_connected_udp(run):
    async def main():
        async with await aio.bind("udp://127.0.0.1:0") as server:
            async with await aio.connect(server.endpoint, timeout=TIMEOUT) as client:
                await client.send(b"ping")
                data, sender = await server.recv_from(timeout=TIMEOUT)
                assert (data, sender) == (b"ping", client.address)
                await server.send_to(b"pong", sender)
                assert await client.recv(timeout=TIMEOUT) == b"pong"
                assert await client.send_batch([b"1", b"2"]) == 2
                assert [d for d, _ in await server.recv_batch(max_messages=1, timeout=TIMEOUT)] == [b"1"]
                assert [d for d, _ in await server.recv_batch(timeout=TIMEOUT)] == [b"2"]
        async with await aio.bind("udp://127.0.0.1:0") as a, await aio.bind("udp://127.0.0.1:0") as b:
            await a.connect(f"udp://{b.address}")
            await b.connect(a.address)
            await a.send(b"x")
            assert await b.recv(timeout=TIMEOUT) == b"x"

    run(main)


def test_unix_datagram_reply_to_an_autobound_client(run, short_tmp):
    async def main():
        path = short_tmp / "d.sock"
        async with await aio.bind(f"unix+dgram:{path}") as server:
            async with await aio.connect(server.endpoint, timeout=TIMEOUT) as client:
                assert client.address.abstract  # autobound
                await client.send(b"q")
                data, sender = await server.recv_from(timeout=TIMEOUT)
                assert (data, sender) == (b"q", client.address)
                await server.send_to(b"a", sender)
                assert await client.recv(timeout=TIMEOUT) == b"a"
        assert not path.exists()

    run(main)


# --- ancillary data: what asyncio lacks --------------------------------------------------------

def test_send_fds_and_recv_fds(run):
    async def main():
        client, server, listener = await pair("unix:@socketeer-aio-fds")
        async with listener, client, server:
            read_end, write_end = os.pipe()
            try:
                await client.send_fds(b"take these", [read_end, write_end])
                data, fds, _, _ = await server.recv_fds(100, 4, timeout=TIMEOUT)
                try:
                    assert data == b"take these" and len(fds) == 2
                    os.write(fds[1], b"through the pipe")
                    assert os.read(read_end, 100) == b"through the pipe"
                finally:
                    for fd in fds:
                        os.close(fd)
            finally:
                os.close(read_end)
                os.close(write_end)
            with pytest.raises(TimeoutError):
                await server.recv_fds(100, 1, timeout=0.1)

    run(main)


def test_sendmsg_and_recvmsg_with_scm_rights(run):
    async def main():
        async with await aio.bind("unix+dgram:") as a, await aio.bind("unix+dgram:") as b:
            read_end, write_end = os.pipe()
            try:
                rights = [(stdlib.SOL_SOCKET, stdlib.SCM_RIGHTS, array.array("i", [write_end]).tobytes())]
                sent = await a.sendmsg([b"head", b"tail"], rights, 0, b.address)
                assert sent == 8
                data, ancdata, flags, address = await b.recvmsg(100, stdlib.CMSG_SPACE(4), timeout=TIMEOUT)
                assert data == b"headtail" and flags == 0
                assert UnixAddress.from_tuple(stdlib.AF_UNIX, address) == a.address
                [(level, kind, payload)] = ancdata
                assert (level, kind) == (stdlib.SOL_SOCKET, stdlib.SCM_RIGHTS)
                received = array.array("i", payload[:4])[0]
                try:
                    os.write(received, b"!")
                    assert os.read(read_end, 1) == b"!"
                finally:
                    os.close(received)
            finally:
                os.close(read_end)
                os.close(write_end)

    run(main)


def test_recv_fds_refuses_when_bytes_are_buffered(run):
    async def main():
        client, server, listener = await pair("unix:@socketeer-aio-buffered")
        async with listener, client, server:
            await client.send_all(b"line\nrest")
            assert await server.recv_until(timeout=TIMEOUT) == b"line\n"
            while not server._reader.buffered_size:  # "rest" may arrive with the line or after it
                if server._reader.fill_now(server.socket) is None:
                    await server._wait(False, None, "test")
            with pytest.raises(RuntimeError, match="buffered"):
                await server.recv_fds(10, 1)
            assert await server.recv(timeout=TIMEOUT) == b"rest"

    run(main)


# --- bad input ---------------------------------------------------------------------------------

def test_bad_arguments(run):
    async def main():
        client, server, listener = await pair("tcp://127.0.0.1:0")
        async with listener, client, server:
            with pytest.raises(ValueError, match="max_size"):
                await server.recv(-1)
            with pytest.raises(ValueError, match="size"):
                await server.recv_exactly(-1)
            with pytest.raises(ValueError, match="delimiter"):
                await server.recv_until(b"")
            with pytest.raises(TypeError, match="bytes"):
                await server.recv_until("\n")
            with pytest.raises(TypeError, match="framing"):
                await server.messages(None).__anext__()
            with pytest.raises(ValueError, match="timeout"):
                await server.recv(timeout=-1)
            with pytest.raises(TypeError):
                await client.send_all("text")
        with pytest.raises(ValueError, match="bind"):
            await aio.listen("udp://127.0.0.1:0")
        with pytest.raises(ValueError, match="listen"):
            await aio.bind("tcp://127.0.0.1:0")
        with pytest.raises(ValueError, match="unknown service 'no-such-service'"):  # service names are ports
            await aio.connect("tcp://127.0.0.1:no-such-service")
        async with await aio.bind("udp://127.0.0.1:0") as datagram:
            with pytest.raises(ValueError):
                await datagram.recv_batch(0)
            with pytest.raises(ValueError):
                await datagram.recv_batch(-1)

    run(main)


def test_exported_from_the_package():
    import socketeer

    assert socketeer.aio is aio
