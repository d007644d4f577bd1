"""Callback throughput of asyncio event loops side by side: the stock loop, uvloop and socketeer.aio.Loop.

    PYTHONPATH=python python3 benchmarks/bench_loop_calls.py [--repeats 9] [--callbacks N] [--json]

Cases (callbacks per second; each sample is one run_until_complete of N callbacks):
  * call_soon chain      one callback that call_soon()s itself: one callback per loop turn, so the
                         turn itself (the I/O poll with timeout 0 included) is in the figure
  * call_soon batch      N call_soon()s made at once, run in one turn: the ready queue and Handles
  * call_soon_threadsafe N call_soon_threadsafe()s from the loop's own thread, run in one turn
  * timers fire          N call_at()s already due, popped off the heap and run in one turn
  * timer chain          one callback that call_later(0)s itself: one timer per turn
  * timers cancelled     N call_later(1000)s cancelled at once (asyncio.timeout/wait_for's pattern)

Each repeat times every case once per loop, rotating which loop goes first, so all see the
same noise; repeat 0 is an untimed warm-up and the garbage collector is off while timing.
Reported: the median callbacks/s of each loop and the median of the per-repeat ratios ours /
uvloop and ours / stock (> 1: socketeer.aio.Loop is faster). The issue's goal for call_soon and
timers is >= 1.5x uvloop. Nothing here asserts: the numbers are for reading (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from collections.abc import Callable
from typing import Any, Optional

from socketeer import aio

try:
    import uvloop
except ImportError:  # the table then has no uvloop column
    uvloop = None

Case = Callable[[asyncio.AbstractEventLoop, int], float]  # runs n callbacks, returns seconds


def _finish(loop: asyncio.AbstractEventLoop, start: Callable[[asyncio.Future[None]], None]) -> float:
    done: asyncio.Future[None] = loop.create_future()
    began = time.perf_counter()
    start(done)
    loop.run_until_complete(done)
    return time.perf_counter() - began


def call_soon_chain(loop: asyncio.AbstractEventLoop, n: int) -> float:
    left = [n]

    def step() -> None:
        left[0] -= 1
        if left[0]:
            call_soon(step)
        else:
            done.set_result(None)

    call_soon = loop.call_soon
    done: asyncio.Future[None] = loop.create_future()
    began = time.perf_counter()
    call_soon(step)
    loop.run_until_complete(done)
    return time.perf_counter() - began


def _batch(schedule: Callable[[Callable[[], None], asyncio.Future[None], int], None]) -> Case:
    def case(loop: asyncio.AbstractEventLoop, n: int) -> float:
        return _finish(loop, lambda done: schedule(_counter(done, n), done, n))
    return case


def _counter(done: asyncio.Future[None], n: int) -> Callable[[], None]:
    left = [n]

    def callback() -> None:
        left[0] -= 1
        if not left[0]:
            done.set_result(None)
    return callback


def _soon(callback: Callable[[], None], done: asyncio.Future[None], n: int) -> None:
    call_soon = done.get_loop().call_soon
    for _ in range(n):
        call_soon(callback)


def _threadsafe(callback: Callable[[], None], done: asyncio.Future[None], n: int) -> None:
    call = done.get_loop().call_soon_threadsafe
    for _ in range(n):
        call(callback)


def _due_timers(callback: Callable[[], None], done: asyncio.Future[None], n: int) -> None:
    loop = done.get_loop()
    call_at, past = loop.call_at, loop.time() - 1.0
    for i in range(n):
        call_at(past + i * 1e-9, callback)


def timer_chain(loop: asyncio.AbstractEventLoop, n: int) -> float:
    left = [n]

    def step() -> None:
        left[0] -= 1
        if left[0]:
            call_later(0, step)
        else:
            done.set_result(None)

    call_later = loop.call_later
    done: asyncio.Future[None] = loop.create_future()
    began = time.perf_counter()
    call_later(0, step)
    loop.run_until_complete(done)
    return time.perf_counter() - began


def timers_cancelled(loop: asyncio.AbstractEventLoop, n: int) -> float:
    call_later, noop = loop.call_later, (lambda: None)
    began = time.perf_counter()
    for _ in range(n):
        call_later(1000.0, noop).cancel()
    loop.run_until_complete(asyncio.sleep(0))  # one turn: the cancelled timers are swept
    return time.perf_counter() - began


CASES: list[tuple[str, Case]] = [
    ("call_soon chain", call_soon_chain),
    ("call_soon batch", _batch(_soon)),
    ("call_soon_threadsafe", _batch(_threadsafe)),
    ("timers fire", _batch(_due_timers)),
    ("timer chain", timer_chain),
    ("timers cancelled", timers_cancelled),
]


def make_loops() -> dict[str, asyncio.AbstractEventLoop]:
    loops: dict[str, asyncio.AbstractEventLoop] = {"stock": asyncio.SelectorEventLoop()}
    if uvloop is not None:
        loops["uvloop"] = uvloop.new_event_loop()
    loops["socketeer"] = aio.new_event_loop()
    return loops


def measure(repeats: int, callbacks: int) -> list[dict[str, Any]]:
    loops = make_loops()
    names = list(loops)
    rates: dict[tuple[str, str], list[float]] = {}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for repeat in range(repeats + 1):
            order = names[repeat % len(names):] + names[:repeat % len(names)]
            for case, run in CASES:
                for name in order:
                    seconds = run(loops[name], callbacks)
                    if repeat:
                        rates.setdefault((case, name), []).append(callbacks / max(seconds, 1e-9))
    finally:
        if gc_was_enabled:
            gc.enable()
        for loop in loops.values():
            loop.close()
    return [_row(case, names, rates, repeats) for case, _ in CASES]


def _row(case: str, names: list[str], rates: dict[tuple[str, str], list[float]], repeats: int) -> dict[str, Any]:
    row: dict[str, Any] = {"case": case}
    for name in names:
        row[f"{name}_per_s"] = statistics.median(rates[case, name])
    for other in ("uvloop", "stock"):
        if other in names:
            row[f"vs_{other}"] = statistics.median(
                rates[case, "socketeer"][i] / rates[case, other][i] for i in range(repeats))
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    names = [key[:-len("_per_s")] for key in rows[0] if key.endswith("_per_s")]
    header = f"{'case':<22}" + "".join(f"{name + ' cb/s':>16}" for name in names) + f"{'vs uvloop':>11}{'vs stock':>10}"
    print(header)
    print("-" * len(header))
    for row in rows:
        ratios = "".join(f"{_ratio(row.get(f'vs_{other}')):>{width}}" for other, width in (("uvloop", 11), ("stock", 10)))
        print(f"{row['case']:<22}" + "".join(f"{row[f'{name}_per_s']:>16,.0f}" for name in names) + ratios)


def _ratio(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--callbacks", type=int, default=20_000, help="callbacks per sample")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure(args.repeats, args.callbacks)
    if args.json:
        print(json.dumps({"callbacks": args.callbacks, "repeats": args.repeats, "results": rows}, indent=2))
    else:
        print_table(rows)


if __name__ == "__main__":
    main()
