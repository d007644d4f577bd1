#!/usr/bin/env python3
"""Echo servers side by side: socketeer, asyncio, uvloop, selectors and a plain C epoll server.

    python benchmarks/run.py                     # every server, every config (~10 minutes)
    python benchmarks/run.py --quick             # a smoke run (~1.5 minutes)
    python benchmarks/run.py --servers c-reference,uvloop-protocol --configs 'tcp-*' --json

Each server runs pinned to one CPU, the C++ load generator (socketeer-loadgen) on another. For
every config (transport, connections x message size) each server is measured in turn, the order
rotated from repeat to repeat, so the host's drift (+-20 % here) hits all servers alike. The table
shows the median req/s, the median of its per-repeat ratios to the C reference, and the server's
CPU time per request (from /proc, over the measured window only) - the figure that still means
something when the loopback round trip, not the server, sets the pace.

The load generator and the C reference are built with CMake + Ninja into build/bench/ on first use
(`pip install ".[bench]"` brings cmake, ninja and uvloop). `socketeer bench` calls main(argv).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVERS_DIR = ROOT / "benchmarks" / "servers"
DEFAULT_BUILD_DIR = ROOT / "build" / "bench"
LOADGEN = "socketeer-loadgen"
REFERENCE = "c-reference"
UNAVAILABLE = 3  # a server's exit status for "cannot run here"; its stderr says why


@dataclass(frozen=True)
class Config:
    name: str
    transport: str  # tcp, unix or udp
    connections: int
    size: int


def _configs() -> list[Config]:
    shapes = [(1, 64), (10, 64), (100, 1024), (10, 65536)]
    label = {64: "64", 1024: "1k", 65536: "64k"}
    stream = [Config(f"{t}-{n}x{label[s]}", t, n, s) for t in ("tcp", "unix") for n, s in shapes]
    return stream + [Config("udp-10x64", "udp", 10, 64)]


CONFIGS = _configs()


@dataclass(frozen=True)
class Server:
    name: str
    what: str
    script: str = ""  # in benchmarks/servers/; empty for the C reference
    flags: tuple[str, ...] = ()
    cli: bool = False  # `python -m socketeer echo ENDPOINT`, as a user runs it

    def argv(self, reference: Path, endpoint: str, cpu: int | None, lifetime: float) -> list[str]:
        if self.cli:  # pinned and bounded by preexec(), as the command line has no such options
            return [sys.executable, "-m", "socketeer", "echo", endpoint]
        base = [str(reference)] if not self.script else [sys.executable, str(SERVERS_DIR / self.script), *self.flags]
        pin = ["--cpu", str(cpu)] if cpu is not None else []
        return [*base, endpoint, *pin, "--lifetime", f"{lifetime:.0f}"]

    def preexec(self, cpu: int | None):
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
    Server("socketeer-builtin", "socketeer.Server(builtin='echo'), no Python per message", "socketeer_builtin.py"),
    Server("socketeer-handler", "socketeer.Server with a Python on_message echo", "socketeer_handler.py"),
    Server("socketeer-handler-views", "the same, Server(views=True): memoryviews, no copies",
           "socketeer_handler.py", ("--views",)),
    Server("socketeer-streams", "socketeer.Server, line framing, Python handler", "socketeer_streams.py"),
    Server("socketeer-streams-views", "the same, Server(views=True)", "socketeer_streams.py", ("--views",)),
    Server("socketeer-cli-echo", "the command line: python -m socketeer echo ENDPOINT (the reactor's echo)",
           cli=True),
    Server("uvloop-protocol", "uvloop, asyncio.Protocol", "asyncio_protocol.py", ("--uvloop",)),
    Server("uvloop-streams", "uvloop, asyncio streams (start_server)", "asyncio_streams.py", ("--uvloop",)),
    Server("asyncio-protocol", "stdlib asyncio, Protocol", "asyncio_protocol.py"),
    Server("asyncio-streams", "stdlib asyncio, streams (start_server)", "asyncio_streams.py"),
    Server("selectors", "stdlib selectors + non-blocking sockets", "selectors_echo.py"),
]


# ---- building the load generator and the C reference ---------------------------------------

class BuildError(RuntimeError):
    pass


def build(build_dir: Path = DEFAULT_BUILD_DIR, *, verbose: bool = False) -> tuple[Path, Path]:
    """Configure (once) and build socketeer-loadgen and echo-reference (and syscall-costs, so that it
    keeps compiling); returns the first two paths."""
    cmake, ninja = shutil.which("cmake"), shutil.which("ninja")
    if not cmake or not ninja:
        raise BuildError('cmake and ninja are needed to build the benchmarks: pip install ".[bench]"')
    build_dir = Path(build_dir)
    out = None if verbose else subprocess.PIPE
    steps = []
    if not (build_dir / "build.ninja").exists():
        steps.append([cmake, "-S", str(ROOT), "-B", str(build_dir), "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}",
                      "-DCMAKE_BUILD_TYPE=Release", "-DSOCKETEER_PYTHON=OFF", "-DSOCKETEER_BUILD_BENCHMARKS=ON"])
    steps.append([cmake, "--build", str(build_dir), "--target", LOADGEN, "echo-reference", "syscall-costs"])
    for step in steps:
        done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise BuildError(f"{' '.join(step)} failed:\n{done.stdout or ''}")
    return build_dir / LOADGEN, build_dir / "echo-reference"


# ---- servers ---------------------------------------------------------------------------------

@dataclass
class Running:
    """One server process serving one transport; `unavailable` says why it could not start."""

    server: Server
    transport: str
    proc: subprocess.Popen | None = None
    endpoint: str = ""
    unavailable: str = ""
    logs: list = field(default_factory=list)

    def stderr_tail(self) -> str:
        """The server's last stderr line; its "n/a:" reason if it gave one, since a wrapper
        (instructions.py's valgrind) prints its own summary after the server's last word."""
        if len(self.logs) < 2:
            return ""
        self.logs[1].seek(0)
        lines = [line.strip() for line in self.logs[1].read().decode(errors="replace").splitlines() if line.strip()]
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


def start(server: Server, transport: str, reference: Path, workdir: Path, cpu: int | None,
          lifetime: float, env: dict[str, str], timeout: float = 15.0, wrapper: tuple[str, ...] = ()) -> Running:
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
        running.logs[0].seek(0)
        first = running.logs[0].readline().decode(errors="replace")
        if first.endswith("\n"):
            running.endpoint = server.endpoint_of(first)
            return running
        if running.proc.poll() is not None:
            tail = running.stderr_tail()
            status = running.proc.returncode
            running.unavailable = tail[4:].strip() if tail.startswith("n/a:") else f"exited with status {status}: {tail}"
            return running
        time.sleep(0.01)
    running.unavailable = f"printed no endpoint within {timeout:.0f} s"
    running.stop()
    return running


def server_env() -> dict[str, str]:
    """The servers import the socketeer this interpreter imports, else the source tree's."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        import socketeer  # noqa: F401
    except ImportError:
        paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT / "python")])
    return env


