"""The atlas tier's generator: per frame, the query of the posed avatar, keyframe weights for
the face, the mouth and the eyes, and one blend pass over the G-buffer (`kernels.atlas_blend`)."""
from __future__ import annotations

import numpy as np

from kernels import atlas_blend
from realtime.core.errors import ProfileError
from realtime.core.frame import Frame
from realtime.face import topology
from realtime.mesh.rig import EYE_CENTRES, EYE_LOOPS, MOUTH_CENTRE, Rig
from realtime.tiers.atlas.query import EYES_DIM, MOUTH_DIM, AtlasMap, measure
from realtime.tiers.atlas.regions import RegionPicker, region_alpha
from realtime.tiers.atlas.weights import WeightSmoother, sparsify
from realtime.tiers.mouth import MouthCavity

SHARPEN = 2.0            # raw weights are raised to this power (renormalised): the nearest
#                          view dominates, fewer views are mixed, less blur; still continuous
FLIP_PRIOR = 0.25        # weight factor of mirrored keyframes: a real view is preferred where
#                          both are near (the mirror lights the face from the wrong side)
MOUTH_CLOSED = 0.08      # mouth query below which the mouth blends several keyframes ...
MOUTH_OPEN = 0.25        # ... and above which it shows one (teeth never double); linear between
SOFT_KEYS = 3            # a closed mouth blends this many best-matching keyframes ...
SOFT_COST = 0.15         # ... weighted exp(−Δcost / SOFT_COST)
REGION_VIEW_COST = 0.75  # region cost per query unit of |Δyaw| + |Δpitch|
EYE_HARDNESS = 1.0       # 1: the eyes come from one keyframe at a time (irises never double)
EYE_CUT = 0.3            # eye keyframes further apart than this in opening (query units, 0.03
#                          iod) switch at once, not cross-faded (RegionPicker: a blink is a cut)


class AtlasGenerator:
    """Tier 2: blend the keyframe views of the query's simplex on the recombined mesh."""

    tier = "atlas"

    def __init__(self, profile, rig: Rig):
        if not getattr(profile, "has_atlas", False):
            raise ProfileError(f"profile {getattr(profile, 'name', '?')!r} has no appearance atlas: "
                               f"the atlas tier needs a profile enrolled from a video "
                               f"(python run.py enroll CLIP.mp4 --name NAME), or choose the warp tier")
        self.rig = rig
        self.images = np.ascontiguousarray(profile["atlas_images"])
        lms = profile["atlas_landmarks"].astype(np.float64)
        self.query = profile["atlas_query"].astype(np.float64)
        self.map = AtlasMap(self.query, profile["atlas_dims"], profile["atlas_simplices"])
        n = len(self.images)
        self.flipped = profile["atlas_flipped"].astype(bool)
        self._prior = np.where(self.flipped, FLIP_PRIOR, 1.0)
        shapes = [measure(l) for l in lms]
        self.mouth = RegionPicker(np.stack([s[1] for s in shapes]), self.query, self.flipped,
                                  shape_unit=0.05, open_dim=MOUTH_DIM, under_cost=2.0,
                                  view_cost=REGION_VIEW_COST, soft_k=SOFT_KEYS, soft_t=SOFT_COST)
        self.eyes = RegionPicker(np.stack([s[2] for s in shapes]), self.query, self.flipped,
                                 shape_unit=0.03, view_cost=REGION_VIEW_COST,
                                 cut_dim=EYES_DIM, cut=EYE_CUT)
        # Per-keyframe texture coordinates: face landmarks and the mouth centre in the
        # keyframe's own crop; head-layer vertices are never sampled through these.
        uv = np.repeat(rig.attributes[None, :, :2], n, axis=0).astype(np.float32)
        inner = sorted(set(topology.INNER_LIP_UPPER) | set(topology.INNER_LIP_LOWER))
        uv[:, :MOUTH_CENTRE] = lms[:, :, :2]
        uv[:, MOUTH_CENTRE] = lms[:, inner, :2].mean(1)
        for centre, loop in zip(EYE_CENTRES, EYE_LOOPS):
            uv[:, centre] = lms[:, loop, :2].mean(1)
        self.key_uv = np.ascontiguousarray(uv)
        photo = np.ascontiguousarray(profile["image"])
        self.ref_image, self.ref_uv = rig.texture_at_crop_density(
            photo, np.ascontiguousarray(rig.attributes[:, :2]))
        self.alpha = region_alpha(profile["neutral"], rig.vertex_count)
        self.head_lo = int(rig.ranges["head"][0])
        self.cavity = MouthCavity(photo, profile["landmarks"])
        self.face_smoother = WeightSmoother(n)
        self._last_index: int | None = None
        s = rig.crop_size
        self._out = np.empty((s, s, 3), np.float32)
        self.last: dict = {}  # what the last frame used (overlays, tests)

    def reset(self) -> None:
        self.face_smoother.reset()
        self.mouth.reset()
        self.eyes.reset()
        self._last_index = None

    def target_weights(self, q: np.ndarray) -> np.ndarray:
        """(N,) face weights of query q before the cross-fade: barycentric in the simplex,
        mirrored keyframes down-weighted, sharpened, at most MAX_FACE_KEYS kept; continuous
        in q (except where MAX_FACE_KEYS + 1 weights tie, which the cross-fade absorbs)."""
        raw = self.map.weights(q)
        w = (raw * self._prior) ** SHARPEN
        total = w.sum()
        return sparsify(w / total if total > 0 else raw)

    def weights(self, q: np.ndarray, lips: np.ndarray, eyes: np.ndarray, steps: float = 1.0
                ) -> np.ndarray:
        """(N, 3) keyframe weights (face, mouth, eyes) after `steps` frames; each column sums
        to one."""
        open_ = (q[MOUTH_DIM] - MOUTH_CLOSED) / (MOUTH_OPEN - MOUTH_CLOSED)
        return np.stack([self.face_smoother(self.target_weights(q), steps),
                         self.mouth(q, lips, steps, hardness=float(np.clip(open_, 0.0, 1.0))),
                         self.eyes(q, eyes, steps, hardness=EYE_HARDNESS)], 1)

    def __call__(self, frame: Frame) -> np.ndarray:
        steps = 1.0
        if self._last_index is not None and frame.index >= 0:
            steps = float(min(30, max(1, frame.index - self._last_index)))
        if frame.index >= 0:
            self._last_index = frame.index
        q, lips, eyes = measure(frame.vertices[: topology.N_LANDMARKS])
        w = self.weights(q, lips, eyes, steps)
        keys = np.nonzero(w.max(1) > 0)[0].astype(np.int64)
        gbuf = frame.gbuf
        out = np.empty_like(self._out)
        atlas_blend(gbuf, self.rig.triangles, self.head_lo, self.ref_uv, self.ref_image, keys,
                    self.key_uv, self.images, np.ascontiguousarray(w[keys], dtype=np.float32),
                    self.alpha, out=out)
        # Synthetic cavity where no keyframe opens its mouth as wide as asked.
        asked = q[MOUTH_DIM]
        real = 1.0
        if asked > 1e-6:
            opened = np.minimum(1.0, np.maximum(self.query[:, MOUTH_DIM], 0.0) / asked)
            real = float(np.sum(w[:, 1] * opened))
        if real < 0.999:
            self.cavity.apply(gbuf, self.rig, out, real, teeth=getattr(frame.state, "teeth", 0.0),
                              tongue=getattr(frame.state, "tongue", 0.0))
        self.last = {"query": q, "keys": keys, "weights": w[keys], "real_mouth": real}
        return out
