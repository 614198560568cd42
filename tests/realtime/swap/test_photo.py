"""realtime.swap.photo: the swap's view of a profile, its photo prepared and nothing else."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.swap import farside, grain
from realtime.swap.photo import SwapPhotoProfile


@pytest.mark.parametrize("even, fill", [(True, True), (True, False), (False, True), (False, False)])
def test_the_view_replaces_the_photo_only(astronaut_profile, monkeypatch, even, fill):
    calls = []
    monkeypatch.setattr(grain, "even_grain", lambda photo, lm: calls.append("even") or photo + 1)
    monkeypatch.setattr(farside, "fill_far_side", lambda photo, lm: calls.append("fill") or photo + 2)
    view = SwapPhotoProfile(astronaut_profile, even_grain=even, fill_far_side=fill)
    assert calls == ["even"] * even + ["fill"] * fill         # evened first: the fill copies evened skin
    assert (view.evened, view.filled) == (even, fill)
    photo = astronaut_profile["image"]
    np.testing.assert_array_equal(view["image"], photo + (1 if even else 0) + (2 if fill else 0))
    assert view["image"] is view.image
    assert view["neutral"] is astronaut_profile["neutral"]
    assert view.name == astronaut_profile.name and view.crop_size == astronaut_profile.crop_size
    assert view.frame() is not None


def test_a_photo_that_needs_nothing_is_the_profiles_own(astronaut_profile, monkeypatch):
    monkeypatch.setattr(grain, "even_grain", lambda photo, lm: photo)
    monkeypatch.setattr(farside, "fill_far_side", lambda photo, lm: photo)
    view = SwapPhotoProfile(astronaut_profile)
    assert view["image"] is astronaut_profile["image"] and not view.evened and not view.filled