# ---- measuring -------------------------------------------------------------------------------

def measure(loadgen: Path, running: Running, config: Config, cpu: int | None, duration: float,
            warmup: float) -> dict:
    argv = [str(loadgen), running.endpoint, "--connections", str(config.connections), "--size", str(config.size),
            "--duration", str(duration), "--warmup", str(warmup), "--json", "--watch-pid", str(running.proc.pid)]
    if cpu is not None:
        argv += ["--cpu", str(cpu)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=warmup + duration + 30, check=False)
    except subprocess.TimeoutExpired:
        return {"error": "load generator timed out"}
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"error": (done.stderr.strip() or f"load generator exited with {done.returncode}")[-300:]}
    if result["requests"] == 0:
        result["error"] = running.died() or f"no replies ({result['errors']} connection errors)"
    return result


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(config: Config, server: Server, runs: list[dict], status: str) -> dict:
    good = [r for r in runs if "error" not in r]
    cpu = [r.get("server_cpu") or {} for r in good]
    row = {
        "config": config.name, "transport": config.transport, "connections": config.connections,
        "size": config.size, "server": server.name, "what": server.what, "status": status,
        "runs": len(good), "rps_runs": [round(r["rps"], 1) for r in good],
        "rps": median([r["rps"] for r in good]),
        "mib_per_s": median([r["mib_per_s"] for r in good]),
        "cpu_us_per_req": median([c.get("cpu_us_per_req") for c in cpu]),
        "user_us_per_req": median([c.get("user_us_per_req") for c in cpu]),
        "sys_us_per_req": median([c.get("sys_us_per_req") for c in cpu]),
        "server_utilization": median([c.get("utilization") for c in cpu]),
        "client_utilization": median([r["client_cpu_utilization"] for r in good]),
        "p50_us": median([r["latency_us"]["p50"] for r in good]),
        "p99_us": median([r["latency_us"]["p99"] for r in good]),
        "errors": sum(r["errors"] for r in good),
        "lost": sum(r.get("udp", {}).get("lost", 0) for r in good),
    }
    if status == "ok" and not good:
        row["status"] = "failed (" + "; ".join(sorted({r["error"] for r in runs}))[:200] + ")"
    return row


