"""What a run writes, checked before it starts, and what a stopped run leaves: the file sink
never writes onto anything the run reads (the driver, a tracked driver's clip, the remix sources,
an image folder's images; a video may go into the image folder), an unwritable or unsupported
output is one `error:` line before the engine starts (live, demo, bench, track), options given
without the one they need are named, and a Ctrl-C leaves a playable file or nothing, and says
which."""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import run
from profiles.format import save
from tests.test_run_hostile import _clip, _one_error


@pytest.fixture
def profiles_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "profiles"
    monkeypatch.setenv("PUPPETEER_PROFILES", str(root))
    return root


@pytest.fixture
def astro(profiles_root, astronaut_profile) -> str:
    save(astronaut_profile, profiles_root / "astro")
    return "astro"


@pytest.fixture
def no_engine(monkeypatch):
    """Fails the test if the engine is built: the checks must come first."""
    from realtime.engine import loop

    def built(*a, **k):
        raise AssertionError("the engine was built before the mistake was found")

    monkeypatch.setattr(loop, "Engine", built)


def _tracked(clip: Path) -> Path:
    from realtime.core.paths import sha256_file
    from realtime.io.tracked import TrackedClip

    n = 5
    out = clip.with_name(clip.stem + ".track.npz")
    TrackedClip(landmarks=np.zeros((n, 478, 3), np.float32), present=np.zeros(n, bool), fps=30.0,
                size=(64, 64), sha256=sha256_file(clip), clip=clip.name, tracker="test").save(out)
    return out


def _frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


# ------------------------------------------------------------- never onto the run's inputs
def test_live_never_writes_onto_what_it_reads(tmp_path, astro, no_engine, capsys):
    """Before the fix: the tracked driver's clip, a remix source and an image of the driver's
    folder were overwritten with --overwrite."""
    clip = _clip(tmp_path / "clip.mp4")
    other = _clip(tmp_path / "other.mp4")
    track = _tracked(clip)
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((64, 64, 3), np.uint8))
    before = {p: p.read_bytes() for p in (clip, other, folder / "a.png")}
    for extra, out, expect in [
        (["--driver", str(track)], clip, "is the clip the driver plays its images from"),
        (["--driver", str(clip), "--expression-from", str(other)], other,
         "is the --expression-from source"),
        (["--driver", str(clip), "--pose-from", str(other)], other, "is the --pose-from source"),
        (["--driver", str(folder)], folder / "a.png", "is one of the driver's images"),
    ]:
        argv = ["live", "--profile", astro, *extra, "--sink", f"file:{out}", "--overwrite", "--frames", "3"]
        assert run.main(argv) == 2, argv
        assert expect in _one_error(capsys.readouterr().err)
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in folder.iterdir()) == ["a.png"]


