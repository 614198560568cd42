"""The Grabber capture thread, with fake sources (no camera, no clip)."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.io import capture, source
from realtime.io.grabber import CaptureTimeout, Grabber, Pacer
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


class FakeClock:
    """A clock only the grabber's thread moves: its pacing holds (`wait`) and the fake reads'
    delays add to it, so pacing tests are exact on a busy machine (no real sleeps)."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def wait(self, seconds):
        self.t += seconds
        return False        # never told to stop


class SlowReads(FakeSource):
    """A FakeSource whose read of frame i takes `delays.get(i, read_s)` seconds of `clock`, and
    which gives `media_times` (the file's own frame times) when given."""

    def __init__(self, n, clock, fps=30.0, delays=None, read_s=0.001, media_times=None):
        super().__init__(n, fps=fps)
        self.clock, self.delays, self.read_s, self.times = clock, delays or {}, read_s, media_times
        self.media_time = None

    def read(self):
        self.clock.t += self.delays.get(self.i, self.read_s)
        fields = super().read()
        if self.times is not None:
            self.media_time = self.times[self.i - 1] if fields is not None else None
        return fields


def paced(src, clock):
    """A started realtime Grabber on `src` with `clock`, and the list of every frame it hands on
    (the slot may replace some before the test's consumer takes them: that is not under test)."""
    g = Grabber(src, realtime=True, clock=clock, wait=clock.wait)
    sent = []
    put = g._mailbox.put

    def record(frame):
        sent.append(frame)
        return put(frame)

    g._mailbox.put = record
    return g.start(), sent


def test_realtime_paces_file_source_without_drift():
    clock = FakeClock()
    g, sent = paced(SlowReads(20, clock, fps=100.0, read_s=0.004), clock)
    drain(g)
    g.stop()
    # frame k goes out k/fps after frame 0 (the read's time is inside the hold, not added to it)
    assert [f.index for f in sent] == list(range(20))
    t = np.array([f.t_capture for f in sent]) - sent[0].t_capture
    np.testing.assert_allclose(t, np.arange(20) / 100.0, atol=1e-9)
    assert g.skipped == 0 and g.behind_s == 0.0


def test_a_paced_clip_skips_the_frames_that_fell_due_while_its_reader_was_behind():
    """Before (honesty audit): a reader more than a frame late restarted its schedule from now, so
    under load a paced clip played slow, every frame shown and none dropped, like no camera."""
    fps, stall = 30.0, 0.25                        # frame 10's read takes a quarter second
    clock = FakeClock()
    g, sent = paced(SlowReads(40, clock, fps=fps, delays={10: stall}), clock)
    drain(g)
    g.stop()
    # frame 10 is read at 0.25 + ~0.3 s, when frames up to 16 are due: 10..15 are skipped, frame 16
    # goes at once and the rest on the clip's own clock (the first frame's read ends at 0.001)
    skipped = [k for k in range(40) if k not in {f.index for f in sent}]
    assert skipped == list(range(10, 16)), skipped
    assert g.skipped == 6 and g.captured == 40
    assert g.dropped >= 6 and g.delivered + g.dropped == 40      # every frame read is one or the other
    on_time = [f for f in sent if f.index > 16]
    np.testing.assert_allclose([f.t_capture for f in on_time],
                               [0.001 + f.index / fps for f in on_time], atol=1e-9)
    assert g.behind_s == 0.0


@pytest.mark.parametrize("stall", [0.25, 0.4, 2.0])
def test_one_long_stall_is_skipped_over_not_taken_for_a_slow_reader(stall):
    """Before: the stalled read itself entered the smoothed read time at a tenth of its length, so
    a stall past ten periods (0.35 s at 30 fps) made the clip's reader look too slow for it: the
    schedule restarted and the clip played late, frames unskipped, as `behind_s`."""
    period = 1.0 / 30.0
    pacer = Pacer(period)
    for k in range(10):                                   # on time, fast reads
        assert pacer.place(k * period, None, 0.001) == pytest.approx(k * period)
    now = 9 * period + stall                              # frame 10's read took `stall`
    assert pacer.place(now, None, stall) is None          # the next frame is due: skipped
    assert pacer.restarts == 0 and pacer.behind_s == 0.0 and pacer.skipped == 1
    assert pacer.read_s < period


def test_a_reader_slower_than_the_clip_is_still_found_with_its_reads_capped():
    # reads of three periods each, capped at two: the smoothed read time still reaches a period
    period = 1.0 / 30.0
    pacer = Pacer(period)
    now = 0.0
    for _ in range(40):
        now += 3 * period
        pacer.place(now, None, 3 * period)
    assert pacer.skipped == 0 and pacer.restarts == 39


def test_a_reader_slower_than_the_clip_plays_it_late_instead_of_skipping_it_all():
    # a decoder that needs 50 ms a frame for a 30 fps clip: skipping could never catch up (every
    # frame would go), so each frame is handed on as it comes and the lost time is counted
    clock = FakeClock()
    g, sent = paced(SlowReads(30, clock, fps=30.0, read_s=0.05), clock)
    drain(g)
    g.stop()
    assert g.skipped == 0 and len(sent) == 30
    assert sent[-1].t_capture == pytest.approx(30 * 0.05)             # as fast as it reads
    # the lost time adds up: the last frame, due 29 periods after the first, came this much later
    assert g.behind_s == pytest.approx(sent[-1].t_capture - sent[0].t_capture - 29 / 30.0)


