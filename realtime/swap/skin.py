"""Where the identity's photo shows its skin: a map over the photo, computed once per profile.

A portrait's face region is not all face: hair falls over the forehead, a fringe over the brows,
and at a turned cheek the background shows inside the outline. Swapped in as they are, they
would be painted over the driver's forehead. The map keeps the photo's pixels whose colour is
more like the identity's skin (its cheeks, nose and chin) than like what surrounds its face
(hair, background) above its eyes and along the sides of its cheeks (hair falling over them),
and the brows whatever their colour; elsewhere the swap lets the driver's own pixels show.
"""
from __future__ import annotations

import cv2
import numpy as np

from kernels import rasterize
from realtime.core.colour import LUMA
from realtime.face import topology
from realtime.mesh import rig as rig_mod
from realtime.mesh.rig import Rig
from realtime.swap.colour import srgb_to_lab
from realtime.swap.crop import face_rig, nominal_affine, triangle_labels
from realtime.swap.sockets import brow_polygons, eye_openings, feathered, weighted_blur

__all__ = ["skin_map", "fill_fringe", "fringe_fill", "forehead_triangles", "FRINGE_STRANDS", "FRINGE_COVER",
           "FILL_SIGMA", "profile_drops_fringe", "fringe_hint", "brow_strokes", "brow_colour", "hair_shade",
           "lift_hair_shade", "SHADE_REACH", "SHADE_DEPTH", "HAIR_LUMA", "SHADE_HUE", "SHADE_FRINGE",
           "hue_turn"]

#: `skin_map`'s `strands` when a swap drops the photo's fringe (`EngineOptions.drop_fringe`)
FRINGE_STRANDS = 0.15
#: with `strands`, the part of the face's forehead that must be hair for the whole forehead to go
#: (s5's parted fringe, 0.45, stays: without its forehead, s5 ← d10 reads nearer the driver than
#: the photo by dlib)
FRINGE_COVER = 0.6
#: how far (interoculars) below the brows' lower inner ends the forehead's edge dips between them
GLABELLA_DIP = 0.08
#: how far (interoculars) inside the face's outline its sides are judged by colour below the
#: eyes: the hair that falls over a cheek (s5's and s9's far cheeks, s0's and s1's temples), or
#: the background that a turned face's far outline takes in
SIDE_BAND = 0.22
#: ... down to this far (interoculars) above the mouth corners' level: below them the sides are
#: the jaw's, and a beard there is the identity's own
SIDE_LOW = 0.15
#: ... but not within this many interoculars of the eyes (s12's far eye's crow's feet read as hair
#: by colour at 0.08)
SIDE_EYES = 0.16
#: how far (interoculars) the edge of a solid stretch of what the map drops is moved onto the
#: skin (s1 ← d10 id_photo 0.497 → 0.507; at 0.04, 0.559)
EDGE_INSET = 0.02
#: `hair_shade`: how far (interoculars) beyond the edge of what the skin map drops above the
#: eyes the skin is searched for the hair's shade on it (`_hair_shade`; s5's painted fringe: the
#: forehead's skin 12-15 L* darker than beyond it up to 0.04 interoculars from her fringe, 5-9
#: up to 0.1)
SHADE_REACH = 0.15
#: ... and how much darker than the skin beyond that reach (a share of its luma) a pixel there
#: must be to be lifted whole (in proportion from no darker)
SHADE_DEPTH = 0.15
#: ... but what is darker than this share of that skin's luma is the hair itself, not lifted
HAIR_LUMA = 0.4
#: ... and so is what is yellower than that skin, whatever its luma: its hue (CIE Lab) turned
#: from the skin's towards yellow by this many degrees or more (lifted in proportion from 0).
#: Darkened alone, a colour keeps its Lab hue, and skin in shade turns red (s5's shade: -3 to
#: -15 degrees against her lit forehead); the astronaut's shaded blond fringe over her left brow,
#: 0.47 of her lit skin's luma, above HAIR_LUMA, turns +9 (lifted, a light rim painted into it)
SHADE_HUE = 3.0
#: ... and only on a photo that wears a fringe over at least this share of its forehead (s5's
#: parted fringe 0.45; bare foreheads 0.00-0.02, whose hairline and temples' shade is the head's
#: own turn: lifted, s12's far temple came out as a light patch with the hair's edges)
SHADE_FRINGE = 0.3
#: `_shaded_hair`: the CIE Lab chroma under which a pixel's hue is noise (counted in proportion
#: from this to twice it; the lit skin under twice it, a greyscale photo, has none): a grey
#: photo's hues are its noise's, and by them its fringe, its temples' and sockets' shade went or
#: stayed at random (the astronaut in grey, her pixels moved by +-1 level: 0.28-0.30 of her
#: forehead kept, 0.49 without the noise)
HUE_CHROMA = 3.0
#: `skin_map`: how far (interoculars) the hair that a fringe's edge in its shade is found to be
#: by its hue (`_shaded_hair`, on a photo wearing a fringe over `SHADE_FRINGE`) is grown onto
#: the skin: the edge's gradient to the lit skin, kept in part, drew a thin brown line across
#: the driver's forehead in its place (the astronaut <- d14: a dip of 14 L* at 0, 3 at 0.05,
#: 0.9 at 0.08)
FRINGE_EDGE = 0.08
#: hair-map level whose connected patches must reach outside the face to count as hair
#: (`_attached`): a patch wholly inside it is the face's own (s18's ginger brow tail)
ATTACHED_LEVEL = 0.2
#: ... or come within this many interoculars of it (the mesh's edge and the outline's pixels
#: need not meet exactly)
ATTACHED_REACH = 0.05
#: `fringe_fill`: the blur (interoculars) of the face's skin that fills a fringe: the forehead takes
#: the colour of the skin nearest it (the temples, the nose's bridge), not the mean of the face
FILL_SIGMA = 0.3
#: ... and near the fill's edge finer blurs (a half, a quarter, an eighth and a sixteenth of it)
#: where they hold this much of the skin (a normalised blur's weight)
FILL_SUPPORT = 0.2
#: ... the luma (relative to the fill's) at and under which a pixel under the fill's soft edge
#: is hair (a fringe's tips), painted over whole (from 1, the fill's own, in proportion)
EDGE_HAIR = 0.85
#: ... and the blur (interoculars) of that raise of the fill's weight
EDGE_SOFT = 0.025
#: ... and how far (interoculars) above the brows' highest landmark it reaches: the fill's lower
#: edge lies over the brows' upper contour, its upper edge (the hairline) far above
SPAN_ABOVE = 0.1


def profile_drops_fringe(profile) -> bool:
    """Whether the profile asks the swap to leave its photo's fringe out (``settings: swap:
    drop_fringe: true`` in its YAML, checked by `profiles.schema`); `live --drop-fringe` asks too."""
    return bool((profile.settings.get("swap") or {}).get("drop_fringe", False))


def fringe_hint(forehead_hair: float | None) -> str | None:
    """A line for the user when the photo wears a fringe that the swap keeps, else None."""
    if forehead_hair is None or forehead_hair <= FRINGE_COVER:
        return None
    return (f"swap: {forehead_hair:.0%} of the photo's forehead is hair (a fringe): its lighter strands "
            f"show as hair patches on the driver's forehead. --drop-fringe (or 'swap: {{drop_fringe: "
            f"true}}' in the profile's settings) leaves it out, at some likeness to the photo")


