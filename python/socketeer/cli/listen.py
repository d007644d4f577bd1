"""``socketeer listen ENDPOINT``: netcat's -l. Accept one connection and copy stdin to it and it
to stdout, as connect does; ``-k`` goes on accepting, one connection after another. On a datagram
endpoint (udp://, unix+dgram:), every datagram that comes is printed, and each stdin line goes to
whoever sent the last one."""

from __future__ import annotations

import argparse
from typing import Any, Optional

from ..address import AnyAddress
from ..constants import SOCK_DGRAM
from ..endpoints import Endpoint
from ..streams import Datagram, Listener, bind, listen
from .common import ANY_ENDPOINT, CommandError, Verbose, endpoint_arg, os_error, peer_text, stopped_by_signals
from .connect import add_wait_argument
from .stdio import StdinLines, StdinPump, datagrams_with_stdio, stdin_chunks, stream_with_stdio

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Registers ``socketeer listen`` on the subcommand parsers."""
    parser = commands.add_parser(
        "listen", help="netcat -l: accept a connection on ENDPOINT, stdin to it, it to stdout",
        description="Listen on ENDPOINT, accept one connection, copy stdin to it and what it sends to "
                    "stdout (the end of stdin half-closes it), and exit when it closes; -k accepts the "
                    "next one instead, until Ctrl-C. On udp:// and unix+dgram: every datagram that "
                    "comes is printed, and each stdin line goes as one datagram to the last sender, "
                    "until Ctrl-C (or --wait seconds of quiet after stdin ended).")
    parser.add_argument("endpoint", metavar="ENDPOINT", help=ANY_ENDPOINT + "; port 0 picks one (see -v)")
    parser.add_argument("-k", "--keep-listening", action="store_true",
                        help="after a connection ends, accept the next one")
    add_wait_argument(parser)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="say on stderr what happens (listening on, accepted from)")


def serve_streams(listener: Listener, kind: int, keep: bool, wait: Optional[float], verbose: Verbose) -> None:
    pump = StdinPump(stdin_chunks)
    while True:
        with listener.accept() as stream:
            peer = peer_text(stream.peer_address, kind)
            verbose(f"accepted from {peer}")
            stream_with_stdio(stream, pump, wait)
            verbose(f"connection from {peer} ended")
        if not keep:
            return


def serve_datagrams(datagram: Datagram, kind: int, wait: Optional[float], verbose: Verbose) -> None:
    last: list[Optional[AnyAddress]] = [None]
    unsent: list[bytes] = []  # stdin lines from before anyone sent a datagram

    def send(data: bytes) -> None:
        if last[0] is None:
            unsent.append(data)
        else:
            datagram.send_to(data, last[0])

    def received(sender: Optional[AnyAddress]) -> None:
        if sender is not None and sender != last[0]:
            verbose(f"datagram from {peer_text(sender, kind)}")
            last[0] = sender
            while unsent:
                datagram.send_to(unsent.pop(0), sender)

    datagrams_with_stdio(datagram, StdinPump(StdinLines()), wait, send=send, received=received)


def run(args: argparse.Namespace) -> int:
    endpoint = endpoint_arg(args.endpoint, "listen")
    if args.wait is not None and args.wait < 0:
        raise CommandError("listen: --wait must be >= 0", 2)
    verbose = Verbose("listen", args.verbose)
    try:
        server: Any = bind(endpoint) if endpoint.kind == SOCK_DGRAM else listen(endpoint)
    except OSError as error:
        raise os_error("listen", endpoint, error) from None
    bound = Endpoint.from_address(server.socket.local_address, endpoint.kind)
    try:
        with server, stopped_by_signals():
            verbose(f"listening on {bound}")
            if endpoint.kind == SOCK_DGRAM:
                serve_datagrams(server, endpoint.kind, args.wait, verbose)
            else:
                serve_streams(server, endpoint.kind, args.keep_listening, args.wait, verbose)
    except KeyboardInterrupt:
        verbose("stopped")
    except OSError as error:
        raise os_error("listen", bound, error) from None
    return 0
