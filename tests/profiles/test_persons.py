"""One person per profile (profiles/persons.py): a clip cut into shots, each shot's person
told by dlib's face descriptors (here a stand-in encoder, or the real one where dlib and
../shared/eval are there) or, without dlib, by the skull's shape; the frames of anyone else are
left out as ``another_person`` with a note.

Before (stop 67): a clip of s18 cut to s32 enrolled both women into one atlas (frame 344, the
other woman, was a keyframe); most of her frames were left out only by accident, as "blurred"
and "face covered".
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from profiles import persons
from profiles.clip import ClipTrack
from profiles.keyframes import REASONS, VideoEnrollConfig, _reject
from profiles.persons import (
    check_people,
    descriptor_box,
    group_shots,
    sample_rows,
    split_shots,
)
from realtime.face import topology
from realtime.face.estimate import rigid_distance
from realtime.face.identity import IdentityEncoder

ROOT = Path(__file__).resolve().parents[2]
EVAL = ROOT.parent / "shared" / "eval"


def _other_person(landmarks: np.ndarray) -> np.ndarray:
    """Someone else's face: the astronaut's with a higher forehead (its skull points above
    their middle raised by 0.12 interoculars: more than one person ever varies)."""
    lm = np.array(landmarks, np.float64)
    rigid = list(topology.RIGID)
    c = lm[rigid, :2].mean(0)
    upper = [i for i in rigid if lm[i, 1] < c[1]]
    lm[upper, 1] -= 0.12 * (lm[263, 0] - lm[33, 0])
    return lm


def _track(shots, fps: float = 30.0) -> ClipTrack:
    """A track of consecutive shots, each (frames, landmarks, (dx, dy) offset): the face
    still but for a little noise, moved by the offset (a cut between shots that differ)."""
    rng = np.random.default_rng(3)
    lms = []
    for n, base, (dx, dy) in shots:
        lm = np.repeat(np.asarray(base, np.float32)[None], n, 0) + rng.normal(0, 0.1, (n, 478, 3)).astype(np.float32)
        lm[:, :, 0] += dx
        lm[:, :, 1] += dy
        lms.append(lm)
    lms = np.concatenate(lms)
    f = len(lms)
    return ClipTrack(frames=np.arange(f), landmarks=lms, query=np.zeros((f, 4)), roll=np.zeros(f),
                     sharpness=np.full(f, 100.0) + rng.normal(0, 5, f),
                     colour=np.tile([60.0, 15.0, 15.0], (f, 1)) + rng.normal(0, 0.3, (f, 3)),
                     faces=np.full(f, -1, np.int8), size=(512, 512), fps=fps)


class FakeEncoder:
    """Descriptors by who is in the frame: the frame's grey level is the person's number."""

    def __init__(self):
        self.calls = 0

    def descriptor_in(self, rgb, box):
        self.calls += 1
        who = int(rgb[0, 0, 0])
        return np.eye(128)[who] * 0.5 + 0.02 * (self.calls % 3) * np.eye(128)[100]


def _frames_of(people: list[int]):
    """A stand-in for read_frames: frame i is grey level people[i]."""
    def read(path, start=0, stop=None):
        for i in range(start, len(people) if stop is None else min(stop, len(people))):
            yield i, np.full((8, 8, 3), people[i], np.uint8)
    return read


def _check(monkeypatch, track, people, encoder=None, **kw):
    monkeypatch.setattr(persons, "read_frames", _frames_of(people))
    enc = encoder or FakeEncoder()
    return check_people(Path("clip.mp4"), track, encoder_factory=lambda: enc, **kw), enc


# ------------------------------------------------------------------------------- shots

def test_shots_are_cut_where_the_face_jumps_rescales_or_comes_back(astronaut_landmarks):
    lm = np.array(astronaut_landmarks, np.float32)
    iod = float(np.linalg.norm(lm[263, :2] - lm[33, :2]))
    t = _track([(20, lm, (0, 0)), (20, lm, (0.5 * iod, 0)), (20, lm, (0.5 * iod, 0))])
    t.landmarks[40:60, :, :2] = (t.landmarks[40:60, :, :2] - 256) * 1.2 + 256   # a zoom at 40
    t.landmarks[45:61] = np.nan                     # 16 frames (over 0.5 s) without a face
    t.landmarks[12:16] = np.nan                     # 4 frames: the same shot
    shot = split_shots(t.landmarks, t.frames, t.fps)
    assert (shot[12:16] == -1).all() and (shot[45:61] == -1).all()
    assert (shot[:12] == 0).all() and (shot[16:20] == 0).all()
    assert (shot[20:40] == 1).all() and (shot[40:45] == 2).all()
    # a face that drifts slowly (0.05 interocular a frame) is one shot
    drift = _track([(30, lm, (0, 0))])
    drift.landmarks[:, :, 0] += (0.05 * iod * np.arange(30))[:, None]
    assert (split_shots(drift.landmarks, drift.frames, drift.fps) == 0).all()


def test_absence_is_measured_in_time_not_frames(astronaut_landmarks):
    lm = np.array(astronaut_landmarks, np.float32)
    t = _track([(30, lm, (0, 0))], fps=10.0)
    t.landmarks[10:15] = np.nan                    # 0.6 s at 10 fps: a cut
    assert split_shots(t.landmarks, t.frames, t.fps).max() == 1
    t.fps = 30.0                                   # 0.2 s: none
    assert split_shots(t.landmarks, t.frames, t.fps).max() == 0


def test_samples_are_spread_over_the_shot_and_sharp():
    rows = np.arange(10, 40)
    sharp = np.zeros(50)
    sharp[[12, 25, 38]] = 9.0
    sharp[[14]] = 20.0                             # sharpest, but turned away
    yaw = np.zeros(50)
    yaw[14] = 0.3
    assert sample_rows(rows, sharp, yaw, 3) == [12, 25, 38]
    assert sample_rows(np.array([5]), sharp, yaw, 3) == [5]
    assert sample_rows(np.array([], np.int64), sharp, yaw, 3) == []


def test_shots_group_by_average_linkage():
    d = np.array([[0.0, 0.6, 0.1, 0.55],
                  [0.6, 0.0, 0.62, 0.2],
                  [0.1, 0.62, 0.0, 0.58],
                  [0.55, 0.2, 0.58, 0.0]])
    assert group_shots(d, 0.38).tolist() == [0, 1, 0, 1]
    assert group_shots(d, 0.7).tolist() == [0, 0, 0, 0]
    nan = d.copy()
    nan[3, :] = nan[:, 3] = np.nan                 # not judged: its own group
    assert group_shots(nan, 0.38).tolist() == [0, 1, 0, 2]


# ------------------------------------------------------------------------------- the check

def test_one_shot_costs_nothing(astronaut_landmarks, monkeypatch):
    t = _track([(40, astronaut_landmarks, (0, 0))])

    def no_encoder():
        raise AssertionError("a clip of one shot needs no encoder")

    check = check_people(Path("c.mp4"), t, encoder_factory=no_encoder)
    assert check.shots == 1 and check.method == "none" and not check.others.any() and not check.notes


def test_a_second_person_after_a_cut_is_left_out(astronaut_landmarks, monkeypatch):
    lm = astronaut_landmarks
    t = _track([(60, lm, (0, 0)), (40, lm, (60, 20))])
    check, enc = _check(monkeypatch, t, [1] * 60 + [2] * 40)
    assert check.method == "descriptor" and check.shots == 2 and enc.calls == 6
    assert not check.others[:59].any() and check.others[59:].all()   # (and the frame before)
    (note,) = check.notes
    assert note == ("note: clip.mp4 shows another person besides the one enrolled, in frames 60-99 "
                    "(2.0-3.3 s): those frames are left out (a profile is one person); to enroll that "
                    "person instead, use --frames 60:100")


def test_the_same_person_after_a_cut_stays(astronaut_landmarks, monkeypatch):
    lm = astronaut_landmarks
    t = _track([(60, lm, (0, 0)), (40, lm, (60, 20))])
    check, _ = _check(monkeypatch, t, [1] * 100)
    assert check.shots == 2 and not check.others.any() and not check.notes


def test_a_b_a_keeps_both_shots_of_a(astronaut_landmarks, monkeypatch):
    lm = astronaut_landmarks
    t = _track([(40, lm, (0, 0)), (40, lm, (60, 20)), (40, lm, (0, 0))])
    check, _ = _check(monkeypatch, t, [1] * 40 + [2] * 40 + [1] * 40)
    assert check.others.tolist() == [False] * 39 + [True] * 42 + [False] * 39
    assert "in frames 40-79 (1.3-2.7 s)" in check.notes[0]


def test_the_person_seen_longest_wins_and_the_note_says_so(astronaut_landmarks, monkeypatch):
    lm = astronaut_landmarks
    t = _track([(30, lm, (0, 0)), (70, lm, (60, 20))])
    check, _ = _check(monkeypatch, t, [1] * 30 + [2] * 70)
    assert check.others[:31].all() and not check.others[31:].any()
    assert check.notes[0] == ("note: clip.mp4 shows more than one person, and the profile is NOT of the one "
                              "it starts with: it is of the one seen longest, in frames 30-99 (1.0-3.3 s); "
                              "another person in frames 0-29 (0.0-1.0 s) is left out (a profile is one "
                              "person); to enroll that person instead, use --frames 0:30")


def test_a_frame_or_two_at_a_cut_is_not_judged(astronaut_landmarks, monkeypatch):
    """A tracker's mis-fit for a frame after a cut (a shot of its own) gives a descriptor of
    half a face: between two shots of the person it is not taken for someone else (the jump
    rule rejects it); next to someone else's shot it is theirs (it shows the next shot)."""
    lm = astronaut_landmarks
    t = _track([(40, lm, (0, 0)), (2, lm, (30, 0)), (40, lm, (60, 20))])
    check, enc = _check(monkeypatch, t, [1] * 40 + [7] * 2 + [1] * 40)
    assert check.shots == 3 and not check.others.any() and enc.calls == 6
    check, _ = _check(monkeypatch, t, [1] * 40 + [7] * 2 + [2] * 40)
    assert check.others.tolist() == [False] * 39 + [True] * 43
    assert "in frames 40-81 (1.3-2.7 s)" in check.notes[0]


