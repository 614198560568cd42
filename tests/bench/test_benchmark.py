"""bench.benchmark: the arguments resolved, user mistakes, ratios, and two short end-to-end runs
of `run.py bench` on synthetic drivers (no ../shared, no camera, no GPU)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from bench import benchmark, fidelity
from bench.drivers import self_reenact_options
from bench.metrics import IdentityEncoder
from bench.usage import UsageError
from realtime.engine.loop import EngineOptions
from tests.bench.helpers import disk_full_after, moving_clip, one_error_line, parse

STAGES = ("track", "estimate", "fuse", "render", "generate", "composite")
QUALITY_KEYS = {"expr_err", "pose_err_deg", "id_dist", "fwe", "fwe_short", "fwe_long", "jitter_px",
                "jitter_still_driver_px", "psnr", "ssim"}


# -- resolving the arguments ---------------------------------------------------------------------

def test_profile_and_driver_resolve_to_one_live_variant(assets):
    st = benchmark.resolve(parse("--profile", assets["astro"], "--driver", assets["clip"],
                                 "--frames", 20, "--warmup", 5))
    assert st.profile.name == "astro" and st.driver.total == 20
    assert st.compare is None and st.pin is None and not st.main_is_self and st.self_re is None
    (v,) = st.variants
    assert (v.label, v.device, v.options) == ("run", "cpu", EngineOptions(fps=30.0, device="cpu"))


@pytest.mark.parametrize("gains, expect", [
    ({"eyes": 1.2, "mouth": 0.9}, None),
    ({"ears": 2.0}, "settings.gains: unknown region 'ears'"),
    (None, None),                       # `gains:` with nothing after it: none
    # Before (audit): these read as no gains at all (`or {}`), without a word
    (0, "settings.gains: gains must be a mapping region: number, got int"),
    (False, "settings.gains: gains must be a mapping region: number, got bool"),
    ("", "settings.gains: gains must be a mapping region: number, got str"),
])
def test_the_profiles_own_gains_apply_as_in_live(tmp_path, assets, astronaut_rgb, astronaut_landmarks,
                                                 gains, expect):
    """A profile's settings.gains are what `run.py live` runs it with: the bench measures the
    same engine, or says in one line why it cannot."""
    from profiles.enroll import build_profile
    from profiles.format import save

    prof = build_profile(astronaut_rgb, astronaut_landmarks, name="tuned", source="astronaut.png")
    prof.settings["gains"] = gains
    save(prof, tmp_path / "tuned")
    argv = parse("--profile", tmp_path / "tuned", "--driver", assets["clip"], "--frames", 20, "--warmup", 5)
    if expect is not None:
        with pytest.raises(UsageError, match=expect):
            benchmark.resolve(argv)
        return
    (v,) = benchmark.resolve(argv).variants
    fuse = v.options.fuse
    want = (1.0, 1.0, 1.0, 1.0) if gains is None else (1.2, 0.9, 1.0, 1.0)
    assert (fuse.eye_gain, fuse.mouth_gain, fuse.brow_gain, fuse.gaze_gain) == want


def test_gains_of_the_command_line_apply_on_top_of_the_profiles(tmp_path, assets, astronaut_rgb,
                                                                 astronaut_landmarks, capsys):
    """`bench --gain` as `live --gain`: the regions it names replace the profile's, the others
    keep theirs; a --compare of one gain still varies that gain; a bad value is one line."""
    from profiles.enroll import build_profile
    from profiles.format import save

    prof = build_profile(astronaut_rgb, astronaut_landmarks, name="tuned", source="astronaut.png")
    prof.settings["gains"] = {"eyes": 1.2, "mouth": 0.9}
    save(prof, tmp_path / "tuned")
    base = ("--profile", tmp_path / "tuned", "--driver", assets["clip"], "--frames", 20, "--warmup", 5)
    (v,) = benchmark.resolve(parse(*base, "--gain", "mouth=0.5,brows=0.7")).variants
    fuse = v.options.fuse
    assert (fuse.eye_gain, fuse.mouth_gain, fuse.brow_gain, fuse.gaze_gain) == (1.2, 0.5, 0.7, 1.0)
    a, b = benchmark.resolve(parse(*base, "--gain", "brows=0.7", "--compare", "mouth_gain=1,0.6")).variants
    assert (a.options.fuse.mouth_gain, b.options.fuse.mouth_gain) == (1.0, 0.6)
    assert a.options.fuse.brow_gain == b.options.fuse.brow_gain == 0.7
    # the same gain from both: refused (before, the report said "--gain applies: mouth=0.5"
    # while the compared values were measured)
    with pytest.raises(UsageError, match=r"--gain mouth=0.5 and --compare mouth_gain=\.\.\. set the same gain"):
        benchmark.resolve(parse(*base, "--gain", "mouth=0.5", "--compare", "mouth_gain=1,0.6"))
    with pytest.raises(SystemExit) as exit_:
        parse(*base, "--gain", "ears=2")
    assert exit_.value.code == 2
    assert "argument --gain: unknown region 'ears'; regions: eyes" in capsys.readouterr().err


@pytest.mark.parametrize("profile_gains, cli, compare, expect", [
    ({}, None, None, []),
    ({"eyes": 1.2, "mouth": 0.9}, None, None,
     ["the profile's gains apply (its settings, as in `run.py live`): eyes=1.2, mouth=0.9"]),
    ({"eyes": 1.2, "mouth": 0.9}, None, ("mouth_gain", ["1", "0.6"]),
     ["the profile's gains apply (its settings, as in `run.py live`): eyes=1.2, mouth=0.9 "
      "(mouth: --compare mouth_gain sets it)"]),
    ({"eyes": 1.2}, {"brows": 0.7}, ("mouth_gain", ["1", "0.6"]),
     ["the profile's gains apply (its settings, as in `run.py live`): eyes=1.2", "--gain applies: brows=0.7"]),
    ({}, {"brows": 0.7}, ("tier", ["warp", "atlas"]), ["--gain applies: brows=0.7"]),
])
def test_the_report_says_which_gains_apply(profile_gains, cli, compare, expect):
    assert benchmark.gain_notes(profile_gains, cli, compare) == expect


def test_self_reenact_alone_is_the_main_pair(assets, tmp_path):
    video = moving_clip(tmp_path / "self.avi", assets["image"], 12, still_from=6)
    st = benchmark.resolve(parse("--self-reenact", video, "--profile", assets["astro"],
                                 "--warmup", 2, "--compare", "follow_scale=0,1"))
    assert st.main_is_self and st.self_re is not None
    assert st.pin is st.profile["landmarks"] and st.driver.start == 6
    assert st.compare == ("follow_scale", ["0", "1"])
    default = self_reenact_options(st.driver.fps, st.profile)
    assert [v.options for v in st.variants] == [
        EngineOptions(fps=30.0, output_size=default.output_size, fuse=type(default.fuse)(follow_scale=s))
        for s in (0.0, 1.0)]


@pytest.mark.parametrize("argv, expect", [
    (("--driver", "x.mp4"), "--profile required (or --self-drive CLIP alone, or --self-reenact VIDEO)"),
    ((), "--profile and --driver required (or --self-drive CLIP alone, or --self-reenact VIDEO)"),
    (("--profile", "p", "--self-reenact", "v.mp4", "--compare", "size=64x64,128x128"),
     "--compare size cannot be used with --self-reenact"),
    (("--profile", "p", "--driver", "x.mp4", "--audio", "vmic:out", "--compare", "follow_scale=0,1"),
     "--audio follows one engine's latency: use it without --compare"),
    (("--profile", "p", "--driver", "x.mp4", "--json", "/no/such/folder/x.json"),
     "cannot write /no/such/folder/x.json (--json): folder '/no/such/folder' does not exist"),
])
def test_argument_mistakes(argv, expect):
    with pytest.raises(UsageError) as e:
        benchmark.resolve(parse(*argv))
    assert str(e.value).startswith(expect)


def test_driver_needs_a_profile(assets):
    with pytest.raises(UsageError, match="^--driver needs --profile"):
        benchmark.resolve(parse("--driver", assets["clip"], "--self-reenact", assets["clip"]))


@pytest.mark.parametrize("argv, expect", [
    (("--profile", "no-such-profile", "--driver", "{clip}"), "no profile"),
    (("--profile", "{astro}", "--driver", "{clip}", "--compare", "colour=1,2"),
     "unknown key 'colour'; keys: tier, device, size"),
    (("--profile", "{astro}", "--driver", "{clip}", "--compare", "tier=warp,nosuch"),
     "--compare tier: 'nosuch' is not a tier: choose warp, atlas, neural"),
    (("--profile", "{astro}", "--driver", "{clip}", "--compare", "size=512x512,big"),
     "WIDTHxHEIGHT"),
    (("--profile", "{astro}", "--driver", "{clip}", "--compare", "follow_scale"),
     "KEY=A,B"),
    (("--profile", "{astro}", "--driver", "{clip}", "--compare", "smooth=1,yes"),
     "--compare smooth: values repeat (1,yes): 1 and yes are the same value (true)"),
    (("--profile", "{astro}", "--driver", "nothing-here.mp4"), "'nothing-here.mp4' does not exist: check the path"),
    (("--profile", "{astro}",), "--driver required"),
    (("--profile", "{astro}", "--driver", "{clip}", "--frames", "10", "--warmup", "10"),
     "nothing left to measure"),
])
def test_user_mistakes_are_one_line_exit_2(assets, run_bench, argv, expect):
    argv = [a.format(clip=assets["clip"], astro=assets["astro"]) for a in argv]
    rc, out, err = run_bench(*argv)
    assert rc == 2
    assert expect in one_error_line(err)


# -- report pieces -------------------------------------------------------------------------------

def test_ratios_leave_out_what_has_no_finite_value():
    base = {"fps": 30.0, "frames": 10, "dropped": 0, "latency_ms": {"p50": 10.0, "p95": None},
            "stages_ms": {"track": {"p50": 2.0}}, "quality": {"fwe": 0.1}, "device": "cpu"}
    other = {"fps": 15.0, "frames": 10, "dropped": 3, "latency_ms": {"p50": 20.0, "p95": 5.0},
             "stages_ms": {"track": {"p50": float("nan")}}, "quality": {"fwe": 0.2},
             "device": "cuda"}
    assert benchmark._ratios({"a": base, "b": other}, "a") == {
        "b": {"fps": 0.5, "frames": 1.0, "latency_ms": {"p50": 2.0}, "quality": {"fwe": 2.0}}}


def test_kv_table():
    assert benchmark._kv_table("metric", [("psnr", 31.234567), ("frames", 12)]).splitlines() == [
        "| metric | value |", "| :--- | ---: |", "| psnr | 31.2346 |", "| frames | 12 |"]


def test_profile_label_says_what_self_reenactment_enrolled():
    args = SimpleNamespace(profile=None, self_reenact="/clips/me.mp4")
    enrolled = SimpleNamespace(name="me-self", kind="video",
                               settings={"atlas": {"reference_frame": 7}})
    assert benchmark._profile_label(args, enrolled) == (
        "me.mp4 first half: me-self (video profile, reference frame 7)")
    args.profile = "astro"
    assert benchmark._profile_label(args, enrolled) == "astro"


# -- end to end ----------------------------------------------------------------------------------

@pytest.mark.tracking
def test_single_run_json_plot_and_quality(assets, tmp_path, run_bench, monkeypatch):
    monkeypatch.setenv("PUPPETEER_PROFILES", str(assets["profiles"]))
    # dlib absent: id_dist must be omitted, never faked, and the reason noted
    monkeypatch.setattr(IdentityEncoder, "available", classmethod(lambda cls: False))
    monkeypatch.setattr(IdentityEncoder, "unavailable_reason",
                        classmethod(lambda cls: "dlib is not installed (test)"))
    meshes = []                                          # what the split's mesh column reads

    def spy(vertices, _real=fidelity.mesh_signals):
        meshes.append(None if vertices is None else np.shape(vertices))
        return _real(vertices)
    monkeypatch.setattr(fidelity, "mesh_signals", spy)
    # 12 fps: the driver's neutral is calibrated after 1 s = 12 frames, 6 are measured
    clip = moving_clip(tmp_path / "driver.avi", assets["image"], 18, fps=12.0)
    js, png = tmp_path / "b.json", tmp_path / "b.png"
    rc, out, err = run_bench("--profile", "astro", "--driver", clip, "--warmup", 3, "--quality",
                             "--json", js, "--plot", png, "--roundtrip")
    assert rc == 0, err
    r = json.loads(js.read_text())
    for k in ("fps", "frames", "dropped", "latency_ms", "stages_ms", "device", "quality",
              "machine"):
        assert k in r
    assert r["device"] == "cpu"
    assert r["fps"] > 0
    assert r["frames"] + r["dropped"] - r["held"] == 18 - 3
    assert set(r["latency_ms"]) == {"p50", "p95", "p99"}
    assert r["latency_ms"]["p50"] <= r["latency_ms"]["p95"] <= r["latency_ms"]["p99"]
    for s in STAGES:
        assert set(r["stages_ms"][s]) == {"p50", "p95", "p99"}
        assert r["stages_ms"][s]["p50"] > 0
    q = r["quality"]
    assert {"expr_err", "pose_err_deg", "fwe"} <= set(q)
    assert "id_dist" not in q and "psnr" not in q and "ssim" not in q
    assert set(q) <= QUALITY_KEYS
    assert all(v is not None and np.isfinite(v) for v in q.values())
    assert q["expr_err"] < 0.2 and q["pose_err_deg"] < 15 and 0 <= q["fwe"] < 0.2
    assert q["fwe"] == pytest.approx(q["fwe_short"] + q["fwe_long"])
    assert any("id_dist omitted" in n for n in r["notes"])
    for key in ("output_pose_std", "mesh_pose_std"):   # the tracked head and the drawn head
        assert set(r["quality_info"][key]) == {"yaw", "pitch", "roll"}
        assert all(np.isfinite(v) and v >= 0 for v in r["quality_info"][key].values())
    assert "head yaw/pitch std °, engine's mesh" in out
    split = r["quality_info"]["follow_split"]                       # where the motion is lost
    assert set(split) == {"mesh", "picture"}
    assert all(set(part) == set(r["follow"]) and part["yaw"]["n"] > 0 for part in split.values())
    assert "| engine's mesh | output vs mesh |" in out
    assert meshes and all(m is not None and m[0] > 478 for m in meshes)   # the posed rig, every frame
    if not r["roundtrip"]["available"]:          # no readable virtual camera: said, not faked
        assert r["roundtrip"]["reason"]
        assert any(n.startswith("roundtrip not available here") for n in r["notes"])
        assert "latency_ms" not in r["roundtrip"]
    for k in ("cpu", "packages", "git_commit", "gpu"):
        assert k in r["machine"]
    assert (r["profile"], r["driver"], r["driver_fps"], r["warmup"]) == ("astro", "driver.avi", 12.0, 3)
    # the table on screen, and a real PNG
    assert "| track |" in out and "**capture→sink**" in out and "| expr_err |" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


@pytest.mark.tracking
def test_self_reenact_compare_interleaves_and_reports_psnr_ssim_and_ratios(assets, tmp_path,
                                                                           run_bench, monkeypatch):
    # The avatar made from the still pose (`astro`, given with --profile as enrolled from the
    # video's first half); the second half holds that pose again: the output must match it.
    monkeypatch.setattr(IdentityEncoder, "available", classmethod(lambda cls: False))
    plotted = []                                 # the PNG itself: tests/bench/test_report.py
    monkeypatch.setattr(benchmark, "plot", lambda *a, **k: plotted.append((*a, k)))
    video = moving_clip(tmp_path / "self.avi", assets["image"], 24, still_from=12)
    js = tmp_path / "c.json"
    rc, out, err = run_bench("--self-reenact", video, "--profile", assets["astro"],
                             "--frames", 6, "--warmup", 2, "--block", 2,
                             "--compare", "follow_scale=0,1", "--json", js,
                             "--plot", tmp_path / "c.png")
    assert rc == 0, err
    r = json.loads(js.read_text())
    assert list(r["variants"]) == ["follow_scale=0", "follow_scale=1"]
    assert r["baseline"] == "follow_scale=0"
    assert r["compare"] == {"key": "follow_scale", "values": ["0", "1"], "block": 2}
    for v in r["variants"].values():
        # a held frame (the source late: the last picture again, `RunReport.held`) is a row
        # more; on a loaded machine there is one now and then (stop 57: 5 rows, 1 held)
        assert v["frames"] + v["dropped"] - v["held"] == 6 - 2
        assert set(v["stages_ms"]) >= set(STAGES)
        assert v["blocks"] == 3
        q = v["quality"]
        assert {"psnr", "ssim", "psnr_face", "ssim_face", "psnr_mouth", "ssim_mouth", "psnr_eyes"} <= set(q)
        assert q["psnr"] > 25 and 0.8 < q["ssim"] <= 1.0
        assert q["psnr_face"] > 20 and 0.6 < q["ssim_face"] <= 1.0
        assert q["psnr_eyes"] > 20, q["psnr_eyes"]
    ratio = r["ratios"]["follow_scale=1"]

    def no_none(d):
        return all(no_none(v) if isinstance(v, dict) else v is not None for v in d.values())
    assert no_none(r["ratios"])                  # absent ratios are left out, not null
    assert ratio["fps"] > 0 and set(ratio["latency_ms"]) == {"p50", "p95", "p99"}
    assert ratio["quality"]["psnr"] > 0
    assert r["profile"] == str(assets["astro"]) and r["driver"] == "self.avi frames 12–17"
    assert "follow_scale=1 / follow_scale=0" in out and "| psnr |" in out
    ((shown, per_frame, path, kw),) = plotted
    assert kw == {"fps": 30.0}                   # the budget line: one frame of the driver's rate
    assert shown["baseline"] == "follow_scale=0" and list(shown["variants"]) == list(r["variants"])
    assert all("machine" in v for v in shown["variants"].values())
    assert list(per_frame) == list(r["variants"]) and path == str(tmp_path / "c.png")
    assert f"wrote {path}" in out


def test_audio_passes_through_the_latency_pass_and_lands_in_the_json(assets, tmp_path, run_bench,
                                                                      monkeypatch):
    """`--audio IN:OUT`: the audio process (a fake sounddevice in it) is fed every frame's latency;
    its report is the JSON's `audio` section and a line on screen."""
    from realtime.io.audio import AudioBridge
    from tests.realtime.io.audio.test_bridge import FAKE, PULSE

    opened = []

    def bridge(spec):
        b = AudioBridge(spec, sounddevice_module=FAKE, pulse=PULSE, report_s=0.1)
        b.open()
        opened.append(b)
        return b

    monkeypatch.setattr(benchmark, "_audio_bridge", bridge)
    monkeypatch.setenv("PUPPETEER_PROFILES", str(assets["profiles"]))
    js = tmp_path / "a.json"
    clip = moving_clip(tmp_path / "long.avi", assets["image"], 75)     # the report skips the first second
    rc, out, err = run_bench("--profile", "astro", "--driver", clip, "--warmup", 3,
                             "--audio", "vmic:engine_out", "--json", js)
    assert rc == 0, err
    a = json.loads(js.read_text())["audio"]
    assert opened and opened[0].spec == "vmic:engine_out"
    assert a["error"] is None and a["callbacks"]["output"] > 50
    assert a["delay_ms"]["p50"] > 0 and a["av_offset_ms"]["frames"] > 10
    assert "audio vmic → engine_out: delay p50" in out and "A/V offset" in out


