"""socketeer: every Berkeley socket for Python, with a C++ core.

Re-exports only; see the submodules for the code. The re-exports are loaded on first use
(PEP 562), so importing a pure-Python part such as ``socketeer.testing.plugin`` (loaded by
pytest in every project that has socketeer installed) never loads the C++ extension, and a
broken build cannot break someone else's pytest start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import constants as _constants
from .constants import *  # noqa: F401,F403  (AF_*, SOCK_*, SOL_*, SO_*, IPPROTO_*, TCP_*, MSG_* ...)
from .constants import AddressFamily, SocketKind, TcpState

__version__ = "0.1.0"

# Where each lazily loaded name lives. __all__ below lists the same names as a literal, so type
# checkers (which do not run this table) see the re-exports; tests/test_package_exports.py
# keeps the two equal.
_EXPORTS = {
    ".address": ("Address", "AnyAddress", "InetAddress", "Inet6Address", "UnixAddress", "NetlinkAddress",
                 "PacketAddress", "resolve"),
    ".socket": ("Socket", "PeerCredentials", "TcpInfo", "socketpair", "fromfd"),
    ".endpoints": ("Endpoint", "parse_endpoint"),
    ".streams": ("connect", "listen", "bind", "Stream", "Listener", "Datagram", "IncompleteReadError"),
    ".framing": ("MessageTooLarge",),
    ".server": ("Server", "Connection"),
    ".faults": ("FaultProxy",),
    ".diag": ("sockets", "SocketRecord", "SocketList", "SocketProcess"),
    ".poller": ("Poller", "Timer", "EVENT_READ", "EVENT_WRITE", "EVENT_PRIORITY", "EVENT_READ_CLOSED"),
}
_SUBMODULES = ("framing", "aio", "selectors", "testing", "netlink")
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "Address", "AnyAddress", "InetAddress", "Inet6Address", "UnixAddress", "NetlinkAddress", "PacketAddress",
    "resolve",
    "Socket", "PeerCredentials", "TcpInfo", "socketpair", "fromfd",
    "Endpoint", "parse_endpoint",
    "connect", "listen", "bind", "Stream", "Listener", "Datagram", "IncompleteReadError",
    "MessageTooLarge",
    "Server", "Connection",
    "FaultProxy",
    "sockets", "SocketRecord", "SocketList", "SocketProcess",
    "Poller", "Timer", "EVENT_READ", "EVENT_WRITE", "EVENT_PRIORITY", "EVENT_READ_CLOSED",
    "AddressFamily", "SocketKind", "TcpState", "framing", "aio",
]
__all__ += _constants.__all__


if not TYPE_CHECKING:  # to a type checker, a module __getattr__ makes every unknown name Any
    def __getattr__(name: str) -> Any:
        if name in _SUBMODULES:
            value = importlib.import_module(f".{name}", __name__)
        elif name in _WHERE:
            value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        else:
            raise AttributeError(f"module 'socketeer' has no attribute {name!r}")
        globals()[name] = value  # later lookups are plain attribute reads
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    # mypy does not follow a second `__all__ += module.__all__` (constants' own, for these names)
    from . import kernel_constants as _kernel_constants
    from .kernel_constants import *  # noqa: F401,F403
    __all__ += _kernel_constants.__all__
    from . import aio, framing, netlink, selectors, testing
    from .address import (Address, AnyAddress, Inet6Address, InetAddress, NetlinkAddress, PacketAddress, UnixAddress,
                          resolve)
    from .diag import SocketList, SocketProcess, SocketRecord, sockets
    from .endpoints import Endpoint, parse_endpoint
    from .faults import FaultProxy
    from .framing import MessageTooLarge
    from .poller import EVENT_PRIORITY, EVENT_READ, EVENT_READ_CLOSED, EVENT_WRITE, Poller, Timer
    from .server import Connection, Server
    from .socket import PeerCredentials, Socket, TcpInfo, fromfd, socketpair
    from .streams import Datagram, IncompleteReadError, Listener, Stream, bind, connect, listen