def test_many_shots_get_fewer_descriptors_each(astronaut_landmarks, monkeypatch):
    lm = astronaut_landmarks
    t = _track([(10, lm, (60 * (k % 2), 0)) for k in range(20)])
    check, enc = _check(monkeypatch, t, [1] * 200)
    assert check.shots == 20 and enc.calls == 20 and not check.others.any()


def test_without_dlib_the_skull_shape_decides_and_says_it_is_weaker(astronaut_landmarks, monkeypatch):
    lm = np.array(astronaut_landmarks, np.float64)
    other = _other_person(lm)
    rigid = list(topology.RIGID)
    assert rigid_distance(lm[rigid], other[rigid]) > 0.04
    t = _track([(60, lm, (0, 0)), (40, other, (60, 20)), (30, lm, (0, 0))])
    monkeypatch.setattr(IdentityEncoder, "available", classmethod(lambda cls: False))
    monkeypatch.setattr(IdentityEncoder, "unavailable_reason",
                        classmethod(lambda cls: "dlib is not installed: pip install '.[quality]'"))
    check = check_people(Path("clip.mp4"), t)
    assert check.method == "shape"
    assert check.others.tolist() == [False] * 59 + [True] * 42 + [False] * 29
    assert check.notes[0].startswith("note: clip.mp4 shows another person besides the one enrolled, in "
                                     "frames 60-99")
    assert "judged by the shape of the face alone" in check.notes[1]
    assert "pip install '.[quality]'" in check.notes[1]
    # the same face after a cut: no one left out, the weaker check still said once
    same = check_people(Path("clip.mp4"), _track([(60, lm, (0, 0)), (40, lm, (60, 20))]))
    assert not same.others.any() and len(same.notes) == 1
    # a short shot is not judged by its shape (its median is noise)
    short = check_people(Path("clip.mp4"), _track([(60, lm, (0, 0)), (5, other, (60, 20))]))
    assert not short.others.any()


