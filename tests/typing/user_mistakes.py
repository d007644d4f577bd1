"""Mistakes mypy --strict must report in a user's module: tests/test_typing.py expects exactly
the errors named in the `# E:` comments, on those lines."""

from __future__ import annotations

import socketeer
from socketeer import Server, Socket, Stream, connect, listen


def mistakes(sock: Socket, stream: Stream) -> None:
    listen(8080)  # E: arg-type
    connect("tcp://127.0.0.1:1").recv_until(b"\n")  # E: union-attr
    stream.send_all("text, not bytes")  # E: arg-type
    stream.recv(timeout="soon")  # E: arg-type
    sock.local_address.port  # E: union-attr
    socketeer.conect("tcp://127.0.0.1:1")  # E: attr-defined
    Server(object()).listen(("127.0.0.1", 0))  # E: arg-type
