#!/usr/bin/env python3
"""User-space instructions per request of each echo server, counted by callgrind.

    python benchmarks/instructions.py                                  # tcp/unix/udp 10x64 B
    python benchmarks/instructions.py --servers 'c-reference,socketeer-*' --configs tcp-10x64 --top 15

run.py measures time, which on a shared 2-core host swings +-20 % from run to run. This counts
what the server's own code executes per request (callgrind counts instructions, not seconds:
the same binary under the same load gives the same figure whatever else the machine does).
Kernel work is not counted: it is the same syscalls for every server (see README.md, strace -c).

Each server runs under `valgrind --tool=callgrind`, gets --warmup seconds of load from
socketeer-loadgen, then its counters are dumped (which zeroes them), then --duration seconds of
measured load, then a second dump: that one holds exactly the measured window. Under valgrind a
server runs ~50x slower, so each of its loop turns sees more ready requests than at full speed:
compare servers with each other in one run, not with run.py's figures.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (the servers, configs and build of run.py)


def self_costs(dump: Path) -> collections.Counter:
    """Instructions per function, exclusive of callees, from one callgrind dump (written with
    --compress-strings=no, so every line names its function)."""
    costs: collections.Counter = collections.Counter()
    function, after_call = "?", False
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith("fn="):
            function = line[3:]
        elif line.startswith("calls="):
            after_call = True  # the next cost line is the callee's inclusive cost
        elif line[:1].isdigit() or line[:1] in "+-*":
            if after_call:
                after_call = False
                continue
            fields = line.split()
            if len(fields) >= 2:
                costs[function] += int(fields[1])
    return costs


def count(server: bench.Server, config: bench.Config, loadgen: Path, reference: Path, workdir: Path,
          args: argparse.Namespace) -> dict:
    out = workdir / f"{server.name}-{config.name}.cg"
    wrapper = ("valgrind", "--tool=callgrind", "--compress-strings=no", "--compress-pos=no",
               f"--callgrind-out-file={out}")
    running = bench.start(server, config.transport, reference, workdir, None, 600, bench.server_env(),
                          timeout=60, wrapper=wrapper)
    try:
        if running.unavailable:
            return {"error": running.unavailable}
        pid = str(running.proc.pid)
        warmup = bench.measure(loadgen, running, config, None, args.warmup, 0)
        if "requests" not in warmup:  # the load generator failed; a warm-up with no replies yet is fine
            return {"error": f"warm-up: {warmup['error']}"}
        subprocess.run(["callgrind_control", "--dump", pid], capture_output=True, timeout=60, check=True)
        # Each dump zeroes the counters and is numbered: .1 holds the warm-up, the next one the
        # measured window. A window whose load generator failed is measured once more (a shared
        # host has transients), and says so on stderr; a second failure is the row's error.
        for dumps in (2, 3):
            done = bench.measure(loadgen, running, config, None, args.duration, 0)
            subprocess.run(["callgrind_control", "--dump", pid], capture_output=True, timeout=60, check=True)
            if "error" not in done:
                break
            print(f"instructions.py: {server.name} {config.name}: {done['error']}", file=sys.stderr, flush=True)
        else:
            return {"error": done["error"]}
        requests = done["requests"]
        deadline = time.monotonic() + 30
        dump = Path(f"{out}.{dumps}")
        while not dump.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        costs = self_costs(dump)
    finally:
        running.stop()
    total = sum(costs.values())
    return {"requests": requests, "per_request": total / requests,
            "top": [(name, cost / requests) for name, cost in costs.most_common(args.top)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="c-reference,socketeer-builtin,socketeer-handler,uvloop-protocol")
    parser.add_argument("--configs", default="tcp-10x64,unix-10x64,udp-10x64")
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds of load")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--top", type=int, default=0, help="also list the N costliest functions per cell")
    parser.add_argument("--build-dir", type=Path, default=bench.DEFAULT_BUILD_DIR,
                        help="where the load generator and the C reference are built")
    args = parser.parse_args(argv)
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        raise SystemExit("valgrind (with callgrind_control) is needed: apt-get install valgrind")
    servers = bench.pick(bench.SERVERS, args.servers, "server")
    configs = bench.pick(bench.CONFIGS, args.configs, "config")
    loadgen, reference = bench.build(args.build_dir)
    print(f"{'config':<12} {'server':<24} {'instructions/req':>16} {'x C':>7}")
    with tempfile.TemporaryDirectory(prefix="socketeer-cg-") as workdir:
        for config in configs:
            baseline = None
            for server in servers:
                result = count(server, config, loadgen, reference, Path(workdir), args)
                if "error" in result:
                    print(f"{config.name:<12} {server.name:<24} {'n/a: ' + result['error'][:60]}")
                    continue
                per_request = result["per_request"]
                if server.name == bench.REFERENCE:
                    baseline = per_request
                ratio = f"{per_request / baseline:6.1f}x" if baseline else "      -"
                print(f"{config.name:<12} {server.name:<24} {per_request:16.0f} {ratio}", flush=True)
                for name, cost in result["top"]:
                    print(f"{'':<34}{cost:8.1f}  {re.sub(r'/tmp/[^:]*:', '', name)[:90]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
