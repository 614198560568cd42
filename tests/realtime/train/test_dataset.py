"""realtime.train.dataset: the training pairs, and the frames it refuses (another clip's framing).

Before (a new-user review): `train --other-video` on a clip of another size, or with the face
elsewhere in the frame, applied the profile's crop affine to it anyway, trained on crops of
hair and background and reported a face L1 of 0.0000 (an empty face mask).
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from realtime.train import dataset
from tests.hostile import atlas_arrays


@pytest.fixture
def fake_tracked(astronaut_profile, monkeypatch):
    """The astronaut's profile with an atlas, and a tracker that "finds" the landmarks that
    `landmarks(n)` gives for the n-th frame it sees (no MediaPipe)."""
    profile = dataclasses.replace(astronaut_profile, kind="video",
                                  arrays={**astronaut_profile.arrays, **atlas_arrays()})
    seen = {"frames": 0, "started": 0}
    state = {"landmarks": lambda n: np.asarray(profile["landmarks"], np.float64)}

    class Tracker:
        def __init__(self, static=False):
            seen["started"] += 1

        def __call__(self, rgb):
            seen["frames"] += 1
            return state["landmarks"](seen["frames"] - 1)

        def close(self):
            pass

    monkeypatch.setattr(dataset, "Tracker", Tracker)
    return profile, state, seen


def _frames(n: int, shape) -> list:
    return [(i, np.zeros(shape, np.uint8)) for i in range(n)]


def test_frames_of_another_size_are_refused_before_anything_is_tracked(fake_tracked):
    profile, _, seen = fake_tracked
    h, w = profile["image"].shape[:2]
    with pytest.raises(dataset.UnusableFrames, match=rf"its frames are 320x240, and the profile crops "
                                                     rf"the face from a place in the {w}x{h} frames of "):
        dataset.build_pairs(profile, _frames(5, (240, 320, 3)), resolution=32, same_clip=False)
    assert seen == {"frames": 0, "started": 0}


def _moved(lm: np.ndarray, shift=(0.0, 0.0), scale: float = 1.0) -> np.ndarray:
    out = lm.copy()
    centre = lm[:, :2].mean(0)
    out[:, :2] = (lm[:, :2] - centre) * scale + centre + np.asarray(shift)
    return out


@pytest.mark.parametrize("move, words", [
    ({"shift": (-400.0, 0.0)}, r"the face is not where the profile's crop expects it in 4 of the 4 frames "
                               r"with a face \(4 mostly outside the part of the frame the profile crops "
                               r"\(x -?\d+\.\.\d+, y -?\d+\.\.\d+\)\), so their crops hold no face"),
    ({"scale": 0.3}, r"in 4 of the 4 frames with a face \(4 at another size \(under half or over "
                     r"twice the face in the profile's reference frame\)\)"),
])
def test_a_face_away_from_the_profiles_crop_is_refused_before_rendering(fake_tracked, monkeypatch, move, words):
    profile, state, _ = fake_tracked
    lm = np.asarray(profile["landmarks"], np.float64)
    state["landmarks"] = lambda n: _moved(lm, **move)
    monkeypatch.setattr(dataset, "make_generator", lambda *a, **k: pytest.fail("rendered"))
    with pytest.raises(dataset.UnusableFrames, match=words):
        dataset.build_pairs(profile, _frames(4, profile["image"].shape), resolution=32, same_clip=False)


def test_a_few_frames_with_the_face_out_of_the_crop_are_left_out(fake_tracked):
    """A clip framed as the profile's where the head leaves the crop now and then: those frames
    (crops without a face) are left out, the others trained on; where fewer than half are left,
    the clip is refused."""
    profile, _, _ = fake_tracked
    lm = np.asarray(profile["landmarks"], np.float64)
    a = np.asarray(profile["crop_from_image"], np.float64)
    tracked = lambda away: [(i, None, _moved(lm, shift=(-400.0, 0.0)) if i in away else lm)  # noqa: E731
                            for i in range(6)]
    kept = dataset._fitting(tracked({1, 4}), profile, a, profile.crop_size)
    assert [t[0] for t in kept] == [0, 2, 3, 5]
    assert len(dataset._fitting(tracked({1, 3, 5}), profile, a, profile.crop_size)) == 3
    with pytest.raises(dataset.UnusableFrames, match=r"in 4 of the 6 frames with a face \(4 mostly outside"):
        dataset._fitting(tracked({0, 1, 3, 5}), profile, a, profile.crop_size)


def test_no_frame_at_all_says_so(fake_tracked):
    profile, _, _ = fake_tracked
    with pytest.raises(dataset.UnusableFrames, match="no frame was read to train on"):
        dataset.build_pairs(profile, iter([]), resolution=32)


# ------------------------------------------------------------------------- with MediaPipe
def _rewritten(src, dst, frames, dx: int = 0, gain: float = 1.0):
    """Frames `frames` of `src` as a new clip: `gain` times as bright (another take: other
    bytes, the same framing), moved `dx` pixels right (grey where they came from)."""
    cap = cv2.VideoCapture(str(src))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"MJPG"), 30, (w, h))
    for i in range(max(frames) + 1):
        ok, bgr = cap.read()
        assert ok
        if i in frames:
            bgr = cv2.convertScaleAbs(bgr, alpha=gain)
            writer.write(cv2.warpAffine(bgr, np.float32([[1, 0, dx], [0, 1, 0]]), (w, h),
                                        borderValue=(128, 128, 128)))
    writer.release()
    cap.release()
    return dst


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory):
    """A video profile of the (synthetic, turning) astronaut clip, and another take filmed the
    same way: the clip's last frames (where its face is near the reference frame's: the
    synthetic head sweeps far across the frame in the others), a little darker."""
    from profiles.enroll_video import build_video_profile
    from tests.profiles.test_enroll_video import make_clip

    folder = tmp_path_factory.mktemp("train-clips")
    clip = make_clip(folder / "take1.avi", frames=40)
    profile = build_video_profile(clip, "astro", progress=False)
    return profile, clip, _rewritten(clip, folder / "take2.avi", range(33, 39), gain=0.9)


@pytest.mark.tracking
def test_another_take_framed_as_the_profile_trains_on_every_frame(enrolled):
    from profiles.enroll_video import read_frames

    profile, _, take2 = enrolled
    pairs = dataset.build_pairs(profile, read_frames(take2), resolution=32, same_clip=False)
    assert len(pairs) == 6 and pairs.skipped == 0 and list(pairs.frames) == list(range(6))
    # every crop has the face (the mask covers much of it), and the render is near the real frame
    assert (pairs.mask.reshape(6, -1).mean(1) > 0.1).all()
    l1 = (np.abs(pairs.render - pairs.target) * pairs.mask).sum() / (3 * pairs.mask.sum())
    assert 0.0 < l1 < 0.2


@pytest.mark.tracking
def test_a_take_with_the_face_elsewhere_in_the_frame_is_refused(enrolled, tmp_path):
    """The defect: the other clip's face was cropped where the profile's face is (background),
    and trained on."""
    from profiles.enroll_video import read_frames

    profile, clip, _ = enrolled
    moved = _rewritten(clip, tmp_path / "moved.avi", range(33, 39), dx=200)
    with pytest.raises(dataset.UnusableFrames, match=r"in (\d) of the \1 frames with a face \(\1 mostly outside "
                                                     r"the part of the frame the profile crops"):
        dataset.build_pairs(profile, read_frames(moved), resolution=32, same_clip=False)


class _Timeline:
    """Pairs of a clip's frames `frames` (only what `held_out` reads)."""

    def __init__(self, frames):
        self.frames = np.asarray(frames, np.int64)

    def __len__(self):
        return len(self.frames)


