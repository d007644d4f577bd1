"""Echo with socketeer.aio's Stream API on the loop --loop names (the stock loop by default,
uvloop, or socketeer.aio.Loop): ``Listener.serve`` runs a task per connection that awaits
``recv`` and ``send_all`` (socketeer's buffered Stream, driven by the event loop). UDP: a
Datagram that sends each datagram back with ``send_to``."""

from __future__ import annotations

import asyncio
from typing import Any

from .common import Endpoint, parse_args, serve_asyncio, unavailable

CHUNK = 100 * 1024  # as asyncio_streams reads
_serving: set[asyncio.Task[Any]] = set()  # the serving task, kept alive until the loop closes


async def echo(stream: Any) -> None:
    while data := await stream.recv(CHUNK):
        await stream.send_all(data)


async def echo_datagrams(datagram: Any) -> None:
    while True:
        data, address = await datagram.recv_from()
        await datagram.send_to(data, address)


async def start(endpoint: Endpoint) -> Any:
    try:
        from socketeer import aio
        from socketeer.constants import IPPROTO_TCP, TCP_NODELAY
    except ImportError as exc:
        unavailable(f"socketeer.aio is not importable ({exc})")
    if endpoint.kind == "udp":
        datagram = await aio.bind(endpoint.text)
        _serving.add(asyncio.ensure_future(echo_datagrams(datagram)))
        return datagram.socket.getsockname()
    listener = await aio.listen(endpoint.text, backlog=4096)

    async def handler(stream: Any) -> None:
        if endpoint.kind == "tcp":  # as asyncio and uvloop do for their transports
            stream.socket.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
        await echo(stream)

    _serving.add(asyncio.ensure_future(listener.serve(handler)))
    return listener.socket.getsockname()


if __name__ == "__main__":
    serve_asyncio(parse_args(__doc__, choose_loop=True), start)
