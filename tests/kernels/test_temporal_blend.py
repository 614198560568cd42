"""kernels.temporal_blend: the fused smoothing pass equals flow3d → warp → blend composed (the
reference runs on the CPU; the fused pass on every device of the `dev` fixture)."""
from __future__ import annotations

import numpy as np
import pytest

from kernels import flow3d, rasterize, temporal_blend, warp
from kernels.flow3d import DEPTH_EPS
from tests.kernels.test_rasterize import face_mesh


def _composed(gbuf, triangles, face_end, verts_t, verts_prev, depth_prev, render, prev,
              strength, inv_scale):
    """The rule as separate kernels and array operations (the reference)."""
    flow, visible = flow3d(gbuf, triangles, verts_t, verts_prev, depth_prev, depth_eps=DEPTH_EPS)
    warped = warp(prev, flow)
    face = (gbuf.tri_id >= 0) & (gbuf.tri_id < face_end)
    diff = warped - render
    r = np.abs(diff).mean(axis=2) * np.float32(inv_scale)
    a = (np.float32(strength) * np.exp(-r * r) * (visible & face))[..., None]
    return render + a * diff


@pytest.fixture
def scene():
    s = 64
    verts, tris = face_mesh(size=s)
    rng = np.random.default_rng(3)
    prev_verts = verts.copy()
    prev_gbuf = rasterize(prev_verts, tris, s, s)
    moved = verts.copy()
    moved[:, 0] += 1.7
    moved[:, 1] -= 0.6
    gbuf = rasterize(moved, tris, s, s)
    render = rng.uniform(0, 255, (s, s, 3)).astype(np.float32)
    prev = (render + rng.normal(0, 4.0, render.shape)).astype(np.float32)
    face_end = len(tris) - len(tris) // 4          # the last quarter plays the head layer
    return gbuf, tris, face_end, moved, prev_verts, prev_gbuf.depth, render, prev


def _run(dev, gbuf, tris, face_end, vt, vp, dp, render, prev, *args, **kw):
    """temporal_blend on `dev`'s arrays, the result back on the host."""
    p = dev.put
    return dev.get(temporal_blend(p(gbuf), p(tris), face_end, p(vt), p(vp), p(dp), p(render), p(prev),
                                  *args, **kw))


def test_fused_pass_equals_the_composed_kernels(scene, dev):
    gbuf, tris, face_end, vt, vp, dp, render, prev = scene
    out = _run(dev, gbuf, tris, face_end, vt, vp, dp, render, prev, 0.6, 0.1)
    ref = _composed(gbuf, tris, face_end, vt, vp, dp, render, prev, 0.6, 0.1)
    face = (gbuf.tri_id >= 0) & (gbuf.tri_id < face_end)
    assert np.abs(out - ref).max() < 1e-3
    assert np.array_equal(out[~face], render[~face])          # only the face is blended
    assert np.abs(out - render)[face].max() > 1.0              # and it was


def test_box_limits_the_pass_and_strength_zero_is_identity(scene, dev):
    gbuf, tris, face_end, vt, vp, dp, render, prev = scene
    out = _run(dev, gbuf, tris, face_end, vt, vp, dp, render, prev, 0.6, 0.1, box=(0, 10, 0, 64))
    assert np.array_equal(out[10:], render[10:])
    full = _run(dev, gbuf, tris, face_end, vt, vp, dp, render, prev, 0.6, 0.1)
    assert np.array_equal(out[:10], full[:10])                 # inside the box: the same pass
    same = _run(dev, gbuf, tris, face_end, vt, vp, dp, render, prev, 0.0, 0.1)
    assert np.array_equal(same, render)


def test_bad_inputs_name_the_argument(scene, dev):
    gbuf, tris, face_end, vt, vp, dp, render, prev = (a if isinstance(a, int) else dev.put(a) for a in scene)
    with pytest.raises(ValueError, match="prev"):
        temporal_blend(gbuf, tris, face_end, vt, vp, dp, render, prev[:10], 0.6, 0.1)
    with pytest.raises(TypeError, match="verts_t"):
        temporal_blend(gbuf, tris, face_end, vt.astype(np.float64), vp, dp, render, prev, 0.6, 0.1)
    with pytest.raises(ValueError, match="out must not be prev"):
        temporal_blend(gbuf, tris, face_end, vt, vp, dp, render, prev, 0.6, 0.1, out=prev)
