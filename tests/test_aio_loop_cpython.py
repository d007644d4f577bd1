"""CPython's own asyncio event-loop suites, run against socketeer.aio.Loop.

The suites are imported from the interpreter's ``test`` package (never copied): each class below
is the stdlib's selector-loop test class with its loop factory returning ours, so every test
body is the stdlib's. A skip is listed in SKIPS with its reason; only white-box tests (ones that
patch or inspect the stock loop's internals) may be skipped.
"""

from __future__ import annotations

import asyncio
import unittest

import pytest

from socketeer import aio

cp = pytest.importorskip("test.test_asyncio.utils", reason="the interpreter's test package is not installed")
from test.test_asyncio import (test_buffered_proto, test_events, test_sendfile, test_server,  # noqa: E402
                               test_sock_lowlevel, test_sslproto, test_streams)

pytestmark = pytest.mark.timeout(120)

# "Class.test_name": why it cannot run against another loop class. Keep it short and honest.
SKIPS: dict[str, str] = {}


def _ours(cls: type) -> type:
    """Applies SKIPS to a test class built here."""
    for key, reason in SKIPS.items():
        name, _, test = key.partition(".")
        if name == cls.__name__:
            setattr(cls, test, unittest.skip(reason)(getattr(cls, test)))
    return cls


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


@_ours
class LoopEventsTests(test_events.UnixEventLoopTestsMixin, test_events.SubprocessTestsMixin, cp.TestCase):
    def create_event_loop(self) -> asyncio.AbstractEventLoop:
        return aio.Loop()


@_ours
class LoopSockLowlevelTests(test_sock_lowlevel.BaseSockTestsMixin, cp.TestCase):
    def create_event_loop(self) -> asyncio.AbstractEventLoop:
        return aio.Loop()


@_ours
class LoopSendfileTests(test_sendfile.SendfileTestsBase, cp.TestCase):
    def create_event_loop(self) -> asyncio.AbstractEventLoop:
        return aio.Loop()


@_ours
class LoopStartServerTests(test_server.BaseStartServer, unittest.TestCase):
    def new_loop(self) -> asyncio.AbstractEventLoop:
        return aio.Loop()


@_ours
class LoopBufferedProtocolTests(test_buffered_proto.BaseTestBufferedProtocol, unittest.TestCase):
    def new_loop(self) -> asyncio.AbstractEventLoop:
        return aio.Loop()


@_ours
class LoopStartTLSTests(test_sslproto.BaseStartTLS, unittest.TestCase):
    def new_loop(self) -> asyncio.AbstractEventLoop:
        return aio.Loop()


@_ours
class LoopSslProtoHandshakeTests(_OurPolicy, test_sslproto.SslProtoHandshakeTests):
    pass


@_ours
class LoopStreamTests(_OurPolicy, test_streams.StreamTests):
    pass
