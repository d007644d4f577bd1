"""Poller and EpollSelector against the stdlib's selectors.EpollSelector, side by side in one run.

    PYTHONPATH=python python3 benchmarks/bench_poller.py [--repeats 7] [--sizes 10,1000,10000]

For 10, 1 000 and 10 000 registered fds it measures
  * poll:     one select()/poll() with every fd ready (eventfds holding a count), per ready fd;
  * register: register + unregister of every fd, per fd;
  * modify:   two interest changes of every fd, each round followed by one select(0) (where
              the Poller applies its deferred changes; EpollSelector.modify applies each at
              once, as the stdlib's), per change; the fds (disarmed timerfds) are never ready,
              so no event building is counted.
Each implementation runs once per repeat, interleaved, and the medians are printed with the
ratio stdlib time / socketeer time (> 1: socketeer is faster). raw select.epoll is shown for
reference: it is the floor the stdlib selector pays for before its Python loop.
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import selectors
import statistics
import sys
import time
from collections.abc import Callable

import socketeer
from socketeer.selectors import EpollSelector

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
TARGET_NS = 20_000_000  # each sample runs about this long


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < needed:
        sys.exit(f"needs {needed} fds; ulimit -n is {soft}")


def timed(body: Callable[[], object], rounds: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(rounds):
        body()
    return time.perf_counter_ns() - start


# --- the three measurements, each returning (name -> ns for `rounds` rounds) ---------------------


def poll_samples(fds: list[int], rounds: int) -> dict[str, Callable[[], int]]:
    stdlib = selectors.EpollSelector()
    ours = EpollSelector()
    poller = socketeer.Poller()
    raw = select.epoll()
    for fd in fds:
        stdlib.register(fd, READ)
        ours.register(fd, READ)
        poller.register(fd, READ)
        raw.register(fd, select.EPOLLIN)
    expected = len(fds)
    assert len(stdlib.select(0)) == len(ours.select(0)) == len(poller.poll(0)) == expected
    assert all(type(key) is selectors.SelectorKey for key, _ in ours.select(0))
    samples = {
        "stdlib EpollSelector.select": lambda: timed(lambda: stdlib.select(0), rounds),
        "socketeer EpollSelector.select": lambda: timed(lambda: ours.select(0), rounds),
        "socketeer Poller.poll": lambda: timed(lambda: poller.poll(0), rounds),
        "raw select.epoll.poll": lambda: timed(lambda: raw.poll(0, expected), rounds),
    }
    closers = [stdlib.close, ours.close, poller.close, raw.close]
    return samples, closers  # type: ignore[return-value]


def register_samples(fds: list[int], rounds: int):
    stdlib = selectors.EpollSelector()
    ours = EpollSelector()
    poller = socketeer.Poller()

    def cycle(register, unregister):
        def body():
            for fd in fds:
                register(fd, READ)
            for fd in fds:
                unregister(fd)

        return lambda: timed(body, rounds)

    samples = {
        "stdlib EpollSelector": cycle(stdlib.register, stdlib.unregister),
        "socketeer EpollSelector": cycle(ours.register, ours.unregister),
        "socketeer Poller": cycle(poller.register, poller.unregister),
    }
    return samples, [stdlib.close, ours.close, poller.close]


def modify_samples(fds: list[int], rounds: int):
    stdlib = selectors.EpollSelector()
    ours = EpollSelector()
    poller = socketeer.Poller()
    for fd in fds:
        stdlib.register(fd, READ)
        ours.register(fd, READ)
        poller.register(fd, READ)

    def toggle(modify, wait):
        def body():
            for fd in fds:
                modify(fd, READ | WRITE)
            wait(0)
            for fd in fds:
                modify(fd, READ)
            wait(0)

        return lambda: timed(body, rounds)

    samples = {
        "stdlib EpollSelector": toggle(stdlib.modify, stdlib.select),
        "socketeer EpollSelector": toggle(ours.modify, ours.select),
        "socketeer Poller": toggle(poller.modify, poller.poll),
    }
    return samples, [stdlib.close, ours.close, poller.close]


# --- running and reporting -----------------------------------------------------------------------


def measure(samples: dict[str, Callable[[], int]], repeats: int, per_round_units: int, rounds: int):
    results: dict[str, list[float]] = {name: [] for name in samples}
    for _ in range(repeats):
        for name, sample in samples.items():  # interleaved: drift hits every implementation alike
            results[name].append(sample() / rounds / per_round_units)
    return {name: statistics.median(values) for name, values in results.items()}


def report(title: str, unit: str, medians: dict[str, float]) -> None:
    baseline_name = next(name for name in medians if name.startswith("stdlib"))
    baseline = medians[baseline_name]
    print(f"  {title} ({unit}, median)")
    for name, value in medians.items():
        ratio = "" if name == baseline_name else f"  {baseline / value:5.2f}x the stdlib"
        print(f"    {name:34s} {value:9.1f} ns{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sizes", default="10,1000,10000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    raise_fd_limit(max(sizes) + 64)
    print(f"python {sys.version.split()[0]}, {args.repeats} interleaved repeats, ratios = stdlib / socketeer")
    for size in sizes:
        print(f"\n{size} fds")
        rounds = max(1, TARGET_NS // (size * 400))
        for title, unit, build, per_round in (
            ("poll, every fd ready", "per ready fd", poll_samples, size),
            ("register + unregister", "per fd", register_samples, size),
            ("modify, applied by one select(0) per round", "per change", modify_samples, 2 * size),
        ):
            if build is poll_samples:  # eventfds holding a count of 1: always readable
                fds = [os.eventfd(1, os.EFD_CLOEXEC) for _ in range(size)]
                release = lambda: [os.close(fd) for fd in fds]  # noqa: E731
            else:  # disarmed timerfds: never ready, so selects build no events
                timers = [socketeer.Timer() for _ in range(size)]
                fds = [timer.fileno() for timer in timers]
                release = lambda: [timer.close() for timer in timers]  # noqa: E731
            samples, closers = build(fds, rounds)
            try:
                report(title, unit, measure(samples, args.repeats, per_round, rounds))
            finally:
                for close in closers:
                    close()
                release()

if __name__ == "__main__":
    main()
