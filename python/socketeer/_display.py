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


class Closeable:
    """A context manager that closes on exit, pretty-printed in IPython by its repr."""

    __slots__ = ()

    if TYPE_CHECKING:  # subclasses (or their C++ bases, which come later in the MRO) provide it
        def close(self) -> None: ...

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def html_rows(title: str, columns: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    """One table, a column per name and a row per record (a list of records in Jupyter)."""
    head = "".join(f"<th style='text-align:left'>{html.escape(str(name))}</th>" for name in columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'><code>{html.escape(str(value))}</code></td>" for value in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><caption style='text-align:left'><b>{html.escape(title)}</b></caption><tr>{head}</tr>{body}</table>"
