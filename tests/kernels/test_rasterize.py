"""Golden tests of `rasterize` against an independent exact-rational reference."""
from __future__ import annotations

import math
from fractions import Fraction

import numba
import numpy as np
import pytest
from scipy.spatial import ConvexHull, Delaunay

from kernels import GBuffer, interpolate, rasterize
from kernels.rasterize import MAX_COORD_PX

# ---------------------------------------------------------------------------------------------
# reference: exact rational point-in-triangle with the top-left rule stated geometrically
# ---------------------------------------------------------------------------------------------


def _cross(ax, ay, bx, by, px, py):
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


def _edge_owns(a, b, third) -> bool:
    """Does edge a-b own pixel centres lying on it? Top edge: horizontal with the triangle below
    it (y grows downwards). Left edge: not horizontal, the triangle lies on its +x side."""
    (ax, ay), (bx, by), (cx, cy) = a, b, third
    if ay == by:
        return cy > ay
    # x of the edge's line at the third vertex's height
    x_line = ax + (bx - ax) * (cy - ay) / (by - ay)
    return cx > x_line


def ref_coverage(tri, height, width):
    """Set of pixel centres (x, y) covered by triangle `tri` (3 (x, y) pairs) under the top-left
    rule, computed in exact rational arithmetic. Degenerate triangles cover nothing."""
    p = [(Fraction(float(x)), Fraction(float(y))) for x, y in tri]
    area = _cross(*p[0], *p[1], *p[2])
    if area == 0:
        return set()
    edges = [(p[0], p[1], p[2]), (p[1], p[2], p[0]), (p[2], p[0], p[1])]
    owns = [_edge_owns(a, b, c) for a, b, c in edges]
    xs = [q[0] for q in p]
    ys = [q[1] for q in p]
    out = set()
    for y in range(max(0, math.floor(min(ys))), min(height - 1, math.ceil(max(ys))) + 1):
        for x in range(max(0, math.floor(min(xs))), min(width - 1, math.ceil(max(xs))) + 1):
            inside = True
            for (a, b, _), own in zip(edges, owns):
                s = _cross(*a, *b, x, y) * (1 if area > 0 else -1)  # > 0 on the interior side
                if s < 0 or (s == 0 and not own):
                    inside = False
                    break
            if inside:
                out.add((x, y))
    return out


def covered_set(g: GBuffer, tri_index=None):
    m = g.tri_id >= 0 if tri_index is None else g.tri_id == tri_index
    ys, xs = np.nonzero(m)
    return set(zip(xs.tolist(), ys.tolist()))


def one(vertices_xy, z=0.0):
    v = np.asarray([[x, y, z] for x, y in vertices_xy], np.float32)
    return v, np.array([[0, 1, 2]], np.int32)


def coverage_count(dev, vertices, triangles, h, w):
    """How many times each pixel is drawn when every triangle is rasterized on its own."""
    count = np.zeros((h, w), np.int32)
    for t in range(len(triangles)):
        g = dev.get(rasterize(dev.put(vertices), dev.put(triangles[t : t + 1]), h, w))
        count += g.tri_id >= 0
    return count


def face_mesh(n=478, seed=0, size=256):
    """Delaunay of random points in an ellipse covering ~60% of a size² image, z a bump."""
    rng = np.random.default_rng(seed)
    a, b = 0.39 * size, 0.49 * size
    r = np.sqrt(rng.random(n))
    th = rng.random(n) * 2 * np.pi
    x = size / 2 + a * r * np.cos(th)
    y = size / 2 + b * r * np.sin(th)
    z = -100 * np.sqrt(np.clip(1 - r**2, 0, 1))
    v = np.stack([x, y, z], 1).astype(np.float32)
    return v, Delaunay(v[:, :2]).simplices.astype(np.int32)


# ---------------------------------------------------------------------------------------------
# coverage
# ---------------------------------------------------------------------------------------------


def test_single_triangle_matches_exact_interior(dev):
    # dyadic coordinates (exact in float32 and at 1/256 px) with no pixel centre on an edge
    tri = [(2.25, 1.75), (17.5, 5.125), (6.0625, 14.875)]
    ref = ref_coverage(tri, 20, 20)
    # the reference set here is the plain strict interior: check that no centre is on an edge
    p = [(Fraction(x), Fraction(y)) for x, y in tri]
    for x, y in ref:
        for a, b in ((p[0], p[1]), (p[1], p[2]), (p[2], p[0])):
            assert _cross(*a, *b, x, y) != 0
    v, t = one(tri)
    g = dev.get(rasterize(dev.put(v), dev.put(t), 20, 20))
    assert covered_set(g) == ref
    assert len(ref) == (g.tri_id == 0).sum() > 50
    assert np.all(g.depth[g.tri_id < 0] == np.inf)
    assert np.all(g.bary[g.tri_id < 0] == 0)


