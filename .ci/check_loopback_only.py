#!/usr/bin/env python3
"""Lists every destination a traced run sent to, or tried to, that is not on this host.

Record the trace with (``-y`` and the namespace/clone calls let this script tell which task was
inside a network namespace the tests made)::

    strace -f --seccomp-bpf -y -o /tmp/trace \\
        -e trace=connect,sendto,sendmsg,sendmmsg,unshare,setns,clone,clone3,fork,vfork \\
        pytest ...
    python3 .ci/check_loopback_only.py /tmp/trace

Allowed: 127.0.0.0/8, ::1 (and ::ffff:127.x), AF_UNIX (except a resolver daemon's socket that
accepted the connection: nscd or systemd-resolved would send the query on), AF_NETLINK,
AF_UNSPEC (a disconnect), AF_PACKET on "lo", and anything at all sent by a task that was inside
another network namespace than this script's own (the host's): a namespace the tests made with
unshare(CLONE_NEWNET) or ``ip netns add`` has no route off the machine. A task's namespace is
followed through the trace: it changes with unshare(CLONE_NEWNET), setns() and
clone(CLONE_NEWNET), and a new task starts in its parent's. Without the namespace calls in the
trace every task counts as the host's (stricter, never laxer).

Every attempt is listed, whatever its result: a connect() that failed with ENETUNREACH sent
nothing here, but would on a machine with a route. Exit status 1 if anything is listed.
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Iterator, Optional

SENDS = ("connect", "sendto", "sendmsg", "sendmmsg")
CLONES = ("clone", "clone3", "fork", "vfork")
CLONE_NEWNET = "CLONE_NEWNET"
RESOLVER_SOCKETS = ("/var/run/nscd/socket", "/run/nscd/socket", "/run/systemd/resolve/io.systemd.Resolve")
HOST = "host"

LINE = re.compile(r"^(?P<tid>\d+)\s+(?P<rest>.*)$")
CALL = re.compile(r"^(?P<name>\w+)\((?P<args>.*)$")
RESUMED = re.compile(r"^<\.\.\. (?P<name>\w+) resumed>(?P<args>.*)$")
RESULT = re.compile(r"\)\s+=\s+(?P<result>-?\d+|\?)(?P<error>\s+E\w+)?[^=]*$")
UNFINISHED = " <unfinished ...>"
NETNS_FD = re.compile(r"^\s*\d+<(?P<target>[^>]*)>")


@dataclass
class Task:
    """One life of a thread id (ids are reused once a task has exited)."""
    tid: int
    parent: Optional["Task"] = None
    cloned_at: int = 0
    netns: list[tuple[int, str]] = field(default_factory=list)  # (line, namespace) changes

    def namespace_at(self, line: int) -> str:
        for position, namespace in reversed(self.netns):
            if position <= line:
                return namespace
        return self.parent.namespace_at(self.cloned_at) if self.parent else HOST


@dataclass
class Send:
    task: Task
    line: int
    call: str
    args: str
    result: str = "?"


def sockaddrs(text: str) -> Iterator[str]:
    """Each ``{sa_family=...}`` struct in a strace argument list, skipping quoted data."""
    i = 0
    while i < len(text):
        if text[i] == '"':
            i = _string_end(text, i)
        elif text.startswith("{sa_family=", i):
            end = _struct_end(text, i)
            yield text[i:end]
            i = end
        else:
            i += 1


def _string_end(text: str, i: int) -> int:
    """The index just past the quoted string that starts at text[i]."""
    i += 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _struct_end(text: str, i: int) -> int:
    """The index just past the braced struct that starts at text[i] (quoted braces skipped)."""
    depth = 0
    while i < len(text):
        if text[i] == '"':
            i = _string_end(text, i)
            continue
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
        if depth == 0:
            return i
    return i


def off_host(sockaddr: str, connected: bool) -> Optional[str]:
    """What is not on this host about one sockaddr, or None if it is local."""
    family = re.match(r"\{sa_family=(\w+)", sockaddr).group(1)
    if family in ("AF_NETLINK", "AF_UNSPEC"):
        return None
    if family == "AF_UNIX":
        path = re.search(r'sun_path=@?"((?:[^"\\]|\\.)*)"', sockaddr)
        if connected and path and path.group(1) in RESOLVER_SOCKETS:
            return f"AF_UNIX {path.group(1)} (a resolver daemon: it sends the query on, from the host)"
        return None
    if family == "AF_INET":
        host = re.search(r'inet_addr\("([^"]*)"\)', sockaddr)
        port = re.search(r"sin_port=htons\((\d+)\)", sockaddr)
        if host and ipaddress.ip_address(host.group(1)).is_loopback:
            return None
        return f"{host.group(1) if host else '?'}:{port.group(1) if port else '?'}"
    if family == "AF_INET6":
        host = re.search(r'inet_pton\(AF_INET6, "([^"]*)"', sockaddr)
        port = re.search(r"sin6_port=htons\((\d+)\)", sockaddr)
        if host:
            address = ipaddress.ip_address(host.group(1))
            mapped = address.ipv4_mapped
            if address.is_loopback or (mapped is not None and mapped.is_loopback):
                return None
        return f"[{host.group(1) if host else '?'}]:{port.group(1) if port else '?'}"
    if family == "AF_PACKET" and re.search(r'sll_ifindex=if_nametoindex\("lo"\)', sockaddr):
        return None
    return sockaddr


def namespace_of(args: str, host_netns: str) -> Optional[str]:
    """The namespace a successful setns(fd<target>, ...) entered, if it was a network one."""
    if CLONE_NEWNET not in args and not re.search(r",\s*0\s*$", args.split(")")[0]):
        return None
    target = NETNS_FD.match(args)
    if target is None:
        return "unknown namespace"  # traced without -y: assume a test namespace was entered
    name = target.group("target")
    if name == host_netns:
        return HOST
    if name.startswith("net:[") or name.startswith("/run/netns/") or name.startswith("/var/run/netns/"):
        return name
    return None  # another kind of namespace


class Trace:
    def __init__(self, host_netns: str):
        self.host_netns = host_netns
        self.live: dict[int, Task] = {}
        self.orphans: dict[int, Task] = {}  # tasks seen before their parent's clone() returned
        self.pending: dict[int, tuple[str, str, int]] = {}  # tid -> (call, args so far, line)
        self.sends: list[Send] = []

    def task(self, tid: int) -> Task:
        if tid not in self.live:
            self.live[tid] = self.orphans[tid] = Task(tid)
        return self.live[tid]

    def feed(self, number: int, text: str) -> None:
        match = LINE.match(text)
        if match is None:
            return
        tid, rest = int(match.group("tid")), match.group("rest")
        if rest.startswith("+++ "):
            self.live.pop(tid, None)
            self.orphans.pop(tid, None)
            return
        if rest.startswith("---"):
            return
        resumed = RESUMED.match(rest)
        if resumed:
            if tid not in self.pending:
                return
            name, args, start = self.pending.pop(tid)
            self.finish(tid, start, name, args + resumed.group("args"))
            return
        call = CALL.match(rest)
        if call is None:
            return
        if rest.endswith(UNFINISHED):
            self.task(tid)
            self.pending[tid] = (call.group("name"), call.group("args")[: -len(UNFINISHED)], number)
            return
        self.finish(tid, number, call.group("name"), call.group("args"))

    def finish(self, tid: int, line: int, name: str, args: str) -> None:
        task = self.task(tid)
        result = RESULT.search(args)
        value = result.group("result") if result else "?"
        outcome = value + (result.group("error") or "") if result else "?"
        if name in SENDS:
            self.sends.append(Send(task, line, name, args, outcome.strip()))
        elif name in CLONES and value.isdigit() and int(value) > 0:
            child = self.orphans.pop(int(value), None)
            if child is None or child.tid not in self.live or self.live[child.tid] is not child:
                child = Task(int(value))
                self.live[child.tid] = child
            child.parent, child.cloned_at = task, line
            if CLONE_NEWNET in args:
                child.netns.append((line, f"new namespace (clone at line {line})"))
        elif name == "unshare" and value == "0" and CLONE_NEWNET in args:
            task.netns.append((line, f"new namespace (unshare at line {line})"))
        elif name == "setns" and value == "0":
            namespace = namespace_of(args, self.host_netns)
            if namespace is not None:
                task.netns.append((line, namespace))

    def offenders(self) -> Iterator[tuple[str, Send]]:
        for send in self.sends:
            if send.task.namespace_at(send.line) != HOST:
                continue
            connected = send.call == "connect" and send.result == "0"
            for sockaddr in sockaddrs(send.args):
                where = off_host(sockaddr, connected)
                if where is not None:
                    yield where, send


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trace", help="strace -f -o output")
    parser.add_argument("--host-netns", default=os.readlink("/proc/self/ns/net"),
                        help="the host's network namespace as /proc/PID/ns/net reads (default: this process's)")
    options = parser.parse_args()
    trace = Trace(options.host_netns)
    with open(options.trace, errors="replace") as lines:
        for number, text in enumerate(lines, 1):
            trace.feed(number, text.rstrip("\n"))
    found: dict[tuple[str, str, str], list[Send]] = collections.defaultdict(list)
    for where, send in trace.offenders():
        found[(where, send.call, send.result)].append(send)
    print(f"{len(trace.sends)} sends and connects traced; {len(found)} destination(s) off this host")
    for (where, call, result), sends in sorted(found.items()):
        first = sends[0]
        print(f"  {where}  {call} = {result}  x{len(sends)}  (first: line {first.line}, tid {first.task.tid})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
