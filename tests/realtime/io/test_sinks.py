"""Sinks without a display or virtual camera: null, file round trip, errors, overlay, threading."""
from __future__ import annotations

import platform
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.io.sinks import (SINKS, FileSink, NullSink, SinkError, ThreadedSink,
                            VirtualCameraSink, WindowSink, draw_overlay, key_to_event, make_sink,
                            vcam_install_hint)

VCAM_LINE = 'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="Puppeteer"'


def frame(i, w=32, h=24, value=None):
    img = np.full((h, w, 3), (i * 10) % 256 if value is None else value, np.uint8)
    return Frame(index=i, t_capture=time.perf_counter(), output=img)


# -- null / file ----------------------------------------------------------------------------

def test_null_sink_counts_and_keeps_last():
    s = NullSink()
    s.open(32, 24, 30)
    for i in range(5):
        s.write(frame(i))
    s.close()
    assert s.frames_written == 5 and s.last.index == 4 and s.poll_events() == []
    with pytest.raises(SinkError, match="40x24.*32x24"):
        s.write(frame(5, w=40))
    bad = frame(6)
    bad.output = bad.output.astype(np.float32)
    with pytest.raises(SinkError, match="uint8"):
        s.write(bad)


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


# -- spec parsing ---------------------------------------------------------------------------

def test_make_sink_registry(tmp_path):
    assert isinstance(SINKS, dict) and set(SINKS) == {"null", "file", "vcam", "window"}
    assert isinstance(make_sink("null", 30), NullSink)
    s = make_sink(f"file:{tmp_path / 'a.mp4'}", 25)
    assert isinstance(s, FileSink) and s.fps == 25 and s.path.name == "a.mp4"
    w = make_sink("window:Preview", 30)
    assert isinstance(w, WindowSink) and w.title == "Preview"
    with pytest.raises(SinkError) as err:
        make_sink("hdmi", 30)
    for choice in ("null", "file:OUT.mp4", "vcam", "window"):
        assert choice in str(err.value)
    with pytest.raises(SinkError, match="file:OUT.mp4"):
        make_sink("file", 30)


# -- virtual camera -------------------------------------------------------------------------

def test_vcam_install_hints_per_os():
    linux = vcam_install_hint("Linux")
    assert VCAM_LINE in linux and "apt install v4l2loopback-dkms" in linux
    for system in ("Windows", "Darwin"):
        assert "OBS Studio" in vcam_install_hint(system)
        assert "modprobe" not in vcam_install_hint(system)


def test_vcam_without_device_says_what_to_install():
    try:
        import pyvirtualcam
        with pyvirtualcam.Camera(64, 48, 30):
            pytest.skip("a virtual camera device exists here")
    except RuntimeError:
        pass
    sink = VirtualCameraSink(30)
    with pytest.raises(SinkError) as err:
        sink.open(64, 48, 30)
    msg = str(err.value)
    assert vcam_install_hint() in msg and "Underlying error" in msg
    if platform.system() == "Linux":
        assert VCAM_LINE in msg and "v4l2loopback" in msg.split("Underlying error")[1]


def test_vcam_unknown_backend_and_missing_package(monkeypatch):
    with pytest.raises(SinkError, match="unknown backend 'nope'"):
        VirtualCameraSink(30, backend="nope").open(64, 48, 30)
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import now fails
    with pytest.raises(SinkError, match="pip install pyvirtualcam"):
        VirtualCameraSink(30)


# -- window ---------------------------------------------------------------------------------

def test_key_to_event():
    assert key_to_event(ord("n")) == "recalibrate"
    assert key_to_event(ord(" ")) == "toggle"
    assert key_to_event(ord("q")) == key_to_event(27) == "quit"
    assert key_to_event(-1) is None and key_to_event(ord("x")) is None
    assert key_to_event(0x100000 | ord("q")) == "quit"  # modifier bits are ignored


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux display rules")
def test_window_without_display_says_what_to_use(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SinkError) as err:
        WindowSink().open(64, 48, 30)
    assert "--sink file:out.mp4" in str(err.value) and "null" in str(err.value)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux display rules")
def test_window_with_unreachable_display_fails_cleanly(monkeypatch):
    # OpenCV's Qt aborts the process on a dead X display: the sink must find out first.
    monkeypatch.setenv("DISPLAY", ":987")
    with pytest.raises(SinkError, match=r"display ':987'.*--sink file:out.mp4"):
        WindowSink().open(64, 48, 30)


