"""Running the ``socketeer`` command line from the tests: one-shot runs, servers whose first line
says where they listen, Ctrl-C, and the one-line error check. Every subprocess is bounded by a
timeout and killed and reaped in a finally."""

from __future__ import annotations

import re
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from socketeer.endpoints import Endpoint, parse_endpoint
from subprocess_env import child_env

__all__ = ["CLI", "TIMEOUT", "run_cli", "cli_server", "echo_server", "stop", "one_line_error", "reply_after_eof_server"]

CLI = [sys.executable, "-W", "error", "-m", "socketeer"]
TIMEOUT = 30


def run_cli(*args: str, input: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=child_env(), capture_output=True, text=True, timeout=TIMEOUT,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL, cwd=cwd)


@contextmanager
def cli_server(*args: str, ready: str) -> Iterator[tuple[subprocess.Popen[str], re.Match[str]]]:
    """Runs ``socketeer ARGS``; yields the process and the match of ``ready`` (a regular
    expression) on the first line it prints. Killed and reaped at the end."""
    with subprocess.Popen([*CLI, *args], env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            ready_to_read, _, _ = select.select([process.stdout], [], [], 20)
            assert ready_to_read, "the server printed nothing within 20 s"
            line = process.stdout.readline()
            match = re.fullmatch(ready + "\n", line)
            assert match, f"unexpected first line {line!r}; stderr: {process.stderr.read() if process.stderr else ''}"
            yield process, match
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


@contextmanager
def echo_server(endpoint: str, *options: str) -> Iterator[tuple[subprocess.Popen[str], Endpoint]]:
    """Runs ``socketeer echo ENDPOINT [OPTIONS]``; yields the process and the endpoint it says it bound."""
    with cli_server("echo", endpoint, *options, ready=r"echo: listening on (\S+) \(Ctrl-C stops\)") as (process, match):
        yield process, parse_endpoint(match.group(1))


def stop(process: subprocess.Popen[str]) -> str:
    """Ctrl-C: the server must stop cleanly; returns the rest of its output."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    return out


def one_line_error(result: subprocess.CompletedProcess[str], *expected: str, status: int | None = None) -> None:
    """The command failed with one line on stderr holding every ``expected`` text (and exit
    ``status`` when given), nothing on stdout."""
    assert result.returncode != 0 if status is None else result.returncode == status, result
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    for text in expected:
        assert text in result.stderr


@contextmanager
def reply_after_eof_server(endpoint: str, short_tmp: Path) -> Iterator[tuple[str, list[bytes]]]:
    """A stdlib server for one connection: reads until end of stream, then answers how much it
    got and closes. Yields the endpoint to connect to and the list that receives what it read."""
    scheme, _, rest = endpoint.partition(":")
    kind = socket.SOCK_SEQPACKET if scheme == "unix+seqpacket" else socket.SOCK_STREAM
    if scheme.startswith("unix"):
        family, address = socket.AF_UNIX, str(short_tmp / "server.sock")
    else:
        family = socket.AF_INET6 if "[" in rest else socket.AF_INET
        address = ("::1" if family == socket.AF_INET6 else "127.0.0.1", 0)
    received: list[bytes] = []
    with socket.socket(family, kind) as listener:
        listener.bind(address)
        listener.listen()
        listener.settimeout(TIMEOUT)
        name = listener.getsockname()
        target = f"{scheme}:{name}" if family == socket.AF_UNIX else \
            f"tcp://{'[::1]' if family == socket.AF_INET6 else '127.0.0.1'}:{name[1]}"

        def serve() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(TIMEOUT)
                data = b""
                while chunk := connection.recv(65536):
                    data += chunk
                received.append(data)
                connection.sendall(f"got {len(data)} bytes, then end of stream\n".encode())

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield target, received
        finally:
            thread.join(TIMEOUT)
