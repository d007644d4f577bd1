"""The command line: ``socketeer echo``, ``connect``, ``relay``, ``info`` and ``bench``, against real
peers (socat, curl, stdlib sockets and http.server), errors, --help.

Every subprocess is bounded by a timeout and killed and reaped in a finally; readiness is read
from the program's first line or polled with a deadline, never slept for."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

import socketeer
from socketeer.endpoints import parse_endpoint
from socketeer import cli
from cli_run import CLI, TIMEOUT, cli_server, echo_server, one_line_error, reply_after_eof_server, run_cli, stop
from subprocess_env import child_env, peer_env

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
        address = taken.local_address
        result = run_cli("echo", f"tcp://{address}")
    one_line_error(result, f"socketeer: echo: tcp://{address}: EADDRINUSE (Address already in use)",
                   status=1)


def test_echo_needs_an_endpoint_or_self_test() -> None:
    result = run_cli("echo")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "--self-test" in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["echo", "--help"]])
def test_help(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 0
    assert "echo" in result.stdout and "usage: socketeer" in result.stdout


@pytest.mark.parametrize("command, words", [("connect", ["ENDPOINT", "half-close", "--timeout", "--wait"]),
                                            ("relay", ["A", "B", "--once", "half-close"]),
                                            ("info", ["ENDPOINT", "Resolve", "unix+dgram:PATH"])])
def test_help_of_each_command(command: str, words: list[str]) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: socketeer {command}")
    for word in words:
        assert word in result.stdout
    listing = run_cli("--help").stdout
    assert re.search(rf"^\s+{command}\s+\S", listing, re.MULTILINE), listing


def test_no_command_is_one_line_and_nonzero() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "connect" in result.stderr and "relay" in result.stderr


@pytest.mark.parametrize("args", [["connect"], ["relay"], ["relay", "tcp://127.0.0.1:0"], ["info"],
                                  ["connect", "tcp://127.0.0.1:1", "--timeout", "soon"]])
def test_missing_or_bad_arguments_are_one_line(args: list[str]) -> None:
    result = run_cli(*args)
    one_line_error(result, f"socketeer {args[0]}", "--help")
    assert result.returncode == 2


@pytest.mark.parametrize("args", [["connect", "ftp://127.0.0.1:21"], ["connect", "tcp://127.0.0.1"],
                                  ["info", "udp://[127.0.0.1]:53"], ["info", "unix:"],
                                  ["relay", "tcp//127.0.0.1:0", "unix:/tmp/x"],
                                  ["relay", "tcp://127.0.0.1:0", "tcp://127.0.0.1:99999"]])
def test_malformed_endpoints_are_one_line(args: list[str]) -> None:
    result = run_cli(*args)
    one_line_error(result, f"socketeer: {args[0]}: bad endpoint")
    assert result.returncode == 2


# --- connect ---------------------------------------------------------------------------------


def test_connect_refused_is_one_line() -> None:
    with socket.socket() as bound:  # bound, never listening: loopback refuses at once
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        result = run_cli("connect", f"tcp://127.0.0.1:{port}", input="x")
    one_line_error(result, f"socketeer: connect: tcp://127.0.0.1:{port}: ECONNREFUSED (Connection refused)",
                   status=1)


def test_connect_to_missing_unix_path_is_one_line(short_tmp: Path) -> None:
    result = run_cli("connect", f"unix:{short_tmp}/nobody.sock", input="x")
    one_line_error(result, f"socketeer: connect: unix:{short_tmp}/nobody.sock: ENOENT (No such file or directory)",
                   status=1)


def test_connect_datagrams_with_no_one_bound_is_one_line(short_tmp: Path) -> None:
    """A unix datagram socket file whose socket is gone refuses at once. (A closed UDP port
    only answers with an ICMP error, which a busy host may rate-limit: not a reliable test.)"""
    path = str(short_tmp / "gone.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as gone:
        gone.bind(path)
    result = run_cli("connect", f"unix+dgram:{path}", input="one\n")
    one_line_error(result, f"socketeer: connect: unix+dgram:{path}: ECONNREFUSED (Connection refused)", status=1)


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1", "tcp://[::1]", "unix:", "unix+seqpacket:"])
def test_connect_half_closes_at_end_of_stdin_and_prints_the_reply(endpoint: str, short_tmp: Path) -> None:
    message = "hello\n" * 1000
    with reply_after_eof_server(endpoint, short_tmp) as (target, received):
        result = run_cli("connect", target, input=message)
    assert result.returncode == 0, result.stderr
    assert received == [message.encode()], "the server never saw end of stream"
    assert result.stdout == f"got {len(message)} bytes, then end of stream\n"
    assert result.stderr == ""


def unix_listening(path: str) -> bool:
    """Whether some process listens on the unix socket file ``path`` (/proc/net/unix)."""
    with open("/proc/net/unix") as table:
        return any(fields[-1] == path and fields[3] == "00010000"  # __SO_ACCEPTCON: listening
                   for fields in (line.split() for line in table.readlines()[1:]) if len(fields) >= 8)


@contextmanager
def socat_server(socat: str, address: str, program: str, wait_until: Callable) -> Iterator[subprocess.Popen[bytes]]:
    """socat listening on a unix path, running ``program`` for each connection (fork)."""
    path = address.split(":", 1)[1].split(",", 1)[0]
    with subprocess.Popen([socat, f"{address},fork", f"SYSTEM:{program}"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
        try:
            wait_until(lambda: process.poll() is not None or unix_listening(path), what="socat to listen")
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            yield process
        finally:
            process.kill()
            process.wait(10)


def test_connect_to_socat_counting_until_end_of_stream(needs_tool, short_tmp: Path, wait_until) -> None:
    """socat runs `wc -c` per connection: wc answers only once it reads end of stream, so the
    count arriving shows both the half-close and that the reply still gets through."""
    path = f"{short_tmp}/wc.sock"
    with socat_server(needs_tool("socat"), f"UNIX-LISTEN:{path}", "wc -c", wait_until):
        result = run_cli("connect", f"unix:{path}", input="twelve bytes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "12"


@pytest.mark.parametrize("template", ["tcp://127.0.0.1:0", "unix:{tmp}/echo.sock", "unix+seqpacket:{tmp}/seq.sock"])
def test_connect_to_echo_server_streams(template: str, short_tmp: Path) -> None:
    message = "".join(f"line {n}\n" for n in range(20000))  # ~200 KB: both directions at once
    with echo_server(template.format(tmp=short_tmp)) as (process, bound):
        result = run_cli("connect", str(bound), input=message)
        stop(process)
    assert result.returncode == 0, result.stderr
    assert result.stdout == message


@pytest.mark.parametrize("template", ["udp://127.0.0.1:0", "udp://[::1]:0", "unix+dgram:{tmp}/echo.sock"])
def test_connect_datagrams_one_per_line(template: str, short_tmp: Path) -> None:
    with echo_server(template.format(tmp=short_tmp)) as (process, bound):
        result = run_cli("connect", str(bound), "--wait", "2", input="one\ntwo\nthree\n")
        stop(process)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines(keepends=True)) == ["one\n", "three\n", "two\n"]


# --- relay -----------------------------------------------------------------------------------

RELAY_READY = r"relay: listening on (\S+), relaying to (\S+) \(Ctrl-C stops\)"


@contextmanager
def http_server() -> Iterator[int]:
    """A tiny HTTP server on 127.0.0.1 (stdlib, in a thread); yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"hello from {self.path}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def curl(program: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([program, "-sS", "--max-time", "20", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, env=peer_env())


