"""socketeer.aio.Stream's read-ahead: one reader registration per stream for its life, bytes
received while no coroutine reads, bounded buffering, and nothing lost to a timeout or a
cancellation. Each test runs on a loop subclass that counts the reader registrations (over the
stdlib's default selector and over socketeer's EpollSelector), with real sockets on both ends."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import selectors
import socket as stdlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from socketeer import Socket, aio

BOUND = 20  # seconds: asyncio.wait_for around every test body
TIMEOUT = 10  # per call expected to succeed

pytestmark = pytest.mark.timeout(60)


class CountingLoop(asyncio.SelectorEventLoop):
    """The stdlib selector loop, counting add_reader / remove_reader calls (the epoll_ctl
    registrations behind them) and the futures created, per fd."""

    def __init__(self, selector: selectors.BaseSelector):
        super().__init__(selector)
        self.added: collections.Counter[int] = collections.Counter()
        self.removed: collections.Counter[int] = collections.Counter()
        self.futures = 0

    def add_reader(self, fd, callback, *args):  # type: ignore[no-untyped-def]
        self.added[fd] += 1
        return super().add_reader(fd, callback, *args)

    def remove_reader(self, fd):  # type: ignore[no-untyped-def]
        removed = super().remove_reader(fd)
        self.removed[fd] += removed
        return removed

    def create_future(self) -> asyncio.Future:
        self.futures += 1
        return super().create_future()

    def registered(self, fd: int) -> bool:
        """Whether fd has a reader now (what the selector holds, not what was counted)."""
        try:
            key = self._selector.get_key(fd)
        except KeyError:
            return False
        return key.data[0] is not None


def _selector(kind: str) -> selectors.BaseSelector:
    if kind == "default":
        return selectors.DefaultSelector()
    return pytest.importorskip("socketeer.selectors").EpollSelector()


@pytest.fixture(params=["default", "epoll"])
def run(request) -> Callable[[Callable[[CountingLoop], Awaitable]], object]:
    """run(main) runs main(loop) on a fresh CountingLoop, bounded by BOUND seconds."""

    def runner(main: Callable[[CountingLoop], Awaitable]) -> object:
        loop = CountingLoop(_selector(request.param))
        try:
            return loop.run_until_complete(asyncio.wait_for(main(loop), BOUND))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    return runner


async def pair() -> tuple[aio.Stream, aio.Stream, aio.Listener]:
    listener = await aio.listen("tcp://127.0.0.1:0")
    client = await aio.connect(listener.endpoint, timeout=TIMEOUT)
    server = await listener.accept(timeout=TIMEOUT)
    return client, server, listener


async def until(condition: Callable[[], object], what: str) -> None:
    """Lets the loop run until condition() holds (bounded: TIMEOUT seconds)."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def reading() -> AsyncIterator[tuple[aio.Stream, aio.Stream]]:
    """(client, server) over TCP, the server's read-ahead on; all closed on exit."""
    client, server, listener = await pair()
    async with listener, client, server:
        await started_reading(server, client)
        yield client, server


async def started_reading(stream: aio.Stream, peer: aio.Stream) -> None:
    """One read that has to wait, so the stream's read-ahead is on."""
    reader = asyncio.ensure_future(stream.recv_exactly(5, timeout=TIMEOUT))
    await asyncio.sleep(0)  # it waits now: nothing was sent
    await peer.send_all(b"start")
    assert await reader == b"start"


def test_one_reader_registration_for_many_reads(run):
    async def main(loop: CountingLoop):
        client, server, listener = await pair()
        async with listener, client, server:
            async def echo() -> None:
                while line := await server.recv_until(timeout=TIMEOUT):
                    await server.send_all(line)

            echoing = asyncio.ensure_future(echo())
            for i in range(200):  # each request is sent while the echo task waits for it
                await client.send_all(b"request %d\n" % i)
                assert await client.recv_until(timeout=TIMEOUT) == b"request %d\n" % i
            fd = server.socket.fileno()
            assert loop.added[fd] == 1 and loop.added[client.socket.fileno()] == 1
            assert loop.registered(fd)
            echoing.cancel()
            await asyncio.gather(echoing, return_exceptions=True)
        assert not loop.registered(fd)  # close() removed it
        assert loop.removed[fd] == 1

    run(main)


