"""The ``socketeer`` command line.

    socketeer connect ENDPOINT        netcat-like: stdin to the socket, the socket to stdout; stdin's
                                      end half-closes the stream, the peer's end ends the program
                                      (udp:// and unix+dgram: each stdin line is one datagram)
    socketeer relay A B               socat-like: listen on A, connect each client to B, copy both
                                      ways, passing each half-close on
    socketeer info ENDPOINT           the addresses an endpoint names (host names resolved)
    socketeer bench [ARGS...]         the side-by-side benchmarks (benchmarks/run.py, source tree only)
    socketeer echo --self-test        start echo servers on loopback (TCP, UDP, a unix stream
                                      socket), talk to each, print what happened, exit 0 if all
                                      answered correctly
    socketeer echo tcp://HOST:PORT    serve echo until Ctrl-C (also udp://HOST:PORT, unix:PATH,
                                      unix+seqpacket:PATH, unix:@NAME for the abstract namespace;
                                      see socketeer.endpoints); port 0 picks one, and the first
                                      line printed names the address really bound

Servers use one thread per connection: simple and plenty for a diagnostic tool.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Optional, Union

from .constants import (AF_UNIX, SHUT_RDWR, SO_REUSEADDR, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, AddressFamily,
                        SocketKind)
from .endpoints import Endpoint, parse_endpoint
from .poller import EVENT_READ, Poller
from .socket import Socket
from .streams import Datagram, Listener, Stream, connect, listen

__all__ = ["main"]

_ENDPOINT_FORMS = "tcp://HOST:PORT, udp://HOST:PORT, unix:PATH or unix+seqpacket:PATH"
_ANY_ENDPOINT = "tcp://HOST:PORT, udp://HOST:PORT, unix:PATH, unix+dgram:PATH or unix+seqpacket:PATH"


# --- echo servers ----------------------------------------------------------------------------


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


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM (kill) both raise KeyboardInterrupt inside the block, even
    when the program was started with SIGINT ignored (as `cmd &` is)."""

    def stop(signum: int, frame: Any) -> NoReturn:
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


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


# --- connect ---------------------------------------------------------------------------------


