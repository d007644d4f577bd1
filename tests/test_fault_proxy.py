"""socketeer.FaultProxy with real peers on both sides: exact byte counts before a reset or close,
no SIGPIPE whatever the clients do, UDP reordering as documented, and faults refused where they
would mean nothing. (The schedule's arithmetic is unit-tested in cpp/tests/test_fault_schedule.cpp;
the pytest fixture is tested in test_plugin.py.)"""

from __future__ import annotations

import os
import threading

import pytest

import socketeer
from subprocess_env import run_with_sigpipe_at_default

STREAM = 1024 * 1024  # what the upstream sends on each connection


@pytest.fixture
def upstream(closing):
    return closing(socketeer.listen("tcp://127.0.0.1:0"))


@pytest.fixture
def proxy(closing, upstream):
    return closing(socketeer.FaultProxy(upstream.endpoint))


class _Sender(threading.Thread):
    """Sends `data` on `peer` from a thread; the reset that cuts it short is kept in `error`."""

    def __init__(self, peer: socketeer.Stream, data: bytes):
        super().__init__(daemon=True)
        self.peer, self.data = peer, data
        self.error: OSError | None = None

    def run(self) -> None:
        try:
            self.peer.send_all(self.data, timeout=30)
        except OSError as error:
            self.error = error


def _send_stream(peer: socketeer.Stream, data: bytes) -> _Sender:
    sender = _Sender(peer, data)
    sender.start()
    return sender


def _read_until_reset(stream: socketeer.Stream) -> bytes:
    received = bytearray()
    with pytest.raises(ConnectionResetError):
        while True:
            chunk = stream.recv(16 * 1024, timeout=20)
            if not chunk:
                break  # an orderly end: pytest.raises fails the test
            received += chunk
    return bytes(received)


# --- reset_after: exactly N bytes, then the reset ------------------------------------------------

@pytest.mark.parametrize("limit", [1000, 100_000, 400_000, STREAM - 1, STREAM])
def test_reset_after_delivers_exactly_n_bytes_to_a_slow_reader(proxy, upstream, wait_until, limit):
    """The reader takes nothing until the proxy has written all N bytes, so most of them still sit
    in the proxy's send queue (N larger than the socket buffers) when the reset is due: they
    must reach the reader before the RST. The sender is reset at once, without waiting."""
    proxy.reset_after(limit, direction="downstream")
    data = os.urandom(STREAM)
    with socketeer.connect(proxy.endpoint, timeout=10) as client, upstream.accept(timeout=10) as peer:
        sender = _send_stream(peer, data)
        wait_until(lambda: proxy.stats()["downstream_bytes"] >= limit, what=f"the proxy to write {limit} bytes")
        # The sender is reset: the kernel hands ECONNRESET to the first call that looks, this
        # recv or the sending thread's send; whichever it is, the other then sees the end.
        try:
            seen_by_recv = peer.recv(1, timeout=10)
        except ConnectionResetError as error:
            seen_by_recv = error
        received = _read_until_reset(client)
        sender.join(timeout=30)
    assert isinstance(seen_by_recv, ConnectionResetError) or (
        seen_by_recv == b"" and isinstance(sender.error, ConnectionResetError)), (seen_by_recv, sender.error)
    assert len(received) == limit
    assert received == data[:limit]


def test_reset_after_resets_a_receiver_that_never_reads(proxy, upstream, wait_until):
    """A receiver that takes nothing for 2 s is reset anyway: what it had not taken is lost."""
    proxy.reset_after(STREAM, direction="downstream")
    with socketeer.connect(proxy.endpoint, timeout=10) as client, upstream.accept(timeout=10) as peer:
        client.socket.setsockopt(socketeer.SOL_SOCKET, socketeer.SO_RCVBUF, 4096)
        sender = _send_stream(peer, os.urandom(STREAM))
        wait_until(lambda: proxy.stats()["active"] == 0, timeout=15, what="the proxy to give up and reset")
        received = _read_until_reset(client)
        sender.join(timeout=30)
    assert 0 < len(received) < STREAM


