"""The mouth and the eyes: one keyframe at a time per region (`RegionPicker`), feathered into
the face blend over rings of the mesh (`region_alpha`)."""
from __future__ import annotations

import numpy as np
from matplotlib.path import Path

from realtime.face import topology
from realtime.mesh.rig import EYE_CENTRES, HEAD_START, MOUTH_CENTRE
from realtime.tiers.atlas.query import EYE_POINTS, LIP_POINTS
from realtime.tiers.atlas.weights import WeightSmoother

FLIP_REGION_COST = 0.3   # extra region cost of a mirrored keyframe
SWITCH_MARGIN = 0.1      # hysteresis of a region's keyframe choice (cost units)
MOUTH_RINGS = (1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2)  # region weight on the rings of mesh
#                          neighbours around the lips: the lower face (cheeks, chin) follows
#                          the lips; forehead and nose keep the barycentric blend
EYE_RINGS = (0.6, 0.25)    # ... and around the eyes
EDGE_RINGS = (0.6, 0.25)   # ... and inside the face oval (towards the reference photo)


def _region_points(neutral: np.ndarray, loops) -> set[int]:
    """Landmarks inside or on the closed contours `loops` of the neutral shape."""
    n = np.asarray(neutral, np.float64)[: topology.N_LANDMARKS, :2]
    out: set[int] = set()
    for loop in loops:
        out |= set(np.nonzero(Path(n[list(loop)]).contains_points(n, radius=1e-9))[0].tolist())
        out |= set(loop)
    return out


def _feather(core: set[int], vertex_count: int, rings: tuple[float, ...]) -> np.ndarray:
    alpha = np.zeros(vertex_count, np.float32)
    alpha[list(core)] = 1.0
    adj = topology.vertex_adjacency()
    frontier, seen = set(core), set(core)
    for value in rings:
        nxt = set()
        for i in frontier:
            if i < topology.N_LANDMARKS:
                nxt |= set(int(j) for j in adj[i]) - seen
        for i in nxt:
            alpha[i] = value
        seen |= nxt
        frontier = nxt
    return alpha


def region_alpha(neutral: np.ndarray, vertex_count: int, mouth_rings: tuple[float, ...] | None = None,
                 eye_rings: tuple[float, ...] | None = None,
                 edge_rings: tuple[float, ...] | None = None) -> np.ndarray:
    """(V, 3) float32 per-vertex weights of the mouth (column 0), eye (column 1) and edge
    (column 2) regions: 1 on the lips (inside or on the outer lip contour) and the mouth-cavity
    centre, on the eyes (inside or on the lid contours, irises), on the face oval; the given
    rings of mesh neighbours get the ring values; 0 elsewhere; where they overlap they are
    scaled to sum to one. Where a column is 1 that region's keyframe is shown alone (the edge:
    the reference photo, as in the warp tier, so the face meets the head layer, which samples
    the same photo, without a seam); each feathers into the face blend."""
    mouth = _region_points(neutral, [topology.OUTER_LIP]) | set(LIP_POINTS.tolist())
    eyes = _region_points(neutral, [
        topology.RIGHT_EYE_UPPER + topology.RIGHT_EYE_LOWER[::-1],
        topology.LEFT_EYE_UPPER + topology.LEFT_EYE_LOWER[::-1]]) | set(EYE_POINTS.tolist())
    mouth_rings = MOUTH_RINGS if mouth_rings is None else mouth_rings
    eye_rings = EYE_RINGS if eye_rings is None else eye_rings
    edge_rings = EDGE_RINGS if edge_rings is None else edge_rings
    a = np.stack([_feather(mouth, vertex_count, mouth_rings),
                  _feather(eyes, vertex_count, eye_rings),
                  _feather(set(topology.FACE_OVAL), vertex_count, edge_rings)], 1)
    a[topology.N_LANDMARKS + 1:] = 0.0  # head layer: not drawn through these
    a[MOUTH_CENTRE, 0] = 1.0
    a[list(EYE_CENTRES), 1] = 1.0
    a[HEAD_START:] = 0.0
    total = a.sum(1, keepdims=True)
    return np.ascontiguousarray(np.where(total > 1.0, a / np.maximum(total, 1e-9), a),
                                dtype=np.float32)


