"""An idle socketeer.Server gives back the memory a burst of connections took.

Each connection has its own read buffer (64 KiB by default), so a burst of 2,000 connections
takes the server ~130 MiB. Once they have closed, that memory is free inside the allocator's
heaps, and glibc keeps it there (more so with the tuning the reactor applies for large
messages, see Server's tune_allocator): the process would stay at its peak size for good. The
server runs in a child process, so its resident size (VmRSS) is its own and nothing the test
suite did before counts.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from subprocess_env import child_env

CONNECTIONS = 2000
MESSAGE = 64 * 1024
# The burst must take the server at least this much (it takes ~100-130 MiB: under load the idle
# trimming already gives some back while the clients are still echoing one at a time).
GROWTH = 64 << 20
LEFT_OVER = 16 << 20  # after it, at most this much above the size before it

# The child: a Server with its clients in the same process (they reuse one receive buffer and
# one message, so the burst's memory is the server's). It reports VmRSS before the burst, at
# its peak (all connections open, every echo received), and once the server is idle: every
# connection closed, and then VmRSS back within the bound or 30 s gone by.
CHILD = r"""
import json, socket, sys, time
from socketeer.server import Server

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))

class Echo:
    def on_message(self, conn, data):
        conn.send(data)

count, size, left_over, builtin = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "builtin"
server = Server(builtin="echo") if builtin else Server(Echo())
address = server.listen("tcp://127.0.0.1:0")
message, reply = b"m" * size, memoryview(bytearray(size))

def burst(n):
    socks = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection((address.host, address.port), timeout=20))
        for sock in socks:  # one echo at a time: never more in flight than one message
            sock.sendall(message)
            got = 0
            while got < size:
                received = sock.recv_into(reply[got:])
                if not received:
                    raise EOFError("the server closed a connection")
                got += received
        return rss()
    finally:
        for sock in socks:
            sock.close()

def wait_for(condition, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)

with server:
    burst(1)  # the loop's thread, its allocator arena, a first connection's buffers
    wait_for(lambda: server.stats()["connections"] == 0)
    before = rss()
    peak = burst(count)
    wait_for(lambda: server.stats()["connections"] == 0)
    wait_for(lambda: rss() - before <= left_over, 30)  # 10 s ran out once with both cores busy (a 3.12 run)
    after = rss()
print(json.dumps({"before": before, "peak": peak, "after": after}))
"""


@pytest.mark.not_under_asan("AddressSanitizer's allocator keeps freed memory in its quarantine, and malloc_trim() cannot return it")
@pytest.mark.parametrize("handler", ["builtin", "python"])
def test_memory_of_a_burst_is_given_back_once_idle(handler: str) -> None:
    result = subprocess.run([sys.executable, "-c", CHILD, str(CONNECTIONS), str(MESSAGE), str(LEFT_OVER), handler],
                            env=child_env(), capture_output=True, text=True, timeout=55)
    assert result.returncode == 0, result.stderr
    sizes = json.loads(result.stdout)
    mib = {key: round(value / (1 << 20), 1) for key, value in sizes.items()}
    assert sizes["peak"] - sizes["before"] >= GROWTH, f"the burst was too small to show anything: {mib} MiB"
    assert sizes["after"] - sizes["before"] <= LEFT_OVER, f"memory kept after the burst: {mib} MiB"
