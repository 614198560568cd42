"""The Grabber capture thread, with fake sources (no camera, no clip)."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.io import capture, source
from realtime.io.grabber import CaptureTimeout, Grabber
from realtime.io.source import CaptureError


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


def test_realtime_paces_a_variable_rate_clip_by_its_own_frame_times():
    """Before (robustness audit): a variable-frame-rate clip was paced at its average rate, so
    its 5 fps part played twice as fast and its 30 fps part a third as fast. Then (to stop 65)
    one frame behind: the interval before a frame set the wait after it."""
    times = [0.0, 0.02, 0.04, 0.06, 0.16, 0.26, 0.36, 0.38, 0.40]   # 50 fps, then 10, then 50

    class Timed(FakeSource):
        media_time = None

        def read(self):
            fields = super().read()
            self.media_time = times[self.i - 1] if fields is not None else None
            return fields

    src = Timed(len(times), fps=len(times) / 0.4)       # the average rate
    with Grabber(src, realtime=True) as g:
        frames = drain(g)
    at = np.array([f.t_capture for f in frames]) - frames[0].t_capture
    assert len(frames) == len(times)
    # each frame goes out at its own time (one frame behind, every frame was 24-56 ms off);
    # the median is robust to a late wake-up on a loaded machine (the schedule catches up)
    assert np.median(np.abs(at - times)) < 0.01, (at, times)
    assert abs(at[-1] - times[-1]) < 0.03, (at, times)


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


def test_stop_discards_pending_frames_and_finishes():
    g = Grabber(FakeSource(3), realtime=False, queue_size=8).start()
    deadline = time.perf_counter() + 2
    while g.captured < 3 and time.perf_counter() < deadline:
        time.sleep(0.005)
    g.stop()
    assert g.finished and g.get(0.1) is None and g.delivered == 0 and g.dropped == 0


def test_held_frames_take_capture_indices():
    with Grabber(FakeSource(2), realtime=False) as g:
        held = g.held_frame()
        frames = drain(g)
    assert isinstance(held, Frame) and held.image is None
    indices = sorted([held.index] + [f.index for f in frames])
    assert indices == [0, 1, 2]  # unique: the held frame took one of the capture indices


def test_queue_size_must_be_positive():
    with pytest.raises(ValueError, match="queue_size must be >= 1, got 0"):
        Grabber(FakeSource(1), realtime=False, queue_size=0)


def test_capture_module_still_exports_the_grabber():
    # run.py, bench and the engine tests import these from realtime.io.capture (for now)
    assert capture.Grabber is Grabber
    assert capture.CaptureTimeout is CaptureTimeout is source.CaptureTimeout
    assert capture.CaptureError is CaptureError
