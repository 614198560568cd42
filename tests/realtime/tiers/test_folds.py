"""realtime.tiers.folds: the smile folds the warp tier shades onto the photo."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.face.state import FaceState
from realtime.image.render import RenderStage
from realtime.io.performance import Blendshapes
from realtime.mesh import rig as R
from realtime.mesh.fuse import Recombiner
from realtime.tiers.registry import GenerateStage, make_generator


@pytest.fixture(scope="module")
def smile_setup(astronaut_profile):
    """The astronaut's rig, a posed smiling mesh rendered, and the smiling expression."""
    rig = R.build(astronaut_profile)
    rec = Recombiner(astronaut_profile["neutral"], astronaut_profile.frame())
    smile = Blendshapes(astronaut_profile["neutral"].astype(np.float64))({"smile": 1.6})
    state = FaceState(expression=smile)
    return rig, rec, state


def _render(profile, rig, rec, mesh_state, state, **options):
    """The warp tier's crop of the mesh posed by `mesh_state`, drawn for a frame whose face state
    is `state` (the folds read the smile from the state, the pixels' places from the mesh)."""
    f = Frame(index=0, t_capture=0.0, state=state)
    f.vertices = rig.pose(rec(mesh_state), rec.pose(mesh_state))
    RenderStage(rig)(f)
    GenerateStage(make_generator("warp", profile, rig, **options))(f)
    return f


def _lab(img):
    return cv2.cvtColor(np.clip(img, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def test_a_smile_darkens_the_folds_beside_the_nose_and_mouth_only(astronaut_profile, smile_setup):
    """The same smiling mesh, drawn for a smiling face and for a face at rest: the smile's crop
    is darker in a band from the nose wing past the mouth corner (on the cheek point beside the
    mouth, 216/436), keeps its a*, b* there, and is the same pixel for pixel elsewhere (the
    forehead, the nose, the eyes' and the lips' middles)."""
    rig, rec, state = smile_setup
    rest = _render(astronaut_profile, rig, rec, state, FaceState.neutral())
    smiling = _render(astronaut_profile, rig, rec, state, state)
    before, after = _lab(rest.render), _lab(smiling.render)
    dl = after[..., 0] - before[..., 0]
    v = smiling.vertices
    for cheek in (216, 436):
        x, y = np.round(v[cheek, :2]).astype(int)
        assert dl[y - 1: y + 2, x - 1: x + 2].mean() < -2.0, cheek      # a visible shade, L* units
        assert np.abs(after[y, x, 1:] - before[y, x, 1:]).max() < 1.0    # its chroma kept
    assert dl.min() > -8.0                                                # a shade, not a stripe
    for point in (10, 151, 4, 1, 468, 473, 13, 14):   # forehead, nose tip, irises, lips' middle
        x, y = np.round(v[point, :2]).astype(int)
        np.testing.assert_array_equal(smiling.render[y, x], rest.render[y, x])
    changed = np.abs(dl) > 0.5
    assert 0.002 < changed.mean() < 0.05


def test_no_smile_leaves_the_render_bit_for_bit(astronaut_profile, smile_setup):
    """A face that does not smile (at rest, or talking: the corners barely rise) draws no fold:
    the crop is the one drawn without the layer, bit for bit. So is a smiling one in swap's
    generator (folds=False): there the driver's own face shows its shading; reenact's draws it."""
    rig, rec, state = smile_setup
    talk = FaceState(expression=Blendshapes(astronaut_profile["neutral"].astype(np.float64))(
        {"smile": 0.25, "jaw_open": 0.45}))
    for mesh_state in (FaceState.neutral(), talk, state):
        shown = _render(astronaut_profile, rig, rec, mesh_state, mesh_state, folds=False).render
        if mesh_state is not state:
            drawn = _render(astronaut_profile, rig, rec, mesh_state, mesh_state).render
            np.testing.assert_array_equal(drawn, shown)
        else:
            np.testing.assert_array_equal(shown, _render(astronaut_profile, rig, rec, state,
                                                         FaceState.neutral()).render)
            assert not np.array_equal(shown, _render(astronaut_profile, rig, rec, state, state).render)


def test_smile_of_reads_the_mouth_corners_rise():
    from realtime.tiers.folds import SMILE_LIFT, smile_of

    def corners(lift):
        e = np.zeros((478, 3))
        e[[61, 291], 1] = -lift            # y down: a rise is negative
        return e

    assert smile_of(None) == 0.0
    assert smile_of(corners(0.0)) == 0.0
    assert smile_of(corners(SMILE_LIFT[0])) == 0.0
    assert 0.0 < smile_of(corners(sum(SMILE_LIFT) / 2)) < 1.0
    assert smile_of(corners(SMILE_LIFT[1] + 0.05)) == 1.0
    assert smile_of(corners(-0.2)) == 0.0  # corners pulled down
    assert smile_of(corners(np.nan)) == 0.0
