"""UDP echo: datagrams with and without connect().

    server: socket -> bind -> recvfrom (who sent it?) -> sendto (reply to them) -> close
    client: socket -> sendto -> recvfrom            (unconnected: any peer may answer)
    client: socket -> connect -> send -> recv       (connected UDP: a default peer, and the
                                                     kernel drops datagrams from anyone else)

No connection, no accept: every datagram carries its own address, and boundaries are kept.
"""

import threading

import socketeer
from socketeer import AF_INET, SOCK_DGRAM


def serve(server: socketeer.Socket, count: int) -> None:
    for _ in range(count):
        data, sender = server.recvfrom(2048)
        print(f"server: {len(data)} bytes from {sender}")
        server.sendto(data.upper(), sender)


def main() -> None:
    with socketeer.Socket(AF_INET, SOCK_DGRAM) as server:
        server.settimeout(5)
        server.bind("127.0.0.1:0")
        print(f"server: bound to {server.local_address}")
        thread = threading.Thread(target=serve, args=(server, 2))
        thread.start()

        with socketeer.Socket(AF_INET, SOCK_DGRAM) as client:
            client.settimeout(5)
            client.sendto(b"unconnected hello", server.local_address)
            reply, sender = client.recvfrom(2048)
            print(f"client: got {reply!r} from {sender}")
            assert reply == b"UNCONNECTED HELLO"

        with socketeer.Socket(AF_INET, SOCK_DGRAM) as client:
            client.settimeout(5)
            client.connect(server.local_address)
            print(f"client: connected UDP {client.local_address} -> {client.peer_address}")
            client.send(b"connected hello")
            reply = client.recv(2048)
            print(f"client: got {reply!r}")
            assert reply == b"CONNECTED HELLO"
        thread.join(5)
    print("udp echo: done")


if __name__ == "__main__":
    main()
