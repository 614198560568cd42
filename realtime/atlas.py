"""Tier 2, "atlas": face-view interpolation over pose *and* expression (FSGAN §3.6, extended).

A video profile holds N keyframes of the target, each its own square face crop with its
landmarks, spread over a 4-D query space

    q = (yaw / 30°, pitch / 20°, mouth opening / interocular / 0.3, eye opening / interocular / 0.1)

measured by `measure` the same way at enrollment (a keyframe's tracked landmarks) and at run
time (the avatar's posed mesh: the recombined canonical shape in the rendered pose). The
keyframes' queries are triangulated (Delaunay) over the dimensions that vary in the clip
(`AtlasMap`). Per frame:

1. the query point picks a simplex; its barycentric coordinates are the raw keyframe weights
   (a query outside the hull is first moved radially onto the hull, towards the keyframes'
   centroid, so the weights stay continuous there too); mirrored keyframes are down-weighted,
   the weights sharpened (squared, renormalised: the nearest view dominates, less blur), and at
   most `MAX_FACE_KEYS` keep weight (a continuous top-k soft threshold);
2. the weight vector is cross-faded in time (`WeightSmoother`: a rate limit, a complete
   switch takes 3 frames, ~100 ms), so a change of simplex never pops, and ordinary motion
   is not delayed;
3. the mouth (mouth-fan triangles and lips) and the eyes (eye fans, lids, irises) are each
   taken from ONE keyframe at a time (`RegionPicker`: the keyframe whose frontalised lip or
   eye contours best match the avatar's, then the nearest view, with hysteresis; cross-faded
   in time too), feathered into the face blend over two rings of the mesh, so teeth and irises
   never double; only when no keyframe opens its mouth as wide as asked does the warp tier's
   synthetic cavity fill the difference;
4. one pass over the G-buffer (`_render_atlas`, numba): face, eye and mouth triangles sample
   each active keyframe's crop at that keyframe's landmark coordinates and blend by weight;
   head-layer triangles (hair, neck, background) sample the reference image exactly as the
   warp tier does, so they never ghost, and the outermost rings of the face fade to the same
   reference image, so the face meets the head layer without a seam.

The rasterization is shared by all keyframes (RenderStage draws the posed mesh once).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels._sampling import FASTMATH, bilinear_into
from realtime import geometry, topology
from realtime.frame import Frame
from realtime.rig import MOUTH_CENTRE, Rig

QUERY_SCALE = np.array([30.0, 20.0, 0.3, 0.1])  # yaw °, pitch °, mouth/iod, eyes/iod
DIM_NAMES = ("yaw", "pitch", "mouth", "eyes")
MOUTH_DIM = 2
MAX_FACE_KEYS = 3        # keyframes blended for the face at rest
MAX_SAMPLED_KEYS = 6     # ... and at most during a cross-fade (old and new sets together)
FADE_FRAMES = 3.0        # a complete switch of keyframes is cross-faded over this many frames
DROP_WEIGHT = 0.02       # smoothed weights below this are dropped (the rest renormalised)
SHARPEN = 2.0            # raw weights are raised to this power (renormalised): the nearest
#                          view dominates, fewer views are mixed, less blur; still continuous
FLIP_PRIOR = 0.25        # weight factor of mirrored keyframes: a real view is preferred where
#                          both are near (the mirror lights the face from the wrong side)
FLIP_REGION_COST = 0.3   # extra region cost of a mirrored keyframe
SWITCH_MARGIN = 0.1      # hysteresis of a region's keyframe choice (cost units)
MOUTH_CLOSED = 0.08      # mouth query below which the mouth blends several keyframes ...
MOUTH_OPEN = 0.25        # ... and above which it shows one (teeth never double); linear between
MOUTH_RINGS = (1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2)  # region weight on the rings of mesh
#                          neighbours around the lips: the lower face (cheeks, chin) follows
#                          the lips; forehead and nose keep the barycentric blend
EYE_RINGS = (0.6, 0.25)    # ... and around the eyes
EDGE_RINGS = (0.6, 0.25)   # ... and inside the face oval (towards the reference photo)
SOFT_KEYS = 3            # a closed mouth blends this many best-matching keyframes ...
SOFT_COST = 0.15         # ... weighted exp(−Δcost / SOFT_COST)
REGION_VIEW_COST = 0.75  # region cost per query unit of |Δyaw| + |Δpitch|
EYE_HARDNESS = 1.0       # 1: the eyes come from one keyframe at a time (irises never double)
MIN_DIM_RANGE = 0.15     # a query dimension that varies less than this over the keyframes is
#                          not triangulated (e.g. a clip that never opens the mouth)

# --------------------------------------------------------------------------------- the query

LIP_POINTS = np.array(sorted(set(topology.OUTER_LIP) | set(topology.INNER_LIP_UPPER)
                             | set(topology.INNER_LIP_LOWER)))
EYE_POINTS = np.array(topology.EYE_POINTS)


def measure(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query (4,), lip shape (L, 2), eye shape (E, 2)) of one face.

    query = (yaw/30°, pitch/20°, mouth/iod/0.3, eyes/iod/0.1); `landmarks` (478, 3) in any
    pixel frame that is a similarity of the image (image pixels, a crop of it, the avatar's
    crop): yaw and pitch come from the anatomical face frame; mouth and eye openings are
    measured on the frontalised (canonical) shape relative to its interocular distance, so they
    do not change with pose or scale. The shapes are the frontalised lip contours and eye
    contours + irises (x, y) in interoculars, relative to their own centroid (so an error of
    the face frame does not shift them): they tell a smile from a pout at one opening, and
    where the eyes look; the region pickers use them.
    """
    lm = np.asarray(landmarks, np.float64)
    frame = geometry.face_frame(lm)
    canon = frame.invert_points(lm[: topology.N_LANDMARKS])
    yaw, pitch, _ = geometry.euler_from_rotation(frame.rotation)
    iod = max(geometry.interocular(canon), 1e-9)
    eyes = float(np.mean(geometry.eye_opening(canon)))
    raw = np.array([yaw, pitch, geometry.mouth_opening(canon) / iod, eyes / iod])
    lips = canon[LIP_POINTS, :2]
    eyes_xy = canon[EYE_POINTS, :2]
    return raw / QUERY_SCALE, (lips - lips.mean(0)) / iod, (eyes_xy - eyes_xy.mean(0)) / iod


