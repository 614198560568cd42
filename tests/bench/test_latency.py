"""bench.latency: ABBA-interleaved blocks, every variant on the same frames, frames accounted.

Fake engines (instant, recording what they see) and fake sources at 100 fps keep these tests
fast; the real engine runs in tests/bench/test_benchmark.py."""
from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from bench import latency
from bench.drivers import Driver, Limit
from bench.variants import Variant

FPS = 100.0


class FakeSource:
    """Frames whose first pixel is their number; a live one delivers every 2 ms."""

    def __init__(self, live: bool, n: int = 1000):
        self.fps, self.size, self.is_live, self.frame_count = FPS, (32, 24), live, None
        self.n, self.reads, self.closed = n, 0, False

    def read(self):
        if self.reads >= self.n:
            return None
        if self.is_live:
            time.sleep(0.002)
        img = np.zeros((24, 32, 3), np.uint8)
        img[0, 0, 0] = self.reads
        self.reads += 1
        return {"image": img}

    def close(self):
        self.closed = True


@dataclass
class FakeDriver(Driver):
    clip_frames: int = 1000
    opened: list | None = None

    def open(self) -> Limit:
        src = FakeSource(self.is_camera, self.clip_frames)
        self.opened.append(src)
        return Limit(src, self.count, owns=True)


class FakeEngine:
    def __init__(self, label: str, fps: float, log: list):
        self.label, self.log, self.closed = label, log, False
        self.options = SimpleNamespace(fps=fps)
        self.output_size = (32, 24)
        self.paused_s = 0.0                          # as Engine's: its filters' clock lags capture by it

    def warm_up(self, track=True):
        self.log.append((self.label, []))           # run() warms up once per block

    def process(self, frame):
        if frame.image is not None:                  # None: a held frame (the source stalled)
            self.log[-1][1].append(int(frame.image[0, 0, 0]))
        frame.timings.update(track=0.1, composite=0.2)
        frame.output = np.zeros((24, 32, 3), np.uint8)
        return frame

    def handle(self, event):
        return True

    def close(self):
        self.closed = True


@pytest.fixture
def engines(monkeypatch):
    """{label: FakeEngine} of the engines latency_pass builds; `log`: (label, frames) per block."""
    built: dict = {}
    log: list = []

    def build(profile, options, realtime, fps):
        assert realtime and fps == FPS
        built[options.label] = FakeEngine(options.label, fps, log)
        return built[options.label]
    monkeypatch.setattr(latency, "build_engine", build)
    return SimpleNamespace(built=built, log=log)


def _variants(*labels):
    return [Variant(label, SimpleNamespace(label=label)) for label in labels]


def test_variants_take_turns_abba_on_the_same_frames(engines):
    driver = FakeDriver("clip", count=24, fps=FPS, total=24, opened=[])
    accs = latency.latency_pass(None, _variants("A", "B"), driver, warmup=4, block=8)
    assert [label for label, _ in engines.log] == ["A", "B", "B", "A", "A", "B"]
    for label in "AB":
        blocks = [frames for lab, frames in engines.log if lab == label]
        for b, frames in enumerate(blocks):          # block b: clip frames 8b .. 8b+7
            assert frames and set(frames) <= set(range(8 * b, 8 * b + 8))
        acc = accs[label]
        r = acc.times.to_dict(acc.wall_s)
        assert r["frames"] + r["dropped"] - acc.held == 24 - 4    # held: a late source's extra rows
        assert (acc.blocks, acc.captured, acc.done) == (3, 24, True)
        assert acc.wall_s > 0
    assert len(driver.opened) == 2 and all(s.closed for s in driver.opened)
    assert all(e.closed for e in engines.built.values())


