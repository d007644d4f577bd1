"""The ``socketeer`` command line.

    socketeer connect ENDPOINT        netcat-like: stdin to the socket, the socket to stdout; stdin's
                                      end half-closes the stream, the peer's end ends the program
                                      (udp:// and unix+dgram: each stdin line is one datagram)
    socketeer relay A B               socat-like: listen on A, connect each client to B, copy both
                                      ways, passing each half-close on
    socketeer info ENDPOINT           the addresses an endpoint names (host names resolved)
    socketeer ss [-tuwxlapin46H] [-N NETNS] [FILTER]
                                      the kernel's sockets (sock_diag), printed as iproute2's ss
                                      prints them; names never resolved
    socketeer bench [--quick]         echo servers side by side (socketeer, asyncio, uvloop) as ratios
                                      to a C epoll server, with CPU per request (--help: options)
    socketeer echo --self-test        start echo servers on loopback (TCP, UDP, a unix stream
                                      socket), talk to each, print what happened, exit 0 if all
                                      answered correctly
    socketeer echo tcp://HOST:PORT    serve echo until Ctrl-C (also udp://HOST:PORT, unix:PATH,
                                      unix+seqpacket:PATH, unix:@NAME for the abstract namespace;
                                      see socketeer.endpoints); port 0 picks one, and the first
                                      line printed names the address really bound

One module per command (echo, connect, relay, info, ss, bench); each registers its own parser with
``add_parser`` and runs with ``run``. What they share is in :mod:`socketeer.cli.common`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, Optional

from . import bench, connect, echo, info, relay, ss
from .common import CommandError, fail

__all__ = ["main"]

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "echo": echo.run, "connect": connect.run, "relay": relay.run, "info": info.run, "ss": ss.run,
}


class _Parser(argparse.ArgumentParser):
    """argparse, with usage mistakes reported in one line (not usage text plus the error)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="socketeer", description="Every Berkeley socket for Python: tools.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (echo, connect, relay, info, ss, bench):
        module.add_parser(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs one ``socketeer`` command; returns the exit status (2 usage mistakes, 1 failures)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["bench"]:  # bench parses its own arguments (socketeer.benchmark.command)
            return bench.run(argv[1:])
        args = _parser().parse_args(argv)
        if args.command is None:
            return fail(f"give a command: {', '.join([*COMMANDS, 'bench'])} (see socketeer --help)")
        return COMMANDS[args.command](args)
    except CommandError as error:
        print(f"socketeer: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # stdout closed early (`socketeer ... | head`): quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
