"""Fuse stage: recombination with retargeting (UniFaceGAN eq. 3–4, DESIGN §3).

    S = s_T · (R_rel · R_T) · (N_T + L + ρ ⊙ E) + t_T + s_T · Δt

N_T, (R_T, s_T, t_T): the target's neutral shape and face frame; E, R_rel, Δt: the driver's
expression residual and pose relative to its own neutral; ρ: per-landmark retargeting gains,
the ratio of target to driver sizes per facial region, smoothed over the mesh so there is no
crease at region borders. L (`lip_rest_shift`, `lip_gap_field`): the lips' gap at rest is the
driver's neutral one (times ρ), not the photo's — how far apart the lips are is an expression,
not an identity: a photo with parted lips closes them when the driver's close. With E = 0 and
R_rel = I the target's neutral comes out exactly but for that gap, so
the driver's face shape never leaks into the target.

The user's per-region gains (`realtime.mesh.gains`: eyes, brows, mouth, gaze, pose) scale E per
landmark on top of ρ, and the relative rotation's angle.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from realtime.core.ramp import smoothstep
from realtime.face import geometry, topology
from realtime.face.estimate import EstimatorConfig
from realtime.face.geometry import Similarity
from realtime.face.state import FaceState
from realtime.mesh.gains import REGIONS, check_gains, landmark_gains

_UPPER_LIP = np.array(topology.INNER_LIP_UPPER[1:-1])
_LOWER_LIP = np.array(topology.INNER_LIP_LOWER[1:-1])
_LIPS = np.concatenate([_UPPER_LIP, _LOWER_LIP])
_LIDS = [(np.array(u[1:-1]), np.array(l[1:-1])) for u, l in (
    (topology.RIGHT_EYE_UPPER, topology.RIGHT_EYE_LOWER),
    (topology.LEFT_EYE_UPPER, topology.LEFT_EYE_LOWER))]


def _lid_skin(upper) -> tuple[np.ndarray, np.ndarray]:
    """The skin next to one upper lid: (its landmarks, `topology.ring_above`; (len(those),
    len(upper) − 2) weights: each point's share of every inner contour point's move, the mean
    over its contour neighbours, the corners counting as still)."""
    adj = topology.vertex_adjacency()
    inner = [int(i) for i in upper[1:-1]]
    ring = topology.ring_above(upper)
    weights = np.zeros((len(ring), len(inner)))
    for r, v in enumerate(ring):
        near = [k for k, i in enumerate(inner) if v in adj[i]]
        corners = sum(1 for c in (upper[0], upper[-1]) if v in adj[int(c)])
        weights[r, near] = 1.0 / (len(near) + corners)
    return ring, weights


_LID_SKIN = [_lid_skin(u) for u in (topology.RIGHT_EYE_UPPER, topology.LEFT_EYE_UPPER)]

_LID_POINTS = sorted(set(topology.RIGHT_EYE_UPPER) | set(topology.RIGHT_EYE_LOWER)
                     | set(topology.LEFT_EYE_UPPER) | set(topology.LEFT_EYE_LOWER))

# How the lids close, as fractions of the avatar's own open gap (`_lids`). The tracker reads a
# drawn eye's narrowing as less of it, as it does a brow raise (BROW_RESPONSE below): so below
# the open gap the gap's shortfall is LID_RESPONSE times the driver's, the extra easing in over
# the first LID_KNEE of it (a still eye's jitter is not amplified) and growing no further past
# LID_RESPONSE_CAP (a deeper narrowing reads already: the eye layer dims the eyeball as the lids
# come down, `realtime.tiers.eyes.SHOWN_TO`; with the extra growing all the way, d11's squeezed
# slit was drawn shut). The lids meet as the result falls from LID_MEET[1] to LID_MEET[0]:
# MediaPipe never reads a shut eye as shut (its lids stay ~0.02 interocular apart).
# Before, the gap went through a smoothstep between 0.25 and 0.8 of the open gap, which drew a
# half-shut eye (0.4) nearly shut (0.06). Self-drive (`bench --self-drive`) eye opening gain
# (r), right / left, with this (then at 1.4, before LID_SKIN_FOLLOW) and LID_WIDEN_RESPONSE
# against that map: d10 0.97 (0.966) / 0.88 (0.903) from 0.89 (0.953) / 0.81 (0.882); d11 1.10
# (0.955) / 1.13 (0.972) from 1.22 (0.932) / 1.13 (0.953); d19 0.91 (0.918) / 0.99 (0.964) from
# 0.88 (0.905) / 0.98 (0.942); d0 and d14 within 0.05, every closed eye of the five clips and s18
# still shut.
LID_RESPONSE = 1.35
LID_KNEE = 0.1
LID_RESPONSE_CAP = 0.3
LID_MEET = (0.05, 0.25)
# A widening eye likewise: the tracker reads 0.65 of a drawn eye's widening (a photo avatar's
# lids swept open by 50 %, nothing else moving), so above the open gap its excess is
# LID_WIDEN_RESPONSE times the driver's (easing in over the first LID_KNEE). The eye layer shows
# the eyeball the photo's lids hid. With it, self-drive d10's left eye reads 0.88 (0.903) instead
# of 0.85 (0.891); d11, d14, d0, d19 move by 0.02 or less.
LID_WIDEN_RESPONSE = 1.5
# The lid's skin comes with it. The responses move the upper lid's contour further than the
# driver's; the skin above it (MediaPipe's ring of points next to the contour) stayed where the
# driver's expression put it, so the photo's lash band and lid margin were stretched between the
# two as the lid came down (squeezed as it went up) rather than carried as a lid, and the tracker
# read the drawn narrowing as less of it. LID_SKIN_FOLLOW of the contour's extra move goes to
# each point of that ring (the mean of its contour neighbours' moves; the corners stay).
# Self-drive (`bench --self-drive`) eye opening gain (r), right / left, with LID_RESPONSE
# 1.4 → 1.35 (the picture shows more of the move now): d10 0.99 (0.964) / 0.92 (0.898) →
# 0.99 (0.964) / 0.94 (0.901); d11 1.14 / 1.13 → 1.12 / 1.13; d19 0.94 (0.913) / 0.88 (0.956) →
# 0.97 (0.918) / 0.88 (0.958); d0 and d14 within 0.01. The picture's share of the mesh's
# narrowing (output against the posed mesh) d10 0.77 / 0.67 → 0.78 / 0.69, d19 0.73 / 0.67 →
# 0.78 / 0.68; every closed eye still arrives. At 0.5 with the response at 1.4, d11's right eye
# read 1.154; at 0.7 and 1.25, d19's left 0.82.
LID_SKIN_FOLLOW = 0.5
# The largest head rotation (degrees, relative to the target's own pose, any axis) the head
# layer can draw: its rings turn with the head while the crop's border stays, and past ~31° (in
# the worst direction, a yaw–pitch diagonal; ~40° for a pure roll, ~45° for a pure yaw) some of
# the triangles between them fold over on the astronaut: the head layer tears. Rotations beyond
# this keep their axis and stop at this angle. The six eval drivers stay under 21°.
MAX_HEAD_ANGLE = 30.0
# How much more the brows and the mouth's width move than the driver's residual says, so that
# they *read* as the driver's. A warped photo shows a brow raise or a widened mouth without the
# cues a real face adds (forehead folds, the upper lid's skin, cheeks pushed aside), and reads as
# less of it: on self-drive of the five eval drivers the output's brow raise, tracked, is
# 0.80–0.98 (median 0.82) of the posed mesh's and its mouth width 0.78–1.06 (median 0.88), where
# the mouth's opening reads 0.89–0.98 and needs nothing (`bench --self-drive`, the loss measured
# between `Frame.vertices` and the output). The user's gains apply on top: 1.0 reads as the driver.
BROW_RESPONSE = 1.2
MOUTH_WIDTH_RESPONSE = 1.1


@dataclass
class FuseConfig:
    follow_translation: float = 1.0  # 0 pins the head in place
    follow_scale: float = 0.0        # 0 keeps the avatar's head size constant (stable scale)
    expression_gain: float = 1.0
    smoothing_iterations: int = 4
    eye_gain: float = 1.0            # per-region gains (realtime.mesh.gains): the lids ...
    brow_gain: float = 1.0           # ... the brows and forehead
    mouth_gain: float = 1.0          # ... the lips and lower face
    gaze_gain: float = 1.0           # ... the irises
    pose_gain: float = 1.0           # ... the head rotation's angle
    max_head_angle: float = MAX_HEAD_ANGLE  # degrees; the swap draws no head layer: no limit (180)
    brow_response: float = BROW_RESPONSE    # read-as-driver compensation of the brows (all axes) ...
    mouth_width_response: float = MOUTH_WIDTH_RESPONSE  # ... and of the mouth region's x motion
    lid_response: float = LID_RESPONSE      # a narrowing lid gap's shortfall × this (`_lids`) ...
    lid_widen_response: float = LID_WIDEN_RESPONSE  # ... a widening one's excess × this ...
    lid_meet: tuple[float, float] = LID_MEET  # ... and the lids meet as it falls from [1] to [0]
    mouth_retarget: float = 1.0             # how much of the lips' size ratio scales their motion
    #   (1: all of it, the reenactment's: a small mouth moves less; 0: none, the swap's: the jaw
    #   that moves is the driver's own, so the identity's lips follow it one to one)

    def gains(self) -> dict[str, float]:
        """The per-region gains as {region: gain} (`realtime.mesh.gains.REGIONS`)."""
        return {r: float(getattr(self, GAIN_FIELD[r])) for r in REGIONS}

    def with_gains(self, gains: dict[str, float]) -> FuseConfig:
        """A copy with the given per-region gains (validated: GainError)."""
        return dataclasses.replace(self, **{GAIN_FIELD[r]: v for r, v in check_gains(gains).items()})


#: The FuseConfig field of each `--gain` region.
GAIN_FIELD = {"eyes": "eye_gain", "brows": "brow_gain", "mouth": "mouth_gain",
              "gaze": "gaze_gain", "pose": "pose_gain"}


_MOUTH_REGION = 1   # topology.region_labels

# The lower lip's outer contour and the chin below it, as columns of mesh neighbours going down
# the face (each point's neighbour most directly below it on a neutral face, made symmetric).
# MediaPipe folds this part of its mesh on a mouth opened very wide: on d10's widest mouth
# (frames 95–100) it puts the points under the lower lip (18, 200) on the lip itself, above its
# outer contour (17), up to 0.057 interoculars; d11, d13 and d14 fold by under 0.01 on a few
# frames, d0 and d19 never. Carried into the avatar's mesh through the expression, that folds
# the lip over the chin, and the rasteriser's depth test draws the overlap as a jagged band
# (s12 ← d10's swap: a crescent of lower lip with a pixel-staircase edge under the opening).
# `_unfold_chin` keeps each point at least CHIN_KEEP of its neutral distance below the one
# above it; a face that does not fold comes out bit for bit as before.
CHIN_COLUMNS = np.array([
    (17, 18, 200, 199, 175, 152),
    (84, 83, 201, 208, 171, 148), (314, 313, 421, 428, 396, 377),
    (181, 182, 194, 32, 140, 176), (405, 406, 418, 262, 369, 400),
])
CHIN_KEEP = 0.5
# The upper lip under the nose, as columns from the nose's base (and the nasolabial skin beside
# it) down through the philtrum to the upper lip's top, mirrored (mesh neighbours, each most
# directly below the one above on a neutral face); each carries the lip below its top down with
# it (`_LIP_CARRIED`, to the inner contour). A mouth gain over 1 (`--gain mouth=2`, up to 3) on a
# smile raised the upper lip past the nose's base: at 2 the lip's top (0) came 0.02 canonical
# units above the base (2), at 3 0.12 (0.08 below it at gain 1), and the mouth's dark opening
# rose over the philtrum to the nostrils with a jagged edge. `_unfold_upper_lip` keeps each
# column point at least LIP_KEEP of its neutral distance below the one above; a face that does
# not fold comes out bit for bit as before. At gain 1 (`/tmp/s66/philtrum.py` at stop 66, the
# eval drivers d0, d10, d11, d14, d19): s12 comes to 0.40 of it at the least (untouched); s5 on
# d19 to 0.30 (16 of 249 frames held); s1, a photo that already smiles, folds it on d0, d11 and
# d19 (down to -0.15 of it, 47 of d0's 77 frames) and is held there.
_LIP_LEFT = ((2, 164, 0), (97, 167, 37), (98, 165, 39), (206, 92, 40))
_CARRIED_LEFT = ((11, 12, 13), (72, 38, 82), (73, 41, 81), (74, 42, 80))


def _mirrored(left) -> np.ndarray:
    return np.array(tuple(left) + tuple(tuple(int(topology.MIRROR[i]) for i in c) for c in left[1:]))


LIP_COLUMNS = _mirrored(_LIP_LEFT)
_LIP_CARRIED = _mirrored(_CARRIED_LEFT)
LIP_KEEP = 0.35


def _unfold_columns(shape: np.ndarray, columns: np.ndarray, min_gaps: np.ndarray) -> None:
    """Push each point of `columns` (C, K) down (canonical y, in place) to at least `min_gaps`
    (C, K − 1) below the point above it, from the top down."""
    for k in range(1, columns.shape[1]):
        above, below = columns[:, k - 1], columns[:, k]
        floor = shape[above, 1] + min_gaps[:, k - 1]
        low = shape[below, 1] < floor
        if low.any():
            shape[below[low], 1] = floor[low]


def _unfold_chin(shape: np.ndarray, min_gaps: np.ndarray) -> None:
    """`_unfold_columns` down `CHIN_COLUMNS`, from the lip down."""
    _unfold_columns(shape, CHIN_COLUMNS, min_gaps)


def _unfold_upper_lip(shape: np.ndarray, min_gaps: np.ndarray) -> None:
    """`_unfold_columns` down `LIP_COLUMNS`, from the nose down; the lip under each column's top
    goes down as far as its top did (the lip keeps its thickness; `_unfold` then parts it from a
    lower lip it met)."""
    top = LIP_COLUMNS[:, -1]
    before = shape[top, 1].copy()
    _unfold_columns(shape, LIP_COLUMNS, min_gaps)
    moved = shape[top, 1] - before
    if moved.any():
        shape[_LIP_CARRIED, 1] += moved[:, None]


def _smoothing_matrix() -> sp.csr_matrix:
    rows, cols = [], []
    for i, nb in enumerate(topology.vertex_adjacency()):
        rows += [i] * (len(nb) + 1)
        cols += [i] + list(nb)
    m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)),
                      shape=(topology.N_LANDMARKS, topology.N_LANDMARKS))
    return sp.diags(1.0 / np.asarray(m.sum(1)).ravel()) @ m


def retarget_gains(target_neutral: np.ndarray, driver_neutral: np.ndarray,
                   iterations: int = 4, mouth: float = 1.0) -> np.ndarray:
    """(478, 1) per-landmark gains: RMS size of each region on the target over the driver (the
    mouth's ratio to the power `mouth`: 0 moves the lips as much as the driver's)."""
    labels = topology.region_labels()
    gains = np.ones(topology.N_LANDMARKS)
    fixed = labels > 0
    for region in range(1, labels.max() + 1):
        idx = labels == region
        t = target_neutral[idx, :2]
        d = driver_neutral[idx, :2]
        size_t = np.sqrt(((t - t.mean(0)) ** 2).sum(1).mean())
        size_d = np.sqrt(((d - d.mean(0)) ** 2).sum(1).mean())
        if size_d > 1e-9:
            gains[idx] = np.clip(size_t / size_d, 0.5, 2.0) ** (mouth if region == _MOUTH_REGION else 1.0)
    # Each region keeps its own ratio; only the skin around it is smoothed towards 1, so there
    # is no crease at a region border and no dilution of thin regions (lips, lids).
    raw = gains.copy()
    smooth = _smoothing_matrix()
    for _ in range(iterations):
        gains = smooth @ gains
        gains[fixed] = raw[fixed]
    return gains[:, None]


def lip_rest_shift(target_neutral: np.ndarray, driver_neutral: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """(len(_UPPER_LIP),) how much wider (canonical y; negative: narrower) each inner-lip pair of
    the target must be at the driver's rest for the lips' gap to follow the driver's *own* gap
    rather than the target's photo plus the driver's change: the driver's neutral gap times the
    pair's retargeting gain, less the photo's. A photo with parted lips (s1: 0.046 interoculars)
    otherwise never closes them when the driver's close, and a driver calibrated with parted lips
    shuts the avatar's before their own."""
    d = np.asarray(driver_neutral, np.float64)
    t = np.asarray(target_neutral, np.float64)
    g = 0.5 * (gains[_UPPER_LIP, 0] + gains[_LOWER_LIP, 0])
    return g * (d[_LOWER_LIP, 1] - d[_UPPER_LIP, 1]) - (t[_LOWER_LIP, 1] - t[_UPPER_LIP, 1])


