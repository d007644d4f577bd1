"""socketeer's pytest plugin: real servers in C++ threads, addresses handed over still bound, short
unix paths, a fault proxy, network namespaces and an fd-leak guard.

Loaded through the ``pytest11`` entry point when socketeer is installed; from a source tree, pass
``-p socketeer.testing.plugin`` (or list it in ``pytest_plugins``). Disable with
``-p no:socketeer.testing.plugin``.

This module imports nothing of socketeer at import time: the extension is imported inside the
fixtures, so a broken build fails only the tests that use them, never pytest's start-up.

Fixtures
    socketeer_tcp_listener      a listening socketeer.Listener on 127.0.0.1 (port chosen and held)
    socketeer_udp_socket        a bound socketeer.Datagram on 127.0.0.1
    socketeer_unix_path         a fresh unix socket path, < 108 bytes, under a private /tmp dir
    socketeer_abstract_name     a fresh abstract name, '@socketeer-...' (endpoint 'unix:' + name)
    socketeer_socketpair        two connected AF_UNIX stream socketeer.Sockets
    socketeer_server            factory: socketeer_server(kind="echo"|"discard"|"scripted",
                                endpoint="tcp://127.0.0.1:0"|"udp"|"unix"|"unix+dgram"|..., ...)
                                (a Factory: forgetting the call gets an error that says so)
    socketeer_echo_server       a TCP echo server (the C++ built-in)
    socketeer_fault_proxy       factory: socketeer_fault_proxy(upstream, listen=None) -> FaultProxy
    socketeer_netns             a fresh network namespace (root only; skipped otherwise)
    socketeer_netns_pair        two namespaces joined by a veth pair, 10.201.0.1 <-> 10.201.0.2
    socketeer_fd_guard          fails the test if it leaves an fd open (also the marker
                                @pytest.mark.socketeer_no_fd_leaks, or --socketeer-fd-guard-all)
    socketeer_sockets           socket-state assertions from the kernel's list (sock_diag):
                                assert_none("close-wait"), assert_no_listener(port), ...; also
                                the marker @pytest.mark.socketeer_sockets(no_state=, no_listener=)
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Optional

import pytest

from .fds import FdGuard, leaked_fds, open_fds
from .sockets import SocketWatch

if TYPE_CHECKING:
    from .factories import Factory
    from .netns import NetNamespace, NetnsPair
    from .servers import TestServer

GUARD_MARKER = "socketeer_no_fd_leaks"
ALLOW_MARKER = "socketeer_allow_fd_leaks"
GUARD_FIXTURE = "socketeer_fd_guard"
SOCKETS_MARKER = SOCKETS_FIXTURE = "socketeer_sockets"


# --- options and markers ----------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("socketeer", "socketeer network testing fixtures")
    group.addoption("--socketeer-fd-guard-all", action="store_true", default=None,
                    help="fail every test that leaves a file descriptor open (as if each had "
                         f"@pytest.mark.{GUARD_MARKER}); opt out with @pytest.mark.{ALLOW_MARKER}")
    group.addoption("--socketeer-no-netns", action="store_true", default=False,
                    help="skip the tests that use socketeer_netns / socketeer_netns_pair, even as root")
    parser.addini("socketeer_fd_guard_all", type="bool", default=False,
                  help="like --socketeer-fd-guard-all, from the ini file")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{GUARD_MARKER}: fail the test if it leaves a file descriptor open, "
                                       "naming each leaked fd and what it is (socketeer)")
    config.addinivalue_line("markers", f"{ALLOW_MARKER}: exempt the test from --socketeer-fd-guard-all (socketeer)")
    config.addinivalue_line("markers", f"{SOCKETS_MARKER}(no_state=STATES, no_listener=PORTS): fail the test at "
                                       "teardown if a socket it opened is left in one of STATES (e.g. "
                                       "'close-wait'), or anybody listens on one of PORTS (socketeer)")


def _guard_all(config: pytest.Config) -> bool:
    option = config.getoption("socketeer_fd_guard_all", default=None)
    return bool(option) if option is not None else bool(config.getini("socketeer_fd_guard_all"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Puts the guard first in the fixtures of every guarded test, so its snapshot comes before
    any other fixture opens a descriptor and its check after every one of them has closed. In a
    test using socketeer_sockets (or its marker), that fixture goes before the test's own
    fixtures, so its teardown checks see what they left; autouse fixtures (a project's own
    fd-leak guard) stay around it."""
    guard_all = _guard_all(config)
    for item in items:
        names = getattr(item, "fixturenames", None)
        if names is None:
            continue
        if SOCKETS_FIXTURE in names or item.get_closest_marker(SOCKETS_MARKER):
            _put_before_own_fixtures(item, names, SOCKETS_FIXTURE)
        if item.get_closest_marker(ALLOW_MARKER):
            continue
        if guard_all or item.get_closest_marker(GUARD_MARKER) or GUARD_FIXTURE in names:
            _put_first(names, GUARD_FIXTURE)