def test_an_image_folder_driver_s_own_folder_takes_a_video(tmp_path, astro, monkeypatch, capsys):
    """Before the fix: "'out.mp4' lies inside '.', the folder the driver reads" (the folder's
    reader reads only its images; the base code wrote the video there)."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((64, 64, 3), 60 * i, np.uint8))
    monkeypatch.chdir(folder)
    assert run.main(["live", "--profile", astro, "--driver", ".", "--sink", "file:out.mp4",
                     "--frames", "3", "--size", "80x64"]) == 0
    assert "wrote out.mp4" in capsys.readouterr().out
    assert _frames(folder / "out.mp4") == 3


def test_the_wrote_line_names_the_file_the_sink_kept(tmp_path, astro, monkeypatch, capsys):
    """Before the fix: the line was printed from the spec's text, so `FILE:out.mp4` (a file sink:
    sink names are not case-sensitive) printed no "wrote" line at all."""
    monkeypatch.chdir(tmp_path)
    clip = _clip(tmp_path / "clip.avi")
    assert run.main(["live", "--profile", astro, "--driver", str(clip), "--sink", "FILE:out.mp4",
                     "--frames", "3", "--size", "80x64"]) == 0
    assert "wrote out.mp4 (3 frames, 80x64)" in capsys.readouterr().out
    assert _frames(tmp_path / "out.mp4") == 3


def test_a_file_that_appears_at_the_output_while_recording_stays_and_the_run_says_where_it_went(
        tmp_path, astro, monkeypatch, capsys):
    """Before (review): the run ended in "error:" and exit 2, without its summary, though the
    recording was whole and kept beside the file that had appeared."""
    import os

    from realtime.engine import loop

    out = tmp_path / "x.mp4"
    process = loop.Engine.process

    def then_someone_writes(self, frame):
        if frame.index == 1:
            out.write_bytes(b"theirs")
        return process(self, frame)

    monkeypatch.setattr(loop.Engine, "process", then_someone_writes)
    clip = _clip(tmp_path / "clip.avi")
    assert run.main(["live", "--profile", astro, "--driver", str(clip), "--sink", f"file:{out}",
                     "--frames", "3", "--size", "80x64"]) == 0
    kept = tmp_path / f"x-{os.getpid()}.mp4"
    assert (f"wrote {kept} (3 frames, 80x64, a file appeared at {out} while recording and was left as it is)"
            in capsys.readouterr().out)
    assert out.read_bytes() == b"theirs" and _frames(kept) == 3


def test_the_audio_report_is_never_an_input_nor_the_recording(tmp_path, astro, profiles_root, capsys):
    """Before (review): --audio-report was only checked for a writable folder, so it could
    overwrite the driver (or the recording) with its JSON; and (stop 61's review) the profile's
    own profile.yaml, which then no longer loaded. It is a .json file, and none of the profile's."""
    clip = _clip(tmp_path / "clip.avi")
    yaml_file = profiles_root / astro / "profile.yaml"
    before = yaml_file.read_bytes()
    (profiles_root / astro / "notes.json").write_text("{}")
    for report, what in ((clip, "the report is JSON; name it e.g. "),
                         (tmp_path / "rec.mp4", "the report is JSON; name it e.g. "),
                         (yaml_file, "the report is JSON; name it e.g. "),
                         (profiles_root / astro / "notes.json", "is one of the profile's files (")):
        code = run.main(["live", "--profile", astro, "--driver", str(clip), "--sink", f"file:{tmp_path / 'rec.mp4'}",
                         "--realtime", "--audio", "default:default", "--audio-report", str(report)])
        err = capsys.readouterr().err
        assert code == 2 and what in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi", "profiles"]
    assert yaml_file.read_bytes() == before and (profiles_root / astro / "notes.json").read_text() == "{}"


def test_an_existing_audio_report_is_replaced_only_with_overwrite(tmp_path, astro, capsys, monkeypatch):
    """Before the fix (README audit): `--audio-report existing.json` was overwritten without
    --overwrite, which the file sink asks for."""
    clip = _clip(tmp_path / "clip.avi")
    report = tmp_path / "old.json"
    report.write_text('{"mine": 1}')
    argv = ["live", "--profile", astro, "--driver", str(clip), "--sink", "null", "--realtime",
            "--audio", "default:default", "--audio-report", str(report)]
    assert run.main(argv) == 2
    assert (f"--audio-report {report} exists already; pass --overwrite to replace it, or choose another name"
            in _one_error(capsys.readouterr().err))
    assert report.read_text() == '{"mine": 1}'
    checked = []     # with --overwrite the checks pass, and the run goes on to the audio bridge
    monkeypatch.setattr(run, "_audio_bridge", lambda spec: checked.append(spec) or (_ for _ in ()).throw(
        run.UserError("no audio here")))
    assert run.main([*argv, "--overwrite"]) == 2
    assert checked == ["default:default"] and "no audio here" in capsys.readouterr().err


def test_audio_with_a_file_sink_says_the_file_gets_no_sound(tmp_path, astro, capsys, monkeypatch):
    """Before (audio audit, item 4): `--audio` with `--sink file:OUT.mp4` wrote a silent video
    without a word: the sound goes to the --audio output only."""
    clip = _clip(tmp_path / "clip.avi")
    monkeypatch.setattr(run, "_audio_bridge", lambda spec: (_ for _ in ()).throw(run.UserError("no audio here")))
    rec = tmp_path / "rec.mp4"
    assert run.main(["live", "--profile", astro, "--driver", str(clip), "--sink", f"file:{rec}", "--realtime",
                     "--audio", "default:default"]) == 2
    err = capsys.readouterr().err
    assert err.count(f"note: --audio plays the sound to its output only: {rec} gets the picture without sound") == 1
    assert run.main(["live", "--profile", astro, "--driver", str(clip), "--sink", "null", "--realtime",
                     "--audio", "default:default"]) == 2
    assert "without sound" not in capsys.readouterr().err


@pytest.mark.parametrize("extra", [[], ["--offline"]])
def test_audio_is_refused_where_the_driver_plays_offline(tmp_path, astro, capsys, no_engine, extra):
    """Before (stop 61's review): a clip played offline passed the microphone on "in sync" with
    frames computed as fast as they come, a quarter-second late by the read-ahead."""
    clip = _clip(tmp_path / "clip.avi")
    assert run.main(["live", "--profile", astro, "--driver", str(clip), "--sink", "null", *extra,
                     "--audio", "default:default"]) == 2
    err = capsys.readouterr().err
    assert "plays the driver offline" in err and "add --realtime, or drive from a camera" in err


def test_a_tracked_driver_s_absent_clip_is_no_input(tmp_path, no_engine):
    """Before the fix: the absent clip's name was refused with "writing there would destroy
    it". Nothing is read from a name where no file is."""
    from realtime.io.remix import run_inputs

    track = _tracked(_clip(tmp_path / "clip.mp4"))
    assert run_inputs([(str(track), "the driver")])[1][0] == tmp_path / "clip.mp4"
    (tmp_path / "clip.mp4").unlink()
    assert run_inputs([(str(track), "the driver")]) == [(track, "the driver")]


@pytest.mark.parametrize("out, expect", [
    ("", "error: --out needs a file name: --out OUT.mp4"),
    ("x.txt", "error: --out '{tmp}/x.txt' is not a video file name (H.264 in .mp4, .m4v, .mov, "
              ".mkv, .avi, .ts, .flv; got '.txt'): name it x.mp4"),
    ("no/x.mp4", "error: --out '{tmp}/no/x.mp4': cannot write there: folder '{tmp}/no' does not "
                 "exist; choose another output file"),
])
def test_demo_checks_its_output_before_it_starts(tmp_path, no_engine, monkeypatch, capsys, out, expect):
    """Before the fix: the errors spoke of a sink demo does not have ("the file sink needs a
    path: file:OUT.mp4", "... or choose another sink")."""
    monkeypatch.setattr(run, "demo_profile", lambda: pytest.fail("the profile was built first"))
    assert run.main(["demo", "--out", str(tmp_path / out) if out else "", "--frames", "3"]) == 2
    assert _one_error(capsys.readouterr().err) == expect.format(tmp=tmp_path)


@pytest.mark.parametrize("size, written", [("81x49", "82x50"), ("80x49", "80x50"), ("81x48", "82x48")])
def test_an_odd_size_for_a_video_file_is_padded_and_said(tmp_path, astro, capsys, size, written):
    """Before the fix (README audit): `--size 641x481` with a file sink was refused ("a video file
    wants even sides"), while a profile's own odd size was padded with a note. Both pad now."""
    clip = _clip(tmp_path / "clip.avi")
    out = tmp_path / "x.mp4"
    assert run.main(["live", "--profile", astro, "--driver", str(clip), "--sink", f"file:{out}",
                     "--frames", "3", "--size", size]) == 0
    assert f"wrote {out} (3 frames, {size} padded to {written} with black: H.264 wants even sides)" \
        in capsys.readouterr().out
    cap = cv2.VideoCapture(str(out))
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == \
        tuple(int(v) for v in written.split("x"))
    cap.release()
    assert run.main(["demo", "--out", str(tmp_path / "d.mp4"), "--frames", "3", "--size", size]) == 0
    assert f"{size} padded to {written} with black" in capsys.readouterr().out


def test_an_odd_size_is_fine_for_the_other_sinks(tmp_path, astro, capsys):
    clip = _clip(tmp_path / "clip.avi")
    assert run.main(["live", "--profile", astro, "--driver", str(clip), "--sink", "null", "--size", "81x49"]) == 0


# ------------------------------------------------------------ unwritable, unsupported
@pytest.mark.parametrize("name, expect", [
    ("x.txt", "is not a video file name"),
    ("a.jpg", "is not a video file name"),
    ("ro/x.mp4", "is not writable"),
])
def test_live_output_mistakes_come_before_the_engine(tmp_path, astro, no_engine, monkeypatch, capsys,
                                                     name, expect):
    from realtime.core import paths

    (tmp_path / "ro").mkdir()
    real = paths.os.access
    monkeypatch.setattr(paths.os, "access", lambda p, mode: Path(p).name != "ro" and real(p, mode))
    clip = _clip(tmp_path / "clip.avi")
    assert run.main(["live", "--profile", astro, "--driver", str(clip),
                     "--sink", f"file:{tmp_path / name}", "--frames", "3"]) == 2
    assert expect in _one_error(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi", "profiles", "ro"]


def test_track_checks_its_output_before_tracking(tmp_path, monkeypatch, capsys):
    """Before the fix: a PermissionError traceback after the whole clip was tracked."""
    from realtime.core import paths
    from realtime.io import capture

    clip = _clip(tmp_path / "clip.avi")
    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(paths.os, "access", lambda p, mode: Path(p).name != "ro")
    monkeypatch.setattr(capture, "ClipSource", lambda *a, **k: pytest.fail("tracking started"))
    assert run.main(["track", str(clip), "--out", str(tmp_path / "ro" / "x.track.npz")]) == 2
    assert "--out" in _one_error(capsys.readouterr().err)


@pytest.mark.parametrize("flags, expect", [
    (["--json", "{ro}/b.json"], "cannot write {ro}/b.json (--json): folder '{ro}' is not writable"),
    (["--plot", "{out}/b.txt"], "--plot {out}/b.txt: not a picture format the plot is written in ("),
    (["--sheet", "{out}/s.png"], "--sheet draws the quality pass's frames: use it with --quality, "
                                 "--self-drive or --self-reenact"),
    (["--quality", "--sheet", "{frames}/f0.png"], "--sheet {frames}/f0.png is one of the driver's "
                                                  "images ('{frames}/f0.png'); writing there would "
                                                  "destroy it: choose another file"),
    (["--json", "{frames}/../clip.avi", "--pose-from", "{frames}/../clip.avi"],
     "--json {frames}/../clip.avi is the --pose-from source ('{frames}/../clip.avi'); writing "
     "there would destroy it: choose another file"),
    (["--json", "{prof}/profile.yaml", "--profile", "{prof}"],
     "--json {prof}/profile.yaml is one of the profile's files ('{prof}/profile.yaml'); writing "
     "there would destroy it: choose another file"),
    (["--quality", "--sheet", "{frames}/sheet.png"], "--sheet {frames}/sheet.png would lie among "
                                                     "the images a driver folder plays"),
    (["--json", "~/b.json"], "cannot write ~/b.json (--json): folder '~' does not exist"),
])
def test_bench_checks_its_outputs_before_it_runs(tmp_path, monkeypatch, capsys, flags, expect):
    """Before the fix: a traceback (PermissionError, matplotlib's ValueError) after the whole
    bench ran, or (--sheet without a quality pass) nothing at all; a --sheet or --json onto an
    image of the driver's folder or a remix source overwrote it; a --json onto the profile's own
    files destroyed it; a new --sheet in the driver's image folder played as one of its frames
    next time; `~/b.json` (no shell expands it) passed the check, then failed or went to ./~/."""
    from bench import benchmark
    from realtime.core import paths

    for sub in ("ro", "out", "frames", "prof"):
        (tmp_path / sub).mkdir()
    (tmp_path / "prof" / "profile.yaml").write_text("name: p\n")
    monkeypatch.chdir(tmp_path)
    cv2.imwrite(str(tmp_path / "frames" / "f0.png"), np.zeros((64, 64, 3), np.uint8))
    _clip(tmp_path / "clip.avi")
    before = {p: p.read_bytes() for p in (tmp_path / "frames" / "f0.png", tmp_path / "clip.avi")}
    monkeypatch.setattr(paths.os, "access", lambda p, mode: Path(p).name != "ro")
    monkeypatch.setattr(benchmark, "latency_pass", lambda *a, **k: pytest.fail("the bench ran"))
    where = {sub: tmp_path / sub for sub in ("ro", "out", "frames", "prof")}
    flags = [f.format(**where) for f in flags]
    assert run.main(["bench", "--profile", "p", "--driver", str(tmp_path / "frames"), *flags]) == 2
    assert _one_error(capsys.readouterr().err).startswith("error: " + expect.format(**where))
    assert not any((tmp_path / "out").iterdir())
    assert {p: p.read_bytes() for p in before} == before


# ------------------------------------------------------------------ options without effect
@pytest.mark.parametrize("flags, expect", [
    (["--audio-report", "out.json"], "--audio-report writes the report of --audio"),
    (["--keep-grain"], "--keep-grain is an option of --mode swap"),
    (["--keep-sockets"], "--keep-sockets is an option of --mode swap"),
    (["--drop-fringe"], "--drop-fringe / --no-drop-fringe is an option of --mode swap"),
    (["--no-drop-fringe"], "--drop-fringe / --no-drop-fringe is an option of --mode swap"),
    (["--no-keep-glasses"], "--no-keep-glasses is an option of --mode swap"),
    (["--hide-unswapped"], "--hide-unswapped is an option of --mode swap"),
    (["--fill-far-side"], "--fill-far-side / --no-fill-far-side is an option of --mode swap"),
    (["--no-fill-far-side"], "--fill-far-side / --no-fill-far-side is an option of --mode swap"),
    (["--mode", "swap", "--follow-scale", "1"], "--follow-scale is an option of --mode reenact"),
    (["--mode", "swap", "--follow-translation", "0"], "--follow-translation is an option of --mode reenact"),
    (["--mode", "swap", "--render-size", "320"], "--render-size is an option of --mode reenact (swap draws"),
    (["--mode", "swap", "--no-smile-folds"], "--no-smile-folds is an option of --mode reenact (swap shows your "
                                             "own face's shading"),
    (["--mode", "swap", "--gain", "mouth=1,gaze=0"], "--gain gaze=... is an option of --mode reenact (swap shows "
                                                    "the driver's own eyes"),
    # before (robustness audit): accepted, and a pose gain turned the face off the driver's head
    (["--mode", "swap", "--gain", "pose=3"], "--gain pose=... is an option of --mode reenact (swap puts the face "
                                             "on your own head"),
    (["--no-label", "--label-text", "X"], "--label-text says how to draw the label, and --no-label leaves it out"),
    (["--no-label", "--label-corner", "top-left"], "--label-corner says how to draw the label, and --no-label"),
    # before (stop 58, new-user review): "drive with one of them (--driver SOURCE)" for two keywords,
    # which --driver does not take
    (["--pose-from", "still", "--expression-from", "script"], "--pose-from still and --expression-from script "
                                                              "leave the driver nothing to give: drop one of them "
                                                              "(the driver gives that part); --mode swap takes both"),
    (["--pose-from", "still", "--expression-from", "c.mp4"], "leave the driver nothing to give: drop one of them "
                                                             "(the driver gives that part), or drive with c.mp4 "
                                                             "(--driver c.mp4, without --expression-from); --mode"),
    (["--pose-from", "my clip.mp4", "--expression-from", "face.png"],
     "drop one of them (the driver gives that part), or drive with 'my clip.mp4' (--driver 'my clip.mp4', "
     "without --pose-from)"),
    (["--overwrite"], "--overwrite replaces an existing recording: it goes with --sink file:OUT.mp4 (or "
                      "--audio-report), not --sink null"),
])
def test_live_options_given_without_what_they_need(tmp_path, no_engine, capsys, flags, expect):
    """Before the fix: exit 0, the option silently ignored."""
    assert run.main(["live", "--profile", "p", "--driver", "0", "--sink", "null", *flags]) == 2
    assert expect in _one_error(capsys.readouterr().err)


# ------------------------------------------------------------------------------ Ctrl-C
def test_ctrl_c_before_the_first_frame_leaves_nothing_and_says_so(tmp_path, astro, monkeypatch, capsys):
    """Before the fix: a Ctrl-C during the engine's warm-up left the file sink open, and FFmpeg
    then left a hidden 261-byte `.x.partial-PID.mp4` for good."""
    from realtime.engine import loop

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop.Engine, "warm_up", interrupted)
    clip = _clip(tmp_path / "clip.avi")
    out = tmp_path / "out"
    out.mkdir()
    assert run.main(["live", "--profile", astro, "--driver", str(clip), "--sink",
                     f"file:{out / 'x.mp4'}"]) == 130
    err = capsys.readouterr().err
    assert "stopped: nothing was written" in err
    assert list(out.iterdir()) == []


def test_ctrl_c_mid_run_keeps_a_playable_file_and_says_where(tmp_path, astro, monkeypatch, capsys):
    """Before the fix: only "stopped" was printed; later, no summary of the frames done (the
    README promises one however the run ends)."""
    from realtime.engine import loop

    process = loop.Engine.process

    def then_interrupted(self, frame):
        if frame.index == 2:     # the third frame of the clip (warm-up frames are -1)
            raise KeyboardInterrupt
        return process(self, frame)

    monkeypatch.setattr(loop.Engine, "process", then_interrupted)
    clip = _clip(tmp_path / "clip.avi")
    out = tmp_path / "out"
    out.mkdir()
    assert run.main(["live", "--profile", astro, "--driver", str(clip), "--sink",
                     f"file:{out / 'x.mp4'}", "--size", "80x64"]) == 130
    printed = capsys.readouterr()
    assert f"stopped: wrote {out / 'x.mp4'} (2 frames, 80x64, the run so far)" in printed.err
    lines = printed.out.splitlines()
    summary = next(i for i, line in enumerate(lines) if line.startswith("2 frames in "))
    assert lines[summary + 1].startswith("stage p50 ms: track")         # then the stage p50s
    assert "stage p50 ms: track" in printed.out
    assert [p.name for p in out.iterdir()] == ["x.mp4"] and _frames(out / "x.mp4") == 2
    shutil.rmtree(out)


def test_an_error_mid_run_says_what_the_file_kept(tmp_path, astro, capsys):
    """Before the fix: an undecodable picture in a driver folder printed its error and left the
    frames before it in the output file without a word about it."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((64, 64, 3), 40 * i, np.uint8))
    (folder / "f2.png").write_bytes(b"not a picture")
    out = tmp_path / "out"
    out.mkdir()
    assert run.main(["live", "--profile", astro, "--driver", str(folder), "--sink",
                     f"file:{out / 'x.mp4'}", "--size", "80x64"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-2].startswith("error: ") and "f2.png" in err[-2]
    assert err[-1] == f"  (wrote {out / 'x.mp4'} (2 frames, 80x64, the run up to the error))"
    assert [p.name for p in out.iterdir()] == ["x.mp4"] and _frames(out / "x.mp4") == 2


def test_a_sink_error_of_another_sink_mid_run_is_one_line(tmp_path, astro, monkeypatch, capsys):
    """Review of stop 64: the check of what a file sink kept asked every sink for `kept`, and a
    virtual camera's error mid-run became an AttributeError traceback."""
    from realtime.io import sinks
    from realtime.io.sinks.base import SinkError
    from realtime.io.sinks.null import NullSink

    class GoneCamera(NullSink):
        name = "vcam"

        def write(self, frame):
            if frame.index >= 1:
                raise SinkError("vcam sink: the virtual camera went away")
            super().write(frame)

    monkeypatch.setattr(sinks, "make_sink", lambda *a, **k: GoneCamera())
    clip = _clip(tmp_path / "clip.avi")
    capsys.readouterr()
    assert run.main(["live", "--profile", astro, "--driver", str(clip), "--sink", "null", "--size", "80x64"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: vcam sink: the virtual camera went away"


def test_what_a_file_sink_left_is_said_as_it_is(tmp_path):
    """`_written` after a close that did not finish: the partial file left, or nothing kept."""
    class Sink:
        name, kept, displaced, frames_written = "file", None, None, 3
        partial = tmp_path / ".x.partial-1-ab.mp4"

    sink = Sink()
    sink.partial.write_bytes(b"frames")
    assert run._written(sink, stopped=True) == (f"stopped: the recording (3 frames) was not finished: it is left as "
                                                f"{sink.partial} (hidden: ls -a shows it)")
    assert not run._nothing_left(sink)
    sink.partial.unlink()
    assert run._written(sink, stopped=True) == "stopped: nothing was kept of the 3 frames written"
    assert run._nothing_left(sink)
    sink.frames_written = 0
    assert run._written(sink, stopped=True) == "stopped: nothing was written (no frame had reached the file)"


@pytest.mark.parametrize("slow", [True, False])
def test_a_slow_warm_up_is_announced_and_timed(tmp_path, astro, monkeypatch, capsys, slow):
    """Before the fix: a cold numba cache kept the first frame 7-18 s away with nothing said,
    and the summary left that time out."""
    from realtime.engine import loop

    warm_up = loop.Engine.warm_up

    def compiling(self, *a, **k):
        time.sleep(0.3)
        return warm_up(self, *a, **k)

    monkeypatch.setattr(loop.Engine, "warm_up", compiling)
    monkeypatch.setattr(run, "WARM_UP_NOTICE_S", 0.05 if slow else 30.0)
    clip = _clip(tmp_path / "clip.avi")
    assert run.main(["live", "--profile", astro, "--driver", str(clip), "--sink", "null",
                     "--size", "80x64"]) == 0
    printed = capsys.readouterr()
    assert (run.WARM_UP_NOTICE in printed.err) == slow
    warm = re.search(r"warm-up ([\d.]+) s before the first frame", printed.out)
    assert warm is not None and float(warm.group(1)) >= 0.3


# ------------------------------------------------------------------------- what follows
@pytest.mark.parametrize("faces", [3, 0])
def test_track_s_next_hint_is_a_command_to_copy(tmp_path, monkeypatch, capsys, faces):
    """Before the fix: `--driver /t/my clips/clip.track.npz`, unquoted, split by the shell; and
    a clip without a face in it got the same hint, with no warning."""
    from realtime.io import tracked

    folder = tmp_path / "my clips"
    folder.mkdir()
    clip = _clip(folder / "clip.avi")
    present = np.arange(5) < faces
    monkeypatch.setattr(tracked, "track_clip", lambda source, clip, out, progress=None: tracked.TrackedClip(
        landmarks=np.zeros((5, 478, 3), np.float32), present=present, fps=30.0,
        size=(64, 64), sha256="0" * 64, clip=clip.name))
    assert run.main(["track", str(clip)]) == 0
    printed = capsys.readouterr()
    last = printed.out.splitlines()[-1]
    if faces:
        assert last.startswith(f"next: python run.py live --profile NAME --driver "
                               f"'{folder / 'clip.track.npz'}' (the clip's frames come along")
        assert "warning" not in printed.err
    else:
        assert "(0 with a face" in last
        assert printed.err.splitlines()[-1].startswith("warning: no face was found in clip.avi: as a "
                                                       "driver it moves nothing")


def test_track_s_hint_says_the_clip_must_be_beside_a_tracked_clip_written_elsewhere(tmp_path, monkeypatch, capsys):
    """Before the fix (README audit, helper 89): `track d0.mp4 --out /elsewhere/x.track.npz`
    said the clip's frames come along while d0.mp4 is beside it, which it was not; a swap then
    refused the file."""
    from realtime.io import tracked

    clip = _clip(tmp_path / "clip.avi")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(tracked, "track_clip", lambda source, clip, out, progress=None: tracked.TrackedClip(
        landmarks=np.zeros((5, 478, 3), np.float32), present=np.ones(5, bool), fps=30.0,
        size=(64, 64), sha256="0" * 64, clip=clip.name))
    assert run.main(["track", str(clip), "--out", str(elsewhere / "x.track.npz")]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert "come along" not in last
    assert last.endswith(f"(landmarks only: reenact plays them as they are; --mode swap and passthrough need the "
                         f"clip's frames, so copy clip.avi into {str(elsewhere)!r} beside it)")


def test_the_engine_is_closed_when_the_sink_fails_to_close(monkeypatch):
    """Before the fix: a sink whose close raised (its close timeout) skipped engine.close()."""
    from realtime.engine import loop
    from realtime.io import sinks

    closed = []

    class Sink:
        name = "file"

        def open(self, *a):
            pass

        def close(self):
            raise sinks.SinkError("file sink did not finish closing within 30 s")

    class Engine:
        output_size = (64, 64)

        def close(self):
            closed.append("engine")

    monkeypatch.setattr(sinks, "make_sink", lambda *a, **k: Sink())
    monkeypatch.setattr(sinks, "ThreadedSink", lambda inner, realtime: inner)
    monkeypatch.setattr(loop, "run", lambda *a, **k: "report")
    grabber = type("Grabber", (), {"source": None})()
    with pytest.raises(sinks.SinkError, match="did not finish closing"):
        run._drive(Engine(), grabber, "file:x.mp4", 30.0, realtime=False, total=1)
    assert closed == ["engine"]


def test_the_audio_report_is_written_whole_or_not_at_all(tmp_path, capsys, monkeypatch):
    """live --audio-report's JSON (run._write_json): a Ctrl-C or a full disk mid-write keeps the
    last report whole and leaves nothing half-written beside it (it was a plain write)."""
    from realtime.core import paths

    out = tmp_path / "audio.json"
    run._write_json(str(out), {"frames": [1, 2]})
    assert f"wrote {out}" in capsys.readouterr().out
    before = out.read_text()

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(paths.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run._write_json(str(out), {"frames": [3]})
    assert out.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["audio.json"]


def test_an_odd_sized_recording_says_it_was_padded(tmp_path):
    """Before (stop 61's review): a 97x131 driver's swap was written at 98x132 with a black line
    at the right and the bottom, unsaid (`--size 97x131` was refused: it wanted even sides)."""
    from realtime.io.sinks.file import FileSink

    sink = FileSink(tmp_path / "out.mp4", fps=30.0)     # as a finished run leaves it
    sink.kept, sink.frames_written, sink.size = Path("out.mp4"), 5, (97, 131)
    assert run._written(sink) == ("wrote out.mp4 (5 frames, 97x131 padded to 98x132 with black: H.264 wants "
                                  "even sides)")
    sink.size = (96, 130)
    assert run._written(sink) == "wrote out.mp4 (5 frames, 96x130)"
