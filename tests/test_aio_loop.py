"""socketeer.aio.Loop's public behaviour, with the stock asyncio loop as the oracle: each test body
runs on both (``stock``: asyncio.SelectorEventLoop, what asyncio.new_event_loop() makes on Linux;
``ours``: aio.Loop) and they must agree. The public names (Loop, new_event_loop, EventLoopPolicy,
run), Ctrl-C, a raising callback, the fds a loop owns, debug mode, and a table of wrong arguments
to loop methods that must raise the stock loop's exception type (and errno)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket as stdlib
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Optional

import pytest

from socketeer import aio
from socketeer.aio import loop as aio_loop
from socketeer.testing.fds import describe_fds, leaked_fds, open_fds
from subprocess_env import child_env

pytestmark = pytest.mark.timeout(60)

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"stock": asyncio.SelectorEventLoop, "ours": aio.Loop}
RUNNERS: dict[str, Callable[..., Any]] = {
    "stock": asyncio.run, "ours": aio.run,
    "ours-3.10": aio_loop._run_without_runner,  # aio.run's path where asyncio has no Runner
}
BOUND = 20  # seconds: asyncio.wait_for around each body


@pytest.fixture(params=list(LOOPS))
def new_loop(request) -> Callable[[], asyncio.AbstractEventLoop]:
    """A factory of loops of one kind (stock, then ours); every loop it made is closed after."""
    made: list[asyncio.AbstractEventLoop] = []

    def make() -> asyncio.AbstractEventLoop:
        made.append(LOOPS[request.param]())
        return made[-1]

    yield make
    for loop in made:
        loop.close()


def run_bounded(loop: asyncio.AbstractEventLoop, main: Awaitable[Any]) -> Any:
    return loop.run_until_complete(asyncio.wait_for(main, BOUND))


# --- the public names ---------------------------------------------------------------------------

async def loop_type() -> type:
    return type(asyncio.get_running_loop())


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner is new in 3.11")
def test_runner_with_the_loop_factory():
    with asyncio.Runner(loop_factory=aio.new_event_loop) as runner:
        assert runner.run(loop_type()) is aio.Loop
        loop = runner.get_loop()
    assert loop.is_closed()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is new in 3.12")
def test_asyncio_run_with_the_loop_factory():
    assert asyncio.run(loop_type(), loop_factory=aio.new_event_loop) is aio.Loop  # type: ignore[call-arg]


def test_the_policy_makes_asyncio_use_the_loop():
    asyncio.set_event_loop_policy(aio.EventLoopPolicy())
    try:
        assert asyncio.run(loop_type()) is aio.Loop
        loop = asyncio.new_event_loop()
        try:
            assert type(loop) is aio.Loop
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(None)
    assert asyncio.run(loop_type()) is not aio.Loop


@pytest.mark.parametrize("kind", list(RUNNERS))
def test_run_returns_the_result_and_cleans_up_as_asyncio_run(kind):
    """What main left running is cancelled, async generators finalised, the default executor shut
    down, the loop closed: aio.run as asyncio.run."""
    seen: dict[str, Any] = {}

    async def generator():
        try:
            yield 1
            yield 2
        finally:
            seen["generator finalised"] = True

    async def forever():
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen["task cancelled"] = True
            raise

    async def main():
        loop = seen["loop"] = asyncio.get_running_loop()
        seen["debug"] = loop.get_debug()
        seen["task"] = asyncio.ensure_future(forever())
        seen["generator"] = agen = generator()
        assert await agen.__anext__() == 1  # left suspended: asyncio.run's shutdown_asyncgens closes it
        seen["thread"] = await loop.run_in_executor(None, threading.current_thread)
        await asyncio.sleep(0)  # lets the task start waiting
        return "result"

    assert RUNNERS[kind](main()) == "result"
    assert seen["loop"].is_closed() and seen["task"].cancelled() and not seen["debug"]
    assert seen["task cancelled"] and seen["generator finalised"]
    assert not seen["thread"].is_alive()  # shut down, joined
    del seen["generator"]


@pytest.mark.parametrize("kind", list(RUNNERS))
def test_run_in_debug_mode_and_main_raising(kind):
    async def main():
        assert asyncio.get_running_loop().get_debug()
        raise LookupError("from main")

    with pytest.raises(LookupError, match="from main"):
        RUNNERS[kind](main(), debug=True)


def test_run_refuses_what_asyncio_run_refuses():
    """Not a coroutine, and a call from inside a running loop: the same exception types."""
    for kind, run in RUNNERS.items():
        with pytest.raises(ValueError, match="coroutine"):
            run(42)

        async def nested():
            inner = asyncio.sleep(0)
            try:
                with pytest.raises(RuntimeError, match="cannot be called from a running event loop") as raised:
                    run(inner)
                assert raised.value.__context__ is None  # refused first, no loop made and failing to close
            finally:
                inner.close()

        RUNNERS[kind](nested())


# --- Ctrl-C ------------------------------------------------------------------------------------

CTRL_C_CHILD = textwrap.dedent("""
    import asyncio, sys
    from socketeer import aio

    async def main():
        try:
            print("ready", flush=True)
            await asyncio.Event().wait()
        finally:
            print("cleaned up", flush=True)

    {"stock": asyncio.run, "ours": aio.run}[sys.argv[1]](main())
