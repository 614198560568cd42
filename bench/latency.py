"""The latency pass: the engine as it runs live, every variant on the same frames.

Each variant runs ``EngineOptions(realtime=True)`` with the clip paced at its own rate by a
realtime ``Grabber`` (newest frame wins, drops counted) into a realtime
``ThreadedSink(NullSink())``. Per-frame stage timings and capture→sink latency go into
``bench.stats.StageTimes``; the first `warmup` frames (dropped ones included) are left out
(``realtime.engine.loop.run`` also warms every engine up before its first frame).

With several variants the driver is played in blocks of `block` frames, ABBA-interleaved
(A B, then B A, ...), each variant seeing the same frames of a clip (a camera's stream is
shared out block by block), so slow drifts of the machine (thermal, other load) hit every
variant alike. All engines are built before anything runs.

``wall_s`` (the denominator of fps): the capture time the counted frames span — k capture
slots, k = last − first captured index + 1 with drops, at the measured mean capture
interval — summed over blocks: a clip paced at 30 fps with nothing dropped gives 30 fps, and
every dropped frame lowers it.

Each variant's engine sees its own blocks as one stream, as live sees its camera: the time it
sat paused while the other variants played is taken off its filters' clock
(`realtime.engine.loop.Engine.paused_s`, `pause_s`), so the first frame of its next block follows
its last by one frame. Otherwise every resume came after more than `cut_absence_s` without a face
(`realtime.face.estimate.is_cut`): a cut, its first second held to the stricter identity bound,
which could recalibrate a second into a block on a face a live run keeps. Capture times stay the wall clock's: the
latency is measured against them. (A shared camera's stream goes on while a variant waits: its
next block's face may have moved, as after any pause.)

The estimator recalibrates by itself when the driver's face stops fitting its calibrated neutral
(a new face, `realtime.face.estimate`), as it does live: each variant's `Accumulator.recalibrated`
holds the driver frames where it did, and `recalibration_note` says so in the report.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tqdm import tqdm

from bench.drivers import Driver, Limit
from bench.quality import pin_neutral
from bench.stats import StageTimes
from bench.variants import Variant, build_engine
from realtime.engine.loop import RunReport, run
from realtime.io.capture import Grabber
from realtime.io.sinks import NullSink, ThreadedSink

__all__ = ["Accumulator", "latency_pass", "pause_s", "recalibration_note", "resuming_clock", "run_block"]


@dataclass
class Accumulator:
    """Per-variant accumulation over blocks."""

    times: StageTimes
    wall_s: float = 0.0
    captured: int = 0
    done: bool = False
    blocks: int = 0
    held: int = 0       # frames the loop emitted while the source sent nothing in time (`RunReport.held`)
    faces: list = field(default_factory=list)   # per frame {"face", "tracked"} (`RunReport.per_frame`)
    recalibrated: list = field(default_factory=list)   # driver frames where the estimator recalibrated itself
    last_capture: float | None = None   # capture time of the last frame its engine processed (None: none yet)

    def faces_missed(self) -> str:
        """`RunReport.faces_missed` over every block's frames: a line when the driver's face was
        missing from more than a few of them, else ""."""
        return RunReport(frames=len(self.faces), per_frame=self.faces).faces_missed()


def pause_s(last: float, first: float, period: float) -> float:
    """Seconds an engine sat paused between its last frame, captured at `last`, and the next
    block's first reading of the clock, `first`: the time between them less one frame `period`
    (so the first frame follows the last by a frame on its filters' clock); 0 when no more."""
    return max(0.0, first - last - period)


def resuming_clock(engine, last: float | None, period: float,
                   clock: Callable[[], float] = time.perf_counter) -> Callable[[], float]:
    """The capture clock of a block's Grabber: `clock` itself (capture times stay real, the
    latency is measured against them), whose first reading, when `engine` ran an earlier block
    whose last frame was captured at `last`, adds the pause since (`pause_s`) to
    `engine.paused_s`. That reading comes before the block's first frame is read, from the
    Grabber's thread while the engine waits for that frame."""
    if last is None:
        return clock
    pending = [True]

    def now() -> float:
        t = clock()
        if pending[0]:
            pending[0] = False
            engine.paused_s += pause_s(last, t, period)
        return t
    return now


def run_block(engine, source: Limit, fps: float, acc: Accumulator, warmup: int, bar, audio=None) -> None:
    """One realtime run of `engine` over `source`; appends to `acc`. A block after the first
    resumes the engine's stream where its last one ended (`resuming_clock`). `audio`: an open
    `realtime.io.audio.AudioBridge` fed every frame's measured latency (as `run.py live --audio`)."""
    if acc.last_capture is None:
        grabber = Grabber(source, realtime=True, close_source=False)
    else:
        grabber = Grabber(source, realtime=True, close_source=False,
                          clock=resuming_clock(engine, acc.last_capture, 1.0 / fps))
    sink = ThreadedSink(NullSink(), realtime=True)
    sink.open(*engine.output_size, fps)
    t_cap: dict[int, float] = {}
    last = [-1]
    offset = acc.captured
    estimator = getattr(engine, "estimator", None)
    recalibrations = [getattr(estimator, "auto_recalibrations", 0)]

    def on_frame(frame) -> None:
        t_cap.setdefault(frame.index, frame.t_capture)
        acc.last_capture = frame.t_capture
        if estimator is not None and estimator.auto_recalibrations > recalibrations[0]:
            recalibrations[0] = estimator.auto_recalibrations
            acc.recalibrated.append(offset + frame.index)
        if bar is not None and frame.index > last[0]:
            bar.update(frame.index - last[0])
            last[0] = frame.index
        if audio is not None:
            audio.on_frame(frame)

    if audio is not None:
        audio.wait_settled()
    report = run(engine, grabber, sink, on_frame=on_frame)
    st = acc.times
    prev, gaps = -1, 0
    span = []                                       # (index, t_capture) of counted frames
    acc.faces.extend({"face": row["face"], "tracked": row.get("tracked")} for row in report.per_frame
                     if "face" in row)
    for row in report.per_frame:
        idx = row["index"]
        for gap in range(prev + 1, idx):           # frames the grabber replaced or skipped: capture drops
            st.add(None, None, dropped=True, index=offset + gap)
            gaps += 1
        prev = max(prev, idx)
        lat = row.get("latency_ms")
        counted = len(st) >= warmup
        st.add(row["timings"], lat, dropped=lat is None, index=offset + idx)
        if counted and idx in t_cap:
            span.append((idx, t_cap[idx]))
    for gap in range(grabber.dropped - gaps):    # dropped after the last frame shown: no gap says so
        st.add(None, None, dropped=True, index=offset + prev + 1 + gap)
    if len(span) >= 2:
        # k capture slots (drops included) at the measured mean capture interval
        (i0, t0), (i1, t1) = min(span), max(span)
        if i1 > i0:
            acc.wall_s += (t1 - t0) * (i1 - i0 + 1) / (i1 - i0)
    acc.captured += source.read_count
    acc.blocks += 1
    acc.held += report.held
    if bar is not None and source.read_count - 1 > last[0]:
        bar.update(source.read_count - 1 - last[0])


def latency_pass(profile, variants: list[Variant], driver: Driver, warmup: int, block: int,
                 pin=None, audio=None) -> dict[str, Accumulator]:
    """Realtime runs of every variant, ABBA-interleaved in blocks (one block without
    --compare). Returns per-variant accumulations. `audio` (one variant only): an open
    AudioBridge that passes the microphone through, delayed by the measured latency."""
    if audio is not None and len(variants) != 1:
        raise ValueError(f"audio follows one engine's latency, not {len(variants)} variants")
    fps = driver.fps
    engines = {}
    try:
        for v in variants:
            engines[v.label] = build_engine(profile, v.options, realtime=True, fps=fps)
            if pin is not None:
                pin_neutral(engines[v.label].estimator, pin)
        accs = {v.label: Accumulator(StageTimes()) for v in variants}
        for acc in accs.values():
            acc.times.skip_warmup(warmup)
        single = len(variants) == 1
        shared = driver.open() if driver.is_camera else None
        sources = {v.label: (shared or driver.open()) for v in variants}
        total = None if driver.total is None else driver.total * len(variants)
        per_run = None if driver.count is None else driver.count
        try:
            with tqdm(total=total, desc="latency", unit="frame", file=sys.stderr,
                      disable=None, leave=False) as bar:
                order = list(variants)
                while not all(a.done for a in accs.values()):
                    for v in order:
                        acc = accs[v.label]
                        if acc.done:
                            continue
                        left = None if per_run is None else per_run - acc.captured
                        n = left if single else (block if left is None else min(block, left))
                        lim = Limit(sources[v.label].source, n)
                        run_block(engines[v.label], lim, fps, acc, warmup, bar, audio=audio)
                        if lim.exhausted:
                            sources[v.label].end()    # the driver's own view: its truncation note
                        if lim.exhausted or (left is not None and acc.captured >= per_run) \
                                or lim.read_count == 0:
                            acc.done = True
                    order.reverse()                       # A B, B A, A B, ...
        finally:
            for s in {id(s): s for s in sources.values()}.values():
                s.source.close()
    finally:
        for e in engines.values():
            e.close()
    return accs


def recalibration_note(accs: dict[str, Accumulator]) -> str | None:
    """The report's line when the estimator recalibrated by itself during the latency pass (a new
    face: the driver's face no longer fit its calibrated neutral, as `run.py live` does it), with
    the driver frames where it did, per variant when there are several; None when it never did."""
    said = {label: acc.recalibrated for label, acc in accs.items() if acc.recalibrated}
    if not said:
        return None

    def frames(found: list) -> str:
        shown = ", ".join(str(f) for f in found[:6]) + (", ..." if len(found) > 6 else "")
        return f"{'at frame' if len(found) == 1 else f'{len(found)} times, at frames'} {shown}"
    where = (frames(next(iter(said.values()))) if len(accs) == 1
             else "; ".join(f"{label} {frames(found)}" for label, found in said.items()))
    return (f"latency pass: the estimator recalibrated by itself {where} (the driver's face no longer "
            f"fit its calibrated neutral: a new face), as live does; the frames after it eased to the new "
            f"neutral, so its expression and pose read from there on against another calibration")
