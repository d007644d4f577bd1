"""socat, a real program outside Python, as the peer of socketeer.Socket: TCP (IPv4 and IPv6),
UDP, UNIX STREAM, DGRAM and SEQPACKET, path and abstract names, in both roles.

No port races: when socketeer listens it binds port 0 and socat is pointed at it; when socat
listens on port 0, the port it got is read from /proc (its socket inode in /proc/PID/net/*).
Readiness is polled with a deadline, never slept for; every socat is killed and reaped at the end.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess

import pytest

import socketeer
from socketeer import Socket

IO_TIMEOUT = 20


@pytest.fixture
def socat(needs_tool):
    """socat(*args) -> a running socat with stdin/stdout/stderr pipes; killed and reaped after."""
    program = needs_tool("socat")
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        process = subprocess.Popen([program, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait(30)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def send_and_close_stdin(process: subprocess.Popen, data: bytes) -> None:
    """socat sends data, then (at the end of its input) shuts down its write side."""
    process.stdin.write(data)
    process.stdin.close()
    process.stdin = None  # closed: communicate() must not touch it


def finish(process: subprocess.Popen) -> bytes:
    """Waits for socat to exit 0 and returns all it printed."""
    out, err = process.communicate(timeout=IO_TIMEOUT)
    assert process.returncode == 0, err.decode(errors="replace")
    return out


def read_output(process: subprocess.Popen, size: int) -> bytes:
    """Reads exactly size bytes that socat prints, without waiting for it to exit."""
    received = b""
    while len(received) < size:
        ready, _, _ = select.select([process.stdout], [], [], IO_TIMEOUT)
        assert ready, f"socat printed {received!r} and then nothing for {IO_TIMEOUT} s"
        chunk = os.read(process.stdout.fileno(), size - len(received))
        assert chunk, f"socat exited: {process.stderr.read().decode(errors='replace')}"
        received += chunk
    return received


def recv_all(sock: Socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def socat_port(process: subprocess.Popen, table: str) -> int | None:
    """The local port of socat's socket listed in /proc/PID/net/<table> (tcp, tcp6, udp), if any."""
    assert process.poll() is None, f"socat exited: {process.stderr.read().decode(errors='replace')}"
    inodes = set()
    for fd in os.listdir(f"/proc/{process.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{process.pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    with open(f"/proc/{process.pid}/net/{table}") as file:
        for line in file.readlines()[1:]:
            fields = line.split()
            listening = table.startswith("udp") or fields[3] == "0A"  # TCP_LISTEN
            if fields[9] in inodes and listening:
                return int(fields[1].rsplit(":", 1)[1], 16)
    return None


def wait_for_port(process, table, wait_until) -> int:
    return wait_until(lambda: socat_port(process, table), what=f"socat to bind its {table} socket")


def connect_when_listening(family, kind, address, wait_until) -> Socket:
    """Connects to a socat that is still starting: retries refused/missing until a deadline."""
    def attempt():
        sock = Socket(family, kind)
        sock.settimeout(IO_TIMEOUT)
        if sock.connect_ex(address) == 0:
            return sock
        sock.close()
        return None

    return wait_until(attempt, what=f"socat to listen on {address}")


# --- socketeer listens, socat connects ----------------------------------------------------------------------

STREAM_SERVERS = {
    "tcp": (socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1:0", lambda a: f"TCP4:127.0.0.1:{a.port}"),
    "tcp6": (socket.AF_INET6, socket.SOCK_STREAM, "[::1]:0", lambda a: f"TCP6:[::1]:{a.port}"),
    "unix-stream": (socket.AF_UNIX, socket.SOCK_STREAM, "PATH", lambda a: f"UNIX-CONNECT:{a.path}"),
    "unix-abstract": (socket.AF_UNIX, socket.SOCK_STREAM, "ABSTRACT", lambda a: f"ABSTRACT-CONNECT:{a.path}"),
    "unix-seqpacket": (socket.AF_UNIX, socket.SOCK_SEQPACKET, "PATH", lambda a: f"UNIX-CONNECT:{a.path},type=5"),
}


def bind_name(where: str, short_tmp) -> str:
    if where == "PATH":
        return str(short_tmp / "server.sock")
    if where == "ABSTRACT":
        return f"\0socketeer-socat-{os.getpid()}"
    return where


@pytest.mark.parametrize("case", STREAM_SERVERS)
def test_socketeer_server_socat_client(case, socat, closing, short_tmp):
    family, kind, where, socat_address = STREAM_SERVERS[case]
    server = closing(Socket(family, kind))
    server.bind(bind_name(where, short_tmp))
    server.listen()
    server.settimeout(IO_TIMEOUT)
    client = socat("-", socat_address(server.local_address))
    send_and_close_stdin(client, b"hello from socat\n")
    accepted = closing(server.accept()[0])
    accepted.settimeout(IO_TIMEOUT)
    assert recv_all(accepted) == b"hello from socat\n"
    accepted.sendall(b"hello from socketeer\n")
    accepted.close()
    assert finish(client) == b"hello from socketeer\n"


# --- socat listens (an echo server), socketeer connects ---------------------------------------------------

@pytest.mark.parametrize(("family", "listen", "table", "host"), [
    (socket.AF_INET, "TCP4-LISTEN:0,bind=127.0.0.1", "tcp", "127.0.0.1"),
    (socket.AF_INET6, "TCP6-LISTEN:0,bind=[::1]", "tcp6", "::1"),
], ids=["tcp", "tcp6"])
def test_socat_tcp_echo_server(family, listen, table, host, socat, closing, wait_until):
    echo = socat("-t", "5", listen, "PIPE")
    port = wait_for_port(echo, table, wait_until)
    client = closing(Socket(family, socket.SOCK_STREAM))
    client.settimeout(IO_TIMEOUT)
    client.connect((host, port))
    payload = os.urandom(256 * 1024)
    client.sendall(payload)
    client.shutdown(socket.SHUT_WR)
    assert recv_all(client) == payload


@pytest.mark.parametrize(("kind", "options"), [(socket.SOCK_STREAM, ""), (socket.SOCK_SEQPACKET, ",type=5")],
                         ids=["stream", "seqpacket"])
def test_socat_unix_echo_server(kind, options, socat, closing, short_tmp, wait_until):
    path = str(short_tmp / "socat.sock")
    socat("-t", "5", f"UNIX-LISTEN:{path}{options}", "PIPE")
    client = closing(connect_when_listening(socket.AF_UNIX, kind, path, wait_until))
    assert client.peer_address == socketeer.UnixAddress(path)
    client.sendall(b"echo me")
    client.shutdown(socket.SHUT_WR)
    assert recv_all(client) == b"echo me"


def test_socat_abstract_echo_server(socat, closing, wait_until):
    name = f"socketeer-socat-echo-{os.getpid()}"
    socat("-t", "5", f"ABSTRACT-LISTEN:{name}", "PIPE")
    client = closing(connect_when_listening(socket.AF_UNIX, socket.SOCK_STREAM, f"\0{name}", wait_until))
    assert client.peer_address == socketeer.UnixAddress(name, abstract=True)
    client.sendall(b"abstract echo")
    client.shutdown(socket.SHUT_WR)
    assert recv_all(client) == b"abstract echo"


# --- datagrams --------------------------------------------------------------------------------------------

def test_udp_socat_sends_socketeer_replies(socat, closing):
    server = closing(Socket(socket.AF_INET, socket.SOCK_DGRAM))
    server.bind("127.0.0.1:0")
    server.settimeout(IO_TIMEOUT)
    client = socat("-", f"UDP4-SENDTO:127.0.0.1:{server.local_address.port}")
    client.stdin.write(b"ping\n")
    client.stdin.flush()
    data, sender = server.recvfrom(100)
    assert data == b"ping\n" and sender[0] == "127.0.0.1"
    server.sendto(b"pong\n", sender)
    assert read_output(client, 5) == b"pong\n"


def test_udp_socat_echo_server(socat, closing, wait_until):
    echo = socat("UDP4-RECVFROM:0,bind=127.0.0.1", "PIPE")
    port = wait_for_port(echo, "udp", wait_until)
    client = closing(Socket(socket.AF_INET, socket.SOCK_DGRAM))
    client.settimeout(IO_TIMEOUT)
    client.sendto(b"datagram", socketeer.InetAddress("127.0.0.1", port))
    data, sender = client.recvfrom(100)
    assert (data, sender) == (b"datagram", ("127.0.0.1", port))


def test_unix_dgram_socat_sends_socketeer_replies(socat, closing, short_tmp):
    server_path, client_path = str(short_tmp / "server"), str(short_tmp / "client")
    server = closing(Socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    server.bind(server_path)
    server.settimeout(IO_TIMEOUT)
    client = socat("-", f"UNIX-SENDTO:{server_path},bind={client_path}")
    client.stdin.write(b"unix datagram\n")
    client.stdin.flush()
    data, sender = server.recvfrom(100)
    assert (data, sender) == (b"unix datagram\n", client_path)
    server.sendto(b"unix reply\n", sender)
    assert read_output(client, 11) == b"unix reply\n"


@pytest.mark.parametrize("where", ["path", "abstract"])
def test_unix_dgram_socat_receives(where, socat, closing, short_tmp, wait_until):
    if where == "path":
        path = str(short_tmp / "socat-recv")
        receiver = socat("-u", f"UNIX-RECV:{path}", "-")
        target = socketeer.UnixAddress(path)
        wait_until(lambda: os.path.exists(path) or receiver.poll() is not None, what="socat to bind")
    else:
        name = f"socketeer-socat-recv-{os.getpid()}"
        receiver = socat("-u", f"ABSTRACT-RECV:{name}", "-")
        target = socketeer.UnixAddress(name, abstract=True)
    sender = closing(Socket(socket.AF_UNIX, socket.SOCK_DGRAM))

    def sent():  # a datagram to a name nobody bound yet is refused (abstract) or missing (path)
        try:
            return sender.sendto(b"to socat\n", target) == 9
        except (ConnectionRefusedError, FileNotFoundError):
            return False

    wait_until(sent, what="socat to bind its datagram socket")
    assert read_output(receiver, 9) == b"to socat\n"


def test_unix_seqpacket_keeps_message_boundaries_from_socat(socat, closing, short_tmp):
    path = str(short_tmp / "seq")
    server = closing(Socket(socket.AF_UNIX, socket.SOCK_SEQPACKET))
    server.bind(path)
    server.listen()
    server.settimeout(IO_TIMEOUT)
    client = socat("-", f"UNIX-CONNECT:{path},type=5")
    accepted = closing(server.accept()[0])
    accepted.settimeout(IO_TIMEOUT)
    for message in (b"first record", b"second"):
        client.stdin.write(message)
        client.stdin.flush()
        assert accepted.recv(100) == message  # each write of socat's is one record
    accepted.sendall(b"record back")
    assert read_output(client, 11) == b"record back"
