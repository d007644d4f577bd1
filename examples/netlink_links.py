"""Netlink as the textbook frames it: a socket family for talking to the kernel, addressed by
process identifiers (PIDs).

1. Open an AF_NETLINK socket for the NETLINK_ROUTE protocol and bind it with pid 0: "kernel,
   pick my port id". local_address shows the id the kernel assigned (usually our own pid).
2. Ask for every network interface (RTM_GETLINK with NLM_F_DUMP), sending to the kernel's own
   address, pid 0, and read the multipart answer as raw messages: a struct nlmsghdr, a struct
   ifinfomsg, then attributes (IFLA_IFNAME, IFLA_MTU, ...), until NLMSG_DONE.
3. The same question through socketeer.netlink.links(): parsed in C++ into typed records.

Reads only; changes nothing. Run: python examples/netlink_links.py
"""

from __future__ import annotations

import struct

import socketeer
from socketeer import (AF_NETLINK, NETLINK_ROUTE, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, RTM_GETLINK,
                       RTM_NEWLINK, SOCK_RAW, NetlinkAddress, Socket)

NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
IFINFOMSG = struct.Struct("=BxHiII")  # family, (pad), type, index, flags, change
RTATTR = struct.Struct("=HH")  # length, type
IFLA_IFNAME, IFLA_MTU = 3, 4


def align(n: int) -> int:
    return (n + 3) & ~3


def attributes(data: bytes) -> dict[int, bytes]:
    """The attributes after a message's fixed header: {type: payload}."""
    found, offset = {}, 0
    while offset + RTATTR.size <= len(data):
        length, kind = RTATTR.unpack_from(data, offset)
        if length < RTATTR.size:
            break
        found[kind] = data[offset + RTATTR.size:offset + length]
        offset += align(length)
    return found


def raw_dump() -> list[tuple[int, str, int]]:
    with Socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE) as sock:
        sock.settimeout(5)
        sock.bind(NetlinkAddress(pid=0))
        print(f"bound with pid 0; the kernel assigned {sock.local_address}")
        request = NLMSGHDR.pack(NLMSGHDR.size + IFINFOMSG.size, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
        request += IFINFOMSG.pack(0, 0, 0, 0, 0)
        sock.sendto(request, NetlinkAddress(pid=0))  # pid 0 is the kernel
        links, messages = [], 0
        while True:
            data = sock.recv(65536)
            offset = 0
            while offset + NLMSGHDR.size <= len(data):
                length, kind, _flags, sequence, _port = NLMSGHDR.unpack_from(data, offset)
                body = data[offset + NLMSGHDR.size:offset + length]
                offset += align(length)
                if sequence != 1:
                    continue
                messages += 1
                if kind == NLMSG_DONE:
                    print(f"raw: {messages} messages, the last one NLMSG_DONE")
                    return links
                if kind == NLMSG_ERROR:
                    raise OSError(-struct.unpack_from("=i", body)[0], "RTM_GETLINK refused")
                if kind == RTM_NEWLINK:
                    _family, _type, index, _flags, _change = IFINFOMSG.unpack_from(body)
                    attrs = attributes(body[IFINFOMSG.size:])
                    name = attrs[IFLA_IFNAME].rstrip(b"\0").decode()
                    links.append((index, name, struct.unpack("=I", attrs[IFLA_MTU])[0]))


def main() -> None:
    raw = raw_dump()
    for index, name, mtu in raw:
        print(f"raw: link {index} {name} mtu {mtu}")
    typed = socketeer.netlink.links()
    for link in typed:
        print(f"typed: {link!r}")
    same = sorted(raw) == sorted((link.index, link.name, link.mtu) for link in typed)
    print(f"raw and typed agree: {same}")


if __name__ == "__main__":
    main()
