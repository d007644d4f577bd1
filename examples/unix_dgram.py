"""Unix datagram socket: the client must bind its own path to be answered.

    server: socket(AF_UNIX, SOCK_DGRAM) -> bind(server path) -> recvfrom -> sendto(sender)
    client: socket -> bind(client path) -> sendto(server path) -> recvfrom

Unlike UDP, an unbound unix datagram socket has no address at all: the server would see the
sender as '' (unnamed) and have nowhere to send the reply. Binding the client gives it one.
"""

import os
import tempfile
import threading

import socketeer
from socketeer import AF_UNIX, SOCK_DGRAM


def serve_one(server: socketeer.Socket) -> None:
    data, sender = server.recvfrom(1024)
    print(f"server: {data!r} from {sender!r}")
    server.sendto(data[::-1], sender)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="socketeer-", dir="/tmp") as directory:  # removed on exit
        server_path = os.path.join(directory, "server.sock")
        client_path = os.path.join(directory, "client.sock")
        with socketeer.Socket(AF_UNIX, SOCK_DGRAM) as server, socketeer.Socket(AF_UNIX, SOCK_DGRAM) as client:
            server.settimeout(5)
            server.bind(server_path)
            thread = threading.Thread(target=serve_one, args=(server,))
            thread.start()
            client.settimeout(5)
            client.bind(client_path)  # the reply address
            print(f"client: bound to {client.local_address}")
            client.sendto(b"unix datagram", server_path)
            reply, sender = client.recvfrom(1024)
            thread.join(5)
        print(f"client: got {reply!r} from {sender!r}")
        assert reply == b"margatad xinu"


if __name__ == "__main__":
    main()
