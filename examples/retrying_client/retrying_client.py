"""A small line-protocol client with timeouts and retries, and the code under test in
test_retrying_client.py, which drives it through socketeer's fault proxy.

Protocol: the client sends one request line, the server answers with one line. Requests must be
idempotent (a GET, not a "transfer money"): a request whose answer did not arrive is sent again
on a new connection.

    client = RetryingClient("tcp://127.0.0.1:7000", timeout=1.0, attempts=3)
    client.request("GET colour")   # -> "blue"

Every attempt has one deadline for connect + send + reply. A timeout, a reset, a refused
connection or a reply cut short (the server closed mid-line) closes the connection and, after
``backoff * 2**n`` seconds, tries again; after ``attempts`` failures RequestFailed carries the
error of each attempt.

Run it as a program for a demonstration against a scripted server on loopback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Optional

import socketeer

RETRYABLE = (ConnectionError, TimeoutError, socketeer.IncompleteReadError)


class RequestFailed(Exception):
    """Every attempt failed; ``errors`` holds the exception of each, in order."""

    def __init__(self, request: str, errors: list[BaseException]):
        self.request, self.errors = request, errors
        summary = "; ".join(f"{type(error).__name__}: {error}" for error in errors)
        super().__init__(f"{request!r} failed after {len(errors)} attempt(s): {summary}")


class RetryingClient:
    def __init__(self, endpoint: str, *, timeout: float = 1.0, attempts: int = 3, backoff: float = 0.05,
                 on_retry: Optional[Callable[[int, BaseException], Any]] = None):
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, not {attempts}")
        self.endpoint, self.timeout, self.attempts, self.backoff = endpoint, timeout, attempts, backoff
        self.on_retry = on_retry  # called as on_retry(attempt_number, error) before each retry
        self.connections = 0      # connections opened so far (a reconnect per failed attempt)
        self._stream: Any = None

    def request(self, line: str) -> str:
        """Sends ``line``, returns the reply line (without its newline)."""
        if "\n" in line:
            raise ValueError("a request is one line: no newline inside")
        errors: list[BaseException] = []
        for attempt in range(1, self.attempts + 1):
            try:
                return self._attempt(line)
            except RETRYABLE as error:
                self._disconnect()
                errors.append(error)
                if attempt == self.attempts:
                    break
                if self.on_retry is not None:
                    self.on_retry(attempt, error)
                if self.backoff:
                    time.sleep(self.backoff * 2 ** (attempt - 1))
        raise RequestFailed(line, errors)

    def _attempt(self, line: str) -> str:
        deadline = time.monotonic() + self.timeout
        if self._stream is None:
            self._stream = socketeer.connect(self.endpoint, timeout=self.timeout)
            self.connections += 1
        self._stream.send_all(line.encode() + b"\n", timeout=_left(deadline))
        reply = self._stream.recv_until(b"\n", timeout=_left(deadline))
        return reply[:-1].decode()

    def _disconnect(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def close(self) -> None:
        self._disconnect()

    def __enter__(self) -> "RetryingClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the attempt's deadline passed")
    return left


def main() -> None:
    """A scripted key-value server in socketeer's C++ reactor; the client asks it twice."""
    from socketeer.framing import lines

    values = {b"GET colour": b"blue\n", b"GET shape": b"round\n"}

    class KeyValue:
        def on_message(self, conn: Any, data: bytes) -> None:
            conn.send(values.get(data, b"ERR unknown\n"))

    server = socketeer.Server(KeyValue(), framing=lines())
    server.listen("tcp://127.0.0.1:0")
    with server:  # started in background threads; closed at the end
        with RetryingClient(server.endpoint(), timeout=2.0) as client:
            for key in ("colour", "shape"):
                print(f"GET {key} -> {client.request(f'GET {key}')}")
            print(f"{client.connections} connection(s) for 2 requests")


if __name__ == "__main__":
    main()
