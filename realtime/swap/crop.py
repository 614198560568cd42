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

from kernels import texture
from realtime.face import geometry, topology
from realtime.face.geometry import Similarity
from realtime.mesh.head_layer import crop_affine
from realtime.mesh.rig import Rig

__all__ = ["SWAP_MARGIN", "face_rig", "nominal_affine", "face_extent", "CropFollower", "to_virtual",
           "vertex_alpha", "triangle_labels", "eye_wings", "EYE_WING", "derived_attribute", "invert_affine",
           "OutsideOccluders",
           "occluder_features", "not_skin", "hair_band", "hair_likeness", "HAIR_BAND",
           "HAIR_TOLERANCE", "HAIR_DEPTH", "hairline", "dilate", "scene_likeness", "representatives"]

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
      (their dark parts, the lid and lip lines, the nostrils would read as occluders) and from
      the outer eye corners' makeup (`EYE_WING`);
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
    # the identity's rest landmarks (the photo's) stand in for the driver's: the triangles are
    # the same, and their place around the eye differs little from face to face. Not the
    # triangles on the face's outline: the wing reached them on five of six profiles, where the
    # driver's oval lies over its own hair at the temple (d10, d11, d14), and painted skin into it
    wings = eye_wings(rig.attributes[:topology.N_LANDMARKS, :2], face) & ~np.isin(face, _OVAL).any(1)
    allow[face_lo:face_hi] = ~far[face].any(1) & ~wings
    fan = np.zeros(n_tri + 1, np.float32)
    for key in ("eyes", "mouth"):
        lo, hi = rig.ranges.get(key, (0, 0))
        fan[lo:hi] = 1.0
    return {"skin": skin, "allow": allow, "fan": fan}


#: Beyond each eye's outer corner, along the eye line, where eyeliner and the outer lashes sit:
#: (reach, half height) in interoculars from the outer corner; no face triangle whose centroid
#: lies in it allows an occluder (`eye_wings`). d10's black eyeliner wing and lashes run ~0.35 iod
#: out at L* 12-21, past the eye's one ring of triangles: kept as an occluder, at the partial
#: weight of the low grid's cells, they were a grey smudge beside the swapped eye (astronaut ←
#: d10, mean L* 0.05-0.25 iod beyond the image-left corner, first 40 frames: driver 28, swap 41,
#: with no occluder anywhere 47, with this 45); d19's lens glare there was a pale-green spot. A
#: small area, short of the face's outline (`triangle_labels`): hair over the temple or the
#: cheek, a hand at the face's side still show.
EYE_WING = (0.3, 0.12)


def eye_wings(points: np.ndarray, triangles: np.ndarray, wing: tuple[float, float] = EYE_WING) -> np.ndarray:
    """(T,) bool the `triangles` (T, 3) whose centroid, over `points` (478, 2) in any similarity
    frame, lies beyond an eye's outer corner within `wing` (reach, half height; interoculars) of
    it along the eye line."""
    p = np.asarray(points, np.float64)[:, :2]
    c = p[triangles].mean(1)
    iod = float(np.linalg.norm(p[topology.EYE_OUTER[0]] - p[topology.EYE_OUTER[1]]))
    mark = np.zeros(len(c), bool)
    if iod <= 0.0:
        return mark
    for outer, inner in topology.EYE_CORNERS:
        u = p[outer] - p[inner]
        u /= max(float(np.linalg.norm(u)), 1e-9)
        r = (c - p[outer]) / iod
        along, height = r @ u, np.abs(r @ np.array([-u[1], u[0]]))
        mark |= (along > 0.0) & (along <= wing[0]) & (height <= wing[1])
    return mark


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


#: The hair band (`OutsideOccluders`): the frame above the driver's face oval, from `inner` to
#: `outer` of the face's height (chin to the oval's top) beyond the oval's top, along the face's
#: own up axis, and within `half_width` of the oval's width of its middle (`hair_band`). Up each
#: of its columns from the face, the first `HAIR_DEPTH` samples that are not skin are the hair
#: (`hairline`): the oval's top lies on the forehead (a tenth of the face below d14's hairline),
#: and further out, beside a narrow crown or above it, lies the background (d10's wall, which
#: taken for hair made the wall an occluder and her hair not).
HAIR_BAND = (0.0, 0.4, 0.2)
HAIR_DEPTH = 3
#: ((lo, hi) of |log luma ratio|, (lo, hi) of the chroma distance): a sample outside the driver's
#: face is hair-like in full within both `lo`s of the hair model (`hair_likeness`), not at all
#: beyond either `hi`. Luma within a factor 1.65 (0.5) to 2.2 (0.8): d14's dark wall beside her
#: jaw is 2.4-2.9× her hair's luma, d10's hair hanging over her cheeks 1.3-1.7× her crown's.
#: Chroma (the colour over its luma, as `kernels.swap_blend`'s occluder test reads it): d13's
#: navy shirt under his chin is 0.44 from his brown hair, d10's hair 0.16 from her crown's.
HAIR_TOLERANCE = ((0.5, 0.8), (0.25, 0.4))


