"""A line-based server on socketeer.Server: the C++ reactor splits lines, Python answers them.

    server: Server(handler, framing=lines()) -> listen -> start (a background thread)
    client: connect -> send lines -> read answers with Stream.lines()

The handler never sees partial lines or buffers: on_message gets each whole line (without its
newline), and conn.send_message() adds the newline back without copying the reply. Per-connection
state lives as attributes on the connection object.
"""

import socketeer
from socketeer import framing


class Uppercase:
    def on_connect(self, conn):
        conn.lines_seen = 0

    def on_message(self, conn, line):
        conn.lines_seen += 1
        if line == b"bye":
            conn.send_message(b"%d lines, bye" % conn.lines_seen)
            conn.close()  # after what is queued has been sent
        else:
            conn.send_message(line.upper())

    def on_close(self, conn, reason):
        print(f"server: {conn.peer_address} closed ({reason})")


def main() -> None:
    server = socketeer.Server(Uppercase(), framing=framing.lines())
    try:
        address = server.listen("tcp://127.0.0.1:0")
        server.start()
        print(f"server: listening on {address}")
        with socketeer.connect(server.endpoint(), timeout=5) as stream:
            stream.send_all(b"hello\nline server\nbye\n")
            answers = list(stream.lines())
        print(f"client: got {answers}")
    finally:
        server.close()


if __name__ == "__main__":
    main()
