"""``socketeer ss``: the kernel's list of sockets, printed as iproute2's ``ss`` prints it.

The listing is one ``socketeer.sockets()`` call (sock_diag, filtered in the kernel where it can);
this module chooses what to ask for the way ss chooses it (which socket tables, which states, by
ss's own defaults) and lays the rows out with ss's column rules, so the two programs' outputs
can be compared field by field. Names are never resolved: every address and port is numeric.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from ..address import Inet6Address, InetAddress, UnixAddress
from ..constants import AF_INET, AF_INET6, AF_UNIX, SOCK_DGRAM, TcpState
from ..diag import SocketRecord, sockets
from .common import CommandError, errno_text
from .ss_filter import SS_ALL, SS_CONN, SS_LISTENING, SsFilter, parse_filter, unix_name
from .ss_tcpinfo import tcp_info_text

__all__ = ["add_parser", "run", "Selection", "select", "render"]

# ss's socket tables ("dbs"): the ones this command can list, and the others ss would also
# name (they decide whether ss shows the Netid column, nothing more).
_INET_DBS = frozenset({"tcp", "udp", "raw", "mptcp", "dccp", "sctp"})
_UNIX_DBS = frozenset({"u_str", "u_dgr", "u_seq"})
_ALL_DBS = _INET_DBS | _UNIX_DBS | {"p_raw", "p_dgr", "nl", "v_str", "v_dgr", "tipc", "xdp"}
# The states ss adds when a table is named by -t, -u or -w.
_DB_STATES = {"tcp": SS_CONN, "udp": 1 << TcpState.ESTABLISHED, "raw": 1 << TcpState.ESTABLISHED}
_UNIX_KINDS = {"u_str": "unix_stream", "u_dgr": "unix_dgram", "u_seq": "unix_seqpacket"}
_STATE_NAMES = {TcpState.ESTABLISHED: "ESTAB", TcpState.SYN_SENT: "SYN-SENT", TcpState.SYN_RECV: "SYN-RECV",
                TcpState.FIN_WAIT1: "FIN-WAIT-1", TcpState.FIN_WAIT2: "FIN-WAIT-2",
                TcpState.TIME_WAIT: "TIME-WAIT", TcpState.CLOSE: "UNCONN", TcpState.CLOSE_WAIT: "CLOSE-WAIT",
                TcpState.LAST_ACK: "LAST-ACK", TcpState.LISTEN: "LISTEN", TcpState.CLOSING: "CLOSING"}
# ss prints the tables in this order: unix, raw, udp, tcp; IPv4 before IPv6 in each.
_ORDER = {"u_str": 0, "u_dgr": 0, "u_seq": 0, "raw": 1, "udp": 2, "tcp": 3}


@dataclass(frozen=True)
class Selection:
    """What ss would list for these options: its tables, families and state mask."""

    dbs: frozenset[str]
    families: frozenset[int]
    states: int

    explicit: bool = True  # the kinds were named (-t -u -w -x), not implied by -4/-6 or defaults

    @property
    def kinds(self) -> Optional[list[str]]:
        """The ``kind`` for sockets(): None when no kind was named, so that a kind the kernel has
        no sock_diag module for (often raw) is left out quietly, as ss leaves it empty."""
        if not self.explicit:
            return None
        wanted: list[str] = [db for db in ("tcp", "udp", "raw") if db in self.dbs and self.families & {AF_INET, AF_INET6}]
        if AF_UNIX in self.families:
            wanted += [_UNIX_KINDS[db] for db in ("u_str", "u_dgr", "u_seq") if db in self.dbs]
        return wanted


def select(args: argparse.Namespace, states: Optional[int], unix_only: bool = False) -> Selection:
    """ss's choice of tables, families and states (its filter_db_set / filter_af_set /
    filter_merge_defaults), from -t -u -w -x -4 -6 -a -l and a filter's ``state`` words."""
    dbs: set[str] = set()
    families: set[int] = set()
    mask = 0
    for flag, db in (("tcp", "tcp"), ("udp", "udp"), ("raw", "raw")):
        if getattr(args, flag):
            dbs.add(db)
            mask |= _DB_STATES[db]
    for flag, family in (("unix", AF_UNIX), ("ipv4", AF_INET), ("ipv6", AF_INET6)):
        if getattr(args, flag):
            families.add(family)
            mask |= SS_CONN
    chosen = states if states is not None else SS_ALL if args.all else SS_LISTENING if args.listening else None
    if not dbs and not families:  # ss's default: every table, the connected sockets
        return Selection(_ALL_DBS, frozenset({AF_INET, AF_INET6, AF_UNIX}) if not unix_only else frozenset({AF_UNIX}),
                         SS_CONN if chosen is None else chosen, explicit=False)
    if unix_only:  # an address filter naming unix sockets (as ss's parse_hostcond does)
        families = {AF_UNIX}
    if dbs & _INET_DBS and not families & {AF_INET, AF_INET6}:
        families |= {AF_INET, AF_INET6}
    if families & {AF_INET, AF_INET6} and not dbs & _INET_DBS:
        dbs |= _INET_DBS
    if AF_UNIX in families:
        dbs |= _UNIX_DBS
    named = args.tcp or args.udp or args.raw or args.unix
    return Selection(frozenset(dbs), frozenset(families), mask if chosen is None else chosen, explicit=named)


