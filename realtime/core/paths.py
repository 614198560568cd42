"""Questions about a path the user gave that never raise, and the one file digest (`sha256_file`,
read in 1 MiB blocks) that profiles, tracked clips and engine caches record. Path questions: a
name longer than the file system allows (ENAMETOOLONG), a NUL byte or a permission problem on
the way answer "no", so the caller's "no such file" line is printed instead of a traceback.
`cannot_write` answers, before a long run, why a file could not be created at a path;
`write_atomic` writes a result file that is whole or absent, never half-written; `reserve_hidden`
names the hidden file beside an output that such writers fill before the rename."""
from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
from pathlib import Path

__all__ = ["is_dir", "is_file", "exists", "cannot_write", "reserve_hidden", "write_atomic", "sha256_file"]


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


def cannot_write(path: str | os.PathLike) -> str | None:
    """Why a file could not be written at `path` (its folder missing, not a folder, not writable,
    or `path` a folder), as a phrase for an error line; None when it can. The folder is probed by
    creating and removing a hidden empty file in it, which also catches what permission bits do
    not (a read-only mount, /proc, root on a read-only share). Never raises. `path` is taken as
    the writer will take it: a ``~`` is not expanded here (a caller that expands it passes the
    expanded path), so ``--json=~/b.json``, which no shell expands, is a folder ``~`` that does
    not exist, not a check that passes before a write that fails."""
    target = Path(path)
    folder = target.parent
    if is_dir(target):
        return f"{str(target)!r} is a folder; name a file"
    if not is_dir(folder):
        what = "is not a folder" if exists(folder) else "does not exist"
        return f"folder {str(folder)!r} {what}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"folder {str(folder)!r} is not writable"
    try:
        fd, probe = tempfile.mkstemp(prefix=".puppeteer-probe-", dir=folder)
    except OSError as exc:
        return f"folder {str(folder)!r} is not writable ({exc.strerror or exc})"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


def reserve_hidden(target: str | os.PathLike, tag: str) -> Path:
    """Create an empty hidden file beside `target` under a name no other writer has
    (`.STEM.TAG-PID-RANDOM.SUFFIX`; the suffix kept, so a writer that goes by it still can) and
    return its path. Its mode is an ordinary file's (0666 less the umask), not a temporary file's
    0600, so what is renamed from it is for others to read too. Raises OSError when the folder
    cannot be written (FileExistsError only if 100 random names were all taken)."""
    target = Path(target)
    for _ in range(100):
        name = target.with_name(f".{target.stem}.{tag}-{os.getpid()}-{secrets.token_hex(4)}{target.suffix}")
        try:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return name
    raise FileExistsError(f"no free hidden file name beside {str(target)!r}")


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write `data` (str as UTF-8) to `path` through a hidden file beside it (`reserve_hidden`),
    synced, then renamed over `path`: a Ctrl-C or a full disk mid-write leaves the old file (or
    none) and no partial one. The folder must exist. Returns `path` as a Path."""
    target = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    tmp = reserve_hidden(target, "tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
