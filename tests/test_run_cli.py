"""run.py, the command line: demo, enroll, live, --help; user errors exit 2 with one line."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import run

ROOT = Path(run.__file__).resolve().parent


@pytest.fixture
def profiles_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "profiles"
    monkeypatch.setenv("PUPPETEER_PROFILES", str(root))
    return root


def _count_frames(path: Path) -> tuple[int, tuple[int, int]]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    n, size = 0, None
    while True:
        ok, img = cap.read()
        if not ok:
            break
        n += 1
        size = (img.shape[1], img.shape[0])
    cap.release()
    return n, size


def _error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


@pytest.mark.tracking
def test_demo_writes_a_readable_video(tmp_path, profiles_root, capsys):
    out = tmp_path / "demo.mp4"
    assert run.main(["demo", "--frames", "12", "--out", str(out)]) == 0
    n, size = _count_frames(out)
    assert n == 12 and size == (512, 512)  # the astronaut photo's own size
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "12 frames" in printed
    # the embedded astronaut was enrolled into the profiles root, once
    assert (profiles_root / "astronaut" / "profile.yaml").is_file()


@pytest.mark.tracking
def test_enroll_non_face_exits_2_with_one_line(tmp_path, profiles_root, capsys):
    path = tmp_path / "wall.png"
    cv2.imwrite(str(path), np.full((200, 300, 3), 180, np.uint8))
    assert run.main(["enroll", str(path), "--name", "wall"]) == 2
    line = _error_line(capsys)
    assert "no human face" in line
    assert not (profiles_root / "wall").exists()
    assert not profiles_root.exists() or not any(profiles_root.iterdir())


def test_enroll_missing_file_and_bad_name_exit_2(tmp_path, profiles_root, capsys):
    assert run.main(["enroll", str(tmp_path / "missing.jpg"), "--name", "x"]) == 2
    assert "does not exist" in _error_line(capsys)
    assert run.main(["enroll", str(tmp_path / "missing.jpg"), "--name", "../x"]) == 2
    assert "not usable" in _error_line(capsys)


@pytest.mark.tracking
def test_a_stopped_enroll_says_whether_the_profile_was_saved(tmp_path, profiles_root, capsys, monkeypatch,
                                                            astronaut_rgb):
    """Before: "stopped" whether or not the Ctrl-C came after the new profile took the name."""
    from profiles import load, store

    photo = tmp_path / "astro.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    replace = store.replace_dir

    def stop(before: bool):
        def interrupted(tmp, folder):
            if not before:
                replace(tmp, folder)
            raise KeyboardInterrupt
        monkeypatch.setattr(store, "replace_dir", interrupted)

    def stopped(*flags) -> str:
        assert run.main(["enroll", str(photo), "--name", "astro", *flags]) == 130
        return capsys.readouterr().err.strip().splitlines()[-1]

    stop(before=True)
    assert stopped() == "stopped: no profile was written"
    assert not (profiles_root / "astro").exists()
    monkeypatch.setattr(store, "replace_dir", replace)
    assert run.main(["enroll", str(photo), "--name", "astro", "--consent", "first"]) == 0
    stop(before=True)
    assert stopped("--force") == "stopped: profile 'astro' left as it was"
    assert load(profiles_root / "astro").consent is not None
    stop(before=False)
    assert stopped("--force") == "stopped just after profile 'astro' was saved: it is complete"
    assert load(profiles_root / "astro").consent is None


@pytest.mark.tracking
def test_enroll_force_says_which_settings_it_does_not_carry_over(tmp_path, profiles_root, capsys, astronaut_rgb):
    """Before (stop 61's review): `enroll --force` dropped the hand-set `settings.gains` and
    `settings.swap` unsaid, while the consent record's drop was said."""
    from profiles.format import attach_files

    photo = tmp_path / "astro.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    assert run.main(["enroll", str(photo), "--name", "astro"]) == 0
    assert run.main(["enroll", str(photo), "--name", "astro", "--force"]) == 0
    assert "settings" not in capsys.readouterr().out              # none set: nothing said
    attach_files(profiles_root / "astro", [], settings={"gains": {"mouth": 1.2}, "swap": {"drop_fringe": True}})
    assert run.main(["enroll", str(photo), "--name", "astro", "--force"]) == 0
    out = capsys.readouterr().out
    assert ("note: the replaced profile's own settings are not carried over ({gains: {mouth: 1.2}, swap: "
            "{drop_fringe: true}}); add them again under 'settings:' in") in out


@pytest.mark.tracking
def test_enroll_force_says_it_discards_a_trained_generator(tmp_path, profiles_root, capsys, astronaut_rgb):
    """Before the fix (README audit): `enroll --force` over a trained profile deleted its neural/
    folder (generator and checkpoint) with only a note about consent."""
    import torch

    from realtime.tiers.neural.checkpoint import save_checkpoint
    from realtime.tiers.neural.model import NeuralConfig

    photo = tmp_path / "astro.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    assert run.main(["enroll", str(photo), "--name", "astro"]) == 0
    assert run.main(["enroll", str(photo), "--name", "astro", "--force"]) == 0
    assert "generator" not in capsys.readouterr().out              # none trained: nothing said
    (profiles_root / "astro" / "neural").mkdir()
    save_checkpoint(profiles_root / "astro" / "neural" / "train_state.safetensors", {"G": torch.nn.Linear(2, 2)},
                    step=1200, config=NeuralConfig.for_resolution(128))
    assert run.main(["enroll", str(photo), "--name", "astro", "--force"]) == 0
    assert ("note: the replaced profile's trained generator (neural/, 1200 training steps) was discarded with "
            "it: the new profile has none until it is trained again" in capsys.readouterr().out)
    assert not (profiles_root / "astro" / "neural").exists()


def test_live_with_a_missing_profile_exits_2(profiles_root, capsys):
    assert run.main(["live", "--profile", "missing", "--sink", "null"]) == 2
    line = _error_line(capsys)
    assert "missing" in line and "enroll" in line


def test_live_with_a_bad_driver_or_sink_exits_2(tmp_path, profiles_root, capsys, astronaut_profile):
    from profiles.format import save

    save(astronaut_profile, profiles_root / "astro")
    assert run.main(["live", "--profile", "astro", "--driver", str(tmp_path / "nothing"),
                     "--sink", "null"]) == 2
    assert _error_line(capsys) == f"error: {str(tmp_path / 'nothing')!r} does not exist: check the path"
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 64))
    for _ in range(2):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    for flag in ("--driver", "--pose-from", "--expression-from"):   # before: "neither a camera index, ..."
        argv = [flag, str(tmp_path / "missing.mp4")] + (["--driver", str(clip)] if flag != "--driver" else [])
        assert run.main(["live", "--profile", "astro", "--sink", "null", *argv]) == 2
        assert f"{str(tmp_path / 'missing.mp4')!r} does not exist: check the path" in _error_line(capsys)
    assert run.main(["live", "--profile", "astro", "--device", "cuda", "--sink", "null"]) == 2
    assert "--device" in _error_line(capsys)


