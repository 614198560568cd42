"""Writing profile folders so that nothing is lost: one writer per name, an atomic swap, the
recovery of an interrupted one, and files replaced inside a profile without a moment where it
cannot be loaded.

- `name_lock(root, name)`: an exclusive, non-blocking lock (``root/.NAME.lock``) held by an
  enrollment or a training for its whole run; a second writer of the same name is refused at
  once ("is being written by another process") instead of both saying "enrolled".
- `replace_dir(tmp, folder)`: the finished temporary folder takes the profile's name. On Linux
  `renameat2(RENAME_EXCHANGE)` swaps the two in one step (the old copy is then deleted); where
  that is unavailable the old copy is first renamed to the backup ``.NAME.old``, and
  `recover(root, name)` (run by `enroll` under the lock) puts a backup back whose swap was
  killed half-way, and deletes the leftovers of killed saves (``.NAME.partial-*``).
- `commit_files(folder, {rel: temporary file})`: new versions of files a profile lists (the
  trainer's checkpoints and plots) are renamed into place between two atomic rewrites of
  profile.yaml; the first lists each file's previous sha256 beside the new one
  (``previous_sha256``, accepted by `profiles.format.load`), so whether a Ctrl-C (or a power
  cut) lands before, between or after the renames, the profile loads.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from profiles import schema
from realtime.core import stop
from realtime.core.errors import ProfileError
from realtime.core.paths import out_of_space, sha256_file, write_atomic
from realtime.core.profile import YAML_FILE

__all__ = ["name_lock", "yaml_lock", "replace_dir", "recover", "temp_dir", "backup_path", "commit_files", "inside",
           "write_yaml", "write_error", "is_profile", "occupied"]

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def is_profile(folder: Path) -> bool:
    """True when `folder` is a profile folder (it holds a profile.yaml): the only kind of folder
    an enroll --force or a save with overwrite may replace."""
    return folder.is_dir() and (folder / YAML_FILE).is_file()


def occupied(path: Path) -> bool:
    """True when something (a file, a folder, a link, even a dangling one) has this path."""
    return path.exists() or path.is_symlink()


def backup_path(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.old")


def temp_dir(folder: Path) -> Path:
    """A new hidden temporary folder beside `folder`, named so that `recover` finds it."""
    return Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))


def write_error(root: Path, e: OSError, hint: str | None = None, where: str | None = None) -> ProfileError:
    """The one-line error of a write under `root` that failed with `e`: "cannot write `where`"
    (default "profiles in ROOT"; a write into one profile's folder says "the profile folder
    ROOT"), then, for a write that found no room (`out_of_space`: a full disk, a quota, a
    file-size limit), free some space (or, for a new profile, choose another folder), else
    `hint` (default: choose a writable folder with PUPPETEER_PROFILES)."""
    why = e.strerror or str(e)
    if e.errno in (errno.EEXIST, errno.ENOTDIR) and root.exists() and not root.is_dir():
        why = "it is a file, not a folder"   # mkdir's "File exists" said nothing useful
    elif refused := _creation_refused(root, e):
        why = refused
    if out_of_space(e):     # (an existing profile's folder is where it is: no other to choose)
        hint = "free some space and try again" + ("" if hint else ", or choose another folder with "
                                                  "PUPPETEER_PROFILES=FOLDER")
    hint = hint or "choose a writable folder with PUPPETEER_PROFILES=FOLDER"
    return ProfileError(f"cannot write {where or f'profiles in {root}'}: {why}; {hint}")


def _creation_refused(root: Path, e: OSError) -> str | None:
    """What a "No such file or directory" from creating `e.filename` means where the folder it
    was to be created in is there: its file system takes no new files (/proc: "cannot write
    profiles in /proc: No such file or directory" named no missing thing). "the folder cannot be
    created in PARENT (...)" where `e.filename` is `root` or a folder above it, "no file can be
    created in PARENT (...)" otherwise; None for any other error."""
    if e.errno != errno.ENOENT or e.filename is None or e.filename2 is not None:
        return None          # (a rename names two paths: its source may have gone)
    made = Path(os.fsdecode(e.filename))
    if not made.parent.is_dir():
        return None          # a folder on the way is missing: its own error says so
    root = Path(root)
    what = "the folder cannot be created" if made == root or made in root.parents else "no file can be created"
    return f"{what} in {made.parent} (its file system refused: {e.strerror or e})"


@contextlib.contextmanager
def name_lock(root: Path, name: str) -> Iterator[None]:
    """Hold the writer's lock of profile `name` under `root` (ProfileError when another process
    holds it, or when `root` is not writable)."""
    root = Path(root)
    path = root / f".{name}.lock"
    try:
        root.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(fd):
                os.close(fd)
                raise ProfileError(f"profile {name!r} is being written by another process (an enroll "
                                   f"or train of the same name) right now; wait for it to finish and "
                                   f"try again")
            try:    # a previous holder may have unlinked the file between our open and lock
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
    except OSError as e:
        raise write_error(root, e) from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


@contextlib.contextmanager
def yaml_lock(folder: Path) -> Iterator[None]:
    """Hold profile `folder`'s YAML lock (an exclusive flock on the folder itself, waited for)
    while its profile.yaml is read, changed and written back. `consent` (which takes no name
    lock: it may run beside a training) and `train`'s checkpoint commits both rewrite the YAML,
    and one's write could undo the other's: a consent revoked while a training hashed its
    checkpoint came back with the commit. Nothing to hold on Windows, where the folder does not
    open (the YAML's read then says what is wrong) or where its file system has no flock."""
    if sys.platform == "win32":   # pragma: no cover - Windows
        yield
        return
    import fcntl  # noqa: PLC0415 - POSIX only (Windows returns above)

    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        fd = None
    if fd is None:
        yield
        return
    try:
        with contextlib.suppress(OSError):      # a file system without flock (NFS: EBADF, ENOLCK)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":   # pragma: no cover - Windows
        import msvcrt  # noqa: PLC0415 - Windows only

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl  # noqa: PLC0415 - POSIX only (Windows takes the branch above)

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_dir(tmp: Path, folder: Path) -> None:
    """Give the finished folder `tmp` the path `folder`, replacing the folder there (see the
    module doc: an atomic exchange, else a backup that `recover` restores). A stop the user asked
    for (`realtime.core.stop`, even one a library swallowed) raises KeyboardInterrupt first."""
    stop.check()
    if not folder.exists():
        tmp.rename(folder)
        return
    if _exchange(tmp, folder):
        if tmp.is_symlink():                      # `tmp` now holds the previous profile
            tmp.unlink()
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    old = backup_path(folder)
    shutil.rmtree(old, ignore_errors=True)
    folder.rename(old)
    try:
        tmp.rename(folder)
    except BaseException:
        old.rename(folder)  # put the previous profile back
        raise
    shutil.rmtree(old, ignore_errors=True)


def recover(root: Path, name: str) -> str | None:
    """Finish what a killed save of `name` left (call it holding `name_lock`): a backup whose
    swap was interrupted goes back in place, stale backups and temporary folders go. Returns a
    note when a profile was restored."""
    root = Path(root)
    folder, old = root / name, backup_path(root / name)
    note = None
    if old.is_dir():
        if not folder.exists():
            old.rename(folder)
            note = f"restored profile {name!r} from the copy an interrupted enroll left"
        else:
            shutil.rmtree(old, ignore_errors=True)
    pattern = re.compile(rf"\.{re.escape(name)}\.partial-[A-Za-z0-9_]{{8}}")
    with contextlib.suppress(OSError):
        for p in root.iterdir():
            if pattern.fullmatch(p.name) and p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
    return note


def inside(folder: Path, rel: str) -> Path:
    """`folder / rel` resolved, or ProfileError when it leaves `folder` (a `..`, an absolute
    path, a symbolic link out): every path a profile's YAML names goes through here."""
    path = (Path(folder) / rel).resolve()
    if Path(folder).resolve() not in path.parents:
        raise ProfileError(f"profile file {rel!r} points outside its folder {folder}")
    return path


def write_yaml(path: Path, data: dict) -> None:
    """Replace the YAML file `path` atomically (`write_atomic`: hidden file, fsync, rename); a
    symbolic link in its place is replaced, never followed out of the profile."""
    write_atomic(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True), follow_links=False)


