"""Text for the terminal: what a user typed (a path, a name) printed back without letting its
control characters act on the terminal."""
from __future__ import annotations

import unicodedata

__all__ = ["printable", "count"]


def printable(text: str, limit: int = 200) -> str:
    """`text` safe for a terminal: control and format characters (ANSI escapes, bidi overrides)
    shown as escapes, cut at `limit` characters."""
    out = "".join(ch if unicodedata.category(ch)[0] != "C" else ascii(ch)[1:-1] for ch in text[:limit])
    return out + ("…" if len(text) > limit else "")


def count(n: int, noun: str) -> str:
    """"1 frame", "2 frames", "0 frames": `n` and `noun`, plural unless `n` is 1."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
