"""The profile's photo as the swap textures the face with it: its grain evened
(`realtime.swap.grain`), a turned face's squeezed far side filled from its near side
(`realtime.swap.farside`) and its shaded eye sockets lifted (`realtime.swap.sockets`). Built once
per swap engine; the profile itself is never changed.
"""
from __future__ import annotations

from typing import Any

from realtime.swap import farside, grain, sockets

__all__ = ["SwapPhotoProfile"]


class SwapPhotoProfile:
    """`profile` (a ProfileLike) whose ``image`` is its photo prepared for the swap — evened
    (`even_grain`), far side filled (`fill_far_side`) and sockets lifted (`lift_sockets`), in that
    order, each when asked and where the photo needs it; every other array and attribute (name,
    tier, settings, files, crop size, `frame()`, `path()`, ...) is the profile's (`base`). An
    atlas profile's keyframes are used as they are."""

    def __init__(self, profile: Any, even_grain: bool = True, fill_far_side: bool = True,
                 lift_sockets: bool = True):
        self.base = profile
        image, landmarks = profile["image"], profile["landmarks"]
        self.evened = even_grain and (image := grain.even_grain(image, landmarks)) is not profile["image"]
        before = image
        self.filled = fill_far_side and (image := farside.fill_far_side(image, landmarks)) is not before
        before = image
        self.lifted = lift_sockets and (image := sockets.lift_sockets(image, landmarks)) is not before
        self.image = image

    def __getattr__(self, name: str) -> Any:
        if name in ("base", "image"):      # not set yet: no recursion through the base
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getitem__(self, key: str) -> Any:
        return self.image if key == "image" else self.base[key]

    def __repr__(self) -> str:
        return (f"SwapPhotoProfile({self.base!r}, evened={self.evened}, filled={self.filled}, "
                f"lifted={self.lifted})")
