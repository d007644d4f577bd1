""".ci/check_loopback_only.py, which reads an strace of the suite and lists every destination off
this host, on a real trace: what a task sends from a network namespace the test made (unshare -n,
or a thread that setns()-ed into socketeer.testing's NetNamespace) is not listed; the same from the
host's namespace, before and after, is. Only UDP connect()s to TEST-NET addresses: they name a
destination in the trace and send nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from subprocess_env import ROOT, child_env

CHECKER = ROOT / ".ci" / "check_loopback_only.py"
TRACED = ("connect,sendto,sendmsg,sendmmsg,unshare,setns,clone,clone3,fork,vfork")

PROGRAM = textwrap.dedent("""
    import socket, subprocess, sys
    from socketeer.testing import NetNamespace

    def udp_connect(host):  # sets the default destination; no packet is sent
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.connect((host, 9))
            except OSError:  # ENETUNREACH inside a namespace without routes
                pass

    udp_connect("127.0.0.1")
    udp_connect("192.0.2.1")
    subprocess.run(["unshare", "-n", sys.executable, "-c",
                    "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).connect_ex(('192.0.2.2', 9))"],
                   check=True)
    with NetNamespace() as ns:
        ns.call(udp_connect, "192.0.2.4")
    udp_connect("192.0.2.3")
""")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces (and ptrace of any child)")
def test_lists_off_host_destinations_only_outside_the_tests_namespaces(tmp_path, needs_tool) -> None:
    strace = needs_tool("strace")
    needs_tool("unshare")
    needs_tool("ip")
    trace = tmp_path / "trace"
    subprocess.run([strace, "-f", "--seccomp-bpf", "-y", "-o", str(trace), "-e", f"trace={TRACED}",
                    sys.executable, "-c", PROGRAM], env=child_env(), check=True, timeout=30)
    result = subprocess.run([sys.executable, str(CHECKER), str(trace)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stdout + result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert listed == ["192.0.2.1:9", "192.0.2.3:9"], result.stdout


def test_a_clean_trace_passes(tmp_path) -> None:
    trace = tmp_path / "trace"
    trace.write_text(
        '100 connect(3<socket:[1]>, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0\n'
        '100 sendto(4<socket:[2]>, "{sa_family=AF_INET, sin_addr=inet_addr(\\"8.8.8.8\\")}", 40, 0, NULL, 0) = 40\n'
        '100 connect(5<socket:[3]>, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file)\n'
        '100 sendmsg(6<socket:[4]>, {msg_name={sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, msg_namelen=12}, 0) = 20\n'
    )
    result = subprocess.run([sys.executable, str(CHECKER), str(trace)], capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout) == (0, "4 sends and connects traced; 0 destination(s) off this host\n")


def test_a_resolver_daemon_that_took_the_connection_is_listed(tmp_path) -> None:
    trace = tmp_path / "trace"
    trace.write_text('7 connect(5<socket:[3]>, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = 0\n')
    result = subprocess.run([sys.executable, str(CHECKER), str(trace)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "AF_UNIX /var/run/nscd/socket (a resolver daemon" in result.stdout
