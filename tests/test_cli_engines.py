"""``socketeer echo`` and ``socketeer relay`` run on the library's C++ engines (the reactor's
built-in echo, the FaultProxy's splice relay): real peers over every endpoint kind, --threads,
UDP relaying, half-close through the relay, and the proof that no thread is spent per connection
(the process's thread count does not grow with its connections)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

import socketeer
from socketeer.endpoints import Endpoint, parse_endpoint
from cli_run import TIMEOUT, cli_server, echo_server, reply_after_eof_server, run_cli, stop

RELAY_READY = r"relay: listening on (\S+), relaying to (\S+) \(Ctrl-C stops\)"


def threads_of(process: subprocess.Popen[str]) -> int:
    return len(os.listdir(f"/proc/{process.pid}/task"))


def round_trip(bound: Endpoint, message: bytes) -> bytes:
    """One message to ``bound`` and its echo, over a stdlib-compatible socketeer Socket."""
    address = bound.addresses()[0]
    with socketeer.Socket(address.family, bound.kind) as client:
        client.settimeout(TIMEOUT)
        if bound.is_unix and bound.kind == socket.SOCK_DGRAM:
            client.bind(socketeer.UnixAddress(""))  # autobind: an unnamed sender gets no reply
        client.connect(address)
        client.sendall(message)
        if bound.kind != socket.SOCK_STREAM:
            return client.recv(65536)
        reply = b""
        while len(reply) < len(message):
            chunk = client.recv(65536)
            assert chunk, "server closed early"
            reply += chunk
        return reply


def open_clients(address: tuple[str, int], count: int, stack: ExitStack) -> list[socket.socket]:
    """``count`` stdlib TCP connections that have each had one echo (so the server holds them)."""
    clients = []
    for number in range(count):
        client = stack.enter_context(socket.create_connection(address, timeout=TIMEOUT))
        client.sendall(b"%d" % number)
        assert client.recv(16) == b"%d" % number
        clients.append(client)
    return clients


# --- echo ------------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("template", ["tcp://127.0.0.1:0", "tcp://[::1]:0", "udp://127.0.0.1:0", "unix:{tmp}/e.sock",
                                      "unix:@socketeer-cli-engines-{pid}", "unix+seqpacket:{tmp}/s.sock",
                                      "unix+dgram:{tmp}/d.sock"])
def test_echo_on_every_endpoint_kind_and_threads(template: str, threads: str, short_tmp: Path) -> None:
    endpoint = template.format(tmp=short_tmp, pid=os.getpid())
    with echo_server(endpoint, "--threads", threads) as (process, bound):
        for size in (1, 1000, 60000):
            message = os.urandom(size)
            assert round_trip(bound, message) == message
        output = stop(process)
    assert "echo: stopped after" in output
    if bound.is_unix and not bound.abstract:
        assert bound.path and not os.path.exists(bound.path), "the socket file was left behind"


def test_echo_spends_no_thread_per_connection() -> None:
    """The reactor serves every connection from its loop: ten open connections, no new thread
    (the old server started one per connection)."""
    with echo_server("tcp://127.0.0.1:0") as (process, bound), ExitStack() as stack:
        before = threads_of(process)
        open_clients((bound.host or "", bound.port or 0), 10, stack)
        assert threads_of(process) == before
        stop(process)


def test_echo_threads_are_so_reuseport_reactors() -> None:
    """--threads 2: two listening sockets on one port (sock_diag shows them), one thread each."""
    with echo_server("tcp://127.0.0.1:0", "--threads", "2") as (process, bound):
        listening = [r for r in socketeer.sockets("tcp", state=[socketeer.TcpState.LISTEN], sport=bound.port)
                     if r.local.host == "127.0.0.1"]
        assert len(listening) == 2
        with ExitStack() as stack:
            open_clients(("127.0.0.1", bound.port or 0), 20, stack)
        stop(process)


def test_self_test_names_the_reactor() -> None:
    result = run_cli("echo", "--self-test", "--rounds", "5")
    assert result.returncode == 0, result.stderr
    assert "socketeer's reactor" in result.stdout.splitlines()[-1]


# --- relay -----------------------------------------------------------------------------------


@contextmanager
def relay(*args: str) -> Iterator[tuple[subprocess.Popen[str], Endpoint]]:
    with cli_server("relay", *args, ready=RELAY_READY) as (process, match):
        yield process, parse_endpoint(match.group(1))


def test_relay_tcp_to_a_real_echo_spends_no_thread_per_connection() -> None:
    with echo_server("tcp://127.0.0.1:0") as (echo, upstream), relay("tcp://127.0.0.1:0", str(upstream)) as (
            process, bound), ExitStack() as stack:
        before = threads_of(process)
        clients = open_clients(("127.0.0.1", bound.port or 0), 5, stack)
        assert threads_of(process) == before, "the relay started threads for its connections"
        big = os.urandom(1 << 20)
        sender = threading.Thread(target=clients[0].sendall, args=(big,))
        sender.start()
        got = bytearray()
        while len(got) < len(big):
            chunk = clients[0].recv(1 << 16)
            assert chunk
            got += chunk
        sender.join(TIMEOUT)
        assert bytes(got) == big
        for client in clients:
            client.close()
        output = stop(process)
        stop(echo)
    assert output.count("relaying to") == 5 and "relay: stopped" in output


def test_relay_udp_to_a_real_echo() -> None:
    with echo_server("udp://127.0.0.1:0") as (echo, upstream), relay("udp://127.0.0.1:0", str(upstream)) as (
            process, bound):
        assert bound.scheme == "udp"
        for _ in range(2):  # two clients: each gets its own replies
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(TIMEOUT)
                for message in (b"one", b"two" * 100):
                    client.sendto(message, ("127.0.0.1", bound.port))
                    assert client.recvfrom(65536) == (message, ("127.0.0.1", bound.port))
        assert "relay: stopped" in stop(process)
        stop(echo)


def test_relay_passes_half_close_both_ways(short_tmp: Path) -> None:
    """A stdlib client sends and shuts down its writing side; the upstream (a stdlib server)
    reads end of stream, answers and closes; the answer and then the end come back."""
    with reply_after_eof_server("unix:", short_tmp) as (target, received), \
            relay("--once", "tcp://127.0.0.1:0", target) as (process, bound):
        with socket.create_connection(("127.0.0.1", bound.port or 0), timeout=TIMEOUT) as client:
            client.sendall(b"x" * 300000)
            client.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := client.recv(65536):
                reply += chunk
        out, err = process.communicate(timeout=TIMEOUT)
    assert received == [b"x" * 300000] and reply == b"got 300000 bytes, then end of stream\n"
    assert process.returncode == 0, err
    assert "connection 1: relaying to" in out and "1 connection closed (0 open)" in out
