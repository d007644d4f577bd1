"""The pytest plugin's socket-state checks (socketeer_sockets, the socketeer_sockets marker) and
the fd-leak report's socket lines, built on sock_diag: real stdlib sockets in every state asked
about, and the plugin as users get it in sub-pytests whose failure messages are checked.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from socketeer import TcpState
from socketeer.testing import SocketWatch, netns_unavailable_reason, parse_states
from socketeer.testing.fds import FdGuard, describe_fd, open_fds

from subprocess_env import child_env
from test_plugin import PLUGIN_ARGS, SUBRUN_TIMEOUT, subrun  # noqa: F401  (subrun: a fixture)

pytest_plugins = ["pytester", "socketeer.testing.plugin"]

needs_netns = pytest.mark.skipif(netns_unavailable_reason() is not None, reason=f"{netns_unavailable_reason()}")


class Connection:
    """A stdlib listener on 127.0.0.1, a client connected to it and the accepted server side."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.client = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.server, _ = self.listener.accept()
        self.server.settimeout(5)
        self.client_port = self.client.getsockname()[1]

    def peer_closes(self) -> None:
        """The client closes; the server has read the FIN, so it is in CLOSE_WAIT (until it closes)."""
        self.client.close()
        assert self.server.recv(1) == b""

    def close(self) -> None:
        for s in (self.client, self.server, self.listener):
            s.close()


@pytest.fixture
def connection() -> Iterator[Connection]:
    pair = Connection()
    yield pair
    pair.close()


# --- the assertions, in this process ----------------------------------------------------------

def test_assert_none_names_a_close_wait_socket_and_passes_once_closed(socketeer_sockets: SocketWatch,
                                                                      connection: Connection) -> None:
    socketeer_sockets.assert_none("close-wait")  # ESTABLISHED is not CLOSE_WAIT
    connection.peer_closes()
    fd = connection.server.fileno()
    address = f"127.0.0.1:{connection.port} -> 127.0.0.1:{connection.client_port}"
    for spelling in ("close-wait", "CLOSE_WAIT", TcpState.CLOSE_WAIT, ["fin-wait-2", "close_wait"]):
        with pytest.raises(AssertionError) as raised:
            socketeer_sockets.assert_none(spelling)
        states = "FIN_WAIT2/CLOSE_WAIT" if isinstance(spelling, list) else "CLOSE_WAIT"
        assert str(raised.value) == (f"1 socket(s) of this process in {states}:\n"
                                     f"  fd {fd}: tcp {address} CLOSE_WAIT (inode {os.fstat(fd).st_ino})")
    with pytest.raises(AssertionError, match=f"opened by this test on port {connection.port} in CLOSE_WAIT"):
        socketeer_sockets.assert_none("close-wait", port=connection.port, new=True)
    socketeer_sockets.assert_none("close-wait", port=1)  # a port it is not on
    connection.server.close()
    socketeer_sockets.assert_none("close-wait")
    socketeer_sockets.assert_none("close-wait", mine=False, port=connection.port)


def test_assert_none_any_state_and_new(socketeer_sockets: SocketWatch) -> None:
    socketeer_sockets.assert_none(new=True)
    a, b = socket.socketpair()
    with a, b:
        assert {r.inode for r in socketeer_sockets.new()} == {os.fstat(a.fileno()).st_ino, os.fstat(b.fileno()).st_ino}
        assert {r.inode for r in socketeer_sockets.new()} <= {r.inode for r in socketeer_sockets.mine()}
        with pytest.raises(AssertionError) as raised:
            socketeer_sockets.assert_none(new=True)
        lines = str(raised.value).splitlines()
        assert lines[0] == "2 socket(s) opened by this test in any state:"
        assert sorted(lines[1:]) == sorted(f"  fd {x.fileno()}: unix stream -> inode {_inode(y)} (inode {_inode(x)})"
                                           for x, y in ((a, b), (b, a)))
    socketeer_sockets.assert_none(new=True)
    assert socketeer_sockets.new() == []


def test_states_by_any_spelling_and_the_mistakes() -> None:
    assert parse_states(["estab", "Fin-Wait-1", "closed", "listening", 8]) == {
        TcpState.ESTABLISHED, TcpState.FIN_WAIT1, TcpState.CLOSE, TcpState.LISTEN, TcpState.CLOSE_WAIT}
    with pytest.raises(ValueError, match="unknown socket state 'close-wiat'; expected a TcpState"):
        parse_states("close-wiat")
    with pytest.raises(ValueError, match="unknown socket state 99"):
        parse_states(99)
    with SocketWatch() as watch:
        with pytest.raises(ValueError, match="TIME_WAIT.*no process's; pass mine=False"):
            watch.assert_none("time-wait")  # would pass whatever the host did: refused
        with pytest.raises(ValueError, match="unknown socket state 'nope'"):
            watch.expect_at_teardown(no_state="nope")