# -- defects of the review: each test fails on the code before its fix ---------------------------

@pytest.mark.parametrize("argv, expect", [
    (("--profile", "p", "--driver", "x.mp4", "--json", ""), "--json '' is empty: give it a value, or drop --json"),
    (("--profile", "p", "--driver", "x.mp4", "--plot", " "), "--plot ' ' is empty"),
    (("--profile", "p", "--driver", "x.mp4", "--compare", ""), "--compare '' is empty"),
    (("--profile", "p", "--driver", "x.mp4", "--streams", ""), "--streams '' is empty"),
    (("--profile", "p", "--driver", "x.mp4", "--frame", "3"),
     "--frame 3 picks the frame of --self-drive CLIP the profile is made from: add --self-drive CLIP, "
     "or drop --frame"),
    (("--profile", "p", "--driver", "x.mp4", "--block", "10"),
     "--block 10 sets the frames per interleaved block of --compare: add --compare KEY=A,B, or drop --block"),
    (("--profile", "p", "--driver", "x.mp4", "--stream-mode", "process"),
     "--stream-mode process says how --streams runs its engines: add --streams N, or drop --stream-mode"),
])
def test_what_would_be_ignored_is_refused(argv, expect):
    """Before the fix: `--json ''` and `--compare ''` were taken as not given, --frame without
    --self-drive, --block without --compare and --stream-mode without --streams were ignored;
    the run went on and said nothing."""
    with pytest.raises(UsageError) as e:
        benchmark.resolve(parse(*argv))
    assert str(e.value).startswith(expect)


