"""socketeer.aio.Loop's run loop (the C++ LoopCore): the behaviour asyncio code relies on, checked
on the stock loop and uvloop too where it is shared (the stdlib is the oracle), and the end-of-turn
flush that socketeer's transports use, which only our loop has."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from socketeer import aio

try:
    import uvloop
except ImportError:
    uvloop = None

FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"stock": asyncio.SelectorEventLoop, "ours": aio.Loop}
if uvloop is not None:
    FACTORIES["uvloop"] = uvloop.new_event_loop
    uvloop.new_event_loop().close()  # its first loop opens a pipe it keeps for the process: not a test's leak


@pytest.fixture(params=list(FACTORIES))
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    made = FACTORIES[request.param]()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def ours() -> Iterator[aio.Loop]:
    made = aio.Loop()
    try:
        yield made
    finally:
        made.close()


def test_callbacks_run_in_order_and_later_ones_in_the_next_turn(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[str] = []

    def first() -> None:
        seen.append("first")
        loop.call_soon(seen.append, "scheduled by first")

    loop.call_soon(first)
    loop.call_soon(seen.append, "second")
    loop.run_until_complete(asyncio.sleep(0))
    assert seen[:2] == ["first", "second"]
    loop.run_until_complete(asyncio.sleep(0))
    assert seen == ["first", "second", "scheduled by first"]


def test_a_callback_that_raises_goes_to_the_exception_handler_and_the_loop_goes_on(
        loop: asyncio.AbstractEventLoop) -> None:
    reports: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: reports.append(context))
    error = ValueError("boom")

    def fail() -> None:
        raise error

    handle = loop.call_soon(fail)
    after = loop.create_future()
    loop.call_soon(after.set_result, "went on")
    assert loop.run_until_complete(after) == "went on"
    assert len(reports) == 1
    assert str(reports[0]["message"]).startswith("Exception in callback")
    assert reports[0]["exception"] is error
    assert reports[0]["handle"] is handle


def test_handles_have_asyncio_handle_api(loop: asyncio.AbstractEventLoop) -> None:
    var = contextvars.ContextVar("var", default="outer")
    context = contextvars.copy_context()
    context.run(var.set, "inner")
    seen: list[str] = []
    handle = loop.call_soon(lambda: seen.append(var.get()), context=context)
    assert not handle.cancelled()
    if hasattr(handle, "get_context"):  # asyncio.Handle has it from 3.12, ours always
        assert handle.get_context() is context
    timer = loop.call_later(1000, seen.append, "never")
    assert abs(timer.when() - (loop.time() + 1000)) < 10
    timer.cancel()
    assert timer.cancelled()
    assert "TimerHandle" in repr(timer) and "cancelled" in repr(timer)
    loop.run_until_complete(asyncio.sleep(0))
    assert seen == ["inner"]


def test_timers_fire_in_deadline_order(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[int] = []
    now = loop.time()
    for delay in (0.03, 0.01, 0.02):
        loop.call_at(now + delay, seen.append, int(delay * 100))
    loop.run_until_complete(asyncio.sleep(0.05))
    assert seen == [1, 2, 3]


def test_cancelled_timers_leave_the_heap(loop: asyncio.AbstractEventLoop) -> None:
    for _ in range(300):
        loop.call_later(1000, print).cancel()
    loop.run_until_complete(asyncio.sleep(0))
    if hasattr(loop, "_scheduled"):  # uvloop keeps its timers in libuv
        assert len(loop._scheduled) == 0


def test_call_soon_threadsafe_wakes_a_loop_blocked_in_its_poll(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> str:
        done = loop.create_future()
        blocked = threading.Event()
        thread = threading.Thread(target=lambda: (blocked.wait(10), loop.call_soon_threadsafe(done.set_result, "woken")))
        thread.start()
        loop.call_soon(blocked.set)  # the poll after this turn blocks: no timers, nothing ready
        try:
            return await asyncio.wait_for(done, 10)
        finally:
            thread.join()

    assert loop.run_until_complete(main()) == "woken"


def test_a_signal_handler_runs_on_the_loop(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> str:
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, "signalled")
        try:
            loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
            return await asyncio.wait_for(got, 10)
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    assert loop.run_until_complete(main()) == "signalled"


def test_debug_mode_warns_of_a_slow_callback(loop: asyncio.AbstractEventLoop,
                                             caplog: pytest.LogCaptureFixture) -> None:
    if uvloop is not None and isinstance(loop, uvloop.Loop):
        pytest.skip("uvloop has no slow-callback warning")
    loop.set_debug(True)
    loop.slow_callback_duration = 0.0
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.call_soon(time.sleep, 0.001)
        loop.run_until_complete(asyncio.sleep(0))
    assert any("Executing <Handle" in record.getMessage() for record in caplog.records)


def test_readers_run_their_registered_handle_and_removal_cancels_it(loop: asyncio.AbstractEventLoop) -> None:
    import socket

    a, b = socket.socketpair()
    with a, b:
        got = loop.create_future()
        handle = loop.add_reader(a, lambda: got.done() or got.set_result(a.recv(10)))
        b.send(b"ping")
        assert loop.run_until_complete(asyncio.wait_for(got, 10)) == b"ping"
        removed, again = loop.remove_reader(a), loop.remove_reader(a)
        if handle is not None:  # uvloop returns no handle, nor a bool from remove_reader
            assert (removed, again) == (True, False)
            assert handle.cancelled()


class _Transport:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def flush_output(self) -> None:
        self.log.append(f"flush {self.name}")


def test_flush_at_end_of_turn_runs_once_after_the_turns_callbacks(ours: aio.Loop) -> None:
    log: list[str] = []
    first, second = _Transport("first", log), _Transport("second", log)

    def write(transport: _Transport) -> None:
        log.append(f"write {transport.name}")
        ours._flush_at_end_of_turn(transport)

    ours.call_soon(write, first)
    ours.call_soon(write, second)
    ours.call_soon(log.append, "last callback")
    ours.run_until_complete(asyncio.sleep(0))
    assert log[:5] == ["write first", "write second", "last callback", "flush first", "flush second"]
    assert log.count("flush first") == 1


def test_a_flush_asked_outside_a_turn_is_not_left_waiting_on_a_blocking_poll(ours: aio.Loop) -> None:
    log: list[str] = []
    ours._flush_at_end_of_turn(_Transport("early", log))
    done = ours.create_future()
    ours.call_later(0.05, lambda: (log.append("timer"), done.set_result(None)))
    ours.run_until_complete(done)  # nothing ready: a turn that ignored the flush would poll until the timer
    assert log == ["flush early", "timer"]


def _call_at_none(loop: asyncio.AbstractEventLoop) -> object:
    return loop.call_at(None, print)  # type: ignore[arg-type]


@pytest.mark.parametrize("call, error", [
    (lambda loop: loop.add_reader(-1, print), ValueError),
    (lambda loop: loop.add_writer("not a file", print), ValueError),
    (lambda loop: loop.add_reader(_closed_fd(), print), OSError),
    (lambda loop: loop.call_later(None, print), TypeError),
    (lambda loop: loop.call_later("soon", print), TypeError),
    (_call_at_none, TypeError),
    (lambda loop: loop.call_soon(print, flush=True), TypeError),
])
def test_bad_arguments_raise_what_the_stock_loop_raises(loop: asyncio.AbstractEventLoop, call: Callable[..., object],
                                                        error: type[BaseException]) -> None:
    if uvloop is not None and isinstance(loop, uvloop.Loop):
        pytest.skip("the stock loop is the oracle here")
    if call is _call_at_none and sys.version_info < (3, 11) and not isinstance(loop, aio.Loop):
        pytest.skip("3.10's stock loop takes call_at(None) and fails at a later timer; 3.11's refuses it, as ours does")
    with pytest.raises(error):
        call(loop)


def test_a_regular_file_is_refused_as_by_epoll(loop: asyncio.AbstractEventLoop, tmp_path: object) -> None:
    with open(os.path.join(str(tmp_path), "f"), "w") as file:
        with pytest.raises(PermissionError):
            loop.add_reader(file, print)
        assert loop.remove_reader(file) in (False, None)


def test_a_closed_loop_refuses_new_calls(loop: asyncio.AbstractEventLoop) -> None:
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(print)
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_later(1, print)


def _closed_fd() -> int:
    read, write = os.pipe()
    os.close(read)
    os.close(write)
    return read


class _BrokenTransport(_Transport):
    def flush_output(self) -> None:
        raise ValueError("flush failed")


def test_a_flush_that_raises_goes_to_the_exception_handler_and_the_others_still_flush(ours: aio.Loop) -> None:
    log: list[str] = []
    reports: list[dict[str, object]] = []
    ours.set_exception_handler(lambda _, context: reports.append(context))
    broken = _BrokenTransport("broken", log)
    ours._flush_at_end_of_turn(broken)
    ours._flush_at_end_of_turn(_Transport("fine", log))
    ours.run_until_complete(asyncio.sleep(0))
    assert log == ["flush fine"]
    assert [(r["message"], type(r["exception"]), r["transport"]) for r in reports] == [
        ("Exception in transport flush", ValueError, broken)]


def test_debug_mode_records_where_each_handle_was_made(loop: asyncio.AbstractEventLoop) -> None:
    if uvloop is not None and isinstance(loop, uvloop.Loop):
        pytest.skip("uvloop records no source tracebacks")
    loop.set_debug(True)
    here = test_debug_mode_records_where_each_handle_was_made.__code__.co_filename
    handles = [loop.call_soon(print), loop.call_later(10, print), loop.call_at(loop.time() + 10, print),
               loop.call_soon_threadsafe(print)]
    for handle in handles:
        assert handle._source_traceback[-1][0] == here, handle._source_traceback[-1]
        handle.cancel()


@pytest.mark.parametrize("name", ["Handle", "TimerHandle"])
def test_handles_are_made_only_by_the_loop(name: str) -> None:
    from socketeer import _core

    with pytest.raises(TypeError):
        getattr(_core, name)()  # an empty handle would have no context or callback to run
