"""The echo benchmark's harness: which servers and configs exist, starting a server process,
loading it with socketeer-loadgen, and the run that interleaves them.

Each server runs pinned to one CPU, the load generator on another. For every config (transport,
connections x message size) each server is measured in turn, the order rotated from repeat to
repeat, so the host's drift (+-20 % here) hits all servers alike. What the runs add up to is
:mod:`socketeer.benchmark.report`'s.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Optional, TypeVar

from . import goals
from .report import REFERENCE, meta, summarize, add_ratios

__all__ = ["Config", "Server", "CONFIGS", "SERVERS", "REFERENCE", "UNAVAILABLE", "UsageError", "Running", "start",
           "server_env", "measure", "pick", "cpus", "run"]

SERVERS_PACKAGE = "socketeer.benchmark.servers"
UNAVAILABLE = 3  # a server's exit status for "cannot run here"; its stderr says why


class UsageError(ValueError):
    """A name given for --servers or --configs matches nothing."""


@dataclass(frozen=True)
class Config:
    name: str
    transport: str  # tcp, unix or udp
    connections: int
    size: int


def _configs() -> list[Config]:
    shapes = [(1, 64), (10, 64), (100, 1024), (10, 65536)]
    label = {64: "64", 1024: "1k", 65536: "64k"}
    tcp, unix = ([Config(f"{t}-{n}x{label[s]}", t, n, s) for n, s in shapes] for t in ("tcp", "unix"))
    many = Config("tcp-300x64", "tcp", 300, 64)  # many connections: a loop turn carries many requests
    return [*tcp, many, *unix, Config("udp-10x64", "udp", 10, 64)]


CONFIGS = _configs()


@dataclass(frozen=True)
class Server:
    name: str
    what: str
    module: str = ""  # in socketeer.benchmark.servers; empty for the C reference
    flags: tuple[str, ...] = ()
    loop: str = ""  # the asyncio servers' event loop (--loop): asyncio, uvloop or socketeer
    cli: bool = False  # `python -m socketeer echo ENDPOINT`, as a user runs it

    def argv(self, reference: Path, endpoint: str, cpu: Optional[int], lifetime: float) -> list[str]:
        if self.cli:  # pinned and bounded by preexec(), as the command line has no such options
            return [sys.executable, "-m", "socketeer", "echo", endpoint]
        loop = ["--loop", self.loop] if self.loop else []
        base = [str(reference)] if not self.module else [sys.executable, "-m", f"{SERVERS_PACKAGE}.{self.module}",
                                                          *self.flags, *loop]
        pin = ["--cpu", str(cpu)] if cpu is not None else []
        return [*base, endpoint, *pin, "--lifetime", f"{lifetime:.0f}"]

    def preexec(self, cpu: Optional[int]) -> Optional[Callable[[], None]]:
        """For the command line: in the child before exec, pin it to ``cpu`` and have it get
        SIGTERM when the harness dies (a server outliving a killed harness would not stop)."""
        if not self.cli:
            return None

        def setup() -> None:
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
        return setup

    def endpoint_of(self, first_line: str) -> str:
        """The endpoint in the server's first line: all of it, or the command line's
        "echo: listening on ENDPOINT (Ctrl-C stops)"."""
        line = first_line.strip()
        if self.cli and line.startswith("echo: listening on "):
            return line.split()[3]
        return line


SERVERS = [
    Server(REFERENCE, "plain C epoll echo (the physical limit)"),
    Server("socketeer-builtin", "socketeer.Server(builtin='echo'), no Python per message", "socketeer_builtin"),
    Server("socketeer-handler", "socketeer.Server with a Python on_message echo", "socketeer_handler"),
    Server("socketeer-handler-views", "the same, Server(views=True): memoryviews, no copies",
           "socketeer_handler", ("--views",)),
    Server("socketeer-streams", "socketeer.Server, line framing, Python handler", "socketeer_streams"),
    Server("socketeer-streams-views", "the same, Server(views=True)", "socketeer_streams", ("--views",)),
    Server("socketeer-aio", "socketeer.aio Stream recv/send_all, a task per connection, stock asyncio loop",
           "socketeer_aio", loop="asyncio"),
    Server("socketeer-loop-aio", "socketeer.aio Stream recv/send_all on socketeer.aio.Loop", "socketeer_aio",
           loop="socketeer"),
    Server("socketeer-cli-echo", "the command line: python -m socketeer echo ENDPOINT (the reactor's echo)",
           cli=True),
    Server("asyncio-protocol", "asyncio.Protocol (UDP: DatagramProtocol), stock asyncio loop", "asyncio_protocol",
           loop="asyncio"),
    Server("uvloop-protocol", "asyncio.Protocol (UDP: DatagramProtocol) on uvloop", "asyncio_protocol",
           loop="uvloop"),
    Server("socketeer-loop-protocol", "asyncio.Protocol (UDP: DatagramProtocol) on socketeer.aio.Loop",
           "asyncio_protocol", loop="socketeer"),
    Server("asyncio-streams", "asyncio streams (start_server), stock asyncio loop", "asyncio_streams",
           loop="asyncio"),
    Server("uvloop-streams", "asyncio streams (start_server) on uvloop", "asyncio_streams", loop="uvloop"),
    Server("socketeer-loop-streams", "asyncio streams (start_server) on socketeer.aio.Loop", "asyncio_streams",
           loop="socketeer"),
    Server("selectors", "stdlib selectors + non-blocking sockets", "selectors_echo"),
]


# ---- servers ---------------------------------------------------------------------------------

@dataclass
class Running:
    """One server process serving one transport; `unavailable` says why it could not start."""

    server: Server
    transport: str
    proc: Optional[subprocess.Popen[bytes]] = None
    endpoint: str = ""
    unavailable: str = ""
    logs: list[IO[bytes]] = field(default_factory=list)

    def stderr_tail(self) -> str:
        """The server's last stderr line; its "n/a:" reason if it gave one, since a wrapper
        (instructions.py's valgrind) prints its own summary after the server's last word."""
        if len(self.logs) < 2:
            return ""
        lines = [line.strip() for line in written(self.logs[1]).decode(errors="replace").splitlines() if line.strip()]
        reasons = [line for line in lines if line.startswith("n/a:")]
        return (reasons or lines or [""])[-1]

    def died(self) -> str:
        """Empty while the process runs, else why it ended."""
        if self.proc is None or self.proc.poll() is None:
            return ""
        return f"exited with status {self.proc.returncode}: {self.stderr_tail()}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        for log in self.logs:
            log.close()
        self.logs.clear()


def written(log: IO[bytes]) -> bytes:
    """What the server has written to one of its log files so far. Read with pread, which leaves
    the file offset alone: the server writes through the same open file, so a seek(0) here moved
    its next write to the start, and a newline printed apart from its line (3.10's print) once
    overwrote the endpoint's first byte, handing the load generator an empty endpoint."""
    chunks, offset = [], 0
    while chunk := os.pread(log.fileno(), 1 << 16, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def start(server: Server, transport: str, reference: Path, workdir: Path, cpu: Optional[int],
          lifetime: float, env: dict[str, str], timeout: float = 15.0, wrapper: Sequence[str] = ()) -> Running:
    """Start a server and wait for the endpoint it prints first (no race with its bind).
    wrapper: a command the server runs under (instructions.py: valgrind)."""
    endpoint = {"tcp": "tcp://127.0.0.1:0", "udp": "udp://127.0.0.1:0", "unix": f"unix:{workdir}/{server.name}.sock"}
    running = Running(server, transport)
    running.logs = [tempfile.TemporaryFile(dir=workdir), tempfile.TemporaryFile(dir=workdir)]
    running.proc = subprocess.Popen([*wrapper, *server.argv(reference, endpoint[transport], cpu, lifetime)], env=env,
                                    stdin=subprocess.DEVNULL, stdout=running.logs[0], stderr=running.logs[1],
                                    preexec_fn=server.preexec(cpu))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        first, newline, _ = written(running.logs[0]).partition(b"\n")
        if newline:
            running.endpoint = server.endpoint_of(first.decode(errors="replace"))
            return running
        if running.proc.poll() is not None:
            tail = running.stderr_tail()
            status = running.proc.returncode
            running.unavailable = tail[4:].strip() if tail.startswith("n/a:") else f"exited with status {status}: {tail}"
            return running
        time.sleep(0.01)  # a bounded poll for the server's first line
    running.unavailable = f"printed no endpoint within {timeout:.0f} s"
    running.stop()
    return running


def server_env() -> dict[str, str]:
    """The servers import the socketeer this harness belongs to: its parent directory goes first
    on their PYTHONPATH (site-packages when installed, python/ in a source tree)."""
    package_parent = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != package_parent]
    env["PYTHONPATH"] = os.pathsep.join([package_parent, *paths])
    return env


# ---- measuring -------------------------------------------------------------------------------

def measure(loadgen: Path, running: Running, config: Config, cpu: Optional[int], duration: float,
            warmup: float) -> dict[str, Any]:
    """One cell: the load generator against a running server, its JSON report (with the server's
    CPU time over the measured window), or {"error": why}."""
    assert running.proc is not None
    argv = [str(loadgen), running.endpoint, "--connections", str(config.connections), "--size", str(config.size),
            "--duration", str(duration), "--warmup", str(warmup), "--json", "--watch-pid", str(running.proc.pid)]
    if cpu is not None:
        argv += ["--cpu", str(cpu)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=warmup + duration + 30, check=False)
    except subprocess.TimeoutExpired:
        return {"error": "load generator timed out"}
    except OSError as error:
        return {"error": f"cannot run the load generator {loadgen}: {error.strerror}"}
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"error": (done.stderr.strip() or f"load generator exited with {done.returncode}")[-300:]}
    if result["requests"] == 0:
        result["error"] = running.died() or f"no replies ({result['errors']} connection errors)"
    return result


# ---- the run ---------------------------------------------------------------------------------

Named = TypeVar("Named", Config, Server)


def pick(items: Sequence[Named], names: Optional[str], what: str) -> list[Named]:
    """The items whose names match the comma-separated names or globs (all when names is empty)."""
    if not names:
        return list(items)
    patterns = [n.strip() for n in names.split(",") if n.strip()]
    chosen = [item for item in items if any(fnmatch.fnmatchcase(item.name, p) for p in patterns)]
    if not chosen:
        raise UsageError(f"no {what} matches {names!r}; choose from: {', '.join(i.name for i in items)}")
    return chosen


def cpus(args: argparse.Namespace) -> tuple[Optional[int], Optional[int]]:
    """The CPUs for the servers and the load generator: two different ones when allowed."""
    allowed = sorted(os.sched_getaffinity(0))
    if args.no_pin or len(allowed) < 2:
        return None, None
    server_cpu = args.server_cpu if args.server_cpu is not None else allowed[0]
    client_cpu = args.client_cpu if args.client_cpu is not None else allowed[1]
    return server_cpu, client_cpu


def run(args: argparse.Namespace, loadgen: Path, reference: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Every picked server on every picked config, args.repeats rounds, interleaved; returns the
    report {"meta": ..., "results": [one row per config and server], "goals": [each goal on each
    config this run measured], "goals_left_out": how many goal cells it did not}."""
    configs = pick(CONFIGS, args.configs, "config")
    servers = pick(SERVERS, args.servers, "server")
    server_cpu, client_cpu = cpus(args)
    per_run = args.warmup + args.duration + 0.5
    lifetime = len(configs) * len(servers) * args.repeats * per_run + 120
    env = server_env()
    workdir = Path(tempfile.mkdtemp(prefix="skb-", dir="/tmp"))  # short: unix paths max 107 bytes
    started: dict[tuple[str, str], Running] = {}
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {(c.name, s.name): [] for c in configs for s in servers}
    try:
        for repeat in range(args.repeats):
            for index, config in enumerate(configs):
                shift = (repeat + index) % len(servers)
                for server in servers[shift:] + servers[:shift]:
                    key = (server.name, config.transport)
                    if key not in started:
                        started[key] = start(server, config.transport, reference, workdir, server_cpu, lifetime, env)
                    running = started[key]
                    if running.unavailable:
                        continue
                    result = measure(loadgen, running, config, client_cpu, args.duration, args.warmup)
                    runs[(config.name, server.name)].append(result)
                    shown = result.get("error") or f"{result['rps']:>10.0f} req/s"
                    log(f"[{repeat + 1}/{args.repeats}] {config.name:<12} {server.name:<18} {shown}")
                    time.sleep(args.settle)  # let the last cell's connections close
    finally:
        for running in started.values():
            running.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = []
    for config in configs:
        for server in servers:
            found = started.get((server.name, config.transport))
            status = f"n/a ({found.unavailable})" if found and found.unavailable else "ok"
            rows.append(summarize(config, server, runs[(config.name, server.name)], status))
    add_ratios(rows, runs)
    checked, left_out = goals.evaluate(rows, runs)
    return {"meta": meta(args, server_cpu, client_cpu), "results": rows, "goals": checked, "goals_left_out": left_out}
