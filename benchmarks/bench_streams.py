"""Per-message cost of reading framed streams: socketeer's Stream.lines()/messages() (sync and
asyncio) against the stdlib's buffered readers, side by side in one run.

    PYTHONPATH=python python3 benchmarks/bench_streams.py [--repeats 15] [--messages 2000] [--size 32] [--json]

Four cases, each library on its own unix socketpair. Before each sample the writer sends a block
of `--messages` framed messages of `--size` bytes in one sendall (untimed); the sample is the
time to read them all, per message:
  * lines         Stream.lines()                    vs  socket.makefile("rb").readline()
  * messages      Stream.messages(length_prefixed)  vs  makefile("rb"): read(4), then read(n)
  * aio lines     aio.Stream.lines()                vs  asyncio.StreamReader.readline()
  * aio messages  aio.Stream.messages(...)          vs  StreamReader.readexactly(4), readexactly(n)
Each repeat times every case once per library, alternating which goes first. Reported: the
median ns per message of each, and the median of the per-repeat ratios socketeer / stdlib
(< 1: socketeer is faster). Nothing here asserts: the numbers are for reading
(see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any, Optional

import socketeer
from socketeer import aio, framing

CASES = ["lines", "messages", "aio lines", "aio messages"]
PREFIX = 4


@dataclass
class Result:
    case: str
    stdlib_ns: float
    socketeer_ns: float
    ratio: float


def block(case: str, count: int, size: int) -> bytes:
    payload = b"x" * size
    if case.endswith("lines"):
        return (payload + b"\n") * count
    return (size.to_bytes(PREFIX, "big") + payload) * count


class Readers:
    """Both libraries' readers for every case, on their own socketpairs, and one event loop for
    the asyncio ones. reader(case, library)(count) reads `count` messages the writer just sent."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.loop = asyncio.new_event_loop()
        self._closers: list[Callable[[], Any]] = []
        self._writers: dict[tuple[str, str], socket.socket] = {}
        self._readers: dict[tuple[str, str], Callable[[int], None]] = {}
        for case in CASES:
            for library in ("stdlib", "socketeer"):
                ours, theirs = socket.socketpair()
                self._writers[(case, library)] = theirs
                self._closers.append(theirs.close)
                make = getattr(self, f"_{library}_{'aio' if case.startswith('aio') else 'sync'}")
                self._readers[(case, library)] = make(ours, case.endswith("lines"))

    def send(self, case: str, library: str, data: bytes) -> None:
        self._writers[(case, library)].sendall(data)

    def reader(self, case: str, library: str) -> Callable[[int], None]:
        return self._readers[(case, library)]

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self.loop.run_until_complete(asyncio.sleep(0))  # the asyncio transports finish closing
        self.loop.close()

    # --- the four kinds of reader ----------------------------------------------------------------

    def _socketeer_sync(self, sock: socket.socket, lines: bool) -> Callable[[int], None]:
        stream = socketeer.Stream(socketeer.Socket(fileno=sock.detach()))
        self._closers.append(stream.close)
        messages = stream.lines() if lines else stream.messages(framing.length_prefixed(PREFIX))

        def read(count: int) -> None:
            for _ in islice(messages, count):
                pass

        return read

    def _stdlib_sync(self, sock: socket.socket, lines: bool) -> Callable[[int], None]:
        file = sock.makefile("rb")
        self._closers += [sock.close, file.close]
        readline, read_bytes = file.readline, file.read

        def read_lines(count: int) -> None:
            for _ in range(count):
                readline()

        def read_messages(count: int) -> None:
            for _ in range(count):
                read_bytes(int.from_bytes(read_bytes(PREFIX), "big"))

        return read_lines if lines else read_messages

    def _socketeer_aio(self, sock: socket.socket, lines: bool) -> Callable[[int], None]:
        stream = aio.Stream(socketeer.Socket(fileno=sock.detach()))
        self._closers.append(stream.close)
        messages = stream.lines() if lines else stream.messages(framing.length_prefixed(PREFIX))
        self._closers.append(lambda: self.loop.run_until_complete(messages.aclose()))

        async def read(count: int) -> None:
            for _ in range(count):
                await messages.__anext__()

        return lambda count: self.loop.run_until_complete(read(count))

    def _stdlib_aio(self, sock: socket.socket, lines: bool) -> Callable[[int], None]:
        reader, writer = self.loop.run_until_complete(asyncio.open_unix_connection(sock=sock))
        self._closers.append(writer.close)
        readline, readexactly = reader.readline, reader.readexactly

        async def read_lines(count: int) -> None:
            for _ in range(count):
                await readline()

        async def read_messages(count: int) -> None:
            for _ in range(count):
                await readexactly(int.from_bytes(await readexactly(PREFIX), "big"))

        body = read_lines if lines else read_messages
        return lambda count: self.loop.run_until_complete(body(count))


def measure(repeats: int, count: int, size: int) -> list[Result]:
    readers = Readers(size)
    samples: dict[tuple[str, str], list[float]] = {}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for repeat in range(repeats + 1):
            libraries = ["stdlib", "socketeer"] if repeat % 2 else ["socketeer", "stdlib"]
            for case in CASES:
                data = block(case, count, size)
                for library in libraries:
                    readers.send(case, library, data)
                    read = readers.reader(case, library)
                    start = time.perf_counter_ns()
                    read(count)
                    elapsed = time.perf_counter_ns() - start
                    if repeat:  # repeat 0 warms up caches, allocators and the CPU clock
                        samples.setdefault((case, library), []).append(elapsed / count)
    finally:
        if gc_was_enabled:
            gc.enable()
        readers.close()
    results = []
    for case in CASES:
        ours, theirs = samples[(case, "socketeer")], samples[(case, "stdlib")]
        results.append(Result(case, statistics.median(theirs), statistics.median(ours),
                              statistics.median(o / t for o, t in zip(ours, theirs))))
    return results


def print_table(results: list[Result], repeats: int, count: int, size: int) -> None:
    print(f"socketeer {socketeer.__version__} vs the stdlib; Python {platform.python_version()}; median of "
          f"{repeats} interleaved repeats; ns per message, {count} messages of {size} B per sample")
    print()
    header = f"{'case':<14} {'stdlib':>10} {'socketeer':>10} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.case:<14} {r.stdlib_ns:>10.1f} {r.socketeer_ns:>10.1f} {r.ratio:>6.2f}x")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repeats per case (15)")
    parser.add_argument("--messages", type=int, default=2000, help="messages per sample (2000)")
    parser.add_argument("--size", type=int, default=32, help="bytes per message, framing not counted (32)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.messages < 1 or args.size < 1:
        parser.error("--repeats, --messages and --size must be at least 1")
    results = measure(args.repeats, args.messages, args.size)
    if args.json:
        print(json.dumps({"python": platform.python_version(), "socketeer": socketeer.__version__,
                          "repeats": args.repeats, "messages": args.messages, "size": args.size,
                          "results": [asdict(r) for r in results]}, indent=2))
    else:
        print_table(results, args.repeats, args.messages, args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
