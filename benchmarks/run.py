#!/usr/bin/env python3
"""Echo servers side by side: socketeer, asyncio, uvloop, selectors and a plain C epoll server.

    python benchmarks/run.py                     # every server, every config (~15 minutes)
    python benchmarks/run.py --goals             # issue 14's matrix and its goals (~5 minutes)
    python benchmarks/run.py --quick             # a smoke run (~2.5 minutes)
    python benchmarks/run.py --servers c-reference,uvloop-protocol --configs 'tcp-*' --json

The full matrix, from a source checkout. The harness is the package's (socketeer.benchmark, the
same one `socketeer bench` drives with a smaller default set); this driver adds the build: the
load generator and the C reference are built with CMake + Ninja into build/bench/ on first use
(`pip install ".[bench]"` brings cmake, ninja and uvloop), where `socketeer bench` uses the
ones installed with the package.

Each server runs pinned to one CPU, the C++ load generator (socketeer-loadgen) on another. For
every config (transport, connections x message size) each server is measured in turn, the order
rotated from repeat to repeat, so the host's drift (+-20 % here) hits all servers alike. The table
shows the median req/s, the median of its per-repeat ratios to the C reference, and the server's
CPU time per request (from /proc, over the measured window only) - the figure that still means
something when the loopback round trip, not the server, sets the pace.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
try:
    import socketeer.benchmark  # noqa: F401  (installed, or on PYTHONPATH)
except ImportError:
    sys.path.insert(0, str(ROOT / "python"))

from socketeer.benchmark import command, tools  # noqa: E402
from socketeer.benchmark.harness import (  # noqa: E402,F401  (instructions.py and the tests use these names)
    CONFIGS, REFERENCE, SERVERS, UNAVAILABLE, Config, Running, Server, measure, pick, server_env, start)
from socketeer.benchmark.report import add_ratios, summarize, table  # noqa: E402,F401

DEFAULT_BUILD_DIR = ROOT / "build" / "bench"
LOADGEN = tools.LOADGEN
BuildError = tools.ToolsError

PROFILE = command.Profile(servers="", configs="", cells=command.Cells(duration=1.5, warmup=0.3, repeats=3),
                          quick_servers="", quick_configs="", quick_cells=command.Cells(duration=0.3, warmup=0.1,
                                                                                        repeats=2))


def build(build_dir: Path = DEFAULT_BUILD_DIR, *, verbose: bool = False) -> tuple[Path, Path]:
    """Configure (once) and build socketeer-loadgen and echo-reference (and syscall-costs, so that it
    keeps compiling) into build_dir; returns the first two paths."""
    built = tools.build(ROOT, build_dir, verbose=verbose)
    return built.loadgen, built.reference


def built(args: argparse.Namespace, log: Callable[[str], None]) -> tools.Tools:
    log(f"building {LOADGEN} and echo-reference in {args.build_dir} ...")
    return tools.build(ROOT, args.build_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_arguments(parser, PROFILE)
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR, help="where to build (build/bench)")
    parser.add_argument("--build-only", action="store_true", help="build the load generator and C reference, then exit")
    try:
        return command.main(parser, PROFILE, argv, built)
    except tools.ToolsError as error:
        print(f"run.py: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
