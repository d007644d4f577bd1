"""The life cycle of one TCP connection, seen from the kernel's side with socketeer.sockets().

sock_diag is the kernel's own list of sockets (what `ss` prints). After each step of the
textbook's life cycle this program lists the sockets on the listener's port and prints their
states, as the kernel keeps them:

  listen()                 the server socket is LISTEN
  connect()                the client is ESTABLISHED once the handshake is done; the server's
                           half is still a SYN_RECV entry (TCP_DEFER_ACCEPT holds it there until
                           the first data arrives; without it this lasts a few microseconds)
  send()                   data arrives: the server's half becomes ESTABLISHED, accept() gets it
  close() on the client    the client waits in FIN_WAIT2, the server sees end of stream: CLOSE_WAIT
  close() on the server    the closing side that went first keeps a TIME_WAIT entry (2 x MSL)

Loopback only. Run: python examples/tcp_lifecycle.py
"""

from __future__ import annotations

import time

import socketeer
from socketeer import IPPROTO_TCP, TCP_DEFER_ACCEPT, TcpState


def states(port: int) -> list[tuple[str, str, str]]:
    """(state, local, remote) of every socket on that port, in the kernel's order."""
    return [(s.state.name, str(s.local), str(s.remote)) for s in socketeer.sockets("tcp", all=True, port=port)]


def show(step: str, port: int, expect: set[TcpState]) -> None:
    """Lists the port's sockets once every expected state is there (a transition can take a
    moment: the kernel finishes a handshake or a close in its own time), at most 5 s."""
    deadline = time.monotonic() + 5
    while True:
        found = states(port)
        if {TcpState[name] for name, _, _ in found} >= expect or time.monotonic() > deadline:
            break
    print(f"after {step}:")
    for state, local, remote in found:
        print(f"  {state:<12} {local:<21} -> {remote}")


def main() -> None:
    listener = socketeer.listen("tcp://127.0.0.1:0")
    listener.socket.setsockopt(IPPROTO_TCP, TCP_DEFER_ACCEPT, 5)
    port = listener.address.port
    show("listen()", port, {TcpState.LISTEN})

    client = socketeer.connect(listener.endpoint, timeout=5)
    show("connect()", port, {TcpState.LISTEN, TcpState.ESTABLISHED, TcpState.SYN_RECV})

    client.send_all(b"hello")
    server = listener.accept(timeout=5)
    show("send() and accept()", port, {TcpState.LISTEN, TcpState.ESTABLISHED})

    client.close()
    show("the client's close()", port, {TcpState.FIN_WAIT2, TcpState.CLOSE_WAIT})

    print(f"the server reads {server.recv(100)!r} and then end of stream {server.recv(100)!r}")
    server.close()
    show("the server's close()", port, {TcpState.TIME_WAIT})
    listener.close()


if __name__ == "__main__":
    main()