@pytest.mark.parametrize("limit", [400_000, STREAM - 1])
def test_close_after_delivers_exactly_n_bytes_then_the_end_of_stream(proxy, upstream, wait_until, limit):
    """The same for close_after, with a reader that also sends: data the proxy has not read from
    it makes a plain close() a RST, which would discard the proxy's send queue just the same."""
    proxy.close_after(limit, direction="downstream")
    data = os.urandom(STREAM)
    with socketeer.connect(proxy.endpoint, timeout=10) as client, upstream.accept(timeout=10) as peer:
        sender = _send_stream(peer, data)
        wait_until(lambda: proxy.stats()["downstream_bytes"] >= limit, what=f"the proxy to write {limit} bytes")
        client.send_all(b"unread by the proxy")
        received = bytearray()
        while chunk := client.recv(16 * 1024, timeout=20):
            received += chunk
        sender.join(timeout=30)
    assert len(received) == limit
    assert received == data[:limit]


# --- never SIGPIPE ----------------------------------------------------------------------------

def test_clients_resetting_mid_stream_never_kill_the_process_with_sigpipe():
    """The proxy's zero-copy path (splice, which has no MSG_NOSIGNAL) writes into a client that
    has reset: EPIPE, and a SIGPIPE for the proxy's thread, which must not end the process. (A
    reset after the client's FIN is reported as EPIPE rather than ECONNRESET by the first write.)"""
    done = run_with_sigpipe_at_default("""
        import socketeer
        echo = socketeer.Server(builtin="echo")
        echo.listen("tcp://127.0.0.1:0")
        payload = bytes(256 * 1024)
        with echo, socketeer.FaultProxy(echo.endpoint()) as proxy:
            for round in range(40):
                with socketeer.connect(proxy.endpoint, timeout=10) as client:
                    client.send_all(payload)
                    if round % 2:
                        client.close_write()   # FIN first: the proxy's side is in CLOSE_WAIT
                    client.recv_exactly(1024)  # the echo is flowing back through the splice path
                    client.abort()             # RST while the proxy still has echo to write
            with socketeer.connect(proxy.endpoint, timeout=10) as client:  # still serving
                client.send_all(b"ping")
                assert client.recv_exactly(4) == b"ping"
        print("alive")
    """)
    assert (done.returncode, done.stdout) == (0, "alive\n"), done.stderr


# --- UDP: reorder -------------------------------------------------------------------------------

@pytest.fixture
def udp_upstream(closing):
    return closing(socketeer.bind("udp://127.0.0.1:0", timeout=5))


@pytest.fixture
def udp_proxy(closing, udp_upstream):
    return closing(socketeer.FaultProxy(f"udp://{udp_upstream.address}"))


def test_reorder_one_swaps_every_pair_of_datagrams(udp_proxy, udp_upstream):
    udp_proxy.reorder(1.0, direction="upstream")
    with socketeer.bind("udp://127.0.0.1:0", timeout=5) as client:
        client.connect(udp_proxy.endpoint)
        client.send_batch([b"1", b"2", b"3", b"4", b"5", b"6"])  # one sendmmsg: they arrive together
        order = [udp_upstream.recv_from()[0] for _ in range(6)]
    assert order == [b"2", b"1", b"4", b"3", b"6", b"5"]
    assert udp_proxy.stats()["reordered"] == 3


def test_a_held_datagram_with_no_follower_goes_on_alone_and_is_not_counted(udp_proxy, udp_upstream):
    udp_proxy.reorder(1.0, direction="upstream")
    with socketeer.bind("udp://127.0.0.1:0", timeout=5) as client:
        client.connect(udp_proxy.endpoint)
        client.send(b"alone")
        assert udp_upstream.recv_from()[0] == b"alone"  # released after the 50 ms bound
    assert udp_proxy.stats()["reordered"] == 0


# --- faults that would mean nothing are refused ------------------------------------------------

@pytest.mark.parametrize("fault", ["drop", "duplicate", "reorder"])
def test_datagram_faults_on_a_tcp_proxy_raise(proxy, fault):
    with pytest.raises(ValueError, match=f"{fault}.*UDP"):
        getattr(proxy, fault)(0.5)
    assert proxy.faults()["upstream"][fault] == 0