def lip_gap_field(shape: np.ndarray, widen: np.ndarray) -> np.ndarray:
    """(478, 3) the displacement of canonical `shape` (y down) that widens its inner-lip pairs by
    `widen` (len(_UPPER_LIP),; negative narrows), each pair's two points moving half of it, so
    the lips' midline stays. Known limit: the outer contours stay, so closing a photo's parted
    lips this way thickens them (s1: by about 40%). Moving the lower lip and the jaw with it
    instead (a jaw's weights, as `realtime.io.performance.Blendshapes` opens one) folded the
    mesh beside the mouth's corners when raised (10-18 flipped triangles closing the astronaut's
    lips, 0-2 this way) and lost 13 of s1 <- d14's 130 closed eyes in the tracked output."""
    widen = np.asarray(widen, np.float64)
    d = np.zeros((len(shape), 3))
    d[_UPPER_LIP, 1] = -0.5 * widen
    d[_LOWER_LIP, 1] = 0.5 * widen
    return d


def lip_gap_offset(main_neutral: np.ndarray, source_neutral: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(478, 3) what a remixed expression (`realtime.io.remix`: residual of `source_neutral`,
    rescaled by `scale` (478, 1) to `main_neutral`) needs added for the lips' gap to be the
    source's own: the recombiner puts the main driver's neutral gap under every expression
    (`lip_rest_shift`), the source's residual is over its own neutral's gap."""
    # the same difference as the recombiner's, with the source in the driver's place
    return lip_gap_field(main_neutral, lip_rest_shift(main_neutral, source_neutral, scale))


def response_field(brows: float, mouth_width: float) -> np.ndarray:
    """(478, 3) per-landmark, per-axis factors of the expression residual: `brows` on the brow
    region (feathered as its gain, every axis; not on the lids, whose closing has its own
    thresholds), `mouth_width` on the mouth region's x axis."""
    field = np.repeat(landmark_gains({"brows": brows}), 3, axis=1)
    field[_LID_POINTS] = 1.0
    field[:, 0] *= landmark_gains({"mouth": mouth_width})[:, 0]
    return field


def _lids(pairs_upper: np.ndarray, pairs_lower: np.ndarray, shape: np.ndarray, rest: float,
          response: float, widen: float, meet: tuple[float, float],
          skin: tuple[np.ndarray, np.ndarray] | None = None, follow: float = LID_SKIN_FOLLOW) -> None:
    """One eye's lids, narrowed to read as the driver's (in place). With f the mean gap of the
    three middle lid pairs over the avatar's open gap `rest`, a narrowing eye (f < 1) gets
    g = f − (response − 1)·min(1 − f, LID_RESPONSE_CAP), the extra easing in over the first
    LID_KNEE of the shortfall 1 − f; then g·smoothstep((g − meet[0]) / (meet[1] − meet[0])),
    so the lids meet below meet[0]. A widening eye (f > 1) gets f + (widen − 1)·(f − 1), the
    extra easing in likewise. The upper lid moves (every pair by the same factor), and `follow` of
    its move goes to the skin next to it (`skin`: `_lid_skin`'s points and weights). See
    LID_RESPONSE, LID_WIDEN_RESPONSE and LID_SKIN_FOLLOW for why."""
    gap = shape[pairs_lower, 1] - shape[pairs_upper, 1]
    middle = len(gap) // 2
    f = float(gap[middle - 1:middle + 2].mean()) / rest
    k = min(abs(1.0 - f) / LID_KNEE, 1.0)
    ease = k * k * (3.0 - 2.0 * k)
    if f >= 1.0:
        g = f + (widen - 1.0) * (f - 1.0) * ease
    else:
        g = max(f - (response - 1.0) * min(1.0 - f, LID_RESPONSE_CAP) * ease, 0.0)
        x = min(max((g - meet[0]) / (meet[1] - meet[0]), 0.0), 1.0)
        g *= x * x * (3.0 - 2.0 * x)
    if g == f:
        return   # untouched, bit for bit (the avatar's own neutral comes out exactly)
    keep = g / f if f > 1e-9 else 0.0
    moved = shape[pairs_lower, 1] - gap * keep
    if skin is not None and follow:
        ring, weights = skin
        shape[ring, 1] += follow * (weights @ (moved - shape[pairs_upper, 1]))
    shape[pairs_upper, 1] = moved


def _unfold(pairs_upper: np.ndarray, pairs_lower: np.ndarray, shape: np.ndarray) -> None:
    """Where a lower contour point rose above its upper partner, meet in the middle (in place)."""
    crossed = shape[pairs_lower, 1] < shape[pairs_upper, 1]
    if crossed.any():
        mid = 0.5 * (shape[pairs_upper[crossed], 1] + shape[pairs_lower[crossed], 1])
        shape[pairs_upper[crossed], 1] = mid
        shape[pairs_lower[crossed], 1] = mid


def clamped_rotation(rotation: np.ndarray, gain: float = 1.0,
                     max_angle: float = MAX_HEAD_ANGLE) -> np.ndarray:
    """`rotation` with its angle times `gain`, at most `max_angle` degrees (same axis)."""
    if gain == 1.0 and np.trace(rotation) >= 1.0 + 2.0 * np.cos(np.radians(max_angle)):
        return rotation   # within the limit: untouched (the common case, bit for bit)
    vec = gain * geometry.rotvec_from_matrix(rotation)
    angle = float(np.degrees(np.linalg.norm(vec)))
    if angle > max_angle:
        vec = vec * (max_angle / angle)
    return geometry.matrix_from_rotvec(vec)


class Recombiner:
    """Binds one target (neutral shape + face frame) to one driver neutral."""

    def __init__(self, target_neutral: np.ndarray, target_frame: Similarity,
                 config: FuseConfig | None = None):
        self.config = config or FuseConfig()
        self.target_neutral = np.asarray(target_neutral, np.float64)
        self.target_frame = target_frame
        self._gains = np.ones((topology.N_LANDMARKS, 1))
        self._lip_rest = np.zeros_like(self.target_neutral)   # `bind_driver`: the lips' rest gap
        self._rest_from: np.ndarray | None = None   # the rest gap an eased bind starts from
        self._rest_weight = 1.0                      # ... and how far it has gone (`ease_lip_rest`)
        self._driver_neutral_id = None
        self._region = landmark_gains(self.config.gains())
        self._response = response_field(self.config.brow_response, self.config.mouth_width_response)
        n = self.target_neutral
        rest = [float((n[lower, 1] - n[upper, 1])[len(upper) // 2 - 1:len(upper) // 2 + 2].mean())
                for upper, lower in _LIDS]
        c = self.config
        if not (c.lid_response >= 1.0 and c.lid_widen_response >= 1.0):
            raise ValueError(f"FuseConfig: lid_response and lid_widen_response must be >= 1 (1: the "
                             f"driver's lids as they are), got {c.lid_response}, {c.lid_widen_response}")
        if not 0.0 <= c.lid_meet[0] < c.lid_meet[1] <= 1.0:
            raise ValueError(f"FuseConfig: lid_meet must be (a, b) with 0 <= a < b <= 1, got {c.lid_meet}")
        if not 0.0 <= c.mouth_retarget <= 1.0:
            raise ValueError(f"FuseConfig: mouth_retarget must be in [0, 1], got {c.mouth_retarget}")
        self._lid_rest = [max(r, 1e-6) for r in rest]
        self._chin_gaps = CHIN_KEEP * np.diff(n[CHIN_COLUMNS, 1], axis=1)
        self._philtrum_gaps = LIP_KEEP * np.maximum(np.diff(n[LIP_COLUMNS, 1], axis=1), 0.0)

    def set_gain(self, region: str, value: float) -> float:
        """Change one region's gain while running (GainError when out of range); returns it."""
        value = check_gains({region: value})[region]
        setattr(self.config, GAIN_FIELD[region], value)
        self._region = landmark_gains(self.config.gains())
        return value

    def bind_driver(self, driver_neutral: np.ndarray | None, ease: bool = False) -> None:
        """Recompute the retargeting gains and the lips' rest gap (`lip_rest_shift`) for a
        (new) driver neutral; None = same identity. With `ease` the rest gap goes over to the
        new one from the one in use now, as `ease_lip_rest` says; without, a rebind leaves a
        running ease going (to the new gap, from where it started). The gap is there with no
        expression on: bound at once, a photo's parted lips shut in one frame when a driver
        appears, while the driver's expression eases in."""
        if ease:
            self._rest_from, self._rest_weight = self.lip_rest.copy(), 0.0
        if driver_neutral is None:
            self._gains = np.ones((topology.N_LANDMARKS, 1))
            self._lip_rest = np.zeros_like(self.target_neutral)
        else:
            self._gains = retarget_gains(self.target_neutral, driver_neutral,
                                         self.config.smoothing_iterations, self.config.mouth_retarget)
            self._lip_rest = lip_gap_field(self.target_neutral,
                                           lip_rest_shift(self.target_neutral, driver_neutral, self._gains))
        self._driver_neutral_id = None if driver_neutral is None else id(driver_neutral)

    def ease_lip_rest(self, weight: float) -> None:
        """How far an eased bind's lips' rest gap has gone, in [0, 1] (1 ends the ease)."""
        self._rest_weight = float(weight)
        if self._rest_weight >= 1.0:
            self._rest_from = None

    def continue_ease(self, other: Recombiner) -> None:
        """Take over `other`'s running ease of the lips' rest gap (where it started, how far it
        has gone), for the same driver bound here."""
        self._rest_from, self._rest_weight = other._rest_from, other._rest_weight

    @property
    def lip_rest(self) -> np.ndarray:
        """(478, 3) the lips' rest gap in use (`lip_gap_field`, canonical units)."""
        if self._rest_from is None:
            return self._lip_rest
        return self._rest_from + self._rest_weight * (self._lip_rest - self._rest_from)

    def canonical(self, state: FaceState) -> np.ndarray:
        """Target neutral plus the retargeted expression, in canonical units (478, 3); its lips
        at rest part as the bound driver's do (`lip_rest_shift`) as far as the mouth's gain lets
        the mouth move (at gain 0 they stay the photo's)."""
        gain = self.config.expression_gain * self._gains * self._region * self._response
        shape = self.target_neutral + gain * state.expression
        shape += (self.config.expression_gain * float(self._region[_LIPS, 0].mean())) * self.lip_rest
        _unfold_upper_lip(shape, self._philtrum_gaps)
        _unfold(_UPPER_LIP, _LOWER_LIP, shape)
        _unfold_chin(shape, self._chin_gaps)
        for (upper, lower), rest, skin in zip(_LIDS, self._lid_rest, _LID_SKIN):
            _unfold(upper, lower, shape)
            _lids(upper, lower, shape, rest, self.config.lid_response, self.config.lid_widen_response,
                  self.config.lid_meet, skin)
        return shape

    def pose(self, state: FaceState) -> Similarity:
        """The target's face frame moved by the driver's relative pose."""
        c = self.config
        tf = self.target_frame
        scale = tf.scale * (1.0 + c.follow_scale * (state.scale - 1.0))
        shift = tf.scale * c.follow_translation * np.asarray(state.translation, np.float64)
        shift[2] = 0.0
        return Similarity(clamped_rotation(state.rotation, c.pose_gain, c.max_head_angle) @ tf.rotation, scale,
                          tf.translation + shift)

    def __call__(self, state: FaceState) -> np.ndarray:
        """(478, 3) posed target landmarks in the target image's pixels."""
        return self.pose(state).apply(self.canonical(state))


_UNBOUND = object()   # a FuseStage that has bound nothing yet


class FuseStage:
    """Frame.state → Frame.vertices: recombined, posed avatar mesh in crop pixels.

    With a `clock` (frame → seconds, as the estimate stage's) the lips' rest gap comes in over
    `ease_s` whenever a driver is first calibrated — after none was bound, or on a calibration's
    first neutral (the `n` hotkey, a new face) — or goes when the neutral is dropped (`n` with no
    face), as the estimator eases a face's expression in (`Recombiner.bind_driver`). A later
    neutral of the same calibration rebinds without restarting the ease; a new stage on a driver
    already calibrated binds at once, and the render size's rebuild goes on where the old stage
    was (`take_over`).
    """

    name = "fuse"

    def __init__(self, recombiner: Recombiner, rig, neutral_of=lambda: None, clock=None,
                 ease_s: float = EstimatorConfig.ease_s):
        self.recombiner = recombiner
        self.rig = rig
        self.neutral_of = neutral_of  # the driver's current neutral (None: scripted / same face)
        self.clock = clock
        self.ease_s = ease_s
        self._bound = _UNBOUND
        self._ease_t0: float | None = None

    def reset(self) -> None:
        """Forget the warm-up's binding: the first real driver eases in."""
        self._bound, self._ease_t0 = _UNBOUND, None
        self.recombiner.ease_lip_rest(1.0)

    def take_over(self, other: FuseStage) -> None:
        """Go on where `other` is (the stages rebuilt at another render size): its driver bound
        on this stage's recombiner at once, a running ease of the lips' rest gap carried on."""
        self._bound, self._ease_t0 = other._bound, other._ease_t0
        if self._bound is _UNBOUND:
            return
        self.recombiner.bind_driver(None if self._bound is None else self._bound.shape)
        self.recombiner.continue_ease(other.recombiner)

    def _fresh(self, neutral) -> bool:
        """Whether binding `neutral` (after `self._bound`) starts or drops a calibration."""
        if neutral is None:
            return self._bound is not None and self._bound is not _UNBOUND
        return self._bound is None or getattr(neutral, "frames", 0) == 1

    def __call__(self, frame) -> None:
        neutral = self.neutral_of()
        t = None if self.clock is None else self.clock(frame)
        if neutral is not self._bound:
            ease = t is not None and self._fresh(neutral)
            self.recombiner.bind_driver(None if neutral is None else neutral.shape, ease=ease)
            self._bound = neutral
            if ease:
                self._ease_t0 = t
        if self._ease_t0 is not None:
            w = smoothstep((t - self._ease_t0) / max(self.ease_s, 1e-9))
            self.recombiner.ease_lip_rest(w)
            if w >= 1.0:
                self._ease_t0 = None
        face = self.recombiner(frame.state)
        frame.vertices = self.rig.pose(face, self.recombiner.pose(frame.state))
