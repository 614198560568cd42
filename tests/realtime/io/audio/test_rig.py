"""End to end on real audio devices: `live --realtime --audio vmic:engine_out` on a private
PulseAudio server, tagged bursts, the A/V offset measured against the video frames' timing.

How the sound and the picture are compared is explained in `rig.py` (in short: the burst's
delay is sample-exact on one bus that carries both the microphone and the engine's output; the
video latency is the engine's per-frame capture->sink timestamps; the two are joined through the
recording's capture times, which only select the frames). The audio process is frozen once
(SIGSTOP, 300 ms) during the run: the run must count that stall and be back on target within a
second.

The bounds here leave room for a loaded CI machine (bursts at video frames made late by the load
are left out, see below); the issue's acceptance numbers (0-33 ms at every burst, five 60 s
runs) are measured with this rig on a quiet machine. Skipped where PortAudio, PulseAudio
(pulseaudio, pactl, pacat) or the ALSA PulseAudio plugin are missing; `.ci/run` installs them.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[4]
FRAMES = 210          # 7 s of video at 30 fps
STALL_AFTER_S = 2.5   # after the engine's first sound reaches engine_out
HICCUP_S = 0.25       # gaps in the sound within this of a first one are one hiccup of the machine
ATTEMPTS = 3          # runs of the engine before the sync test fails (see the test)


@pytest.fixture(scope="module")
def rig_env(tmp_path_factory):
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:
        pytest.skip(f"PortAudio is missing ({exc}): apt install libportaudio2")
    from tests.realtime.io.audio import rig

    work = tmp_path_factory.mktemp("rig")
    try:
        with rig.start_server(work) as env:
            yield env, work
    except rig.RigUnavailable as exc:
        pytest.skip(f"no PulseAudio rig: {exc}")


@pytest.fixture(scope="module")
def astro(tmp_path_factory, astronaut_profile, astronaut_rgb):
    """A profiles folder with the astronaut, and a 10 s driver clip of it nodding."""
    import cv2

    from profiles.format import save

    root = tmp_path_factory.mktemp("profiles")
    save(astronaut_profile, root / "astro")
    clip = root / "nod.mp4"
    bgr = cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR)
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (512, 512))
    for i in range(300):
        m = cv2.getRotationMatrix2D((256, 200), 4.0 * np.sin(i / 10), 1.0)
        out.write(cv2.warpAffine(bgr, m, (512, 512), borderMode=cv2.BORDER_REPLICATE))
    out.release()
    return root, clip


def _tone_with_silences(silences, seconds=4.0):
    """A Recording of the rig's bus: a tone on the engine's channel, zeroed at (start s, ms)."""
    from tests.realtime.io.audio import rig

    n = int(seconds * rig.RATE)
    right = 0.1 * np.sin(np.arange(n) * 0.3).astype(np.float32) + 0.2
    for start, ms in silences:
        a = int(start * rig.RATE)
        right[a: a + int(ms * rig.RATE / 1000)] = 0.0
    return rig.Recording(blocks=[np.stack([np.zeros(n, np.float32), right], axis=1)])


def test_gap_counting_tells_a_hiccup_from_a_systematic_gap():
    """The rig's gap count (no devices needed): one underrun is one gap; three underruns of one
    slow spell are three gaps and one hiccup; a few samples missing from every 256-sample block
    are gaps four times a second even as hiccups (the old chained merge counted them as one)."""
    from tests.realtime.io.audio import rig

    n = 4 * rig.RATE
    one = rig.dropouts(_tone_with_silences([(1.0, 10)]), 0, n)
    assert [round(i / rig.RATE, 3) for i in one] == [1.0]
    spell = rig.dropouts(_tone_with_silences([(1.0, 10), (1.063, 8), (1.125, 8)]), 0, n)
    assert len(spell) == 3 and len(rig.grouped(spell, HICCUP_S * rig.RATE)) == 1
    every_block = [(k * 256 / rig.RATE, 0.1) for k in range(1, n // 256)]
    gaps = rig.dropouts(_tone_with_silences(every_block), 0, n)
    assert len(rig.grouped(gaps, HICCUP_S * rig.RATE)) >= 3.5 / HICCUP_S


def test_busy_signs_are_read_from_a_runs_report():
    """`_busy` (which failed runs may be retried): none in a quiet run, whose one output
    underrun is the stall's; late frames, a capture gap and a starved player are named."""
    t = np.arange(60) / 30.0
    quiet = {"frames": np.stack([t, t + 0.025], 1).tolist(),
             "report": {"underruns": {"output_underflows": 1, "short_blocks": 0}}}
    assert _busy(quiet) == []
    lat = np.full(60, 0.025)
    lat[[10, 11]] = 0.060
    keep = np.ones(60, bool)
    keep[30] = False
    busy = {"frames": np.stack([t, t + lat], 1)[keep].tolist(),
            "report": {"underruns": {"output_underflows": 3, "short_blocks": 5}}}
    assert _busy(busy) == ["2 frames late", "1 gaps in capture", "5 output blocks without input",
                           "2 output underruns besides the stall's"]


