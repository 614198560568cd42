"""Capture sources and the Grabber thread, without a camera (fake sources and tiny clips)."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from realtime.io.capture import (CameraSource, CaptureError, CaptureTimeout, ClipSource, Grabber,
                              ImageDirSource, Source, open_source)
from realtime.core.frame import Frame


class FakeSource:
    """n frames {"image": 2x2 filled with i}; optional per-read delay, failure, state dicts."""

    def __init__(self, n, fps=1000.0, is_live=False, read_delay=0.0, fail_at=None,
                 state=False):
        self.n, self.fps, self.is_live = n, fps, is_live
        self.size = (2, 2)
        self.frame_count = n
        self.read_delay, self.fail_at, self.state = read_delay, fail_at, state
        self.i = 0
        self.closed = 0

    def read(self):
        if self.read_delay:
            time.sleep(self.read_delay)
        if self.fail_at is not None and self.i == self.fail_at:
            raise ValueError(f"boom at {self.i}")
        if self.i >= self.n:
            return None
        i, self.i = self.i, self.i + 1
        if self.state:
            return {"state": {"frame": i}}
        return {"image": np.full((2, 2, 3), i % 256, np.uint8)}

    def close(self):
        self.closed += 1


def drain(grabber, timeout=5.0, consume_delay=0.0):
    frames = []
    while (f := grabber.get(timeout)) is not None:
        frames.append(f)
        if consume_delay:
            time.sleep(consume_delay)
    return frames


def write_clip(path, n=12, size=(64, 48), fps=25.0):
    """n solid-colour frames; frame i is BGR (10*i, 100, 200), i.e. RGB (200, 100, 10*i)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((size[1], size[0], 3), (10 * i, 100, 200), np.uint8))
    writer.release()
    return path


# -- Grabber --------------------------------------------------------------------------------

def test_non_realtime_delivers_every_frame_in_order():
    src = FakeSource(40)
    with Grabber(src, realtime=False, queue_size=2) as g:
        frames = drain(g, consume_delay=0.001)
        assert [f.index for f in frames] == list(range(40))
        assert [int(f.image[0, 0, 0]) for f in frames] == list(range(40))
        assert all(isinstance(f, Frame) for f in frames)
        assert g.dropped == 0 and g.delivered == 40 and g.captured == 40
        assert g.finished
        assert g.get(0.1) is None  # stays finished
    assert src.closed == 1
    t = [f.t_capture for f in frames]
    assert t == sorted(t)


def test_realtime_slow_consumer_drops_and_never_goes_back():
    src = FakeSource(60, is_live=True, read_delay=0.002)
    g = Grabber(src, realtime=True).start()
    frames = drain(g, consume_delay=0.015)
    g.stop()
    idx = [f.index for f in frames]
    assert all(b > a for a, b in zip(idx, idx[1:])), idx  # never older than one delivered
    assert g.dropped > 0
    assert g.delivered == len(frames)
    assert g.delivered + g.dropped == 60  # every captured frame is delivered or counted
    assert idx[-1] == 59  # the newest frame is the one left at the end


def test_realtime_paces_file_source_without_drift():
    fps = 100.0
    src = FakeSource(20, fps=fps)  # not live: paced like a camera
    t0 = time.perf_counter()
    with Grabber(src, realtime=True) as g:
        frames = drain(g)
    elapsed = time.perf_counter() - t0
    assert elapsed >= 19 / fps * 0.9, elapsed
    assert elapsed < 1.0, elapsed
    # on schedule: frame k is captured about k/fps after frame 0 (no accumulated drift)
    t = np.array([f.t_capture for f in frames]) - frames[0].t_capture
    k = np.array([f.index for f in frames]) - frames[0].index
    assert np.median(np.abs(t - k / fps)) < 0.005


def test_generic_over_the_source_dict():
    with Grabber(FakeSource(3, state=True), realtime=False) as g:
        frames = drain(g)
    assert [f.state for f in frames] == [{"frame": 0}, {"frame": 1}, {"frame": 2}]
    assert all(f.image is None for f in frames)


