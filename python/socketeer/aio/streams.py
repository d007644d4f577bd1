"""socketeer on asyncio: the Stream / Listener / Datagram API as coroutines on the running loop
(the default one, or ``asyncio.SelectorEventLoop(socketeer.selectors.EpollSelector())``).

>>> async def main():
...     async with await listen("tcp://127.0.0.1:0") as listener:
...         async with await connect(listener.endpoint) as client, await listener.accept() as server:
...             await client.send_all(b"ping\\n")
...             return await server.recv_until(b"\\n")
>>> asyncio.run(main())
b'ping\\n'

Reads, framing and exceptions are the sync Stream's, from the same C++ buffer (``_core.StreamReader``,
driven here by the event loop instead of poll()): ``recv_until`` returns the delimiter too,
``lines()`` strips ``\\n``/``\\r\\n``, ``messages(framing)`` splits with the C++ framing (one call
per message; what a loop does not take stays buffered), a stream that ends mid-message raises
IncompleteReadError (``.partial``), a message over ``max_size`` raises MessageTooLarge, and every
call takes ``timeout=`` (TimeoutError).
It adds what asyncio lacks: ``send_fds``/``recv_fds`` and ``sendmsg``/``recvmsg``.

Sockets are socketeer Sockets in non-blocking mode. A Stream reads ahead: the first read that
has to wait registers one reader callback with the loop (``loop.add_reader``), kept until
close(), which receives what arrives into the C++ buffer whether or not a coroutine is waiting,
and wakes the one that is. So a read finds its bytes already buffered, with no loop round trip
and no receive of its own, and lines()/messages() hand out everything that came with one
wake-up. Reading pauses (the registration is removed) once ``buffer_size`` bytes (64 KiB by
default) wait with no coroutine waiting for more, and at end of stream or an error; a read that
has to wait starts it again. Memory stays bounded by ``buffer_size`` plus the largest message
asked for. An error a receive met (ECONNRESET ...) is raised by the next read that needs more
bytes than are buffered, as it would have been without the read-ahead.

Every byte received is in the buffer until a read hands it out, so a timeout or a cancellation
never loses bytes: what arrived during a wait that was cancelled is there for the next read
(``loop.sock_recv_into`` or ``loop.sock_accept`` can lose: the receive or accept may have
completed when the cancellation arrives, and its bytes or its new connection are dropped).

Writes and the other calls first try the syscall (a send_all the socket takes whole never
touches the loop), and only when it would block wait for readiness with
``loop.add_writer``/``add_reader``, then retry. ``recv_fds``/``recvmsg`` stop the read-ahead
(it would receive the bytes without their ancillary data) and refuse to run while bytes are
buffered: on a stream that carries fds, call them where the protocol says fds come, before the
peer can send more. One task at a time may read, and one may write, on each object; a second
one raises RuntimeError.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Optional

from .. import _core
from .._display import html_table, shown, with_row
from ..constants import SHUT_WR
from ..endpoints import Endpoint
from ..framing import Framing, MessageTooLarge
from ..socket import Socket
from ..framing import check_delimiter, check_framing, check_size
from ..opening import Bound, Connected
from ..streams import AcceptBackoff, IncompleteReadError

from .readiness import DEFAULT, SocketIo, closed_error, resolve, time_out

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["Stream", "Listener", "IncompleteReadError", "MessageTooLarge"]

log = logging.getLogger("socketeer")


class Stream(Connected, SocketIo):
    """A connected byte stream with buffered, framed reads; see socketeer.Stream. Every
    coroutine takes ``timeout`` (seconds, None: forever) for the whole call, defaulting to the
    stream's ``timeout``. Reads ahead up to ``buffer_size`` bytes (see the module notes)."""

    def __init__(self, sock: Socket, *, timeout: Optional[float] = None, buffer_size: int = 64 * 1024):
        super().__init__(sock, timeout)
        self._reader = _core.StreamReader(buffer_size)  # received, not yet handed out
        self._fd = sock.fileno()
        self._reading: Optional[asyncio.AbstractEventLoop] = None  # where _on_readable is registered
        self._read_waiter: Optional[asyncio.Future[None]] = None  # the reading task's wait
        self._read_error: Optional[OSError] = None  # a receive's error, for the next read that needs bytes
        # The loop's reader callback, registered once (by the first read that waits) with
        # (socket, stream) as its arguments: native, no Python frame per readable event. One
        # receive into the reader's buffer (fill_now), then the waiting task (_read_waiter) is
        # woken; at end of stream, at an error (kept in _read_error for the next read that needs
        # bytes) and when ``buffer_size`` bytes wait with no task waiting for more it calls
        # _stop_reading(); a read that has to wait starts it again.
        self._on_readable = self._reader.on_readable

    # --- writing ---------------------------------------------------------------------------

    async def send_all(self, data: ReadableBuffer, *, timeout: Optional[float] = DEFAULT) -> None:
        """Sends every byte of ``data`` within the timeout: at once when the socket takes it all,
        else what is left once it is writable again."""
        size = len(data) if type(data) is bytes else memoryview(data).nbytes  # bytes: no view unless it waits
        if not size:
            return
        try:
            sent = self.socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent == size:
            return
        view = memoryview(data).cast("B")[sent:]
        deadline = self._deadline(timeout)
        while view:
            sent = await self._io(True, lambda: self.socket.send(view), deadline, "sendall")
            view = view[sent:]

    async def send_message(self, message: ReadableBuffer, framing: Framing, *, timeout: Optional[float] = DEFAULT) -> None:
        """Sends one message with ``framing``'s length prefix or delimiter added."""
        check_framing(framing)
        await self.send_all(framing.encode(message), timeout=timeout)

    def close_write(self) -> None:
        """Half-close (shutdown SHUT_WR): the peer reads end of stream; this side still reads."""
        self.socket.shutdown(SHUT_WR)

    # --- reading ahead ---------------------------------------------------------------------

    def _refuse_second_reader(self, operation: str) -> None:
        if self._read_waiter is not None or False in self._waiting:
            raise RuntimeError(f"{operation}: another task is already waiting to read")

    def _stop_reading(self) -> None:
        """Removes the reader registration, if there is one."""
        loop, self._reading = self._reading, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._fd)

    async def _wait(self, write: bool, deadline: Optional[float], operation: str, *, ready: bool = True,
                    target: Optional[str] = None) -> None:
        if not write:  # a wait of its own for readability (recv_fds, recvmsg): no reading ahead meanwhile
            self._refuse_second_reader(operation)
            self._stop_reading()
        await super()._wait(write, deadline, operation, ready=ready, target=target)

    # --- reading ---------------------------------------------------------------------------

    async def _read(self, take: Callable[..., Optional[bytes]], timeout: Any, operation: str, *args: Any) -> Any:
        """take(*args) from the reader's buffer until it answers, in between waiting for the
        read-ahead (_on_readable, registered here on the first wait) to receive more; called once
        a take(*args) of the caller's found the buffer short (a read the buffer answers costs no
        coroutine of its own, no clock, no syscall). When it is not reading ahead on this loop
        (before the first wait, after a pause) and at the deadline, one receive of what the
        socket has (fill_now) comes first. The reader is the sync Stream's (one buffer core, two
        drivers). Returns what take() returned: None only for take_frame or take_line at a clean
        end of stream."""
        result = None
        reader, loop = self._reader, self._reading
        if loop is None or not loop.is_running():  # the loop it reads ahead on is the running one, if it runs:
            loop = asyncio.get_running_loop()     # ask only else (3.11 answers with a getpid() syscall)
        deadline = None if timeout is DEFAULT and self.timeout is None else self._deadline(timeout, loop)
        while result is None and not reader.eof:
            waiter = self._waiter(loop, deadline, operation)
            if waiter is not None:
                timer = None if deadline is None else loop.call_at(
                    deadline, time_out, waiter, functools.partial(self.socket.timeout_error, operation, False))
                try:
                    await waiter
                finally:
                    self._read_waiter = None
                    if timer is not None:
                        timer.cancel()
            result = take(*args)
        return result

    def _waiter(self, loop: asyncio.AbstractEventLoop, deadline: Optional[float], operation: str) -> Optional[asyncio.Future[None]]:
        """One step of a read that found the buffer short (not at end of stream), on the running
        ``loop``: raises what a receive of the read-ahead met (for the read it was for), a second
        reader's RuntimeError, EBADF once closed, TimeoutError past the deadline; returns None when
        a receive made here (not yet reading ahead on this loop, or at the deadline) got something
        (take again), else the future the read-ahead resolves (_read_waiter, which the caller
        clears after the wait), registering the read-ahead with the loop if it is not yet."""
        error = self._read_error
        if error is not None:
            self._read_error = None
            raise error
        if ((self._reading is not loop or (deadline is not None and loop.time() >= deadline))
                and self._reader.fill_now(self.socket) is not None):
            return None
        if self._read_waiter is not None or False in self._waiting:
            self._refuse_second_reader(operation)
        if self.socket.fileno() < 0:  # closed behind the stream's back
            self._stop_reading()
            raise closed_error(operation)
        if deadline is not None and loop.time() >= deadline:
            raise self.socket.timeout_error(operation, False)
        if self._reading is not loop:
            self._stop_reading()  # on a loop used before, if it is still open
            loop.add_reader(self._fd, self._on_readable, self.socket, self)
            self._reading = loop
        waiter = self._read_waiter = loop.create_future()
        return waiter

    async def recv(self, max_size: int = 64 * 1024, *, timeout: Optional[float] = DEFAULT) -> bytes:
        """Up to ``max_size`` bytes as soon as any are there; ``b''`` at end of stream."""
        take = self._reader.take_some
        data = take(check_size("max_size", max_size))
        if data is not None:
            return data
        loop = self._reading
        if timeout is DEFAULT and self.timeout is None and loop is not None and loop.is_running():
            # Reading ahead on the running loop, no deadline: _read's first step inline, one
            # coroutine frame fewer to suspend and resume (its loop takes over if this wait does
            # not end with bytes).
            waiter = self._waiter(loop, None, "recv")
            if waiter is not None:
                try:
                    await waiter
                finally:
                    self._read_waiter = None
            data = take(max_size)
        return data if data is not None else await self._read(take, timeout, "recv", max_size)

    async def recv_exactly(self, size: int, *, timeout: Optional[float] = DEFAULT) -> bytes:
        """Exactly ``size`` bytes; IncompleteReadError (``.partial``) if the stream ends first."""
        take = self._reader.take_exactly
        data = take(check_size("size", size))
        return data if data is not None else await self._read(take, timeout, "recv_exactly", size)

    async def recv_until(self, delimiter: bytes = b"\n", max_size: int = 64 * 1024, *,
                         timeout: Optional[float] = DEFAULT) -> bytes:
        """Bytes up to and including ``delimiter``. More than ``max_size`` bytes before it raises
        MessageTooLarge (never buffers without bound)."""
        wanted, limit = check_delimiter(delimiter), check_size("max_size", max_size)
        take = self._reader.take_until
        data = take(wanted, limit)
        return data if data is not None else await self._read(take, timeout, "recv_until", wanted, limit)

    async def messages(self, framing: Framing, *, timeout: Optional[float] = DEFAULT) -> AsyncIterator[bytes]:
        """Whole messages split by ``framing`` (in C++, one call per message) until the stream
        ends; IncompleteReadError if it ends inside one. What is buffered is handed out without
        waiting, so one wake-up yields every message that arrived with it. Each is taken off the
        buffer as it is yielded: a loop that stops early leaves the rest for the next read.
        ``timeout`` bounds the wait for each message."""
        check_framing(framing)
        take = self._reader.take_frame
        while True:
            message = take(framing)
            if message is None:  # not all buffered yet: wait for the read-ahead (_read takes it then)
                message = await self._read(take, timeout, "messages", framing)
                if message is None:
                    return
            yield message

    async def lines(self, max_size: int = 64 * 1024, *, encoding: Optional[str] = None,
                    timeout: Optional[float] = DEFAULT) -> AsyncIterator[Any]:
        """Each line without its ``\\n`` or ``\\r\\n`` (str when ``encoding`` is given), the last
        one even without a newline; handed out and taken off the buffer as messages() does."""
        take, limit = self._reader.take_line, check_size("max_size", max_size)
        while True:
            line = take(limit)
            if line is None:
                line = await self._read(take, timeout, "lines", limit)
                if line is None:
                    return
            yield line.decode(encoding) if encoding else line

    def _check_unbuffered(self, operation: str) -> None:
        self._refuse_second_reader(operation)
        self._stop_reading()  # the read-ahead would take the bytes without their ancillary data
        buffered = self._reader.buffered_size
        if buffered:
            raise RuntimeError(f"{operation}: {buffered} bytes are already buffered by an earlier read; "
                               "read them first (recv) so data and ancillary data stay in order")

    # --- ending ----------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the stream (removing its reader registration); a task waiting on it gets
        OSError(EBADF). Idempotent."""
        self._stop_reading()  # also when the socket was closed behind the stream's back: no stale registration
        waiter, self._read_waiter = self._read_waiter, None
        if waiter is not None:
            resolve(waiter, closed_error("close"))
        self._close_socket()

    def __repr__(self) -> str:
        if self.closed:
            return "<socketeer.aio.Stream closed>"
        local, peer = shown(lambda: self.socket.local_address), shown(lambda: self.socket.peer_address)
        return f"<socketeer.aio.Stream {local} -> {peer}>"

    def _repr_html_(self) -> str:
        return html_table("socketeer.aio.Stream", with_row(self.socket._describe(), "timeout", self.timeout))


class Listener(SocketIo, Bound):
    """A listening socket: ``await accept()``, ``async for stream in listener``, ``serve()``."""

    def __init__(self, sock: Socket, endpoint: Endpoint, *, unlink_on_close: Optional[str] = None):
        super().__init__(sock, None)
        self._endpoint = endpoint
        self._unlink = unlink_on_close

    async def accept(self, timeout: Optional[float] = None) -> Stream:
        """The next connection as a Stream (TimeoutError after ``timeout``; OSError(EBADF) once
        the listener is closed, also for a task waiting in accept)."""
        sock, _ = await self._io(False, self.socket.accept, self._deadline(timeout), "accept")
        return Stream(sock)

    def __aiter__(self) -> AsyncIterator[Stream]:
        return self._streams()

    async def _streams(self) -> AsyncIterator[Stream]:
        """Connections until the listener is closed; a failed accept is handled as the sync
        Listener's iteration does (AcceptBackoff: skip it, or pause accepting while out of fds)."""
        backoff = AcceptBackoff(self._endpoint)
        while True:
            try:
                stream = await self.accept()
            except OSError as error:
                if self.closed and error.errno == errno.EBADF:
                    return
                pause = backoff.after(error)
                if pause:  # a wait for the time alone; close() ends it, and the next accept says so
                    deadline = asyncio.get_running_loop().time() + pause
                    with contextlib.suppress(OSError):
                        await self._wait(False, deadline, "accept", ready=False)
                continue
            backoff.accepted()
            yield stream

    async def serve(self, handler: Callable[[Stream], Awaitable[object]]) -> None:
        """Runs ``await handler(stream)`` in a task per connection until the listener is closed,
        then waits for the running handlers. The stream is closed when its handler returns; an
        exception in a handler is logged and closes only that connection. Out of fds, it keeps
        serving the open connections and accepts again once fds are free. Cancelling serve()
        cancels the handlers."""
        tasks: set[asyncio.Task[None]] = set()

        async def run(stream: Stream) -> None:
            async with stream:
                try:
                    await handler(stream)
                except Exception:
                    log.exception("handler %r failed for %r", handler, stream)

        try:
            async for stream in self:
                task = asyncio.ensure_future(run(stream))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        """Stops listening; a task waiting in accept() gets OSError(EBADF). Idempotent."""
        self._close_socket()
        self._remove_socket_file()


    def __repr__(self) -> str:
        return f"<socketeer.aio.Listener {'closed' if self.closed else shown(lambda: self.endpoint)}>"

    def _repr_html_(self) -> str:
        rows = self.socket._describe() + [("endpoint", shown(lambda: self.endpoint))]
        return html_table("socketeer.aio.Listener", with_row(rows, "timeout", self.timeout))
