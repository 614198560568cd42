"""The file sink: an mp4 round trip through ffmpeg and its errors."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.io.sinks.base import SinkError
from realtime.io.sinks.file import FileSink
from tests.realtime.io.sinks import frame


def _decode(path) -> list[np.ndarray]:
    """Every frame of the video at `path`, RGB."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def test_file_sink_round_trip_odd_size(tmp_path):
    path = tmp_path / "out.mp4"
    w, h = 65, 49  # odd: padded to 66x50 for yuv420p
    sink = FileSink(path, fps=30)
    sink.open(w, h, 30)
    for k in range(10):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, :] = (20 * k, 255 - 20 * k, 128)  # frame-number pattern, RGB
        img[:, :8] = 255 if k % 2 else 0         # and a stripe that blinks
        sink.write(Frame(index=k, t_capture=0.0, output=img))
    sink.close()
    sink.close()  # idempotent
    assert path.read_bytes()[4:8] == b"ftyp"
    cap = cv2.VideoCapture(str(path))
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().lower()
    cap.release()
    assert fourcc in ("h264", "avc1")
    frames = _decode(path)
    assert len(frames) == 10
    assert frames[0].shape[:2] == (50, 66)
    for k, img in enumerate(frames):
        assert np.allclose(img[20, 30], (20 * k, 255 - 20 * k, 128), atol=10), (k, img[20, 30])
        assert abs(int(img[20, 3].mean()) - (255 if k % 2 else 0)) < 25


def test_file_sink_errors(tmp_path):
    with pytest.raises(SinkError, match="does not exist"):
        FileSink(tmp_path / "no" / "such" / "out.mp4", 30)
    sink = FileSink(tmp_path / "x.mp4", 30)
    with pytest.raises(SinkError, match="before open"):
        sink.write(frame(0))
    sink.open(32, 24, 30)
    with pytest.raises(SinkError, match="opened at 32x24"):
        sink.write(frame(0, w=16))
    sink.write(frame(0))
    sink.close()


def test_ffmpeg_without_imageio_ffmpeg_comes_from_the_path_or_is_one_error(monkeypatch):
    """imageio_ffmpeg is optional (a bare GPU machine has none): an ffmpeg on the PATH serves,
    else the file sink says what to install."""
    import sys

    from realtime.io.sinks import file as file_mod
    from realtime.io.sinks.base import SinkError

    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    monkeypatch.setattr(file_mod.shutil, "which", lambda name: "/usr/bin/ffmpeg")
    assert file_mod.ffmpeg_exe() == "/usr/bin/ffmpeg"
    monkeypatch.setattr(file_mod.shutil, "which", lambda name: None)
    with pytest.raises(SinkError, match="pip install imageio-ffmpeg"):
        file_mod.ffmpeg_exe()


# -- what the output may be, checked before anything starts (check_output) -----------------------

def test_the_output_is_never_an_input_under_any_name(tmp_path):
    """The driver, another role's input, a hard link or a symlink to one: refused, the input
    untouched; a new file beside them is fine."""
    from realtime.io.sinks.file import check_output

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"precious")
    (tmp_path / "hard.mp4").hardlink_to(clip)
    (tmp_path / "soft.mp4").symlink_to(clip)
    for out, protect, expect in [
        (clip, [clip], "is the driver"),
        (clip, [(clip, "the --pose-from source")], "is the --pose-from source"),
        (tmp_path / "hard.mp4", [clip], "is the driver"),
        (tmp_path / "soft.mp4", [clip], "is the driver"),
    ]:
        with pytest.raises(SinkError, match=f"{expect} .*writing there would destroy it"):
            check_output(out, overwrite=True, protect=protect)
        with pytest.raises(SinkError, match=expect):
            FileSink(out, 30, overwrite=True, protect=protect)
    assert clip.read_bytes() == b"precious"
    assert check_output(tmp_path / "new.mp4", protect=[clip]) == tmp_path / "new.mp4"


