"""What every socketeer.aio object shares: readiness waits on one socket with deadlines and
cancellation (``SocketIo``), the futures they resolve, and endpoint resolution off the loop."""

from __future__ import annotations

import asyncio
import errno
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Optional, TypeVar

from .. import _core
from .._display import Pretty
from ..address import AnyAddress
from ..endpoints import Endpoint, numeric_address
from ..socket import Socket

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["SocketIo", "DEFAULT", "closed_error", "resolve", "time_out", "running_loop", "endpoint_addresses"]

DEFAULT: Any = object()  # "the object's own timeout"
T = TypeVar("T")


def closed_error(operation: str) -> OSError:
    return OSError(errno.EBADF, "socket is closed", operation)


SocketIoT = TypeVar("SocketIoT", bound="SocketIo")


class SocketIo(Pretty):
    """Readiness waits on one socket, with deadlines, cancellable, woken by close()."""

    def __init__(self, sock: Socket, timeout: Optional[float]):
        sock.setblocking(False)
        self.socket = sock
        self.timeout = timeout
        self._waiting: dict[bool, asyncio.Future[None]] = {}  # write? -> the waiting task's future

    def close(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        """close(), as a coroutine (for ``contextlib.aclosing`` and ``async with``)."""
        self.close()

    async def __aenter__(self: SocketIoT) -> SocketIoT:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def _deadline(self, timeout: Optional[float], loop: Optional[asyncio.AbstractEventLoop] = None) -> Optional[float]:
        seconds = _core.timeout_seconds(self.timeout if timeout is DEFAULT else timeout)
        if seconds is None:
            return None
        return (loop or asyncio.get_running_loop()).time() + seconds

    async def _wait(self, write: bool, deadline: Optional[float], operation: str, *, ready: bool = True,
                    target: Optional[str] = None) -> None:
        """Waits until the socket is readable (writable), or raises TimeoutError at the deadline;
        with ``ready=False`` only until the deadline, which is then no error (a pause). close()
        ends any wait with OSError(EBADF). The TimeoutError names the operation and ``target``
        ("to 127.0.0.1:80"), by default where the socket's own calls would say it waited."""
        if self.socket.closed:
            raise closed_error(operation)
        if write in self._waiting:
            raise RuntimeError(f"{operation}: another task is already waiting to {'write' if write else 'read'}")
        loop = asyncio.get_running_loop()
        timed_out = (functools.partial(_core.timeout_error, f"{operation} {target}") if target
                     else functools.partial(self.socket.timeout_error, operation, write))
        if ready and deadline is not None and loop.time() >= deadline:
            raise timed_out()
        fd = self.socket.fileno()
        future = loop.create_future()
        self._waiting[write] = future
        if ready:
            (loop.add_writer if write else loop.add_reader)(fd, resolve, future, None)
        timer = None
        if deadline is not None:
            timer = (loop.call_at(deadline, time_out, future, timed_out) if ready
                     else loop.call_at(deadline, resolve, future, None))
        try:
            await future
        finally:
            del self._waiting[write]
            if timer is not None:
                timer.cancel()
            if ready and not self.socket.closed:
                (loop.remove_writer if write else loop.remove_reader)(fd)

    async def _io(self, write: bool, call: Callable[[], T], deadline: Optional[float], operation: str) -> T:
        """call() (a non-blocking syscall) until it does not raise BlockingIOError."""
        while True:
            try:
                return call()
            except (BlockingIOError, InterruptedError):
                pass
            await self._wait(write, deadline, operation)

    def _close_socket(self) -> None:
        if self.socket.closed:
            return
        loop = running_loop()
        fd = self.socket.fileno()
        for write, future in list(self._waiting.items()):
            if loop is not None:
                (loop.remove_writer if write else loop.remove_reader)(fd)
            resolve(future, closed_error("close"))
        self.socket.close()

    @property
    def closed(self) -> bool:
        """Whether close() has been called."""
        return self.socket.closed

    # --- what asyncio lacks: ancillary data --------------------------------------------------

    async def send_fds(self, data: ReadableBuffer, fds: Sequence[int], *, timeout: Optional[float] = DEFAULT) -> int:
        """Sends ``data`` with open fds attached (SCM_RIGHTS), like ``socket.send_fds``."""
        return await self._io(True, lambda: self.socket.send_fds(data, fds), self._deadline(timeout), "send_fds")

    async def recv_fds(self, bufsize: int, maxfds: int, *,
                       timeout: Optional[float] = DEFAULT) -> tuple[bytes, list[int], int, Any]:
        """``(data, fds, msg_flags, address)`` like ``socket.recv_fds``; the fds are yours to close."""
        self._check_unbuffered("recv_fds")
        return await self._io(False, lambda: self.socket.recv_fds(bufsize, maxfds), self._deadline(timeout),
                              "recv_fds")

    async def sendmsg(self, buffers: Iterable[Any], ancdata: Iterable[Any] = (), flags: int = 0,
                      address: Any = None, *, timeout: Optional[float] = DEFAULT) -> int:
        """``socket.sendmsg`` as a coroutine."""
        buffers, ancdata = list(buffers), list(ancdata)
        args: tuple[Any, ...] = (buffers, ancdata, flags) if address is None else (buffers, ancdata, flags, address)
        return await self._io(True, lambda: self.socket.sendmsg(*args), self._deadline(timeout), "sendmsg")

    async def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0, *,
                      timeout: Optional[float] = DEFAULT) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
        """``socket.recvmsg`` as a coroutine: ``(data, ancdata, msg_flags, address)``."""
        self._check_unbuffered("recvmsg")
        return await self._io(False, lambda: self.socket.recvmsg(bufsize, ancbufsize, flags),
                              self._deadline(timeout), "recvmsg")

    def _check_unbuffered(self, operation: str) -> None:
        pass


def resolve(future: asyncio.Future[None], error: Optional[BaseException]) -> None:
    if not future.done():
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def time_out(future: asyncio.Future[None], timed_out: Callable[[], TimeoutError]) -> None:
    """A wait's deadline passed: its TimeoutError, built only now (naming the peer takes a
    getpeername, which a wait that ends in time need not pay)."""
    if not future.done():
        future.set_exception(timed_out())


def running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def endpoint_addresses(endpoint: Endpoint) -> list[AnyAddress]:
    """endpoint.addresses(), with getaddrinfo for host names run off the loop."""
    if endpoint.is_unix or numeric_address(endpoint.host or "", 0) is not None:
        return endpoint.addresses()
    return await asyncio.get_running_loop().run_in_executor(None, endpoint.addresses)
