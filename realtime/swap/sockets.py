"""The identity photo's shaded eye sockets, lifted towards its skin before a swap relights it.

The swap's gain field (`realtime.swap.colour`) gives the identity the driver's large-scale light
and keeps feature-scale shading as the identity's own detail. Around the eyes that "detail" is
mostly the photo's light: a painting's chiaroscuro or a studio's top light leaves the sockets
far darker than the cheeks (s5's red-brown lids, s12's deep-set shadows), and on a driver lit
flat from the front they read as bruises round the driver's own bright eye whites. The gain
field cannot lift them: the lids and lashes are dark by nature, so the sockets are not among
its skin samples and it carries the cheeks' light over them.

`lift_sockets` lifts them once, on the photo: the sockets (`socket_mask`: the skin between each
eye's contour and its brow's lower edge, and under the lower lid, from the mesh) have a smooth
lightness (CIE L*) that is compared with the skin around them (cheeks, nose, forehead); where a
socket is darker than `REFERENCE` of that skin — about what a real socket reads under front
light (the eval drivers' 0.85–0.97, in luma) — `LIFT` of the shortfall is made up, and its
colour goes the same share of the way to the skin's as its lightness went (a shadow's red-brown
tint goes with its darkness). It is one smooth factor on lightness and one shift of colour per
pixel, so the lashes, the crease and the skin's grain keep their contrast (but no pixel is
lifted past the skin's own lightness: a lid's highlight is not blown to white); the eye
openings and the brows themselves keep their pixels. The factor has full weight up to the
socket's edge and fades out beyond it (`feathered`): the strip is a few work pixels tall, and
a mask blurred across its edge gave s5's median socket pixel 0.75 of the lift.

The mask reaches up to the brow, not only two mesh rings above the lid: when the driver raises
her brows the mesh stretches the strip between the lid's second ring and the brow's lower edge
(2.2× its area in the photo on d10's highest brows), and a painting's shadow there (s5, s12, s0)
became a dark band between the driver's lit lid and her brow. Nor is every dark pixel taken
for hair: only near the lid line and the brows (`hair_zone`), and there only one darker than
`DARK` of the socket's own light around it — a lash, a brow hair, the lid line, thin and much
darker than what surrounds them (`socket_lightness`); elsewhere a pixel is left out of the
measure only when darker than `BLACK` of the skin. A painting's upper lid in shade reads
0.3–0.45 of its skin over its whole width: taken against the skin (darker than 0.45 of it) it
was left out as lashes and hardly lifted, a dark band right round the driver's eyes.

A photo whose sockets fall short of `REFERENCE` by less than `MIN_SHORTFALL` is returned as it
is, the same array. The fields are measured with the face at `WORK_IOD` px an interocular and
applied at the photo's own resolution: 8–21 ms once per swap engine on the eval photos (2-core
EPYC; 6–18 ms before the mask reached the brows; s1, 208 px an interocular: 284 ms measured at
full size; 7–21 ms on the 2-core Xeon with the socket's own light measured, s0 to s1, within
1 ms of before). On by default
(`EngineOptions.lift_sockets`, `live --keep-sockets` to keep them as they are). The driver's
own sockets are not measured: on a driver lit from above, the lifted sockets stay lighter than
the driver's.
"""
from __future__ import annotations

import cv2
import numpy as np

from realtime.face import topology
from realtime.swap.crop import _ring

__all__ = ["REFERENCE", "LIFT", "MAX_GAIN", "socket_triangles", "socket_mask", "hair_zone", "eye_openings",
           "weighted_blur", "brow_polygons", "feathered", "socket_lightness", "lifted_lightness", "lift_sockets"]