def test_relay_unix_to_tcp_http_with_curl(needs_tool, short_tmp: Path) -> None:
    program = needs_tool("curl")
    path = f"{short_tmp}/http.sock"
    with http_server() as port, cli_server("relay", f"unix:{path}", f"tcp://127.0.0.1:{port}",
                                           ready=RELAY_READY) as (process, match):
        assert match.groups() == (f"unix:{path}", f"tcp://127.0.0.1:{port}")
        for page in ("/first", "/second"):
            result = curl(program, "--unix-socket", path, f"http://x{page}")
            assert result.returncode == 0, result.stderr
            assert result.stdout == f"hello from {page}\n"
        output = stop(process)
    assert output.count("relaying to") == 2 and "relay: stopped" in output
    assert not os.path.exists(path), "the relay left its socket file behind"


def test_relay_tcp_to_unix_passes_half_close_through(needs_tool, short_tmp: Path, wait_until) -> None:
    """socat on both ends: a client sends and half-closes, the relay passes the end of stream to
    a socat running `wc -c`, whose count comes back through the relay."""
    socat = needs_tool("socat")
    path = f"{short_tmp}/wc.sock"
    with socat_server(socat, f"UNIX-LISTEN:{path}", "wc -c", wait_until), \
            cli_server("relay", "tcp://127.0.0.1:0", f"unix:{path}", ready=RELAY_READY) as (process, match):
        port = parse_endpoint(match.group(1)).port
        client = subprocess.run([socat, "-t", "20", "-", f"TCP4:127.0.0.1:{port}"], input=b"x" * 100000,
                                capture_output=True, timeout=TIMEOUT)
        assert client.returncode == 0, client.stderr
        assert client.stdout.strip() == b"100000"
        stop(process)


