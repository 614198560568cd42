"""realtime.core.letterbox: a picture fitted into a frame of another shape, never stretched."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.core.letterbox import letterbox


@pytest.mark.parametrize("shape, size, box", [
    ((100, 200, 3), (100, 100), (0, 25, 100, 50)),      # wide into square: bars above and below
    ((200, 100, 3), (100, 100), (25, 0, 50, 100)),      # tall into square: bars left and right
    ((50, 50, 3), (200, 100), (50, 0, 100, 100)),       # enlarged
    ((60, 80, 3), (80, 60), (0, 0, 80, 60)),            # the same size: unchanged
])
def test_letterbox_keeps_the_aspect_ratio_centred_on_black(shape, size, box):
    rng = np.random.default_rng(0)
    image = rng.integers(1, 256, shape, dtype=np.uint8)    # no black pixel of its own
    out = letterbox(image, size)
    x, y, w, h = box
    assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8
    inside = np.zeros(out.shape[:2], bool)
    inside[y:y + h, x:x + w] = True
    assert out[inside].all(axis=-1).mean() > 0.99 and not out[~inside].any()
    if image.shape[:2] == out.shape[:2]:
        np.testing.assert_array_equal(out, image)
