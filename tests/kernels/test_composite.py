"""Golden tests of `composite` and its mask helpers."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from kernels import composite, feather_mask, mirrored_sigmoid_mask

IDENT = np.array([[1, 0, 0], [0, 1, 0]], np.float32)


def crop_and_frame(h=24, w=32, fh=48, fw=64, seed=0):
    rng = np.random.default_rng(seed)
    crop = rng.integers(0, 256, size=(h, w, 3)).astype(np.float32)
    frame = rng.integers(0, 256, size=(fh, fw, 3)).astype(np.uint8)
    return crop, frame


def reference(crop, frame, a, mask):
    """Brute force over every frame pixel, in float64 numpy."""
    h, w = mask.shape
    fh, fw = frame.shape[:2]
    yy, xx = np.mgrid[0:fh, 0:fw].astype(np.float64)
    u = a[0, 0] * xx + a[0, 1] * yy + a[0, 2]
    v = a[1, 0] * xx + a[1, 1] * yy + a[1, 2]
    inside = (u >= -0.5) & (u < w - 0.5) & (v >= -0.5) & (v < h - 0.5)

    def bil(img, u, v):
        uc = np.clip(u, 0, w - 1)
        vc = np.clip(v, 0, h - 1)
        x0 = np.floor(uc).astype(int)
        y0 = np.floor(vc).astype(int)
        x1 = np.minimum(x0 + 1, w - 1)
        y1 = np.minimum(y0 + 1, h - 1)
        fx = (uc - x0)[..., None]
        fy = (vc - y0)[..., None]
        top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
        bot = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
        return top * (1 - fy) + bot * fy

    m = np.clip(bil(mask[..., None].astype(np.float64), u, v), 0, 1)
    c = bil(crop.astype(np.float64), u, v)
    blend = np.floor(np.clip(m * c + (1 - m) * frame + 0.5, 0, 255)).astype(np.uint8)
    return np.where(inside[..., None], blend, frame), inside


def test_identity_mask_one_gives_crop(dev):
    crop, frame = crop_and_frame()
    out = dev.get(composite(dev.put(crop), dev.put(frame), IDENT, dev.put(np.ones((24, 32), np.float32))))
    assert out.dtype == np.uint8 and out.shape == frame.shape
    np.testing.assert_array_equal(out[:24, :32], crop.astype(np.uint8))
    np.testing.assert_array_equal(out[24:], frame[24:])
    np.testing.assert_array_equal(out[:, 32:], frame[:, 32:])


def test_mask_zero_gives_frame(dev):
    crop, frame = crop_and_frame()
    out = dev.get(composite(dev.put(crop), dev.put(frame), IDENT, dev.put(np.zeros((24, 32), np.float32))))
    np.testing.assert_array_equal(out, frame)


def test_half_mask_blends(dev):
    crop, frame = crop_and_frame()
    out = dev.get(composite(dev.put(crop), dev.put(frame), IDENT, dev.put(np.full((24, 32), 0.5, np.float32))))
    expect = np.floor(0.5 * crop + 0.5 * frame[:24, :32] + 0.5)
    assert np.abs(out[:24, :32].astype(int) - expect).max() <= 1


@pytest.mark.parametrize("tx,ty", [(10, 7), (-5, -3), (40, 30)])
def test_translated_crop_roi(dev, tx, ty):
    crop, frame = crop_and_frame()
    a = np.array([[1, 0, -tx], [0, 1, -ty]], np.float32)  # frame (x, y) -> crop (x - tx, y - ty)
    out = dev.get(composite(dev.put(crop), dev.put(frame), a, dev.put(np.ones((24, 32), np.float32))))
    expect = frame.copy()
    ys, xs = slice(max(ty, 0), min(ty + 24, 48)), slice(max(tx, 0), min(tx + 32, 64))
    expect[ys, xs] = crop[ys.start - ty : ys.stop - ty, xs.start - tx : xs.stop - tx].astype(np.uint8)
    np.testing.assert_array_equal(out, expect)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rotated_scaled_matches_brute_force(dev, seed):
    rng = np.random.default_rng(seed)
    crop, frame = crop_and_frame(seed=seed, fh=80, fw=90)
    mask = rng.random((24, 32)).astype(np.float32)
    crop_to_frame = cv2.getRotationMatrix2D((16.0, 12.0), rng.uniform(-40, 40), rng.uniform(0.7, 1.8))
    crop_to_frame[:, 2] += rng.uniform(10, 60, size=2)
    a = cv2.invertAffineTransform(crop_to_frame).astype(np.float32)
    out = dev.get(composite(dev.put(crop), dev.put(frame), a, dev.put(mask)))
    ref, inside = reference(crop, frame, a.astype(np.float64), mask)
    assert inside.sum() > 300
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert diff.max() <= 1  # float32 vs float64 rounding at .5
    assert (diff > 0).mean() < 0.01
    np.testing.assert_array_equal(out[~inside], frame[~inside])


def test_in_place_and_separate_out(dev):
    crop, frame = crop_and_frame()
    mask = mirrored_sigmoid_mask(32)[4:28, :]
    a = np.array([[1, 0, -9.5], [0, 1, -4.25]], np.float32)
    expect = dev.get(composite(dev.put(crop), dev.put(frame), a, dev.put(mask)))
    assert not np.array_equal(expect, frame)
    f = dev.put(frame.copy())
    res = composite(dev.put(crop), f, a, dev.put(mask), out=f)
    assert res is f
    np.testing.assert_array_equal(dev.get(f), expect)
    other = dev.put(np.full_like(frame, 3))
    src = dev.put(frame.copy())
    res = composite(dev.put(crop), src, a, dev.put(mask), out=other)
    assert res is other
    np.testing.assert_array_equal(dev.get(other), expect)
    np.testing.assert_array_equal(dev.get(src), frame)  # the frame itself untouched


def test_crop_entirely_outside_frame(dev):
    crop, frame = crop_and_frame()
    a = np.array([[1, 0, 500], [0, 1, 0]], np.float32)
    out = dev.get(composite(dev.put(crop), dev.put(frame), a, dev.put(np.ones((24, 32), np.float32))))
    np.testing.assert_array_equal(out, frame)


def test_validation_errors():
    crop, frame = crop_and_frame()
    m = np.ones((24, 32), np.float32)
    with pytest.raises(TypeError, match=r"frame.*uint8.*float32"):
        composite(crop, frame.astype(np.float32), IDENT, m)
    with pytest.raises(ValueError, match=r"mask.*\(24, 32\).*\(32, 24\)"):
        composite(crop, frame, IDENT, m.T.copy())
    with pytest.raises(ValueError, match=r"frame_to_crop.*\(2, 3\).*\(3, 3\)"):
        composite(crop, frame, np.eye(3, dtype=np.float32), m)
    with pytest.raises(ValueError, match="invertible"):
        composite(crop, frame, np.zeros((2, 3), np.float32), m)
    with pytest.raises(TypeError, match=r"crop.*float32.*uint8"):
        composite(crop.astype(np.uint8), frame, IDENT, m)
    with pytest.raises(ValueError, match=r"out.*\(48, 64, 3\).*\(48, 63, 3\)"):
        composite(crop, frame, IDENT, m, out=frame[:, 1:])


# --------------------------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------------------------


def test_mirrored_sigmoid_mask():
    m = mirrored_sigmoid_mask(256)
    assert m.shape == (256, 256) and m.dtype == np.float32
    assert m[127:129, 127:129].min() > 0.99
    assert max(m[0, 0], m[0, -1], m[-1, 0], m[-1, -1]) < 0.06
    np.testing.assert_array_equal(m, m[::-1])
    np.testing.assert_array_equal(m, m[:, ::-1])
    np.testing.assert_array_equal(m, m.T)
    row = m[128, 128:]
    assert np.all(np.diff(row) <= 0)  # falls off monotonically from the centre
    # eq. 12 at a pixel: d = max(|x - c|, |y - c|), c = 127.5, mid = 128
    d = max(abs(200 - 127.5), abs(60 - 127.5))
    assert m[60, 200] == pytest.approx(1 / (1 + np.exp(0.08 * (d - 0.7 * 128))), rel=1e-6)
    assert mirrored_sigmoid_mask(9, alpha=1.0, gamma=0.5)[4, 4] == pytest.approx(1 / (1 + np.exp(-2.25)), rel=1e-6)


def test_feather_mask():
    cov = np.zeros((40, 50), bool)
    cov[5:35, 10:48] = True
    cov[:, 45:] = True  # touches the top, bottom and right image border
    m = feather_mask(cov, 6.0)
    assert m.dtype == np.float32 and m.shape == cov.shape
    assert np.all(m[~cov] == 0)
    assert m[20, 28] == 1.0  # deep inside
    assert 0 < m[20, 10] < 0.2  # on the coverage edge
    assert m[0, 46] < 0.2 and m[20, 49] < 0.2  # the image border counts as an edge
    assert np.all(np.diff(m[20, 10:25]) >= 0)
    np.testing.assert_array_equal(feather_mask(cov.astype(np.uint8), 0), cov.astype(np.float32))
    with pytest.raises(TypeError, match=r"coverage.*bool or uint8.*float32"):
        feather_mask(cov.astype(np.float32), 3)