def _robust_gaussian(x: np.ndarray, keep: float = 2.5, rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the rows of `x`, re-fitted on the rows within `keep` Mahalanobis
    units (hair and shadows among the skin samples drop out)."""
    sel = np.ones(len(x), bool)
    mu, cov = x.mean(0), np.cov(x.T) + np.eye(x.shape[1])
    for _ in range(rounds):
        mu = x[sel].mean(0)
        cov = np.cov(x[sel].T) + np.eye(x.shape[1])
        d = x - mu
        nxt = _mahalanobis2(d, np.linalg.inv(cov)) < keep * keep
        if nxt.sum() < 20:
            break
        sel = nxt
    return mu, cov


def _clusters(x: np.ndarray, k: int = 3, rounds: int = 8, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(mean, covariance) of `k` k-means clusters of the rows of `x` (those under 20 rows dropped;
    when all are, the rows as one: a photo cut off just above the eyes has few around its face)."""
    rng = np.random.default_rng(seed)
    centres = x[rng.choice(len(x), size=min(k, len(x)), replace=False)]
    for _ in range(rounds):
        lab = np.argmin(((x[:, None] - centres[None]) ** 2).sum(-1), 1)
        centres = np.stack([x[lab == i].mean(0) if (lab == i).any() else centres[i] for i in range(len(centres))])
    out = []
    for i in range(len(centres)):
        sel = x[lab == i]
        if len(sel) >= 20:
            out.append((sel.mean(0), np.cov(sel.T) + np.eye(x.shape[1])))
    return out or [(x.mean(0), np.cov(x.T) + np.eye(x.shape[1]))]


def _log_likelihood(x: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> np.ndarray:
    d = x - mu
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * _mahalanobis2(d, np.linalg.inv(cov)) - 0.5 * logdet


def _mahalanobis2(d: np.ndarray, inv: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """``np.einsum("ij,jk,ik->i", d, inv, d)`` for (n, c) float64 `d` and (c, c) `inv`, bit for bit:
    the same products summed in the same order (j, then k), a column at a time over `chunk` rows
    at a time (kept in the cache: under half einsum's time on a photo's pixels)."""
    out = np.empty(len(d), np.float64)
    for start in range(0, len(d), chunk):
        cols = [np.ascontiguousarray(d[start:start + chunk, j]) for j in range(d.shape[1])]
        acc = out[start:start + chunk]
        acc[:] = 0.0
        term = np.empty(len(acc), np.float64)
        for j, dj in enumerate(cols):
            for k, dk in enumerate(cols):
                np.multiply(dj, inv[j, k], out=term)
                term *= dk
                acc += term
    return out


def _brow_top(uv: np.ndarray, mid: np.ndarray, axis: np.ndarray, up: np.ndarray,
              iod: float) -> tuple[np.ndarray, np.ndarray]:
    """The brows' upper edge as (position along the eye line, height above it), both in
    interoculars from the eyes' midpoint `mid` (`axis`, `up`: unit vectors along and across the
    eye line), position increasing: the right brow's upper contour, then between the brows a
    dip to `GLABELLA_DIP` below their lower contours' inner ends (a fringe's tips hang down
    between the brows, lower than their lower edge: kept, they joined the brows into one), then
    the left brow's upper contour."""
    sides = []
    for brow in (topology.RIGHT_BROW, topology.LEFT_BROW):
        halves = [(uv[list(brow[:5])] - mid) / iod, (uv[list(brow[5:])] - mid) / iod]
        pos = [p @ axis for p in halves]
        height = [p @ up for p in halves]
        hi = int(np.argmax([h.mean() for h in height]))
        lo = 1 - hi
        inner = int(np.argmin(np.abs(pos[lo])))
        sides.append((pos[hi], height[hi], pos[lo][inner], height[lo][inner]))
    (ru, rh, r_in, r_low), (lu, lh, l_in, l_low) = sorted(sides, key=lambda t: float(np.mean(t[0])))
    # the dip starts just inside each brow's innermost point, upper or lower
    r_dip = max(float(ru.max()), float(r_in)) + 0.01
    l_dip = min(float(lu.min()), float(l_in)) - 0.01
    u = np.concatenate([ru, [r_dip, l_dip], lu])
    h = np.concatenate([rh, [r_low - GLABELLA_DIP, l_low - GLABELLA_DIP], lh])
    order = np.argsort(u, kind="stable")
    return u[order], h[order]


def _side_band(uv: np.ndarray, h: int, w: int, iod: float, above: np.ndarray, mouth: float) -> np.ndarray:
    """(h, w) float32 weight of the face's sides below the eyes: 1 within `SIDE_BAND` of the
    outline inside it (fading over its last 0.05 interoculars), down to `SIDE_LOW` above the
    mouth corners (fading over 0.1; `above`: each pixel's height above the eye line, `mouth`:
    the mouth corners', interoculars); 0 on the eyes grown by `SIDE_EYES` (a turned face's far
    eye, its lashes and wrinkles reach near its outline)."""
    inside = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inside, [np.round(uv[list(topology.FACE_OVAL)]).astype(np.int32)], 1)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 3) / iod
    band = np.clip((SIDE_BAND - depth) / 0.05, 0.0, 1.0) * (inside > 0)
    band *= np.clip((above - mouth - SIDE_LOW) / 0.1, 0.0, 1.0)
    r = max(1, int(round(SIDE_EYES * iod)))
    eyes = cv2.dilate(eye_openings(uv, (h, w)), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    band[eyes > 0] = 0.0
    return band.astype(np.float32)


def _attached(hair: np.ndarray, covered: np.ndarray, reach: float, level: float = ATTACHED_LEVEL) -> np.ndarray:
    """`hair` without its patches that lie wholly inside the face (`covered`): hair over a face
    comes in over its outline, from the head; a hair-coloured patch that comes no nearer than
    `reach` pixels to the outside is the face's own (the tail of a ginger brow, a lid's crease,
    a mole). Patches: the 8-connected parts of `hair` > `level`, each kept or zeroed whole."""
    some = (hair > level).astype(np.uint8)
    n, labels = cv2.connectedComponents(some, connectivity=8)
    if n <= 1:
        return hair
    r = max(1, int(round(reach)))
    edge = cv2.dilate((~covered).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    outside = np.zeros(n, bool)
    outside[np.unique(labels[(some > 0) & (edge > 0)])] = True
    outside[0] = True                      # the background label: below `level`, left as it is
    return np.where(outside[labels], hair, 0.0).astype(hair.dtype)


def _eye_line(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mid, d, up, iod) of the landmarks `points` (N, 2): the middle of the outer eye corners,
    the vector from the first to the second, the unit vector across it towards the forehead, and
    their distance (at least 1e-6)."""
    a, b = points[topology.EYE_OUTER[0]].astype(np.float64), points[topology.EYE_OUTER[1]].astype(np.float64)
    iod = max(float(np.linalg.norm(b - a)), 1e-6)
    up = np.array([(b - a)[1], -(b - a)[0]]) / iod
    if up @ (points[topology.FOREHEAD] - points[topology.CHIN]) < 0:
        up = -up
    return 0.5 * (a + b), b - a, up, iod


def forehead_triangles(rig: Rig) -> np.ndarray:
    """(T + 1,) float32 of `rig`'s triangles, the last entry 0 (for tri_id −1): 1 on the face
    triangles of the forehead — every corner a landmark at or above the brows' upper edge (the
    brows' upper contours, and between the brows the straight line joining their inner ends),
    measured across the eye line of the rig's rest landmarks — else 0.

    Why: `triangle_labels`' "skin" leaves out every triangle that touches a brow or the face's
    outline, and on the forehead that is every triangle; the swap's gain field (the driver's low
    band of light and colour, `realtime.swap.colour.ColourTransfer`) then had no sample there on
    either face and carried the cheeks' gain up onto the forehead, whatever the forehead's own
    light (a band above s1's brows where its painted-out fringe meets the driver's lit forehead).
    The triangles that touch a brow's upper contour see some of its hairs: their samples are
    weighed as any (those much darker than the skin around them drop out)."""
    n = np.asarray(rig.attributes[:topology.N_LANDMARKS, :2], np.float64)
    mid, d, up, iod = _eye_line(n)
    axis = d / iod
    rel = (n - mid) / iod
    along, height = rel @ axis, rel @ up
    us, hs = [], []
    for brow in (topology.RIGHT_BROW, topology.LEFT_BROW):
        halves = [list(brow[:5]), list(brow[5:])]
        upper = halves[int(np.argmax([height[h].mean() for h in halves]))]
        us.append(along[upper])
        hs.append(height[upper])
    u, h = np.concatenate(us), np.concatenate(hs)
    order = np.argsort(u, kind="stable")
    edge = np.interp(along, u[order], h[order])
    # beyond the brows' outer ends the edge stays at their ends' height (np.interp's ends)
    on = np.zeros(rig.vertex_count, bool)
    on[:topology.N_LANDMARKS] = height >= edge - 0.01
    lo, hi = rig.ranges["face"]
    out = np.zeros(len(rig.triangles) + 1, np.float32)
    out[lo:hi] = on[rig.triangles[lo:hi]].all(1)
    return out


def skin_map(image: np.ndarray, uv: np.ndarray, rig: Rig, prior: float = 5.0, sharpness: float = 1.0,
             blur: float = 1.5, strands: float = 0.0, sides: bool = True, info: dict | None = None,
             odds: np.ndarray | None = None) -> np.ndarray:
    """(h, w) float32 in [0, 1] over `image` (the photo as the generator samples it; `uv` (V, 2)
    the rig's texture coordinates in it): 1 on the identity's skin and features, 0 on what is
    not its face (see the module docstring).

    Two colour models in CIE Lab: the skin, a robust Gaussian of the lower face's skin (below the
    eyes: no fringe, no hairline); and what surrounds the face above the eyes (hair, background,
    a hat), three Gaussians of the band just outside the face outline. A pixel's skin weight is
    the logistic of the log-likelihood ratio (times `sharpness`) plus `prior` (log-odds: inside
    the outline a pixel is skin unless its colour says otherwise), and it counts only above the
    eyes (a fringe, a hairline; below them a moustache or a beard belongs to the identity) and,
    with `sides`, on the cheeks' sides down to the mouth (`_side_band`: hair over a cheek; not
    near the eyes, nor on the jaw); the brows keep 1 whatever their colour. A fringe's lighter
    strands read as skin by colour: with `strands` > 0 (`FRINGE_STRANDS`), gaps in the hair above
    the eyes narrower than 2 × `strands` interoculars are closed (a closing of where the map says
    hair), a bare forehead is much wider;
    the brows keep only their outline (a fringe lies on the skin around them); and where hair then
    covers more than `FRINGE_COVER` of the face's forehead (a fringe over most of it: s1 0.80;
    not s5's parted fringe, 0.45, nor bare foreheads, 0.00-0.02), all of the forehead above the
    brows' upper edge goes (`_brow_top`; the fringe's tips between the brows too). On a photo
    wearing a fringe over `SHADE_FRINGE` to `FRINGE_COVER` of its forehead (kept, not painted
    out), its edge in its own shade is hair by its hue, `_shaded_hair`, whatever `strands` (the
    astronaut's blond fringe: skin by colour, a brown bar across the driver's forehead). Off by
    default: the photo wears its fringe, and without it the swap's dlib identity distance to the
    photo rises (s1 ← d14: 0.50 → 0.62; README, "Swap"). A hair-coloured patch that does not
    reach the face's outline is the face's own (`_attached`); the edge of a solid stretch of
    what goes is moved `EDGE_INSET` onto the skin. Median-filtered and blurred (`blur` px) so
    that it does not speckle. `info`, when given, gets "forehead_hair": that
    part of the forehead (inside the face, above the brows' upper edge, off the brows' grown
    outline) that is hair after a closing by `strands` (or else `FRINGE_STRANDS`), measured the
    same with or without `strands`; None where the face is too small to model; and, where it
    is modelled, "above_eyes": the (h, w) weight of the forehead (0 up to 0.05 interoculars
    above the eye line, 1 from 0.15) that the hair is dropped under, and "skin_odds": the colour
    models' log-likelihood ratio (h × w float64), which depends on `image` and `uv` alone. `odds`:
    that "skin_odds" from a map of the same `image` and `uv` (whatever its other arguments), to
    skip the colour models (two thirds of the map's cost), the same map bit for bit."""
    img = np.ascontiguousarray(image)
    h, w = img.shape[:2]
    head = rig.ranges["head"][0]
    tris = np.ascontiguousarray(rig.triangles[:head])
    verts = np.zeros((len(uv), 3), np.float32)
    verts[:, :2] = uv
    tid = rasterize(verts, tris, h, w).tri_id
    labels = triangle_labels(rig)
    skin = labels["skin"][:head]
    eye_y = uv[[topology.EYE_OUTER[0], topology.EYE_OUTER[1]], 1].mean()
    model = (skin > 0) & (uv[tris, 1].mean(1) > eye_y)
    covered = tid >= 0
    ids = np.where(covered, tid, 0)
    train = covered & model[ids]
    out = np.ones((h, w), np.float32)
    # the band around the face: the outline pushed out by 10–35%, above the eyes
    oval = uv[list(topology.FACE_OVAL)].astype(np.float64)
    c = oval.mean(0)
    ring = np.zeros((h, w), np.uint8)
    cv2.fillPoly(ring, [np.round(c + 1.35 * (oval - c)).astype(np.int32)], 1)
    cv2.fillPoly(ring, [np.round(c + 1.1 * (oval - c)).astype(np.int32)], 0)
    ys = np.arange(h)[:, None]
    around = (ring > 0) & (ys < eye_y) & ~covered
    if info is not None:
        info["forehead_hair"] = None
    if train.sum() < 50 or around.sum() < 50:     # too small a face to model: keep everything
        return out
    if odds is None:
        lab = srgb_to_lab(img.astype(np.float32)).reshape(-1, 3).astype(np.float64)
        skin_model = _robust_gaussian(lab[train.ravel()])
        others = _clusters(lab[around.ravel()])
        ll_skin = _log_likelihood(lab, *skin_model)
        odds = ll_skin - np.max([_log_likelihood(lab, *m) for m in others], axis=0)
    elif odds.shape != (h * w,):
        raise ValueError(f"skin_map: odds has shape {odds.shape}, not ({h * w},) for a {h}x{w} image; pass "
                         "the \"skin_odds\" of a map of this same image")
    if info is not None:
        info["skin_odds"] = odds
    z = np.clip(sharpness * odds + prior, -30.0, 30.0)
    keep = (1.0 / (1.0 + np.exp(-z))).reshape(h, w).astype(np.float32)
    # only above the eyes (a fringe, a hairline): a moustache or a beard is the identity's own
    mid, d, up, iod = _eye_line(uv)     # d: the eye line; up: across it, to the forehead
    yy, xx = np.mgrid[0:h, 0:w]
    above = ((xx - mid[0]) * up[0] + (yy - mid[1]) * up[1]) / iod
    weight = np.clip((above - 0.05) / 0.1, 0.0, 1.0).astype(np.float32)
    if info is not None:
        info["above_eyes"] = weight
    outline = np.zeros((h, w), np.uint8)
    for brow in (topology.RIGHT_BROW, topology.LEFT_BROW):
        loop = list(brow[:5]) + list(brow[5:][::-1])
        cv2.fillPoly(outline, [np.round(uv[loop]).astype(np.int32)], 1)
    r = max(1, int(round(0.06 * iod)))
    grown = cv2.dilate(outline, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0
    # a brow's outline and a little around it; with the fringe left out, its outline alone (a
    # fringe lies on the skin around the brows)
    brows = outline > 0 if strands > 0 else grown
    # the hair above the eyes (the brows are not hair here, nor lashes below the eye line: the
    # closing bridges only gaps between hair and hair)
    hair = weight * (1.0 - keep)
    hair[brows] = 0.0
    r = max(1, int(round((strands or FRINGE_STRANDS) * iod)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))

    def closed(m: np.ndarray) -> np.ndarray:
        # on the hair's solid part (a soft map's noise would rise to its local maxima)
        solid = cv2.morphologyEx((m > 0.5).astype(np.uint8), cv2.MORPH_CLOSE, disc)
        return np.maximum(m, solid.astype(np.float32))

    # the fringe test, the same whatever `strands` (the hint a swap prints and the option's
    # choice agree): the closed hair over the forehead above the brows' upper edge
    along = ((xx - mid[0]) * d[0] + (yy - mid[1]) * d[1]) / (iod * iod)
    top = np.interp(along, *_brow_top(uv, mid, d / iod, up, iod))
    brow_up = np.clip((above - top - 0.02) / 0.04, 0.0, 1.0).astype(np.float32)
    region = covered & (brow_up > 0.5) & ~grown
    measured = np.where(grown, 0.0, hair).astype(np.float32) if strands > 0 else hair
    cover = float(closed(measured)[region].mean()) if region.any() else 0.0
    if info is not None:
        info["forehead_hair"] = cover
    if SHADE_FRINGE <= cover <= FRINGE_COVER:
        # (over FRINGE_COVER, the fringe is painted out, `fill_fringe`, or dropped whole)
        # the fringe's edge in its own shade, skin by its colour odds (the astronaut's blond
        # fringe, L* 46-57 against her skin's 82-88, kept as a brown bar across the driver's
        # forehead), is hair by its hue; on both sides of the face's outline (the mesh's top
        # edge crosses her fringe's: the median and blur below carry the map across it)
        hair = np.maximum(hair, weight * _shaded_hair(img, keep, covered & ~grown & (weight >= 1.0),
                                                      weight > 0.0, covered, iod))
        hair[brows] = 0.0
    if strands > 0:
        hair = closed(hair)
        # a fringe (hair over FRINGE_COVER of the forehead) goes whole: all of the forehead
        # above the brows, its hair and the skin between its strands alike
        if cover > FRINGE_COVER:
            hair = np.maximum(hair, brow_up)
        hair[brows] = 0.0
    if sides:
        # below the forehead's weight (the brows stay whatever their colour)
        corners = uv[list(topology.MOUTH_CORNERS)].astype(np.float64)
        mouth = float(np.mean((corners - mid) @ up)) / iod
        hair = np.maximum(hair, _side_band(uv, h, w, iod, above, mouth) * (1.0 - weight) * (1.0 - keep))
    hair = _attached(hair, covered, ATTACHED_REACH * iod)
    keep = 1.0 - hair
    keep = cv2.medianBlur((keep * 255).astype(np.uint8), 5).astype(np.float32) / 255.0
    # The edge of a solid stretch of what goes (a fringe's or a temple's hair, inside the face)
    # moved EDGE_INSET onto the skin: a soft edge across the hair's own margin let a band of it
    # through at half strength, a dark line on the driver's forehead (s5, s18). Single strands
    # (narrower than 2 × the inset) keep their edges: grown, the strands of a kept fringe took
    # its skin-coloured strands with them (s1 ← d10 id_photo 0.50 → 0.56 at 0.04 iod). The brows
    # stay.
    r = int(round(EDGE_INSET * iod))
    if r > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        solid = cv2.morphologyEx(((keep < 0.5) & covered).astype(np.uint8), cv2.MORPH_OPEN, disc)
        keep = np.where(covered & (cv2.dilate(solid, disc) > 0) & ~brows, 0.0, keep).astype(np.float32)
    if blur > 0:
        keep = cv2.GaussianBlur(keep, (0, 0), blur)
    return keep.astype(np.float32)


def _shaded_hair(image: np.ndarray, keep: np.ndarray, forehead: np.ndarray, where: np.ndarray,
                 inside: np.ndarray, iod: float) -> np.ndarray:
    """(h, w) float32 in [0, 1]: how much each pixel of `image` in `where` (h, w bool) is hair in
    shade, by its colour against the lit skin of `forehead` (h, w bool; the median colour of the
    lighter half of its pixels that `keep`, the colour odds' skin weight, keeps): darker than
    that skin by 2 x `SHADE_DEPTH` of its luma (in proportion from `SHADE_DEPTH`: a forehead a
    little darker and yellower than the lit skin is not hair) and its CIE Lab hue (`hue_turn`,
    on `image` blurred by `EDGE_INSET`: a pixel's own hue is noisy) turned from the skin's
    towards yellow by 2 x `SHADE_HUE` (in proportion from `SHADE_HUE`); what of it lies in
    `inside` (h, w bool: the face) grown by `FRINGE_EDGE` onto the skin about it. Skin in shade
    keeps its hue or turns red; 0 everywhere where the forehead shows no skin. A pixel's turn
    counts in proportion to its chroma from `HUE_CHROMA` to twice it, and on a photo whose lit
    skin's chroma is under twice it (a greyscale one) nothing is hair here: a grey's hue is
    its noise's."""
    out = np.zeros(keep.shape, np.float32)
    box = _bounds(where)
    lit = forehead & (keep > 0.5)
    if box is None or lit.sum() < 50:
        return out
    luma = image.astype(np.float32) @ LUMA
    # the lighter half: the kept forehead holds the shaded hair itself (the astronaut's: a fifth
    # of it, which took the median 0.1 under her lit skin's luma and 4 degrees towards yellow)
    lit &= luma >= float(np.median(luma[lit]))
    ref = np.median(image[lit].astype(np.float32), 0)
    y0, y1, x0, x1 = box
    sigma = EDGE_INSET * iod
    px = _blur_in(image.astype(np.float32), sigma, box)
    # (a grey's hue is noise: a pixel's own turn counts in proportion to its chroma, and a
    # photo whose lit forehead has none, a greyscale one, has no hair here by its hue)
    if _chroma(ref) < 2.0 * HUE_CHROMA:
        return out
    turn = hue_turn(px, np.broadcast_to(ref, px.shape).astype(np.float32))
    turn *= _hue_trust(px)
    dark = np.clip((1.0 - luma[y0:y1, x0:x1] / max(float(ref @ LUMA), 1.0)) / SHADE_DEPTH - 1.0, 0.0, 1.0)
    out[y0:y1, x0:x1] = dark * np.clip(turn / SHADE_HUE - 1.0, 0.0, 1.0) * where[y0:y1, x0:x1]
    # grown onto the skin from inside the face (not from the hair over the outline: into a
    # narrow forehead it moved the lit skin the shade lift reads), the edges the colour odds
    # drop too: their gradient to the lit skin (kept, a grey line across the driver's forehead:
    # the astronaut <- d14, a dip of 1.5 L* growing only what the odds keep, 0.9 growing all)
    r = max(1, int(round(FRINGE_EDGE * iod)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return np.maximum(out, cv2.dilate(out * inside, disc))


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """(...) float32: the CIE Lab chroma of each of `rgb` (..., 3, sRGB 0-255)."""
    lab = srgb_to_lab(np.asarray(rgb, np.float32))
    return np.hypot(lab[..., 1], lab[..., 2]).astype(np.float32)


def _hue_trust(rgb: np.ndarray) -> np.ndarray:
    """(...) float32, 0 … 1: how far the hue of each of `rgb` (..., 3, sRGB 0-255) can be told from
    noise: none under `HUE_CHROMA` of CIE Lab chroma, in full from twice it (a grey's hue is its
    noise's; `_shaded_hair` and `lift_hair_shade` judge hair by hue only as far as this)."""
    return np.clip(_chroma(rgb) / HUE_CHROMA - 1.0, 0.0, 1.0)


def _hair_shade(image: np.ndarray, gone: np.ndarray, skin: np.ndarray, forehead: np.ndarray,
                iod: float) -> tuple[np.ndarray, np.ndarray]:
    """(weight (h, w) float32 in [0, 1], colour (h, w, 3) float32): how much each pixel of
    `skin` (h, w bool: the face less its brows) within `SHADE_REACH` interoculars (`iod` px) of
    `gone` (h, w bool: what the skin map drops above the eyes, its solid hair) is in the shade
    that hair casts or paints on the skin beside it, and the colour of the lit skin there.

    The lit skin: the forehead's pixels beyond that reach no darker than `SHADE_DEPTH` below
    their median (not hair the map keeps, nor the skin's own shade), blurred (normalised) by
    `SHADE_REACH`. A pixel is in shade as far as its luma is below that colour's, fully from
    `SHADE_DEPTH` below, where it is reached from `gone` through such shade (at least half of
    it: a dark mark further on, or the skin's own slight unevenness, is not the hair's; what it
    reaches is feathered by `EDGE_INSET`, `feathered`: cut off there, the lifted skin ended in a
    step of half the lift, a light patch with a hard edge across s5's forehead); weighted by
    `forehead` (h, w) and fading out over the reach's outer half (no step where it ends)."""
    reach = SHADE_REACH * iod
    n = max(1, int(round(reach)))
    dist = cv2.distanceTransform((~gone).astype(np.uint8), cv2.DIST_L2, 3)
    luma = image.astype(np.float32) @ LUMA
    # the forehead's lit skin beyond the reach: not its own shade, nor hair that the map keeps
    beyond = skin & (forehead >= 1.0) & (dist > reach)
    if not beyond.any():
        return np.zeros(gone.shape, np.float32), np.zeros(gone.shape + (3,), np.float32)
    beyond &= luma > (1.0 - SHADE_DEPTH) * float(np.median(luma[beyond]))
    lit = beyond.astype(np.float32)
    px = image.astype(np.float32)
    den = cv2.GaussianBlur(lit, (0, 0), reach)
    colour = np.where((den > 1e-2)[..., None], weighted_blur(px, lit, reach), px[beyond].mean(0)).astype(np.float32)
    shade = np.clip((1.0 - luma / np.maximum(colour @ LUMA, 1.0)) / SHADE_DEPTH, 0.0, 1.0)
    shade *= forehead * np.clip(2.0 * (reach - dist) / reach, 0.0, 1.0)
    # only what the hair's edge reaches through shade, grown from it a pixel at a time
    reached = gone.astype(np.uint8)
    through = (gone | (skin & (shade >= 0.5))).astype(np.uint8)
    for _ in range(n):
        reached = cv2.dilate(reached, np.ones((3, 3), np.uint8)) & through
    return (shade * feathered(reached, EDGE_INSET * iod)).astype(np.float32), colour


def hair_shade(image: np.ndarray, uv: np.ndarray, rig: Rig,
               odds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Where the photo's forehead lies in the shade of the hair that the swap's skin map drops
    above its eyes, and the colour of its lit skin there: (weight (h, w) float32 in [0, 1],
    colour (h, w, 3) float32) over `image` and `uv` as `skin_map`'s (`_hair_shade`), between
    the brows' outer ends, on a photo wearing a fringe over `SHADE_FRINGE` of its forehead or
    more (`skin_map`'s "forehead_hair"); None where there is none (or the face is too small to
    model). `odds`: `skin_map`'s "skin_odds" of the same `image` and `uv`, when known.

    Beyond the brows' outer ends the temples' shade beside their hair is the head's own turn
    there, and left as it is."""
    info: dict = {}
    keep = skin_map(image, uv, rig, info=info, odds=odds)
    if info["forehead_hair"] is None or info["forehead_hair"] < SHADE_FRINGE:
        return None
    h, w = keep.shape
    mid, d, up, iod = _eye_line(uv)
    verts = np.zeros((len(uv), 3), np.float32)
    verts[:, :2] = uv
    covered = rasterize(verts, np.ascontiguousarray(rig.triangles[:rig.ranges["head"][0]]), h, w).tri_id >= 0
    r = max(1, int(round(0.06 * iod)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    brows = cv2.dilate(brow_polygons(uv, (h, w)), disc) > 0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    axis = d / iod
    along = (xx - mid[0]) * axis[0] + (yy - mid[1]) * axis[1]
    ends = (uv[list(topology.RIGHT_BROW) + list(topology.LEFT_BROW)] - mid) @ axis
    inner = np.clip(np.minimum(along - ends.min(), ends.max() - along) / (0.05 * iod) + 1.0, 0.0, 1.0)
    above = info["above_eyes"]
    gone = covered & (keep < 0.5) & (above > 0.0)
    weight, colour = _hair_shade(image, gone, covered & ~brows, above * inner, iod)
    # the brows' grown outline is not the skin the shade is measured or reached on, but the
    # weight fades out into it, to the brows themselves: cut off at it, an unlifted dark ring
    # about s5's brows
    weight *= 1.0 - feathered(brow_polygons(uv, (h, w)), 0.5 * r)
    return (weight, colour) if weight.max() > 0.0 else None


def hue_turn(rgb: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(...) float32: how far (degrees, in (-180, 180]) the CIE Lab hue of each of `rgb` (..., 3,
    sRGB 0-255) is turned from that of `skin` (the same shape) towards yellow (+; towards red
    -): the way a pixel near a fringe differs from the lit skin other than by its lightness."""
    lab, ref = srgb_to_lab(rgb), srgb_to_lab(skin)
    turn = np.degrees(np.arctan2(lab[..., 2], lab[..., 1]) - np.arctan2(ref[..., 2], ref[..., 1]))
    return (180.0 - np.mod(180.0 - turn, 360.0)).astype(np.float32)


def _at_crop_density(image: np.ndarray, profile) -> tuple[Rig, np.ndarray, np.ndarray, np.ndarray]:
    """(the swap's rig of `profile`, its landmarks' (N, 2) coordinates in `image` (the profile's
    photo or that photo prepared), `image` at the swap crop's density (C-contiguous), the
    landmarks there): where the swap's skin map measures a photo (`fill_fringe`,
    `lift_hair_shade`), to be applied at the photo's own size."""
    rig = face_rig(rig_mod.build(profile), nominal_affine(profile, int(profile.crop_size)))
    uv0 = np.ascontiguousarray(rig.attributes[:, :2])
    small, uv = rig.texture_at_crop_density(np.ascontiguousarray(image), uv0)
    return rig, uv0, np.ascontiguousarray(small), uv


def lift_hair_shade(image: np.ndarray, profile, forehead_hair: float | None = -1.0,
                    odds: np.ndarray | None = None) -> np.ndarray:
    """`image` (the profile's photo prepared for the swap) with its forehead's skin in the shade
    of the hair the swap leaves out (`hair_shade`) taken to the colour of the lit forehead
    beyond it; the same array where there is none. `forehead_hair`: `skin_map`'s measure of the
    same image when known (`fill_fringe`'s `info`; it does not depend on `strands`): under
    `SHADE_FRINGE`, or None, the image is returned at once (its skin map costs 50-150 ms at
    start-up); -1 (the default): measured here. `odds`: that map's "skin_odds", when known (the
    same `image`: its colour models are not computed again, 100 ms of s5's start-up).

    Why: a fringe's edge lies on the forehead in its own shade (s5's painted fringe: her
    forehead 43.8 L* within 0.02 interoculars of it, 58.8 past 0.16, at the map's density). The
    skin map keeps that band (skin by its colour) and leaves the hair to the driver, so it came
    in as a dark line drawn across the driver's forehead wherever the fringe ended, a seam on
    every driver. Left out with the hair (the map lowered there), the line went but s5 <- d10
    read nearer the driver than the photo by dlib (margin 0.118 -> 0.097): the forehead stays
    hers, lit. Its local colour (a normalised blur over the skin off the hair, by 0.03
    interoculars) goes to the lit skin's, so its own detail stays. The hair itself is not
    lifted: what is under `HAIR_LUMA` of the lit skin's luma, or whose hue turns from the lit
    skin's towards yellow by `SHADE_HUE` (`hue_turn`, on the photo blurred by `EDGE_INSET`);
    nor anything where the lit skin's chroma is under 2 x `HUE_CHROMA` (a greyscale photo, in
    proportion from `HUE_CHROMA`), whose hue cannot tell hair from shade.
    Measured at the swap crop's density (as the skin map is), applied at the photo's."""
    if forehead_hair is None or (forehead_hair != -1.0 and forehead_hair < SHADE_FRINGE):
        return image
    rig, uv0, small, uv = _at_crop_density(image, profile)
    found = hair_shade(small, uv, rig, odds)
    if found is None:
        return image
    weight, colour = found
    h, w = image.shape[:2]
    if weight.shape != (h, w):
        weight = cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR)
        colour = cv2.resize(colour, (w, h), interpolation=cv2.INTER_LINEAR)
    px = image.astype(np.float32)
    ratio = (px @ LUMA) / np.maximum(colour @ LUMA, 1.0)
    # not the hair itself (under HAIR_LUMA of the lit skin's luma, in proportion up to 0.2 above
    # it) where the map keeps some of it: painted over, it came out as skin-coloured blocks with
    # the hair's edges (s0, s5); nor hair lighter than that but of another hue than the skin's
    # shade (SHADE_HUE: the astronaut's fringe), judged on the photo blurred by EDGE_INSET (a
    # pixel's own hue is noisy: +-3 degrees in her hair, whose pixels under the threshold came out
    # as light specks) where the weight is and the skin's blur below reads about it (the Lab of a
    # whole photo is 100-200 ms of start-up)
    iod = _eye_line(uv0)[3]
    sigma = 0.03 * iod
    hued = np.ones((h, w), np.float32)
    where = _bounds(weight > 0.0)
    if where is not None:
        y0, y1, x0, x1 = _grown(where, _reach(sigma), (h, w))
        turn = hue_turn(_blur_in(px, EDGE_INSET * iod, (y0, y1, x0, x1)), colour[y0:y1, x0:x1])
        hued[y0:y1, x0:x1] = np.clip(1.0 - turn / SHADE_HUE, 0.0, 1.0)
        # where the lit skin has no chroma (a greyscale photo: under 2 x HUE_CHROMA, in
        # proportion from HUE_CHROMA) a turn is its noise's, and hair is not told from the
        # skin's shade by it: nothing is lifted (the astronaut in grey: a light patch painted
        # into her fringe's shaded edge, 256-399 px that moved with +-1 level of noise)
        hued[y0:y1, x0:x1] *= _hue_trust(colour[y0:y1, x0:x1])
    weight = weight * np.clip((ratio - HAIR_LUMA) / 0.2, 0.0, 1.0) * hued
    # the band's own colour, from the skin about it (not the hair beside it: a lighter rim)
    skin = ((ratio > HAIR_LUMA) & (hued > 0.0)).astype(np.float32)
    low = weighted_blur(px, skin, sigma)
    out = px + weight[..., None] * (colour - low)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def fringe_fill(image: np.ndarray, uv: np.ndarray, rig: Rig) -> tuple[np.ndarray, np.ndarray] | None:
    """Where and with what a fringe over the photo's forehead is painted out: (weight (h, w)
    float32 in [0, 1], colour (h, w, 3) float32), over `image` and `uv` as `skin_map`'s; None
    when the photo wears no fringe (hair over at most `FRINGE_COVER` of its forehead, or a face
    too small to model).

    The weight is what `skin_map` with `FRINGE_STRANDS` drops above the eyes: all of the forehead
    above the brows' upper edge, the fringe's strands and the skin between them alike, and the
    fringe's tips between the brows; the brows' outlines stay. The colour is the face's skin
    (`triangle_labels` "skin", not dropped by that map) blurred by `FILL_SIGMA` and normalised by
    its blurred weight: a smooth skin the shade of the skin nearest each pixel, which the swap's
    gain field then lights as the driver's forehead is lit; near the skin, finer blurs where they
    hold `FILL_SUPPORT` of it (the finest nearest), so that at its edge the fill is the shade of
    the skin just beyond it (s1: her glabella, lighter than her forehead's blur)."""
    found = _fringe_weight(image, uv, rig)
    if found is None:
        return None
    weight, source = found
    return weight, _fill_colour(image.astype(np.float32), source, FILL_SIGMA * _eye_line(uv)[3])


def _fringe_weight(image: np.ndarray, uv: np.ndarray, rig: Rig,
                   info: dict | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """`fringe_fill`'s weight, and the skin its colour is blurred from ((h, w) float32, 0/1); None
    as there. `info`, when given, gets `skin_map`'s."""
    info = {} if info is None else info
    keep = skin_map(image, uv, rig, strands=FRINGE_STRANDS, info=info)
    if info["forehead_hair"] is None or info["forehead_hair"] <= FRINGE_COVER:
        return None
    h, w = image.shape[:2]
    # above the eyes only (skin_map's forehead weight): what it drops at the cheeks' sides (hair
    # over a cheek, the background) is the driver's to show, not skin to paint
    weight = ((1.0 - keep) * info["above_eyes"]).astype(np.float32)
    head = rig.ranges["head"][0]
    verts = np.zeros((len(uv), 3), np.float32)
    verts[:, :2] = uv
    tid = rasterize(verts, np.ascontiguousarray(rig.triangles[:head]), h, w).tri_id
    # on the face and the pixel or two about it that its bilinear lookups reach; the photo
    # beyond it (hair, background) is never drawn
    face = cv2.dilate((tid >= 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    weight[~face] = 0.0
    skin = triangle_labels(rig)["skin"][:head]
    source = ((tid >= 0) & (skin[np.where(tid >= 0, tid, 0)] > 0) & (keep > 0.95) & (weight < 0.02)).astype(np.float32)
    if source.sum() < 50:
        return None
    return weight, source


def _fill_colour(px: np.ndarray, source: np.ndarray, sigma: float,
                 box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """`fringe_fill`'s colour: the normalised blur by `sigma` px of `px` (h, w, 3) float32 over
    `source` (h, w) float32 (0/1), the face's mean skin where no skin is within a few `sigma`,
    then its finer blurs near the skin (`_finest_supported`). Over `box` (y0, y1, x0, x1) of the
    image only ((y1 - y0, x1 - x0, 3) float32; None: all of it), bit for bit as over the whole
    image: each blur reads only the part its kernel reaches (`_blur_in`)."""
    y0, y1, x0, x1 = box if box is not None else (0, px.shape[0], 0, px.shape[1])
    mean = px[source > 0].astype(np.float64).mean(0)
    # the most the widest blur reads, and the box within it
    gy0, gy1, gx0, gx1 = _read_box((y0, y1, x0, x1), sigma, px.shape[:2])
    px, source = px[gy0:gy1, gx0:gx1], source[gy0:gy1, gx0:gx1]
    inner = (y0 - gy0, y1 - gy0, x0 - gx0, x1 - gx0)
    weighted = px * source[..., None]
    den = _blur_in(source, sigma, inner)
    num = _blur_in(weighted, sigma, inner)
    far = den < 1e-3        # no skin within a few sigma: the face's mean skin
    colour = np.where(far[..., None], mean.astype(np.float32), num / np.maximum(den, 1e-3)[..., None])
    # near its edge the skin just beyond it: finer blurs where they hold enough skin (the
    # finest nearest), so the fill meets the skin below it at that skin's own shade
    colour = _finest_supported(colour, weighted, source, (sigma / 2, sigma / 4, sigma / 8, sigma / 16), inner)
    return colour.astype(np.float32)


def _reach(sigma: float) -> int:
    """How far (px) `cv2.GaussianBlur(image, (0, 0), sigma)` of a float image reads about a pixel:
    at least its kernel's radius (cv2's kernel for float images spans ±4 `sigma`, rounded)."""
    return int(np.ceil(4.0 * sigma)) + 1


def _read_box(box: tuple[int, int, int, int], sigma: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The part (y0, y1, x0, x1) of an image of `shape` that `_blur_in` blurs by `sigma` for `box`:
    `box` grown by `_reach`, within the image; where it ends at the image's right edge, a column
    more on its left when its width's parity is not the image's. (cv2's 3- and 5-tap row filters,
    sigma under 0.5625, compute the last pixel of an odd-width row apart from the rest, 1 ulp off:
    read with the other parity, 196 of 1001 random boxes at the right edge came out 1 ulp off the
    whole image's blur in their last column.)"""
    y0, y1, x0, x1 = _grown(box, _reach(sigma), shape)
    if x1 == int(shape[1]) and (x1 - x0) % 2 != int(shape[1]) % 2:
        x0 -= 1         # not 0 here: the box is narrower than the image
    return y0, y1, x0, x1


def _grown(box: tuple[int, int, int, int], by: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """`box` (y0, y1, x0, x1) grown by `by` px on every side, within an image of `shape`."""
    y0, y1, x0, x1 = box
    return max(0, y0 - by), min(int(shape[0]), y1 + by), max(0, x0 - by), min(int(shape[1]), x1 + by)


def _union(*boxes: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
    """The smallest box (y0, y1, x0, x1) that holds each of `boxes` (None and empty ones left out);
    None when none is left."""
    given = [b for b in boxes if b is not None and b[1] > b[0] and b[3] > b[2]]
    if not given:
        return None
    return (min(b[0] for b in given), max(b[1] for b in given), min(b[2] for b in given), max(b[3] for b in given))


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1): the bounding box of `mask`'s (h, w) true pixels; None when it has none."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _blur_in(image: np.ndarray, sigma: float, box: tuple[int, int, int, int]) -> np.ndarray:
    """``cv2.GaussianBlur(image, (0, 0), sigma)[y0:y1, x0:x1]`` (`box`; `image` float32, (h, w)
    or (h, w, C)), bit for bit, from only the part of `image` its kernel reaches (`_read_box`):
    the box grown by `_reach`, which either lies a kernel's radius inside the image or ends at its
    border (cv2 reflects the same pixels there)."""
    y0, y1, x0, x1 = box
    gy0, gy1, gx0, gx1 = _read_box(box, sigma, image.shape)
    blurred = cv2.GaussianBlur(np.ascontiguousarray(image[gy0:gy1, gx0:gx1]), (0, 0), sigma)
    return blurred[y0 - gy0:y1 - gy0, x0 - gx0:x1 - gx0]


def _finest_supported(colour: np.ndarray, weighted: np.ndarray, source: np.ndarray, sigmas,
                      box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """`colour` (over `box` (y0, y1, x0, x1) of the image, (y1 - y0, x1 - x0, 3) float32; None:
    all of it) taken over, blur by blur (`sigmas` in px, coarse to fine), by the normalised blur of
    `weighted` (h, w, 3) float32 (the pixels times `source`) over `source` (h, w) float32 (0/1)
    wherever that blur holds `FILL_SUPPORT` of the source (in proportion below it): each pixel
    ends with the finest blur that holds enough of the source near it, the colour of the nearest
    source pixels."""
    box = box if box is not None else (0, source.shape[0], 0, source.shape[1])
    for s in sigmas:
        den = _blur_in(source, s, box)
        num = _blur_in(weighted, s, box)
        k = np.clip(den / FILL_SUPPORT, 0.0, 1.0)[..., None]
        colour = num / np.maximum(den, 1e-6)[..., None] * k + colour * (1.0 - k)
    return colour


def _brow_span(uv: np.ndarray, shape: tuple[int, int],
               box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """(h, w) float32 over an image of `shape` whose landmarks are `uv` (N, 2): 1 between the
    brows' outer ends along the eye line (the brows and the glabella, whatever their height) and
    up to `SPAN_ABOVE` interoculars above the brows' highest landmark across it (not the fill's
    upper edge at the hairline), fading to 0 over 0.05 interoculars beyond either. Over `box`
    (y0, y1, x0, x1) of the image only, (y1 - y0, x1 - x0), when given."""
    mid, d, up, iod = _eye_line(uv)
    axis = d / iod
    brows = uv[list(topology.RIGHT_BROW) + list(topology.LEFT_BROW)] - mid
    along_brows = brows @ axis / iod
    y0, y1, x0, x1 = box if box is not None else (0, shape[0], 0, shape[1])
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    along = ((xx - mid[0]) * axis[0] + (yy - mid[1]) * axis[1]) / iod
    height = ((xx - mid[0]) * up[0] + (yy - mid[1]) * up[1]) / iod
    out = np.minimum(np.minimum(along - along_brows.min(), along_brows.max() - along),
                     float((brows @ up).max()) / iod + SPAN_ABOVE - height)
    return np.clip(1.0 + out / 0.05, 0.0, 1.0).astype(np.float32)


def _under_the_edge(weight: np.ndarray, image: np.ndarray, colour: np.ndarray, span: np.ndarray,
                    iod: float) -> np.ndarray:
    """`weight` (h, w) raised on its soft edge (where it is over 0) within `span` (h, w; the
    brows', `_brow_span`) towards 1 on the pixels of `image` (h, w, 3) darker than the fill
    `colour` (h, w, 3) there, fully from `EDGE_HAIR` of its luma down: a fringe's tips that hang
    below the fill's edge, which the edge's partial weight blended in as a darker band (s1
    between her brows: L* 55 between the fill's 63 above and her glabella's 72 below). Skin under
    the edge as light as the fill keeps its weight (the fill there is that skin's own shade,
    `fringe_fill`). Outside `span` the weight stays: beyond the brows the edge runs over the hair
    at the temples, which the swap leaves to the driver, and above them over the hairline. The
    raise's edge is softened onto the pixels about it, within `span`, by a blur of `EDGE_SOFT`
    interoculars (`iod`: the interocular in `weight`'s pixels); the weight itself is not blurred.
    Returns (h, w) float32 in [0, 1], at least `weight` everywhere."""
    ratio = (image.astype(np.float32) @ LUMA) / np.maximum(colour @ LUMA, 1.0)
    hair = np.clip((1.0 - ratio) / (1.0 - EDGE_HAIR), 0.0, 1.0) * np.clip(weight / 0.05, 0.0, 1.0) * span
    # the raise's edge softened outwards, onto the skin below (a per-pixel raise drew it as a hard
    # line); the hair keeps its raise whole. Only the raise: a blur of the weight itself spread the
    # fill's every edge outwards, over the temples' and the hairline's hair (s1: 4290 pixels
    # outside the face's outline changed by up to 175 levels)
    hair = np.maximum(hair, cv2.GaussianBlur(hair, (0, 0), EDGE_SOFT * iod) * span)
    return (weight + (1.0 - weight) * hair).astype(np.float32)


#: `brow_strokes`: the drawn brow's width (interoculars, across the eye line) at its head (inner
#: end), its middle and its tail (outer end): full at the head and middle, thin at the tail.
#: dlib reads s1 the nearer her photo the thinner they are (id_photo s1 ← d10, d14, d19: 0.589,
#: 0.591, 0.535 at 0.08 in the middle, the d19 margin 0.098 under issue #17's 0.1; 0.568, 0.572,
#: 0.511 at 0.065; 0.545, 0.552, 0.499 at 0.055 drawn lighter, pencil-thin and faint in the swap)
BROW_WIDTH = (0.06, 0.065, 0.025)
#: ... how far (interoculars) its lower edge lies below the brow's lower landmark contour: on
#: it. (s1's right brow, where her fringe shows it, reaches ~0.03 below; drawn 0.025 below, the
#: brows sat nearer her eyes than the photo's dark mass above them and dlib read s1 ← d10 further
#: from her photo: id_photo 0.600, on the contour 0.589, at 0.08 wide; 0.015 above it, 0.579 but
#: s1 ← d19's margin 0.086)
BROW_DROP = 0.0
#: ... its opacity at the head, middle and tail (a brow's head is sparser than its body)
BROW_OPACITY = (0.7, 0.9, 0.6)
#: ... the blur of its edges, and the length of its hairs' streaks (interoculars)
BROW_SOFT = 0.008
BROW_HAIR = 0.08
#: ... how much its hairs' streaks vary its opacity (relative)
BROW_GRAIN = 0.3
#: how far (interoculars) around a brow's landmark outline the photo is painted with skin before
#: the brow is drawn back (as `skin_map`'s grown brow outline)
BROW_MARGIN = 0.06
#: ... but not within this many interoculars of an eye opening (its lashes and liner)
BROW_EYES = 0.04


def _lower_brow(uv: np.ndarray, brow: tuple[int, ...], mid: np.ndarray, d: np.ndarray,
                up: np.ndarray) -> np.ndarray:
    """(5, 2) lower contour of `brow` (`topology.RIGHT_BROW` or `LEFT_BROW`) in `uv`: of its two
    halves the one less far along `up`, ordered from the inner end (nearest the eyes' midpoint
    `mid` along the eye line `d`) out."""
    halves = [uv[list(brow[:5])].astype(np.float64), uv[list(brow[5:])].astype(np.float64)]
    lower = min(halves, key=lambda half: float((half - mid) @ up @ np.ones(5)))
    return lower[np.argsort(np.abs((lower - mid) @ d), kind="stable")]


def _along(polyline: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points at the fractions `t` (in [0, 1]) of `polyline`'s (N, 2) arc length."""
    seg = np.linalg.norm(np.diff(polyline, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    s = s / max(float(s[-1]), 1e-9)
    return np.stack([np.interp(t, s, polyline[:, 0]), np.interp(t, s, polyline[:, 1])], 1)


def _profile(t: np.ndarray, values: tuple[float, float, float]) -> np.ndarray:
    """`values` (head, middle, tail) interpolated at `t` (0 the head, 0.45 the middle, 1 the tail)."""
    return np.interp(t, [0.0, 0.45, 1.0], values)


def _brow_box(uv: np.ndarray, shape: tuple[int, int], iod: float) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the brows' landmarks' bounding box grown by 0.3 interoculars, in `shape`."""
    pts = uv[list(topology.RIGHT_BROW) + list(topology.LEFT_BROW)]
    m = 0.3 * iod
    y0, x0 = (int(np.floor(v)) for v in (pts[:, 1].min() - m, pts[:, 0].min() - m))
    y1, x1 = (int(np.ceil(v)) + 1 for v in (pts[:, 1].max() + m, pts[:, 0].max() + m))
    return max(0, y0), min(shape[0], y1), max(0, x0), min(shape[1], x1)


def brow_strokes(uv: np.ndarray, shape: tuple[int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, region) (h, w) float32 in [0, 1] over an image of `shape` whose landmarks are `uv`
    (N, 2): a brow drawn along each brow's landmark contours, and the brows' landmark outlines
    grown by `BROW_MARGIN` (soft-edged), where the photo's brows are painted out first.

    The brow: from `BROW_DROP` below its lower contour up by `BROW_WIDTH` (head, middle, tail),
    so that it arches with the contours and tapers to its tail; opaque by `BROW_OPACITY` (head,
    middle, tail; fading in over the head's first tenth) over its lower three fifths and by 0.8
    of that above (a brow's upper edge is sparser than its lower), its edges blurred by
    `BROW_SOFT` and its opacity streaked along the hairs' direction (from the head out and a
    little up; `BROW_HAIR` long, `BROW_GRAIN` deep; `seed`: the streaks' noise, fixed: the same
    photo gives the same brows)."""
    h, w = shape
    mid, d, up, iod = _eye_line(uv)
    axis = d / iod
    y0, y1, x0, x1 = _brow_box(uv, shape, iod)
    bh, bw = y1 - y0, x1 - x0
    alpha = np.zeros((h, w), np.float32)
    region = np.zeros((h, w), np.float32)
    if bh <= 0 or bw <= 0:
        return alpha, region
    offset = np.array([x0, y0], np.float64)
    box_alpha = np.zeros((bh, bw), np.float32)
    noise = np.random.default_rng(seed).standard_normal((bh, bw)).astype(np.float32)
    t = np.linspace(0.0, 1.0, 33)
    for brow in (topology.RIGHT_BROW, topology.LEFT_BROW):
        lower = _lower_brow(uv, brow, mid, axis, up) - offset
        bottom = _along(lower, t) - BROW_DROP * iod * up
        top = bottom + (_profile(t, BROW_WIDTH) * iod)[:, None] * up
        split = bottom + 0.6 * (top - bottom)
        tm = 0.5 * (t[1:] + t[:-1])
        # the head fades in over its first tenth (a brow's head is no cut edge)
        opacity = _profile(tm, BROW_OPACITY) * np.clip(tm / 0.1, 0.4, 1.0)
        one = np.zeros((bh, bw), np.float32)
        for i in range(len(t) - 1):
            for lo, hi, k in ((bottom, split, 1.0), (split, top, 0.8)):
                quad = np.array([lo[i], lo[i + 1], hi[i + 1], hi[i]])
                cv2.fillConvexPoly(one, np.round(quad * 16).astype(np.int32), float(k * opacity[i]),
                                   lineType=cv2.LINE_AA, shift=4)
        # the hairs: noise streaked from the head towards the tail, turned a little up
        out = lower[-1] - lower[0]
        direction = out / max(float(np.linalg.norm(out)), 1e-9) + 0.35 * up
        direction /= np.linalg.norm(direction)
        n = max(3, int(round(BROW_HAIR * iod)) | 1)
        kernel = np.zeros((n, n), np.float32)
        c = n // 2
        cv2.line(kernel, (int(round(c - direction[0] * c)), int(round(c - direction[1] * c))),
                 (int(round(c + direction[0] * c)), int(round(c + direction[1] * c))), 1.0, 1)
        streaks = cv2.filter2D(noise, -1, kernel / kernel.sum())
        streaks /= max(float(streaks.std()), 1e-6)
        one *= np.clip(1.0 + BROW_GRAIN * streaks, 0.0, None)
        box_alpha = np.maximum(box_alpha, one)
    sigma = BROW_SOFT * iod
    alpha[y0:y1, x0:x1] = np.clip(cv2.GaussianBlur(box_alpha, (0, 0), sigma), 0.0, 1.0)
    r = max(1, int(round(BROW_MARGIN * iod)))
    grown = cv2.dilate(brow_polygons(uv - offset, (bh, bw)),
                       cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    region[y0:y1, x0:x1] = cv2.GaussianBlur(grown.astype(np.float32), (0, 0), sigma)
    return alpha, region


def brow_colour(image: np.ndarray, uv: np.ndarray, dark: float = 10.0) -> np.ndarray:
    """(3,) float32: the colour of the brows in `image` (landmarks `uv`): the median of the
    darkest `dark` percent of the pixels inside both brows' landmark outlines (a fringe's
    lighter tips over them, and the skin between their hairs, drop out)."""
    px = image[brow_polygons(uv, (image.shape[0], image.shape[1])) > 0].reshape(-1, 3).astype(np.float32)
    if len(px) == 0:
        raise ValueError(f"brow_colour: the brows' outlines hold no pixel of the {image.shape[:2]} image; "
                         f"pass landmarks `uv` in that image's pixels")
    luma = px @ LUMA
    return np.median(px[luma <= np.percentile(luma, dark)], axis=0).astype(np.float32)


def _fill_from_around(image: np.ndarray, hole: np.ndarray, sigma: float, source: np.ndarray) -> np.ndarray:
    """`image` (h, w, 3) float32 with `hole` (h, w) weight in [0, 1] painted with the colour of
    the pixels around it where `source` (h, w) bool: at each pixel the nearest of their
    normalised blurs by `sigma`, 2, 4 and 8 × `sigma` px that holds enough of them (the finest
    where the hole's edge is near: the lid's skin below a brow meets the forehead's above it
    smoothly). Only the hole's bounding box (grown by 3 × the widest blur: `_fill_box`) is read,
    and the fill computed only over the hole's bounds (as over that box: `_finest_supported`)."""
    bounds = _bounds(hole > 0.0)
    if bounds is None:
        return image
    y0, y1, x0, x1 = _fill_box(bounds, sigma, hole.shape)
    box, wt = image[y0:y1, x0:x1], hole[y0:y1, x0:x1]
    src = ((wt < 0.02) & source[y0:y1, x0:x1]).astype(np.float32)
    if src.sum() < 1:
        return image
    # where the hole is 0 the pixels stay (times 1, plus the fill times 0): the fill over its bounds
    iy0, iy1, ix0, ix1 = inner = (bounds[0] - y0, bounds[1] - y0, bounds[2] - x0, bounds[3] - x0)
    fill = np.broadcast_to(box[src > 0].mean(0), (iy1 - iy0, ix1 - ix0, 3)).astype(np.float32)
    fill = _finest_supported(fill, box * src[..., None], src, (8 * sigma, 4 * sigma, 2 * sigma, sigma), inner)
    out = image.copy()
    part, w = box[iy0:iy1, ix0:ix1], wt[iy0:iy1, ix0:ix1, None]
    out[y0 + iy0:y0 + iy1, x0 + ix0:x0 + ix1] = part * (1.0 - w) + fill * w
    return out


def _fill_box(bounds: tuple[int, int, int, int], sigma: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the part of an image of `shape` that `_fill_from_around` reads for a hole
    whose bounding box is `bounds` and for `sigma`: that box grown by 3 × its widest blur (8 ×
    `sigma`), within the image."""
    return _grown(bounds, int(np.ceil(24 * sigma)) + 1, shape)


def fill_fringe(image: np.ndarray, profile, info: dict | None = None) -> np.ndarray:
    """`image` (the profile's photo, or that photo prepared for the swap) with a fringe over its
    forehead painted out with its own skin (`fringe_fill`); the same array when it wears none.
    `info`, when given, gets `skin_map`'s ("forehead_hair" and "skin_odds": `lift_hair_shade`
    takes them).

    Why: the swap keeps the photo's pixels that look like its skin and lets the driver's show
    where the photo has hair; a fringe's lighter strands read as skin, so they came in as brown
    patches torn across the driver's forehead, with her own skin between them (s1 on every
    driver). Painted out, the forehead is the identity's skin, whole. Measured at the swap
    crop's density (as the swap's skin map is), applied at the photo's.

    The brows are painted out too (their landmark outlines and `BROW_MARGIN` about them, with the
    skin about them: `_fill_from_around`) and drawn back (`brow_strokes`, in `brow_colour`): a
    fringe's tips hang down to MediaPipe's upper brow contour, so what the outlines held was the
    tips and a little brow, kept as it was a dark flat-topped block with a brown smear above it
    (s1 on every driver). The eyes, their lashes and liner (`BROW_EYES` about the openings) are
    not painted out. Between the brows, what is darker than the fill under its soft lower
    edge (the fringe's tips) is painted over whole (`_under_the_edge`): blended in by the edge's
    partial weight, it drew a bar from brow to brow. A photo that wears no fringe keeps its brows
    as they are."""
    rig, uv0, small, uv = _at_crop_density(image, profile)
    found = _fringe_weight(small, uv, rig, info)
    if found is None:
        return image
    weight, source = found
    h, w = image.shape[:2]
    if weight.shape != (h, w):
        weight = cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR)
    iod = _eye_line(uv0)[3]
    # the brows drawn back over the skin (a fringe's tips hid most of them: what lies inside their
    # landmark outlines is those tips and a little brow, a dark flat-topped block kept as it was)
    alpha, region = brow_strokes(uv0, (h, w))
    around = 0.015 * iod        # `_fill_from_around`'s blur about the brows
    # What the paint changes or reads, which is all that is computed (the rest of the photo is
    # kept as it is): the fill's weight and the reach of its edge's raise (`_under_the_edge`),
    # the brows' box (`brow_strokes`) and what `_fill_from_around` reads about them
    filled, brows = _bounds(weight > 0.0), _bounds(region > 0.0)
    part = _union(None if filled is None else _grown(filled, _reach(EDGE_SOFT * iod), (h, w)),
                  _brow_box(uv0, (h, w), iod), None if brows is None else _fill_box(brows, around, (h, w)))
    if part is None:
        return image.copy()
    y0, y1, x0, x1 = part
    px = small.astype(np.float32)
    sigma = FILL_SIGMA * _eye_line(uv)[3]
    if (h, w) != small.shape[:2]:
        # the colour over the texels that the bilinear upscale reads for the part
        at = _scaled_box(part, (h, w), small.shape[:2])
        texels = np.zeros_like(px)
        texels[at[0]:at[1], at[2]:at[3]] = _fill_colour(px, source, sigma, at)
        colour = cv2.resize(texels, (w, h), interpolation=cv2.INTER_LINEAR)[y0:y1, x0:x1]
    else:
        colour = _fill_colour(px, source, sigma, part)
    weight, photo = weight[y0:y1, x0:x1], image[y0:y1, x0:x1]
    r = max(1, int(round(BROW_EYES * iod)))
    eyes = cv2.dilate(eye_openings(uv0, (h, w)), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    # the eyes, their lashes and liner keep their pixels: the brows' grown outline, and the
    # edge's raise blurred onto the skin below it, reached the lash line of brows 0.07-0.09
    # interoculars above the lid (s9, s5) and s1's upper lid line (0.105)
    soft = BROW_SOFT * iod
    gy0, gy1, gx0, gx1 = _read_box(part, soft, (h, w))
    off_eyes = 1.0 - feathered(eyes[gy0:gy1, gx0:gx1], soft)[y0 - gy0:y1 - gy0, x0 - gx0:x1 - gx0]
    eyes = eyes[y0:y1, x0:x1]
    wt = weight + (_under_the_edge(weight, photo, colour, _brow_span(uv0, (h, w), part), iod) - weight) * off_eyes
    out = photo.astype(np.float32) * (1.0 - wt[..., None]) + colour * wt[..., None]
    region = region[y0:y1, x0:x1] * off_eyes
    # from the skin about the brows: not the eyes, their lashes and liner, nor what is much
    # darker than the skin there (the brow's own hairs that stick out of the margin)
    skin_like = (eyes == 0) & (out @ LUMA > 0.6 * (colour @ LUMA))
    out = _fill_from_around(out, region, around, skin_like)
    a = alpha[y0:y1, x0:x1, None]
    out = out * (1.0 - a) + brow_colour(image, uv0) * a
    painted = image.copy()
    painted[y0:y1, x0:x1] = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return painted


def _scaled_box(box: tuple[int, int, int, int], shape: tuple[int, ...],
                texels: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The part (y0, y1, x0, x1) of an image of shape `texels` that `cv2.resize` (bilinear) reads
    for `box` of its upscale to `shape` (a texel more on each side)."""
    y0, y1, x0, x1 = box
    ky, kx = texels[0] / shape[0], texels[1] / shape[1]

    def at(v: int, k: float) -> int:      # the texel that a pixel's bilinear lookup starts at
        return int(np.floor((v + 0.5) * k - 0.5))

    return (max(0, at(y0, ky) - 1), min(int(texels[0]), at(y1 - 1, ky) + 3),
            max(0, at(x0, kx) - 1), min(int(texels[1]), at(x1 - 1, kx) + 3))