@pytest.mark.parametrize("realtime", [False, True])
def test_source_exception_is_raised_from_get(realtime):
    src = FakeSource(10, fail_at=3, is_live=True)
    g = Grabber(src, realtime=realtime).start()
    got = []
    with pytest.raises(ValueError, match="boom at 3"):
        while True:
            f = g.get(2.0)
            assert f is not None
            got.append(f.index)
    if not realtime:
        assert got == [0, 1, 2]
    with pytest.raises(ValueError):  # and keeps raising
        g.get(0.1)
    g.stop()
    assert src.closed == 1


def test_get_timeout_raises_capture_timeout():
    src = FakeSource(2, is_live=True, read_delay=1.0)
    g = Grabber(src, realtime=True).start()
    t0 = time.perf_counter()
    with pytest.raises(CaptureTimeout) as err:
        g.get(0.05)
    assert time.perf_counter() - t0 < 0.5
    assert isinstance(err.value, TimeoutError) and isinstance(err.value, CaptureError)
    g.stop(timeout=0.1)


def test_stop_joins_a_thread_blocked_on_back_pressure():
    g = Grabber(FakeSource(1000), realtime=False, queue_size=1).start()
    time.sleep(0.05)  # the reader is now waiting for room
    t0 = time.perf_counter()
    g.stop()
    assert time.perf_counter() - t0 < 0.5
    assert not g._thread.is_alive()
    assert g.finished


def test_stop_joins_a_thread_sleeping_on_the_pace():
    g = Grabber(FakeSource(5, fps=0.5), realtime=True).start()
    assert g.get(1.0).index == 0
    t0 = time.perf_counter()
    g.stop()  # the thread sleeps 2 s until the next frame is due
    assert time.perf_counter() - t0 < 0.5
    assert not g._thread.is_alive()


def test_stop_does_not_hang_on_a_read_that_blocks():
    release = threading.Event()

    class Stuck(FakeSource):
        def read(self):
            release.wait(5)
            return None

    src = Stuck(1, is_live=True)
    g = Grabber(src, realtime=True).start()
    time.sleep(0.02)
    t0 = time.perf_counter()
    g.stop(timeout=0.2)
    assert time.perf_counter() - t0 < 0.5
    release.set()
    g._thread.join(2)
    assert not g._thread.is_alive() and src.closed == 1  # closed by the thread when freed


def test_get_before_start_is_an_error():
    with pytest.raises(RuntimeError):
        Grabber(FakeSource(1), realtime=False).get(0.1)


# -- sources --------------------------------------------------------------------------------

