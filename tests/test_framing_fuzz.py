"""Hypothesis over real sockets: random messages are framed (length prefixes of every size and
byte order, delimiters of one and four bytes), the byte stream is cut at random places or at
every byte, and each piece is sent as its own SOCK_SEQPACKET record, so each of the reader's
receives ends exactly at a cut. Stream.messages() and aio.Stream.messages() must give back the
same messages, also when the reads mix iterators kept, iterators dropped after one message, and
recv_exactly() of a message's raw bytes. Bounded: derandomized, a fixed number of examples."""

from __future__ import annotations

import asyncio
import socket as stdlib
import threading
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import socketeer
from socketeer import aio, framing
from socketeer.framing import Framing

from aio_loops import run_on

TIMEOUT = 10  # seconds: bounds each read, which is always expected to succeed
MAX_SIZE = 255  # what a 1-byte prefix carries

FRAMINGS = [framing.length_prefixed(size, order, MAX_SIZE) for size in (1, 2, 4, 8) for order in ("big", "little")]
FRAMINGS += [framing.delimited(b"\n", MAX_SIZE), framing.delimited(b"\r\n\r\n", MAX_SIZE)]
READS = ["same", "new", "raw"]  # next() on the iterator kept; next() on a new one; recv_exactly

BOUNDED = settings(max_examples=60, deadline=None, derandomize=True)


@dataclass
class Scenario:
    framing: Framing
    messages: list[bytes]
    pieces: list[bytes]  # the wire, cut
    reads: list[str]  # how each message is read

    def expected(self) -> list[bytes]:
        return [self.framing.encode(m) if how == "raw" else m for m, how in zip(self.messages, self.reads)]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    f = draw(st.sampled_from(FRAMINGS))
    message = st.one_of(st.binary(max_size=32), st.binary(min_size=150, max_size=MAX_SIZE))  # short and long
    if f.kind == "delimited":  # without the delimiter's first byte, no message can hold or end it
        message = message.map(lambda m: m.replace(f.delimiter[:1], b""))
    messages = draw(st.lists(message, max_size=12))
    wire = b"".join(f.encode(m) for m in messages)
    if draw(st.booleans()) and len(wire) <= 1000:
        cuts = list(range(1, len(wire)))  # every byte its own record
    else:
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(wire) - 1)), max_size=20)) - {len(wire)})
    pieces = [wire[start:end] for start, end in zip([0] + cuts, cuts + [len(wire)]) if end > start]
    reads = draw(st.lists(st.sampled_from(READS), min_size=len(messages), max_size=len(messages)))
    return Scenario(f, messages, pieces, reads)


def seqpacket_pair() -> tuple[stdlib.socket, stdlib.socket]:
    return stdlib.socketpair(stdlib.AF_UNIX, stdlib.SOCK_SEQPACKET)


@BOUNDED
@given(scenarios())
def test_stream_messages_from_any_cut(scenario: Scenario) -> None:
    ours, peer = seqpacket_pair()
    with peer, socketeer.Stream(socketeer.Socket(fileno=ours.detach()), timeout=TIMEOUT) as stream:
        failure: list[BaseException] = []

        def send() -> None:
            try:
                for piece in scenario.pieces:
                    peer.sendall(piece)
                peer.shutdown(stdlib.SHUT_WR)
            except BaseException as error:  # noqa: BLE001 -- reported in the test thread
                failure.append(error)

        sender = threading.Thread(target=send)
        sender.start()
        try:
            f = scenario.framing
            kept = stream.messages(f)
            got = []
            for message, how in zip(scenario.messages, scenario.reads):
                if how == "raw":
                    got.append(stream.recv_exactly(len(f.encode(message))))
                else:
                    got.append(next(kept if how == "same" else stream.messages(f)))
            assert got == scenario.expected()
            assert list(stream.messages(f)) == [] and list(kept) == []  # a clean end, for every iterator
        finally:
            sender.join(TIMEOUT)
        assert not failure


# loop_kind is a name, the same for every example: nothing to reset between them
@settings(BOUNDED, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_aio_stream_messages_from_any_cut(loop_kind: str, scenario: Scenario) -> None:
    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        ours, peer = seqpacket_pair()
        peer.setblocking(False)

        async def send() -> None:
            for piece in scenario.pieces:
                await loop.sock_sendall(peer, piece)
            peer.shutdown(stdlib.SHUT_WR)

        with peer:
            async with aio.Stream(socketeer.Socket(fileno=ours.detach()), timeout=TIMEOUT) as stream:
                sender = asyncio.ensure_future(send())
                f = scenario.framing
                kept = stream.messages(f)
                got = []
                for message, how in zip(scenario.messages, scenario.reads):
                    if how == "raw":
                        got.append(await stream.recv_exactly(len(f.encode(message))))
                    else:
                        got.append(await anext(kept if how == "same" else stream.messages(f)))
                assert [m async for m in stream.messages(f)] == [] and [m async for m in kept] == []
                await sender
                return got

    assert run_on(loop_kind, main, 2 * TIMEOUT) == scenario.expected()


def test_the_scenarios_cover_every_read_and_cut() -> None:
    """The strategy reaches what the tests above are for (derandomized, so this holds)."""
    seen: set = set()

    @settings(BOUNDED, max_examples=60)
    @given(scenarios())
    def record(scenario: Scenario) -> None:
        seen.update(scenario.reads)
        seen.add(scenario.framing.kind)
        if len(scenario.pieces) > 1 and all(len(p) == 1 for p in scenario.pieces):
            seen.add("every byte")
        if any(len(m) > 100 for m in scenario.messages):
            seen.add("long")

    record()
    assert seen >= {"same", "new", "raw", "delimited", "length_prefixed", "every byte", "long"}, seen