def test_draw_overlay_is_pure_and_draws():
    img = np.full((120, 160, 3), 200, np.uint8)
    f = Frame(index=0, t_capture=0.0, output=img)
    f.landmarks = np.array([[100.0, 100.0, 0.0], [150.0, 110.0, 0.0], [-5, 3, 0], [1e6, 5, 0],
                            [np.nan, 1, 0]], np.float32)
    f.timings = {"track": 3.25, "render": 1.5}
    out = draw_overlay(img, f, fps=29.7)
    assert (img == 200).all()  # input untouched
    assert out.shape == img.shape and out.dtype == np.uint8
    assert tuple(out[100, 100]) == (0, 255, 0) and tuple(out[110, 150]) == (0, 255, 0)
    assert (out[:20, :40] != 200).any()  # the text box in the corner
    assert (out[75:95, 110:140] == 200).all()  # nothing else
    # landmarks in driver pixels are scaled when the output has another size
    f.image = np.zeros((60, 80, 3), np.uint8)
    f.landmarks = np.array([[50.0, 50.0, 0.0]], np.float32)
    assert tuple(draw_overlay(img, f, None)[100, 100]) == (0, 255, 0)
    # no landmarks, no timings: still fine
    plain = draw_overlay(img, Frame(index=1, t_capture=0.0, output=img), None)
    assert plain.shape == img.shape


# -- threaded wrapper -----------------------------------------------------------------------

class SlowSink(NullSink):
    name = "slow"

    def __init__(self, delay, fail_at=None, events=()):
        super().__init__()
        self.delay, self.fail_at = delay, fail_at
        self.written_indices = []
        self.threads = set()
        self._events = list(events)
        self.closed = False

    def open(self, width, height, fps=None):
        self.threads.add(threading.get_ident())
        super().open(width, height, fps)

    def write(self, f):
        self.threads.add(threading.get_ident())
        if self.fail_at is not None and len(self.written_indices) == self.fail_at:
            raise OSError(f"disk full at frame {f.index}")
        time.sleep(self.delay)
        super().write(f)
        self.written_indices.append(f.index)

    def poll_events(self):
        self.threads.add(threading.get_ident())
        events, self._events = self._events, []
        return events

    def close(self):
        self.threads.add(threading.get_ident())
        self.closed = True


def test_threaded_realtime_never_blocks_and_counts_drops():
    inner = SlowSink(delay=0.04)
    seen = []
    ts = ThreadedSink(inner, realtime=True, on_written=seen.append)
    ts.open(32, 24, 30)
    frames, worst = [], 0.0
    for i in range(20):
        f = frame(i)
        frames.append(f)
        t0 = time.perf_counter()
        ts.write(f)
        worst = max(worst, time.perf_counter() - t0)
        time.sleep(0.005)
    ts.close()
    assert worst < 0.02, worst
    assert ts.sink_dropped > 0
    assert ts.written + ts.sink_dropped == 20
    assert inner.written_indices == sorted(inner.written_indices)
    assert inner.written_indices[-1] == 19  # the newest frame wins
    assert [f.index for f in seen] == inner.written_indices
    for f in seen:
        assert f.t_sink is not None and f.t_sink >= f.t_capture and f.latency_ms() >= 0
    assert inner.closed and ts.name == "slow"


def test_threaded_non_realtime_writes_every_frame_in_order():
    inner = SlowSink(delay=0.002)
    ts = ThreadedSink(inner, realtime=False, queue_size=2)
    ts.open(32, 24, 30)
    for i in range(15):
        ts.write(frame(i))
    ts.close()
    assert inner.written_indices == list(range(15)) and ts.sink_dropped == 0


def test_threaded_worker_error_surfaces_on_next_write():
    inner = SlowSink(delay=0.0, fail_at=2)
    ts = ThreadedSink(inner, realtime=False, queue_size=1)
    ts.open(32, 24, 30)
    with pytest.raises(OSError, match="disk full at frame 2"):
        for i in range(50):
            ts.write(frame(i))
            time.sleep(0.002)
    with pytest.raises(OSError):  # the sink stays failed
        ts.write(frame(99))
    ts.close()  # already surfaced: close does not raise it again
    assert inner.closed


def test_threaded_worker_error_surfaces_on_close():
    ts = ThreadedSink(SlowSink(delay=0.0, fail_at=0), realtime=True)
    ts.open(32, 24, 30)
    ts.write(frame(0))
    with pytest.raises(OSError, match="disk full"):
        ts.close()


def test_threaded_open_error_and_events_from_worker_thread(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        with pytest.raises(SinkError, match="--sink file:out.mp4"):
            ThreadedSink(WindowSink(), realtime=True).open(32, 24, 30)
    inner = SlowSink(delay=0.0, events=["toggle", "quit"])
    ts = ThreadedSink(inner, realtime=True, poll_interval=0.01)
    ts.open(32, 24, 30)
    ts.write(frame(0))
    deadline = time.perf_counter() + 2
    events = []
    while len(events) < 2 and time.perf_counter() < deadline:
        events += ts.poll_events()
        time.sleep(0.01)
    ts.close()
    assert events == ["toggle", "quit"]
    assert len(inner.threads) == 1 and threading.get_ident() not in inner.threads


def test_threaded_file_sink_gets_every_frame(tmp_path):
    path = tmp_path / "t.mp4"
    ts = ThreadedSink(make_sink(f"file:{path}", 30), realtime=False)
    ts.open(32, 24, 30)
    for i in range(8):
        ts.write(frame(i))
    ts.close()
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 8
