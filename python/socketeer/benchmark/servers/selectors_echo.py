"""Echo with the stdlib's selectors (epoll) and non-blocking sockets: the hand-written event loop
a Python programmer would write without asyncio. Partial writes wait in a per-connection buffer
and reading pauses until it has drained. UDP: recvfrom/sendto until the socket would block."""

from __future__ import annotations

import selectors
import socket
import time

from .common import announce, parse_args

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
CHUNK = 256 * 1024


def listening_socket(endpoint):
    if endpoint.kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(endpoint.path)
    else:
        family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
        kind = socket.SOCK_DGRAM if endpoint.kind == "udp" else socket.SOCK_STREAM
        sock = socket.socket(family, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((endpoint.host, endpoint.port))
    if endpoint.kind != "udp":
        sock.listen(4096)
    sock.setblocking(False)
    return sock


class StreamEcho:
    def __init__(self, selector, listener, tcp):
        self.selector, self.listener, self.tcp = selector, listener, tcp
        self.pending: dict[socket.socket, bytes] = {}

    def on_accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            conn.setblocking(False)
            if self.tcp:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.selector.register(conn, READ, self.on_readable)

    def on_readable(self, conn):
        try:
            data = conn.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close(conn)
            return
        self.write(conn, data)

    def write(self, conn, data):
        try:
            sent = conn.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close(conn)
            return
        if sent < len(data):
            self.pending[conn] = data[sent:]
            self.selector.modify(conn, WRITE, self.on_writable)

    def on_writable(self, conn):
        data = self.pending.pop(conn)
        self.selector.modify(conn, READ, self.on_readable)
        self.write(conn, data)

    def close(self, conn):
        self.pending.pop(conn, None)
        self.selector.unregister(conn)
        conn.close()


def datagram_echo(sock):
    def on_readable(_):
        for _ in range(4096):
            try:
                data, addr = sock.recvfrom(65536)
            except BlockingIOError:
                return
            try:
                sock.sendto(data, addr)
            except BlockingIOError:
                pass  # the kernel is full: drop it, it is UDP

    return on_readable


def main() -> None:
    args = parse_args(__doc__)
    endpoint = args.endpoint
    selector = selectors.DefaultSelector()
    sock = listening_socket(endpoint)
    if endpoint.kind == "udp":
        selector.register(sock, READ, datagram_echo(sock))
    else:
        echo = StreamEcho(selector, sock, endpoint.kind == "tcp")
        selector.register(sock, READ, lambda _: echo.on_accept())
    announce(endpoint.bound(sock.getsockname()))
    deadline = time.monotonic() + args.lifetime
    while time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1.0):
            key.data(key.fileobj)


if __name__ == "__main__":
    main()
