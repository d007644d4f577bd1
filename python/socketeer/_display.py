"""Small HTML tables for Jupyter's ``_repr_html_``: every object shows what it is at a glance."""

from __future__ import annotations

import html
from collections.abc import Iterable


def html_table(title: str, rows: Iterable[tuple[str, object]]) -> str:
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(str(key))}</th>"
        f"<td style='text-align:left'><code>{html.escape(str(value))}</code></td></tr>"
        for key, value in rows
    )
    return f"<table><caption style='text-align:left'><b>{html.escape(title)}</b></caption>{cells}</table>"