def _put_first(names: list[str], name: str) -> None:
    if name in names:
        names.remove(name)
    names.insert(0, name)


def _put_before_own_fixtures(item: pytest.Item, names: list[str], name: str) -> None:
    """Moves ``name`` just before the first fixture the test asks for itself (its arguments and
    usefixtures), after the autouse ones pytest lists first."""
    own = {arg for marker in item.iter_markers("usefixtures") for arg in marker.args}
    function = getattr(item, "obj", None)
    if callable(function):
        try:
            own.update(inspect.signature(function).parameters)
        except (TypeError, ValueError):  # no signature to read: first of all, then
            pass
    if name in names:
        names.remove(name)
    names.insert(next((i for i, other in enumerate(names) if other in own), len(names)), name)


# --- the fd-leak guard ------------------------------------------------------------------------

_active_guards: list[FdGuard] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> Iterator[None]:
    if not _active_guards or fixturedef.scope == "function":
        yield
        return
    before = open_fds()
    yield
    new = leaked_fds(before, open_fds())
    for guard in _active_guards:
        guard.excused.update(new.items())


@pytest.fixture
def socketeer_fd_guard() -> Iterator[FdGuard]:
    """Fails the test if it leaves a file descriptor open, naming each leaked fd.

    Checked at teardown; each leaked fd is listed with what it is:
    'fd 9 -> socket:[81234] (tcp 127.0.0.1:41000 -> 127.0.0.1:8080 ESTABLISHED)',
    'pipe:[...]', a file path. Also applied by @pytest.mark.socketeer_no_fd_leaks and
    --socketeer-fd-guard-all."""
    guard = FdGuard()
    _active_guards.append(guard)
    try:
        yield guard
    finally:
        _active_guards.remove(guard)
    guard.check()


# --- socket states (sock_diag) ------------------------------------------------------------------

@pytest.fixture
def socketeer_sockets(request: pytest.FixtureRequest) -> Iterator[SocketWatch]:
    """Socket-state assertions from the kernel's socket list (sock_diag), e.g. no CLOSE_WAIT left.

    Watches this process's sockets from the fixture's setup (a cheap /proc/self/fd snapshot; the
    kernel is asked only when you assert). Each failure names what it found: fd or holding
    process, kind, local -> remote, state, queued bytes, inode.

        socketeer_sockets.assert_none("close-wait")          # none of this process's sockets
        socketeer_sockets.assert_none(["close-wait", "fin-wait-2"], port=8080)
        socketeer_sockets.assert_none("time-wait", port=8080, mine=False)   # anybody's
        socketeer_sockets.assert_no_listener(8080)            # no process listens on TCP 8080
        socketeer_sockets.assert_listening(8080, host="127.0.0.1")  # -> the listeners
        socketeer_sockets.new()     # SocketRecords of this process opened since setup, still open
        socketeer_sockets.mine()    # all of this process's sockets now
        socketeer_sockets.list("tcp", port=8080)              # socketeer.sockets() here
        socketeer_sockets.expect_at_teardown(no_state="close-wait", no_listener=8080)
        ns_watch = socketeer_sockets.inside(socketeer_netns)  # the same, in a test's namespace

    States: a TcpState, or its name as the kernel or ``ss`` spells it ("CLOSE_WAIT",
    "close-wait", "estab"). ``mine=True`` (the default) looks at this process's sockets,
    ``new=True`` at those opened since setup, ``mine=False`` at every socket in the namespace
    (TIME_WAIT sockets have no fd: they are nobody's, so look for them with ``mine=False``).

    The marker ``@pytest.mark.socketeer_sockets(no_state="close-wait", no_listener=8080)`` sets
    the same teardown checks: after every other fixture of the test has been torn down, no
    socket the test opened is left in those states and nobody listens on those ports.
    Needs the extension (the fd-leak guard does not)."""
    watch = SocketWatch()
    marker = request.node.get_closest_marker(SOCKETS_MARKER)
    if marker is not None:
        watch.expect_at_teardown(*marker.args, **marker.kwargs)
    try:
        yield watch
        failure = None
        try:
            watch.check_teardown()
        except AssertionError as error:
            failure = str(error)
        if failure:  # raised outside the except: the report shows it once, not chained
            pytest.fail(failure, pytrace=False)
    finally:
        watch.close()


