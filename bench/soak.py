"""The soak: `live --realtime --sink null` for a long time, reported minute by minute.

    python -m bench.soak --profile astronaut --minutes 30 [--drivers ../shared/eval/drivers]
                         [--out soak.json] [--cache /tmp/puppeteer-soak]

What runs is what `run.py live --driver LONG.mp4 --realtime --sink null` runs (the same Engine,
Grabber, ThreadedSink and `realtime.engine.loop.run`, history capped as live caps it), on a long
clip: every driver clip of `--drivers` scaled and padded to 512×512 at 30 fps, concatenated
(re-encoded once, cached), then looped by stream copy to `--minutes`. The null sink is wrapped
to time each write, so per minute it reports:

    fps          frames emitted in that minute / its seconds (the engine keeps 30 when it keeps up)
    dropped      frames the grabber dropped (newest frame wins) in that minute
    rss_mib      the process's resident memory at the minute's end (/proc/self/status)
    p95_ms       95th percentile of capture→sink latency in that minute
    drift_pct    p95_ms against the first minute after warm-up (minute 2), in percent (None in minute 1)
    stages_p50   each stage's median time that minute (ms), so that a drift can be traced to a stage

and at the end: the lowest per-minute fps, the RSS growth after the first 5 minutes (least
squares, MiB per hour), the largest |drift| and the p95 trend: the change of the least-squares
line through the p95 of minutes 2.. over the run, in percent of its start. The largest |drift|
compares two single minutes and carries the machine's minute-to-minute noise (on the 2-core CI
VM within ±9 % since the loop freezes its start-up heap, ±11 % before, when a 25–45 ms full
garbage collection fell into some minutes); the trend is what "the latency drifts" means: it
would show a loop that slows as it runs, and `stage_trend_pct` (the same line through each
stage's per-minute median) says which stage does. The acceptance of issue 15: 30 fps every minute,
RSS growth ≤ 10 MiB/h after minute 5, p95 drift ≤ 10 %. Run it on a quiet machine
(`flock -x /tmp/puppeteer-cpu.lock python -m bench.soak ...`): it is a timing measurement.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from bench.report import write_output
from bench.usage import UsageError
from profiles import load, profiles_root
from realtime.core.errors import ProfileError, PuppeteerError
from realtime.core.paths import cannot_write, reserve_hidden, write_atomic
from realtime.engine.loop import LIVE_HISTORY, Engine, EngineOptions, run
from realtime.io.capture import Grabber, open_source
from realtime.io.sinks import NullSink, ThreadedSink
from realtime.io.sinks.file import ffmpeg_exe

__all__ = ["build_long_clip", "soak", "main"]

SIDE, FPS = 512, 30


def _ffmpeg(args: list[str]) -> None:
    r = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise UsageError(f"ffmpeg failed building the soak clip: {r.stderr.strip()[-300:]}")


def _encode(args: list[str], target: Path) -> None:
    """`_ffmpeg(args)` writing `target` whole or not at all: into a hidden file beside it, renamed
    over it once ffmpeg has finished. The cache keeps a clip it finds, so a clip cut short (a
    Ctrl-C while it was built) would have failed every later soak until removed by hand."""
    partial = reserve_hidden(target, "partial")
    try:
        _ffmpeg([*args, str(partial)])
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


#: the profile `python run.py demo` makes
DEFAULT_PROFILE = "astronaut"


def build_long_clip(drivers: Path, minutes: float, cache: Path) -> Path:
    """Every clip of `drivers` at 512² 30 fps, concatenated once (cached), looped by stream copy
    to at least `minutes`. A `drivers` that is not a folder is a UsageError."""
    if not drivers.is_dir():
        what = "is a file, not a folder" if drivers.is_file() else "no such folder"
        raise UsageError(f"--drivers {drivers}: {what} (name a folder of driver clips, e.g. "
                         f"../shared/eval/drivers)")
    clips = sorted(p for p in drivers.iterdir() if p.suffix.lower() in (".mp4", ".mov", ".avi", ".mkv"))
    if not clips:
        raise UsageError(f"no driver clips in {drivers}")
    cache.mkdir(parents=True, exist_ok=True)
    concat = cache / "drivers-512-30fps.mp4"
    if not concat.is_file() or concat.stat().st_mtime < max(p.stat().st_mtime for p in clips):
        inputs = [a for p in clips for a in ("-i", str(p))]
        norm = "".join(f"[{i}:v]scale={SIDE}:{SIDE}:force_original_aspect_ratio=decrease,"
                       f"pad={SIDE}:{SIDE}:(ow-iw)/2:(oh-ih)/2,fps={FPS},setsar=1[v{i}];"
                       for i in range(len(clips)))
        graph = norm + "".join(f"[v{i}]" for i in range(len(clips))) + f"concat=n={len(clips)}:v=1:a=0[out]"
        _encode([*inputs, "-filter_complex", graph, "-map", "[out]", "-c:v", "libx264",
                 "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"], concat)
    source = open_source(str(concat))
    length_s = (source.frame_count or 1) / source.fps
    source.close()
    loops = int(np.ceil(minutes * 60.0 / length_s))
    long = cache / f"drivers-{loops}x.mp4"
    if not long.is_file():
        _encode(["-stream_loop", str(loops - 1), "-i", str(concat), "-c", "copy"], long)
    return long


def _rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource  # noqa: PLC0415 - fallback where /proc is missing (peak, not current)

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _TimedNull(NullSink):
    """The null sink, timing capture→write of every frame (called in the sink's thread)."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.latencies: list[float] = []

    def write(self, frame) -> None:
        super().write(frame)
        with self.lock:
            self.latencies.append((time.perf_counter() - frame.t_capture) * 1000.0)

    def take(self) -> list[float]:
        with self.lock:
            out, self.latencies = self.latencies, []
        return out


def soak(profile_name: str, clip: Path, minutes: float, log=print) -> dict:
    """Run the live loop on `clip` in real time for `minutes`; per-minute rows and a summary."""
    profile = load(profile_name)
    source = open_source(str(clip))
    fps = source.fps or FPS
    engine = Engine(profile, EngineOptions(fps=fps, realtime=True))
    grabber = Grabber(source, realtime=True)
    timed = _TimedNull()
    sink = ThreadedSink(timed, realtime=True)
    sink.open(*engine.output_size, fps)
    rows: list[dict] = []
    state = {"t0": None, "frames": 0, "dropped": 0, "last": None}
    stages: dict[str, list[float]] = {}

    def tick(frame) -> None:
        now = time.perf_counter()
        if state["t0"] is None:
            state["t0"] = now
        state["frames"] += 1
        state["last"] = now
        for name, ms in frame.timings.items():
            stages.setdefault(name, []).append(ms)
        if now - state["t0"] >= 60.0:
            close(now)

    def close(now) -> None:
        """The minute that began at state["t0"] as a row, ending at `now`."""
        lat = timed.take()
        dropped = grabber.dropped
        row = {"minute": len(rows) + 1, "fps": round(state["frames"] / (now - state["t0"]), 2),
               "dropped": dropped - state["dropped"], "rss_mib": round(_rss_mib(), 1),
               "p95_ms": round(float(np.percentile(lat, 95)), 2) if lat else None}
        ref = rows[1]["p95_ms"] if len(rows) > 1 else (row["p95_ms"] if len(rows) == 1 else None)
        row["drift_pct"] = (round(100.0 * (row["p95_ms"] / ref - 1.0), 1)   # None: nothing to compare
                            if ref and row["p95_ms"] is not None else None)
        row["stages_p50"] = {k: round(float(np.median(v)), 3) for k, v in stages.items() if v}
        stages.clear()
        rows.append(row)
        log(json.dumps(row))
        state.update(t0=now, frames=0, dropped=dropped)

    try:
        run(engine, grabber, sink, max_frames=int(round(minutes * 60.0 * fps)), on_frame=tick,
            history=LIVE_HISTORY)
    finally:
        engine.close()
    note = None
    if state["t0"] is not None and state["frames"]:
        # the run's last frame comes one frame short of a whole minute after the last row's
        # start (the grabber keeps the clip's clock): that minute is closed as a whole one
        left = state["last"] - state["t0"] + 1.0 / fps
        if left >= 60.0 - 0.5 / fps:
            close(state["t0"] + left)
        elif left >= 1.0:                # a part minute at the end: said, not averaged into a row
            note = (f"the last {left:.0f} s ({state['frames']} frames) are a part minute: not in "
                    f"the rows (whole minutes only)")
            log(note)
    out = {"profile": profile_name, "clip": str(clip), "minutes": minutes, "rows": rows,
           "summary": summarize(rows)}
    if note is not None:
        out["note"] = note
    return out


def summarize(rows: list[dict]) -> dict:
    """Lowest fps, RSS growth after minute 5 (MiB/h, least squares), largest |p95 drift|."""
    if not rows:
        return {}
    late = [r for r in rows if r["minute"] > 5]
    growth = None
    if len(late) >= 2:
        m = np.array([r["minute"] for r in late], np.float64) / 60.0
        growth = round(float(np.polyfit(m, [r["rss_mib"] for r in late], 1)[0]), 2)
    drifts = [abs(r["drift_pct"]) for r in rows[2:] if r.get("drift_pct") is not None]
    return {"min_fps": min(r["fps"] for r in rows), "rss_growth_mib_per_h_after_5min": growth,
            "max_abs_p95_drift_pct": max(drifts) if drifts else None,   # None: under 3 minutes
            "p95_trend_pct": p95_trend_pct(rows),
            "stage_trend_pct": {k: trend_pct(rows, lambda r, k=k: r.get("stages_p50", {}).get(k))
                                for k in rows[-1].get("stages_p50", {})},
            "rss_mib_first": rows[0]["rss_mib"], "rss_mib_last": rows[-1]["rss_mib"]}


def p95_trend_pct(rows: list[dict]) -> float | None:
    """How far the p95 latency drifts over the run: the least-squares line through the p95 of
    minutes 2.. (minute 1 holds the warm-up), its change from the first of those minutes to the
    last, in percent of its value at the first. None with fewer than 3 such minutes."""
    return trend_pct(rows, lambda r: r.get("p95_ms"))


def trend_pct(rows: list[dict], value) -> float | None:
    """`p95_trend_pct` of any per-minute `value(row)` (None where a minute has none)."""
    pts = [(r["minute"], value(r)) for r in rows if r["minute"] >= 2 and value(r) is not None]
    if len(pts) < 3:
        return None
    m, p = np.array(pts, np.float64).T
    slope, start = np.polyfit(m - m[0], p, 1)
    return round(float(100.0 * slope * (m[-1] - m[0]) / start), 1) if start > 0 else None


def main(argv=None) -> int:
    """The soak's command line; a mistake (UsageError, ProfileError, ...) is one `error:` line
    and exit 2, as run.py prints them; a Ctrl-C one `stopped` line and exit 130."""
    try:
        return _main(argv)
    except PuppeteerError as e:
        print(f"error: {(str(e).strip().splitlines() or [type(e).__name__])[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped: the minutes measured so far are the JSON lines above; --out is written only at "
              "the soak's end", file=sys.stderr)
        return 130


def _main(argv) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default=DEFAULT_PROFILE, help="profile name or folder (default astronaut: "
                                                          "run `python run.py demo` once to make it)")
    p.add_argument("--minutes", type=float, default=30.0, help="how long (default 30)")
    here = Path(__file__).resolve().parent.parent
    p.add_argument("--drivers", type=Path, default=here.parent / "shared" / "eval" / "drivers",
                   help="folder of driver clips (default ../shared/eval/drivers)")
    p.add_argument("--cache", type=Path, default=Path("/tmp/puppeteer-soak"),
                   help="where the concatenated clip is kept (default /tmp/puppeteer-soak)")
    p.add_argument("--out", type=Path, default=None, help="also write the rows and summary as JSON")
    args = p.parse_args(argv)
    if not (1 <= args.minutes <= 24 * 60):      # (under a minute printed `{}`: no row, no summary)
        p.error(f"--minutes wants 1 to 1440 (the soak reports whole minutes), got {args.minutes:g}")
    if args.out is not None and args.out.suffix.lower() != ".json":
        raise UsageError(f"--out {args.out}: the report is JSON; name it e.g. {args.out.with_suffix('.json')}")
    problem = None if args.out is None else cannot_write(args.out)
    if problem is not None:          # before the soak, not after its whole run
        raise UsageError(f"cannot write {args.out} (--out): {problem}")
    try:                 # before the clip is built (minutes of ffmpeg on a first run)
        load(args.profile)
    except ProfileError as e:
        if args.profile != DEFAULT_PROFILE or (profiles_root() / DEFAULT_PROFILE).exists():
            raise        # another profile, or the default one there but broken: its own error
        raise UsageError(f"the soak's default profile {DEFAULT_PROFILE!r} is not there ({e}): make it with "
                         f"`python run.py demo`, or name another with --profile") from None
    clip = build_long_clip(args.drivers, args.minutes, args.cache)
    result = soak(args.profile, clip, args.minutes, log=lambda text: print(text, flush=True))
    print(json.dumps(result["summary"]))
    if args.out is not None:     # whole or not at all; a refused write is one error line
        write_output("--out", args.out, lambda: write_atomic(args.out, json.dumps(result, indent=1) + "\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
