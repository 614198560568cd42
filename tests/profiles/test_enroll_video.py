"""Video enrollment (profiles/enroll_video.py, clip.py, keyframes.py): frame rejection,
reference and keyframe choice, mirrored views, colour drift, the refusals, and an enrolled
profile's exact round trip.

The clips are synthesised here from skimage's astronaut (a photo turned in 3-D by
homographies), so nothing under ../shared is needed.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from profiles.clip import ClipTrack
from profiles.enroll import EnrollError
from profiles.enroll_video import build_video_profile, enroll, enroll_video
from profiles.format import OPTIONAL_ARRAYS, load
from profiles.keyframes import VideoEnrollConfig, _reject, choose_reference, flips_needed, select_keyframes
from realtime.face import geometry
from realtime.tiers.atlas.query import measure


def make_clip(path: Path, frames: int = 40, size: int = 320, brightness=None,
              scale: float = 1.0) -> Path:
    """The astronaut's face turning left/right (±20°) and nodding (±12°), as homographies of
    the photo; `brightness(t)` multiplies frame t; `scale` < 1 shrinks the picture into a
    larger grey canvas (a small face)."""
    import skimage.data

    rgb = cv2.resize(skimage.data.astronaut()[20:320, 90:390], (size, size),
                     interpolation=cv2.INTER_AREA)
    f = size * 1.2
    k = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    out_size = int(round(size / scale))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (out_size, out_size))
    for t in range(frames):
        yaw = np.radians(20 * np.sin(2 * np.pi * t / frames))
        pitch = np.radians(12 * np.sin(4 * np.pi * t / frames))
        rot = geometry.rotation_from_euler(np.degrees(yaw), np.degrees(pitch), 0.0)
        img = cv2.warpPerspective(rgb, k @ rot @ np.linalg.inv(k), (size, size),
                                  borderMode=cv2.BORDER_REFLECT)
        if brightness is not None:
            img = np.clip(img.astype(np.float32) * brightness(t), 0, 255).astype(np.uint8)
        if scale != 1.0:
            canvas = np.full((out_size, out_size, 3), 128, np.uint8)
            o = (out_size - size) // 2
            canvas[o:o + size, o:o + size] = img
            img = canvas
        writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "astronaut.avi")


@pytest.fixture(scope="module")
def video_profile(clip):
    return build_video_profile(clip, "astro", progress=False)


# --------------------------------------------------------------------------- keyframe choice

def _posed_queries(landmarks: np.ndarray, yaws, pitches) -> np.ndarray:
    """Query points of the astronaut's face posed at every (yaw, pitch) of the grid."""
    frame = geometry.face_frame(landmarks)
    canon = frame.invert_points(np.asarray(landmarks, np.float64))
    out = []
    for yaw in yaws:
        for pitch in pitches:
            rot = geometry.rotation_from_euler(yaw, pitch, 0.0)
            posed = 100.0 * canon @ rot.T + np.array([200.0, 200.0, 0.0])
            out.append(measure(posed)[0])
    return np.array(out)


def test_query_recovers_a_grid_of_poses(astronaut_landmarks):
    yaws, pitches = np.linspace(-30, 30, 7), np.linspace(-20, 20, 5)
    q = _posed_queries(astronaut_landmarks, yaws, pitches)
    want = np.array([(y / 30.0, p / 20.0) for y in yaws for p in pitches])
    assert np.abs(q[:, :2] - want).max() < 0.02          # < 0.6° yaw, 0.4° pitch
    assert np.ptp(q[:, 2]) < 0.02 and np.ptp(q[:, 3]) < 0.02  # openings do not move with pose