def test_bytes_are_read_ahead_while_no_coroutine_reads(run):
    async def main(loop: CountingLoop):
        async with reading() as (client, server):
            await client.send_all(b"read ahead\nand more")
            await until(lambda: server._reader.buffered_size == 19, "the read-ahead")
            futures = loop.futures
            assert await server.recv_until(timeout=TIMEOUT) == b"read ahead\n"
            assert await server.recv(timeout=0) == b"and more"
            assert loop.futures == futures  # both from the buffer: no wait

    run(main)


def test_lines_hand_out_a_batch_per_wake_up(run):
    async def main(loop: CountingLoop):
        async with reading() as (client, server):
            lines = [b"line %d" % i for i in range(500)]
            await client.send_all(b"".join(line + b"\n" for line in lines))
            client.close_write()
            await until(lambda: server._reader.eof, "end of stream")
            futures = loop.futures
            assert [line async for line in server.lines(timeout=TIMEOUT)] == lines
            assert loop.futures == futures

    run(main)


def test_read_ahead_stops_at_buffer_size_and_loses_nothing(run):
    async def main(loop: CountingLoop):
        async with reading() as (client, server):
            server.socket.setsockopt(stdlib.SOL_SOCKET, stdlib.SO_RCVBUF, 32 * 1024)
            client.socket.setsockopt(stdlib.SOL_SOCKET, stdlib.SO_SNDBUF, 32 * 1024)
            data = bytes(range(256)) * 16384  # 4 MiB: far more than the buffer and the kernel's queues
            sender = asyncio.ensure_future(client.send_all(data, timeout=TIMEOUT))
            fd, limit = server.socket.fileno(), server._reader.capacity
            await until(lambda: not loop.registered(fd), "the read-ahead to pause")
            assert limit <= server._reader.buffered_size <= 2 * limit
            assert not sender.done()  # the rest waits in the kernel, not in this process
            assert await server.recv_exactly(len(data), timeout=TIMEOUT) == data
            await sender
            assert loop.registered(fd)  # the read that waited started it again

    run(main)


def test_cancel_and_timeout_lose_no_bytes_read_ahead(run):
    async def main(loop: CountingLoop):
        async with reading() as (client, server):
            reader = asyncio.ensure_future(server.recv_exactly(10))
            await asyncio.sleep(0)
            await client.send_all(b"abc")
            await until(lambda: server._reader.buffered_size == 3, "the read-ahead")
            reader.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reader
            await client.send_all(b"def")
            with pytest.raises(TimeoutError):
                await server.recv_exactly(10, timeout=0.05)
            await client.send_all(b"ghij")
            assert await server.recv_exactly(10, timeout=TIMEOUT) == b"abcdefghij"

    run(main)


def test_cancelled_after_its_wake_up_the_bytes_stay(run):
    """The read-ahead wakes the waiting task, and the task is cancelled before it runs (in the
    same loop turn, right after the reader callback): the bytes it was woken for stay."""
    async def main(loop: CountingLoop):
        client, server, listener = await pair()
        async with listener, client, server:
            reader = asyncio.ensure_future(server.recv())
            receive = server._on_readable

            def receive_then_cancel(*args: object) -> None:
                receive(*args)
                reader.cancel()

            server._on_readable = receive_then_cancel  # type: ignore[method-assign]  # registered by the wait
            await asyncio.sleep(0)
            await client.send_all(b"woken")
            with pytest.raises(asyncio.CancelledError):
                await reader
            assert server._reader.buffered_size == 5
            assert await server.recv(timeout=0) == b"woken"

    run(main)


def test_a_cancelled_recv_on_a_stream_reading_ahead_leaves_it_readable(run):
    """recv() with no timeout on a stream already reading ahead waits for the read-ahead itself
    (not through _read); cancelled in that wait, it leaves no waiter behind: the next recv gets
    the bytes that came meanwhile, and does not refuse to run as a second reader."""
    async def main(loop: CountingLoop):
        async with reading() as (client, server):
            waiting = asyncio.ensure_future(server.recv())
            await asyncio.sleep(0)
            assert server._read_waiter is not None  # it waits
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await client.send_all(b"after")
            assert await asyncio.wait_for(server.recv(), TIMEOUT) == b"after"

    run(main)