@pytest.mark.parametrize("apply", [
    lambda p: p.set_bandwidth(1000),
    lambda p: p.slice(10),
    lambda p: p.reset_after(10),
    lambda p: p.close_after(10),
    lambda p: p.half_close(),
], ids=["bandwidth", "slice", "reset_after", "close_after", "half_close"])
def test_stream_faults_on_a_udp_proxy_raise(udp_proxy, apply):
    with pytest.raises(ValueError, match="TCP"):
        apply(udp_proxy)


# --- an upstream that refuses ------------------------------------------------------------------


def test_a_refused_upstream_connect_is_counted_with_its_errno(wait_until) -> None:
    """The client is reset, and stats() say why: connect_errors and the last connect_errno (what
    `socketeer relay` reports); the connection is no longer counted as active."""
    import errno
    import socket

    with socket.socket() as bound:  # bound, never listening: loopback refuses
        bound.bind(("127.0.0.1", 0))
        with socketeer.FaultProxy(f"tcp://127.0.0.1:{bound.getsockname()[1]}") as proxy:
            assert proxy.stats()["connect_errors"] == 0 and proxy.stats()["connect_errno"] == 0
            # The reset can beat the client's own connect() to the finish (seen under load): it is
            # the same verdict whichever call reports it.
            with pytest.raises(ConnectionResetError):
                with socketeer.connect(proxy.endpoint, timeout=10) as client:
                    client.recv(10, timeout=10)
            stats = wait_until(lambda: (s := proxy.stats())["active"] == 0 and s, what="the pair to end")
    assert (stats["connections"], stats["connect_errors"], stats["connect_errno"]) == (1, 1, errno.ECONNREFUSED)


# --- toxiproxy parity: slow_close, timeout, limit_data, down/up, black_hole on open connections --
# Both peers are the stdlib's sockets: the proxy is what is under test.

import socket as stdlib_socket
import time


@pytest.fixture
def std_upstream(closing):
    """A stdlib listener on 127.0.0.1, with a proxy in front of it: (listener, proxy)."""
    listener = closing(stdlib_socket.create_server(("127.0.0.1", 0)))
    listener.settimeout(10)
    proxy = closing(socketeer.FaultProxy(f"tcp://127.0.0.1:{listener.getsockname()[1]}"))
    return listener, proxy


def _std_pair(closing, listener, proxy):
    """A stdlib client connected through the proxy, and the upstream's side of it."""
    client = closing(stdlib_socket.create_connection((proxy.address.host, proxy.address.port), timeout=10))
    peer = closing(listener.accept()[0])
    peer.settimeout(10)
    return client, peer


def _exchange(client, peer) -> None:
    """One byte each way: the connection relays."""
    client.sendall(b"u")
    assert peer.recv(1) == b"u"
    peer.sendall(b"d")
    assert client.recv(1) == b"d"


def _nothing_arrives(sock, within: float = 0.3) -> bool:
    """True if ``sock`` gets nothing (no data, no end) for ``within`` seconds: a bounded wait."""
    sock.settimeout(within)
    try:
        sock.recv(1)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(10)
    return False


def test_slow_close_delays_the_end_of_stream_not_the_data(closing, std_upstream):
    listener, proxy = std_upstream
    proxy.slow_close(1.0, direction="downstream")
    client, peer = _std_pair(closing, listener, proxy)
    peer.sendall(b"bye")
    closed_at = time.monotonic()
    peer.close()
    assert client.recv(3) == b"bye"
    assert client.recv(1) == b""  # the FIN, held back by the proxy
    assert time.monotonic() - closed_at >= 1.0
    assert proxy.faults()["downstream"]["slow_close"] == 1.0


def test_timeout_stops_the_data_then_closes_the_connection(closing, std_upstream, wait_until):
    listener, proxy = std_upstream
    client, peer = _std_pair(closing, listener, proxy)
    _exchange(client, peer)  # open and relaying before the fault: it applies to open connections
    started = time.monotonic()
    proxy.timeout(1.0)
    client.sendall(b"stopped")
    wait_until(lambda: proxy.stats()["active"] == 0, what="the timeout to close the connection")
    assert time.monotonic() - started >= 1.0
    # The upstream never got the bytes; each side sees its connection end (FIN, or a RST where
    # the proxy left what it was sent unread).
    try:
        assert peer.recv(16) == b""
    except ConnectionResetError:
        pass
    assert proxy.stats()["upstream_bytes"] == 1