@pytest.mark.tracking
def test_live_from_an_image_folder_to_a_file(tmp_path, profiles_root, capsys, astronaut_rgb,
                                             astronaut_profile):
    from profiles.format import save

    save(astronaut_profile, profiles_root / "astro")
    frames = tmp_path / "driver"
    frames.mkdir()
    bgr = cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR)
    for i in range(5):  # the driver nods a little
        m = cv2.getRotationMatrix2D((256, 200), 3.0 * i, 1.0)
        img = cv2.warpAffine(bgr, m, (512, 512), borderMode=cv2.BORDER_REPLICATE)
        cv2.imwrite(str(frames / f"frame{i}.jpg"), img)
    out = tmp_path / "live.mp4"
    code = run.main(["live", "--profile", "astro", "--driver", str(frames),
                     "--sink", f"file:{out}", "--size", "256x256"])
    assert code == 0
    n, size = _count_frames(out)
    assert n == 5 and size == (256, 256)
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.tracking
def test_live_names_the_virtual_camera_it_streams_to(tmp_path, profiles_root, capsys, monkeypatch,
                                                     astronaut_rgb, astronaut_profile):
    """No v4l2loopback here: a stand-in pyvirtualcam records the frames and names its device; the
    run says which camera to pick in the call app, and every frame reaches it."""
    import sys
    import types

    from profiles.format import save

    sent = []

    class Camera:
        def __init__(self, width, height, fps, fmt=None, backend=None, device=None, **_):
            self.device = device or "/dev/video7"

        def send(self, frame):
            sent.append(frame.shape)

        def close(self):
            pass

    fake = types.ModuleType("pyvirtualcam")
    fake.Camera = Camera
    fake.PixelFormat = types.SimpleNamespace(RGB="RGB")
    fake.camera = types.SimpleNamespace(BACKENDS={"v4l2loopback": None})
    monkeypatch.setitem(sys.modules, "pyvirtualcam", fake)
    save(astronaut_profile, profiles_root / "astro")
    frames = tmp_path / "driver"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"f{i}.jpg"), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    assert run.main(["live", "--profile", "astro", "--driver", str(frames), "--sink", "vcam",
                     "--size", "256x256"]) == 0
    assert "virtual camera: /dev/video7 (256x256)" in capsys.readouterr().err
    assert sent == [(256, 256, 3)] * 3


