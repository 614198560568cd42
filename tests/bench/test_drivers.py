"""bench.drivers: clip drivers, limited views, and self-reenactment on a video's two halves."""
from __future__ import annotations

import numpy as np
import pytest

from bench import drivers
from bench.devices import get_device
from bench.metrics import IdentityEncoder
from bench.quality import quality_pass
from bench.usage import DEFAULT_CAMERA_FRAMES, UsageError
from bench.variants import build_engine, make_variants
from profiles.enroll import EnrollError
from profiles.format import load
from realtime.mesh.fuse import FuseConfig
from tests.bench.helpers import moving_clip, zoom_clip


def test_open_driver_describes_a_clip(assets):
    d = drivers.open_driver(str(assets["clip"]), None)
    assert (d.start, d.count, d.total, d.fps, d.is_camera) == (0, None, 40, 30.0, False)
    assert d.label == "driver.avi"
    d = drivers.open_driver(str(assets["clip"]), 12)
    assert (d.count, d.total) == (12, 12)
    assert drivers.open_driver(str(assets["clip"]), 100).total == 40
    assert DEFAULT_CAMERA_FRAMES == 300         # a camera's count when --frames is not given


def test_open_driver_refuses_what_is_not_there(tmp_path):
    with pytest.raises(UsageError, match="^--driver: .*nothing-here.mp4' does not exist: check the path$"):
        drivers.open_driver(str(tmp_path / "nothing-here.mp4"), None)


def test_driver_open_starts_and_stops_where_told(assets):
    first = drivers.Driver(str(assets["clip"])).open()
    frames = [first.read()["image"] for _ in range(32)]
    first.source.close()
    lim = drivers.Driver(str(assets["clip"]), start=30).open()
    try:
        assert np.array_equal(lim.read()["image"], frames[30])
        assert sum(lim.read() is not None for _ in range(20)) == 9
        assert lim.exhausted and lim.read_count == 10
    finally:
        lim.close()
    lim = drivers.Driver(str(assets["clip"]), count=4).open()
    try:
        assert sum(lim.read() is not None for _ in range(6)) == 4
        assert not lim.exhausted and lim.frame_count == 4
    finally:
        lim.close()


def test_a_limit_closes_its_source_only_when_it_owns_it():
    class Source:
        fps, size, is_live, frame_count, closed = 30.0, (8, 8), False, None, False

        def read(self):
            return {}

        def close(self):
            self.closed = True
    src = Source()
    drivers.Limit(src, 2).close()
    assert not src.closed
    drivers.Limit(src, 2, owns=True).close()
    assert src.closed


def test_self_reenact_options_follow_the_drivers_distance(assets):
    profile = load(assets["astro"])
    opts = drivers.self_reenact_options(25.0, profile)
    h, w = profile["image"].shape[:2]
    assert opts.fps == 25.0 and opts.output_size == (w, h)
    assert drivers.SELF_REENACT_FOLLOW_SCALE == 1.0
    assert opts.fuse == FuseConfig(follow_scale=1.0)


def test_prepare_self_reenact_drives_with_the_second_half(assets, tmp_path):
    video = moving_clip(tmp_path / "self.avi", assets["image"], 24, still_from=12)
    given = load(assets["astro"])
    profile, driver, lm = drivers.prepare_self_reenact(str(video), None, given)
    assert profile is given and lm is given["landmarks"]
    assert (driver.start, driver.count, driver.total, driver.fps) == (12, 12, 12, 30.0)
    assert driver.label == "self.avi frames 12–23"
    _, driver, _ = drivers.prepare_self_reenact(str(video), 10, given)
    assert (driver.count, driver.total, driver.label) == (10, 10, "self.avi frames 12–21")


@pytest.mark.tracking
def test_self_reenact_enrolls_the_first_half_by_default(assets, tmp_path, monkeypatch):
    """An appearance atlas from frames 0..half-1, not one photo; an image profile of frame 0
    when the clip cannot make an atlas."""
    video = moving_clip(tmp_path / "self.avi", assets["image"], 12, still_from=6)
    calls = []

    def video_profile(path, name, stop):
        calls.append((path, name, stop))
        return load(assets["astro"])
    monkeypatch.setattr(drivers, "build_video_profile", video_profile)
    profile, driver, _ = drivers.prepare_self_reenact(str(video), None)
    assert calls == [(str(video), "self-self", 6)]
    assert profile.name == "astro" and driver.start == 6

    def no_atlas(path, name, stop):
        raise EnrollError("too few usable frames (test)")
    monkeypatch.setattr(drivers, "build_video_profile", no_atlas)
    profile, driver, lm = drivers.prepare_self_reenact(str(video), None)
    assert profile.kind == "image" and profile.name == "self-self"
    assert lm is profile["landmarks"] and driver.start == 6


