"""A user's module, as mypy --strict must accept it: every annotation here is what a strict user
writes, and `reveal_type` lines pin the types the tests expect (tests/test_typing.py)."""

from __future__ import annotations

import asyncio

import socketeer
import socketeer.netlink
from socketeer import (AF_INET, SOCK_STREAM, Address, AnyAddress, Connection, Datagram, FaultProxy, InetAddress,
                       Listener, Server, Socket, SocketRecord, Stream, TcpState, UnixAddress, aio, bind, connect,
                       framing, listen, socketpair)
from socketeer.testing import NetNamespace, TestServer


def raw_socket() -> int:
    with Socket(AF_INET, SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        local = sock.local_address
        reveal_type(local)  # R: socketeer._core.InetAddress | socketeer._core.Inet6Address | socketeer._core.UnixAddress | socketeer._core.NetlinkAddress | socketeer._core.PacketAddress
        assert isinstance(local, InetAddress)
        reveal_type(local.port)  # R: int
        with Socket(AF_INET, SOCK_STREAM) as client:
            client.connect(local)  # an Address from local_address goes straight back in
            client.sendall(b"x")
            peer, _ = sock.accept()
            with peer:
                return len(peer.recv(1))


def addresses(text: str) -> str:
    parsed = Address.parse(text)
    reveal_type(parsed)  # R: socketeer._core.InetAddress | socketeer._core.Inet6Address | socketeer._core.UnixAddress | socketeer._core.NetlinkAddress | socketeer._core.PacketAddress
    if isinstance(parsed, UnixAddress):
        return parsed.path
    unix: AnyAddress = UnixAddress("/tmp/x.sock")
    return f"{parsed} {unix}"


def streams() -> bytes:
    with listen("tcp://127.0.0.1:0") as listener:
        reveal_type(listener)  # R: socketeer.streams.Listener
        with connect(listener.address) as client, listener.accept() as server:
            reveal_type(client)  # R: socketeer.streams.Stream | socketeer.streams.Datagram
            assert isinstance(client, Stream)
            client.send_all(b"ping\n")
            client.send_all(bytearray(b"ping\n"))
            client.send_all(memoryview(b"ping\n"), timeout=1.0)
            return server.recv_until(b"\n", timeout=None)


def datagrams() -> bytes:
    with bind("udp://127.0.0.1:0") as receiver, connect(f"udp://{receiver.address}") as sender:
        assert isinstance(sender, Datagram)
        sender.send(b"one")
        data, source = receiver.recv_from()
        reveal_type(source)  # R: socketeer._core.InetAddress | socketeer._core.Inet6Address | socketeer._core.UnixAddress | socketeer._core.NetlinkAddress | socketeer._core.PacketAddress | None
        return data


def typed_listener(endpoint: str) -> Listener:
    return listen(endpoint)


class Echo:
    def on_message(self, conn: Connection, data: bytes) -> None:
        conn.send(data)
        reveal_type(conn.peer_address)  # R: socketeer._core.InetAddress | socketeer._core.Inet6Address | socketeer._core.UnixAddress | socketeer._core.NetlinkAddress | socketeer._core.PacketAddress | None


def servers() -> str:
    with Server(Echo(), framing=framing.lines()) as server:
        address = server.listen("tcp://127.0.0.1:0")
        reveal_type(address)  # R: socketeer._core.InetAddress | socketeer._core.Inet6Address | socketeer._core.UnixAddress | socketeer._core.NetlinkAddress | socketeer._core.PacketAddress
        with FaultProxy(server.endpoint()) as proxy:
            proxy.set_latency(0.01)
            return proxy.endpoint


async def async_client(endpoint: str) -> bytes:
    stream = await aio.connect(endpoint)
    assert isinstance(stream, aio.Stream)
    async with stream:
        await stream.send_all(b"hi\n")
        return await stream.recv_until(b"\n")


def run_async(endpoint: str) -> bytes:
    return asyncio.run(async_client(endpoint))


def kernel() -> list[str]:
    names = [link.name for link in socketeer.netlink.links()]
    records: list[SocketRecord] = list(socketeer.sockets("tcp", state=TcpState.LISTEN))
    return names + [str(r.local) for r in records]


def pair() -> None:
    a, b = socketpair()
    with a, b:
        a.send_fds(b"fd", [b.fileno()])


# Fixtures are injected by name; a strict test annotates them with these types.
def test_with_fixtures(socketeer_echo_server: TestServer, socketeer_netns: NetNamespace,
                       socketeer_tcp_listener: Listener) -> None:
    with connect(socketeer_echo_server.endpoint) as client:
        assert isinstance(client, Stream)
        client.send_all(b"x")
    socketeer_echo_server.wait_received(1)
