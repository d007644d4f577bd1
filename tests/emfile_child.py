"""An echo server in a child process that the test runs out of file descriptors and gives them
back, for the accept back-off tests (test_accept_backoff.py, stress/test_stress_emfile.py).

    python emfile_child.py KIND      # server (socketeer.Server, built-in echo),
                                     # listener (Listener.serve), aio (aio.Listener.serve)

The child prints its endpoint, then answers one command per line on stdin:

    exhaust     lower RLIMIT_NOFILE and open fds (/dev/null) until none is left -> "exhausted N"
    free [N]    close N of those fds (all of them without N)                   -> "freed N"
    fds         how many fds the process has open                               -> "fds N"
    cpu         user + system CPU seconds the process has used                  -> "cpu S"
    quit        stop the server and exit                                        -> "bye"

The Python loops log on the "socketeer" logger, to stderr. In the test process, EmfileServer
runs the child and talks to it with a bound on every answer.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import select
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Optional

ANSWER_TIMEOUT = 20.0  # seconds for the child to answer one command

# For the tests that exhaust a child's fds: the sanitizers cannot work without a free fd. UBSan's
# vptr check reads the memory it doubts through a pipe (sanitizer_common's IsAccessibleMemoryRange),
# so with none free it calls every polymorphic member call an "invalid vptr" (seen at the
# reactor's catch of the EMFILE error), and a report could not be written to its log file anyway.
NEEDS_FREE_FDS_UNDER_SANITIZERS = ("out of fds, the sanitizers misreport (UBSan's vptr check needs a pipe) "
                                   "and cannot write a report")


# --- the child ---------------------------------------------------------------------------------

def start_server(kind: str) -> tuple[str, Callable[[], None]]:
    """An echo server of that kind on 127.0.0.1: (endpoint, stop)."""
    import socketeer
    from socketeer import aio

    if kind == "server":
        server = socketeer.Server(builtin="echo")
        server.listen("tcp://127.0.0.1:0", backlog=1024)
        server.start()
        return server.endpoint(), server.close
    if kind == "listener":
        listener = socketeer.listen("tcp://127.0.0.1:0", backlog=1024)

        def echo(stream: socketeer.Stream) -> None:
            while data := stream.recv():
                stream.send_all(data)

        thread = threading.Thread(target=listener.serve, args=(echo,), kwargs={"threads": 32})
        thread.start()

        def stop() -> None:
            listener.close()
            thread.join()

        return listener.endpoint, stop
    if kind == "aio":
        loop = asyncio.new_event_loop()
        started: list = []
        ready = threading.Event()

        async def echo_async(stream: aio.Stream) -> None:
            while data := await stream.recv():
                await stream.send_all(data)

        async def main() -> None:
            listener = await aio.listen("tcp://127.0.0.1:0", backlog=1024)
            started.append(listener)
            ready.set()
            await listener.serve(echo_async)

        thread = threading.Thread(target=loop.run_until_complete, args=(main(),))
        thread.start()
        ready.wait(ANSWER_TIMEOUT)

        def stop_aio() -> None:
            loop.call_soon_threadsafe(started[0].close)
            thread.join()
            loop.close()

        return started[0].endpoint, stop_aio
    raise SystemExit(f"unknown server kind {kind!r}")


def exhaust(ballast: list[int]) -> None:
    """Opens fds until the (lowered) limit refuses one."""
    highest = max(int(name) for name in os.listdir("/proc/self/fd"))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 64, hard))
    while True:
        try:
            ballast.append(os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC))
        except OSError as error:
            if error.errno != errno.EMFILE:
                raise
            return


def child(kind: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    endpoint, stop = start_server(kind)
    ballast: list[int] = []
    print(endpoint, flush=True)
    for line in sys.stdin:  # imports nothing from here on: an import needs an fd
        command, *argument = line.split()
        if command == "exhaust":
            exhaust(ballast)
            answer = f"exhausted {len(ballast)}"
        elif command == "free":
            count = int(argument[0]) if argument else len(ballast)
            for _ in range(count):
                os.close(ballast.pop())
            answer = f"freed {count}"
        elif command == "fds":
            answer = f"fds {len(os.listdir('/proc/self/fd')) - 1}"  # not listdir's own
        elif command == "cpu":
            times = os.times()
            answer = f"cpu {times.user + times.system}"
        elif command == "quit":
            while ballast:
                os.close(ballast.pop())
            stop()
            print("bye", flush=True)
            return
        else:
            answer = f"unknown command {command!r}"
        print(answer, flush=True)


# --- the test's side ---------------------------------------------------------------------------

class EmfileServer:
    """The child, from the test: ``with EmfileServer("aio") as server: server.command("exhaust")``.
    Leaving the block quits it (and kills it if it does not answer); ``log`` then holds what it
    logged."""

    def __init__(self, kind: str):
        from subprocess_env import child_env

        self.kind = kind
        self.log = ""
        self._process = subprocess.Popen([sys.executable, __file__, kind], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         env=child_env())
        self.endpoint = self._answer()

    def command(self, text: str) -> str:
        """Sends one command and returns the child's answer."""
        assert self._process.stdin is not None
        self._process.stdin.write(text + "\n")
        self._process.stdin.flush()
        return self._answer()

    def number(self, text: str) -> float:
        """The number in the answer to a command ("fds" -> 12, "cpu" -> 0.31)."""
        return float(self.command(text).split()[-1])

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.endpoint.removeprefix("tcp://").rsplit(":", 1)
        return host, int(port)

    def _answer(self) -> str:
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], ANSWER_TIMEOUT)
        line = self._process.stdout.readline() if ready else ""
        if not line:
            raise AssertionError(f"the {self.kind} child did not answer (exit code {self._process.poll()})")
        return line.strip()

    def close(self) -> None:
        try:
            if self._process.poll() is None:
                self.command("quit")
        finally:
            try:
                _, self.log = self._process.communicate(timeout=ANSWER_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                _, self.log = self._process.communicate()

    def __enter__(self) -> "EmfileServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def pauses_logged(self) -> int:
        """How many times the child said that accepting paused (after close())."""
        return self.log.count("accepting pauses")


def serve_child(argv: Optional[list[str]] = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit(__doc__)
    child(args[0])


if __name__ == "__main__":
    serve_child()
