"""asyncio end to end over socketeer.selectors.EpollSelector, each test also run over the stdlib's
EpollSelector so a difference shows up as one failing id: TCP and unix streams, UDP, the sock_*
methods, sendfile, cancellation, call_soon_threadsafe and timers."""

from __future__ import annotations

import asyncio
import selectors
import socket
from collections.abc import Iterator

import pytest

import socketeer.selectors

SELECTORS = [selectors.EpollSelector, socketeer.selectors.EpollSelector]


@pytest.fixture(params=SELECTORS, ids=["stdlib", "socketeer"])
def loop(request) -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.SelectorEventLoop(request.param())
    assert isinstance(loop._selector, request.param)  # type: ignore[attr-defined]
    yield loop
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


def run(loop: asyncio.AbstractEventLoop, coroutine) -> object:
    return loop.run_until_complete(asyncio.wait_for(coroutine, 20))


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()


async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> bytes:
    writer.write(payload)
    await writer.drain()
    writer.write_eof()
    received = await reader.read()
    writer.close()
    await writer.wait_closed()
    return received


def test_tcp_echo_many_clients(loop):
    async def main():
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        async def client(i: int) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            return await talk(reader, writer, bytes([i]) * (100_000 + i))

        results = await asyncio.gather(*(client(i) for i in range(20)))
        server.close()
        await server.wait_closed()
        return results

    results = run(loop, main())
    assert [len(r) for r in results] == [100_000 + i for i in range(20)]
    assert all(r == bytes([i]) * len(r) for i, r in enumerate(results))


def test_unix_stream_echo(loop, short_tmp):
    path = str(short_tmp / "echo.sock")

    async def main():
        server = await asyncio.start_unix_server(echo, path)
        reader, writer = await asyncio.open_unix_connection(path)
        received = await talk(reader, writer, b"hello over unix" * 1000)
        server.close()
        await server.wait_closed()
        return received

    assert run(loop, main()) == b"hello over unix" * 1000


def test_udp_datagram_endpoint(loop):
    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, address):
            self.transport.sendto(data.upper(), address)

    class Client(asyncio.DatagramProtocol):
        def __init__(self):
            self.received = asyncio.get_running_loop().create_future()

        def datagram_received(self, data, address):
            self.received.set_result(data)

    async def main():
        server, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        address = server.get_extra_info("sockname")
        client, protocol = await loop.create_datagram_endpoint(Client, remote_addr=address)
        client.sendto(b"ping")
        received = await protocol.received
        client.close()
        server.close()
        return received

    assert run(loop, main()) == b"PING"


def test_sock_methods(loop):
    async def main():
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        client = socket.socket()
        client.setblocking(False)
        with listener, client:
            accepted = asyncio.ensure_future(loop.sock_accept(listener))
            await loop.sock_connect(client, listener.getsockname())
            peer, _ = await accepted
            with peer:
                peer.setblocking(False)
                payload = b"z" * 3_000_000  # more than the socket buffers: sendall has to wait
                sender = asyncio.ensure_future(loop.sock_sendall(client, payload))
                received = bytearray()
                while len(received) < len(payload):
                    received += await loop.sock_recv(peer, 65536)
                await sender
                buffer = bytearray(10)
                await loop.sock_sendall(peer, b"back")
                count = await loop.sock_recv_into(client, buffer)
                return bytes(received) == payload, bytes(buffer[:count])

    assert run(loop, main()) == (True, b"back")


async def collecting_server() -> tuple[asyncio.Server, int, asyncio.Future]:
    """A server that reads its first connection to EOF into the returned future."""
    got = asyncio.get_running_loop().create_future()

    async def collect(reader, writer):
        got.set_result(await reader.read())
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(collect, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], got


def test_sock_sendfile_and_loop_sendfile(loop, tmp_path):
    content = bytes(range(256)) * 4096
    path = tmp_path / "payload"
    path.write_bytes(content)

    async def main():
        server, port, first = await collecting_server()
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        with sock, open(path, "rb") as file:
            sent = await loop.sock_sendfile(sock, file)
            sock.shutdown(socket.SHUT_WR)
            await first
        server.close()
        await server.wait_closed()

        server, port, second = await collecting_server()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with open(path, "rb") as file:
            await loop.sendfile(writer.transport, file)
        writer.write_eof()
        await second
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return sent, first.result(), second.result()

    sent, first, second = run(loop, main())
    assert sent == len(content) and first == content and second == content


def test_cancellation_removes_the_reader(loop):
    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        with a, b:
            task = asyncio.ensure_future(loop.sock_recv(a, 10))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            registered = a.fileno() in loop._selector.get_map()  # type: ignore[attr-defined]
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0)
            gone = a.fileno() not in loop._selector.get_map()  # type: ignore[attr-defined]
            b.send(b"after")  # a later reader still gets the data
            late = await loop.sock_recv(a, 10)
            return registered, gone, late

    assert run(loop, main()) == (True, True, b"after")


def test_cancelled_stream_read_and_timeout(loop):
    async def main():
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.01)  # nothing was sent: times out, cancelled
        received = await talk(reader, writer, b"still works")
        server.close()
        await server.wait_closed()
        return received

    assert run(loop, main()) == b"still works"


def test_threadsafe_callbacks_and_timers(loop):
    async def main():
        running = asyncio.get_running_loop()
        fired = running.create_future()
        running.call_later(0.005, fired.set_result, "timer")
        from_thread = await running.run_in_executor(None, lambda: "executor")
        return await fired, from_thread

    assert run(loop, main()) == ("timer", "executor")
