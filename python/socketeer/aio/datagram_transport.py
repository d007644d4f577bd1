"""The datagram transport of :class:`socketeer.aio.Loop`: an ``asyncio.DatagramTransport`` whose
state, receive batch and output queue live in C++ (``_core.DatagramTransport``).

It behaves as the stdlib's selector datagram transport (``create_datagram_endpoint`` builds it):
an ``OSError`` from a send goes to ``protocol.error_received()``, flow control follows the
write-buffer water marks. The differences by design: ``sendto()`` queues (copied) and the loop
sends each turn's datagrams in one ``sendmmsg`` after the turn's callbacks ran (so a send's
``OSError`` reaches ``error_received()`` at the end of the turn, not inside ``sendto()``, and
``pause_writing()`` comes when the queue passes the high-water mark, whether or not the kernel
would have taken it); and each wake-up receives up to a batch of datagrams in one ``recvmmsg``
(into a reused buffer, UDP only; unix datagram sockets take one per wake-up) and calls
``datagram_received()`` for each in order. An exception from ``datagram_received()`` for a
datagram that is not the batch's last goes to the loop's exception handler and the rest of the
batch is still delivered.
"""

from __future__ import annotations

import asyncio
import socket
from asyncio import transports
from typing import Any, Optional

from .._core import DatagramTransport as _NativeDatagramTransport
from .transport import NativeTransportMixin, add_socket_extra_info

__all__ = ["DatagramTransport"]


class DatagramTransport(NativeTransportMixin, transports._FlowControlMixin, asyncio.DatagramTransport):
    """A datagram transport over a socket on :class:`socketeer.aio.Loop`.

    ``get_extra_info`` answers the stdlib's keys: ``'socket'`` (a ``TransportSocket``),
    ``'sockname'``, ``'peername'``. The socket belongs to the transport from here on: it is closed
    after ``connection_lost``.
    """

    max_size = 256 * 1024  # the stdlib's _SelectorTransport.max_size: the largest datagram taken whole
    _extra: dict[str, Any]

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: asyncio.BaseProtocol,
                 address: Any = None, waiter: Optional[asyncio.Future[None]] = None,
                 extra: Optional[dict[str, Any]] = None) -> None:
        extra = dict(extra or {})
        add_socket_extra_info(extra, sock)
        self._native = _NativeDatagramTransport(self, loop, sock, protocol, address, bool(extra["peername"]))
        super().__init__(extra, loop)
        self._address = address
        self._sock_fd = sock.fileno()
        # The per-datagram methods go straight to C++ (an instance attribute shadows the class's).
        self.sendto = self._native.sendto  # type: ignore[method-assign]
        self.is_closing = self._native.is_closing  # type: ignore[method-assign]
        self.flush_output = self._native.flush_output  # type: ignore[method-assign]
        self._start(loop, protocol, waiter)

    def _set_write_buffer_limits(self, high: Optional[int] = None, low: Optional[int] = None) -> None:
        super()._set_write_buffer_limits(high, low)  # type: ignore[misc]
        self._native.set_high_water(self._high_water)  # type: ignore[attr-defined]

    # --- asyncio.DatagramTransport -------------------------------------------------------
    def sendto(self, data: Any, addr: Any = None) -> None:
        """Sends ``data`` (bytes, bytearray or memoryview) to ``addr`` (``None`` when connected)."""
        self._native.sendto(data, addr)

    def flush_output(self) -> None:
        """Sends what this turn queued (sendmmsg); the loop calls it after each turn."""
        self._native.flush_output()

    def get_write_buffer_size(self) -> int:
        """Bytes of the datagrams queued because the kernel could not take them yet."""
        return self._native.get_write_buffer_size()  # type: ignore[no-any-return]
