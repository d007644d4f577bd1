"""Endpoint strings, parsed once into :class:`Endpoint` objects.

==============================  ============================================
``tcp://HOST:PORT``             TCP over IPv4 or IPv6 (names are resolved)
``tcp4://`` ``tcp6://``         TCP restricted to one family
``udp://HOST:PORT``             UDP (also ``udp4://``, ``udp6://``)
``unix:PATH``                   unix stream socket (``@name``: abstract)
``unix+dgram:PATH``             unix datagram socket
``unix+seqpacket:PATH``         unix seqpacket socket
==============================  ============================================

IPv6 hosts go in brackets: ``tcp://[::1]:8080``. A PORT may be a service name, looked up in the
local services database for the scheme's protocol (``tcp://localhost:http`` is port 80; no
network involved); an unknown one is a ValueError naming it. A unix PATH is read and written by the rule of
:meth:`Address.parse <socketeer.Address.parse>`: ``@name`` is abstract, ``//`` before a path is
dropped (``unix:///run/app.sock``), and a path that begins with ``@`` or ``//`` is written after
``//`` (``unix://@not-abstract``), so ``str()`` of every Endpoint parses back to an equal one.
Parsing never resolves a host name; :meth:`Endpoint.addresses <socketeer.Endpoint.addresses>` does.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from typing import Optional, Union

from .address import Address, AnyAddress, NetlinkAddress, PacketAddress, UnixAddress, resolve
from ._display import Pretty, html_table
from .constants import AF_INET, AF_INET6, AF_UNIX, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, AddressFamily, SocketKind

__all__ = ["Endpoint", "parse_endpoint"]

_INET_SCHEMES = {
    "tcp": (0, SOCK_STREAM), "tcp4": (AF_INET, SOCK_STREAM), "tcp6": (AF_INET6, SOCK_STREAM),
    "udp": (0, SOCK_DGRAM), "udp4": (AF_INET, SOCK_DGRAM), "udp6": (AF_INET6, SOCK_DGRAM),
}
_UNIX_SCHEMES = {"unix": SOCK_STREAM, "unix+dgram": SOCK_DGRAM, "unix+seqpacket": SOCK_SEQPACKET}
_SERVICE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._+-]*")  # /etc/services' names, and nothing else
_FORMS = "tcp://HOST:PORT, udp://HOST:PORT, unix:PATH, unix+dgram:PATH or unix+seqpacket:PATH"


@dataclass(frozen=True)
class Endpoint(Pretty):
    """A parsed endpoint: where to connect, listen or bind, and with which kind of socket."""

    scheme: str
    kind: int
    family: int = 0  # 0: any family the host resolves to
    host: Optional[str] = None
    port: Optional[int] = None
    path: Optional[str] = None  # unix only; for abstract names, without the '@'
    abstract: bool = False

    @property
    def is_unix(self) -> bool:
        """Whether this is a unix endpoint (``unix:``, ``unix+dgram:``, ``unix+seqpacket:``)."""
        return self.path is not None

    def __str__(self) -> str:
        if self.is_unix:  # "unix:..." with this scheme: the path is written as Address text is
            return self.scheme + str(UnixAddress(self.path or "", abstract=self.abstract))[len("unix"):]
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def _repr_html_(self) -> str:
        where: list[tuple[str, object]] = (
            [("path", ("@" if self.abstract else "") + (self.path or "") or "(unnamed)")] if self.is_unix
            else [("host", self.host), ("port", self.port)])
        family = AddressFamily(self.family).name if self.family else "any the host resolves to"
        return html_table("socketeer.Endpoint", [("endpoint", str(self)), ("scheme", self.scheme),
                                                 ("kind", SocketKind(self.kind).name), ("family", family)] + where)

    def addresses(self) -> list[AnyAddress]:
        """The socket addresses this endpoint names (host names resolved, IPv6 first as the
        resolver orders them)."""
        if self.is_unix:
            return [UnixAddress(self.path or "", abstract=self.abstract)]
        assert self.host is not None and self.port is not None
        numeric = numeric_address(self.host, self.port)
        if numeric is not None:
            if self.family and numeric.family != self.family:
                raise ValueError(f"endpoint {self}: {self.host} is not an {_family_word(self.family)} address")
            return [numeric]
        return list[AnyAddress](resolve(self.host, self.port, family=self.family, type=self.kind))

    @classmethod
    def from_address(cls, address: AnyAddress, kind: int = SOCK_STREAM) -> "Endpoint":
        """The endpoint for an Address and socket kind (``tcp://`` or ``udp://`` for inet ones).
        Netlink and packet addresses have no endpoint form: ValueError naming the address."""
        if isinstance(address, (NetlinkAddress, PacketAddress)):
            raise ValueError(f"no endpoint names {address!r}: endpoints are {_FORMS}; use socketeer.Socket")
        if isinstance(address, UnixAddress):
            scheme = {int(v): k for k, v in _UNIX_SCHEMES.items()}[kind]
            return cls(scheme, kind, AF_UNIX, path=address.path, abstract=address.abstract)
        scheme = "tcp" if kind == SOCK_STREAM else "udp"
        return cls(scheme, kind, int(address.family), host=address.host, port=address.port)


EndpointLike = Union[str, Endpoint, AnyAddress]
"""What connect(), listen(), bind(), Server and FaultProxy accept: endpoint text, an Endpoint or an Address."""


def parse_endpoint(endpoint: EndpointLike) -> Endpoint:
    """Parses an endpoint string (see the module docstring); Endpoints pass through and Address
    objects become stream endpoints. Malformed input raises ValueError naming the bad part."""
    if isinstance(endpoint, Endpoint):
        return endpoint
    if isinstance(endpoint, Address):
        return Endpoint.from_address(endpoint)  # type: ignore[arg-type]  # Address is an ABC over the five
    if not isinstance(endpoint, str):
        raise TypeError(f"endpoint must be a string like 'tcp://127.0.0.1:80', not {type(endpoint).__name__!r}")
    scheme, separator, rest = endpoint.partition(":")
    if not separator:
        raise ValueError(f"bad endpoint {endpoint!r}: no scheme (want {_FORMS})")
    if scheme in _UNIX_SCHEMES:
        return _parse_unix(endpoint, scheme, rest)
    if scheme in _INET_SCHEMES:
        return _parse_inet(endpoint, scheme, rest)
    raise ValueError(f"bad endpoint {endpoint!r}: unknown scheme {scheme!r} (want {_FORMS})")


def _parse_unix(endpoint: str, scheme: str, path: str) -> Endpoint:
    try:
        address = Address.parse("unix:" + path)  # one rule for unix text: Address.parse's
    except ValueError as error:
        raise ValueError(f"bad endpoint {endpoint!r}: {error}") from None
    assert isinstance(address, UnixAddress)
    if address.unnamed and scheme != "unix+dgram":
        raise ValueError(f"bad endpoint {endpoint!r}: empty path")
    return Endpoint(scheme, _UNIX_SCHEMES[scheme], AF_UNIX, path=address.path, abstract=address.abstract)


def _parse_inet(endpoint: str, scheme: str, rest: str) -> Endpoint:
    if not rest.startswith("//"):
        raise ValueError(f"bad endpoint {endpoint!r}: want {scheme}://HOST:PORT")
    rest = rest[2:]
    family, kind = _INET_SCHEMES[scheme]
    if rest.startswith("["):
        host, bracket, port_text = rest[1:].partition("]")
        if not bracket:
            raise ValueError(f"bad endpoint {endpoint!r}: missing ']' after the IPv6 host")
        if not port_text.startswith(":"):
            raise ValueError(f"bad endpoint {endpoint!r}: missing ':PORT' after ']'")
        port_text = port_text[1:]
    else:
        host, colon, port_text = rest.rpartition(":")
        if not colon:
            raise ValueError(f"bad endpoint {endpoint!r}: missing ':PORT' (want {scheme}://HOST:PORT)")
        if ":" in host:
            raise ValueError(f"bad endpoint {endpoint!r}: IPv6 hosts need brackets: {scheme}://[{host}]:{port_text}")
    if not host:
        raise ValueError(f"bad endpoint {endpoint!r}: empty host (use 0.0.0.0 or [::] for every interface)")
    port = _port_number(endpoint, port_text, kind)
    if "/" in host or not host.isprintable() or any(c.isspace() for c in host):
        raise ValueError(f"bad endpoint {endpoint!r}: bad host {host!r}")
    numeric = numeric_address(host, 0)
    if rest.startswith("[") and (numeric is None or numeric.family != AF_INET6):
        raise ValueError(f"bad endpoint {endpoint!r}: {host!r} in brackets is not an IPv6 address")
    if family and numeric is not None and numeric.family != family:
        raise ValueError(f"bad endpoint {endpoint!r}: {host} is not an {_family_word(family)} address")
    return Endpoint(scheme, kind, family, host=host, port=port)


def _port_number(endpoint: str, text: str, kind: int) -> int:
    """A port: a number 0-65535, or a service name looked up in the local services database
    (/etc/services, no network) for the endpoint's protocol: ``http`` -> 80."""
    # ASCII digits only: str.isdigit() also admits '²' (int() rejects it) and '٣' (int() reads 3).
    if text.isascii() and text.isdigit():
        if int(text) > 65535:
            raise ValueError(f"bad endpoint {endpoint!r}: port {text!r} is not a number 0-65535")
        return int(text)
    protocol = "udp" if kind == SOCK_DGRAM else "tcp"
    if not _SERVICE_NAME.fullmatch(text):
        raise ValueError(f"bad endpoint {endpoint!r}: port {text!r} is not a number 0-65535 or a service name")
    try:
        return socket.getservbyname(text, protocol)
    except OSError:
        raise ValueError(f"bad endpoint {endpoint!r}: unknown service {text!r} "
                         f"(no {protocol} port of that name in /etc/services)") from None


def numeric_address(host: str, port: int) -> Optional[AnyAddress]:
    """The Address for a numeric host (no resolving), None for a name (or anything else)."""
    try:
        return Address.parse(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    except ValueError:
        return None


def _family_word(family: int) -> str:
    return "IPv4" if family == AF_INET else "IPv6"
