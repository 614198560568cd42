"""run.py live --mode swap, --pose-from, --expression-from: a swapped video from an image folder;
swap refuses a profile without a consent record; a remix source that cannot be opened is one
error line."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import run
from profiles.consent import record_consent

from .test_run_cli import _count_frames, _error_line, profiles_root  # noqa: F401 - fixture


@pytest.fixture
def driver_dir(tmp_path, astronaut_rgb) -> Path:
    d = tmp_path / "driver"
    d.mkdir()
    img = cv2.cvtColor(np.ascontiguousarray(astronaut_rgb[:, ::-1]), cv2.COLOR_RGB2BGR)
    for i in range(5):
        cv2.imwrite(str(d / f"f{i}.png"), img)
    return d


@pytest.fixture
def enrolled(tmp_path, profiles_root, astronaut_rgb) -> Path:  # noqa: F811 - fixture
    photo = tmp_path / "astro.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    assert run.main(["enroll", str(photo), "--name", "astro"]) == 0
    return profiles_root / "astro"


def _consent(folder: Path) -> None:
    record_consent(folder, "the test suite")


def _grey_frames(folder: Path, shape: tuple[int, int], n: int = 3) -> Path:
    """A driver folder of `n` faceless grey pictures of `shape` (h, w)."""
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((*shape, 3), 90, np.uint8))
    return folder


def test_swap_needs_a_consent_record(enrolled, driver_dir, tmp_path, capsys):
    out = tmp_path / "swap.mp4"
    capsys.readouterr()
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir),
                     "--sink", f"file:{out}"]) == 2
    assert _error_line(capsys).endswith('record who agreed and how with: python run.py consent astro '
                                        '--by "NAME, how they agreed"')
    assert not out.exists()


def test_swap_writes_one_frame_per_input_at_the_drivers_size(enrolled, driver_dir, tmp_path, capsys):
    _consent(enrolled)
    out = tmp_path / "swap.mp4"
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir),
                     "--sink", f"file:{out}", "--pose-from", "still"]) == 0
    assert _count_frames(out) == (5, (512, 512))


def test_a_remix_source_that_cannot_be_opened(enrolled, driver_dir, tmp_path, capsys):
    capsys.readouterr()
    assert run.main(["live", "--profile", "astro", "--driver", str(driver_dir), "--sink", "null",
                     "--expression-from", str(tmp_path / "nowhere.mp4")]) == 2
    assert "--expression-from" in _error_line(capsys)


def _frames(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f.astype(np.float32))
    cap.release()
    return np.stack(frames)


def test_keep_grain_swaps_the_photo_as_it_is(enrolled, driver_dir, tmp_path, astronaut_landmarks):
    """The astronaut is a grainy scan: by default its face is evened before the swap
    (realtime.swap.grain); --keep-grain leaves it as it is, and the face differs."""
    _consent(enrolled)
    outs = {}
    for flag in ([], ["--keep-grain"]):
        out = tmp_path / f"swap{len(flag)}.mp4"
        assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir),
                         "--sink", f"file:{out}", "--no-label", *flag]) == 0
        outs[len(flag)] = _frames(out)
    # the driver is the astronaut mirrored: her face's box, mirrored, at the output's size
    pts = np.asarray(astronaut_landmarks)[:468, :2]
    x0, x1 = 511 - int(pts[:, 0].max()), 511 - int(pts[:, 0].min())
    face = (slice(None), slice(int(pts[:, 1].min()), int(pts[:, 1].max())), slice(x0, x1))
    assert np.abs(outs[0][face] - outs[1][face]).mean() > 0.5


def test_keep_sockets_swaps_the_photo_as_it_is(enrolled, driver_dir, tmp_path, astronaut_landmarks, monkeypatch):
    """By default a photo's sockets darker than REFERENCE of its skin are lifted before the swap
    (realtime.swap.sockets; the astronaut's barely are: the test raises the bar); --keep-sockets
    leaves them as they are, and the face is lighter around the eyes (measured: 4.3 levels)."""
    from realtime.swap import sockets

    monkeypatch.setattr(sockets, "REFERENCE", 1.2)
    _consent(enrolled)
    outs = {}
    for flag in ([], ["--keep-sockets"]):
        out = tmp_path / f"swap{len(flag)}.mp4"
        assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir),
                         "--sink", f"file:{out}", "--no-label", "--keep-grain", *flag]) == 0
        outs[len(flag)] = _frames(out)
    pts = np.asarray(astronaut_landmarks)[:468, :2]
    eyes = pts[[33, 263, 133, 362]]
    x0, x1 = 511 - int(eyes[:, 0].max()) - 10, 511 - int(eyes[:, 0].min()) + 10
    y0, y1 = int(eyes[:, 1].min()) - 15, int(eyes[:, 1].max()) + 15
    around = (slice(None), slice(y0, y1), slice(x0, x1))
    assert outs[0][around].mean() > outs[1][around].mean() + 1.0          # lighter round the eyes


def test_a_photos_fringe_is_painted_out_and_the_profile_can_drop_it(enrolled, driver_dir, tmp_path, capsys,
                                                                     monkeypatch):
    """A photo whose forehead is mostly fringe (the astronaut's is 43 % hair: the test lowers
    the bar below that): the swap paints the fringe out with the photo's skin
    (`realtime.swap.skin.fill_fringe`), so no hair patches are left to point out and nothing is
    said; with ``swap: {drop_fringe: true}`` in the profile's settings (as with --drop-fringe) it
    is left out, the driver's forehead showing (the face differs), and nothing is said;
    --no-drop-fringe overrides the profile (the default's face again)."""
    from profiles.format import attach_files
    from realtime.swap import skin

    monkeypatch.setattr(skin, "FRINGE_COVER", 0.3)
    _consent(enrolled)
    outs, said = {}, {}
    for case, flags in (("default", []), ("profile", []), ("overridden", ["--no-drop-fringe"])):
        if case == "profile":
            attach_files(enrolled, [], settings={"swap": {"drop_fringe": True}})
        out = tmp_path / f"swap_{case}.mp4"
        capsys.readouterr()
        assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir),
                         "--sink", f"file:{out}", "--no-label", *flags]) == 0
        said[case] = capsys.readouterr().out
        outs[case] = _frames(out)
    hint = "of the photo's forehead is hair (a fringe)"
    assert all(hint not in said[case] for case in said)
    assert np.abs(outs["default"] - outs["profile"]).mean() > 0.05
    assert np.abs(outs["default"] - outs["overridden"]).mean() < 0.5 * np.abs(outs["default"] - outs["profile"]).mean()


