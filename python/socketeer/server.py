"""``Server``: the C++ reactor with Python handlers, or built-in C++ handlers with no Python at all.

>>> class Echo:
...     def on_message(self, conn, data):
...         conn.send(data)
>>> server = Server(Echo(), framing=framing.lines())
>>> address = server.listen("tcp://127.0.0.1:0")
>>> server.start()       # in a background thread; server.run() blocks instead
>>> ...
>>> server.stop()

The loop (accept, read, framing, writes) runs in C++ with the GIL released. Each loop turn the
GIL is taken once and the handler gets every event of that turn:

- ``on_connect(conn)``, ``on_close(conn, reason)``
- ``on_message(conn, data)`` per whole message (framing done in C++), or, if the handler has
  it, ``on_messages([(conn, data), ...])`` once per turn;
- ``on_datagram(endpoint, data, address)`` for ``bind()``-ed UDP/unix datagram endpoints
  (received with recvmmsg; ``endpoint.send_to(data, address)`` replies go out with sendmmsg).

With ``Server(..., views=True)`` messages arrive as read-only ``memoryview`` objects of the
server's read buffer instead of ``bytes`` copies (see ``Server``).

``conn.send(data)`` queues bytes (no copy for ``bytes``: the reactor sends from the object;
none either for a view of this turn's message sent back on its own connection);
``conn.send_message(data)`` does the same with the server's framing added (length prefix or
delimiter, no copy of ``data``; a message the framing cannot carry as one raises);
``conn.close()`` closes after flushing; ``conn.abort()`` resets. Any attribute can be set on a
``conn`` to keep state. An exception in a handler is logged with its traceback and closes only
that connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, Literal, Optional

from . import _core
from .address import AnyAddress
from .constants import AF_UNIX, SOCK_DGRAM
from .endpoints import Endpoint, EndpointLike, parse_endpoint
from .opening import bound_socket, unix_socket_file
from .socket import Socket
from .framing import Framing

__all__ = ["Server", "Connection", "DatagramEndpoint"]

Connection = _core.Connection
DatagramEndpoint = _core.DatagramEndpoint
log = logging.getLogger("socketeer.server")


def _log_handler_error(conn: Connection, error: BaseException) -> None:
    log.error("socketeer.Server handler failed for %r; closing it", conn, exc_info=error)


@contextlib.contextmanager
def _signal_wakeup() -> Iterator[int]:
    """The read end of a signal wakeup pipe for the loop in the main thread, or -1.

    Python runs signal handlers (Ctrl-C's KeyboardInterrupt) only when the main thread gets
    back to it; a signal that lands while the C++ loop is between polls interrupts no syscall,
    and the next poll would sleep until some unrelated event. With the wakeup fd the poll
    returns at once. A wakeup fd someone else installed (asyncio) is left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield -1
        return
    reader, writer = socket.socketpair()
    try:
        reader.setblocking(False)
        writer.setblocking(False)
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        if previous != -1:
            signal.set_wakeup_fd(previous)
            yield -1
            return
        try:
            yield reader.fileno()
        finally:
            signal.set_wakeup_fd(-1)
    finally:
        reader.close()
        writer.close()


class Server:
    """A C++ event-loop server. See the module docstring for the handler protocol.

    ``builtin="echo"`` / ``"discard"`` / ``"fixed"`` (with ``response=``) run entirely in C++.
    ``threads=N`` runs N reactors, each with its own SO_REUSEPORT socket per inet endpoint, so
    the kernel spreads connections over them; on a unix endpoint they share one socket (dup()ed).

    ``tune_allocator`` (default on): Python handlers get a fresh ``bytes`` per message (unless
    ``views``), and with glibc's defaults freeing a large one returns the heap top to the
    kernel, so the next message pays page faults again (about 40 us per 64 KiB message here).
    The first run() therefore keeps up to 64 MiB of freed heap for reuse (``mallopt``), once
    per process, unless the environment sets ``MALLOC_TRIM_THRESHOLD_`` or
    ``MALLOC_MMAP_THRESHOLD_``. What a burst leaves behind is given back either way: once a
    loop has freed more than 8 MiB (say the read buffers of a few hundred closed connections),
    it returns the free memory to the system (``malloc_trim``) when it has been quiet for
    0.2 s, or when its connections fell to a quarter of their peak; never in every loop turn.

    ``read_buffer`` (default 64 KiB): how much one connection reads per recv. Each connection
    has its own buffer (a few bytes longer, so that a message exactly this long is seen whole in
    one recv); a message longer than it grows the buffer up to what the framing's ``max_size``
    needs. ``stats()["received_bytes"] / stats()["reads"]`` is the average read.

    ``udp_gso`` (default on): UDP endpoints use the kernel's segmentation offloads where it has
    them. On receive (GRO), datagrams one sender sent back to back may arrive coalesced in one
    read; the reactor splits them again, so ``on_datagram`` still sees one call per datagram
    (``stats()["gro_segments"]`` counts them). On send (GSO), consecutive replies of one size to
    one address leave as one message the kernel cuts up late (``stats()["gso_datagrams"]``),
    which saves most of the per-datagram cost of the send path. If the kernel refuses a GSO send
    (old kernel, a device without checksum offload, replies larger than the path MTU), the
    endpoint falls back to one datagram per message by itself and loses nothing. Turn it off to
    compare or debug (packet captures and BPF programs then see exactly the datagrams the
    handler sent), or where a middle box or virtual device is known to mishandle offloaded UDP.

    ``datagram_size`` (default 65536, enough for any UDP datagram): the longest datagram a
    datagram endpoint receives. A longer one (a ``unix+dgram:`` peer may send up to its socket
    buffer) would arrive cut short; it is dropped and counted in
    ``stats()["truncated_datagrams"]`` instead of being handed to ``on_datagram`` as if whole.

    ``views`` (default off): ``on_message``/``on_messages`` get a read-only ``memoryview`` of
    the server's read buffer instead of a ``bytes`` copy of each message. ``conn.send(view)`` and
    ``conn.send_message(view)`` then echo or forward it without any copy in user space, which
    matters for large messages (at 64 KiB the copy is most of a handler's CPU time); for small
    ones ``bytes`` is as cheap. A view stays valid for as long as something references it, and
    the connection reads on into a new buffer. What a kept view costs: the view alone, of a
    message up to a quarter of the read buffer, is moved to a copy of just its bytes once the
    handler returns (``repr(view.obj)`` says ``copied``); a larger one, or one whose memory
    something else also points at (a slice or cast of it, ``view.obj``, a numpy array made from
    it), keeps the whole read buffer alive (``sharing a read block``). Keep ``bytes(view[:n])``
    when only a small part of a large message is needed for long. Datagrams are always ``bytes``.
    """

    def __init__(self, handler: object = None, *, builtin: Optional[Literal["echo", "discard", "fixed"]] = None,
                 response: Optional[bytes] = None, framing: Optional[Framing] = None,
                 idle_timeout: Optional[float] = None, high_watermark: int = 4 * 1024 * 1024,
                 low_watermark: int = 1024 * 1024, read_buffer: int = 64 * 1024, threads: int = 1,
                 datagram_batch: int = 64, datagram_size: int = 65536, on_error: Callable[[Connection, BaseException], object] = _log_handler_error,
                 tune_allocator: bool = True, udp_gso: bool = True, views: bool = False):
        if (handler is None) == (builtin is None):
            raise ValueError("give either a handler object or builtin='echo'|'discard'|'fixed'")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if datagram_batch < 1 or datagram_size < 1:
            raise ValueError(f"datagram_batch and datagram_size must be >= 1, got {datagram_batch} and {datagram_size}")
        self._reactors = []
        for _ in range(threads):
            reactor = _core.Reactor(framing, read_buffer, high_watermark, low_watermark, idle_timeout,
                                    datagram_batch, datagram_size, tune_allocator=tune_allocator, udp_gso=udp_gso)
            if builtin is not None:
                reactor.set_builtin(builtin, response)
            else:
                reactor.set_handler(handler, on_error, views)
            self._reactors.append(reactor)
        self._addresses: list[AnyAddress] = []
        self._endpoints: list[tuple[Endpoint, AnyAddress]] = []
        self._endpoint_ids: list[int] = []  # each endpoint's id in the first reactor
        self._threads: list[threading.Thread] = []
        self._unlink: list[str] = []
        # listen()/bind() against close(): an endpoint is either added whole before the sockets
        # are closed, or refused after (never a socket file left behind by a closed server).
        self._endpoints_lock = threading.Lock()
        self._closed = False

    # --- endpoints --------------------------------------------------------------------------

    def listen(self, endpoint: EndpointLike, *, backlog: int = 1024) -> AnyAddress:
        """Adds a stream endpoint (``tcp://``, ``unix:``, ``unix+seqpacket:``); returns the bound
        Address (port 0 resolved). Also while the server runs (after start(), inside ``with``,
        from a handler): the socket is bound and listening when this returns, and the running
        loop starts accepting on it within its next turn.

        On ``unix+seqpacket:`` a record is a message: each one the client sends arrives as one
        message, each ``conn.send()`` leaves as one record. A length prefix or a delimiter
        inside records would have no one meaning, so such an endpoint needs the default raw
        framing (ValueError otherwise); records longer than its ``max_size`` close the
        connection, as an oversized frame does."""
        parsed = parse_endpoint(endpoint)
        if parsed.kind == SOCK_DGRAM:
            raise ValueError(f"cannot listen on datagram endpoint {parsed}: use Server.bind()")
        return self._add(parsed, "listen on", backlog)

    def bind(self, endpoint: EndpointLike) -> AnyAddress:
        """Adds a datagram endpoint (``udp://``, ``unix+dgram:``) for ``on_datagram``. Also while
        the server runs, as listen()."""
        parsed = parse_endpoint(endpoint)
        if parsed.kind != SOCK_DGRAM:
            raise ValueError(f"cannot bind stream endpoint {parsed}: use Server.listen()")
        return self._add(parsed, "bind", None)

    def _add(self, parsed: Endpoint, operation: str, backlog: Optional[int]) -> AnyAddress:
        """Binds one socket per reactor (listening if backlog is given) and hands each to its
        reactor, which takes it over (the Python Socket is left closed)."""
        with self._endpoints_lock:
            if self._closed:
                raise ValueError(f"cannot {operation} {parsed}: the server is closed")
            address = parsed.addresses()[0]
            ids = []
            sockets = self._reactor_sockets(address, parsed.kind, backlog)
            try:
                for reactor, sock in zip(self._reactors, sockets):
                    try:
                        address = sock.local_address
                        ids.append(reactor.add_listener(sock) if backlog is not None else reactor.add_datagram(sock))
                    except ValueError as error:
                        path = unix_socket_file(address)
                        if not ids and path:  # refused before any reactor took it: no file left
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(path)
                        raise ValueError(f"cannot {operation} {parsed}: {error}") from None
                    finally:
                        sock.close()
            finally:
                sockets.close()
            self._addresses.append(address)
            self._endpoints.append((parsed, address))
            self._endpoint_ids.append(ids[0])
            path = unix_socket_file(address)
            if path:
                self._unlink.append(path)
            return address

    def _reactor_sockets(self, address: AnyAddress, kind: int, backlog: Optional[int]) -> Generator[Socket, None, None]:
        """One bound socket per reactor. Inet: each its own, SO_REUSEPORT when there are several
        (the kernel spreads connections over them), all on the port the first got. Unix: a unix
        socket file has one socket only (SO_REUSEPORT is for inet), so each reactor gets a dup()
        of it, and the first to accept a connection takes it."""
        if address.family == AF_UNIX:
            with bound_socket(address, kind, backlog=backlog) as shared:
                for _ in self._reactors:
                    yield shared.dup()
            return
        for _ in self._reactors:
            sock = bound_socket(address, kind, backlog=backlog, reuse_port=len(self._reactors) > 1)
            address = sock.local_address  # the other reactors bind the port the first got
            yield sock

    @property
    def addresses(self) -> list[AnyAddress]:
        """The bound Address of each endpoint, in the order they were added."""
        return list(self._addresses)

    @property
    def address(self) -> AnyAddress:
        """The bound Address of the first endpoint."""
        if not self._addresses:
            raise ValueError("the server has no endpoint yet: call listen() or bind()")
        return self._addresses[0]

    def endpoint(self, index: int = 0) -> str:
        """The endpoint string a client passes to connect(), e.g. ``tcp://127.0.0.1:40123``."""
        endpoint, address = self._endpoints[index]
        return str(Endpoint.from_address(address, endpoint.kind))

    def datagram_endpoints(self) -> list[DatagramEndpoint]:
        """Handles to send from each datagram endpoint (of the first reactor)."""
        reactor = self._reactors[0]
        return [reactor.endpoint(id_) for (endpoint, _), id_ in zip(self._endpoints, self._endpoint_ids)
                if endpoint.kind == SOCK_DGRAM]

    # --- running ----------------------------------------------------------------------------

    def run(self) -> None:
        """Runs in the calling thread until stop() (from another thread or a handler) or Ctrl-C;
        with threads=N the other reactors run in background threads meanwhile."""
        others = [threading.Thread(target=r.run, name="socketeer-reactor", daemon=True) for r in self._reactors[1:]]
        for thread in others:
            thread.start()
        try:
            with _signal_wakeup() as interrupt_fd:
                self._reactors[0].run(interrupt_fd)
        finally:
            for reactor in self._reactors[1:]:
                reactor.stop()
            for thread in others:
                thread.join()

    def start(self) -> "Server":
        """Runs every reactor in a background thread; returns at once."""
        if self._threads:
            raise RuntimeError("the server is already started")
        self._threads = [threading.Thread(target=r.run, name="socketeer-reactor", daemon=True) for r in self._reactors]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stops the loops (connections closed with reason 'server stopped') and waits for them."""
        for reactor in self._reactors:
            reactor.stop()
        for thread in self._threads:
            thread.join()
        self._threads = []

    def close(self) -> None:
        """Stops, then closes every socket. Idempotent. listen()/bind() after it raise ValueError."""
        self.stop()
        with self._endpoints_lock:
            self._closed = True
            for reactor in self._reactors:
                reactor.close()
            for path in self._unlink:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            self._unlink = []

    def stats(self) -> dict[str, int]:
        """Counters summed over the reactors: accepted, closed, connections (open now), turns (of
        the loop), messages, received_bytes, sent_bytes, reads (recv calls on connections),
        paused_reads (backpressure), queued_bytes (output waiting now), and for datagram
        endpoints datagrams, dropped_datagrams, truncated_datagrams, gro_segments, gso_datagrams."""
        total: dict[str, int] = {}
        for reactor in self._reactors:
            if not reactor.closed:
                for key, value in reactor.stats().items():
                    total[key] = total.get(key, 0) + value
        return total

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """True from start() until stop() or close(): its reactor threads serve."""
        # A started thread counts at once: its reactor may not have entered run() yet.
        started = any(thread.is_alive() for thread in self._threads)
        return started or any(r.running for r in self._reactors if not r.closed)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        endpoints = ", ".join(self.endpoint(i) for i in range(len(self._endpoints)))
        return f"<socketeer.Server {state} {endpoints or '(no endpoints)'}>"

    def _repr_html_(self) -> str:
        from ._display import html_table
        rows: list[tuple[str, object]] = [("state", "running" if self.running else "stopped")]
        rows += [("endpoint", self.endpoint(i)) for i in range(len(self._endpoints))]
        rows += list(self.stats().items())
        return html_table("socketeer.Server", rows)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))
