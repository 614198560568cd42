"""realtime.image.composite: the paste-back of the reenacted crop into the profile's picture."""
from __future__ import annotations

import numpy as np

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


def test_the_mask_opens_out_as_the_head_moves_and_not_with_the_jaw(astronaut_profile):
    """Near rest the profile's own (AP-GAN's) mask, where the photo is the sharper; once the head
    has moved PASTE_MOVE[1] px, PASTE_MASK's; a mouth that opens does not count."""
    from realtime.face import topology as T
    from realtime.image.composite import PASTE_LEVELS, PASTE_MOVE

    p = astronaut_profile
    stage = CompositeStage(p)
    a = p["crop_from_image"].astype(np.float64)
    rest = np.asarray(p["landmarks"], np.float64)
    rest[:, :2] = rest[:, :2] @ a[:, :2].T + a[:, 2]
    np.testing.assert_array_equal(stage.mask, p["paste_mask"])
    assert stage.paste_level(rest) == 0
    moved = rest.copy()
    k = p.crop_size / 256.0                                 # PASTE_MOVE is in px of a 256 px crop
    moved[:, 0] += k * (PASTE_MOVE[1] + 1.0)
    assert stage.paste_level(moved) == PASTE_LEVELS
    np.testing.assert_allclose(stage._mask(PASTE_LEVELS), np.maximum(p["paste_mask"], paste_mask(p.crop_size)))
    half = rest.copy()
    half[:, 0] += k * 0.5 * sum(PASTE_MOVE)
    assert 0 < stage.paste_level(half) < PASTE_LEVELS
    jaw = rest.copy()
    below = rest[:, 1] > rest[T.NOSE_TIP, 1]
    jaw[below, 1] += 3 * k * PASTE_MOVE[1]
    assert stage.paste_level(jaw) == 0
    assert _ring(stage._mask(PASTE_LEVELS), 0.8).min() > 0.8 > _ring(stage._mask(0), 0.8).max()
