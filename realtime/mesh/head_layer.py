"""The head/background layer: a 2-D control mesh around the face (DESIGN §3 "stitching").

Three kinds of control points surround the face mesh:
- ring 1: the face-oval landmarks themselves (they move with the face mesh, expression included;
  the rig gives the layer its own copies of them, textured at the face's outer edge);
- ring 2 (hair, ears, jaw line) and ring 3 (outer hair, neck, shoulders): the oval pushed
  outward in the canonical frame; they move with the head pose, ring 3 only partly, and the
  neck less than the top of the head;
- the border of the face crop, fixed, so the crop pasted back meets the background exactly.
Triangulated once (Delaunay on the neutral image positions) at enrollment. Drawn behind the
face mesh, it carries hair and head along with the pose while shoulders and background stay.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import Delaunay

from realtime.face import topology
from realtime.face.geometry import Similarity

RING2_SCALE = 1.3
RING3_SCALE = 1.75
RING3_GAIN = 0.55
NECK_GAIN = 0.35
BORDER_POINTS_PER_SIDE = 8


@dataclass
class HeadLayer:
    """points:    (K, 3) canonical coordinates of rings 2 and 3.
    gains:     (K,) how much of the head motion each point follows (1 = rigidly).
    border:    (B, 2) fixed points in target-image pixels (the crop's border).
    triangles: (M, 3) int32 over the layer's vertex order: oval landmarks (36), points (K),
               border (B)."""

    points: np.ndarray
    gains: np.ndarray
    border: np.ndarray
    triangles: np.ndarray

    def vertex_count(self) -> int:
        return len(topology.FACE_OVAL) + len(self.points) + len(self.border)


def crop_box(neutral: np.ndarray, frame: Similarity, margin: float = 1.12) -> tuple[np.ndarray, float]:
    """Centre (x, y) and side (px) of the square face crop that holds ring 3 with a margin."""
    oval = neutral[list(topology.FACE_OVAL)]
    centre = oval.mean(0)
    ring3 = centre + (oval - centre) * np.array([RING3_SCALE, RING3_SCALE, 1.0])
    px = frame.apply(ring3)[:, :2]
    c = frame.apply(centre[None])[0, :2]
    side = 2.0 * np.abs(px - c).max() * margin
    return c, float(side)


def crop_affine(centre: np.ndarray, side: float, size: int) -> np.ndarray:
    """(2, 3) affine mapping target-image pixels into a size×size crop of that box."""
    s = size / side
    return np.array([[s, 0.0, size / 2.0 - s * centre[0]],
                     [0.0, s, size / 2.0 - s * centre[1]]], np.float64)


def build(neutral: np.ndarray, frame: Similarity, crop_from_image: np.ndarray,
          crop_size: int) -> HeadLayer:
    """Control points and triangles for one target; `neutral` is its canonical shape."""
    oval_idx = list(topology.FACE_OVAL)
    oval = neutral[oval_idx]
    centre = oval.mean(0)
    chin_y = neutral[topology.CHIN, 1]
    rings, gains = [], []
    for scale, gain in ((RING2_SCALE, 1.0), (RING3_SCALE, RING3_GAIN)):
        pts = centre + (oval - centre) * np.array([scale, scale, 1.0])
        pts[:, 2] += (scale - 1.0) * 0.5  # behind the face surface, so yaw moves them less
        g = np.full(len(pts), gain)
        below = pts[:, 1] > chin_y
        g[below] = np.minimum(g[below], NECK_GAIN if scale > RING2_SCALE else 0.8)
        rings.append(pts)
        gains.append(g)
    points = np.concatenate(rings)
    inv = np.linalg.inv(np.vstack([crop_from_image, [0, 0, 1]]))[:2]
    # On the crop's pixel edges (not the last pixel centres): the top-left fill rule would leave
    # the last row and column undrawn.
    lo, edge = -0.5, crop_size - 0.5
    t = np.linspace(lo, edge, BORDER_POINTS_PER_SIDE + 1)[:-1]
    crop_pts = np.concatenate([
        np.stack([t, np.full_like(t, lo)], 1), np.stack([np.full_like(t, edge), t], 1),
        np.stack([edge + lo - t, np.full_like(t, edge)], 1),
        np.stack([np.full_like(t, lo), edge + lo - t], 1)])
    border = crop_pts @ inv[:, :2].T + inv[:, 2]

    image_pts = np.concatenate([frame.apply(oval)[:, :2], frame.apply(points)[:, :2], border])
    tris = Delaunay(image_pts).simplices
    n_oval = len(oval_idx)
    inside = (tris < n_oval).all(1)  # triangles made only of oval points lie inside the face
    return HeadLayer(points=points, gains=np.concatenate(gains), border=border,
                     triangles=np.ascontiguousarray(tris[~inside], dtype=np.int32))


def pose_points(layer: HeadLayer, neutral_frame: Similarity, posed_frame: Similarity) -> np.ndarray:
    """(K, 3) image-pixel positions of rings 2 and 3 for the current head pose."""
    rest = neutral_frame.apply(layer.points)
    moved = posed_frame.apply(layer.points)
    return rest + layer.gains[:, None] * (moved - rest)