def occluder_features(samples, xp=np):
    """(..., 4) float32 of sRGB samples (..., 3) 0..255: (log(luma + 1), r, g, b over luma + 1),
    the colour as `kernels.swap_blend`'s occluder test compares it (luma + 1 as there)."""
    s = samples.astype(np.float32)
    y = (0.299 * s[..., 0] + 0.587 * s[..., 1] + 0.114 * s[..., 2] + 1.0)[..., None]
    return xp.concatenate([xp.log(y), s / y], axis=-1).astype(np.float32)


def _distance3(f, g, xp):
    """Euclidean distance of features' chroma (channels 1..3) to `g`'s, broadcast (three terms
    summed by hand: numpy's reduction over a trailing axis of 3 costs several times more)."""
    d1, d2, d3 = f[..., 1] - g[..., 1], f[..., 2] - g[..., 2], f[..., 3] - g[..., 3]
    return xp.sqrt(d1 * d1 + d2 * d2 + d3 * d3)


def not_skin(features, skin, occlusion, xp=np):
    """(...) float32 0..1: how much samples, given as `occluder_features` (..., 4), are not the
    skin, given alike (4,), by `kernels.swap_blend`'s occluder test with `occlusion` (dark_lo,
    dark_hi, chroma_lo, chroma_hi)."""
    dark_lo, dark_hi, chroma_lo, chroma_hi = occlusion
    dark = 1.0 - xp.clip((xp.exp(features[..., 0] - skin[0]) - dark_lo) / (dark_hi - dark_lo), 0.0, 1.0)
    chroma = _distance3(features, skin, xp)
    return xp.maximum(dark, xp.clip((chroma - chroma_lo) / (chroma_hi - chroma_lo), 0.0, 1.0)).astype(np.float32)


def hair_band(vertices: np.ndarray, rows: int = 16, cols: int = 12, band=HAIR_BAND) -> np.ndarray:
    """(rows, cols, 2) points of the hair band (`HAIR_BAND`) of the face whose landmarks
    `vertices` (≥ 478, ≥ 2) are given, in their coordinates: a grid spread evenly over the band
    (above the forehead, along the face's own up axis from the chin to the forehead's top), row 0
    nearest the face."""
    v = np.asarray(vertices, np.float64)[:, :2]
    top, chin = v[topology.FOREHEAD], v[topology.CHIN]
    up = top - chin
    height = float(np.hypot(*up))
    up /= max(height, 1e-9)
    right = np.array([-up[1], up[0]])
    across = v[_OVAL] @ right
    width = float(across.max() - across.min())
    centre = top + (0.5 * (across.max() + across.min()) - float(top @ right)) * right
    inner, outer, half = band
    s = (inner + (np.arange(rows) + 0.5) / rows * (outer - inner)) * height
    t = (np.arange(cols) + 0.5) / cols * 2.0 * half * width - half * width
    return centre + s[:, None, None] * up + t[None, :, None] * right


def hairline(not_skin_band: np.ndarray, depth: int = HAIR_DEPTH) -> np.ndarray:
    """(rows, cols) bool: the hair in a band's not-skin weights (rows, cols) 0..1, row 0 nearest the
    face: in each column, the first `depth` rows from the first that is clearly not skin (> 0.9)
    on, those of them that are clearly not skin too — what lies on the head just above its skin."""
    hair = np.asarray(not_skin_band) > 0.9
    rows = np.arange(hair.shape[0])[:, None]
    first = np.where(hair.any(0), hair.argmax(0), hair.shape[0])[None, :]
    return hair & (rows >= first) & (rows < first + depth)


def hair_likeness(features, hair, tolerance=HAIR_TOLERANCE, xp=np):
    """(...) float32 0..1: how hair-like samples' `occluder_features` (..., 4) are against the hair
    model's features `hair` (4,): 1 within both tolerances' `lo` (`HAIR_TOLERANCE`: of the log
    luma and of the chroma's Euclidean distance), 0 beyond either `hi`, linear between."""
    (l_lo, l_hi), (c_lo, c_hi) = tolerance
    luma = xp.clip((l_hi - xp.abs(features[..., 0] - hair[..., 0])) / (l_hi - l_lo), 0.0, 1.0)
    chroma = _distance3(features, hair, xp)
    return xp.minimum(luma, xp.clip((c_hi - chroma) / (c_hi - c_lo), 0.0, 1.0)).astype(np.float32)