@pytest.mark.parametrize("argv, expect", [
    (("--compare", "drop_fringe=false,true"),
     "--compare drop_fringe=... varies an option of --mode swap (this run is --mode reenact: its "
     "variants would be the same): add --mode swap, or compare another key"),
    (("--compare", "even_grain=true,false"), "--compare even_grain=... varies an option of --mode swap"),
    (("--compare", "keep_glasses=true,false"), "--compare keep_glasses=... varies an option of --mode swap"),
    (("--compare", "fill_far_side=true,false"), "--compare fill_far_side=... varies an option of --mode swap"),
    # the audit of stop 65 (helper 90): two identical reenactments were measured side by side
    (("--compare", "hide_unswapped=0,1"), "--compare hide_unswapped=... varies an option of --mode swap"),
    (("--mode", "swap", "--compare", "render_size=0,256"),
     "--compare render_size=... varies an option of --mode reenact (swap draws the face at the "
     "profile's own crop size"),
    (("--mode", "swap", "--compare", "follow_scale=0,1"),
     "--compare follow_scale=... varies an option of --mode reenact (swap puts the face on the "
     "driver's own head"),
    (("--mode", "swap", "--compare", "gaze_gain=1,0"),
     "--compare gaze_gain=... varies an option of --mode reenact (swap shows the driver's own eyes"),
    (("--mode", "swap", "--gain", "gaze=0"), "--gain gaze=0 is an option of --mode reenact (swap shows"),
    # review of stop 64: swap holds the pose gain at 1, and bench measured identical variants
    (("--mode", "swap", "--compare", "pose_gain=1,1.5"),
     "--compare pose_gain=... varies an option of --mode reenact (swap puts the face on your own head"),
    (("--mode", "swap", "--gain", "pose=1.5"), "--gain pose=1.5 is an option of --mode reenact (swap puts"),
])
def test_compare_refuses_a_key_the_mode_does_not_use(argv, expect):
    """Before the fix: the variants of such a key were the same engine, measured side by side as if
    they differed (`run.py live` refuses these options in the other mode)."""
    with pytest.raises(UsageError) as e:
        benchmark.resolve(parse("--profile", "p", "--driver", "x.mp4", *argv))
    assert str(e.value).startswith(expect)


