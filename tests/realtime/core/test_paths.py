"""realtime.core.paths.cannot_write: why a file could not be written, asked before a long run."""
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
