"""Thousands of concurrent echo connections with random payloads, each checked by sha256, through
each of socketeer's serving engines; prints bytes lost, fds leaked and peak RSS per workload.

    python benchmarks/stress.py [--connections 10000] [--max-size 16384] [--workloads NAME ...]
                                [--seed N] [--json]

Every client (a stdlib socket, all of them driven by one selector) connects, sends a random payload
of 1..max-size bytes, shuts down its sending side and reads the echo until the server closes. All
of a wave's connections are open at once: a wave is --connections, or as many as the file
descriptor limit allows (its soft limit raised to the hard one). Workloads:

    server-echo      Server(builtin="echo"): C++ only
    server-handler   Server with a Python handler that echoes and hashes what it got
    listener-serve   Listener.serve(handler, threads=32): a thread per connection being served
    aio-serve        socketeer.aio Listener.serve on asyncio: a task per connection
    fault-proxy      FaultProxy slicing into 1000-byte pieces with 5 ms latency each way, in front
                     of server-handler

Where a Python handler sees the bytes, the server's sha256 of each connection must be one a client
sent (both ends). RSS is the whole process's (clients included), its peak reset before each
workload: what one workload keeps is still there in the next, so run one alone to see it alone. tests/stress/test_stress_integrity.py runs the same workloads at 2,000
connections and asserts what this prints: nothing lost, nothing corrupted, no fd left open.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import errno
import gc
import hashlib
import json
import os
import random
import resource
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import socketeer
import socketeer.aio

CHUNK = 64 * 1024
CONNECT_WINDOW = 512  # handshakes in flight at once: below every listen backlog used here
FD_MARGIN = 64  # fds kept free for everything else (the selector, logging, the servers' own)


# --- the servers --------------------------------------------------------------------------------

@dataclass
class Target:
    """A running workload: where clients connect, the fds each connection costs this process, and
    the sha256 of what the server side received on each connection (None where only C++ sees it)."""
    address: tuple[str, int]
    fds_per_connection: int
    server_digests: Optional[list[str]]


class HashingEcho:
    """Server handler: echoes every chunk and records the sha256 of each connection's bytes."""

    def __init__(self) -> None:
        self.digests: list[str] = []

    def on_connect(self, conn: Any) -> None:
        conn.sha256 = hashlib.sha256()

    def on_message(self, conn: Any, data: bytes) -> None:
        conn.sha256.update(data)
        conn.send(data)

    def on_close(self, conn: Any, reason: str) -> None:
        self.digests.append(conn.sha256.hexdigest())


def _address(endpoint_address: Any) -> tuple[str, int]:
    return (endpoint_address.host, endpoint_address.port)


@contextlib.contextmanager
def _serving(server: socketeer.Server) -> Iterator[socketeer.Server]:
    """The server listening on a loopback port and started; closed after the block."""
    try:
        server.listen("tcp://127.0.0.1:0", backlog=4096)
    except BaseException:
        server.close()
        raise
    with server:
        yield server


@contextlib.contextmanager
def server_echo() -> Iterator[Target]:
    with _serving(socketeer.Server(builtin="echo")) as server:
        yield Target(_address(server.address), 2, None)


@contextlib.contextmanager
def server_handler() -> Iterator[Target]:
    handler = HashingEcho()
    with _serving(socketeer.Server(handler)) as server:
        yield Target(_address(server.address), 2, handler.digests)


@contextlib.contextmanager
def listener_serve() -> Iterator[Target]:
    digests: list[str] = []

    def echo(stream: Any) -> None:
        sha256 = hashlib.sha256()
        while data := stream.recv(CHUNK, timeout=60):
            sha256.update(data)
            stream.send_all(data, timeout=60)
        digests.append(sha256.hexdigest())

    listener = socketeer.listen("tcp://127.0.0.1:0", backlog=4096)
    serving = threading.Thread(target=listener.serve, args=(echo,), kwargs={"threads": 32}, name="stress-serve")
    serving.start()
    try:
        yield Target(_address(listener.address), 2, digests)
    finally:
        listener.close()  # serve() returns once its running handlers have
        serving.join()


@contextlib.contextmanager
def aio_serve() -> Iterator[Target]:
    digests: list[str] = []
    started: dict[str, Any] = {}
    ready = threading.Event()

    async def echo(stream: Any) -> None:
        sha256 = hashlib.sha256()
        while data := await stream.recv(CHUNK, timeout=60):
            sha256.update(data)
            await stream.send_all(data, timeout=60)
        digests.append(sha256.hexdigest())

    async def main() -> None:
        listener = await socketeer.aio.listen("tcp://127.0.0.1:0", backlog=4096)
        started.update(listener=listener, loop=asyncio.get_running_loop())
        ready.set()
        await listener.serve(echo)

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as error:  # handed to the caller
            started["error"] = error
            ready.set()

    serving = threading.Thread(target=run, name="stress-aio")
    serving.start()
    ready.wait(60)
    try:
        if "error" in started:
            raise started["error"]
        yield Target(_address(started["listener"].address), 2, digests)
    finally:
        if "loop" in started:
            started["loop"].call_soon_threadsafe(started["listener"].close)
        serving.join()
        if "error" in started:
            raise started["error"]