def query_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """(4,) query point of one face (see `measure`)."""
    return measure(landmarks)[0]


def mirror_landmarks(landmarks: np.ndarray, width: int) -> np.ndarray:
    """Landmarks of the horizontally flipped image (x → width − 1 − x), re-indexed so each
    landmark keeps its anatomical meaning (the subject's left becomes their right)."""
    lm = np.asarray(landmarks)[topology.MIRROR].copy()
    lm[:, 0] = (width - 1) - lm[:, 0]
    return lm


# -------------------------------------------------------------------------- the triangulation

class AtlasMap:
    """Delaunay triangulation of the keyframes' query points over the dimensions `dims`, and
    barycentric keyframe weights for any query point.

    points: (N, 4) all keyframe queries; dims: (d,) the triangulated dimensions (d may be 0:
    one keyframe, or none varies); simplices: (M, d+1) indices into points.
    """

    def __init__(self, points: np.ndarray, dims: np.ndarray, simplices: np.ndarray):
        self.points = np.asarray(points, np.float64)
        self.dims = np.asarray(dims, np.int64)
        self.simplices = np.asarray(simplices, np.int64).reshape(-1, len(self.dims) + 1)
        d = len(self.dims)
        n = len(self.points)
        if n == 0:
            raise ValueError("an atlas needs at least one keyframe")
        if len(self.simplices) and (self.simplices.min() < 0 or self.simplices.max() >= n):
            raise ValueError(f"atlas simplices index outside the {n} keyframes")
        self._x = self.points[:, self.dims] if d else np.zeros((n, 0))
        if d == 0 or len(self.simplices) == 0:
            self._T = np.zeros((0, d, d))
            self._r = np.zeros((0, d))
            self._hull = None
            self._centre = self._x.mean(0)
            return
        vs = self._x[self.simplices]                       # (M, d+1, d)
        r = vs[:, -1]                                      # (M, d)
        a = np.transpose(vs[:, :-1] - r[:, None], (0, 2, 1))  # (M, d, d): columns v_i − v_d
        det = np.linalg.det(a)
        scale = np.abs(a).max(axis=(1, 2)) ** d + 1e-300
        ok = np.abs(det) > 1e-10 * scale                   # drop flat (zero-volume) simplices
        self.simplices = self.simplices[ok]
        self._T = np.linalg.inv(a[ok])
        self._r = r[ok]
        used = np.unique(self.simplices)
        self._centre = self._x[used].mean(0)
        self._hull = self._hull_equations(self._x[used])

    @staticmethod
    def _hull_equations(x: np.ndarray):
        """(F, d+1) facet planes n·x + c ≤ 0 inside (d ≥ 2: Qhull; d = 1: the interval)."""
        if x.shape[1] == 1:
            return np.array([[1.0, -x.max()], [-1.0, x.min()]])
        from scipy.spatial import ConvexHull

        return ConvexHull(x).equations

    # ----------------------------------------------------------------------------- building
    @classmethod
    def build(cls, points: np.ndarray, min_range: float = MIN_DIM_RANGE) -> "AtlasMap":
        """Triangulate `points` (N, 4) over the dimensions that vary by at least `min_range`;
        a dimension that would make the point set degenerate is dropped (smallest spread
        first) until Qhull succeeds."""
        pts = np.asarray(points, np.float64)
        n = len(pts)
        spread = pts.max(0) - pts.min(0) if n else np.zeros(pts.shape[1])
        dims = [int(i) for i in np.argsort(-spread) if spread[i] >= min_range]
        while dims:
            if len(dims) + 1 <= n:
                simplices = cls._triangulate(pts[:, sorted(dims)])
                if simplices is not None and len(simplices):
                    m = cls(pts, np.array(sorted(dims)), simplices)
                    if len(m.simplices):
                        return m
            dims.pop()  # the dimension with the smallest spread
        return cls(pts, np.zeros(0, np.int64), np.zeros((0, 1), np.int64))

    @staticmethod
    def _triangulate(x: np.ndarray):
        if x.shape[1] == 1:
            order = np.argsort(x[:, 0], kind="stable")
            keep = [order[0]]
            for i in order[1:]:
                if x[i, 0] - x[keep[-1], 0] > 1e-9:
                    keep.append(i)
            if len(keep) < 2:
                return None
            return np.array([(a, b) for a, b in zip(keep[:-1], keep[1:])], np.int64)
        from scipy.spatial import Delaunay, QhullError

        try:
            return Delaunay(x).simplices.astype(np.int64)
        except QhullError:
            try:
                return Delaunay(x, qhull_options="QJ").simplices.astype(np.int64)
            except QhullError:
                return None

    # ------------------------------------------------------------------------------- query
    def _bary(self, x: np.ndarray) -> np.ndarray:
        """(M, d+1) barycentric coordinates of x in every simplex."""
        b = np.einsum("mij,mj->mi", self._T, x[None] - self._r)
        return np.concatenate([b, 1.0 - b.sum(1, keepdims=True)], axis=1)

    def project(self, q: np.ndarray) -> np.ndarray:
        """The triangulated coordinates of q, moved onto the hull along the ray from the
        keyframes' centroid when q lies outside (continuous in q)."""
        x = np.asarray(q, np.float64)[self.dims]
        if self._hull is None:
            return x
        n, c = self._hull[:, :-1], self._hull[:, -1]
        inside = n @ x + c
        if (inside <= 1e-12).all():
            return x
        d = x - self._centre
        along = n @ d
        room = -(n @ self._centre + c)          # ≥ 0: the centroid is inside
        pos = along > 1e-15
        s = np.min(np.where(pos, room / np.where(pos, along, 1.0), np.inf))
        s = min(1.0, max(0.0, s * (1.0 - 1e-9)))
        return self._centre + s * d

    def locate(self, q: np.ndarray) -> tuple[int, np.ndarray]:
        """(simplex index, (d+1,) weights ≥ 0 summing to 1) of query q (4,). −1 when d = 0."""
        if len(self.simplices) == 0:
            return -1, np.ones(1)
        b = self._bary(self.project(q))
        s = int(np.argmax(b.min(1)))
        w = np.clip(b[s], 0.0, None)
        return s, w / w.sum()

    def weights(self, q: np.ndarray) -> np.ndarray:
        """(N,) raw keyframe weights of query q: barycentric in its simplex, 0 elsewhere."""
        w = np.zeros(len(self.points))
        s, bw = self.locate(q)
        if s < 0:  # nothing triangulated: the nearest keyframe
            w[int(np.argmin(((self.points - np.asarray(q)) ** 2).sum(1)))] = 1.0
        else:
            w[self.simplices[s]] = bw
        return w