# ---- the run ---------------------------------------------------------------------------------

def pick(items: list, names: str | None, what: str) -> list:
    if not names:
        return list(items)
    patterns = [n.strip() for n in names.split(",") if n.strip()]
    chosen = [item for item in items if any(fnmatch.fnmatchcase(item.name, p) for p in patterns)]
    if not chosen:
        raise SystemExit(f"no {what} matches {names!r}; choose from: {', '.join(i.name for i in items)}")
    return chosen


def cpus(args: argparse.Namespace) -> tuple[int | None, int | None]:
    allowed = sorted(os.sched_getaffinity(0))
    if args.no_pin or len(allowed) < 2:
        return None, None
    server_cpu = args.server_cpu if args.server_cpu is not None else allowed[0]
    client_cpu = args.client_cpu if args.client_cpu is not None else allowed[1]
    return server_cpu, client_cpu


def run(args: argparse.Namespace, loadgen: Path, reference: Path, log) -> dict:
    configs = pick(CONFIGS, args.configs, "config")
    servers = pick(SERVERS, args.servers, "server")
    server_cpu, client_cpu = cpus(args)
    per_run = args.warmup + args.duration + 0.5
    lifetime = len(configs) * len(servers) * args.repeats * per_run + 120
    env = server_env()
    workdir = Path(tempfile.mkdtemp(prefix="skb-", dir="/tmp"))  # short: unix paths max 107 bytes
    started: dict[tuple[str, str], Running] = {}
    runs: dict[tuple[str, str], list[dict]] = {(c.name, s.name): [] for c in configs for s in servers}
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
                    time.sleep(args.settle)
    finally:
        for running in started.values():
            running.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = []
    for config in configs:
        for server in servers:
            running = started.get((server.name, config.transport))
            status = f"n/a ({running.unavailable})" if running and running.unavailable else "ok"
            rows.append(summarize(config, server, runs[(config.name, server.name)], status))
    add_ratios(rows, runs)
    return {"meta": meta(args, server_cpu, client_cpu), "results": rows}


def add_ratios(rows: list[dict], runs: dict[tuple[str, str], list[dict]]) -> None:
    """Each server's req/s over the C reference's, paired by round: in round r both were measured
    within seconds of each other, so a slow drift of the host cancels out of their ratio, where
    it would not out of the ratio of two medians taken over the whole run. The row gets the
    median of those ratios and their middle half (quartiles) as the range."""
    for row in rows:
        reference = runs.get((row["config"], REFERENCE), [])
        own = runs.get((row["config"], row["server"]), [])
        paired = sorted(mine["rps"] / base["rps"] for mine, base in zip(own, reference)
                        if "error" not in mine and "error" not in base and base["rps"])
        row["ratios_to_c"] = [round(r, 3) for r in paired]
        row["ratio_to_c"] = round(statistics.median(paired), 3) if paired else None
        quartiles = statistics.quantiles(paired, n=4, method="inclusive") if len(paired) > 1 else paired
        row["ratio_range"] = [round(quartiles[0], 3), round(quartiles[-1], 3)] if paired else None


