"""socketeer: every Berkeley socket for Python, with a C++ core.

Re-exports only; see the submodules for the code.
"""

from .address import Address, AnyAddress, Inet6Address, InetAddress, UnixAddress, resolve
from .constants import *  # noqa: F401,F403  (AF_*, SOCK_*, SOL_*, SO_*, IPPROTO_*, TCP_*, MSG_* ...)
from .constants import AddressFamily, SocketKind, TcpState
from .socket import PeerCredentials, Socket, TcpInfo, fromfd, socketpair
from .endpoints import Endpoint, parse_endpoint
from .streams import Datagram, IncompleteReadError, Listener, Stream, bind, connect, listen
from .framing import MessageTooLarge
from .server import Connection, Server
from .faults import FaultProxy
from . import framing
from . import aio
from .poller import EVENT_PRIORITY, EVENT_READ, EVENT_READ_CLOSED, EVENT_WRITE, Poller, Timer

from . import constants as _constants

__version__ = "0.1.0"

__all__ = [
    "Address", "AnyAddress", "InetAddress", "Inet6Address", "UnixAddress", "resolve",
    "AddressFamily", "SocketKind", "TcpState",
    "Socket", "PeerCredentials", "TcpInfo", "socketpair", "fromfd",
    "Endpoint", "parse_endpoint", "connect", "listen", "bind", "Stream", "Listener", "Datagram",
    "IncompleteReadError", "MessageTooLarge", "framing",
    "Server", "Connection", "FaultProxy",
    "Poller", "Timer", "EVENT_READ", "EVENT_WRITE", "EVENT_PRIORITY", "EVENT_READ_CLOSED",
    *_constants.__all__,
]
