"""The asyncio loops socketeer's async tests run on, by name: the stock loop as ``asyncio.run``
makes it ("default"), the stdlib's SelectorEventLoop over socketeer.selectors.EpollSelector
("epoll"), uvloop ("uvloop": skipped where it is not installed, a failure in CI, which installs
it with the test extra) and socketeer's own ``aio.Loop`` ("ours").

The ``loop_kind`` fixture (tests/conftest.py) runs a test once on each. The ``stock_or_ours_loop``
fixture here gives a test a loop object instead: the stock loop, then socketeer's (the stdlib is
the oracle for the transport tests, which import it as their ``loop``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Optional, TypeVar

import pytest
from optional_tools import needs

T = TypeVar("T")


def loop_factory(kind: str) -> Optional[Callable[[], asyncio.AbstractEventLoop]]:
    """The factory making a loop of ``kind`` (None for "default": asyncio's own); skips the test
    (fails it in CI) if that loop cannot be had here."""
    if kind == "default":
        return None
    if kind == "epoll":
        from socketeer.selectors import EpollSelector

        return lambda: asyncio.SelectorEventLoop(EpollSelector())
    if kind == "uvloop":
        return needs("uvloop").new_event_loop
    if kind == "ours":
        from socketeer import aio

        return aio.new_event_loop
    raise ValueError(f"unknown loop kind {kind!r}")


def run_on(kind: str, main: Callable[[], Awaitable[T]], bound: float = 20) -> T:
    """``asyncio.run(main())`` on a fresh loop of ``kind``, bounded by ``bound`` seconds
    (asyncio.wait_for): cancels what main left running, finishes async generators and the default
    executor, and closes the loop."""

    async def bounded() -> T:
        return await asyncio.wait_for(main(), bound)

    factory = loop_factory(kind)
    if factory is None:
        return asyncio.run(bounded())
    loop = factory()  # asyncio.Runner(loop_factory=) would do this from 3.11 on
    try:
        return loop.run_until_complete(bounded())
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


STOCK_AND_OURS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "stock": asyncio.new_event_loop,
    "socketeer": lambda: loop_factory("ours")(),  # type: ignore[misc]
}


@pytest.fixture(params=sorted(STOCK_AND_OURS))
def stock_or_ours_loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh loop, the stock one then socketeer's aio.Loop; closed after the test."""
    loop = STOCK_AND_OURS[request.param]()
    yield loop
    loop.close()


class CallRecorder:
    """The part of a recording protocol the stream and datagram transport tests share: the
    transport from connection_made, the flow-control and life-cycle calls in ``calls`` in order,
    and ``lost``, a future connection_lost resolves with its argument. Mixed in before
    asyncio.Protocol or asyncio.DatagramProtocol."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.calls: list[str] = []
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.calls.append("made")

    def pause_writing(self):
        self.calls.append("pause")

    def resume_writing(self):
        self.calls.append("resume")

    def connection_lost(self, exc):
        self.calls.append("lost")
        self.lost.set_result(exc)
