"""Golden tests of `interpolate`."""
from __future__ import annotations

import numpy as np
import pytest

from kernels import GBuffer, interpolate, rasterize

from .test_rasterize import face_mesh


def test_linear_attributes_reproduced(dev):
    v, t = face_mesh(n=150, seed=7, size=128)
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(3, 4))  # 4 channels, each a*x + b*y + c
    attr = (v[:, 0:1] * coef[0] + v[:, 1:2] * coef[1] + coef[2]).astype(np.float32)
    g = rasterize(dev.put(v), dev.put(t), 128, 128)
    out = dev.get(interpolate(g, dev.put(t), dev.put(attr)))
    assert out.shape == (128, 128, 4) and out.dtype == np.float32
    cov = dev.get(g.tri_id) >= 0
    yy, xx = np.mgrid[0:128, 0:128]
    expect = xx[..., None] * coef[0] + yy[..., None] * coef[1] + coef[2]
    np.testing.assert_allclose(out[cov], expect[cov], rtol=0, atol=2e-4)
    assert np.all(out[~cov] == 0)


def test_vertex_pixel_gets_vertex_attribute(dev):
    v = np.array([[2, 2, 0], [12, 2, 0], [4, 13, 0]], np.float32)
    t = np.array([[0, 1, 2]], np.int32)
    attr = np.array([[1.0, -5.0], [2.0, 7.0], [3.0, 0.5]], np.float32)
    g = rasterize(dev.put(v), dev.put(t), 16, 16)
    out = dev.get(interpolate(g, dev.put(t), dev.put(attr)))
    assert dev.get(g.tri_id)[2, 2] == 0  # top-left vertex is owned
    np.testing.assert_allclose(out[2, 2], attr[0], atol=1e-6)


def test_out_and_defensive_ids(dev):
    t = np.array([[0, 1, 2]], np.int32)
    attr = np.array([[1.0], [2.0], [3.0]], np.float32)
    g = GBuffer.empty(4, 4)
    g.tri_id[0, 0] = 0
    g.bary[0, 0] = (0.25, 0.5)
    g.tri_id[1, 1] = 5  # stale id beyond T: treated as empty, not read out of bounds
    out = dev.put(np.full((4, 4, 1), 9, np.float32))
    res = interpolate(dev.put(g), dev.put(t), dev.put(attr), out=out)
    assert res is out
    res = dev.get(res)
    assert res[0, 0, 0] == pytest.approx(0.25 * 1 + 0.25 * 2 + 0.5 * 3)
    assert res[1, 1, 0] == 0 and res[3, 3, 0] == 0


def test_validation_errors():
    g = GBuffer.empty(4, 4)
    t = np.array([[0, 1, 2]], np.int32)
    a = np.zeros((3, 2), np.float32)
    with pytest.raises(TypeError, match="gbuf must be a kernels.GBuffer"):
        interpolate(g.tri_id, t, a)
    with pytest.raises(TypeError, match=r"attributes.*float32.*float64"):
        interpolate(g, t, a.astype(np.float64))
    with pytest.raises(ValueError, match=r"attributes.*\(V, C\).*\(3,\)"):
        interpolate(g, t, a[:, 0].copy())
    with pytest.raises(ValueError, match=r"triangles indices.*\[0, 2\)"):
        interpolate(g, t, a[:2].copy())
    with pytest.raises(ValueError, match=r"out.*\(4, 4, 2\).*\(4, 4, 3\)"):
        interpolate(g, t, a, out=np.zeros((4, 4, 3), np.float32))
    bad = GBuffer(g.tri_id, g.bary[:3].copy(), g.depth)
    with pytest.raises(ValueError, match=r"gbuf.bary.*\(4, 4, 2\).*\(3, 4, 2\)"):
        interpolate(bad, t, a)
