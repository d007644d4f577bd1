"""socketeer.testing: pytest fixtures for network integration tests (see ``plugin``), and the
helpers behind them, usable without pytest's fixtures too.

Importing this package does not import the extension: ``TestServer``, ``CLOSE`` and ``RESET``
(which need it) are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .fds import describe_fd, describe_leaks, leaked_fds, open_fds
from .sockets import SocketWatch, describe_socket, parse_states
from .netns import NetNamespace, NetnsPair, NetnsUnavailable, netns_unavailable_reason

__all__ = ["TestServer", "CLOSE", "RESET", "NetNamespace", "NetnsPair", "NetnsUnavailable",
           "netns_unavailable_reason", "open_fds", "leaked_fds", "describe_fd", "describe_leaks", "SocketWatch",
           "describe_socket", "parse_states"]


if TYPE_CHECKING:
    from .servers import CLOSE, RESET, TestServer, expand_endpoint
else:  # to a type checker, a module __getattr__ makes every unknown name Any
    def __getattr__(name: str) -> Any:
        if name in ("TestServer", "CLOSE", "RESET", "expand_endpoint"):
            from . import servers
            return getattr(servers, name)
        raise AttributeError(f"module 'socketeer.testing' has no attribute {name!r}")
