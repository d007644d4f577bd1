"""Datagram over real loopback (UDP on 127.0.0.1 and ::1, unix datagram on paths and abstract
names) with stdlib peers: send_to/recv_from with Address objects, connected mode, sendmmsg and
recvmmsg batches, unix datagram replies to an autobound client, timeouts and bad input."""

from __future__ import annotations

import socket as stdlib
import time

import pytest

import socketeer
from socketeer import Inet6Address, InetAddress, UnixAddress

TIMEOUT = 10

pytestmark = pytest.mark.timeout(60)

UDP = [("udp://127.0.0.1:0", stdlib.AF_INET, "127.0.0.1", InetAddress),
       ("udp://[::1]:0", stdlib.AF_INET6, "::1", Inet6Address)]


@pytest.mark.parametrize("endpoint, family, host, address_type", UDP, ids=["v4", "v6"])
def test_send_to_and_recv_from_a_stdlib_peer(endpoint, family, host, address_type):
    with socketeer.bind(endpoint) as server, stdlib.socket(family, stdlib.SOCK_DGRAM) as peer:
        peer.bind((host, 0))
        peer.settimeout(TIMEOUT)
        assert isinstance(server.address, address_type) and server.address.port != 0
        peer.sendto(b"hello", server.address.to_tuple())
        data, sender = server.recv_from(timeout=TIMEOUT)
        assert data == b"hello"
        assert isinstance(sender, address_type)
        assert sender.to_tuple()[:2] == peer.getsockname()[:2]
        assert server.send_to(b"reply", sender) == 5
        assert peer.recvfrom(100) == (b"reply", server.address.to_tuple())


def test_send_to_accepts_address_strings_and_tuples():
    with socketeer.bind("udp://127.0.0.1:0") as a, socketeer.bind("udp://127.0.0.1:0") as b:
        a.send_to(b"1", b.address)
        a.send_to(b"2", str(b.address))
        a.send_to(b"3", b.address.to_tuple())
        assert [b.recv_from(timeout=TIMEOUT)[0] for _ in range(3)] == [b"1", b"2", b"3"]


def test_datagram_boundaries_and_truncation():
    with socketeer.bind("udp://127.0.0.1:0") as a, socketeer.bind("udp://127.0.0.1:0") as b:
        a.send_to(b"", b.address)
        a.send_to(b"x" * 100, b.address)
        assert b.recv_from(timeout=TIMEOUT)[0] == b""
        assert b.recv_from(10, timeout=TIMEOUT)[0] == b"x" * 10  # the rest of the datagram is gone
        a.send_to(b"next", b.address)
        assert b.recv_from(timeout=TIMEOUT)[0] == b"next"


def test_connected_udp():
    with socketeer.bind("udp://127.0.0.1:0") as server, socketeer.bind("udp://127.0.0.1:0") as stranger:
        with socketeer.connect(server.endpoint, timeout=TIMEOUT) as client:
            assert client.peer_address == server.address
            client.send(b"ping")
            data, sender = server.recv_from(timeout=TIMEOUT)
            assert (data, sender) == (b"ping", client.address)
            stranger.send_to(b"not for you", client.address)  # dropped: not the connected peer
            server.send_to(b"pong", sender)
            assert client.recv(timeout=TIMEOUT) == b"pong"
            with pytest.raises(TimeoutError):
                client.recv(timeout=0.1)


def test_connect_an_existing_datagram():
    with socketeer.bind("udp://127.0.0.1:0") as a, socketeer.bind("udp://127.0.0.1:0") as b:
        a.connect(b.address)
        b.connect(f"udp://{a.address}")
        a.send(b"one")
        assert b.recv(timeout=TIMEOUT) == b"one"
        b.send(b"two")
        assert a.recv(timeout=TIMEOUT) == b"two"


