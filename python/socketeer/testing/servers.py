"""Background servers for tests: echo, discard and scripted peers on any endpoint, running in the
C++ reactor's threads, with a record of what they received.

Imported by the plugin only inside fixtures (it imports ``socketeer._core``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, Optional, Union, cast

import socketeer
from socketeer.constants import SOCK_DGRAM
from socketeer.endpoints import parse_endpoint

__all__ = ["TestServer", "CLOSE", "RESET", "KINDS", "expand_endpoint"]

KINDS = ("echo", "discard", "scripted")


class _Action:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"socketeer.testing.{self.name}"


CLOSE = _Action("CLOSE")  # a script's reply: close the connection (after flushing)
RESET = _Action("RESET")  # a script's reply: reset the connection (RST)

Reply = Union[bytes, None, _Action]
Script = Union[Callable[[bytes], Reply], Sequence[Reply]]

# Shorthands for socketeer_server(endpoint=...): a scheme alone means "a fresh one of these".
_SHORTHANDS = {"tcp": "tcp://127.0.0.1:0", "tcp4": "tcp://127.0.0.1:0", "tcp6": "tcp://[::1]:0",
               "udp": "udp://127.0.0.1:0", "udp4": "udp://127.0.0.1:0", "udp6": "udp://[::1]:0"}
_UNIX_SCHEMES = ("unix", "unix+stream", "unix+dgram", "unix+seqpacket")


def expand_endpoint(endpoint: str, unix_path: Callable[[], str], abstract_name: Callable[[], str]) -> str:
    """'tcp' -> 'tcp://127.0.0.1:0', 'unix+dgram' -> 'unix+dgram:/tmp/st-x/1.sock',
    'unix+seqpacket:@' -> an unused abstract name; anything else is returned as given."""
    if endpoint in _SHORTHANDS:
        return _SHORTHANDS[endpoint]
    scheme, _, rest = endpoint.partition(":")
    if scheme in _UNIX_SCHEMES and rest in ("", "@"):
        return f"{scheme}:{abstract_name() if rest == '@' else unix_path()}"
    return endpoint


class _Handler:
    """The Python side of a recording/scripted server: runs on the reactor's thread (the GIL is
    taken once per loop turn), records every message, answers as the kind and script say."""

    def __init__(self, owner: "TestServer"):
        self.owner = owner

    def on_connect(self, conn: Any) -> None:
        conn.replies_sent = 0
        self.owner._event(connected=1)
        if self.owner.greeting is not None:
            conn.send(self.owner.greeting)

    def on_close(self, conn: Any, reason: str) -> None:
        self.owner._event(closed=1)

    def on_message(self, conn: Any, data: bytes) -> None:
        self.owner._record(data, None)
        reply = self.owner._reply(data, conn)
        if reply is CLOSE:
            conn.close()
        elif reply is RESET:
            conn.abort()
        elif reply is not None:
            conn.send(reply)

    def on_datagram(self, endpoint: Any, data: bytes, address: Any) -> None:
        self.owner._record(data, address)
        reply = self.owner._reply(data, None)
        if isinstance(reply, (bytes, bytearray, memoryview)):
            endpoint.send_to(bytes(reply), address)


class TestServer:
    """A socketeer.Server serving one endpoint in background C++ threads.

    kind: ``"echo"`` (send back what arrives), ``"discard"`` (read and drop), ``"scripted"``
    (``script`` decides: a callable ``data -> reply`` or a sequence of replies, the n-th sent
    for the n-th message of each connection; a reply is bytes, None for silence, or
    ``CLOSE`` / ``RESET``). ``greeting`` is sent to every new connection.

    ``received`` lists every message (or datagram) in arrival order; with the default raw
    framing a stream's messages are whatever chunks recv() returned, so compare
    ``received_data`` (their concatenation). ``record=False`` runs echo/discard as pure C++
    built-ins (no Python per message) and keeps no record.

    Waiting: ``wait_received`` and ``wait_closed`` block the calling thread; in a coroutine (an
    asyncio test, pytest-asyncio's or anyio's on asyncio) await their twins instead, which
    never block the event loop::

        await server.wait_received_async(5)
        await server.wait_closed_async()
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, kind: str = "echo", endpoint: str = "tcp://127.0.0.1:0", *, record: bool = True,
                 script: Optional[Script] = None, greeting: Optional[bytes] = None,
                 framing: Any = None, threads: int = 1):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if kind == "scripted" and script is None:
            raise ValueError("a scripted server needs script= (a callable or a sequence of replies)")
        if kind != "scripted" and script is not None:
            raise ValueError(f"script= is only for kind='scripted', not {kind!r}")
        if not record and (kind == "scripted" or greeting is not None):
            raise ValueError("record=False is only for the C++ built-ins: echo/discard without greeting")
        self.kind, self.record, self.script, self.greeting = kind, record, script, greeting
        self._received: list[tuple[bytes, Any]] = []
        self._counts = {"connected": 0, "closed": 0}
        self._changed = threading.Condition()
        # Coroutines waiting (the _async twins): (their loop, a future, its condition). The
        # reactor thread, which changes the record, resolves the future through the loop.
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]", Callable[[], bool]]] = []
        if record:
            self.server = socketeer.Server(_Handler(self), framing=framing, threads=threads)
        else:
            builtin = cast(Literal["echo", "discard"], kind)
            self.server = socketeer.Server(builtin=builtin, framing=framing, threads=threads)
        try:
            self.datagram = parse_endpoint(endpoint).kind == SOCK_DGRAM
            self.address = self.server.bind(endpoint) if self.datagram else self.server.listen(endpoint)
            self.endpoint = self.server.endpoint(0)
            self.server.start()
        except BaseException:
            self.server.close()
            raise

    # --- called on the reactor thread ----------------------------------------------------------

    def _record(self, data: bytes, address: Any) -> None:
        with self._changed:
            self._received.append((data, address))
            self._notify()

    def _event(self, **counts: int) -> None:
        with self._changed:
            for key, value in counts.items():
                self._counts[key] += value
            self._notify()

    def _notify(self) -> None:
        """Wakes the threads and coroutines waiting (called holding ``_changed``)."""
        self._changed.notify_all()
        for waiter in [waiter for waiter in self._async_waiters if waiter[2]()]:
            self._async_waiters.remove(waiter)
            loop, future, _ = waiter
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # its loop is closed: nobody is waiting any more
                pass

    def _reply(self, data: bytes, conn: Any) -> Reply:
        if self.kind == "echo":
            return data
        if self.kind == "discard":
            return None
        if callable(self.script):
            return self.script(data)
        assert self.script is not None
        index = conn.replies_sent if conn is not None else len(self._received) - 1
        if conn is not None:
            conn.replies_sent += 1
        return self.script[index] if index < len(self.script) else None

    # --- for the test ------------------------------------------------------------------------

    def _need_record(self) -> None:
        if not self.record:
            raise RuntimeError(f"this {self.kind} server runs the C++ built-in (record=False) and keeps no "
                               "record; start it with record=True")

    @property
    def received(self) -> list[bytes]:
        """Every message or datagram received so far, in order (a copy)."""
        self._need_record()
        with self._changed:
            return [data for data, _ in self._received]

    @property
    def received_from(self) -> list[tuple[bytes, Any]]:
        """(data, sender Address) per datagram (the address is None for stream messages)."""
        self._need_record()
        with self._changed:
            return list(self._received)

    @property
    def received_data(self) -> bytes:
        """Everything received, concatenated (for streams, where chunking is arbitrary)."""
        return b"".join(self.received)

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        if not self.record:
            return self.server.stats().get("accepted", 0)
        with self._changed:
            return self._counts["connected"]

    def wait_received(self, nbytes: Optional[int] = None, *, count: Optional[int] = None,
                      timeout: Optional[float] = 10.0) -> list[bytes]:
        """Blocks until at least ``nbytes`` bytes (or ``count`` messages) have arrived; returns
        ``received``. Raises TimeoutError naming what did arrive after ``timeout`` seconds.
        In a coroutine, ``await`` :meth:`wait_received_async` instead."""
        return self._wait(*self._received_condition(nbytes, count), timeout)

    async def wait_received_async(self, nbytes: Optional[int] = None, *, count: Optional[int] = None,
                                  timeout: Optional[float] = 10.0) -> list[bytes]:
        """:meth:`wait_received` for coroutines: the event loop runs on while it waits."""
        return await self._wait_async(*self._received_condition(nbytes, count), timeout)

    def wait_closed(self, count: int = 1, *, timeout: Optional[float] = 10.0) -> None:
        """Blocks until ``count`` connections have closed (recording servers only). In a
        coroutine, ``await`` :meth:`wait_closed_async` instead."""
        self._wait(*self._closed_condition(count), timeout)

    async def wait_closed_async(self, count: int = 1, *, timeout: Optional[float] = 10.0) -> None:
        """:meth:`wait_closed` for coroutines: the event loop runs on while it waits."""
        await self._wait_async(*self._closed_condition(count), timeout)

    def _received_condition(self, nbytes: Optional[int], count: Optional[int]) -> tuple[Callable[[], bool], str]:
        self._need_record()
        if (nbytes is None) == (count is None):
            raise ValueError("give either nbytes or count")

        def enough() -> bool:
            if count is not None:
                return len(self._received) >= count
            return sum(len(data) for data, _ in self._received) >= nbytes  # type: ignore[operator]

        return enough, f"{nbytes} bytes" if count is None else f"{count} messages"

    def _closed_condition(self, count: int) -> tuple[Callable[[], bool], str]:
        self._need_record()
        return (lambda: self._counts["closed"] >= count), f"{count} closed connections"

    def _timed_out(self, timeout: Optional[float], what: str) -> TimeoutError:
        got = sum(len(data) for data, _ in self._received)
        return TimeoutError(f"{self!r}: waited {timeout} s for {what}; got {len(self._received)} messages, "
                            f"{got} bytes")

    def _wait(self, predicate: Callable[[], bool], what: str, timeout: Optional[float]) -> list[bytes]:
        seconds = socketeer._core.timeout_seconds(timeout)  # the rules of every timeout
        deadline = None if seconds is None else time.monotonic() + seconds
        with self._changed:
            while not predicate():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise self._timed_out(timeout, what)
                self._changed.wait(left)
            return [data for data, _ in self._received]

    async def _wait_async(self, predicate: Callable[[], bool], what: str, timeout: Optional[float]) -> list[bytes]:
        """Waits without blocking the loop and without polling: a future the reactor thread
        resolves (``call_soon_threadsafe``) when the record changes and ``predicate`` holds."""
        seconds = socketeer._core.timeout_seconds(timeout)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = (loop, future, predicate)
        with self._changed:
            if predicate():
                return [data for data, _ in self._received]
            self._async_waiters.append(waiter)
        try:
            await asyncio.wait_for(future, seconds)
        except asyncio.TimeoutError:
            with self._changed:
                raise self._timed_out(timeout, what) from None
        finally:
            with self._changed:
                if waiter in self._async_waiters:
                    self._async_waiters.remove(waiter)
        with self._changed:
            return [data for data, _ in self._received]

    def stats(self) -> dict[str, int]:
        """The server's counters (socketeer.Server.stats(): connections, bytes, messages ...)."""
        return self.server.stats()

    def close(self) -> None:
        """Stops the threads, closes every socket, unlinks a unix path. Idempotent."""
        self.server.close()

    def __enter__(self) -> "TestServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<socketeer.testing.TestServer {self.kind} {self.endpoint} {'running' if self.server.running else 'stopped'}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def _repr_html_(self) -> str:
        from socketeer._display import html_table, shown
        rows: list[tuple[str, object]] = [("kind", self.kind if self.record else f"{self.kind} (C++ built-in)"),
                                          ("endpoint", self.endpoint),
                                          ("state", "running" if self.server.running else "stopped"),
                                          ("connections", shown(lambda: self.connections))]
        if self.record:
            with self._changed:
                rows += [("closed", self._counts["closed"]), ("received", f"{len(self._received)} messages, "
                                                              f"{sum(len(data) for data, _ in self._received)} bytes")]
        return html_table("socketeer.testing.TestServer", rows)


def _resolve(future: "asyncio.Future[None]") -> None:
    """On the waiting coroutine's loop: its condition holds (unless it gave up meanwhile)."""
    if not future.done():
        future.set_result(None)