@pytest.mark.parametrize("name", ["x.txt", "a.jpg", "noext", ".mp4"])
def test_a_name_the_sink_does_not_write_is_refused(tmp_path, name):
    """(".mp4", a hidden name with no extension, was told "name it .mp4.mp4".)"""
    with pytest.raises(SinkError, match=r"is not a video file name .*name it \w+\.mp4, or choose another sink"):
        FileSink(tmp_path / name, 30)
    assert list(tmp_path.iterdir()) == []


def test_an_option_s_output_is_named_by_the_option(tmp_path):
    """Before the fix: `demo --out ""` said "the file sink needs a path: file:OUT.mp4" and a
    wrong name ended "or choose another sink" (demo has no sink)."""
    from realtime.io.sinks.file import check_output

    with pytest.raises(SinkError, match=r"^--out needs a file name: --out OUT.mp4$"):
        check_output("", option="--out")
    with pytest.raises(SinkError) as caught:
        check_output(tmp_path / "x.txt", option="--out")
    assert str(caught.value).startswith("--out ") and "sink" not in str(caught.value)
    assert str(caught.value).endswith("name it x.mp4")


def test_an_avi_is_written_and_plays(tmp_path):
    """Before the fix: x.avi was refused (the base code wrote a playable H.264 AVI)."""
    sink = FileSink(tmp_path / "x.avi", 30)
    sink.open(32, 24, 30)
    for k in range(5):
        sink.write(frame(k))
    sink.close()
    assert sink.kept == tmp_path / "x.avi"
    cap = cv2.VideoCapture(str(sink.kept))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 5


def test_an_unwritable_folder_is_refused_before_open(tmp_path, monkeypatch):
    """Permission bits (root ignores them: os.access is what is asked) and a folder that is a file."""
    import os

    from realtime.core import paths

    monkeypatch.setattr(paths.os, "access", lambda *a, **k: False)
    with pytest.raises(SinkError, match="is not writable"):
        FileSink(tmp_path / "x.mp4", 30)
    monkeypatch.undo()
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(SinkError, match="is not a folder"):
        FileSink(tmp_path / "file" / "x.mp4", 30)
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_closed_before_the_first_frame_leaves_nothing(tmp_path):
    """A Ctrl-C before any frame reached the file: no empty mp4, no hidden partial file."""
    sink = FileSink(tmp_path / "x.mp4", 30)
    sink.open(32, 24, 30)
    sink.close()
    assert sink.kept is None and list(tmp_path.iterdir()) == []


def test_another_process_s_partial_file_is_never_deleted(tmp_path):
    """Before the fix: a partial file whose PID was not visible here was deleted when the name
    was written again: a live writer's in another container or NFS client, or an older
    version's recording."""
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    other = tmp_path / f".x.partial-{gone}.mp4"
    other.write_bytes(b"x" * 261)
    sink = FileSink(tmp_path / "x.mp4", 30)
    sink.open(32, 24, 30)
    sink.write(frame(0))
    sink.close()
    assert sink.kept == tmp_path / "x.mp4"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, "x.mp4"])
    assert other.read_bytes() == b"x" * 261


def test_a_recording_is_always_kept_under_a_visible_name(tmp_path):
    """Before the fix: when the name and NAME-PID.mp4 both appeared while recording, the
    recording was "kept as" its hidden partial file. Now: the next free NAME-PID-N.mp4."""
    import os

    out = tmp_path / "x.mp4"
    sink = FileSink(out, 30)
    sink.open(32, 24, 30)
    sink.write(frame(0))
    out.write_bytes(b"theirs")
    (tmp_path / f"x-{os.getpid()}.mp4").write_bytes(b"theirs too")
    sink.close()        # the recording is whole and kept: no error (the run says where it is)
    assert sink.kept == tmp_path / f"x-{os.getpid()}-2.mp4" and sink.displaced == out
    assert out.read_bytes() == b"theirs"
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_a_recording_has_an_ordinary_file_s_mode(tmp_path):
    """Before (review): the partial file came from mkstemp (mode 0600), which FFmpeg's -y and
    the rename kept: every recording was unreadable to the group and others."""
    import os

    umask = os.umask(0o022)
    try:
        sink = FileSink(tmp_path / "x.mp4", 30)
        sink.open(32, 24, 30)
        sink.write(frame(0))
        sink.close()
    finally:
        os.umask(umask)
    assert (tmp_path / "x.mp4").stat().st_mode & 0o777 == 0o644


