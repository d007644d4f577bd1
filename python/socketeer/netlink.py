"""rtnetlink, typed: the kernel's links, addresses, routes and neighbours as records, the few
changes a test host needs, and a monitor of what changes.

>>> from socketeer import netlink
>>> [link.name for link in netlink.links()]
['lo', 'eth0']
>>> netlink.add_address("veth0", "10.0.0.1/24", netns="test-ns")
>>> for event in netlink.monitor(("address",)): ...

Every function talks to the kernel over its own NETLINK_ROUTE socket, made in the network
namespace ``netns`` (None: the calling thread's; a name under /run/netns as ``ip netns`` makes
them; a path such as /proc/PID/ns/net; or an open fd of one), with the GIL released. The records
are parsed in C++ and arrive finished. Interfaces are named by name or by index (looked up
inside ``netns``). Errors: an unknown interface is OSError(ENODEV) naming the request (the type
``socket.if_nametoindex`` raises); a prefix length out of range is ValueError, checked before
anything is sent; a refusal of the kernel is the matching OSError subclass (FileExistsError,
PermissionError without CAP_NET_ADMIN ...) whose filename names the request and whose strerror
carries the kernel's own explanation (extended ACK) when it sends one:
``[Errno 17] File exists: 'add address 10.0.0.1/24 on veth0'``.
"""

from __future__ import annotations

import ipaddress
import os
import socket as _socket
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Generic, Optional, TypeVar, Union

from . import _core
from ._display import html_grid, html_table
from .netlink_monitor import Monitor, NetlinkEvent

__all__ = [
    "Link", "LinkStats", "InterfaceAddress", "Route", "Neighbour", "NetlinkEvent", "Records", "Monitor",
    "links", "addresses", "routes", "neighbours", "set_link", "add_address", "delete_address", "add_route",
    "add_veth", "delete_link", "monitor",
]

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Netns = Union[None, int, str, "os.PathLike[str]"]
InterfaceRef = Union[int, str]
R = TypeVar("R")

_RT_TABLES = {"main": 254, "local": 255, "default": 253}
_TABLE_NAMES = {number: name for name, number in _RT_TABLES.items()}
_SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
_FAMILY_NAMES: dict[int, str] = {_socket.AF_INET: "inet", _socket.AF_INET6: "inet6"}


class _Record:
    """Shared by the records: the HTML table of one record, and ``_cells`` for a Records table."""

    __slots__ = ()

    def _title(self) -> str:
        return type(self).__name__

    def _cells(self) -> list[tuple[str, object]]:
        return [(field.name, "-" if getattr(self, field.name) is None else getattr(self, field.name))
                for field in fields(self)]  # type: ignore[arg-type]

    def _repr_html_(self) -> str:
        return html_table(self._title(), self._cells())


@dataclass(frozen=True, slots=True)
class LinkStats(_Record):
    """A link's counters (IFLA_STATS64)."""

    rx_packets: int
    rx_bytes: int
    rx_errors: int
    rx_dropped: int
    tx_packets: int
    tx_bytes: int
    tx_errors: int
    tx_dropped: int


@dataclass(frozen=True, slots=True, repr=False)
class Link(_Record):
    """A network interface (RTM_NEWLINK). ``flags`` are the IFF_* bits (``up`` is IFF_UP,
    ``running`` IFF_RUNNING, ``lower_up`` IFF_LOWER_UP: the carrier); ``address`` and
    ``broadcast`` the link-layer addresses ("aa:bb:cc:dd:ee:ff", None if the link has none);
    ``kind`` "veth", "bridge" ... (None for a plain device); ``master`` and ``link`` interface
    indexes (a bridge port's bridge; a veth's peer, possibly in another namespace) or None;
    ``operstate`` as iproute2 names it ("UP", "DOWN", "UNKNOWN" ...); ``type`` ARPHRD_*."""

    index: int
    name: str
    flags: int
    up: bool
    running: bool
    lower_up: bool
    mtu: int
    address: Optional[str]
    broadcast: Optional[str]
    kind: Optional[str]
    master: Optional[int]
    link: Optional[int]
    operstate: str
    txqlen: int
    type: int
    stats: Optional[LinkStats]

    def __repr__(self) -> str:
        parts = [f"{self.index}: {self.name}", "UP" if self.up else "DOWN", f"mtu {self.mtu}",
                 f"state {self.operstate}"]
        parts += [f"kind {self.kind}"] if self.kind else []
        parts += [self.address] if self.address else []
        return f"<Link {' '.join(parts)}>"

    def _title(self) -> str:
        return f"Link {self.index}: {self.name}"