def test_the_drivers_glasses_are_kept_and_said_unless_asked_not_to(enrolled, tmp_path, capsys, astronaut_rgb,
                                                                   astronaut_landmarks):
    """A driver wearing thin rims (drawn round the mirrored astronaut's eyes): the swap finds
    them, keeps them in front of the face and says so; --no-keep-glasses paints over them."""
    from realtime.face import topology as T

    from .realtime.swap.test_glasses import with_rims

    _consent(enrolled)
    img = np.ascontiguousarray(astronaut_rgb[:, ::-1])
    lm = np.array(astronaut_landmarks, np.float64)
    lm[:, 0] = img.shape[1] - 1 - lm[:, 0]
    glasses, on = with_rims(img, lm[T.MIRROR], shade=0.8)
    d = tmp_path / "glasses"
    d.mkdir()
    for i in range(24):
        cv2.imwrite(str(d / f"f{i:02d}.png"), cv2.cvtColor(glasses, cv2.COLOR_RGB2BGR))
    outs, said = {}, {}
    for flags in ([], ["--no-keep-glasses"]):
        out = tmp_path / f"swap{len(flags)}.mp4"
        capsys.readouterr()
        assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(d),
                         "--sink", f"file:{out}", "--no-label", *flags]) == 0
        said[len(flags)] = capsys.readouterr().out
        outs[len(flags)] = _frames(out)[-1]
    assert "glasses found on the driver" in said[0] and "--no-keep-glasses" in said[0]
    assert "glasses found" not in said[1]
    err = {k: np.abs(o[..., ::-1][on] - glasses[on]).mean() for k, o in outs.items()}   # BGR frames
    assert err[0] < 0.5 * err[1], err