@pytest.mark.parametrize("first, second", [("--json", "--plot"), ("--json", "--sheet"), ("--plot", "--sheet")])
def test_two_outputs_onto_one_file_are_refused(tmp_path, first, second):
    """Before the fix: `--json X --plot X` wrote both, the second over the first (the JSON lost)."""
    out = tmp_path / "out.png"
    argv = parse("--profile", "p", "--driver", "x.mp4", "--quality", first, out, second, out)
    with pytest.raises(UsageError) as e:
        benchmark.check_outputs(argv)
    assert str(e.value) == (f"{second} {out} is the {first} output ({str(out)!r}); writing there would "
                            f"destroy it: choose another file")
    assert not out.exists()


def test_self_drive_needs_more_frames_than_the_warmup(assets, tmp_path, run_bench):
    """Before the fix: `--self-drive` a photo or a short image folder ran, exit 0, with an empty
    latency table; `--driver` with the same input is refused."""
    import cv2

    bgr = cv2.cvtColor(assets["image"], cv2.COLOR_RGB2BGR)
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), bgr)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"{i:03d}.png"), bgr)
    rc, out, err = run_bench("--self-drive", folder, "--warmup", 5)
    assert rc == 2 and out == ""
    assert one_error_line(err) == (f"error: --self-drive {folder}: --frames/clip gives 5 frames, not "
                                   f"more than --warmup 5: nothing left to measure (use a longer clip, "
                                   f"or a smaller --warmup)")
    # a photo is said to be one (before, stop 58's new-user review: "gives 1 frames, not more than
    # --warmup 30"); a clip cut to one frame by --frames is not a photo
    rc, out, err = run_bench("--self-drive", photo, "--warmup", 5)
    assert rc == 2 and one_error_line(err) == (f"error: --self-drive {photo}: one picture has no motion to "
                                               f"measure: use a clip or a folder of pictures")
    rc, out, err = run_bench("--self-drive", folder, "--warmup", 5, "--frames", 1)
    assert rc == 2 and "--frames/clip gives 1 frame, not more" in one_error_line(err)


@pytest.mark.parametrize("profile_gains, cli, expect", [
    ({"eyes": 0.5}, {"eyes": 2.0},
     ["the profile's gains (its settings: eyes=0.5) do not apply: --gain replaces it", "--gain applies: eyes=2"]),
    ({"eyes": 0.5, "mouth": 0.9}, {"eyes": 2.0, "brows": 0.7},
     ["the profile's gains apply (its settings, as in `run.py live`): mouth=0.9; --gain replaces its eyes=0.5",
      "--gain applies: eyes=2, brows=0.7"]),
    ({"eyes": 0.5, "mouth": 0.9}, {"eyes": 2.0, "mouth": 1.0},
     ["the profile's gains (its settings: eyes=0.5, mouth=0.9) do not apply: --gain replaces them",
      "--gain applies: eyes=2, mouth=1"]),
])
def test_the_gain_note_leaves_out_what_gain_replaces(profile_gains, cli, expect):
    """Before the fix: the report said both "the profile's gains apply: eyes=0.5" and "--gain
    applies: eyes=2", while --gain's value replaces the profile's (as in `run.py live`)."""
    assert benchmark.gain_notes(profile_gains, cli, None) == expect


