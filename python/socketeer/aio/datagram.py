"""``socketeer.aio.Datagram``: a datagram socket's calls as coroutines (see socketeer.Datagram)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Optional

from .. import _core
from .._display import html_table, shown, with_row
from ..address import Address, AnyAddress
from ..endpoints import Endpoint, parse_endpoint
from ..socket import Socket
from ..framing import check_size
from ..opening import Bound
from ..endpoints import EndpointLike

from .readiness import DEFAULT, SocketIo, endpoint_addresses

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["Datagram"]

class Datagram(SocketIo, Bound):
    """A datagram socket: ``send_to``/``recv_from`` with Address objects, connected
    ``send``/``recv``, ``send_batch``/``recv_batch`` over sendmmsg/recvmmsg."""

    def __init__(self, sock: Socket, endpoint: Endpoint, *, timeout: Optional[float] = None,
                 unlink_on_close: Optional[str] = None):
        super().__init__(sock, timeout)
        self._endpoint = endpoint
        self._unlink = unlink_on_close
        self._batch: Optional[_core.DatagramBatch] = None

    @property
    def peer_address(self) -> AnyAddress:
        """The Address connect() fixed (getpeername); OSError(ENOTCONN) before."""
        return self.socket.peer_address

    async def connect(self, target: EndpointLike) -> None:
        """Fixes the peer (names are resolved off the loop)."""
        if isinstance(target, Address):
            address = target
        elif isinstance(target, str) and "://" not in target and not target.startswith("unix"):
            address = Address.parse(target)
        else:
            address = (await endpoint_addresses(parse_endpoint(target)))[0]
        self.socket.connect(address)

    async def send_to(self, data: ReadableBuffer, address: AnyAddress | str | tuple[Any, ...], *,
                      timeout: Optional[float] = DEFAULT) -> int:
        """Sends one datagram to ``address`` (an Address, tuple or text); returns the bytes sent."""
        return await self._io(True, lambda: self.socket.sendto(data, address), self._deadline(timeout), "sendto")

    async def recv_from(self, max_size: int = 65535, *,
                        timeout: Optional[float] = DEFAULT) -> tuple[bytes, Optional[AnyAddress]]:
        """One datagram and the Address it came from (None for an unnamed unix sender)."""
        check_size("max_size", max_size)
        data, address = await self._io(False, lambda: self.socket.recvfrom(max_size), self._deadline(timeout),
                                       "recvfrom")
        if address is None or address == "":
            return data, None
        return data, Address.from_tuple(self.socket.family_number, address)

    async def send(self, data: ReadableBuffer, *, timeout: Optional[float] = DEFAULT) -> int:
        """Sends one datagram to the connected peer; returns the bytes sent."""
        return await self._io(True, lambda: self.socket.send(data), self._deadline(timeout), "send")

    async def recv(self, max_size: int = 65535, *, timeout: Optional[float] = DEFAULT) -> bytes:
        """One datagram (at most ``max_size`` bytes of it), from the connected peer."""
        check_size("max_size", max_size)
        return await self._io(False, lambda: self.socket.recv(max_size), self._deadline(timeout), "recv")

    async def send_batch(self, messages: Iterable[ReadableBuffer | tuple[ReadableBuffer, AnyAddress | str | tuple[Any, ...]]], *, timeout: Optional[float] = DEFAULT) -> int:
        """Sends ``[(data, address), ...]`` (``[data, ...]`` when connected) with sendmmsg;
        returns how many were sent (fewer when the socket buffer filled up)."""
        batch = list(messages)
        if not batch:
            return 0
        return await self._io(True, lambda: self.socket.send_many(batch), self._deadline(timeout), "sendmmsg")

    async def recv_batch(self, max_messages: int = 64, max_size: int = 2048, *,
                         timeout: Optional[float] = DEFAULT) -> list[tuple[bytes, Optional[AnyAddress]]]:
        """Waits for one datagram, then takes every one queued (up to ``max_messages``) in one
        recvmmsg call."""
        if self._batch is None or (self._batch.slots, self._batch.slot_size) != (max_messages, max_size):
            self._batch = _core.DatagramBatch(check_size("max_messages", max_messages), check_size("max_size", max_size))
        batch = self._batch
        return await self._io(False, lambda: self.socket.recv_many(batch), self._deadline(timeout), "recvmmsg")

    def close(self) -> None:
        """Closes the socket (a task waiting on it gets OSError(EBADF)) and removes the unix socket
        file it created, if any. Idempotent."""
        self._close_socket()
        self._remove_socket_file()


    def __repr__(self) -> str:
        return f"<socketeer.aio.Datagram {'closed' if self.closed else shown(lambda: self.socket.local_address)}>"

    def _repr_html_(self) -> str:
        return html_table("socketeer.aio.Datagram", with_row(self.socket._describe(), "timeout", self.timeout))


# --- opening ----------------------------------------------------------------------------------
