"""Small HTML tables for Jupyter's ``_repr_html_``: every object shows what it is at a glance."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, TypeVar

_C = TypeVar("_C", bound="Closeable")


def shown(read: Callable[[], object], fallback: object = "-") -> object:
    """``read()``, or ``fallback`` if it raises: a repr shows what it can and never raises, for
    any object in any state (a socket closed behind its back, its fd number reused by another
    kind of socket ...)."""
    try:
        return read()
    except Exception:  # noqa: BLE001 - a repr must not fail; the attribute's own call reports errors
        return fallback


def html_table(title: str, rows: Iterable[tuple[str, object]]) -> str:
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(str(key))}</th>"
        f"<td style='text-align:left'><code>{html.escape(str(value))}</code></td></tr>"
        for key, value in rows
    )
    return f"<table><caption style='text-align:left'><b>{html.escape(title)}</b></caption>{cells}</table>"


def with_row(rows: list[tuple[str, object]], key: str, value: object) -> list[tuple[str, object]]:
    """``rows`` with ``key``'s row (the first) showing ``value`` instead, or added at the end: one
    row per key, e.g. the object's own timeout in place of its socket's."""
    out = [(k, v) for k, v in rows if k != key]
    index = next((i for i, (k, _) in enumerate(rows) if k == key), len(out))
    out.insert(index, (key, value))
    return out


class Pretty:
    """Pretty-printed in IPython by its repr (``_repr_pretty_``), beside its ``_repr_html_``."""

    __slots__ = ()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


class Closeable(Pretty):
    """A context manager that closes on exit, pretty-printed in IPython by its repr."""

    __slots__ = ()

    if TYPE_CHECKING:  # subclasses (or their C++ bases, which come later in the MRO) provide it
        def close(self) -> None: ...

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def html_grid(title: str, headers: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    """A table with a header row and one row per item (a list of records, as ``ss`` prints)."""
    head = "".join(f"<th style='text-align:left;padding-right:1em'>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left;padding-right:1em'><code>{html.escape(str(cell))}</code></td>"
                         for cell in row) + "</tr>"
        for row in rows
    )
    return (f"<table><caption style='text-align:left'><b>{html.escape(title)}</b></caption>"
            f"<tr>{head}</tr>{body}</table>")
