"""``socketeer ss`` against iproute2's ss as the oracle: the test makes a known set of sockets
(TCP listener and established pair on IPv4 and IPv6, a bound UDP socket, a unix stream listener
and pair, an abstract unix datagram socket), runs both programs with the same options and a
filter naming only the test's own sockets, and compares the output field by field.

Every subprocess is bounded by a timeout; nothing sleeps."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from subprocess_env import child_env

pytestmark = pytest.mark.skipif(shutil.which("ss") is None, reason="iproute2's ss is the oracle and is not installed")

CLI = [sys.executable, "-W", "error", "-m", "socketeer", "ss"]
TIMEOUT = 30


def socketeer_ss(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=child_env(), capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)


def iproute_ss(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ss", *args], capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def fields(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()]


def same_as_ss(*args: str) -> list[list[str]]:
    """Runs both with ``args``; asserts both succeed with the same lines, fields compared (column
    spacing aside); returns the lines' fields."""
    mine, theirs = socketeer_ss(*args), iproute_ss(*args)
    assert mine.returncode == 0, mine.stderr
    assert theirs.returncode == 0, theirs.stderr
    assert fields(mine.stdout) == fields(theirs.stdout), f"socketeer:\n{mine.stdout}\nss:\n{theirs.stdout}"
    return fields(mine.stdout)


@dataclass
class Known:
    """The test's sockets and the names to filter them by."""

    tcp_port: int
    tcp6_port: int
    udp_port: int
    unix_dir: Path
    abstract: str
    listener: socket.socket
    client: socket.socket
    unix_listener: socket.socket


@pytest.fixture
def known(tmp_path: Path) -> Iterator[Known]:
    sockets: list[socket.socket] = []

    def keep(s: socket.socket) -> socket.socket:
        sockets.append(s)
        return s

    try:
        listener = keep(socket.create_server(("127.0.0.1", 0)))
        client = keep(socket.create_connection(listener.getsockname()))
        keep(listener.accept()[0]).sendall(b"to the client")  # queued in the client: Recv-Q 13
        # The filters below name one socket by its port alone: the kernel may give the IPv6
        # listener or the UDP socket the IPv4 listener's number too (other families, other
        # tables), and a port filter would then match both. Take another until they differ.
        taken = {listener.getsockname()[1]}
        listener6 = keep(socket.create_server(("::1", 0), family=socket.AF_INET6))
        while listener6.getsockname()[1] in taken:
            listener6 = keep(socket.create_server(("::1", 0), family=socket.AF_INET6))
        taken.add(listener6.getsockname()[1])
        keep(socket.create_connection(listener6.getsockname()[:2]))
        keep(listener6.accept()[0])
        udp = keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        udp.bind(("127.0.0.1", 0))
        while udp.getsockname()[1] in taken:
            udp = keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            udp.bind(("127.0.0.1", 0))
        unix_listener = keep(socket.socket(socket.AF_UNIX))
        unix_listener.bind(str(tmp_path / "listener"))
        unix_listener.listen()
        keep(socket.socket(socket.AF_UNIX)).connect(str(tmp_path / "listener"))
        keep(unix_listener.accept()[0])
        abstract = f"socketeer-ss-test-{os.getpid()}"
        keep(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)).bind("\0" + abstract)
        yield Known(listener.getsockname()[1], listener6.getsockname()[1], udp.getsockname()[1], tmp_path, abstract,
                    listener, client, unix_listener)
    finally:
        for s in sockets:
            s.close()


# --- rows, compared with ss --------------------------------------------------------------------


def test_tcp_listener_and_established_pair_match_ss(known: Known) -> None:
    lines = same_as_ss("-tan", f"sport = :{known.tcp_port}")
    assert lines[0] == ["State", "Recv-Q", "Send-Q", "Local", "Address:Port", "Peer", "Address:Port", "Process"]
    assert sorted(line[0] for line in lines[1:]) == ["ESTAB", "LISTEN"]
    client_side = same_as_ss("-tan", f"dport = :{known.tcp_port}")
    # the bytes waiting in the client (rows of other tests' closed connections may linger in TIME_WAIT)
    assert [line[:2] for line in client_side[1:] if line[0] == "ESTAB"] == [["ESTAB", "13"]]


def test_listening_only(known: Known) -> None:
    lines = same_as_ss("-tln", f"sport = :{known.tcp_port}")
    assert [line[0] for line in lines[1:]] == ["LISTEN"]


def test_ipv6_addresses_as_ss_writes_them(known: Known) -> None:
    lines = same_as_ss("-tan", f"sport = :{known.tcp6_port}")
    assert f"[::1]:{known.tcp6_port}" in lines[1] and "[::]:*" in lines[1] + lines[2]


@pytest.mark.parametrize("family, expect_rows", [("-4", False), ("-6", True)])
def test_family_flags(known: Known, family: str, expect_rows: bool) -> None:
    lines = same_as_ss(family, "-tan", f"sport = :{known.tcp6_port}")
    assert (len(lines) > 1) == expect_rows


def test_udp_bound_socket(known: Known) -> None:
    lines = same_as_ss("-uan", f"sport = :{known.udp_port}")
    assert lines[1][0] == "UNCONN"
    same_as_ss("-ua", "src 127.0.0.1", f"sport = :{known.udp_port}")


def test_no_kind_flag_lists_every_kind_with_netid(known: Known) -> None:
    lines = same_as_ss(f"sport = :{known.tcp_port}")  # connected only: the established pair
    assert lines[0][0] == "Netid" and [line[:2] for line in lines[1:]] == [["tcp", "ESTAB"]]
    same_as_ss("-a", f"sport = :{known.tcp_port}")