@pytest.mark.parametrize("faces", [True, False])
def test_the_fringe_hint_comes_only_when_a_face_was_swapped(enrolled, driver_dir, tmp_path, capsys,
                                                           monkeypatch, faces):
    """Before the fix: a driver with no face got "its lighter strands show as hair patches on
    the driver's forehead", though nothing was swapped."""
    from realtime.swap import skin

    monkeypatch.setattr(skin, "fringe_hint", lambda hair: "swap: FRINGE HINT")
    _consent(enrolled)
    if not faces:
        for f in driver_dir.iterdir():
            cv2.imwrite(str(f), np.full((512, 512, 3), 90, np.uint8))
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir),
                     "--sink", "null"]) == 0
    out = capsys.readouterr().out
    assert ("swap: FRINGE HINT" in out) == faces
    assert ("no face found in any of 5 frames" in out) == (not faces)


def test_the_far_side_is_filled_unless_told_not_to(enrolled, driver_dir, tmp_path, monkeypatch):
    """live --mode swap fills a turned photo's far side by default (realtime.swap.farside; the
    astronaut is frontal, so a stand-in records the call); --no-fill-far-side uses the photo as
    it is."""
    from realtime.swap import farside

    _consent(enrolled)
    calls = []
    monkeypatch.setattr(farside, "fill_far_side", lambda photo, landmarks: calls.append(1) or photo)
    for flags, filled in (([], True), (["--no-fill-far-side"], False), (["--fill-far-side"], True)):
        calls.clear()
        out = tmp_path / f"swap{'_'.join(flags)}.mp4"
        assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir),
                         "--sink", f"file:{out}", "--no-label", *flags]) == 0
        assert bool(calls) == filled, flags


def test_a_remix_source_without_a_face_is_said(enrolled, driver_dir, tmp_path, capsys):
    """Before (new-user review): `--expression-from` a clip with no face gave `still` and the
    summary looked like any other; now its last lines say so."""
    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(5):
        cv2.imwrite(str(blank / f"b{i}.png"), np.full((64, 64, 3), 90, np.uint8))
    capsys.readouterr()
    assert run.main(["live", "--profile", "astro", "--driver", str(driver_dir), "--sink", "null",
                     "--expression-from", str(blank)]) == 0
    out = capsys.readouterr().out
    assert f"--expression-from {blank}: no face found in any of its 5 frames: it gave nothing" in out


def test_a_driver_whose_face_is_seen_but_never_followed_says_so(enrolled, tmp_path, astronaut_rgb, capsys):
    """A driver of one picture: the tracker sees its face, the estimator never follows it (a face
    must be seen in one place a few frames running), and the swap passes the frame through. The
    summary said "no face found ... is a face in view, lit and large enough?" (new-user review)."""
    _consent(enrolled)
    one = tmp_path / "one"
    one.mkdir()
    cv2.imwrite(str(one / "a.png"), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    capsys.readouterr()
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(one), "--sink", "null"]) == 0
    out = capsys.readouterr().out
    assert "no face followed in any of 1 frame: the tracker saw one in 1, but a face drives only once" in out


