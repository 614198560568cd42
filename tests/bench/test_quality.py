"""bench.quality: the driver's own video as a yardstick (`DriverReference`)."""
from __future__ import annotations

import numpy as np
import pytest

from bench.quality import DriverReference
from realtime.face import geometry
from realtime.mesh import head_layer


class _MeanColour:
    """A stand-in identity encoder: the descriptor of an image is its mean colour."""

    def __init__(self):
        self.seen: list[np.ndarray] = []

    def descriptor(self, img):
        self.seen.append(img)
        return np.asarray(img, np.float64).reshape(-1, 3).mean(0)

    def distance(self, img, ref):
        return float(np.linalg.norm(self.descriptor(img) - ref))


def _enrollment_box(lm: np.ndarray, size: int) -> np.ndarray:
    frame = geometry.face_frame(lm)
    centre, side = head_layer.crop_box(frame.invert_points(lm), frame)
    return head_layer.crop_affine(centre, side, size)


def test_a_still_driver_reads_no_flicker_and_no_drift(astronaut_rgb, astronaut_landmarks):
    enc = _MeanColour()
    ref = DriverReference(64, enc, id_stride=2)
    for i in range(5):
        ref.offer(astronaut_rgb, astronaut_landmarks, i)
    got = ref.result()
    assert got["frames"] == 5 and got["id_samples"] == 2
    assert got["fwe"] == pytest.approx(0.0, abs=1e-9) and got["id_dist"] == pytest.approx(0.0)
    assert np.allclose(ref.affine, _enrollment_box(np.asarray(astronaut_landmarks, np.float64), 64))
    assert enc.seen[0].shape == (64, 64, 3)                      # it measures the framed face


def test_the_box_is_set_by_the_first_face_and_then_stays(astronaut_rgb, astronaut_landmarks):
    """Frames before the first face are not measured; after it, a frame without landmarks is
    still framed by the same box (a real video that flickers is measured whatever the tracker
    does), and a face that changes is counted by both measures."""
    enc = _MeanColour()
    ref = DriverReference(64, enc, id_stride=1)
    ref.offer(np.zeros_like(astronaut_rgb), None, 0)               # no face yet: skipped
    ref.offer(None, astronaut_landmarks, 1)                        # no picture: skipped
    assert ref.frames == 0 and ref.affine is None
    gains = [1.0, 0.6, 1.4, 0.8, 1.2, 0.7]
    for k, g in enumerate(gains):
        img = np.clip(astronaut_rgb.astype(np.float64) * g, 0, 255).astype(np.uint8)
        ref.offer(img, astronaut_landmarks if k == 0 else None, k + 2)
    got = ref.result()
    assert got["frames"] == 6 and got["id_samples"] == 5 and sorted(ref.ids) == [3, 4, 5, 6, 7]
    assert got["fwe_short"] > 0.02 and got["id_dist"] > 1.0
    assert got["fwe"] == pytest.approx(got["fwe_short"] + got["fwe_long"])
    # an output whose identity distance grows where the driver's own does: r 1; one that moves
    # against it: r −1; too few common frames: None
    drift = {i: 0.1 + 0.002 * d for i, d in ref.ids.items()}
    assert ref.result(drift)["id_r"] == pytest.approx(1.0)
    assert ref.result({i: 1.0 - d for i, d in drift.items()})["id_r"] == pytest.approx(-1.0)
    assert ref.result({3: 0.1, 4: 0.2, 99: 0.3})["id_r"] is None


def test_without_an_encoder_or_frames_the_values_are_absent(astronaut_rgb, astronaut_landmarks):
    ref = DriverReference(64, None)
    assert ref.result()["fwe"] is None and ref.result()["id_dist"] is None
    ref.offer(astronaut_rgb, astronaut_landmarks, 0)
    ref.offer(astronaut_rgb, astronaut_landmarks, 1)
    got = ref.result()
    assert got["fwe"] is not None and got["id_dist"] is None and got["id_samples"] == 0


def test_the_report_sets_the_output_beside_the_drivers_own():
    from bench.benchmark import _driver_own_table

    own = {"fwe": 0.0166, "fwe_short": 0.0028, "fwe_long": 0.0138, "id_dist": 0.278, "id_r": 0.74}
    run = {"quality": {"fwe": 0.0115, "fwe_short": 0.0032, "fwe_long": 0.0083, "id_dist": 0.372},
           "quality_info": {"driver_own": own}}
    lines = _driver_own_table({"run": run}).splitlines()
    assert lines[0] == "| yardstick (--floor) | fwe | fwe_short | fwe_long | id_dist |"
    assert lines[2] == "| run | 0.0115 | 0.0032 | 0.0083 | 0.3720 |"
    assert lines[3] == "| the driver's own video | 0.0166 | 0.0028 | 0.0138 | 0.2780 |"
    assert "r 0.74" in lines[-1]
    assert _driver_own_table({"run": {"quality": run["quality"]}}) == ""