def test_unix_path_sockets(known: Known) -> None:
    lines = same_as_ss("-xa", f"src {known.unix_dir}/*")
    assert sorted(line[1] for line in lines[1:]) == ["ESTAB", "LISTEN"]
    assert all(line[0] == "u_str" for line in lines[1:])


def test_unix_abstract_socket(known: Known) -> None:
    lines = same_as_ss("-xa", f"src @{known.abstract}")
    assert lines[1][:2] == ["u_dgr", "UNCONN"] and lines[1][4] == "@" + known.abstract


def test_processes_column(known: Known) -> None:
    lines = same_as_ss("-tanp", f"sport = :{known.tcp_port}")
    text = " ".join(" ".join(line) for line in lines)
    assert f"pid={os.getpid()},fd={known.listener.fileno()})" in text
    unix = same_as_ss("-xap", f"src {known.unix_dir}/*")
    assert f"pid={os.getpid()},fd={known.unix_listener.fileno()})" in " ".join(" ".join(line) for line in unix)


def _info_keys(line: str) -> set[str]:
    return {match.group() for word in line.split() if (match := re.match(r"[a-z_]+", word))}


def test_tcp_info_second_line(known: Known) -> None:
    # Only the established pair: another test's closed connection to this port may linger in
    # TIME_WAIT, and -a would list it too.
    args = ("-tni", "state", "established", f"dport = :{known.tcp_port}")
    mine, theirs = socketeer_ss(*args), iproute_ss(*args)
    assert mine.returncode == 0 and theirs.returncode == 0, mine.stderr + theirs.stderr
    mine_lines, their_lines = mine.stdout.splitlines(), theirs.stdout.splitlines()
    assert len(mine_lines) == len(their_lines) == 3
    assert fields(mine_lines[1]) == fields(their_lines[1])
    assert mine_lines[2].startswith("\t") and their_lines[2].startswith("\t")
    keys = _info_keys(mine_lines[2])
    assert {"rtt", "cwnd", "mss", "rto", "bytes_received", "segs_out", "send"} <= keys
    assert keys <= _info_keys(their_lines[2])  # nothing ss would not print


def test_no_header(known: Known) -> None:
    lines = same_as_ss("-tanH", f"sport = :{known.tcp_port}")
    assert len(lines) == 2 and lines[0][0] in ("LISTEN", "ESTAB")


@pytest.mark.parametrize("state, shown", [("established", "ESTAB"), ("listening", "LISTEN")])
def test_state_filter_leaves_out_the_state_column(known: Known, state: str, shown: str) -> None:
    lines = same_as_ss("-tn", "state", state, f"sport = :{known.tcp_port}")
    assert lines[0][0] == "Recv-Q" and len(lines) == 2  # one state: ss drops the State column
    assert same_as_ss("-tan", "state", state, f"sport = :{known.tcp_port}") == lines  # state outranks -a


def test_address_filters(known: Known) -> None:
    lines = same_as_ss("-ta", f"dst [::1]:{known.tcp6_port}")
    # the known connection; an earlier test's TIME-WAIT to a port of the same number may be there too
    assert [line[0] for line in lines[1:] if line[0] != "TIME-WAIT"] == ["ESTAB"]
    same_as_ss("-ta", f"src 127.0.0.0/8 and sport = :{known.tcp_port}")


def test_header_without_arguments_is_ss_header() -> None:
    mine, theirs = socketeer_ss(), iproute_ss()
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout.splitlines()[0] == theirs.stdout.splitlines()[0]


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("words, token", [
    (["sport = :http"], ":http"), (["(", "sport", ":1", ")"], "("), (["state", "nosuch"], "nosuch"),
    (["src", "x.invalid"], "x.invalid"), (["sport"], "sport"), (["sport = :1 or dport = :2"], "or"),
])
def test_bad_filter_is_one_line_and_status_2(words: list[str], token: str) -> None:
    result = socketeer_ss("-tan", *words)
    assert result.returncode == 2, result.stdout
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("socketeer: ss: ") and repr(token) in lines[0], result.stderr


def test_missing_namespace_is_one_line_naming_it() -> None:
    result = socketeer_ss("-tan", "-N", "socketeer-no-such-netns")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("socketeer: ss: "), result.stderr
    assert "socketeer-no-such-netns" in lines[0] and "ENOENT" in lines[0]


def test_other_namespace(socketeer_netns) -> None:  # type: ignore[no-untyped-def]
    listener = socketeer_netns.call(socket.create_server, ("127.0.0.1", 0))
    try:
        port = listener.getsockname()[1]
        lines = same_as_ss("-tln", "-N", socketeer_netns.name)
        assert [line[3] for line in lines[1:]] == [f"127.0.0.1:{port}"]  # its only socket
        assert len(same_as_ss("-tln", f"sport = :{port}")) == 1  # not in this namespace
    finally:
        listener.close()


def test_help_names_the_options_and_says_names_are_never_resolved() -> None:
    result = socketeer_ss("--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: socketeer ss")
    for word in ("-t", "-u", "-x", "-l", "-a", "-p", "-i", "-n", "-H", "-N", "never resolved", "sport = :PORT"):
        assert word in result.stdout
    listing = subprocess.run([*CLI[:-1], "--help"], env=child_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert re.search(r"^\s+ss\s+\S", listing.stdout, re.MULTILINE), listing.stdout


def test_no_state_left_says_so_like_ss() -> None:
    result = socketeer_ss("-t", "exclude", "all")
    assert result.returncode == 0 and result.stdout == ""
    assert result.stderr == "socketeer: ss: no socket states to show with such filter\n"
