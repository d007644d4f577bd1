"""``socketeer bench [ARGS...]``: the side-by-side benchmarks (benchmarks/run.py).

Every argument after ``bench`` belongs to run.py, so this command has no argparse parser of its own.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from .common import CommandError

__all__ = ["add_parser", "run", "find_benchmarks", "benchmark_roots"]


BENCH_HELP = """usage: socketeer bench [ARGS...]

Runs the side-by-side echo benchmarks (benchmarks/run.py) with ARGS: socketeer's Server beside
asyncio, uvloop, selectors and a plain C epoll server, one table of ratios. The benchmarks live
in socketeer's source tree, not in the installed package: run this inside a checkout (found
from the current directory or next to the imported package). `socketeer bench --help` in a
checkout shows run.py's own options (--quick, --servers, --configs, --json ...)."""


def benchmark_roots() -> list[Path]:
    """Where a checkout may be: the current directory, and the tree holding this package
    (python/socketeer/ in a checkout)."""
    return [Path.cwd(), Path(__file__).resolve().parents[3]]


def find_benchmarks() -> Optional[Path]:
    for root in benchmark_roots():
        script = root / "benchmarks" / "run.py"
        if script.is_file():
            return script
    return None


def run(argv: Sequence[str]) -> int:
    script = find_benchmarks()
    if script is None:
        if list(argv) in (["-h"], ["--help"]):
            print(BENCH_HELP)
            return 0
        raise CommandError("bench: the benchmarks live in socketeer's source tree (benchmarks/run.py); "
                           "run `socketeer bench` inside a checkout")
    import importlib.util

    spec = importlib.util.spec_from_file_location("socketeer_benchmarks_run", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    sys.argv[0] = "socketeer bench"  # run.py's argparse names itself after argv[0]
    return int(module.main(list(argv)))

def add_parser(commands: Any) -> None:
    """Registers ``socketeer bench`` (for --help; main() hands its arguments to run.py)."""
    commands.add_parser("bench", add_help=False, help="the side-by-side benchmarks (benchmarks/run.py; "
                                                      "source tree only)")