def sparsify(w: np.ndarray, k: int = MAX_FACE_KEYS, tau_max: float = 0.1) -> np.ndarray:
    """At most k non-zero weights, renormalised: subtract τ = min((k+1)-th largest, `tau_max`)
    from every weight, clip at 0, keep the k largest.

    Continuous where the k-th and (k+1)-th swap rank while they are below `tau_max` (both are
    0 there), and where the (k+1)-th crosses `tau_max`; the renormalisation never divides by
    less than 1 − (k+1)·tau_max, so near-ties cannot blow small changes up (the plain soft
    threshold, τ = (k+1)-th, divides by ~0 when k+1 weights tie). What remains — a rank swap
    between two weights both above `tau_max` — moves at most 2·(w − tau_max) and the cross-fade
    absorbs it."""
    w = np.asarray(w, np.float64)
    if np.count_nonzero(w) <= k:
        return w / w.sum()
    order = np.argsort(-w, kind="stable")
    tau = min(w[order[k]], tau_max)
    out = np.clip(w - tau, 0.0, None)
    out[order[k:]] = 0.0
    total = out.sum()
    if total <= 1e-12:
        out = np.zeros_like(w)
        out[order[:k]] = 1.0
        total = float(k)
    return out / total


class WeightSmoother:
    """Cross-fades a keyframe weight vector in time: each frame the weights move straight
    towards the target by at most 2 / `fade_frames` in L1 norm (a full switch from one set of
    keyframes to another takes `fade_frames` frames, ~100 ms at 30 fps; ordinary motion, which
    changes the weights by less, passes without lag). Weights below `drop` are dropped and at
    most `cap` keep weight (the smallest go first); the result always sums to one."""

    def __init__(self, n: int, fade_frames: float | None = None, drop: float = DROP_WEIGHT,
                 cap: int | None = None):
        self.n, self.drop = n, drop
        self.fade_frames = FADE_FRAMES if fade_frames is None else fade_frames
        self.cap = MAX_SAMPLED_KEYS if cap is None else cap
        self.w: np.ndarray | None = None

    def reset(self) -> None:
        self.w = None

    def __call__(self, target: np.ndarray, steps: float = 1.0) -> np.ndarray:
        target = np.asarray(target, np.float64)
        if self.w is None or self.fade_frames <= 0:
            w = target.copy()
        else:
            delta = target - self.w
            dist = np.abs(delta).sum()
            limit = 2.0 * max(steps, 1.0) / self.fade_frames
            w = self.w + delta * min(1.0, limit / dist) if dist > 0 else target.copy()
        w[w < self.drop] = 0.0
        if np.count_nonzero(w) > self.cap:
            w[np.argsort(-w, kind="stable")[self.cap:]] = 0.0
        total = w.sum()
        w = target.copy() if total <= 0 else w / total
        self.w = w
        return w


