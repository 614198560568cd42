"""The swap's geometry: a rig without the head layer, a crop that follows the driver's face, and
the per-vertex and per-triangle attributes the swap's masks are made of.

Coordinates. The swap draws into an S×S crop (S = the profile's crop size) whose placement in
the driver's frame changes every frame (`CropFollower`: axis-aligned, centred on the posed face,
its side a fixed multiple of the face's scale, smoothed). The rig (`realtime.mesh.rig`) maps
"profile-image pixels" into its crop through a fixed affine; the swap rig is the profile's rig
with that affine replaced by the one that frames the profile's *own* face as the swap crop
frames the driver's (`nominal_affine`), and a point of the driver's frame is handed to it in
*virtual* profile-image coordinates ``A_nom⁻¹ · C_t · x``. So the rig poses every vertex it
derives from the landmarks (mouth and eye centres, ...) exactly as in reenactment, the warp
tier prefilters the photo for the right density, and nothing here counts vertices.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from realtime.face import geometry, topology
from realtime.face.geometry import Similarity
from realtime.mesh.head_layer import crop_affine
from realtime.mesh.rig import Rig

__all__ = ["SWAP_MARGIN", "face_rig", "nominal_affine", "face_extent", "CropFollower", "to_virtual",
           "vertex_alpha", "triangle_labels", "derived_attribute", "invert_affine"]

#: The crop's side over the face's widest extent from its centre (both sides): room for a
#: turned head and an open jaw.
SWAP_MARGIN = 1.3
_OVAL = np.array(topology.FACE_OVAL)


def invert_affine(a: np.ndarray) -> np.ndarray:
    return np.linalg.inv(np.vstack([a, [0.0, 0.0, 1.0]]))[:2]


def face_extent(neutral: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre, half side) of a canonical neutral shape's face oval, canonical units: the oval's
    mean and its largest distance from it along x or y."""
    oval = np.asarray(neutral, np.float64)[_OVAL]
    c = oval.mean(0)
    return c, float(np.abs(oval[:, :2] - c[:2]).max())


def nominal_affine(profile, size: int, margin: float = SWAP_MARGIN) -> np.ndarray:
    """(2, 3) affine framing the profile's own face as the swap crop frames the driver's."""
    frame = profile.frame()
    centre, half = face_extent(profile["neutral"])
    c = frame.apply(centre[None])[0, :2]
    return crop_affine(c, 2.0 * half * margin * frame.scale, size)


def face_rig(rig: Rig, affine: np.ndarray) -> Rig:
    """The rig without its head layer (only the face is replaced), mapping through `affine`.

    The triangle ranges other than "head" keep their order; "head" becomes an empty range at the
    end, so the smoother (which smooths what lies below ``ranges["head"][0]``) smooths it all."""
    parts = [(k, r) for k, r in sorted(rig.ranges.items(), key=lambda kv: kv[1][0]) if k != "head"]
    tris, ranges, start = [], {}, 0
    for key, (lo, hi) in parts:
        tris.append(rig.triangles[lo:hi])
        ranges[key] = (start, start + hi - lo)
        start += hi - lo
    ranges["head"] = (start, start)
    triangles = np.ascontiguousarray(np.concatenate(tris), dtype=np.int32)
    return dataclasses.replace(rig, triangles=triangles, ranges=ranges,
                               crop_from_image=np.asarray(affine, np.float64))


def to_virtual(points: np.ndarray, crop: np.ndarray, nominal_inv: np.ndarray) -> np.ndarray:
    """(N, 3) frame points (pixels, z in pixels) → virtual profile-image coordinates: the points
    the swap rig maps onto ``crop · points`` (z scaled alike)."""
    p = np.asarray(points, np.float64)
    a = nominal_inv @ np.vstack([crop, [0.0, 0.0, 1.0]])
    out = np.empty_like(p)
    out[:, 0] = a[0, 0] * p[:, 0] + a[0, 1] * p[:, 1] + a[0, 2]
    out[:, 1] = a[1, 0] * p[:, 0] + a[1, 1] * p[:, 1] + a[1, 2]
    out[:, 2] = p[:, 2] * float(np.hypot(a[0, 0], a[0, 1]))
    return out


