"""The driver's glasses rims, kept in front of the swapped face (`GlassesStage`).

The blend keeps a driver pixel that is far from the driver's skin in colour (an occluder,
`kernels.swap_blend`), but only away from the eyes and brows, whose own dark parts would read
as occluders (`realtime.swap.crop.triangle_labels`). Thin metal or plastic rims are both: close
to the skin in colour and right round the eyes. Without this stage a swap onto a driver who
wears glasses shows the identity's bare eyes, with the frame's arms sticking out at the temples.

Rims are found by their shape instead: a thin line (`line_strength`: the image's curvature
across a line, less the slope that an edge has beside it) that stays in one place on the head,
closing a loop round each eye. The search runs in the head's own frame (`ANCHORS`: points that
do not move with the expression), in the eyes' plane, along rays from just below each eye's
centre (`ANGLES` rays × `N_RADII` radii from just outside the eye out to an ellipse wider than
high, `DOWN`, `OUT`, `IN`, `UP`, `BELOW`: a lens's shape). The line strength is averaged over the
looks there, and per eye the strongest closed path is taken whose radius changes by at most
`STEP` steps from ray to ray, the larger steps at a cost (`closed_path`: a wide lens's corners).
Glasses are there when the lower arcs of both loops, over the cheeks
where a bare face has no line, read as a line along most of their length (their median, `FOUND`;
lost below `LOST`). The mask follows the head every frame: the loops' parts that read as a line
are drawn, anti-aliased, into the swap crop, each pixel weighted by how much the driver's image
there is a thin dark line (`rim_contrast`), and the identity's alpha is taken down by that, so
the driver's own rims show, and not the skin beside them. A bridge or arms off the skin's colour
are kept by the blend's own occluder test.

Glasses taken off or put on mid-stream are seen by looks that disagree with what was learnt
(`RELEARN`; between looks a quick check, `CHECK_EVERY`): the search learns afresh from them.

On the eval clips (every frame tracked, looks on the stage's schedule): after the first `LEARN`
looks the bare faces of d0, d10, d11, d14, s18 and s32 read at most 0.04 (and none is ever
found; s13's full-body face is too small to track), d19's round metal rims 0.58–1.08 and d13's
half-rim frame 1.25–3.02 (found throughout); both pairs are found at frame 14. d13's loops
follow its wide lenses round, top bars included (with rays from the eye's centre out to a
circle of 0.68 interoculars and one radius step from ray to ray they reached neither the
lenses' outer sides nor, but for short stretches, the top bars, and 0.13–1.37). On the 2-core
Xeon a look (the eyes' patch scaled so that the interocular is at most `WORK_IOD` px) takes
about 1.5–2 ms alone and about 3 ms inside the live loop; drawing the mask with its rim test,
0.8–1.0 ms a frame (stage p50 in the live loop; d19, d13).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from numba import njit

from kernels._sampling import bilinear_tap, bilinear_weights
from realtime.core.frame import Frame
from realtime.face import topology
from realtime.face.geometry import Similarity, face_frame, umeyama
from realtime.mesh.rig import Rig
from realtime.swap.fuse import SwapLink

__all__ = ["GlassesRims", "GlassesStage", "closed_path", "line_strength"]

#: points that move with the head but not with the expression: the eyes' corners and the nose's
#: bridge (the brows' and cheeks' points move with them; the glasses do not)
ANCHORS = (33, 133, 263, 362, 168, 6, 197, 195, 8, 9)
_ANCHORS = np.array(ANCHORS)
_EYES = (np.array(topology.RIGHT_EYE_UPPER + topology.RIGHT_EYE_LOWER),
         np.array(topology.LEFT_EYE_UPPER + topology.LEFT_EYE_LOWER))
#: rays per eye from a point DOWN interoculars (between the eyes' centres) below the eye's centre,
#: each N_RADII steps out to the ellipse whose half-axes are, from that point, OUT towards the
#: temple, IN towards the nose, UP and BELOW (interoculars; a quarter ellipse per quadrant): a
#: lens is wider than high and sits lower than the eye (d13's half-rim lenses reach 0.6
#: interoculars out and 0.33 down from the eye's centre, their top bar only 0.07 above it; d19's
#: round rims 0.5 out and in, 0.2 up and 0.4 down)
ANGLES = 72
N_RADII = 56
DOWN = 0.06
OUT, IN, UP, BELOW = 0.78, 0.52, 0.52, 0.5
#: the path's radius may change by up to STEP radius steps between neighbouring rays (a lens's
#: corners), each step past the first costing JUMP (line strength, `closed_path`)
STEP = 5
JUMP = 1.0
#: how far outside the eye's own contour a rim is looked for (interoculars): above the eye (the
#: lid's crease) and below it (the lower lid's lashes and shadow)
CLEAR_ABOVE = 0.03
CLEAR_BELOW = 0.10
#: the eyes' patch is looked at with the interocular at most this many pixels, at this σ (px)
WORK_IOD = 110.0
SIGMA = 1.2
#: the slope's weight against the curvature in `line_strength` (see there)
EDGE = 1.5
#: looks averaged plainly before a running mean with SETTLED_WEIGHT per look takes over
LEARN = 12
SETTLED_WEIGHT = 0.2
#: looks before glasses can be declared (after a relearn, below: the RELEARN looks it starts from)
MIN_LOOKS = 8
#: a look every EVERY_LEARNING frames for the first LEARN looks (glasses found within the first
#: second), every DOUBT_EVERY while a look doubts the decision (below), then every EVERY frames
#: while glasses are found or nearly (the score at least LOST), else every EVERY_BARE: a look
#: costs about 3 ms in the live loop, and the fewer frames carry one the less it shows in the
#: frames' p95
EVERY_LEARNING = 2
DOUBT_EVERY = 5
EVERY = 30
EVERY_BARE = 90
#: glasses taken off or put on mid-stream: once the mean has settled, a look that disagrees with
#: the decision is a doubt (found, but in this look the drawn lower arcs of both eyes read below
#: LOST, even a radius step off their path; or not found, but the look's own lower arcs, its
#: `closed_path`, read FOUND). A doubting look is held out of the mean; RELEARN in a row,
#: DOUBT_EVERY frames apart (a hand passing over the eyes for less than that is not a change),
#: restart the mean from them, and a look that agrees drops them.
#: On the eval clips no look doubts, neither looked at every third frame (with glasses the drawn
#: lower arcs read at least 0.48 (d19) and 2.15 (d13) in the better eye, bare faces' own lower
#: arcs at most 0.15) nor on the stage's schedule. With it (and `CHECK_EVERY`), d19's rims went
#: 13 frames after d10's bare face was spliced after them, and d13's 13 frames after d14's;
#: without, the settled mean took 142 frames, and 82 with the mask back on and off until 291.
#: Glasses put on wait for a bare face's looks (every EVERY_BARE frames) either way.
RELEARN = 3
#: between looks, while glasses are found, every CHECK_EVERY frames a quick check
#: (`GlassesRims.still_there`, about 0.4 ms against a look's 1.1–1.6 ms) brings the next look
#: forward when the rims read in neither eye: glasses taken off stop being drawn within
#: CHECK_EVERY + RELEARN × DOUBT_EVERY frames, not a settled look's wait.
CHECK_EVERY = 5
#: glasses found / lost: the smaller of the two lower arcs' median line strength (`line_strength`)
FOUND = 0.2
LOST = 0.1
#: a path angle is drawn where its mean line strength is at least this
ARC_MIN = 0.15
#: the drawn line's width: interoculars, at least MIN_WIDTH frame pixels
WIDTH = 0.025
MIN_WIDTH = 2.0
#: Within the drawn line only the driver's pixels that stand out from the skin beside them as a
#: thin dark line are kept (`rim_contrast`), against the rims' own contrast (RIM_REF_PERCENTILE of
#: it over the drawn line, at least RIM_REF_MIN of the local luma): nothing below RIM_RAMP[0] of
#: that, all of it from RIM_RAMP[1]. The whole drawn line showed the driver's own skin in a strip
#: along the rim, its colour and light untouched by the swap's colour transfer: over a darker or
#: shaded socket a pale band along each rim (s0 ← d13: the pale lid skin between the glasses' top
#: bar and the lashes, a bright line over each eye). Measured against the rims' own contrast
#: rather than a fixed one, d19's faint metal rims (7–8% under the skin) stay whole while skin
#: texture (about 1%) is not kept; bright lines (a lit strip of skin between two dark ones) are
#: never kept.
RIM_REF_PERCENTILE = 90.0
RIM_REF_MIN = 0.06
RIM_RAMP = (0.25, 0.75)


def line_strength(gray: np.ndarray, x: np.ndarray, y: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """How much a thin line (dark or bright) passes through each point (x, y) (pixel coordinates
    of `gray`, any one shape; out: that shape, float32 ≥ 0), in per cent of the local luma.

    The strongest principal curvature λ of `gray` blurred by `sigma`, less `EDGE` × the slope:
    at a line's centre the slope is zero and σ·|λ| reads the line's contrast; beside a blurred
    step edge the curvature comes with a slope at least as large (σ·|λ| − |∇| is |∇|·(|d|/σ − 1)
    at a distance d, at most 0.17 of the edge's steepest slope), so with EDGE = 1.5 the lenses'
    reflections, the lids' and brows' edges and the hairline read nearly nothing while thin rims
    read their contrast. Per cent of the local luma + 10 (the mean of the 8×8 px block around
    the point, bilinear), so a rim reads the same on pale and dark skin. The derivatives are
    central differences of the blurred image at each point (bilinear)."""
    g = cv2.GaussianBlur(np.asarray(gray, np.float32), (0, 0), sigma)
    h, w = g.shape
    small = cv2.resize(g, (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_AREA)
    xs = np.ascontiguousarray(x, np.float32).ravel()
    ys = np.ascontiguousarray(y, np.float32).ravel()
    out = np.empty(xs.shape, np.float32)
    _line_at(g[..., None], small[..., None], small.shape[1] / w, small.shape[0] / h, float(sigma), EDGE,
             xs, ys, out)
    return out.reshape(np.shape(x))


@njit(cache=True, nogil=True, inline="always")
def _sample(img, x, y):
    """The (h, w, 1) image `img` at (x, y): the kernels' one bilinear sampler, border clamped."""
    x0, y0, x1, y1, fx, fy = bilinear_weights(img.shape[0], img.shape[1], np.float32(x), np.float32(y))
    return bilinear_tap(img, x0, y0, x1, y1, fx, fy, 0)


@njit(cache=True, nogil=True)
def _line_at(g, small, kx, ky, sigma, edge, xs, ys, out):
    for i in range(xs.size):
        x, y = xs[i], ys[i]
        c = _sample(g, x, y)
        e, wst = _sample(g, x + 1.0, y), _sample(g, x - 1.0, y)
        s, n = _sample(g, x, y + 1.0), _sample(g, x, y - 1.0)
        dxx = e - 2.0 * c + wst
        dyy = s - 2.0 * c + n
        dxy = 0.25 * (_sample(g, x + 1.0, y + 1.0) - _sample(g, x + 1.0, y - 1.0)
                      - _sample(g, x - 1.0, y + 1.0) + _sample(g, x - 1.0, y - 1.0))
        dx, dy = 0.5 * (e - wst), 0.5 * (s - n)
        half = 0.5 * (dxx + dyy)
        det = math.sqrt((0.5 * (dxx - dyy)) ** 2 + dxy * dxy)
        curv = max(abs(half + det), abs(half - det))
        line = max(sigma * curv - edge * math.sqrt(dx * dx + dy * dy), 0.0)
        luma = _sample(small, (x + 0.5) * kx - 0.5, (y + 0.5) * ky - 0.5)
        out[i] = 100.0 * line / (luma + 10.0)


@njit(cache=True, nogil=True)
def closed_path(score: np.ndarray, step: int = 1, jump: float = 0.0) -> np.ndarray:
    """(K,) int64: per angle, the radius index of the highest-scoring path round the loop
    through `score` (K angles, N radii) that moves at most `step` radius steps between
    neighbouring angles, each step past the first costing `jump`. Run three times round, keeping
    the middle: its ends almost always meet (a loop whose ends do not is drawn open, `_runs`)."""
    k, n = score.shape
    total = np.empty(n)
    nxt = np.empty(n)
    back = np.zeros((3 * k, n), np.int64)
    for j in range(n):
        total[j] = score[0, j]
    for i in range(1, 3 * k):
        row = score[i % k]
        for j in range(n):
            best, arg = total[j], j
            for d in range(1, step + 1):
                cost = jump * (d - 1)
                if j >= d and total[j - d] - cost > best:
                    best, arg = total[j - d] - cost, j - d
                if j + d < n and total[j + d] - cost > best:
                    best, arg = total[j + d] - cost, j + d
            nxt[j] = best + row[j]
            back[i, j] = arg
        total[:] = nxt
    path = np.empty(3 * k, np.int64)
    path[3 * k - 1] = np.argmax(total)
    for i in range(3 * k - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path[k:2 * k].copy()


class GlassesRims:
    """The rims' search and mask for one driver's face (`reset` when the face changes).

    `observe(image, landmarks)` looks at one frame; `mask(landmarks, frame_to_crop, size)` draws
    the rims where that frame's head is, or returns None while no glasses are found. Landmarks:
    (≥468, 3) frame px (MediaPipe's x, y, z).
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.found = False
        #: the smaller of the two lower arcs' median line strength (None: not looked yet)
        self.score: float | None = None
        self._ref: np.ndarray | None = None
        self._head: tuple[np.ndarray, Similarity] | None = None
        self._mean: np.ndarray | None = None
        self._looks = 0
        self._learnt = 0            # the looks in the mean since it was (re)started
        self._doubts: list[np.ndarray] = []
        self._paths: list[np.ndarray] = []
        self._drawn_lower: list[np.ndarray] = []
        self._check: np.ndarray | None = None
        self._arc_points = np.zeros((0, 3))
        self._arc_ends = np.zeros(0, np.int64)

    # --- the search -----------------------------------------------------------------------------

    @property
    def looks(self) -> int:
        """Frames looked at since the last reset."""
        return self._looks

    def _start(self, landmarks: np.ndarray) -> None:
        lm = np.asarray(landmarks, np.float64)[:topology.N_MESH]
        ref = face_frame(lm).invert_points(lm)
        self._ref = ref
        centres = [ref[e].mean(0) for e in _EYES]
        iod = float(np.linalg.norm(centres[1][:2] - centres[0][:2]))
        self._theta = theta = np.linspace(0.0, 2.0 * np.pi, ANGLES, endpoint=False)
        self._radii = np.linspace(0.0, 1.0, N_RADII)  # along each ray, of its reach
        self._lower = np.sin(theta) > 0.3          # y runs down: the arc over the cheek
        self._iod = iod
        middle = 0.5 * (centres[0][0] + centres[1][0])
        self._origins, self._reach = [], []
        grids = []
        for c in centres:
            # x runs from the subject's right to left: outwards is away from the other eye
            out = np.sign(c[0] - middle) * np.cos(theta) >= 0.0
            ax = np.where(out, OUT, IN)
            ay = np.where(np.sin(theta) >= 0.0, BELOW, UP)
            reach = iod / np.hypot(np.cos(theta) / ax, np.sin(theta) / ay)     # (K,) px of the head frame
            c = c + np.array([0.0, DOWN * iod, 0.0])
            self._origins.append(c)
            self._reach.append(reach)
            # the rims' plane: the eyes' own. Real rims sit in front of them, but planes moved
            # towards the nose's bridge drew d19's and d13's rims less well (the drawn arcs'
            # line strength in each frame, 0.95 → 0.82 and 2.33 → 2.08 at the bridge's depth):
            # the tracker's depth is shallow and noisy, and a turn read from it moves a plane
            # in front of the anchors the wrong amount
            ray = np.stack([np.cos(theta), np.sin(theta), np.zeros_like(theta)], -1) * reach[:, None]
            grids.append(c + ray[:, None, :] * self._radii[None, :, None])
        self._grids = np.stack(grids)               # (2, K, N, 3) head-frame points
        self._extent = np.zeros((2, ANGLES))
        self._mean = None
        self._widen(ref)
        self._mean = np.zeros(self._clear.shape)

    def _widen(self, eyes: np.ndarray) -> None:
        """Take the eyes' extent along each ray (`eyes`: landmarks in the head's frame) as at
        least their contours' (interpolated round the loop): over the first looks, so that a
        blink on the first frame does not bring the open lid's lashes into the search.
        `_clear`: the grid's points outside the eyes by the margins (what was seen at the others
        is dropped from the mean)."""
        theta = self._theta
        for e, eye in enumerate(_EYES):
            d = eyes[eye, :2] - self._grids[e, 0, 0, :2]
            ang = np.arctan2(d[:, 1], d[:, 0]) % (2.0 * np.pi)
            order = np.argsort(ang)
            ang, rad = ang[order], np.hypot(d[order, 0], d[order, 1])
            rad = np.interp(theta, ang, rad, period=2.0 * np.pi) / self._reach[e]   # of each ray's reach
            self._extent[e] = np.maximum(self._extent[e], rad)
        margin = np.where(self._lower, CLEAR_BELOW, CLEAR_ABOVE) * self._iod / np.stack(self._reach)
        self._clear = self._radii[None, None, :] >= (self._extent + margin)[..., None]
        if self._mean is not None:
            self._mean[~self._clear] = 0.0

    def head(self, landmarks: np.ndarray) -> Similarity:
        """The head's frame → frame px, from the expression-free `ANCHORS` (kept for the last
        anchors seen: a frame's look, check and mask fit it once)."""
        anchors = np.asarray(landmarks, np.float64)[_ANCHORS]
        if self._head is not None and np.array_equal(self._head[0], anchors):
            return self._head[1]
        head = umeyama(self._ref[_ANCHORS], anchors)
        self._head = (anchors, head)
        return head

    def observe(self, image: np.ndarray, landmarks: np.ndarray) -> None:
        """Look at one frame: `image` (H, W, 3) RGB uint8 or (H, W) luma, its face's `landmarks`
        ((≥468, 3) frame px)."""
        if self._ref is None:
            self._start(landmarks)
        seen = self._look(image, landmarks)
        if seen is None:
            return
        self._looks += 1
        if self._learnt >= LEARN and self._disagrees(seen):
            # held out of the mean: the next looks confirm it (RELEARN in a row: the glasses came
            # off or went on, learn afresh from them) or drop it (a hand, a blink, a blur)
            self._doubts.append(seen)
            if len(self._doubts) >= RELEARN:
                self._mean = np.mean(self._doubts, axis=0, dtype=np.float64)
                self._learnt = len(self._doubts)
                self._doubts = []
                self.found = False                # judged afresh, against FOUND
                self._decide()
            return
        self._doubts = []
        self._learnt += 1
        self._mean += (seen - self._mean) * (1.0 / self._learnt if self._learnt <= LEARN else SETTLED_WEIGHT)
        if self._learnt >= MIN_LOOKS:      # before that nothing is decided anew
            self._decide()

    def next_look(self) -> int:
        """Frames until the next look (1: the next frame), by `EVERY_LEARNING`, `DOUBT_EVERY`,
        `EVERY` and `EVERY_BARE`."""
        if self._doubts:
            return DOUBT_EVERY
        if self._learnt < LEARN:
            return EVERY_LEARNING
        return EVERY if self.found or (self.score or 0.0) >= LOST else EVERY_BARE

    def _disagrees(self, seen: np.ndarray) -> bool:
        """Whether one look's line strength `seen` (2, K, N) says otherwise than the decision."""
        k = np.arange(ANGLES)
        if self.found:         # gone from both lower arcs (one alone: a turn or a hand)
            for p, drawn, x in zip(self._paths, self._drawn_lower, seen):
                near = x[k, _around(p)].max(axis=0)
                if np.median(near[drawn]) >= LOST:
                    return False
            return True
        return min(float(np.median(x[k, closed_path(x, STEP, JUMP)][self._lower])) for x in seen) >= FOUND

    def still_there(self, image: np.ndarray, landmarks: np.ndarray) -> bool:
        """A quick check between looks (about a third of a look's work: the drawn lower arcs'
        grid points only): False when found glasses' rims read in neither eye in this frame, as
        in `_disagrees` (a look is then due); True otherwise, while nothing is decided, or while
        looks doubt already (they keep `DOUBT_EVERY` apart)."""
        if not self.found or self._learnt < LEARN or self._check is None or self._doubts:
            return True
        seen = self._look(image, landmarks, self._check)
        return seen is None or not self._disagrees(seen)

    def _look(self, image: np.ndarray, landmarks: np.ndarray, where: np.ndarray | None = None) -> np.ndarray | None:
        """(2, K, N) the line strength at the search grid's points in this frame (0 where the
        grid is not clear of the eyes or falls outside the image, or not in `where`: (2, K, N)
        bool, None: all); None: too small a face."""
        head = self.head(landmarks)
        if where is None and 0 < self._looks < MIN_LOOKS:
            self._widen(head.invert_points(np.asarray(landmarks, np.float64)[:topology.N_MESH]))
        grid = self._grids.reshape(-1, 3)
        idx = None if where is None else np.flatnonzero(where)
        pts = head.apply(grid if idx is None else grid[idx])[:, :2]
        h, w = image.shape[:2]
        f = min(1.0, WORK_IOD / max(head.scale * self._iod, 1e-6))   # the look's scale
        pad = 4.0 * SIGMA / f + 2.0
        bound = pts.reshape(-1, N_RADII, 2)[:, -1] if idx is None else pts   # the discs' outer rings
        if not len(bound):
            return None
        x0, y0 = (int(max(0.0, np.floor(v - pad))) for v in bound.min(0))
        x1, y1 = (int(min(n, np.ceil(v + pad))) for v, n in zip(bound.max(0), (w, h)))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        patch = image[y0:y1, x0:x1]
        patch = (cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY) if patch.ndim == 3 else patch).astype(np.float32)
        if f < 1.0:
            patch = cv2.resize(patch, (max(8, round((x1 - x0) * f)), max(8, round((y1 - y0) * f))),
                               interpolation=cv2.INTER_AREA)
        fx, fy = patch.shape[1] / (x1 - x0), patch.shape[0] / (y1 - y0)
        mx = (pts[:, 0] - x0 + 0.5) * fx - 0.5
        my = (pts[:, 1] - y0 + 0.5) * fy - 0.5
        inside = (mx >= 0) & (my >= 0) & (mx <= patch.shape[1] - 1) & (my <= patch.shape[0] - 1)
        values = np.where(inside, line_strength(patch, mx, my), 0.0)
        if idx is None:
            seen = values.reshape(self._clear.shape)
        else:
            seen = np.zeros(self._clear.size, np.float32)
            seen[idx] = values
            seen = seen.reshape(self._clear.shape)
        return np.where(self._clear, seen, 0.0).astype(np.float64)   # closed_path is compiled for float64

    def _decide(self) -> None:
        self._paths = [closed_path(m, STEP, JUMP) for m in self._mean]
        along = [m[np.arange(ANGLES), p] for m, p in zip(self._mean, self._paths)]
        self.score = float(min(np.median(a[self._lower]) for a in along))
        self.found = self.score >= (LOST if self.found else FOUND)
        drawn = [a >= ARC_MIN for a in along]
        # the drawn lower arcs (the upper may lie on the brows; an eye with none drawn: its whole
        # lower arc) and their grid points ±1 radius: what `_disagrees` and `still_there` read
        self._drawn_lower = [d & self._lower if (d & self._lower).any() else self._lower.copy() for d in drawn]
        self._check = np.zeros(self._clear.shape, bool)
        k = np.arange(ANGLES)
        for e, (p, d) in enumerate(zip(self._paths, self._drawn_lower)):
            self._check[e, k[d], _around(p)[:, d]] = True
        # the drawn arcs' points in the head's frame, one after the other, and where each ends
        arcs = [self._on_rim(e)[run] for e, d in enumerate(drawn)
                for run in _runs(d, closed=abs(int(self._paths[e][-1]) - int(self._paths[e][0])) <= 1)]
        self._arc_points = np.concatenate(arcs) if arcs else np.zeros((0, 3))
        self._arc_ends = np.cumsum([len(a) for a in arcs])[:-1]

    def _on_rim(self, eye: int) -> np.ndarray:
        """(K, 3) head-frame points of eye `eye`'s path, each moved along its ray to the peak of
        a parabola through the mean strength at the path's radius and its two neighbours (the
        radii are 1.4 px apart at the look's scale, up to 3 frame px on a large face)."""
        k = np.arange(ANGLES)
        m, p = self._mean[eye], self._paths[eye]
        lo, mid, hi = m[k, np.maximum(p - 1, 0)], m[k, p], m[k, np.minimum(p + 1, N_RADII - 1)]
        curve = lo - 2.0 * mid + hi
        shift = np.where(curve < 0.0, 0.5 * (lo - hi) / np.where(curve < 0.0, curve, -1.0), 0.0)
        grid = self._grids[eye]
        step = (grid[:, -1] - grid[:, 0]) / (N_RADII - 1)           # one radius step per ray (K, 3)
        return grid[k, p] + step * np.clip(shift, -0.5, 0.5)[:, None]

    # --- the mask -------------------------------------------------------------------------------

    def mask(self, landmarks: np.ndarray, frame_to_crop: np.ndarray, size: int,
             image: np.ndarray | None = None) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
        """The rims in the crop (`frame_to_crop`: (2, 3) frame px → crop px; the crop `size`²):
        ((y1 − y0, x1 − x0) float32 0..1, (y0, y1, x0, x1)), the box of the crop they lie in
        (0 outside it); None while no glasses are found or none lie in the crop. With the
        frame's `image` (RGB uint8) the drawn line keeps only the pixels of it that stand out
        as a rim (`rim_contrast`)."""
        if not self.found or not len(self._arc_points):
            return None
        head = self.head(landmarks)
        a = np.asarray(frame_to_crop, np.float64)
        crop_per_px = math.sqrt(abs(a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]))
        width = max(1, int(round(max(WIDTH * head.scale * self._iod, MIN_WIDTH) * crop_per_px)))
        q = np.round((head.apply(self._arc_points)[:, :2] @ a[:, :2].T + a[:, 2]) * 16.0).astype(np.int32)
        lo, hi = q.min(0) >> 4, q.max(0) >> 4
        x0, y0 = max(0, int(lo[0]) - width - 2), max(0, int(lo[1]) - width - 2)
        x1, y1 = min(size, int(hi[0]) + width + 3), min(size, int(hi[1]) + width + 3)
        if x1 <= x0 or y1 <= y0:
            return None
        q -= np.array([x0 << 4, y0 << 4], np.int32)
        canvas = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.polylines(canvas, np.split(q, self._arc_ends), False, 255, width, cv2.LINE_AA, shift=4)
        values = canvas.astype(np.float32) * (1.0 / 255.0)
        if image is not None:
            to_box = a.copy()
            to_box[:, 2] -= (x0, y0)
            patch = cv2.warpAffine(np.asarray(image), to_box, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
            gray = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY) if patch.ndim == 3 else patch
            values *= rim_contrast(gray, width, values)
        return values, (y0, y1, x0, x1)


