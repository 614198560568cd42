"""bench.streams: `run.py bench --streams`: counts, the hold rule, the report, a real run of two
engines in threads on tracked clips (no MediaPipe), and the user mistakes."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bench import streams as S
from bench.usage import UsageError
from realtime.io.tracked import TrackedClip
from tests.bench.helpers import disk_full_after, one_error_line


def test_counts():
    assert S.parse_counts("3") == [1, 2, 3]
    assert S.parse_counts("4,1,2") == [1, 2, 4]
    with pytest.raises(UsageError, match=r"^--streams 4,1,2,2: 2 given twice; name each count once$"):
        S.parse_counts("4,1,2,2")        # audit of stop 65 (helper 93): it ran 2 once, saying nothing
    for bad in ("0", "x", "", "1,-2", "1,,2", "4,"):     # an empty item: refused (stop 61's review)
        with pytest.raises(UsageError, match="--streams"):
            S.parse_counts(bad)


@pytest.mark.parametrize("fps, p95, ok", [(30.0, 20.0, True), (29.2, 33.0, True), (29.0, 20.0, False),
                                          (30.0, 33.5, False), (None, 20.0, False), (30.0, None, False)])
def test_hold_rule(fps, p95, ok):
    assert S.holds({"fps": fps, "latency_ms": {"p95": p95}}) is ok


@pytest.mark.parametrize("rate, fps, ok", [(25.0, 25.0, True), (25.0, 24.3, True), (25.0, 24.0, False),
                                           (60.0, 29.2, True), (30.0, 29.0, False)])
def test_a_stream_holds_its_clips_own_rate_up_to_30(rate, fps, ok):
    """Before (stop 61's review): a 25 fps clip (d0, d11) was judged against 29.1 fps and could
    never hold: `--streams 1` on d0 gave 25.0 fps, none dropped, and "largest N: 0"."""
    assert S.holds({"fps": fps, "driver_fps": rate, "latency_ms": {"p95": 20.0}}) is ok


def _result(counts):
    rows = []
    for n, ok in counts:
        streams = [{"stream": i, "profile": "p", "driver": f"d{i}", "tier": "warp", "fps": 30.0 if ok else 20.0,
                    "frames": 90, "dropped": 0 if ok else 30, "latency_ms": {"p50": 10.0, "p95": 20.0},
                    "holds": ok} for i in range(n)]
        rows.append({"n": n, "streams": streams, "min_fps": streams[0]["fps"], "max_p95_ms": 20.0, "holds": ok})
    return {"mode": "thread", "device": "cpu", "counts": rows,
            "max_streams": max([n for n, ok in counts if ok], default=0)}


def test_markdown_names_every_stream_and_the_largest_count(tmp_path):
    text = S.markdown(_result([(1, True), (2, True), (3, False)]))
    assert text.count("| p ← d0 |") == 3 and "| p ← d2 |" in text
    assert ("largest N that holds its clips' rate up to 30 fps (≥ 29.1) with p95 ≤ 33 ms: **2** (tried 1, 2, 3; "
            "threads; cpu)") in text
    mixed = _result([(1, True), (2, True)])
    mixed["counts"][1]["streams"][1]["driver_fps"] = 25.0
    assert "holds its clips' rate up to 30 fps (≥ 24.25 to 29.1) with" in S.markdown(mixed)
    S.plot_streams(_result([(1, True), (2, False)]), str(tmp_path / "s.png"))
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_a_streams_plot_the_disk_cuts_short_leaves_the_one_there(tmp_path):
    """Before the fix (new-user walkthrough): the --streams plot was written in place, so a full
    disk left a truncated PNG where the previous one was. Now it is written whole or not at all."""
    path = tmp_path / "s.png"
    path.write_bytes(b"the previous plot")
    with disk_full_after(2000), pytest.raises(OSError):
        S.plot_streams(_result([(1, True), (2, False)]), str(path))
    assert path.read_bytes() == b"the previous plot"
    assert [f.name for f in tmp_path.iterdir()] == ["s.png"]


def _ctrl_c_itself(spec, device, frames, warmup, barrier, out) -> None:
    """A stream process (in `S._process_main`'s place) that sends itself a Ctrl-C, then puts a
    result that holds, or, where the Ctrl-C reached it, an error line."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)                  # (a signal's Python handler runs at the next bytecode)
    except KeyboardInterrupt:
        out.put((spec.index, "a Ctrl-C reached the stream process"))
        return
    out.put((spec.index, {"stream": spec.index, "fps": 30.0, "latency_ms": {"p95": 1.0}, "holds": True}))


def _ctrl_c_the_bench(spec, device, frames, warmup, barrier, out) -> None:
    """A stream process that Ctrl-Cs its parent (a user's stop while it plays), plays on for five
    seconds and then leaves a file named `spec.driver` to say it did."""
    os.kill(os.getppid(), signal.SIGINT)
    time.sleep(5.0)
    Path(spec.driver).write_text("played on after the bench was stopped")


def test_a_stream_process_never_sees_a_ctrl_c(monkeypatch):
    """Before (helper 120, the walkthrough): `bench --streams 2 --stream-mode process` stopped
    with a Ctrl-C printed a child's KeyboardInterrupt traceback: the terminal's Ctrl-C reaches its
    whole process group, and a spawned stream was still importing. Now a stream process is deaf
    to it from its start (blocked while it is spawned); its parent ends it."""
    monkeypatch.setattr(S, "_process_main", _ctrl_c_itself)     # spawned by name: this one runs
    specs = [S.StreamSpec(i, "astro", "unused") for i in range(2)]
    rows = S._processes(specs, "cpu", None, 0)
    assert [r["stream"] for r in rows] == [0, 1]


def test_a_ctrl_c_while_deaf_comes_at_the_end_of_the_block():
    """Before (review of helper 120's change): SIGINT was blocked in the calling thread only, and
    the kernel hands a process's SIGINT to a thread that does not block it (numpy's BLAS threads;
    here one of the test's own): the main thread ran its Python handler within the block, so a
    Ctrl-C while the streams were spawned raised in the middle of a `Process.start`, where a
    stream spawned but not yet on record escaped `_end` and played on. Now it comes at the end of
    the block, through the handler in place (run.py's, which notes the stop)."""
    other_thread = threading.Event()
    waiting = threading.Thread(target=other_thread.wait, daemon=True)
    waiting.start()
    noted, within = [], []

    def handler(signum, frame):
        noted.append(signum)
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGINT, handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with S._deaf_to_ctrl_c():
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(200):        # bytecodes for a handler to run at, were it let
                    time.sleep(0.001)
                within.append("the block ran to its end")
    finally:
        signal.signal(signal.SIGINT, previous)
        other_thread.set()
        waiting.join()
    assert within == ["the block ran to its end"] and noted == [signal.SIGINT]


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_sigterm_while_deaf_comes_at_the_end_of_the_block(name):
    """Before (review of helper 123's change): only SIGINT's handler was held off while the
    stream processes started, and run.py raises a SIGTERM (SIGHUP) as a KeyboardInterrupt
    (`_Terminated`) from its handler: one in the middle of a `Process.start` left a stream spawned
    but not yet on record, which `_end` could not end. Now it comes at the end of the block, as
    a Ctrl-C does, through the handler in place; SIGTERM itself stays unblocked (what
    `terminate()` ends a child with)."""
    signum = getattr(signal, name)
    noted, within, blocked = [], [], []

    def handler(number, frame):
        noted.append(number)
        raise KeyboardInterrupt
    previous = signal.signal(signum, handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with S._deaf_to_ctrl_c():
                blocked.append(signal.pthread_sigmask(signal.SIG_BLOCK, set()))
                os.kill(os.getpid(), signum)
                for _ in range(200):        # bytecodes for a handler to run at, were it let
                    time.sleep(0.001)
                within.append("the block ran to its end")
    finally:
        signal.signal(signum, previous)
    assert within == ["the block ran to its end"] and noted == [signum]
    assert signal.SIGINT in blocked[0] and signum not in blocked[0]
    assert signal.getsignal(signum) is previous


def test_stops_caught_while_deaf_each_come_after_it_in_order():
    """A SIGTERM and then a Ctrl-C within the block: both reach their handlers after it, the
    SIGTERM first (here neither handler raises: each is noted)."""
    noted, previous = [], {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda number, frame: noted.append(number))
    try:
        with S._deaf_to_ctrl_c():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(50):
                time.sleep(0.001)
            signal.raise_signal(signal.SIGINT)      # blocked in this thread: the Ctrl-C kept pending
            for _ in range(50):
                time.sleep(0.001)
            assert noted == []
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert noted == [signal.SIGTERM, signal.SIGINT]


def test_a_stopped_process_pass_ends_its_streams(monkeypatch, tmp_path):
    """Before (helper 120): a Ctrl-C of the bench waited up to 30 s for each stream process, which
    played on to its end. Now the pass ends them at once and the Ctrl-C goes on up. (Python's own
    Ctrl-C handler is put in for the test: a suite started in the background by a shell without
    job control inherits SIGINT ignored, and the pass then waited out its 20-minute limit.)"""
    monkeypatch.setattr(S, "_process_main", _ctrl_c_the_bench)
    played_on = tmp_path / "played-on"
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            S._processes([S.StreamSpec(0, "astro", str(played_on))], "cpu", None, 0)
    finally:
        signal.signal(signal.SIGINT, before)
    assert mp.active_children() == []    # ended and reaped: what it had not written, it never will
    assert not played_on.exists()


def _killed_or_waiting(spec, device, frames, warmup, barrier, out) -> None:
    """Stream 0's process dies as the system's out-of-memory killer ends one (SIGKILL, no word
    to anyone); the others wait at the barrier for it."""
    if spec.index == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    barrier.wait(60.0)


def test_a_stream_process_that_dies_is_said_at_once(monkeypatch):
    """Before: a stream process that died without a word (killed for memory, a crash in native
    code) left the parent waiting for its result BARRIER_TIMEOUT_S + 600 s (20 minutes), and
    then saying only "no result in time", while the others waited at the barrier. Now the parent
    sees the dead process while it waits, names it and how it ended, and ends the others."""
    monkeypatch.setattr(S, "_process_main", _killed_or_waiting)
    monkeypatch.setattr(S, "BARRIER_TIMEOUT_S", 2.0)     # the old wait, cut short: 4 s, not 20 min
    monkeypatch.setattr(S, "PLAY_TIMEOUT_S", 2.0)
    specs = [S.StreamSpec(i, "astro", "unused") for i in range(2)]
    with pytest.raises(UsageError) as info:
        S._processes(specs, "cpu", None, 0)
    assert str(info.value) == "stream 0: its process ended without a result (killed by SIGKILL: out of memory?)"
    assert mp.active_children() == []


@pytest.fixture(scope="module")
def tracked_assets(tmp_path_factory, astronaut_landmarks, astronaut_profile, astronaut_rgb):
    """Profiles root with `astro`, two landmarks-only tracked clips (40 frames, 30 fps), a photo
    (photo.png) and a folder of 5 images (frames/)."""
    import cv2

    from profiles.format import save

    root = tmp_path_factory.mktemp("streams")
    save(astronaut_profile, root / "profiles" / "astro")
    bgr = cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(root / "photo.png"), bgr)
    (root / "frames").mkdir()
    for i in range(5):
        cv2.imwrite(str(root / "frames" / f"{i:03d}.png"), bgr)
    clips = []
    for k in range(2):
        lm = np.repeat(astronaut_landmarks[None].astype(np.float32), 40, axis=0)
        lm[:, :, 0] += np.sin(np.arange(40) / (3.0 + k))[:, None] * 3
        path = root / f"c{k}.track.npz"
        TrackedClip(landmarks=lm, present=np.ones(40, bool), fps=30.0, size=(512, 512),
                    sha256="0" * 64, clip=f"c{k}.mp4").save(path)
        clips.append(str(path))
    return {"profiles": root / "profiles", "clips": clips, "root": root}


@pytest.mark.slow
def test_two_streams_in_threads_on_tracked_clips(tracked_assets, run_bench, monkeypatch, tmp_path):
    monkeypatch.setenv("PUPPETEER_PROFILES", str(tracked_assets["profiles"]))
    out = tmp_path / "s.json"
    rc, text, err = run_bench("--streams", "1,2", "--profile", "astro", "--driver",
                              ",".join(tracked_assets["clips"]), "--warmup", "5", "--json", out)
    assert rc == 0, err
    result = json.loads(out.read_text())["streams"]
    assert [c["n"] for c in result["counts"]] == [1, 2]
    two = result["counts"][1]["streams"]
    assert [s["driver"] for s in two] == ["c0.track.npz", "c1.track.npz"]
    for s in two:
        assert s["frames"] + s["dropped"] - s["held"] == 40 - 5 and s["fps"] > 0 and s["tier"] == "warp"
        assert s["stages_ms"]["track"]["p50"] < 0.5          # tracked: the stage passes
    assert "largest N that holds" in text and "| 2 | 1 | astro ← c1.track.npz |" in text
    assert result["machine"]["python"]


@pytest.mark.parametrize("argv, expect", [
    (("--streams", "2", "--profile", "astro"), "--streams needs --profile"),
    (("--streams", "0", "--profile", "astro", "--driver", "x"), "--streams wants N"),
    (("--streams", "2", "--profile", "astro", "--driver", "{clip}", "--compare", "tier=warp,atlas"),
     "cannot be combined with --compare"),
    (("--streams", "2", "--profile", "astro", "--driver", "{clip}", "--gain", "eyes=1.2"),
     "cannot be combined with --gain"),
    (("--streams", "2", "--profile", "nobody", "--driver", "{clip}"), "nobody"),
    (("--streams", "2", "--profile", "astro", "--driver", "missing.track.npz"), "missing.track.npz"),
    (("--streams", "2", "--profile", "astro", "--driver", "0"), "camera"),
])
def test_user_mistakes_are_one_line(tracked_assets, run_bench, monkeypatch, argv, expect):
    monkeypatch.setenv("PUPPETEER_PROFILES", str(tracked_assets["profiles"]))
    argv = [a.replace("{clip}", tracked_assets["clips"][0]) for a in argv]
    rc, _, err = run_bench(*argv)
    assert rc == 2 and expect in one_error_line(err)


def _streams_argv(assets, argv):
    """`argv` with {clip}, {root}, {astro} (the profile's folder) filled in."""
    return [str(a).format(clip=assets["clips"][0], root=assets["root"],
                          astro=assets["profiles"] / "astro") for a in argv]


@pytest.mark.parametrize("argv, expect", [
    (("--json", "{clip}"), "--json {clip} is the driver ('{clip}'); writing there would destroy it: "
                           "choose another file"),
    (("--json", "{astro}/profile.yaml"), "--json {astro}/profile.yaml is one of the profile's files"),
    (("--json", "{root}"), "cannot write {root} (--json): '{root}' is a folder; name a file"),
    (("--plot", "{root}/out"), "--plot {root}/out: not a picture format the plot is written in"),
    (("--driver", "{root}/frames", "--plot", "{root}/frames/p.png"),
     "--plot {root}/frames/p.png would lie among the images a driver folder plays"),
    (("--json", "{root}/s.json", "--plot", "{root}/s.json"),
     "--plot {root}/s.json is the --json output"),
])
def test_streams_check_their_outputs_as_the_bench_does(tracked_assets, run_bench, monkeypatch, argv, expect):
    """Before the fix: --streams checked only that an output's folder exists: `--json` onto the
    driver or the profile's profile.yaml overwrote it, `--json FOLDER` raised IsADirectoryError
    after the whole run, `--plot out` wrote 'out', `--plot` into a driver folder added a frame."""
    monkeypatch.setenv("PUPPETEER_PROFILES", str(tracked_assets["profiles"]))
    base = ["--streams", "1", "--profile", "astro", "--driver", "{clip}", "--warmup", "5"]
    argv = _streams_argv(tracked_assets, base + list(argv))
    before = {p: p.read_bytes() for p in (tracked_assets["profiles"] / "astro").iterdir()}
    rc, out, err = run_bench(*argv)
    assert rc == 2 and out == ""
    assert one_error_line(err).startswith("error: " + _streams_argv(tracked_assets, [expect])[0])
    assert {p: p.read_bytes() for p in (tracked_assets["profiles"] / "astro").iterdir()} == before


@pytest.mark.parametrize("argv, expect", [
    (("--mode", "swap"), "--streams cannot be combined with --mode swap"),
    (("--pose-from", "still"), "--streams cannot be combined with --pose-from still"),
    (("--expression-from", "{clip}"), "--streams cannot be combined with --expression-from {clip}"),
    (("--floor",), "--streams cannot be combined with --floor (the streams are plain reenactments "
                   "measured by the latency pass): drop --floor, or drop --streams"),
    (("--frame", "3"), "--streams cannot be combined with --frame 3"),
    (("--block", "10"), "--streams cannot be combined with --block 10"),
    (("--driver", "{root}/frames"), "--driver {root}/frames: --frames/clip gives 5 frames, not more than "
                                    "--warmup 5: nothing left to measure"),
    (("--driver", "{root}/photo.png"), "--driver {root}/photo.png: one picture has no motion to measure"),
    (("--driver", "{clip}", "--frames", "5"), "--driver {clip}: --frames/clip gives 5 frames"),
    # audit of stop 65 (helper 93): one frame measured read "largest N 0", two "holds"
    (("--driver", "{clip}", "--frames", "6"), "--driver {clip}: --frames/clip leaves 1 frame after --warmup 5: "
                                              "a stream's fps and p95 need at least 30 (use more frames, or a "
                                              "smaller --warmup)"),
    # before (stop 58, new-user review): an empty list raised ZeroDivisionError, "s1,,s5" passed
    (("--profile", ","), "--streams: --profile ',' has an empty item: give --profile P[,P2,...]"),
    (("--profile", "astro,,astro"), "--streams: --profile 'astro,,astro' has an empty item"),
    (("--driver", ","), "--streams: --driver ',' has an empty item: give --driver CLIP[,CLIP2,...]"),
])
def test_streams_refuse_what_they_would_ignore(tracked_assets, run_bench, monkeypatch, argv, expect):
    """Before the fix: --streams ignored --mode swap, --pose-from, --expression-from, --floor and
    --frame, and a driver no longer than the warm-up gave a table of '–' and "largest N that holds
    30 fps ... 0"."""
    monkeypatch.setenv("PUPPETEER_PROFILES", str(tracked_assets["profiles"]))
    base = ["--streams", "1", "--profile", "astro", "--driver", "{clip}", "--warmup", "5"]
    argv = _streams_argv(tracked_assets, base + list(argv))
    rc, out, err = run_bench(*argv)
    assert rc == 2 and out == ""
    assert one_error_line(err).startswith("error: " + _streams_argv(tracked_assets, [expect])[0])


def test_a_truncated_driver_is_noted(tracked_assets, run_bench, monkeypatch, tmp_path, astronaut_rgb):
    """(stop 58 review) The bench says when a driver clip ended well before its header's frame
    count; --streams played it in silence."""
    from tests.bench.helpers import moving_clip

    monkeypatch.setenv("PUPPETEER_PROFILES", str(tracked_assets["profiles"]))
    whole = moving_clip(tmp_path / "whole.avi", astronaut_rgb, 40)
    half = tmp_path / "half.avi"
    half.write_bytes(whole.read_bytes()[:len(whole.read_bytes()) // 2])
    out = tmp_path / "s.json"
    rc, text, err = run_bench("--streams", "1", "--profile", "astro", "--driver", half, "--warmup", "3",
                              "--json", out)
    assert rc == 0, err
    assert "\nnotes:\n- half.avi ended at frame" in text
    (note,) = json.loads(out.read_text())["streams"]["notes"]
    assert note.startswith("half.avi ended at frame") and "of the 40 its header announces" in note
