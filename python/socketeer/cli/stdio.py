"""stdin and stdout against a socket: what ``socketeer connect`` and ``socketeer listen`` share.

- a stream: stdin goes to it (its end half-closes the stream), what it sends goes to stdout,
  until the peer closes, or, with a wait, until the peer has been quiet that long after stdin
  ended (netcat's -w);
- datagrams: each stdin line leaves as one datagram, each one that arrives is printed; the end
  comes ``wait`` seconds after stdin ended and the last datagram came.

stdin is read by one :class:`StdinPump` thread for the whole program, so ``listen -k`` hands
what the next client should get to that client, and none of it is lost between two.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Optional

from ..constants import SHUT_RDWR
from ..poller import EVENT_READ, Poller
from ..streams import Datagram, Stream
from .common import StdoutClosed

__all__ = ["StdinPump", "StdinLines", "stdin_chunks", "write_stdout", "stream_with_stdio", "datagrams_with_stdio"]

Send = Callable[[bytes], object]
End = Callable[[Optional[OSError]], None]


def write_stdout(data: bytes) -> None:
    """Writes and flushes; stdout's reader gone is :class:`StdoutClosed`, never an OSError that
    the caller could take for the socket's."""
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise StdoutClosed from None


class StdinPump:
    """Reads stdin (with ``read``) in a thread for the whole program and hands each chunk to the
    sink attached at the time; the sink's ``end(error)`` is called once, when stdin ends or
    sending to it fails. Chunks read while no sink is attached wait for the next one; a sink
    attached after stdin ended gets ``end(None)`` at once.

    Only the stdin read runs outside the lock, and ``detach()`` takes the lock, so once it returns
    no thread is inside a call to that sink: a daemon thread caught in the C++ core at
    interpreter exit would abort the process. To end a send blocked on a full socket, shut the
    socket down before detaching. A thread still waiting for stdin is harmless and left behind."""

    def __init__(self, read: Callable[[], bytes]):
        self._read = read
        self._lock = threading.Lock()
        self._sink: Optional[tuple[Send, End]] = None
        self._pending: list[bytes] = []
        self._ended = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="socketeer-stdin")
        self._thread.start()

    def attach(self, send: Send, end: End) -> None:
        with self._lock:
            self._sink = (send, end)
            pending, self._pending = self._pending, []
            for data in pending:
                if not self._deliver(data):
                    return
            if self._ended:
                self._finish(None)

    def detach(self) -> None:
        with self._lock:
            self._sink = None

    def _deliver(self, data: bytes) -> bool:
        """Sends to the sink (the lock held); on failure ends and drops it."""
        assert self._sink is not None
        try:
            self._sink[0](data)
        except OSError as error:
            self._finish(error)
            return False
        return True

    def _finish(self, error: Optional[OSError]) -> None:
        assert self._sink is not None
        end, self._sink = self._sink[1], None
        end(error)

    def _run(self) -> None:
        while True:
            try:
                data = self._read()
            except OSError:
                data = b""  # stdin unreadable: as good as ended
            with self._lock:
                if not data:
                    self._ended = True
                    if self._sink is not None:
                        self._finish(None)
                    return
                if self._sink is None:
                    self._pending.append(data)
                else:
                    self._deliver(data)


def stdin_chunks() -> bytes:
    return os.read(0, 65536)


class StdinLines:
    """stdin line by line (the last one perhaps without its newline; a line longer than
    ``limit`` in pieces of ``limit`` bytes), read with os.read: sys.stdin's buffered reader
    would hold its lock in the reading thread, and a daemon thread holding it when the program
    exits (Ctrl-C while stdin is still open) makes the interpreter abort."""

    def __init__(self, limit: int = 65536):
        self._buffer = b""
        self._limit = limit

    def __call__(self) -> bytes:
        while b"\n" not in self._buffer and len(self._buffer) < self._limit:
            chunk = os.read(0, 65536)
            if not chunk:
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += chunk
        end = self._buffer.find(b"\n", 0, self._limit) + 1 or self._limit
        line, self._buffer = self._buffer[:end], self._buffer[end:]
        return line


class _Waiter:
    """A poll loop over one socket that also wakes when stdin ends; after that, waits at most
    ``wait`` seconds (None: for ever) of quiet before it gives up."""

    def __init__(self, poller: Poller, wait: Optional[float]):
        self.poller, self.wait = poller, wait
        self.ended: list[Optional[OSError]] = []
        self.deadline: Optional[float] = None

    def end(self, error: Optional[OSError]) -> None:
        self.ended.append(error)
        self.poller.wake()

    def readable(self) -> bool:
        """Waits for the socket; False once the quiet after stdin's end has lasted ``wait``."""
        while True:
            if self.ended and self.ended[0] is not None:
                raise self.ended[0]
            if self.ended and self.deadline is None and self.wait is not None:
                self.deadline = time.monotonic() + self.wait
            timeout = None if self.deadline is None else self.deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                return False
            if self.poller.poll(timeout):
                if self.deadline is not None and self.wait is not None:
                    self.deadline = time.monotonic() + self.wait  # heard from the peer: quiet starts anew
                return True


def _half_close(stream: Stream) -> Callable[[Optional[OSError]], None]:
    """At the end of stdin, the peer reads end of stream. A failed send is left for the receiving
    side to report: a reset shows there too."""

    def end(error: Optional[OSError]) -> None:
        if error is None:
            try:
                stream.close_write()
            except OSError:
                pass
    return end


def stream_with_stdio(stream: Stream, pump: StdinPump, wait: Optional[float] = None) -> None:
    """stdin to the stream, the stream to stdout, until the peer closes (or, with ``wait``, has
    been quiet that long after stdin ended)."""
    with Poller() as poller:
        poller.register(stream.socket, EVENT_READ)
        waiter = _Waiter(poller, wait)
        half_close = _half_close(stream)

        def end(error: Optional[OSError]) -> None:
            half_close(error)
            waiter.end(None)  # a failed send shows on the receiving side

        pump.attach(stream.send_all, end)
        try:
            while waiter.readable():
                data = stream.recv(65536)  # readable: never blocks
                if not data:
                    break
                write_stdout(data)
        finally:
            try:
                stream.socket.shutdown(SHUT_RDWR)  # ends a send the pump may be blocked in
            except OSError:
                pass
            pump.detach()
            poller.unregister(stream.socket)


def datagrams_with_stdio(datagram: Datagram, pump: StdinPump, wait: Optional[float],
                         send: Optional[Callable[[bytes], Any]] = None,
                         received: Optional[Callable[[Any], None]] = None) -> None:
    """Each stdin line out as a datagram (with ``send``, default the connected ``datagram.send``),
    each datagram that arrives to stdout (``received(sender)`` told who sent it); ends ``wait``
    seconds after stdin ended and the last datagram came (None: never, until Ctrl-C)."""
    with Poller() as poller:
        poller.register(datagram.socket, EVENT_READ)
        waiter = _Waiter(poller, wait)
        pump.attach(send or datagram.send, waiter.end)
        try:
            while waiter.readable():
                data, sender = datagram.recv_from()  # readable: never blocks (an ICMP error raises)
                if received is not None:
                    received(sender)
                write_stdout(data)
        finally:
            pump.detach()
            poller.unregister(datagram.socket)
