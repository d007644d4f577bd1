"""Unix SOCK_SEQPACKET: connected like a stream, but every send() arrives as one message.

    server: socket(AF_UNIX, SOCK_SEQPACKET) -> bind -> listen -> accept -> recv per message
    client: socket -> connect -> send, send, send -> close

Three sends of different sizes come out as exactly three recv()s, even though all three are
queued before the server reads anything; a stream socket would hand them over run together.
"""

import os
import tempfile

import socketeer
from socketeer import AF_UNIX, SOCK_SEQPACKET

MESSAGES = [b"one", b"two two", b"three three three"]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="socketeer-", dir="/tmp") as directory:  # removed on exit
        path = os.path.join(directory, "seq.sock")
        with socketeer.Socket(AF_UNIX, SOCK_SEQPACKET) as listener:
            listener.bind(path)
            listener.listen()
            with socketeer.Socket(AF_UNIX, SOCK_SEQPACKET) as client:
                client.settimeout(5)
                client.connect(path)  # completes against the backlog: no thread needed
                for message in MESSAGES:
                    client.send(message)
                print(f"client: sent {len(MESSAGES)} messages before the server read any")
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                received = []
                while message := conn.recv(1024):  # b"" once the client has closed
                    print(f"server: message {len(received) + 1}: {message!r}")
                    received.append(message)
        assert received == MESSAGES
        print(f"boundaries kept: {len(received)} sends -> {len(received)} messages")


if __name__ == "__main__":
    main()
