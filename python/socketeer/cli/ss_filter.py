"""The filter expression of ``socketeer ss``: the part of iproute2 ss's language that maps onto
``socketeer.sockets()``.

    state NAME / exclude NAME     ss's state names and groups (ss -h lists them)
    sport = :PORT, dport = :PORT  ("=" may be "==", "eq" or left out; the ":" too)
    src ADDR[:PORT], dst ADDR[:PORT]
                                  numeric: 127.0.0.1, 10.0.0.0/8, [::1]:80, *:80; unix:PATTERN
                                  (or any PATTERN with -x alone) matches unix names as ss does
                                  (fnmatch)

Terms are joined by an optional ``and`` (``&&``, ``&``), all must hold. Ports go to the kernel
(sockets()'s sport/dport); addresses are matched here. Host and service names are refused, never
looked up. Anything else is a :class:`~socketeer.cli.common.CommandError` with status 2 naming
the token.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Optional, Union

from ..address import UnixAddress
from ..constants import TcpState
from .common import CommandError

__all__ = ["SsFilter", "parse_filter", "STATE_BITS", "SS_ALL", "SS_CONN", "SS_LISTENING"]

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Record = object  # a socketeer.SocketRecord; only .family, .local, .remote are read

# ss's state masks: bit n is the kernel's TCP state n (bit 0, "UNKNOWN", included in "all").
SS_ALL = (1 << 12) - 1
STATE_BITS = {"established": TcpState.ESTABLISHED, "syn-sent": TcpState.SYN_SENT,
              "syn-recv": TcpState.SYN_RECV, "syn-rcv": TcpState.SYN_RECV,
              "fin-wait-1": TcpState.FIN_WAIT1, "fin-wait-2": TcpState.FIN_WAIT2,
              "time-wait": TcpState.TIME_WAIT, "unconnected": TcpState.CLOSE, "close": TcpState.CLOSE,
              "closed": TcpState.CLOSE, "close-wait": TcpState.CLOSE_WAIT, "last-ack": TcpState.LAST_ACK,
              "listening": TcpState.LISTEN, "closing": TcpState.CLOSING}
_CLOSE, _LISTEN = 1 << TcpState.CLOSE, 1 << TcpState.LISTEN
SS_CONN = SS_ALL & ~(_LISTEN | _CLOSE | 1 << TcpState.TIME_WAIT | 1 << TcpState.SYN_RECV)
SS_LISTENING = _LISTEN | _CLOSE
_GROUPS = {"all": SS_ALL, "connected": SS_ALL & ~(_CLOSE | _LISTEN),
           "synchronized": SS_ALL & ~(_CLOSE | _LISTEN | 1 << TcpState.SYN_SENT),
           "bucket": 1 << TcpState.SYN_RECV | 1 << TcpState.TIME_WAIT,
           "big": SS_ALL & ~(1 << TcpState.SYN_RECV | 1 << TcpState.TIME_WAIT)}
_EQ = ("=", "==", "eq")
_AND = ("and", "&&", "&")
_FORMS = "state NAME, exclude NAME, sport = :PORT, dport = :PORT, src ADDR[:PORT], dst ADDR[:PORT], joined by 'and'"


@dataclass
class SsFilter:
    """A parsed filter: ``states`` is ss's state mask (None: the command line's -a/-l/default
    decides); ``sports``/``dports`` every port that must match; ``checks`` the address tests."""

    states: Optional[int] = None
    sports: list[int] = field(default_factory=list)
    dports: list[int] = field(default_factory=list)
    checks: list[Callable[[Record], bool]] = field(default_factory=list)
    unix_only: bool = False  # an address test names unix sockets: ss then lists only those

    def matches(self, record: Record) -> bool:
        return all(check(record) for check in self.checks)


def _bad(message: str) -> CommandError:
    return CommandError(f"ss: filter: {message}", 2)


def _state_mask(name: str) -> int:
    key = name.lower()
    if key in _GROUPS:
        return _GROUPS[key]
    if key in STATE_BITS:
        return 1 << STATE_BITS[key]
    raise _bad(f"unknown state {name!r} (expected one of {', '.join([*dict.fromkeys(STATE_BITS), *_GROUPS])})")


def _port(text: str, word: str) -> Optional[int]:
    """':80' or '80' -> 80; '*' or ':*' -> None (any port)."""
    digits = text[1:] if text.startswith(":") else text
    if digits == "*":
        return None
    if not digits.isdigit() or int(digits) > 65535:
        raise _bad(f"{word}: {text!r} is not a port (give :0-65535; service names are not looked up)")
    return int(digits)


def _split_host(text: str, word: str) -> tuple[str, Optional[int]]:
    """'1.2.3.4:80', '[::1]:80', '*:80', '10.0.0.0/8', '::1' -> (host or '*', port or None)."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise _bad(f"{word}: {text!r} is not ADDR[:PORT] (IPv6 goes in brackets: [::1]:80)")
        return host, _port(rest, word) if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host or "*", _port(port, word)
    return text, None  # no port, or an IPv6 address without brackets (then no port either)


