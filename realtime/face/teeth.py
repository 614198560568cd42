"""How much of the driver's open mouth is teeth: a clenched grin shows one white band between
its lips, a dropped jaw mostly a dark mouth and a tongue. The lips' landmarks say how far the
mouth is open, not what shows in it, so the photo tiers' synthetic mouth
(`realtime.tiers.mouth`) could only guess a grin from the mouth's width; this measures it.

`teeth_share` reads the driver's own pixels inside its inner lip contour: the share that is
bright (at least `BRIGHT` × the skin's luma, the cheeks' median) and unsaturated (at most
`SATURATION`: teeth, not lips, tongue or throat) once balanced to the light: the mouth's colours
are divided by the skin's tint to the power `TEETH_SKIN_TINT` (teeth take about that share of the
light's and the skin's colour, `realtime.tiers.mouth`), so a warm webcam's teeth still read as
teeth. `TeethGauge` smooths it over a few frames (a lone bright highlight does not flash teeth).
About 0.2 ms a frame (d14, 512², on the 2-core Xeon; only the mouth's bounding box is read).

`tongue_share` reads the same pixels for the tongue: not teeth, at least `TONGUE_BRIGHT` × the
skin's luma (lit, not the dark throat) and red (`TONGUE_RED`: (R − G) / R, balanced as above). A
dropped jaw over a tongue in view reads about half (d10's open mouths: median 0.43, #96-100
0.44-0.45), a mouth that shows teeth and a dark throat a few hundredths (d0's open frames: at
most 0.07). Lips count too where the inner contour cuts into them, so a barely parted mouth
reads high: the synthetic mouth follows it only as far as the lips part. `mouth_shares` gives
both from one read; the gauge smooths both.
"""
from __future__ import annotations

import cv2
import numpy as np

from realtime.core.colour import LUMA
from realtime.face import topology

__all__ = ["BRIGHT", "SATURATION", "MIN_OPENING", "SMOOTH_S", "TEETH_SKIN_TINT", "TONGUE_BRIGHT", "TONGUE_RED",
           "mouth_shares", "teeth_share", "tongue_share", "TeethGauge"]

#: a teeth pixel's luma is at least this share of the skin's
BRIGHT = 0.7
#: ... and its saturation ((max − min) / max of RGB) at most this
SATURATION = 0.35
#: below this inner-lip area (interoculars²) the mouth is closed: nothing to read
MIN_OPENING = 0.004
#: a tongue pixel's luma is at least this share of the skin's (d10's throat reads ~0.3, her
#: tongue ~0.75)
TONGUE_BRIGHT = 0.45
#: ... and its redness ((R − G) / R, balanced to the light) at least this
TONGUE_RED = 0.3
#: the gauge's time constant (seconds): two or three frames at 30 fps
SMOOTH_S = 0.06
#: teeth look like the skin's tint to this power (fitted on the eval drivers' teeth, as the
#: synthetic mouth's TEETH_SKIN_TINT)
TEETH_SKIN_TINT = 0.53

# the inner lip contour, corner to corner along the upper lip and back along the lower
_CONTOUR = np.array(list(topology.INNER_LIP_UPPER) + list(topology.INNER_LIP_LOWER[-2:0:-1]))
_SKIN = np.array((50, 280, 101, 330, 36, 266))       # cheeks and beside the nose


def mouth_shares(image: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
    """(teeth, tongue): the shares (0..1 each, disjoint) of the mouth opening of `image` (H, W, 3)
    uint8 RGB that show teeth and tongue, for the face of `landmarks` (478, 2+) in its pixels;
    (0, 0) when the mouth is closed."""
    lm = np.asarray(landmarks, np.float64)
    h, w = image.shape[:2]
    pts = lm[_CONTOUR, :2]
    iod = float(np.linalg.norm(lm[topology.EYE_OUTER[0], :2] - lm[topology.EYE_OUTER[1], :2]))
    x0, y0 = (max(int(np.floor(v)), 0) for v in pts.min(0))
    x1, y1 = min(int(np.ceil(pts[:, 0].max())) + 1, w), min(int(np.ceil(pts[:, 1].max())) + 1, h)
    area = cv2.contourArea(pts.astype(np.float32))
    if x1 - x0 < 2 or y1 - y0 < 2 or not area >= MIN_OPENING * iod * iod:
        return 0.0, 0.0
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.rint((pts - (x0, y0)) * 4).astype(np.int32)], 1, shift=2)
    inside = mask.astype(bool)
    mouth = image[y0:y1, x0:x1][inside].astype(np.float32)
    if not len(mouth):
        return 0.0, 0.0
    skin = lm[_SKIN, :2].round().astype(np.int64)
    skin[:, 0] = skin[:, 0].clip(0, w - 1)
    skin[:, 1] = skin[:, 1].clip(0, h - 1)
    tone = np.median(image[skin[:, 1], skin[:, 0]].astype(np.float32), axis=0) + 1.0
    level = float(tone @ LUMA)
    mouth = mouth / (tone / level) ** TEETH_SKIN_TINT          # balanced to the light
    top = mouth.max(1)
    luma = mouth @ LUMA
    teeth = (luma >= BRIGHT * level) & ((top - mouth.min(1)) <= SATURATION * np.maximum(top, 1.0))
    tongue = (~teeth & (luma >= TONGUE_BRIGHT * level)
              & (mouth[:, 0] - mouth[:, 1] >= TONGUE_RED * np.maximum(mouth[:, 0], 1.0)))
    return float(teeth.mean()), float(tongue.mean())


def teeth_share(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Share (0..1) of the mouth opening of `image` (H, W, 3) uint8 RGB that shows teeth, for
    the face of `landmarks` (478, 2+) in its pixels; 0 when the mouth is closed."""
    return mouth_shares(image, landmarks)[0]


def tongue_share(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Share (0..1) of the mouth opening that shows the tongue (see `mouth_shares`)."""
    return mouth_shares(image, landmarks)[1]


class TeethGauge:
    """`teeth_share` of each frame, smoothed in time (exponentially, `SMOOTH_S`), and
    `tongue_share` beside it (`tongue`, smoothed alike). `share` / `tongue`: a frame's shares
    measured beforehand (a tracked clip's, `realtime.io.tracked`), used instead of measuring; one
    not given is read from the image and landmarks, and without them the frame reads 0."""

    def __init__(self, smooth_s: float = SMOOTH_S):
        self.smooth_s = float(smooth_s)
        self.value = 0.0
        self.tongue = 0.0
        self._t: float | None = None

    def __call__(self, image: np.ndarray | None, landmarks: np.ndarray | None, t: float,
                 share: float | None = None, tongue: float | None = None) -> float:
        """The smoothed teeth share after this frame (the tongue's is `self.tongue`)."""
        if share is None or tongue is None:
            read = (0.0, 0.0) if image is None or landmarks is None else mouth_shares(image, landmarks)
            share = read[0] if share is None else share
            tongue = read[1] if tongue is None else tongue
        if self._t is None or not t > self._t:
            keep = 0.0 if self._t is None else 0.5
        else:
            keep = float(np.exp(-(t - self._t) / self.smooth_s)) if self.smooth_s > 0 else 0.0
        self._t = t if self._t is None else max(t, self._t)
        self.value = keep * self.value + (1.0 - keep) * float(share)
        self.tongue = keep * self.tongue + (1.0 - keep) * float(tongue)
        return self.value

    def reset(self) -> None:
        self.value, self.tongue, self._t = 0.0, 0.0, None
