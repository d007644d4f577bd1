"""socketeer's pytest plugin (socketeer.testing): each fixture used directly here, and the plugin as
users get it, in sub-pytests (pytester): every fixture in one file, the fd-leak guard failing a
leaking test and naming the fd, options and markers in --help, and start-up with a broken build.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import socketeer
from socketeer.testing import CLOSE, RESET, NetNamespace, TestServer, netns_unavailable_reason
from socketeer.testing.fds import FdGuard, describe_fd, leaked_fds, open_fds

from aio_loops import run_on
from subprocess_env import child_env

# The plugin's own name: the entry point's too, so this is a no-op when socketeer is installed.
pytest_plugins = ["pytester", "socketeer.testing.plugin"]

PLUGIN_ARGS = ("-p", "socketeer.testing.plugin", "-p", "no:cacheprovider")
SUBRUN_TIMEOUT = 45  # seconds; the outer test's own limit is 60
needs_netns = pytest.mark.skipif(netns_unavailable_reason() is not None,
                                 reason=f"{netns_unavailable_reason()}")


# --- addresses and socket pairs ---------------------------------------------------------------

def test_tcp_listener_is_bound_listening_and_holds_its_port(socketeer_tcp_listener) -> None:
    address = socketeer_tcp_listener.address
    assert address.host == "127.0.0.1" and address.port > 0
    assert socketeer_tcp_listener.endpoint == f"tcp://127.0.0.1:{address.port}"
    with socket.socket() as rival:  # the port is taken: nobody can grab it before the test uses it
        with pytest.raises(OSError) as raised:
            rival.bind(("127.0.0.1", address.port))
        assert raised.value.errno == errno.EADDRINUSE
    with socketeer.connect(socketeer_tcp_listener.endpoint, timeout=5) as client:
        with socketeer_tcp_listener.accept(timeout=5) as server:
            client.send_all(b"ping\n")
            assert server.recv_until(b"\n", timeout=5) == b"ping\n"


def test_udp_socket_is_bound(socketeer_udp_socket) -> None:
    address = socketeer_udp_socket.address
    assert address.host == "127.0.0.1" and address.port > 0
    with socketeer.bind("udp://127.0.0.1:0", timeout=5) as other:
        other.send_to(b"hello", address)
        data, sender = socketeer_udp_socket.recv_from()
        assert (data, sender) == (b"hello", other.address)


def test_unix_path_is_short_fresh_and_usable(socketeer_unix_path: str) -> None:
    assert len(socketeer_unix_path.encode()) < 108
    assert socketeer_unix_path.startswith("/tmp/")
    assert not os.path.exists(socketeer_unix_path) and os.path.isdir(os.path.dirname(socketeer_unix_path))
    with socketeer.listen(f"unix:{socketeer_unix_path}") as listener:
        with socketeer.connect(f"unix:{socketeer_unix_path}", timeout=5) as client, listener.accept(timeout=5) as peer:
            client.send_all(b"x")
            assert peer.recv_exactly(1, timeout=5) == b"x"


def test_abstract_name_is_fresh_and_usable(socketeer_abstract_name: str) -> None:
    assert socketeer_abstract_name.startswith("@socketeer-")
    with socketeer.listen(f"unix:{socketeer_abstract_name}") as listener:
        assert listener.address.abstract
        with socketeer.connect(f"unix:{socketeer_abstract_name}", timeout=5) as client:
            with listener.accept(timeout=5) as peer:
                peer.send_all(b"y")
                assert client.recv_exactly(1, timeout=5) == b"y"


def test_socketpair_is_connected_both_ways(socketeer_socketpair) -> None:
    a, b = socketeer_socketpair
    assert a.family == socket.AF_UNIX and a.type == socket.SOCK_STREAM
    a.sendall(b"to b")
    b.sendall(b"to a")
    assert b.recv(4) == b"to b" and a.recv(4) == b"to a"


# --- servers ----------------------------------------------------------------------------------

STREAM_ENDPOINTS = ["tcp", "tcp6", "unix", "unix+seqpacket", "unix:@"]


@pytest.mark.parametrize("endpoint", STREAM_ENDPOINTS)
def test_stream_echo_server_echoes_and_records(socketeer_server, endpoint: str) -> None:
    if endpoint == "tcp6" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    server = socketeer_server("echo", endpoint)
    with socketeer.connect(server.endpoint, timeout=5) as client:
        client.send_all(b"hello")
        assert client.recv_exactly(5, timeout=5) == b"hello"
    server.wait_received(5)
    assert server.received_data == b"hello" and server.connections == 1


@pytest.mark.parametrize("endpoint", ["udp", "udp6", "unix+dgram"])
def test_datagram_echo_server_echoes_and_records_senders(socketeer_server, socketeer_unix_path,
                                                          endpoint: str) -> None:
    server = socketeer_server("echo", endpoint)
    local = {"udp": "udp://127.0.0.1:0", "udp6": "udp://[::1]:0", "unix+dgram": f"unix+dgram:{socketeer_unix_path}"}
    with socketeer.bind(local[endpoint], timeout=5) as client:
        client.send_to(b"one", server.address)
        client.send_to(b"two", server.address)
        replies = {client.recv_from()[0], client.recv_from()[0]}
        assert replies == {b"one", b"two"}
        received = server.wait_received(count=2)
        assert sorted(received) == [b"one", b"two"]
        assert {sender for _, sender in server.received_from} == {client.address}


def test_discard_server_records_and_sends_nothing(socketeer_server) -> None:
    server = socketeer_server("discard", "unix+seqpacket")
    with socketeer.connect(server.endpoint, timeout=5) as client:
        for message in (b"a", b"bb", b"ccc"):
            client.send_all(message)
        assert server.wait_received(count=3) == [b"a", b"bb", b"ccc"]  # seqpacket keeps boundaries
        client.close_write()
        assert client.recv(timeout=5) == b""  # the server closed after our EOF without a byte


def test_scripted_server_replies_in_order_per_connection(socketeer_server) -> None:
    server = socketeer_server("scripted", "unix+seqpacket", script=[b"first", b"second"], greeting=b"hi")
    for _ in range(2):  # each connection hears the script from the start
        with socketeer.connect(server.endpoint, timeout=5) as client:
            assert client.recv(timeout=5) == b"hi"
            client.send_all(b"1")
            assert client.recv(timeout=5) == b"first"
            client.send_all(b"2")
            assert client.recv(timeout=5) == b"second"
    assert server.received == [b"1", b"2", b"1", b"2"] and server.connections == 2


def test_scripted_server_callable_with_close_and_reset(socketeer_server) -> None:
    from socketeer.framing import lines

    def answer(line: bytes):
        return {b"close": CLOSE, b"reset": RESET}.get(line, line.upper() + b"\n")

    server = socketeer_server("scripted", script=answer, framing=lines())
    with socketeer.connect(server.endpoint, timeout=5) as client:
        client.send_all(b"abc\nclose\n")
        assert client.recv_until(b"\n", timeout=5) == b"ABC\n"
        assert client.recv(timeout=5) == b""  # an orderly close
    with socketeer.connect(server.endpoint, timeout=5) as client:
        client.send_all(b"reset\n")
        with pytest.raises(ConnectionResetError):
            client.recv(timeout=5)
    assert server.received == [b"abc", b"close", b"reset"]


def test_scripted_datagram_server(socketeer_server) -> None:
    server = socketeer_server("scripted", "udp", script=lambda data: b"re: " + data)
    with socketeer.connect(server.endpoint, timeout=5) as client:
        client.send(b"q")
        assert client.recv() == b"re: q"


def test_builtin_server_keeps_no_record(socketeer_server) -> None:
    server = socketeer_server("discard", record=False)
    with pytest.raises(RuntimeError, match="record=True"):
        server.received
    with pytest.raises(ValueError, match="script"):
        socketeer_server("echo", script=[b"x"])
    with pytest.raises(ValueError, match="kind"):
        socketeer_server("chargen")


def test_echo_server_is_the_cpp_builtin(socketeer_echo_server) -> None:
    payload = os.urandom(1 << 20)
    with socketeer.connect(socketeer_echo_server.endpoint, timeout=10) as client:
        sender = threading.Thread(target=client.send_all, args=(payload,), kwargs={"timeout": 10})
        sender.start()
        echoed = client.recv_exactly(len(payload), timeout=10)
        sender.join()
    assert echoed == payload
    assert socketeer_echo_server.connections == 1


def test_server_closes_and_unlinks_after_the_test(socketeer_unix_path) -> None:
    with TestServer("echo", f"unix:{socketeer_unix_path}") as server:
        assert os.path.exists(socketeer_unix_path) and server.endpoint == f"unix:{socketeer_unix_path}"
    assert not os.path.exists(socketeer_unix_path)


# --- the fd-leak guard ------------------------------------------------------------------------

def test_fd_guard_names_a_leaked_pipe_socket_and_file(tmp_path: Path) -> None:
    guard = FdGuard()
    read_end, write_end = os.pipe()
    listener = socketeer.listen("tcp://127.0.0.1:0")
    file = open(tmp_path / "data.txt", "w")
    try:
        leaks = guard.leaks()
        # (a Listener also holds an eventfd, to interrupt a blocked accept)
        assert {read_end, write_end, listener.socket.fileno(), file.fileno()} <= set(leaks)
        port = listener.address.port
        assert describe_fd(read_end, leaks[read_end]).endswith("(pipe)")
        assert f"(tcp 127.0.0.1:{port} -> 0.0.0.0:0 LISTEN)" in describe_fd(listener.socket.fileno(),
                                                                          leaks[listener.socket.fileno()])
        assert describe_fd(file.fileno(), leaks[file.fileno()]) == f"fd {file.fileno()} -> {tmp_path / 'data.txt'} (file)"
        with pytest.raises(pytest.fail.Exception, match=rf"leaked {len(leaks)} file descriptor\(s\)"):
            guard.check()
    finally:
        os.close(read_end)
        os.close(write_end)
        listener.close()
        file.close()
    guard.check()  # nothing left


def test_fd_guard_collects_what_only_a_reference_cycle_kept_open() -> None:
    """An fd whose owner only a reference cycle keeps alive is no leak: the guard collects the
    cycle (only once it sees a new fd: a collection per test was half the suite's time)."""

    class InACycle:
        def __init__(self) -> None:
            self.fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            self.me = self

        def __del__(self) -> None:
            os.close(self.fd)

    guard = FdGuard()
    gc.disable()  # no automatic collection in between
    try:
        fd = InACycle().fd
        assert fd in leaked_fds(guard.before, open_fds())  # open: nothing collected the cycle yet
        assert guard.leaks() == {}
        assert fd not in open_fds()
    finally:
        gc.enable()


def test_fd_guard_fixture_passes_a_clean_test(socketeer_fd_guard, socketeer_server) -> None:
    server = socketeer_server("echo", "unix")  # set up after the guard, closed before its check
    with socketeer.connect(server.endpoint, timeout=5) as client:
        client.send_all(b"z")
        assert client.recv_exactly(1, timeout=5) == b"z"
    assert socketeer_fd_guard.before


def test_describe_unix_and_ipv6_sockets(socketeer_unix_path: str) -> None:
    with socketeer.listen(f"unix+seqpacket:{socketeer_unix_path}") as unix, socketeer.bind("udp://[::1]:0") as udp6:
        targets = open_fds()
        assert describe_fd(unix.socket.fileno(), targets[unix.socket.fileno()]).endswith(
            f"(unix seqpacket {socketeer_unix_path})")
        assert f"(udp6 [::1]:{udp6.address.port} -> [::]:0)" in describe_fd(udp6.socket.fileno(),
                                                                         targets[udp6.socket.fileno()])
    assert leaked_fds({1: "a", 2: "b"}, {1: "a", 2: "c", 3: "d"}) == {2: "c", 3: "d"}


# --- network namespaces -----------------------------------------------------------------------

def _netns_inode() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


@needs_netns
def test_netns_has_its_own_loopback_and_runs_things_inside(socketeer_netns, socketeer_server) -> None:
    ns = socketeer_netns
    links = ns.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    inside = os.stat(ns.path).st_ino
    assert ns.call(_netns_inode) == inside != _netns_inode()  # the caller never moved
    with ns.entered():
        assert _netns_inode() == inside
        server = socketeer_server("echo", "tcp")  # its socket and C++ thread live in the namespace
    assert _netns_inode() != inside

    def round_trip() -> bytes:
        with socketeer.connect(server.endpoint, timeout=5) as client:
            client.send_all(b"inside")
            return client.recv_exactly(6, timeout=5)

    assert ns.call(round_trip) == b"inside"
    with pytest.raises(ZeroDivisionError):  # the callable's exception reaches the caller
        ns.call(lambda: 1 / 0)


@needs_netns
def test_netns_is_deleted_with_its_processes() -> None:
    with NetNamespace() as ns:
        assert ns.exists and ns.name.startswith("socketeer-")
        sleeper = ns.popen(["sleep", "60"])
        path = ns.path
    assert sleeper.returncode is not None and not os.path.exists(path)


@needs_netns
def test_netns_pair_joins_two_namespaces(socketeer_netns_pair) -> None:
    pair = socketeer_netns_pair
    with pair.b.entered():
        listener = socketeer.listen(f"tcp://{pair.address_b}:0")
    with listener:
        def connect_from_a() -> str:
            with socketeer.connect(listener.endpoint, timeout=5) as client, listener.accept(timeout=5) as peer:
                client.send_all(b"over veth")
                assert peer.recv_exactly(9, timeout=5) == b"over veth"
                return str(peer.peer_address.host)

        assert pair.a.call(connect_from_a) == pair.address_a


@needs_netns
def test_netns_pair_netem_delay(socketeer_netns_pair) -> None:
    pair = socketeer_netns_pair
    pair.netem(delay=0.05, side="a")  # skips here when the kernel has no sch_netem
    with pair.b.entered():
        listener = socketeer.listen(f"tcp://{pair.address_b}:0")
    with listener:
        def connect_time() -> float:
            started = time.monotonic()
            socketeer.connect(listener.endpoint, timeout=5).close()
            return time.monotonic() - started

        assert pair.a.call(connect_time) >= 0.05  # the SYN left a through netem
        listener.accept(timeout=5).close()


def test_netns_unavailable_reason_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert netns_unavailable_reason() == "network namespaces need root (CAP_SYS_ADMIN); running as uid 1000"


# --- the fault proxy --------------------------------------------------------------------------

# --- factories say they are factories ----------------------------------------------------------

@pytest.mark.parametrize("fixture, product", [("socketeer_server", "TestServer"),
                                              ("socketeer_fault_proxy", "FaultProxy")])
def test_a_factory_fixture_used_as_its_product_says_to_call_it(request, fixture: str, product: str) -> None:
    factory = request.getfixturevalue(fixture)
    with pytest.raises(AttributeError, match=rf"^{fixture} is a factory: call {fixture}\(\.\.\.\) to get a "
                                             rf"{product}, and use \.endpoint on that$"):
        factory.endpoint
    assert not hasattr(factory, "__wrapped__")  # protocol probes get a plain AttributeError
    assert fixture in repr(factory)


def test_a_factory_closes_what_it_made_newest_first() -> None:
    from socketeer.testing.factories import Factory

    closed: list[int] = []

    class Thing:
        def __init__(self, number: int) -> None:
            self.number = number

        def close(self) -> None:
            closed.append(self.number)

    factory = Factory("thing_fixture", "Thing", Thing)
    assert [factory(1).number, factory(2).number] == [1, 2]
    assert [thing.number for thing in factory.made] == [1, 2]
    factory.close_all()
    assert closed == [2, 1] and factory.made == []


# --- waits for coroutines ---------------------------------------------------------------------

def test_async_waits_let_the_loop_run_the_client(socketeer_server, loop_kind: str) -> None:
    """The client runs on the very loop that waits: a wait that blocked the loop would never see
    its bytes (wait_received() here deadlocks until its timeout)."""
    server = socketeer_server("discard")
    address = server.address

    async def main():
        waiting = asyncio.ensure_future(server.wait_received_async(10))
        closed = asyncio.ensure_future(server.wait_closed_async())
        reader, writer = await asyncio.open_connection(address.host, address.port)
        assert not waiting.done()
        writer.write(b"hello")
        await writer.drain()
        writer.write(b"world")
        await writer.drain()
        received = await waiting
        writer.close()
        await writer.wait_closed()
        await closed
        return received

    assert b"".join(run_on(loop_kind, main)) == b"helloworld"
    assert server.received_data == b"helloworld"


def test_async_wait_times_out_naming_what_came(socketeer_server, loop_kind: str) -> None:
    server = socketeer_server("discard")

    async def main():
        with pytest.raises(TimeoutError, match=r"waited 0.2 s for 3 messages; got 0 messages, 0 bytes"):
            await server.wait_received_async(count=3, timeout=0.2)
        with pytest.raises(TimeoutError, match=r"1 closed connections"):
            await server.wait_closed_async(timeout=0.05)
        with pytest.raises(ValueError, match="either nbytes or count"):
            await server.wait_received_async()

    run_on(loop_kind, main)


def test_async_wait_on_a_builtin_server_says_it_keeps_no_record(socketeer_echo_server, loop_kind: str) -> None:
    async def main():
        with pytest.raises(RuntimeError, match="keeps no record"):
            await socketeer_echo_server.wait_received_async(1)

    run_on(loop_kind, main)


def test_a_cancelled_async_wait_leaves_no_waiter_behind(socketeer_server, loop_kind: str) -> None:
    server = socketeer_server("discard")

    async def main():
        waiting = asyncio.ensure_future(server.wait_received_async(1))
        await asyncio.sleep(0)  # let it start waiting
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    run_on(loop_kind, main)
    with socketeer.connect(server.endpoint, timeout=5) as client:  # the reactor notifies nobody stale
        client.send_all(b"x")
        assert server.wait_received(1) == [b"x"]


def test_fault_proxy_latency_adds_to_the_round_trip(socketeer_fault_proxy, socketeer_echo_server) -> None:
    proxy = socketeer_fault_proxy(socketeer_echo_server)
    with socketeer.connect(proxy.endpoint, timeout=5) as client:
        client.send_all(b"warm")
        assert client.recv_exactly(4, timeout=5) == b"warm"
        proxy.set_latency(0.05)  # each direction
        started = time.monotonic()
        client.send_all(b"ping")
        assert client.recv_exactly(4, timeout=5) == b"ping"
        elapsed = time.monotonic() - started
    assert 0.1 <= elapsed < 0.5


def test_fault_proxy_reset_after_n_bytes(socketeer_fault_proxy, socketeer_echo_server) -> None:
    proxy = socketeer_fault_proxy(socketeer_echo_server)
    proxy.reset_after(1000, direction="downstream")
    received = b""
    with socketeer.connect(proxy.endpoint, timeout=5) as client:
        client.send_all(os.urandom(4000))
        with pytest.raises(ConnectionResetError):
            while True:
                chunk = client.recv(timeout=5)
                if not chunk:
                    break
                received += chunk
    assert len(received) == 1000


def test_fault_proxy_black_hole_times_out(socketeer_fault_proxy, socketeer_echo_server) -> None:
    proxy = socketeer_fault_proxy(socketeer_echo_server)
    proxy.black_hole(True)
    with socketeer.connect(proxy.endpoint, timeout=5) as client:
        client.send_all(b"anyone?")
        with pytest.raises(TimeoutError):
            client.recv(timeout=0.2)


def test_fault_proxy_for_udp_takes_the_upstreams_protocol(socketeer_fault_proxy, socketeer_server) -> None:
    server = socketeer_server("discard", "udp")
    proxy = socketeer_fault_proxy(server)
    assert proxy.endpoint.startswith("udp://127.0.0.1:")
    proxy.duplicate(1.0, direction="upstream")
    with socketeer.connect(proxy.endpoint, timeout=5) as client:
        client.send(b"twice")
        assert server.wait_received(count=2) == [b"twice", b"twice"]


def test_fault_proxy_upstream_may_be_a_listener_or_an_endpoint(socketeer_fault_proxy, socketeer_tcp_listener) -> None:
    for upstream in (socketeer_tcp_listener, socketeer_tcp_listener.endpoint):
        proxy = socketeer_fault_proxy(upstream)
        with socketeer.connect(proxy.endpoint, timeout=5) as client, socketeer_tcp_listener.accept(timeout=5) as peer:
            client.send_all(b"up")
            assert peer.recv_exactly(2, timeout=5) == b"up"


# --- the plugin as users get it: sub-pytests ----------------------------------------------------

@pytest.fixture
def subrun(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """subrun(*args) -> RunResult: pytest in a fresh interpreter on pytester's files, importing the
    same socketeer as this run, with strict markers and warnings as errors. Only the plugins named
    are loaded: whatever else is installed (pytest-asyncio warns at start-up) cannot change it."""
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini("""
        [pytest]
        addopts = --strict-markers --strict-config
        filterwarnings = error
    """)

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess(*PLUGIN_ARGS, *args, timeout=SUBRUN_TIMEOUT)

    return run


EVERY_FIXTURE = '''
    import os, socket
    import pytest
    import socketeer

    def test_tcp_listener(socketeer_tcp_listener):
        with socketeer.connect(socketeer_tcp_listener.endpoint, timeout=5) as c, socketeer_tcp_listener.accept(timeout=5):
            pass

    def test_udp_socket(socketeer_udp_socket):
        socketeer_udp_socket.send_to(b"self", socketeer_udp_socket.address)
        assert socketeer_udp_socket.recv() == b"self"

    def test_unix_path(socketeer_unix_path):
        with open("unix_path", "w") as f:  # the sub-run's working directory: pytester's
            f.write(socketeer_unix_path)
        with socketeer.listen("unix:" + socketeer_unix_path):
            assert os.path.exists(socketeer_unix_path)

    def test_abstract_name(socketeer_abstract_name):
        with socketeer.listen("unix:" + socketeer_abstract_name) as listener:
            assert listener.address.abstract

    def test_socketpair(socketeer_socketpair):
        a, b = socketeer_socketpair
        a.sendall(b"!")
        assert b.recv(1) == b"!"

    @pytest.mark.parametrize("endpoint", ["tcp", "udp", "unix", "unix+dgram", "unix+seqpacket", "unix:@"])
    def test_server(socketeer_server, endpoint):
        server = socketeer_server("scripted", endpoint, script=lambda data: b"re " + data)
        with socketeer.connect(server.endpoint, timeout=5) as client:
            if hasattr(client, "send_all"):
                client.send_all(b"x")
            else:
                client.send(b"x")
            assert client.recv(timeout=5) == b"re x"
        assert server.received == [b"x"]

    def test_echo_server(socketeer_echo_server):
        with socketeer.connect(socketeer_echo_server.endpoint, timeout=5) as client:
            client.send_all(b"echo")
            assert client.recv_exactly(4, timeout=5) == b"echo"

    def test_fault_proxy(socketeer_fault_proxy, socketeer_echo_server):
        proxy = socketeer_fault_proxy(socketeer_echo_server)
        with socketeer.connect(proxy.endpoint, timeout=5) as client:
            client.send_all(b"via")
            assert client.recv_exactly(3, timeout=5) == b"via"

    def test_netns(socketeer_netns):
        assert socketeer_netns.call(lambda: socket.if_nameindex()) == [(1, "lo")]

    def test_netns_pair(socketeer_netns_pair):
        with socketeer_netns_pair.b.entered():
            listener = socketeer.listen(f"tcp://{socketeer_netns_pair.address_b}:0")
        with listener:
            socketeer_netns_pair.a.call(lambda: socketeer.connect(listener.endpoint, timeout=5).close())
            listener.accept(timeout=5).close()

    @pytest.mark.socketeer_no_fd_leaks
    def test_marked_clean(socketeer_server):
        socketeer_server("echo")

    def test_guard_fixture(socketeer_fd_guard):
        pass
'''


def test_every_fixture_in_a_sub_pytest(subrun, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_every_fixture=EVERY_FIXTURE)
    result = subrun("-v", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    skipped = {"test_fault_proxy": not hasattr(socketeer, "FaultProxy"),
               "test_netns": netns_unavailable_reason() is not None,
               "test_netns_pair": netns_unavailable_reason() is not None}
    total = 17
    assert outcomes.get("passed", 0) == total - sum(skipped.values())
    for name, expect_skip in skipped.items():
        result.stdout.fnmatch_lines([f"*::{name} {'SKIPPED' if expect_skip else 'PASSED'}*"])
    if skipped["test_fault_proxy"]:
        result.stdout.fnmatch_lines(["*socketeer.FaultProxy is not in this build of socketeer*"])
    # the short unix path's private directory is gone after the run
    unix_path = (pytester.path / "unix_path").read_text()
    assert not os.path.exists(os.path.dirname(unix_path))


LEAKS = '''
    import os
    import pytest
    import socketeer

    kept = []

    @pytest.mark.socketeer_no_fd_leaks
    def test_leaks_a_socket():
        kept.append(socketeer.listen("tcp://127.0.0.1:0"))
        with open("port", "w") as f:
            f.write(str(kept[-1].address.port))

    def test_leaks_a_pipe(socketeer_fd_guard):
        kept.append(os.pipe())

    def test_unguarded_leak():
        kept.append(os.pipe())

    @pytest.mark.socketeer_no_fd_leaks
    def test_clean():
        with socketeer.listen("tcp://127.0.0.1:0"):
            pass

    @pytest.fixture(scope="module")
    def module_server():
        with socketeer.listen("tcp://127.0.0.1:0") as listener:
            yield listener

    @pytest.mark.socketeer_no_fd_leaks
    def test_module_fixture_is_not_a_leak(module_server):
        pass

    @pytest.mark.socketeer_allow_fd_leaks
    def test_allowed_leak():
        kept.append(os.pipe())
'''


def test_fd_guard_fails_a_leaking_test_naming_the_fd(subrun, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leaks=LEAKS)
    result = subrun("-rA")
    result.assert_outcomes(passed=6, errors=2)  # each leak is an error at teardown
    port = (pytester.path / "port").read_text()
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_leaks_a_socket*",
        "*test leaked * file descriptor(s):*",
        f"*fd * -> socket:[[]*[]] (tcp 127.0.0.1:{port} -> 0.0.0.0:0 LISTEN)*",
    ])
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaks_a_pipe*", "*leaked 2 file descriptor(s)*",
                                 "*fd * -> pipe:[[]*[]] (pipe)*"])
    assert "test_unguarded_leak" not in _errors(result)


