"""Golden tests of `flow3d`: a plane rotating about the z axis, flow known in closed form."""
from __future__ import annotations

import numpy as np
import pytest

from kernels import GBuffer, flow3d, rasterize, warp

H = W = 160
C = np.array([80.0, 80.0])  # rotation centre
HALF = 40  # the plane is the square [C - HALF, C + HALF]^2 at t-1
THETA = np.deg2rad(12.0)


def plane_mesh(x0, y0, x1, y1, n, z_fn):
    xs = np.linspace(x0, x1, n + 1)
    ys = np.linspace(y0, y1, n + 1)
    xx, yy = np.meshgrid(xs, ys)
    v = np.stack([xx.ravel(), yy.ravel(), z_fn(xx.ravel(), yy.ravel())], 1)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    t = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    return v.astype(np.float32), t.astype(np.int32)


def rot(theta):
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def rotating_plane():
    vp, t = plane_mesh(C[0] - HALF, C[1] - HALF, C[0] + HALF, C[1] + HALF, 8, lambda x, y: 10 + 0.05 * x + 0.03 * y)
    vt = vp.copy()
    vt[:, :2] = ((vp[:, :2] - C) @ rot(THETA).T + C).astype(np.float32)
    return vt, vp, t


def prev_position(p):
    """Closed form: where pixel p (at t) was at t-1."""
    return (p - C) @ rot(-THETA).T + C


def pixel_grid():
    yy, xx = np.mgrid[0:H, 0:W]
    return np.stack([xx, yy], -1).astype(np.float64)


def test_rotating_plane_flow_closed_form(dev):
    vt, vp, t = rotating_plane()
    g_t = rasterize(dev.put(vt), dev.put(t), H, W)
    depth_prev = rasterize(dev.put(vp), dev.put(t), H, W).depth
    flow, vis = dev.get(flow3d(g_t, dev.put(t), dev.put(vt), dev.put(vp), depth_prev, depth_eps=1e-3))
    assert flow.dtype == np.float32 and flow.shape == (H, W, 2) and vis.dtype == np.bool_
    cov = dev.get(g_t.tri_id) >= 0
    p = pixel_grid()
    q = prev_position(p)
    expect = q - p
    assert np.abs(expect[cov]).max() > 5  # a real motion
    err = np.abs(flow - expect).max(axis=-1)
    assert err[vis].max() < 1e-3
    assert not vis[~cov].any() and np.all(flow[~vis] == 0)
    # every pixel whose previous position is >= 1 px inside the plane is visible
    interior = cov & np.all(np.abs(q - C) <= HALF - 1, axis=-1)
    assert interior.sum() > 4000
    assert vis[interior].all()


def test_occluder_at_prev_frame_hides_pixels(dev):
    vt, vp, t = rotating_plane()
    # a nearer (smaller z) square in front of part of the plane at t-1 only
    ov, ot = plane_mesh(85, 60, 115, 95, 2, lambda x, y: np.full_like(x, -50.0))
    v_prev_all = np.concatenate([vp, ov])
    t_prev_all = np.concatenate([t, ot + len(vp)])
    depth_prev = rasterize(dev.put(v_prev_all), dev.put(t_prev_all), H, W).depth
    g_t = rasterize(dev.put(vt), dev.put(t), H, W)
    flow, vis = dev.get(flow3d(g_t, dev.put(t), dev.put(vt), dev.put(vp), depth_prev, depth_eps=1e-3))
    cov = dev.get(g_t.tri_id) >= 0
    q = prev_position(pixel_grid())
    in_plane = np.all(np.abs(q - C) <= HALF - 1, axis=-1)
    hidden = (q[..., 0] > 85 + 1) & (q[..., 0] < 115 - 1) & (q[..., 1] > 60 + 1) & (q[..., 1] < 95 - 1)
    clear = (q[..., 0] < 85 - 1) | (q[..., 0] > 115 + 1) | (q[..., 1] < 60 - 1) | (q[..., 1] > 95 + 1)
    assert (cov & hidden).sum() > 300
    assert not vis[cov & hidden].any()
    assert np.all(flow[cov & hidden] == 0)
    assert vis[cov & in_plane & clear].all()


def test_warp_with_flow_aligns_previous_frame(dev):
    vt, vp, t = rotating_plane()
    g_t = rasterize(dev.put(vt), dev.put(t), H, W)
    depth_prev = rasterize(dev.put(vp), dev.put(t), H, W).depth
    flow, vis = flow3d(g_t, dev.put(t), dev.put(vt), dev.put(vp), depth_prev)

    def f(p):  # smooth texture painted on the plane, in its t-1 image coordinates
        return 128 + 60 * np.sin(p[..., 0] / 9.0) * np.cos(p[..., 1] / 7.0)

    p = pixel_grid()
    img_prev = f(p)[..., None].astype(np.float32)
    img_t = f(prev_position(p))[..., None]  # the rotated plane as seen at t
    aligned = dev.get(warp(dev.put(img_prev), flow))
    vis = dev.get(vis)
    assert vis.sum() > 4000
    assert np.abs(aligned - img_t)[vis].max() < 0.5


def test_static_mesh_zero_flow_all_visible(dev):
    vt, vp, t = rotating_plane()
    g = rasterize(dev.put(vp), dev.put(t), H, W)
    flow, vis = dev.get(flow3d(g, dev.put(t), dev.put(vp), dev.put(vp), g.depth, depth_eps=1e-4))
    cov = dev.get(g.tri_id) >= 0
    np.testing.assert_array_equal(vis, cov)
    assert np.all(flow == 0)


def test_out_and_validation():
    vt, vp, t = rotating_plane()
    g = rasterize(vt, t, H, W)
    dp = rasterize(vp, t, H, W).depth
    out = (np.full((H, W, 2), 5, np.float32), np.ones((H, W), bool))
    res = flow3d(g, t, vt, vp, dp, out=out)
    assert res[0] is out[0] and res[1] is out[1]
    assert not out[1][g.tri_id < 0].any()
    with pytest.raises(ValueError, match=r"verts_prev.*\(81, 3\).*\(80, 3\)"):
        flow3d(g, t, vt, vp[:-1].copy(), dp)
    with pytest.raises(ValueError, match=r"depth_prev.*\(160, 160\).*\(160, 159\)"):
        flow3d(g, t, vt, vp, dp[:, 1:].copy())
    with pytest.raises(TypeError, match=r"depth_prev.*float32.*float64"):
        flow3d(g, t, vt, vp, dp.astype(np.float64))
    with pytest.raises(ValueError, match=r"depth_eps must be >= 0.0, got -1.0"):
        flow3d(g, t, vt, vp, dp, depth_eps=-1)
    with pytest.raises(TypeError, match="gbuf_t must be a kernels.GBuffer"):
        flow3d(g.tri_id, t, vt, vp, dp)
    with pytest.raises(TypeError, match=r"out must be a tuple"):
        flow3d(g, t, vt, vp, dp, out=out[0])
    with pytest.raises(TypeError, match=r"out\[1\].*bool.*uint8"):
        flow3d(g, t, vt, vp, dp, out=(out[0], out[1].astype(np.uint8)))
    with pytest.raises(ValueError, match=r"gbuf_t.depth.*\(160, 160\).*\(3, 3\)"):
        flow3d(GBuffer(g.tri_id, g.bary, np.zeros((3, 3), np.float32)), t, vt, vp, dp)
