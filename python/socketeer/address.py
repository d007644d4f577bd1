"""Address value objects: ``InetAddress``, ``Inet6Address``, ``UnixAddress``, ``NetlinkAddress``,
``PacketAddress`` and ``resolve()``.

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

A netlink address is ``netlink:PID``, and ``/GROUPS`` after it (a bit mask, written in hex) when
any multicast group is set. A packet address follows the order of the stdlib's tuple,
``packet:IFACE[/PROTO[/PKTTYPE[/HATYPE[/HWADDR]]]]``, trailing fields that are zero left out::

    >>> str(NetlinkAddress(0, 0x11)), str(PacketAddress("lo", ETH_P_IP))
    ('netlink:0/0x11', 'packet:lo/0x0800')
    >>> Address.parse("packet:lo/0x0800/outgoing/772/00:00:00:00:00:00")
    PacketAddress('lo', protocol=0x0800, pkttype=PACKET_OUTGOING, hatype=772, hwaddr=b'\\x00\\x00\\x00\\x00\\x00\\x00')

The interface is named where it has a name, else written ``#`` and its index (``packet:#0`` is
every interface); PROTO is the ``ETH_P_*`` number (``0x0003`` is ETH_P_ALL), PKTTYPE a name (host,
broadcast, multicast, otherhost, outgoing, loopback, user, kernel) or a number, HATYPE the
``ARPHRD_*`` number, HWADDR hex bytes joined by ``:``.

Sockets of the other families (AF_VSOCK, AF_BLUETOOTH ...) use the standard library's tuple forms
instead; see :class:`socketeer.Socket`.
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
NetlinkAddress = _core.NetlinkAddress
PacketAddress = _core.PacketAddress

#: Any of the Address classes: what ``local_address``, ``peer_address`` and ``Address.parse`` give.
AnyAddress = Union[InetAddress, Inet6Address, UnixAddress, NetlinkAddress, PacketAddress]
__all__ = ["Address", "AnyAddress", "InetAddress", "Inet6Address", "UnixAddress", "NetlinkAddress", "PacketAddress",
           "resolve"]


class Address(abc.ABC):
    """The common type of every address: ``isinstance(a, Address)`` holds for all five kinds.

    Addresses are immutable, hashable and ordered (by family, then host bytes, then port), so
    they work as dict keys and sort predictably.
    """

    __slots__ = ()

    @staticmethod
    def parse(text: str) -> AnyAddress:
        """Parses ``127.0.0.1:80``, ``[::1]:80``, ``[fe80::1%lo]:80``, ``unix:/path``,
        ``unix:@abstract``, ``unix:`` (unnamed), ``netlink:PID[/GROUPS]`` or
        ``packet:IFACE[/PROTO[/PKTTYPE[/HATYPE[/HWADDR]]]]`` (see the module's text rules).
        Hosts must be numeric (use :func:`resolve` for names); an unknown interface name is a
        ValueError naming it. Unix text follows the module's rule: ``unix:@x`` is abstract, ``unix://@x`` the
        path ``@x``, ``unix:///run/x`` the path ``/run/x``; lone surrogates U+DC80..U+DCFF stand
        for the bytes 0x80..0xff (``os.fsencode``). Every malformed input, any other lone
        surrogate included, raises ValueError naming the bad part."""
        return _core.parse_address(text)

    @staticmethod
    def from_tuple(family: int, address: Any) -> AnyAddress:
        """Builds an Address from the standard library's form for ``family``: ``(host, port)``,
        ``(host, port, flowinfo, scope_id)``, a unix path (``str``/``bytes``; a leading NUL
        means abstract), ``(pid, groups)`` for AF_NETLINK, ``(ifname, proto[, pkttype[, hatype[,
        addr]]])`` for AF_PACKET. Host names are resolved; an unknown interface raises OSError
        (ENODEV), as the stdlib's bind does. Any other family has no address form to build: OSError
        ("bad family"), see :class:`socketeer.Socket`."""
        return _core.address_from_tuple(int(family), address)


def _family_getter(family: AddressFamily) -> Callable[[object], AddressFamily]:
    return lambda self: family


for _cls, _family in ((InetAddress, AddressFamily.AF_INET), (Inet6Address, AddressFamily.AF_INET6),
                      (UnixAddress, AddressFamily.AF_UNIX), (NetlinkAddress, AddressFamily.AF_NETLINK),
                      (PacketAddress, AddressFamily.AF_PACKET)):
    Address.register(_cls)
    _cls.family = property(_family_getter(_family), doc="The AddressFamily of this address.")
    _cls.parse = staticmethod(Address.parse)
    _cls.from_tuple = staticmethod(Address.from_tuple)


def _address_html(self: AnyAddress) -> str:
    rows: list[tuple[str, object]] = [("family", self.family.name), ("text", str(self))]
    if isinstance(self, UnixAddress):
        rows += [("path", self.path), ("abstract", self.abstract)]
    elif isinstance(self, NetlinkAddress):
        rows += [("pid", self.pid), ("groups", hex(self.groups))]
    elif isinstance(self, PacketAddress):
        rows += [("interface", self.ifname if self.ifname is not None else f"#{self.ifindex}"),
                 ("protocol", f"0x{self.protocol:04x}"), ("pkttype", _packet_type_name(self.pkttype)),
                 ("hatype", self.hatype), ("hwaddr", self.hwaddr.hex(":") or "-")]
    else:
        rows += [("host", self.host), ("port", self.port)]
    return html_table(type(self).__name__, rows)


def _packet_type_name(pkttype: int) -> str:
    names = ("PACKET_HOST", "PACKET_BROADCAST", "PACKET_MULTICAST", "PACKET_OTHERHOST", "PACKET_OUTGOING",
             "PACKET_LOOPBACK", "PACKET_USER", "PACKET_KERNEL")
    return names[pkttype] if pkttype < len(names) else str(pkttype)


def _address_pretty(self: AnyAddress, printer: Any, cycle: bool) -> None:
    printer.text(repr(self))


for _cls in (InetAddress, Inet6Address, UnixAddress, NetlinkAddress, PacketAddress):
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
