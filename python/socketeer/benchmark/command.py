"""The echo benchmark's command line, shared by its two drivers: ``socketeer bench`` (the
installed package's set of servers, the programs shipped in the wheel) and
``benchmarks/run.py`` in a source checkout (every server and config, the programs built from
source). A :class:`Profile` is what differs between them: the default servers, configs and cell
lengths."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

from . import goals, harness
from .report import table
from .tools import Tools

__all__ = ["Cells", "Profile", "add_arguments", "parse", "main"]


@dataclass(frozen=True)
class Cells:
    """How long each cell is measured, and how many rounds there are."""

    duration: float
    warmup: float
    repeats: int

    def __str__(self) -> str:
        return f"{self.repeats} rounds of {self.duration:g} s cells after {self.warmup:g} s warm-up"


@dataclass(frozen=True)
class Profile:
    """A driver's defaults: servers and configs as comma-separated names or globs ("" = all)."""

    servers: str
    configs: str
    cells: Cells
    quick_servers: str
    quick_configs: str
    quick_cells: Cells


def add_arguments(parser: argparse.ArgumentParser, profile: Profile) -> None:
    """The options both drivers take."""
    everything = "every one"
    parser.add_argument("--quick", action="store_true",
                        help=f"a short run: servers {profile.quick_servers or everything}; "
                             f"configs {profile.quick_configs or everything}; {profile.quick_cells}")
    parser.add_argument("--goals", action="store_true",
                        help="the servers and configs the goals name (issue 14's matrix: socketeer.aio.Loop beside "
                             "the stock loop, uvloop and C), unless --servers/--configs say otherwise")
    parser.add_argument("--servers", help="comma-separated names or globs (see --list; default: "
                                          f"{profile.servers or 'all'})")
    parser.add_argument("--configs", help="comma-separated names or globs, e.g. 'tcp-*,udp-10x64' (default: "
                                          f"{profile.configs or 'all'})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of the table")
    parser.add_argument("--duration", type=float, help=f"measured seconds per cell (default {profile.cells.duration:g})")
    parser.add_argument("--warmup", type=float, help=f"warm-up seconds per cell (default {profile.cells.warmup:g})")
    parser.add_argument("--repeats", type=int,
                        help=f"rounds over every server and config (default {profile.cells.repeats})")
    parser.add_argument("--settle", type=float, default=0.05, help="pause between cells, seconds")
    parser.add_argument("--server-cpu", type=int, help="CPU for the servers (default: the first allowed)")
    parser.add_argument("--client-cpu", type=int, help="CPU for the load generator (default: the second)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin anything")
    parser.add_argument("--list", action="store_true", help="list servers and configs, then exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")


def parse(parser: argparse.ArgumentParser, profile: Profile, argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """The options, with the profile's defaults filled in and the names checked."""
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {"servers": profile.quick_servers if quick else profile.servers,
                "configs": profile.quick_configs if quick else profile.configs}
    if args.goals:
        defaults = {"servers": ",".join(goals.servers()), "configs": ",".join(goals.configs())}
    cells = profile.quick_cells if quick else profile.cells
    for name, value in {**defaults, "duration": cells.duration, "warmup": cells.warmup,
                        "repeats": cells.repeats}.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.repeats < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--repeats must be >= 1, --duration > 0, --warmup >= 0")
    try:
        harness.pick(harness.SERVERS, args.servers, "server")
        harness.pick(harness.CONFIGS, args.configs, "config")
    except harness.UsageError as error:
        parser.error(str(error))
    return args


def main(parser: argparse.ArgumentParser, profile: Profile, argv: Optional[Sequence[str]],
         locate: Callable[[argparse.Namespace, Callable[[str], None]], Tools]) -> int:
    """Parses argv, finds the load generator and the C reference with ``locate(args, log)``
    (which may raise tools.ToolsError: the driver reports it), runs and prints the report."""
    args = parse(parser, profile, argv)
    if args.list:
        for server in harness.SERVERS:
            print(f"server  {server.name:<24} {server.what}")
        for config in harness.CONFIGS:
            print(f"config  {config.name:<24} {config.transport}, {config.connections} x {config.size} B")
        return 0

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    tools = locate(args, log)
    if getattr(args, "build_only", False):
        print(tools.loadgen)
        print(tools.reference)
        return 0
    report = harness.run(args, tools.loadgen, tools.reference, log)
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0
