"""Message framing for ``Stream.messages()``, ``Stream.send_message()`` and the Server.

The framing itself runs in C++: ``Stream.messages(framing)`` costs one call into C++ per message
(which waits only when no whole message is buffered), never a Python loop over bytes.

>>> f = length_prefixed(2)
>>> f.encode(b"hi")
b'\\x00\\x02hi'
>>> f.split(b"\\x00\\x02hi\\x00\\x01!\\x00")
([b'hi', b'!'], 7)
"""

from __future__ import annotations

from typing import Any, Literal

from . import _core

Framing = _core.Framing
MessageTooLarge = _core.MessageTooLarge

__all__ = ["Framing", "MessageTooLarge", "raw", "delimited", "lines", "length_prefixed"]

DEFAULT_MAX_SIZE = 16 * 1024 * 1024


def raw(max_size: int = 64 * 1024) -> Framing:
    """No framing: each chunk that arrives (up to ``max_size`` bytes) is a message."""
    return Framing.raw(check_size("max_size", max_size))


def delimited(delimiter: bytes = b"\n", max_size: int = 64 * 1024) -> Framing:
    """Messages end with ``delimiter``, which is not part of the message. A message longer than
    ``max_size`` raises MessageTooLarge instead of being buffered without bound."""
    return Framing.delimited(check_delimiter(delimiter), check_size("max_size", max_size))


def lines(max_size: int = 64 * 1024) -> Framing:
    """Newline-delimited messages (a trailing ``\\r`` is left to the caller; see Stream.lines)."""
    return delimited(b"\n", max_size)


def length_prefixed(prefix_size: Literal[1, 2, 4, 8] = 4, byteorder: Literal["big", "little"] = "big",
                    max_size: int = DEFAULT_MAX_SIZE) -> Framing:
    """Each message is preceded by its length in ``prefix_size`` bytes (1, 2, 4 or 8)."""
    if byteorder not in ("big", "little"):
        raise ValueError(f"byteorder must be 'big' or 'little', not {byteorder!r}")
    return Framing.length_prefixed(prefix_size, byteorder == "big", check_size("max_size", max_size))


# --- argument checks, shared by the framings here and the blocking and asyncio Streams' reads ---

def check_size(name: str, value: int) -> int:
    """``value``, a size argument named ``name`` (``max_size``, ``size`` ...), checked here:
    pybind11 answers a negative one with a TypeError listing overloads instead of saying what is
    wrong. Raises ValueError naming the argument."""
    if value < 0:
        raise ValueError(f"{name} must be >= 0, not {value}")
    return value


def check_delimiter(delimiter: Any) -> bytes:
    """``delimiter`` as bytes; TypeError for a str (which has no one byte encoding)."""
    if isinstance(delimiter, str):
        raise TypeError("delimiter must be bytes, not str")
    return bytes(delimiter)


def check_framing(framing: Any) -> None:
    """TypeError unless ``framing`` is a Framing (made by this module's functions)."""
    if not isinstance(framing, Framing):
        raise TypeError(f"framing must be a socketeer.framing framing (length_prefixed(), delimited() ...), "
                        f"not {type(framing).__name__!r}")


def _framing_repr(self: Framing) -> str:
    if self.kind == "delimited":
        return f"socketeer.framing.delimited({self.delimiter!r}, max_size={self.max_size})"
    if self.kind == "length_prefixed":
        order = "big" if self.big_endian else "little"
        return f"socketeer.framing.length_prefixed({self.prefix_size}, {order!r}, max_size={self.max_size})"
    return f"socketeer.framing.raw(max_size={self.max_size})"


Framing.__repr__ = _framing_repr  # type: ignore[method-assign,assignment]
