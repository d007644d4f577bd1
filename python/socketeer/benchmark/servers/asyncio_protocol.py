"""Echo with asyncio's Protocol API (transport.write in data_received) on the loop --loop names
(the stock loop, uvloop or socketeer.aio.Loop). UDP: a DatagramProtocol that sends each datagram
back to its sender."""

from __future__ import annotations

import asyncio

from .common import parse_args, serve_asyncio


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):  # asyncio and uvloop set TCP_NODELAY themselves
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class EchoDatagramProtocol(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def start(endpoint):
    loop = asyncio.get_running_loop()
    if endpoint.kind == "udp":
        transport, _ = await loop.create_datagram_endpoint(EchoDatagramProtocol, local_addr=(endpoint.host, endpoint.port))
        return transport.get_extra_info("sockname")
    if endpoint.kind == "unix":
        server = await loop.create_unix_server(EchoProtocol, endpoint.path, backlog=4096)
    else:
        server = await loop.create_server(EchoProtocol, endpoint.host, endpoint.port, backlog=4096)
    return server.sockets[0].getsockname()


if __name__ == "__main__":
    serve_asyncio(parse_args(__doc__, choose_loop=True), start)