@contextlib.contextmanager
def fault_proxy() -> Iterator[Target]:
    with server_handler() as upstream:
        with socketeer.FaultProxy(f"tcp://127.0.0.1:{upstream.address[1]}") as proxy:
            proxy.slice(1000)
            proxy.set_latency(0.005)
            yield Target(_address(proxy.address), 4, upstream.server_digests)


WORKLOADS: dict[str, Callable[[], contextlib.AbstractContextManager[Target]]] = {
    "server-echo": server_echo,
    "server-handler": server_handler,
    "listener-serve": listener_serve,
    "aio-serve": aio_serve,
    "fault-proxy": fault_proxy,
}


# --- the clients --------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What the clients of one workload saw. Intact: the echo's sha256 is the payload's."""
    connections: int = 0
    intact: int = 0
    peak_open: int = 0
    sent_bytes: int = 0
    lost_bytes: int = 0  # sent, never echoed back
    corrupted: int = 0  # echoed back at least as long as sent, but not the bytes sent
    errors: list[str] = field(default_factory=list)  # the first few; error_count has them all
    error_count: int = 0
    sent_digests: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < 5:
            self.errors.append(text)


class Client:
    __slots__ = ("sock", "payload", "offset", "received", "sha256")

    def __init__(self, payload: bytes):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.payload = memoryview(payload)
        self.offset = 0
        self.received = 0
        self.sha256 = hashlib.sha256()


def echo_clients(address: tuple[str, int], connections: int, max_size: int, *, wave: int, seed: int,
                 timeout: float = 120.0) -> Outcome:
    """``connections`` clients of an echo server at ``address``, ``wave`` of them open at once."""
    rng = random.Random(seed)
    outcome = Outcome()
    deadline = time.monotonic() + timeout
    while outcome.connections < connections:
        count = min(wave, connections - outcome.connections)
        payloads = [rng.randbytes(rng.randint(1, max_size)) for _ in range(count)]
        _run_wave(address, payloads, outcome, deadline)
    return outcome


def _run_wave(address: tuple[str, int], payloads: list[bytes], outcome: Outcome, deadline: float) -> None:
    clients: list[Client] = []
    with selectors.DefaultSelector() as selector:
        try:
            connected = _connect_all(selector, address, payloads, clients, outcome, deadline)
            outcome.peak_open = max(outcome.peak_open, len(connected))
            _exchange(selector, connected, outcome, deadline)
        finally:
            for client in clients:
                client.sock.close()
    for client in clients:
        sent = len(client.payload)
        expected = hashlib.sha256(client.payload).hexdigest()
        outcome.connections += 1
        outcome.sent_bytes += sent
        outcome.sent_digests.append(expected)
        if client.sha256.hexdigest() == expected and client.received == sent:
            outcome.intact += 1
        elif client.received < sent:
            outcome.lost_bytes += sent - client.received
        else:
            outcome.corrupted += 1


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the stress clients did not finish in time")
    return left


def _connect_all(selector: selectors.BaseSelector, address: tuple[str, int], payloads: list[bytes],
                 clients: list[Client], outcome: Outcome, deadline: float) -> list[Client]:
    """Connects a client per payload, CONNECT_WINDOW handshakes at a time; returns those connected."""
    connected: list[Client] = []
    pending = 0
    for payload in payloads:
        if pending == CONNECT_WINDOW:
            pending -= _handshakes_done(selector, connected, outcome, deadline)
        client = Client(payload)
        clients.append(client)
        code = client.sock.connect_ex(address)
        if code in (0, errno.EINPROGRESS):
            selector.register(client.sock, selectors.EVENT_WRITE, client)
            pending += 1
        else:
            outcome.error(f"connect: {os.strerror(code)}")
    while pending:
        pending -= _handshakes_done(selector, connected, outcome, deadline)
    return connected


def _handshakes_done(selector: selectors.BaseSelector, connected: list[Client], outcome: Outcome,
                     deadline: float) -> int:
    """Waits for connects to complete; returns how many did (connected or failed)."""
    done = selector.select(_remaining(deadline))
    for key, _ in done:
        selector.unregister(key.fileobj)
        code = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            outcome.error(f"connect: {os.strerror(code)}")
        else:
            connected.append(key.data)
    return len(done)