class CommandError(Exception):
    """Ends a subcommand with one line on stderr and a non-zero exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def endpoint_arg(text: str, command: str) -> Endpoint:
    try:
        return parse_endpoint(text)
    except ValueError as error:
        raise CommandError(f"{command}: {error}", 2) from None


def _write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


class StdinPump:
    """Reads stdin in a thread and hands each chunk to ``send``; calls ``end(error)`` once, when
    stdin ends or reading or sending fails.

    Only the stdin read runs outside the lock, and ``stop()`` takes the lock, so once it returns
    no thread is inside a socket call: a daemon thread caught in the C++ core at interpreter exit
    would abort the process. A thread still waiting for stdin is harmless and left behind."""

    def __init__(self, read: Callable[[], bytes], send: Callable[[bytes], object],
                 end: Callable[[Optional[OSError]], None]):
        self._read, self._send, self._end = read, send, end
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> "StdinPump":
        threading.Thread(target=self._run, daemon=True, name="socketeer-stdin").start()
        return self

    def _run(self) -> None:
        error: Optional[OSError] = None
        try:
            while data := self._read():
                with self._lock:
                    if self._stopped:
                        return
                    self._send(data)
        except OSError as failure:
            error = failure
        with self._lock:
            if not self._stopped:
                self._end(error)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True


def _half_close(stream: Stream, error: Optional[OSError]) -> None:
    """At the end of stdin, the peer reads end of stream. A failed send is left for the receiving
    side to report: a reset shows there too."""
    if error is None:
        try:
            stream.close_write()
        except OSError:
            pass


def stream_with_stdio(stream: Stream) -> None:
    """stdin to the stream (in a thread), the stream to stdout, until the peer closes."""
    pump = StdinPump(lambda: os.read(0, 65536), stream.send_all, lambda error: _half_close(stream, error)).start()
    try:
        while data := stream.recv(65536):
            _write_stdout(data)
    finally:
        try:
            stream.socket.shutdown(SHUT_RDWR)  # ends a send the pump may be blocked in
        except OSError:
            pass
        pump.stop()


def datagrams_with_stdio(datagram: Datagram, wait: float) -> None:
    """Each stdin line out as a datagram, each reply to stdout; ends ``wait`` seconds after
    stdin ended and the last reply came."""
    ended: list[Optional[OSError]] = []

    def end(error: Optional[OSError]) -> None:
        ended.append(error)
        poller.wake()

    with Poller() as poller:
        poller.register(datagram.socket, EVENT_READ)
        pump = StdinPump(lambda: sys.stdin.buffer.readline(65536), datagram.send, end).start()
        deadline: Optional[float] = None
        try:
            while deadline is None or time.monotonic() < deadline:
                timeout = None if deadline is None else deadline - time.monotonic()
                replied = bool(poller.poll(timeout))
                if replied:
                    _write_stdout(datagram.recv())  # readable: never blocks (an ICMP error raises)
                if ended and ended[0] is not None:
                    raise ended[0]
                if ended and (replied or deadline is None):
                    deadline = time.monotonic() + wait
        finally:
            pump.stop()
            poller.unregister(datagram.socket)


def connect_command(args: argparse.Namespace) -> int:
    endpoint = endpoint_arg(args.endpoint, "connect")
    try:
        peer: Union[Stream, Datagram] = connect(endpoint, timeout=args.timeout)
    except OSError as error:
        raise CommandError(f"connect: cannot connect to {endpoint}: {_reason(error)}") from None
    with peer:
        try:
            if isinstance(peer, Datagram):
                datagrams_with_stdio(peer, args.wait)
            else:
                stream_with_stdio(peer)
        except OSError as error:
            raise CommandError(f"connect: {endpoint}: {_reason(error)}") from None
    return 0


def _reason(error: OSError) -> str:
    """An OSError as one short line: '[Errno 111] Connection refused' without the repeated context."""
    if error.errno is not None and error.strerror:
        return f"[Errno {error.errno}] {error.strerror}"
    return str(error) or type(error).__name__


# --- relay -----------------------------------------------------------------------------------


def _shutdown(stream: Stream) -> None:
    try:
        stream.socket.shutdown(SHUT_RDWR)
    except OSError:  # not connected any more
        pass


def _pump(source: Stream, sink: Stream) -> None:
    """Copies source to sink; source's end becomes sink's half-close. An error (a reset) ends
    both directions: shutting both streams down wakes the other pump."""
    try:
        while data := source.recv(65536):
            sink.send_all(data)
        sink.close_write()
    except OSError:
        _shutdown(source)
        _shutdown(sink)


def splice(client: Stream, upstream: Stream) -> None:
    """Copies both ways until both directions have ended, then closes both streams."""
    with client, upstream:
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True, name="socketeer-relay")
        back.start()
        _pump(client, upstream)
        back.join()


class Relay:
    """Accepts on a listener and splices each client to a fresh connection to ``target``."""

    def __init__(self, listener: Listener, target: Endpoint, log: Callable[[str], None]):
        self.listener, self.target, self.log = listener, target, log
        self._active: set[Stream] = set()
        self._threads: list[threading.Thread] = []
        self._count = 0

    def open_upstream(self, client: Stream) -> tuple[str, Optional[Stream]]:
        self._count += 1
        name = f"connection {self._count} from {_peer(client)}"
        try:
            upstream = connect(self.target, timeout=10)
        except OSError as error:
            self.log(f"{name}: cannot connect to {self.target}: {_reason(error)}")
            client.close()
            return name, None
        self.log(f"{name}: relaying to {self.target}")
        return name, upstream

    def run_one(self, name: str, client: Stream, upstream: Stream) -> None:
        self._active.update((client, upstream))
        try:
            splice(client, upstream)
        finally:
            self._active.difference_update((client, upstream))
        self.log(f"{name}: closed")

    def serve(self, once: bool) -> bool:
        """Relays until stopped (or one connection with ``once``); False if ``once`` failed."""
        for client in self.listener:
            name, upstream = self.open_upstream(client)
            if once:
                if upstream is not None:
                    self.run_one(name, client, upstream)
                return upstream is not None
            if upstream is not None:
                self._threads = [thread for thread in self._threads if thread.is_alive()]
                self._threads.append(threading.Thread(target=self.run_one, args=(name, client, upstream),
                                                      daemon=True))
                self._threads[-1].start()
        return True

    def stop(self) -> None:
        """Ends every relayed connection (their threads close them) and waits a moment for that."""
        for stream in list(self._active):
            _shutdown(stream)
        for thread in self._threads:
            thread.join(timeout=2)


def _peer(stream: Stream) -> str:
    try:
        address = stream.peer_address
    except OSError:
        return "a peer already gone"
    return str(address) if str(address) != "unix:" else "an unnamed unix socket"


def relay_command(args: argparse.Namespace) -> int:
    source, target = endpoint_arg(args.listen, "relay"), endpoint_arg(args.target, "relay")
    for endpoint in (source, target):
        if endpoint.kind == SOCK_DGRAM:
            raise CommandError(f"relay: {endpoint} is a datagram endpoint; relay copies streams "
                               "(tcp://, unix:, unix+seqpacket:)", 2)

    def log(message: str) -> None:
        print(f"relay: {message}", flush=True)

    try:
        listener = listen(source)
    except OSError as error:
        raise CommandError(f"relay: cannot listen on {source}: {_reason(error)}") from None
    relay = Relay(listener, target, log)
    ok = True
    try:
        with stopped_by_signals():
            log(f"listening on {listener.endpoint}, relaying to {target} (Ctrl-C stops)")
            ok = relay.serve(args.once)
    except KeyboardInterrupt:
        log("stopped")
    finally:
        listener.close()
        relay.stop()
    return 0 if ok else 1


# --- info ------------------------------------------------------------------------------------


def _name(value: int, kind: Any) -> str:
    try:
        return str(kind(value).name)
    except ValueError:
        return str(value)


def info_lines(endpoint: Endpoint) -> list[str]:
    """One line per address the endpoint names: family, kind, address, and the endpoint to pass
    to connect for just that address."""
    rows = [("family", "kind", "address", "endpoint")]
    for address in endpoint.addresses():
        rows.append((_name(address.family, AddressFamily), _name(endpoint.kind, SocketKind), str(address),
                     str(Endpoint.from_address(address, endpoint.kind))))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows]


def info_command(args: argparse.Namespace) -> int:
    endpoint = endpoint_arg(args.endpoint, "info")
    try:
        lines = info_lines(endpoint)
    except (OSError, ValueError) as error:
        raise CommandError(f"info: cannot resolve {endpoint}: {error}") from None
    print("\n".join(lines))
    return 0


# --- bench -----------------------------------------------------------------------------------

BENCH_HELP = """usage: socketeer bench [ARGS...]

