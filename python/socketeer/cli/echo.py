"""``socketeer echo``: an echo server on any endpoint, and ``--self-test``.

Servers use one thread per connection: simple and plenty for a diagnostic tool."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..constants import AF_UNIX, SHUT_RDWR, SO_REUSEADDR, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET
from ..endpoints import Endpoint, parse_endpoint
from ..socket import Socket
from .common import ENDPOINT_FORMS, fail, stopped_by_signals

__all__ = ["add_parser", "run"]


def open_server(endpoint: Endpoint) -> Socket:
    """A socket bound to ``endpoint`` (and listening, unless it is a datagram one)."""
    address = endpoint.addresses()[0]
    sock = Socket(address.family, endpoint.kind)
    try:
        if address.family != AF_UNIX and endpoint.kind == SOCK_STREAM:
            sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
        sock.bind(address)
        if endpoint.kind != SOCK_DGRAM:
            sock.listen()
    except BaseException:
        sock.close()
        raise
    return sock


def echo_stream(conn: Socket) -> int:
    """Echoes one connection until the peer closes; returns the byte count."""
    total = 0
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
            total += len(data)
    return total


def serve_datagrams(sock: Socket, messages: Optional[int] = None) -> None:
    """Sends every datagram back to its sender; stops after ``messages`` (None: never)."""
    count = 0
    while messages is None or count < messages:
        data, sender = sock.recvfrom(65536)
        sock.sendto(data, sender)
        count += 1


def serve_streams(listener: Socket, log: Callable[[str], None]) -> None:
    """Accepts forever, one thread per connection. On the way out (Ctrl-C), open connections
    are shut down so their threads finish."""
    connections: set[Socket] = set()
    threads: list[threading.Thread] = []

    def run(conn: Socket, peer: Any) -> None:
        try:
            log(f"{peer}: closed after echoing {echo_stream(conn)} bytes")
        except OSError as error:
            log(f"{peer}: {error}")
        finally:
            connections.discard(conn)

    try:
        while True:
            conn, peer = listener.accept()
            log(f"{peer}: connected")
            connections.add(conn)
            threads = [thread for thread in threads if thread.is_alive()]
            threads.append(threading.Thread(target=run, args=(conn, peer), daemon=True))
            threads[-1].start()
    finally:
        for conn in list(connections):
            try:
                conn.shutdown(SHUT_RDWR)
            except OSError:  # closed by its thread meanwhile
                pass
        for thread in threads:
            thread.join(timeout=1)



def serve_forever(endpoint: Endpoint) -> int:
    def log(message: str) -> None:
        print(f"echo: {message}", flush=True)

    sock = open_server(endpoint)
    bound = Endpoint.from_address(sock.local_address, endpoint.kind)
    try:
        with stopped_by_signals():
            log(f"listening on {bound} (Ctrl-C stops)")
            if endpoint.kind == SOCK_DGRAM:
                serve_datagrams(sock)
            else:
                serve_streams(sock, log)
    except KeyboardInterrupt:
        log("stopped")
    finally:
        sock.close()
        _remove_socket_file(bound)
    return 0


def _remove_socket_file(endpoint: Endpoint) -> None:
    if endpoint.is_unix and not endpoint.abstract and endpoint.path:
        try:
            os.unlink(endpoint.path)
        except FileNotFoundError:
            pass



# --- self-test -------------------------------------------------------------------------------


@dataclass
class TransportReport:
    endpoint: Endpoint
    rounds: int
    sent: int
    received: int
    rtts_ns: list[int]

    def __str__(self) -> str:
        median = statistics.median(self.rtts_ns) / 1000
        return (f"{self.endpoint.scheme:<5} {str(self.endpoint):<40} {self.rounds} round trips: "
                f"sent {self.sent} B, received {self.received} B, "
                f"rtt median {median:.1f} µs (min {min(self.rtts_ns) / 1000:.1f} µs)")


def _serve_in_thread(server: Socket, endpoint: Endpoint, rounds: int) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            if endpoint.kind == SOCK_DGRAM:
                serve_datagrams(server, rounds)
            else:
                conn, _ = server.accept()
                conn.settimeout(5)
                echo_stream(conn)
        except BaseException as error:  # reported by the client side
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def _round_trip(client: Socket, message: bytes) -> bytes:
    if client.type_number != SOCK_STREAM:  # datagrams and seqpackets: one message, one reply
        client.send(message)
        return client.recv(65536)
    client.sendall(message)
    reply = b""
    while len(reply) < len(message):
        chunk = client.recv(len(message) - len(reply))
        if not chunk:
            raise ConnectionError(f"server closed after {len(reply)} of {len(message)} bytes")
        reply += chunk
    return reply


def check_transport(endpoint: Endpoint, rounds: int) -> TransportReport:
    """Starts an echo server on ``endpoint``, makes ``rounds`` round trips to it, checks every
    reply and returns what happened."""
    with open_server(endpoint) as server:
        server.settimeout(5)
        bound = Endpoint.from_address(server.local_address, endpoint.kind)
        thread, errors = _serve_in_thread(server, endpoint, rounds)
        report = TransportReport(bound, rounds, 0, 0, [])
        with Socket(server.family, server.type) as client:
            client.settimeout(5)
            client.connect(server.local_address)
            for number in range(rounds):
                message = f"{bound.scheme} echo {number}".encode()
                start = time.perf_counter_ns()
                reply = _round_trip(client, message)
                report.rtts_ns.append(time.perf_counter_ns() - start)
                if reply != message:
                    raise RuntimeError(f"sent {message!r}, got back {reply!r}")
                report.sent += len(message)
                report.received += len(reply)
        thread.join(5)
        if errors:
            raise errors[0]
        if thread.is_alive():
            raise RuntimeError("the server did not finish")
    return report


def self_test(rounds: int) -> int:
    with tempfile.TemporaryDirectory(prefix="socketeer-", dir="/tmp") as directory:
        endpoints = [parse_endpoint("tcp://127.0.0.1:0"), parse_endpoint("udp://127.0.0.1:0"),
                     parse_endpoint(f"unix:{directory}/echo.sock")]
        for endpoint in endpoints:
            try:
                print(check_transport(endpoint, rounds), flush=True)
            except Exception as error:
                print(f"socketeer echo --self-test: {endpoint.scheme} failed: {type(error).__name__}: {error}",
                      file=sys.stderr)
                return 1
    print(f"self-test passed: {', '.join(e.scheme for e in endpoints)} echo servers answered correctly")
    return 0


def add_parser(commands: Any) -> None:
    """Registers ``socketeer echo`` on the subcommand parsers."""
    echo = commands.add_parser("echo", help="run an echo server, or check that sockets work (--self-test)",
                               description="Serve echo on ENDPOINT until Ctrl-C, or run a self-test.")
    echo.add_argument("endpoint", nargs="?", metavar="ENDPOINT",
                      help=f"{ENDPOINT_FORMS} (unix:@NAME is abstract; port 0 picks a free port; "
                           "IPv6 hosts in brackets: tcp://[::1]:0)")
    echo.add_argument("--self-test", action="store_true",
                      help="start echo servers on loopback over TCP, UDP and a unix socket, talk to each, report")
    echo.add_argument("--rounds", type=int, default=100, help="round trips per transport in --self-test (100)")


def run(args: argparse.Namespace) -> int:
    if args.self_test:
        if args.endpoint is not None:
            return fail("echo: give an ENDPOINT or --self-test, not both")
        if args.rounds < 1:
            return fail("echo: --rounds must be at least 1")
        return self_test(args.rounds)
    if args.endpoint is None:
        return fail(f"echo: give an ENDPOINT to serve ({ENDPOINT_FORMS}) or --self-test")
    try:
        endpoint = parse_endpoint(args.endpoint)
    except ValueError as error:
        return fail(f"echo: {error}")
    try:
        return serve_forever(endpoint)
    except OSError as error:
        print(f"socketeer: echo: cannot serve on {endpoint}: {error}", file=sys.stderr)
        return 1
