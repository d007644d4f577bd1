"""Stress: close() racing calls blocked (or about to block) in other threads, many rounds.

Each round gives a socket three threads calling recv / accept / recvfrom on it in a loop (with
a timeout or on a blocking fd, picked per round), closes it at a random moment (while they
block, or are about to, or just after one got data), and at once makes new sockets, which take the
freed fd numbers, and sends each its own tagged data. Nothing may reach the wrong owner: the old
calls end with EBADF or return only their own socket's bytes, every new owner gets exactly its
own data or connection; no fd leaks (the autouse guard) and nothing crashes. Bounded: at most
ROUNDS rounds or BUDGET seconds, whichever comes first.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import threading
import time

import socketeer
from socketeer import Socket

ROUNDS = 900
BUDGET = 20.0  # seconds
READERS = 3


def run_readers(call, results: list) -> list[threading.Thread]:
    """READERS threads each calling call() until it raises; results gets what they returned."""
    def loop():
        while True:
            try:
                results.append(call())
            except OSError as error:
                results.append(error)
                return

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(READERS)]
    for thread in threads:
        thread.start()
    return threads


def close_at_a_random_moment(sock, rng: random.Random) -> None:
    """Closes after a random number of yields of the CPU (and the GIL) to the readers. What is
    varied is the race itself, so nothing waits for a condition here."""
    for _ in range(rng.choice([0, 1, 20, 500])):
        os.sched_yield()
    sock.close()


def join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive(), "a call blocked on the closed socket did not end"


def only_ebadf_or_own(results: list, own: bytes) -> None:
    for result in results:
        if isinstance(result, OSError):
            assert result.errno == errno.EBADF, repr(result)
        else:
            assert result and own.startswith(result), f"an old call got {result!r}, not its own {own!r}"


def stream_round(round_number: int, rng: random.Random) -> None:
    old, old_peer = socketeer.socketpair()
    new = new_peer = None
    try:
        old.settimeout(rng.choice([None, 5.0]))
        own = b"old-%d|" % round_number
        if rng.random() < 0.3:
            old_peer.sendall(own)  # one reader may legitimately get these
        results: list = []
        threads = run_readers(lambda: old.recv(100), results)
        close_at_a_random_moment(old, rng)
        new, new_peer = socketeer.socketpair()  # most likely on the numbers just freed
        theirs = b"new-%d|" % round_number
        new_peer.sendall(theirs)
        join_all(threads)
        only_ebadf_or_own(results, own)
        new.settimeout(5)
        assert new.recv(100) == theirs
    finally:
        for sock in (old, old_peer, new, new_peer):
            if sock is not None:
                sock.close()


def accept_round(round_number: int, rng: random.Random) -> None:
    old = Socket()
    new = client = accepted = None
    try:
        old.bind("127.0.0.1:0")
        old.listen()
        old.settimeout(rng.choice([None, 5.0]))
        results: list = []
        threads = run_readers(lambda: old.accept()[0].close(), results)
        close_at_a_random_moment(old, rng)
        new = Socket()
        new.bind("127.0.0.1:0")
        new.listen()
        client = socket.create_connection(new.getsockname(), timeout=5)
        new.settimeout(5)
        accepted, peer = new.accept()  # the old calls must not have taken it
        assert peer == client.getsockname()
        join_all(threads)
        assert all(isinstance(r, OSError) and r.errno == errno.EBADF for r in results), results
    finally:
        for sock in (old, new, client, accepted):
            if sock is not None:
                sock.close()


def datagram_round(round_number: int, rng: random.Random) -> None:
    old = Socket(socket.AF_INET, socket.SOCK_DGRAM)
    new = sender = None
    try:
        old.bind("127.0.0.1:0")
        old.settimeout(rng.choice([None, 5.0]))
        results: list = []
        threads = run_readers(lambda: old.recvfrom(100)[0], results)
        close_at_a_random_moment(old, rng)
        new = Socket(socket.AF_INET, socket.SOCK_DGRAM)
        new.bind("127.0.0.1:0")
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        theirs = b"new-%d|" % round_number
        sender.sendto(theirs, new.getsockname())
        new.settimeout(5)
        assert new.recvfrom(100)[0] == theirs
        join_all(threads)
        only_ebadf_or_own(results, b"")  # nothing was sent to the old socket
    finally:
        for sock in (old, new, sender):
            if sock is not None:
                sock.close()


def test_close_racing_blocked_calls_misdelivers_nothing():
    rng = random.Random(15)
    rounds = [stream_round, accept_round, datagram_round]
    end = time.monotonic() + BUDGET
    done = 0
    while done < ROUNDS and time.monotonic() < end:
        rounds[done % len(rounds)](done, rng)
        done += 1
    assert done >= 30, f"only {done} rounds in {BUDGET} s"