def test_self_reenact_refuses_a_photo_profile_that_is_no_frame_of_the_video(assets, tmp_path):
    """Before the fix: `--self-reenact X --profile P` with P enrolled from another file ran as if
    P were X's first half, and said nothing of why its numbers made no sense; then (README audit)
    it ran with a note, and README said such a profile was refused. A photo profile passes only
    when its picture is one of the first half's frames (astronaut.png is frame 0 of `self.avi`)."""
    from profiles import load
    from profiles.enroll import build_profile
    from profiles.format import save

    video = moving_clip(tmp_path / "self.avi", assets["image"], 12, still_from=6)
    st = benchmark.resolve(parse("--self-reenact", video, "--profile", assets["astro"], "--warmup", 2))
    assert st.notes == []
    other = np.ascontiguousarray(assets["image"][:, ::-1])      # the same size, another picture
    lm = load(assets["astro"])["landmarks"].copy()
    lm[:, 0] = other.shape[1] - 1 - lm[:, 0]
    save(build_profile(other, lm, name="flip", source="flip.png"), tmp_path / "flip")
    with pytest.raises(UsageError, match=r"^--self-reenact self.avi: profile 'flip' was enrolled from the photo "
                                         r"flip.png, which is none of this video's first 6 frames: its second half "
                                         r"would be compared with another picture's face; enroll its first half "
                                         r"\(run.py enroll .*self.avi --frames 0:6 --name NAME\) and pass that, "
                                         r"or drop --profile$"):
        benchmark.resolve(parse("--self-reenact", video, "--profile", tmp_path / "flip", "--warmup", 2))


def test_compare_offers_only_keys_it_can_set():
    """FuseConfig.lid_meet is a pair: `--compare list` offered it and every value crashed the run
    with a TypeError deep in the engine; every key offered now parses a value of its own type."""
    from bench.variants import knobs

    assert "lid_meet" not in knobs()
    with pytest.raises(UsageError, match="unknown key 'lid_meet'"):
        benchmark.resolve(parse("--profile", "p", "--driver", "x.mp4", "--compare", "lid_meet=0.1,0.2"))


def test_repeated_gains_add_up():
    """`--gain eyes=0.5 --gain mouth=1.2` is both (the last one alone was kept); a region given
    twice is refused."""
    assert parse("--profile", "p", "--driver", "x.mp4", "--gain", "eyes=0.5", "--gain", "mouth=1.2").gain == \
        {"eyes": 0.5, "mouth": 1.2}
    with pytest.raises(SystemExit):
        parse("--profile", "p", "--driver", "x.mp4", "--gain", "eyes=0.5", "--gain", "eyes=1")


def test_the_json_report_must_be_named_json(tmp_path):
    """Before the fix: `--json clip.mp4` (a slip for --driver) replaced a 230 kB video with the
    report, and `--json d19.track.npz` a tracked clip."""
    clip = tmp_path / "victim.mp4"
    clip.write_bytes(b"not yet a report")
    argv = parse("--profile", "p", "--driver", "x.mp4", "--json", clip)
    with pytest.raises(UsageError, match=r"--json .*victim.mp4: the report is JSON; name it e.g. .*/victim.json"):
        benchmark.check_outputs(argv)
    assert clip.read_bytes() == b"not yet a report"
    benchmark.check_outputs(parse("--profile", "p", "--driver", "x.mp4", "--json", tmp_path / "r.JSON"))


def test_frames_past_the_drivers_end_are_noted(assets, run_bench):
    """Before (new-user review): `--frames 100` on a 40-frame driver measured what there was and
    said nothing of it."""
    rc, out, err = run_bench("--profile", assets["astro"], "--driver", assets["clip"], "--frames", 100,
                             "--warmup", 5)
    assert rc == 0, err
    assert "--frames 100: the driver has only 40 frames (all measured, less the --warmup 5)" in out
    rc, out, err = run_bench("--profile", assets["astro"], "--driver", assets["clip"], "--frames", 20,
                             "--warmup", 5)
    assert rc == 0 and "the driver has only" not in out


def test_frames_past_a_self_drive_clips_end_are_noted(assets):
    """The same note for `--self-drive` (its driver is the clip itself)."""
    st = benchmark.resolve(parse("--self-drive", assets["clip"], "--frames", 100, "--warmup", 5))
    assert "--frames 100: the driver has only 40 frames (all measured, less the --warmup 5)" in st.notes


def test_a_profiles_gaze_gain_is_said_not_to_apply_in_swap(tmp_path, assets, astronaut_rgb, astronaut_landmarks):
    """A profile's `settings.gains.gaze` (made for reenactment) is noted in a swap bench, as
    `live --mode swap` notes it; a reenact bench applies it without a note."""
    from profiles.consent import record_consent
    from profiles.enroll import build_profile
    from profiles.format import save

    prof = build_profile(astronaut_rgb, astronaut_landmarks, name="gazer", source="astronaut.png")
    prof.settings["gains"] = {"gaze": 1.5, "mouth": 1.1}
    save(prof, tmp_path / "gazer")
    record_consent(tmp_path / "gazer", "the test suite")
    note = "the profile's gaze gain does not apply in swap (swap shows the driver's own eyes"
    common = ("--profile", tmp_path / "gazer", "--driver", assets["clip"], "--frames", 20, "--warmup", 5)
    swap = benchmark.resolve(parse(*common, "--mode", "swap"))
    assert any(n.startswith(note) for n in swap.notes), swap.notes
    reenact = benchmark.resolve(parse(*common))
    assert not any("gaze gain" in n for n in reenact.notes) and reenact.variants[0].options.fuse.gaze_gain == 1.5


def test_a_faceless_driver_is_said_in_the_latency_report(assets, run_bench, tmp_path):
    """Before (new-user review): `bench` on a clip with no face printed a normal report (fps,
    latency, stages) and said nothing; `live` on it says no face drove the output."""
    blank = np.full((240, 320, 3), 100, np.uint8)
    clip = moving_clip(tmp_path / "noface.avi", blank, 20)
    rc, out, err = run_bench("--profile", assets["astro"], "--driver", clip, "--warmup", 5)
    assert rc == 0, err
    assert "latency pass: no face found in any of 20 frames: nothing drove the output" in out
    rc, out, err = run_bench("--profile", assets["astro"], "--driver", assets["clip"], "--warmup", 5)
    assert rc == 0 and "latency pass:" not in out


def test_a_full_disk_at_the_end_is_one_line_and_keeps_the_previous_json(assets, run_bench, tmp_path,
                                                                       monkeypatch):
    """Before the fix (new-user walkthrough): `bench --json B` on a full disk measured the whole
    run, then died with a traceback (OSError from write_atomic). Now one `error:` line names the
    file and the option, exit 2; the previous B stays as it was. A file-size limit (EFBIG, as
    here) says what to do as a full disk does (before helper 127: only ENOSPC and EDQUOT did)."""
    real = benchmark.write_json

    def on_a_full_disk(*a, **k):
        with disk_full_after(16):
            return real(*a, **k)
    monkeypatch.setattr(benchmark, "write_json", on_a_full_disk)
    js = tmp_path / "b.json"
    js.write_text('{"old": 1}\n')
    rc, out, err = run_bench("--profile", assets["astro"], "--driver", assets["clip"], "--warmup", 5, "--json", js)
    assert rc == 2
    assert one_error_line(err) == (f"error: cannot write {js} (--json): File too large: free some space, or "
                                   f"choose another file")
    assert js.read_text() == '{"old": 1}\n' and [f.name for f in tmp_path.iterdir()] == ["b.json"]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, "_Terminated"])