Runs the side-by-side echo benchmarks (benchmarks/run.py) with ARGS: socketeer's Server beside
asyncio, uvloop, selectors and a plain C epoll server, one table of ratios. The benchmarks live
in socketeer's source tree, not in the installed package: run this inside a checkout (found
from the current directory or next to the imported package). `socketeer bench --help` in a
checkout shows run.py's own options (--quick, --servers, --configs, --json ...)."""


def benchmark_roots() -> list[Path]:
    """Where a checkout may be: the current directory, and the tree holding this package
    (python/socketeer/ in a checkout)."""
    return [Path.cwd(), Path(__file__).resolve().parent.parent.parent]


def find_benchmarks() -> Optional[Path]:
    for root in benchmark_roots():
        script = root / "benchmarks" / "run.py"
        if script.is_file():
            return script
    return None


def bench_command(argv: Sequence[str]) -> int:
    script = find_benchmarks()
    if script is None:
        if list(argv) in (["-h"], ["--help"]):
            print(BENCH_HELP)
            return 0
        raise CommandError("bench: the benchmarks live in socketeer's source tree (benchmarks/run.py); "
                           "run `socketeer bench` inside a checkout")
    import importlib.util

    spec = importlib.util.spec_from_file_location("socketeer_benchmarks_run", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    sys.argv[0] = "socketeer bench"  # run.py's argparse names itself after argv[0]
    return int(module.main(list(argv)))


# --- command line ----------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with usage mistakes reported in one line (not usage text plus the error)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="socketeer", description="Every Berkeley socket for Python: tools.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    echo = commands.add_parser("echo", help="run an echo server, or check that sockets work (--self-test)",
                               description="Serve echo on ENDPOINT until Ctrl-C, or run a self-test.")
    echo.add_argument("endpoint", nargs="?", metavar="ENDPOINT",
                      help=f"{_ENDPOINT_FORMS} (unix:@NAME is abstract; port 0 picks a free port; "
                           "IPv6 hosts in brackets: tcp://[::1]:0)")
    echo.add_argument("--self-test", action="store_true",
                      help="start echo servers on loopback over TCP, UDP and a unix socket, talk to each, report")
    echo.add_argument("--rounds", type=int, default=100, help="round trips per transport in --self-test (100)")

    connect = commands.add_parser(
        "connect", help="netcat-like: stdin to ENDPOINT, ENDPOINT to stdout",
        description="Connect to ENDPOINT; copy stdin to it and what it sends to stdout. The end of "
                    "stdin half-closes the connection (the peer reads end of stream and can still "
                    "answer); the program ends when the peer closes. For udp:// and unix+dgram: each "
                    "stdin line is one datagram, each reply is printed, and the program ends --wait "
                    "seconds after stdin ended and the last reply came.")
    connect.add_argument("endpoint", metavar="ENDPOINT", help=_ANY_ENDPOINT)
    connect.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                         help="give up connecting after this long (10)")
    connect.add_argument("--wait", type=float, default=1.0, metavar="SECONDS",
                         help="datagrams: how long to wait for replies after stdin ended (1)")

    relay = commands.add_parser(
        "relay", help="socat-like: accept on A, connect each client to B, copy both ways",
        description="Listen on A; connect every client that arrives to B and copy both directions, "
                    "passing each side's half-close on to the other. Any two stream endpoints: "
                    "e.g. `socketeer relay unix:/tmp/app.sock tcp://127.0.0.1:8080`.")
    relay.add_argument("listen", metavar="A", help="where to listen: tcp://HOST:PORT, unix:PATH, unix+seqpacket:PATH")
    relay.add_argument("target", metavar="B", help="where to connect each client: a stream endpoint")
    relay.add_argument("--once", action="store_true", help="relay one connection, then exit")

    info = commands.add_parser(
        "info", help="resolve ENDPOINT and print the addresses it names",
        description="Resolve ENDPOINT and print each address it names: family, kind, address, and "
                    "the endpoint that names just that address.")
    info.add_argument("endpoint", metavar="ENDPOINT", help=_ANY_ENDPOINT)

    commands.add_parser("bench", add_help=False, help="the side-by-side benchmarks (benchmarks/run.py; "
                                                      "source tree only)")
    return parser


