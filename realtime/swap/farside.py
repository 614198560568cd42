"""The far side of a turned photo, filled from its near side before a swap spreads it out.

A portrait turned a little shows one cheek and temple squeezed: s12's outer cheek and temple
cover a third to a half of their mirror's area, and hold what a squeezed strip holds — the
edge's shadow, the hair at the temple, a sideburn, the background. A frontal driver's face shows
that side at full width, so the swap stretched it two to three times: a dark, speckled band
from temple to jaw. Where a triangle of the photo's face is much smaller than its mirror image on the
other side (MediaPipe's mesh is left/right symmetric: `realtime.face.topology.MIRROR`), its
pixels are replaced by the mirror triangle's, warped onto it: the same person's skin, seen
squarely. Eyes, brows and lips keep their own pixels (a face is not symmetric there), and the
weight is feathered so that no seam shows. The near side's light comes with it; the swap's
shading takes the driver's light and divides the identity's own out (`realtime.swap.colour`),
so it does not show as a lit patch. A photo that is about frontal is returned as it is, the
same array, so a swap of it is unchanged.

The mirror image is made beyond the filled triangles too (RINGS round them), so the feather
blends into it from both sides of the fill's edge (stop 53's version made it only inside them
and left a step at that edge, a median 15 grey levels on s12, now 1). A mirrored pixel that is
not skin — the near side's outline runs over hair or background in places — is not used, and
the weight ramps down to it (`_skin`): the painted s9 took a dark, jagged patch of hair on its
far cheek from there. On by default (`EngineOptions.fill_far_side`, `live --no-fill-far-side`).
"""
from __future__ import annotations

import cv2
import numpy as np

from kernels import rasterize
from realtime.face import topology

__all__ = ["FULL_BELOW", "NONE_ABOVE", "MIN_TRIANGLES", "FEATHER", "RINGS", "SKIN_CHROMA", "SKIN_DARKER",
           "MIN_PATCH", "HAIR_FEATHER", "HAIR_BAND", "folds", "squeeze", "far_side_weights", "weight_map",
           "fill_far_side"]

#: A triangle squeezed (`squeeze`) to this share of its mirror's area or less is filled
#: entirely from it...
FULL_BELOW = 0.45
#: ...and one of this share or more not at all. Measured on the eval's photos (skin triangles
#: filled at all, with MIN_TRIANGLES): the about frontal s0, s1 and s5 none; the turned s12
#: 159, the painted s9 (turned further) 224.
NONE_ABOVE = 0.7
#: Fewer squeezed triangles than this: a frontal photo, left as it is.
MIN_TRIANGLES = 24
#: A triangle or its mirror smaller than this (px²) is not filled (`_filled`).
MIN_AREA = 1.0
#: The weight's feather (Gaussian σ, interoculars).
FEATHER = 0.06
#: Rings of triangles round the filled ones that take their mirror's pixels too, for the
#: feather to blend into (a ring is 0.1–0.15 interoculars on the cheek: two reach past 3 σ).
RINGS = 2
#: A mirrored pixel further than this from the median chroma of what the fill takes (OpenCV
#: 8-bit Lab a, b), or darker than its median lightness by more than SKIN_DARKER, is not skin.
SKIN_CHROMA = 18.0
SKIN_DARKER = 70.0
#: ...counted only in patches of this many pixels or more (px, 8-connected).
MIN_PATCH = 3
#: `fill_far_side(hair_only=True)`: the feather (Gaussian σ, interoculars) of the hair it fills,
#: and how far inside the outline (interoculars) hair is looked for
HAIR_FEATHER = 0.03
HAIR_BAND = 0.2


def _signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def _areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    return np.abs(_signed_areas(points, triangles))