def _network(host: str, word: str, text: str) -> Optional[Network]:
    if host == "*":
        return None
    try:
        return ipaddress.ip_network(host, strict=False)
    except ValueError:
        raise _bad(f"{word}: {text!r} is not a numeric address or prefix (names are not looked up)") from None


def _in(network: Network, host: str) -> bool:
    address = ipaddress.ip_address(host.partition("%")[0])
    if address.version != network.version and isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped or address  # ss: a v4-mapped socket matches a v4 prefix
    return address.version == network.version and address in network


def _host_check(word: str, text: str, unix: bool) -> tuple[Callable[[Record], bool], Optional[int], bool]:
    """The test for ``src TEXT`` / ``dst TEXT``, the port it names (for the kernel), and whether it
    names unix sockets."""
    side = "local" if word == "src" else "remote"
    if unix or text.startswith("unix:"):
        pattern = text[5:] if text.startswith("unix:") else text

        def unix_check(record: Record) -> bool:
            address = getattr(record, side)
            return isinstance(address, UnixAddress) and fnmatch.fnmatchcase(unix_name(address, ""), pattern)
        return unix_check, None, True
    host, port = _split_host(text, word)
    network = _network(host, word, text)

    def inet_check(record: Record) -> bool:
        address = getattr(record, side)
        if isinstance(address, UnixAddress):
            return False
        return (network is None or _in(network, address.host)) and (port is None or address.port == port)
    return inet_check, port, False


def unix_name(address: UnixAddress, unnamed: str = "*") -> str:
    """A unix socket's name as ss prints it: the path, '@name' for the abstract namespace (each
    NUL in it an '@' too), ``unnamed`` when it has none."""
    if address.unnamed:
        return unnamed
    if address.abstract:
        return "@" + address.path.replace("\0", "@")
    return address.path


def parse_filter(words: Sequence[str], unix: bool = False) -> SsFilter:
    """Parses ss's filter words (each argument may hold several, split on whitespace, as ss
    does). ``unix``: the listing is unix sockets alone (-x), so ADDR is a unix name pattern."""
    tokens = " ".join(words).split()
    result = SsFilter()
    saw_states = False
    i = 0

    def next_token(word: str, what: str) -> str:
        nonlocal i
        if i >= len(tokens):
            raise _bad(f"{word!r} needs {what}")
        i += 1
        return tokens[i - 1]

    while i < len(tokens):
        word = tokens[i]
        i += 1
        if word in _AND and i > 1 and i < len(tokens):
            continue
        if word in ("state", "exclude", "excl"):
            mask = _state_mask(next_token(word, "a state name"))
            if not saw_states:
                result.states = 0 if word == "state" else SS_ALL
            saw_states = True
            assert result.states is not None
            result.states = result.states | mask if word == "state" else result.states & ~mask
        elif word in ("sport", "dport", "src", "dst"):
            what = "a port (:PORT)" if word.endswith("port") else "an address (ADDR[:PORT])"
            value = next_token(word, what)
            if value in _EQ:
                value = next_token(word, what)
            if word.endswith("port"):
                port = _port(value, word)
                if port is not None:
                    (result.sports if word == "sport" else result.dports).append(port)
                continue
            check, port, names_unix = _host_check(word, value, unix)
            result.checks.append(check)
            result.unix_only = result.unix_only or names_unix
            if port is not None:
                (result.sports if word == "src" else result.dports).append(port)
        else:
            raise _bad(f"unexpected {word!r} (this ss understands {_FORMS})")
    return result