def _run(args, env, **kw):
    return subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, **kw)


def test_devices_names_and_bad_names(rig_env, astro):
    env, _ = rig_env
    res = _run(["devices"], env)
    assert res.returncode == 0, res.stderr
    audio = res.stdout[res.stdout.index("Audio:"):]
    assert "PulseAudio 16" in audio or "PulseAudio" in audio
    assert "vmic" in audio and "engine_out" in audio and "--audio IN:OUT" in audio
    root, clip = astro
    res = _run(["live", "--profile", "astro", "--driver", str(clip), "--sink", "null", "--realtime",
                "--audio", "nosuch:engine_out"], {**env, "PUPPETEER_PROFILES": str(root)})
    err = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and len(err) == 1, res.stderr
    assert err[0].startswith("error: no audio input named 'nosuch'") and "vmic" in err[0]


def test_sound_stays_with_the_picture_and_survives_a_stall(rig_env, astro):
    """The engine with real audio devices, measured by the rig (`_run_and_check`'s checks).

    A real-time run on a shared machine can be disturbed by it: a slow spell of the host
    underruns the sound or makes frames late in a way no engine can answer (seen here on the
    2-core VM: 7 runs in 73, with frames late or dropped at capture, or the rig's own player
    starved). A run that fails with such signs in its report (`_busy`) is run again, up to
    ATTEMPTS runs; a run that fails without them fails the test at once. A pass after a failed
    run warns, with the failed run's report, so it shows in the test summary."""
    failures = []
    for attempt in range(1, ATTEMPTS + 1):
        seen: dict = {}
        try:
            _run_and_check(rig_env, astro, seen)
        except AssertionError as exc:
            busy = seen.get("busy") or []
            failures.append(f"run {attempt} of {ATTEMPTS} (busy host: {'; '.join(busy) or 'no sign'}): {exc}")
            print(failures[-1])
            if not busy:
                break          # a quiet run's failure is the engine's
            continue
        if failures:
            warnings.warn(f"the rig test passed on run {attempt} after a busy host failed it:\n"
                          + "\n\n".join(failures), stacklevel=1)
        return
    pytest.fail("\n\n".join(failures))


def _busy(data: dict) -> list[str]:
    """Signs in a run's report that the host was busy: frames late by 20 ms over the run's
    median or dropped at capture, output blocks without input (the rig's player starved), more
    than the stall's one output underrun."""
    fr = np.asarray(data["frames"], np.float64).reshape(-1, 2)
    fr = fr[np.argsort(fr[:, 0])]
    lat = fr[:, 1] - fr[:, 0]
    signs = []
    late = int((lat > np.median(lat) + 0.020).sum()) if len(lat) else 0
    gaps = int((np.diff(fr[:, 0]) > 1.5 / 30.0).sum())
    under = data["report"].get("underruns") or {}
    for n, what in ((late, "frames late"), (gaps, "gaps in capture"),
                    (under.get("short_blocks", 0), "output blocks without input"),
                    (max(0, under.get("output_underflows", 0) - 1), "output underruns besides the stall's")):
        if n:
            signs.append(f"{n} {what}")
    return signs