#: A socket's lightness over its skin's that needs no lift (a real socket under front light).
REFERENCE = 0.9
#: The share of the shortfall below REFERENCE made up.
LIFT = 0.9
#: The most a socket's lightness is multiplied by.
MAX_GAIN = 1.8
#: Mesh rings about each eye's contour that count as its socket.
RINGS = 2
#: Blur of the socket's lightness and of the skin's around it, in interoculars.
SOCKET_SIGMA = 0.06
SKIN_SIGMA = 0.3
#: A socket pixel in the `hair_zone` darker than this share of the socket's own light around it
#: is a lash, a brow hair or a lid line, not the socket's light (left out of the measure, lifted
#: with its surroundings).
DARK = 0.6
#: ... and one darker than this anywhere is not skin in shadow (make-up, a glasses frame, hair).
BLACK = 0.2
#: The hair zone: this many interoculars about the eye openings (the lashes and lid line) ...
LASH_REACH = 0.05
#: ... and about the brows' contours (hairs below the lower landmarks).
BROW_REACH = 0.03
#: The fields are measured with the face at this many pixels an interocular (or its own, if fewer).
WORK_IOD = 64.0
#: The feather of the sockets' edge, in interoculars (`feathered`).
FEATHER = 0.03
#: A photo whose sockets fall short of REFERENCE by less than this (anywhere) is left as it is.
MIN_SHORTFALL = 0.02


def _contour() -> np.ndarray:
    m = np.zeros(topology.N_LANDMARKS, bool)
    m[[i for c in (topology.RIGHT_EYE_UPPER, topology.RIGHT_EYE_LOWER,
                   topology.LEFT_EYE_UPPER, topology.LEFT_EYE_LOWER) for i in c]] = True
    return m


def _brow_rows() -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) (478,) bool: the landmarks of the brows' lower and upper contours."""
    lower = np.zeros(topology.N_LANDMARKS, bool)
    upper = np.zeros(topology.N_LANDMARKS, bool)
    for brow in (topology.RIGHT_BROW, topology.LEFT_BROW):
        lower[list(brow[:5])] = True
        upper[list(brow[5:])] = True
    return lower, upper


def socket_triangles() -> np.ndarray:
    """(K, 3) int32 face triangles of the sockets: those whose corners all lie within `RINGS`
    mesh edges of an eye's contour or on a brow's lower contour, less the brows' own strip (the
    triangles with every corner on a brow). Up to the brow, not to `RINGS` only: the strip
    between the lid's second ring and the brow's lower edge holds the shadow under the brow,
    and a raised brow stretches it over the driver's lit upper lid."""
    tris = topology.face_triangles()
    lower, upper = _brow_rows()
    near = _ring(np.flatnonzero(_contour()), tris, RINGS) | lower
    keep = near[tris].all(1) & ~(lower | upper)[tris].all(1)
    return tris[keep]


def socket_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 mask (0/1) of the eye sockets of a face whose `landmarks` (478, 2+) are in
    the pixels of an image of `shape`: the `socket_triangles`, less the eye openings themselves."""
    pts = np.asarray(landmarks, np.float64)[: topology.N_LANDMARKS, :2]
    sockets = np.zeros(shape, np.uint8)
    for t in socket_triangles():
        cv2.fillConvexPoly(sockets, np.rint(pts[t]).astype(np.int32), 1)
    sockets[eye_openings(pts, shape) > 0] = 0
    return sockets


def hair_zone(landmarks: np.ndarray, shape: tuple[int, int], iod: float) -> np.ndarray:
    """(H, W) uint8 mask (0/1) of where a dark socket pixel is hair rather than shadow: within
    `LASH_REACH` interoculars of an eye opening (lashes, the lid line) or `BROW_REACH` of a
    brow (its contours' polygon: brow hairs below its lower landmarks)."""
    pts = np.asarray(landmarks, np.float64)[: topology.N_LANDMARKS, :2]

    def grown(mask: np.ndarray, reach: float) -> np.ndarray:
        r = max(1, int(round(reach * iod)))
        return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))

    return grown(eye_openings(pts, shape), LASH_REACH) | grown(brow_polygons(pts, shape), BROW_REACH)