class RegionPicker:
    """Keyframe weights for one facial region (mouth or eyes), cross-faded in time.

    Cost of keyframe k: RMS distance between its frontalised region shape and the avatar's, in
    units of `shape_unit` interoculars, + `view_cost` × (|Δyaw| + |Δpitch|) in query units +
    `under_cost` × how much less the keyframe opens (query dimension `open_dim`) +
    FLIP_REGION_COST for a mirrored keyframe.

    A switch between keyframes is cross-faded (`WeightSmoother`), but not one whose query
    dimension `cut_dim` (the eyes' opening) differs by more than `cut`: that switch is a cut.
    A lid travels that far in a frame or two (a blink shuts in one), and a cross-fade between
    an open and a shut eye shows the iris through the lid for its frames — the blink arrives
    late and ghosted (s18 ← d10 on the atlas tier: a 4-frame blink read shut on 2).

    `hardness` h ∈ [0, 1] (per call) mixes two targets: h = 1 shows ONE keyframe, the
    cheapest, kept until another beats it by SWITCH_MARGIN (hysteresis) — for an open mouth, so
    teeth never double; h = 0 blends the `soft_k` cheapest with weights exp(−Δcost / `soft_t`)
    — for a closed mouth, where there is nothing to double and the blend averages out the
    differences between views."""

    def __init__(self, shapes: np.ndarray, query: np.ndarray, flipped: np.ndarray,
                 shape_unit: float, open_dim: int | None = None, under_cost: float = 0.0,
                 view_cost: float = 0.5, soft_k: int = 3, soft_t: float = 0.15,
                 cut_dim: int | None = None, cut: float = np.inf):
        self.shapes = np.asarray(shapes, np.float64)
        self.query = np.asarray(query, np.float64)
        self.extra = FLIP_REGION_COST * np.asarray(flipped, np.float64)
        self.shape_unit, self.open_dim = shape_unit, open_dim
        self.under_cost, self.view_cost = under_cost, view_cost
        self.soft_k, self.soft_t = soft_k, soft_t
        self.cut_dim, self.cut = cut_dim, cut
        self.smoother = WeightSmoother(len(self.query), cap=2 * max(1, soft_k))
        self.current: int | None = None

    def reset(self) -> None:
        self.smoother.reset()
        self.current = None

    def cost(self, q: np.ndarray, shape: np.ndarray) -> np.ndarray:
        c = np.sqrt(((self.shapes - shape[None]) ** 2).sum(2).mean(1)) / self.shape_unit
        c += self.view_cost * (np.abs(self.query[:, 0] - q[0]) + np.abs(self.query[:, 1] - q[1]))
        if self.open_dim is not None and self.under_cost:
            c += self.under_cost * np.clip(q[self.open_dim] - self.query[:, self.open_dim], 0, None)
        return c + self.extra

    def target(self, cost: np.ndarray, hardness: float = 1.0) -> np.ndarray:
        best = int(np.argmin(cost))
        if self.current is None or cost[best] < cost[self.current] - SWITCH_MARGIN:
            self.current = best
        hard = np.zeros(len(cost))
        hard[self.current] = 1.0
        if hardness >= 1.0:
            return hard
        order = np.argsort(cost, kind="stable")[: self.soft_k]
        soft = np.zeros(len(cost))
        soft[order] = np.exp(-(cost[order] - cost[order[0]]) / self.soft_t)
        soft /= soft.sum()
        h = max(0.0, float(hardness))
        return h * hard + (1.0 - h) * soft

    def __call__(self, q: np.ndarray, shape: np.ndarray, steps: float = 1.0,
                 hardness: float = 1.0) -> np.ndarray:
        was = self.current
        target = self.target(self.cost(q, shape), hardness)
        if (self.cut_dim is not None and was is not None and self.current != was
                and abs(self.query[self.current, self.cut_dim] - self.query[was, self.cut_dim]) > self.cut):
            self.smoother.reset()
        return self.smoother(target, steps)
