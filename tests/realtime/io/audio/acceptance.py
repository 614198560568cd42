"""The audio acceptance measurement (issue 14) on the rig of `rig.py`: not a test, a script.

    python tests/realtime/io/audio/acceptance.py OUT_DIR FRAMES PLAN --profile NAME --clip CLIP
        [--profiles DIR]

PLAN is a comma list of runs of `run.py live --profile NAME --driver CLIP --realtime --sink null
--frames FRAMES`: A = with `--audio vmic:engine_out`, N = without, S = with audio, 600 frames and
the audio process frozen (SIGSTOP) for 300 ms five seconds after its first sound. Every run has
the rig playing and recording (so A and N differ only by --audio). Writes OUT_DIR/results.json
(per run: the video summary; with audio, every burst after the first second: time, audio delay,
video latency, A/V offset; the offsets' spread; growth = median of the last 10 s - first 10 s;
gaps in the sound; the run's AudioReport). Run it alone: `flock -x /tmp/puppeteer-cpu.lock ...`.
"""
import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = str(Path(__file__).resolve().parents[4])
sys.path.insert(0, ROOT)
from tests.realtime.io.audio import rig  # noqa: E402

SUMMARY = re.compile(r"(\d+) frames? in ([\d.]+) s = ([\d.]+) fps; dropped (\d+) \(([\d.]+)%.*?"
                     r"capture→sink p50 ([\d.]+) ms, p95 ([\d.]+) ms")


def one(kind, frames, work, env, idx, args):
    report = work / f"run{idx}-{kind}.json"
    cmd = [sys.executable, "run.py", "live", "--profile", args.profile, "--driver", args.clip,
           "--realtime",
           "--sink", "null", "--frames", str(frames)]
    if kind in "AS":
        cmd += ["--audio", "vmic:engine_out", "--audio-report", str(report)]
    stalled = None
    with rig.play_and_record(env, frames / 30 + 60, work) as rec:
        extra = {"PUPPETEER_PROFILES": args.profiles} if args.profiles else {}
        eng = subprocess.Popen(cmd, cwd=ROOT, env={**env, **extra, "CI": "true"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if kind == "S":
            assert rec.wait_for_output(120)
            time.sleep(5.0)
            stalled = rig.stall(rig.audio_process(eng.pid), 0.3)
        out, _ = eng.communicate(timeout=frames / 30 + 120)
    m = SUMMARY.search(out)
    res = {"kind": kind, "cmd": " ".join(cmd[1:]), "rc": eng.returncode,
           "summary": [ln for ln in out.splitlines() if SUMMARY.search(ln) or "audio" in ln or "stage" in ln],
           "frames": int(m[1]), "fps": float(m[3]), "dropped": int(m[4]), "drop_pct": float(m[5]),
           "lat_p50": float(m[6]), "lat_p95": float(m[7])}
    if kind == "N":
        return res
    data = json.loads(report.read_text())
    fr = np.asarray(data["frames"])
    bursts = rig.join_video(rig.find_bursts(rec), fr)
    t0 = fr[0, 0]
    after = [b for b in bursts if b.latency_ms is not None and b.t_mic > t0 + 1.0]
    if stalled is not None:
        res["stall_s"] = [round(stalled[0] - t0, 3), round(stalled[1] - t0, 3)]
    res["bursts"] = [(round(b.t_mic - t0, 3), None if b.delay_ms is None else round(b.delay_ms, 2),
                      round(b.latency_ms, 2), None if b.offset_ms is None else round(b.offset_ms, 2))
                     for b in after]
    off = np.array([b.offset_ms for b in after if b.offset_ms is not None])
    res["missing"] = sum(b.offset_ms is None for b in after)
    res["n"] = len(after)
    if len(off):
        res["offset"] = {"min": round(off.min(), 1), "p5": round(np.percentile(off, 5), 1),
                         "p50": round(np.median(off), 1), "p95": round(np.percentile(off, 95), 1),
                         "max": round(off.max(), 1),
                         "outside_0_33": int(((off < 0) | (off > 33)).sum())}
        t = np.array([b.t_mic - t0 for b in after if b.offset_ms is not None])
        first, last = off[t < t.min() + 10], off[t > t.max() - 10]
        res["growth_ms"] = round(float(np.median(last) - np.median(first)), 2)
        res["slope_ms_per_min"] = round(float(np.polyfit(t, off, 1)[0] * 60), 2)
    res["audio_report"] = data["report"]
    samples = len(rec.samples())
    times = rec.perf_time(np.arange(0, samples, 480))
    bus = lambda t: int(np.searchsorted(times, t) * 480)
    gaps = rig.dropouts(rec, bus(t0 + 1.0), bus(fr[-1, 0] - 0.5))
    if stalled is not None:
        gaps = [i for i in gaps if not bus(stalled[0] - 0.05) <= i <= bus(stalled[1] + 1.0)]
    res["dropouts"] = len(gaps)
    res["dropout_times_s"] = [round(float(rec.perf_time(np.array([i]))[0] - t0), 2) for i in gaps[:10]]
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("frames", type=int)
    p.add_argument("plan")
    p.add_argument("--profile", required=True)
    p.add_argument("--clip", required=True)
    p.add_argument("--profiles", default=None, help="PUPPETEER_PROFILES for the runs")
    args = p.parse_args()
    out_dir, frames, plan = args.out_dir, args.frames, args.plan.split(",")
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    work = rig.scratch_dir()
    with rig.start_server(work) as env:
        dev = subprocess.run([sys.executable, "run.py", "devices"], cwd=ROOT, env=env,
                             capture_output=True, text=True)
        results.append({"kind": "devices", "out": dev.stdout[dev.stdout.index("Audio:"):]})
        for i, kind in enumerate(plan):
            f = 600 if kind == "S" else frames
            r = one(kind, f, work, env, i, args)
            results.append(r)
            print(kind, {k: v for k, v in r.items() if k not in ("bursts", "audio_report", "cmd")},
                  flush=True)
            (out_dir / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