@pytest.mark.parametrize("winding", [0, 1])
def test_top_left_rule_integer_right_triangle(dev, winding):
    # top edge y=0 and left edge x=0 own their centres; the hypotenuse x+y=4 does not
    tri = [(0, 0), (4, 0), (0, 4)]
    if winding:
        tri = tri[::-1]
    v, t = one(tri)
    g = dev.get(rasterize(dev.put(v), dev.put(t), 8, 8))
    expected = {(x, y) for x in range(4) for y in range(4) if x + y < 4}
    assert covered_set(g) == expected == ref_coverage(tri, 8, 8)


def test_random_triangles_match_reference(dev):
    rng = np.random.default_rng(1)
    h, w = 24, 28
    for _ in range(60):
        # quarter-pixel grid coordinates: many centres fall exactly on edges and vertices
        tri = (rng.integers(-12, 4 * 30, size=(3, 2)) / 4.0).tolist()
        v, t = one(tri)
        g = dev.get(rasterize(dev.put(v), dev.put(t), h, w))
        assert covered_set(g) == ref_coverage(tri, h, w), tri


@pytest.mark.parametrize("flip", [False, True])
def test_shared_diagonal_edge_through_centres(dev, flip):
    # square [2,12]^2 split along the diagonal (2,2)-(12,12), which passes through 11 centres
    v = np.array([[2, 2, 0], [12, 2, 0], [12, 12, 0], [2, 12, 0]], np.float32)
    t = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    if flip:  # opposite windings must not change anything
        t = t[:, ::-1].copy()
    count = coverage_count(dev, v, t, 16, 16)
    expected = np.zeros((16, 16), np.int32)
    expected[2:12, 2:12] = 1  # top and left sides of the square owned, bottom and right not
    np.testing.assert_array_equal(count, expected)
    for k in range(2, 12):
        assert count[k, k] == 1  # centres on the shared edge drawn exactly once
    # the same in a single call: union covered, every pixel once
    g = dev.get(rasterize(dev.put(v), dev.put(t), 16, 16))
    np.testing.assert_array_equal(g.tri_id >= 0, expected.astype(bool))


def test_shared_horizontal_edge(dev):
    # two triangles above and below the horizontal edge y = 7 from x=2 to x=12
    v = np.array([[2, 7, 0], [12, 7, 0], [7, 1, 0], [7, 13, 0]], np.float32)
    t = np.array([[0, 1, 2], [1, 0, 3]], np.int32)
    count = coverage_count(dev, v, t, 16, 16)
    assert count.max() == 1
    for x in range(3, 12):  # centres strictly inside the shared edge
        assert count[7, x] == 1
    # the owner is the triangle below (the edge is its top edge)
    g = dev.get(rasterize(dev.put(v), dev.put(t), 16, 16))
    assert np.all(g.tri_id[7, 3:12] == 1)
    ref = ref_coverage(v[t[0], :2].tolist(), 16, 16) | ref_coverage(v[t[1], :2].tolist(), 16, 16)
    assert covered_set(g) == ref


def test_fan_around_a_pixel_centre_draws_it_once(dev):
    c = (10.0, 10.0)
    ring = [(10 + 5 * np.cos(a), 10 + 5 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 7)[:-1]]
    ring = [(round(x * 4) / 4, round(y * 4) / 4) for x, y in ring]  # dyadic
    v = np.array([[*c, 0]] + [[x, y, 0] for x, y in ring], np.float32)
    t = np.array([[0, 1 + i, 1 + (i + 1) % 6] for i in range(6)], np.int32)
    count = coverage_count(dev, v, t, 20, 20)
    assert count[10, 10] == 1
    assert count.max() == 1


def test_mesh_every_pixel_once(dev):
    # random half-pixel-grid points: lots of centres on shared edges and shared vertices
    rng = np.random.default_rng(3)
    pts = np.unique(rng.integers(0, 2 * 30, size=(40, 2)), axis=0) / 2.0
    tri = Delaunay(pts).simplices.astype(np.int32)
    v = np.concatenate([pts, np.zeros((len(pts), 1))], 1).astype(np.float32)
    count = coverage_count(dev, v, tri, 32, 32)
    assert count.max() == 1
    ref = np.zeros((32, 32), np.int32)
    for tr in tri:
        for x, y in ref_coverage(v[tr, :2].tolist(), 32, 32):
            ref[y, x] += 1
    np.testing.assert_array_equal(count, ref)
    # every centre strictly inside the convex hull is covered
    yy, xx = np.mgrid[0:32, 0:32]
    q = np.stack([xx.ravel(), yy.ravel()], 1).astype(float)
    eq = ConvexHull(pts).equations  # n . p + d <= 0 inside
    strict = np.all(q @ eq[:, :2].T + eq[:, 2] < -1e-9, axis=1)
    assert strict.sum() > 300
    assert np.all(count.ravel()[strict] == 1)