def test_an_error_seen_while_nobody_reads_goes_to_the_next_read(run):
    """The stdlib socket is the oracle: after a reset, one recv raises ECONNRESET, the next
    returns b"" (end of stream)."""
    async def main(loop: CountingLoop):
        client, server, listener = await pair()
        async with listener, server:
            await started_reading(client, server)
            fd = client.socket.fileno()
            server.abort()
            await until(lambda: not loop.registered(fd), "the read-ahead to stop at the reset")
            with pytest.raises(ConnectionResetError) as raised:
                await client.recv(timeout=TIMEOUT)
            assert raised.value.errno == errno.ECONNRESET
            assert await client.recv(timeout=TIMEOUT) == b""
            client.close()

    run(main)


def test_end_of_stream_stops_reading(run):
    async def main(loop: CountingLoop):
        async with reading() as (client, server):
            fd = server.socket.fileno()
            await client.send_all(b"last words")
            client.close_write()
            await until(lambda: not loop.registered(fd), "the read-ahead to stop at end of stream")
            assert [line async for line in server.lines(timeout=TIMEOUT)] == [b"last words"]
            assert await server.recv(timeout=TIMEOUT) == b""
            assert loop.added[fd] == 1  # reads at end of stream register nothing

    run(main)


def test_a_socket_closed_behind_the_streams_back_leaves_no_registration(run):
    async def main(loop: CountingLoop):
        async with reading() as (client, server):
            fd = server.socket.fileno()
            server.socket.close()
            with pytest.raises(OSError) as raised:
                await server.recv(timeout=TIMEOUT)
            assert raised.value.errno == errno.EBADF
            assert not loop.registered(fd)

    run(main)


def test_a_stream_read_on_two_loops():
    """The registration belongs to a loop: a stream read on a loop that is closed since reads
    on the next one (registered there)."""
    first, second = CountingLoop(_selector("default")), CountingLoop(_selector("default"))
    try:
        client, server, listener = first.run_until_complete(asyncio.wait_for(pair(), BOUND))
        try:
            first.run_until_complete(asyncio.wait_for(started_reading(server, client), BOUND))
            first.close()
            second.run_until_complete(asyncio.wait_for(started_reading(server, client), BOUND))
            fd = server.socket.fileno()
            assert second.registered(fd) and first.added[fd] == second.added[fd] == 1
        finally:
            for closeable in (client, server, listener):
                closeable.close()
        assert not second.registered(fd)
    finally:
        first.close()
        second.close()


def test_recv_fds_stops_the_read_ahead(run):
    async def main(loop: CountingLoop):
        a, b = stdlib.socketpair(stdlib.AF_UNIX, stdlib.SOCK_STREAM)
        server, client = aio.Stream(Socket(fileno=a.detach())), aio.Stream(Socket(fileno=b.detach()))
        async with server, client:
            await started_reading(server, client)
            fd = server.socket.fileno()
            assert loop.registered(fd)
            reader = asyncio.ensure_future(server.recv_fds(100, 1, timeout=TIMEOUT))
            await asyncio.sleep(0)
            assert loop.removed[fd] == 1  # it waits with a registration of its own
            await client.send_fds(b"an fd", [client.socket.fileno()])
            data, fds, _, _ = await reader
            for received in fds:
                stdlib.close(received)
            assert data == b"an fd" and len(fds) == 1
            await client.send_all(b"then bytes")
            assert await server.recv_exactly(10, timeout=TIMEOUT) == b"then bytes"

    run(main)


def test_the_reader_calls_refuse_bad_arguments():
    """The read-ahead's calls into the C++ reader (fast methods) name what is wrong."""
    from socketeer import _core

    reader = _core.StreamReader(1024)
    with pytest.raises(ValueError, match="max_size must be >= 0"):
        reader.take_some(-1)
    with pytest.raises(ValueError, match="size must be >= 0"):
        reader.take_exactly(-1)
    with pytest.raises(TypeError, match="delimiter' must be bytes, not str"):
        reader.take_until("\n", 10)
    with pytest.raises(ValueError, match="delimiter must not be empty"):
        reader.take_until(b"", 10)
    with pytest.raises(TypeError, match="socket' must be"):
        reader.fill_now(None)
    with pytest.raises(TypeError, match="takes at most 1 argument"):
        reader.take_some(1, 2)
    with pytest.raises(TypeError, match="missing required argument 'max'"):
        reader.take_some()
    a, b = stdlib.socketpair()
    with a, Socket(fileno=b.detach()) as sock:
        sock.setblocking(False)
        assert reader.fill_now(sock) is None
        sock.close()
        with pytest.raises(OSError) as raised:
            reader.fill_now(sock)
        assert raised.value.errno == errno.EBADF
