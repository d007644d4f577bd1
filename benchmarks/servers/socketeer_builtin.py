"""Echo with socketeer.Server's built-in C++ echo handler: no Python runs per message."""

from __future__ import annotations

from _common import parse_args, serve_socketeer

if __name__ == "__main__":
    serve_socketeer(parse_args(__doc__), builtin="echo")