# ---------------------------------------------------------------------------------------------
# depth, barycentrics
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("near_first", [True, False])
def test_nearer_surface_wins_regardless_of_order(dev, near_first):
    far = [[2, 2, 5.0], [18, 2, 5.0], [2, 18, 5.0]]
    near = [[6, 4, 1.0], [19, 10, 1.0], [6, 19, 1.0]]
    v = np.array(near + far if near_first else far + near, np.float32)
    t = np.array([[0, 1, 2], [3, 4, 5]], np.int32)
    g = dev.get(rasterize(dev.put(v), dev.put(t), 20, 20))
    near_id = 0 if near_first else 1
    near_px = ref_coverage([p[:2] for p in near], 20, 20)
    far_px = ref_coverage([p[:2] for p in far], 20, 20)
    assert near_px & far_px  # they do overlap
    for x, y in near_px:
        assert g.tri_id[y, x] == near_id and g.depth[y, x] == 1.0
    for x, y in far_px - near_px:
        assert g.tri_id[y, x] == 1 - near_id and g.depth[y, x] == 5.0


def test_interpolated_depth_and_tie_rule(dev):
    v = np.array([[0, 0, 1.0], [30, 0, 4.0], [0, 30, 7.0]], np.float32)
    t = np.array([[0, 1, 2], [0, 1, 2], [2, 1, 0]], np.int32)  # identical triangles: a tie
    g = dev.get(rasterize(dev.put(v), dev.put(t), 32, 32))
    cov = g.tri_id >= 0
    assert np.all(g.tri_id[cov] == 0)  # lower index wins ties
    yy, xx = np.mgrid[0:32, 0:32]
    np.testing.assert_allclose(g.depth[cov], (1 + 0.1 * xx + 0.2 * yy)[cov], rtol=0, atol=1e-5)


def test_bary_reproduce_pixel_coordinates(dev):
    v, t = face_mesh(n=120, seed=5, size=96)
    v[:, :2] += np.random.default_rng(2).normal(0, 0.01, size=(len(v), 2)).astype(np.float32)
    g = rasterize(dev.put(v), dev.put(t), 96, 96)
    a = dev.get(interpolate(g, dev.put(t), dev.put(v)))
    g = dev.get(g)
    cov = g.tri_id >= 0
    assert cov.mean() > 0.4
    yy, xx = np.mgrid[0:96, 0:96]
    np.testing.assert_allclose(a[..., 0][cov], xx[cov], atol=2e-4)
    np.testing.assert_allclose(a[..., 1][cov], yy[cov], atol=2e-4)
    np.testing.assert_allclose(a[..., 2][cov], g.depth[cov], atol=1e-4)
    w0 = 1 - g.bary[..., 0] - g.bary[..., 1]
    assert g.bary[cov].min() > -1e-3 and w0[cov].min() > -1e-3


def test_deterministic_across_thread_counts():
    v, t = face_mesh()
    n = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        g1 = rasterize(v, t, 256, 256)
    finally:
        numba.set_num_threads(n)
    g2 = rasterize(v, t, 256, 256)
    np.testing.assert_array_equal(g1.tri_id, g2.tri_id)
    np.testing.assert_array_equal(g1.bary, g2.bary)
    np.testing.assert_array_equal(g1.depth, g2.depth)


def test_out_is_fully_overwritten(dev):
    v, t = face_mesh(n=60, seed=1, size=64)
    fresh = dev.get(rasterize(dev.put(v), dev.put(t), 64, 64))
    dirty = GBuffer.empty(64, 64, dev.xp)
    dirty.tri_id[:] = 7
    dirty.bary[:] = 0.3
    dirty.depth[:] = -1
    res = rasterize(dev.put(v), dev.put(t), 64, 64, out=dirty)
    assert res is dirty
    res = dev.get(res)
    for f in ("tri_id", "bary", "depth"):
        np.testing.assert_array_equal(getattr(res, f), getattr(fresh, f))


# ---------------------------------------------------------------------------------------------
# clipping, degenerate input
# ---------------------------------------------------------------------------------------------


def test_clipping_equals_crop_of_larger_canvas(dev):
    tris = [
        [(-40.5, -10.25, 1), (30.75, 5.5, 2), (5.25, 70.0, 3)],  # off the top-left
        [(50.0, 20.0, 1), (400.0, 30.0, 2), (60.0, 300.0, 3)],  # off the right and bottom
        [(-1e4, -1e4, 1), (1e4, -1e4, 1), (0.0, 1e4, 1)],  # covers everything
    ]
    for tri in tris:
        v = np.array(tri, np.float32)
        t = np.array([[0, 1, 2]], np.int32)
        g = dev.get(rasterize(dev.put(v), dev.put(t), 64, 64))
        big = v.copy()
        big[:, :2] += 512  # integer shift: exact in fixed point
        gb = dev.get(rasterize(dev.put(big), dev.put(t), 1100, 1100))
        np.testing.assert_array_equal(g.tri_id, gb.tri_id[512:576, 512:576])
    assert (g.tri_id == 0).all()


