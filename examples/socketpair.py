"""socketpair(): two connected sockets with no address, no bind, no listen, no accept.

The usual way for a parent and a thread (or a forked child) to talk. Both ends are full
sockets: stream by default, or datagram pairs that keep message boundaries.
"""

import os
import threading

import socketeer
from socketeer import AF_UNIX, SOCK_DGRAM


def shout_back(end: socketeer.Socket) -> None:
    with end:
        while data := end.recv(1024):
            end.sendall(data.upper())


def main() -> None:
    left, right = socketeer.socketpair()
    print(f"stream pair: {left!r}\n             {right!r}")
    print(f"peer of one end is this very process: {left.peer_credentials().pid == os.getpid()}")
    worker = threading.Thread(target=shout_back, args=(right,))
    worker.start()
    with left:
        left.settimeout(5)
        left.sendall(b"hello through a socketpair")
        reply = left.recv(1024)
        print(f"thread answered: {reply!r}")
    worker.join(5)
    assert reply == b"HELLO THROUGH A SOCKETPAIR"

    a, b = socketeer.socketpair(AF_UNIX, SOCK_DGRAM)
    with a, b:
        a.send(b"first")
        a.send(b"second")
        print(f"datagram pair keeps boundaries: {b.recv(1024)!r}, {b.recv(1024)!r}")


if __name__ == "__main__":
    main()
