"""realtime.swap.photo: the swap's view of a profile, its photo prepared and nothing else."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.swap import farside, grain, sockets
from realtime.swap.photo import SwapPhotoProfile


@pytest.mark.parametrize("even, fill, lift", [(True, True, True), (True, False, True), (False, True, False),
                                              (False, False, True), (False, False, False)])
def test_the_view_replaces_the_photo_only(astronaut_profile, monkeypatch, even, fill, lift):
    calls = []
    monkeypatch.setattr(grain, "even_grain", lambda photo, lm: calls.append("even") or photo + 1)
    monkeypatch.setattr(farside, "fill_far_side", lambda photo, lm: calls.append("fill") or photo + 2)
    monkeypatch.setattr(sockets, "lift_sockets", lambda photo, lm: calls.append("lift") or photo + 4)
    view = SwapPhotoProfile(astronaut_profile, even_grain=even, fill_far_side=fill, lift_sockets=lift)
    # evened first (the fill copies evened skin), lifted last (its sockets measured against the
    # filled skin)
    assert calls == ["even"] * even + ["fill"] * fill + ["lift"] * lift
    assert (view.evened, view.filled, view.lifted) == (even, fill, lift)
    photo = astronaut_profile["image"]
    np.testing.assert_array_equal(view["image"], photo + (1 if even else 0) + (2 if fill else 0) + (4 if lift else 0))
    assert view["image"] is view.image
    assert view["neutral"] is astronaut_profile["neutral"]
    assert view.name == astronaut_profile.name and view.crop_size == astronaut_profile.crop_size
    assert view.frame() is not None


def test_a_photo_that_needs_nothing_is_the_profiles_own(astronaut_profile, monkeypatch):
    monkeypatch.setattr(grain, "even_grain", lambda photo, lm: photo)
    monkeypatch.setattr(farside, "fill_far_side", lambda photo, lm: photo)
    monkeypatch.setattr(sockets, "lift_sockets", lambda photo, lm: photo)
    view = SwapPhotoProfile(astronaut_profile)
    assert view["image"] is astronaut_profile["image"] and not (view.evened or view.filled or view.lifted)
