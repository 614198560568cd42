"""The profile's photo as the swap textures the face with it: its grain evened
(`realtime.swap.grain`), a turned face's squeezed far side filled from its near side
(`realtime.swap.farside`), its shaded eye sockets lifted (`realtime.swap.sockets`) and a fringe
over its forehead painted out with its skin (`realtime.swap.skin.fill_fringe`), or else the
forehead's skin in the shade of the hair the swap leaves out lifted to its lit skin
(`realtime.swap.skin.lift_hair_shade`). Built once per swap engine; the profile itself is never
changed.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from realtime.swap import farside, grain, skin, sockets

__all__ = ["SwapPhotoProfile"]


def _prepared(image: np.ndarray, landmarks: np.ndarray, even: bool, fill: bool,
              lift: bool) -> tuple[np.ndarray, tuple[bool, bool, bool]]:
    """`image` evened, filled and lifted as asked (each step the same array where it needs
    nothing), and which of the three changed it."""
    done = []
    for asked, step in ((even, grain.even_grain), (fill, farside.fill_far_side), (lift, sockets.lift_sockets)):
        before = image
        if asked:
            image = step(image, landmarks)
        done.append(image is not before)
    return image, (done[0], done[1], done[2])


class SwapPhotoProfile:
    """`profile` (a ProfileLike) whose ``image`` is its photo prepared for the swap — evened
    (`even_grain`), far side filled (`fill_far_side`) and sockets lifted (`lift_sockets`), in that
    order, each when asked and where the photo needs it, then a fringe painted out (`fill_fringe`,
    `realtime.swap.skin.fill_fringe`: off where the swap drops the fringe instead, showing the
    driver's forehead, and where the atlas tier draws an atlas profile's keyframes, which are not
    painted: the swap's skin map, read from the photo, must see the fringe they draw; where no
    fringe is painted out, the forehead's skin in the shade of the hair the swap leaves out is
    lifted instead, `lift_hair_shade`, under the same conditions) — and, for
    an atlas profile, whose
    ``atlas_images`` are its keyframes with the hair on their far side filled from the near side
    (`fill_far_side`, `hair_only`; each at its own landmarks, with `fill_far_side`): a keyframe
    turned like the video's face brought the hair at its far cheek's edge, which a frontal driver
    stretched into a dark crescent down the swapped cheek (s18 ← d10). Their skin stays as it is:
    filled whole, the far cheeks made the swap less like the video's face (dlib distance to the
    photo, s18 ← d10 0.540 → 0.589, d14 0.585 → 0.634; the hair alone: 0.546, 0.614; README,
    "A turned photo's far side"). Every other array and attribute (name,
    tier, settings, files, crop size, `frame()`, `path()`, ...) is the profile's (`base`).
    atlas: whether the keyframes are drawn at all (the atlas tier; False: the warp tier's swap,
    which reads the photo alone). `keyframes`: how many keyframes were changed."""

    def __init__(self, profile: Any, even_grain: bool = True, fill_far_side: bool = True,
                 lift_sockets: bool = True, atlas: bool = True, fill_fringe: bool = True):
        self.base = profile
        asked = (even_grain, fill_far_side, lift_sockets)
        self.image, (self.evened, self.filled, self.lifted) = _prepared(profile["image"], profile["landmarks"], *asked)
        #: whether the photo's fringe was painted out
        self.defringed = False
        # Not where the atlas tier draws the keyframes: they keep their fringe, and the skin map
        # read from a painted photo kept the whole forehead, so their fringe was drawn whole across
        # the driver's (a fringed video profile); the unpainted photo's map drops its hair.
        #: whether the forehead's skin in the shade of the hair the swap leaves out was lifted
        self.shade_lifted = False
        if fill_fringe and not (atlas and getattr(profile, "has_atlas", False)):
            before = self.image
            measured: dict = {}
            self.image = skin.fill_fringe(self.image, profile, measured)
            self.defringed = self.image is not before
            if not self.defringed:
                self.image = skin.lift_hair_shade(self.image, profile, measured.get("forehead_hair", -1.0),
                                                  measured.get("skin_odds"))
                self.shade_lifted = self.image is not before
        self._atlas = None
        self.keyframes = 0
        if atlas and getattr(profile, "has_atlas", False) and fill_far_side:
            images = list(profile["atlas_images"])       # views, each kept to compare with what comes back
            done = [farside.fill_far_side(im, lm, hair_only=True) for im, lm in zip(images, profile["atlas_landmarks"])]
            self.keyframes = sum(d is not im for d, im in zip(done, images))
            if self.keyframes:
                self._atlas = np.stack(done)

    def __getattr__(self, name: str) -> Any:
        if name in ("base", "image", "_atlas"):      # not set yet: no recursion through the base
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getitem__(self, key: str) -> Any:
        if key == "atlas_images" and self._atlas is not None:
            return self._atlas
        return self.image if key == "image" else self.base[key]

    def __repr__(self) -> str:
        return (f"SwapPhotoProfile({self.base!r}, evened={self.evened}, filled={self.filled}, "
                f"lifted={self.lifted}, defringed={self.defringed}, shade_lifted={self.shade_lifted}, "
                f"keyframes={self.keyframes})")
