"""CPython's own asyncio event-loop suites, run against socketeer.aio.Loop.

The suites are imported from the interpreter's ``test`` package (never copied): each class below
is the stdlib's epoll/selector test class with its loop factory returning ours (or, for classes
that call ``asyncio.new_event_loop()`` themselves, run under our policy), so every test body is
the stdlib's. A skip is listed in SKIPS with its reason; only white-box tests (ones that patch or
inspect the stock loop's internals) may be skipped. Every test class of those modules is either
run here or named in NOT_RUN with the reason, and a test below holds that to be so.

Debian ships the ``test`` package apart from python3 (libpython3.X-testsuite): it is skipped
where missing, and a failure in CI, which installs it.
"""

from __future__ import annotations

import asyncio
import inspect
import unittest
from collections.abc import Callable

import pytest

from optional_tools import needs
from socketeer import aio

cp = needs("test.test_asyncio.utils", install="the interpreter's test package (Debian: libpython3.X-testsuite)")
from test.test_asyncio import (test_buffered_proto, test_events, test_sendfile, test_server,  # noqa: E402
                               test_sock_lowlevel, test_sslproto, test_streams)

pytestmark = pytest.mark.timeout(120)

SUITES = (test_events, test_sock_lowlevel, test_sendfile, test_server, test_buffered_proto, test_sslproto,
          test_streams)

# "Class.test_name": why it cannot run against another loop class. Keep it short and honest.
SKIPS: dict[str, str] = {}

# The suites' test classes not run here, and why: the same bodies for another selector or for
# Windows, or tests of asyncio's loop-independent classes (run by CPython itself).
NOT_RUN: dict[str, str] = {
    "test_events.PollEventLoopTests": "the EPoll class's bodies over another selector",
    "test_events.SelectEventLoopTests": "the EPoll class's bodies over another selector",
    "test_sock_lowlevel.PollEventLoopTests": "the EPoll class's bodies over another selector",
    "test_sock_lowlevel.SelectEventLoopTests": "the EPoll class's bodies over another selector",
    "test_sendfile.PollEventLoopTests": "the EPoll class's bodies over another selector",
    "test_sendfile.SelectEventLoopTests": "the EPoll class's bodies over another selector",
    "test_server.ProactorStartServerTests": "Windows only",
    "test_buffered_proto.BufferedProtocolProactorTests": "Windows only",
    "test_sslproto.ProactorStartTLSTests": "Windows only",
    "test_events.TimerTests": "asyncio.TimerHandle over a mock loop: no loop of ours involved",
    "test_events.AbstractEventLoopTests": "AbstractEventLoop's NotImplementedError methods",
    "test_events.PolicyTests": "DefaultEventLoopPolicy's internals (policy._local); test_aio_loop.py "
                               "tests aio.EventLoopPolicy's public behaviour",
    "test_events.TestAbstractServer": "AbstractServer's NotImplementedError methods",
}

RUN: dict[str, type] = {}  # "module.Class" of the stdlib -> the class here that runs its tests


def _ours(stdlib: type) -> Callable[[type], type]:
    """Records which stdlib class a class here runs, and applies SKIPS to it."""

    def mark(cls: type) -> type:
        RUN[f"{stdlib.__module__.rpartition('.')[2]}.{stdlib.__name__}"] = cls
        for key, reason in SKIPS.items():
            name, _, test = key.partition(".")
            if name == cls.__name__:
                setattr(cls, test, unittest.skip(reason)(getattr(cls, test)))
        return cls

    return mark


class _OurPolicy:
    """For suites that call asyncio.new_event_loop() themselves: our policy for each test."""

    def setUp(self) -> None:
        asyncio.set_event_loop_policy(aio.EventLoopPolicy())
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        try:
            super().tearDown()  # type: ignore[misc]
        finally:
            asyncio.set_event_loop_policy(None)


@_ours(test_events.EPollEventLoopTests)
class LoopEventsTests(test_events.EPollEventLoopTests):
    def create_event_loop(self) -> asyncio.AbstractEventLoop:
        return aio.Loop()


@_ours(test_sock_lowlevel.EPollEventLoopTests)
class LoopSockLowlevelTests(test_sock_lowlevel.EPollEventLoopTests):
    def create_event_loop(self) -> asyncio.AbstractEventLoop:
        return aio.Loop()


