"""Address value objects: ``InetAddress``, ``Inet6Address``, ``UnixAddress`` and ``resolve()``.

Parsing, formatting, ordering and hashing are done in C++ over the kernel's own sockaddr
structures. ``Address.parse(text)`` and ``str(address)`` round-trip::

    >>> Address.parse("[::1]:8080")
    Inet6Address('::1', 8080)
    >>> str(Address.parse("unix:@name"))
    'unix:@name'

The text of a unix address is ``unix:`` and then: nothing (an unnamed socket), ``@`` and an
abstract name, or a path. A path that begins with ``@`` or ``//`` is written after ``//``, and
``//`` before a path is dropped when reading (``unix:///run/app.sock`` is ``/run/app.sock``, the
URL habit)::

    >>> str(UnixAddress("@not-abstract")), str(UnixAddress("//srv/x"))
    ('unix://@not-abstract', 'unix:////srv/x')

Nothing else is escaped. Names are the kernel's bytes, shown as ``os.fsdecode`` shows them: an
abstract name keeps its NUL bytes, and bytes that are not UTF-8 appear as lone surrogates
(``'\\udcff'``), which ``Address.parse`` turns back into the same bytes. So ``str()`` of every
UnixAddress parses back to an equal one.

Sockets of families without an Address class (AF_NETLINK, AF_PACKET and any other) use the
standard library's tuple forms instead; see :class:`socketeer.Socket`.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Union

from . import _core
from ._display import html_table
from .constants import AddressFamily, SocketKind

InetAddress = _core.InetAddress
Inet6Address = _core.Inet6Address
UnixAddress = _core.UnixAddress

AnyAddress = Union[InetAddress, Inet6Address, UnixAddress]
# The stdlib tuple of a family without an Address class ((pid, groups) for AF_NETLINK ...).
_OtherFamilyAddress = Any

__all__ = ["Address", "AnyAddress", "InetAddress", "Inet6Address", "UnixAddress", "resolve"]


class Address(abc.ABC):
    """The common type of every address: ``isinstance(a, Address)`` holds for all three kinds.

    Addresses are immutable, hashable and ordered (by family, then host bytes, then port), so
    they work as dict keys and sort predictably.
    """

    __slots__ = ()

    @staticmethod
    def parse(text: str) -> AnyAddress:
        """Parses ``127.0.0.1:80``, ``[::1]:80``, ``[fe80::1%lo]:80``, ``unix:/path``,
        ``unix:@abstract`` or ``unix:`` (unnamed). Hosts must be numeric (use :func:`resolve` for
        names). Unix text follows the module's rule: ``unix:@x`` is abstract, ``unix://@x`` the
        path ``@x``, ``unix:///run/x`` the path ``/run/x``; lone surrogates U+DC80..U+DCFF stand
        for the bytes 0x80..0xff (``os.fsencode``). Every malformed input, any other lone
        surrogate included, raises ValueError naming the bad part."""
        return _core.parse_address(text)

    @staticmethod
    def from_tuple(family: int, address: Any) -> Union[AnyAddress, _OtherFamilyAddress]:
        """Builds an Address from the standard library's form for ``family``: ``(host, port)``,
        ``(host, port, flowinfo, scope_id)``, or a unix path (``str``/``bytes``; a leading NUL
        means abstract). Host names are resolved. For a family without an Address class the
        stdlib tuple is checked and returned as it is, as :attr:`Socket.local_address
        <socketeer.Socket>` returns it (see :class:`socketeer.Socket`)."""
        return _core.address_from_tuple(int(family), address)


def _family_getter(family: AddressFamily) -> Callable[[object], AddressFamily]:
    return lambda self: family


for _cls, _family in ((InetAddress, AddressFamily.AF_INET), (Inet6Address, AddressFamily.AF_INET6),
                      (UnixAddress, AddressFamily.AF_UNIX)):
    Address.register(_cls)
    _cls.family = property(_family_getter(_family), doc="The AddressFamily of this address.")
    _cls.parse = staticmethod(Address.parse)
    _cls.from_tuple = staticmethod(Address.from_tuple)


def _address_html(self: AnyAddress) -> str:
    rows: list[tuple[str, object]] = [("family", self.family.name), ("text", str(self))]
    if isinstance(self, UnixAddress):
        rows += [("path", self.path), ("abstract", self.abstract)]
    else:
        rows += [("host", self.host), ("port", self.port)]
    return html_table(type(self).__name__, rows)


def _address_pretty(self: AnyAddress, printer: Any, cycle: bool) -> None:
    printer.text(repr(self))


for _cls in (InetAddress, Inet6Address, UnixAddress):
    _cls._repr_html_ = _address_html
    _cls._repr_pretty_ = _address_pretty
del _cls, _family


def resolve(host: str, port: int | str | None = None, family: int = 0, type: int = SocketKind.SOCK_STREAM,
            proto: int = 0, flags: int = 0) -> list[Union[InetAddress, Inet6Address]]:
    """Resolves ``host`` with getaddrinfo (the GIL is released while it works) and returns the
    distinct addresses in the resolver's order. Failures raise ``socket.gaierror`` naming the host.

    >>> from socketeer import AF_INET
    >>> resolve("localhost", 80, family=AF_INET)
    [InetAddress('127.0.0.1', 80)]
    """
    service = "" if port is None else str(port)
    seen: dict[Any, None] = {}
    for _family, _type, _proto, _canonical, address in _core.resolve(
            host or "", service, int(family), int(type), int(proto), int(flags)):
        seen.setdefault(address, None)
    return list(seen)