def test_a_profiles_gaze_gain_is_said_not_to_apply_in_swap(enrolled, driver_dir, capsys):
    """`--gain gaze=...` is refused in swap; a profile's own `settings: gains: {gaze: ...}` (made for
    reenactment) was taken without a word (code review)."""
    from profiles.format import attach_files

    _consent(enrolled)
    attach_files(enrolled, [], settings={"gains": {"gaze": 1.5, "mouth": 1.1}})
    capsys.readouterr()
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir),
                     "--sink", "null", "--no-label"]) == 0
    out = capsys.readouterr().out
    assert "note: the profile's gaze gain (1.5, its settings.gains) does not apply in swap" in out
    assert "the profile's own settings apply (its profile.yaml): gains mouth=1.1\n" in out      # (YAML audit)
    assert run.main(["live", "--profile", "astro", "--driver", str(driver_dir), "--sink", "null", "--no-label"]) == 0
    out = capsys.readouterr().out
    assert "gaze gain" not in out
    assert "the profile's own settings apply (its profile.yaml): gains gaze=1.5, mouth=1.1" in out
    # under an expression remix the profile's own eyes are drawn: its gaze gain applies, unsaid
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir),
                     "--expression-from", "still", "--sink", "null", "--no-label", "--gain", "gaze=1.2"]) == 0
    assert "gaze gain" not in capsys.readouterr().out


def test_gaze_is_a_swap_gain_only_under_an_expression_remix(enrolled, driver_dir, capsys, astronaut_profile):
    """`--gain gaze` in swap is refused (your own eyes show), but not with --expression-from,
    where the profile's eyeballs are drawn (stop 61): the hotkeys offer it there too."""
    from realtime.engine.loop import Engine, EngineOptions

    _consent(enrolled)
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir),
                     "--sink", "null", "--gain", "gaze=1.2"]) == 2
    assert "--gain gaze=... is an option of --mode reenact" in capsys.readouterr().err
    for remix, offered in (({}, False), ({"pose_from": "still"}, False), ({"expression_from": "still"}, True)):
        engine = Engine(astronaut_profile, EngineOptions(mode="swap", output_size=(128, 128), **remix))
        assert ("gaze" in engine.gain_regions()) is offered, remix
        engine.close()


def test_a_swap_says_when_it_does_not_use_the_profiles_tier(enrolled, driver_dir, capsys):
    """Before (stop 61's review): a profile whose tier is neural was swapped with another tier
    unsaid (the swap textures with warp or atlas: the generator knows its own framing only)."""
    import yaml

    _consent(enrolled)
    yml = enrolled / "profile.yaml"
    yml.write_text(yml.read_text().replace("tier: warp", "tier: neural"))
    assert yaml.safe_load(yml.read_text())["tier"] == "neural"
    capsys.readouterr()
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir),
                     "--sink", "null", "--no-label"]) == 0
    assert ("note: swap textured the face with the warp tier: the profile's neural tier is trained on its own "
            "framing and background") in capsys.readouterr().out


def test_a_swap_is_labelled_a_face_swap_unless_told_otherwise(enrolled, driver_dir, tmp_path, capsys):
    """Before the fix (README audit): `live --mode swap` labelled its frames "AI avatar"."""
    _consent(enrolled)
    capsys.readouterr()
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir),
                     "--sink", "null", "--frames", "2"]) == 0
    assert "disclosure: label 'AI face swap' bottom-right" in capsys.readouterr().out
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir),
                     "--sink", "null", "--frames", "2", "--label-text", "AI avatar"]) == 0
    assert "disclosure: label 'AI avatar' bottom-right" in capsys.readouterr().out


def test_a_driver_too_small_to_hold_a_face_is_refused_in_swap(enrolled, tmp_path, capsys):
    """Before (robustness audit): a 16x16 driver was told to use `--size 104x22` for the label,
    which ran and could never swap a face (swap's --size only rescales the driver's frames)."""
    _consent(enrolled)
    tiny = _grey_frames(tmp_path / "tiny", (16, 40))
    capsys.readouterr()
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(tiny), "--sink", "null",
                     "--size", "640x480"]) == 2
    assert _error_line(capsys) == ("error: the driver's frames are 40x16 px: too small to hold a face to swap (a "
                                   "swap needs frames at least 64 px a side, with the face at least ~24 px between "
                                   "the eyes)")


