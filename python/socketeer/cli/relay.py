"""``socketeer relay A B``: socat-like, accept on A and copy each client both ways to B."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from typing import Any, Optional

from ..constants import SHUT_RDWR, SOCK_DGRAM
from ..endpoints import Endpoint
from ..streams import Listener, Stream, connect, listen
from .common import CommandError, endpoint_arg, reason, stopped_by_signals

__all__ = ["add_parser", "run"]


def _shutdown(stream: Stream) -> None:
    try:
        stream.socket.shutdown(SHUT_RDWR)
    except OSError:  # not connected any more
        pass


def _pump(source: Stream, sink: Stream) -> None:
    """Copies source to sink; source's end becomes sink's half-close. An error (a reset) ends
    both directions: shutting both streams down wakes the other pump."""
    try:
        while data := source.recv(65536):
            sink.send_all(data)
        sink.close_write()
    except OSError:
        _shutdown(source)
        _shutdown(sink)


def splice(client: Stream, upstream: Stream) -> None:
    """Copies both ways until both directions have ended, then closes both streams."""
    with client, upstream:
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True, name="socketeer-relay")
        back.start()
        _pump(client, upstream)
        back.join()


class Relay:
    """Accepts on a listener and splices each client to a fresh connection to ``target``."""

    def __init__(self, listener: Listener, target: Endpoint, log: Callable[[str], None]):
        self.listener, self.target, self.log = listener, target, log
        self._active: set[Stream] = set()
        self._threads: list[threading.Thread] = []
        self._count = 0

    def open_upstream(self, client: Stream) -> tuple[str, Optional[Stream]]:
        self._count += 1
        name = f"connection {self._count} from {_peer(client)}"
        try:
            upstream = connect(self.target, timeout=10)
        except OSError as error:
            self.log(f"{name}: cannot connect to {self.target}: {reason(error)}")
            client.close()
            return name, None
        assert isinstance(upstream, Stream)  # run() refused datagram endpoints
        self.log(f"{name}: relaying to {self.target}")
        return name, upstream

    def run_one(self, name: str, client: Stream, upstream: Stream) -> None:
        self._active.update((client, upstream))
        try:
            splice(client, upstream)
        finally:
            self._active.difference_update((client, upstream))
        self.log(f"{name}: closed")

    def serve(self, once: bool) -> bool:
        """Relays until stopped (or one connection with ``once``); False if ``once`` failed."""
        for client in self.listener:
            name, upstream = self.open_upstream(client)
            if once:
                if upstream is not None:
                    self.run_one(name, client, upstream)
                return upstream is not None
            if upstream is not None:
                self._threads = [thread for thread in self._threads if thread.is_alive()]
                self._threads.append(threading.Thread(target=self.run_one, args=(name, client, upstream),
                                                      daemon=True))
                self._threads[-1].start()
        return True

    def stop(self) -> None:
        """Ends every relayed connection (their threads close them) and waits a moment for that."""
        for stream in list(self._active):
            _shutdown(stream)
        for thread in self._threads:
            thread.join(timeout=2)


def _peer(stream: Stream) -> str:
    try:
        address = stream.peer_address
    except OSError:
        return "a peer already gone"
    return str(address) if str(address) != "unix:" else "an unnamed unix socket"


def add_parser(commands: Any) -> None:
    """Registers ``socketeer relay`` on the subcommand parsers."""
    relay = commands.add_parser(
        "relay", help="socat-like: accept on A, connect each client to B, copy both ways",
        description="Listen on A; connect every client that arrives to B and copy both directions, "
                    "passing each side's half-close on to the other. Any two stream endpoints: "
                    "e.g. `socketeer relay unix:/tmp/app.sock tcp://127.0.0.1:8080`.")
    relay.add_argument("listen", metavar="A", help="where to listen: tcp://HOST:PORT, unix:PATH, unix+seqpacket:PATH")
    relay.add_argument("target", metavar="B", help="where to connect each client: a stream endpoint")
    relay.add_argument("--once", action="store_true", help="relay one connection, then exit")


def run(args: argparse.Namespace) -> int:
    source, target = endpoint_arg(args.listen, "relay"), endpoint_arg(args.target, "relay")
    for endpoint in (source, target):
        if endpoint.kind == SOCK_DGRAM:
            raise CommandError(f"relay: {endpoint} is a datagram endpoint; relay copies streams "
                               "(tcp://, unix:, unix+seqpacket:)", 2)

    def log(message: str) -> None:
        print(f"relay: {message}", flush=True)

    try:
        listener = listen(source)
    except OSError as error:
        raise CommandError(f"relay: cannot listen on {source}: {reason(error)}") from None
    relay = Relay(listener, target, log)
    ok = True
    try:
        with stopped_by_signals():
            log(f"listening on {listener.endpoint}, relaying to {target} (Ctrl-C stops)")
            ok = relay.serve(args.once)
    except KeyboardInterrupt:
        log("stopped")
    finally:
        listener.close()
        relay.stop()
    return 0 if ok else 1
