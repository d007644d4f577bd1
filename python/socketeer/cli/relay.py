"""``socketeer relay A B``: socat-like, accept on A and copy each client both ways to B.

The copying runs in socketeer's C++ proxy (:class:`socketeer.FaultProxy`, with no fault set): one
thread, splice() between the two sockets, each side's half-close passed on; UDP relays datagrams
(one upstream socket per client address, so the replies find their way back). This command only
watches the proxy's counters and says what happened."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from ..constants import SOCK_DGRAM, SOCK_SEQPACKET
from ..endpoints import Endpoint
from ..faults import FaultProxy
from .common import CommandError, endpoint_arg, errno_text, os_error, stopped_by_signals

__all__ = ["add_parser", "run", "RelayWatch"]

LOOK_EVERY = 0.05  # seconds between two looks at the proxy's counters


class RelayWatch:
    """Turns the proxy's counters into log lines: each new connection, each failed connect
    upstream (with its errno), each connection that ended."""

    def __init__(self, proxy: FaultProxy, target: Endpoint, log: Callable[[str], None]):
        self.proxy, self.target, self.log = proxy, target, log
        self.connections = self.errors = self.closed = 0

    def look(self) -> dict[str, int]:
        stats = self.proxy.stats()
        for number in range(self.connections + 1, stats["connections"] + 1):
            self.log(f"connection {number}: relaying to {self.target}")
        self.connections = stats["connections"]
        if stats["connect_errors"] > self.errors:
            code = stats["connect_errno"]
            failure = errno_text(OSError(code, os.strerror(code)))
            for _ in range(stats["connect_errors"] - self.errors):
                self.log(f"cannot connect to {self.target}: {failure}; client closed")
            self.errors = stats["connect_errors"]
        closed = stats["connections"] - stats["active"]
        if closed > self.closed:
            self.log(f"{closed - self.closed} connection{'s' if closed - self.closed > 1 else ''} closed "
                     f"({stats['active']} open)")
            self.closed = closed
        return stats

    def until_first_ends(self) -> bool:
        """Waits for the first connection to end; False if connecting it upstream failed."""
        while True:
            stats = self.look()
            if stats["connections"] - stats["active"] >= 1:  # one has ended (others may go on: cut short)
                return stats["connect_errors"] == 0
            time.sleep(LOOK_EVERY)

    def forever(self) -> None:
        while True:
            self.look()
            time.sleep(LOOK_EVERY)


def add_parser(commands: Any) -> None:
    """Registers ``socketeer relay`` on the subcommand parsers."""
    relay = commands.add_parser(
        "relay", help="socat-like: accept on A, connect each client to B, copy both ways",
        description="Listen on A; connect every client that arrives to B and copy both directions in "
                    "socketeer's C++ proxy (splice), passing each side's half-close on to the other. Any "
                    "two byte-stream endpoints (tcp://, unix:), e.g. `socketeer relay unix:/tmp/app.sock "
                    "tcp://127.0.0.1:8080`, or two udp:// ones (datagrams, replies back to each client).")
    relay.add_argument("listen", metavar="A", help="where to listen: tcp://HOST:PORT, unix:PATH or udp://HOST:PORT")
    relay.add_argument("target", metavar="B", help="where to connect each client: tcp://, unix: or udp:// as A")
    relay.add_argument("--once", action="store_true", help="relay one connection, then exit (streams)")


def _check(source: Endpoint, target: Endpoint, once: bool) -> None:
    """Usage mistakes: what the proxy cannot relay."""
    for endpoint in (source, target):
        if endpoint.kind == SOCK_SEQPACKET:
            raise CommandError(f"relay: {endpoint}: seqpacket records would lose their boundaries in a byte "
                               "stream; relay copies tcp:// and unix: streams, or udp:// datagrams", 2)
        if endpoint.kind == SOCK_DGRAM and endpoint.is_unix:
            raise CommandError(f"relay: {endpoint}: relay copies tcp:// and unix: streams, or udp:// datagrams "
                               "(a unix datagram endpoint is not supported)", 2)
    if (source.kind == SOCK_DGRAM) != (target.kind == SOCK_DGRAM):
        datagram = source if source.kind == SOCK_DGRAM else target
        raise CommandError(f"relay: {datagram} is a datagram endpoint and the other a stream: "
                           "both must be streams (tcp://, unix:) or both udp://", 2)
    if once and source.kind == SOCK_DGRAM:
        raise CommandError(f"relay: --once needs stream endpoints ({source} has no connections to count)", 2)


def run(args: argparse.Namespace) -> int:
    source, target = endpoint_arg(args.listen, "relay"), endpoint_arg(args.target, "relay")
    _check(source, target, args.once)

    def log(message: str) -> None:
        print(f"relay: {message}", flush=True)

    try:
        target.addresses()  # resolved once, here, where a failure names the target
    except OSError as error:
        raise os_error("relay", target, error) from None
    try:
        proxy = FaultProxy(target, listen=str(source))
    except OSError as error:
        raise os_error("relay", source, error) from None
    ok = True
    watch = RelayWatch(proxy, target, log)
    try:
        with stopped_by_signals():
            log(f"listening on {proxy.endpoint}, relaying to {target} (Ctrl-C stops)")
            if args.once:
                ok = watch.until_first_ends()
            else:
                watch.forever()
    except KeyboardInterrupt:
        watch.look()  # what happened since the last look
        log("stopped")
    finally:
        proxy.close()
    return 0 if ok else 1
