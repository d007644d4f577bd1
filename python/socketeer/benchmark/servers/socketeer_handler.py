"""Echo with socketeer.Server and a Python handler: framing (none: each chunk read is a message)
and buffering in C++, the handler called with whole messages in batches. UDP: on_datagram."""

from __future__ import annotations

from .common import parse_args, serve_socketeer


class Echo:
    def on_message(self, conn, data):
        conn.send(data)

    def on_datagram(self, endpoint, data, address):
        endpoint.send_to(data, address)


if __name__ == "__main__":
    args = parse_args(__doc__, no_gso="UDP: send and receive without GSO/GRO (to compare)",
                      views="messages as memoryviews of the read buffer (Server(views=True)), not bytes")
    serve_socketeer(args, handler=Echo(), udp_gso=not args.no_gso, views=args.views)