def test_keyframe_selection_covers_a_grid_of_poses(astronaut_landmarks):
    yaws, pitches = np.linspace(-30, 30, 25), np.linspace(-20, 20, 17)
    q = _posed_queries(astronaut_landmarks, yaws, pitches)
    rng = np.random.default_rng(0)
    q = np.concatenate([q, q + rng.normal(0, 0.01, q.shape)])  # near-duplicates
    quality = rng.random(len(q))
    ref = int(np.argmin(np.abs(q[:, 0]) + np.abs(q[:, 1])))
    keys = select_keyframes(q, np.arange(len(q)), quality, ref, max_keyframes=48, radius=0.1)
    assert keys[0] == ref and len(keys) == 48 and len(set(keys.tolist())) == 48
    d = np.linalg.norm(q[:, None, :2] - q[keys][None, :, :2], axis=2).min(1)
    assert d.max() < 0.3               # every pose of the grid has a keyframe near it (a 2×2
    #                                    square, 48 keyframes: ~0.2 at best, FPS within 2×)
    for corner in ((-1, -1), (-1, 1), (1, -1), (1, 1)):  # the extremes are kept
        assert np.linalg.norm(q[keys, :2] - corner, axis=1).min() < 0.12
    # Without the cap: pure pruning, every candidate within the radius of a keyframe and no
    # two keyframes within it (non-maximum suppression on the k-d tree).
    keys = select_keyframes(q, np.arange(len(q)), quality, ref, max_keyframes=10_000, radius=0.1)
    d = np.linalg.norm(q[:, None] - q[keys][None], axis=2)
    assert d.min(1).max() <= 0.1 + 1e-9
    pair = np.linalg.norm(q[keys][:, None] - q[keys][None], axis=2) + np.eye(len(keys))
    assert pair.min() > 0.1


def test_pruning_keeps_the_better_of_near_duplicates():
    q = np.array([[0, 0, 0, 1], [0.5, 0, 0, 1], [0.52, 0, 0, 1]], float)
    keys = select_keyframes(q, np.arange(3), np.array([0.0, 1.0, 2.0]), 0, radius=0.1)
    assert keys.tolist() == [0, 2]


def test_reference_is_frontal_closed_and_open_eyed():
    q = np.array([[0.5, 0.0, 0.0, 1.0],    # turned
                  [0.0, 0.0, 0.8, 1.0],    # mouth open
                  [0.0, 0.0, 0.0, 0.2],    # blinking
                  [0.05, 0.1, 0.02, 1.0],  # the one
                  [0.0, 0.0, 0.0, 1.0]])   # neutral but blurred
    sharp = np.array([10, 10, 10, 10, 1.0])
    assert choose_reference(q, sharp, np.ones(5, bool)) == 3


def test_flips_fill_a_one_sided_yaw_range():
    real = np.array([[y, 0.2, 0.0, 1.0] for y in (-0.1, -0.25, -0.4, -0.55)])
    mirrored = real * np.array([-1, 1, 1, 1])
    # +0.1 is only 0.2 from -0.1: not needed; the others are, farthest first
    assert flips_needed(real, mirrored, 0.2, 10).tolist() == [3, 2, 1]
    assert flips_needed(real, mirrored, 0.2, 1).tolist() == [3]
    symmetric = np.array([[y, 0.0, 0.0, 1.0] for y in (-0.5, 0.0, 0.5)])
    assert len(flips_needed(symmetric, symmetric * [-1, 1, 1, 1], 0.2, 10)) == 0


# ------------------------------------------------------------------------------- rejection

def _track(f: int = 30) -> ClipTrack:
    rng = np.random.default_rng(1)
    base = rng.normal(0, 30, (478, 3)).astype(np.float32) + 200
    base[33, :2] = (150, 200)
    base[263, :2] = (250, 200)  # interocular 100 px
    lms = np.repeat(base[None], f, 0) + rng.normal(0, 0.2, (f, 478, 3)).astype(np.float32)
    return ClipTrack(frames=np.arange(f), landmarks=lms, query=np.zeros((f, 4)),
                     roll=np.zeros(f), sharpness=np.full(f, 100.0) + rng.normal(0, 5, f),
                     colour=np.tile([60.0, 15.0, 15.0], (f, 1)) + rng.normal(0, 0.3, (f, 3)),
                     faces=np.full(f, -1, np.int8), size=(400, 400), fps=30.0)


