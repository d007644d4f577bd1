"""What every benchmark echo server shares: the command line, pinning, the announce line.

Each server is a module run as a program of its own:

    python -m socketeer.benchmark.servers.asyncio_protocol tcp://127.0.0.1:0 [--cpu N] [--lifetime S] [--loop L]

It binds the endpoint (tcp://HOST:PORT, udp://HOST:PORT or unix:PATH; port 0 picks a free one),
prints the bound endpoint as its first stdout line, and serves until killed or until --lifetime
seconds have passed (so a harness that dies leaves no server running for long). The asyncio
servers take ``--loop`` (one of :data:`LOOPS`): one server module, driven by the stock loop,
uvloop or socketeer's own ``socketeer.aio.Loop``. A server that
cannot run here (uvloop not installed, no datagram API, socketeer.Server not built yet) prints
"n/a: REASON" on stderr and exits with status 3; the harness (socketeer bench,
benchmarks/run.py) shows that reason in its table.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

UNAVAILABLE = 3  # exit status: this server cannot run here; stderr says why
LOOPS = ("asyncio", "uvloop", "socketeer")  # --loop: the stock loop, uvloop, socketeer.aio.Loop


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "tcp", "udp" or "unix"
    host: str = ""
    port: int = 0
    path: str = ""
    text: str = ""  # as given on the command line

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        if text.startswith("unix:"):
            return cls("unix", path=text[5:], text=text)
        for kind in ("tcp", "udp"):
            if text.startswith(f"{kind}://"):
                host, _, port = text[len(kind) + 3:].rpartition(":")
                return cls(kind, host.strip("[]"), int(port), text=text)
        raise SystemExit(f"endpoint must be tcp://HOST:PORT, udp://HOST:PORT or unix:PATH, not {text!r}")

    def bound(self, sockname) -> str:
        """The endpoint text for what was bound: sockname is getsockname()'s (host, port, ...)."""
        if self.kind == "unix":
            return f"unix:{self.path}"
        host = sockname[0]
        return f"{self.kind}://[{host}]:{sockname[1]}" if ":" in host else f"{self.kind}://{host}:{sockname[1]}"


def parse_args(description: str, *, choose_loop: bool = False, **flags: str) -> argparse.Namespace:
    """The shared command line, plus one boolean --FLAG per keyword (name -> help); with
    choose_loop, ``--loop`` picks the asyncio event loop :func:`serve_asyncio` runs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("endpoint", type=Endpoint.parse, help="tcp://HOST:PORT, udp://HOST:PORT or unix:PATH")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU (sched_setaffinity)")
    parser.add_argument("--lifetime", type=float, default=3600.0, help="exit after this many seconds")
    if choose_loop:
        parser.add_argument("--loop", choices=LOOPS, default="asyncio",
                            help="the event loop: the stock asyncio one (default), uvloop, or socketeer.aio.Loop")
    for name, help_text in flags.items():
        parser.add_argument(f"--{name.replace('_', '-')}", action="store_true", help=help_text)
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    if args.endpoint.kind == "unix" and os.path.exists(args.endpoint.path):
        os.unlink(args.endpoint.path)
    return args


def announce(endpoint_text: str) -> None:
    """The first stdout line: where clients connect."""
    print(endpoint_text, flush=True)


def unavailable(reason: str) -> None:
    print(f"n/a: {reason}", file=sys.stderr, flush=True)
    raise SystemExit(UNAVAILABLE)


def new_event_loop(name: str):
    """A fresh event loop of the kind ``name`` (one of LOOPS); n/a when it cannot be had here."""
    import asyncio
    import importlib

    if name == "asyncio":
        return asyncio.new_event_loop()
    if name == "socketeer":
        try:
            from socketeer import aio
        except ImportError as exc:
            unavailable(f"socketeer.aio is not importable ({exc})")
        return aio.new_event_loop()
    try:  # by name: uvloop is optional, and the package type-checks where it is not installed
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        unavailable('uvloop is not installed (pip install ".[bench]")')
    return uvloop.new_event_loop()


def serve_asyncio(args: argparse.Namespace, start) -> None:
    """Run `await start(endpoint)` (which binds and returns getsockname()) on a fresh loop of the
    kind --loop names, announce the bound endpoint, then serve for --lifetime seconds."""
    import asyncio

    async def main() -> None:
        sockname = await start(args.endpoint)
        announce(args.endpoint.bound(sockname))
        await asyncio.sleep(args.lifetime)

    loop = new_event_loop(args.loop)
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def serve_socketeer(args: argparse.Namespace, **server_options) -> None:
    """Run socketeer.Server(**server_options) on the endpoint in this thread for --lifetime
    seconds. Until the Server exists (or if it refuses these options), the server is n/a."""
    import threading

    try:
        from socketeer import Server
    except ImportError as exc:
        unavailable(f"socketeer.Server is not available ({exc})")
    endpoint = args.endpoint
    try:
        server = Server(**server_options)
        bound = server.bind(endpoint.text) if endpoint.kind == "udp" else server.listen(endpoint.text)
    except Exception as exc:  # noqa: BLE001 - any refusal makes this server n/a, with the reason
        unavailable(f"socketeer.Server: {type(exc).__name__}: {exc}")
    announce(endpoint.text if endpoint.kind == "unix" else f"{endpoint.kind}://{bound}")
    timer = threading.Timer(args.lifetime, server.stop)
    timer.daemon = True
    timer.start()
    server.run()
