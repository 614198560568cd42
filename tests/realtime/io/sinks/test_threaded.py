"""ThreadedSink: never blocks in realtime, every frame offline, errors and events."""
from __future__ import annotations

import signal
import sys
import threading
import time

import cv2
import pytest

from realtime.io.sinks import make_sink
from realtime.io.sinks.base import SinkError
from realtime.io.sinks.null import NullSink
from realtime.io.sinks.threaded import ThreadedSink
from realtime.io.sinks.window import WindowSink
from tests.realtime.io.sinks import frame


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


def test_threaded_misuse_is_a_sink_error():
    ts = ThreadedSink(NullSink(), realtime=True)
    with pytest.raises(SinkError, match="write\\(\\) before open\\(\\)"):
        ts.write(frame(0))
    ts.open(32, 24, 30)
    with pytest.raises(SinkError, match="open\\(\\) called twice"):
        ts.open(32, 24, 30)
    ts.close()
    ts.close()  # idempotent
    with pytest.raises(SinkError, match="write\\(\\) after close\\(\\)"):
        ts.write(frame(1))
    with pytest.raises(ValueError, match="queue_size must be >= 1"):
        ThreadedSink(NullSink(), realtime=False, queue_size=0)


def test_threaded_offline_write_waiting_for_room_raises_the_worker_error():
    class FailsLate(SlowSink):
        def write(self, f):
            time.sleep(0.2)  # meanwhile the loop fills the queue and waits for room
            raise OSError("disk full")

    inner = FailsLate(delay=0.0)
    ts = ThreadedSink(inner, realtime=False, queue_size=1)
    ts.open(32, 24, 30)
    t0 = time.perf_counter()
    with pytest.raises(OSError, match="disk full"):
        for i in range(10):
            ts.write(frame(i))  # blocks on back-pressure until the worker fails
    assert time.perf_counter() - t0 < 2
    ts.close()
    assert inner.closed


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX interval timers")
def test_a_close_cut_short_by_a_signal_is_finished_by_closing_again():
    """A second close() must wait for the worker that the first (interrupted) one left running.
    Before the fix, close() joined the thread: on CPython 3.11 a join cut short by a signal
    handler's exception (a Ctrl-C, the SIGTERM handler) marks the thread as finished, so the
    second close returned at once and the process exited while the file sink was still
    finishing its file (a double Ctrl-C left the recording under its hidden partial name)."""
    release, finished = threading.Event(), []

    class ClosesSlowly(NullSink):
        def close(self):
            release.wait(10)
            finished.append(True)

    class Stop(Exception):
        pass

    def stop(signum, frame):
        raise Stop

    sink = ThreadedSink(ClosesSlowly(), realtime=False)
    sink.open(32, 24, 30)
    sink.write(frame(0))
    previous = signal.signal(signal.SIGALRM, stop)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Stop):
            sink.close()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert finished == []
    timer = threading.Timer(0.3, release.set)
    timer.start()
    sink.close()
    assert finished == [True]
    timer.join()
