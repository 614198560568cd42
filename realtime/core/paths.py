"""Questions about a path the user gave that never raise, and the one file digest (`sha256_file`,
read in 1 MiB blocks) that profiles, tracked clips and engine caches record. Path questions: a
name longer than the file system allows (ENAMETOOLONG), a NUL byte or a permission problem on
the way answer "no", so the caller's "no such file" line is printed instead of a traceback.
`cannot_write` answers, before a long run, why a file could not be created at a path;
`write_atomic` writes a result file that is whole or absent, never half-written; `reserve_hidden`
names the hidden file beside an output that such writers fill before the rename, and
`sweep_dead_writers` removes the ones a killed writer left. `playlist_kind` tells a "video" that is
really a playlist FFmpeg would follow to other files from its first bytes. `out_of_space` tells a
write that found no room (a full disk, a quota, a file-size limit) from other refused writes."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["is_dir", "is_file", "exists", "taken", "cannot_write", "reserve_hidden", "sweep_dead_writers",
           "write_atomic", "write_npz", "sha256_file", "not_a_file", "playlist_kind", "IMAGE_SUFFIXES",
           "out_of_space", "NO_SPACE"]

#: The picture files every command reads (enroll's photo, a driver folder's frames, verify's
#: images): those OpenCV decodes on every platform. Compare with the suffix lowered.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


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


def not_a_file(path: str | os.PathLike) -> str | None:
    """Why `path` is not a file to read, as a phrase after its name ("does not exist", "is a
    folder", "is not a regular file (a pipe, a device or a socket)"); None when it is one."""
    if is_file(path):
        return None
    if is_dir(path):
        return "is a folder, not a file"
    if exists(path):
        return "is not a regular file (a pipe, a device or a socket)"
    return "does not exist"


#: The text files FFmpeg opens as a list of other media to play, by how they begin (after a UTF-8
#: BOM and whitespace, case ignored), and what to call them (`playlist_kind`). FFmpeg picks its
#: demuxer by the content, not the name: an HLS playlist named clip.mp4 plays the files it lists.
PLAYLIST_MARKS = (
    (b"#extm3u", "an HLS/M3U playlist (text starting #EXTM3U)"),
    (b"ffconcat", "an FFmpeg concat list (text starting ffconcat)"),
    (b"[playlist]", "a PLS playlist (text starting [playlist])"),
    (b"v=0", "an SDP session description (text starting v=0)"),
    (b"<", "an XML or HTML text (a DASH .mpd, IMF or SMIL manifest names other media)"),
)
SNIFF_BYTES = 4096


def playlist_kind(path: str | os.PathLike) -> str | None:
    """What the file at `path` is when it is a text playlist or media list that FFmpeg would
    follow to other files (`PLAYLIST_MARKS`, and an SDP description, whose "c=IN IP" line FFmpeg
    finds anywhere in a text head), as a phrase for an error line; None for anything else, and for
    what is not a regular file or cannot be read (its reader says why: a pipe is never opened
    here, as reading it would block). Reads the first SNIFF_BYTES. Never raises."""
    if not is_file(path):
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except (OSError, ValueError):
        return None
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    for mark, kind in PLAYLIST_MARKS:
        if text.startswith(mark):
            return kind
    if b"\0" not in head and any(line.lstrip().startswith(b"c=in ip") for line in text.splitlines()):
        return "an SDP session description (text with a c=IN IP line)"
    return None


def exists(path: str | os.PathLike) -> bool:
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def taken(path: str | os.PathLike) -> bool:
    """Whether anything is at `path`, a dangling symlink included (`exists` follows links, so a
    link to nothing reads as free)."""
    try:
        return os.path.lexists(path)
    except (OSError, ValueError):
        return False


def _mode(path: Path) -> int | None:
    try:
        return os.stat(path).st_mode
    except (OSError, ValueError):
        return None


def cache_dir() -> Path:
    """This user's cache folder for the engine (never inside a profile): $PUPPETEER_CACHE, else
    $XDG_CACHE_HOME/puppeteer, else ~/.cache/puppeteer. What this machine vouches for lives here
    (the TensorRT engines it built, the consent records recorded on it), not in a profile, which
    whoever hands it over writes."""
    if os.environ.get("PUPPETEER_CACHE"):
        return Path(os.environ["PUPPETEER_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "puppeteer"


def _name_max(folder: Path) -> int:
    """The longest file name (bytes) `folder`'s file system takes (255 where it does not say)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):   # AttributeError: no pathconf (Windows)
        return 255


def cannot_write(path: str | os.PathLike) -> str | None:
    """Why a file could not be written at `path` (its folder missing, not a folder, not writable
    or read-only, `path` a folder or a read-only file), as a phrase for an error line; None when
    it can. Read-only means no write permission bit at all, which binds root too. The folder is probed by
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
    if (size := len(os.fsencode(target.name))) > (most := _name_max(folder)):
        # else found only when the finished file is renamed onto it, after the whole run
        return f"its name is {size} bytes long, over the {most} a name may have in {str(folder)!r}"
    # root passes every permission check: a read-only folder or file is still not ours to change
    if (mode := _mode(folder)) is not None and not mode & 0o222:
        return f"folder {str(folder)!r} is read-only (mode {mode & 0o7777:04o})"
    if is_file(target) and (mode := _mode(target)) is not None and not mode & 0o222:
        return f"{str(target)!r} is read-only (mode {mode & 0o7777:04o})"
    try:
        fd, probe = tempfile.mkstemp(prefix=".puppeteer-probe-", dir=folder)
    except OSError as exc:
        return f"folder {str(folder)!r} is not writable ({exc.strerror or exc})"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


#: bytes of the output's stem kept in a hidden file's name: a name the file system takes for the
#: output (255 bytes) must not become one too long for the hidden file beside it
HIDDEN_STEM_BYTES = 100


def reserve_hidden(target: str | os.PathLike, tag: str) -> Path:
    """Create an empty hidden file beside `target` under a name no other writer has
    (`.STEM.TAG-PID-RANDOM.SUFFIX`, the stem cut to HIDDEN_STEM_BYTES; the suffix kept, so a
    writer that goes by it still can) and return its path. Its mode is an ordinary file's (0666
    less the umask), not a temporary file's 0600, so what is renamed from it is for others to read
    too. Raises OSError when the folder cannot be written (FileExistsError only if 100 random
    names were all taken)."""
    target = Path(target)
    stem = target.stem.encode("utf-8", "surrogateescape")[:HIDDEN_STEM_BYTES].decode("utf-8", "ignore")
    for _ in range(100):
        name = target.with_name(f".{stem}.{tag}-{os.getpid()}-{secrets.token_hex(4)}{target.suffix}")
        try:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return name
    raise FileExistsError(f"no free hidden file name beside {str(target)!r}")


#: a hidden file younger than this (seconds) is never swept, whoever wrote it: its writer may
#: run in another PID namespace (a container sharing the folder), where its PID means nothing here
STALE_AFTER_S = 600.0


def sweep_dead_writers(target: str | os.PathLike, tag: str) -> list[Path]:
    """Remove the hidden files `reserve_hidden(target, tag)` made for writers that died before
    their rename (a SIGKILL, a power cut: no ``finally`` ran) — those named for `target` whose
    PID no longer runs and that are older than STALE_AFTER_S — and return their paths. Nothing
    else is touched, and never raises: a file that cannot be removed is left."""
    target = Path(target)
    stem = target.stem.encode("utf-8", "surrogateescape")[:HIDDEN_STEM_BYTES].decode("utf-8", "ignore")
    head, tail = f".{stem}.{tag}-", target.suffix
    swept: list[Path] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return swept
    for name in names:
        if not (name.startswith(head) and name.endswith(tail)):
            continue
        pid, _, token = name[len(head): len(name) - len(tail)].partition("-")
        if not (pid.isdigit() and len(token) == 8 and _pid_gone(int(pid))):
            continue
        path = target.parent / name
        try:
            if time.time() - os.lstat(path).st_mtime > STALE_AFTER_S:
                os.unlink(path)
                swept.append(path)
        except OSError:
            pass
    return swept


def _pid_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:       # EPERM: it runs, as another user
        return False
    return False


#: The system's codes of a write that found no room: a full disk (ENOSPC), a full quota (EDQUOT),
#: a file past the largest size allowed (EFBIG: the file system's, such as FAT32's 4 GiB, or the
#: process's ``ulimit -f``). Freeing space, or writing somewhere else, is what the user can do.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

#: The system's code as Rust's I/O errors write it in a message ("File too large (os error 27)"):
#: safetensors raises them as a SafetensorError, which has no errno.
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def out_of_space(error: BaseException) -> bool:
    """Whether `error` says a write found no room (`NO_SPACE`: ENOSPC, EDQUOT or EFBIG): an
    OSError with that errno, or another library's error whose message carries that code as
    Rust's do (safetensors: "... No space left on device (os error 28)"). Pure: it reads only
    `error`, never the disk."""
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno in NO_SPACE
    return any(int(code) in NO_SPACE for code in _RUST_OS_ERROR.findall(str(error)))


def write_atomic(path: str | os.PathLike, data: bytes | str, follow_links: bool = True) -> Path:
    """Write `data` (str as UTF-8) to `path` whole or not at all: through a hidden file beside it
    (`reserve_hidden`), synced, then renamed over it, so a Ctrl-C or a full disk mid-write leaves
    the old file (or none) and no partial one. A symbolic link is followed (the file it names is
    replaced, the link kept), unless `follow_links` is False (a file inside a profile, which must
    not write outside it: the link itself is replaced); an existing file keeps its mode.
    Something that is not a regular file (``/dev/null``, ``/dev/stdout``, a pipe) is written in
    place, as an ordinary write would. The folder must exist. Hidden files that earlier writers
    of `path` left when they were killed are removed first (`sweep_dead_writers`). Returns `path`
    as a Path."""
    target = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    real = Path(os.path.realpath(target)) if follow_links else target
    try:
        st = os.stat(real) if follow_links else os.lstat(real)
    except OSError:
        st = None
    if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        with open(real, "wb") as f:
            f.write(blob)
        return target
    sweep_dead_writers(real, "tmp")
    tmp = reserve_hidden(real, "tmp")
    try:
        if st is not None and stat.S_ISREG(st.st_mode):
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
        with open(tmp, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def write_npz(file, arrays: dict, compress: bool = False) -> None:
    """`np.savez` (or `np.savez_compressed`) of `arrays` into `file` (a path or a binary file
    object), no pickled objects, and the archive closed however the write ends. numpy 1.26
    leaves a failed archive to the garbage collector, whose second try at closing it on a full
    disk printed "Exception ignored in: <function ZipFile.__del__ ...>" after our error line."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(file, mode="w", compression=method, allowZip64=True) as archive:
        for key, value in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