def test_rejection_rules():
    t = _track()
    t.landmarks[5] = np.nan                 # lost: 4, 5, 6 go
    t.sharpness[10] = 20.0                  # blurred
    t.landmarks[15, :, :2] += 8.0           # a jump away from both neighbours
    t.colour[20] = (35.0, 15.0, 15.0)       # a dark hand over the cheeks
    t.faces[25] = 2                         # a second person
    good, counts = _reject(t, VideoEnrollConfig(multi_face_every=2))
    assert not good[[4, 5, 6, 10, 15, 20, 23, 24, 25, 26, 27]].any()
    assert good[[0, 1, 2, 8, 12, 18, 21]].all()
    assert counts["no_face"] == 3 and counts["blurred"] == 1 and counts["occluded"] == 1
    assert counts["multi_face"] == 5 and counts["unsteady"] >= 1


# ------------------------------------------------------------------------------- enrollment

@pytest.mark.tracking
def test_enrolled_profile_round_trips_exactly(video_profile, clip, tmp_path):
    import hashlib

    from profiles.format import save

    p = video_profile
    atlas = p.settings["atlas"]    # the clip, recorded so that `train` can tell it from another
    assert atlas["source_sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert atlas["source_bytes"] == clip.stat().st_size and atlas["source_frames"] == 40
    assert p.kind == "video" and p.tier == "atlas" and p.has_atlas
    n = len(p["atlas_images"])
    assert n >= 2 and p["atlas_images"].shape[1:] == (192, 192, 3)
    assert p["atlas_landmarks"].shape == (n, 478, 3) and p["atlas_query"].shape == (n, 4)
    d = len(p["atlas_dims"])
    assert p["atlas_simplices"].shape[1] == d + 1
    assert p["atlas_images"][0].std() > 10  # a picture, not a blank
    save(p, tmp_path / "astro")
    back = load(tmp_path / "astro")
    assert back.tier == "atlas" and back.kind == "video" and back.settings == p.settings
    assert set(back.arrays) == set(p.arrays)
    for key, a in p.arrays.items():
        b = back.arrays[key]
        assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b), key
    assert set(OPTIONAL_ARRAYS) <= set(back.arrays)


@pytest.mark.tracking
def test_keyframes_are_real_views_of_the_clip(video_profile):
    """Each keyframe's landmarks sit on its crop's face: re-tracking the crop finds them."""
    from realtime.face.track import Tracker

    p = video_profile
    real = np.nonzero(p["atlas_flipped"] == 0)[0]
    with Tracker(static=True) as tracker:
        for k in real[:3]:
            lm = tracker(np.ascontiguousarray(p["atlas_images"][k]))
            assert lm is not None
            err = np.linalg.norm(lm[:468, :2] - p["atlas_landmarks"][k, :468, :2], axis=1)
            assert np.median(err) < 3.0, (k, np.median(err))


@pytest.mark.tracking
def test_enroll_video_saves_and_refuses_to_overwrite(clip, tmp_path):
    folder = enroll_video(clip, "astro", root=tmp_path, progress=False)
    assert load(folder).has_atlas
    with pytest.raises(EnrollError, match="exists already"):
        enroll_video(clip, "astro", root=tmp_path, progress=False)


@pytest.mark.tracking
def test_dispatcher_picks_by_extension(tmp_path, astronaut_rgb):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    assert load(enroll(img, "photo", root=tmp_path)).kind == "image"
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(EnrollError, match="unknown file type"):
        enroll(tmp_path / "x.txt", "x", root=tmp_path)
    with pytest.raises(EnrollError, match="does not exist"):
        enroll(tmp_path / "missing.mp4", "x", root=tmp_path)
    (tmp_path / "shots").mkdir()
    with pytest.raises(EnrollError, match="shots' is a folder"):
        enroll(tmp_path / "shots", "x", root=tmp_path)
    assert not (tmp_path / "x").exists()


@pytest.mark.tracking
def test_a_clip_without_a_face_is_refused(tmp_path):
    path = tmp_path / "noise.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 160))
    rng = np.random.default_rng(0)
    for _ in range(6):
        w.write(rng.integers(0, 255, (160, 160, 3), dtype=np.uint8))
    w.release()
    with pytest.raises(EnrollError, match="no human face"):
        build_video_profile(path, "x", progress=False)