# --- the table ---------------------------------------------------------------------------------

# ss's columns: header, left delimiter, right-aligned? The last two are ss's "Process" column
# (users, tcp info) and an always-empty one.
_COLUMNS = (("Netid", "", False), ("State", " ", False), ("Recv-Q", " ", False), ("Send-Q", " ", False),
            ("Local Address:", " ", True), ("Port", "", False), ("Peer Address:", " ", True), ("Port", "", False),
            ("Process", "", False), ("", "", False))


def _state_name(state: object) -> str:
    return _STATE_NAMES.get(state, "UNKNOWN") if isinstance(state, TcpState) else "UNKNOWN"


def _inet_host(address: Any, v6only: bool) -> str:
    if address.family == AF_INET:
        return str(address.host)
    host = address.host.partition("%")[0]
    if host == "::" and not v6only:
        return "*"  # ss: the IPv6 wildcard of a socket that takes IPv4 too
    return f"[{host}]"


def _v6only(local: Any) -> bool:
    """Whether an IPv6 socket takes IPv6 only, as far as its address tells: the kernel sets it
    for a socket bound to a specific, not v4-mapped, IPv6 address. (A wildcard socket with
    IPV6_V6ONLY set is not seen: sock_diag's flag for it is not in the record.)"""
    return local.family == AF_INET6 and local.host != "::" and not local.host.startswith("::ffff:")


def _users(record: SocketRecord) -> str:
    # ss lists the holders newest pid first (its hash chains prepend)
    holders = sorted(record.processes or (), key=lambda p: (p.pid, p.fd), reverse=True)
    if not holders:
        return ""
    return " users:(" + ",".join(f'("{p.name}",pid={p.pid},fd={p.fd})' for p in holders) + ")"


def _row(record: SocketRecord, info: bool, numeric: bool) -> list[str]:
    state = record.state
    fields = [record.netid, _state_name(state), f"{record.recv_queue:<6d}", f"{record.send_queue:<6d}"]
    local, remote = record.local, record.remote
    if isinstance(local, UnixAddress):
        fields += [unix_name(local) + " ", str(record.inode), "* ", str(record.peer_inode or 0)]
    else:
        v6only = _v6only(local)
        for address in (local, remote):
            port = getattr(address, "port", 0)  # an inet socket's addresses are inet addresses
            fields += [_inet_host(address, v6only) + ":", str(port) if port else "*"]
    extra = _users(record)
    if info and record.family != AF_UNIX and record.kind != SOCK_DGRAM:
        extra += "\n\t" + tcp_info_text(record.tcp_info, state, numeric)
    return [*fields, extra, ""]


def render(rows: Sequence[Sequence[str]], shown: Sequence[bool]) -> str:
    """ss's layout (its render() for output that is not a terminal): each column as wide as its
    longest field plus its delimiter, the address columns right-aligned. ``shown`` says which
    of the ten columns are on; each row holds all ten."""
    columns = [i for i in range(len(_COLUMNS)) if shown[i]]
    longest = [0] * len(_COLUMNS)
    for n, row in enumerate(rows):
        for i in columns:
            if i == len(_COLUMNS) - 2 and n == len(rows) - 1:
                continue  # ss never measures the last row's Process field
            longest[i] = max(longest[i], len(row[i]))
    widths = [0] * len(_COLUMNS)
    first = True
    for i in columns:
        widths[i] = longest[i] + len(_COLUMNS[i][1]) if not first and longest[i] else longest[i]
        first = first and not widths[i]
    lines = []
    for row in rows:
        parts: list[str] = []
        for n, i in enumerate(columns):
            _, delimiter, right = _COLUMNS[i]
            text = delimiter if n else ""
            pad = max(widths[i] - len(text) - len(row[i]), 0)
            text += " " * pad + row[i] if right else row[i] + " " * pad
            parts.append(text)
        lines.append("".join(parts))
    return "".join(line + "\n" for line in lines)