# ------------------------------------------------------------------------------- rejection

def test_another_persons_frames_are_rejected_and_kept_out_of_the_medians(astronaut_landmarks):
    lm = astronaut_landmarks
    t = _track([(30, lm, (0, 0)), (40, lm, (60, 20))])
    t.sharpness[30:] = 400.0            # she is filmed sharper: the first one read "blurred"
    others = np.zeros(70, bool)
    others[30:] = True
    good, counts = _reject(t, VideoEnrollConfig(), others)
    assert list(counts) == list(REASONS)
    assert counts["another_person"] == 40 and counts["blurred"] == 0
    assert good[:30].sum() >= 28 and not good[30:].any()
    _, before = _reject(t, VideoEnrollConfig())
    assert before["blurred"] == 30 and before["another_person"] == 0


# ------------------------------------------------------------------------------- real faces

def test_the_box_from_the_mesh_gives_the_detectors_descriptor(astronaut_rgb, astronaut_landmarks):
    if not IdentityEncoder.available():
        pytest.skip(IdentityEncoder.unavailable_reason())
    enc = IdentityEncoder(upsample=0)
    by_mesh = enc.descriptor_in(astronaut_rgb, descriptor_box(astronaut_landmarks))
    assert by_mesh.shape == (128,)
    assert np.linalg.norm(by_mesh - enc.descriptor(astronaut_rgb)) < 0.1