def test_connected_udp_to_a_closed_port_reports_refused():
    with socketeer.bind("udp://127.0.0.1:0") as gone:
        endpoint = gone.endpoint
    with socketeer.connect(endpoint, timeout=TIMEOUT) as client:
        client.send(b"anyone?")
        with pytest.raises(ConnectionRefusedError):  # the ICMP port unreachable, reported on recv
            client.recv(timeout=TIMEOUT)


# --- batches -----------------------------------------------------------------------------------

def test_send_batch_and_recv_batch():
    with socketeer.bind("udp://127.0.0.1:0") as a, socketeer.bind("udp://127.0.0.1:0") as b:
        messages = [(f"message {i}".encode(), b.address) for i in range(10)]
        assert a.send_batch(messages) == 10
        received = []
        while len(received) < 10:
            received += b.recv_batch(max_messages=64, timeout=TIMEOUT)
        assert received == [(data, a.address) for data, _ in messages]


def test_recv_batch_takes_at_most_max_messages_and_truncates_at_max_size():
    with socketeer.bind("udp://127.0.0.1:0") as a, socketeer.bind("udp://127.0.0.1:0") as b:
        assert a.send_batch([(b"abcdef", b.address)] * 5) == 5
        first = b.recv_batch(max_messages=3, max_size=4, timeout=TIMEOUT)
        assert 1 <= len(first) <= 3
        assert all(data == b"abcd" for data, _ in first)
        rest = []
        while len(first) + len(rest) < 5:
            rest += b.recv_batch(max_messages=3, max_size=4, timeout=TIMEOUT)
        assert len(first) + len(rest) == 5


def test_batch_from_a_stdlib_sender():
    with socketeer.bind("udp://[::1]:0") as server, stdlib.socket(stdlib.AF_INET6, stdlib.SOCK_DGRAM) as peer:
        peer.bind(("::1", 0))
        for i in range(4):
            peer.sendto(bytes([i]) * (i + 1), server.address.to_tuple())
        received = []
        while len(received) < 4:
            received += server.recv_batch(timeout=TIMEOUT)
        assert [data for data, _ in received] == [b"\0", b"\1\1", b"\2\2\2", b"\3\3\3\3"]
        assert {sender.port for _, sender in received} == {peer.getsockname()[1]}


def test_connected_send_batch_takes_bare_payloads():
    with socketeer.bind("udp://127.0.0.1:0") as server:
        with socketeer.connect(server.endpoint, timeout=TIMEOUT) as client:
            assert client.send_batch([b"a", b"b", b"c"]) == 3
            received = []
            while len(received) < 3:
                received += server.recv_batch(timeout=TIMEOUT)
            assert [data for data, _ in received] == [b"a", b"b", b"c"]


def test_empty_send_batch_sends_nothing():
    with socketeer.bind("udp://127.0.0.1:0") as a:
        assert a.send_batch([]) == 0


# --- unix datagram -----------------------------------------------------------------------------

def test_unix_datagram_client_autobinds_so_the_server_can_reply(short_tmp):
    path = short_tmp / "d.sock"
    with socketeer.bind(f"unix+dgram:{path}") as server:
        assert server.address == UnixAddress(str(path))
        assert server.endpoint == f"unix+dgram:{path}"
        with socketeer.connect(server.endpoint, timeout=TIMEOUT) as client:
            assert client.address.abstract and client.address.path  # autobound to a fresh name
            client.send(b"question")
            data, sender = server.recv_from(timeout=TIMEOUT)
            assert (data, sender) == (b"question", client.address)
            server.send_to(b"answer", sender)
            assert client.recv(timeout=TIMEOUT) == b"answer"
    assert not path.exists()  # the socket file goes with the Datagram


def test_unix_datagram_abstract_and_empty_endpoint():
    with socketeer.bind("unix+dgram:@socketeer-test-dgram") as server, socketeer.bind("unix+dgram:") as client:
        assert server.address == UnixAddress("socketeer-test-dgram", abstract=True)
        assert client.address.abstract  # empty path: autobind
        client.send_to(b"hi", server.address)
        data, sender = server.recv_from(timeout=TIMEOUT)
        assert (data, sender) == (b"hi", client.address)
        server.send_to(b"back", sender)
        assert client.recv_from(timeout=TIMEOUT) == (b"back", server.address)


