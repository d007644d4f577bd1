"""The high level: ``connect()`` -> :class:`Stream`, ``listen()`` -> :class:`Listener`,
``bind()`` -> :class:`Datagram`. All are context managers.

>>> with listen("tcp://127.0.0.1:0") as listener:
...     with connect(f"tcp://{listener.address}") as client, listener.accept() as server:
...         client.send_all(b"ping\\n")
...         server.recv_until(b"\\n")
b'ping\\n'
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Optional, Union

from . import _core
from ._display import Closeable, html_table, shown, with_row
from .address import Address, AnyAddress
from .constants import AF_INET6, IPPROTO_IP, IPPROTO_IPV6, SHUT_WR, SO_BROADCAST, SOCK_DGRAM, SOL_SOCKET
from .endpoints import Endpoint, EndpointLike, parse_endpoint
from .framing import Framing
from .framing import check_delimiter, check_framing, check_size
from .opening import HAPPY_EYEBALLS_DELAY, Bound, Connected, bound_socket, connected_datagram_socket
from .opening import combined_connect_error, interleave_families
from .opening import unix_socket_file
from .socket import Socket

__all__ = ["Stream", "Listener", "Datagram", "IncompleteReadError", "connect", "listen", "bind"]

IncompleteReadError = _core.IncompleteReadError
log = logging.getLogger("socketeer")

_DEFAULT: Any = object()  # "use the object's default timeout"

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class _Timeouts:
    """A default timeout per object, overridable per call; applied to the socket lazily so an
    unchanged timeout costs no fcntl."""

    def __init__(self, sock: Socket, timeout: Optional[float]):
        self.socket = sock
        self.timeout = timeout

    def pick(self, timeout: Optional[float]) -> Optional[float]:
        return self.timeout if timeout is _DEFAULT else timeout

    def apply(self, timeout: Optional[float]) -> None:
        wanted = self.pick(timeout)
        if self.socket.gettimeout() != wanted:
            self.socket.settimeout(wanted)



class Stream(Closeable, Connected):
    """A connected byte stream (TCP, unix stream or seqpacket) with buffered, framed reads.

    Every read and write takes an optional ``timeout`` (seconds; ``None`` waits forever) that
    bounds the whole call, defaulting to the stream's ``timeout``. Expiry raises TimeoutError.

    Threads: one thread at a time may read. A read (``recv*``, an iteration of ``lines()`` or
    ``messages()``) while another thread is inside one raises RuntimeError ("recv: another
    thread is already reading this stream"), as the asyncio Stream refuses a second reading
    task; the first read goes on untouched. Reading and writing from two threads is fine.
    Writes are not serialised: ``send_all`` from two threads at once can interleave the bytes
    of the two messages (it loops over partial sends, as ``socket.sendall`` does, and the
    kernel may split even one large send), so give each stream one writer, or a lock around
    whole messages.
    """

    def __init__(self, sock: Socket, *, timeout: Optional[float] = None, buffer_size: int = 64 * 1024):
        self.socket = sock
        self._timeouts = _Timeouts(sock, timeout)
        self._reader = _core.StreamReader(buffer_size)

    @property
    def timeout(self) -> Optional[float]:
        """The default timeout of every call, in seconds (None: wait forever)."""
        return self._timeouts.timeout

    @timeout.setter
    def timeout(self, value: Optional[float]) -> None:
        self._timeouts.timeout = value

    # --- writing ---------------------------------------------------------------------------

    def send_all(self, data: ReadableBuffer, *, timeout: Optional[float] = _DEFAULT) -> None:
        """Sends every byte of ``data`` (bytes-like) within the timeout. Not atomic between
        threads: a concurrent ``send_all`` may interleave its bytes with these (see the class notes)."""
        self._timeouts.apply(timeout)
        self.socket.sendall(data)

    def send_message(self, message: ReadableBuffer, framing: Framing, *, timeout: Optional[float] = _DEFAULT) -> None:
        """Sends one message with ``framing``'s length prefix or delimiter added."""
        check_framing(framing)
        self.send_all(framing.encode(message), timeout=timeout)

    def close_write(self) -> None:
        """Half-closes the stream (shutdown SHUT_WR): the peer reads end of stream, and this side
        can still receive."""
        self.socket.shutdown(SHUT_WR)

    # --- reading ---------------------------------------------------------------------------

    def recv(self, max_size: int = 64 * 1024, *, timeout: Optional[float] = _DEFAULT) -> bytes:
        """Up to ``max_size`` bytes, as soon as any are there; ``b''`` at end of stream."""
        return self._reader.read_some(self.socket, check_size("max_size", max_size), self._timeouts.pick(timeout))

    def recv_exactly(self, size: int, *, timeout: Optional[float] = _DEFAULT) -> bytes:
        """Exactly ``size`` bytes. End of stream before that raises IncompleteReadError, whose
        ``.partial`` holds what did arrive."""
        return self._reader.read_exactly(self.socket, check_size("size", size), self._timeouts.pick(timeout))

    def recv_until(self, delimiter: bytes = b"\n", max_size: int = 64 * 1024, *, timeout: Optional[float] = _DEFAULT) -> bytes:
        """Bytes up to and including ``delimiter`` (like asyncio's ``readuntil``). More than
        ``max_size`` bytes without one raises MessageTooLarge; never buffers without bound."""
        return self._reader.read_until(self.socket, check_delimiter(delimiter), check_size("max_size", max_size),
                                       self._timeouts.pick(timeout))

    def lines(self, max_size: int = 64 * 1024, *, encoding: Optional[str] = None,
              timeout: Optional[float] = _DEFAULT) -> Iterator[Any]:
        """Yields each line without its line ending (``\\n`` or ``\\r\\n``), as bytes, or as str
        when ``encoding`` is given, until end of stream. A last line without a newline is yielded
        too. Each line is taken off the stream's buffer as it is yielded: a loop that stops early
        leaves the rest for the next read. ``timeout`` bounds the wait for each line."""
        size, pick = check_size("max_size", max_size), self._timeouts.pick(timeout)
        read_line, sock = self._reader.read_line, self.socket
        while (line := read_line(sock, size, pick)) is not None:
            yield line.decode(encoding) if encoding else line

    def messages(self, framing: Framing, *, timeout: Optional[float] = _DEFAULT) -> Iterator[bytes]:
        """Yields whole messages split by ``framing`` (see socketeer.framing) until the stream
        ends. One C++ call per message, which only waits (GIL released) when no whole message is
        buffered; each message is taken off the stream's buffer as it is yielded, so a loop that
        stops early leaves the rest for the next read. A stream that ends in the middle of a
        message raises IncompleteReadError. ``timeout`` bounds the wait for each message."""
        check_framing(framing)
        read_frame, sock, pick = self._reader.read_frame, self.socket, self._timeouts.pick(timeout)
        while (message := read_frame(sock, framing, pick)) is not None:
            yield message

    # --- ending ----------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the stream's socket (idempotent)."""
        self.socket.close()

    @property
    def closed(self) -> bool:
        """Whether close() has been called."""
        return self.socket.closed

    def __repr__(self) -> str:
        if self.closed:
            return "<socketeer.Stream closed>"
        local, peer = shown(lambda: self.socket.local_address), shown(lambda: self.socket.peer_address)
        return f"<socketeer.Stream {local} -> {peer}>"

    def _repr_html_(self) -> str:
        buffered = shown(lambda: f"{self._reader.buffered_size} bytes", "? (another thread is reading)")
        rows = with_row(self.socket._describe(), "timeout", self.timeout) + [("buffered", buffered)]
        return html_table("socketeer.Stream", rows)


class AcceptBackoff:
    """An accept loop's answer to a failed accept, shared by Listener and aio.Listener: the C++
    Server's policy (``_core.AcceptBackoff``), plus one log line when accepting pauses and one
    when it works again, not one per failure."""

    def __init__(self, endpoint: object):
        self._policy = _core.AcceptBackoff()
        self._endpoint = endpoint

    def after(self, error: OSError) -> float:
        """Seconds to stop accepting after ``error`` (0.0: accept again at once); re-raises an
        error that no waiting cures."""
        pause = self._policy.failed(error.errno or 0)
        if pause is None:
            raise error
        if pause and self._policy.pauses == 1:
            log.warning("accept on %s: %s; accepting pauses (retried every %g s) while the open "
                        "connections are served", self._endpoint, error.strerror, pause)
        return pause

    def accepted(self) -> None:
        """An accept worked."""
        pauses = self._policy.succeeded()
        if pauses:
            log.info("accept on %s works again after %d pauses", self._endpoint, pauses)


class Listener(Closeable, Bound):
    """A listening socket. ``accept()`` returns Streams; ``close()`` from any thread wakes a
    blocked ``accept()``, which then raises OSError(EBADF)."""

    def __init__(self, sock: Socket, endpoint: Endpoint, *, unlink_on_close: Optional[str] = None):
        self.socket = sock
        self.socket.setblocking(False)  # accept waits in poll(), together with the wake-up fd
        self._endpoint = endpoint
        self._unlink = unlink_on_close
        self._wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._lock = threading.Condition()
        self._waiting = 0
        self._closed = False

    def accept(self, timeout: Optional[float] = None) -> Stream:
        """The next incoming connection as a Stream (TimeoutError after ``timeout`` seconds)."""
        with self._waiter():
            return self._accept(timeout)

    @contextlib.contextmanager
    def _waiter(self) -> Iterator[None]:
        """Counts a thread waiting on the listener's fds, which close() waits for before it
        closes them; raises EBADF if the listener is closed already."""
        with self._lock:
            if self._closed:
                raise OSError(errno.EBADF, "listener is closed", f"accept on {self._endpoint}")
            self._waiting += 1
        try:
            yield
        finally:
            with self._lock:
                self._waiting -= 1
                self._lock.notify_all()

    def _accept(self, timeout: Optional[float]) -> Stream:
        seconds = _core.timeout_seconds(timeout)  # the bindings' rules for every timeout
        deadline = None if seconds is None else time.monotonic() + seconds
        poller = select.poll()
        poller.register(self.socket.fileno(), select.POLLIN)
        poller.register(self._wake, select.POLLIN)
        while True:
            if self._closed:
                raise OSError(errno.EBADF, "listener is closed", f"accept on {self._endpoint}")
            try:
                sock, _ = self.socket.accept()
                sock.setblocking(True)
                return Stream(sock)
            except BlockingIOError:
                pass
            if not poller.poll(_poll_ms(deadline)) and deadline is not None and time.monotonic() >= deadline:
                raise self.socket.timeout_error("accept")

    def _pause(self, seconds: float) -> None:
        """Sleeps ``seconds``, or less when close() comes first (the next accept says so)."""
        with contextlib.suppress(OSError), self._waiter():
            poller = select.poll()
            poller.register(self._wake, select.POLLIN)
            poller.poll(int(seconds * 1000 + 0.999))

    def __iter__(self) -> Iterator[Stream]:
        """Incoming streams, until the listener is closed. A failed accept does not end it
        when the Server would go on either (the same policy, AcceptBackoff): a connection
        aborted before it was taken is skipped, and running out of fds (EMFILE ...) pauses
        accepting for a moment, again and again until an fd is free (logged once, on the
        "socketeer" logger). Other errors are raised."""
        backoff = AcceptBackoff(self._endpoint)
        while True:
            try:
                stream = self.accept()
            except OSError as error:
                if self._closed and error.errno == errno.EBADF:
                    return
                pause = backoff.after(error)
                if pause:
                    self._pause(pause)
                continue
            backoff.accepted()
            yield stream

    def serve(self, handler: Callable[[Stream], object], *, threads: int = 8) -> None:
        """Runs ``handler(stream)`` for every connection on a pool of ``threads`` threads until
        the listener is closed (from another thread or by Ctrl-C). The stream is closed when the
        handler returns; an exception in a handler is logged with its traceback and closes only
        that connection. Out of fds, it keeps serving the open connections and accepts again once
        fds are free (see ``__iter__``)."""

        def run(stream: Stream) -> None:
            with stream:
                try:
                    handler(stream)
                except Exception:
                    log.exception("handler %r failed for %r", handler, stream)

        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="socketeer-serve") as pool:
            try:
                for stream in self:
                    pool.submit(run, stream)
            except KeyboardInterrupt:
                self.close()

    def close(self) -> None:
        """Stops listening; wakes every thread blocked in accept() first. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.eventfd_write(self._wake, 1)  # stays readable: every waiter wakes
            while self._waiting:
                self._lock.wait()
        self.socket.close()
        os.close(self._wake)
        self._remove_socket_file()

    @property
    def closed(self) -> bool:
        """Whether close() has been called."""
        return self._closed

    def __repr__(self) -> str:
        return f"<socketeer.Listener {'closed' if self._closed else shown(lambda: self.endpoint)}>"

    def _repr_html_(self) -> str:
        return html_table("socketeer.Listener", self.socket._describe() + [("endpoint", shown(lambda: self.endpoint))])


class Datagram(Closeable, Bound):
    """A datagram socket (UDP or unix datagram): ``send_to``/``recv_from`` with Address objects,
    connected ``send``/``recv``, and batches over sendmmsg/recvmmsg."""

    def __init__(self, sock: Socket, endpoint: Endpoint, *, timeout: Optional[float] = None,
                 unlink_on_close: Optional[str] = None):
        self.socket = sock
        self._endpoint = endpoint
        self._timeouts = _Timeouts(sock, timeout)
        self._unlink = unlink_on_close
        self._batch: Optional[_core.DatagramBatch] = None

    @property
    def peer_address(self) -> AnyAddress:
        """The Address connect() fixed (getpeername); OSError(ENOTCONN) before."""
        return self.socket.peer_address

    @property
    def timeout(self) -> Optional[float]:
        """The default timeout of every call, in seconds (None: wait forever)."""
        return self._timeouts.timeout

    @timeout.setter
    def timeout(self, value: Optional[float]) -> None:
        self._timeouts.timeout = value

    def connect(self, target: EndpointLike) -> None:
        """Fixes the peer: ``send``/``recv`` then need no address, and datagrams from anyone
        else are dropped by the kernel."""
        self.socket.connect(_single_address(target, self.socket.family_number))

    def send_to(self, data: ReadableBuffer, address: AnyAddress | str | tuple[Any, ...], *, timeout: Optional[float] = _DEFAULT) -> int:
        """Sends one datagram to ``address`` (an Address, ``"127.0.0.1:9"`` or a tuple)."""
        self._timeouts.apply(timeout)
        return self.socket.sendto(data, address)

    def recv_from(self, max_size: int = 65535, *, timeout: Optional[float] = _DEFAULT) -> tuple[bytes, Optional[AnyAddress]]:
        """One datagram and the Address it came from (None for an unnamed unix sender)."""
        self._timeouts.apply(timeout)
        data, address = self.socket.recvfrom(max_size)
        if address is None or address == "":
            return data, None
        return data, Address.from_tuple(self.socket.family_number, address)

    def send(self, data: ReadableBuffer, *, timeout: Optional[float] = _DEFAULT) -> int:
        """Sends one datagram to the connected peer."""
        self._timeouts.apply(timeout)
        return self.socket.send(data)

    def recv(self, max_size: int = 65535, *, timeout: Optional[float] = _DEFAULT) -> bytes:
        """One datagram from the connected peer."""
        self._timeouts.apply(timeout)
        return self.socket.recv(max_size)

    def send_batch(self, messages: Iterable[ReadableBuffer | tuple[ReadableBuffer, AnyAddress | str | tuple[Any, ...]]], *, timeout: Optional[float] = _DEFAULT) -> int:
        """Sends ``[(data, address), ...]`` (or ``[data, ...]`` when connected) in one sendmmsg
        call; returns how many were sent."""
        self._timeouts.apply(timeout)
        return self.socket.send_many(list(messages))

    def recv_batch(self, max_messages: int = 64, max_size: int = 2048, *,
                   timeout: Optional[float] = _DEFAULT) -> list[tuple[bytes, Optional[AnyAddress]]]:
        """Waits for one datagram, then takes every one already queued (up to ``max_messages``)
        in the same recvmmsg call: ``[(data, address), ...]``. Datagrams longer than
        ``max_size`` are truncated, as with recv."""
        if self._batch is None or (self._batch.slots, self._batch.slot_size) != (max_messages, max_size):
            self._batch = _core.DatagramBatch(check_size("max_messages", max_messages), check_size("max_size", max_size))
        self._timeouts.apply(timeout)
        return self.socket.recv_many(self._batch)

    def set_broadcast(self, enabled: bool = True) -> None:
        """Allows sending to broadcast addresses (SO_BROADCAST)."""
        self.socket.setsockopt(SOL_SOCKET, SO_BROADCAST, int(enabled))

    def join_group(self, group: str, interface: str = "0.0.0.0") -> None:
        """Joins a multicast group (IPv4: IP_ADD_MEMBERSHIP; IPv6: IPV6_JOIN_GROUP)."""
        self._membership(group, interface, join=True)

    def leave_group(self, group: str, interface: str = "0.0.0.0") -> None:
        """Leaves a multicast group joined with join_group()."""
        self._membership(group, interface, join=False)

    def _membership(self, group: str, interface: str, *, join: bool) -> None:
        import socket as stdlib
        if self.socket.family_number == AF_INET6:
            index = 0 if interface in ("0.0.0.0", "") else stdlib.if_nametoindex(interface)
            request = stdlib.inet_pton(AF_INET6, group) + index.to_bytes(4, "little")
            option = stdlib.IPV6_JOIN_GROUP if join else stdlib.IPV6_LEAVE_GROUP
            self.socket.setsockopt(IPPROTO_IPV6, option, request)
        else:
            request = stdlib.inet_aton(group) + stdlib.inet_aton(interface)
            option = stdlib.IP_ADD_MEMBERSHIP if join else stdlib.IP_DROP_MEMBERSHIP
            self.socket.setsockopt(IPPROTO_IP, option, request)

    def close(self) -> None:
        """Closes the socket (idempotent) and removes the unix socket file it created, if any."""
        self.socket.close()
        self._remove_socket_file()

    @property
    def closed(self) -> bool:
        """Whether close() has been called."""
        return self.socket.closed

    def __repr__(self) -> str:
        return f"<socketeer.Datagram {'closed' if self.closed else shown(lambda: self.socket.local_address)}>"

    def _repr_html_(self) -> str:
        return html_table("socketeer.Datagram", with_row(self.socket._describe(), "timeout", self.timeout))


# --- opening ----------------------------------------------------------------------------------

def connect(endpoint: EndpointLike, *, timeout: Optional[float] = None) -> Union[Stream, Datagram]:
    """Connects to ``endpoint``: a :class:`Stream` for ``tcp://``, ``unix:`` and
    ``unix+seqpacket:``, a connected :class:`Datagram` for ``udp://`` and ``unix+dgram:``.

    For host names with several addresses, TCP connects with Happy Eyeballs (RFC 8305): the
    next address is tried 250 ms after the previous one started (or at once when it failed),
    and the first to succeed wins. ``timeout`` bounds the whole attempt.
    """
    timeout = _core.timeout_seconds(timeout)  # the bindings' rules for every timeout
    parsed = parse_endpoint(endpoint)
    addresses = parsed.addresses()
    if parsed.kind == SOCK_DGRAM:
        return Datagram(connected_datagram_socket(addresses[0]), parsed, timeout=timeout)
    if len(addresses) == 1:
        return Stream(_connect_one(addresses[0], parsed.kind, timeout), timeout=None)
    return Stream(_happy_eyeballs(interleave_families(addresses), parsed, timeout))


def _connect_one(address: AnyAddress, kind: int, timeout: Optional[float]) -> Socket:
    sock = Socket(address.family, kind)
    try:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.settimeout(None)
        return sock
    except BaseException:
        sock.close()
        raise



def _happy_eyeballs(addresses: list[AnyAddress], endpoint: Endpoint, timeout: Optional[float]) -> Socket:
    deadline = None if timeout is None else time.monotonic() + timeout
    pending: dict[int, Socket] = {}
    errors: list[OSError] = []
    poller = select.poll()
    next_start = time.monotonic()
    try:
        while addresses or pending:
            now = time.monotonic()
            if addresses and (now >= next_start or not pending):
                address = addresses.pop(0)
                sock = Socket(address.family, endpoint.kind)
                sock.setblocking(False)
                code = sock.connect_ex(address)
                if code in (0, errno.EINPROGRESS):
                    pending[sock.fileno()] = sock
                    poller.register(sock.fileno(), select.POLLOUT)
                else:
                    sock.close()
                    errors.append(OSError(code, os.strerror(code), f"connect to {address}"))
                next_start = now + HAPPY_EYEBALLS_DELAY
                continue
            if deadline is not None and now >= deadline:
                raise _core.timeout_error(f"connect to {endpoint}")
            waits = [t for t in (next_start if addresses else None, deadline) if t is not None]
            for fd, _ in poller.poll(_poll_ms(min(waits)) if waits else None):
                sock = pending.pop(fd)
                poller.unregister(fd)
                code = sock.getsockopt(SOL_SOCKET, 4)  # SO_ERROR
                if code == 0:
                    sock.setblocking(True)
                    return sock
                errors.append(OSError(code, os.strerror(code), f"connect to {shown(lambda: sock.peer_address, '?')}"))
                sock.close()
                next_start = time.monotonic()  # a failure starts the next attempt at once
        raise combined_connect_error(errors, endpoint)
    finally:
        for sock in pending.values():
            sock.close()


def _poll_ms(deadline: Optional[float]) -> Optional[int]:
    """select.poll()'s timeout until a time.monotonic() deadline: rounded up, and at most the
    int it takes (a longer wait returns early and the caller polls again)."""
    if deadline is None:
        return None
    return min(max(0, int((deadline - time.monotonic()) * 1000 + 0.999)), 2**31 - 1)



def listen(endpoint: EndpointLike, *, backlog: int = 128, reuse_port: bool = False) -> Listener:
    """Listens on ``endpoint`` (``tcp://HOST:PORT``, ``unix:PATH``, ``unix+seqpacket:PATH``).
    Port 0 picks a free port: ``listener.address`` tells which. A unix socket file is removed
    when the listener closes."""
    parsed = parse_endpoint(endpoint)
    if parsed.kind == SOCK_DGRAM:
        raise ValueError(f"cannot listen on datagram endpoint {parsed}: use socketeer.bind()")
    address = parsed.addresses()[0]
    sock = bound_socket(address, parsed.kind, backlog=backlog, reuse_port=reuse_port)
    return Listener(sock, parsed, unlink_on_close=unix_socket_file(address))


def bind(endpoint: EndpointLike, *, reuse_port: bool = False, timeout: Optional[float] = None) -> Datagram:
    """Binds a datagram socket: ``udp://HOST:PORT`` or ``unix+dgram:PATH`` (an empty PATH
    autobinds to a fresh abstract name, so a client can be replied to)."""
    parsed = parse_endpoint(endpoint)
    if parsed.kind != SOCK_DGRAM:
        raise ValueError(f"cannot bind() stream endpoint {parsed}: use socketeer.listen() or connect()")
    address = parsed.addresses()[0]
    sock = bound_socket(address, SOCK_DGRAM, reuse_port=reuse_port)
    return Datagram(sock, parsed, timeout=timeout, unlink_on_close=unix_socket_file(address))



def _single_address(target: EndpointLike, family: int) -> AnyAddress:
    if isinstance(target, Address):
        return target
    if isinstance(target, str) and "://" not in target and not target.startswith("unix"):
        return Address.parse(target)
    return parse_endpoint(target).addresses()[0]
