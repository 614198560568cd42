"""realtime.swap.fuse: the swap's fuse settings (the face follows the driver's head fully, the
lips the driver's jaw) and the chin that covers the driver's lips."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.face import geometry as G
from realtime.face import topology as T
from realtime.face.state import FaceState
from realtime.mesh.fuse import MAX_HEAD_ANGLE, FuseConfig, Recombiner
from realtime.swap.fuse import JAW_MARGIN, JAW_STRETCH_MAX, cover_driver_lips, swap_fuse_config


def test_the_swapped_face_turns_as_far_as_the_driver(astronaut_profile):
    """The reenactment stops the head at MAX_HEAD_ANGLE (its head layer would tear); the swap has
    no head layer and its face must stay on the driver's head, however far it turns."""
    rot = G.rotation_from_euler(0, 55, 0)
    assert np.degrees(np.linalg.norm(G.rotvec_from_matrix(rot))) > MAX_HEAD_ANGLE
    frame = astronaut_profile.frame()
    swap = Recombiner(astronaut_profile["neutral"], frame, swap_fuse_config(FuseConfig()))
    assert swap.config.mouth_retarget == 0.0      # the jaw that opens is the driver's
    np.testing.assert_allclose(swap.pose(FaceState(rotation=rot)).rotation, rot @ frame.rotation, atol=1e-12)
    reenact = Recombiner(astronaut_profile["neutral"], frame, FuseConfig())
    rel = reenact.pose(FaceState(rotation=rot)).rotation @ frame.rotation.T
    assert np.degrees(np.linalg.norm(G.rotvec_from_matrix(rel))) < MAX_HEAD_ANGLE + 1e-6


def test_the_drivers_own_eyes_look_where_the_driver_looks():
    """The swap draws the driver's iris where the posed iris is (realtime.swap.composite): a
    profile's gaze gain (reenactment's) would turn the driver's own eyes off their look. With
    another source's expression the identity's eyeballs are drawn, and its gain is kept."""
    config = FuseConfig(gaze_gain=1.6, eye_gain=1.2)
    own = swap_fuse_config(config)
    assert own.gaze_gain == 1.0 and own.eye_gain == 1.2
    assert swap_fuse_config(config, own_gaze=False).gaze_gain == 1.6


def _long_faced_driver_opening(neutral: np.ndarray, drop: float) -> np.ndarray:
    """`neutral` with its lower face 30 % longer and its jaw dropped by `drop` (canonical units):
    everything below the upper inner lip moves down, the chin most."""
    d = neutral.copy()
    top = d[list(T.INNER_LIP_UPPER[1:-1]), 1].mean()
    below = d[:, 1] > top
    d[below, 1] = top + 1.3 * (d[below, 1] - top) + drop
    return d


def test_a_dropped_jaw_never_shows_the_drivers_lip_below_the_identitys_chin(astronaut_profile):
    neutral = np.asarray(astronaut_profile["neutral"], np.float64)
    iod = G.interocular(neutral)
    shape = neutral.copy()
    driver = _long_faced_driver_opening(neutral, 0.5 * iod)
    assert driver[list(T.OUTER_LIP), 1].max() > shape[T.CHIN, 1] - JAW_MARGIN * iod   # uncovered
    moved = cover_driver_lips(shape, driver)
    assert moved > 0
    assert shape[T.CHIN, 1] == pytest.approx(driver[list(T.OUTER_LIP), 1].max() + JAW_MARGIN * iod, abs=1e-12)
    upper = neutral[:, 1] <= neutral[list(T.INNER_LIP_UPPER[1:-1]), 1].mean()
    assert upper[list(T.RIGHT_EYE_UPPER + T.LEFT_BROW)].all() and not upper[T.CHIN]
    np.testing.assert_array_equal(shape[upper], neutral[upper])          # the features above stay
    np.testing.assert_array_equal(shape[:, [0, 2]], neutral[:, [0, 2]])  # only lengthened
    assert (shape[:, 1] >= neutral[:, 1]).all()
    # at most JAW_STRETCH_MAX, however far the driver's lips are
    far = neutral.copy()
    moved = cover_driver_lips(far, _long_faced_driver_opening(neutral, 5.0 * iod))
    assert moved == pytest.approx(JAW_STRETCH_MAX * iod)
    # a driver whose lips lie well inside the identity's face changes nothing
    again = neutral.copy()
    assert cover_driver_lips(again, neutral) == 0.0
    np.testing.assert_array_equal(again, neutral)

