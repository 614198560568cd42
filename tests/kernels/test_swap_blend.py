"""`swap_blend`: golden cases (the frame untouched outside the mask, exactly; a face blended onto
itself unchanged; the openings and occluders), the input checks, and CUDA-twin parity on the
emulated device (the harness of test_cuda_parity.py) and on a GPU."""
from __future__ import annotations

import numpy as np
import pytest

from kernels import swap_blend
from kernels.swap_blend import LOW_CHANNELS, affine_table, frame_roi

from .test_cuda_parity import Backend, backend, cpu, dirty, emulated_libs, strided  # noqa: F401 - the harness  # noqa: F401 - pytest fixtures

IDENT_COLOUR = affine_table(np.concatenate([np.eye(3), np.zeros((3, 1))], axis=1))
OCC = (0.45, 0.62, 0.22, 0.38)


def scene(seed=0, fh=72, fw=96, s=32, cells=4):
    """A random frame, render, alpha (a disc), fan (openings on a patch) and low field."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, size=(fh, fw, 3)).astype(np.uint8)
    render = rng.uniform(0, 255, size=(s, s, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:s, 0:s]
    r = np.hypot(xx - s / 2, yy - s / 2)
    alpha = np.clip((s * 0.4 - r) / 4.0, 0.0, 1.0).astype(np.float32)
    fan = np.zeros((s, s, 3), np.float32)
    patch = (np.abs(xx - s / 2) < 4) & (np.abs(yy - s / 2 - 4) < 2)
    fan[patch, 0] = 1.0
    fan[patch, 1] = rng.uniform(0, fw - 1, size=patch.sum())
    fan[patch, 2] = rng.uniform(0, fh - 1, size=patch.sum())
    low = np.empty((cells, cells, LOW_CHANNELS), np.float32)
    low[..., :3] = rng.uniform(0.7, 1.3, size=(cells, cells, 3))
    low[..., 3:6] = rng.uniform(60, 200, size=(cells, cells, 3))
    low[..., 6] = rng.uniform(0, 1, size=(cells, cells))
    a = np.array([[0.6, 0.1, -5.0], [-0.1, 0.6, -8.0]], np.float64)
    return frame, render, alpha, fan, low, a


def colour_table(seed=0, n=5):
    """(n, n, n, 3) float32 colour table, smooth and far from affine: a gamma per channel, a little
    of each channel in the others, and noise at the nodes."""
    rng = np.random.default_rng(seed)
    g = np.linspace(0.0, 1.0, n)
    rgb = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1)
    mix = np.eye(3) + rng.normal(0, 0.1, size=(3, 3))
    out = 255.0 * (rgb ** np.array([0.8, 1.0, 1.3])) @ mix.T + rng.normal(0, 3.0, size=rgb.shape)
    return out.astype(np.float32)


def trilinear(table, rgb):
    """Reference of the table lookup (float64, loops): the colour table at the colours (N, 3),
    trilinear, the end cells extended."""
    n = table.shape[0]
    out = np.zeros((len(rgb), 3))
    for p, c in enumerate(np.asarray(rgb, np.float64) * (n - 1) / 255.0):
        i = np.clip(np.floor(c), 0, n - 2).astype(int)
        t = c - i
        for corner in np.ndindex(2, 2, 2):
            wgt = np.prod([t[a] if corner[a] else 1.0 - t[a] for a in range(3)])
            out[p] += wgt * table[i[0] + corner[0], i[1] + corner[1], i[2] + corner[2]]
    return out


def alpha_positive(alpha, a, fh, fw):
    """(fh, fw) bool: frame pixels whose crop position lies in the crop and whose bilinear alpha
    is > 0 (float64 numpy)."""
    s, s2 = alpha.shape[:2]
    yy, xx = np.mgrid[0:fh, 0:fw].astype(np.float64)
    u = a[0, 0] * xx + a[0, 1] * yy + a[0, 2]
    v = a[1, 0] * xx + a[1, 1] * yy + a[1, 2]
    inside = (u >= -0.5) & (u < s2 - 0.5) & (v >= -0.5) & (v < s - 0.5)
    uc, vc = np.clip(u, 0, s2 - 1), np.clip(v, 0, s - 1)
    x0, y0 = np.floor(uc).astype(int), np.floor(vc).astype(int)
    x1, y1 = np.minimum(x0 + 1, s2 - 1), np.minimum(y0 + 1, s - 1)
    al = alpha.astype(np.float64)
    fx, fy = uc - x0, vc - y0
    m = (al[y0, x0] * (1 - fx) + al[y0, x1] * fx) * (1 - fy) + (al[y1, x0] * (1 - fx) + al[y1, x1] * fx) * fy
    return inside & (m > 1e-6)


def test_outside_the_mask_the_frame_is_exact(dev):
    frame, render, alpha, fan, low, a = scene()
    out = dev.get(swap_blend(dev.put(frame), dev.put(render), dev.put(alpha), dev.put(fan), dev.put(low), a,
                             dev.put(IDENT_COLOUR)))
    touched = alpha_positive(alpha, a, *frame.shape[:2])
    assert touched.mean() > 0.05
    np.testing.assert_array_equal(out[~touched], frame[~touched])
    assert (out[touched] != frame[touched]).any()
    np.testing.assert_array_equal(dev.get(dev.put(frame)), frame)   # the input untouched


def test_a_face_blended_onto_itself_is_unchanged(dev):
    """Render = the frame's own pixels (integer crop offset), gain 1, colour map I, no occluder
    test: every pixel comes back exactly, whatever the mask."""
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, size=(50, 60, 3)).astype(np.uint8)
    a = np.array([[1.0, 0.0, -10.0], [0.0, 1.0, -7.0]])
    render = frame[7:39, 10:42].astype(np.float32)
    alpha = rng.uniform(0, 1, size=(32, 32)).astype(np.float32)
    fan = np.zeros((32, 32, 3), np.float32)
    low = np.zeros((4, 4, 7), np.float32)
    low[..., :3] = 1.0
    low[..., 3:6] = 128.0
    out = dev.get(swap_blend(dev.put(frame), dev.put(render), dev.put(alpha), dev.put(fan), dev.put(low), a))
    np.testing.assert_array_equal(out, frame)


def test_openings_show_the_driver_and_occluders_are_kept(dev):
    frame = np.full((40, 40, 3), 150, np.uint8)
    frame[2, 3] = (10, 200, 30)                       # the pixel the opening samples
    frame[30, 30] = (5, 5, 5)                         # a dark occluder on the skin
    render = np.full((40, 40, 3), 90.0, np.float32)
    alpha = np.ones((40, 40), np.float32)
    fan = np.zeros((40, 40, 3), np.float32)
    fan[10, 10] = (1.0, 3.0, 2.0)                     # opening: frame (3, 2)
    low = np.zeros((5, 5, 7), np.float32)
    low[..., :3] = 1.0
    low[..., 3:6] = 150.0
    low[..., 6] = 1.0
    a = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    args = (dev.put(render), dev.put(alpha), dev.put(fan))
    out = dev.get(swap_blend(dev.put(frame), *args, dev.put(low), a))
    np.testing.assert_array_equal(out[10, 10], (10, 200, 30))
    np.testing.assert_array_equal(out[30, 30], (5, 5, 5))
    np.testing.assert_array_equal(out[20, 20], (90, 90, 90))
    low[..., 6] = 0.0                                 # no occluder test here: painted over
    out = dev.get(swap_blend(dev.put(frame), *args, dev.put(low), a))
    np.testing.assert_array_equal(out[30, 30], (90, 90, 90))


def test_colour_map_and_gain():
    frame = np.zeros((8, 8, 3), np.uint8)
    render = np.full((8, 8, 3), 100.0, np.float32)
    alpha = np.ones((8, 8), np.float32)
    fan = np.zeros((8, 8, 3), np.float32)
    low = np.zeros((2, 2, 7), np.float32)
    low[..., :3] = (0.5, 1.0, 2.0)
    colour = affine_table(np.array([[1, 0, 0, 0], [0, 0.5, 0, 10], [0, 0, 1, 0]], np.float32))
    out = swap_blend(frame, render, alpha, fan, low, np.array([[1.0, 0, 0], [0, 1.0, 0]]), colour)
    np.testing.assert_array_equal(out[4, 4], (50, 60, 200))


def test_a_colour_table_is_looked_up_trilinearly(dev):
    """The render's colours through a 5-node table: trilinear between the nodes, at a node its
    value, beyond 0..255 the end cells extended (a render a little out of range stays smooth)."""
    table = colour_table(1)
    colours = np.array([[0, 0, 0], [255, 255, 255], [63.75, 127.5, 191.25], [10, 200, 77], [250, 3, 128],
                        [-12, 100, 270], [300, -5, 40]], np.float32)
    k = len(colours)
    frame = np.zeros((1, k, 3), np.uint8)
    render = np.stack([np.repeat(colours, 2, axis=0)] * 2)            # (2, 2k, 3): columns 2p, 2p + 1
    alpha = np.ones((2, 2 * k), np.float32)
    fan = np.zeros((2, 2 * k, 3), np.float32)
    low = np.zeros((1, k, 7), np.float32)
    low[..., :3] = 1.0
    a = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])                 # frame pixel x -> crop column 2x
    out = dev.get(swap_blend(dev.put(frame), dev.put(render), dev.put(alpha), dev.put(fan), dev.put(low), a,
                             dev.put(table)))
    want = np.clip(np.floor(trilinear(table, colours) + 0.5), 0, 255)
    np.testing.assert_array_less(np.abs(out[0].astype(np.float64) - want), 1.01)


def test_the_unsigned_samplers_are_the_shared_ones_value_for_value():
    """The pixel loop's own taps and table lookup (unsigned indices, `kernels.swap_blend`) give
    what `kernels._sampling`'s give, bit for bit: at the borders, beyond them (clamped), between
    pixels, and for colours beyond 0..255 (the table's end cells extended)."""
    from numba import njit

    from kernels._sampling import bilinear_weights, lut_colour
    from kernels.swap_blend import _lut, _taps

    @njit
    def both_taps(h, w, xs, ys):
        out = np.empty((len(xs), 2, 6), np.float64)
        for p in range(len(xs)):
            x0, y0, x1, y1, fx, fy = _taps(h, w, xs[p], ys[p])
            out[p, 0, 0], out[p, 0, 1], out[p, 0, 2], out[p, 0, 3], out[p, 0, 4], out[p, 0, 5] = x0, y0, x1, y1, fx, fy
            x0, y0, x1, y1, fx, fy = bilinear_weights(h, w, xs[p], ys[p])
            out[p, 1, 0], out[p, 1, 1], out[p, 1, 2], out[p, 1, 3], out[p, 1, 4], out[p, 1, 5] = x0, y0, x1, y1, fx, fy
        return out

    @njit
    def both_luts(flat, n, scale, rgb):
        out = np.empty((len(rgb), 2, 3), np.float32)
        for p in range(len(rgb)):
            out[p, 0, 0], out[p, 0, 1], out[p, 0, 2] = _lut(flat, n, scale, rgb[p, 0], rgb[p, 1], rgb[p, 2])
            out[p, 1, 0], out[p, 1, 1], out[p, 1, 2] = lut_colour(flat, n, scale, rgb[p, 0], rgb[p, 1], rgb[p, 2])
        return out

    rng = np.random.default_rng(7)
    xs = np.concatenate([rng.uniform(-3, 40, 500), [0, 31, 31.5, 39, 40, -0.5, 15.999]]).astype(np.float32)
    ys = np.concatenate([rng.uniform(-3, 40, 500), [0, 0, 23, 23, 24, 31, 7.001]]).astype(np.float32)
    t = both_taps(24, 32, xs, ys)
    np.testing.assert_array_equal(t[:, 0], t[:, 1])
    for n in (2, 5, 17):
        table = colour_table(n, n)
        rgb = np.concatenate([rng.uniform(-40, 300, (500, 3)), [[0, 0, 0], [255, 255, 255], [127.5, 63.75, 255]]])
        c = both_luts(table.reshape(-1), n, np.float32((n - 1) / 255.0), rgb.astype(np.float32))
        np.testing.assert_array_equal(c[:, 0], c[:, 1])


def test_box_limits_the_pixels_visited():
    frame, render, alpha, fan, low, a = scene(2)
    full = swap_blend(frame, render, alpha, fan, low, a)
    s = render.shape[0]
    boxed = swap_blend(frame, render, alpha, fan, low, a, box=(0.0, s / 2, -1.0, s))
    x0, x1, y0, y1 = frame_roi(a, s, s, *frame.shape[:2], box=(0.0, s / 2, -1.0, s))
    yy, xx = np.mgrid[0:frame.shape[0], 0:frame.shape[1]]
    u = a[0, 0] * xx + a[0, 1] * yy + a[0, 2]
    left = (u < s / 2 - 1) & (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
    np.testing.assert_array_equal(boxed[left], full[left])
    assert (boxed != full).any()                      # the right half was not visited


@pytest.mark.parametrize("bad, match", [
    (dict(render=np.zeros((8, 9, 3), np.float32)), "alpha"),
    (dict(low=np.zeros((2, 4, 7), np.float32)), "square cells"),
    (dict(low=np.zeros((2, 2, 6), np.float32)), "low"),
    (dict(occlusion=(0.6, 0.5, 0.2, 0.3)), "occlusion"),
    (dict(frame_to_crop=np.zeros((2, 3))), "invertible"),
    (dict(colour=np.zeros((3, 4), np.float32)), "colour"),
    (dict(colour=np.zeros((2, 3, 2, 3), np.float32)), "colour"),
    (dict(colour=np.zeros((1, 1, 1, 3), np.float32)), "colour"),
])
def test_bad_inputs_are_refused(bad, match):
    args = dict(frame=np.zeros((10, 10, 3), np.uint8), render=np.zeros((8, 8, 3), np.float32),
                alpha=np.zeros((8, 8), np.float32), fan=np.zeros((8, 8, 3), np.float32),
                low=np.zeros((2, 2, 7), np.float32),
                frame_to_crop=np.array([[1.0, 0, 0], [0, 1.0, 0]]), occlusion=OCC)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        swap_blend(**args)


def test_out_may_not_be_the_frame():
    frame, render, alpha, fan, low, a = scene()
    with pytest.raises(ValueError, match="out must not be frame"):
        swap_blend(frame, render, alpha, fan, low, a, out=frame)


# ------------------------------------------------------------------ CUDA twin parity

@pytest.mark.parametrize("seed, out_kind", [(3, "contiguous"), (4, "strided"), (5, "contiguous")])
def test_swap_blend_parity(backend, seed, out_kind):  # noqa: F811 - the harness's fixture
    frame, render, alpha, fan, low, a = scene(seed, fh=60, fw=70, s=40, cells=5)
    colour = colour_table(seed)
    render[:3, :, 0] = -20.0                       # out of the table's range: its end cells extended
    render[-3:, :, 2] = 290.0
    roi = frame_roi(a, 40, 40, 60, 70)
    ref = cpu("swap_blend", frame, render, alpha, fan, low, colour, a, OCC, roi, True, np.empty_like(frame))
    xp = backend.xp
    out = dirty(xp, frame.shape, np.uint8, contiguous=out_kind == "contiguous")
    res = backend.run("swap_blend", backend.put(frame), strided(xp, xp.array(render)), backend.put(alpha),
                      strided(xp, xp.array(fan)), strided(xp, xp.array(low)), backend.put(colour), a, OCC, roi,
                      True, out)
    assert res is out
    got = backend.get(out)
    d = np.abs(got.astype(np.int16) - ref.astype(np.int16))
    assert (ref != frame).mean() > 0.05
    assert d.max() <= 1 and (d > 0).sum() <= 0.001 * d.size, f"{(d > 0).sum()} values differ"
