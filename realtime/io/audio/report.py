"""What the audio path aims at (`DelayPolicy`) and what it measured (`AudioReport`).

The A/V offset of one video frame is the delay the audio path applied to the sound captured
when that frame was captured, minus the frame's capture -> sink latency: positive = the audio
is heard after the picture (lags), negative = before it (leads). Both sides come from
measurements, not settings: the video's from the loop's timestamps (perf_counter at capture and
after the sink accepted the frame), the audio's from PortAudio's stream times (the input
sample's capture time, the output sample's play time; `SyncCore`), put on the perf_counter
clock by the audio process.
"""
from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

LAG_WARN_MS = 33.0   # warn when the audio devices alone make the sound trail by more than a frame
GAP_S = 0.1          # history rows (one per ~21 ms of sound) further apart: no sound between them
STALL_TIMES = 5      # stall times listed in the summary (then "and N more")


class DelayPolicy:
    """The audio delay target, from the video frames' measured latencies (the last `window`).

    Audio must not lead the picture (ITU-R BT.1359 notices a lead sooner than a lag), so the
    target sits at a high quantile of the recent latencies plus `margin_s`: a late frame is
    met, a typical one gets its sound a few milliseconds after its picture. But the sound
    should not trail the typical frame by more than `max_lag_s` (about a frame) either, so
    when the latencies spread wider than that (a loaded machine: most frames fast, some very
    late) the target is capped at the low quantile + `max_lag_s` - `margin_s`: the rare late
    frame then gets its sound early, every other frame stays in sync.

    `add()` returns a new target when it moved by at least `step_s` (else None), so the audio
    process is told only of real changes; it makes each change a crossfade (no clicks).
    """

    def __init__(self, window: int = 60, high: float = 0.9, low: float = 0.1,
                 margin_s: float = 0.004, max_lag_s: float = 0.033, step_s: float = 0.001):
        self._lat: deque[float] = deque(maxlen=int(window))
        self.high, self.low = high, low
        self.margin_s, self.max_lag_s, self.step_s = margin_s, max_lag_s, step_s
        self.target: float | None = None

    def add(self, latency_s: float) -> float | None:
        self._lat.append(float(latency_s))
        lo, hi = np.quantile(self._lat, [self.low, self.high])
        target = float(min(hi + self.margin_s, lo + self.max_lag_s - self.margin_s))
        if self.target is not None and abs(target - self.target) < self.step_s:
            return None
        self.target = target
        return target


def _stats(values, *qs: float) -> dict[str, float] | None:
    v = np.asarray(values, np.float64)
    if not len(v):
        return None
    return {f"p{q:g}": round(float(np.percentile(v, q)), 2) for q in qs}


