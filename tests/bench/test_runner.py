"""`run.py bench` end to end on a synthetic driver (no ../shared, no camera, no GPU)."""
from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import pytest

from bench import runner
from bench.metrics import IdentityEncoder

STAGES = ("track", "estimate", "fuse", "render", "generate", "composite")
QUALITY_KEYS = {"expr_err", "pose_err_deg", "id_dist", "fwe", "fwe_short", "fwe_long", "jitter_px",
                "psnr", "ssim"}


def _moving_clip(path, image, n, fps=30.0, still_from=None):
    """`n` frames of `image` turning and shifting a little about its centre (the image itself
    from frame `still_from` on), MJPG .avi."""
    h, w = image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for t in range(n):
        if still_from is not None and t >= still_from:
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            continue
        ang = 4.0 * np.sin(2 * np.pi * t / 20)
        m = cv2.getRotationMatrix2D((w / 2, h / 3), ang, 1.0)
        m[0, 2] += 6.0 * np.sin(2 * np.pi * t / 27)
        frame = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from skimage import data

    from profiles.enroll import build_profile, detect_single_face
    from profiles.format import save

    root = tmp_path_factory.mktemp("bench")
    img = data.astronaut()
    prof = build_profile(img, detect_single_face(img, "astronaut"), name="astro",
                         source="astronaut.png")
    save(prof, root / "profiles" / "astro")
    clip = _moving_clip(root / "driver.avi", img, 40)
    return {"root": root, "profiles": root / "profiles", "clip": clip, "image": img}


def _args(*argv):
    p = argparse.ArgumentParser(prog="run.py bench")
    runner.add_arguments(p)
    return p.parse_args([str(a) for a in argv])


