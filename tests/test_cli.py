"""The command line: ``socketeer echo --self-test``, ``socketeer echo ENDPOINT``, errors, --help."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import socketeer
from socketeer.endpoints import Endpoint, parse_endpoint
from subprocess_env import child_env

CLI = [sys.executable, "-W", "error", "-m", "socketeer"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=child_env(), capture_output=True, text=True, timeout=30)


@contextmanager
def echo_server(endpoint: str) -> Iterator[tuple[subprocess.Popen[str], Endpoint]]:
    """Runs ``socketeer echo ENDPOINT``; yields the process and the endpoint it says it bound."""
    with subprocess.Popen([*CLI, "echo", endpoint], env=child_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], 20)
            assert ready, "the server printed nothing within 20 s"
            line = process.stdout.readline()
            match = re.fullmatch(r"echo: listening on (\S+) \(Ctrl-C stops\)\n", line)
            assert match, f"unexpected first line {line!r}; stderr: {process.stderr.read() if process.stderr else ''}"
            yield process, parse_endpoint(match.group(1))
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def stop(process: subprocess.Popen[str]) -> str:
    """Ctrl-C: the server must stop cleanly; returns the rest of its output."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    return out


# --- --self-test -----------------------------------------------------------------------------


def test_self_test_reports_every_transport_and_passes() -> None:
    result = run_cli("echo", "--self-test", "--rounds", "20")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for transport, address in (("tcp", "tcp://127.0.0.1:"), ("udp", "udp://127.0.0.1:"), ("unix", "unix:/tmp/")):
        (line,) = [line for line in lines if line.startswith(transport + " ")]
        assert address in line
        assert "20 round trips" in line and "rtt median" in line
        sent = re.search(r"sent (\d+) B, received (\d+) B", line)
        assert sent and sent.group(1) == sent.group(2) != "0"
    assert lines[-1].startswith("self-test passed")


# --- serving ---------------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["tcp://127.0.0.1:0", "tcp://[::1]:0", "unix:{tmp}/echo.sock",
                                      "unix:@socketeer-cli-test-{pid}", "unix+seqpacket:{tmp}/seq.sock"])
def test_serves_connections_until_interrupted(template: str, short_tmp: Path) -> None:
    with echo_server(template.format(tmp=short_tmp, pid=os.getpid())) as (process, bound):
        address = bound.addresses()[0]
        for message in (b"first client", b"second client"):
            with socketeer.Socket(address.family, bound.kind) as client:
                client.settimeout(10)
                client.connect(address)
                client.sendall(message)
                reply = b""
                while len(reply) < len(message):
                    chunk = client.recv(1024)
                    assert chunk, "server closed early"
                    reply += chunk
                assert reply == message
        output = stop(process)
    assert "echo: stopped" in output
    if bound.is_unix and not bound.abstract:
        assert bound.path and not os.path.exists(bound.path), "the socket file was left behind"


def test_serves_udp_until_interrupted() -> None:
    with echo_server("udp://127.0.0.1:0") as (process, bound):
        assert bound.scheme == "udp"
        address = bound.addresses()[0]
        with socketeer.Socket(address.family, bound.kind) as client:
            client.settimeout(10)
            for message in (b"one", b"two"):
                client.sendto(message, address)
                assert client.recvfrom(1024) == (message, address.to_tuple())
        assert "echo: stopped" in stop(process)


def test_open_connection_does_not_block_stopping() -> None:
    with echo_server("tcp://127.0.0.1:0") as (process, bound):
        with socketeer.Socket() as client:
            client.settimeout(10)
            client.connect(bound.addresses()[0])
            client.sendall(b"x")
            assert client.recv(1) == b"x"
            stop(process)
            assert client.recv(1) == b""  # the server shut the connection down on its way out


# --- errors and help -------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["ftp://127.0.0.1:21", "tcp://127.0.0.1", "tcp://127.0.0.1:99999",
                                      "udp://", "unix:", "127.0.0.1:80"])
def test_malformed_endpoint_is_one_line_and_nonzero(endpoint: str) -> None:
    result = run_cli("echo", endpoint)
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "bad endpoint" in result.stderr and endpoint in result.stderr


def test_address_in_use_is_one_line_and_nonzero() -> None:
    with socketeer.Socket() as taken:
        taken.bind("127.0.0.1:0")
        taken.listen()
        result = run_cli("echo", f"tcp://{taken.local_address}")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert "Address already in use" in result.stderr


def test_echo_needs_an_endpoint_or_self_test() -> None:
    result = run_cli("echo")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "--self-test" in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["echo", "--help"]])
def test_help(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 0
    assert "echo" in result.stdout and "usage: socketeer" in result.stdout