def test_a_large_swap_that_drops_frames_is_told_size(enrolled, driver_dir, tmp_path, capsys, monkeypatch):
    """A 4K driver in swap dropped 85 % of its frames live, with no hint that --size helps."""
    from realtime.engine import loop

    _consent(enrolled)
    real = loop.run

    def dropping(*a, **k):
        report = real(*a, **k)
        report.capture_dropped = 3 * report.frames
        return report

    monkeypatch.setattr(loop, "run", dropping)
    monkeypatch.setattr(run, "SLOW_SWAP_AREA", 500 * 500)     # the 512x512 driver counts as large here
    capsys.readouterr()
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir), "--sink", "null",
                     "--realtime", "--frames", "3"]) == 0
    out = capsys.readouterr().out
    assert "note: swap keeps the driver's 512x512 frames, and" in out and "--size 1280x1280 makes" in out
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir), "--sink", "null",
                     "--realtime", "--frames", "3", "--size", "512x512"]) == 0
    assert "note: swap keeps" not in capsys.readouterr().out


def test_swap_says_when_the_consent_record_came_with_the_profile(enrolled, driver_dir, tmp_path, capsys,
                                                                  monkeypatch):
    """Anyone can write a valid record (security review): a record not made on this machine is
    said before the swap starts; one made here is not."""
    _consent(enrolled)
    capsys.readouterr()
    args = ["live", "--profile", "astro", "--mode", "swap", "--driver", str(driver_dir), "--sink", "null",
            "--frames", "1"]
    assert run.main(args) == 0
    assert "consent records" not in capsys.readouterr().err
    monkeypatch.setenv("PUPPETEER_CACHE", str(tmp_path / "another machine"))
    assert run.main(args) == 0
    assert ("note: profile astro's consent record (the test suite) is not in this machine's consent records "
            "(brought with the profile, or recorded before they were kept): swap this face only if it is "
            "true") in capsys.readouterr().err


def test_a_driver_that_cannot_be_swapped_is_refused_before_the_consent_note(enrolled, tmp_path, capsys,
                                                                           monkeypatch):
    """(audit, stop 66) The note on a record brought from elsewhere came before the driver's
    refusal: two lines for one mistake, the error last."""
    _consent(enrolled)
    monkeypatch.setenv("PUPPETEER_CACHE", str(tmp_path / "another machine"))
    small = tmp_path / "small"
    small.mkdir()
    for i in range(3):
        cv2.imwrite(str(small / f"f{i}.png"), np.full((40, 40, 3), 128, np.uint8))
    capsys.readouterr()
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(small), "--sink", "null",
                     "--frames", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the driver's frames are 40x40 px") and "consent record" not in err


def test_swap_keeps_the_face_on_the_head_whatever_the_pose_gain(astronaut_profile):
    """Before (robustness audit): a pose gain (a profile's settings.gains, a hotkey) turned the
    swapped face by more or less than the driver's head turns, off the head. Without --pose-from
    swap's pose gain is 1 and the hotkeys do not offer it; with --pose-from it applies."""
    from realtime.engine.loop import Engine, EngineOptions
    from realtime.mesh.fuse import FuseConfig

    for remix, offered in (({}, False), ({"expression_from": "still"}, False), ({"pose_from": "still"}, True)):
        engine = Engine(astronaut_profile, EngineOptions(mode="swap", output_size=(128, 128),
                                                         fuse=FuseConfig(pose_gain=2.0), **remix))
        assert ("pose" in engine.gain_regions()) is offered, remix
        assert engine.recombiner.config.pose_gain == (2.0 if offered else 1.0), remix
        engine.close()


def test_hide_unswapped_says_how_many_frames_it_blurred(enrolled, tmp_path, capsys):
    _consent(enrolled)
    blank = _grey_frames(tmp_path / "blank", (96, 128))
    capsys.readouterr()
    assert run.main(["live", "--profile", "astro", "--mode", "swap", "--driver", str(blank), "--sink", "null",
                     "--hide-unswapped"]) == 0
    assert "swap: 3 frames with no face to swap went out blurred (--hide-unswapped)" in capsys.readouterr().out
