"""Echo with socketeer.Server's built-in C++ echo handler: no Python runs per message."""

from __future__ import annotations

from .common import parse_args, serve_socketeer

if __name__ == "__main__":
    args = parse_args(__doc__, no_gso="UDP: send and receive without GSO/GRO (to compare)")
    serve_socketeer(args, builtin="echo", udp_gso=not args.no_gso)
