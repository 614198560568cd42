"""Text for the terminal: what a user typed (a path, a name) printed back without letting its
control characters act on the terminal."""
from __future__ import annotations

import unicodedata

__all__ = ["printable", "count", "ended_early_note", "SHORT_SHARE", "SHORT_FRAMES"]


def printable(text: str, limit: int = 200) -> str:
    """`text` safe for a terminal: control and format characters (ANSI escapes, bidi overrides)
    shown as escapes, cut at `limit` characters."""
    out = "".join(ch if unicodedata.category(ch)[0] != "C" else ascii(ch)[1:-1] for ch in text[:limit])
    return out + ("…" if len(text) > limit else "")


def count(n: int, noun: str) -> str:
    """"1 frame", "2 frames", "0 frames": `n` and `noun`, plural unless `n` is 1."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


#: a clip whose stream ends before this share of the frames its header announces, and at least
#: SHORT_FRAMES short of them, ended early: a damaged file decodes up to the damage and stops
SHORT_SHARE, SHORT_FRAMES = 0.9, 5


def ended_early_note(name: str, got: int | None, announced: int | None, lost: str = "") -> str | None:
    """The note for a clip `name` whose stream ended after `got` frames (None: it has not ended)
    when its header announced `announced` (None: no count): said only well short of it (under
    SHORT_SHARE of the count and at least SHORT_FRAMES frames short), as a damaged file ends.
    `lost`: what the reader missed in the frames lost, added after the note (e.g. verify's mark)."""
    if announced is None or got is None or got >= SHORT_SHARE * announced or announced - got < SHORT_FRAMES:
        return None
    return (f"note: {name} ended at frame {got} of the {announced} its header announces: the file "
            f"may be damaged (truncated or corrupt){', ' + lost if lost else ''}")
