"""What every ``socketeer`` command shares: the one-line error, endpoint arguments, signals.

Every error a command reports is one line, ``socketeer: COMMAND: WHAT: ERRNAME (reason)``,
where WHAT is the endpoint (or file, or namespace) it was about: :func:`os_error` builds it from
an OSError with :func:`errno_text`. Usage mistakes exit with status 2, failures at run time 1.
"""

from __future__ import annotations

import errno
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, Optional

from ..endpoints import Endpoint, parse_endpoint

__all__ = ["ENDPOINT_FORMS", "ANY_ENDPOINT", "CommandError", "StdoutClosed", "endpoint_arg", "errno_text",
           "os_error", "stopped_by_signals", "fail", "Verbose", "peer_text"]

ENDPOINT_FORMS = "tcp://HOST:PORT, udp://HOST:PORT, unix:PATH or unix+seqpacket:PATH"
ANY_ENDPOINT = ("tcp://HOST:PORT, udp://HOST:PORT, unix:PATH, unix+dgram:PATH or unix+seqpacket:PATH "
                "(PORT may be a service name from /etc/services: tcp://localhost:http)")


class CommandError(Exception):
    """Ends a subcommand with one line on stderr and a non-zero exit status (1: it failed,
    2: it was used wrongly)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class StdoutClosed(Exception):
    """stdout's reader went away (``socketeer connect ... | head -1``). Not an OSError on
    purpose: a broken pipe on stdout is no failure of the socket, and must not be reported as one."""


def endpoint_arg(text: str, command: str) -> Endpoint:
    """Parses an endpoint argument; a malformed one is a usage error naming the command."""
    try:
        return parse_endpoint(text)
    except ValueError as error:
        raise CommandError(f"{command}: {error}", 2) from None


def errno_text(error: OSError) -> str:
    """An OSError's errno as its name and reason, 'ECONNREFUSED (Connection refused)'; an error
    without an errno (a resolver's, or several addresses failing differently) as its message."""
    if error.errno is None:
        return str(error) or type(error).__name__
    name = errno.errorcode.get(error.errno, f"errno {error.errno}")
    return f"{name} ({error.strerror})" if error.strerror else name


def os_error(command: str, what: object, error: OSError, status: int = 1) -> CommandError:
    """The one-line error of ``command`` failing on ``what`` (an endpoint, a path) with ``error``."""
    return CommandError(f"{command}: {what}: {errno_text(error)}", status)


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM (kill) both raise KeyboardInterrupt inside the block, even
    when the program was started with SIGINT ignored (as `cmd &` is)."""

    def stop(signum: int, frame: Any) -> NoReturn:
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def fail(message: str) -> int:
    """A usage mistake: one line on stderr, exit status 2."""
    print(f"socketeer: {message}", file=sys.stderr)
    return 2


class Verbose:
    """``-v``: what a command does, one line each on stderr (stdout carries the data)."""

    def __init__(self, command: str, enabled: bool):
        self.command, self.enabled = command, enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"socketeer: {self.command}: {message}", file=sys.stderr, flush=True)


def peer_text(address: Optional[object], kind: int) -> str:
    """A peer's address as an endpoint string ('an unnamed unix socket' for one without a name)."""
    if address is None or str(address) == "unix:":
        return "an unnamed unix socket"
    try:
        return str(Endpoint.from_address(address, kind))  # type: ignore[arg-type]
    except (ValueError, KeyError):
        return str(address)
