"""A profile seen at another render resolution: the same crop box in the image, S' pixels a side.

A profile stores its face crop at one size S (``crop_size``; ``crop_from_image`` maps image
pixels into it, ``paste_mask`` and ``face_mask`` are S×S). The engine may render the crop at
S' ≠ S (`realtime.engine.sizing`: the crop follows the face's size in the output, so the
paste-back does not upsample a 256² face 1.8×). `ScaledProfile` is that profile as every stage
below the engine reads it: a `ProfileLike` whose crop arrays are at S' and whose other arrays
(image, landmarks, head layer, atlas, ...) are the profile's own. The rig, the tiers, the
smoother and the compositor then work at S' without knowing that a profile ever had another
size; the texture prefilter (`Rig.texture_at_crop_density`) follows the new density through the
scaled ``crop_from_image``.

Why here (the mesh layer) and not in the core: the crop's pixel conventions live here
(`head_layer.crop_affine`, the head layer's border on the crop's pixel *edges*), and the scaling
must keep them: crop pixel centres at integer coordinates, x' = (x + ½)·k − ½ with k = S'/S, so
the edges −½ and S − ½ land on −½ and S' − ½ and the head layer's fixed border still closes the
S'² crop exactly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = ["ScaledProfile", "scale_crop_affine", "MIN_RENDER_SIZE"]

MIN_RENDER_SIZE = 32


def scale_crop_affine(a: np.ndarray, k: float) -> np.ndarray:
    """(2, 3) float64: the crop affine `a` (image px → crop px) for a crop of the same box with k
    times as many pixels a side (pixel centres at integers: x' = (x + ½)·k − ½)."""
    a = np.asarray(a, np.float64)
    out = a * k
    out[:, 2] = k * (a[:, 2] + 0.5) - 0.5
    return out


def _resize(mask: np.ndarray, size: int) -> np.ndarray:
    """`mask` (S, S) resampled to (size, size), pixel centres aligned as in `scale_crop_affine`."""
    up = size >= mask.shape[0]
    return cv2.resize(mask, (size, size), interpolation=cv2.INTER_LINEAR if up else cv2.INTER_AREA)


class ScaledProfile:
    """`profile` (a ProfileLike) with its face crop at `size`² pixels.

    ``crop_size`` is `size`; ``crop_from_image`` is scaled (`scale_crop_affine`); ``paste_mask``
    (float32) is resampled bilinearly (area-averaged when smaller); ``face_mask`` (uint8 0/1) is
    the resampled mask thresholded at ½. Every other array, the name, tier, settings, files,
    `frame()` and `path()` are the profile's. `base` is the profile itself, `scale` = size / S.
    The scaled arrays are computed once here (the engine builds one view per session).
    """

    def __init__(self, profile: Any, size: int):
        size = int(size)
        if size < MIN_RENDER_SIZE:
            raise ValueError(f"render size {size} is below {MIN_RENDER_SIZE} "
                             f"(the engine validates the user's value: realtime.engine.sizing)")
        self.base = profile
        self.crop_size = size
        self.scale = size / float(profile.crop_size)
        self.name = profile.name
        self.tier = profile.tier
        self.settings = profile.settings
        self.files = profile.files
        paste = np.asarray(profile["paste_mask"], np.float32)
        face = np.asarray(profile["face_mask"], np.float32)
        self._arrays = {
            "crop_from_image": scale_crop_affine(profile["crop_from_image"], self.scale).astype(np.float32),
            "paste_mask": np.clip(_resize(paste, size), 0.0, 1.0).astype(np.float32),
            "face_mask": (_resize(face, size) >= 0.5).astype(np.uint8),
        }

    @property
    def has_atlas(self) -> bool:
        return bool(self.base.has_atlas)

    def __getitem__(self, key: str) -> np.ndarray:
        if key in self._arrays:
            return self._arrays[key]
        return self.base[key]

    def frame(self) -> Any:
        return self.base.frame()

    def path(self, rel: str) -> Path:
        return self.base.path(rel)

    def __repr__(self) -> str:
        return f"ScaledProfile({self.name!r}, {self.base.crop_size} → {self.crop_size})"