def dilate(x, reach: int, xp=np):
    """(H, W) the largest value of `x` (H, W) within `reach` samples along each axis (a square
    max filter, the border clamped)."""
    if reach <= 0:
        return x
    h, w = x.shape
    pad = xp.pad(x, reach, mode="edge")
    out = x.copy()
    for dy in range(2 * reach + 1):
        for dx in range(2 * reach + 1):
            out = xp.maximum(out, pad[dy:dy + h, dx:dx + w])
    return out


def scene_likeness(features, scene, tolerance=HAIR_TOLERANCE, xp=np):
    """(M,) float32 0..1: how much samples' `occluder_features` (M, 4) are like the nearest of the
    scene's samples `scene` (K, 4) (`hair_likeness` against each, the largest)."""
    if scene.shape[0] == 0:
        return xp.zeros(features.shape[0], np.float32)
    return hair_likeness(features[:, None, :], scene[None], tolerance, xp).max(-1)


def representatives(features: np.ndarray, radius: tuple[float, float], most: int) -> np.ndarray:
    """(K, 4) at most `most` of `features` (N, 4) (host) such that every one of them lies within
    `radius` (log luma, chroma) of one kept, greedily in their order (the first left out starts
    the next): the scene's few colours, for `scene_likeness`."""
    left = np.asarray(features, np.float32)
    kept = []
    while len(left) and len(kept) < most:
        c = left[0]
        kept.append(c)
        near = (np.abs(left[:, 0] - c[0]) <= radius[0]) & (((left[:, 1:] - c[1:]) ** 2).sum(1) <= radius[1] ** 2)
        left = left[~near]
    return np.asarray(kept, np.float32).reshape(-1, 4)


