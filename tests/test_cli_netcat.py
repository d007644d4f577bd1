"""netcat habits of the command line: ``socketeer listen`` (-k, udp), ``connect -w`` and ``-v``,
service names in endpoints, ``--version``, a closed stdout (``| head -1``) ending quietly, and
bad input as one line naming the command, the endpoint and the errno name (exit 2 for usage
mistakes, 1 for failures). Real peers: socat, stdlib sockets, the CLI's own echo."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import socketeer
from cli_run import CLI, TIMEOUT, echo_server, one_line_error, run_cli, stop
from subprocess_env import child_env


@contextmanager
def listening(*args: str, stdin: int = subprocess.PIPE) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``socketeer listen -v ARGS``; yields the process and the endpoint its first stderr line
    names ("socketeer: listen: listening on ENDPOINT"). Killed and reaped at the end."""
    with subprocess.Popen([*CLI, "listen", "-v", *args], env=child_env(), stdin=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as process:
        try:
            assert process.stderr is not None
            ready, _, _ = select.select([process.stderr], [], [], 20)
            assert ready, "listen said nothing within 20 s"
            line = process.stderr.readline().decode()
            match = re.fullmatch(r"socketeer: listen: listening on (\S+)\n", line)
            assert match, line
            yield process, match.group(1)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def port_of(endpoint: str) -> int:
    return int(endpoint.rpartition(":")[2])


# --- listen ----------------------------------------------------------------------------------


def test_listen_with_socat_as_the_client(needs_tool) -> None:
    """Both ways at once: socat's line reaches listen's stdout, listen's stdin (then its end, a
    half-close) reaches socat; socat's own end, last, ends listen."""
    socat = needs_tool("socat")
    with listening("tcp://127.0.0.1:0") as (process, endpoint):
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"hello from listen\n")
        process.stdin.close()  # the end of stdin half-closes the connection
        process.stdin = None  # closed: communicate() must not flush it
        # -d -d: socat logs each side's end of stream (its stdout stays open until it exits, so
        # reading that to its end would wait out socat's -t half-close timeout)
        with subprocess.Popen([socat, "-d", "-d", "-t", "20", "-", f"TCP4:127.0.0.1:{port_of(endpoint)}"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as client:
            try:
                assert client.stdin is not None and client.stdout is not None and client.stderr is not None
                client.stdin.write(b"hello from socat\n")
                client.stdin.flush()
                assert process.stdout.readline() == b"hello from socat\n"
                assert client.stdout.readline() == b"hello from listen\n"
                log = b""
                while not re.search(rb"N socket 2 \(fd \d+\) is at EOF", log):  # listen half-closed
                    line = client.stderr.readline()
                    assert line, log  # socat ended without seeing the end of the connection
                    log += line
                client.stdin.close()  # socat's own end: now both directions have ended
                client.stdin = None
                rest, client_err = client.communicate(timeout=TIMEOUT)
                assert rest == b""
            finally:
                if client.poll() is None:
                    client.kill()
                    client.wait(10)
        out, err = process.communicate(timeout=TIMEOUT)
    assert client.returncode == 0, client_err
    assert process.returncode == 0, err
    assert out == b""
    assert re.search(rb"^socketeer: listen: accepted from tcp://127\.0\.0\.1:\d+$", err, re.MULTILINE), err


def test_listen_k_accepts_clients_one_after_another() -> None:
    with listening("-k", "tcp://127.0.0.1:0", stdin=subprocess.DEVNULL) as (process, endpoint):
        assert process.stdout is not None
        for message in (b"first client\n", b"second client\n"):
            with socket.create_connection(("127.0.0.1", port_of(endpoint)), timeout=TIMEOUT) as client:
                client.sendall(message)
                client.shutdown(socket.SHUT_WR)
                assert client.recv(100) == b""  # stdin (empty) ended: listen half-closed at once
            assert process.stdout.readline() == message  # printed before the next one comes
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err
    assert err.count(b"accepted from") == 2


def test_listen_without_k_ends_with_the_first_connection(short_tmp) -> None:
    with listening(f"unix:{short_tmp}/l.sock", stdin=subprocess.DEVNULL) as (process, endpoint):
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(TIMEOUT)
            client.connect(str(short_tmp / "l.sock"))
            client.sendall(b"only one")
        out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err
    assert out == b"only one"
    assert not os.path.exists(short_tmp / "l.sock")


def test_listen_udp_prints_datagrams_and_replies_to_the_last_sender() -> None:
    with listening("udp://127.0.0.1:0") as (process, endpoint):
        assert process.stdin is not None and process.stdout is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(TIMEOUT)
            client.sendto(b"ping\n", ("127.0.0.1", port_of(endpoint)))
            assert process.stdout.readline() == b"ping\n"
            process.stdin.write(b"pong\n")
            process.stdin.flush()
            assert client.recvfrom(100) == (b"pong\n", ("127.0.0.1", port_of(endpoint)))
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err


# --- connect -w and -v -----------------------------------------------------------------------


@contextmanager
def silent_server() -> Iterator[tuple[int, threading.Event]]:
    """A stdlib server that reads until end of stream, then neither writes nor closes until
    the test is done. Yields its port and an Event set once it saw the end of stream."""
    saw_end = threading.Event()
    done = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(TIMEOUT)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                while conn.recv(65536):
                    pass
                saw_end.set()
                done.wait(TIMEOUT)

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            yield listener.getsockname()[1], saw_end
        finally:
            done.set()
            thread.join(TIMEOUT)


def test_connect_w_gives_up_on_a_silent_peer_after_stdin_ends() -> None:
    with silent_server() as (port, saw_end):
        result = run_cli("connect", "-w", "0.3", f"tcp://127.0.0.1:{port}", input="bye\n")
        assert saw_end.is_set()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_connect_w_keeps_reading_while_the_peer_talks() -> None:
    """-w is an idle timeout: the echo's replies keep coming longer than -w in total."""
    message = "".join(f"line {n}\n" for n in range(50000))
    with echo_server("tcp://127.0.0.1:0") as (process, bound):
        result = run_cli("connect", "-w", "5", str(bound), input=message)
        stop(process)
    assert result.returncode == 0, result.stderr
    assert result.stdout == message


def test_connect_v_says_where_it_connected() -> None:
    with echo_server("tcp://127.0.0.1:0") as (process, bound):
        result = run_cli("connect", "-v", str(bound), input="x")
        stop(process)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "x"
    assert re.fullmatch(rf"socketeer: connect: connected to {bound} from tcp://127\.0\.0\.1:\d+\n"
                        r"socketeer: connect: done\n", result.stderr), result.stderr


# --- names, --version, stdout closed ---------------------------------------------------------


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"socketeer {socketeer.__version__}\n"


def test_service_name_in_an_endpoint_is_looked_up_locally() -> None:
    result = run_cli("info", "tcp://127.0.0.1:http")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].split() == ["AF_INET", "SOCK_STREAM", "127.0.0.1:80", "tcp://127.0.0.1:80"]


def test_connect_to_a_port_by_number_with_a_real_echo() -> None:
    with echo_server("tcp://127.0.0.1:0") as (process, bound):
        result = run_cli("connect", f"tcp://127.0.0.1:{bound.port}", input="by number\n")
        stop(process)
    assert result.returncode == 0 and result.stdout == "by number\n", result.stderr


def test_stdout_closed_by_head_ends_quietly() -> None:
    """seq | socketeer connect ECHO | head -1: head leaves after one line while the echo still
    sends; the broken pipe is stdout's, so the command ends without a word."""
    with echo_server("tcp://127.0.0.1:0") as (echo, bound):
        seq = subprocess.Popen(["seq", "1", "100000"], stdout=subprocess.PIPE)
        connect = subprocess.Popen([*CLI, "connect", str(bound)], env=child_env(), stdin=seq.stdout,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        head = subprocess.Popen(["head", "-1"], stdin=connect.stdout, stdout=subprocess.PIPE)
        assert seq.stdout is not None and connect.stdout is not None
        seq.stdout.close()
        connect.stdout.close()
        try:
            first, _ = head.communicate(timeout=TIMEOUT)
            _, err = connect.communicate(timeout=TIMEOUT)
        finally:
            for process in (seq, connect, head):
                if process.poll() is None:
                    process.kill()
                process.wait(10)
        stop(echo)
    assert first == b"1\n"
    assert err == b""
    assert connect.returncode in (0, 141)


# --- bad input: one line, the command, the endpoint, the errno name --------------------------


@pytest.mark.parametrize("args, words", [
    (["connect", "tcp://127.0.0.1:no-such-service"], ["socketeer: connect: bad endpoint", "unknown service 'no-such-service'"]),
    (["listen", "udp://127.0.0.1:no-such-service"], ["socketeer: listen: bad endpoint", "unknown service"]),
    (["echo", "tcp://127.0.0.1:no-such-service"], ["socketeer: echo: bad endpoint", "unknown service"]),
    (["listen", "tcp//127.0.0.1:0"], ["socketeer: listen: bad endpoint 'tcp//127.0.0.1:0'"]),
    (["connect", "-w", "-1", "tcp://127.0.0.1:1"], ["socketeer: connect: --wait must be >= 0"]),
    (["echo", "--threads", "0", "tcp://127.0.0.1:0"], ["socketeer: echo: --threads must be at least 1"]),
])
def test_usage_mistakes_are_one_line_with_status_2(args: list[str], words: list[str]) -> None:
    one_line_error(run_cli(*args), *words, status=2)


def test_listen_on_a_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("listen", f"tcp://127.0.0.1:{port}")
    one_line_error(result, f"socketeer: listen: tcp://127.0.0.1:{port}: EADDRINUSE (Address already in use)", status=1)


def test_connect_refused_names_the_errno() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        result = run_cli("connect", f"tcp://127.0.0.1:{port}", input="")
    one_line_error(result, f"socketeer: connect: tcp://127.0.0.1:{port}: ECONNREFUSED (Connection refused)", status=1)