def rim_contrast(gray: np.ndarray, width: int, line: np.ndarray | None = None) -> np.ndarray:
    """(h, w) float32 0..1: how much each pixel of the luma patch `gray` (h, w) is part of a thin
    dark line `width` px wide or less: its closing's excess over it (an ellipse 2·`width` + 3 px
    across: wider than the line, so the line goes, the skin and a brow stay) over the local luma
    + 10, ramped from RIM_RAMP[0] to RIM_RAMP[1] of the rims' own contrast: RIM_REF_PERCENTILE of
    it over the pixels where `line` (h, w; the drawn rims, 0..1) is at least 0.5 (all pixels
    without it), at least RIM_REF_MIN."""
    g = np.asarray(gray)
    if g.dtype != np.uint8:      # (a closing is a max then a min: uint8 gives the same, faster)
        g = np.clip(np.rint(g), 0, 255).astype(np.uint8)
    side = 2 * width + 3
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    local = cv2.boxFilter(g, cv2.CV_32F, (side, side)) + 10.0
    c = cv2.subtract(cv2.morphologyEx(g, cv2.MORPH_CLOSE, k), g).astype(np.float32) / local
    on = c if line is None else c[np.asarray(line) >= 0.5]
    ref = max(float(np.percentile(on, RIM_REF_PERCENTILE)) if on.size else 0.0, RIM_REF_MIN)
    lo, hi = RIM_RAMP[0] * ref, RIM_RAMP[1] * ref
    return np.clip((c - lo) / (hi - lo), 0.0, 1.0)