def test_a_frame_held_till_its_time_takes_its_index_after_a_held_frame_of_the_loop():
    # the loop emits a held frame when nothing comes in 1.5 periods; one taken while a paced frame
    # waits for its time must come before that frame in capture order (the bench counts a gap
    # before a later index as a drop)
    clock = FakeClock()
    held = []
    g = Grabber(SlowReads(4, clock, fps=10.0), realtime=True, clock=clock,
                wait=lambda s: held.append(g.held_frame()) or clock.wait(s))
    sent = []
    put = g._mailbox.put
    g._mailbox.put = lambda frame: sent.append(frame) or put(frame)
    g.start()
    drain(g)
    g.stop()
    order = sorted([(f.index, "sent") for f in sent] + [(f.index, "held") for f in held])
    assert [what for _, what in order] == ["sent", "held", "sent", "held", "sent", "held", "sent"]
    assert [i for i, _ in order] == list(range(7))


def test_realtime_paces_a_variable_rate_clip_by_its_own_frame_times():
    """Before (robustness audit): a variable-frame-rate clip was paced at its average rate, so
    its 5 fps part played twice as fast and its 30 fps part a third as fast. Then (to stop 65)
    one frame behind: the interval before a frame set the wait after it."""
    times = [0.0, 0.02, 0.04, 0.06, 0.16, 0.26, 0.36, 0.38, 0.40]   # 50 fps, then 10, then 50
    clock = FakeClock()
    src = SlowReads(len(times), clock, fps=len(times) / 0.4, media_times=times)   # the average rate
    g, sent = paced(src, clock)
    drain(g)
    g.stop()
    assert [f.index for f in sent] == list(range(len(times)))
    at = np.array([f.t_capture for f in sent]) - sent[0].t_capture
    np.testing.assert_allclose(at, times, atol=1e-9)      # each frame at its own time


def test_a_variable_rate_clip_skips_by_its_own_frame_times():
    # the read of the frame at 0.16 ends 50 ms late: within its 100 ms interval, it goes late; the
    # read of the frame at 0.38 ends 30 ms late, past its 20 ms interval: skipped (0.40 was due)
    times = [0.0, 0.02, 0.04, 0.06, 0.16, 0.26, 0.36, 0.38, 0.40, 0.42]
    clock = FakeClock()
    src = SlowReads(len(times), clock, fps=len(times) / 0.42, media_times=times,
                    delays={4: 0.15, 7: 0.05})
    g, sent = paced(src, clock)
    drain(g)
    g.stop()
    assert [f.index for f in sent] == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    assert g.skipped == 1
    assert sent[4].t_capture == pytest.approx(0.001 + 0.06 + 0.15)    # late, not skipped
    assert sent[-1].t_capture == pytest.approx(0.001 + 0.42)           # back on the clip's clock


def played(times, read_s):
    """A 30 fps clip with the file's frame `times`, each read in `read_s`, played through to its
    end by a paced Grabber on a fake clock: (the grabber, the frames it handed on)."""
    clock = FakeClock()
    g, sent = paced(SlowReads(len(times), clock, fps=30.0, media_times=times, read_s=read_s), clock)
    drain(g)
    g.stop()
    return g, sent


def test_a_short_burst_of_a_variable_rate_clip_is_skipped_through_not_taken_for_a_slow_reader():
    """Before (an earlier review's leftover): the slow-reader test compared the smoothed read time with this
    frame's own interval, so six frames 10 ms apart in a 30 fps clip, read in 15 ms each, restarted
    the schedule: the clip played late (`behind_s`) though the reader keeps up with the clip."""
    times = [k / 30.0 for k in range(10)]
    times += [times[-1] + 0.01 * (k + 1) for k in range(6)]                 # the burst
    times += [times[-1] + (k + 1) / 30.0 for k in range(10)]
    g, sent = played(times, read_s=0.015)
    assert g.pacer.restarts == 0 and g.behind_s == 0.0
    assert g.skipped >= 1 and len(sent) + g.skipped == len(times)
    # after the burst the frames go on the clip's own clock (the first read ends at 0.015)
    np.testing.assert_allclose([f.t_capture for f in sent[-5:]],
                               [0.015 + times[f.index] for f in sent[-5:]], atol=1e-9)


def test_a_reader_slower_than_a_lasting_fast_part_of_a_clip_plays_it_late():
    # 60 frames at 100 fps in a 30 fps clip, read in 15 ms each: skipping could not catch up
    times = [k / 30.0 for k in range(10)]
    times += [times[-1] + 0.01 * (k + 1) for k in range(60)]
    g, sent = played(times, read_s=0.015)
    assert g.pacer.restarts > 0 and g.behind_s > 0.0
    assert len(sent) > 40                                     # most of the fast part is shown


def test_a_still_part_of_a_clip_does_not_hide_a_reader_too_slow_for_the_moving_part():
    """Before: the smoothed interval counted a still part's long frames (1.5 s each, as a screen
    recording holds a still picture) in full, so after it a reader too slow for the 30 fps part
    (50 ms a read) was taken for one skipping through a burst: 40 frames in a row were skipped,
    2 s of a frozen picture. An interval counts in it as at most a period."""
    times = [1.5 * k for k in range(40)]
    times += [times[-1] + (k + 1) / 30.0 for k in range(100)]
    g, sent = played(times, read_s=0.05)
    assert g.skipped == 0 and g.pacer.restarts > 0
    assert len(sent) == len(times)


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
