"""Smile folds: the nasolabial folds a grin deepens, shaded onto the warped photo.

When a face smiles, the cheeks bunch against the nose wings and the fold from each nose wing to
past the mouth corner deepens into a shaded band. A photo warped over a posed mesh moves the
cheeks but cannot make that shade: the photo was taken with the fold shallow. So the warp tier
darkens, in a grin, a soft band along each fold: a line through landmarks anchored to the posed
mesh (`FOLD_LINE`), shifted towards the cheek (`FOLD_OFFSET`), Gaussian across (`FOLD_WIDTH`),
strongest around the cheek's point beside the mouth (`FOLD_ALONG`), as deep as `FOLD_DEPTH` of
the skin's luminance at a full grin, its a*, b* kept as skin in shade keeps them
(`realtime.tiers.eyes.shaded`).

How much the face smiles is how far the drawn mouth corners rise (`smile_of` of `drawn_expression`:
the posed mesh brought back to the avatar's canonical frame, less its neutral, as the estimate
stage measures a driver), so what moves the mouth moves the fold (a mouth gain of 0 keeps both
still, a remix's expression source gives both): 0 on a face at rest or talking, and then nothing
is drawn (the render is left bit for bit as it was).

Array-module agnostic (numpy, or cupy through the device context): per frame, a few vectorised
operations over the pixels of the folds' bounding box only.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from realtime.core.context import CpuContext
from realtime.core.ramp import smoothstep
from realtime.face import geometry, topology
from realtime.tiers.eyes import shaded

__all__ = ["FOLD_LINE", "FOLD_DEPTH", "SMILE_LIFT", "FoldLayer", "smile_of", "drawn_expression", "fold_lines"]

# The fold of the subject's right side, nose wing to beside the mouth corner: each point the mean
# of its landmarks (the left side: their mirrors). Read off the driver's luminance change, d0's
# grin (frames 32-46) against its frame 0, mapped onto frame 0 by the landmark triangulation:
# the dark band runs from the nose wing (64) past between 203 and 206, through 216, to between
# 57 and 186.
FOLD_LINE = ((64,), (203, 206), (216,), (57, 186))
# Self-drive, the driver's L* change at its grin frames against frame 0 at the same landmark-
# anchored point, less the face's median change, across the fold line (offsets in interoculars,
# + towards the cheek), both sides and the line's length averaged: d0 (frames 32-46) darkest
# −4.2 at +0.02..+0.04, dark from −0.12 to +0.08; d19 (237-247) darkest −5.2 at +0.06..+0.10;
# d14's grin (26-49), a smoothed (beauty-filtered) video, no darker (+0.3). Fitted by drawing
# the band onto recorded self-drive output frames (every frame that smiles, `SMILE_LIFT`), on the
# mean |L* change error| within 0.15 iod of the lines: at these d0 2.87 → 2.56, d19 2.63 → 2.55;
# the band at +0.06: 2.76 / 2.59; 0.07 wide: 2.57 / 2.58; deeper (0.11): d0 2.51, d19 2.56.
# (FOLD_DEPTH 0.08 is −5.5 L* at the band's darkest on the demo's astronaut.)
FOLD_OFFSET = 0.02
FOLD_WIDTH = 0.04
FOLD_DEPTH = 0.08
# Along the line (0 at the nose wing, 1 at its end), the change at its centre by quarters: d0
# +0.1, −3.4, −6.6, −2.2; d19 −0.1, −2.4, −4.6, −1.9: a Gaussian bump centred at [0] with
# standard deviation [1].
FOLD_ALONG = (0.6, 0.22)
# Nothing is computed further than this many FOLD_WIDTHs from the line (the band's weight there
# is under 2 %).
FOLD_REACH = 3.0


# The mouth corners' (61, 291) rise, canonical units (`FaceState.expression`, y down, so minus
# its y), over which a face counts as smiling: 0 at [0], fully at [1] (smoothstep between).
# Per clip: d0's grin 0.14, d19's smiles 0.09-0.17; d10, talking with her teeth in view (teeth
# share up to 0.64), over 0.04 on 5 of 448 frames (smile ≤ 0.22); d11 on 10 of 225 (≤ 0.37);
# d14's grin reads a fall (−0.10): none. Gated by the mouth tier's GRIN (teeth share) instead,
# the band fired on d10's talk and d14's grin, whose folds do not darken: their error above went
# 2.80 → 3.01 and 2.05 → 2.64.
SMILE_LIFT = (0.04, 0.10)
_CORNERS = topology.MOUTH_CORNERS


def smile_of(expression) -> float:
    """How much (0..1) a face with the expression residual `expression` ((478, 3) canonical
    units, `FaceState.expression`; None: none) smiles: its mouth corners' rise (SMILE_LIFT)."""
    if expression is None:
        return 0.0
    lift = -float(np.asarray(expression)[list(_CORNERS), 1].mean())
    if not np.isfinite(lift):
        return 0.0
    return float(smoothstep((lift - SMILE_LIFT[0]) / (SMILE_LIFT[1] - SMILE_LIFT[0])))


