"""The atlas's query space: where a face sits in (yaw, pitch, mouth opening, eye opening), and
the Delaunay triangulation of the keyframes' query points that turns a query into barycentric
keyframe weights. Used at enrollment (the keyframes) and at run time (the posed avatar)."""
from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, Delaunay, QhullError

from realtime.face import geometry, topology

QUERY_SCALE = np.array([30.0, 20.0, 0.3, 0.1])  # yaw °, pitch °, mouth/iod, eyes/iod
DIM_NAMES = ("yaw", "pitch", "mouth", "eyes")
MOUTH_DIM = 2
EYES_DIM = 3
MIN_DIM_RANGE = 0.15     # a query dimension that varies less than this over the keyframes is
#                          not triangulated (e.g. a clip that never opens the mouth)


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
        return ConvexHull(x).equations

    # ----------------------------------------------------------------------------- building
    @classmethod
    def build(cls, points: np.ndarray, min_range: float = MIN_DIM_RANGE) -> AtlasMap:
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