def test_a_camera_is_shared_out_block_by_block(engines):
    driver = FakeDriver("0", count=16, fps=FPS, is_camera=True, total=16, opened=[])
    accs = latency.latency_pass(None, _variants("A", "B"), driver, warmup=0, block=8)
    assert len(driver.opened) == 1 and driver.opened[0].closed
    ranges = [(label, min(f), max(f)) for label, f in engines.log]
    assert [label for label, *_ in ranges] == ["A", "B", "B", "A"]
    ends = [hi for *_, hi in ranges]
    assert ends == sorted(ends)                        # one stream, read in turn
    assert all(lo >= prev for (_, lo, _), prev in zip(ranges[1:], ends))
    assert all(accs[k].captured == 16 for k in "AB")


def test_one_variant_is_one_block_of_the_whole_clip(engines):
    driver = FakeDriver("clip", count=None, fps=FPS, total=20, clip_frames=20, opened=[])
    accs = latency.latency_pass(None, _variants("run"), driver, warmup=2, block=4)
    assert len(engines.log) == 1 and accs["run"].blocks == 1
    r = accs["run"].times.to_dict(accs["run"].wall_s)
    assert r["frames"] + r["dropped"] - accs["run"].held == 20 - 2


class ClockedEngine(FakeEngine):
    """A FakeEngine whose warm-up takes `warm_s` and that records, per clip frame, its capture
    time and the time its filters see (`realtime.engine.loop.Engine.clock` live: the capture time
    less `paused_s`)."""

    def __init__(self, label, fps, log, warm_s):
        super().__init__(label, fps, log)
        self.warm_s, self.seen = warm_s, []

    def warm_up(self, track=True):
        super().warm_up(track)
        time.sleep(self.warm_s)

    def process(self, frame):
        if frame.image is not None:
            self.seen.append((int(frame.image[0, 0, 0]), frame.t_capture, frame.t_capture - self.paused_s))
        return super().process(frame)