def test_assert_no_listener_and_assert_listening(socketeer_sockets: SocketWatch) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    with listener:
        with pytest.raises(AssertionError) as raised:
            socketeer_sockets.assert_no_listener(port)
        assert str(raised.value) == (f"1 listener(s) on port {port} in this network namespace:\n"
                                     f"  fd {listener.fileno()}: tcp 127.0.0.1:{port} -> 0.0.0.0:0 LISTEN "
                                     f"(inode {os.fstat(listener.fileno()).st_ino})")
        with pytest.raises(AssertionError, match=f"on 127.0.0.1:{port} "):
            socketeer_sockets.assert_no_listener(port, host="127.0.0.1")
        socketeer_sockets.assert_no_listener(port, host="127.0.0.2")  # bound to another address
        [found] = socketeer_sockets.assert_listening(port)
        assert found.state == TcpState.LISTEN and found.local.port == port
    socketeer_sockets.assert_no_listener(port)
    with pytest.raises(AssertionError, match=f"nobody listens on port {port} in this network namespace"):
        socketeer_sockets.assert_listening(port)


def test_a_wildcard_listener_listens_on_every_host(socketeer_sockets: SocketWatch) -> None:
    with socket.create_server(("0.0.0.0", 0)) as listener:
        port = listener.getsockname()[1]
        with pytest.raises(AssertionError, match=rf"on 127.0.0.2:{port} .*\n.*tcp 0.0.0.0:{port} -> 0.0.0.0:0 LISTEN"):
            socketeer_sockets.assert_no_listener(port, host="127.0.0.2")
        assert len(socketeer_sockets.assert_listening(port, host="127.0.0.1")) == 1


LISTENER_PROCESS = """
import socket, sys
with socket.create_server(("127.0.0.1", 0)) as listener:
    print(listener.getsockname()[1], listener.fileno(), flush=True)
    sys.stdin.read()   # until the test closes our stdin
"""


