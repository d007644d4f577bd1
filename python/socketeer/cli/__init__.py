"""The ``socketeer`` command line.

    socketeer connect ENDPOINT        netcat-like: stdin to the socket, the socket to stdout; stdin's
                                      end half-closes the stream, the peer's end ends the program
                                      (-w SECONDS: or that much quiet after stdin ended; -v: say
                                      what happens on stderr). udp:// and unix+dgram: each stdin
                                      line is one datagram
    socketeer listen [-k] ENDPOINT    netcat -l: accept a connection, then as connect; -k accepts
                                      the next one after it; udp:// prints each datagram and sends
                                      stdin lines to the last sender
    socketeer relay A B               socat-like, on the C++ proxy (splice): listen on A, connect
                                      each client to B, copy both ways passing each half-close on;
                                      udp:// A and B relay datagrams
    socketeer info ENDPOINT           the addresses an endpoint names (host names resolved)
    socketeer ss [-tuwxlapin46H] [-N NETNS] [FILTER]
                                      the kernel's sockets (sock_diag), printed as iproute2's ss
                                      prints them; names never resolved
    socketeer bench [--quick]         echo servers side by side (socketeer, asyncio, uvloop) as ratios
                                      to a C epoll server, with CPU per request (--help: options)
    socketeer echo --self-test        start the reactor's echo on loopback (TCP, UDP, a unix stream
                                      socket), talk to each, print what happened, exit 0 if all
                                      answered correctly
    socketeer echo [--threads N] tcp://HOST:PORT
                                      serve echo with the C++ reactor until Ctrl-C (also
                                      udp://HOST:PORT, unix:PATH, unix+seqpacket:PATH, unix:@NAME
                                      for the abstract namespace; see socketeer.endpoints); port 0
                                      picks one, and the first line printed names the address
                                      really bound
    socketeer --version

Endpoints take service names for ports (``tcp://localhost:http``, from /etc/services). Every
error is one line on stderr, ``socketeer: COMMAND: ENDPOINT: ERRNAME (reason)``; the exit
status is 2 for a usage mistake, 1 for a failure. A closed stdout (``... | head -1``) ends a
command quietly with status 141, as SIGPIPE would end cat.

One module per command (echo, connect, listen, relay, info, ss, bench); each registers its own
parser with ``add_parser`` and runs with ``run``. What they share is in
:mod:`socketeer.cli.common` and, for stdin/stdout against a socket, :mod:`socketeer.cli.stdio`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, Optional

from .. import __version__
from . import bench, connect, echo, info, listen, relay, ss
from .common import CommandError, StdoutClosed, fail

__all__ = ["main"]

SIGPIPE_STATUS = 128 + 13  # what a shell reports for a program SIGPIPE ended

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "echo": echo.run, "connect": connect.run, "listen": listen.run, "relay": relay.run, "info": info.run, "ss": ss.run,
}


class _Parser(argparse.ArgumentParser):
    """argparse, with usage mistakes reported in one line (not usage text plus the error)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="socketeer", description="Every Berkeley socket for Python: tools.")
    parser.add_argument("--version", action="version", version=f"socketeer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (echo, connect, listen, relay, info, ss, bench):
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
    except (StdoutClosed, BrokenPipeError):  # stdout closed early (`socketeer ... | head`): quietly, as cat
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush fails no more
        return SIGPIPE_STATUS
