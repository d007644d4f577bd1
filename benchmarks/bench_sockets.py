"""Listing sockets: socketeer.sockets() against psutil, pyroute2 and ss, side by side in one run.

    PYTHONPATH=python python3 benchmarks/bench_sockets.py [--sockets 10000] [--repeats 9] [--json]

Opens --sockets TCP sockets on loopback (half connection pairs: a client and its accepted end,
plus one listener; RLIMIT_NOFILE is raised to its hard limit and the count bounded by it), then
times, in interleaved repeats (each repeat runs every contender once, rotating who goes first):

  * socketeer.sockets("tcp", tcp_info=True)             records with tcp_info kept in C++
  * the same, then .tcp_info read on every record        every TcpInfo dataclass built
  * psutil.net_connections("tcp")                         /proc/net/tcp* + a /proc/*/fd scan
  * pyroute2 DiagSocket.get_sock_stats(AF_INET, INET_DIAG_INFO)   sock_diag parsed in Python
  * ss -tani (a subprocess; its output is not parsed)

Each contender runs only if installed (psutil, pyroute2, ss). Reported: the median seconds of
each and its ratio to socketeer.sockets() (> 1: socketeer is faster). Goal (issue 16): 10,000
TCP sockets with tcp_info into records in <= 20 ms and <= 0.1x psutil's time. Nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import socketeer


def open_sockets(count: int) -> list[socket.socket]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    count = max(2, min(count, hard - 200))
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    held = [listener]
    for _ in range(count // 2):
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        held += [client, accepted]
    return held


def contenders() -> dict[str, Callable[[], Any]]:
    found: dict[str, Callable[[], Any]] = {
        "socketeer.sockets(tcp_info=True)": lambda: socketeer.sockets("tcp", tcp_info=True),
        "... + .tcp_info on each": lambda: [r.tcp_info for r in socketeer.sockets("tcp", tcp_info=True)],
    }
    try:
        import psutil

        found["psutil.net_connections('tcp')"] = lambda: psutil.net_connections("tcp")
    except ImportError:
        pass
    try:
        from pyroute2 import DiagSocket

        def pyroute2_stats() -> Any:
            with DiagSocket() as diag:
                diag.bind()
                # INET_DIAG_INFO is extension 2 (1 << (INET_DIAG_INFO - 1)); TCP states all
                return diag.get_sock_stats(family=socket.AF_INET, extensions=1 << 1)

        found["pyroute2 get_sock_stats"] = pyroute2_stats
    except ImportError:
        pass
    if shutil.which("ss"):
        found["ss -tani (subprocess)"] = lambda: subprocess.run(["ss", "-tani"], stdout=subprocess.DEVNULL,
                                                                 check=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    held = open_sockets(args.sockets)
    try:
        listed = len(socketeer.sockets("tcp", all=True))
        runs = contenders()
        names = list(runs)
        times: dict[str, list[float]] = {name: [] for name in names}
        for repeat in range(args.repeats):
            order = names[repeat % len(names):] + names[:repeat % len(names)]
            for name in order:
                start = time.perf_counter()
                runs[name]()
                times[name].append(time.perf_counter() - start)
    finally:
        for sock in held:
            sock.close()
    base = statistics.median(times[names[0]])
    rows = [{"case": name, "median_s": statistics.median(t), "ratio": statistics.median(t) / base}
            for name, t in times.items()]
    if args.json:
        print(json.dumps({"sockets_opened": len(held), "tcp_sockets_listed": listed, "results": rows}, indent=2))
        return
    print(f"{len(held)} sockets opened, {listed} TCP sockets on the host; median of {args.repeats} repeats")
    print(f"{'case':44} {'median':>10} {'x socketeer':>12}")
    for row in rows:
        print(f"{row['case']:44} {row['median_s'] * 1e3:8.2f} ms {row['ratio']:11.2f}x")


if __name__ == "__main__":
    sys.exit(main())