""")


def ctrl_c(kind: str) -> tuple[int, str, list[str]]:
    """Runs a child waiting forever in run(main()), sends it SIGINT once it is waiting: (exit
    status, stdout, stderr's lines that are not frames: the exceptions and the chaining)."""
    child = subprocess.Popen([sys.executable, "-c", CTRL_C_CHILD, kind], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=child_env())
    try:
        assert child.stdout.readline() == "ready\n"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=20)
    finally:
        child.kill()
        child.communicate()
    return child.returncode, out, [line for line in err.splitlines() if line and not line.startswith(" ")]


def test_ctrl_c_ends_run_as_it_ends_asyncio_run():
    stock = ctrl_c("stock")
    assert stock[0] == -signal.SIGINT and stock[1] == "cleaned up\n" and stock[2][-1] == "KeyboardInterrupt"
    assert ctrl_c("ours") == stock


# --- a raising callback ---------------------------------------------------------------------------

def test_a_raising_callback_goes_to_the_exception_handler_and_the_loop_runs_on(new_loop):
    """From call_soon, call_later, a reader callback and a protocol's data_received: the handler gets
    the same context as the stock loop's, and the loop goes on to the next callback."""
    loop = new_loop()
    contexts: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: contexts.append(context))

    def fail(what: str) -> None:
        raise LookupError(what)

    class Failing(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            fail("data_received")

    async def main():
        a, b = stdlib.socketpair()
        with a, b:
            loop.call_soon(fail, "call_soon")
            loop.call_later(0.001, fail, "call_later")
            b.send(b"x")
            read = loop.create_future()

            def on_readable() -> None:
                loop.remove_reader(a.fileno())
                read.set_result(None)
                fail("reader")

            loop.add_reader(a.fileno(), on_readable)
            await read
            while len(contexts) < 3:  # the reader's failure is reported after the future's callbacks
                await asyncio.sleep(0)
            server = await loop.create_server(Failing, "127.0.0.1", 0)
            async with server:
                reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
                writer.write(b"y")
                assert await reader.read() == b""  # the failing transport is closed
                writer.close()
                await writer.wait_closed()
        return "ran on"

    assert run_bounded(loop, main()) == "ran on"
    summary = sorted((repr(c["exception"]), c["message"], sorted(c)) for c in contexts)  # timer vs reader: either first
    assert [s[0] for s in summary] == ["LookupError('call_later')", "LookupError('call_soon')",
                                       "LookupError('data_received')", "LookupError('reader')"]
    # stock: "Exception in callback fail('call_soon')" ..., "Fatal error: protocol.data_received() call failed."
    assert summary == EXPECTED_CONTEXTS.setdefault("raising callbacks", summary)


EXPECTED_CONTEXTS: dict[str, Any] = {}  # filled by the stock param, which runs first


def test_the_default_exception_handler_logs_to_asyncio(new_loop, caplog):
    loop = new_loop()

    def fail() -> None:
        raise LookupError("logged")

    async def main():
        loop.call_soon(fail)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        run_bounded(loop, main())
    [record] = [r for r in caplog.records if r.name == "asyncio"]
    assert record.getMessage().startswith("Exception in callback") and "fail" in record.getMessage()
    assert record.exc_info[0] is LookupError


def test_a_base_exception_in_a_callback_leaves_the_loop(new_loop):
    """SystemExit and KeyboardInterrupt are not the handler's: they end run_until_complete."""
    loop = new_loop()

    def leave() -> None:
        raise SystemExit(3)

    async def main():
        loop.call_soon(leave)
        await asyncio.Event().wait()

    task = loop.create_task(main())
    with pytest.raises(SystemExit):
        loop.run_until_complete(task)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(task)
    assert not loop.is_running()


# --- the fds a loop owns --------------------------------------------------------------------------

def test_closing_the_loop_closes_every_fd_it_owns(new_loop, short_tmp):
    """A loop, servers (tcp, unix), connections, a datagram endpoint, a signal handler, a
    subprocess, executor work: with each closed as its API says and the loop closed, every fd the
    process had before is all that is open."""
    before = open_fds()
    loop = new_loop()
    assert leaked_fds(before, open_fds()), "the loop holds no fd of its own?"

    async def echo(reader, writer):
        writer.write(await reader.read(100))
        writer.close()
        await writer.wait_closed()

    async def main():
        servers = [await asyncio.start_server(echo, "127.0.0.1", 0),
                   await asyncio.start_unix_server(echo, str(short_tmp / "s.sock"))]
        for server, address in zip(servers, [servers[0].sockets[0].getsockname(), str(short_tmp / "s.sock")]):
            async with server:
                if isinstance(address, tuple):
                    reader, writer = await asyncio.open_connection(*address)
                else:
                    reader, writer = await asyncio.open_unix_connection(address)
                writer.write(b"ping")
                writer.write_eof()
                assert await reader.read() == b"ping"
                writer.close()
                await writer.wait_closed()
            await server.wait_closed()

        lost = loop.create_future()

        class Datagram(asyncio.DatagramProtocol):
            def connection_lost(self, exc: Optional[Exception]) -> None:
                lost.set_result(exc)

        transport, _ = await loop.create_datagram_endpoint(Datagram, local_addr=("127.0.0.1", 0))
        transport.sendto(b"self", transport.get_extra_info("sockname"))
        transport.close()
        assert await lost is None

        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", "print('out')", stdout=subprocess.PIPE)
        assert await child.communicate() == (b"out\n", None)
        assert await loop.getaddrinfo("127.0.0.1", 80, type=stdlib.SOCK_STREAM)
        await loop.shutdown_asyncgens()
        await loop.shutdown_default_executor()

    run_bounded(loop, main())
    loop.close()
    leaked = leaked_fds(before, open_fds())
    assert not leaked, describe_fds(leaked)


# --- debug mode -----------------------------------------------------------------------------------

def test_debug_mode_warns_of_a_slow_callback(new_loop, caplog):
    loop = new_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01

    def slow_callback() -> None:  # busy for 50 ms: the slowness is what is tested
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            pass

    async def main():
        loop.call_soon(slow_callback)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run_bounded(loop, main())
    slow = [r.getMessage() for r in caplog.records if r.name == "asyncio" and "slow_callback" in r.getMessage()]
    assert len(slow) == 1 and slow[0].startswith("Executing <Handle ") and " took 0." in slow[0]


# --- bad input ------------------------------------------------------------------------------------

@dataclass
class Env:
    """What a bad-input case may use: the loop, a closer for what it opens, a refused port."""
    loop: asyncio.AbstractEventLoop
    stack: contextlib.ExitStack
    tmp: str

    def socket(self, family: int = stdlib.AF_INET, kind: int = stdlib.SOCK_STREAM,
               blocking: bool = False) -> stdlib.socket:
        sock = self.stack.enter_context(stdlib.socket(family, kind))
        sock.setblocking(blocking)
        return sock

    def connected(self) -> stdlib.socket:
        a, b = stdlib.socketpair()
        self.stack.enter_context(a)
        self.stack.enter_context(b)
        a.setblocking(False)
        return a

    def refused_port(self) -> int:
        with stdlib.socket() as sock:  # bound, never listening: a connect is refused
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    def coroutine(self) -> Any:
        coroutine = asyncio.sleep(0)
        self.stack.callback(coroutine.close)  # never awaited: closed, so no "never awaited" warning
        return coroutine


async def coroutine_function() -> None:
    pass


P = asyncio.Protocol


async def cases_connect_to_the_refused_port(e: Env):
    await e.loop.create_connection(P, "127.0.0.1", e.refused_port())


async def cases_sendfile_of_a_text_file(e: Env):
    path = os.path.join(e.tmp, "text")
    with open(path, "w") as f:
        f.write("text")
    with open(path) as text:
        await e.loop.sock_sendfile(e.connected(), text)


async def cases_sendfile_with_a_negative_offset(e: Env):
    path = os.path.join(e.tmp, "bytes")
    with open(path, "wb") as f:
        f.write(b"bytes")
    with open(path, "rb") as binary:
        await e.loop.sock_sendfile(e.connected(), binary, offset=-1)


async def cases_add_reader_of_a_regular_file(e: Env):
    path = os.path.join(e.tmp, "regular")
    with open(path, "wb") as regular:  # epoll refuses regular files: EPERM
        e.loop.add_reader(regular.fileno(), lambda: None)


# name -> (the case's body, whether it runs in debug mode only: the checks stock makes only there)
BAD_INPUT: dict[str, tuple[Callable[[Env], Awaitable[Any]], bool]] = {}
# Checked by stock in debug mode only; otherwise it blocks the loop (a blocking socket) or calls
# what it was given when its turn comes, and the failure goes to the exception handler.
DEBUG_ONLY = {"sock_recv on a blocking socket", "sock_accept on a blocking socket", "call_soon with a non-callable",
              "call_soon with a coroutine function", "call_later with a coroutine",
              "call_soon_threadsafe with a non-callable", "run_in_executor with a coroutine function"}


def case(name: str, debug_only: bool = False):
    def add(body: Callable[[Env], Any]) -> Callable[[Env], Any]:
        async def as_coroutine(e: Env) -> Any:
            result = body(e)
            if asyncio.iscoroutine(result):
                return await result
            return result

        BAD_INPUT[name] = (as_coroutine, debug_only)
        return body

    return add


for _name, _body in [
    # create_connection / create_server / unix / datagram
    ("create_connection without host or port", lambda e: e.loop.create_connection(P)),
    ("create_connection with host and sock", lambda e: e.loop.create_connection(P, "127.0.0.1", 1, sock=e.socket())),
    ("create_connection with a datagram sock", lambda e: e.loop.create_connection(
        P, sock=e.socket(kind=stdlib.SOCK_DGRAM))),
    ("create_connection with server_hostname and no ssl", lambda e: e.loop.create_connection(
        P, "127.0.0.1", 1, server_hostname="localhost")),
    ("create_connection with ssl_handshake_timeout and no ssl", lambda e: e.loop.create_connection(
        P, "127.0.0.1", 1, ssl_handshake_timeout=1)),
    ("create_connection with a bad family", lambda e: e.loop.create_connection(P, "127.0.0.1", 1, family=12345)),
    ("create_connection with a bad port", lambda e: e.loop.create_connection(P, "127.0.0.1", 70000)),
    ("create_connection to a refused port", cases_connect_to_the_refused_port),
    ("create_connection with a bad local_addr", lambda e: e.loop.create_connection(
        P, "127.0.0.1", 1, local_addr=("127.0.0.1", 70000))),
    ("create_server with a bad family", lambda e: e.loop.create_server(P, "127.0.0.1", 0, family=12345)),
    ("create_server with an IPv6 family for an IPv4 host", lambda e: e.loop.create_server(
        P, "127.0.0.1", 0, family=stdlib.AF_INET6)),
    ("create_server with host and sock", lambda e: e.loop.create_server(P, "127.0.0.1", 0, sock=e.socket())),
    ("create_server with a datagram sock", lambda e: e.loop.create_server(P, sock=e.socket(kind=stdlib.SOCK_DGRAM))),
    ("create_server with ssl_handshake_timeout and no ssl", lambda e: e.loop.create_server(
        P, "127.0.0.1", 0, ssl_handshake_timeout=1)),
    ("create_server with a bad port", lambda e: e.loop.create_server(P, "127.0.0.1", 70000)),
    ("create_server without host, port or sock", lambda e: e.loop.create_server(P, sock=None, port=None)),
    ("create_unix_server without path or sock", lambda e: e.loop.create_unix_server(P)),
    ("create_unix_server with a path too long", lambda e: e.loop.create_unix_server(P, "/tmp/" + "x" * 200)),
    ("create_unix_connection to no file", lambda e: e.loop.create_unix_connection(P, os.path.join(e.tmp, "none"))),
    ("create_unix_connection without path or sock", lambda e: e.loop.create_unix_connection(P)),
    ("create_datagram_endpoint without any address", lambda e: e.loop.create_datagram_endpoint(P)),
    ("create_datagram_endpoint with a stream sock", lambda e: e.loop.create_datagram_endpoint(P, sock=e.socket())),
    ("create_datagram_endpoint with sock and an address", lambda e: e.loop.create_datagram_endpoint(
        P, local_addr=("127.0.0.1", 0), sock=e.socket(kind=stdlib.SOCK_DGRAM))),
    ("create_datagram_endpoint with mismatched families", lambda e: e.loop.create_datagram_endpoint(
        P, local_addr=("127.0.0.1", 0), remote_addr=("::1", 1))),
    ("create_datagram_endpoint with a bad port", lambda e: e.loop.create_datagram_endpoint(
        P, local_addr=("127.0.0.1", 70000))),
    ("create_datagram_endpoint with reuse_address", lambda e: e.loop.create_datagram_endpoint(
        P, local_addr=("127.0.0.1", 0), reuse_address=True)),
    ("connect_accepted_socket with a datagram sock", lambda e: e.loop.connect_accepted_socket(
        P, e.socket(kind=stdlib.SOCK_DGRAM))),
    # sock_*
    ("sock_recv on a blocking socket", lambda e: e.loop.sock_recv(e.socket(blocking=True), 1)),
    ("sock_accept on a blocking socket", lambda e: e.loop.sock_accept(e.socket(blocking=True))),
    ("sock_connect to a bad port", lambda e: e.loop.sock_connect(e.socket(), ("127.0.0.1", 70000))),
    ("sock_connect to a refused port", lambda e: e.loop.sock_connect(e.socket(), ("127.0.0.1", e.refused_port()))),
    ("sock_connect to no unix file", lambda e: e.loop.sock_connect(e.socket(stdlib.AF_UNIX),
                                                                   os.path.join(e.tmp, "none"))),
    ("sock_connect with a malformed address", lambda e: e.loop.sock_connect(e.socket(), ("127.0.0.1",))),
    ("sock_sendall of a str", lambda e: e.loop.sock_sendall(e.connected(), "text")),
    ("sock_recv_into bytes", lambda e: e.loop.sock_recv_into(e.connected(), b"immutable")),
    ("sock_recv of a negative size", lambda e: e.loop.sock_recv(e.connected(), -1)),
    ("sock_sendto a malformed address", lambda e: e.loop.sock_sendto(e.socket(kind=stdlib.SOCK_DGRAM), b"x", "here")),
    ("sock_sendfile of a text file", cases_sendfile_of_a_text_file),
    ("sock_sendfile with a negative offset", cases_sendfile_with_a_negative_offset),
    ("sock_accept on a socket not listening", lambda e: e.loop.sock_accept(e.socket())),
    # callbacks and fds
    ("call_soon with a non-callable", lambda e: e.loop.call_soon(42)),
    ("call_soon with a coroutine function", lambda e: e.loop.call_soon(coroutine_function)),
    ("call_later with a coroutine", lambda e: e.loop.call_later(0, e.coroutine())),
    ("call_later with a str delay", lambda e: e.loop.call_later("1", lambda: None)),
    ("call_soon_threadsafe with a non-callable", lambda e: e.loop.call_soon_threadsafe(42)),
    ("add_reader of fd -1", lambda e: e.loop.add_reader(-1, lambda: None)),
    ("add_reader of an object without fileno", lambda e: e.loop.add_reader("not a file", lambda: None)),
    ("add_reader of an fd not open", lambda e: e.loop.add_reader(1_000_000, lambda: None)),
    ("add_reader of a regular file", cases_add_reader_of_a_regular_file),
    ("add_writer of fd -1", lambda e: e.loop.add_writer(-1, lambda: None)),
    ("remove_reader of fd -1", lambda e: e.loop.remove_reader(-1)),
    ("add_signal_handler of SIGKILL", lambda e: e.loop.add_signal_handler(signal.SIGKILL, lambda: None)),
    ("add_signal_handler of no signal", lambda e: e.loop.add_signal_handler(12345, lambda: None)),
    ("add_signal_handler with a coroutine function", lambda e: e.loop.add_signal_handler(
        signal.SIGUSR2, coroutine_function)),
    ("remove_signal_handler of no signal", lambda e: e.loop.remove_signal_handler(12345)),
    ("run_in_executor with a coroutine function", lambda e: e.loop.run_in_executor(None, coroutine_function)),
    ("set_exception_handler with a non-callable", lambda e: e.loop.set_exception_handler(42)),
    ("create_task of a non-coroutine", lambda e: e.loop.create_task(42)),
    ("run_until_complete while running", lambda e: e.loop.run_until_complete(e.coroutine())),
    ("run_forever while running", lambda e: e.loop.run_forever()),
    # names (numeric or service only: nothing reaches a resolver off this machine)
    ("getaddrinfo of a non-numeric host with AI_NUMERICHOST", lambda e: e.loop.getaddrinfo(
        "not-numeric", 80, flags=stdlib.AI_NUMERICHOST)),
    ("getaddrinfo of an unknown service", lambda e: e.loop.getaddrinfo("127.0.0.1", "no-such-service")),
    ("getaddrinfo with a bad family", lambda e: e.loop.getaddrinfo("127.0.0.1", 80, family=12345)),
    ("getnameinfo of a malformed address", lambda e: e.loop.getnameinfo(("127.0.0.1",), stdlib.NI_NUMERICHOST)),
    # subprocesses (refused before anything is started)
    ("subprocess_exec with shell", lambda e: e.loop.subprocess_exec(P, "true", shell=True)),
    ("subprocess_shell of a list", lambda e: e.loop.subprocess_shell(P, ["true"])),
    ("subprocess_exec with universal_newlines", lambda e: e.loop.subprocess_exec(
        P, "true", universal_newlines=True)),
    ("subprocess_exec with text", lambda e: e.loop.subprocess_exec(P, "true", text=True)),
    ("subprocess_exec with bufsize", lambda e: e.loop.subprocess_exec(P, "true", bufsize=1)),
]:
    case(_name, debug_only=_name in DEBUG_ONLY)(_body)


def outcome(kind: str, name: str, debug: bool, tmp: str) -> tuple[Any, ...]:
    """("raised", type, errno) or ("returned",) for the case on a fresh loop of ``kind``."""
    body, _ = BAD_INPUT[name]
    loop = LOOPS[kind]()
    loop.set_debug(debug)
    try:
        with contextlib.ExitStack() as stack:
            try:
                result = run_bounded(loop, body(Env(loop, stack, tmp)))
            except asyncio.TimeoutError:
                raise AssertionError(f"{name}: hangs on the {kind} loop") from None
            except Exception as exc:  # noqa: BLE001  # the type is what is compared
                return ("raised", type(exc), getattr(exc, "errno", None))
            if isinstance(result, asyncio.Handle):
                result.cancel()
            elif isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], asyncio.BaseTransport):
                result[0].close()
            elif isinstance(result, asyncio.AbstractServer):
                result.close()
                run_bounded(loop, result.wait_closed())
            elif isinstance(result, asyncio.Future):
                run_bounded(loop, result)
            return ("returned",)
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


@pytest.mark.parametrize(("name", "debug"), [(name, debug) for name, (_, debug_only) in BAD_INPUT.items()
                                             for debug in (False, True) if debug or not debug_only],
                         ids=lambda value: {False: "normal", True: "debug"}.get(value, value))
def test_bad_input_raises_as_on_the_stock_loop(name, debug, short_tmp):
    stock = outcome("stock", name, debug, str(short_tmp))
    assert stock[0] == "raised", f"{name}: not bad input for the stock loop"
    assert outcome("ours", name, debug, str(short_tmp)) == stock