def _concat(path: Path, parts) -> Path:
    """An MJPG clip of (clip, first, stop) parts, each 640×360."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 360))
    for clip, first, stop in parts:
        cap = cv2.VideoCapture(str(clip))
        for i in range(stop):
            ok, bgr = cap.read()
            if not ok:
                break
            if i >= first:
                writer.write(cv2.resize(bgr, (640, 360), interpolation=cv2.INTER_AREA))
        cap.release()
    writer.release()
    return path


@pytest.mark.eval
@pytest.mark.tracking
@pytest.mark.skipif(not (EVAL / "targets" / "s32.mp4").is_file(), reason="needs ../shared/eval")
def test_two_women_cut_together_are_told_apart(tmp_path):
    """s18 cut to s32 and back (A B A), and a little of s32 cut to more of s18: the real
    descriptors (0.6 apart between the two, 0.13 within s18) and, without dlib, their skull
    shapes (0.035 apart)."""
    from profiles.clip import track_clip

    s18, s32 = EVAL / "targets" / "s18.mp4", EVAL / "targets" / "s32.mp4"
    aba = track_clip(_concat(tmp_path / "aba.avi", [(s18, 0, 50), (s32, 0, 60), (s18, 50, 100)]),
                     progress=False)
    tracked = np.isfinite(aba.landmarks[:, 0, 0])

    def right(others):               # hers, and not the other's (a frame either side may go)
        return others[51:109][tracked[51:109]].all() and not others[:48].any() and not others[112:].any()

    if IdentityEncoder.available():
        check = check_people(tmp_path / "aba.avi", aba)
        assert check.method == "descriptor" and check.shots == 3 and right(check.others)
    shape = check_people(tmp_path / "aba.avi", aba, encoder_factory=lambda: None)
    assert shape.method == "shape" and right(shape.others)
    if IdentityEncoder.available():
        rev = track_clip(_concat(tmp_path / "rev.avi", [(s32, 0, 30), (s18, 0, 70)]), progress=False)
        check = check_people(tmp_path / "rev.avi", rev)
        assert check.others[:29][np.isfinite(rev.landmarks[:29, 0, 0])].all()
        assert not check.others[32:].any()
        assert "NOT of the one it starts with" in check.notes[0]


@pytest.mark.tracking
def test_enrollment_leaves_the_other_person_out_of_the_atlas(tmp_path, monkeypatch, capsys):
    """The check is wired into enrollment: the second shot's frames are counted as
    another_person in the profile's settings and none of them is a keyframe."""
    import skimage.data

    from profiles.enroll_video import build_video_profile

    face = cv2.resize(skimage.data.astronaut()[20:320, 90:390], (240, 240), interpolation=cv2.INTER_AREA)
    path = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (400, 320))
    for t in range(60):
        canvas = np.full((320, 400, 3), 128, np.uint8)
        x = 10 + t % 3 if t < 36 else 150 + t % 3        # a cut at frame 36
        canvas[40:280, x:x + 240] = face
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    writer.release()

    class ByPlace:                                      # whoever stands right is someone else
        def descriptor_in(self, rgb, box):
            return np.eye(128)[1 if box[0] > 120 else 0]

    monkeypatch.setattr(persons, "_dlib_encoder", ByPlace)
    profile = build_video_profile(path, "cut", progress=False)
    atlas = profile.settings["atlas"]
    assert atlas["rejected"]["another_person"] >= 20
    assert (profile.arrays["atlas_frames"] < 36).all()
    assert atlas["other_people"] == [[37, 59]]          # what `train` leaves out
    assert "shows another person besides the one enrolled, in frames 37-59" in capsys.readouterr().err


