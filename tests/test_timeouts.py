"""One set of rules for every timeout in seconds, whichever API takes it (the bindings' one
converter, cpp/bindings/timeouts.hpp, and _core.timeout_seconds for the Python-side deadlines):

    None -> wait forever; NaN -> ValueError; negative -> ValueError; more than 1e9 s (inf too)
    -> wait forever; not a number -> TypeError naming the parameter.

Poller.poll keeps the selectors module's rule on top: a timeout <= 0 does not wait.
Each API is called with nan, -1, 1e300 and "1"; 1e300 must wait until what it waits for arrives
(delivered from another thread once the call is blocked, or on a later loop turn for aio).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import socket
import threading

import pytest

import socketeer
from blocked import SOCKET_WAIT, blocked_in
from socketeer import _core, aio, framing


def deliver_when_blocked(action, wait_until):
    """Runs action() in a thread as soon as the calling thread blocks in the kernel."""
    waiter = threading.get_native_id()

    def run():
        wait_until(lambda: blocked_in(waiter, SOCKET_WAIT), timeout=10, what="the call to block")
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


# --- the sync APIs: (call taking the timeout, what makes it return, the parameter's name) -------

def stream_pair(closing):
    listener = closing(socketeer.listen("tcp://127.0.0.1:0"))
    client = closing(socketeer.connect(listener.endpoint))
    return listener, client, closing(listener.accept(timeout=10))


def socket_recv(closing):
    a, b = socketeer.socketpair()
    closing(a), closing(b)

    def call(value):
        a.settimeout(value)
        return a.recv(10)

    return call, lambda: b.send(b"data"), "timeout"


def stream_call(method):
    def case(closing):
        _, client, server = stream_pair(closing)
        calls = {
            "recv": lambda value: server.recv(timeout=value),
            "recv_exactly": lambda value: server.recv_exactly(5, timeout=value),
            "recv_until": lambda value: server.recv_until(b"\n", timeout=value),
            "messages": lambda value: next(server.messages(framing.lines(), timeout=value)),
        }
        return calls[method], lambda: client.send_all(b"data\n"), "timeout"
    return case


def listener_accept(closing):
    listener = closing(socketeer.listen("tcp://127.0.0.1:0"))

    def call(value):
        return closing(listener.accept(timeout=value))

    return call, lambda: closing(socketeer.connect(listener.endpoint)), "timeout"


def stream_connect(closing):
    listener = closing(socketeer.listen("tcp://127.0.0.1:0"))
    return lambda value: closing(socketeer.connect(listener.endpoint, timeout=value)), None, "timeout"


def poller_poll(closing):
    poller = closing(socketeer.Poller())
    return lambda value: poller.poll(value), poller.wake, "timeout"


SYNC = {
    "Socket.settimeout": socket_recv,
    "Stream.recv": stream_call("recv"),
    "Stream.recv_exactly": stream_call("recv_exactly"),
    "Stream.recv_until": stream_call("recv_until"),
    "Stream.messages": stream_call("messages"),
    "Listener.accept": listener_accept,
    "connect": stream_connect,
    "Poller.poll": poller_poll,
}


@pytest.mark.parametrize("api", SYNC)
def test_nan_is_a_value_error(api, closing):
    call, _, parameter = SYNC[api](closing)
    with pytest.raises(ValueError, match=f"{parameter}.*NaN"):
        call(math.nan)


@pytest.mark.parametrize("api", SYNC)
def test_a_negative_timeout_is_a_value_error(api, closing):
    call, _, parameter = SYNC[api](closing)
    if api == "Poller.poll":
        assert call(-1) == []  # the selectors rule: <= 0 polls without waiting
        return
    with pytest.raises(ValueError, match=f"{parameter} must be >= 0 or None"):
        call(-1)


@pytest.mark.parametrize("api", SYNC)
def test_a_string_is_a_type_error_naming_the_parameter(api, closing):
    call, _, parameter = SYNC[api](closing)
    with pytest.raises(TypeError, match=f"{parameter} must be a number of seconds or None, not 'str'"):
        call("1")


@pytest.mark.parametrize("value", [1e300, math.inf, 1e10])
@pytest.mark.parametrize("api", SYNC)
def test_a_huge_timeout_waits_forever(api, value, closing, wait_until):
    """Not "at once" (the old undefined double -> int cast), not an OverflowError: it waits."""
    call, deliver, _ = SYNC[api](closing)
    helper = deliver_when_blocked(deliver, wait_until) if deliver else None
    try:
        assert call(value) is not None
    finally:
        if helper:
            helper.join(30)


def test_settimeout_beyond_the_bound_is_no_timeout(closing):
    """A socket cannot hold a timeout past 1e9 s: settimeout(1e300) is settimeout(None), a
    blocking fd, and gettimeout() says so (the stdlib raises OverflowError instead)."""
    with socket.socket() as oracle, pytest.raises(OverflowError):
        oracle.settimeout(1e300)
    sock = closing(socketeer.Socket())
    sock.settimeout(3)
    sock.settimeout(1e300)
    assert sock.gettimeout() is None and sock.timeout is None and sock.getblocking()
    assert os.get_blocking(sock.fileno())
    sock.settimeout(1e9)  # the bound itself is still a timeout
    assert sock.gettimeout() == 1e9


def test_timeout_seconds_is_the_rule_for_python_side_deadlines():
    assert _core.timeout_seconds(None) is None
    assert _core.timeout_seconds(1e300) is None
    assert _core.timeout_seconds(2) == 2.0 and _core.timeout_seconds(0) == 0.0
    with pytest.raises(ValueError, match="deadline must be >= 0"):
        _core.timeout_seconds(-0.5, "deadline")
    with pytest.raises(TypeError, match="deadline must be a number of seconds or None, not 'bytes'"):
        _core.timeout_seconds(b"1", "deadline")


# --- Server idle_timeout and the fault proxy's durations -----------------------------------------

@pytest.mark.parametrize(("value", "error", "message"), [
    (math.nan, ValueError, "idle_timeout.*NaN"), (-1, ValueError, "idle_timeout must be >= 0"),
    ("1", TypeError, "idle_timeout must be a number of seconds or None, not 'str'")])
def test_server_idle_timeout_errors(value, error, message):
    with pytest.raises(error, match=message):
        socketeer.Server(builtin="echo", idle_timeout=value)


def test_server_huge_idle_timeout_never_closes_a_connection(closing):
    server = socketeer.Server(builtin="echo", idle_timeout=1e300)
    address = server.listen("tcp://127.0.0.1:0")
    with server:  # starts it
        client = closing(socketeer.connect(f"tcp://{address}", timeout=10))
        for round_trip in range(50):  # an idle sweep runs every millisecond or so at worst
            client.send_all(b"%d\n" % round_trip)
            assert client.recv_until(b"\n", timeout=10) == b"%d\n" % round_trip


@pytest.mark.parametrize("setter", ["latency", "jitter", "slice_delay"])
@pytest.mark.parametrize(("value", "error", "message"), [
    (math.nan, ValueError, "must be a number of seconds, not NaN"), (-1, ValueError, "must be >= 0"),
    ("1", TypeError, "must be a number of seconds or None, not 'str'")])
def test_fault_proxy_duration_errors(setter, value, error, message, closing):
    upstream = closing(socketeer.listen("tcp://127.0.0.1:0"))
    proxy = closing(socketeer.FaultProxy(upstream.endpoint, start=False))
    apply = {"latency": lambda: proxy.set_latency(value), "jitter": lambda: proxy.set_latency(0.01, jitter=value),
             "slice_delay": lambda: proxy.slice(10, value)}
    with pytest.raises(error, match=f"{setter} {message}"):
        apply[setter]()


def test_fault_proxy_huge_latency_holds_for_the_bound(closing):
    upstream = closing(socketeer.listen("tcp://127.0.0.1:0"))
    proxy = closing(socketeer.FaultProxy(upstream.endpoint, start=False))
    proxy.set_latency(1e300)
    assert proxy.faults()["upstream"]["latency"] == 1e9  # "forever", as a duration: 31.7 years


# --- aio -----------------------------------------------------------------------------------------

async def aio_stream_pair(stack):
    listener = await stack.enter_async_context(await aio.listen("tcp://127.0.0.1:0"))
    client = await stack.enter_async_context(await aio.connect(listener.endpoint))
    server = await stack.enter_async_context(await listener.accept(timeout=10))
    return listener, client, server


def aio_stream_call(method):
    async def case(stack):
        _, client, server = await aio_stream_pair(stack)

        async def next_message(value):
            async for message in server.messages(framing.lines(), timeout=value):
                return message

        calls = {
            "recv": lambda value: server.recv(timeout=value),
            "recv_exactly": lambda value: server.recv_exactly(5, timeout=value),
            "recv_until": lambda value: server.recv_until(b"\n", timeout=value),
            "messages": next_message,
        }
        return calls[method], lambda: client.send_all(b"data\n")
    return case


async def aio_listener_accept(stack):
    listener = await stack.enter_async_context(await aio.listen("tcp://127.0.0.1:0"))

    async def call(value):
        return await stack.enter_async_context(await listener.accept(timeout=value))

    async def deliver():
        await stack.enter_async_context(await aio.connect(listener.endpoint))

    return call, deliver


async def aio_connect(stack):
    listener = await stack.enter_async_context(await aio.listen("tcp://127.0.0.1:0"))

    async def call(value):
        return await stack.enter_async_context(await aio.connect(listener.endpoint, timeout=value))

    return call, None


AIO = {
    "aio.Stream.recv": aio_stream_call("recv"),
    "aio.Stream.recv_exactly": aio_stream_call("recv_exactly"),
    "aio.Stream.recv_until": aio_stream_call("recv_until"),
    "aio.Stream.messages": aio_stream_call("messages"),
    "aio.Listener.accept": aio_listener_accept,
    "aio.connect": aio_connect,
}


async def aio_outcome(api, value):
    """What the call does with `value`: its exception, or ("waited", result) once delivered."""
    async with contextlib.AsyncExitStack() as stack:
        call, deliver = await AIO[api](stack)
        task = asyncio.ensure_future(call(value))
        for _ in range(5):  # a few loop turns: long enough to fail at once if it were going to
            await asyncio.sleep(0)
        if task.done() and task.exception() is not None:
            return task.exception()
        if deliver is not None:
            assert not task.done(), "returned before anything was delivered"
            await deliver()
        return "waited", await asyncio.wait_for(task, 10)


@pytest.mark.parametrize(("value", "expected", "message"), [
    (math.nan, ValueError, "timeout.*NaN"), (-1, ValueError, "timeout must be >= 0 or None"),
    ("1", TypeError, "timeout must be a number of seconds or None, not 'str'"), (1e300, "waited", None)],
    ids=["nan", "negative", "str", "huge"])
@pytest.mark.parametrize("api", AIO)
def test_aio_timeouts(api, value, expected, message):
    outcome = asyncio.run(aio_outcome(api, value))
    if expected == "waited":
        assert outcome[0] == "waited" and outcome[1] is not None
    else:
        assert isinstance(outcome, expected), outcome
        assert outcome.args and re.search(message, str(outcome)), str(outcome)


# --- the timer: seconds too, with its own stated rule for <= 0 ---------------------------------

def test_timer_delays_follow_the_rules(closing):
    timer = closing(socketeer.Timer())
    with pytest.raises(ValueError, match="delay.*NaN"):
        timer.set(math.nan)
    with pytest.raises(TypeError, match="delay must be a number of seconds or None, not 'str'"):
        timer.set("1")
    with pytest.raises(TypeError, match="interval must be a number of seconds or None, not 'str'"):
        timer.set(1, "1")
    timer.set(1e300)  # never comes: the timer stays disarmed
    assert timer.remaining is None
    timer.set(5, 1e300)  # a period that never comes: one-shot
    assert timer.interval is None and timer.remaining is not None
