"""What this machine vouches for: a list of sha256 digests in a JSON file of the user's cache folder
(`realtime.core.paths.cache_dir`), outside every profile, since whoever hands over a profile
writes all of it. Two records use it: the TensorRT plans built here
(`realtime.tiers.neural.tensorrt`) and the consent records made here (`profiles.consent`).

The file is replaced atomically under a lock (two processes adding at once each keep their entry);
a file that is not such a list (damaged, or someone else's) is moved aside to ``NAME.damaged`` and
said, never silently overwritten.
"""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from realtime.core.paths import cache_dir, cannot_write, write_atomic

try:
    import fcntl
except ImportError:     # pragma: no cover - Windows: no advisory lock (a rare lost entry is re-added)
    fcntl = None        # type: ignore[assignment]

__all__ = ["DigestLedger"]


class DigestLedger:
    """The digests in ``cache_dir() / file`` under JSON key `key`. `keep`: the most it holds (the
    newest; None: all). `notice(text)` says a damaged file was moved aside."""

    def __init__(self, file: str, key: str, keep: int | None = None,
                 notice: Callable[[str], object] | None = None):
        self.file, self.key, self.keep, self.notice = file, key, keep, notice

    @property
    def path(self) -> Path:
        return cache_dir() / self.file

    def read(self) -> list[str]:
        """The digests recorded (none when there is no file or it cannot be read)."""
        path = self.path
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            return []
        try:
            data = json.loads(text)
            got = data.get(self.key) if isinstance(data, dict) else None
            if not isinstance(got, list):
                raise ValueError(f"no {self.key} list")
        except ValueError:
            aside = path.with_name(self.file + ".damaged")
            with contextlib.suppress(OSError):
                os.replace(path, aside)
            if self.notice is not None:
                self.notice(f"{path} was not a list of {self.key}; moved to {aside.name}")
            return []
        return [d for d in got if isinstance(d, str)]

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, str) and digest in self.read()

    def problem(self) -> str | None:
        """Why the file cannot be written (to ask before long work), or None."""
        folder = cache_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            return f"cannot make {folder}: {e.strerror or e}"
        return cannot_write(folder / self.file)

    def add(self, digest: str) -> None:
        """Record `digest` (the newest, when `keep` bounds the list). Raises OSError when the
        cache folder cannot be written."""
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / (self.file + ".lock"), "a") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            known = [d for d in self.read() if d != digest] + [digest]
            if self.keep is not None:
                known = known[-self.keep:]
            write_atomic(folder / self.file, json.dumps({self.key: known}, indent=1) + "\n")
