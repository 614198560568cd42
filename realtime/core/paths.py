"""Questions about a path the user gave that never raise, and the one file digest (`sha256_file`,
read in 1 MiB blocks) that profiles, tracked clips and engine caches record. Path questions: a
name longer than the file system allows (ENAMETOOLONG), a NUL byte or a permission problem on
the way answer "no", so the caller's "no such file" line is printed instead of a traceback."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["is_dir", "is_file", "exists", "sha256_file"]


def is_dir(path: str | os.PathLike) -> bool:
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


def is_file(path: str | os.PathLike) -> bool:
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def exists(path: str | os.PathLike) -> bool:
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