def test_a_sink_that_cannot_start_ffmpeg_leaves_nothing(tmp_path, monkeypatch):
    """Before (review): with no FFmpeg (a bare GPU machine) open() raised after creating the
    hidden partial file, and nothing removed it."""
    from realtime.io.sinks import file

    def missing():
        raise SinkError("file sink: needs FFmpeg")

    monkeypatch.setattr(file, "ffmpeg_exe", missing)
    sink = FileSink(tmp_path / "x.mp4", 30)
    with pytest.raises(SinkError, match="needs FFmpeg"):
        sink.open(32, 24, 30)
    sink.close()
    assert list(tmp_path.iterdir()) == []

    def failing(*a, **k):
        raise OSError(8, "Exec format error")

    monkeypatch.setattr(file, "ffmpeg_exe", lambda: "/bin/true")
    monkeypatch.setattr(file.subprocess, "Popen", failing)
    with pytest.raises(SinkError, match="cannot start ffmpeg"):
        FileSink(tmp_path / "x.mp4", 30).open(32, 24, 30)
    assert list(tmp_path.iterdir()) == []


def test_two_writers_of_one_output_never_share_a_partial_file(tmp_path):
    """Before: the partial file was `.x.partial-PID.mp4`, so two writers with one PID (a second
    sink in this process, or processes in two containers on a shared folder) wrote into the same
    file (ffmpeg's -y), and one's discard deleted the other's."""
    a, b = FileSink(tmp_path / "x.mp4"), FileSink(tmp_path / "x.mp4")
    a.open(32, 32, 30.0)
    b.open(32, 32, 30.0)
    try:
        assert a.partial != b.partial
        assert a.partial.name.startswith(".x.partial-") and a.partial.suffix == ".mp4"
    finally:
        b.close()                   # no frame: b leaves nothing, and a's file is still there
        assert a.partial.exists()
        a.close()
    assert list(tmp_path.iterdir()) == []


def test_a_change_of_a_few_frames_is_coded_as_finely_as_the_rest(tmp_path):
    """A blink against a still background lasts three frames: x264's macroblock tree (its
    default) coded such short-lived content coarsely, a shut lid speckled with the open eye's
    white (`X264_PARAMS`). Here its error stays near the background's: RMSE 5.0 against 7.2
    with the tree on, the still background's 2.1."""
    rng = np.random.default_rng(0)
    h, w = 192, 256
    still = cv2.GaussianBlur(rng.integers(60, 200, (h, w, 3)).astype(np.uint8), (0, 0), 2)
    patch = cv2.GaussianBlur(rng.integers(120, 255, (40, 64, 3)).astype(np.uint8), (0, 0), 1)
    path = tmp_path / "blink.mp4"
    sink = FileSink(path, fps=30)
    sink.open(w, h, 30)
    src = []
    for k in range(60):
        img = still.copy()
        if 30 <= k < 33:
            img[80:120, 96:160] = patch
        src.append(img)
        sink.write(Frame(index=k, t_capture=0.0, output=img))
    sink.close()
    out = _decode(path)
    assert len(out) == 60
    for k in (30, 31, 32):
        err = np.sqrt(((out[k][80:120, 96:160].astype(np.float64) - src[k][80:120, 96:160]) ** 2).mean())
        assert err < 6.0, (k, err)