# --------------------------------------------------------------------------- mouth and eyes

def _region_points(neutral: np.ndarray, loops) -> set[int]:
    """Landmarks inside or on the closed contours `loops` of the neutral shape."""
    from matplotlib.path import Path

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
    total = a.sum(1, keepdims=True)
    return np.ascontiguousarray(np.where(total > 1.0, a / np.maximum(total, 1e-9), a),
                                dtype=np.float32)


class RegionPicker:
    """Keyframe weights for one facial region (mouth or eyes), cross-faded in time.

    Cost of keyframe k: RMS distance between its frontalised region shape and the avatar's, in
    units of `shape_unit` interoculars, + `view_cost` × (|Δyaw| + |Δpitch|) in query units +
    `under_cost` × how much less the keyframe opens (query dimension `open_dim`) +
    FLIP_REGION_COST for a mirrored keyframe.

    `hardness` h ∈ [0, 1] (per call) mixes two targets: h = 1 shows ONE keyframe, the
    cheapest, kept until another beats it by SWITCH_MARGIN (hysteresis) — for an open mouth, so
    teeth never double; h = 0 blends the `soft_k` cheapest with weights exp(−Δcost / `soft_t`)
    — for a closed mouth, where there is nothing to double and the blend averages out the
    differences between views."""

    def __init__(self, shapes: np.ndarray, query: np.ndarray, flipped: np.ndarray,
                 shape_unit: float, open_dim: int | None = None, under_cost: float = 0.0,
                 view_cost: float = 0.5, soft_k: int = 3, soft_t: float = 0.15):
        self.shapes = np.asarray(shapes, np.float64)
        self.query = np.asarray(query, np.float64)
        self.extra = FLIP_REGION_COST * np.asarray(flipped, np.float64)
        self.shape_unit, self.open_dim = shape_unit, open_dim
        self.under_cost, self.view_cost = under_cost, view_cost
        self.soft_k, self.soft_t = soft_k, soft_t
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
        return self.smoother(self.target(self.cost(q, shape), hardness), steps)