class OutsideOccluders:
    """Where `kernels.swap_blend` may keep a driver pixel as an occluder, per low-grid cell: on the
    driver's face where the triangle labels allow it (`triangle_labels` "allow"); outside it where
    the driver's samples are like the driver's hair or unlike the scene around the head.

    Outside the driver's face the occluder test (far from the skin) took whatever lay beyond the
    driver's jaw where the identity's face is wider: over a dark wall (s12 ← d14) the wall came
    through as a dark wedge cut into the swapped jaw. With no occluder allowed there at all, the
    identity's cheeks were painted over hair hanging beside the driver's face (s1 ← d10), and
    over her earrings. So, outside the face:

    - hair: a colour model of the driver's own hair, from the frame above its face (`hair_band`,
      mostly above the crop's top edge; `hairline`: the first samples up from the forehead that
      are not skin by `not_skin` against the face's own skin samples), their median
      `occluder_features`, smoothed in time (`keep` of the last model each frame); a sample within
      `HAIR_TOLERANCE` of it is hair, and so is one within `reach` samples of hair (a sample on
      the edge between the cheek and the hair is a mix of both, and like neither);
    - the scene: the samples on the crop's border (`border` samples deep) outside the face that
      are neither skin nor hair, as they are this frame (the last frame's when there are fewer than
      `min_count`), as at most `scene_max` `representatives`: a sample like one of them
      (`scene_likeness`) is the background, and one unlike all of them (an earring, a
      microphone) may be an occluder still.

    Before any hair is seen (a high forehead, the band out of the frame) only the scene model
    counts; before any scene either, an occluder may be found anywhere outside the face, as it
    could before. A bald head's hairline is the scene above it: that scene is then taken for hair
    and allowed, as everything outside the face was before.

    `__call__(image, crop_inv, vertices, samples, tri_id, blocked)`: the driver's frame (H, W, 3)
    and the crop → frame affine (2, 3) (host), the driver's landmarks in crop pixels (≥ 478, ≥ 2;
    host), its samples on the low grid's 2×2 per cell (2L, 2L, 3) 0..255, its mesh's triangle at
    each (−1: outside its face), the per-triangle weight that forbids an occluder (T + 1,)
    (1 − "allow"; its last entry unused) → (L, L) float32, the share of each cell's four samples
    where an occluder is allowed.
    """

    def __init__(self, occlusion, keep: float = 0.8, min_count: int = 8, reach: int = 2, border: int = 2,
                 scene_max: int = 12, xp=np):
        self.occlusion = tuple(float(v) for v in occlusion)
        self.keep, self.min_count, self.reach, self.xp = float(keep), int(min_count), int(reach), xp
        self.border, self.scene_max = int(border), int(scene_max)
        self._ring: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        self.model = None      # (4,) the hair's features (`occluder_features`), smoothed
        self.scene = None      # (K, 4) the scene's samples' features

    def band_samples(self, image, crop_inv, vertices):
        """(rows, cols, 3) float32 the frame's colour over the hair band and (rows, cols) float32
        1 where the band lies in the frame."""
        xp = self.xp
        a = np.asarray(crop_inv, np.float64)
        v = np.asarray(vertices, np.float64)[:, :2] @ a[:, :2].T + a[:, 2]
        p = hair_band(v)
        h, w = image.shape[:2]
        inside = (p[..., 0] >= 0) & (p[..., 0] <= w - 1) & (p[..., 1] >= 0) & (p[..., 1] <= h - 1)
        colour = texture(image, xp.asarray(np.ascontiguousarray(p, dtype=np.float32)))
        return colour, xp.asarray(inside.astype(np.float32))

    def update(self, band, band_w, skin) -> None:
        """Fold one frame's band samples (rows, cols, 3), their weights (1: in the frame) and the
        face's skin colour (`occluder_features` (4,)) into the hair model: the median features of
        the hair (`hairline`: robust to the hairline's mixed samples and the hair's highlights)."""
        xp = self.xp
        f = occluder_features(band, xp)
        w = band_w * not_skin(f, skin, self.occlusion, xp)
        hair = xp.asarray(hairline(w.get() if hasattr(w, "get") else w)).reshape(-1)
        if int(hair.sum()) < self.min_count:
            return
        model = xp.median(f.reshape(-1, 4)[hair], axis=0)
        if self.model is not None and self.keep > 0.0:
            model = self.keep * self.model + (1.0 - self.keep) * model
        self.model = model

    def _border(self, n: int):
        if self._ring is None or self._ring.shape[0] != n:
            ring = np.zeros((n, n), bool)
            b = self.border
            ring[:b], ring[-b:], ring[:, :b], ring[:, -b:] = True, True, True, True
            self._ring = self.xp.asarray(ring)
        return self._ring

    def update_scene(self, features, candidates) -> None:
        """Take this frame's scene (`features` (N, N, 4) where `candidates` (N, N) bool on the crop's
        border): at most `scene_max` `representatives` within half the tolerances' `lo` of them
        all, unless there are fewer than `min_count` candidates."""
        xp = self.xp
        idx = xp.flatnonzero((candidates & self._border(candidates.shape[0])).reshape(-1))
        if int(idx.size) < self.min_count:
            return
        f = features.reshape(-1, 4)[idx]
        f = f.get() if hasattr(f, "get") else f
        (l_lo, _), (c_lo, _) = HAIR_TOLERANCE
        self.scene = xp.asarray(representatives(f, (0.5 * l_lo, 0.5 * c_lo), self.scene_max))

    def __call__(self, image, crop_inv, vertices, samples, tri_id, blocked):
        xp = self.xp
        inside = tri_id >= 0
        skin_w = inside * (1.0 - blocked[tri_id])         # the face's skin away from its features
        skin = occluder_features((samples * skin_w[..., None]).reshape(-1, 3).sum(0)
                                 / xp.maximum(skin_w.sum(), 1e-6), xp)
        self.update(*self.band_samples(image, crop_inv, vertices), skin)
        f = occluder_features(samples, xp)
        hair = xp.zeros(tri_id.shape, np.float32)
        if self.model is not None:
            hair = dilate(hair_likeness(f, self.model, xp=xp), self.reach, xp)
        self.update_scene(f, ~inside & (hair < 0.5) & (not_skin(f, skin, self.occlusion, xp) > 0.5))
        outside = xp.ones(tri_id.shape, np.float32)
        if self.scene is not None:
            ask = xp.flatnonzero((~inside & (hair < 1.0)).reshape(-1))    # where the scene decides
            flat = outside.reshape(-1)
            scene = scene_likeness(f.reshape(-1, 4)[ask], self.scene, xp=xp)
            flat[ask] = xp.maximum(hair.reshape(-1)[ask], 1.0 - scene)
        allow = xp.where(inside, 1.0 - blocked[tri_id], outside).astype(np.float32)
        return (allow[0::2, 0::2] + allow[1::2, 0::2] + allow[1::2, 1::2] + allow[0::2, 1::2]) / 4.0