def _errors(result: pytest.RunResult) -> str:
    return "\n".join(line for line in result.outlines if line.startswith("ERROR"))


def test_fd_guard_all_option_guards_every_test(subrun, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leaks=LEAKS)
    result = subrun("-rA", "--socketeer-fd-guard-all")
    result.assert_outcomes(passed=6, errors=3)
    assert "test_unguarded_leak" in _errors(result) and "test_allowed_leak" not in _errors(result)
    pytester.makeini("""
        [pytest]
        socketeer_fd_guard_all = true
    """)
    result = subrun("-rA")
    result.assert_outcomes(passed=6, errors=3)


def test_options_and_markers_are_documented(subrun, pytester: pytest.Pytester) -> None:
    result = subrun("--help")
    result.stdout.fnmatch_lines(["*socketeer network testing fixtures*", "*--socketeer-fd-guard-all*",
                                 "*--socketeer-no-netns*", "*socketeer_fd_guard_all (bool)*"])
    result = subrun("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.socketeer_no_fd_leaks:*", "@pytest.mark.socketeer_allow_fd_leaks:*"])
    result = subrun("--fixtures")
    for name in ("socketeer_tcp_listener", "socketeer_udp_socket", "socketeer_unix_path", "socketeer_abstract_name",
                 "socketeer_socketpair", "socketeer_server", "socketeer_echo_server", "socketeer_fault_proxy",
                 "socketeer_netns", "socketeer_netns_pair", "socketeer_fd_guard"):
        result.stdout.fnmatch_lines([f"{name}*"])