def test_assert_no_listener_names_another_process(socketeer_sockets: SocketWatch) -> None:
    child = subprocess.Popen([sys.executable, "-c", LISTENER_PROCESS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        port, fd = child.stdout.readline().split()  # type: ignore[union-attr]
        with pytest.raises(AssertionError, match=rf"  python[^\[]*\[{child.pid}\] fd {fd}: tcp 127.0.0.1:{port} -> "):
            socketeer_sockets.assert_no_listener(int(port))
        socketeer_sockets.assert_none("listen", port=int(port))  # not this process's
        with pytest.raises(AssertionError, match=f"1 socket.s. in this network namespace on port {port} in LISTEN"):
            socketeer_sockets.assert_none("listen", port=int(port), mine=False)
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait(timeout=10)
        child.stdout.close()  # type: ignore[union-attr]
    socketeer_sockets.assert_no_listener(int(port))


@needs_netns
def test_inside_a_namespace(socketeer_sockets: SocketWatch, socketeer_netns) -> None:
    listener = socketeer_netns.call(socket.create_server, ("127.0.0.1", 0))
    port, inode = listener.getsockname()[1], _inode(listener)
    inside = socketeer_sockets.inside(socketeer_netns)
    with listener:
        assert inode not in {r.inode for r in socketeer_sockets.mine()}  # the host's list has it not
        assert [r.inode for r in inside.new()] == [inode]
        with pytest.raises(AssertionError) as raised:
            inside.assert_no_listener(port)
        assert str(raised.value) == (f"1 listener(s) on port {port} in network namespace {socketeer_netns.name}:\n"
                                     f"  fd {listener.fileno()}: tcp 127.0.0.1:{port} -> 0.0.0.0:0 LISTEN (inode {inode})")
    inside.assert_no_listener(port)
    with pytest.raises(FileNotFoundError, match="/run/netns/no-such-namespace"):
        socketeer_sockets.inside("no-such-namespace")


# --- the fd-leak report -------------------------------------------------------------------------

def _inode(s: socket.socket) -> int:
    return os.fstat(s.fileno()).st_ino


def test_leak_report_names_state_peer_and_queues_from_sock_diag(connection: Connection) -> None:
    guard = FdGuard()
    client = socket.create_connection(("127.0.0.1", connection.port), timeout=5)
    server, _ = connection.listener.accept()
    a, b = socket.socketpair()
    try:
        client.sendall(b"unread")
        assert server.recv(1, socket.MSG_PEEK) == b"u"  # the bytes have arrived: 6 are queued
        leaks = guard.leaks()
        assert set(leaks) == {client.fileno(), server.fileno(), a.fileno(), b.fileno()}
        here, there = f"127.0.0.1:{client.getsockname()[1]}", f"127.0.0.1:{connection.port}"
        assert describe_fd(client.fileno(), leaks[client.fileno()]).endswith(f"(tcp {here} -> {there} ESTABLISHED)")
        assert describe_fd(server.fileno(), leaks[server.fileno()]).endswith(
            f"(tcp {there} -> {here} ESTABLISHED, recv-q 6)")
        assert describe_fd(a.fileno(), leaks[a.fileno()]) == \
            f"fd {a.fileno()} -> socket:[{_inode(a)}] (unix stream -> inode {_inode(b)})"
        with pytest.raises(pytest.fail.Exception, match=rf"(?s)leaked 4 file descriptor.*{there} -> {here} ESTABLISHED"):
            guard.check()
    finally:
        for s in (client, server, a, b):
            s.close()
    guard.check()


@needs_netns
def test_leak_report_finds_a_socket_made_in_a_test_namespace(socketeer_netns) -> None:
    guard = FdGuard()
    with socketeer_netns.call(socket.create_server, ("127.0.0.1", 0)) as listener:
        fd, port = listener.fileno(), listener.getsockname()[1]
        assert describe_fd(fd, guard.leaks()[fd]).endswith(
            f"(tcp 127.0.0.1:{port} -> 0.0.0.0:0 LISTEN, netns {socketeer_netns.name})")


def _described(connection: Connection, a: socket.socket) -> tuple[str, str]:
    targets = open_fds()
    return (describe_fd(connection.server.fileno(), targets[connection.server.fileno()]),
            describe_fd(a.fileno(), targets[a.fileno()]))


@pytest.mark.parametrize("failure", ["no extension", "sock_diag fails"])
def test_leak_report_falls_back_to_proc(connection: Connection, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    """Without sock_diag the report still names the socket, as /proc/self/net has it (no queues,
    no unix peer)."""
    connection.client.sendall(b"x")
    assert connection.server.recv(1, socket.MSG_PEEK) == b"x"
    a, b = socket.socketpair()
    with a, b:
        assert _described(connection, a)[0].endswith(", recv-q 1)")  # sock_diag's line
        if failure == "no extension":
            monkeypatch.setitem(sys.modules, "socketeer.diag", None)  # import socketeer.diag: ImportError
        else:
            import socketeer.diag

            def refused(*args: object, **kwargs: object) -> None:
                raise PermissionError(1, "Operation not permitted")

            monkeypatch.setattr(socketeer.diag, "sockets", refused)
        server, pair = _described(connection, a)
        assert server.endswith(f"(tcp 127.0.0.1:{connection.port} -> 127.0.0.1:{connection.client_port} ESTABLISHED)")
        assert pair.endswith("(unix stream)")


# --- the plugin as users get it: sub-pytests ----------------------------------------------------

MARKED = '''
    import socket
    import pytest

    kept = []
    LISTENER = socket.create_server(("127.0.0.1", 0))  # made at import: its port is known to the marks
    PORT = LISTENER.getsockname()[1]

    def close_wait(name):
        with socket.create_server(("127.0.0.1", 0)) as listener:
            client = socket.create_connection(listener.getsockname(), timeout=5)
            server, _ = listener.accept()
        client.close()
        server.settimeout(5)
        assert server.recv(1) == b""  # the peer's FIN: CLOSE_WAIT until we close
        with open(name, "w") as f:
            f.write(f"{server.fileno()} {server.getsockname()[1]} {server.getpeername()[1]}")
        return server

    def test_assert_none_fails(socketeer_sockets):
        with close_wait("failed"):
            socketeer_sockets.assert_none("close-wait")

    @pytest.mark.socketeer_sockets(no_state="close-wait")
    def test_leaves_close_wait():
        kept.append(close_wait("left"))

    @pytest.mark.socketeer_sockets(no_state=["close-wait", "fin-wait-2"])
    def test_closes_its_socket():
        close_wait("closed").close()

    @pytest.mark.socketeer_sockets(no_listener=PORT)
    def test_port_still_listened():
        pass

    @pytest.mark.socketeer_sockets(no_listener=[PORT])
    def test_closes_the_listener():
        LISTENER.close()

    @pytest.fixture
    def listener():
        with socket.create_server(("127.0.0.1", 0)) as s:
            yield s

    def test_fixture_torn_down_before_the_check(listener, socketeer_sockets):
        socketeer_sockets.expect_at_teardown(no_listener=listener.getsockname()[1])

    def test_leaves_a_listener(socketeer_sockets):
        kept.append(socket.create_server(("127.0.0.1", 0)))
        socketeer_sockets.expect_at_teardown(no_listener=kept[-1].getsockname()[1])
'''


def test_marker_and_teardown_checks_in_a_sub_pytest(subrun, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_marked=MARKED)
    result = subrun("-rA")
    result.assert_outcomes(passed=6, failed=1, errors=3)  # a teardown failure is an error (the test passed)
    fd, port, peer = (pytester.path / "left").read_text().split()
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_leaves_close_wait*",
        "*at teardown: 1 socket(s) opened by this test in CLOSE_WAIT:*",
        f"*  fd {fd}: tcp 127.0.0.1:{port} -> 127.0.0.1:{peer} CLOSE_WAIT (inode *)*",
    ])
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_port_still_listened*",
                                 "*at teardown: 1 listener(s) on port * in this network namespace:*",
                                 "*  fd *: tcp 127.0.0.1:* -> 0.0.0.0:0 LISTEN (inode *)*"])
    result.stdout.fnmatch_lines(["*_ test_assert_none_fails _*", "*AssertionError: 1 socket(s) of this process in CLOSE_WAIT:*",
                                 "*tcp 127.0.0.1:* -> 127.0.0.1:* CLOSE_WAIT (inode *)*"])
    assert "During handling of the above exception" not in result.stdout.str()  # each failure told once
    errors = {line.split("::")[-1].split()[0] for line in result.outlines if line.startswith("ERROR")}
    assert errors == {"test_leaves_close_wait", "test_port_still_listened", "test_leaves_a_listener"}


