"""``socketeer connect ENDPOINT``: netcat-like, stdin to the socket and the socket to stdout."""

from __future__ import annotations

import argparse
from typing import Any, Optional, Union

from ..streams import Datagram, Stream, connect
from .common import ANY_ENDPOINT, CommandError, Verbose, endpoint_arg, os_error, peer_text
from .stdio import StdinLines, StdinPump, datagrams_with_stdio, stdin_chunks, stream_with_stdio

__all__ = ["add_parser", "run", "add_wait_argument"]

DATAGRAM_WAIT = 1.0


def add_wait_argument(parser: argparse.ArgumentParser) -> None:
    """``-w/--wait SECONDS``, netcat's -w, for connect and listen."""
    parser.add_argument("-w", "--wait", type=float, default=None, metavar="SECONDS",
                        help="after stdin ends, wait at most this long for the peer to say more, then "
                             f"exit (streams: default until the peer closes; datagrams: {DATAGRAM_WAIT:g})")


def add_parser(commands: Any) -> None:
    """Registers ``socketeer connect`` on the subcommand parsers."""
    parser = commands.add_parser(
        "connect", help="netcat-like: stdin to ENDPOINT, ENDPOINT to stdout",
        description="Connect to ENDPOINT; copy stdin to it and what it sends to stdout. The end of "
                    "stdin half-closes the connection (the peer reads end of stream and can still "
                    "answer); the program ends when the peer closes, or when it has been quiet for "
                    "--wait seconds after stdin ended. For udp:// and unix+dgram: each stdin line is "
                    "one datagram, each reply is printed, and the program ends --wait seconds after "
                    "stdin ended and the last reply came.")
    parser.add_argument("endpoint", metavar="ENDPOINT", help=ANY_ENDPOINT)
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="give up connecting after this long (10)")
    add_wait_argument(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="say on stderr what happens (connected to)")


def run(args: argparse.Namespace) -> int:
    endpoint = endpoint_arg(args.endpoint, "connect")
    if args.wait is not None and args.wait < 0:
        raise CommandError("connect: --wait must be >= 0", 2)
    verbose = Verbose("connect", args.verbose)
    try:
        peer: Union[Stream, Datagram] = connect(endpoint, timeout=args.timeout)
    except OSError as error:
        raise os_error("connect", endpoint, error) from None
    with peer:
        try:
            verbose(f"connected to {peer_text(peer.socket.peer_address, endpoint.kind)} "
                    f"from {peer_text(peer.socket.local_address, endpoint.kind)}")
            if isinstance(peer, Datagram):
                wait: Optional[float] = DATAGRAM_WAIT if args.wait is None else args.wait
                datagrams_with_stdio(peer, StdinPump(StdinLines()), wait)
            else:
                stream_with_stdio(peer, StdinPump(stdin_chunks), args.wait)
        except OSError as error:
            raise os_error("connect", endpoint, error) from None
    verbose("done")
    return 0
