"""The swap's track stage: the largest face, followed by a one-face tracker that is moved onto a
larger face when one shows (realtime.swap.track)."""
import cv2
import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.swap.track import LargestFaceTrackStage, landmark_box, larger_face


def face_at(x, y, size):
    """Fake (478, 3) landmarks filling the box (x, y, size, size)."""
    lm = np.zeros((478, 3), np.float32)
    lm[:, :2] = np.random.default_rng(0).uniform(0.0, 1.0, size=(478, 2)) * size + (x, y)
    lm[0, :2], lm[1, :2] = (x, y), (x + size, y + size)
    return lm


def test_larger_face_needs_the_margin_and_the_followed_face_seen():
    followed = face_at(100, 100, 100)
    own = (110.0, 120.0, 80.0, 80.0)                       # its detector box: centre inside
    assert landmark_box(followed) == pytest.approx((100.0, 100.0, 100.0, 100.0))
    assert larger_face([own], followed) is None                               # alone
    assert larger_face([own, (300.0, 100.0, 85.0, 85.0)], followed) is None   # 1.13x: not enough
    big = (300.0, 50.0, 120.0, 120.0)
    assert larger_face([own, big], followed) == big
    assert larger_face([big], followed) is None          # the followed face missed: no comparison
    assert larger_face([own, big], followed, margin=2.5) is None


class FakeTracker:
    """Follows whichever face it was locked onto (the first one at the start)."""

    def __init__(self, faces):
        self.faces, self.current, self.locks = faces, faces[0], []

    def __call__(self, rgb):
        return self.current

    def lock_on(self, rgb, box):
        self.locks.append(box)
        self.current = self.faces[1]
        return self.current


def test_the_stage_moves_onto_a_larger_face_only_when_it_looks():
    small, big = face_at(10, 10, 50), face_at(200, 200, 150)
    boxes = [(15.0, 15.0, 40.0, 40.0)]
    looks = []

    def detector(rgb):
        looks.append(len(looks))
        return list(boxes)

    tracker = FakeTracker([small, big])
    stage = LargestFaceTrackStage(tracker, detector, check_every=5)
    image = np.zeros((8, 8, 3), np.uint8)
    out = []
    for i in range(12):
        if i == 2:
            boxes.append((210.0, 210.0, 130.0, 130.0))   # a larger face walks in
        f = Frame(index=i, t_capture=0.0, image=image)
        stage(f)
        out.append(f.landmarks)
    assert len(looks) == 3                 # frames 0, 5 and 10: on finding the face, then every 5
    assert all(o is small for o in out[:5]) and all(o is big for o in out[5:])
    assert tracker.locks == [(210.0, 210.0, 130.0, 130.0)] and stage.switches == 1
    tracked = Frame(index=12, t_capture=0.0, image=image, landmarks=small, tracked=True)
    stage(tracked)                              # a tracked clip's frame keeps its own landmarks
    assert tracked.landmarks is small and len(looks) == 3


def test_a_lost_face_is_looked_for_again_when_found():
    face = face_at(10, 10, 50)
    seen = [face, None, face]
    looks = []
    stage = LargestFaceTrackStage(lambda rgb: seen.pop(0), lambda rgb: looks.append(1) or [], check_every=30)
    for i in range(3):
        stage(Frame(index=i, t_capture=0.0, image=np.zeros((8, 8, 3), np.uint8)))
    assert len(looks) == 2


@pytest.mark.tracking
def test_mediapipe_follows_the_larger_face_that_walks_in(astronaut_rgb):
    """A real one-face tracker on a smaller face; a larger one appears beside it: from the next
    look on, the landmarks are the larger face's."""
    head = astronaut_rgb[0:280, 100:360]
    one = np.full((400, 700, 3), 100, np.uint8)
    one[60:340, 410:690] = cv2.resize(head, (280, 280))
    two = one.copy()
    two[0:400, 0:400] = cv2.resize(head, (400, 400))
    stage = LargestFaceTrackStage(check_every=10)
    centres = []
    for i, img in enumerate([one] * 3 + [two] * 15):
        f = Frame(index=i, t_capture=0.0, image=img)
        stage(f)
        assert f.landmarks is not None
        centres.append(float(f.landmarks[:, 0].mean()))
    stage.close()
    assert all(c > 400 for c in centres[:10])       # the small face (right) until the look at 10
    assert all(c < 400 for c in centres[10:])       # then the large one (left), and it stays
    assert stage.switches == 1