# --- the command -------------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    """Registers ``socketeer ss`` on the subcommand parsers."""
    ss = commands.add_parser(
        "ss", help="list sockets as iproute2's ss does (sock_diag)",
        description="List the kernel's sockets (socketeer.sockets(), sock_diag), printed as iproute2's ss "
                    "prints them. Without -t/-u/-w/-x: every kind; without -a/-l: the connected sockets. "
                    "Addresses and ports are always numeric: no name is ever looked up.",
        epilog="FILTER: state NAME, exclude NAME (ss's names: established, syn-sent, syn-recv, fin-wait-1, "
               "fin-wait-2, time-wait, closed, close-wait, last-ack, listening, closing; groups all, connected, "
               "synchronized, bucket, big), sport = :PORT, dport = :PORT, src ADDR[:PORT], dst ADDR[:PORT] "
               "(numeric; unix:PATTERN for unix names), joined by an optional 'and'.")
    for short, long, dest, text in (
            ("-t", "--tcp", "tcp", "TCP sockets"), ("-u", "--udp", "udp", "UDP sockets"),
            ("-w", "--raw", "raw", "raw sockets"), ("-x", "--unix", "unix", "unix sockets"),
            ("-l", "--listening", "listening", "listening (and unconnected) sockets only"),
            ("-a", "--all", "all", "sockets in every state"),
            ("-p", "--processes", "processes", "the processes holding each socket (from /proc)"),
            ("-i", "--info", "info", "a second line of TCP information (what TcpInfo has)"),
            ("-n", "--numeric", "numeric", "accepted for ss's sake (names are never resolved anyway); with "
                                            "-i, rates as whole bits per second, as ss -n writes them"),
            ("-4", "--ipv4", "ipv4", "IPv4 sockets"), ("-6", "--ipv6", "ipv6", "IPv6 sockets"),
            ("-H", "--no-header", "no_header", "leave out the header line")):
        ss.add_argument(short, long, dest=dest, action="store_true", help=text)
    ss.add_argument("-N", "--net", metavar="NAME", help="list the sockets of network namespace NAME (/run/netns)")
    ss.add_argument("filter", nargs="*", metavar="FILTER", help="a filter expression (see below)")


def list_records(selection: Selection, found: SsFilter, args: argparse.Namespace) -> list[SocketRecord]:
    """The records ss would print, in ss's order."""
    states = [TcpState(bit) for bit in range(1, 12) if selection.states >> bit & 1]
    try:
        records: Iterable[SocketRecord] = sockets(
            selection.kinds, family=sorted(selection.families), state=states,
            sport=found.sports[0] if found.sports else None, dport=found.dports[0] if found.dports else None,
            tcp_info=args.info, processes=args.processes, netns=args.net)
    except OSError as error:
        what = error.filename or ("network namespace " + repr(args.net) if args.net else "sock_diag")
        raise CommandError(f"ss: {what}: {errno_text(error)}") from None
    kept = [r for r in records if r.netid in selection.dbs and _ports_match(r, found) and found.matches(r)]
    kept.sort(key=lambda r: (_ORDER.get(r.netid, 4), r.family != AF_INET))
    return kept


def _ports_match(record: SocketRecord, found: SsFilter) -> bool:
    local, remote = record.local, record.remote
    if not isinstance(local, (InetAddress, Inet6Address)) or not isinstance(remote, (InetAddress, Inet6Address)):
        return not (found.sports or found.dports)
    return all(local.port == p for p in found.sports) and all(remote.port == p for p in found.dports)


def run(args: argparse.Namespace) -> int:
    unix_alone = args.unix and not (args.tcp or args.udp or args.raw or args.ipv4 or args.ipv6)
    found = parse_filter(args.filter, unix=unix_alone)
    selection = select(args, found.states, found.unix_only)
    if not selection.states:
        print("socketeer: ss: no socket states to show with such filter", file=sys.stderr)
        return 0
    records = list_records(selection, found, args)
    shown = [len(selection.dbs) > 1, bin(selection.states).count("1") > 1, *[True] * 8]
    rows = [] if args.no_header else [[header for header, _, _ in _COLUMNS]]
    rows += [_row(r, args.info, args.numeric) for r in records]
    out = sys.stdout
    out.flush()
    out.buffer.write(render(rows, shown).encode("utf-8", "surrogateescape"))
    out.buffer.flush()
    return 0
