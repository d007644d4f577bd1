"""Endpoints added to a socketeer.Server that is already running: listen() and bind() after
start(), inside ``with Server(...)``, from a handler, and racing stop() and close().

The reactor's loop thread owns its tables while it runs, so an endpoint added from another
thread is handed to it (adopted in its next turn). Each test repeats the racy step many times,
right after start() (when the loop thread may or may not be in its loop yet), so a behaviour
that depended on thread timing shows. Synchronisation is by what clients receive, never by
sleeping.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

import pytest

from socketeer.server import Server
from test_server import DEADLINE, client, recv_exactly

ROUNDS = 25
STREAMS = ["tcp://127.0.0.1:0", "tcp://[::1]:0", "unix:{tmp}/s{n}", "unix+seqpacket:@socketeer-live-{pid}-{n}"]
DATAGRAMS = ["udp://127.0.0.1:0", "unix+dgram:{tmp}/d{n}"]


def endpoint(template: str, short_tmp: Any, n: int) -> str:
    return template.format(tmp=short_tmp, pid=os.getpid(), n=n)


class Echo:
    """Echoes stream messages and datagrams, from Python."""

    def on_message(self, conn: Any, data: bytes) -> None:
        conn.send(data)

    def on_datagram(self, endpoint: Any, data: bytes, address: Any) -> None:
        endpoint.send_to(data, address)


def stream_round_trip(server: Server, index: int, kind: int) -> None:
    with client(server, index, kind) as sock:
        sock.sendall(b"ping %d" % index)
        assert recv_exactly(sock, len(b"ping %d" % index)) == b"ping %d" % index


def datagram_round_trip(address: Any, short_tmp: Any, n: int) -> None:
    if address.family == socket.AF_UNIX:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(f"{short_tmp}/c{n}")  # a unix datagram reply needs an address to go to
            sock.settimeout(DEADLINE)
            sock.sendto(b"datagram", address.path)
            assert sock.recv(100) == b"datagram"
        return
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(DEADLINE)
        sock.sendto(b"datagram", (address.host, address.port))
        assert sock.recv(100) == b"datagram"


@pytest.mark.parametrize("template", STREAMS)
@pytest.mark.parametrize("builtin", [True, False], ids=["builtin", "python"])
def test_listen_right_after_start_is_served(template: str, builtin: bool, short_tmp: Any) -> None:
    kind = socket.SOCK_SEQPACKET if "seqpacket" in template else socket.SOCK_STREAM
    for n in range(ROUNDS):
        with Server(builtin="echo") if builtin else Server(Echo()) as server:  # started by with
            server.listen(endpoint(template, short_tmp, n))
            stream_round_trip(server, 0, kind)


@pytest.mark.parametrize("template", DATAGRAMS)
def test_bind_right_after_start_is_served(template: str, short_tmp: Any) -> None:
    for n in range(ROUNDS):
        with Server(Echo()) as server:
            address = server.bind(endpoint(template, short_tmp, n))
            datagram_round_trip(address, short_tmp, n)
            # the handle's address is read from the reactor, from this thread, while it runs
            assert server.datagram_endpoints()[0].address == address


def test_endpoints_added_while_connections_are_open(short_tmp: Any) -> None:
    """Endpoints added one after another to a server with open connections (two reactors, so
    each endpoint is one SO_REUSEPORT socket per loop), each served at once; the earlier
    connection stays served meanwhile, and datagram handles find their own endpoints."""
    with Server(Echo(), threads=2) as server:
        server.listen("tcp://127.0.0.1:0")
        first = client(server, 0)
        bound = []
        try:
            for n in range(10):
                server.listen("tcp://127.0.0.1:0")
                stream_round_trip(server, len(server.addresses) - 1, socket.SOCK_STREAM)
                bound.append(server.bind("udp://127.0.0.1:0"))
                datagram_round_trip(bound[-1], short_tmp, n)
                first.sendall(b"still here")
                assert recv_exactly(first, 10) == b"still here"
            assert [handle.address for handle in server.datagram_endpoints()] == bound
        finally:
            first.close()


def test_listen_from_a_handler(short_tmp: Any) -> None:
    """A handler (on the loop thread itself) adds an endpoint and tells the client where."""

    class Opener:
        server: Server

        def on_message(self, conn: Any, data: bytes) -> None:
            conn.send(str(self.server.listen(f"unix:{short_tmp}/{data.decode()}")).encode())

    handler = Opener()
    with Server(handler) as server:
        handler.server = server
        server.listen("tcp://127.0.0.1:0")
        with client(server) as sock:
            sock.sendall(b"opened")
            assert sock.recv(200) == f"unix:{short_tmp}/opened".encode()
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(DEADLINE)
            sock.connect(f"{short_tmp}/opened")  # served by the same handler
            sock.sendall(b"nested")
            assert sock.recv(200) == f"unix:{short_tmp}/nested".encode()


def test_stop_racing_listen_loses_no_endpoint(short_tmp: Any) -> None:
    """listen() in one thread while another stops the server: every endpoint that listen()
    returned is served once the server is started again."""
    server = Server(builtin="echo")
    try:
        for n in range(ROUNDS):
            server.start()
            adder = threading.Thread(target=server.listen, args=(endpoint("unix:{tmp}/s{n}", short_tmp, n),))
            adder.start()
            server.stop()
            adder.join(DEADLINE)
        server.start()
        assert len(server.addresses) == ROUNDS
        for index in range(ROUNDS):
            stream_round_trip(server, index, socket.SOCK_STREAM)
    finally:
        server.close()


def test_close_racing_listen_leaves_nothing_behind(short_tmp: Any) -> None:
    """listen() in one thread while another closes the server: each call either adds its
    endpoint (closed with the server) or raises ValueError naming the closed server; no
    socket file or fd is left behind either way."""
    for round_ in range(ROUNDS):
        server = Server(builtin="echo").start()
        outcomes: list[Any] = []

        def add_many() -> None:
            for n in range(20):
                try:
                    outcomes.append(server.listen(f"unix:{short_tmp}/r{round_}-{n}"))
                except ValueError as error:
                    outcomes.append(error)

        adder = threading.Thread(target=add_many)
        adder.start()
        server.close()
        adder.join(DEADLINE)
        assert not adder.is_alive()
        refused = [o for o in outcomes if isinstance(o, ValueError)]
        assert all("the server is closed" in str(error) for error in refused), refused
        assert len(outcomes) == 20
        assert os.listdir(short_tmp) == []


def test_listen_after_close_raises(short_tmp: Any) -> None:
    server = Server(builtin="echo")
    server.close()
    with pytest.raises(ValueError, match=r"cannot listen on unix:.*: the server is closed"):
        server.listen(f"unix:{short_tmp}/late")
    with pytest.raises(ValueError, match=r"cannot bind udp://127.0.0.1:0: the server is closed"):
        server.bind("udp://127.0.0.1:0")
    assert os.listdir(short_tmp) == []
