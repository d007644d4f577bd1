"""``socketeer.aio.Loop``: an asyncio event loop whose I/O engine is socketeer's C++ poller.

>>> import socketeer.aio
>>> async def main():
...     return type(asyncio.get_running_loop()).__name__
>>> socketeer.aio.run(main())
'Loop'

Use it wherever asyncio takes a loop factory::

    socketeer.aio.run(main())                                        # asyncio.run's shape
    with asyncio.Runner(loop_factory=socketeer.aio.new_event_loop) as runner:  # 3.11+
        runner.run(main())
    asyncio.set_event_loop_policy(socketeer.aio.EventLoopPolicy())   # what uvloop.install() does

It is a complete ``asyncio.AbstractEventLoop``: transports and protocols, asyncio streams,
``sock_*``, ``sendfile``, TLS, signals, subprocesses, executors and debug mode behave as the
stock loop's (CPython's own event-loop test suites run against it in CI).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Optional, TypeVar

from ..selectors import EpollSelector

__all__ = ["Loop", "new_event_loop", "EventLoopPolicy", "run"]

T = TypeVar("T")


class Loop(asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]  # a variable on some platforms in typeshed
    """An asyncio event loop on socketeer's C++ epoll poller.

    Create it with :func:`new_event_loop` (or ``Loop()``); drive it as any asyncio loop.
    Closing it closes every fd it owns: its epoll fd, its self-pipe and the transports'.
    """

    def __init__(self) -> None:
        super().__init__(EpollSelector())

    def __repr__(self) -> str:
        return f"<socketeer.aio.Loop running={self.is_running()} closed={self.is_closed()} debug={self.get_debug()}>"


def new_event_loop() -> Loop:
    """A new :class:`Loop`; the ``loop_factory`` for ``asyncio.Runner`` and ``asyncio.run`` (3.12+)."""
    return Loop()


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):  # type: ignore[misc,valid-type]
    """The default policy, making :class:`Loop` instances:
    ``asyncio.set_event_loop_policy(socketeer.aio.EventLoopPolicy())`` makes every
    ``asyncio.run()`` and ``asyncio.new_event_loop()`` use socketeer's loop."""

    def new_event_loop(self) -> Loop:
        return Loop()


def run(main: Coroutine[Any, Any, T], *, debug: Optional[bool] = None) -> T:
    """``asyncio.run(main)`` on a fresh :class:`Loop`: runs the coroutine, then cancels what it
    left running, finishes async generators and the default executor, and closes the loop.
    Ctrl-C cancels ``main`` and raises KeyboardInterrupt, as ``asyncio.run`` does; and as it, it
    refuses to run inside a running loop before making one (RuntimeError)."""
    _refuse_inside_a_running_loop()
    if hasattr(asyncio, "Runner"):  # 3.11+
        with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
            return runner.run(main)
    return _run_without_runner(main, debug)  # 3.10


def _refuse_inside_a_running_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("socketeer.aio.run() cannot be called from a running event loop")


def _run_without_runner(main: Coroutine[Any, Any, T], debug: Optional[bool] = None) -> T:
    """What 3.10's asyncio.run does, on a Loop (3.10 has no asyncio.Runner to take a factory)."""
    _refuse_inside_a_running_loop()
    if not asyncio.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    loop = new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            for task in tasks:
                if not task.cancelled() and task.exception() is not None:
                    loop.call_exception_handler({"message": "unhandled exception during socketeer.aio.run() shutdown",
                                                 "exception": task.exception(), "task": task})
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