def test_each_variant_sees_its_blocks_as_one_stream(monkeypatch):
    """While one variant plays its block the others wait (their warm-ups too: here 0.3 s each):
    seen on the wall clock, every resume came after more than `cut_absence_s` without a face, a
    cut (`realtime.face.estimate.is_cut`) that held the face to the stricter identity bound and
    recalibrated at block starts. The filters' clock now steps on by about a frame across a
    block boundary, as within a block; the capture times stay the wall clock's (the latency is
    measured against them)."""
    from realtime.face.estimate import EstimatorConfig

    built: dict = {}

    def build(profile, options, realtime, fps):
        built[options.label] = ClockedEngine(options.label, fps, [], warm_s=0.3)
        return built[options.label]
    monkeypatch.setattr(latency, "build_engine", build)
    driver = FakeDriver("clip", count=32, fps=FPS, total=32, opened=[])
    accs = latency.latency_pass(None, _variants("A", "B"), driver, warmup=0, block=8)
    for label, engine in built.items():
        assert accs[label].blocks == 4
        seen = engine.seen
        assert [f for f, *_ in seen] == sorted(f for f, *_ in seen)
        resumes = [(a, b) for a, b in zip(seen, seen[1:]) if a[0] // 8 != b[0] // 8]   # block to block
        assert len(resumes) == 3
        # A B B A A B B A: A waits for B's blocks after its 1st and 3rd, B after its 2nd (and
        # before its 1st); every resume waits for the variant's own warm-up at least
        assert max(b[1] - a[1] for a, b in resumes) >= 0.6, (label, resumes)           # real time passed
        assert all(b[1] - a[1] >= 0.3 for a, b in resumes), (label, resumes)
        steps = [b[2] - a[2] for a, b in zip(seen, seen[1:])]
        assert all(s > 0 for s in steps), (label, steps)
        assert max(steps) < EstimatorConfig().cut_absence_s, (label, resumes, steps)   # no cut


class RecalibratingEngine(FakeEngine):
    """A FakeEngine whose estimator recalibrates by itself on the first clip frame ≥ `at` it sees
    (as a new face does: `Estimator._new_face`)."""

    def __init__(self, label, fps, log, at):
        super().__init__(label, fps, log)
        self.estimator = SimpleNamespace(auto_recalibrations=0)
        self.at = at

    def process(self, frame):
        if frame.image is not None and int(frame.image[0, 0, 0]) >= self.at and not self.estimator.auto_recalibrations:
            self.estimator.auto_recalibrations += 1
            self.at_index = frame.index     # the capture index: a held frame takes one too
        return super().process(frame)


def test_an_automatic_recalibration_is_reported_with_its_frame(monkeypatch):
    """Honesty audit: the live loop's estimator recalibrates by itself when a new face comes (its
    calibrated neutral no longer fits), and the bench's report never said so."""
    built: list = []

    def build(profile, options, realtime, fps):
        built.append(RecalibratingEngine(options.label, fps, [], at=12))
        return built[-1]
    monkeypatch.setattr(latency, "build_engine", build)
    driver = FakeDriver("clip", count=None, fps=FPS, total=30, clip_frames=30, opened=[])
    accs = latency.latency_pass(None, _variants("run"), driver, warmup=0, block=8)
    assert accs["run"].recalibrated == [built[0].at_index] and built[0].at_index >= 12    # where it happened
    note = latency.recalibration_note(accs)
    assert note.startswith(f"latency pass: the estimator recalibrated by itself at frame {accs['run'].recalibrated[0]} "
                           f"(the driver's face no longer fit its calibrated neutral: a new face)")


def test_a_resumed_block_takes_the_pause_off_the_filters_clock():
    """`resuming_clock`: its first reading adds the pause since the last frame, less a frame, to
    the engine's `paused_s` (once); the readings themselves are the clock's, unshifted; without
    an earlier block it is the clock itself."""
    engine = SimpleNamespace(paused_s=1.0)
    ticks = iter([10.0, 10.5, 11.0])
    clock = latency.resuming_clock(engine, last=4.0, period=0.1, clock=lambda: next(ticks))
    assert [clock(), clock(), clock()] == [10.0, 10.5, 11.0]
    assert engine.paused_s == pytest.approx(1.0 + 5.9)           # 10.0 - 4.0 - 0.1
    assert latency.resuming_clock(engine, None, 0.1) is time.perf_counter
    assert latency.pause_s(4.0, 4.05, 0.1) == 0.0                # no later than a frame: no pause


def test_the_recalibration_note_names_each_variant_and_is_quiet_without_one():
    def acc(frames):
        return latency.Accumulator(latency.StageTimes(), recalibrated=frames)
    assert latency.recalibration_note({"A": acc([]), "B": acc([])}) is None
    note = latency.recalibration_note({"A": acc([40]), "B": acc([]), "C": acc(list(range(10, 90, 10)))})
    assert "by itself A at frame 40; C 8 times, at frames 10, 20, 30, 40, 50, 60, ... (the driver's" in note
    assert " B " not in note


def test_frames_skipped_after_the_last_one_shown_count_as_dropped(engines, monkeypatch):
    """A paced clip's reader that falls behind at the very end skips its last frames: no later
    frame's index leaves a gap for them, and the report left them out of the drops."""
    from functools import partial

    from tests.realtime.io.test_grabber import FakeClock

    clock = FakeClock()

    class LateAtTheEnd(FakeSource):
        def read(self):
            clock.t += 0.1 if self.reads == 17 else 0.001       # frames 17-19 come when 19 is past due
            return super().read()

    monkeypatch.setattr(latency, "Grabber", partial(latency.Grabber, clock=clock, wait=clock.wait))
    driver = FakeDriver("clip", count=None, fps=FPS, total=20, clip_frames=20, opened=[])
    monkeypatch.setattr(driver, "open", lambda: Limit(LateAtTheEnd(False, 20), None, owns=True))
    acc = latency.latency_pass(None, _variants("run"), driver, warmup=0, block=8)["run"]
    r = acc.times.to_dict(acc.wall_s)
    # the slot keeps the newest frame read, 16, for the end (the fast fake reader replaces most
    # frames before the loop takes them: drops too); 17-19 were skipped after it
    assert r["frames"] + r["dropped"] - acc.held == 20