def test_fixtures_listing_shows_a_complete_first_line_for_each(subrun, pytester: pytest.Pytester) -> None:
    """``pytest --fixtures`` prints each fixture's first paragraph: for socketeer's, one line and
    a whole sentence (no summary cut off at a colon, nor running on into the details)."""
    lines = subrun("--fixtures").stdout.lines
    shown = {}
    for number, line in enumerate(lines):
        if line.startswith("socketeer_") and " -- " in line:
            shown[line.split(" -- ")[0].split(" [")[0]] = lines[number + 1:number + 3]
    assert len(shown) >= 12, shown
    for name, (first, after) in shown.items():
        assert first.startswith("    ") and first.rstrip().endswith("."), (name, first)
        assert not after.strip(), f"{name}: the first paragraph runs on: {after!r}"


def test_no_netns_option_skips_with_the_reason(subrun, pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ns(socketeer_netns):\n    pass\n")
    result = subrun("-rs", "--socketeer-no-netns")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*network namespaces disabled by --socketeer-no-netns*"])


def test_not_root_skips_netns_with_the_reason(subrun, pytester: pytest.Pytester) -> None:
    pytester.makeconftest("import os\nos.geteuid = lambda: 1000\n")
    pytester.makepyfile("def test_ns(socketeer_netns):\n    pass\n\ndef test_pair(socketeer_netns_pair):\n    pass\n")
    result = subrun("-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*network namespaces need root (CAP_SYS_ADMIN); running as uid 1000*"])