def _run_and_check(rig_env, astro, seen: dict):
    """One run of the engine under the rig, and the checks; `seen["busy"]`: `_busy` of its report."""
    from tests.realtime.io.audio import rig

    env, work = rig_env
    root, clip = astro
    report_path = work / "audio.json"
    report_path.unlink(missing_ok=True)       # a run that writes none must not read the last one's
    cmd = [sys.executable, "run.py", "live", "--profile", "astro", "--driver", str(clip),
           "--realtime", "--sink", "null", "--frames", str(FRAMES),
           "--audio", "vmic:engine_out", "--audio-report", str(report_path)]
    with rig.play_and_record(env, FRAMES / 30 + 90, work) as rec:
        engine = subprocess.Popen(cmd, cwd=ROOT, env={**env, "PUPPETEER_PROFILES": str(root),
                                                       "CI": "true"},
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert rec.wait_for_output(90), "the engine's sound never reached engine_out"
            time.sleep(STALL_AFTER_S)
            pid = rig.audio_process(engine.pid)
            assert pid is not None, "no audio process under the engine"
            stalled = rig.stall(pid, 0.3)
            out, _ = engine.communicate(timeout=90)
        finally:
            engine.kill()
    assert engine.returncode == 0, out
    data = json.loads(report_path.read_text())
    seen["busy"] = _busy(data)
    frames = np.asarray(data["frames"])
    bursts = rig.join_video(rig.find_bursts(rec), frames)
    t_first = frames[0, 0]
    t_last = frames[-1, 0] - 0.5          # the sound stops with the engine: leave out the end
    in_run = [b for b in bursts if b.latency_ms is not None and t_first + 1.0 < b.t_mic < t_last]
    rows = np.asarray(data["audio_rows"])   # the engine's own view: capture time, applied delay
    own = lambda b: 1000.0 * float(np.interp(b.t_mic, rows[:, 0], rows[:, 1]))
    frozen = lambda b: stalled[0] - 0.05 <= b.t_mic <= stalled[1] + 0.1   # captured while stopped
    heard = [b for b in in_run if not frozen(b)]
    fmt = lambda v: "--" if v is None else f"{v:.1f}"
    report = "\n".join(f"{b.t_mic - t_first:6.2f} s: delay {fmt(b.delay_ms)} ms (engine's own "
                       f"{own(b):.1f}), video {b.latency_ms:.1f} ms, offset {fmt(b.offset_ms)} ms"
                       for b in in_run)
    print(f"{out}\nstall at {stalled[0] - t_first:.2f}-{stalled[1] - t_first:.2f} s\n{report}")
    assert len(heard) >= 15, report

    # 1. The sound passes: every burst outside the stall comes out (no silence, no garbling;
    #    a loaded machine may drop one).
    found = [b for b in heard if b.delay_ms is not None]
    assert len(found) >= len(heard) - 1, f"silent or garbled bursts:\n{report}"

    #    And without gaps: the tone under the bursts never stops. A loaded machine may cause
    #    a hiccup or two: a slow spell of a tenth of a second underruns the output a few blocks
    #    in a row (HICCUP_S groups those). A systematic gap (e.g. every block short of a few
    #    samples) is not a hiccup: it counts 1 / HICCUP_S a second.
    bus = lambda t: int(np.searchsorted(rec.perf_time(np.arange(0, len(rec.samples()), 480)), t) * 480)
    gaps = [i for i in rig.dropouts(rec, bus(t_first + 1.0), bus(t_last))
            if not bus(stalled[0] - 0.05) <= i <= bus(stalled[1] + 1.0)]
    hiccups = rec.perf_time(rig.grouped(gaps, HICCUP_S * rig.RATE))
    assert len(hiccups) <= 3, (f"{len(gaps)} gaps in the sound, {len(hiccups)} hiccups at "
                               f"{[round(t - t_first, 2) for t in hiccups]} s\n{report}")

    # 2. The engine knows where its sound is: its stream-time view of the delay matches the
    #    rig's sample-exact measurement, and the difference does not grow (the issue's
    #    failure: a backlog the engine did not see, growing at each underrun). Before the
    #    stall PulseAudio's reported latencies are good to a few ms (median 0.5-6.7 ms in 16 runs
    #    alone); after its xrun they can stay 10-13 ms short for seconds (3 runs in 13 full
    #    suites: the engine read 20.5 ms where the rig measured 31-35), so the steady state is
    #    judged before the stall and what follows it in 4.
    #    (A burst caught in a correction's 30 ms crossfade may be found at either position.)
    steady = np.array([b.delay_ms - own(b) for b in found if b.t_mic < stalled[0] - 0.05])
    after = np.array([b.delay_ms - own(b) for b in found if b.t_mic > stalled[1] + 1.0])
    assert len(steady) >= 4 and len(after) >= 3, report
    assert np.mean(np.abs(steady) < 12.0) >= 0.85 and abs(np.median(steady)) < 10.0, report
    assert abs(np.median(after) - np.median(steady)) < 15.0, report   # across the xrun: its error (4.)

    # 3. In sync with the picture. A frame made late by a loaded machine (20 ms over the run's
    #    median latency) cannot be met by any audio path (its lateness is known only after it
    #    happened) and is left out here; the acceptance measurements cover every burst.
    typical = np.median([b.latency_ms for b in found]) + 20.0
    offsets = np.array([b.offset_ms for b in found if b.latency_ms <= typical])
    assert len(offsets) >= 10, report
    assert 0.0 <= np.median(offsets) <= 33.0, report
    assert np.mean((offsets >= -5.0) & (offsets <= 40.0)) >= 0.9, report

    # 4. The stall is counted and leaves nothing behind (the 300 ms it held up would show as
    #    sound 300 ms later than the engine put it): from a second after it, the sound is where
    #    the engine put it, within the xrun's reporting error (2.).
    audio = data["report"]
    assert audio["stalls"] >= 1 and audio["longest_stall_ms"] >= 250, audio
    assert "stalls 1" in out or audio["stalls"] > 1, out
    #    (A backlog shows as hundreds of ms; the xrun's reporting error reached 10.9 ms here.)
    assert np.mean(np.abs(after) < 15.0) >= 0.8, report

    # 5. The summary's A/V offset (the engine's own measurement) agrees with the rig's, both
    #    over every frame, late ones too (3. leaves those out: on a run with many late frames,
    #    its median sits above the summary's by the lateness it left out). The summary spans
    #    the stall's xrun, whose reporting error (2.) it carries over half the run: 10.3-10.7 ms
    #    in the runs where that error reached 10-13 ms, 0.5-5 ms otherwise.
    every = np.median([b.offset_ms for b in found])
    assert abs(audio["av_offset_ms"]["p50"] - every) < 13.0, (audio, report)