def test_spans_run_across_frames_without_a_face():
    from profiles.persons import spans_of

    mask = np.array([0, 1, 1, 0, 1, 1, 1, 0], bool)
    tracked = np.array([1, 1, 1, 1, 1, 0, 1, 1], bool)
    assert spans_of(np.arange(10, 18), mask, tracked) == [[11, 12], [14, 16]]
    assert spans_of(np.arange(3), np.zeros(3, bool), np.ones(3, bool)) == []


def _average_linkage(d, threshold):
    """Average linkage the plain way: the two groups of least mean pairwise distance merged
    while it is under `threshold` (a NaN in a pair of groups: never merged)."""
    groups = [[i] for i in range(len(d))]
    while len(groups) > 1:
        links = [(float(np.mean(d[np.ix_(a, b)])), i, j) for i, a in enumerate(groups)
                 for j, b in enumerate(groups) if i < j]
        links = [t for t in links if np.isfinite(t[0])]
        if not links or min(links)[0] >= threshold:
            break
        _, i, j = min(links)
        groups[i] = sorted(groups[i] + groups.pop(j))
    label = np.zeros(len(d), np.int64)
    for g, members in enumerate(sorted(groups, key=min)):
        label[members] = g
    return label


def test_group_shots_is_average_linkage_at_any_number_of_shots():
    """The merged groups' distances are updated in place (review: the pairwise means recomputed
    per merge took 8.6 s for 150 shots); the grouping is still average linkage's, NaN shots
    included."""
    rng = np.random.default_rng(7)
    for _ in range(60):
        n = int(rng.integers(2, 12))
        x = rng.normal(size=(n, 3)) * rng.uniform(0.1, 1.0)
        d = np.linalg.norm(x[:, None] - x[None], axis=2)
        if rng.random() < 0.3:
            k = int(rng.integers(n))
            d[k, :] = d[:, k] = np.nan
            d[k, k] = 0.0
        th = float(rng.uniform(0.2, 1.5))
        assert group_shots(d, th).tolist() == _average_linkage(d, th).tolist()
    x = rng.normal(size=(150, 2)) * 0.05
    x[75:] += 1.0
    assert np.bincount(group_shots(np.linalg.norm(x[:, None] - x[None], axis=2), 0.38)).tolist() == [75, 75]
