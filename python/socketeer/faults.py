"""``FaultProxy``: a proxy in a C++ thread that injects faults between your code and a real
upstream, TCP or UDP, in process (no daemon).

>>> with FaultProxy("tcp://127.0.0.1:8080") as proxy:     # listens on 127.0.0.1, a free port
...     proxy.set_latency(0.05, jitter=0.01)               # both directions
...     proxy.reset_after(1000, direction="downstream")
...     client = connect(proxy.endpoint)                    # talk through the proxy

Directions: ``"upstream"`` is client -> server, ``"downstream"`` server -> client, ``"both"``.
Every setter takes ``probability`` (0..1), rolled once per connection (TCP) or per datagram
(UDP). Faults can change while connections are open; ``clear()`` removes them all. A fault the
proxy's transport has no use for raises ValueError: ``drop``, ``duplicate`` and ``reorder`` are
UDP-only; ``set_bandwidth``, ``slice``, ``reset_after``, ``close_after`` (alias ``limit_data``),
``half_close``, ``slow_close`` and ``timeout`` TCP-only. Latency and jitter apply to both, and
never change the order of what they delay.

toxiproxy's toxics and switches, by their names here: latency -> :meth:`set_latency`, bandwidth
-> :meth:`set_bandwidth`, slicer -> :meth:`slice`, reset_peer -> :meth:`reset_after`,
limit_data -> :meth:`limit_data` (= :meth:`close_after`), slow_close -> :meth:`slow_close`,
timeout -> :meth:`timeout`, ``enabled=false/true`` -> :meth:`down` / :meth:`up` (or the
``enabled`` property). :meth:`black_hole` and the UDP faults have no toxiproxy twin.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Literal, Optional

from . import _core
from .address import AnyAddress
from .constants import SOCK_DGRAM
from ._display import html_table, shown
from .endpoints import Endpoint, EndpointLike, parse_endpoint
from .opening import bound_socket, unix_socket_file

__all__ = ["FaultProxy"]

Direction = Literal["upstream", "downstream", "both"]
_DIRECTIONS = {"upstream": (0,), "downstream": (1,), "both": (0, 1)}


class FaultProxy:
    """A fault-injecting proxy from ``listen`` (default: a free loopback port) to ``upstream``."""

    def __init__(self, upstream: EndpointLike, *, listen: Optional[str] = None, start: bool = True):
        target = parse_endpoint(upstream)
        self._upstream = target
        address = target.addresses()[0]
        if listen is None:
            host = "[::1]" if address.family == 10 else "127.0.0.1"
            listen = f"{'udp' if target.kind == SOCK_DGRAM else 'tcp'}://{host}:0"
        where = parse_endpoint(listen)
        if (where.kind == SOCK_DGRAM) != (target.kind == SOCK_DGRAM):
            raise ValueError(f"proxy {listen} -> {target}: both ends must be streams or both datagrams")
        listen_address = where.addresses()[0]
        sock = bound_socket(listen_address, where.kind, backlog=None if where.kind == SOCK_DGRAM else 1024)
        self._unlink = unix_socket_file(listen_address)  # a unix socket file is removed by close()
        try:
            self._proxy = _core.FaultProxy(sock, address)
        except BaseException:
            self._remove_socket_file()
            raise
        finally:
            sock.close()
        self._kind = where.kind
        if start:
            self.start()

    # --- where ------------------------------------------------------------------------------

    @property
    def address(self) -> AnyAddress:
        """The Address clients connect to."""
        return self._proxy.local_address

    @property
    def endpoint(self) -> str:
        """The endpoint clients connect to, e.g. ``tcp://127.0.0.1:40123``."""
        return str(Endpoint.from_address(self.address, self._kind))

    @property
    def upstream(self) -> str:
        """The endpoint the proxy forwards to, as text."""
        return str(self._upstream)

    # --- faults -----------------------------------------------------------------------------

    def _update(self, direction: Direction, **changes: Any) -> None:
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be 'upstream', 'downstream' or 'both', not {direction!r}")
        for index in _DIRECTIONS[direction]:
            faults = self._proxy.faults(index)
            faults.update(changes)
            self._proxy.set_faults(index, faults)

    def set_latency(self, seconds: float, *, jitter: float = 0.0, direction: Direction = "both",
                    probability: float = 1.0) -> None:
        """Holds every piece of data (or datagram) for ``seconds`` +- ``jitter``; the order is kept."""
        self._update(direction, latency=seconds, jitter=jitter, probability=probability)

    def set_bandwidth(self, bytes_per_second: int, *, direction: Direction = "both", probability: float = 1.0) -> None:
        """TCP: caps throughput per connection and direction (0: unlimited)."""
        if bytes_per_second < 0:
            raise ValueError("bytes_per_second must be >= 0")
        self._update(direction, bandwidth=int(bytes_per_second), probability=probability)

    def reset_after(self, nbytes: int, *, direction: Direction = "downstream", probability: float = 1.0) -> None:
        """TCP: after ``nbytes`` in ``direction`` (0: at the first byte), both sides get a reset (RST).

        The receiver gets exactly ``nbytes``, then ECONNRESET: the proxy resets it only once those
        bytes have left its send queue (all acknowledged). The sender is reset at once. A receiver
        that takes nothing for 2 seconds is reset anyway, losing what it had not taken."""
        self._update(direction, reset_after=_count(nbytes), probability=probability)

    def close_after(self, nbytes: int, *, direction: Direction = "downstream", probability: float = 1.0) -> None:
        """TCP: after ``nbytes`` in ``direction``, both sides get an orderly close (FIN).

        As with :meth:`reset_after`, the receiver gets exactly ``nbytes``, then the end of the
        stream; the sender's socket is closed at once (a sender still sending then gets a reset,
        as from any peer that closed), and a receiver that takes nothing for 2 seconds is closed
        anyway."""
        self._update(direction, close_after=_count(nbytes), probability=probability)

    def limit_data(self, nbytes: int, *, direction: Direction = "downstream", probability: float = 1.0) -> None:
        """TCP: toxiproxy's ``limit_data``, which is :meth:`close_after` here: after ``nbytes``
        in ``direction`` the connection is closed, its receiver having got exactly ``nbytes``.
        (``faults()`` shows it as ``close_after``.)"""
        self.close_after(nbytes, direction=direction, probability=probability)

    def slow_close(self, delay: float, *, direction: Direction = "both", probability: float = 1.0) -> None:
        """TCP: when a side ends its stream (FIN), the other side gets that end ``delay`` seconds
        after the last byte before it (toxiproxy's ``slow_close``); data is not delayed."""
        if delay < 0:
            raise ValueError(f"slow_close delay must be >= 0, got {delay}")
        self._update(direction, slow_close=delay, probability=probability)

    def timeout(self, seconds: float, *, direction: Direction = "both", probability: float = 1.0) -> None:
        """TCP: stops the data (toxiproxy's ``timeout``), on open connections too: nothing more
        is read or sent in ``direction``, and ``seconds`` later the connection is closed. With 0
        it is never closed: the data waits, and flows on once the fault is cleared."""
        if seconds < 0:
            raise ValueError(f"timeout must be >= 0 seconds (0: hold the data, never close), got {seconds}")
        self._update(direction, timeout=seconds, probability=probability)

    def half_close(self, *, direction: Direction = "downstream", probability: float = 1.0) -> None:
        """TCP: the receiver of ``direction`` reads end of stream at once; the other direction flows."""
        self._update(direction, half_close=True, probability=probability)

    def slice(self, size: int, delay: float = 0.0, *, direction: Direction = "both", probability: float = 1.0) -> None:
        """TCP: cuts data into ``size``-byte pieces sent ``delay`` seconds apart."""
        if size < 1:
            raise ValueError("slice size must be >= 1")
        self._update(direction, slice_size=size, slice_delay=delay, probability=probability)

    def black_hole(self, enabled: bool = True) -> None:
        """New connections are accepted and then get nothing: no upstream, no data, no close.
        Open connections stop relaying (what they send waits, unread) until ``black_hole(False)``,
        when it flows on. UDP: every datagram is dropped."""
        self._proxy.black_hole = enabled

    # --- the whole proxy down and up (toxiproxy's enabled) ----------------------------------

    @property
    def enabled(self) -> bool:
        """False while the proxy is down (see :meth:`down`); setting it is :meth:`down` / :meth:`up`."""
        return self._proxy.enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._proxy.enabled = bool(value)

    def down(self) -> None:
        """Takes the proxy down, as toxiproxy's ``enabled=false``: it stops listening, so
        connecting is refused (ECONNREFUSED), and every open connection is closed. Faults are
        kept. Once it returns, no connection gets through."""
        self._proxy.enabled = False

    def up(self) -> None:
        """Brings the proxy back up on the same address (same :attr:`endpoint`). Raises OSError
        (EADDRINUSE) if something else took the port while it was down; it then stays down."""
        self._proxy.enabled = True

    def drop(self, probability: float, *, direction: Direction = "both") -> None:
        """UDP: drops each datagram with ``probability``."""
        self._update(direction, drop=probability)

    def duplicate(self, probability: float, *, direction: Direction = "both") -> None:
        """UDP: sends each datagram twice with ``probability``."""
        self._update(direction, duplicate=probability)

    def reorder(self, probability: float, *, direction: Direction = "both") -> None:
        """UDP: holds a datagram back with ``probability`` and sends it right after the next one of
        its client and direction, so the two swap places; a datagram that comes while another is
        held is not held itself, so ``reorder(1.0)`` swaps every pair (1 2 3 4 -> 2 1 4 3). A held
        datagram that no other follows goes on alone after 50 ms. ``stats()["reordered"]``
        counts the swaps."""
        self._update(direction, reorder=probability)

    def clear(self) -> None:
        """Removes every fault."""
        for index in (0, 1):
            self._proxy.set_faults(index, {})
        self._proxy.black_hole = False

    def faults(self) -> dict[str, dict[str, Any]]:
        """The faults in force, per direction."""
        return {"upstream": self._proxy.faults(0), "downstream": self._proxy.faults(1)}

    def stats(self) -> dict[str, int]:
        """connections, active, upstream_bytes, downstream_bytes; datagrams, dropped, duplicated, reordered;
        connect_errors (TCP: clients reset because connecting upstream failed) and connect_errno
        (the errno of the last such failure, 0 if none)."""
        return self._proxy.stats()

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> "FaultProxy":
        """Starts forwarding in the proxy's C++ thread (if not running yet); returns the proxy.
        ``with FaultProxy(...)`` starts it too."""
        if not self._proxy.running:
            self._proxy.start()
        return self

    def close(self) -> None:
        """Stops the proxy thread (open connections are reset) and closes its sockets, removing
        the unix socket file it listened on. Idempotent."""
        self._proxy.close()
        self._remove_socket_file()

    def _remove_socket_file(self) -> None:
        if self._unlink:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._unlink)
            self._unlink = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _state(self) -> str:
        if self._proxy.closed:
            return "closed"
        if not self._proxy.running:
            return "stopped"
        return "up" if self._proxy.enabled else "down"

    def _active_faults(self) -> list[tuple[str, str]]:
        """(direction, 'name=value ...') for each direction with a fault in force."""
        rows = []
        in_force: Any = shown(self.faults, {})  # {} once closed
        for direction, faults in in_force.items():
            changed = [f"{name}={value}" for name, value in faults.items() if _NO_FAULT.get(name) != value]
            if changed:
                rows.append((direction, " ".join(changed)))
        return rows

    def __repr__(self) -> str:
        return f"<socketeer.FaultProxy {self.endpoint} -> {self.upstream} {shown(self._state)}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [("listen", shown(lambda: self.endpoint)), ("upstream", self.upstream),
                                          ("state", shown(self._state))]
        if shown(lambda: self._proxy.black_hole, False):
            rows.append(("black hole", "on"))
        rows += [(f"faults {direction}", text) for direction, text in self._active_faults()]
        stats: Any = shown(self.stats, {})
        rows += [(name, value) for name, value in stats.items() if value or name in ("connections", "active")]
        return html_table("socketeer.FaultProxy", rows)


# Each fault's "none" value, as faults() reports it: the rest are in force.
_NO_FAULT: dict[str, Any] = {"probability": 1.0, "latency": 0.0, "jitter": 0.0, "bandwidth": 0, "slice_size": 0,
                             "slice_delay": 0.0, "reset_after": -1, "close_after": -1, "half_close": False,
                             "slow_close": 0.0, "timeout": None, "drop": 0.0, "duplicate": 0.0, "reorder": 0.0}


def _count(nbytes: int) -> int:
    if nbytes < 0:
        raise ValueError(f"byte count must be >= 0, got {nbytes}")
    return int(nbytes)