def test_a_stop_while_the_plot_is_drawn_says_the_json_is_written(assets, tmp_path, monkeypatch, capsys, stop):
    """Before (review of helper 120's change): a Ctrl-C (or SIGTERM) after --json was written,
    while --plot was drawn, said `bench.cli.STOPPED`: "it prints its report and writes --json,
    --plot and --sheet only once the whole run is measured" — the report was printed and the
    JSON written. Now the stop names what is written and what not."""
    import run
    from bench import cli

    stop = getattr(run, stop) if isinstance(stop, str) else stop

    def drawing(*a, **k):
        raise stop()
    monkeypatch.setattr(benchmark, "plot", drawing)
    js, png = tmp_path / "b.json", tmp_path / "b.png"
    with pytest.raises(KeyboardInterrupt) as raised:
        cli.main(parse("--profile", assets["astro"], "--driver", assets["clip"], "--warmup", 5,
                       "--json", js, "--plot", png))
    assert str(raised.value) != cli.STOPPED
    assert str(raised.value) == (f"stopped while the bench wrote its files, after its report: --json {js} "
                                 f"written; --plot {png} not written")
    assert json.loads(js.read_text())["frames"] > 0 and not png.exists()
    assert f"wrote {js}" in capsys.readouterr().out


@pytest.mark.parametrize("files", [False, True])
def test_a_stop_while_the_report_is_printed_says_the_run_was_measured(assets, tmp_path, monkeypatch, capsys, files):
    """Before (helper 127): a Ctrl-C while the report was printed, after the whole run was
    measured, said `bench.cli.STOPPED` ("it prints its report and writes --json, --plot and
    --sheet only once the whole run is measured"): the run was measured, and a bench asked for
    no file was told of files. Now the stop says the report is cut short and names the files
    asked for, none written; run.py exits 130 with that line."""
    import builtins

    import run
    from bench import cli

    real_print = builtins.print

    def print_cut(*a, **k):
        if a and str(a[0]).startswith("## bench:"):
            raise KeyboardInterrupt
        real_print(*a, **k)
    monkeypatch.setattr(builtins, "print", print_cut)
    js, png = tmp_path / "b.json", tmp_path / "b.png"
    argv = ["bench", "--profile", str(assets["astro"]), "--driver", str(assets["clip"]), "--warmup", "5"]
    assert run.main(argv + (["--json", str(js), "--plot", str(png)] if files else [])) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err != cli.STOPPED
    cut = f"; --json {js}, --plot {png} not written" if files else " (no file was asked for)"
    assert err == ("stopped while the bench printed its report, after the whole run was measured: the report is cut "
                   f"short{cut}")
    assert list(tmp_path.iterdir()) == []


def test_a_sheet_the_disk_cuts_short_leaves_the_one_there(tmp_path):
    """Before the fix (new-user walkthrough): the contact sheet went through cv2.imwrite, which on
    a full disk ("libpng error: Write Error") removed the sheet that was at --sheet. Now it is
    encoded in memory and written whole or not at all."""
    noise = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    path = tmp_path / "s.png"
    path.write_bytes(b"the previous sheet")
    with disk_full_after(2000), pytest.raises((OSError, UsageError)):
        benchmark.write_sheet(str(path), {"run": SimpleNamespace(sheet=lambda title: noise)}, "t")
    assert path.read_bytes() == b"the previous sheet"
    assert [f.name for f in tmp_path.iterdir()] == ["s.png"]
    benchmark.write_sheet(str(path), {"run": SimpleNamespace(sheet=lambda title: noise)}, "t")
    assert np.array_equal(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), noise)


def test_a_swap_driver_too_small_for_the_label_is_said_in_bench_terms(tmp_path, astronaut_rgb, astronaut_landmarks):
    """A swap draws into the driver's frame: a 64x64 driver cannot hold the label at 10 px. The
    refusal named live's --size and --label-text, which bench has not."""
    import cv2

    from profiles.consent import record_consent
    from profiles.enroll import build_profile
    from profiles.format import save

    save(build_profile(astronaut_rgb, astronaut_landmarks, name="astro", source="astronaut.png"), tmp_path / "astro")
    record_consent(tmp_path / "astro", "the test suite")
    clip = moving_clip(tmp_path / "tiny.avi", cv2.resize(astronaut_rgb, (64, 64)), 12)
    with pytest.raises(UsageError, match=r"the output is 64x64 px \(in swap, the driver's frame\): too small for the "
                                         r"disclosure label .* \(it needs 104x64\): bench a larger driver$"):
        benchmark.resolve(parse("--profile", tmp_path / "astro", "--driver", clip, "--mode", "swap", "--warmup", 2))


def test_a_swap_quality_pass_at_another_size_than_the_drivers_is_refused(tmp_path, assets, astronaut_rgb,
                                                                         astronaut_landmarks):
    """(code review) `--mode swap --quality --compare size=WxH` indexed the letter-boxed output
    with masks at the driver's size: an IndexError. The quality pass compares the two pixel for
    pixel, so it refuses another size; a latency pass still times it."""
    from profiles.consent import record_consent
    from profiles.enroll import build_profile
    from profiles.format import save

    save(build_profile(astronaut_rgb, astronaut_landmarks, name="astro", source="astronaut.png"), tmp_path / "astro")
    record_consent(tmp_path / "astro", "the test suite")
    common = ("--profile", tmp_path / "astro", "--driver", assets["clip"], "--mode", "swap", "--warmup", 2,
              "--compare", "size=320x240,322x242")
    with pytest.raises(UsageError, match=r"a swap's quality pass compares its output with the driver's own "):
        benchmark.resolve(parse(*common, "--quality"))
    sizes = [v.options.output_size for v in benchmark.resolve(parse(*common)).variants]
    assert (320, 240) in sizes


def test_power_user_slips_are_refused(capsys):
    """(power-user review) A second --compare silently replaced the first; --pose-from and
    --expression-from together in reenactment ran here though `live` refuses them; --floor with
    --driver and --self-reenact named --self-reenact as the cure though it was given."""
    with pytest.raises(SystemExit):
        parse("--profile", "p", "--driver", "x.mp4", "--compare", "smooth=true,false", "--compare", "eye_gain=1,1.5")
    assert "--compare is given twice (smooth=true,false and eye_gain=1,1.5): one comparison a run" \
        in capsys.readouterr().err
    with pytest.raises(UsageError, match="--pose-from still and --expression-from script leave the driver nothing"):
        benchmark.resolve(parse("--profile", "p", "--driver", "x.mp4", "--pose-from", "still",
                                "--expression-from", "script"))
    with pytest.raises(UsageError, match=r"--self-reenact \(without --driver: with one, --self-reenact only names"):
        benchmark.resolve(parse("--profile", "p", "--driver", "x.mp4", "--self-reenact", "v.mp4", "--floor"))


