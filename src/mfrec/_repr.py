"""Readable ``__repr__`` and ``_repr_html_`` pieces shared by the notebook-facing objects."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any


def count(n: int, noun: str) -> str:
    """``"1 user"``, ``"9,724 items"``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def listed(names: Iterable[str], most: int = 3) -> str:
    """``"a, b, c and 2 more"``: the first ``most`` names of a list a message shows."""
    names = list(names)
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def html_facts(title: str, facts: Iterable[tuple[str, Any]], table: str = "") -> str:
    """A bold title, a two-column table of facts (escaped), then ``table`` (HTML already)."""
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(key))}</th><td style='text-align:left'>"
        f"{html.escape(str(value))}</td></tr>"
        for key, value in facts
    )
    return f"<div><strong>{html.escape(title)}</strong><table>{rows}</table>{table}</div>"