def test_unix_datagram_from_an_unnamed_stdlib_sender_has_no_address():
    with socketeer.bind("unix+dgram:@socketeer-test-unnamed") as server:
        with stdlib.socket(stdlib.AF_UNIX, stdlib.SOCK_DGRAM) as peer:
            peer.sendto(b"anonymous", b"\0socketeer-test-unnamed")
            assert server.recv_from(timeout=TIMEOUT) == (b"anonymous", None)


def test_unix_datagram_batches():
    with socketeer.bind("unix+dgram:@socketeer-test-batch") as server, socketeer.bind("unix+dgram:") as client:
        assert client.send_batch([(b"x", server.address), (b"yy", server.address)]) == 2
        received = []
        while len(received) < 2:
            received += server.recv_batch(timeout=TIMEOUT)
        assert received == [(b"x", client.address), (b"yy", client.address)]


# --- options, timeouts, bad input --------------------------------------------------------------

def test_broadcast_option():
    with socketeer.bind("udp://127.0.0.1:0") as a:
        assert a.socket.getsockopt(stdlib.SOL_SOCKET, stdlib.SO_BROADCAST) == 0
        a.set_broadcast()
        assert a.socket.getsockopt(stdlib.SOL_SOCKET, stdlib.SO_BROADCAST) == 1
        a.set_broadcast(False)
        assert a.socket.getsockopt(stdlib.SOL_SOCKET, stdlib.SO_BROADCAST) == 0


def test_multicast_join_and_leave():
    with socketeer.bind("udp://127.0.0.1:0") as v4:
        v4.join_group("239.255.0.1", "127.0.0.1")
        v4.leave_group("239.255.0.1", "127.0.0.1")
        with pytest.raises(OSError):
            v4.leave_group("239.255.0.1", "127.0.0.1")  # not a member any more
        with pytest.raises(OSError):
            v4.join_group("127.0.0.1", "127.0.0.1")  # not a multicast group
    with socketeer.bind("udp://[::1]:0") as v6:
        v6.join_group("ff02::1:3", "lo")
        v6.leave_group("ff02::1:3", "lo")


def test_recv_timeouts_are_bounded():
    with socketeer.bind("udp://127.0.0.1:0", timeout=0.2) as a:
        assert a.timeout == 0.2
        for call in (a.recv_from, a.recv_batch):
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                call()
            assert 0.18 <= time.monotonic() - started < 2.2
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            a.recv_from(timeout=0.05)  # a per-call timeout overrides the default
        assert time.monotonic() - started < 0.2 + 2


@pytest.mark.parametrize("call, error", [
    (lambda d: d.recv_batch(0), ValueError),
    (lambda d: d.recv_batch(4, 0), ValueError),
    (lambda d: d.recv_batch(-1), ValueError),
    (lambda d: d.recv_batch(4, -1), ValueError),
    (lambda d: d.recv_from(-1), ValueError),
    (lambda d: d.send_batch(["text"]), TypeError),
    (lambda d: d.send_to("text", "127.0.0.1:9"), TypeError),
    (lambda d: d.send_to(b"x", "no port"), ValueError),
    (lambda d: d.send(b"x"), OSError),  # not connected
    (lambda d: d.recv_from(timeout=-1), ValueError),
])
def test_bad_arguments(call, error):
    with socketeer.bind("udp://127.0.0.1:0") as datagram:
        with pytest.raises(error):
            call(datagram)


def test_use_after_close():
    datagram = socketeer.bind("udp://127.0.0.1:0")
    datagram.close()
    assert datagram.closed and "closed" in repr(datagram)
    with pytest.raises(OSError):
        datagram.send_to(b"x", "127.0.0.1:9")
    datagram.close()  # idempotent
