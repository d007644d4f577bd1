"""The socket transport of :class:`socketeer.aio.Loop`: an ``asyncio.Transport`` whose state,
reads and output queue live in C++ (``_core.StreamTransport``).

It behaves as the stdlib's selector transport (``create_connection``, ``create_server``,
``start_tls``, ``sendfile`` and asyncio streams all use it), with one difference by design:
``write()`` queues its bytes, and the loop sends each turn's output in one syscall after the
turn's callbacks ran, so two ``write()`` calls in one callback leave as one ``send``. A write that
takes the queue above the high-water mark is sent at once, so ``pause_writing()`` comes exactly
when the stdlib's transport would call it.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import warnings
from asyncio import constants, transports, trsock
from typing import Any, Optional

from .._core import StreamTransport

__all__ = ["NativeTransportMixin", "SocketTransport"]


def _set_nodelay(sock: socket.socket) -> None:
    # Small writes leave without waiting for the peer's ACK (the stdlib's transports do the same).
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM and sock.proto == socket.IPPROTO_TCP:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NativeTransportMixin:
    """What socketeer.aio.Loop's transports share over their native half (``self._native``, a
    ``_core.StreamTransport`` or ``_core.DatagramTransport``): the start (connection_made, then
    reading, then the waiter), closing, the protocol, and what the stdlib's loop code reads."""

    _native: Any
    _sock_fd: int

    def _start(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.BaseProtocol,
               waiter: Optional[asyncio.Future[None]]) -> None:
        loop._transports[self._sock_fd] = self  # type: ignore[attr-defined]  # the loop's fd-in-use check
        loop.call_soon(protocol.connection_made, self)  # type: ignore[arg-type]  # self is the transport
        # Read only once connection_made() ran; wake the waiter after that too.
        loop.call_soon(self._native.start_reading)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    @property
    def _sock(self) -> Optional[socket.socket]:
        return self._native.sock  # type: ignore[no-any-return]

    @property
    def _protocol(self) -> asyncio.BaseProtocol:
        return self._native.protocol  # type: ignore[no-any-return]

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        self._native.fatal_error(exc, message)

    def _force_close(self, exc: Optional[BaseException]) -> None:  # SSLProtocol calls it
        self._native.force_close(exc)

    def _repr_reading(self) -> Optional[str]:
        """The ``read=`` part of the repr, or None for a transport without read flow control."""
        return None

    def __repr__(self) -> str:
        # The stdlib's _SelectorTransport.__repr__: closed/closing, fd, and the poll state.
        info = [type(self).__name__]
        if self._native.sock is None:
            info.append("closed")
        elif self._native.is_closing():
            info.append("closing")
        info.append(f"fd={self._sock_fd}")
        if self._native.sock is not None:
            reading = self._repr_reading()
            if reading is not None:
                info.append(reading)
            state = "polling" if self._native.writer_polling else "idle"
            info.append(f"write=<{state}, bufsize={self._native.get_write_buffer_size()}>")
        return f"<{' '.join(info)}>"

    def is_closing(self) -> bool:
        return self._native.is_closing()  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stops reading; ``connection_lost(None)`` follows once the queue is sent."""
        self._native.close()

    def abort(self) -> None:
        """Drops the queue and closes now; ``connection_lost(None)`` follows."""
        self._native.force_close(None)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._native.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._native.protocol  # type: ignore[no-any-return]

    def __del__(self, _warn: Any = warnings.warn) -> None:
        native = self.__dict__.get("_native")
        if native is not None and native.sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            native.sock.close()


class SocketTransport(NativeTransportMixin, transports._FlowControlMixin, transports.Transport):  # the stdlib's sendfile fallback requires the mixin
    """A stream transport over a connected socket on :class:`socketeer.aio.Loop`.

    ``get_extra_info`` answers the stdlib's keys: ``'socket'`` (a ``TransportSocket``),
    ``'sockname'``, ``'peername'``. The socket (and its fd) belong to the transport from here on:
    it is closed after ``connection_lost``.
    """

    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE
    # Set by the stdlib's base classes (typeshed does not declare them).
    _extra: dict[str, Any]
    _high_water: int
    _low_water: int

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: asyncio.BaseProtocol,
                 waiter: Optional[asyncio.Future[None]] = None, extra: Optional[dict[str, Any]] = None,
                 server: Optional[asyncio.Server] = None) -> None:
        self._native = StreamTransport(self, loop, sock, protocol, server)
        super().__init__(extra, loop)
        add_socket_extra_info(self._extra, sock)
        self._sock_fd = sock.fileno()
        # The per-message methods go straight to C++ (an instance attribute shadows the class's).
        self.write = self._native.write  # type: ignore[method-assign]
        self.writelines = self._native.writelines  # type: ignore[method-assign]
        self.is_closing = self._native.is_closing  # type: ignore[method-assign]
        self.flush_output = self._native.flush_output  # type: ignore[method-assign]
        if server is not None:  # 3.13 tracks its transports (Server.close_clients); the C++ side detaches
            server._attach(*((self,) if sys.version_info >= (3, 13) else ()))  # type: ignore[attr-defined]
        _set_nodelay(sock)
        self._start(loop, protocol, waiter)

    # --- what the stdlib's loop code reads on a transport --------------------------------
    def _make_empty_waiter(self) -> asyncio.Future[None]:
        return self._native.make_empty_waiter()  # type: ignore[no-any-return]

    def _reset_empty_waiter(self) -> None:
        self._native.reset_empty_waiter()

    def _set_write_buffer_limits(self, high: Optional[int] = None, low: Optional[int] = None) -> None:
        super()._set_write_buffer_limits(high, low)  # type: ignore[misc]
        self._native.set_water_marks(self._high_water, self._low_water)

    # --- asyncio.Transport -------------------------------------------------------------------
    def write(self, data: Any) -> None:
        """Queues ``data`` (bytes, bytearray or memoryview; copied) for the end of this loop turn."""
        self._native.write(data)

    def writelines(self, list_of_data: Any) -> None:
        """``write(b''.join(list_of_data))``."""
        self._native.writelines(list_of_data)

    def flush_output(self) -> None:
        """Sends what this turn queued (one syscall); the loop calls it after each turn."""
        self._native.flush_output()

    def write_eof(self) -> None:
        """Shuts down the sending side once the queue is sent (``shutdown(SHUT_WR)``)."""
        self._native.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return self._native.get_write_buffer_size()  # type: ignore[no-any-return]

    def is_reading(self) -> bool:
        return self._native.is_reading()  # type: ignore[no-any-return]

    def pause_reading(self) -> None:
        self._native.pause_reading()

    def resume_reading(self) -> None:
        self._native.resume_reading()

    def _repr_reading(self) -> Optional[str]:
        return "read=polling" if self._native.is_reading() else "read=idle"


def add_socket_extra_info(extra: dict[str, Any], sock: socket.socket) -> None:
    """The stdlib's extra info of a socket transport: ``'socket'`` (a ``TransportSocket``),
    ``'sockname'`` and, unless given, ``'peername'`` (None where the socket has none)."""
    extra["socket"] = trsock.TransportSocket(sock)
    try:
        extra["sockname"] = sock.getsockname()
    except OSError:
        extra["sockname"] = None
    if "peername" not in extra:
        try:
            extra["peername"] = sock.getpeername()
        except OSError:
            extra["peername"] = None


def set_result_unless_cancelled(fut: asyncio.Future[None], result: None) -> None:
    """Wakes a transport's waiter once connection_made() ran, unless it was cancelled meanwhile."""
    if not fut.cancelled():
        fut.set_result(result)