def _fail(message: str) -> int:
    print(f"socketeer: {message}", file=sys.stderr)
    return 2


def _echo(args: argparse.Namespace) -> int:
    if args.self_test:
        if args.endpoint is not None:
            return _fail("echo: give an ENDPOINT or --self-test, not both")
        if args.rounds < 1:
            return _fail("echo: --rounds must be at least 1")
        return self_test(args.rounds)
    if args.endpoint is None:
        return _fail(f"echo: give an ENDPOINT to serve ({_ENDPOINT_FORMS}) or --self-test")
    try:
        endpoint = parse_endpoint(args.endpoint)
    except ValueError as error:
        return _fail(f"echo: {error}")
    try:
        return serve_forever(endpoint)
    except OSError as error:
        print(f"socketeer: echo: cannot serve on {endpoint}: {error}", file=sys.stderr)
        return 1


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "echo": _echo, "connect": connect_command, "relay": relay_command, "info": info_command,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["bench"]:  # every other argument belongs to benchmarks/run.py
            return bench_command(argv[1:])
        args = _parser().parse_args(argv)
        if args.command is None:
            return _fail(f"give a command: {', '.join([*COMMANDS, 'bench'])} (see socketeer --help)")
        return COMMANDS[args.command](args)
    except CommandError as error:
        print(f"socketeer: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # stdout closed early (`socketeer ... | head`): quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