def test_plugin_module_does_not_import_the_extension() -> None:
    """Importing the plugin (and so the socketeer package) loads no socketeer._core: checked in a
    fresh interpreter where _core cannot be imported at all."""
    code = textwrap.dedent("""
        import sys
        sys.modules["socketeer._core"] = None           # any import of it raises ImportError
        import socketeer.testing.plugin
        loaded = {name for name, module in sys.modules.items() if name.startswith("socketeer.") and module}
        assert {name for name in loaded if not name.startswith("socketeer.testing")} <= {"socketeer.constants", "socketeer.kernel_constants"}, loaded
        print("plugin imported without the extension")
    """)
    result = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert "plugin imported without the extension" in result.stdout


BROKEN_BUILD = """
    import runpy, sys
    sys.modules["socketeer._core"] = None   # as if the extension failed to build or load
    sys.argv[0] = "pytest"
    runpy.run_module("pytest", run_name="__main__")
"""


def test_a_broken_build_does_not_break_pytest_start_up(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """With socketeer._core unimportable from the first line, pytest still starts with the plugin,
    an unrelated test passes and a test using a fixture fails naming the import error."""
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])
    (pytester.path / "run_pytest.py").write_text(textwrap.dedent(BROKEN_BUILD))
    pytester.makepyfile(test_unrelated="def test_unrelated():\n    assert 1 + 1 == 2\n",
                        test_uses_socketeer="def test_server(socketeer_echo_server):\n    pass\n")
    result = pytester.run(sys.executable, "run_pytest.py", *PLUGIN_ARGS, "-rA", timeout=SUBRUN_TIMEOUT)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*socketeer._core*"])