def drawn_expression(vertices: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """(478, 3) the expression residual (canonical units, as `FaceState.expression`) that the
    posed mesh `vertices` ((V ≥ 478, 3) crop px: a similarity of the recombined canonical shape)
    shows against the avatar's `neutral` ((478, 3) canonical): the mesh fitted back onto the
    neutral by its rigid points (`topology.RIGID`, as the estimate stage fits a driver)."""
    v = np.asarray(vertices, np.float64)[: topology.N_LANDMARKS]
    rigid = list(topology.RIGID)
    fit = geometry.umeyama(np.asarray(neutral, np.float64)[rigid], v[rigid])
    return fit.invert_points(v) - neutral


def fold_lines(landmarks: np.ndarray) -> np.ndarray:
    """(2, len(FOLD_LINE), 2) the folds' polylines (subject's right, then left) in the pixel
    frame of `landmarks` ((N ≥ 478, 2+) posed mesh or face landmarks)."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    mirror = topology.MIRROR
    right = [lm[list(g)].mean(0) for g in FOLD_LINE]
    left = [lm[[int(mirror[i]) for i in g]].mean(0) for g in FOLD_LINE]
    return np.array([right, left])


def _band(xp, px, py, line: np.ndarray, towards: np.ndarray, iod: float):
    """(N,) float32 weight (0..1) of the pixels (px, py) in the fold band along the polyline
    `line` ((K, 2), nose wing first): the Gaussian across the line at FOLD_OFFSET·iod on the
    side of `towards` (the cheek), times the bump along it (FOLD_ALONG). Continuous in the
    pixel: each segment draws its own stretch of band (ended by a Gaussian of FOLD_WIDTH past its
    ends) and a pixel takes the strongest, every segment's offset on the same side of the line."""
    f32 = np.float32
    seg = np.diff(line, axis=0)
    length = np.maximum(np.linalg.norm(seg, axis=1), 1e-6)
    total = float(length.sum())
    # One side for the whole line: decided per segment, a line whose nose-wing segment bends
    # away had its band's offset there towards the nose, and a sharp bend's two segments, tied
    # at their shared point, disagreed on the side: seams across the band (a jump of 0.3-0.4 in
    # its weight between adjacent pixels on s1, s5, the astronaut; a Gaussian's steepest is 0.14-0.21).
    chord = line[-1] - line[0]
    side = 1.0 if np.array([-chord[1], chord[0]]) @ (towards - line.mean(0)) >= 0 else -1.0
    sigma = FOLD_WIDTH * iod
    best: Any = None
    start = 0.0
    for a, d, n in zip(line[:-1], seg, length, strict=True):
        u = d / n
        normal = side * np.array([-u[1], u[0]])
        rx, ry = px - f32(a[0]), py - f32(a[1])
        t = rx * f32(u[0]) + ry * f32(u[1])
        inside = xp.clip(t, 0.0, f32(n))
        x = (rx * f32(normal[0]) + ry * f32(normal[1]) - f32(FOLD_OFFSET * iod)) / f32(sigma)
        beyond = (t - inside) / f32(sigma)
        s = ((inside + f32(start)) / f32(total) - f32(FOLD_ALONG[0])) / f32(FOLD_ALONG[1])
        w = xp.exp(f32(-0.5) * (x * x + beyond * beyond + s * s))
        best = w if best is None else xp.maximum(best, w)
        start += float(n)
    return best.astype(f32)


class FoldLayer:
    """The smile folds of the warp tier, drawn in place on its crop (module docstring).

    `neutral`: the avatar's neutral shape ((478, 3) canonical units, the profile's "neutral");
    `ctx`: the device context of the crop and G-buffer it is given (default: the CPU)."""

    def __init__(self, neutral: np.ndarray, ctx=None):
        self.neutral = np.asarray(neutral, np.float64)[: topology.N_LANDMARKS]
        self.ctx = ctx if ctx is not None else CpuContext()

    def apply(self, gbuf, vertices: np.ndarray | None, out) -> None:
        """Darken the folds of `out` ((S, S, 3) float32 crop, the layers' array module) in
        place, as deep as the posed mesh `vertices` ((V, 3) crop px, host) smiles (`smile_of`
        its `drawn_expression`); they place the folds, `gbuf` (its tri_id) says which pixels
        the face covers. No smile, or no mesh: `out` is not touched."""
        if vertices is None:
            return
        smile = smile_of(drawn_expression(vertices, self.neutral))
        if smile <= 0.0:
            return
        xp = self.ctx.xp
        f32 = np.float32
        lm = np.asarray(vertices, np.float64)[: topology.N_LANDMARKS, :2]
        iod = geometry.interocular(lm)
        if iod < 1.0:
            return
        nose = lm[1]
        h, w = out.shape[:2]
        reach = (FOLD_OFFSET + FOLD_REACH * FOLD_WIDTH) * iod
        for line in fold_lines(lm):
            towards = 2.0 * line.mean(0) - nose      # away from the nose: the cheek's side
            x0, y0 = np.floor(line.min(0) - reach).astype(int)
            x1, y1 = np.ceil(line.max(0) + reach).astype(int) + 1
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if x1 <= x0 or y1 <= y0:
                continue
            ys, xs = xp.mgrid[y0:y1, x0:x1]
            weight = _band(xp, xs.astype(f32).ravel(), ys.astype(f32).ravel(), line, towards, iod)
            covered = (gbuf.tri_id[y0:y1, x0:x1] >= 0).ravel()
            light = (f32(1.0) - f32(FOLD_DEPTH * smile) * xp.where(covered, weight, f32(0.0)))[:, None]
            patch = out[y0:y1, x0:x1].reshape(-1, 3)
            out[y0:y1, x0:x1] = shaded(xp, patch, light).reshape(y1 - y0, x1 - x0, 3).astype(f32)
