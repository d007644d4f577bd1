"""Echo with socketeer.Server in the convenient stream style: line framing in C++, the handler
gets each line (without its newline) and sends it back with send_message, which adds the
newline. The load generator's messages end with a newline, so each one is one line. A byte
stream has no datagram form: UDP is n/a."""

from __future__ import annotations

from .common import parse_args, serve_socketeer, unavailable


class LineEcho:
    def on_message(self, conn, line):
        conn.send_message(line)  # the newline is added by the server, without copying the line


if __name__ == "__main__":
    args = parse_args(__doc__, views="lines as memoryviews of the read buffer (Server(views=True)), not bytes")
    if args.endpoint.kind == "udp":
        unavailable("line framing is for byte streams; UDP has socketeer-handler")
    try:
        from socketeer import framing
    except ImportError as exc:
        unavailable(f"socketeer is not importable ({exc})")
    serve_socketeer(args, handler=LineEcho(), framing=framing.lines(max_size=1 << 20), views=args.views)
