"""Golden tests of `warp` (backward warp, shares its sampler with `texture`)."""
from __future__ import annotations

import numpy as np
import pytest

from kernels import texture, warp

from .test_texture import grid, image


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_zero_flow_is_identity(dev, dtype):
    img = image(dtype=dtype)
    out = dev.get(warp(dev.put(img), dev.put(np.zeros((20, 30, 2), np.float32))))
    np.testing.assert_array_equal(out, img.astype(np.float32))


def test_integer_translation_exact(dev):
    img = image()
    flow = np.zeros((20, 30, 2), np.float32)
    flow[...] = (-4, 3)  # out[y, x] = img[y + 3, x - 4]
    out = dev.get(warp(dev.put(img), dev.put(flow)))
    np.testing.assert_array_equal(out[:-3, 4:], img[3:, :-4].astype(np.float32))


def test_half_pixel_average(dev):
    img = image(dtype=np.float32)
    flow = np.full((20, 30, 2), 0.5, np.float32)
    out = dev.get(warp(dev.put(img), dev.put(flow)))
    expect = (img[:-1, :-1] + img[:-1, 1:] + img[1:, :-1] + img[1:, 1:]) / 4
    np.testing.assert_allclose(out[:-1, :-1], expect, rtol=0, atol=1e-4)


def test_matches_texture_at_grid_plus_flow(dev):
    img = image(seed=3)
    flow = np.random.default_rng(1).normal(0, 3, size=(20, 30, 2)).astype(np.float32)
    a = dev.get(warp(dev.put(img), dev.put(flow)))
    b = dev.get(texture(dev.put(img), dev.put(grid(20, 30) + flow)))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


def test_out_param_and_validation():
    img = image()
    flow = np.zeros((20, 30, 2), np.float32)
    out = np.full((20, 30, 3), -1, np.float32)
    assert warp(img, flow, out=out) is out
    np.testing.assert_array_equal(out, img)
    with pytest.raises(ValueError, match=r"flow.*\(20, 30, 2\).*\(20, 31, 2\)"):
        warp(img, np.zeros((20, 31, 2), np.float32))
    with pytest.raises(TypeError, match=r"flow.*float32.*float16"):
        warp(img, flow.astype(np.float16))
    with pytest.raises(TypeError, match=r"image.*uint8 or float32.*int32"):
        warp(img.astype(np.int32), flow)
    f32 = img.astype(np.float32)
    with pytest.raises(ValueError, match="must not be the input image"):
        warp(f32, flow, out=f32)