def test_wholly_offscreen_draws_nothing(dev):
    for tri in ([(-30, -30), (-5, -30), (-30, -5)], [(70, 10), (90, 10), (80, 30)], [(10, 70), (30, 70), (20, 90)]):
        v, t = one(tri)
        g = dev.get(rasterize(dev.put(v), dev.put(t), 64, 64))
        assert (g.tri_id == -1).all() and np.isinf(g.depth).all()


def test_degenerate_nan_and_far_triangles_skipped(dev):
    v = np.array(
        [
            [2, 2, 0], [10, 10, 0], [6, 6, 0],  # collinear through centres
            [3, 3, 0], [3, 3, 0], [9, 3, 0],  # repeated vertex
            [np.nan, 3, 0], [12, 3, 0], [5, 12, 0],  # NaN x
            [1, 1, np.nan], [12, 1, 0], [1, 12, 0],  # NaN z
            [1, 1, np.inf], [12, 1, 0], [1, 12, 0],  # inf z
            [2 * MAX_COORD_PX, 1, 0], [12, 1, 0], [1, 12, 0],  # beyond the fixed-point range
            [1, 1, 0], [12, 1, 0], [1, 12, 0],  # a valid one last
        ],
        np.float32,
    )
    t = np.arange(len(v), dtype=np.int32).reshape(-1, 3)
    g = dev.get(rasterize(dev.put(v), dev.put(t), 16, 16))
    ids = set(np.unique(g.tri_id).tolist())
    assert ids == {-1, len(t) - 1}
    assert covered_set(g) == ref_coverage([(1, 1), (12, 1), (1, 12)], 16, 16)


def test_empty_triangle_list(dev):
    v = np.zeros((3, 3), np.float32)
    t = np.zeros((0, 3), np.int32)
    g = dev.get(rasterize(dev.put(v), dev.put(t), 5, 7))
    assert g.shape == (5, 7) and (g.tri_id == -1).all()


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


def test_validation_errors():
    v, t = one([(0, 0), (4, 0), (0, 4)])
    with pytest.raises(TypeError, match=r"vertices.*float32.*float64"):
        rasterize(v.astype(np.float64), t, 8, 8)
    with pytest.raises(ValueError, match=r"vertices.*\(V, 3\).*\(3, 2\)"):
        rasterize(v[:, :2].copy(), t, 8, 8)
    with pytest.raises(TypeError, match=r"triangles.*int32.*int64"):
        rasterize(v, t.astype(np.int64), 8, 8)
    with pytest.raises(ValueError, match=r"triangles.*\(T, 3\).*\(3,\)"):
        rasterize(v, t[0], 8, 8)
    with pytest.raises(ValueError, match=r"triangles indices.*\[0, 3\).*max 3"):
        rasterize(v, t + 1, 8, 8)
    with pytest.raises(ValueError, match=r"triangles indices.*min -1"):
        rasterize(v, t - 1, 8, 8)
    with pytest.raises(ValueError, match=r"height must be > 0, got 0"):
        rasterize(v, t, 0, 8)
    with pytest.raises(TypeError, match=r"width must be an int, got float"):
        rasterize(v, t, 8, 8.0)
    with pytest.raises(TypeError, match=r"vertices must be an array"):
        rasterize(v.tolist(), t, 8, 8)
    with pytest.raises(ValueError, match=r"out.tri_id.*\(8, 8\).*\(8, 9\)"):
        rasterize(v, t, 8, 8, out=GBuffer.empty(8, 9))
    bad = GBuffer.empty(8, 8)
    bad.depth = bad.depth.astype(np.float64)
    with pytest.raises(TypeError, match=r"out.depth.*float32.*float64"):
        rasterize(v, t, 8, 8, out=bad)


def test_non_contiguous_inputs(dev):
    v, t = face_mesh(n=60, seed=2, size=64)
    v4 = np.concatenate([v, np.ones((len(v), 1), np.float32)], 1)
    t4 = np.concatenate([t, t[:, :1]], 1)
    a = dev.get(rasterize(dev.put(v), dev.put(t), 64, 64))
    b = dev.get(rasterize(dev.put(v4)[:, :3], dev.put(t4)[:, :3], 64, 64))
    np.testing.assert_array_equal(a.tri_id, b.tri_id)
    np.testing.assert_array_equal(a.depth, b.depth)
