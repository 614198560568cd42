"""realtime.tiers.folds: the smile folds the warp tier shades onto the photo."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from kernels._dispatch import cuda_available
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


def _render(profile, rig, rec, state, **options):
    """The warp tier's crop of the mesh `rec` poses for `state` (the folds read the smile off
    that mesh)."""
    f = Frame(index=0, t_capture=0.0, state=state)
    f.vertices = rig.pose(rec(state), rec.pose(state))
    RenderStage(rig)(f)
    GenerateStage(make_generator("warp", profile, rig, **options))(f)
    return f


def _lab(img):
    return cv2.cvtColor(np.clip(img, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def test_a_smile_darkens_the_folds_beside_the_nose_and_mouth_only(astronaut_profile, smile_setup):
    """The same smiling mesh, drawn with and without the folds: the folds' crop is darker in a
    band from the nose wing past the mouth corner (on the cheek point beside the mouth, 216/436),
    keeps its a*, b* there, and is the same pixel for pixel elsewhere (the forehead, the nose, the
    eyes' and the lips' middles)."""
    rig, rec, state = smile_setup
    plain = _render(astronaut_profile, rig, rec, state, folds=False)
    smiling = _render(astronaut_profile, rig, rec, state)
    before, after = _lab(plain.render), _lab(smiling.render)
    dl = after[..., 0] - before[..., 0]
    v = smiling.vertices
    for cheek in (216, 436):
        x, y = np.round(v[cheek, :2]).astype(int)
        assert dl[y - 1: y + 2, x - 1: x + 2].mean() < -2.0, cheek      # a visible shade, L* units
        assert np.abs(after[y, x, 1:] - before[y, x, 1:]).max() < 1.0    # its chroma kept
    assert dl.min() > -8.0                                                # a shade, not a stripe
    for point in (10, 151, 4, 1, 468, 473, 13, 14):   # forehead, nose tip, irises, lips' middle
        x, y = np.round(v[point, :2]).astype(int)
        np.testing.assert_array_equal(smiling.render[y, x], plain.render[y, x])
    changed = np.abs(dl) > 0.5
    assert 0.002 < changed.mean() < 0.05


def test_no_smile_leaves_the_render_bit_for_bit(astronaut_profile, smile_setup):
    """A face that does not smile (at rest, or talking: the corners barely rise) draws no fold:
    the crop is the one drawn without the layer, bit for bit."""
    rig, rec, state = smile_setup
    talk = FaceState(expression=Blendshapes(astronaut_profile["neutral"].astype(np.float64))(
        {"smile": 0.25, "jaw_open": 0.45}))
    for still in (FaceState.neutral(), talk):
        np.testing.assert_array_equal(_render(astronaut_profile, rig, rec, still).render,
                                      _render(astronaut_profile, rig, rec, still, folds=False).render)


def test_the_fold_follows_the_drawn_mouth_not_the_drivers(astronaut_profile, smile_setup):
    """The smile is read off the mesh that is drawn: a driver's smile with the mouth's gain at 0
    (the avatar's mouth kept as the photo's) draws no fold; turned (a head pose), the same smile
    draws one, and the drawn expression it reads is the driver's at the mouth corners."""
    from realtime.tiers.folds import _CORNERS, drawn_expression, smile_of

    rig, rec, state = smile_setup
    frozen = Recombiner(astronaut_profile["neutral"], astronaut_profile.frame())
    frozen.set_gain("mouth", 0.0)
    np.testing.assert_array_equal(_render(astronaut_profile, rig, frozen, state).render,
                                  _render(astronaut_profile, rig, frozen, state, folds=False).render)
    turned = FaceState(rotation=R_yaw(0.3), expression=state.expression)
    v = rig.pose(rec(turned), rec.pose(turned))
    drawn = drawn_expression(v, astronaut_profile["neutral"])
    np.testing.assert_allclose(drawn[list(_CORNERS), 1], state.expression[list(_CORNERS), 1], atol=0.01)
    assert smile_of(drawn) == 1.0