# ------------------------------------------------------------------------------- the kernel

@njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def _render_atlas(tri_id, bary, triangles, head_lo, ref_uv, ref_img, keys, key_uv, key_imgs,
                  weights, alpha, out):
    """One pass over the G-buffer. Head-layer triangles (index ≥ head_lo) sample the
    reference image at `ref_uv`; the others blend the keyframes `keys` (J,) sampled at their
    own `key_uv[k]` coordinates with weight (1 − am − ae − ar)·weights[j, 0] +
    am·weights[j, 1] + ae·weights[j, 2], plus the reference image with weight ar; (am, ae, ar)
    are the interpolated region alphas (V, 3). Empty pixels get 0."""
    hh = tri_id.shape[0]
    ww = tri_id.shape[1]
    nk = keys.shape[0]
    for y in prange(hh):
        tmp = np.empty(3, np.float32)
        for x in range(ww):
            t = tri_id[y, x]
            if t < 0:
                out[y, x, 0] = 0.0
                out[y, x, 1] = 0.0
                out[y, x, 2] = 0.0
                continue
            i0 = triangles[t, 0]
            i1 = triangles[t, 1]
            i2 = triangles[t, 2]
            b1 = bary[y, x, 0]
            b2 = bary[y, x, 1]
            b0 = np.float32(1.0) - b1 - b2
            if t >= head_lo:
                u = b0 * ref_uv[i0, 0] + b1 * ref_uv[i1, 0] + b2 * ref_uv[i2, 0]
                v = b0 * ref_uv[i0, 1] + b1 * ref_uv[i1, 1] + b2 * ref_uv[i2, 1]
                bilinear_into(ref_img, u, v, out[y, x])
                continue
            am = b0 * alpha[i0, 0] + b1 * alpha[i1, 0] + b2 * alpha[i2, 0]
            ae = b0 * alpha[i0, 1] + b1 * alpha[i1, 1] + b2 * alpha[i2, 1]
            ar = b0 * alpha[i0, 2] + b1 * alpha[i1, 2] + b2 * alpha[i2, 2]
            af = np.float32(1.0) - am - ae - ar
            r = np.float32(0.0)
            g = np.float32(0.0)
            bl = np.float32(0.0)
            if ar > np.float32(1e-4):
                u = b0 * ref_uv[i0, 0] + b1 * ref_uv[i1, 0] + b2 * ref_uv[i2, 0]
                v = b0 * ref_uv[i0, 1] + b1 * ref_uv[i1, 1] + b2 * ref_uv[i2, 1]
                bilinear_into(ref_img, u, v, tmp)
                r += ar * tmp[0]
                g += ar * tmp[1]
                bl += ar * tmp[2]
            for j in range(nk):
                w = af * weights[j, 0] + am * weights[j, 1] + ae * weights[j, 2]
                if w <= np.float32(1e-4):
                    continue
                k = keys[j]
                u = b0 * key_uv[k, i0, 0] + b1 * key_uv[k, i1, 0] + b2 * key_uv[k, i2, 0]
                v = b0 * key_uv[k, i0, 1] + b1 * key_uv[k, i1, 1] + b2 * key_uv[k, i2, 1]
                bilinear_into(key_imgs[k], u, v, tmp)
                r += w * tmp[0]
                g += w * tmp[1]
                bl += w * tmp[2]
            out[y, x, 0] = r
            out[y, x, 1] = g
            out[y, x, 2] = bl


