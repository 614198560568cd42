"""realtime.image.composite: the paste-back of the reenacted crop into the profile's picture."""
from __future__ import annotations

import numpy as np

from kernels import mirrored_sigmoid_mask
from realtime.image.composite import PASTE_MASK, CompositeStage, paste_mask


def _ring(mask: np.ndarray, share: float) -> np.ndarray:
    """The mask's values on the square ring at `share` of the crop's half side from its centre."""
    s = mask.shape[0]
    c, r = (s - 1) / 2.0, share * s / 2.0
    d = np.maximum(*np.abs(np.mgrid[0:s, 0:s] - c))
    return mask[np.abs(d - r) <= 0.5]


def test_the_paste_mask_holds_the_crop_out_to_near_its_edge():
    """Before (visual audit, stop 66): AP-GAN's mask (0.08, 0.7) fell under one half from 0.7 of
    the crop's half side out, where a head turned far had moved its hair and forehead: the
    photo's own showed through beside them, a see-through second head. Now the crop is whole
    out to 0.8 of it, whatever the crop's size, and still fades to the photo at its edge."""
    for size in (128, 256, 400):
        m = paste_mask(size)
        assert m.shape == (size, size) and m.dtype == np.float32
        assert _ring(m, 0.8).min() > 0.8, (size, _ring(m, 0.8).min())
        edge = np.concatenate([m[0], m[-1], m[:, 0], m[:, -1]])
        assert edge.max() < 0.2
        assert abs(float(_ring(m, PASTE_MASK[1]).mean()) - 0.5) < 0.1


def test_a_profile_with_the_old_mask_is_pasted_with_the_new_one(astronaut_profile, monkeypatch):
    old = mirrored_sigmoid_mask(astronaut_profile.crop_size)
    assert _ring(old, 0.8).max() < 0.5                      # the mask such profiles carry
    monkeypatch.setitem(astronaut_profile.arrays, "paste_mask", old)     # a session fixture
    stage = CompositeStage(astronaut_profile)
    np.testing.assert_allclose(stage.mask, np.maximum(old, paste_mask(astronaut_profile.crop_size)))
