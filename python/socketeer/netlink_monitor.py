"""The rtnetlink monitor: a NETLINK_ROUTE socket subscribed to multicast groups, read as a
context manager, a blocking iterator or an async iterator of NetlinkEvent. Built by
``socketeer.netlink.monitor()``."""

from __future__ import annotations

import asyncio
import collections
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Union

from ._display import Closeable, html_table

if TYPE_CHECKING:
    from .netlink import InterfaceAddress, Link, Neighbour, Route

__all__ = ["Monitor", "NetlinkEvent"]


@dataclass(frozen=True, slots=True)
class NetlinkEvent:
    """One change the kernel announced: ``action`` "new" (RTM_NEW*: added or changed) or "del"
    (RTM_DEL*), and the record as it is (or was) after the change."""

    action: str
    record: Union["Link", "InterfaceAddress", "Route", "Neighbour"]

    def _repr_html_(self) -> str:
        return html_table(f"{self.action} {type(self.record).__name__}", [("record", repr(self.record))])


class Monitor(Closeable):
    """Events of the multicast groups it was opened on, in the kernel's order.

    - ``for event in monitor: ...`` blocks (GIL released) until an event; the loop ends when
      ``close()`` is called, also from another thread (an eventfd beside the socket wakes it).
    - ``get(timeout)`` returns the next event, or None when the timeout passes or it is closed.
    - ``async for event in monitor: ...`` waits on any asyncio loop (``loop.add_reader`` on the
      socket, then a read that cannot block); close it from the loop's thread.
    - When the kernel had to drop events because they were not read fast enough (the socket's
      receive buffer overflowed), the next read raises OSError(ENOBUFS) naming the monitor:
      events are never lost silently. Dump the tables again to resynchronise; the monitor stays
      usable.
    """

    __slots__ = ("_core", "_pending", "_reader")

    def __init__(self, core: Any) -> None:
        self._core = core
        self._pending: collections.deque[NetlinkEvent] = collections.deque()
        self._reader: Optional[tuple[asyncio.AbstractEventLoop, asyncio.Future[None], int]] = None

    def fileno(self) -> int:
        """The netlink socket's fd (-1 once closed)."""
        return int(self._core.fileno())

    @property
    def closed(self) -> bool:
        """Whether close() has been called."""
        return bool(self._core.closed)

    def close(self) -> None:
        """Unsubscribes and ends every iteration, waking one blocked in another thread."""
        if self._reader is not None:
            loop, future, fd = self._reader
            loop.remove_reader(fd)
            if not future.done():
                future.set_result(None)
        self._core.close()

    def get(self, timeout: Optional[float] = None) -> Optional[NetlinkEvent]:
        """The next event; None if ``timeout`` seconds pass first or the monitor is closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            milliseconds = -1 if deadline is None else max(0, math.ceil((deadline - time.monotonic()) * 1000))
            if self._core.wait(milliseconds):  # timeout 0 still looks once
                self._pending.extend(self._core.read())
            elif self._core.closed or (deadline is not None and time.monotonic() >= deadline):
                return None
        return self._pending.popleft()

    def __iter__(self) -> "Monitor":
        return self

    def __next__(self) -> NetlinkEvent:
        event = self.get()
        if event is None:
            raise StopIteration
        return event

    def __aiter__(self) -> "Monitor":
        return self

    async def __anext__(self) -> NetlinkEvent:
        loop = asyncio.get_running_loop()
        while not self._pending:
            if self._core.closed:
                raise StopAsyncIteration
            if self._core.wait(0):  # readable now: this read does not block
                self._pending.extend(self._core.read())
                continue
            future: asyncio.Future[None] = loop.create_future()
            fd = self.fileno()
            loop.add_reader(fd, _resolve, future)
            self._reader = (loop, future, fd)
            try:
                await future
            finally:
                self._reader = None
                loop.remove_reader(fd)
        return self._pending.popleft()

    async def __aenter__(self) -> "Monitor":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<socketeer.netlink.Monitor fd={self.fileno()}{' closed' if self.closed else ''}>"


def _resolve(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)