@pytest.mark.parametrize("n, blocks", [(180, 1), (900, 3), (1800, 4)])
def test_held_out_frames_are_contiguous_blocks_apart_from_the_frames_trained_on(n, blocks):
    """Before (train audit): the default tier was decided on the training pairs themselves (s32:
    "neural" after 68 steps, 0.0327 → 0.0314 on them). Now a tenth of the frames, in blocks of at
    least a second spread over the clip, is never trained on, nor are the frames within 0.25 s of a
    block (neighbouring frames are near copies); the same frames each time."""
    pairs = _Timeline(np.arange(n))
    split = dataset.held_out(pairs, fps=30.0)
    test, train = pairs.frames[split.test], pairs.frames[split.train]
    assert len(test) == pytest.approx(0.1 * n, abs=blocks) and split.frames == tuple(int(f) for f in test)
    runs = np.split(test, np.flatnonzero(np.diff(test) > 1) + 1)
    assert len(runs) == blocks and all(len(r) >= 18 for r in runs)
    assert np.abs(train[:, None] - test[None, :]).min() > 7         # 8 frames (0.25 s) apart at least
    assert len(train) + len(test) + split.gap == n
    again = dataset.held_out(pairs, fps=30.0)
    assert np.array_equal(again.test, split.test) and np.array_equal(again.train, split.train)


def test_held_out_follows_the_frame_numbers_and_gives_up_on_a_short_clip():
    """The blocks are placed by source frame number (frames without a face are missing from the
    pairs); a clip too short to hold MIN_HELD_OUT frames out trains on all of them."""
    frames = np.r_[np.arange(260, 400), np.arange(100, 200)]       # frames 200..259 had no face
    split = dataset.held_out(_Timeline(frames), fps=30.0)
    assert split.frames == tuple(range(268, 292))                 # the 24 in the middle of the 240
    assert split.gap == 16 and len(split.train) == 240 - 24 - 16
    short = dataset.held_out(_Timeline(np.arange(40)), fps=30.0)
    assert len(short.test) == 0 and np.array_equal(short.train, np.arange(40)) and short.frames == ()
