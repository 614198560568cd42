"""Golden tests of `texture` (bilinear lookup)."""
from __future__ import annotations

import numpy as np
import pytest

from kernels import texture


def grid(h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([xx, yy], -1)


def image(h=20, w=30, c=3, dtype=np.uint8, seed=0):
    img = np.random.default_rng(seed).integers(0, 256, size=(h, w, c))
    return img.astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_identity_reproduces_image(dev, dtype):
    img = image(dtype=dtype)
    out = dev.get(texture(dev.put(img), dev.put(grid(20, 30))))
    assert out.dtype == np.float32 and out.shape == img.shape
    np.testing.assert_array_equal(out, img.astype(np.float32))


def test_integer_translation_exact_and_border_clamp(dev):
    img = image(c=4)
    co = grid(20, 30) + np.float32([3, -2])
    out = dev.get(texture(dev.put(img), dev.put(co)))
    np.testing.assert_array_equal(out[2:, :27], img[:-2, 3:].astype(np.float32))
    np.testing.assert_array_equal(out[:2, :27], np.repeat(img[:1, 3:], 2, axis=0))  # clamped y
    np.testing.assert_array_equal(out[2:, 27:], np.repeat(img[:-2, -1:], 3, axis=1))  # clamped x


def test_half_pixel_average(dev):
    img = image(dtype=np.float32)
    out = dev.get(texture(dev.put(img), dev.put(grid(20, 30)[:-1, :-1] + 0.5)))
    expect = (img[:-1, :-1] + img[:-1, 1:] + img[1:, :-1] + img[1:, 1:]) / 4
    np.testing.assert_allclose(out, expect, rtol=0, atol=1e-4)
    out = dev.get(texture(dev.put(img), dev.put(grid(20, 30)[:, :-1] + np.float32([0.5, 0]))))
    np.testing.assert_allclose(out, (img[:, :-1] + img[:, 1:]) / 2, rtol=0, atol=1e-4)


def test_bilinear_weights_general(dev):
    img = image(dtype=np.float32)
    co = np.array([[[3.25, 4.75]]], np.float32)
    out = dev.get(texture(dev.put(img), dev.put(co)))[0, 0]
    top = img[4, 3] * 0.75 + img[4, 4] * 0.25
    bot = img[5, 3] * 0.75 + img[5, 4] * 0.25
    np.testing.assert_allclose(out, top * 0.25 + bot * 0.75, atol=1e-3)


@pytest.mark.parametrize("mdtype", [np.bool_, np.uint8])
def test_mask_respected(dev, mdtype):
    img = image()
    mask = np.zeros((20, 30), mdtype)
    mask[5:15, 10:20] = 1
    out = dev.put(np.full((20, 30, 3), 7, np.float32))
    res = texture(dev.put(img), dev.put(grid(20, 30)), dev.put(mask), out=out)
    assert res is out
    res = dev.get(res)
    m = mask.astype(bool)
    np.testing.assert_array_equal(res[m], img[m].astype(np.float32))
    assert np.all(res[~m] == 0)


def test_nan_and_far_coordinates(dev):
    img = image()
    co = np.array([[[np.nan, 2.0], [1e9, -1e9]]], np.float32)
    out = dev.get(texture(dev.put(img), dev.put(co)))
    assert np.all(out[0, 0] == 0)
    np.testing.assert_array_equal(out[0, 1], img[0, -1])


def test_different_output_size(dev):
    img = image()
    co = np.zeros((7, 5, 2), np.float32)
    co[..., 0] = 4
    co[..., 1] = 6
    out = dev.get(texture(dev.put(img), dev.put(co)))
    assert out.shape == (7, 5, 3)
    assert np.all(out == img[6, 4].astype(np.float32))


def test_validation_errors():
    img = image()
    co = grid(20, 30)
    with pytest.raises(TypeError, match=r"image.*uint8 or float32.*float64"):
        texture(img.astype(np.float64), co)
    with pytest.raises(ValueError, match=r"image.*\(h, w, C\).*\(20, 30\)"):
        texture(img[..., 0].copy(), co)
    with pytest.raises(ValueError, match=r"coords.*\(H, W, 2\).*\(20, 30, 3\)"):
        texture(img, np.zeros((20, 30, 3), np.float32))
    with pytest.raises(TypeError, match=r"coords.*float32.*float64"):
        texture(img, co.astype(np.float64))
    with pytest.raises(ValueError, match=r"mask.*\(20, 30\).*\(30, 20\)"):
        texture(img, co, np.ones((30, 20), bool))
    with pytest.raises(TypeError, match=r"mask.*bool or uint8.*float32"):
        texture(img, co, np.ones((20, 30), np.float32))
    with pytest.raises(TypeError, match=r"out.*float32.*uint8"):
        texture(img, co, out=np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(ValueError, match="non-empty"):
        texture(np.zeros((0, 3, 3), np.uint8), co)


def test_strided_coords_sample_as_a_contiguous_copy_does(dev):
    """Coordinates given as the first two channels of a wider array (a strided view) sample as a
    contiguous copy of them does."""
    img = image(dtype=np.float32)
    co = grid(20, 30) * np.float32(0.9) + np.float32([0.3, 0.6])
    wide = np.concatenate([co, np.full((20, 30, 1), 7.0, np.float32)], axis=-1)
    view = dev.put(wide)[..., :2]
    out = dev.get(texture(dev.put(img), view, dev.put(np.arange(600).reshape(20, 30) % 3 > 0)))
    ref = dev.get(texture(dev.put(img), dev.put(co), dev.put(np.arange(600).reshape(20, 30) % 3 > 0)))
    np.testing.assert_array_equal(out, ref)
    assert (out[0, 0] == 0).all() and (out[0, 1] != 0).any()
