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
import selectors
import sys
from asyncio import format_helpers, sslproto
from asyncio.log import logger
from collections.abc import Coroutine, Mapping
from typing import Any, Callable, Optional, TypeVar, cast

from .. import _core
from .datagram_transport import DatagramTransport
from .transport import SocketTransport

__all__ = ["Loop", "new_event_loop", "EventLoopPolicy", "run"]

T = TypeVar("T")

# The loop core's methods a Loop instance binds onto itself, so that asyncio's calls reach C++
# with no Python frame between (the class keeps a method of each name, for the class's API and
# for debug mode, which unbinds these to run the checks below).
_FAST = {name: name.lstrip("_") for name in (
    "call_soon", "call_soon_threadsafe", "call_later", "call_at", "time",
    "_add_reader", "_add_writer", "_remove_reader", "_remove_writer", "_flush_at_end_of_turn")}
_FAST["_timer_handle_cancelled"] = "timer_cancelled"


class _CoreQueue:
    """``loop._ready`` / ``loop._scheduled`` as BaseEventLoop sees them (it only clears them
    and takes their length); the queues themselves live in the C++ core."""

    def __init__(self, size: Callable[[], int], clear: Callable[[], None]) -> None:
        self._size, self.clear = size, clear

    def __len__(self) -> int:
        return self._size()


class _CoreSelector(selectors.BaseSelector):
    """``loop._selector`` for the asyncio code that reads it (transport reprs ask get_key() whether
    an fd is polled). Registration goes through the loop's add_reader/add_writer, into the core."""

    def __init__(self, core: _core.LoopCore) -> None:
        self._core = core

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        raise NotImplementedError("register fds with the loop's add_reader()/add_writer()")

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        raise NotImplementedError("unregister fds with the loop's remove_reader()/remove_writer()")

    def select(self, timeout: Optional[float] = None) -> list[tuple[selectors.SelectorKey, int]]:
        raise NotImplementedError("socketeer.aio.Loop polls in C++ (LoopCore.run)")

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        found = self._core.fd_key(fd)
        if found is None:
            raise KeyError(f"{fileobj!r} is not registered")
        events, reader, writer = found
        return selectors.SelectorKey(fileobj, fd, events, (reader, writer))

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return {fd: self.get_key(fd) for fd in self._core.fds()}

    def fileno(self) -> int:
        return self._core.fileno()

    def close(self) -> None:
        self._core.close_poller()


