"""Shared fixtures. The fd-leak guard runs around every test: a test that leaves a file
descriptor open fails, naming each leaked fd and what it points at (a socket's kind, addresses
and state from sock_diag, a pipe, a file), as the plugin's guard does."""

from __future__ import annotations

import faulthandler
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from socketeer.testing.fds import FdGuard

# socketeer's own fixtures (socketeer_netns ...), also from a source tree (PYTHONPATH=python) where
# no entry point loads them; once installed this names the entry point's plugin, loaded once.
pytest_plugins = ["socketeer.testing.plugin"]


# The backstop behind pytest-timeout, whose SIGALRM cannot stop a test stuck in C code that never
# returns to the interpreter (uvloop's close() waiting for a child that hangs did, and CI ran into
# its wall clock 80 minutes later). faulthandler's own C thread then prints every thread's stack
# to the terminal and ends the run: CI fails within minutes and says where.
WATCHDOG_GRACE = 60  # seconds beyond twice the test's timeout (setup, call and teardown together)
watchdog_fd: int | None = None


def timeout_of(item: pytest.Item) -> float:
    """The item's pytest-timeout limit in seconds (its mark, else the ini option); 0 for none."""
    marker = item.get_closest_marker("timeout")
    if marker is not None and (marker.args or "timeout" in marker.kwargs):
        value = marker.args[0] if marker.args else marker.kwargs["timeout"]
    else:
        value = item.config.getini("timeout")
    return float(value or 0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    limit = timeout_of(item)
    armed = watchdog_fd is not None and limit > 0
    if armed:
        faulthandler.dump_traceback_later(2 * limit + WATCHDOG_GRACE, exit=True, file=watchdog_fd)
    try:
        yield
    finally:
        if armed:
            faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def no_fd_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """The plugin's FdGuard around every test. A leaked fd is not closed here: its owner (an RAII
    object, maybe a C++ thread) still holds it, and closing an fd one does not own invites double
    closes. The next test's snapshot includes it, so one leak fails one test."""
    if request.node.get_closest_marker("allow_fd_leaks"):
        yield
        return
    guard = FdGuard()
    yield
    guard.check()


def asan_runtime_loaded() -> bool:
    """Whether AddressSanitizer's runtime is in this process (CI's sanitized run preloads it)."""
    with open("/proc/self/maps") as maps:
        return "/libasan.so" in maps.read()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Any warning inside a test is an error, whichever module it comes from (pyproject.toml's
    filters spare other packages' warnings outside tests only). Added before the test's own
    filterwarnings marks, so a test can still allow a warning it expects.

    With AddressSanitizer's runtime loaded, a test marked not_under_asan is skipped, saying why."""
    asan = asan_runtime_loaded()
    for item in items:
        item.add_marker(pytest.mark.filterwarnings("error"), append=False)
        marker = item.get_closest_marker("not_under_asan")
        if asan and marker is not None:
            item.add_marker(pytest.mark.skip(reason=f"not under AddressSanitizer: {marker.args[0]}"))


def pytest_configure(config: pytest.Config) -> None:
    global watchdog_fd
    # The terminal's stderr, duplicated before any test captures fd 2; not when pytest's own
    # faulthandler_timeout is set (faulthandler has one timer, and that option would own it).
    if not float(config.getini("faulthandler_timeout") or 0):
        watchdog_fd = os.dup(2)
    config.addinivalue_line("markers", "allow_fd_leaks: skip the fd-leak guard for this test")
    config.addinivalue_line("markers", "root: needs root (CAP_NET_RAW, netns); skipped otherwise")
    config.addinivalue_line("markers", "not_under_asan(reason): skipped when AddressSanitizer's runtime is "
                                       "loaded (CI preloads it for a second run against a sanitized build)")


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory for unix socket paths (pytest's tmp_path can exceed the 107-byte limit)."""
    path = Path(tempfile.mkdtemp(prefix="st-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def needs_tool():
    """needs_tool("socat") -> its path, or skips the test naming the missing program.
    .ci/run installs every tool the suite uses, so a skip there is a missing install step."""

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            if os.environ.get("CI"):
                pytest.fail(f"{name} is not installed: .ci/run must install it")
            pytest.skip(f"{name} is not installed")
        return path

    return find


@pytest.fixture
def closing() -> Iterator:
    """closing(obj) -> obj, closed (in reverse order) when the test ends, pass or fail, before the
    fd-leak guard counts. For sockets, files and subprocess pipes a test opens along the way."""
    opened: list = []

    def register(obj):
        opened.append(obj)
        return obj

    yield register
    for obj in reversed(opened):
        obj.close()


@pytest.fixture
def default_timeout() -> Iterator:
    """default_timeout(seconds) sets socket.setdefaulttimeout for this test only (restored after)."""
    import socket

    saved = socket.getdefaulttimeout()
    yield socket.setdefaulttimeout
    socket.setdefaulttimeout(saved)


@pytest.fixture
def wait_until():
    """wait_until(predicate, timeout=10, what=...) polls predicate() until it returns something
    truthy (which it returns), failing the test after timeout seconds. For the readiness of things
    we cannot be told about (an outside program listening, a thread entering a syscall), never as a
    stand-in for synchronising with our own code."""
    import time

    def wait(predicate, timeout: float = 10.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.002)

    return wait


@pytest.fixture(scope="session")
def libuv_started() -> Iterator[None]:
    """libuv opens a pipe for the life of the process when its first loop starts: done here once,
    before any test's fd-leak guard counts (a session fixture is set up before function ones)."""
    try:
        import uvloop
    except ImportError:
        pass
    else:
        uvloop.new_event_loop().close()
    yield


@pytest.fixture(params=["default", "epoll", "uvloop", "ours"])
def loop_kind(request: pytest.FixtureRequest, libuv_started: None) -> str:
    """Each asyncio loop an async test runs on, by name (tests/aio_loops.py: aio_loops.run_on(kind,
    main) runs on it); skips (fails in CI) where that loop cannot be had."""
    from aio_loops import loop_factory

    loop_factory(request.param)
    return request.param


def pytest_unconfigure() -> None:
    global watchdog_fd
    if watchdog_fd is not None:
        os.close(watchdog_fd)
        watchdog_fd = None
