"""The swap mask's outline weight per rig vertex: 0 on the identity's face oval, 1 a feather
inside it (`realtime.swap.crop.vertex_alpha`), with the texture's folded outline left out
(`realtime.swap.farside.folds`: where a turned photo's mesh folds back over its own cheek and
the hair beyond, a few pixels that the swap would stretch into stripes down the cheek).

The warp tier textures the face from the profile's photo: one weight, fixed. The atlas tier
mixes keyframes per frame, each turned its own way (a mirrored one folded on the other side)
and its outline ring from the reference frame (the atlas's "edge" region): the weight is the
keyframes' own, mixed by the face weights the generator used on this frame, and the
reference's under the edge region.
"""
from __future__ import annotations

import numpy as np

from realtime.mesh.rig import Rig
from realtime.swap.crop import derived_attribute, vertex_alpha
from realtime.swap.farside import folds

__all__ = ["OutlineWeights"]


def _weight(rig: Rig, landmarks: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    return derived_attribute(rig, vertex_alpha(neutral, outline=folds(landmarks, neutral))).astype(np.float32)


class OutlineWeights:
    """(V,) float32 outline weight of the swap rig's vertices for the frame being drawn.

    `profile`: its "neutral" shape and its photo's "landmarks" (and, with an atlas `generator`,
    its "atlas_landmarks"); `generator`: the tier's generator — an atlas generator (its `last`
    keyframes and weights, its region `alpha`) makes the weight follow its keyframes (`varies`);
    any other leaves it the photo's."""

    def __init__(self, rig: Rig, profile, generator=None):
        neutral = profile["neutral"]
        self.reference = _weight(rig, profile["landmarks"], neutral)
        self.generator = generator if getattr(generator, "tier", None) == "atlas" else None
        self.keys: np.ndarray | None = None
        if self.generator is not None:
            self.keys = np.stack([_weight(rig, lm, neutral) for lm in profile["atlas_landmarks"]])
            self.edge = np.asarray(self.generator.alpha, np.float32)[:, 2]

    @property
    def varies(self) -> bool:
        """Whether the weight changes from frame to frame (an atlas profile)."""
        return self.keys is not None

    def __call__(self) -> np.ndarray:
        last = self.generator.last if self.generator is not None else None
        if not last:
            return self.reference
        w = np.asarray(last["weights"], np.float64)[:, 0]
        if not w.sum() > 0:
            return self.reference
        face = (w / w.sum()) @ self.keys[np.asarray(last["keys"])]
        return ((1.0 - self.edge) * face + self.edge * self.reference).astype(np.float32)