# ---------------------------------------------------------------------------- the generator

class AtlasGenerator:
    """Tier 2: blend the keyframe views of the query's simplex on the recombined mesh."""

    tier = "atlas"

    def __init__(self, profile, rig: Rig):
        from profiles.format import ProfileError
        from realtime.generate import MouthCavity

        if not getattr(profile, "has_atlas", False):
            raise ProfileError(f"profile {getattr(profile, 'name', '?')!r} has no appearance atlas: "
                               f"the atlas tier needs a profile enrolled from a video "
                               f"(python run.py enroll CLIP.mp4 --name NAME); use --tier warp")
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
                                 shape_unit=0.03, view_cost=REGION_VIEW_COST)
        # Per-keyframe texture coordinates: face landmarks and the mouth centre in the
        # keyframe's own crop; head-layer vertices are never sampled through these.
        uv = np.repeat(rig.attributes[None, :, :2], n, axis=0).astype(np.float32)
        inner = sorted(set(topology.INNER_LIP_UPPER) | set(topology.INNER_LIP_LOWER))
        uv[:, :MOUTH_CENTRE] = lms[:, :, :2]
        uv[:, MOUTH_CENTRE] = lms[:, inner, :2].mean(1)
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
        _render_atlas(gbuf.tri_id, gbuf.bary, self.rig.triangles, self.head_lo, self.ref_uv,
                      self.ref_image, keys, self.key_uv, self.images,
                      np.ascontiguousarray(w[keys], dtype=np.float32), self.alpha, out)
        # Synthetic cavity where no keyframe opens its mouth as wide as asked.
        asked = q[MOUTH_DIM]
        real = 1.0
        if asked > 1e-6:
            opened = np.minimum(1.0, np.maximum(self.query[:, MOUTH_DIM], 0.0) / asked)
            real = float(np.sum(w[:, 1] * opened))
        if real < 0.999:
            self.cavity.apply(gbuf, self.rig, out, real)
        self.last = {"query": q, "keys": keys, "weights": w[keys], "real_mouth": real}
        return out
