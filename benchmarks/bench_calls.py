"""Per-call cost of socketeer's low-level layer against the stdlib's, side by side in one run.

    PYTHONPATH=python python3 benchmarks/bench_calls.py [--repeats 15] [--iterations N] [--json]
                                                        [--nonblocking]

Four calls, each on identical sockets made by each library:
  * send + recv_into of 64 B on a unix socketpair   (syscall-bound; goal <= 1.1x the stdlib)
  * sendto + recvfrom of 64 B, UDP over 127.0.0.1   (syscall-bound; goal <= 1.1x)
  * getsockname() of a bound UDP socket             (one syscall + building the tuple)
  * fileno()                                        (no syscall: pure call overhead; goal <= 3x)

Each repeat times every case once per library, alternating which goes first, so both see
the same noise. Reported: the median ns per call of each (net of the bare loop, measured in
the same repeat) and the median of the per-repeat ratios socketeer / stdlib (< 1: socketeer
is faster). The sockets are blocking (the default); --nonblocking times the same calls on
non-blocking ones (setblocking(False)), a different path in both libraries. Nothing here
asserts: the numbers are for reading (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Optional

import socketeer

PAYLOAD = b"x" * 64

# name, default iterations per sample (~20-40 ms each on a ~2 µs/syscall host), goal ratio
CASES: list[tuple[str, int, Optional[float]]] = [
    ("send+recv_into 64 B, socketpair", 10_000, 1.1),
    ("sendto+recvfrom 64 B, UDP 127.0.0.1", 5_000, 1.1),
    ("getsockname, UDP", 50_000, None),
    ("fileno", 500_000, 3.0),
]


@dataclass
class Result:
    case: str
    stdlib_ns: float
    socketeer_ns: float
    ratio: Optional[float]  # None when the calls were too few to time (all below the loop noise)
    goal: Optional[float]

    @property
    def verdict(self) -> str:
        if self.goal is None or self.ratio is None:
            return ""
        return "met" if self.ratio <= self.goal else "MISSED"


class Sockets:
    """The sockets one library's loops run on: a socketpair and two bound UDP sockets."""

    def __init__(self, module: Any, blocking: bool = True) -> None:
        make = module.Socket if module is socketeer else module.socket
        self.a, self.b = module.socketpair()
        self.udp_out = make(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp_in = make(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp_in.bind(("127.0.0.1", 0))
        self.udp_out.bind(("127.0.0.1", 0))
        self.udp_to = self.udp_in.getsockname()  # the stdlib's tuple form, for both libraries
        for sock in (self.a, self.b, self.udp_out, self.udp_in):
            sock.setblocking(blocking)

    def close(self) -> None:
        for sock in (self.a, self.b, self.udp_out, self.udp_in):
            sock.close()

    def loops(self) -> list[Callable[[int], int]]:
        """One timing function per entry of CASES: runs `n` calls, returns elapsed ns."""
        return [self.pair_loop, self.udp_loop, partial(call_loop, self.udp_in.getsockname),
                partial(call_loop, self.a.fileno)]

    def pair_loop(self, n: int) -> int:
        send, recv_into, data, buffer = self.a.send, self.b.recv_into, PAYLOAD, bytearray(64)
        start = time.perf_counter_ns()
        for _ in range(n):
            send(data)
            recv_into(buffer)
        return time.perf_counter_ns() - start

    def udp_loop(self, n: int) -> int:
        sendto, recvfrom, data, to = self.udp_out.sendto, self.udp_in.recvfrom, PAYLOAD, self.udp_to
        start = time.perf_counter_ns()
        for _ in range(n):
            sendto(data, to)
            recvfrom(64)
        return time.perf_counter_ns() - start


def call_loop(call: Callable[[], object], n: int) -> int:
    """`n` calls of a bound method taking no arguments (getsockname, fileno)."""
    start = time.perf_counter_ns()
    for _ in range(n):
        call()
    return time.perf_counter_ns() - start


def bare_loop(n: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(n):
        pass
    return time.perf_counter_ns() - start


def measure(repeats: int, iterations: Optional[int], blocking: bool = True) -> tuple[list[Result], float]:
    """Times every case `repeats` times per library (after one untimed warm-up round)."""
    libraries = {"stdlib": Sockets(socket, blocking), "socketeer": Sockets(socketeer, blocking)}
    counts = [iterations or default for _, default, _ in CASES]
    samples: dict[tuple[int, str], list[float]] = {}
    overheads: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for repeat in range(repeats + 1):
            order = list(libraries) if repeat % 2 else list(reversed(libraries))
            overhead = bare_loop(max(counts)) / max(counts)
            for index, count in enumerate(counts):
                for name in order:
                    elapsed = libraries[name].loops()[index](count)
                    if repeat:  # repeat 0 warms up caches, allocators and the CPU clock
                        samples.setdefault((index, name), []).append(max(elapsed / count - overhead, 0.0))
            if repeat:
                overheads.append(overhead)
    finally:
        if gc_was_enabled:
            gc.enable()
        for sockets in libraries.values():
            sockets.close()
    results = []
    for index, (case, _, goal) in enumerate(CASES):
        ours, theirs = samples[(index, "socketeer")], samples[(index, "stdlib")]
        ratios = [o / t for o, t in zip(ours, theirs) if t > 0]
        results.append(Result(case, statistics.median(theirs), statistics.median(ours),
                              statistics.median(ratios) if ratios else None, goal))
    return results, statistics.median(overheads)


def print_table(results: list[Result], overhead: float, repeats: int, blocking: bool) -> None:
    print(f"socketeer {socketeer.__version__} vs stdlib socket; Python {platform.python_version()}; "
          f"{'blocking' if blocking else 'non-blocking'} sockets; "
          f"median of {repeats} interleaved repeats; ns per call, net of a {overhead:.1f} ns loop")
    print()
    header = f"{'call':<38} {'stdlib':>10} {'socketeer':>10} {'ratio':>7}   {'goal':<7}"
    print(header)
    print("-" * len(header))
    for r in results:
        goal = f"<= {r.goal:g}x" if r.goal is not None else "-"
        ratio = f"{r.ratio:>6.2f}x" if r.ratio is not None else f"{'-':>7}"
        print(f"{r.case:<38} {r.stdlib_ns:>10.1f} {r.socketeer_ns:>10.1f} {ratio}   {goal:<7} {r.verdict}")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repeats per case (15)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="calls per sample for every case (default: per case, ~20-40 ms a sample)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--nonblocking", action="store_true", help="time non-blocking sockets (setblocking(False))")
    args = parser.parse_args(argv)
    if args.repeats < 1 or (args.iterations is not None and args.iterations < 1):
        parser.error("--repeats and --iterations must be at least 1")
    blocking = not args.nonblocking
    results, overhead = measure(args.repeats, args.iterations, blocking)
    if args.json:
        print(json.dumps({"python": platform.python_version(), "socketeer": socketeer.__version__,
                          "repeats": args.repeats, "blocking": blocking, "loop_overhead_ns": overhead,
                          "results": [dict(asdict(r), verdict=r.verdict) for r in results]}, indent=2))
    else:
        print_table(results, overhead, args.repeats, blocking)
    return 0


if __name__ == "__main__":
    sys.exit(main())