def test_relay_once_unix_to_tcp_echo(short_tmp: Path) -> None:
    with echo_server("tcp://127.0.0.1:0") as (echo, bound), \
            cli_server("relay", "--once", f"unix:{short_tmp}/relay.sock", str(bound),
                       ready=RELAY_READY) as (relay, match):
        result = run_cli("connect", match.group(1), input="through the relay\n")
        assert result.returncode == 0, result.stderr
        assert result.stdout == "through the relay\n"
        out, err = relay.communicate(timeout=TIMEOUT)
        assert relay.returncode == 0, err
        assert "closed" in out
        stop(echo)


def test_relay_once_to_refused_target_exits_nonzero() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        target = f"tcp://127.0.0.1:{bound.getsockname()[1]}"
        with cli_server("relay", "--once", "tcp://127.0.0.1:0", target, ready=RELAY_READY) as (relay, match):
            with pytest.raises(ConnectionResetError):  # the proxy resets the client, maybe before connect returns
                with socketeer.connect(match.group(1), timeout=TIMEOUT) as client:
                    client.recv(100, timeout=TIMEOUT)
            out, _ = relay.communicate(timeout=TIMEOUT)
    assert relay.returncode == 1
    assert f"cannot connect to {target}: ECONNREFUSED (Connection refused)" in out


@pytest.mark.parametrize("args, words", [
    (["udp://127.0.0.1:0", "tcp://127.0.0.1:1"], "udp://127.0.0.1:0 is a datagram endpoint and the other a stream"),
    (["tcp://127.0.0.1:0", "udp://127.0.0.1:1"], "udp://127.0.0.1:1 is a datagram endpoint and the other a stream"),
    (["tcp://127.0.0.1:0", "unix+dgram:x"], "unix datagram endpoint is not supported"),
    (["unix+seqpacket:/tmp/x", "tcp://127.0.0.1:1"], "seqpacket records would lose their boundaries"),
    (["--once", "udp://127.0.0.1:0", "udp://127.0.0.1:1"], "--once needs stream endpoints"),
])
def test_relay_refuses_what_the_proxy_cannot_relay(args: list[str], words: str) -> None:
    one_line_error(run_cli("relay", *args), "socketeer: relay: ", words, status=2)


def test_relay_address_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("relay", f"tcp://127.0.0.1:{port}", "tcp://127.0.0.1:1")
    one_line_error(result, f"socketeer: relay: tcp://127.0.0.1:{port}: "
                           "EADDRINUSE (Address already in use)", status=1)


# --- info ------------------------------------------------------------------------------------


def test_info_resolves_localhost() -> None:
    result = run_cli("info", "tcp://localhost:80")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["family", "kind", "address", "endpoint"]
    expected = {("AF_INET", "SOCK_STREAM", "127.0.0.1:80", "tcp://127.0.0.1:80"),
                ("AF_INET6", "SOCK_STREAM", "[::1]:80", "tcp://[::1]:80")}
    assert rows and {tuple(row.split()) for row in rows} <= expected, rows


@pytest.mark.parametrize("endpoint, row", [
    ("udp://[::1]:53", ["AF_INET6", "SOCK_DGRAM", "[::1]:53", "udp://[::1]:53"]),
    ("unix+seqpacket:/run/x.sock", ["AF_UNIX", "SOCK_SEQPACKET", "unix:/run/x.sock", "unix+seqpacket:/run/x.sock"]),
    ("unix+dgram:@name", ["AF_UNIX", "SOCK_DGRAM", "unix:@name", "unix+dgram:@name"]),
])
def test_info_numeric_and_unix(endpoint: str, row: list[str]) -> None:
    result = run_cli("info", endpoint)
    assert result.returncode == 0, result.stderr
    assert [line.split() for line in result.stdout.splitlines()[1:]] == [row]


def test_info_unknown_host_is_one_line(socketeer_netns) -> None:
    # Run from a thread inside a fresh network namespace, which the child inherits: no route to
    # any resolver, so no DNS query leaves this host.
    result = socketeer_netns.call(run_cli, "info", "tcp://no-such-host.invalid:80")
    one_line_error(result, "cannot resolve", "no-such-host.invalid")


# --- bench -----------------------------------------------------------------------------------


