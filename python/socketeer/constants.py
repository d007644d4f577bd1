"""Constants and enums, equal to (and where possible the very objects of) the standard library's.

``AddressFamily`` and ``SocketKind`` *are* ``socket.AddressFamily`` and ``socket.SocketKind``, so
values compare, hash and print exactly as the stdlib's do. Values the enums do not know (a new
kernel family, say) pass through as plain ints instead of raising.
"""

from __future__ import annotations

import enum
import socket as _stdlib

AddressFamily = _stdlib.AddressFamily
SocketKind = _stdlib.SocketKind

_PREFIXES = ("AF_", "SOCK_", "SOL_", "SO_", "SCM_", "IPPROTO_", "IP_", "IPV6_", "TCP_", "MSG_",
             "SHUT_", "AI_", "NI_", "EAI_", "INADDR_", "SOMAXCONN")

__all__ = ["AddressFamily", "SocketKind", "TcpState", "to_family", "to_kind"]

for _name in dir(_stdlib):
    if _name.startswith(_PREFIXES) and isinstance(getattr(_stdlib, _name), int):
        globals()[_name] = getattr(_stdlib, _name)
        __all__.append(_name)
del _name


class TcpState(enum.IntEnum):
    """The kernel's TCP states (``tcp_info().state``)."""

    ESTABLISHED = 1
    SYN_SENT = 2
    SYN_RECV = 3
    FIN_WAIT1 = 4
    FIN_WAIT2 = 5
    TIME_WAIT = 6
    CLOSE = 7
    CLOSE_WAIT = 8
    LAST_ACK = 9
    LISTEN = 10
    CLOSING = 11
    NEW_SYN_RECV = 12


def _enum_or_int(enum_type: type[enum.IntEnum], value: int) -> int:
    try:
        return enum_type(value)
    except ValueError:
        return value


def to_family(value: int) -> AddressFamily | int:
    """``AddressFamily(value)``, or the plain int when the enum does not know it."""
    return _enum_or_int(AddressFamily, value)


def to_kind(value: int) -> SocketKind | int:
    """``SocketKind(value)``, or the plain int when the enum does not know it."""
    return _enum_or_int(SocketKind, value)
