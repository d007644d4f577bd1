"""An EMFILE storm on each accept loop (the C++ Server, Listener.serve, aio.Listener.serve), in a
child process (tests/emfile_child.py), bounded to about 5 s per server.

CLIENTS connections arrive while the server has no fd left: each sends a random payload and
waits. Over that storm the server must stay idle (no busy loop: its CPU time is measured in the
child). Then a few fds come back, and the server works through the crowd a few connections at a
time, pausing whenever it runs out again, until every client got its payload echoed whole (the
sha256 is compared). At the end the server holds exactly the fds it held before the storm.
"""

from __future__ import annotations

import hashlib
import random
import socket as stdlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from emfile_child import NEEDS_FREE_FDS_UNDER_SANITIZERS, EmfileServer

CLIENTS = 150
PAYLOAD = 32 * 1024
STORM = 1.0  # seconds the crowd waits on an exhausted server while its CPU time is measured
FREED = 8  # fds given back after the storm: the server serves a few at a time
TIMEOUT = 25  # seconds: bounds each client

pytestmark = pytest.mark.timeout(60)


class Crowd:
    """The clients: each connects, sends its payload, half-closes and reads the echo to the end."""

    def __init__(self, address: tuple[str, int]):
        self.address = address
        self.sent = 0
        self._lock = threading.Lock()

    def client(self, seed: int) -> bool:
        payload = random.Random(seed).randbytes(PAYLOAD)
        with stdlib.create_connection(self.address, timeout=TIMEOUT) as sock:
            sock.sendall(payload)  # fits the socket buffers, accepted or not
            sock.shutdown(stdlib.SHUT_WR)
            with self._lock:
                self.sent += 1
            echoed = hashlib.sha256()
            while chunk := sock.recv(65536):
                echoed.update(chunk)
        return echoed.digest() == hashlib.sha256(payload).digest()


@pytest.mark.not_under_asan(NEEDS_FREE_FDS_UNDER_SANITIZERS)
@pytest.mark.parametrize("kind", ["server", "listener", "aio"])
def test_emfile_storm(kind, wait_until):
    with EmfileServer(kind) as server:
        fds_before = server.number("fds")
        server.command("exhaust")
        crowd = Crowd(server.address)
        with ThreadPoolExecutor(CLIENTS) as pool:
            outcomes = [pool.submit(crowd.client, seed) for seed in range(CLIENTS)]
            wait_until(lambda: crowd.sent == CLIENTS, timeout=TIMEOUT, what="every client to connect and send")
            cpu_before, started = server.number("cpu"), time.monotonic()
            time.sleep(STORM)  # the measuring window, not a synchronisation: nothing is awaited
            cpu = server.number("cpu") - cpu_before
            elapsed = time.monotonic() - started
            assert cpu < 0.1 * elapsed, f"{kind} used {cpu:.2f} s of CPU in {elapsed:.2f} s out of fds: a busy loop"
            server.command(f"free {FREED}")
            echoed = [outcome.result(timeout=TIMEOUT) for outcome in outcomes]
        assert echoed.count(True) == CLIENTS, f"{echoed.count(False)} payloads came back wrong"
        server.command("free")
        wait_until(lambda: server.number("fds") == fds_before, timeout=10,
                   what=f"the {kind} to hold the {fds_before:g} fds it had before the storm")