@pytest.mark.parametrize("flag", [("--sheet", "sheet.png"), ("--floor",)])
def test_sheet_and_floor_need_a_driver_with_pictures(assets, astronaut_landmarks, tmp_path, flag):
    """(power-user review) A tracked clip without its video beside it carries landmarks only:
    --sheet wrote a blank 200x40 picture and said it had, --floor a row of dashes."""
    from tests.realtime.io.test_tracked import _write_track

    track = tmp_path / "gone.track.npz"
    _write_track(track, astronaut_landmarks, clip="gone.mp4")
    args = ["--profile", assets["astro"], "--driver", track, "--quality", *flag, "--warmup", 2]
    if flag[0] == "--sheet":
        args[-3] = tmp_path / "sheet.png"
    with pytest.raises(UsageError, match=rf"{flag[0]} .* and gone.track.npz carries none \(a tracked clip without "
                                         rf"its video beside it\): put the clip beside it, or drop {flag[0]}"):
        benchmark.resolve(parse(*args))


def test_a_compared_size_too_small_for_the_label_is_named(assets):
    """(power-user review) `--compare size=321x241,64x64` blamed the profile's output size."""
    with pytest.raises(UsageError, match=r"the output is 64x64 px \(its --compare size, or --self-reenact's video\)"
                                         r".*: bench a larger size or video"):
        benchmark.resolve(parse("--profile", assets["astro"], "--driver", assets["clip"], "--compare",
                                "size=320x240,64x64", "--warmup", 2))