# --- beside the async test plugins (pytest-asyncio, anyio) ---------------------------------------

ASYNC_TESTS = """
    import pytest
    import pytest_asyncio
    import socketeer
    import socketeer.aio


    async def ping(endpoint):
        async with await socketeer.aio.connect(endpoint, timeout=5) as client:
            await client.send_all(b"ping")
            return await client.recv_exactly(4, timeout=5)


    @pytest_asyncio.fixture
    async def proxied(socketeer_echo_server, socketeer_fault_proxy):
        proxy = socketeer_fault_proxy(socketeer_echo_server)
        assert await ping(proxy.endpoint) == b"ping"  # an async fixture using ours
        return proxy


    @pytest.mark.asyncio
    async def test_pytest_asyncio(socketeer_echo_server, socketeer_tcp_listener):
        assert await ping(socketeer_echo_server.endpoint) == b"ping"


    @pytest.mark.asyncio
    async def test_pytest_asyncio_fixture(proxied):
        assert await ping(proxied.endpoint) == b"ping"


    @pytest.mark.asyncio
    async def test_pytest_asyncio_waits_for_the_server(socketeer_server):
        server = socketeer_server("discard")
        async with await socketeer.aio.connect(server.endpoint, timeout=5) as client:
            await client.send_all(b"hello")
            assert b"".join(await server.wait_received_async(5)) == b"hello"
        await server.wait_closed_async()


    @pytest.mark.anyio
    async def test_anyio(socketeer_echo_server, socketeer_server):
        server = socketeer_server("scripted", "unix", script=[b"hi"])
        assert await ping(socketeer_echo_server.endpoint) == b"ping"
        async with await socketeer.aio.connect(server.endpoint, timeout=5) as client:
            await client.send_all(b"x")
            assert await client.recv(timeout=5) == b"hi"


    def test_sync_beside_them(socketeer_echo_server):
        with socketeer.connect(socketeer_echo_server.endpoint, timeout=5) as client:
            client.send_all(b"sync")
            assert client.recv_exactly(4, timeout=5) == b"sync"
"""


