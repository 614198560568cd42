"""profiles.clip: pass 1 of video enrollment (tracking a clip)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.bench.helpers import moving_clip

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.tracking
def test_tracking_a_clip_prints_nothing_native(tmp_path, astronaut_rgb):
    """Before: every video enroll printed MediaPipe's start-up lines (absl's "WARNING: All log
    messages before absl::InitializeLog() ...", TFLite's notices), written by the graphs' own
    threads after the trackers were built. A fresh process: those lines come once a process."""
    clip = moving_clip(tmp_path / "clip.avi", astronaut_rgb, 6)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from profiles.clip import track_clip
        track = track_clip(Path({str(clip)!r}), progress=False)
        print(len(track.frames))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == "6\n", r.stderr[-2000:]
    assert r.stderr == ""


@pytest.mark.tracking
def test_frames_past_the_clips_end_are_said(tmp_path, astronaut_rgb, capsys):
    """Before the fix: `enroll --frames 0:99999` of a 6-frame clip enrolled 0:6 without a word."""
    from profiles.clip import track_clip

    clip = moving_clip(tmp_path / "clip.avi", astronaut_rgb, 6)
    assert list(track_clip(clip, start=2, stop=100, progress=False).frames) == [2, 3, 4, 5]
    assert capsys.readouterr().err == "note: clip.avi ends at frame 5, so --frames 2:100 enrolls frames 2:6\n"
    assert list(track_clip(clip, start=1, stop=4, progress=False).frames) == [1, 2, 3]
    assert capsys.readouterr().err == ""


@pytest.mark.tracking
def test_a_clip_that_ends_well_before_its_header_count_is_said(tmp_path, astronaut_rgb, capfd):
    """Before (stop 58, new-user review): enrolling a truncated video said nothing of it (`live`
    and `bench` do), and FFmpeg's own complaint ("[mjpeg @ 0x...] overread 8") came through."""
    from profiles.clip import track_clip

    whole = moving_clip(tmp_path / "whole.avi", astronaut_rgb, 40)
    data = whole.read_bytes()
    half = tmp_path / "half.avi"
    half.write_bytes(data[:len(data) // 2])                 # its header still announces 40 frames
    got = len(track_clip(half, progress=False).frames)
    assert 0 < got < 36
    assert capfd.readouterr().err == (f"note: half.avi ended at frame {got} of the 40 its header announces: "
                                       f"the file may be damaged (truncated or corrupt)\n")
    track_clip(whole, progress=False)
    assert capfd.readouterr().err == ""