def _around(path: np.ndarray) -> np.ndarray:
    """(3, K) radius indices one step inside, on and one step outside a path (K,) (clipped)."""
    return np.clip(path[None, :] + np.array([[-1], [0], [1]]), 0, N_RADII - 1)


def _runs(drawn: np.ndarray, closed: bool = True) -> list[np.ndarray]:
    """Index arrays of the runs of True in the loop `drawn`: `closed` (the path's ends meet), a
    run may wrap past the end, and a loop drawn whole is one run whose first point is repeated
    at its end; not closed, the loop is cut between its last and first points."""
    k = len(drawn)
    if closed and drawn.all():
        return [np.r_[np.arange(k), 0]]
    start = int(np.argmin(drawn)) if closed else 0   # closed: read from a gap on
    order = (start + np.arange(k)) % k
    runs, cur = [], []
    for i in order:
        if drawn[i]:
            cur.append(i)
        elif cur:
            runs.append(np.array(cur))
            cur = []
    if cur:
        runs.append(np.array(cur))
    return [r for r in runs if len(r) >= 2]


def _compile() -> None:
    closed_path(np.zeros((2, 3)), STEP, JUMP)
    line_strength(np.zeros((4, 4), np.float32), np.zeros(1, np.float32), np.zeros(1, np.float32))