@_ours(test_sendfile.EPollEventLoopTests)
class LoopSendfileTests(test_sendfile.EPollEventLoopTests):
    def create_event_loop(self) -> asyncio.AbstractEventLoop:
        return aio.Loop()


@_ours(test_server.SelectorStartServerTests)
class LoopStartServerTests(test_server.SelectorStartServerTests):
    def new_loop(self) -> asyncio.AbstractEventLoop:
        return aio.Loop()


@_ours(test_buffered_proto.BufferedProtocolSelectorTests)
class LoopBufferedProtocolTests(test_buffered_proto.BufferedProtocolSelectorTests):
    def new_loop(self) -> asyncio.AbstractEventLoop:
        return aio.Loop()


@_ours(test_sslproto.SelectorStartTLSTests)
class LoopStartTLSTests(test_sslproto.SelectorStartTLSTests):
    def new_loop(self) -> asyncio.AbstractEventLoop:
        return aio.Loop()


@_ours(test_sslproto.SslProtoHandshakeTests)
class LoopSslProtoHandshakeTests(_OurPolicy, test_sslproto.SslProtoHandshakeTests):
    pass


@_ours(test_streams.StreamTests)
class LoopStreamTests(_OurPolicy, test_streams.StreamTests):
    pass


@_ours(test_events.HandleTests)
class LoopHandleTests(_OurPolicy, test_events.HandleTests):
    """Mostly handles over a mock loop; test_handle_source_traceback takes our loop from the policy
    (debug mode's creation tracebacks on call_soon/call_later/call_at handles)."""


@_ours(test_events.TestPyGetEventLoop)
class LoopPyGetEventLoopTests(_OurPolicy, test_events.TestPyGetEventLoop):
    pass


@_ours(test_events.TestCGetEventLoop)
class LoopCGetEventLoopTests(_OurPolicy, test_events.TestCGetEventLoop):
    pass


@_ours(test_events.TestServer)
class LoopServerGetLoopTests(_OurPolicy, test_events.TestServer):
    pass


class _OurPolicyForTheClass:
    """For IsolatedAsyncioTestCase classes, whose asyncio.Runner makes its loop before setUp
    (from the policy, or from the class's loop_factory, a 3.13 attribute): our policy for the
    whole class."""

    loop_factory = staticmethod(aio.new_event_loop)

    @classmethod
    def setUpClass(cls) -> None:
        asyncio.set_event_loop_policy(aio.EventLoopPolicy())
        super().setUpClass()  # type: ignore[misc]

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            super().tearDownClass()  # type: ignore[misc]
        finally:
            asyncio.set_event_loop_policy(None)

    async def asyncSetUp(self) -> None:
        assert type(asyncio.get_running_loop()) is aio.Loop, "the class's runner made another loop"
        await super().asyncSetUp()  # type: ignore[misc]


if hasattr(test_server, "TestServer2"):  # 3.12.1+: Server.wait_closed, close_clients, abort_clients
    @_ours(test_server.TestServer2)
    class LoopServerWaitClosedTests(_OurPolicyForTheClass, test_server.TestServer2):
        pass


if hasattr(test_server, "UnixServerCleanupTests"):  # 3.13+: unix servers unlink their path on close
    @_ours(test_server.UnixServerCleanupTests)
    class LoopUnixServerCleanupTests(_OurPolicyForTheClass, test_server.UnixServerCleanupTests):
        pass


def test_every_test_class_of_the_suites_is_run_or_named_with_a_reason():
    """A newer CPython adding a class to these modules fails here until it is run or named."""
    found = {f"{module.__name__.rpartition('.')[2]}.{name}" for module in SUITES
             for name, cls in vars(module).items()
             if inspect.isclass(cls) and issubclass(cls, unittest.TestCase) and cls.__module__ == module.__name__}
    assert found - RUN.keys() - NOT_RUN.keys() == set(), "run them here, or name them in NOT_RUN with why"
    assert RUN.keys() | NOT_RUN.keys() == found and RUN.keys() & NOT_RUN.keys() == set()
    for key, ours in RUN.items():
        module, _, name = key.partition(".")
        stdlib = getattr(next(m for m in SUITES if m.__name__.endswith("." + module)), name)
        loader = unittest.TestLoader()
        assert set(loader.getTestCaseNames(stdlib)) <= set(loader.getTestCaseNames(ours)), key