def brow_polygons(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 mask (0/1) of both brows (the polygon of each brow's lower and upper contour)."""
    pts = np.asarray(landmarks, np.float64)[: topology.N_LANDMARKS, :2]
    brows = np.zeros(shape, np.uint8)
    for brow in (topology.RIGHT_BROW, topology.LEFT_BROW):
        cv2.fillPoly(brows, [np.rint(pts[list(brow[:5]) + list(brow[:4:-1])]).astype(np.int32)], 1)
    return brows


def eye_openings(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 mask of both eye openings (inside each eye's upper and lower lid contour)."""
    pts = np.asarray(landmarks, np.float64)[: topology.N_LANDMARKS, :2]
    opening = np.zeros(shape, np.uint8)
    for upper, lower in ((topology.RIGHT_EYE_UPPER, topology.RIGHT_EYE_LOWER),
                         (topology.LEFT_EYE_UPPER, topology.LEFT_EYE_LOWER)):
        cv2.fillPoly(opening, [np.rint(pts[topology.opening_ring(upper, lower)]).astype(np.int32)], (1,))
    return opening


def _skin_mask(pts: np.ndarray, shape: tuple[int, int], sockets: np.ndarray) -> np.ndarray:
    """The face's hull less its features (eyes and sockets, brows, lips, nostrils grown a little)."""
    skin = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(skin, cv2.convexHull(np.rint(pts).astype(np.int32)), 1)
    features = sockets.copy()
    for group in (topology.RIGHT_BROW, topology.LEFT_BROW, topology.OUTER_LIP):
        cv2.fillPoly(features, [cv2.convexHull(np.rint(pts[list(group)]).astype(np.int32))], 1)
    iod = float(np.linalg.norm(pts[33] - pts[263]))
    r = max(1, int(round(0.06 * iod)))
    features = cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return skin & (1 - features)


def weighted_blur(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Weighted Gaussian low-pass of (H, W[, C]) `values` under (H, W) `weight` (normalised by the
    blurred weight, floored at 1e-4)."""
    w = cv2.GaussianBlur(weight, (0, 0), sigma)
    v = cv2.GaussianBlur(values * (weight[..., None] if values.ndim == 3 else weight), (0, 0), sigma)
    return v / np.maximum(w, 1e-4)[..., None] if values.ndim == 3 else v / np.maximum(w, 1e-4)


def feathered(mask: np.ndarray, sigma: float) -> np.ndarray:
    """(H, W) float32 weight of a 0/1 `mask`: 1 inside it up to its edge, fading to 0 about two
    `sigma` px outside it (twice its blur, at most 1). The sockets are a strip a few work pixels
    tall: their blur alone (½ on the edge) gave s5's median socket pixel 0.75 of the lift, and
    a feather inside the edge only (full weight at ⅔ of the blur) drew a light rim round the
    lifted socket where the photo's shade goes on past it (s5, s0)."""
    return np.clip(2.0 * cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma), 0.0, 1.0)


def socket_lightness(lab: np.ndarray, sockets: np.ndarray, skin: np.ndarray, hair: np.ndarray,
                     sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(the sockets' smooth CIE Lab (H, W, 3), the weight it was measured with (H, W) float32) of
    a face's `lab` (H, W, 3) under its `sockets` mask (0/1), `skin` its skin's smooth L*
    (H, W), `hair` the `hair_zone` (0/1), `sigma` the blur in pixels. Left out of the measure:
    what is darker than `BLACK` of the skin anywhere (make-up, a glasses frame), and in the
    hair zone what is darker than `DARK` of the socket's own light round it (a lash, a brow
    hair, the lid line: thin and much darker than their surroundings). A lid painted in shade
    as a whole (s5's upper lids, 0.35-0.45 of the skin) is as dark as the light round it, so
    it is measured and lifted: taken against the skin it read as lashes and stayed a dark band
    round the driver's eyes."""
    light = sockets.astype(np.float32) * (lab[..., 0] > BLACK * skin)
    around = weighted_blur(lab[..., 0], light, sigma)
    weight = light * ((hair == 0) | (lab[..., 0] > DARK * around))
    return weighted_blur(lab, weight, sigma), weight


def lifted_lightness(lightness: np.ndarray, gain: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """CIE L* (any shape, float32) times `gain`, but none lifted past `skin` (the skin's L*
    around it) unless it was lighter already: a lid's highlight in a shaded socket is not
    blown to white."""
    return np.clip(np.minimum(lightness * gain, np.maximum(lightness, skin)), 0.0, 100.0)


def lift_sockets(photo: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """`photo` (H, W, 3) uint8 RGB with its face's shaded sockets lifted (module docstring);
    `photo` itself where no socket falls short of `REFERENCE` of the skin around it by
    `MIN_SHORTFALL` or more (or the face is too small to measure)."""
    photo = np.asarray(photo)
    pts = np.asarray(landmarks, np.float64)[: topology.N_LANDMARKS, :2]
    iod = float(np.linalg.norm(pts[33] - pts[263]))
    h_img, w_img = photo.shape[:2]
    lo = np.floor(np.maximum(pts.min(0) - 0.5 * iod, 0)).astype(int)
    hi = np.ceil(np.minimum(pts.max(0) + 0.5 * iod, (w_img, h_img))).astype(int)
    if iod < 8.0 or np.any(hi - lo < 8):
        return photo
    box = photo[lo[1]:hi[1], lo[0]:hi[0]]
    # the fields are smooth (σ ≥ 0.03 interocular): measured at WORK_IOD px an interocular
    k = min(1.0, WORK_IOD / iod)
    size = (max(8, round(box.shape[1] * k)), max(8, round(box.shape[0] * k)))
    small = cv2.resize(box, size, interpolation=cv2.INTER_AREA) if k < 1.0 else box
    p, s_iod = (pts - lo) * k, iod * k
    sockets = socket_mask(p, small.shape[:2])
    skin = _skin_mask(p, small.shape[:2], sockets)
    if not sockets.any() or skin.sum() < 50:
        return photo
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    skin_low = weighted_blur(lab, skin.astype(np.float32), SKIN_SIGMA * s_iod)
    sock_low, socket_w = socket_lightness(lab, sockets, skin_low[..., 0], hair_zone(p, small.shape[:2], s_iod),
                                          SOCKET_SIGMA * s_iod)
    # where the socket's measure holds (inside it, feathered over its edge), how far it falls short
    reach = np.clip(cv2.GaussianBlur(socket_w, (0, 0), SOCKET_SIGMA * s_iod) * 3.0, 0.0, 1.0)
    # the brows keep their pixels: the feather reached into them (their lower edge 6 L* lighter)
    inside = feathered(sockets, FEATHER * s_iod) * (1 - brow_polygons(p, small.shape[:2]))
    weight = reach * inside
    ratio = sock_low[..., 0] / np.maximum(skin_low[..., 0], 1.0)
    short = np.clip(REFERENCE - ratio, 0.0, None) * weight
    if float(short.max()) < MIN_SHORTFALL:
        return photo
    gain = np.minimum(1.0 + LIFT * short / np.maximum(ratio, 0.05), MAX_GAIN)
    # the colour goes the share of the way to the skin's that the lightness went (gain - 1 of
    # the gap 1/ratio - 1): a shadow's tint goes with its darkness
    share = np.clip((gain - 1.0) / np.maximum(1.0 / np.maximum(ratio, 0.05) - 1.0, 1e-3), 0.0, 1.0)
    # (gain of L*, shift of a*, shift of b*, where, the skin's L*) at the work scale, then at the photo's
    fields = np.dstack([gain, share[..., None] * (skin_low[..., 1:] - sock_low[..., 1:]),
                        weight, skin_low[..., 0]]).astype(np.float32)
    if k < 1.0:
        fields = cv2.resize(fields, (box.shape[1], box.shape[0]), interpolation=cv2.INTER_LINEAR)
    # the eyes themselves (whites, iris, the lids' rims inside the contour) keep their pixels;
    # elsewhere outside the sockets not even the Lab round trip's rounding
    changed = (fields[..., 3] > 0.0) & (eye_openings(pts - lo, box.shape[:2]) == 0)
    ys, xs = np.nonzero(changed)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    part = cv2.cvtColor(box[y0:y1, x0:x1].astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    f = fields[y0:y1, x0:x1]
    part[..., 0] = lifted_lightness(part[..., 0], f[..., 0], f[..., 4])
    part[..., 1:] += f[..., 1:3]
    rgb = np.clip(np.rint(cv2.cvtColor(part, cv2.COLOR_LAB2RGB) * 255.0), 0, 255).astype(np.uint8)
    out = photo.copy()
    region = out[lo[1] + y0:lo[1] + y1, lo[0] + x0:lo[0] + x1]
    region[changed[y0:y1, x0:x1]] = rgb[changed[y0:y1, x0:x1]]
    return out
