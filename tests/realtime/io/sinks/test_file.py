"""The file sink: an mp4 round trip through ffmpeg and its errors."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.io.sinks.base import SinkError
from realtime.io.sinks.file import FileSink
from tests.realtime.io.sinks import frame


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
    assert fourcc in ("h264", "avc1")
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
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
