"""``socketeer connect ENDPOINT``: netcat-like, stdin to the socket and the socket to stdout."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Optional, Union

from ..constants import SHUT_RDWR
from ..poller import EVENT_READ, Poller
from ..streams import Datagram, Stream, connect
from .common import ANY_ENDPOINT, CommandError, endpoint_arg, reason

__all__ = ["add_parser", "run"]


def _write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


class StdinPump:
    """Reads stdin in a thread and hands each chunk to ``send``; calls ``end(error)`` once, when
    stdin ends or reading or sending fails.

    Only the stdin read runs outside the lock, and ``stop()`` takes the lock, so once it returns
    no thread is inside a socket call: a daemon thread caught in the C++ core at interpreter exit
    would abort the process. A thread still waiting for stdin is harmless and left behind."""

    def __init__(self, read: Callable[[], bytes], send: Callable[[bytes], object],
                 end: Callable[[Optional[OSError]], None]):
        self._read, self._send, self._end = read, send, end
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> "StdinPump":
        threading.Thread(target=self._run, daemon=True, name="socketeer-stdin").start()
        return self

    def _run(self) -> None:
        error: Optional[OSError] = None
        try:
            while data := self._read():
                with self._lock:
                    if self._stopped:
                        return
                    self._send(data)
        except OSError as failure:
            error = failure
        with self._lock:
            if not self._stopped:
                self._end(error)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True


def _half_close(stream: Stream, error: Optional[OSError]) -> None:
    """At the end of stdin, the peer reads end of stream. A failed send is left for the receiving
    side to report: a reset shows there too."""
    if error is None:
        try:
            stream.close_write()
        except OSError:
            pass


def stream_with_stdio(stream: Stream) -> None:
    """stdin to the stream (in a thread), the stream to stdout, until the peer closes."""
    pump = StdinPump(lambda: os.read(0, 65536), stream.send_all, lambda error: _half_close(stream, error)).start()
    try:
        while data := stream.recv(65536):
            _write_stdout(data)
    finally:
        try:
            stream.socket.shutdown(SHUT_RDWR)  # ends a send the pump may be blocked in
        except OSError:
            pass
        pump.stop()


def datagrams_with_stdio(datagram: Datagram, wait: float) -> None:
    """Each stdin line out as a datagram, each reply to stdout; ends ``wait`` seconds after
    stdin ended and the last reply came."""
    ended: list[Optional[OSError]] = []

    def end(error: Optional[OSError]) -> None:
        ended.append(error)
        poller.wake()

    with Poller() as poller:
        poller.register(datagram.socket, EVENT_READ)
        pump = StdinPump(lambda: sys.stdin.buffer.readline(65536), datagram.send, end).start()
        deadline: Optional[float] = None
        try:
            while deadline is None or time.monotonic() < deadline:
                timeout = None if deadline is None else deadline - time.monotonic()
                replied = bool(poller.poll(timeout))
                if replied:
                    _write_stdout(datagram.recv())  # readable: never blocks (an ICMP error raises)
                if ended and ended[0] is not None:
                    raise ended[0]
                if ended and (replied or deadline is None):
                    deadline = time.monotonic() + wait
        finally:
            pump.stop()
            poller.unregister(datagram.socket)


def add_parser(commands: Any) -> None:
    """Registers ``socketeer connect`` on the subcommand parsers."""
    connect = commands.add_parser(
        "connect", help="netcat-like: stdin to ENDPOINT, ENDPOINT to stdout",
        description="Connect to ENDPOINT; copy stdin to it and what it sends to stdout. The end of "
                    "stdin half-closes the connection (the peer reads end of stream and can still "
                    "answer); the program ends when the peer closes. For udp:// and unix+dgram: each "
                    "stdin line is one datagram, each reply is printed, and the program ends --wait "
                    "seconds after stdin ended and the last reply came.")
    connect.add_argument("endpoint", metavar="ENDPOINT", help=ANY_ENDPOINT)
    connect.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                         help="give up connecting after this long (10)")
    connect.add_argument("--wait", type=float, default=1.0, metavar="SECONDS",
                         help="datagrams: how long to wait for replies after stdin ended (1)")


def run(args: argparse.Namespace) -> int:
    endpoint = endpoint_arg(args.endpoint, "connect")
    try:
        peer: Union[Stream, Datagram] = connect(endpoint, timeout=args.timeout)
    except OSError as error:
        raise CommandError(f"connect: cannot connect to {endpoint}: {reason(error)}") from None
    with peer:
        try:
            if isinstance(peer, Datagram):
                datagrams_with_stdio(peer, args.wait)
            else:
                stream_with_stdio(peer)
        except OSError as error:
            raise CommandError(f"connect: {endpoint}: {reason(error)}") from None
    return 0
