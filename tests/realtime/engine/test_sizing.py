"""realtime.engine.sizing: the render size the engine picks, and the texture's sharpening."""
from __future__ import annotations

import math

import numpy as np
import pytest

from realtime.engine.sizing import (
    DENSITY_FROM,
    MAX_UPSAMPLE,
    SHARPEN,
    SHARPEN_FROM,
    RenderSizeError,
    choose_render_size,
    crop_side_in_output,
    texture_sharpen,
)


class _Profile:
    """The little of a profile the size choice reads: the photo, the crop box and S."""

    def __init__(self, image_wh=(512, 512), box_side=300.0, crop_size=256):
        w, h = image_wh
        self.crop_size = crop_size
        k = crop_size / box_side
        self.arrays = {"image": np.zeros((h, w, 3), np.uint8),
                       "crop_from_image": np.array([[k, 0, -10.0], [0, k, -20.0]], np.float32)}

    def __getitem__(self, key):
        return self.arrays[key]


def test_crop_side_in_output_follows_the_fit_of_the_photo():
    p = _Profile((1000, 500), box_side=400.0)
    assert crop_side_in_output(p, (1000, 500)) == pytest.approx(400.0, rel=1e-5)
    assert crop_side_in_output(p, (500, 500)) == pytest.approx(200.0, rel=1e-5)  # letter-boxed: ½
    # no output size: the engine's default (the photo's, at most 640 on the long side)
    assert crop_side_in_output(p, None) == pytest.approx(400.0 * 640 / 1000, rel=1e-5)


def test_a_face_small_in_the_output_keeps_the_profiles_size():
    p = _Profile(box_side=200.0)
    assert choose_render_size(p, (512, 512)) == 256
    assert choose_render_size(p, (256, 256)) == 256       # never below the profile's S


@pytest.mark.parametrize("box", [300.0, 450.0, 595.0])
def test_a_large_face_is_drawn_at_its_output_size(box):
    p = _Profile(box_side=box)
    s = choose_render_size(p, (512, 512), max_size=2048)
    assert s % 16 == 0 and s >= 256
    assert box / s <= MAX_UPSAMPLE + 1e-9                   # the paste-back magnifies ≤ 1.1×
    assert box / (s - 16) > MAX_UPSAMPLE or s == 256       # the smallest such multiple of 16


def test_the_cap_and_the_override():
    p = _Profile(box_side=900.0)
    assert choose_render_size(p, (512, 512), max_size=576) == 576
    assert choose_render_size(p, (512, 512), max_size=128) == 256  # a cap below S leaves S
    assert choose_render_size(p, (512, 512), requested=200) == 200  # asked for: taken as is
    assert choose_render_size(p, (512, 512), requested=1000) == 1000
    with pytest.raises(RenderSizeError, match="too small"):
        choose_render_size(p, (512, 512), requested=8)


def test_sharpening_needs_a_magnifying_paste_back_and_a_dense_texture():
    assert texture_sharpen(0.5, 1.0) == 0.0                 # a minified crop: left as it is
    assert texture_sharpen(SHARPEN_FROM, 1.0) == 0.0
    assert texture_sharpen(1.0, 1.0) == pytest.approx(SHARPEN)
    assert texture_sharpen(1.8, 1.2) == pytest.approx(SHARPEN)
    assert math.isclose(texture_sharpen(0.5 * (SHARPEN_FROM + 1.0), 1.0), 0.5 * SHARPEN, rel_tol=1e-9)
    assert texture_sharpen(1.1, 0.5) == 0.0                 # a magnified photo: left as it is
    assert texture_sharpen(1.1, DENSITY_FROM) == 0.0
    assert math.isclose(texture_sharpen(1.1, 0.5 * (DENSITY_FROM + 1.0)), 0.5 * SHARPEN, rel_tol=1e-9)
    assert texture_sharpen(1.2, 1.0, strength=0.0) == 0.0
    assert texture_sharpen(1.2, 1.0, strength=0.4) == pytest.approx(0.4)
    with pytest.raises(RenderSizeError):
        texture_sharpen(1.0, 1.0, strength=-0.1)