class Loop(asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]  # a variable on some platforms in typeshed
    """An asyncio event loop whose run loop is socketeer's C++ core.

    Create it with :func:`new_event_loop` (or ``Loop()``); drive it as any asyncio loop.
    The ready queue, the timer heap, the fd callbacks and whole loop turns are C++ (_core.LoopCore);
    its handles are _core.Handle and _core.TimerHandle, with asyncio.Handle's API.
    Closing it closes every fd it owns: its epoll fd, its self-pipe and the transports'.
    """

    def __init__(self) -> None:
        self._core = _core.LoopCore(self)
        self._ready = _CoreQueue(lambda: self._core.ready_count, self._core.clear_ready)
        self._scheduled = _CoreQueue(lambda: self._core.timer_count, self._core.clear_timers)
        self._bind_fast_paths(True)
        super().__init__(_CoreSelector(self._core))

    # --- transports ----------------------------------------------------------------------------
    def _make_socket_transport(self, sock: Any, protocol: Any, waiter: Any = None, *, extra: Any = None,
                               server: Any = None) -> SocketTransport:
        return SocketTransport(self, sock, protocol, waiter, extra, server)

    def _make_datagram_transport(self, sock: Any, protocol: Any, address: Any = None, waiter: Any = None,
                                 extra: Any = None) -> DatagramTransport:
        return DatagramTransport(self, sock, protocol, address, waiter, extra)

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

    def __repr__(self) -> str:
        return f"<socketeer.aio.Loop running={self.is_running()} closed={self.is_closed()} debug={self.get_debug()}>"

    def _bind_fast_paths(self, bind: bool) -> None:
        for name, core_name in _FAST.items():
            if bind:
                setattr(self, name, getattr(self._core, core_name))
            else:
                self.__dict__.pop(name, None)

    # BaseEventLoop keeps these as attributes; here the core holds them.
    @property
    def _stopping(self) -> bool:  # type: ignore[override]
        return self._core.stopping

    @_stopping.setter
    def _stopping(self, value: bool) -> None:
        self._core.stopping = value

    @property
    def _closed(self) -> bool:  # type: ignore[override]
        return self._core.closed

    @_closed.setter
    def _closed(self, value: bool) -> None:
        self._core.closed = value

    def set_debug(self, enabled: bool) -> None:
        """Debug mode as the stock loop's: thread and callback checks, where each handle was made,
        slow callbacks logged (slow_callback_duration). The calls go through Python meanwhile."""
        super().set_debug(enabled)
        self._core.debug = bool(enabled)
        self._bind_fast_paths(not enabled)

    def _run_once(self) -> None:
        """BaseEventLoop.run_forever's loop body: here, every turn until stop() (in C++)."""
        self._core.run()

    def stop(self) -> None:
        """Stops run_forever() once the current turn's callbacks have run."""
        self._core.stop()

    def time(self) -> float:
        """The loop's clock: time.monotonic()'s, in seconds."""
        return self._core.time()

    # --- scheduling (the instances' bound core methods; these run in debug mode) ------------
    # They return _core.Handle and _core.TimerHandle, typed as the asyncio classes whose API they
    # have; the overrides are ignored because typeshed types *args with a TypeVarTuple.
    def call_soon(self, callback: Callable[..., object], *args: Any, context: Any = None) -> asyncio.Handle:  # type: ignore[override]
        self._check_closed()  # type: ignore[attr-defined]  # BaseEventLoop's, not in typeshed
        self._check_thread()  # type: ignore[attr-defined]
        self._check_callback(callback, "call_soon")  # type: ignore[attr-defined]
        return self._traced(self._core.call_soon(callback, *args, context=context))

    def _call_soon(self, callback: Callable[..., object], args: Any, context: Any) -> asyncio.Handle:
        return self._traced(self._core.call_soon(callback, *args, context=context))

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any, context: Any = None) -> asyncio.Handle:  # type: ignore[override]
        self._check_closed()  # type: ignore[attr-defined]
        self._check_callback(callback, "call_soon_threadsafe")  # type: ignore[attr-defined]
        return self._traced(self._core.call_soon_threadsafe(callback, *args, context=context))

    def call_at(self, when: float, callback: Callable[..., object], *args: Any,  # type: ignore[override]
                context: Any = None) -> asyncio.TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        return self._timer(when, callback, args, context)

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any,  # type: ignore[override]
                   context: Any = None) -> asyncio.TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        return self._timer(self.time() + delay, callback, args, context)

    def _timer(self, when: float, callback: Callable[..., object], args: Any, context: Any) -> asyncio.TimerHandle:
        self._check_closed()  # type: ignore[attr-defined]
        self._check_thread()  # type: ignore[attr-defined]
        self._check_callback(callback, "call_at")  # type: ignore[attr-defined]
        return cast(asyncio.TimerHandle, self._traced(self._core.call_at(when, callback, *args, context=context), 3))

    def _traced(self, handle: Any, depth: int = 2) -> Any:
        """Records where the call was made (depth frames up), as asyncio.Handle does in debug mode."""
        if self.get_debug():
            handle._source_traceback = format_helpers.extract_stack(sys._getframe(depth))
        return handle

    def _add_callback(self, handle: asyncio.Handle) -> None:
        self._core.push(handle)

    def _write_to_self(self) -> None:
        self._core.wake()

    def _timer_handle_cancelled(self, handle: Any) -> None:
        self._core.timer_cancelled(handle)

    def _run_handle_debug(self, handle: Any) -> None:
        """Runs one handle as BaseEventLoop._run_once does in debug mode: slow ones are logged."""
        try:
            self._current_handle = handle
            began = self.time()
            handle._run()
            took = self.time() - began
            if took >= self.slow_callback_duration:
                logger.warning("Executing %s took %.3f seconds", _format_handle(handle), took)
        finally:
            self._current_handle = None

    # --- readers and writers: the stdlib's names and semantics, kept in the C++ core --------
    def _add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> _core.Handle:
        return self._core.add_reader(fd, callback, *args)

    def _remove_reader(self, fd: Any) -> bool:
        return self._core.remove_reader(fd)

    def _add_writer(self, fd: Any, callback: Callable[..., object], *args: Any) -> _core.Handle:
        return self._core.add_writer(fd, callback, *args)

    def _remove_writer(self, fd: Any) -> bool:
        return self._core.remove_writer(fd)

    def _flush_at_end_of_turn(self, transport: Any) -> None:
        """Calls ``transport.flush_output()`` once, after the current turn's callbacks ran (the
        native transports' write coalescing: several write() calls in a turn, one syscall)."""
        self._core.flush_at_end_of_turn(transport)


def _format_handle(handle: Any) -> str:
    """asyncio's description of a handle in the slow-callback warning (a task's repr for a task step)."""
    owner = getattr(handle._callback, "__self__", None)
    return repr(owner) if isinstance(owner, asyncio.Task) else str(handle)


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