def _exchange(selector: selectors.BaseSelector, clients: list[Client], outcome: Outcome, deadline: float) -> None:
    """Every client sends its payload, shuts down writing, and reads the echo until end of stream."""
    for client in clients:
        selector.register(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)
    active = len(clients)
    while active:
        for key, events in selector.select(_remaining(deadline)):
            client: Client = key.data
            try:
                if events & selectors.EVENT_WRITE:
                    _send_some(selector, client)
                if events & selectors.EVENT_READ and not _receive_some(client):
                    selector.unregister(client.sock)
                    active -= 1
            except OSError as error:
                outcome.error(f"{type(error).__name__}: {error}")
                selector.unregister(client.sock)
                active -= 1


def _send_some(selector: selectors.BaseSelector, client: Client) -> None:
    try:
        client.offset += client.sock.send(client.payload[client.offset:client.offset + CHUNK])
    except BlockingIOError:
        return
    if client.offset == len(client.payload):
        client.sock.shutdown(socket.SHUT_WR)
        selector.modify(client.sock, selectors.EVENT_READ, client)


def _receive_some(client: Client) -> bool:
    """Reads what is there; False at end of stream."""
    try:
        data = client.sock.recv(CHUNK)
    except BlockingIOError:
        return True
    client.sha256.update(data)
    client.received += len(data)
    return bool(data)


# --- one workload, measured ---------------------------------------------------------------------

@contextlib.contextmanager
def fd_limit_raised() -> Iterator[int]:
    """RLIMIT_NOFILE's soft limit raised to its hard limit for the block, then restored; yields how
    many more file descriptors may be opened."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield hard - len(os.listdir("/proc/self/fd"))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def wave_size(connections: int, fds_per_connection: int, free_fds: int) -> int:
    """How many connections can be open at once: all, or what the free fds allow."""
    return max(1, min(connections, (free_fds - FD_MARGIN) // fds_per_connection))


def _rss_kib(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # resets VmHWM, the peak resident set size
        return True
    except OSError:
        return False


@dataclass
class Report:
    workload: str
    wave: int  # connections open at once
    outcome: Outcome
    fds_leaked: int
    peak_rss_mib: float
    rss_after_mib: float
    seconds: float
    server_mismatches: Optional[int]  # server-side sha256s that are not the clients' (None: not seen)


def run_workload(name: str, connections: int, max_size: int, seed: int, timeout: float = 120.0) -> Report:
    gc.collect()
    fds_before = len(os.listdir("/proc/self/fd"))
    _reset_peak_rss()
    start = time.monotonic()
    with fd_limit_raised() as free_fds:
        with WORKLOADS[name]() as target:
            wave = wave_size(connections, target.fds_per_connection, free_fds)
            outcome = echo_clients(target.address, connections, max_size, wave=wave, seed=seed, timeout=timeout)
        digests = target.server_digests
    seconds = time.monotonic() - start
    gc.collect()
    mismatches = None
    if digests is not None:
        server, clients = collections.Counter(digests), collections.Counter(outcome.sent_digests)
        mismatches = sum(((server - clients) + (clients - server)).values())
    return Report(name, wave, outcome, len(os.listdir("/proc/self/fd")) - fds_before, _rss_kib("VmHWM") / 1024,
                  _rss_kib("VmRSS") / 1024, seconds, mismatches)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--max-size", type=int, default=16 * 1024, help="largest payload, bytes (default 16384)")
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--seed", type=int, default=None, help="payload seed (default: random, printed)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per workload")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    reports = [run_workload(name, args.connections, args.max_size, seed, args.timeout) for name in args.workloads]
    if args.json:
        rows = []
        for report in reports:
            row = asdict(report)
            del row["outcome"]["sent_digests"]
            rows.append(row)
        print(json.dumps({"seed": seed, "connections": args.connections, "max_size": args.max_size,
                          "workloads": rows}, indent=2))
    else:
        print(f"{args.connections} connections per workload, payloads of 1..{args.max_size} bytes, seed {seed}")
        print(f"{'workload':<16}{'open at once':>13}{'MB sent':>9}{'bytes lost':>11}{'corrupted':>10}"
              f"{'errors':>7}{'fds leaked':>11}{'peak RSS MB':>12}{'RSS after':>10}{'seconds':>8}")
        for r in reports:
            o = r.outcome
            print(f"{r.workload:<16}{o.peak_open:>13}{o.sent_bytes / 1e6:>9.1f}{o.lost_bytes:>11}{o.corrupted:>10}"
                  f"{o.error_count:>7}{r.fds_leaked:>11}{r.peak_rss_mib:>12.0f}{r.rss_after_mib:>10.0f}{r.seconds:>8.1f}")
            for text in o.errors:
                print(f"    {text}")
            if r.server_mismatches:
                print(f"    {r.server_mismatches} sha256(s) differ between what clients sent and servers got")
    bad = any(r.outcome.lost_bytes or r.outcome.corrupted or r.outcome.error_count or r.fds_leaked
              or r.server_mismatches for r in reports)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