def test_marker_and_fixture_are_documented(subrun) -> None:
    subrun("--markers").stdout.fnmatch_lines(["@pytest.mark.socketeer_sockets(no_state=STATES, no_listener=PORTS):*"])
    subrun("--fixtures").stdout.fnmatch_lines(
        ["socketeer_sockets*", "*Socket-state assertions from the kernel's socket list (sock_diag)*"])


LEAKS = '''
    import os, socket
    import pytest

    kept = []

    @pytest.mark.socketeer_no_fd_leaks
    def test_leaks_a_connection_and_a_pair():
        with socket.create_server(("127.0.0.1", 0)) as listener:
            client = socket.create_connection(listener.getsockname(), timeout=5)
            server, _ = listener.accept()
        client.sendall(b"hi")
        assert server.recv(1, socket.MSG_PEEK) == b"h"
        a, b = socket.socketpair()
        kept.extend([client, server, a, b])
        with open("leaked", "w") as f:
            f.write(f"{server.getsockname()[1]} {client.getsockname()[1]} {os.fstat(b.fileno()).st_ino}")
'''


@pytest.mark.parametrize("extension", ["built", "broken"])
def test_fd_guard_report_in_a_sub_pytest(subrun, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                         extension: str) -> None:
    """The report of a leaked connection and socketpair: from sock_diag with the extension,
    from /proc/self/net with socketeer._core unimportable from pytest's first line."""
    from test_plugin import BROKEN_BUILD
    pytester.makepyfile(test_leaks=LEAKS)
    if extension == "built":
        result = subrun("-rA")
    else:
        (pytester.path / "run_pytest.py").write_text(textwrap.dedent(BROKEN_BUILD))
        result = pytester.run(sys.executable, "run_pytest.py", *PLUGIN_ARGS, "-rA", timeout=SUBRUN_TIMEOUT)
    result.assert_outcomes(passed=1, errors=1)
    port, client_port, peer_inode = (pytester.path / "leaked").read_text().split()
    server, pair = ((f"ESTABLISHED, recv-q 2", f"unix stream -> inode {peer_inode}") if extension == "built"
                    else ("ESTABLISHED", "unix stream"))
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaks_a_connection_and_a_pair*",
                                 "*test leaked 4 file descriptor(s):*"])
    lines = result.stdout.str()
    assert f" (tcp 127.0.0.1:{port} -> 127.0.0.1:{client_port} {server})\n" in lines, lines
    assert f" (tcp 127.0.0.1:{client_port} -> 127.0.0.1:{port} ESTABLISHED)\n" in lines
    assert f" ({pair})\n" in lines
