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
import sys
from asyncio import sslproto
from collections.abc import Coroutine
from typing import Any, Optional, TypeVar

from ..selectors import EpollSelector
from .transport import SocketTransport

__all__ = ["Loop", "new_event_loop", "EventLoopPolicy", "run"]

T = TypeVar("T")


class Loop(asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]  # a variable on some platforms in typeshed
    """An asyncio event loop on socketeer's C++ epoll poller.

    Create it with :func:`new_event_loop` (or ``Loop()``); drive it as any asyncio loop.
    Closing it closes every fd it owns: its epoll fd, its self-pipe and the transports'.
    """

    def __init__(self) -> None:
        super().__init__(EpollSelector())
        self._output_pending: list[SocketTransport] = []

    # --- transports ----------------------------------------------------------------------------
    def _make_socket_transport(self, sock: Any, protocol: Any, waiter: Any = None, *, extra: Any = None,
                               server: Any = None) -> SocketTransport:
        return SocketTransport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(self, rawsock: Any, protocol: Any, sslcontext: Any, waiter: Any = None, *,
                            server_side: bool = False, server_hostname: Any = None, extra: Any = None,
                            server: Any = None, ssl_handshake_timeout: Any = None,
                            ssl_shutdown_timeout: Any = None) -> Any:
        # The stdlib's SSLProtocol over our transport, as the stock loop builds it over its own.
        timeouts = {"ssl_handshake_timeout": ssl_handshake_timeout}
        if sys.version_info >= (3, 11):  # 3.10's SSLProtocol has no shutdown timeout
            timeouts["ssl_shutdown_timeout"] = ssl_shutdown_timeout
        ssl_protocol = sslproto.SSLProtocol(self, protocol, sslcontext, waiter, server_side, server_hostname, **timeouts)
        SocketTransport(self, rawsock, ssl_protocol, extra=extra, server=server)
        return ssl_protocol._app_transport

    def _flush_at_end_of_turn(self, transport: SocketTransport) -> None:
        """Called by a transport the first time it queues output in a turn: its ``flush_output()``
        runs once this turn's callbacks are done, so a turn's writes leave in one syscall."""
        self._output_pending.append(transport)

    def _flush_output(self) -> None:
        # A flush can run connection_lost(), which may write to other transports: repeat until
        # none is left, or their output would wait for the next event.
        while self._output_pending:
            pending, self._output_pending = self._output_pending, []
            for transport in pending:
                transport.flush_output()

    def _run_once(self) -> None:
        # Output queued outside any callback (before run_until_complete) leaves before the
        # poll may block; each turn's output leaves as soon as its callbacks are done.
        if self._output_pending:
            self._flush_output()
        super()._run_once()  # type: ignore[misc]
        if self._output_pending:
            self._flush_output()

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
    Ctrl-C cancels ``main`` and raises KeyboardInterrupt, as ``asyncio.run`` does."""
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)