def test_self_reenact_needs_four_frames(assets, tmp_path):
    video = moving_clip(tmp_path / "short.avi", assets["image"], 3)
    with pytest.raises(UsageError, match="has 3 frame\\(s\\); it needs a video of at least 4"):
        drivers.prepare_self_reenact(str(video), None, load(assets["astro"]))
    with pytest.raises(UsageError, match="^--self-reenact: "):
        drivers.prepare_self_reenact(str(tmp_path / "nothing-here.mp4"), None)


@pytest.mark.tracking
def test_self_reenact_follows_the_drivers_distance(assets, tmp_path, monkeypatch):
    """The camera moves 12 % closer in the second half: self-reenactment lets the head follow
    (follow_scale 1, its default), which scores above a fixed head size."""
    monkeypatch.setattr(IdentityEncoder, "available", classmethod(lambda cls: False))
    # 8 driven frames: the first waits for a second before it is believed (realtime.face.estimate)
    video = zoom_clip(tmp_path / "zoom.avi", assets["image"], 16, zoom_from=8)
    profile, driver, lm = drivers.prepare_self_reenact(str(video), None, load(assets["astro"]))
    default = get_device("cpu").configure(drivers.self_reenact_options(driver.fps, profile))
    fixed, follow = make_variants(default, "cpu", ("follow_scale", ["0", "1"]))
    assert follow.options == default            # the default run is the follow_scale=1 run
    psnr_face = []
    for v in (fixed, follow):
        q = quality_pass(lambda v=v: build_engine(profile, v.options, realtime=False, fps=driver.fps),
                         profile, driver.open(), fps=driver.fps, total=driver.total, pin=lm,
                         real_frames=True)
        psnr_face.append(q.metrics["psnr_face"])
    assert psnr_face[1] > psnr_face[0] + 1.0


def test_self_reenact_refuses_a_clip_profile_of_another_clip(assets, tmp_path):
    """Before the fix: a profile enrolled from another clip drove the video's second half and the
    bench compared it with the real frames (pose_err 20°, no PSNR, a note on frame sizes)."""
    from types import SimpleNamespace

    from realtime.core.paths import sha256_file

    video = moving_clip(tmp_path / "self.avi", assets["image"], 12, still_from=6)
    other = moving_clip(tmp_path / "other.avi", assets["image"], 8)

    def clip_profile(path, frames=(0, 5)):
        return SimpleNamespace(name="clip", source=path.name, settings={"atlas": {
            "source_sha256": sha256_file(path), "frame_range": list(frames)}})

    with pytest.raises(UsageError) as e:
        drivers.prepare_self_reenact(str(video), None, clip_profile(other))
    assert str(e.value) == (f"--self-reenact self.avi: profile 'clip' was enrolled from other.avi, not from "
                            f"this video: its second half would be compared with another clip's frames; "
                            f"enroll its first half (run.py enroll {video} --frames 0:6 --name NAME) and "
                            f"pass that, or drop --profile")
    renamed = SimpleNamespace(name="clip", source="self.avi", settings=clip_profile(other).settings)
    with pytest.raises(UsageError, match=r"enrolled from self.avi \(its sha256 differs\), not from this video"):
        drivers.check_enrolled_from(renamed, str(video), 6, [])
    old = SimpleNamespace(name="clip", source="other.mp4", settings={})     # enrolled before the sha256
    with pytest.raises(UsageError, match="enrolled from other.mp4, not from this video"):
        drivers.check_enrolled_from(old, str(video), 6, [])
    notes = []
    drivers.check_enrolled_from(clip_profile(video), str(video), 6, notes)   # its own: fine
    assert notes == []
    drivers.check_enrolled_from(clip_profile(video, (0, 9)), str(video), 6, notes)
    assert notes == ["self-reenact: profile 'clip' was enrolled from frames up to 9 of self.avi, the driven "
                     "half starts at 6: PSNR / SSIM there measure frames the avatar was made from"]


def test_a_driver_keeps_its_truncation_note_not_its_sources(assets, tmp_path):
    """(stop 58 review) Every `open()` kept its source alive for the bench's life, to read its
    note at the end: a tracked clip's landmarks once per pass and variant. Only the note stays."""
    import gc
    import weakref

    data = assets["clip"].read_bytes()
    half = tmp_path / "half.avi"
    half.write_bytes(data[:len(data) // 2])
    d = drivers.open_driver(str(half), None)
    assert d.ended_early() is None
    lim = d.open()
    while lim.read() is not None:
        pass
    lim.close()
    gone = weakref.ref(lim.source)
    del lim
    gc.collect()
    assert gone() is None
    assert d.ended_early().startswith("note: half.avi ended at frame")