@pytest.mark.tracking
def test_live_says_when_a_driver_clip_ends_well_before_its_header_count(tmp_path, profiles_root, capsys,
                                                                         astronaut_rgb, astronaut_profile):
    """Before the fix (bad-input review): a truncated driver clip ended the run early with exit 0
    and no word. A --frames limit, or a clip read to its end, gives no note."""
    from profiles.format import save
    from tests.bench.helpers import moving_clip

    save(astronaut_profile, profiles_root / "astro")
    whole = moving_clip(tmp_path / "whole.avi", astronaut_rgb[::2, ::2].copy(), 24)
    data = whole.read_bytes()
    (tmp_path / "half.avi").write_bytes(data[:len(data) // 2])

    def live(driver, *more):
        assert run.main(["live", "--profile", "astro", "--driver", str(tmp_path / driver), "--sink", "null",
                         *more]) == 0
        return [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]

    notes = live("half.avi")
    assert len(notes) == 1 and notes[0].startswith("note: half.avi ended at frame ")
    assert notes[0].endswith(" of the 24 its header announces: the file may be damaged (truncated or corrupt)")
    assert live("half.avi", "--frames", "4") == []
    assert live("whole.avi") == []


def _subcommands() -> list[str]:
    parser = run.build_parser()
    return sorted([a for a in parser._actions if a.dest == "command"][0].choices)


def test_the_cli_has_the_commands_the_readme_names():
    assert {"demo", "enroll", "live", "train", "export", "track", "devices", "verify", "consent",
            "bench"} <= set(_subcommands())


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        run.main([command, "--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    for argv in ([], ["demo", "--frames", "0"], ["demo", "--size", "10x10"], ["fly"]):
        with pytest.raises(SystemExit) as e:
            run.main(argv)
        assert e.value.code == 2, argv
        capsys.readouterr()


def test_a_bad_gain_is_named_once(capsys):
    with pytest.raises(SystemExit) as e:
        run.main(["live", "--profile", "p", "--driver", "0", "--gain", "ears=2"])
    assert e.value.code == 2
    assert "argument --gain: unknown region 'ears'; regions: eyes" in capsys.readouterr().err


def test_help_in_a_subprocess():
    r = subprocess.run([sys.executable, str(ROOT / "run.py"), "--help"], capture_output=True,
                       text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    for command in ("demo", "enroll", "live", "devices"):
        assert command in r.stdout


@pytest.mark.parametrize("name, shown", [("s1", "s1"), ("a b", "'a b'"), ("x$(id)*", "'x$(id)*'")])
def test_the_next_hint_quotes_the_name_for_a_shell(tmp_path, monkeypatch, capsys, name, shown):
    """The hint printed the name bare (``--profile a b``); names that need quoting are refused
    since, but whatever reaches the hint is quoted (enroll itself stubbed: no name check)."""
    import profiles.enroll_video

    monkeypatch.setattr(profiles.enroll_video, "enroll", lambda *a, **k: tmp_path / name)
    assert run.main(["enroll", str(tmp_path / "x.png"), "--name", name]) == 0
    assert f"next: python run.py live --profile {shown} --driver 0 --sink window\n" in \
        capsys.readouterr().out


def _readme() -> str:
    return (ROOT / "README.md").read_text()


def test_readme_gives_eval_clips_by_their_path_from_the_checkout():
    """Before: `--driver d10.mp4`, `--expression-from d10.mp4` (not found from the checkout) and
    `--self-reenact ../shared/eval/<clip>.mp4` (the clips are in drivers/ or targets/)."""
    flags = r"--(?:driver|expression-from|pose-from|self-reenact|self-drive|video)"
    wrong = [m.group(0) for m in re.finditer(rf"{flags} (\S+\.(?:mp4|jpg))", _readme())
             if re.search(r"(^|/)([ds]\d+\w*|<clip>)\.(mp4|jpg)$", m.group(1))
             and not re.match(r"\.\./shared/eval/(drivers/(d\d+|<clip>)|targets/(s\d+\w*|<clip>))\.",
                              m.group(1))]
    assert wrong == []


@pytest.mark.parametrize("command", ["train", "export"])
def test_readme_cli_table_lists_every_option(command):
    """Before: the table left out train's --batch and --threads and export's --device."""
    row = re.search(rf"^\| `run\.py {command} .*$", _readme(), re.M).group(0)
    sub = [a for a in run.build_parser()._actions if a.dest == "command"][0].choices[command]
    options = [o for a in sub._actions for o in a.option_strings if o.startswith("--") and o != "--help"]
    assert [o for o in options if o not in row] == []


def test_bench_help_says_self_reenact_enrolls_the_first_half(capsys):
    """Before: "enroll VIDEO's first frame" (bench.drivers.prepare_self_reenact enrolls the first
    half as an atlas, frame 0 only when that fails)."""
    with pytest.raises(SystemExit):
        run.main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--self-reenact VIDEO enroll VIDEO's first half as an atlas" in text


def test_a_reader_that_stops_early_gets_no_traceback():
    """Before the fix: `run.py verify x.mp4 | head -1` (or any command piped into a reader that
    exits first) ended in a BrokenPipeError traceback."""
    p = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "bench", "--compare", "list"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    p.stdout.close()                     # the reader is gone before the first line is written
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.parametrize("argv, flag", [
    (["live", "--profile", "", "--sink", "null"], "--profile"),
    (["live", "--profile", "p", "--driver", " ", "--sink", "null"], "--driver"),
    (["live", "--profile", "p", "--pose-from", "", "--sink", "null"], "--pose-from"),
    (["train", "--profile", "p", "--video", "", "--steps", "1"], "--video"),
    (["consent", "", "--by", "x"], "name"),
    (["verify", ""], "path"),
    (["track", "clip.mp4", "--out", ""], "--out"),
    (["enroll", "", "--name", "x"], "source"),
])
def test_an_empty_name_is_refused_not_taken_for_the_current_folder(capsys, argv, flag):
    """Before the fix: `--driver ''` played a picture of the working folder, `--profile ''`
    said ". has no profile.yaml", `track --out ''` wrote the default name."""
    with pytest.raises(SystemExit) as e:
        run.main(argv)
    assert e.value.code == 2
    assert f"argument {flag}: must not be empty" in capsys.readouterr().err


def test_only_a_closed_stdout_is_a_reader_gone(tmp_path, monkeypatch):
    """`main` exits 141 quietly only when standard output's reader went away; a BrokenPipeError
    from another pipe is a bug and keeps its traceback (it was exit 141 whatever broke)."""
    read_end, write_end = os.pipe()
    with open(write_end, "w") as pipe_out:
        monkeypatch.setattr(sys, "stdout", pipe_out)
        assert not run._stdout_reader_gone()
        os.close(read_end)
        assert run._stdout_reader_gone()
    import socket

    ours, theirs = socket.socketpair()
    with ours, open(ours.fileno(), "w", closefd=False) as socket_out:
        monkeypatch.setattr(sys, "stdout", socket_out)
        assert not run._stdout_reader_gone()
        theirs.close()
        assert run._stdout_reader_gone()
    with open(tmp_path / "out.txt", "w") as file_out:
        monkeypatch.setattr(sys, "stdout", file_out)
        assert not run._stdout_reader_gone()

        def broken(args):
            raise BrokenPipeError("a sink's pipe")
        parser = run.build_parser
        monkeypatch.setattr(run, "build_parser", lambda: _with_func(parser(), broken))
        with pytest.raises(BrokenPipeError, match="a sink's pipe"):
            run.main(["bench", "--compare", "list"])


def _with_func(parser, func):
    real = parser.parse_args
    parser.parse_args = lambda argv=None: _set(real(argv), func)
    return parser


def _set(ns, func):
    ns.func = func
    return ns


def test_live_adds_up_repeated_gains(capsys):
    """`live --gain eyes=0 --gain mouth=1` drives with both (the last --gain alone was kept); a
    region in two of them is one error line."""
    args = run.build_parser().parse_args(["live", "--profile", "p", "--gain", "eyes=0", "--gain", "mouth=1"])
    assert args.gain == {"eyes": 0.0, "mouth": 1.0}
    with pytest.raises(SystemExit):
        run.build_parser().parse_args(["live", "--profile", "p", "--gain", "eyes=0", "--gain", "eyes=1"])
    assert "eyes is given twice (0 and 1)" in capsys.readouterr().err


@pytest.mark.parametrize("flags, said", [
    ([], "the profile's own settings apply (its profile.yaml): gains mouth=1.1, gaze=0.8"),
    (["--gain", "mouth=0.9"], "the profile's own settings apply (its profile.yaml): gains gaze=0.8 (--gain replaces "
                              "its mouth=1.1)"),
    (["--gain", "mouth=1,gaze=1"], "the profile's own settings do not apply (--gain replaces its mouth=1.1, gaze=0.8)"),
    # swap: its own eyes (the gaze gain has its note), and the profile's swap.drop_fringe
    (["--mode", "swap"], "the profile's own settings apply (its profile.yaml): gains mouth=1.1; swap.drop_fringe true"),
    (["--mode", "swap", "--no-drop-fringe", "--gain", "mouth=1"],
     "the profile's own settings do not apply (--gain replaces its mouth=1.1; --no-drop-fringe replaces its "
     "swap.drop_fringe true)"),
    (["--mode", "swap", "--expression-from", "still", "--drop-fringe"],
     "the profile's own settings apply (its profile.yaml): gains mouth=1.1, gaze=0.8"),
])
def test_live_says_which_of_the_profiles_own_settings_apply(flags, said):
    """Before (YAML audit): `live`'s summary did not say that the profile's settings (gains,
    swap.drop_fringe) were in effect: a user who edited them could not tell they took."""
    from types import SimpleNamespace

    profile = SimpleNamespace(name="p", settings={"gains": {"mouth": 1.1, "gaze": 0.8}, "swap": {"drop_fringe": True}})
    args = run.build_parser().parse_args(["live", "--profile", "p", *flags])
    assert run._settings_in_effect(profile, args) == said
    assert run._settings_in_effect(SimpleNamespace(name="p", settings={}), args) is None   # none set: nothing
    if "swap" not in flags:       # swap.drop_fringe does nothing in reenact: not said
        fringe_only = SimpleNamespace(name="p", settings={"swap": {"drop_fringe": True}})
        assert run._settings_in_effect(fringe_only, args) is None


def test_the_ctrl_c_handler_is_put_back_and_an_ignored_one_left_alone(tmp_path, monkeypatch):
    """`main` records a Ctrl-C (`realtime.core.stop`) and passes it to the handler that was
    there, puts that handler back and forgets the stop at the end; a SIGINT ignored by the
    caller (a job in a script's background) stays ignored (code review: it was replaced)."""
    import signal

    from realtime.core import stop

    seen = []

    def callers(signum, frame):
        seen.append(stop.requested())

    for before in (callers, signal.SIG_IGN):
        during = []

        def command(args, _before=before, _during=during):
            _during.append(signal.getsignal(signal.SIGINT))
            signal.raise_signal(signal.SIGINT)      # the caller's handler, or ignored
            return 0

        monkeypatch.setattr(run, "cmd_consent", command)
        old = signal.signal(signal.SIGINT, before)
        try:
            assert run.main(["consent"]) == 0
            assert signal.getsignal(signal.SIGINT) is before and not stop.requested()
        finally:
            signal.signal(signal.SIGINT, old)
        if before is signal.SIG_IGN:
            assert during == [signal.SIG_IGN]
        else:
            assert during[0] is not callers and seen == [True]


def test_the_summary_says_each_step_of_the_render_size_down_and_back_up():
    """The governor now steps back up once a busy machine has room again: the summary says
    which way each step went and why (the old line said every step was a slow machine 'timed at
    start-up or over the first frames'); a session whose load came and went many times lists the
    last steps and counts the rest."""
    from realtime.engine.governor import RenderGovernor

    gov = RenderGovernor([400, 320, 256], 1 / 30)
    assert run._governor_lines(gov) == [] and run._governor_lines(None) == []
    gov.steps = [(400, 256, 45.2), (256, 320, 14.2)]
    down, up = run._governor_lines(gov)
    assert down.startswith("  lowered from 400² to 256²: frames took 45.2 ms (median), over the real-time "
                           "budget of 23.3 ms (a slow or busy machine")
    assert up == "  raised from 256² to 320²: frames took 14.2 ms at 256², room for 320² again"
    timed = RenderGovernor([400, 320, 256], 1 / 30)
    timed.presize(40.0, 30.0)       # before the first frame: a prediction from a timed frame, said so
    assert run._governor_lines(timed) == [
        "  lowered from 400² to 256²: a frame timed before the first took 40.0 ms, over the real-time budget of "
        "23.3 ms (a slow or busy machine; --render-size N fixes the size)"]
    gov.steps = [(400, 320, 25.0), (320, 400, 16.0)] * 5
    lines = run._governor_lines(gov)
    assert lines[0] == ("  the render size changed 10 times (5 down, 5 up: the machine's load came and went); "
                        "the last 6:") and len(lines) == 1 + run.GOVERNOR_LINES


def test_a_realtime_recording_that_dropped_frames_says_it_is_shorter():
    """Load audit: a --realtime run to a file under load wrote 402 frames (13.4 s at 30 fps) for a
    15 s session, without a word: the dropped frames are not in the file, which plays faster."""
    from realtime.engine.loop import RunReport

    loaded = RunReport(frames=402, wall_s=15.0, capture_dropped=46)
    assert run._short_recording("file:out.mp4", True, loaded, 30.0) == (
        "note: the recording holds the 402 frames sent (13.4 s at 30 fps) of a 15.0 s run: the 46 dropped "
        "are left out, so it plays faster than the session went (--offline records one frame for every frame "
        "of a clip)")
    assert run._short_recording("file:out.mp4", False, loaded, 30.0) is None      # offline: every frame
    assert run._short_recording("null", True, loaded, 30.0) is None
    assert run._short_recording("file:out.mp4", True, RunReport(frames=450, wall_s=15.0), 30.0) is None
