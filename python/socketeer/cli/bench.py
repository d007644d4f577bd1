"""``socketeer bench [--quick] [OPTIONS]``: the side-by-side echo benchmark, from the installed
package.

socketeer's Server (built-in echo, a Python handler), socketeer.aio and asyncio's Protocol on
socketeer.aio.Loop beside asyncio (Protocol, streams) and uvloop, each req/s a ratio to a plain
C epoll echo server, with the server's CPU time per request. The load generator and the C
server come with the package (``socketeer/bin``); the harness is :mod:`socketeer.benchmark`,
which ``benchmarks/run.py`` drives with the full matrix in a source checkout.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ..benchmark import command, tools
from .common import CommandError

__all__ = ["PROFILE", "add_parser", "run"]

PROFILE = command.Profile(
    servers="c-reference,socketeer-builtin,socketeer-handler,socketeer-aio,socketeer-loop-aio,asyncio-protocol,"
            "socketeer-loop-protocol,asyncio-streams,uvloop-protocol",
    configs="tcp-1x64,tcp-10x64,tcp-100x1k,tcp-10x64k,unix-10x64,udp-10x64",
    cells=command.Cells(duration=1.5, warmup=0.3, repeats=3),
    quick_servers="c-reference,socketeer-builtin,socketeer-handler,socketeer-aio,asyncio-protocol,"
                  "socketeer-loop-protocol,asyncio-streams,uvloop-protocol",
    quick_configs="tcp-10x64,tcp-100x1k",
    quick_cells=command.Cells(duration=0.6, warmup=0.2, repeats=3),
)

DESCRIPTION = """\
Echo servers side by side on loopback: socketeer's Server (built-in echo, a Python handler),
socketeer.aio, and asyncio's Protocol on socketeer's own loop (socketeer.aio.Loop) beside asyncio
and uvloop (when installed), each req/s a ratio to a plain C epoll echo server (x C), with the
server's CPU time per request (user + system), then the goals the run measured (--goals: all of
them). Servers and the load generator run pinned to different CPUs; rounds are interleaved so
the host's drift hits all alike. --quick takes under a minute on two cores. The full matrix is
benchmarks/run.py in a source checkout."""


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as one line, exit status 2 (through socketeer's CommandError)."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"bench: {message} (see socketeer bench --help)", 2)


def parser() -> argparse.ArgumentParser:
    """``socketeer bench``'s own options."""
    bench = _Parser(prog="socketeer bench", description=DESCRIPTION,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_arguments(bench, PROFILE)
    return bench


def installed_tools(args: argparse.Namespace, log: Callable[[str], None]) -> tools.Tools:
    """The programs installed with the package (built first in a source tree without them)."""
    if tools.installed() is None and tools.checkout_root() is not None:
        log("building socketeer-loadgen and echo-reference in the source tree's build/bench ...")
    return tools.find()


def run(argv: Sequence[str]) -> int:
    """Runs the benchmark with ``argv`` (everything after ``bench``)."""
    try:
        return command.main(parser(), PROFILE, list(argv), installed_tools)
    except tools.ToolsError as error:
        raise CommandError(f"bench: {error}") from None


def add_parser(commands: Any) -> None:
    """Registers ``socketeer bench`` (for the top-level --help; main() hands its arguments to run())."""
    commands.add_parser("bench", add_help=False, help="echo servers side by side, ratios to C (--quick: < 1 min)")
