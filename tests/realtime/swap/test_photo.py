"""realtime.swap.photo: the swap's view of a profile, its photo prepared and nothing else."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.swap import farside, grain, skin, sockets
from realtime.swap.photo import SwapPhotoProfile


@pytest.mark.parametrize("even, fill, lift, fringe", [(True, True, True, True), (True, False, True, False),
                                                      (False, True, False, True), (False, False, True, False),
                                                      (False, False, False, False), (False, False, False, True)])
def test_the_view_replaces_the_photo_only(astronaut_profile, monkeypatch, even, fill, lift, fringe):
    calls = []
    monkeypatch.setattr(grain, "even_grain", lambda photo, lm: calls.append("even") or photo + 1)
    monkeypatch.setattr(farside, "fill_far_side", lambda photo, lm: calls.append("fill") or photo + 2)
    monkeypatch.setattr(sockets, "lift_sockets", lambda photo, lm: calls.append("lift") or photo + 4)
    monkeypatch.setattr(skin, "fill_fringe", lambda photo, profile, info=None: calls.append("fringe") or photo + 8)
    view = SwapPhotoProfile(astronaut_profile, even_grain=even, fill_far_side=fill, lift_sockets=lift,
                            fill_fringe=fringe)
    # evened first (the fill copies evened skin), lifted after the fill (its sockets measured
    # against the filled skin), the fringe painted last (with the skin as the swap shows it)
    assert calls == ["even"] * even + ["fill"] * fill + ["lift"] * lift + ["fringe"] * fringe
    assert (view.evened, view.filled, view.lifted, view.defringed) == (even, fill, lift, fringe)
    photo = astronaut_profile["image"]
    np.testing.assert_array_equal(view["image"], photo + (1 if even else 0) + (2 if fill else 0) + (4 if lift else 0)
                                  + (8 if fringe else 0))
    assert view["image"] is view.image
    assert view["neutral"] is astronaut_profile["neutral"]
    assert view.name == astronaut_profile.name and view.crop_size == astronaut_profile.crop_size
    assert view.frame() is not None


def test_a_photo_that_needs_nothing_is_the_profiles_own(astronaut_profile, monkeypatch):
    monkeypatch.setattr(grain, "even_grain", lambda photo, lm: photo)
    monkeypatch.setattr(farside, "fill_far_side", lambda photo, lm: photo)
    monkeypatch.setattr(sockets, "lift_sockets", lambda photo, lm: photo)
    monkeypatch.setattr(skin, "lift_hair_shade", lambda photo, profile, cover=-1.0, odds=None: photo)
    view = SwapPhotoProfile(astronaut_profile)        # her own fringe is no fringe to paint out
    assert view["image"] is astronaut_profile["image"] and not (view.evened or view.filled or view.lifted
                                                                or view.defringed or view.shade_lifted)


@pytest.mark.parametrize("painted", [False, True])
def test_the_hairs_shade_is_lifted_where_no_fringe_is_painted_out(astronaut_profile, monkeypatch, painted):
    """`lift_hair_shade` after `fill_fringe` when that leaves the photo as it is (a partial
    fringe, its edge's shade lifted), not when it painted a fringe out, nor when not asked."""
    monkeypatch.setattr(skin, "fill_fringe", lambda photo, profile, info=None: photo + 8 if painted else photo)
    monkeypatch.setattr(skin, "lift_hair_shade", lambda photo, profile, cover=-1.0, odds=None: photo + 16)
    view = SwapPhotoProfile(astronaut_profile, even_grain=False, fill_far_side=False, lift_sockets=False)
    assert (view.defringed, view.shade_lifted) == (painted, not painted)
    np.testing.assert_array_equal(view["image"], astronaut_profile["image"] + (8 if painted else 16))
    kept = SwapPhotoProfile(astronaut_profile, even_grain=False, fill_far_side=False, lift_sockets=False,
                            fill_fringe=False)
    assert kept["image"] is astronaut_profile["image"] and not kept.shade_lifted


class _AtlasStandIn:
    """A profile with an atlas of three keyframes (only what the swap's view reads)."""

    has_atlas = True

    def __init__(self, arrays):
        self.arrays = arrays

    def __getitem__(self, key):
        return self.arrays[key]


def test_an_atlas_profile_s_keyframes_have_their_far_side_s_hair_filled(monkeypatch):
    """Before the fix (README audit, helper 89): the keyframes were used as they were, and a
    turned keyframe's hair at its far cheek's edge was stretched by a frontal driver into a dark
    crescent down the swapped cheek (s18 ← d10). Only the hair: the far skin stays."""
    calls = []

    def step(name, delta, needs):
        def f(photo, lm, **k):
            calls.append((name, int(lm[0, 0]), k))
            return photo + delta if int(lm[0, 0]) in needs else photo
        return f

    monkeypatch.setattr(grain, "even_grain", step("even", 1, {0}))
    monkeypatch.setattr(farside, "fill_far_side", step("fill", 2, {0, 2}))
    monkeypatch.setattr(sockets, "lift_sockets", step("lift", 4, set()))
    monkeypatch.setattr(skin, "fill_fringe", lambda photo, profile, info=None: photo)    # (no fringe)
    monkeypatch.setattr(skin, "lift_hair_shade", lambda photo, profile, cover=-1.0, odds=None: photo)
    keys = np.zeros((3, 8, 8, 3), np.uint8)
    marks = np.zeros((3, 478, 3), np.float32)
    marks[:, 0, 0] = [1, 2, 3]                 # which keyframe a step is given
    profile = _AtlasStandIn({"image": np.zeros((8, 8, 3), np.uint8), "landmarks": np.zeros((478, 3), np.float32),
                             "atlas_images": keys, "atlas_landmarks": marks})
    view = SwapPhotoProfile(profile)
    assert (view.evened, view.filled, view.lifted) == (True, True, False)      # the photo's (landmark 0 at 0)
    assert [c for c in calls if c[1] > 0] == [("fill", k, {"hair_only": True}) for k in (1, 2, 3)]
    got = view["atlas_images"]
    assert view.keyframes == 1 and got.shape == keys.shape
    np.testing.assert_array_equal(got[:, 0, 0, 0], [0, 2, 0])            # keyframe 2 (index 1) filled
    assert view["atlas_landmarks"] is marks
    # keyframes that need nothing, or no fill asked: the profile's own array
    assert SwapPhotoProfile(profile, fill_far_side=False)["atlas_images"] is keys
    assert SwapPhotoProfile(profile, atlas=False)["atlas_images"] is keys      # the warp tier's swap
    monkeypatch.setattr(farside, "fill_far_side", lambda photo, lm, **k: photo)
    assert SwapPhotoProfile(profile)["atlas_images"] is keys


def test_an_atlas_profile_s_photo_keeps_its_fringe_where_its_keyframes_are_drawn(monkeypatch):
    """Before: the photo's fringe was painted out for the atlas tier too, whose keyframes are
    not: the skin map read from the painted photo kept the whole forehead, and the keyframes'
    fringe was drawn whole across the driver's (s18a with a fringe painted on, on d13: dark
    bars over the forehead). The warp tier's swap, which draws the photo, still paints it."""
    monkeypatch.setattr(grain, "even_grain", lambda photo, lm: photo)
    monkeypatch.setattr(farside, "fill_far_side", lambda photo, lm, **k: photo)
    monkeypatch.setattr(sockets, "lift_sockets", lambda photo, lm: photo)
    monkeypatch.setattr(skin, "fill_fringe", lambda photo, profile, info=None: photo + 8)
    photo = np.zeros((8, 8, 3), np.uint8)
    profile = _AtlasStandIn({"image": photo, "landmarks": np.zeros((478, 3), np.float32),
                             "atlas_images": np.zeros((3, 8, 8, 3), np.uint8),
                             "atlas_landmarks": np.zeros((3, 478, 3), np.float32)})
    drawn = SwapPhotoProfile(profile)                   # the atlas tier: its keyframes drawn
    assert drawn["image"] is photo and not drawn.defringed
    warp = SwapPhotoProfile(profile, atlas=False)       # the warp tier: the photo drawn
    assert warp.defringed and int(warp["image"][0, 0, 0]) == 8
