"""Echo with asyncio's streams (start_server, reader.read, writer.write) on the loop --loop names
(the stock loop, uvloop or socketeer.aio.Loop). vmbench's shape: read up to 100 KiB and write it
back without awaiting drain(); --lines echoes line by line with readline() instead. Streams have
no datagram API, so UDP is n/a."""

from __future__ import annotations

import asyncio

from .common import parse_args, serve_asyncio, unavailable

LIMIT = 1 << 20  # readline() must take a whole 64 KiB message


async def echo_chunks(reader, writer):
    while data := await reader.read(102400):
        writer.write(data)
    writer.close()


async def echo_lines(reader, writer):
    while data := await reader.readline():
        writer.write(data)
    writer.close()


def starter(lines: bool):
    handler = echo_lines if lines else echo_chunks

    async def start(endpoint):
        if endpoint.kind == "udp":
            unavailable("asyncio streams have no datagram API")
        if endpoint.kind == "unix":
            server = await asyncio.start_unix_server(handler, endpoint.path, limit=LIMIT, backlog=4096)
        else:
            server = await asyncio.start_server(handler, endpoint.host, endpoint.port, limit=LIMIT, backlog=4096)
        return server.sockets[0].getsockname()

    return start


if __name__ == "__main__":
    args = parse_args(__doc__, choose_loop=True, lines="echo with readline()")
    serve_asyncio(args, starter(args.lines))
