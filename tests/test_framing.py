"""socketeer.framing: encode/split for raw, delimited and length-prefixed framing (1/2/4/8 bytes,
big and little endian), the stdlib's int.to_bytes as the oracle for prefixes, split at every byte
boundary, max_size, and bad arguments. The same framings over real sockets are in
test_streams.py (Stream.messages) and test_aio.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socketeer import MessageTooLarge, framing
from socketeer.framing import Framing

PREFIXES = [(size, order) for size in (1, 2, 4, 8) for order in ("big", "little")]


def split_all(f: Framing, data: bytes) -> tuple[list[bytes], bytes]:
    messages, consumed = f.split(data)
    return messages, data[consumed:]


@pytest.mark.parametrize("size, order", PREFIXES)
def test_length_prefix_is_int_to_bytes(size, order):
    f = framing.length_prefixed(size, order)
    for message in (b"", b"x", b"hello" * 50):
        assert f.encode(message) == len(message).to_bytes(size, order) + message
    assert (f.prefix_size, f.big_endian, f.kind) == (size, order == "big", "length_prefixed")


@pytest.mark.parametrize("size, order", PREFIXES)
def test_length_prefixed_split_at_every_byte_boundary(size, order):
    f = framing.length_prefixed(size, order)
    messages = [b"", b"a", b"bc" * 40, b"\x00\xff"]
    wire = b"".join(f.encode(m) for m in messages)
    for cut in range(len(wire) + 1):
        got, rest = split_all(f, wire[:cut])
        # exactly the messages whose last byte is before the cut
        ends = [sum(len(f.encode(m)) for m in messages[:i + 1]) for i in range(len(messages))]
        complete = [m for m, end in zip(messages, ends) if end <= cut]
        assert got == complete
        assert len(rest) == cut - (ends[len(complete) - 1] if complete else 0)
        more, tail = split_all(f, rest + wire[cut:])
        assert got + more == messages and tail == b""


@given(st.lists(st.binary(max_size=300), max_size=8), st.sampled_from(PREFIXES), st.data())
def test_length_prefixed_round_trip(messages, prefix, data):
    f = framing.length_prefixed(*prefix, max_size=300)
    wire = b"".join(f.encode(m) for m in messages)
    cut = data.draw(st.integers(0, len(wire)))
    got, rest = split_all(f, wire[:cut])
    more, tail = split_all(f, rest + wire[cut:])
    assert got + more == messages and tail == b""


@given(st.lists(st.binary(max_size=50).filter(lambda m: b"\r\n" not in m and not m.endswith(b"\r")), max_size=8),
       st.data())
def test_delimited_round_trip_with_a_two_byte_delimiter(messages, data):
    f = framing.delimited(b"\r\n", max_size=50)
    wire = b"".join(f.encode(m) for m in messages)
    assert wire == b"".join(m + b"\r\n" for m in messages)
    cut = data.draw(st.integers(0, len(wire)))
    got, rest = split_all(f, wire[:cut])
    more, tail = split_all(f, rest + wire[cut:])
    assert got + more == messages and tail == b""


def test_delimited_split_at_every_byte_boundary():
    f = framing.delimited(b"--", max_size=10)
    wire = b"one--two-three----x"
    for cut in range(len(wire) + 1):
        got, rest = split_all(f, wire[:cut])
        more, tail = split_all(f, rest + wire[cut:])
        assert got + more == [b"one", b"two-three", b""] and tail == b"x"


def test_lines_framing_keeps_the_carriage_return():
    assert framing.lines().split(b"a\r\nb\n") == ([b"a\r", b"b"], 5)


def test_raw_splits_into_max_size_chunks():
    assert framing.raw(3).split(b"abcdefg") == ([b"abc", b"def", b"g"], 7)
    assert framing.raw(3).split(b"") == ([], 0)
    assert framing.raw(3).encode(b"abc") == b"abc"


def test_split_takes_any_bytes_like():
    f = framing.length_prefixed(1)
    wire = f.encode(b"hi") + b"\x05"
    for data in (wire, bytearray(wire), memoryview(wire)):
        assert f.split(data) == ([b"hi"], 3)


# --- max_size ----------------------------------------------------------------------------------

@pytest.mark.parametrize("size, order", PREFIXES)
def test_oversize_prefix_raises_as_soon_as_the_prefix_is_read(size, order):
    f = framing.length_prefixed(size, order, max_size=100)
    # only the prefix: the payload never needs to be buffered to know it is too large
    with pytest.raises(MessageTooLarge) as raised:
        f.split((101).to_bytes(size, order))
    assert (raised.value.size, raised.value.limit) == (101, 100)
    assert isinstance(raised.value, ValueError)
    assert f.split(f.encode(b"x" * 100)) == ([b"x" * 100], 100 + size)


def test_huge_8_byte_prefix_is_refused_not_allocated():
    f = framing.length_prefixed(8)
    with pytest.raises(MessageTooLarge, match=str(2**64 - 1)):
        f.split(b"\xff" * 8)


def test_delimited_without_delimiter_past_max_size_raises():
    f = framing.delimited(b"\r\n", max_size=4)
    assert f.split(b"abcd\r") == ([], 0)  # could still be "abcd" + "\r\n"
    # never more than max_size + len(delimiter) - 1 bytes without a delimiter
    for junk in (b"abcdef", b"abcde\r", b"x" * 1000):
        with pytest.raises(MessageTooLarge):
            f.split(junk)
    with pytest.raises(MessageTooLarge):
        f.split(b"abcde\r\n")
    assert f.split(b"abcd\r\n") == ([b"abcd"], 6)


def test_messages_before_an_oversize_one_are_split_first():
    f = framing.length_prefixed(1, max_size=3)
    wire = f.encode(b"ok") + f.encode(b"yes") + b"\x09abcdefghi"
    messages, consumed = f.split(wire)
    assert messages == [b"ok", b"yes"]
    with pytest.raises(MessageTooLarge):
        f.split(wire[consumed:])


def test_encode_refuses_what_split_would_refuse():
    with pytest.raises(MessageTooLarge):
        framing.length_prefixed(4, max_size=3).encode(b"four")
    with pytest.raises(ValueError, match="does not fit a 1-byte length prefix"):
        framing.length_prefixed(1, max_size=1000).encode(b"x" * 256)
    assert framing.length_prefixed(1, max_size=1000).encode(b"x" * 255)[0] == 255
    with pytest.raises(ValueError, match="contains the delimiter"):
        framing.delimited(b"\n").encode(b"a\nb")


# --- bad arguments -----------------------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda: framing.length_prefixed(3), "1, 2, 4 or 8"),
    (lambda: framing.length_prefixed(0), "1, 2, 4 or 8"),
    (lambda: framing.length_prefixed(4, "middle"), "byteorder"),
    (lambda: framing.length_prefixed(4, max_size=-1), "max_size"),
    (lambda: framing.delimited(b""), "delimiter must not be empty"),
    (lambda: framing.delimited(b"\n", max_size=-1), "max_size"),
    (lambda: framing.raw(0), "max_size >= 1"),  # an empty raw frame would never consume a byte
    (lambda: framing.raw(-1), "max_size"),
])
def test_bad_framing_arguments_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_str_delimiter_raises_type_error():
    with pytest.raises(TypeError, match="bytes"):
        framing.delimited("\n")  # type: ignore[arg-type]


def test_repr_reads_as_the_call_that_made_it():
    assert repr(framing.length_prefixed(2, "little", 9)) == "socketeer.framing.length_prefixed(2, 'little', max_size=9)"
    assert repr(framing.delimited(b"\0", 5)) == "socketeer.framing.delimited(b'\\x00', max_size=5)"
    assert repr(framing.raw(7)) == "socketeer.framing.raw(max_size=7)"