@pytest.mark.tracking
def test_the_pass_measures_the_drivers_own_video_with_floor(assets, tmp_path, monkeypatch):
    """quality_pass(floor=True) feeds every driver frame to the yardstick, and hands it the
    output's own per-frame identity distances (`id_r`); without floor there is none."""
    from bench import quality
    from bench.drivers import open_driver
    from bench.variants import build_engine
    from profiles.format import load
    from realtime.engine.loop import EngineOptions
    from tests.bench.helpers import moving_clip

    monkeypatch.setattr(quality, "_identity_encoder", lambda notes: _MeanColour())
    clip = moving_clip(tmp_path / "driver.avi", assets["image"], 12, fps=12.0)
    profile = load(assets["astro"])
    driver = open_driver(str(clip), None)

    def run(floor):
        return quality.quality_pass(lambda: build_engine(profile, EngineOptions(fps=driver.fps), realtime=False),
                                    profile, driver.open(), fps=driver.fps, total=driver.total,
                                    id_stride=2, floor=floor)
    own = run(True).info["driver_own"]
    assert own["frames"] == 12 and own["id_samples"] == 5          # frames 2, 4, ..., 10
    assert own["fwe"] > 0 and own["fwe_short"] > 0 and own["id_dist"] > 0
    assert own["id_r"] is not None and -1.0 <= own["id_r"] <= 1.0
    assert "driver_own" not in run(False).info


@pytest.mark.tracking
def test_a_faceless_driver_is_said_to_have_no_face(assets, tmp_path, monkeypatch):
    """The still-driver jitter's note says there was no face at all, not that it never held
    still."""
    from bench import quality
    from bench.drivers import open_driver
    from bench.variants import build_engine
    from profiles.format import load
    from realtime.engine.loop import EngineOptions
    from tests.bench.helpers import moving_clip

    monkeypatch.setattr(quality, "_identity_encoder", lambda notes: None)
    clip = moving_clip(tmp_path / "blank.avi", np.full_like(assets["image"], 90), 12, fps=12.0)
    profile = load(assets["astro"])
    driver = open_driver(str(clip), None)
    res = quality.quality_pass(lambda: build_engine(profile, EngineOptions(fps=driver.fps), realtime=False),
                               profile, driver.open(), fps=driver.fps, total=driver.total)
    notes = [n for n in res.notes if n.startswith("jitter_still_driver_px")]
    assert notes == ["jitter_still_driver_px omitted: no face was found in the driver"]


@pytest.mark.tracking
def test_with_remix_the_errors_are_against_what_the_engine_was_told_to_follow(assets, tmp_path, monkeypatch):
    """Before (stop 60's new-user review): pose_err_deg and expr_err were always against the main
    driver, so `--pose-from still` was scored for not rolling with the driver's head (its roll
    ±4° here). Now the pose is scored against the pose source (a still head: the output's own
    turn), and with --expression-from the expression error is left out, with a note."""
    from bench import quality
    from bench.drivers import open_driver
    from bench.variants import build_engine
    from profiles.format import load
    from realtime.engine.loop import EngineOptions
    from tests.bench.helpers import moving_clip

    monkeypatch.setattr(quality, "_identity_encoder", lambda notes: None)
    clip = moving_clip(tmp_path / "driver.avi", assets["image"], 40, fps=20.0)
    profile = load(assets["astro"])
    driver = open_driver(str(clip), None)

    def run(**remix):
        return quality.quality_pass(lambda: build_engine(profile, EngineOptions(fps=driver.fps, **remix),
                                                         realtime=False),
                                    profile, driver.open(), fps=driver.fps, total=driver.total)
    plain, still = run(), run(pose_from="still")
    assert plain.metrics["pose_err_deg"] < 1.5 and "expr_err" in plain.metrics
    assert still.metrics["pose_err_deg"] < 1.0         # a still head, scored as one (2.67° against the driver)
    expressionless = run(expression_from="still")
    assert "expr_err" not in expressionless.metrics and "pose_err_deg" in expressionless.metrics
    assert any(n.startswith("expr_err omitted: the expression came from --expression-from")
               for n in expressionless.notes)


def test_the_sheet_picks_the_drivers_own_extremes_under_a_remix(assets, tmp_path, monkeypatch):
    """Before the fix (audit): with --expression-from the contact sheet was picked by the
    expression source's signals and showed the main driver's frame above each label: `bench
    --self-drive d0.mp4 --expression-from d14.mp4 --sheet` put d0 with open eyes over "closed
    eyes #52" (d14's blink) and d0 at rest over "strongest smile #1". The fidelity rows stay
    against what the engine was told to follow."""
    from bench import fidelity, quality
    from bench.drivers import open_driver
    from bench.variants import build_engine
    from profiles.format import load
    from realtime.engine.loop import EngineOptions
    from tests.bench.helpers import moving_clip

    monkeypatch.setattr(quality, "_identity_encoder", lambda notes: None)
    k = fidelity.SIGNALS.index("mouth_open")

    def remixed(engine, signals):        # a remix source opening its mouth wide on frame 3
        out = np.array(signals, np.float64, copy=True)
        remixed.calls += 1
        out[k] = 9.0 if remixed.calls == 4 else 0.0
        return out
    remixed.calls = 0
    monkeypatch.setattr(quality, "reference_signals", remixed)
    offered = []
    monkeypatch.setattr(fidelity.Extremes, "offer",
                        lambda self, index, signals, *a, **kw: offered.append((index, np.array(signals))))
    clip = moving_clip(tmp_path / "driver.avi", assets["image"], 6, fps=12.0)
    profile = load(assets["astro"])
    driver = open_driver(str(clip), None)
    res = quality.quality_pass(lambda: build_engine(profile, EngineOptions(fps=driver.fps), realtime=False),
                               profile, driver.open(), fps=driver.fps, total=driver.total,
                               extremes=fidelity.Extremes())
    assert len(offered) == 6
    mouths = [s[k] for _, s in offered]
    assert 9.0 not in mouths and all(0.0 < m < 1.0 for m in mouths)   # the driver's own mouth
    assert res.follow["mouth_open"]["n"] == 6                          # the reference: the source's
