"""realtime.core.paths: why a file could not be written (asked before a long run), and results
written whole or not at all."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from realtime.core import paths


def test_cannot_write_says_why_and_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "file").write_bytes(b"")
    assert paths.cannot_write(tmp_path / "x.mp4") is None
    assert "does not exist" in paths.cannot_write(tmp_path / "no" / "x.mp4")
    assert "is not a folder" in paths.cannot_write(tmp_path / "file" / "x.mp4")
    assert "is a folder" in paths.cannot_write(tmp_path)
    monkeypatch.setattr(paths.os, "access", lambda *a: False)   # root ignores permission bits
    assert "is not writable" in paths.cannot_write(tmp_path / "x.mp4")
    monkeypatch.undo()
    monkeypatch.setattr(paths.tempfile, "mkstemp", lambda **k: (_ for _ in ()).throw(
        OSError(30, "Read-only file system")))                 # a read-only mount
    assert "Read-only file system" in paths.cannot_write(tmp_path / "x.mp4")
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_a_name_too_long_for_the_folder_is_said_before_anything_is_written(tmp_path):
    """Before the fix (robustness audit): a 258-byte output name passed, the run did all its work,
    and only the rename of the finished file failed."""
    most = os.pathconf(tmp_path, "PC_NAME_MAX")
    assert paths.cannot_write(tmp_path / ("a" * (most - 4) + ".mp4")) is None
    long = tmp_path / ("é" * (most // 2) + ".mp4")             # characters of 2 bytes each
    assert paths.cannot_write(long) == (f"its name is {2 * (most // 2) + 4} bytes long, over the {most} a name "
                                        f"may have in {str(tmp_path)!r}")
    assert os.listdir(tmp_path) == []


def test_a_read_only_file_or_folder_is_not_writable_even_for_root(tmp_path):
    """Before the fix: as root (this machine's CI), `live --sink file:d10.mp4 --overwrite`
    replaced a 0444 clip in a 0555 folder: every permission check passes for root."""
    ro_file = tmp_path / "clip.mp4"
    ro_file.write_bytes(b"x")
    ro_file.chmod(0o444)
    assert paths.cannot_write(ro_file) == f"{str(ro_file)!r} is read-only (mode 0444)"
    ro_folder = tmp_path / "shared"
    ro_folder.mkdir()
    ro_folder.chmod(0o555)
    try:
        problem = paths.cannot_write(ro_folder / "x.json")
        assert problem in (f"folder {str(ro_folder)!r} is read-only (mode 0555)",
                           f"folder {str(ro_folder)!r} is not writable")      # not root
        assert os.listdir(ro_folder) == []
    finally:
        ro_folder.chmod(0o755)
    ro_file.chmod(0o644)
    assert paths.cannot_write(ro_file) is None


def test_a_tilde_is_checked_as_the_writer_takes_it(tmp_path, monkeypatch):
    """Before: `~/b.json` (unexpanded: `--json=~/b.json`) passed the check, expanded, then the
    bench wrote into a literal `./~/` folder or failed after its run."""
    monkeypatch.chdir(tmp_path)
    assert "does not exist" in paths.cannot_write("~/b.json")


def test_write_atomic_replaces_whole_or_leaves_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "result.json"
    out.write_text("old")
    assert paths.write_atomic(out, '{"a": 1}\n') == out
    assert out.read_text() == '{"a": 1}\n'
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())   # not mkstemp's 0600

    def fail(fd):      # the disk fills (or Ctrl-C comes) after the data went in, before the rename
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(paths.os, "fsync", fail)
    try:
        paths.write_atomic(out, b"new, half written")
    except OSError as exc:
        assert exc.errno == 28
    else:
        raise AssertionError("the failure was swallowed")
    assert out.read_text() == '{"a": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]   # no hidden leftover


def test_reserve_hidden_names_no_two_writers_alike(tmp_path):
    target = tmp_path / "take.mp4"
    a, b = paths.reserve_hidden(target, "partial"), paths.reserve_hidden(target, "partial")
    assert a != b and a.exists() and b.exists()
    for p in (a, b):
        assert p.parent == tmp_path and p.name.startswith(f".take.partial-{os.getpid()}-")
        assert p.suffix == ".mp4"                          # ffmpeg picks the container by it
    assert not target.exists()


def test_a_killed_writers_hidden_file_is_swept_by_the_next_write(tmp_path):
    """Review: a TensorRT build killed by SIGKILL left its hidden file forever, each under a
    new name. Only a dead writer's stale file for the same output is removed."""
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "engine.plan"
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from realtime.core import paths; "
        "print(paths.reserve_hidden(sys.argv[2], 'tmp'), flush=True); time.sleep(60)"),
        str(Path(__file__).resolve().parents[3]), str(target)], stdout=subprocess.PIPE, text=True)
    killed = Path(child.stdout.readline().strip())
    child.send_signal(signal.SIGKILL)
    child.wait()
    old = time.time() - 2 * paths.STALE_AFTER_S
    kept = [paths.reserve_hidden(target, "tmp"),                    # a live writer's (this one)
            paths.reserve_hidden(target, "partial"),                # another kind of file
            paths.reserve_hidden(tmp_path / "other.plan", "tmp"),   # another output's
            tmp_path / f".engine.tmp-{child.pid}-0123abcd.plan"]    # a dead writer's, but young
    kept[-1].touch()
    for p in [killed] + kept[:-1]:
        os.utime(p, (old, old))
    assert killed.exists() and killed.parent == tmp_path
    paths.write_atomic(target, b"plan")
    assert not killed.exists() and target.read_bytes() == b"plan"
    assert all(p.exists() for p in kept)
    assert paths.sweep_dead_writers(target, "tmp") == []

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_atomic_keeps_what_the_user_named(tmp_path, monkeypatch):
    """Review: the rename replaced a symbolic link by a file, reset an existing file's mode to
    0644, and as root would have replaced /dev/null or /dev/stdout by a JSON file."""
    kept = tmp_path / "private.json"
    kept.write_text("old")
    os.chmod(kept, 0o600)
    paths.write_atomic(kept, "new")
    assert kept.read_text() == "new" and kept.stat().st_mode & 0o777 == 0o600
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    real.write_text("x")
    link.symlink_to(real)
    paths.write_atomic(link, "y")
    assert link.is_symlink() and real.read_text() == "y"
    paths.write_atomic(os.devnull, "z")                         # written into, not replaced
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "private.json", "real.json"]