class GlassesStage:
    """Frame.image + the driver's landmarks → the identity's alpha taken down on the driver's
    glasses rims (`fields.alpha`, after `AttributesStage`). Looks on `GlassesRims.next_look`'s
    schedule; draws every frame while glasses are found."""

    name = "glasses"
    device_ready = True

    def __init__(self, rig: Rig, link: SwapLink, fields, ctx, face_id=lambda: 0, enabled: bool = True):
        """`face_id()`: changes when the tracker moves onto another face (the track stage's
        `switches`): the rims learnt on the last face are forgotten. `enabled` False: the stage
        does nothing (`EngineOptions.keep_glasses`; the window's 'g' flips it), and when it is
        enabled again it learns afresh."""
        self.rig, self.link, self.fields, self.ctx = rig, link, fields, ctx
        self.face_id = face_id
        self.enabled = enabled
        self.rims = GlassesRims()
        self._wait = 0
        self._checked = 0
        self._face = face_id()
        #: the index of the first frame whose glasses were found (None: none yet this run)
        self.found_at: int | None = None
        # the mask goes up in one buffer of the crop's size: an upload per box size would cost
        # the device context a staging buffer for every shape it has seen
        s = rig.crop_size
        self._canvas = np.zeros((s, s), np.float32)
        self._device = ctx.upload(self._canvas)
        self._box = (0, 0, 0, 0)

    def reset(self) -> None:
        self.rims.reset()
        self._wait = 0
        self._checked = 0

    def status(self) -> str:
        """A line for the window's overlay."""
        if not self.enabled:
            return "glasses: not kept (g)"
        return "glasses: kept (g)" if self.rims.found else "glasses: none seen (g)"

    def __call__(self, frame: Frame) -> None:
        geo = self.link.current
        if geo is not None and geo.warm:
            _compile()       # numba's compile (or cache load) at warm-up, not in the live loop
            return
        if not self.enabled:
            if self.rims.looks:
                self.reset()
            return
        if geo is None or frame.image is None or self.fields.alpha is None or self.link.held:
            return      # held: the last face again, this image's rims are not where its were
        if self.face_id() != self._face:
            self._face = self.face_id()
            self.reset()
        landmarks = geo.driver_landmarks
        self._checked += 1
        if self._wait > 0 and self._checked >= CHECK_EVERY:
            self._checked = 0
            if not self.rims.still_there(frame.image, landmarks):
                self._wait = 0         # the rims may be gone: look now
        if self._wait <= 0:
            self.rims.observe(frame.image, landmarks)
            self._wait = self.rims.next_look()
            if self.rims.found and self.found_at is None:
                self.found_at = frame.index
        self._wait -= 1
        rims = self.rims.mask(landmarks, geo.crop, self.rig.crop_size, frame.image)
        if rims is None:
            return
        values, (y0, y1, x0, x1) = rims
        py0, py1, px0, px1 = self._box
        self._canvas[py0:py1, px0:px1] = 0.0
        self._canvas[y0:y1, x0:x1] = values
        self._box = (y0, y1, x0, x1)
        # (on the host the buffer is the canvas itself: nothing to copy)
        mask = self._device if self._device is self._canvas else self.ctx.upload(self._canvas, out=self._device)
        box = self.fields.alpha[y0:y1, x0:x1]
        box *= 1.0 - mask[y0:y1, x0:x1]