def test_clip_source_reads_rgb_frames_and_file_fps(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", n=12, fps=25.0)
    src = ClipSource(path)
    assert src.fps == pytest.approx(25.0)
    assert src.size == (64, 48) and src.frame_count == 12 and src.is_live is False
    with Grabber(src, realtime=False) as g:
        frames = drain(g)
    assert [f.index for f in frames] == list(range(12))
    for i, f in enumerate(frames):
        assert f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8
        mean = f.image.reshape(-1, 3).mean(axis=0)  # RGB order (BGR converted)
        assert np.allclose(mean, (200, 100, 10 * i), atol=8), (i, mean)


def test_clip_in_realtime_is_paced_at_the_file_rate(tmp_path):
    src = ClipSource(write_clip(tmp_path / "clip.mp4", n=10, fps=25.0))
    assert isinstance(src, Source)
    t0 = time.perf_counter()
    with Grabber(src, realtime=True) as g:
        frames = drain(g)
    elapsed = time.perf_counter() - t0
    assert 9 / 25 * 0.9 <= elapsed < 1.5, elapsed
    assert [f.index for f in frames] == list(range(10)) and g.dropped == 0


def test_clip_source_resize_and_fps_override(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", n=3)
    src = ClipSource(path, resize=(32, 24), fps=50)
    assert src.size == (32, 24) and src.fps == 50
    assert src.read()["image"].shape == (24, 32, 3)
    src.close()
    src.close()  # idempotent
    assert src.read() is None


def test_clip_source_errors(tmp_path):
    with pytest.raises(CaptureError, match="not found.*missing.mp4"):
        ClipSource(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(CaptureError, match="junk.mp4"):
        ClipSource(junk)
    assert issubclass(CaptureError, RuntimeError)


def test_image_dir_source_natural_order_and_size(tmp_path):
    for i in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((20, 30, 3), (0, 0, i * 10), np.uint8))
    cv2.imwrite(str(tmp_path / "f11.JPG"), np.full((40, 60, 3), 0, np.uint8))  # other size
    (tmp_path / "notes.txt").write_text("not an image")
    src = ImageDirSource(tmp_path, fps=12)
    assert src.frame_count == 4 and src.fps == 12 and src.size == (30, 20)
    reds = [int(src.read()["image"][0, 0, 0]) for _ in range(3)]
    assert reds == [10, 20, 100]  # f1, f2, f10 (red channel: BGR -> RGB)
    assert src.read()["image"].shape == (20, 30, 3)  # resized to the first image's size
    assert src.read() is None


def test_image_dir_source_errors(tmp_path):
    with pytest.raises(CaptureError, match="no images"):
        ImageDirSource(tmp_path)
    with pytest.raises(CaptureError, match="not found"):
        ImageDirSource(tmp_path / "nope")


def test_open_source_dispatch(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", n=2)
    assert isinstance(open_source(str(clip)), ClipSource)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "a.png"), np.zeros((8, 8, 3), np.uint8))
    src = open_source(str(imgs), size=(4, 4), fps=15)
    assert isinstance(src, ImageDirSource) and src.size == (4, 4) and src.fps == 15
    with pytest.raises(CaptureError,
                       match="is neither a camera index, a video file nor a folder of images"):
        open_source(str(tmp_path / "nothing-here"))


def test_camera_that_cannot_open_names_index_and_what_to_check():
    # No camera on CI; index 9 is absent on ordinary machines too.
    with pytest.raises(CaptureError) as err:
        open_source("9")
    msg = str(err.value)
    assert "camera 9" in msg and "other application" in msg
    with pytest.raises(CaptureError, match="camera 9"):
        CameraSource(9)
    with pytest.raises(CaptureError, match="camera 9"):
        open_source("/dev/video9")


class FakeVideoCapture:
    """Stands in for cv2.VideoCapture(index, api): a 'camera' delivering 40x30 BGR frames."""

    fail_after = None

    def __init__(self, index, api=None):
        self.reads, self.props = 0, {}

    def isOpened(self):
        return True

    def set(self, prop, value):
        self.props[prop] = value
        return True

    def get(self, prop):
        return 60.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            return False, None
        img = np.zeros((30, 40, 3), np.uint8)
        img[..., 0] = self.reads % 256  # blue channel carries the read count
        return True, img

    def release(self):
        pass


def test_camera_source_with_a_fake_device(monkeypatch):
    monkeypatch.setattr(cv2, "VideoCapture", FakeVideoCapture)
    cam = CameraSource(0, size=(20, 15), fps=60, fourcc="MJPG")
    assert cam.is_live and cam.frame_count is None and cam.fps == 60 and cam.size == (20, 15)
    assert cam._cap.props[cv2.CAP_PROP_FRAME_WIDTH] == 20
    img = cam.read()["image"]
    assert img.shape == (15, 20, 3) and img[0, 0, 2] == 2  # fresh frame (not the probe), RGB
    with Grabber(cam, realtime=True) as g:
        assert g.get(1.0).image.shape == (15, 20, 3)


def test_camera_that_stops_delivering_raises(monkeypatch):
    monkeypatch.setattr(cv2, "VideoCapture", FakeVideoCapture)
    monkeypatch.setattr(FakeVideoCapture, "fail_after", 3)
    cam = CameraSource(2)
    assert cam.size == (40, 30)
    cam.read()
    cam.read()
    with pytest.raises(CaptureError, match="camera 2 stopped delivering frames"):
        cam.read()