def _run(capsys, *argv):
    rc = runner.main(_args(*argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(err: str) -> str:
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


def test_single_run_json_plot_and_quality(assets, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PUPPETEER_PROFILES", str(assets["profiles"]))
    # dlib absent: id_dist must be omitted, never faked, and the reason noted
    monkeypatch.setattr(IdentityEncoder, "available", classmethod(lambda cls: False))
    monkeypatch.setattr(IdentityEncoder, "unavailable_reason",
                        classmethod(lambda cls: "dlib is not installed (test)"))
    js, png = tmp_path / "b.json", tmp_path / "b.png"
    rc, out, err = _run(capsys, "--profile", "astro", "--driver", assets["clip"],
                        "--frames", 40, "--warmup", 5, "--quality", "--json", js, "--plot", png,
                        "--roundtrip")
    assert rc == 0, err
    r = json.loads(js.read_text())
    for k in ("fps", "frames", "dropped", "latency_ms", "stages_ms", "device", "quality",
              "machine"):
        assert k in r
    assert r["device"] == "cpu"
    assert r["fps"] > 0
    assert r["frames"] + r["dropped"] == 40 - 5
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
    if not r["roundtrip"]["available"]:          # no readable virtual camera: said, not faked
        assert r["roundtrip"]["reason"]
        assert any(n.startswith("roundtrip not available here") for n in r["notes"])
        assert "latency_ms" not in r["roundtrip"]
    for k in ("cpu", "packages", "git_commit", "gpu"):
        assert k in r["machine"]
    # the table on screen, and a real PNG
    assert "| track |" in out and "**capture→sink**" in out and "| expr_err |" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_compare_interleaves_variants_and_reports_ratios(assets, tmp_path, capsys):
    js = tmp_path / "c.json"
    rc, out, err = _run(capsys, "--profile", assets["profiles"] / "astro",
                        "--driver", assets["clip"], "--frames", 24, "--warmup", 4,
                        "--block", 8, "--compare", "follow_scale=0,1", "--json", js,
                        "--plot", tmp_path / "c.png")
    assert rc == 0, err
    r = json.loads(js.read_text())
    assert list(r["variants"]) == ["follow_scale=0", "follow_scale=1"]
    assert r["baseline"] == "follow_scale=0"
    for v in r["variants"].values():
        assert v["frames"] + v["dropped"] == 24 - 4
        assert set(v["stages_ms"]) >= set(STAGES)
    ratio = r["ratios"]["follow_scale=1"]

    def no_none(d):
        return all(no_none(v) if isinstance(v, dict) else v is not None for v in d.values())
    assert no_none(r["ratios"])                  # absent ratios are left out, not null
    assert ratio["fps"] > 0 and set(ratio["latency_ms"]) == {"p50", "p95", "p99"}
    assert "follow_scale=1 / follow_scale=0" in out
    assert (tmp_path / "c.png").is_file()


def test_self_reenact_reports_psnr_ssim(assets, tmp_path, capsys):
    # The avatar made from the still pose (`astro`, given with --profile as enrolled from the
    # video's first half); the second half holds that pose again: the output must match it.
    video = _moving_clip(tmp_path / "self.avi", assets["image"], 24, still_from=12)
    js = tmp_path / "s.json"
    rc, out, err = _run(capsys, "--self-reenact", video, "--profile",
                        assets["profiles"] / "astro", "--frames", 10,
                        "--warmup", 2, "--json", js)
    assert rc == 0, err
    q = json.loads(js.read_text())["quality"]
    assert {"psnr", "ssim", "psnr_face", "ssim_face", "psnr_mouth", "ssim_mouth"} <= set(q)
    assert q["psnr"] > 25 and 0.8 < q["ssim"] <= 1.0
    assert q["psnr_face"] > 20 and 0.6 < q["ssim_face"] <= 1.0
    assert "| psnr |" in out


def test_self_reenact_enrolls_the_first_half_by_default(assets, tmp_path, capsys):
    video = _moving_clip(tmp_path / "self.avi", assets["image"], 24, still_from=12)
    js = tmp_path / "s.json"
    rc, out, err = _run(capsys, "--self-reenact", video, "--frames", 10, "--warmup", 2,
                        "--json", js)
    assert rc == 0, err
    r = json.loads(js.read_text())
    assert "video profile" in r["profile"]       # an atlas from frames 0..11, not one photo
    assert {"psnr", "ssim", "psnr_face", "ssim_face"} <= set(r["quality"])


def test_self_reenact_follows_the_drivers_distance(assets, tmp_path, capsys):
    """The camera moves 12 % closer in the second half: self-reenactment lets the head follow
    (follow_scale 1), so the default run scores like follow_scale=1, above a fixed head size."""
    img = assets["image"]
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 3), 0.0, 1.12)
    zoomed = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    writer = cv2.VideoWriter(str(tmp_path / "zoom.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
    for t in range(16):
        writer.write(cv2.cvtColor(img if t < 8 else zoomed, cv2.COLOR_RGB2BGR))
    writer.release()
    common = ("--self-reenact", tmp_path / "zoom.avi", "--profile", assets["profiles"] / "astro",
              "--warmup", 2)
    rc, _, err = _run(capsys, *common, "--json", tmp_path / "d.json")
    assert rc == 0, err
    rc, _, err = _run(capsys, *common, "--compare", "follow_scale=0,1", "--json", tmp_path / "c.json")
    assert rc == 0, err
    default = json.loads((tmp_path / "d.json").read_text())["quality"]["psnr_face"]
    v = json.loads((tmp_path / "c.json").read_text())["variants"]
    fixed, follow = (v[f"follow_scale={k}"]["quality"]["psnr_face"] for k in (0, 1))
    assert follow > fixed + 1.0
    assert abs(default - follow) < 0.1


@pytest.mark.parametrize("argv, expect", [
    (("--profile", "no-such-profile", "--driver", "{clip}"), "no profile"),
    (("--profile", "{astro}", "--driver", "{clip}", "--compare", "colour=1,2"),
     "unknown key 'colour'; keys: tier, device, size"),
    (("--profile", "{astro}", "--driver", "{clip}", "--compare", "tier=warp,nosuch"),
     "tier 'nosuch' is not available"),
    (("--profile", "{astro}", "--driver", "{clip}", "--compare", "size=512x512,big"),
     "WIDTHxHEIGHT"),
    (("--profile", "{astro}", "--driver", "{clip}", "--compare", "follow_scale"),
     "KEY=A,B"),
    (("--profile", "{astro}", "--driver", "nothing-here.mp4"), "neither a camera"),
    (("--profile", "{astro}",), "--driver required"),
    (("--profile", "{astro}", "--driver", "{clip}", "--frames", "10", "--warmup", "10"),
     "nothing left to measure"),
])
def test_user_mistakes_are_one_line_exit_2(assets, capsys, argv, expect):
    argv = [a.format(clip=assets["clip"], astro=assets["profiles"] / "astro") for a in argv]
    rc, out, err = _run(capsys, *argv)
    assert rc == 2
    assert expect in _one_error_line(err)


def test_device_cuda_without_gpu(assets, capsys, monkeypatch):
    monkeypatch.setattr(runner, "_cuda_available", lambda: False)
    for extra in (("--device", "cuda"), ("--compare", "device=cpu,cuda")):
        rc, out, err = _run(capsys, "--profile", assets["profiles"] / "astro",
                            "--driver", assets["clip"], *extra)
        assert rc == 2
        assert _one_error_line(err) == ("error: --device cuda needs an NVIDIA GPU and the gpu "
                                        "extra (pip install '.[gpu]')")


def test_knob_registry_covers_the_configs():
    import dataclasses

    from realtime.face.estimate import EstimatorConfig
    from realtime.mesh.fuse import FuseConfig
    from realtime.engine.loop import EngineOptions

    names = {f.name for c in (EstimatorConfig, FuseConfig) for f in dataclasses.fields(c)}
    assert {"tier", "device", "size"} | names <= set(runner.KNOBS)
    vs = runner.make_variants(EngineOptions(), "cpu", runner.parse_compare("size=256x256,640x480"))
    assert [v.options.output_size for v in vs] == [(256, 256), (640, 480)]
    vs = runner.make_variants(EngineOptions(), "cpu", runner.parse_compare("follow_scale=0,0.5"))
    assert [v.options.fuse.follow_scale for v in vs] == [0.0, 0.5]
    assert vs[0].options.fuse.follow_translation == FuseConfig().follow_translation
    vs = runner.make_variants(EngineOptions(), "cpu", runner.parse_compare("ease_s=0.1,0.5"))
    assert [v.options.estimator.ease_s for v in vs] == [0.1, 0.5]


def test_stamp_survives_jpeg_and_rejects_noise():
    img = np.full((64, 480, 3), 90, np.uint8)
    for value in (0, 1, 4321, 65535):
        runner.encode_stamp(img, value)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 60])
        assert runner.decode_stamp(cv2.imdecode(buf, cv2.IMREAD_COLOR)) == value
    assert runner.decode_stamp(np.random.default_rng(0).integers(0, 255, (64, 480, 3),
                                                                 dtype=np.uint8)) is None


def test_roundtrip_says_why_not_when_no_device():
    device, reason = runner.roundtrip_probe(640, 480, 30.0, timeout=3.0)
    if device is not None:
        pytest.skip(f"a readable virtual camera exists here ({device})")
    assert reason and isinstance(reason, str)


def test_roundtrip_pass_through_a_fake_virtual_camera(assets, monkeypatch):
    """The plumbing of --roundtrip (stamp → device → OpenCV read-back → latency) with an
    in-memory device standing in for v4l2loopback."""
    import queue
    import time

    import realtime.io.sinks as sinks
    from profiles.format import load
    from realtime.engine.loop import EngineOptions

    wire: queue.Queue = queue.Queue()

    class FakeVcam:
        name = "vcam"

        def __init__(self, fps=None, backend=None, device=None):
            pass

        def open(self, width, height, fps=None):
            pass

        def write(self, frame):
            wire.put(frame.output.copy())

        def close(self):
            pass

        def poll_events(self):
            return []

    class FakeCapture:
        def isOpened(self):
            return True

        def read(self):
            try:
                rgb = wire.get(timeout=0.05)
            except queue.Empty:
                return False, None
            time.sleep(0.002)                      # the device's own delay
            return True, np.ascontiguousarray(rgb[..., ::-1])

        def release(self):
            pass

    real_capture = cv2.VideoCapture
    monkeypatch.setattr(sinks, "VirtualCameraSink", FakeVcam)
    monkeypatch.setattr(cv2, "VideoCapture",
                        lambda src, *a: FakeCapture() if src == "fake0" else real_capture(src, *a))
    monkeypatch.setattr(runner, "roundtrip_probe", lambda w, h, fps: ("fake0", None))
    profile = load(assets["profiles"] / "astro")
    driver = runner.open_driver(str(assets["clip"]), 20)
    r = runner.roundtrip_pass(profile, EngineOptions(), driver, warmup=2)
    assert r["available"] and r["device"] == "fake0"
    assert 3 <= r["frames"] <= 18          # realtime: frames may drop under load
    lat = r["latency_ms"]
    assert 2.0 < lat["p50"] <= lat["p95"] <= lat["p99"] < 1000