QUICK_ROW = re.compile(r"(?P<config>tcp-10x64|tcp-100x1k|)\s+(?P<server>\S+)\s+(?P<rps>[\d,]+)\s+(?P<ratio>\d+\.\d\d)"
                       r"\s+\(\d+\.\d\d-\d+\.\d\d\)\s+(?P<cpu>\d+\.\d\d)\s+\d+\.\d\d\s+\d+\b.*")


@pytest.mark.timeout(200)  # in a source tree the first run builds the load generator
def test_bench_quick_prints_the_table_from_any_directory(tmp_path: Path) -> None:
    """From a directory that is no checkout: every server of the quick set on both configs, each
    with req/s, a ratio to the C reference and the server's CPU per request (never how fast), then
    the goals those cells measure, each with a verdict (never which one)."""
    result = subprocess.run([*CLI, "bench", "--quick", "--duration", "0.2", "--warmup", "0.05", "--repeats", "1"],
                            env=child_env(), capture_output=True, text=True, timeout=180, cwd=tmp_path,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    table, _, goals = result.stdout.partition("\ngoals (issue 14): ")
    lines = table.splitlines()
    assert lines[0].startswith("socketeer echo benchmark: 1 x 0.2 s per cell")
    rows: dict[tuple[str, str], re.Match[str]] = {}
    config = ""
    for line in lines[2:]:
        if not line:
            continue
        config = line.split()[0] if line.startswith("tcp-") else config
        server = line.split()[1] if line.startswith("tcp-") else line.split()[0]
        if server == "uvloop-protocol" and "n/a (uvloop is not installed" in line:
            continue  # optional
        match = QUICK_ROW.fullmatch(line)
        assert match, line
        rows[(config, server)] = match
    servers = ["c-reference", "socketeer-builtin", "socketeer-handler", "socketeer-aio", "asyncio-protocol",
               "socketeer-loop-protocol", "asyncio-streams"]
    for config in ("tcp-10x64", "tcp-100x1k"):
        assert {name for (cfg, name) in rows if cfg == config} - {"uvloop-protocol"} == set(servers)
        assert float(rows[(config, "c-reference")]["ratio"]) == 1.0
        for server in servers:
            row = rows[(config, server)]
            assert int(row["rps"].replace(",", "")) > 0 and float(row["ratio"]) > 0, row.group(0)
            assert float(row["cpu"]) >= 0
    checked = {tuple(line.split()[:5]): line.split()[7] for line in goals.splitlines()[1:] if ">=" in line}
    for config in ("tcp-10x64", "tcp-100x1k"):
        for goal in (("socketeer-loop-protocol", ">=", "0.95x", "c-reference"),
                     ("socketeer-aio", ">=", "1.0x", "asyncio-streams")):
            assert checked[(*goal, config)] in ("met", "missed", "unclear"), goals


def test_bench_lists_and_explains_itself_outside_a_checkout(tmp_path: Path) -> None:
    listed = run_cli("bench", "--list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "server  c-reference" in listed.stdout and "server  socketeer-aio" in listed.stdout
    assert "config  tcp-10x64" in listed.stdout
    helped = run_cli("bench", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: socketeer bench")
    for option in ("--quick", "--servers", "--configs", "--duration", "--repeats", "--json"):
        assert option in helped.stdout


def test_bench_usage_mistake_is_one_line() -> None:
    for args, expected in ((["--servers", "no-such-server"], "bench: no server matches 'no-such-server'"),
                           (["--repeats", "0"], "bench: --repeats must be >= 1")):
        result = run_cli("bench", *args)
        one_line_error(result, expected, "socketeer bench --help")
        assert result.returncode == 2


@pytest.mark.parametrize("present", [(), ("echo-reference",)], ids=["no bin", "no loadgen"])
def test_bench_without_the_load_generator_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str], present: tuple[str, ...]) -> None:
    """A broken install (the programs missing from socketeer/bin, no source tree to build them in)."""
    from socketeer.benchmark import tools

    if present:
        (tmp_path / "bin").mkdir()
        for name in present:
            (tmp_path / "bin" / name).write_text("#!/bin/sh\n")
            (tmp_path / "bin" / name).chmod(0o755)
    monkeypatch.setattr(tools, "installed_dir", lambda: tmp_path / "bin")
    monkeypatch.setattr(tools, "checkout_root", lambda: None)
    assert cli.main(["bench", "--quick"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("socketeer: bench: ")
    assert "socketeer-loadgen" in err and "is missing from this install" in err and "pip install" in err
