"""Opening the socket an endpoint names: what the blocking API (streams.py) and the asyncio one
(aio.py) do alike, and the Server and FaultProxy reuse.

- connecting: the Happy Eyeballs order of a name's addresses (RFC 8305) and the one error a
  connect that failed for every address raises; a connected datagram socket;
- binding: a bound (and listening) socket, the unix socket file it creates, and ``Bound``,
  what a bound Listener or Datagram tells about itself;
- connected: ``Connected``, what a connected Stream tells about itself and how it ends abruptly.

Each driver waits in its own way (poll() in a thread, or the event loop); these pieces never wait.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

from .address import AnyAddress, UnixAddress
from .constants import AF_UNIX, SO_LINGER, SO_REUSEADDR, SO_REUSEPORT, SOCK_DGRAM, SOL_SOCKET
from .endpoints import Endpoint
from .socket import Socket, TcpInfo

__all__ = ["HAPPY_EYEBALLS_DELAY", "interleave_families", "combined_connect_error", "connected_datagram_socket",
           "bound_socket", "unix_socket_file", "Bound", "Connected"]

HAPPY_EYEBALLS_DELAY = 0.25  # RFC 8305's recommended connection attempt delay


# --- connecting --------------------------------------------------------------------------------

def interleave_families(addresses: list[AnyAddress]) -> list[AnyAddress]:
    """Alternates families, starting with the resolver's first choice (RFC 8305 section 4)."""
    first = [a for a in addresses if a.family == addresses[0].family]
    other = [a for a in addresses if a.family != addresses[0].family]
    mixed: list[AnyAddress] = []
    for i in range(max(len(first), len(other))):
        mixed += first[i:i + 1] + other[i:i + 1]
    return mixed


def combined_connect_error(errors: list[OSError], endpoint: Endpoint) -> OSError:
    """The one OSError of a connect to ``endpoint`` whose every address failed with ``errors``:
    their errno when they agree, else a message listing each address and its reason."""
    if len({e.errno for e in errors}) == 1:
        first = errors[0]
        return OSError(first.errno, first.strerror, f"connect to {endpoint} ({len(errors)} addresses tried)")
    details = "; ".join(f"{e.filename}: {e.strerror}" for e in errors)
    return OSError(f"connect to {endpoint} failed for every address: {details}")


def connected_datagram_socket(address: AnyAddress) -> Socket:
    """A datagram socket connected to ``address``; a unix one is autobound first, so the peer
    has an address to reply to. Closed again if a step fails."""
    sock = Socket(address.family, SOCK_DGRAM)
    try:
        if isinstance(address, UnixAddress):
            sock.bind(UnixAddress(""))
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


# --- binding -----------------------------------------------------------------------------------

def bound_socket(address: AnyAddress, kind: int, *, backlog: Optional[int] = None,
                 reuse_port: bool = False) -> Socket:
    """A socket bound to ``address`` (SO_REUSEADDR on inet streams, so a restarted server gets
    its port back at once), listening when ``backlog`` is given; closed again if a step fails."""
    sock = Socket(address.family, kind)
    try:
        if address.family != AF_UNIX and kind != SOCK_DGRAM:
            sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1)
        sock.bind(address)
        if backlog is not None:
            sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def unix_socket_file(address: AnyAddress) -> Optional[str]:
    """The file that binding ``address`` creates (its owner removes it on close); None for an
    abstract or unnamed unix address, and for every other family."""
    if isinstance(address, UnixAddress) and not address.abstract and address.path:
        return address.path
    return None


class Bound:
    """What a bound socket tells about itself, and the unix socket file it removes on close.
    Shared by the blocking and the asyncio Listener and Datagram."""

    socket: Socket
    _endpoint: Endpoint
    _unlink: Optional[str]

    @property
    def address(self) -> AnyAddress:
        """The bound Address (port 0 resolved to the real port)."""
        return self.socket.local_address

    @property
    def endpoint(self) -> str:
        """What a client passes to connect(): ``tcp://127.0.0.1:40123``, ``unix:/path`` ..."""
        return str(Endpoint.from_address(self.address, self._endpoint.kind))

    def _remove_socket_file(self) -> None:
        if self._unlink:
            try:
                os.unlink(self._unlink)
            except FileNotFoundError:
                pass
            self._unlink = None


# --- connected ---------------------------------------------------------------------------------

class Connected:
    """What a connected stream tells about itself, and its abrupt end (a reset). Shared by the
    blocking and the asyncio Stream."""

    socket: Socket

    if TYPE_CHECKING:  # the Stream classes provide it
        def close(self) -> None: ...

    @property
    def local_address(self) -> AnyAddress:
        """This end's Address (getsockname)."""
        return self.socket.local_address

    @property
    def peer_address(self) -> AnyAddress:
        """The other end's Address (getpeername)."""
        return self.socket.peer_address

    def tcp_info(self) -> TcpInfo:
        """The kernel's TCP_INFO (state, rtt, cwnd, retransmits ...) for a TCP stream."""
        return self.socket.tcp_info()

    def abort(self) -> None:
        """Closes with a reset (RST) instead of an orderly FIN: SO_LINGER with a zero timeout."""
        if not self.socket.closed:
            try:
                self.socket.setsockopt(SOL_SOCKET, SO_LINGER, (1).to_bytes(4, "little") + (0).to_bytes(4, "little"))
            except OSError:
                pass
        self.close()
