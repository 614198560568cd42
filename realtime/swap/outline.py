"""The swap mask's outline weight per rig vertex: 0 on the identity's face oval, 1 a feather
inside it (`realtime.swap.crop.vertex_alpha`), with the texture's folded outline left out
(`realtime.swap.farside.folds`: where a turned photo's mesh folds back over its own cheek and
the hair beyond, a few pixels that the swap would stretch into stripes down the cheek).

The warp tier textures the face from the profile's photo: one weight, fixed. The atlas tier
mixes keyframes per frame, each turned its own way (a mirrored one folded on the other side):
the weight is the keyframes' own, mixed per vertex as `kernels.atlas_blend` mixes their
pixels — the face keyframes' weights, the mouth's and the eyes' under their regions, and the
reference frame's under the outline ring (the atlas's "edge" region).
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
    keyframes and (face, mouth, eyes) weights, its region `alpha`) makes the weight follow its
    keyframes (`varies`); any other leaves it the photo's."""

    def __init__(self, rig: Rig, profile, generator=None):
        neutral = profile["neutral"]
        self.reference = _weight(rig, profile["landmarks"], neutral)
        self.generator = generator if getattr(generator, "tier", None) == "atlas" else None
        self.keys: np.ndarray | None = None
        if self.generator is not None:
            self.keys = np.stack([_weight(rig, lm, neutral) for lm in profile["atlas_landmarks"]])
            self.regions = np.asarray(self.generator.alpha, np.float32)[:, :3]   # (V, 3) mouth, eyes, edge

    @property
    def varies(self) -> bool:
        """Whether the weight changes from frame to frame (an atlas profile)."""
        return self.keys is not None

    def __call__(self) -> np.ndarray:
        last = self.generator.last if self.generator is not None else None
        if not last:
            return self.reference
        w = np.asarray(last["weights"], np.float64)[:, :3].copy()   # (J, 3) face, mouth, eyes
        if not w[:, 0].sum() > 0:
            return self.reference
        empty = ~(w.sum(0) > 0)
        w[:, empty] = w[:, :1]             # a region with no keyframe of its own: the face's
        total = w.sum(0)
        face, mouth, eyes = (w / total).T @ self.keys[np.asarray(last["keys"])]
        am, ae, ar = self.regions.T
        return ((1.0 - am - ae - ar) * face + am * mouth + ae * eyes + ar * self.reference).astype(np.float32)