@dataclass
class AudioReport:
    """The audio part of a run. All times in ms; `to_dict()` is plain JSON-able data.

    delay_ms: capture -> heard delay the audio path applied (p50, p95), while in step: the
        readings just after a stall (`recovery_ms`) are left out.
    av_offset_ms: per video frame that had sound, audio delay minus video latency (p50, p95,
        min, max, n); `frames_without_sound` frames (in a stall, or after the sound stopped)
        are not counted.
    sound_s, silence_s: how long the sound passed, and did not, from the first video frame to
        the last (a stall, a device gone: silence).
    recovery_ms: the readings just after a stall (the stream clock catching up): how many, the
        largest delay they read (left out of delay_ms and av_offset_ms).
    stopped: why the sound stopped before the end of the run (a device gone mid-run, or the
        streams moved into a loop), `stopped_at_s` when; None when it did not.
    underruns: PortAudio's status flags (input overflows, output underflows) and output blocks
        that lacked input samples (`short_blocks`, filled with silence).
    stalls: callback gaps longer than 100 ms; `stall_times_s`: when (s after the audio start).
    """

    input: str = ""
    output: str = ""
    server: str | None = None
    priority: str = ""
    sample_rate: int = 0
    blocksize: int = 0
    delay_ms: dict[str, float] | None = None
    target_ms: dict[str, float] | None = None
    video_latency_ms: dict[str, float] | None = None
    av_offset_ms: dict[str, float] | None = None
    frames_without_sound: int = 0
    sound_s: float = 0.0
    silence_s: float = 0.0
    recovery_ms: dict[str, float] = field(default_factory=dict)
    stopped: str | None = None
    stopped_at_s: float | None = None
    underruns: dict[str, int] = field(default_factory=dict)
    stalls: int = 0
    longest_stall_ms: float = 0.0
    stall_times_s: list[float] = field(default_factory=list)
    resyncs: int = 0
    callbacks: dict[str, int] = field(default_factory=dict)
    alsa_messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def build(cls, info: dict[str, Any], snapshot: dict[str, Any], rows: list, frames: list,
              stderr_lines: list[str], error: str | None = None, skip_s: float = 1.0,
              run: tuple[float, float, float] | None = None, **settings: Any) -> AudioReport:
        """From the audio process's info, last snapshot and history rows (perf time of the
        played sample's capture, applied delay s, target s), the video frames
        (t_capture, t_sink) and the process's stderr; statistics skip the first `skip_s`.
        run: (the first video frame's capture, the last's, the seconds of sound between) over
        the whole run, where `rows` and `frames` keep only its last part (a live session of
        hours): the stop time and the sound's share count from it. None: from `frames`."""
        r = cls(input=info.get("input", ""), output=info.get("output", ""),
                server=info.get("server"), priority=info.get("priority", ""), error=error,
                **settings)
        snap = snapshot or {}
        rows_a = np.asarray(sorted(rows), np.float64).reshape(-1, 3)
        # readings just after a stall (the input clock not yet caught up) read a delay far off
        # the target, placed inside the stall: left out, counted apart
        late = rows_a[:, 1] - rows_a[:, 2] > GAP_S
        if late.any():
            r.recovery_ms = {"readings": int(late.sum()),
                             "max": round(1000.0 * float(rows_a[late, 1].max()), 1)}
        rows_a = rows_a[~late]
        start = rows_a[0, 0] + skip_s if len(rows_a) else np.inf
        kept = rows_a[rows_a[:, 0] >= start]
        r.delay_ms = _stats(1000.0 * kept[:, 1], 50, 95)
        r.target_ms = _stats(1000.0 * kept[:, 2], 50, 95)
        fr = np.asarray(frames, np.float64).reshape(-1, 2)
        first_frame = float(fr[:, 0].min()) if len(fr) else None
        r.sound_s, r.silence_s = _sound(rows_a[:, 0], fr[:, 0])
        if run is not None and run[1] is not None and run[1] > run[0]:
            first_frame, span = float(run[0]), float(run[1]) - float(run[0])
            if span > r.sound_s + r.silence_s + 1.0:      # more than the rows kept: the whole run's
                sound = min(float(run[2]), span)
                r.sound_s, r.silence_s = round(sound, 2), round(span - sound, 2)
        fr = fr[fr[:, 0] >= start]
        lat = fr[:, 1] - fr[:, 0]
        r.video_latency_ms = _stats(1000.0 * lat, 50, 95)
        # a frame has sound when the rows either side of its capture are close together
        t = kept[:, 0]
        i = np.searchsorted(t, fr[:, 0])
        inside = (i > 0) & (i < len(t))
        with_sound = inside.copy()
        with_sound[inside] = t[i[inside]] - t[i[inside] - 1] <= GAP_S
        r.frames_without_sound = int(len(fr) - with_sound.sum())
        if with_sound.any() and len(kept) > 1:
            offset = 1000.0 * (np.interp(fr[with_sound, 0], t, kept[:, 1]) - lat[with_sound])
            r.av_offset_ms = {**(_stats(offset, 50, 95) or {}), "min": round(float(offset.min()), 2),
                              "max": round(float(offset.max()), 2), "frames": int(len(offset))}
        r.underruns = {k: int(snap.get(k, 0)) for k in
                       ("input_overflows", "output_underflows", "short_blocks")}
        r.stalls, r.resyncs = int(snap.get("stalls", 0)), int(snap.get("resyncs", 0))
        events = snap.get("stall_events", [])
        r.longest_stall_ms = round(max([g for _, g in events], default=0.0), 1)
        # stall times from the first played sample, else (no audio passed) the first video frame,
        # else the first stall: never the raw clock (it read "at 35845.1 s" in a 1 s run)
        t_audio = (float(run[0]) if run is not None else rows_a[0, 0] if len(rows_a)
                   else first_frame if first_frame is not None else min((t for t, _ in events), default=0.0))
        r.stall_times_s = [round(t - t_audio, 2) for t, _ in events]
        if snap.get("stopped"):
            r.stopped = str(snap["stopped"])
            at = snap.get("stopped_at")
            base = first_frame if first_frame is not None else t_audio    # as the line at the time
            r.stopped_at_s = None if at is None else round(float(at) - base, 1)
        r.callbacks = {"input": int(snap.get("in_callbacks", 0)),
                       "output": int(snap.get("out_callbacks", 0))}
        r.alsa_messages = [line for line in stderr_lines if line.strip()]
        r.warnings = _warnings(r, snap)
        return r

    def summary(self) -> str:
        """Two lines for the run summary (more when there are warnings)."""
        if self.error:
            return f"audio: FAILED: {self.error}"
        d, off = self.delay_ms, self.av_offset_ms
        u = self.underruns
        head = (f"audio {self.input} → {self.output}: delay p50 {d['p50']:.1f} ms, p95 {d['p95']:.1f} ms"
                if d else f"audio {self.input} → {self.output}: no audio passed")
        if off:
            head += (f"; A/V offset p50 {off['p50']:+.1f} ms, p95 {off['p95']:+.1f} ms "
                     f"(min {off['min']:+.1f}, max {off['max']:+.1f}; + = audio after video)")
        tail = (f"audio underruns: input {u.get('input_overflows', 0)}, output "
                f"{u.get('output_underflows', 0)}, blocks without input {u.get('short_blocks', 0)}; "
                f"stalls {self.stalls}; resyncs {self.resyncs}")
        lines = [head] + ([self.sound_line()] if self.sound_s + self.silence_s > 0 else []) + [tail]
        if self.stopped:
            lines.append(f"warning: {stopped_line({'stopped': self.stopped}, None, self.stopped_at_s)}")
        return "\n".join(lines + [f"warning: audio: {w}" for w in self.warnings])

    def sound_line(self) -> str:
        """How much of the run the sound passed, and what the A/V offset counts."""
        span = self.sound_s + self.silence_s
        share = int(100.0 * self.sound_s / span) if span > 0 else 0   # 99.6 % is not "100 %"
        line = f"audio passed for {share}% of the run ({self.silence_s:.1f} s silent of {span:.1f} s)"
        if self.frames_without_sound and self.av_offset_ms:
            line += (f"; the A/V offset counts the {self.av_offset_ms['frames']} frames with sound, "
                     f"not the {self.frames_without_sound} without")
        elif self.frames_without_sound:
            line += f"; {self.frames_without_sound} frames without sound"
        return line