def R_yaw(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def test_the_band_has_no_seam(astronaut_profile, smile_setup):
    """The band's weight is continuous across the crop: between adjacent pixels it changes no
    faster than its own Gaussian across the line can (a margin of 25 % for the bump along it),
    facing the camera and turned. (Each segment deciding its own side, or a sharp bend's two
    segments tied at their shared point, cut seams across the band: jumps 1.7x that slope.)"""
    from realtime.face import geometry
    from realtime.tiers.folds import FOLD_WIDTH, _band, fold_lines

    rig, rec, state = smile_setup
    for rotation in (np.eye(3), R_yaw(0.3), R_yaw(-0.3)):
        posed = FaceState(rotation=rotation, expression=state.expression)
        lm = rig.pose(rec(posed), rec.pose(posed))[:478, :2]
        iod = geometry.interocular(lm)
        steepest = 1.0 / (np.sqrt(np.e) * FOLD_WIDTH * iod)
        for line in fold_lines(lm):
            (x0, y0), (x1, y1) = np.floor(line.min(0) - 0.2 * iod), np.ceil(line.max(0) + 0.2 * iod)
            ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            w = _band(np, xs.ravel(), ys.ravel(), line, 2.0 * line.mean(0) - lm[1], iod).reshape(xs.shape)
            assert w.max() > 0.9
            jump = max(np.abs(np.diff(w, axis=0)).max(), np.abs(np.diff(w, axis=1)).max())
            assert jump < 1.25 * steepest, (jump, steepest)


def test_the_band_lies_on_the_cheek_side_and_on_the_face_only(astronaut_profile, smile_setup):
    """Beside the cheek point 216/436, the band is darker FOLD_WIDTH towards the cheek than as
    far towards the nose (it sits FOLD_OFFSET on the cheek's side of the line); and a pixel the
    face does not cover (the G-buffer's tri_id -1) is left as it was."""
    from realtime.face import geometry
    from realtime.tiers.folds import FOLD_WIDTH, FoldLayer, fold_lines

    rig, rec, state = smile_setup
    f = _render(astronaut_profile, rig, rec, state, folds=False)
    lm = f.vertices[:478, :2]
    iod = geometry.interocular(lm)
    shaded = f.render.copy()
    FoldLayer(astronaut_profile["neutral"]).apply(f.gbuf, f.vertices, shaded)
    dl = _lab(shaded)[..., 0] - _lab(f.render)[..., 0]
    for line in fold_lines(lm):
        u = (line[2] - line[1]) / np.linalg.norm(line[2] - line[1])
        normal = np.array([-u[1], u[0]])
        if normal @ (line[2] - lm[1]) < 0:            # away from the nose tip: the cheek
            normal = -normal
        cheek, nose = (np.round(line[2] + k * FOLD_WIDTH * iod * normal).astype(int) for k in (1, -1))
        assert dl[cheek[1], cheek[0]] < dl[nose[1], nose[0]] - 1.0
    gbuf = type(f.gbuf)(tri_id=f.gbuf.tri_id.copy(), bary=f.gbuf.bary, depth=f.gbuf.depth)
    half = int(lm[1, 0])                               # the subject's right half: not covered
    gbuf.tri_id[:, :half] = -1
    partly = f.render.copy()
    FoldLayer(astronaut_profile["neutral"]).apply(gbuf, f.vertices, partly)
    np.testing.assert_allclose(partly[:, :half], f.render[:, :half], atol=1e-4)   # light 1: a round trip
    assert not np.array_equal(partly[:, half:], f.render[:, half:])


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


@pytest.mark.cuda
@pytest.mark.skipif(not cuda_available(), reason="needs cupy and an NVIDIA GPU")
def test_cuda_folds_match_the_cpu(astronaut_profile, smile_setup):
    from realtime.core.context import CpuContext, open_device
    from realtime.tiers.folds import FoldLayer

    rig, rec, state = smile_setup
    f = _render(astronaut_profile, rig, rec, state, folds=False)
    ctx = open_device("cuda")
    with ctx.activate():
        gbuf = type(f.gbuf)(tri_id=ctx.upload(f.gbuf.tri_id), bary=ctx.upload(f.gbuf.bary),
                            depth=ctx.upload(f.gbuf.depth))
        out = ctx.upload(f.render.copy())
        FoldLayer(astronaut_profile["neutral"], ctx).apply(gbuf, f.vertices, out)
        got = ctx.to_host(out)
    ref = f.render.copy()
    FoldLayer(astronaut_profile["neutral"], CpuContext()).apply(f.gbuf, f.vertices, ref)
    assert not np.array_equal(ref, f.render)
    np.testing.assert_allclose(got, ref, atol=1e-3)
