"""Every program in examples/ runs to completion on loopback and says what it showed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from subprocess_env import ROOT, child_env

EXAMPLES = {
    "tcp_echo.py": "client: echoed back b'hello over TCP'",
    "udp_echo.py": "client: got b'CONNECTED HELLO'",
    "unix_stream.py": "client: got b'echo: hello over a unix stream'",
    "unix_dgram.py": "client: got b'margatad xinu'",
    "unix_seqpacket.py": "boundaries kept: 3 sends -> 3 messages",
    "abstract_namespace.py": "after close, the name is free again",
    "socketpair.py": "datagram pair keeps boundaries: b'first', b'second'",
    "pass_fd.py": "read b'the contents of an unlinked file'",
    "line_server.py": "client: got [b'HELLO', b'LINE SERVER', b'3 lines, bye']",
    "blob_server.py": "client: 3 blobs of 1 MiB checked and echoed intact",
    "netlink_links.py": ("bound with pid 0; the kernel assigned netlink:", "raw: link 1 lo mtu",
                         "raw and typed agree: True"),
    "tcp_lifecycle.py": ("after listen():\n  LISTEN", "SYN_RECV", "ESTABLISHED", "FIN_WAIT2", "CLOSE_WAIT",
                         "after the server's close():\n  LISTEN", "TIME_WAIT"),
}


def run_example(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-W", "error", str(ROOT / "examples" / name)], env=child_env(),
                          capture_output=True, text=True, timeout=30)


def test_every_example_is_listed() -> None:
    on_disk = {path.name for path in (ROOT / "examples").glob("*.py")}
    assert on_disk == set(EXAMPLES) | {"icmp_ping.py"}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs(name: str) -> None:
    result = run_example(name)
    assert result.returncode == 0, result.stderr
    expected = EXAMPLES[name]
    for line in (expected,) if isinstance(expected, str) else expected:
        assert line in result.stdout, result.stdout


def test_icmp_ping_pings_or_says_why_not() -> None:
    result = run_example("icmp_ping.py")
    assert result.returncode == 0, result.stderr
    if "skipped: needs CAP_NET_RAW" in result.stdout:
        pytest.skip("raw sockets need CAP_NET_RAW: the example printed its skip line")
    assert "3 packets transmitted, 3 received" in result.stdout