@pytest.mark.tracking
def test_too_few_frames_says_the_minimum(clip, tmp_path):
    """--frames 0:3 said "only 3 usable frames of 3 (rejected: )": no minimum, an empty list."""
    with pytest.raises(EnrollError) as e:
        enroll_video(clip, "x", root=tmp_path, progress=False, start=0, stop=3)
    text = str(e.value)
    assert "usable frames of 3" in text and "need at least 5; enroll more frames" in text, text
    assert "(rejected: )" not in text
    assert list(tmp_path.iterdir()) == []


def test_too_few_frames_lists_only_the_rules_that_rejected():
    from profiles.enroll_video import _refuse_too_few

    good = np.array([True, True, False, False, False, True])
    with pytest.raises(EnrollError) as e:
        _refuse_too_few(Path("c.mp4"), good, {"no_face": 0, "blurred": 2, "occluded": 1})
    assert str(e.value) == ("c.mp4: only 3 usable frames of 6 (rejected: blurred 2, occluded 1), "
                            "need at least 5; use a steadier, sharper clip of one face")
    with pytest.raises(EnrollError) as e:
        _refuse_too_few(Path("c.mp4"), np.ones(3, bool), {})
    assert str(e.value) == ("c.mp4: only 3 usable frames of 3, need at least 5; enroll more "
                            "frames (a 20-60 s clip)")
    with pytest.raises(EnrollError, match="only 1 usable frame of 1,"):      # (said "1 usable frames")
        _refuse_too_few(Path("c.mp4"), np.ones(1, bool), {})
    _refuse_too_few(Path("c.mp4"), np.ones(5, bool), {})      # 5 is enough


@pytest.mark.parametrize("start, stop, shown", [(5000, 6000, "5000:6000"), (40, None, "40:")])
def test_frames_past_the_end_say_the_clip_length(clip, tmp_path, start, stop, shown):
    """--frames 5000:6000 on a shorter clip said "no frame could be decoded ... in frames
    5000..6000", not how long the clip is."""
    with pytest.raises(EnrollError) as e:
        enroll_video(clip, "x", root=tmp_path, progress=False, start=start, stop=stop)
    assert str(e.value) == (f"astronaut.avi has 40 frames (0..39), so --frames {shown} starts "
                            f"past its end; pick START:STOP within 0:40")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("size, scale, reason", [
    (64, 0.8, r"too small: 1\d px between the eye corners"),        # tracked, but tiny
    (160, 0.25, r"too small to track: .* about \d+ px wide in a 640x640"),  # s13.mp4's case
])
@pytest.mark.tracking
def test_a_tiny_face_is_refused_with_its_size(tmp_path, size, scale, reason):
    path = make_clip(tmp_path / "small.avi", frames=6, size=size, scale=scale)
    with pytest.raises(EnrollError, match=reason):
        build_video_profile(path, "x", progress=False)


@pytest.mark.tracking
def test_exposure_drift_is_removed_from_keyframes(tmp_path):
    """Alternate frames 25 % darker (auto-exposure pumping, uncorrelated with the pose): the
    keyframes' brightness spread shrinks (each is moved towards what its view should look
    like, less a 2-unit dead band, at most 10 units)."""
    from realtime.face.topology import FACE_OVAL

    def skin_l(p):
        out = []
        for img, lm in zip(p["atlas_images"], p["atlas_landmarks"]):
            mask = np.zeros(img.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.round(lm[list(FACE_OVAL), :2]).astype(np.int32)], 1)
            out.append(cv2.cvtColor(img, cv2.COLOR_RGB2Lab)[..., 0][mask > 0].mean())
        return np.array(out)

    path = make_clip(tmp_path / "pump.avi", brightness=lambda t: 0.75 if t % 2 else 1.0)
    raw = build_video_profile(path, "x", progress=False, config=VideoEnrollConfig(colour=False))
    fixed = build_video_profile(path, "x", progress=False)
    assert np.ptp(skin_l(raw)) > 25
    assert np.ptp(skin_l(fixed)) < 0.75 * np.ptp(skin_l(raw))
    assert fixed.settings["atlas"]["colour_shift_max"] > 2.0