def folds(landmarks: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """(478,) bool: the corners of the photo's folded outline — its face triangles that the turn
    has turned over (wound the other way than in `neutral`, the profile's canonical shape, both
    y down), in groups that reach the outline (`topology.FACE_OVAL`; a group: turned triangles
    sharing corners), none with a corner on the eyes, brows or lips (their tiny triangles turn
    over with an expression: s18's mouth corners in two keyframes). A turned face's outline
    landmarks lie on its cheek, not on its silhouette: past them the mesh folds back over the
    skin it has already covered and the hair beyond. No fill mends such a fold (the photo holds
    one layer where the mesh has two), and a swap stretched the fold's few pixels, skin and hair
    in turn, into fine stripes down a frontal driver's far cheek (s18's reference frame, stop
    56): the swap's mask leaves it out (`realtime.swap.outline`). `landmarks` (478, 2+) photo
    px, `neutral` (478, 2+)."""
    tri = topology.face_triangles()
    pts = np.asarray(landmarks, np.float64)[:topology.N_LANDMARKS, :2]
    n = np.asarray(neutral, np.float64)[:topology.N_LANDMARKS, :2]
    features = (topology.region_labels() > 0)[tri].any(1)
    turned = (np.sign(_signed_areas(pts, tri)) * np.sign(_signed_areas(n, tri)) < 0) & ~features
    reached = np.zeros(topology.N_LANDMARKS, bool)
    reached[list(topology.FACE_OVAL)] = True
    group = np.zeros(len(tri), bool)
    while True:                 # grow the groups from the outline, a ring of triangles at a time
        grown = turned & reached[tri].any(1)
        if (grown == group).all():
            break
        group = grown
        reached[tri[group].ravel()] = True
    out = np.zeros(topology.N_LANDMARKS, bool)
    out[tri[group].ravel()] = True
    return out


def squeeze(landmarks: np.ndarray) -> np.ndarray:
    """(T,) how squeezed each face triangle (`topology.face_triangles()`) is in the photo: the
    area of the triangles round each of its corners over that round the mirror corner, averaged
    (geometrically) over its three corners — 1 where the face is as wide as on its other side,
    small where the turn squeezes it. Rings, not single triangles: the outline's slivers are
    near-degenerate on both sides, and their own ratio swings far from 1 in a frontal photo.
    `landmarks` (468+, 2+) photo px."""
    pts = np.asarray(landmarks, np.float64)[:topology.N_MESH, :2]
    tri = topology.face_triangles()
    ring = np.zeros(topology.N_MESH)
    np.add.at(ring, tri.ravel(), np.repeat(_areas(pts, tri), 3))
    corner = np.log(np.maximum(ring, 1e-9) / np.maximum(ring[topology.MIRROR[:topology.N_MESH]], 1e-9))
    return np.exp(corner[tri].mean(1))


def _near_features() -> np.ndarray:
    """(478,) bool: the eyes', brows' and lips' landmarks and their neighbours (a photo's mesh
    sits a little off its features: a triangle one ring out may reach into them, or its mirror
    into the other side's)."""
    feature = topology.region_labels() > 0
    near = feature.copy()
    for v in np.flatnonzero(feature):
        near[topology.vertex_adjacency()[v]] = True
    return near


def far_side_weights(landmarks: np.ndarray) -> np.ndarray:
    """(T,) float64 in [0, 1]: how much of each face triangle comes from its mirror (0 on the
    eyes, brows and lips; all 0 when fewer than MIN_TRIANGLES are squeezed at all: a frontal
    photo)."""
    s = squeeze(landmarks)
    features = (_near_features()[topology.face_triangles()]).any(1)
    weights = np.clip((NONE_ABOVE - s) / (NONE_ABOVE - FULL_BELOW), 0.0, 1.0) * ~features
    return weights if np.count_nonzero(weights) >= MIN_TRIANGLES else np.zeros_like(weights)


def _raster(pts: np.ndarray, triangles: np.ndarray, box: tuple[int, int, int, int]):
    """`kernels.rasterize` of the 2-D mesh `pts` (N, 2) px's `triangles` over the image's part
    `box` (x0, y0, x1, y1): a pixel belongs to the triangle that holds its centre (exactly: the
    fill never reaches past a thin triangle into its neighbour's mirror)."""
    x0, y0, x1, y1 = box
    verts = np.zeros((len(pts), 3), np.float32)
    verts[:, :2] = pts - (x0, y0)
    return rasterize(verts, np.ascontiguousarray(triangles, np.int32), y1 - y0, x1 - x0)


def _bounds(pts: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1): the pixels round `pts` (N, 2), a pixel's margin, inside an image of
    `shape`; None when they lie wholly outside it."""
    h, w = shape
    x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + 2, (w, h))
    if x1 <= x0 or y1 <= y0:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def _filled_ok(pts: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(T,) bool: the triangles that can take their mirror's pixels: neither they nor their
    mirror degenerate (under MIN_AREA px²: the warp between them has no inverse, or one that
    reaches far), and the mirror inside the photo."""
    tri = topology.face_triangles()
    h, w = shape[:2]
    mirror = pts[topology.MIRROR[:topology.N_MESH]]
    ok = (np.minimum(_areas(pts, tri), _areas(pts, topology.MIRROR[tri])) >= MIN_AREA)
    return ok & ((mirror[tri] >= 0) & (mirror[tri] <= (w - 1, h - 1))).all(axis=(1, 2))


def _filled(pts: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`far_side_weights`, less the triangles that cannot be filled (`_filled_ok`)."""
    return far_side_weights(pts) * _filled_ok(pts, shape)


def _grow(chosen: np.ndarray, rings: int) -> np.ndarray:
    """(T,) bool: the triangles `chosen` and those within `rings` rings of them (sharing a
    corner with one of the ring before)."""
    tri = topology.face_triangles()
    grown = np.asarray(chosen, bool).copy()
    for _ in range(rings):
        corner = np.zeros(topology.N_LANDMARKS, bool)
        corner[tri[grown].ravel()] = True
        grown = corner[tri].any(1)
    return grown


def _plan(photo: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The far side's fill: (mirrored (H, W, 3) float32, weight (H, W) float32 in [0, 1]), or
    None when nothing is filled. `mirrored` is the photo with each filled triangle and the
    RINGS round it (the features' own triangles, degenerate ones and those whose mirror leaves
    the photo excepted: `_filled_ok`) replaced by its mirror triangle's pixels, so the feather
    blends into a mirror image from both sides of the fill's edge; `weight` is each filled
    triangle's `far_side_weights`, zero where the mirror is not skin (`_skin`), feathered by
    FEATHER interoculars within the face, and ramped down to zero over 2 σ where the mirror
    image ends among the mesh's pixels (at the features, at hair; not at the outline's rim)."""
    h, w = photo.shape[:2]
    weights = _filled(pts, (h, w))
    if not (weights > 0).any():
        return None
    tri = topology.face_triangles()
    mirror = topology.MIRROR[:topology.N_MESH]
    feature_corner = (topology.region_labels()[:topology.N_MESH] > 0)[tri].any(1)
    valid = _filled_ok(pts, (h, w))
    around = np.flatnonzero(_grow(weights > 0, RINGS) & valid & ~feature_corner | (weights > 0))
    # each of those triangles: its mirror's pixels, warped onto it (through its barycentric
    # coordinates: the affine map between a triangle and its mirror), all in one lookup
    source = np.asarray(photo, np.float32)
    around = around[::-1]       # where a turned face folds over itself, the later triangle's (ties: lower index wins)
    sub = tri[around]
    box = _bounds(pts[sub.ravel()], (h, w))
    if box is None:                      # every filled triangle lies off the photo
        return None
    x0, y0, x1, y1 = box
    g = _raster(pts, sub, box)
    inside = g.tri_id >= 0
    at = np.where(inside, g.tri_id, 0)
    b1, b2 = g.bary[..., 0].astype(np.float64), g.bary[..., 1].astype(np.float64)
    corners = pts[mirror[sub]][at]                                       # (h', w', 3, 2)
    src = (1.0 - b1 - b2)[..., None] * corners[..., 0, :] + b1[..., None] * corners[..., 1, :] \
        + b2[..., None] * corners[..., 2, :]
    patch = cv2.remap(source, src[..., 0].astype(np.float32), src[..., 1].astype(np.float32), cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REFLECT)
    mirrored = source.copy()
    mirrored[y0:y1, x0:x1][inside] = patch[inside]
    defined = np.zeros((h, w), bool)
    defined[y0:y1, x0:x1] = inside
    # the weight: the largest of the triangles over a pixel (the fold's other one may hold more)
    by_weight = around[np.argsort(-weights[around], kind="stable")]
    gw = _raster(pts, tri[by_weight], box)
    raw = np.zeros((h, w), np.float32)
    raw[y0:y1, x0:x1] = np.where(gw.tri_id >= 0, weights[by_weight][np.maximum(gw.tri_id, 0)], 0.0)
    if not (raw > 0).any():              # every filled triangle lies off the photo
        return None
    # the pixels the mesh covers (its degenerate slivers left out): where the mirror image ends
    # among them the weight ramps down; past them (the outline's rim) there is nothing to end
    solid = tri[_areas(pts, tri) >= MIN_AREA]
    meshed = np.zeros((h, w), bool)
    if (box := _bounds(pts[solid.ravel()], (h, w))) is not None:
        meshed[box[1]:box[3], box[0]:box[2]] = _raster(pts, solid, box).tri_id >= 0
    usable = defined & _skin(mirrored, _skin_reference(photo, pts), defined)
    # feathered within the face only: past the outline there is nothing to blend with (the
    # swap draws no pixel there), and a squeezed strip along it must not be diluted by it
    face = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(face, cv2.convexHull(np.rint(pts * 16).astype(np.int32)), 1.0, cv2.LINE_8, 4)
    iod = float(np.linalg.norm(pts[topology.EYE_OUTER[0]] - pts[topology.EYE_OUTER[1]]))
    sigma = max(FEATHER * iod, 0.5)
    spread = cv2.GaussianBlur(raw * usable, (0, 0), sigma) / np.maximum(cv2.GaussianBlur(face, (0, 0), sigma), 1e-3)
    # ...and brought down to nothing over 2 σ where the mirror image ends inside the mesh (at
    # the features' triangles, at hair): a ramp there, not a step
    inside_usable = cv2.distanceTransform((usable | ~meshed).astype(np.uint8), cv2.DIST_L2, 3)
    return mirrored, np.clip(spread, 0.0, 1.0) * np.clip(inside_usable / (2 * sigma), 0.0, 1.0) * (face > 0)


def _skin_reference(photo: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(3,) float32 the median OpenCV 8-bit Lab of the photo's inner skin: its triangles that
    are neither squeezed nor near a feature nor on the outline (where hair or background may
    lie); the whole face's median when there are none."""
    tri = topology.face_triangles()
    oval = np.zeros(topology.N_LANDMARKS, bool)
    oval[list(topology.FACE_OVAL)] = True
    inner = (squeeze(pts) >= NONE_ABOVE) & ~(_near_features() | oval)[tri].any(1) & (_areas(pts, tri) >= MIN_AREA)
    h, w = photo.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    for k in np.flatnonzero(inner) if inner.any() else range(len(tri)):
        cv2.fillConvexPoly(mask, np.rint(pts[tri[k]]).astype(np.int32), 1)
    lab = cv2.cvtColor(np.ascontiguousarray(photo, np.uint8), cv2.COLOR_RGB2LAB)
    return np.median(lab[mask > 0] if mask.any() else lab.reshape(-1, 3), axis=0).astype(np.float32)


def _skin(mirrored: np.ndarray, reference: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """(H, W) bool: the mirrored pixels (`defined`) that look like skin — within SKIN_CHROMA of
    the chroma of `reference` (OpenCV 8-bit Lab, `_skin_reference`: the photo's inner skin) and
    no more than SKIN_DARKER below its lightness. The near side's outline runs over hair or
    background in places (the painted s9's hair beside its temple), and its mirror would paint
    a dark patch on the far cheek; judged against the face's inner skin, not against what the
    fill takes, so hair that covers most of the near outline is still hair."""
    lab = cv2.cvtColor(np.clip(np.rint(mirrored), 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    median = reference
    chroma = np.linalg.norm(lab[..., 1:] - median[1:], axis=-1)
    not_skin = (((chroma > SKIN_CHROMA) | (median[0] - lab[..., 0] > SKIN_DARKER)) & defined).astype(np.uint8)
    # a speck off the median is the photo's grain, not hair: only patches count, and with
    # their fringe (a hair's edge blends into the skin beside it)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(not_skin, connectivity=8)
    patches = (stats[:, cv2.CC_STAT_AREA] >= MIN_PATCH) & (np.arange(count) > 0)
    return cv2.dilate(patches[labels].astype(np.uint8), np.ones((3, 3), np.uint8)) == 0


def weight_map(photo: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how much of each pixel of `photo` (H, W, 3) uint8 RGB comes
    from the mirror (`_plan`'s weight: each filled triangle's `far_side_weights`, zero where
    the mirror is not skin, feathered, ramped down where the mirror image ends); all zero when
    nothing is filled."""
    photo = np.asarray(photo)
    plan = _plan(photo, np.asarray(landmarks, np.float64)[:topology.N_MESH, :2])
    return np.zeros(photo.shape[:2], np.float32) if plan is None else plan[1]


def fill_far_side(photo: np.ndarray, landmarks: np.ndarray, hair_only: bool = False) -> np.ndarray:
    """`photo` (H, W, 3) uint8 RGB with the squeezed far side of the face given by `landmarks`
    (478, 2+) photo px filled from its mirror (see the module docstring), by `weight_map`;
    `photo` itself when no triangle is squeezed enough. Pixels outside the filled triangles,
    grown by the feather, are never changed. hair_only: only where the far side is not skin
    itself (hair, background: `_skin` against the inner skin) within HAIR_BAND of the outline,
    feathered by HAIR_FEATHER: the far cheek's own skin stays, however shaded (an atlas
    keyframe's: the video's face is the likeness)."""
    photo = np.asarray(photo)
    pts = np.asarray(landmarks, np.float64)[:topology.N_MESH, :2]
    plan = _plan(photo, pts)
    if plan is None:
        return photo
    mirrored, weight = plan
    source = photo.astype(np.float32)
    if hair_only:
        hair = (~_skin(source, _skin_reference(photo, pts), weight > 0)).astype(np.float32)
        iod = float(np.linalg.norm(pts[topology.EYE_OUTER[0]] - pts[topology.EYE_OUTER[1]]))
        # only along the outline (the far cheek's own shading is skin, however dark)
        inside = np.zeros(photo.shape[:2], np.uint8)
        cv2.fillPoly(inside, [np.rint(pts[list(topology.FACE_OVAL)]).astype(np.int32)], 1)
        depth = cv2.distanceTransform(inside, cv2.DIST_L2, 3) / iod
        hair *= np.clip((HAIR_BAND - depth) / (0.25 * HAIR_BAND), 0.0, 1.0).astype(np.float32)
        # (less a tenth: no Gaussian tail over the far skin)
        hair = np.clip(2.0 * cv2.GaussianBlur(hair, (0, 0), max(HAIR_FEATHER * iod, 0.5)) - 0.1, 0.0, 1.0)
        if not (weight * hair > 1.0 / 255).any():
            return photo
        weight = weight * hair
    out = source + weight[..., None] * (mirrored - source)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