def commit_files(folder: Path, new: dict[str, Path], tier: str | None = None,
                 settings: dict | None = None) -> None:
    """Move the finished temporary files `new` (profile-relative path -> file) into the profile
    folder and list them in its YAML with their sha256, optionally switching the tier and
    merging settings, so that the profile loads at every instant (see the module doc)."""
    folder = Path(folder)
    with yaml_lock(folder):
        _commit_files(folder, new, tier, settings)


def _commit_files(folder: Path, new: dict[str, Path], tier: str | None, settings: dict | None) -> None:
    yml = folder / YAML_FILE
    meta = schema.read_yaml(yml)
    files = meta.setdefault("files", {})
    if not isinstance(files, dict):
        raise ProfileError(f"{yml}: files is not a mapping; enroll the profile again")
    for rel, entry in files.items():    # every path first: nothing moves in under a YAML that fails
        if isinstance(entry, dict):
            inside(folder, str(entry.get("path", rel)))
    digests = {}
    for rel, tmp in new.items():
        inside(folder, rel)
        digests[rel] = sha256_file(tmp)
    # 1. Each listed file that is replaced may be old or new for a moment: the YAML says both.
    changed = False
    for rel, digest in digests.items():
        if isinstance(files.get(rel), dict) and (folder / rel).is_file():
            current = sha256_file(folder / rel)   # what is there (an earlier commit may have stopped)
            if current != digest:
                files[rel] = {"path": rel, "sha256": digest, "previous_sha256": current}
                changed = True
    if changed:
        write_yaml(yml, meta)
    # 2. The files, one rename each (old or new, never half).
    for rel, tmp in new.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, folder / rel)
    # 3. Only the new versions, the new files, the tier and settings; an entry an earlier,
    # interrupted commit left with two digests keeps the one its file has.
    for rel, digest in digests.items():
        files[rel] = {"path": rel, "sha256": digest}
    for rel, entry in files.items():
        if isinstance(entry, dict) and entry.get("previous_sha256"):
            path = inside(folder, str(entry.get("path", rel)))
            if path.is_file() and sha256_file(path) == entry["previous_sha256"]:
                entry["sha256"] = entry["previous_sha256"]
            del entry["previous_sha256"]
    if tier is not None:
        meta["tier"] = tier
    if settings:
        merged = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
        merged.update(settings)
        meta["settings"] = merged
    write_yaml(yml, meta)