@dataclass(frozen=True, slots=True, repr=False)
class InterfaceAddress(_Record):
    """An address on an interface (RTM_NEWADDR). ``address`` is the interface's own; ``peer``
    the far end of a point-to-point link (None otherwise); ``scope`` RT_SCOPE_* (0 global, 253
    link, 254 host); ``flags`` IFA_F_*; ``label`` the IPv4 label (None for IPv6)."""

    index: int
    family: int
    address: IPAddress
    prefix_len: int
    peer: Optional[IPAddress]
    broadcast: Optional[IPAddress]
    scope: int
    flags: int
    label: Optional[str]

    @property
    def interface(self) -> Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]:
        """The address with its prefix: ``ip_interface("10.0.0.1/24")``."""
        return ipaddress.ip_interface((self.address, self.prefix_len))

    def __repr__(self) -> str:
        scope = _SCOPES.get(self.scope, str(self.scope))
        return (f"<InterfaceAddress {_FAMILY_NAMES.get(self.family, self.family)} {self.address}/{self.prefix_len}"
                f" on {self.label or self.index} scope {scope}>")


@dataclass(frozen=True, slots=True, repr=False)
class Route(_Record):
    """A route (RTM_NEWROUTE). ``destination`` is a network (``ip_network("0.0.0.0/0")`` for
    the default route); ``gateway`` an address or None; ``oif`` the outgoing interface index or
    None; ``table`` the full 32-bit table id (254 main, 255 local); ``protocol`` RTPROT_* (2
    kernel, 3 boot, 4 static); ``scope`` RT_SCOPE_*; ``type`` RTN_* (1 unicast, 2 local ...);
    ``priority`` the metric or None; ``source`` the preferred source address or None."""

    family: int
    destination: IPNetwork
    gateway: Optional[IPAddress]
    oif: Optional[int]
    table: int
    protocol: int
    scope: int
    type: int
    priority: Optional[int]
    source: Optional[IPAddress]

    @property
    def prefix_len(self) -> int:
        """The destination's prefix length (0 for the default route)."""
        return self.destination.prefixlen

    @property
    def default(self) -> bool:
        """Whether this is a default route (destination prefix length 0)."""
        return self.destination.prefixlen == 0

    def __repr__(self) -> str:
        parts = ["default" if self.default else str(self.destination)]
        parts += [f"via {self.gateway}"] if self.gateway else []
        parts += [f"oif {self.oif}"] if self.oif else []
        parts += [f"table {_TABLE_NAMES.get(self.table, self.table)}"]
        parts += [f"metric {self.priority}"] if self.priority is not None else []
        return f"<Route {' '.join(parts)}>"


@dataclass(frozen=True, slots=True, repr=False)
class Neighbour(_Record):
    """An entry of the ARP (IPv4) or NDP (IPv6) cache (RTM_NEWNEIGH). ``lladdr`` is None while
    unresolved; ``state`` as iproute2 names it ("REACHABLE", "STALE", "PERMANENT" ...)."""

    index: int
    family: int
    address: IPAddress
    lladdr: Optional[str]
    state: str
    flags: int

    def __repr__(self) -> str:
        return f"<Neighbour {self.address} lladdr {self.lladdr or '-'} on {self.index} {self.state}>"


class Records(list[R], Generic[R]):
    """The records of one dump: a list that Jupyter shows as a single table."""

    def _repr_html_(self) -> str:
        if not self:
            return html_grid("no records", [], [])
        first = self[0]
        columns = [name for name, _ in first._cells()]  # type: ignore[attr-defined]
        rows = [[value for _, value in record._cells()] for record in self]  # type: ignore[attr-defined]
        return html_grid(f"{len(self)} {type(first).__name__} records", columns, rows)


_core.rtnl_records(link=Link, link_stats=LinkStats, address=InterfaceAddress, route=Route, neighbour=Neighbour,
                   event=NetlinkEvent)


def _netns(netns: Netns) -> Union[None, int, str]:
    if netns is None or isinstance(netns, int):
        return netns
    return os.fspath(netns)


def _family(family: Optional[int]) -> int:
    if family is None:
        return 0
    if family not in (_socket.AF_INET, _socket.AF_INET6):
        raise ValueError(f"family must be AF_INET, AF_INET6 or None, not {family!r}")
    return int(family)


def _table(table: Union[None, int, str]) -> Optional[int]:
    if table is None or isinstance(table, int):
        return table
    if table not in _RT_TABLES:
        raise ValueError(f"table must be a number or one of {', '.join(_RT_TABLES)}, not {table!r}")
    return _RT_TABLES[table]


def _address_and_prefix(value: object, prefix_len: Optional[int], what: str) -> tuple[IPAddress, int]:
    """("10.0.0.1/24" | ip_interface | ip_network | ip_address | "10.0.0.1", prefix_len) -> an
    address and a prefix length, which the core range-checks before sending."""
    if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        address, given = value.ip, value.network.prefixlen
    elif isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        address, given = value.network_address, value.prefixlen
    elif isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        address, given = value, None
    elif isinstance(value, str):
        text, slash, prefix_text = value.partition("/")
        try:
            address = ipaddress.ip_address(text)
            given = int(prefix_text) if slash else None
        except ValueError as error:
            raise ValueError(f"{what}: {value!r} is not an IP address with an optional /prefix length: {error}") from None
    else:
        raise TypeError(f"{what}: an IP address is a str or an ipaddress object, not {type(value).__name__}")
    if given is not None and prefix_len is not None and given != prefix_len:
        raise ValueError(f"{what}: {value!r} says prefix length {given}, prefix_len says {prefix_len}")
    prefix = given if given is not None else prefix_len
    return address, address.max_prefixlen if prefix is None else prefix