def _async_plugins_or_skip() -> None:
    import importlib.util
    missing = [name for name in ("pytest_asyncio", "anyio") if importlib.util.find_spec(name) is None]
    if missing:
        reason = f"not installed: {', '.join(missing)} (.ci/run installs them in a second venv)"
        if os.environ.get("SOCKETEER_REQUIRE_ASYNC_PLUGINS"):
            pytest.fail(reason)
        pytest.skip(reason)


def test_fixtures_in_async_tests_beside_pytest_asyncio_and_anyio(pytester: pytest.Pytester,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's project with both async plugins loaded the usual way (installed: autoloaded),
    strict settings, warnings as errors and the fd guard on every test: our fixtures in async
    tests of both, an async fixture built on ours, and a plain test beside them."""
    _async_plugins_or_skip()
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makeini("""
        [pytest]
        addopts = --strict-markers --strict-config
        filterwarnings = error
        asyncio_mode = strict
        asyncio_default_fixture_loop_scope = function
        socketeer_fd_guard_all = true
    """)
    readme = re.findall(r"```python\n(.*?)```", (Path(__file__).parent.parent / "README.md").read_text(), re.S)
    readme_async = [block for block in readme if "@pytest.mark.asyncio" in block]
    assert len(readme_async) == 1, "README's async example"
    pytester.makepyfile(test_async_user=ASYNC_TESTS, test_readme_async=readme_async[0])
    result = pytester.runpytest_subprocess(*PLUGIN_ARGS, "-rA", timeout=SUBRUN_TIMEOUT)
    result.assert_outcomes(passed=6)
