"""``socketeer echo``: an echo server on any endpoint, and ``--self-test``.

Both run socketeer's C++ reactor with its built-in echo (``Server(builtin="echo")``): no Python
runs per connection or message, so the command serves as fast as the library does
(benchmarks/run.py measures it as the server ``socketeer-cli-echo``). ``--threads N`` runs N
reactors (SO_REUSEPORT sockets on inet endpoints, one shared socket on unix ones)."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from ..constants import SOCK_DGRAM, SOCK_STREAM
from ..endpoints import Endpoint, parse_endpoint
from ..server import Server
from ..socket import Socket
from .common import ENDPOINT_FORMS, CommandError, endpoint_arg, fail, os_error, stopped_by_signals

__all__ = ["add_parser", "run", "open_server"]


def open_server(endpoint: Endpoint, threads: int = 1) -> tuple[Server, Endpoint]:
    """A built-in echo Server on ``endpoint`` (not running yet) and the endpoint it bound."""
    server = Server(builtin="echo", threads=threads)
    try:
        address = server.bind(endpoint) if endpoint.kind == SOCK_DGRAM else server.listen(endpoint)
    except BaseException:
        server.close()
        raise
    return server, Endpoint.from_address(address, endpoint.kind)


def serve_forever(endpoint: Endpoint, threads: int) -> int:
    def log(message: str) -> None:
        print(f"echo: {message}", flush=True)

    try:
        server, bound = open_server(endpoint, threads)
    except OSError as error:
        raise os_error("echo", endpoint, error) from None
    except ValueError as error:  # refused by the reactor: the endpoint, not the run, is wrong
        raise CommandError(f"echo: {error}", 2) from None
    try:
        try:
            with stopped_by_signals():
                log(f"listening on {bound} (Ctrl-C stops)")
                server.run()
        except KeyboardInterrupt:
            pass
        stats = server.stats()
    finally:
        server.close()  # also removes a unix socket file
    if endpoint.kind == SOCK_DGRAM:
        log(f"stopped after echoing {stats.get('datagrams', 0)} datagrams")
    else:
        log(f"stopped after {stats.get('accepted', 0)} connections, {stats.get('sent_bytes', 0)} bytes echoed")
    return 0


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
    """Starts the reactor's echo on ``endpoint``, makes ``rounds`` round trips to it with a plain
    socket, checks every reply and returns what happened."""
    server, bound = open_server(endpoint)
    with server:  # started in background threads, closed at the end
        address = bound.addresses()[0]
        report = TransportReport(bound, rounds, 0, 0, [])
        with Socket(address.family, bound.kind) as client:
            client.settimeout(5)
            client.connect(address)
            for number in range(rounds):
                message = f"{bound.scheme} echo {number}".encode()
                start = time.perf_counter_ns()
                reply = _round_trip(client, message)
                report.rtts_ns.append(time.perf_counter_ns() - start)
                if reply != message:
                    raise RuntimeError(f"sent {message!r}, got back {reply!r}")
                report.sent += len(message)
                report.received += len(reply)
    return report


def self_test(rounds: int) -> int:
    with tempfile.TemporaryDirectory(prefix="socketeer-", dir="/tmp") as directory:
        endpoints = [parse_endpoint("tcp://127.0.0.1:0"), parse_endpoint("udp://127.0.0.1:0"),
                     parse_endpoint(f"unix:{directory}/echo.sock")]
        for endpoint in endpoints:
            try:
                print(check_transport(endpoint, rounds), flush=True)
            except Exception as error:
                detail = f"{error}" if not isinstance(error, OSError) else f"{endpoint}: {error}"
                print(f"socketeer: echo: --self-test: {endpoint.scheme} failed: {type(error).__name__}: {detail}",
                      file=sys.stderr)
                return 1
    print(f"self-test passed: {', '.join(e.scheme for e in endpoints)} echo servers (socketeer's reactor) "
          "answered correctly")
    return 0


def add_parser(commands: Any) -> None:
    """Registers ``socketeer echo`` on the subcommand parsers."""
    echo = commands.add_parser("echo", help="run an echo server, or check that sockets work (--self-test)",
                               description="Serve echo on ENDPOINT until Ctrl-C with socketeer's C++ reactor "
                                           "(Server(builtin='echo')), or run a self-test.")
    echo.add_argument("endpoint", nargs="?", metavar="ENDPOINT",
                      help=f"{ENDPOINT_FORMS} (unix:@NAME is abstract; port 0 picks a free port; "
                           "IPv6 hosts in brackets: tcp://[::1]:0)")
    echo.add_argument("--threads", type=int, default=1, metavar="N",
                      help="run N reactors, the kernel spreading connections over them (1)")
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
    if args.threads < 1:
        return fail(f"echo: --threads must be at least 1, not {args.threads}")
    return serve_forever(endpoint_arg(args.endpoint, "echo"), args.threads)