def test_write_atomic_takes_any_name_the_check_before_took(tmp_path):
    out = tmp_path / ("a" * 245 + ".json")            # the hidden file's name is longer
    assert paths.cannot_write(out) is None
    paths.write_atomic(out, "ok")
    assert out.read_text() == "ok" and len(list(tmp_path.iterdir())) == 1


def test_a_ctrl_c_mid_write_leaves_nothing(tmp_path, monkeypatch):
    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(paths.os, "fsync", interrupt)
    try:
        paths.write_atomic(tmp_path / "k.json", "a")
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interrupt was swallowed")
    assert list(tmp_path.iterdir()) == []


def test_write_npz_reads_back_as_np_savez_and_fails_once(tmp_path):
    """The arrays read back as np.savez's would (compressed or not, pickles refused), and a write
    that fails (a full disk) raises once: before, numpy left the archive to the garbage collector,
    whose own failing close printed "Exception ignored in: <function ZipFile.__del__ ...>"."""
    import errno
    import gc
    import io
    import sys

    import numpy as np

    from realtime.core.paths import write_npz

    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.str_("x"), "b": np.bool_(True)}
    for compress in (False, True):
        write_npz(tmp_path / f"{compress}.npz", arrays, compress=compress)
        with np.load(tmp_path / f"{compress}.npz", allow_pickle=False) as got:
            assert sorted(got.files) == ["a", "b", "s"] and np.array_equal(got["a"], arrays["a"])
            assert got["s"].dtype.kind == "U" and str(got["s"]) == "x" and bool(got["b"]) is True
    with pytest.raises(ValueError, match="pickle"):
        write_npz(tmp_path / "obj.npz", {"o": np.array([{"k": 1}], dtype=object)})

    class Full(io.BytesIO):
        def write(self, data):
            if self.tell() + len(data) > 100:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    unraisable = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        with pytest.raises(OSError, match="No space left"):
            write_npz(Full(), {"a": np.zeros(1000, np.float32)})
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert unraisable == []


def test_playlist_kind_reads_the_first_bytes_of_a_regular_file_only(tmp_path):
    """The sniff behind `open_video`'s refusal of playlists (security review F6): marks after a
    UTF-8 BOM and whitespace, any case; None for a pipe (never opened: the read would block), a
    folder, a missing file, and binary media that happens to hold the marks later on."""
    (tmp_path / "a.mp4").write_bytes(b"\xef\xbb\xbf\n  #EXTM3U\nx.ts\n")
    assert paths.playlist_kind(tmp_path / "a.mp4").startswith("an HLS/M3U playlist")
    (tmp_path / "b.mp4").write_bytes(b"FFCONCAT version 1.0\nfile x.ts\n")
    assert paths.playlist_kind(tmp_path / "b.mp4").startswith("an FFmpeg concat list")
    (tmp_path / "c.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\0" * 16 + b"\n#EXTM3U\nc=IN IP4 1.2.3.4\n")
    assert paths.playlist_kind(tmp_path / "c.mp4") is None
    os.mkfifo(tmp_path / "pipe.mp4")
    for path in (tmp_path / "pipe.mp4", tmp_path, tmp_path / "none.mp4", tmp_path / ("x" * 300)):
        assert paths.playlist_kind(path) is None


def test_cache_dir_order(monkeypatch, tmp_path):
    """The user's cache folder (the TensorRT engines built here, the consent records made here)."""
    monkeypatch.setenv("PUPPETEER_CACHE", str(tmp_path / "a"))
    assert paths.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("PUPPETEER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert paths.cache_dir() == tmp_path / "x" / "puppeteer"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.cache_dir() == tmp_path / "home" / ".cache" / "puppeteer"


@pytest.mark.parametrize(("error", "full"), [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
    (OSError(errno.EFBIG, "File too large"), True),      # a file-size limit (ulimit -f, FAT32's 4 GiB)
    (OSError(errno.EROFS, "Read-only file system"), False),
    (PermissionError(errno.EACCES, "Permission denied"), False),
    (OSError(errno.EIO, "Input/output error"), False),
    (OSError("no errno, no code"), False),
    # Rust's I/O errors (safetensors' SafetensorError) carry the code only in their message
    (RuntimeError("Error while serializing: I/O error: File too large (os error 27)"), True),
    (RuntimeError("I/O error: No space left on device (os error 28)"), True),
    (RuntimeError("I/O error: Permission denied (os error 13)"), False),
    (ValueError("28 bytes left"), False),
])
def test_out_of_space_is_a_full_disk_a_quota_or_a_file_size_limit(error, full):
    """Before (helper 127): five callers each had their own set (EFBIG in two, a "No space left"
    in the message in one), so a file-size limit got the full disk's hint in some and not in others."""
    assert paths.out_of_space(error) is full
