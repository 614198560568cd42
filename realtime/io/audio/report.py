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

    delay_ms: capture -> heard delay the audio path applied (p50, p95).
    av_offset_ms: per video frame, audio delay minus video latency (p50, p95, min, max, n).
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
              **settings: Any) -> AudioReport:
        """From the audio process's info, last snapshot and history rows (perf time of the
        played sample's capture, applied delay s, target s), the video frames
        (t_capture, t_sink) and the process's stderr; statistics skip the first `skip_s`."""
        r = cls(input=info.get("input", ""), output=info.get("output", ""),
                server=info.get("server"), priority=info.get("priority", ""), error=error,
                **settings)
        snap = snapshot or {}
        rows_a = np.asarray(sorted(rows), np.float64).reshape(-1, 3)
        start = rows_a[0, 0] + skip_s if len(rows_a) else np.inf
        kept = rows_a[rows_a[:, 0] >= start]
        r.delay_ms = _stats(1000.0 * kept[:, 1], 50, 95)
        r.target_ms = _stats(1000.0 * kept[:, 2], 50, 95)
        fr = np.asarray(frames, np.float64).reshape(-1, 2)
        first_frame = float(fr[:, 0].min()) if len(fr) else None
        fr = fr[(fr[:, 0] >= start) & (fr[:, 0] <= (rows_a[-1, 0] if len(rows_a) else -np.inf))]
        lat = fr[:, 1] - fr[:, 0]
        r.video_latency_ms = _stats(1000.0 * lat, 50, 95)
        if len(fr) and len(kept) > 1:
            offset = 1000.0 * (np.interp(fr[:, 0], kept[:, 0], kept[:, 1]) - lat)
            r.av_offset_ms = {**(_stats(offset, 50, 95) or {}), "min": round(float(offset.min()), 2),
                              "max": round(float(offset.max()), 2), "frames": int(len(offset))}
        r.underruns = {k: int(snap.get(k, 0)) for k in
                       ("input_overflows", "output_underflows", "short_blocks")}
        r.stalls, r.resyncs = int(snap.get("stalls", 0)), int(snap.get("resyncs", 0))
        events = snap.get("stall_events", [])
        r.longest_stall_ms = round(max([g for _, g in events], default=0.0), 1)
        # stall times from the first played sample, else (no audio passed) the first video frame,
        # else the first stall: never the raw clock (it read "at 35845.1 s" in a 1 s run)
        t_audio = (rows_a[0, 0] if len(rows_a) else first_frame if first_frame is not None
                   else min((t for t, _ in events), default=0.0))
        r.stall_times_s = [round(t - t_audio, 2) for t, _ in events]
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
        return "\n".join([head, tail] + [f"warning: audio: {w}" for w in self.warnings])


def _warnings(r: AudioReport, snap: dict[str, Any]) -> list[str]:
    out = []
    if r.stalls:
        times = ", ".join(f"{t:.1f}" for t in r.stall_times_s[:5])
        out.append(f"the audio stream stalled {r.stalls} time(s) (longest {r.longest_stall_ms:.0f} ms, "
                   f"at {times} s); the delay was put back on target after each")
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