# --- addresses --------------------------------------------------------------------------------

@pytest.fixture
def socketeer_tcp_listener() -> Iterator[Any]:
    """A socketeer.Listener listening on 127.0.0.1 at a kernel-chosen port, closed after the test.

    It is handed over still bound, so no other process can take the port between choosing and
    using it. Connect to ``listener.endpoint`` / ``listener.address``;
    ``listener.accept(timeout=...)``."""
    import socketeer
    with socketeer.listen("tcp://127.0.0.1:0") as listener:
        yield listener


@pytest.fixture
def socketeer_udp_socket() -> Iterator[Any]:
    """A socketeer.Datagram bound to 127.0.0.1 at a kernel-chosen port, with a 10 s timeout.

    Kept bound for the test; ``.address``, ``.endpoint``, ``send_to``, ``recv_from``."""
    import socketeer
    with socketeer.bind("udp://127.0.0.1:0", timeout=10.0) as datagram:
        yield datagram


class _ShortPaths:
    """Unix socket paths in one private directory under /tmp: a path must fit sockaddr_un's 108
    bytes, which pytest's tmp_path can exceed."""

    def __init__(self) -> None:
        self.directory: Optional[str] = None
        self.count = 0

    def new(self) -> str:
        if self.directory is None:
            self.directory = tempfile.mkdtemp(prefix="sk-", dir="/tmp")
        self.count += 1
        return os.path.join(self.directory, f"{self.count}.sock")

    def remove(self) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def _socketeer_paths() -> Iterator[_ShortPaths]:
    paths = _ShortPaths()
    yield paths
    paths.remove()


@pytest.fixture
def socketeer_unix_path(_socketeer_paths: _ShortPaths) -> str:
    """A fresh unix socket path (not created), well under sockaddr_un's 108 bytes.

    It is in a private directory under /tmp; the directory and whatever is in it are removed
    after the test."""
    return _socketeer_paths.new()


def _abstract_name() -> str:
    return f"@socketeer-{os.getpid()}-{os.urandom(6).hex()}"


@pytest.fixture
def socketeer_abstract_name() -> str:
    """A fresh abstract unix socket name, '@socketeer-PID-RANDOM'.

    socketeer's spelling: the endpoint is 'unix:' + name; for the stdlib, '\\0' + name[1:]."""
    return _abstract_name()


@pytest.fixture
def socketeer_socketpair() -> Iterator[tuple[Any, Any]]:
    """Two connected AF_UNIX stream socketeer.Sockets (closed after the test)."""
    import socketeer
    a, b = socketeer.socketpair()
    with a, b:
        yield a, b


# --- servers ----------------------------------------------------------------------------------

@pytest.fixture
def socketeer_server(_socketeer_paths: _ShortPaths) -> Iterator["Factory[TestServer]"]:
    """Factory: socketeer_server(kind, endpoint, ...) starts a TestServer in C++ threads.

    Each server runs in the C++ reactor's threads and is closed after the test:

        server = socketeer_server("echo")                          # TCP on 127.0.0.1
        server = socketeer_server("discard", "unix+seqpacket")     # a fresh short unix path
        server = socketeer_server("scripted", "udp", script=[b"hello", b"bye"])
        server = socketeer_server("scripted", script=lambda data: b"+OK\\r\\n", greeting=b"hi\\r\\n")

    kind: echo, discard, scripted (see socketeer.testing.TestServer). endpoint: a full endpoint
    or a scheme alone (tcp, tcp6, udp, udp6, unix, unix+dgram, unix+seqpacket; 'unix:@' for an
    abstract name). The result has ``.endpoint`` (connect to it), ``.address``, ``.received``,
    ``.received_data``, ``.wait_received(nbytes | count=)``, ``.connections``; in async tests
    ``await server.wait_received_async(...)`` (the ``_async`` twins never block the event loop).
    """
    from .factories import Factory
    from .servers import TestServer, expand_endpoint

    def make(kind: str = "echo", endpoint: str = "tcp://127.0.0.1:0", **options: Any) -> TestServer:
        return TestServer(kind, expand_endpoint(str(endpoint), _socketeer_paths.new, _abstract_name), **options)

    servers = Factory("socketeer_server", "TestServer", make)
    try:
        yield servers
    finally:
        servers.close_all()


@pytest.fixture
def socketeer_echo_server(socketeer_server: "Factory[TestServer]") -> "TestServer":
    """A TCP echo server on 127.0.0.1 (a TestServer running the C++ built-in), closed after the test.

    No Python runs per message, and it keeps no record. ``.endpoint`` is what to connect to."""
    return socketeer_server("echo", "tcp://127.0.0.1:0", record=False)


