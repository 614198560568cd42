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

Opt-in (`EngineOptions.fill_far_side`, `live --fill-far-side`), after stop 53's review: the
mirror image exists only inside the filled triangles, so the feather softens the fill's edge
from the inside only and a step remains at its inner edge, and on the painted s9 a triangle
beside the nose takes a dark, jagged patch (its cause not found yet). Both want a remap of the
whole far side at once (one piecewise-affine map, filled beyond the fill's edge) before this is
the default.
"""
from __future__ import annotations

import cv2
import numpy as np

from realtime.face import topology

__all__ = ["FULL_BELOW", "NONE_ABOVE", "MIN_TRIANGLES", "FEATHER", "squeeze", "far_side_weights", "weight_map",
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


def _areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return 0.5 * np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


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


def _box(corners: np.ndarray, shape: tuple[int, ...]) -> tuple[tuple[slice, slice] | None, np.ndarray]:
    """The slices of a triangle's bounding box (a pixel's margin) in an image of `shape`, and
    its corners relative to the box; (None, corners) when it lies outside."""
    h, w = shape[:2]
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, (w, h))
    if x1 <= x0 or y1 <= y0:
        return None, corners
    return (slice(int(y0), int(y1)), slice(int(x0), int(x1))), corners - (x0, y0)


def _inside(corners: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) uint8: 1 on the pixels whose centres lie in the triangle `corners` (px, relative
    to the box): exactly the triangle, so the inverse warp of a pixel never reaches past its
    mirror triangle (a rasterised outline takes in pixels beside a thin one)."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    a, b, c = corners.astype(np.float64)
    det = (b[1] - c[1]) * (a[0] - c[0]) + (c[0] - b[0]) * (a[1] - c[1])
    if abs(det) < 1e-9:
        return np.zeros(shape[:2], np.uint8)
    l1 = ((b[1] - c[1]) * (xx - c[0]) + (c[0] - b[0]) * (yy - c[1])) / det
    l2 = ((c[1] - a[1]) * (xx - c[0]) + (a[0] - c[0]) * (yy - c[1])) / det
    return ((l1 >= -1e-9) & (l2 >= -1e-9) & (1.0 - l1 - l2 >= -1e-9)).astype(np.uint8)


def _filled(pts: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`far_side_weights`, less the triangles that cannot be filled: a degenerate one or a
    degenerate mirror (under MIN_AREA px²: the warp between them has no inverse, or one that
    reaches far), and a mirror that leaves the photo."""
    weights = far_side_weights(pts)
    tri = topology.face_triangles()
    h, w = shape[:2]
    mirror = pts[topology.MIRROR[:topology.N_MESH]]
    ok = (np.minimum(_areas(pts, tri), _areas(pts, topology.MIRROR[tri])) >= MIN_AREA)
    ok &= ((mirror[tri] >= 0) & (mirror[tri] <= (w - 1, h - 1))).all(axis=(1, 2))
    return weights * ok


def weight_map(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how much of each photo pixel comes from the mirror — each
    filled triangle's `far_side_weights`, feathered by FEATHER interoculars (`shape`: the
    photo's (H, W)). The mirror image exists only inside the filled triangles, so the feather
    softens the fill's edge from the inside only: a step remains where it ends (stop 53's
    review measured a median 14 grey levels on s12's inner edge)."""
    pts = np.asarray(landmarks, np.float64)[:topology.N_MESH, :2]
    weights = _filled(pts, shape)
    tri = topology.face_triangles()
    weight = np.zeros(shape, np.float32)
    for k in np.flatnonzero(weights > 0):
        box, corners = _box(pts[tri[k]], shape)
        if box is None:
            continue
        part = weight[box]
        np.maximum(part, np.float32(weights[k]) * _inside(corners, part.shape), out=part)
    # feathered within the face only: past the outline there is nothing to blend with (the
    # swap draws no pixel there), and a squeezed strip along it must not be diluted by it
    face = np.zeros(shape, np.float32)
    cv2.fillConvexPoly(face, cv2.convexHull(np.rint(pts * 16).astype(np.int32)), 1.0, cv2.LINE_8, 4)
    iod = float(np.linalg.norm(pts[topology.EYE_OUTER[0]] - pts[topology.EYE_OUTER[1]]))
    sigma = max(FEATHER * iod, 0.5)
    spread = cv2.GaussianBlur(weight, (0, 0), sigma) / np.maximum(cv2.GaussianBlur(face, (0, 0), sigma), 1e-3)
    return np.clip(spread, 0.0, 1.0) * (face > 0)


def fill_far_side(photo: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """`photo` (H, W, 3) uint8 with the squeezed far side of the face given by `landmarks`
    (478, 2+) photo px filled from its mirror (see the module docstring), by `weight_map`;
    `photo` itself when no triangle is squeezed enough. Pixels outside the filled triangles,
    grown by the feather, are never changed."""
    photo = np.asarray(photo)
    pts = np.asarray(landmarks, np.float64)[:topology.N_MESH, :2]
    todo = np.flatnonzero(_filled(pts, photo.shape[:2]) > 0)
    if todo.size == 0:
        return photo
    tri = topology.face_triangles()
    h, w = photo.shape[:2]
    source = np.asarray(photo, np.float32)
    mirrored = source.copy()
    for k in todo:          # each filled triangle: its mirror's pixels, warped onto it
        box, corners = _box(pts[tri[k]], (h, w))
        if box is None:
            continue
        part = mirrored[box]
        src = pts[topology.MIRROR[tri[k]]].astype(np.float32)
        to_box = cv2.getAffineTransform(src, corners.astype(np.float32))
        patch = cv2.warpAffine(source, to_box, part.shape[1::-1], flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        sel = _inside(corners, part.shape[:2]) > 0
        part[sel] = patch[sel]
    weight = weight_map(pts, (h, w))[..., None]
    out = source + weight * (mirrored - source)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
