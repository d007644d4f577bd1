"""Unix stream socket: the TCP life cycle over a filesystem path, plus who is on the other end.

    server: socket(AF_UNIX, SOCK_STREAM) -> bind(path) -> listen -> accept -> recv/send -> close
    client: socket -> connect(path) -> send -> recv -> close

The path is a file the server creates on bind(); it outlives the socket, so it is removed at
the end. peer_credentials() (SO_PEERCRED) tells each side the pid/uid/gid of the other.
"""

import os
import tempfile
import threading

import socketeer
from socketeer import AF_UNIX, SOCK_STREAM


def serve_one(listener: socketeer.Socket) -> None:
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(5)
        print(f"server: accepted; peer credentials {conn.peer_credentials()}")
        conn.sendall(b"echo: " + conn.recv(1024))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="socketeer-", dir="/tmp") as directory:  # removed on exit
        path = os.path.join(directory, "echo.sock")
        with socketeer.Socket(AF_UNIX, SOCK_STREAM) as listener:
            listener.settimeout(5)
            listener.bind(path)
            listener.listen()
            print(f"server: listening on {listener.local_address} (a socket file: {os.path.exists(path)})")
            server = threading.Thread(target=serve_one, args=(listener,))
            server.start()
            with socketeer.Socket(AF_UNIX, SOCK_STREAM) as client:
                client.settimeout(5)
                client.connect(path)
                client.sendall(b"hello over a unix stream")
                reply = client.recv(1024)
            server.join(5)
        print(f"client: got {reply!r}")
        assert reply == b"echo: hello over a unix stream"


if __name__ == "__main__":
    main()
