"""TCP echo: the stream life cycle from the textbook, both ends in one process.

    server: socket -> bind (port 0: the kernel picks) -> listen -> accept -> recv/sendall -> close
    client: socket -> connect -> sendall -> shutdown(SHUT_WR) -> recv until EOF -> close

The server runs in a thread; the client's half-close (SHUT_WR) is how it says "that is all",
so the server's recv() returns b"" and both sides finish cleanly.
"""

import threading

import socketeer
from socketeer import AF_INET, SHUT_WR, SOCK_STREAM


def serve_one(listener: socketeer.Socket) -> None:
    conn, peer = listener.accept()
    with conn:
        conn.settimeout(5)
        print(f"server: accepted a connection from {peer}")
        while data := conn.recv(4096):
            conn.sendall(data)
        print("server: client half-closed, closing")


def main() -> None:
    with socketeer.Socket(AF_INET, SOCK_STREAM) as listener:
        listener.settimeout(5)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        print(f"server: listening on {listener.local_address}")
        server = threading.Thread(target=serve_one, args=(listener,))
        server.start()
        with socketeer.Socket(AF_INET, SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(listener.local_address)
            print(f"client: connected {client.local_address} -> {client.peer_address}")
            client.sendall(b"hello over TCP")
            client.shutdown(SHUT_WR)
            reply = b""
            while chunk := client.recv(4096):
                reply += chunk
        server.join(5)
    print(f"client: echoed back {reply!r}")
    assert reply == b"hello over TCP"


if __name__ == "__main__":
    main()