def test_timeout_zero_holds_the_data_until_the_fault_goes(closing, std_upstream):
    listener, proxy = std_upstream
    client, peer = _std_pair(closing, listener, proxy)
    _exchange(client, peer)
    proxy.timeout(0)
    client.sendall(b"held")
    peer.sendall(b"also held")
    assert _nothing_arrives(peer) and _nothing_arrives(client)
    assert proxy.stats()["active"] == 1
    proxy.clear()
    assert peer.recv(4) == b"held"  # the data waited, and flows on
    assert client.recv(9) == b"also held"
    _exchange(client, peer)


def test_limit_data_is_close_after_under_toxiproxys_name(closing, std_upstream):
    listener, proxy = std_upstream
    proxy.limit_data(5)
    assert proxy.faults()["downstream"]["close_after"] == 5
    client, peer = _std_pair(closing, listener, proxy)
    peer.sendall(b"0123456789")
    received = b""
    while chunk := client.recv(16):
        received += chunk
    assert received == b"01234"


def test_down_closes_connections_and_refuses_new_ones_up_serves_again(closing, std_upstream, wait_until):
    listener, proxy = std_upstream
    client, peer = _std_pair(closing, listener, proxy)
    _exchange(client, peer)
    endpoint = proxy.endpoint
    proxy.down()
    assert not proxy.enabled
    assert proxy.stats()["active"] == 0
    assert client.recv(1) == b""  # closed: an orderly end
    with pytest.raises(ConnectionRefusedError):
        stdlib_socket.create_connection((proxy.address.host, proxy.address.port), timeout=10).close()
    proxy.up()
    assert proxy.enabled and proxy.endpoint == endpoint
    again, again_peer = _std_pair(closing, listener, proxy)
    _exchange(again, again_peer)
    proxy.enabled = False  # the property is the same switch
    with pytest.raises(ConnectionRefusedError):
        stdlib_socket.create_connection((proxy.address.host, proxy.address.port), timeout=10).close()
    proxy.enabled = True
    _exchange(*_std_pair(closing, listener, proxy))


def test_up_names_the_address_when_the_port_was_taken(closing, std_upstream):
    listener, proxy = std_upstream
    proxy.down()
    thief = closing(stdlib_socket.socket())
    thief.bind((proxy.address.host, proxy.address.port))
    thief.listen()
    with pytest.raises(OSError, match=f"bind on 127.0.0.1:{proxy.address.port}") as error:
        proxy.up()
    assert error.value.errno == 98
    assert not proxy.enabled
    thief.close()
    proxy.up()
    _exchange(*_std_pair(closing, listener, proxy))


def test_black_hole_holds_open_connections_too(closing, std_upstream):
    listener, proxy = std_upstream
    client, peer = _std_pair(closing, listener, proxy)
    _exchange(client, peer)
    proxy.black_hole()
    client.sendall(b"into the hole")
    assert _nothing_arrives(peer)
    proxy.black_hole(False)
    assert peer.recv(13) == b"into the hole"
    _exchange(client, peer)


def test_black_hole_drops_udp_datagrams(udp_proxy, udp_upstream, wait_until):
    udp_proxy.black_hole()
    with socketeer.bind("udp://127.0.0.1:0", timeout=5) as client:
        client.connect(udp_proxy.endpoint)
        client.send(b"lost")
        wait_until(lambda: udp_proxy.stats()["datagrams"] == 1, what="the proxy to read the datagram")
        udp_proxy.black_hole(False)
        client.send(b"found")
        assert udp_upstream.recv_from()[0] == b"found"
    assert udp_proxy.stats()["dropped"] == 1


@pytest.mark.parametrize("apply", [lambda p: p.slow_close(1), lambda p: p.timeout(1), lambda p: p.limit_data(1)],
                         ids=["slow_close", "timeout", "limit_data"])
def test_toxiproxy_stream_faults_on_a_udp_proxy_raise(udp_proxy, apply):
    with pytest.raises(ValueError, match="TCP"):
        apply(udp_proxy)


@pytest.mark.parametrize("apply", [lambda p: p.slow_close(-1), lambda p: p.timeout(-0.5)], ids=["slow_close", "timeout"])
def test_negative_delays_raise(proxy, apply):
    with pytest.raises(ValueError, match=">= 0"):
        apply(proxy)
