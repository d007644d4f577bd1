"""ICMP echo ("ping") to 127.0.0.1 over a raw socket.

    socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) -> sendto(echo request) -> recvfrom until our reply

A raw socket hands over whole IP packets, header included, and sees every ICMP message on
the host (on loopback, even our own request), so replies are matched by type, id and sequence.
Raw sockets need CAP_NET_RAW: without it this prints "skipped: needs CAP_NET_RAW" and exits 0.
"""

import os
import struct
import sys
import time

import socketeer
from socketeer import AF_INET, IPPROTO_ICMP, SOCK_RAW

ECHO_REQUEST, ECHO_REPLY = 8, 0


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, sequence: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, sequence)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, checksum(header + payload), ident, sequence) + payload


def wait_for_reply(sock: socketeer.Socket, ident: int, sequence: int) -> tuple[bytes, object]:
    while True:
        packet, sender = sock.recvfrom(2048)
        header_length = (packet[0] & 0x0F) * 4  # the IPv4 header comes first
        kind, _code, _sum, got_ident, got_sequence = struct.unpack_from("!BBHHH", packet, header_length)
        if kind == ECHO_REPLY and (got_ident, got_sequence) == (ident, sequence):
            return packet[header_length + 8:], sender


def main() -> int:
    try:
        sock = socketeer.Socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)
    except PermissionError as error:
        print(f"skipped: needs CAP_NET_RAW ({error.strerror}; run as root to try it)")
        return 0
    ident, payload = os.getpid() & 0xFFFF, b"socketeer ping"
    with sock:
        sock.settimeout(5)
        for sequence in (1, 2, 3):
            start = time.perf_counter()
            sock.sendto(echo_request(ident, sequence, payload), ("127.0.0.1", 0))
            data, sender = wait_for_reply(sock, ident, sequence)
            elapsed = (time.perf_counter() - start) * 1e6
            assert data == payload
            print(f"{len(data) + 8} bytes from {sender[0]}: icmp_seq={sequence} time={elapsed:.0f} µs")
    print("ping: 3 packets transmitted, 3 received")
    return 0


if __name__ == "__main__":
    sys.exit(main())
