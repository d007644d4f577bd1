"""What every ``socketeer`` command shares: the one-line error, endpoint arguments, signals."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from ..endpoints import Endpoint, parse_endpoint

__all__ = ["ENDPOINT_FORMS", "ANY_ENDPOINT", "CommandError", "endpoint_arg", "reason", "stopped_by_signals", "fail"]

ENDPOINT_FORMS = "tcp://HOST:PORT, udp://HOST:PORT, unix:PATH or unix+seqpacket:PATH"
ANY_ENDPOINT = "tcp://HOST:PORT, udp://HOST:PORT, unix:PATH, unix+dgram:PATH or unix+seqpacket:PATH"


class CommandError(Exception):
    """Ends a subcommand with one line on stderr and a non-zero exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def endpoint_arg(text: str, command: str) -> Endpoint:
    try:
        return parse_endpoint(text)
    except ValueError as error:
        raise CommandError(f"{command}: {error}", 2) from None



def reason(error: OSError) -> str:
    """An OSError as one short line: '[Errno 111] Connection refused' without the repeated context."""
    if error.errno is not None and error.strerror:
        return f"[Errno {error.errno}] {error.strerror}"
    return str(error) or type(error).__name__


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
