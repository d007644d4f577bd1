"""socketeer.aio.Loop's native datagram transport: each body runs on the stock loop (the stdlib
is the oracle) and on ours. The CPython suites in test_aio_loop_cpython.py (test_events'
datagram tests) cover the rest of the asyncio contract."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile

import pytest
from aio_loops import CallRecorder
from aio_loops import stock_or_ours_loop as loop  # noqa: F401  (the fixture: stock, then ours)

pytestmark = pytest.mark.timeout(30)


class Recorder(CallRecorder, asyncio.DatagramProtocol):
    """Records every callback; connection_lost resolves .lost; echo=True sends each datagram back."""

    def __init__(self, loop: asyncio.AbstractEventLoop, echo: bool = False):
        super().__init__(loop)
        self.loop = loop
        self.echo = echo
        self.datagrams: list[tuple[bytes, object]] = []
        self.errors: list[BaseException] = []

    def datagram_received(self, data, addr):
        self.datagrams.append((data, addr))
        if self.echo:
            self.transport.sendto(data, addr)

    def error_received(self, exc):
        self.errors.append(exc)


def run_until(loop: asyncio.AbstractEventLoop, condition, timeout: float = 10.0) -> None:
    async def wait():
        deadline = loop.time() + timeout
        while not condition():
            assert loop.time() < deadline, "condition not met in time"
            await asyncio.sleep(0.001)

    loop.run_until_complete(wait())


def endpoint(loop, **kwargs):
    protocol = Recorder(loop, echo=kwargs.pop("echo", False))
    transport, _ = loop.run_until_complete(loop.create_datagram_endpoint(lambda: protocol, **kwargs))
    return transport, protocol


def close(loop, transport, protocol):
    transport.close()
    assert loop.run_until_complete(protocol.lost) is None
    assert protocol.calls.count("made") == 1 and protocol.calls.count("lost") == 1


def test_echo_gives_the_stdlib_addresses_and_extra_info(loop):
    transport, protocol = endpoint(loop, local_addr=("127.0.0.1", 0), echo=True)
    assert isinstance(transport, asyncio.BaseTransport) and hasattr(transport, "sendto")
    sockname = transport.get_extra_info("sockname")
    assert sockname == transport.get_extra_info("socket").getsockname() and sockname[0] == "127.0.0.1"
    assert transport.get_extra_info("peername") is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.sendto(b"ping", sockname)
        run_until(loop, lambda: protocol.datagrams)
        peer.settimeout(10)
        assert peer.recvfrom(100) == (b"ping", sockname)
        assert protocol.datagrams == [(b"ping", peer.getsockname())]
    close(loop, transport, protocol)


def test_ipv6_addresses_are_the_stdlib_four_tuples(loop):
    transport, protocol = endpoint(loop, local_addr=("::1", 0), echo=True)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as peer:
        peer.bind(("::1", 0))
        peer.sendto(b"six", transport.get_extra_info("sockname"))
        run_until(loop, lambda: protocol.datagrams)
        assert protocol.datagrams == [(b"six", peer.getsockname())]
        peer.settimeout(10)
        assert peer.recv(100) == b"six"
    close(loop, transport, protocol)


@pytest.mark.parametrize("data", ["text", 12, None])
def test_sendto_rejects_what_the_stdlib_rejects(loop, data):
    transport, protocol = endpoint(loop, local_addr=("127.0.0.1", 0))
    with pytest.raises(TypeError, match="bytes-like"):
        transport.sendto(data, ("127.0.0.1", 9))
    close(loop, transport, protocol)


def test_connected_sendto_another_address_is_a_value_error(loop):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        transport, protocol = endpoint(loop, remote_addr=peer.getsockname())
        assert transport.get_extra_info("peername") == peer.getsockname()
        with pytest.raises(ValueError, match="Invalid address"):
            transport.sendto(b"x", ("127.0.0.1", 9))
        transport.sendto(b"same", peer.getsockname())
        transport.sendto(b"none")
        loop.run_until_complete(asyncio.sleep(0))  # ours sends at the end of a loop turn
        peer.settimeout(10)
        assert [peer.recv(100), peer.recv(100)] == [b"same", b"none"]
        close(loop, transport, protocol)


def test_unconnected_sendto_without_an_address_is_fatal_as_in_the_stdlib(loop):
    errors = []
    loop.set_exception_handler(lambda loop, context: errors.append(context["exception"]))
    transport, protocol = endpoint(loop, local_addr=("127.0.0.1", 0))
    transport.sendto(b"x")  # sock.sendto(data, None): a TypeError, which closes the transport
    exc = loop.run_until_complete(protocol.lost)
    assert isinstance(exc, TypeError) and errors == [exc]


def test_refused_connected_send_goes_to_error_received(loop):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind(("127.0.0.1", 0))
        address = gone.getsockname()
    transport, protocol = endpoint(loop, remote_addr=address)

    async def send_until_refused():
        for _ in range(1000):
            transport.sendto(b"anyone?")
            await asyncio.sleep(0.005)
            if protocol.errors:
                return

    loop.run_until_complete(send_until_refused())
    assert isinstance(protocol.errors[0], ConnectionRefusedError)
    assert not transport.is_closing()
    close(loop, transport, protocol)


def test_unix_datagram_addresses_are_the_stdlib_paths(loop):
    with tempfile.TemporaryDirectory() as directory:
        server_path = os.path.join(directory, "server")
        transport, protocol = endpoint(loop, local_addr=server_path, family=socket.AF_UNIX)
        assert transport.get_extra_info("sockname") == server_path
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as named, \
                socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unnamed:
            named.bind(os.path.join(directory, "client"))
            named.sendto(b"named", server_path)
            unnamed.sendto(b"unnamed", server_path)
            run_until(loop, lambda: len(protocol.datagrams) == 2)
            transport.sendto(b"back", protocol.datagrams[0][1])
            loop.run_until_complete(asyncio.sleep(0))
            named.settimeout(10)
            assert named.recvfrom(100) == (b"back", server_path)
        stdlib_unnamed = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with stdlib_unnamed, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as oracle:
            oracle.bind(os.path.join(directory, "oracle"))
            stdlib_unnamed.sendto(b"x", oracle.getsockname())
            unnamed_address = oracle.recvfrom(10)[1]
        assert protocol.datagrams == [(b"named", os.path.join(directory, "client")), (b"unnamed", unnamed_address)]
        assert protocol.errors == []
        close(loop, transport, protocol)


def test_a_burst_of_1000_datagrams_at_low_rate_loses_none(loop):
    transport, protocol = endpoint(loop, local_addr=("127.0.0.1", 0), echo=True)
    address = transport.get_extra_info("sockname")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        echoed: list[bytes] = []

        async def burst():
            for group in range(100):  # ten at a time: far below the socket buffers
                for i in range(10):
                    peer.sendto(b"%04d" % (group * 10 + i), address)
                while len(echoed) < (group + 1) * 10:
                    try:
                        echoed.append(peer.recv(100))
                    except BlockingIOError:
                        await asyncio.sleep(0.001)

        loop.run_until_complete(asyncio.wait_for(burst(), 20))
    assert [data for data, _ in protocol.datagrams] == [b"%04d" % i for i in range(1000)]
    assert sorted(echoed) == [b"%04d" % i for i in range(1000)]
    close(loop, transport, protocol)


def fill_queue(loop):
    """A transport on a connected unix datagram socket whose peer does not read: sends until the kernel
    refuses and the transport queues (and pauses the protocol)."""
    with tempfile.TemporaryDirectory() as directory:
        peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        peer.bind(os.path.join(directory, "peer"))
        ours = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ours.bind(os.path.join(directory, "ours"))
        ours.connect(peer.getsockname())  # a peername: sendto(data) without an address
        ours.setblocking(False)
    transport, protocol = endpoint(loop, sock=ours)
    transport.set_write_buffer_limits(high=4096)
    sent = 0
    while "pause" not in protocol.calls:  # ours queues at once; the stock loop once the kernel refuses
        transport.sendto(b"%06d" % sent + b"." * 1000)
        sent += 1
    assert transport.get_write_buffer_size() > 4096
    return transport, protocol, peer, sent


def test_close_while_queued_sends_the_queue_first(loop):
    transport, protocol, peer, sent = fill_queue(loop)
    assert protocol.calls == ["made", "pause"]
    transport.close()
    assert transport.is_closing() and not protocol.lost.done()
    received = []
    with peer:
        peer.setblocking(False)

        async def drain():
            while len(received) < sent:
                try:
                    received.append(peer.recv(2000))
                except BlockingIOError:
                    await asyncio.sleep(0.001)

        loop.run_until_complete(asyncio.wait_for(drain(), 20))
        assert loop.run_until_complete(protocol.lost) is None
    assert [int(data[:6]) for data in received] == list(range(sent))
    assert protocol.calls == ["made", "pause", "resume", "lost"]


def test_abort_drops_the_queue(loop):
    transport, protocol, peer, sent = fill_queue(loop)
    with peer:
        transport.abort()
        assert loop.run_until_complete(protocol.lost) is None
    assert protocol.calls == ["made", "pause", "lost"]