def stopped_line(snapshot: dict[str, Any], t0: float | None, at_s: float | None = None) -> str:
    """One line: the audio process stopped the sound mid-run (snapshot's "stopped", "stopped_at";
    the time counted from perf time `t0`, or given as `at_s`)."""
    if at_s is None and t0 is not None and snapshot.get("stopped_at") is not None:
        at_s = float(snapshot["stopped_at"]) - t0
    when = f" at {at_s:.1f} s" if at_s is not None else ""
    return (f"audio: the sound stopped{when}: {snapshot['stopped']}; no sound passed after that "
            f"(check the devices, python run.py devices, and start the run again)")


def _sound(rows_t: np.ndarray, frames_t: np.ndarray) -> tuple[float, float]:
    """(seconds with sound, seconds without) from the first video frame's capture to the last
    (no frames: the rows' span): rows closer than GAP_S cover the time between them."""
    if len(frames_t):
        lo, hi = float(frames_t.min()), float(frames_t.max())
    elif len(rows_t):
        lo, hi = float(rows_t[0]), float(rows_t[-1])
    else:
        return 0.0, 0.0
    if hi <= lo:
        return 0.0, 0.0
    a, b = rows_t[:-1], rows_t[1:]
    close = b - a <= GAP_S
    covered = np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0.0, None)[close].sum()
    sound = float(min(covered, hi - lo))
    return round(sound, 2), round(hi - lo - sound, 2)


def _warnings(r: AudioReport, snap: dict[str, Any]) -> list[str]:
    out = []
    if r.stalls:
        times = ", ".join(f"{t:.1f}" for t in r.stall_times_s[:STALL_TIMES])
        more = f" and {r.stalls - STALL_TIMES} more" if r.stalls > STALL_TIMES else ""
        catch = (f" ({r.recovery_ms['readings']} reading(s) just after them, up to "
                 f"{r.recovery_ms['max']:+.1f} ms, are left out of the delay and A/V offset)"
                 if r.recovery_ms else "")
        out.append(f"the audio stream stalled {r.stalls} time(s) (longest {r.longest_stall_ms:.0f} ms, "
                   f"at {times} s{more}); the delay was put back on target after each{catch}")
    if snap.get("silent_s", 0.0) > 0.5:
        out.append(f"the audio output stream stopped {snap['silent_s']:.1f} s before the end of "
                   f"the run (after {r.callbacks.get('output', 0)} callbacks)")
    if not r.callbacks.get("output"):
        out.append("the audio output stream never ran")
    elif not snap.get("peak_in"):
        out.append("the microphone delivered only silence (is IN the right device?)")
    elif not snap.get("peak_out"):
        out.append("the output stayed silent although the microphone had sound")
    if r.alsa_messages:
        out.append(f"{len(r.alsa_messages)} message(s) from PortAudio/ALSA, first: "
                   f"{r.alsa_messages[0].strip()}")
    if r.video_latency_ms and snap.get("floor_ms", 0.0) > r.video_latency_ms["p50"] + LAG_WARN_MS:
        out.append(f"the audio devices' own latency ({snap['floor_ms']:.0f} ms) exceeds the video's "
                   f"({r.video_latency_ms['p50']:.0f} ms) by more than a frame: the sound lags the "
                   f"picture; pick devices with shorter buffers")
    return out
