"""``socketeer.aio.connect``, ``listen`` and ``bind``: endpoints opened as coroutines (Happy
Eyeballs for several addresses, as the sync ``socketeer.connect``)."""

from __future__ import annotations

import asyncio
import errno
import os
from typing import Optional, Union

from .. import _core
from ..address import AnyAddress
from ..constants import SO_ERROR, SOCK_DGRAM, SOL_SOCKET
from ..endpoints import Endpoint, parse_endpoint
from ..socket import Socket
from ..opening import HAPPY_EYEBALLS_DELAY, bound_socket, connected_datagram_socket
from ..opening import combined_connect_error, interleave_families
from ..opening import unix_socket_file
from ..endpoints import EndpointLike
from .datagram import Datagram
from .readiness import SocketIo, endpoint_addresses
from .streams import Listener, Stream

__all__ = ["connect", "listen", "bind"]


async def connect(endpoint: EndpointLike, *, timeout: Optional[float] = None) -> Union[Stream, Datagram]:
    """A Stream for ``tcp://``, ``unix:`` and ``unix+seqpacket:``, a connected Datagram for
    ``udp://`` and ``unix+dgram:``. Several addresses: Happy Eyeballs (RFC 8305), as the sync
    connect. ``timeout`` bounds the whole attempt, name resolution included."""
    timeout = _core.timeout_seconds(timeout)  # the bindings' rules for every timeout
    parsed = parse_endpoint(endpoint)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    try:
        addresses = await asyncio.wait_for(endpoint_addresses(parsed), timeout)
    except asyncio.TimeoutError:
        raise _core.timeout_error(f"resolve {parsed}") from None
    if parsed.kind == SOCK_DGRAM:
        return Datagram(connected_datagram_socket(addresses[0]), parsed, timeout=timeout)
    if len(addresses) == 1:
        return Stream(await _connect_one(addresses[0], parsed.kind, deadline))
    return Stream(await _happy_eyeballs(interleave_families(addresses), parsed, deadline))


async def _connect_one(address: AnyAddress, kind: int, deadline: Optional[float]) -> Socket:
    sock = Socket(address.family, kind)
    try:
        sock.setblocking(False)
        code = sock.connect_ex(address)
        if code in (errno.EINPROGRESS, errno.EAGAIN):
            waiter = SocketIo(sock, None)
            await waiter._wait(True, deadline, "connect", target=f"to {address}")
            code = sock.getsockopt(SOL_SOCKET, SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code), f"connect to {address}")
        return sock
    except BaseException:
        sock.close()
        raise


async def _happy_eyeballs(addresses: list[AnyAddress], endpoint: Endpoint, deadline: Optional[float]) -> Socket:
    """Starts an attempt per address, the next one HAPPY_EYEBALLS_DELAY after the previous or at
    once when it fails; the first to connect wins and the others are cancelled (and closed)."""
    remaining = list(addresses)
    pending: set[asyncio.Task[Socket]] = set()
    errors: list[OSError] = []
    try:
        while remaining or pending:
            if remaining:
                pending.add(asyncio.ensure_future(_connect_one(remaining.pop(0), endpoint.kind, deadline)))
            done, pending = await asyncio.wait(pending, timeout=HAPPY_EYEBALLS_DELAY if remaining else None,
                                               return_when=asyncio.FIRST_COMPLETED)
            winner: Optional[Socket] = None
            for task in done:
                error = task.exception()
                if error is None:
                    if winner is None:
                        winner = task.result()
                    else:
                        task.result().close()
                elif isinstance(error, OSError):
                    errors.append(error)
                else:
                    raise error
            if winner is not None:
                return winner
        if any(isinstance(e, TimeoutError) for e in errors):
            raise _core.timeout_error(f"connect to {endpoint}")
        raise combined_connect_error(errors, endpoint)
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def listen(endpoint: EndpointLike, *, backlog: int = 128, reuse_port: bool = False) -> Listener:
    """Listens on ``tcp://HOST:PORT``, ``unix:PATH`` or ``unix+seqpacket:PATH``; port 0 picks a
    free port (``listener.address`` tells which)."""
    parsed = parse_endpoint(endpoint)
    if parsed.kind == SOCK_DGRAM:
        raise ValueError(f"cannot listen on datagram endpoint {parsed}: use socketeer.aio.bind()")
    address = (await endpoint_addresses(parsed))[0]
    sock = bound_socket(address, parsed.kind, backlog=backlog, reuse_port=reuse_port)
    return Listener(sock, parsed, unlink_on_close=unix_socket_file(address))


async def bind(endpoint: EndpointLike, *, reuse_port: bool = False, timeout: Optional[float] = None) -> Datagram:
    """Binds ``udp://HOST:PORT`` or ``unix+dgram:PATH`` (empty PATH: autobind)."""
    parsed = parse_endpoint(endpoint)
    if parsed.kind != SOCK_DGRAM:
        raise ValueError(f"cannot bind() stream endpoint {parsed}: use socketeer.aio.listen() or connect()")
    address = (await endpoint_addresses(parsed))[0]
    sock = bound_socket(address, SOCK_DGRAM, reuse_port=reuse_port)
    return Datagram(sock, parsed, timeout=timeout, unlink_on_close=unix_socket_file(address))