def test_a_truncated_driver_is_noted(assets, tmp_path, run_bench):
    """Before (stop 57, seen and left): `live` said when a clip ended well before the frame count
    its header announces, `bench` measured the frames there were in silence. Read to its damaged
    end by the latency pass it says so; stopped before the damage (--frames) it does not."""
    data = assets["clip"].read_bytes()
    half = tmp_path / "half.avi"
    half.write_bytes(data[:len(data) // 2])                 # its header still announces 40 frames
    rc, out, err = run_bench("--profile", assets["astro"], "--driver", half, "--warmup", 3)
    assert rc == 0, err
    assert "- half.avi ended at frame" in out and "of the 40 its header announces" in out
    rc, out, err = run_bench("--profile", assets["astro"], "--driver", half, "--warmup", 3, "--frames", 8)
    assert rc == 0, err
    assert "ended at frame" not in out


@pytest.mark.parametrize("option", ["--self-drive", "--self-reenact"])
def test_self_drive_and_reenact_need_the_clips_own_frames(astronaut_landmarks, tmp_path, option):
    """Before (stop 58, new-user review): a tracked clip without its video beside it raised
    KeyError: 'image' (a traceback); the README says a .track.npz plays in bench."""
    from tests.realtime.io.test_tracked import _write_track

    track = tmp_path / "gone.track.npz"
    _write_track(track, astronaut_landmarks, clip="gone.mp4")
    with pytest.raises(UsageError, match=rf"^{option} enrolls the avatar from the clip's own frames .* and "
                                         r"gone.track.npz carries landmarks only: put gone.mp4 beside it"):
        benchmark.resolve(parse(option, track, "--warmup", 2))


@pytest.mark.parametrize("mode", ["reenact", "swap"])
def test_self_reenact_draws_at_the_videos_frame_size(assets, tmp_path, mode):
    """Before (stop 58, new-user review): the output took the profile's image size; with a
    profile from a photo of another size, reenactment dropped PSNR / SSIM / FWE ("output (1145,
    1145, 3) and real frame (512, 512, 3) differ in size") and a swap was refused with advice
    that could not be followed ("drop the size, or drop --quality": neither was given)."""
    import shutil

    from profiles.consent import ConsentError, record_consent

    # a photo profile is one of the clip's frames (else refused), here saved at another size
    video = moving_clip(tmp_path / "self.avi", cv2.resize(assets["image"], (320, 320)), 12, still_from=6)
    profile = tmp_path / "astro"
    shutil.copytree(assets["astro"], profile)
    argv = ("--self-reenact", video, "--profile", profile, "--warmup", 2, "--mode", mode, "--quality")
    if mode == "swap":                 # the user's profile on the video's face: as --driver's swap
        with pytest.raises(ConsentError, match="profile 'astro' has no consent record"):
            benchmark.resolve(parse(*argv))
        record_consent(profile, "the test suite")
    st = benchmark.resolve(parse(*argv))
    assert st.profile["image"].shape[:2] != (320, 320)
    assert st.driver.size == (320, 320)
    assert [tuple(v.options.output_size) for v in st.variants] == [(320, 320)]


@pytest.mark.tracking
def test_a_self_reenactment_sheet_numbers_the_clips_frames(assets, tmp_path, run_bench, monkeypatch):
    """Before the fix (review): `--self-reenact s32.mp4 --frames 60 --sheet` was titled "s32.mp4
    frames 90–149" while its tiles read "widest mouth #18", "furthest gaze #0" (#18 was clip
    frame 108): the tiles counted within the driven half."""
    monkeypatch.setattr(IdentityEncoder, "available", classmethod(lambda cls: False))
    texts = []
    real = fidelity.cv2.putText

    def spy(img, text, *a, **k):
        texts.append(text)
        return real(img, text, *a, **k)
    monkeypatch.setattr(fidelity.cv2, "putText", spy)
    video = moving_clip(tmp_path / "self.avi", assets["image"], 24, still_from=12)
    sheet = tmp_path / "s.png"
    rc, out, err = run_bench("--self-reenact", video, "--profile", assets["astro"], "--frames", 6,
                             "--warmup", 2, "--sheet", sheet)
    assert rc == 0, err
    assert f"wrote {sheet}" in out and sheet.stat().st_size > 1000
    (title,) = [t for t in texts if "<-" in t]
    assert title.endswith("self.avi frames 12-17")
    tiles = [int(t.rsplit("#", 1)[1]) for t in texts if "#" in t]
    assert len(tiles) == len(fidelity.SHEET) and all(12 <= k <= 17 for k in tiles), texts


@pytest.mark.tracking
def test_no_sheet_is_written_when_no_driver_frame_was_tracked(assets, tmp_path, run_bench, monkeypatch):
    """Before the fix (review): `--self-reenact s13.mp4 --sheet S` (a face too small to track,
    in the driver and in the output drawn from it) said `wrote S`, an all-white 200x40 PNG, and
    numpy printed "RuntimeWarning: Degrees of freedom <= 0" (np.nanstd of the output's
    never-measured signals). Here: a faceless driver, and an output tracker that finds none."""
    import warnings

    from bench import quality

    class Faceless:
        def __init__(self, *a, **k):
            pass

        def __call__(self, image):
            return None

        def close(self):
            pass
    monkeypatch.setattr(quality, "Tracker", Faceless)
    blank = np.full((240, 320, 3), 100, np.uint8)
    clip = moving_clip(tmp_path / "noface.avi", blank, 16)
    sheet, js = tmp_path / "s.png", tmp_path / "b.json"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc, out, err = run_bench("--profile", assets["astro"], "--driver", clip, "--warmup", 4, "--quality",
                                 "--sheet", sheet, "--json", js)
    assert rc == 0, err
    assert not sheet.exists() and f"wrote {sheet}" not in out
    note = (f"--sheet {sheet} not written: no driver frame was tracked (no face found in noface.avi), "
            f"so there is no extreme to show")
    assert f"- {note}" in out
    assert not [w for w in caught if "Degrees of freedom" in str(w.message)]
    r = json.loads(js.read_text())
    assert note in r["notes"]
    assert set(r["quality_info"]["output_std"]) == set(fidelity.SIGNALS)   # null: never measured
    assert all(v is None for v in r["quality_info"]["output_std"].values())


def test_the_plot_gets_the_drivers_frame_rate(assets, tmp_path, run_bench, monkeypatch):
    """Before the fix (review): the plot's budget line was 33.3 ms (30 fps) for a 25 fps driver."""
    plotted = []
    monkeypatch.setattr(benchmark, "plot", lambda *a, **k: plotted.append(k))
    clip = moving_clip(tmp_path / "d25.avi", assets["image"], 12, fps=25.0)
    rc, out, err = run_bench("--profile", assets["astro"], "--driver", clip, "--warmup", 4,
                             "--plot", tmp_path / "p.png")
    assert rc == 0, err
    assert plotted == [{"fps": 25.0}]


@pytest.mark.parametrize("argv, expect", [
    # audit of the bench (helper): the size variant's quality pass failed on its first frame
    # (output and real frame differ in size), the error was taken for "fwe omitted", and its
    # expr_err / pose_err / id_dist of that one frame were set against the other's: 1.67×, 2.09×
    (("--self-drive", "x.mp4", "--compare", "size=256x256,512x512"),
     "--compare size cannot be used with --self-drive (the output must have the clip's frame size)"),
    # the neutral is pinned to the profile's frame: `--self-drive d0.mp4 --compare
    # calibration_s=1,2` measured one engine twice, every ratio 1.00×
    (("--self-drive", "x.mp4", "--compare", "calibration_s=1,2"),
     "--compare calibration_s=... varies how long the driver's neutral is calibrated, and "
     "--self-drive pins it"),
    (("--self-reenact", "x.mp4", "--compare", "calibration_s=0.5,2"),
     "--compare calibration_s=... varies how long the driver's neutral is calibrated, and "
     "--self-reenact pins it"),
    # only the preview's overlay reads it
    (("--profile", "p", "--driver", "x.mp4", "--compare", "notice_s=1,3"),
     "--compare notice_s=... only sets how long the preview's overlay says"),
])
def test_compare_refuses_a_key_that_changes_nothing_measured(argv, expect):
    test_argument_mistakes(argv, expect)


def test_compare_measures_the_self_reenactment_of_each_variant(assets, tmp_path, run_bench, monkeypatch):
    """Before the fix (audit): `--profile s1 --driver d10.mp4 --self-reenact s32.mp4 --compare
    expression_gain=1,0.5` ran one self-reenactment at the default options and copied its psnr /
    ssim into both variants: psnr 28.2948 and 28.2948, ratio 1.00×, whatever the variants did."""
    monkeypatch.setattr(IdentityEncoder, "available", classmethod(lambda cls: False))
    video = moving_clip(tmp_path / "self.avi", assets["image"], 16)
    js = tmp_path / "c.json"
    rc, out, err = run_bench("--profile", assets["astro"], "--driver", assets["clip"], "--self-reenact", video,
                             "--frames", 6, "--warmup", 2, "--block", 3,
                             "--compare", "follow_translation=0,1", "--json", js)
    assert rc == 0, err
    r = json.loads(js.read_text())
    per = r["self_reenact"]["variants"]
    assert list(per) == ["follow_translation=0", "follow_translation=1"]
    for label, v in r["variants"].items():
        assert v["quality"]["psnr"] == per[label]["quality"]["psnr"]
    a, b = (v["quality"]["psnr"] for v in r["variants"].values())
    assert a != b                      # the head pinned in place reads another PSNR than one that follows
    assert "(each variant's own)" in out


def test_the_blink_row_says_it_counts_each_eye():
    """Before the fix (audit): `bench --self-drive d0.mp4` read "closed eyes that arrive 6/6" for
    one blink of 3 frames (`blink_check` counts each eye of each frame), and the README read
    such counts as frames ("every driver frame with closed eyes arrives shut: 164 of 164")."""
    d = np.full((3, len(fidelity.SIGNALS)), 0.1)
    d[:, [fidelity.SIGNALS.index("eye_open_r"), fidelity.SIGNALS.index("eye_open_l")]] = 0.01
    results = {"run": {"follow": fidelity.follow_stats(d, d),
                       "quality_info": {"blinks": fidelity.blink_check(d, d)}}}
    assert "| closed eyes that arrive (each eye of each frame) | 6/6 |" in benchmark._follow_table(results)


def test_the_self_reenactment_runs_once_where_the_compared_key_does_not_reach_it(assets):
    """The self-reenactment beside --profile/--driver draws in reenact mode with its own avatar
    and its neutral pinned: a swap key (or the mode), calibration_s and a CUDA runtime key of a
    tier it has not give one engine, one pass (its psnr / ssim then stay under `self_reenact`,
    said in a note)."""
    from bench.drivers import Driver
    from profiles.format import load

    profile = load(assets["astro"])
    driver = Driver(str(assets["clip"]), start=20, count=20, fps=30.0, total=20, size=(64, 64))
    args = parse("--profile", "p", "--driver", "x.mp4", "--self-reenact", "v.mp4")

    def labels(compare):
        st = benchmark.Setup(profile, driver, [], compare, self_re=(profile, driver, None))
        return [v.label for v in benchmark._self_reenact_variants(args, st)]
    assert labels(("follow_translation", ["0", "1"])) == ["follow_translation=0", "follow_translation=1"]
    assert labels(None) == labels(("mode", ["reenact", "swap"])) == labels(("keep_glasses", ["1", "0"])) == ["run"]
    assert labels(("backend", ["torch", "tensorrt"])) == ["run"]     # a warp avatar: no neural runtime
    # its neutral is pinned (no calibration): two calibration_s variants would be one engine twice
    assert labels(("calibration_s", ["0.5", "2"])) == ["run"]