class CropFollower:
    """The swap crop: axis-aligned, centred on the posed face oval, side = 2 · half extent ·
    margin · face scale, smoothed exponentially (`keep` of the previous placement per frame) and
    snapped when the face jumps by more than `snap` of the side. `__call__` returns the (2, 3)
    frame → crop affine."""

    def __init__(self, neutral: np.ndarray, size: int, margin: float = SWAP_MARGIN,
                 keep: float = 0.5, snap: float = 0.08):
        self.size = int(size)
        self.centre, half = face_extent(neutral)
        self.side_per_scale = 2.0 * half * margin
        self.keep, self.snap = float(keep), float(snap)
        self.reset()

    def reset(self) -> None:
        self._c: np.ndarray | None = None
        self._side = 0.0

    def __call__(self, pose: Similarity) -> np.ndarray:
        c = pose.apply(self.centre[None])[0, :2]
        side = self.side_per_scale * pose.scale
        if self._c is not None and np.hypot(*(c - self._c)) < self.snap * side \
                and abs(side - self._side) < self.snap * side:
            c = self.keep * self._c + (1.0 - self.keep) * c
            side = self.keep * self._side + (1.0 - self.keep) * side
        self._c, self._side = c, side
        return crop_affine(c, side, self.size)


def _polygon_distance(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    a = polygon
    b = np.roll(polygon, -1, 0)
    ab = b - a
    t = np.clip(((points[:, None] - a[None]) * ab[None]).sum(-1) / np.maximum((ab ** 2).sum(-1), 1e-12)[None],
                0.0, 1.0)
    proj = a[None] + t[..., None] * ab[None]
    return np.linalg.norm(points[:, None] - proj, axis=-1).min(1)


def vertex_alpha(neutral: np.ndarray, feather: float = 0.18, forehead: tuple[float, float] | None = None,
                 outline: np.ndarray | None = None, outline_feather: float = 0.09) -> np.ndarray:
    """(478,) blend weight of each landmark: 0 on the face oval, rising (smoothstep) to 1 at
    `feather` interoculars inside it (canonical distance to the oval polygon). Interpolated over
    the face, it is the soft mask that follows the identity's outline and jaw.

    `forehead` (lo, hi): above the brows the weight also falls, from 1 at `lo` interoculars above
    the brows' top to 0 at `hi` — the upper forehead stays the driver's. Off by default: it costs
    identity (dlib distance to the photo +0.06 on s1 ← d10 and s5 ← d10); the identity's own
    fringe is left out by its skin map (`realtime.swap.skin`) instead.

    `outline` (478,) bool: landmarks that count as outline too: 0 there, rising to 1 at
    `outline_feather` interoculars from the nearest of them — the photo's folded outline
    (`realtime.swap.farside.folds`). Half the outline's feather: as wide, it took more of the
    profile's cheek than the fold (s18 ← d14, dlib distance to the photo 0.561 → 0.576; at
    half 0.561, 0.563 once the folds left the lips out, and the fold's stripes are gone all the
    same)."""
    n = np.asarray(neutral, np.float64)
    iod = max(geometry.interocular(n), 1e-9)
    d = _polygon_distance(n[:, :2], n[_OVAL, :2]) / iod
    if outline is not None and np.any(outline):
        more = n[np.asarray(outline, bool), :2]
        # in units that reach `feather` at `outline_feather` from them
        near = np.linalg.norm(n[:, None, :2] - more[None], axis=-1).min(1) / iod
        d = np.minimum(d, near * (feather / outline_feather))
    t = np.clip(d / feather, 0.0, 1.0)
    a = t * t * (3.0 - 2.0 * t)
    if forehead is not None:
        lo, hi = forehead
        top = n[list(topology.RIGHT_BROW) + list(topology.LEFT_BROW), 1].min()
        h = np.clip(((top - n[:, 1]) / iod - lo) / (hi - lo), 0.0, 1.0)   # y points down
        a *= 1.0 - h * h * (3.0 - 2.0 * h)
    a[_OVAL] = 0.0
    return a


def derived_attribute(rig: Rig, values: np.ndarray) -> np.ndarray:
    """(V,) a per-landmark scalar (478,) extended to every rig vertex the way the rig derives
    its extra vertices from the landmarks (means of contours: posed through `rig.pose` as an x
    coordinate). Head-layer vertices get garbage; the swap draws none of their triangles."""
    pts = np.zeros((topology.N_LANDMARKS, 3), np.float64)
    pts[:, 0] = values
    a = rig.crop_from_image
    v = rig.pose(pts, rig.neutral_frame).astype(np.float64)
    return (v[:, 0] - a[0, 2]) / a[0, 0]   # the nominal affine has no rotation (a01 = 0)


def _ring(indices, triangles: np.ndarray, rings: int) -> np.ndarray:
    """Landmarks within `rings` mesh edges of `indices`."""
    mark = np.zeros(topology.N_LANDMARKS, bool)
    mark[list(indices)] = True
    for _ in range(rings):
        hit = mark[triangles].any(1)
        mark[np.unique(triangles[hit])] = True
    return mark


def triangle_labels(rig: Rig) -> dict[str, np.ndarray]:
    """Per-triangle weights (T + 1,) float32 of the swap rig, the last entry 0 (for tri_id −1):

    - "skin": face triangles away from the lips, eyes, brows and the outline (colour statistics);
    - "allow": where an occluder may be detected on the driver: skin farther from the features
      (their dark parts, the lid and lip lines, the nostrils would read as occluders);
    - "fan": the eye and mouth openings (the driver's own pixels show there).
    """
    t = rig.triangles
    n_tri = len(t)
    face_lo, face_hi = rig.ranges["face"]
    face = t[face_lo:face_hi]
    labels = topology.region_labels()
    features = np.flatnonzero(labels > 0)
    near = _ring(features, face, 1)
    near[_OVAL] = True
    skin = np.zeros(n_tri + 1, np.float32)
    skin[face_lo:face_hi] = ~near[face].any(1)
    # the lips one ring further: a wide-open mouth stretches the lower lip and its shadow past
    # the first ring, and the pink lip read as an occluder showed through the swapped chin
    far = _ring(features, face, 1) | _ring(np.flatnonzero(labels == 1), face, 2) | _nostril_mask()
    allow = np.zeros(n_tri + 1, np.float32)
    allow[face_lo:face_hi] = ~far[face].any(1)
    fan = np.zeros(n_tri + 1, np.float32)
    for key in ("eyes", "mouth"):
        lo, hi = rig.ranges.get(key, (0, 0))
        fan[lo:hi] = 1.0
    return {"skin": skin, "allow": allow, "fan": fan}


def _nostril_mask() -> np.ndarray:
    """Landmarks of the nose's underside and wings (dark nostrils on every driver), and the
    groove where a wing meets the cheek (`NOSE_GROOVE`)."""
    m = np.zeros(topology.N_LANDMARKS, bool)
    m[[1, 2, 4, 5, 19, 94, 97, 98, 99, 326, 327, 328, 141, 370, 164, 167, 393, 240, 460, 75, 305,
       79, 309, 20, 250, 60, 290, 166, 392, 238, 458, 239, 459, 241, 461, 242, 462, 218, 438,
       219, 439, 235, 455, 64, 294, 48, 278, 115, 344, 220, 440, 45, 275, 44, 274, 125, 354]] = True
    m[list(NOSE_GROOVE)] = True
    return m


#: The groove between a nose wing and the cheek (both sides): in shadow on a smiling or side-lit
#: driver, darker than the skin low-pass by the occluder test's measure, and where the identity's
#: nose is narrower than the driver's it lies on the identity's cheek: kept there as an occluder,
#: it drew a dark diagonal scratch down the swapped cheek (s5 ← d13, frames 200-320, smiling).
NOSE_GROOVE = (142, 129, 102, 49, 209, 36, 371, 358, 331, 279, 429, 266)