# --- reading ----------------------------------------------------------------------------------


def links(*, netns: Netns = None) -> Records[Link]:
    """Every network interface (``ip link show``)."""
    return Records(_core.rtnl_links(_netns(netns)))


def addresses(family: Optional[int] = None, *, interface: Optional[InterfaceRef] = None,
              netns: Netns = None) -> Records[InterfaceAddress]:
    """The interfaces' addresses (``ip addr show``): of one family (AF_INET, AF_INET6) or all,
    on one interface (name or index) or all."""
    return Records(_core.rtnl_addresses(_family(family), interface, _netns(netns)))


def routes(family: Optional[int] = None, *, table: Union[None, int, str] = "main",
           netns: Netns = None) -> Records[Route]:
    """The routes of one table (``ip route show``): the main table by default, as ``ip route``
    shows; a number or "local"/"default"; ``table=None`` for every table (``table all``)."""
    return Records(_core.rtnl_routes(_family(family), _table(table), _netns(netns)))


def neighbours(family: Optional[int] = None, *, netns: Netns = None) -> Records[Neighbour]:
    """The ARP and NDP caches (``ip neigh show``)."""
    return Records(_core.rtnl_neighbours(_family(family), _netns(netns)))


# --- changing (CAP_NET_ADMIN in the namespace) ----------------------------------------------


def set_link(interface: InterfaceRef, *, up: Optional[bool] = None, mtu: Optional[int] = None,
             netns: Netns = None) -> None:
    """Brings an interface up or down and/or sets its MTU (``ip link set``)."""
    _core.rtnl_set_link(interface, up, mtu, _netns(netns))


def add_address(interface: InterfaceRef, address: object, prefix_len: Optional[int] = None, *,
                netns: Netns = None) -> None:
    """Adds an address to an interface (``ip addr add``): ``"10.0.0.1/24"``, an
    ``ip_interface``, or an address and ``prefix_len`` (default: a host prefix, /32 or /128).
    FileExistsError if the interface already has it."""
    ip, prefix = _address_and_prefix(address, prefix_len, f"add address on {interface}")
    _core.rtnl_change_address(True, interface, ip.packed, prefix, _netns(netns))


def delete_address(interface: InterfaceRef, address: object, prefix_len: Optional[int] = None, *,
                   netns: Netns = None) -> None:
    """Removes an address from an interface (``ip addr del``); arguments as add_address."""
    ip, prefix = _address_and_prefix(address, prefix_len, f"delete address on {interface}")
    _core.rtnl_change_address(False, interface, ip.packed, prefix, _netns(netns))


def add_route(destination: object, *, gateway: object = None, interface: Optional[InterfaceRef] = None,
              table: Union[None, int, str] = None, netns: Netns = None) -> None:
    """Adds a route (``ip route add``): ``destination`` "10.1.0.0/16", an ``ip_network`` or
    "default"; through ``gateway`` and/or out of ``interface``; into ``table`` (main if None).
    A route with no gateway has link scope, as iproute2 makes it."""
    gateway_ip = None if gateway is None else ipaddress.ip_address(gateway)  # type: ignore[arg-type]
    if destination == "default":
        destination = "::/0" if gateway_ip is not None and gateway_ip.version == 6 else "0.0.0.0/0"
    ip, prefix = _address_and_prefix(destination, None, "add route")
    _core.rtnl_add_route(ip.packed, prefix, None if gateway_ip is None else gateway_ip.packed, interface,
                         _table(table), _netns(netns))


def add_veth(name: str, peer: str, *, peer_netns: Netns = None, netns: Netns = None) -> None:
    """Creates a veth pair ``name`` <-> ``peer`` (``ip link add NAME type veth peer name
    PEER``) in ``netns``, the peer made straight inside ``peer_netns`` when given."""
    _core.rtnl_add_veth(name, peer, _netns(peer_netns), _netns(netns))


def delete_link(interface: InterfaceRef, *, netns: Netns = None) -> None:
    """Deletes an interface (``ip link del``); a veth's peer goes with it."""
    _core.rtnl_delete_link(interface, _netns(netns))


def monitor(groups: Sequence[str] = ("link", "address", "route"), *, netns: Netns = None) -> Monitor:
    """Events as the kernel sends them to its multicast ``groups`` ("link", "address", "route",
    "neighbour"): a context manager, an iterator and an async iterator of NetlinkEvent. Opened
    (subscribed) when this returns, so changes made afterwards are seen."""
    return Monitor(_core.RtnlMonitor(list(groups), _netns(netns)))