def meta(args: argparse.Namespace, server_cpu: int | None, client_cpu: int | None) -> dict:
    return {
        "python": platform.python_version(), "kernel": platform.release(), "cpus": os.cpu_count(),
        "server_cpu": server_cpu, "client_cpu": client_cpu, "duration": args.duration,
        "warmup": args.warmup, "repeats": args.repeats, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


# ---- output ----------------------------------------------------------------------------------

def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(report: dict) -> str:
    m = report["meta"]
    pinned = f"server on CPU {m['server_cpu']}, load generator on CPU {m['client_cpu']}" \
        if m["server_cpu"] is not None else "not pinned"
    width = max([19, *(len(row["server"]) + 1 for row in report["results"])])  # the server column
    lines = [
        f"socketeer echo benchmark: {m['repeats']} x {m['duration']} s per cell (+{m['warmup']} s warm-up), "
        f"median req/s; {pinned}; Python {m['python']}, Linux {m['kernel']}",
        f"{'config':<13}{'server':<{width}}{'req/s':>10}{'x C':>7}{'(quartiles)':>13}{'CPU us/req':>12}{'user us':>9}"
        f"{'p99 us':>9}  notes",
    ]
    previous = None
    for row in report["results"]:
        if previous is not None and row["config"] != previous:
            lines.append("")
        name = row["config"] if row["config"] != previous else ""
        previous = row["config"]
        if row["status"] != "ok":
            status = row["status"] if len(row["status"]) <= 90 else row["status"][:87] + "...)"
            lines.append(f"{name:<13}{row['server']:<{width}}{status}")
            continue
        notes = []
        if row["errors"]:
            notes.append(f"{row['errors']} conn errors")
        if row["lost"]:
            notes.append(f"{row['lost']} lost")
        if (row["client_utilization"] or 0) > 0.9:
            notes.append("client-bound")
        if len(row["rps_runs"]) > 1:
            spread = (max(row["rps_runs"]) - min(row["rps_runs"])) / row["rps"] if row["rps"] else 0
            if spread > 0.25:
                notes.append(f"spread {spread:.0%}")
        span = f"({row['ratio_range'][0]:.2f}-{row['ratio_range'][1]:.2f})" if row["ratio_range"] else "-"
        lines.append(f"{name:<13}{row['server']:<{width}}{fmt(row['rps'], ',.0f'):>10}{fmt(row['ratio_to_c'], '.2f'):>7}"
                     f"{span:>13}"
                     f"{fmt(row['cpu_us_per_req'], '.2f'):>12}{fmt(row['user_us_per_req'], '.2f'):>9}"
                     f"{fmt(row['p99_us'], '.0f'):>9}  {', '.join(notes)}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 0.3 s cells, 0.1 s warm-up, 2 repeats")
    parser.add_argument("--servers", help="comma-separated names or globs (see --list)")
    parser.add_argument("--configs", help="comma-separated names or globs, e.g. 'tcp-*,udp-10x64'")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of the table")
    parser.add_argument("--duration", type=float, help="measured seconds per cell (default 1.5)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per cell (default 0.3)")
    parser.add_argument("--repeats", type=int, help="rounds over every server and config (default 3)")
    parser.add_argument("--settle", type=float, default=0.05, help="pause between cells, seconds")
    parser.add_argument("--server-cpu", type=int, help="CPU for the servers (default: the first allowed)")
    parser.add_argument("--client-cpu", type=int, help="CPU for the load generator (default: the second)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin anything")
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR, help="where to build (build/bench)")
    parser.add_argument("--build-only", action="store_true", help="build the load generator and C reference, then exit")
    parser.add_argument("--list", action="store_true", help="list servers and configs, then exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    quick = {"duration": 0.3, "warmup": 0.1, "repeats": 2}
    full = {"duration": 1.5, "warmup": 0.3, "repeats": 3}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.repeats < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--repeats must be >= 1, --duration > 0, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for server in SERVERS:
            print(f"server  {server.name:<18} {server.what}")
        for config in CONFIGS:
            print(f"config  {config.name:<18} {config.transport}, {config.connections} x {config.size} B")
        return 0
    log = (lambda _line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        log(f"building {LOADGEN} and echo-reference in {args.build_dir} ...")
        loadgen, reference = build(args.build_dir)
    except (BuildError, subprocess.TimeoutExpired) as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 2
    if args.build_only:
        print(loadgen)
        print(reference)
        return 0
    report = run(args, loadgen, reference, log)
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
