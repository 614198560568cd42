"""realtime.core.paths: why a file could not be written (asked before a long run), and results
written whole or not at all."""
from __future__ import annotations

import os

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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