# --- the fault proxy --------------------------------------------------------------------------

def _fault_proxy_class() -> Any:
    try:
        import socketeer
    except ImportError as error:
        pytest.skip(f"socketeer does not import, so no fault proxy: {error}")
    proxy_class = getattr(socketeer, "FaultProxy", None)
    if proxy_class is None:
        pytest.skip("socketeer.FaultProxy is not in this build of socketeer")
    return proxy_class


def _endpoint_of(target: Any) -> str:
    endpoint = getattr(target, "endpoint", target)
    return str(endpoint() if callable(endpoint) else endpoint)


@pytest.fixture
def socketeer_fault_proxy() -> Iterator["Factory[Any]"]:
    """Factory: socketeer_fault_proxy(upstream) starts a FaultProxy in front of a real upstream.

    It goes between the code under test and the upstream; each proxy is closed after the test:

        proxy = socketeer_fault_proxy(server)          # a TestServer, Listener, or endpoint string
        client = connect(proxy.endpoint)
        proxy.set_latency(0.05); proxy.reset_after(1000, direction="downstream"); proxy.clear()
        proxy.timeout(1.0); proxy.slow_close(0.5); proxy.down(); proxy.up()   # toxiproxy's too

    ``listen`` defaults to a fresh loopback port of the upstream's protocol (tcp or udp).
    Skipped when this build of socketeer has no FaultProxy.
    """
    from .factories import Factory
    proxy_class = _fault_proxy_class()

    def make(upstream: Any, listen: Optional[str] = None, **options: Any) -> Any:
        proxy = proxy_class(_endpoint_of(upstream), listen=listen, **options)
        try:
            proxy.start()
        except BaseException:
            proxy.close()
            raise
        return proxy

    proxies: Factory[Any] = Factory("socketeer_fault_proxy", "FaultProxy", make)
    try:
        yield proxies
    finally:
        proxies.close_all()


# --- network namespaces -----------------------------------------------------------------------

def _netns_or_skip(config: pytest.Config) -> None:
    from .netns import netns_unavailable_reason
    if config.getoption("socketeer_no_netns", default=False):
        pytest.skip("network namespaces disabled by --socketeer-no-netns")
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def socketeer_netns(request: pytest.FixtureRequest) -> Iterator["NetNamespace"]:
    """A fresh network namespace with only its loopback (up), deleted after the test.

    ``ns.run([...])`` / ``ns.popen([...])`` run a program inside it, ``ns.call(fn, ...)`` runs a
    callable in a thread inside it, ``with ns.entered():`` moves this thread in for a block.
    Nothing sent inside it can leave this host (there is no route out), which also makes it the
    place to test what a lookup of a name that does not exist does:
    ``ns.call(resolve, "no-such-host.invalid", 80)`` fails without a DNS query leaving the machine.
    Skipped with the reason when namespaces cannot be made (not root, no ``ip``)."""
    from .netns import NetNamespace, NetnsUnavailable
    _netns_or_skip(request.config)
    try:
        ns = NetNamespace()
    except NetnsUnavailable as error:
        pytest.skip(f"cannot create a network namespace: {error}")
    try:
        yield ns
    finally:
        ns.delete()


@pytest.fixture
def socketeer_netns_pair(request: pytest.FixtureRequest) -> Iterator["NetnsPair"]:
    """Two fresh network namespaces ``.a`` and ``.b`` joined by a veth pair, deleted after the test.

    ``.address_a`` is 10.201.0.1 and ``.address_b`` 10.201.0.2, which exist only inside them. ``pair.netem(delay=, jitter=, loss=,
    duplicate=, side=)`` shapes the link (the test is skipped if the kernel has no netem).
    Deleted after the test."""
    from .netns import NetnsPair, NetnsUnavailable
    _netns_or_skip(request.config)
    try:
        pair = NetnsPair()
    except NetnsUnavailable as error:
        pytest.skip(f"cannot create a veth-joined namespace pair: {error}")
    pair.netem = _skip_without_netem(pair.netem)  # type: ignore[method-assign]
    try:
        yield pair
    finally:
        pair.delete()


def _skip_without_netem(netem: Callable[..., None]) -> Callable[..., None]:
    from .netns import NetnsUnavailable

    def shaped(**options: Any) -> None:
        try:
            netem(**options)
        except NetnsUnavailable as error:
            pytest.skip(str(error))

    shaped.__doc__ = netem.__doc__
    return shaped
