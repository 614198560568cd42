"""realtime.tiers.mouth.MouthCavity: the synthetic mouth interior (teeth, tongue, throat) drawn in
absolute face units on the mouth-fan pixels.

Most tests shade a synthetic mouth opening (two lip curves, sizes in interocular units `iod`)
so that sizes and positions are known exactly; the last ones go through `apply` on a G-buffer.
"""
from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from kernels.gbuffer import GBuffer
from realtime.tiers import mouth as M
from realtime.tiers.mouth import MouthCavity


@pytest.fixture(scope="module")
def cavity(astronaut_rgb, astronaut_landmarks):
    """The astronaut's cavity, drawn as for a sharp photo: the tests shade her mouth at up to
    five times her photo's scale, where her own blur (`photo_blur`) would soften every line."""
    return _sharp(MouthCavity(astronaut_rgb, astronaut_landmarks))


def _sharp(cavity):
    cavity.blur = 0.0
    return cavity


def _mask(iod: float, opening: float, width: float = 0.5, smile: float = 0.0) -> np.ndarray:
    """A mouth opening `opening` iod high at its centre, `width` iod wide: upper lip 35% above
    the mouth line, lower lip 65% below (a jaw drop); `smile` raises the corners."""
    w = int(round(width * iod)) + 4
    h = int(round((opening + 0.2) * iod)) + 4
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    u = (xs - (w - 1) / 2) / (width * iod / 2)
    inside = np.abs(u) < 1
    dome = np.sqrt(np.clip(1 - u * u, 0, 1))
    line = h * 0.4 + smile * 0.08 * iod * (1 - u * u)
    top = line - 0.35 * opening * iod * dome
    bottom = line + 0.65 * opening * iod * dome
    return inside & (ys >= top) & (ys <= bottom)


def _shade(cavity, mask, iod, tongue=0.0):
    """(H, W, 3) image: NaN outside the mask, the cavity's colours inside."""
    ys, xs = np.nonzero(mask)
    y0, x0 = ys.min(), xs.min()
    box = mask[y0:ys.max() + 1, x0:xs.max() + 1]
    col = cavity.shade(box, ys - y0, xs - x0, float(iod), tongue=tongue)
    img = np.full(mask.shape + (3,), np.nan, np.float32)
    img[ys, xs] = col
    return img


def _luma(img):
    return img.mean(-1)


def _centre_column(mask):
    xs = np.nonzero(mask.any(0))[0]
    return (xs[0] + xs[-1]) // 2


def _upper_band(img, mask, col, bright=120.0):
    """Length (px) of the bright run from the upper lip down, in column `col`."""
    rows = np.nonzero(mask[:, col])[0]
    run = 0
    for r in rows:
        if _luma(img)[r, col] <= bright:
            if run:
                break
            continue
        run += 1
    return run


def test_a_slightly_parted_mouth_is_mostly_dark(cavity):
    """At a small opening the upper teeth's edges show in the lip's shadow: mostly dark, no
    white bar, and the bright part of any column is at most a few pixels."""
    iod = 100.0
    mask = _mask(iod, 0.04)
    img = _shade(cavity, mask, iod)
    luma = _luma(img)[mask]
    assert mask.sum() > 50
    assert luma.mean() < 60
    assert (luma > 150).mean() == 0.0
    assert (luma < 60).mean() > 0.5
    assert max(_upper_band(img, mask, c, bright=90.0) for c in range(mask.shape[1])) <= 3


@pytest.mark.parametrize("iod", [80.0, 160.0])
def test_teeth_have_an_absolute_height(cavity, iod):
    """Upper teeth hang from under the upper lip at most a crown's length (a fraction of the
    interocular distance), however wide the mouth opens."""
    crown = max(M.UPPER_H) * iod
    bands = []
    for opening in (0.3, 0.45):
        mask = _mask(iod, opening)
        img = _shade(cavity, mask, iod)
        c = _centre_column(mask) + int(0.05 * iod)      # the middle of a central incisor
        bands.append(_upper_band(img, mask, c))
    assert all(0.6 * crown <= b <= crown + 1.5 for b in bands), bands
    assert abs(bands[0] - bands[1]) <= 1                  # wider open: the teeth do not grow


def test_teeth_scale_with_the_face(cavity):
    """Same mouth in face units, twice the pixels: teeth twice as tall."""
    bands = {}
    for iod in (80.0, 160.0):
        mask = _mask(iod, 0.35)
        img = _shade(cavity, mask, iod)
        bands[iod] = _upper_band(img, mask, _centre_column(mask) + int(0.05 * iod))
    assert bands[160.0] / bands[80.0] == pytest.approx(2.0, rel=0.15)


def test_teeth_are_individual_with_dark_gaps(cavity):
    """Along a row through the upper teeth, brightness dips between teeth: several gaps, one
    of them on the midline between the central incisors."""
    iod = 300.0
    mask = _mask(iod, 0.3)
    img = _shade(cavity, mask, iod)
    c = _centre_column(mask)
    top = np.nonzero(mask[:, c])[0][0]
    row = _luma(img)[top + int(0.06 * iod)]
    half = int(0.2 * iod)
    seg = row[c - half:c + half + 1]
    assert np.isfinite(seg).all()
    dips = [i for i in range(2, len(seg) - 2)
            if seg[i] <= seg[i - 2:i + 3].min() and seg[i] < 0.92 * seg[max(0, i - 12):i + 13].max()]
    assert len(dips) >= 4, dips
    incisor = int(0.047 * iod)                              # the centre of a central incisor
    assert row[c] < 0.85 * row[c + incisor]


def test_the_gaps_are_faint_along_the_teeth_and_dark_at_their_tips(cavity):
    """Real teeth touch along their body; a gap as dark from root to tip drew a clenched grin as
    a row of separate blocks (d14 #27). Down the midline gap, against the middle of the central
    incisor beside it: near the root only the tooth's own rounding shows, at the tip the gap."""
    iod = 300.0
    mask = _mask(iod, 0.3)
    luma = _luma(_shade(cavity, mask, iod))
    c = _centre_column(mask)
    incisor = int(0.047 * iod)
    top = np.nonzero(mask[:, c])[0][0]
    rows = [y for y in range(top, top + int(0.3 * iod)) if luma[y, c + incisor] > 150]   # on the tooth
    ratio = luma[rows, c] / luma[rows, c + incisor]
    assert ratio[0] > 0.8           # the rounded body's 0.85, hardly any gap
    assert ratio[-1] < 0.75 * ratio[0]


def test_teeth_darken_toward_the_corners_and_under_the_lip(cavity):
    """The last few percent of the half width are the dark buccal corridor; the upper lip
    shades the teeth under it."""
    iod = 200.0
    mask = _mask(iod, 0.3, width=0.6)
    img = _shade(cavity, mask, iod)
    luma = _luma(img)
    c = _centre_column(mask)
    half = 0.3 * iod
    top = np.nonzero(mask[:, c])[0][0]
    row = top + int(0.06 * iod)
    centre = np.nanmax(luma[row, c - 10:c + 11])
    side = np.nanmax(luma[:, int(c + 0.93 * half):int(c + 0.99 * half)])
    assert side < 0.6 * centre
    x = c + 14                                             # inside a central incisor
    lip = np.nonzero(mask[:, x])[0][0]
    assert luma[lip, x] < 0.7 * luma[lip + int(0.05 * iod), x]   # the lip's shadow on the teeth


def test_a_smiles_teeth_reach_towards_its_corners(cavity):
    """A smile's teeth stay lit most of the way to its corners and only its last tenth or so,
    the buccal corridor, is dark (TEETH_CORNER), though they turn from the light towards it
    (TEETH_TURN): on the self-drives (d0 #33, d14 #27, d19 #246) the drivers' teeth read bright
    out to 0.6-0.8 of the half width, where the output's fell off from a third of the way out
    into black wedges at the corners (at 0.8 of the half width 0.47 of the centre's light, now
    0.77). A smile by its width, and a grin that parts the lips without widening them (d14 #27),
    told by the driver's teeth: on the smile's mask the teeth share changes no pixel (its width
    makes it a smile already), so the grin has its own, at the rest width."""
    iod = 200.0
    for width, smile, teeth in ((0.6, 1.0, 0.0), (0.45, 0.0, M.GRIN[1])):
        mask = _mask(iod, 0.15, width=width, smile=smile)
        ys, xs = np.nonzero(mask)
        y0, x0 = ys.min(), xs.min()
        box = mask[y0:ys.max() + 1, x0:xs.max() + 1]
        img = np.full(mask.shape + (3,), np.nan, np.float32)
        img[ys, xs] = cavity.shade(box, ys - y0, xs - x0, iod, teeth)
        luma = _luma(img)
        c, half = _centre_column(mask), 0.5 * width * iod
        # the brightest pixel of the column at 0, 0.7, 0.8 and 0.96 of the half width out
        centre, turned, out, corner = (float(np.nanmax(luma[:, int(c + at * half)])) for at in (0.0, 0.7, 0.8, 0.96))
        assert out > 0.65 * centre, (width, out, centre)
        assert turned < centre, (width, turned, centre)
        assert corner < 0.4 * centre, (width, corner, centre)


def test_a_smiles_teeth_follow_its_arc_and_are_lit(cavity):
    """A smile lifts the lower lip at the sides: the upper teeth's tips follow it (most of the
    column is tooth, not a dark band under a centre-anchored curve) — a round mouth's sides,
    whose upper lip comes down, still cover them —, and teeth at a smile's
    opening are lit nearly as at a wide one (they stand at the front of the mouth)."""
    iod = 200.0
    mask = _mask(iod, 0.1, width=0.6, smile=2.0)
    img = _shade(cavity, mask, iod)
    x = int(_centre_column(mask) + 0.15 * iod)
    assert _upper_band(img, mask, x, bright=90.0) >= 0.75 * mask[:, x].sum()
    round_ = _mask(iod, 0.35, width=0.5)                  # a round mouth: its sides cover them
    x = int(_centre_column(round_) + 0.2 * iod)
    # (tooth, lit or not, against the throat's ~20: the covered share, whatever the teeth's light)
    assert (_luma(_shade(cavity, round_, iod))[round_[:, x], x] > 30).mean() < 0.25
    peak = {op: np.nanmax(_luma(_shade(cavity, _mask(iod, op), iod))) for op in (0.1, 0.3)}
    assert peak[0.1] >= 0.9 * peak[0.3], peak

def test_a_smile_shows_more_of_its_teeth_than_a_dropped_jaw(cavity):
    """The same opening, at the avatar's rest width (a jaw dropped, lips at rest) and wider (a
    smile: the lips draw back off the teeth): the dropped jaw's upper teeth show SHOW[1] of the
    opening over a dark gap; the smile's upper teeth fill most of it and the lower row the rest,
    so its teeth reach the lower lip."""
    iod, opening = 200.0, 0.15
    bands = {}
    for name, width in (("jaw", cavity.rest_width), ("smile", (1 + M.SMILE_WIDEN) * cavity.rest_width)):
        mask = _mask(iod, opening, width=width)
        img = _shade(cavity, mask, iod)
        bands[name] = _upper_band(img, mask, _centre_column(mask) + int(0.05 * iod), bright=150.0)
    jaw = M.UPPER_SHOW[1] * opening * iod
    # (the lit run: the lip's shadow at the top and a translucent tip take a pixel or two)
    assert 0.8 * jaw <= bands["jaw"] <= jaw + 1, bands
    assert bands["smile"] >= 0.8 * opening * iod and bands["smile"] > 1.3 * bands["jaw"], bands


def _lower_bright(cavity, iod, opening, width=None):
    """Share of bright pixels just above the lower lip, about the mouth's centre."""
    mask = _mask(iod, opening, width=cavity.rest_width if width is None else width)
    luma = _luma(_shade(cavity, mask, iod))
    c = _centre_column(mask)
    cols = range(c - int(0.06 * iod), c + int(0.06 * iod))
    near = [luma[np.nonzero(mask[:, x])[0][-1] - k, x] for x in cols for k in range(1, 4)]
    return np.mean(np.array(near) > 150)


def test_lower_teeth_when_wide_open_or_in_a_smile(cavity):
    """A jaw dropped a little with the lips at rest shows no lower teeth; wide open, or the same
    opening in a smile (the lips drawn back off both rows), it does."""
    iod = 150.0
    assert _lower_bright(cavity, iod, 0.15) == 0.0
    assert _lower_bright(cavity, iod, 0.45) > 0.5
    assert _lower_bright(cavity, iod, 0.15, (1 + M.SMILE_WIDEN) * cavity.rest_width) > 0.5


def test_a_grin_the_driver_shows_teeth_in_fills_the_opening_with_teeth(cavity):
    """A clenched grin parts the lips without widening them (d14 #27): by the lips alone a
    dropped jaw, whose lower lip shows a dark gap. When the driver's own mouth is mostly teeth
    (`teeth` over GRIN[1]) both rows are drawn meeting, in full light; a driver mouth with no
    teeth in it draws what it did."""
    iod = 150.0
    mask = _mask(iod, 0.15, width=cavity.rest_width)
    ys, xs = np.nonzero(mask)
    y0, x0 = ys.min(), xs.min()
    box = mask[y0:ys.max() + 1, x0:xs.max() + 1]

    def lower_bright(teeth):
        col = cavity.shade(box, ys - y0, xs - x0, iod, teeth)
        img = np.full(mask.shape + (3,), np.nan, np.float32)
        img[ys, xs] = col
        luma = _luma(img)
        c = _centre_column(mask)
        near = [luma[np.nonzero(mask[:, x])[0][-1] - k, x]
                for x in range(c - int(0.06 * iod), c + int(0.06 * iod)) for k in range(1, 4)]
        return np.mean(np.array(near) > 150), float(np.nanmax(luma))

    none, peak_none = lower_bright(0.0)
    grin, peak_grin = lower_bright(M.GRIN[1])
    assert none == 0.0 and (none, peak_none) == lower_bright(M.GRIN[0])
    assert grin > 0.5 and peak_grin > peak_none, (grin, peak_grin, peak_none)


def test_a_wide_grins_rows_meet_with_no_dark_band_between(cavity):
    """A grin parted wider than an upper and a lower crown (the astronaut on d0 #47: 0.23 iod,
    teeth 0.73): the lower row rises past its crown to the upper row's tips (GRIN_CROWNS), so
    an incisor's column is tooth from lip to lip, not two rows over a dark crescent."""
    iod, opening = 200.0, 0.23
    mask = _mask(iod, opening, width=cavity.rest_width)
    ys, xs = np.nonzero(mask)
    y0, x0 = ys.min(), xs.min()
    box = mask[y0:ys.max() + 1, x0:xs.max() + 1]
    img = np.full(mask.shape + (3,), np.nan, np.float32)
    img[ys, xs] = cavity.shade(box, ys - y0, xs - x0, iod, M.GRIN[1])
    x = _centre_column(mask) + int(0.045 * iod)              # mid central incisor
    rows = np.nonzero(mask[:, x])[0]
    luma = _luma(img)[rows, x]
    inner = luma[int(0.02 * iod):-int(0.02 * iod)]            # the lips' shadows aside
    assert opening > M.UPPER_H[0] + M.LOWER_H[0]
    assert inner.min() > 0.5 * inner.max(), (inner.min(), inner.max())


def test_a_tongue_low_in_the_mouth(cavity):
    iod = 300.0
    mask = _mask(iod, 0.4)
    img = _shade(cavity, mask, iod)
    c = _centre_column(mask)
    rows = np.nonzero(mask[:, c])[0]
    px = img[rows, c]
    red = (px[:, 0] > 60) & (px[:, 0] > 1.5 * px[:, 1])
    # the tongue above the lower teeth: (TONGUE_SHARE · 0.4 − ~0.05) iod
    assert red.sum() >= 0.04 * iod
    mid = 0.5 * (rows[0] + rows[-1])
    assert (rows[red] > mid).all()


def test_the_lower_lip_edge_is_not_the_tongue_top(cavity):
    """Next to the lower lip the tongue lies in a crease, well darker than the lip and than its own
    middle, and its top stays low: a tongue lit like the lip, flush against it and a third of the
    opening high is read as the lower lip by a tracker (a moustached face's open mouth read half
    shut, `TONGUE_SHARE`)."""
    iod = 300.0
    opening = 0.9 * M.LOWER_SHOW[0]             # the lower teeth still hidden
    mask = _mask(iod, opening)
    luma = _luma(_shade(cavity, mask, iod))
    c = _centre_column(mask)
    rows = np.nonzero(mask[:, c])[0]
    lip = float(cavity.colours["lip"].mean())
    # by the lip: a band of rows within 0.02 iod of its edge, a few columns either side
    cols = range(c - int(0.03 * iod), c + int(0.03 * iod) + 1)
    band = [luma[r, x] for x in cols for r in np.nonzero(mask[:, x])[0][-int(0.02 * iod):]]
    assert np.mean(band) < 0.35 * lip, (np.mean(band), lip)
    # the tongue: the run of rows up from the lower lip lit over half its brightest (the first
    # rows, in the crease, may be darker); its top at most 0.3 of the opening (between the
    # share drawn, 0.25, and the 0.35 that read as a lip)
    column = luma[rows, c][::-1]
    near = column[:int((1 - M.UPPER_SHOW[1]) * opening * iod)]      # below the upper teeth's tips
    assert column[0] < 0.7 * np.nanmax(near), (column[0], np.nanmax(near))
    lit = column > 0.5 * np.nanmax(near)
    s = int(np.argmax(lit))
    tongue_top = s + (int(np.argmin(lit[s:])) if not lit[s:].all() else len(lit) - s)
    assert tongue_top <= 0.3 * opening * iod, tongue_top


def test_the_throat_is_dark_and_graded(cavity):
    """Between the teeth and the tongue: dark (`THROAT`: a lighter one reads as a less open
    mouth to a tracker), darker away from the lips than next to them."""
    iod = 150.0
    mask = _mask(iod, 0.45, width=0.6)
    luma = _luma(_shade(cavity, mask, iod))
    c = _centre_column(mask)
    rows = np.nonzero(mask[:, c])[0]
    mid = int(rows[0] + 0.45 * (rows[-1] - rows[0]))
    assert luma[mid, c] < 25
    # at the mouth's side, next to the lip edge vs deeper in
    x = c + int(0.2 * iod)
    side_rows = np.nonzero(mask[:, x])[0]
    assert luma[side_rows[0] + int(0.005 * iod), x] >= luma[(side_rows[0] + side_rows[-1]) // 2, x]


def test_a_driver_showing_its_tongue_gets_one(cavity):
    """A driver whose open mouth shows its tongue (`FaceState.tongue`) gets a tongue well higher
    and lighter than the small dim one of a dark mouth, red, no brighter than the lips, in the
    lower half of the opening, and the lower teeth still stand between it and the lower lip (a
    tracker finds the lip at the lip; `TONGUE_OPENING`). Before, d10's tongue-filled mouths (#96-100) drew a dark
    hole between the avatar's teeth rows."""
    iod = 300.0
    mask = _mask(iod, 0.4)
    c = _centre_column(mask)
    rows = np.nonzero(mask[:, c])[0]
    lip = cavity.colours["lip"]
    tongues = []
    for tongue in (0.0, 0.45):
        px = _shade(cavity, mask, iod, tongue)[rows, c]
        luma = px.mean(1)
        throat = luma[int(0.45 * len(rows))]
        red = (px[:, 0] > 1.5 * px[:, 1]) & (luma > 1.8 * throat)
        tongues.append((red, px))
    (dim, _), (shown, px) = tongues
    assert shown.sum() >= 0.15 * len(rows) and shown.sum() >= 1.8 * dim.sum(), (dim.sum(), shown.sum())
    assert px[shown].mean(1).max() < lip.mean()
    assert (np.nonzero(shown)[0] > 0.5 * len(rows)).all()
    teeth = (px[:, 0] < 1.2 * px[:, 1]) & (px.mean(1) > 100)
    assert teeth[np.nonzero(shown)[0].max() + 1:].mean() > 0.8          # under it: the lower teeth
    # ... which stand in front of it from an opening of LOWER_SHOW[0]: below TONGUE_OPENING[0]
    # the tongue stays the small dim one whatever the driver shows
    assert M.TONGUE_OPENING[0] >= M.LOWER_SHOW[0]
    low = _mask(iod, M.TONGUE_OPENING[0])
    np.testing.assert_array_equal(_shade(cavity, low, iod, 0.45), _shade(cavity, low, iod, 0.0))


def test_puckered_lips_hide_the_teeth(cavity):
    iod = 120.0
    narrow = _mask(iod, 0.25, width=0.6 * cavity.rest_width)
    img = _shade(cavity, narrow, iod)
    luma = _luma(img)
    assert (luma[narrow] > 120).mean() == 0.0
    # the lips' inner surface rims a smaller dark hole
    c = _centre_column(narrow)
    rows = np.nonzero(narrow[:, c])[0]
    mid = (rows[0] + rows[-1]) // 2
    assert luma[rows[0], c] > 2 * luma[mid - 3:mid + 4, c].max()
    lip = cavity.colours["lip"]
    assert img[rows[0], c, 0] / img[rows[0], c, 1] == pytest.approx(lip[0] / lip[1], rel=0.05)


def test_colours_follow_the_avatar(astronaut_rgb, astronaut_landmarks, cavity):
    dim = MouthCavity((astronaut_rgb * 0.5).astype(np.uint8), astronaut_landmarks)
    assert dim.light < 0.75 * cavity.light
    iod = 120.0
    mask = _mask(iod, 0.3)
    a = _luma(_shade(cavity, mask, iod))[mask]
    b = _luma(_shade(dim, mask, iod))[mask]
    assert np.percentile(b, 95) < 0.8 * np.percentile(a, 95)
    assert (np.array([255.0] * 3) >= cavity.colours["teeth"]).all()


def test_the_teeth_take_the_skins_tint(astronaut_rgb, astronaut_landmarks, monkeypatch):
    """A warmer-lit photo gets warmer teeth; a greyscale one grey teeth (not the teeth's own
    yellow, `COLOURFUL`); the level (luminance) follows the light, not the tint. (For a photo
    whose own teeth do not show: the astronaut's are set aside here.)"""
    from realtime.tiers import mouth

    monkeypatch.setattr(mouth, "_photo_teeth", lambda *a: None)
    cavity = MouthCavity(astronaut_rgb, astronaut_landmarks)
    def tint(c):
        t = np.asarray(c.colours["teeth"], np.float64)
        return t / _luma(t[None, None])[0, 0]

    warm_rgb = np.clip(astronaut_rgb * np.array([1.15, 1.0, 0.8]), 0, 255).astype(np.uint8)
    warm = MouthCavity(warm_rgb, astronaut_landmarks)
    assert tint(warm)[0] / tint(warm)[2] > 1.1 * tint(cavity)[0] / tint(cavity)[2]
    grey_rgb = np.repeat(astronaut_rgb.mean(-1, keepdims=True), 3, -1).astype(np.uint8)
    grey = MouthCavity(grey_rgb, astronaut_landmarks)
    assert tint(grey) == pytest.approx(np.ones(3), abs=0.01)


def test_a_photo_that_shows_its_teeth_gives_them_their_colour(astronaut_rgb, astronaut_landmarks):
    """The astronaut smiles with her upper teeth showing: the drawn teeth take their colour (the
    brightest quarter between her lips), warmer when her photo is."""
    from realtime.face import topology

    cavity = MouthCavity(astronaut_rgb, astronaut_landmarks)
    assert cavity.photo_teeth
    teeth = np.asarray(cavity.colours["teeth"])
    assert 200 < _luma(teeth[None, None])[0, 0] < 250 and np.ptp(teeth) < 40
    warm_rgb = np.clip(astronaut_rgb * np.array([1.1, 1.0, 0.8]), 0, 255).astype(np.uint8)
    warm = np.asarray(MouthCavity(warm_rgb, astronaut_landmarks).colours["teeth"])
    assert warm[0] / warm[2] > 1.2 * teeth[0] / teeth[2]
    lm = np.array(astronaut_landmarks)                       # lips closed: no teeth to take
    for up, lo in zip(topology.INNER_LIP_UPPER[1:-1], topology.INNER_LIP_LOWER[1:-1]):
        lm[up] = lm[lo] = 0.5 * (lm[up] + lm[lo])
    assert not MouthCavity(astronaut_rgb, lm).photo_teeth


# ------------------------------------------------------------------------------------ apply
def _gbuf_and_rig(mask, iod_image, scale=1.0):
    """A G-buffer whose mouth-fan triangles cover `mask`, and the bits of a rig `apply` reads."""
    h, w = mask.shape
    gbuf = GBuffer.empty(h, w)
    gbuf.tri_id[:] = 3                                     # a face triangle everywhere
    gbuf.tri_id[mask] = 10                                 # the mouth fan: [10, 30)
    rig = SimpleNamespace(ranges={"mouth": (10, 30)},
                          crop_from_image=np.array([[scale, 0.0, 0.0], [0.0, scale, 0.0]]))
    return gbuf, rig


def test_apply_draws_on_the_mouth_pixels_only(cavity):
    iod_crop = 100.0
    mask = _mask(iod_crop, 0.3)
    gbuf, rig = _gbuf_and_rig(mask, cavity.iod_image, scale=iod_crop / cavity.iod_image)
    assert cavity.iod_px(rig) == pytest.approx(iod_crop)
    before = np.full(mask.shape + (3,), 200.0, np.float32)
    out = before.copy()
    cavity.apply(gbuf, rig, out, real=0.0)
    np.testing.assert_array_equal(out[~mask], before[~mask])
    expected = _shade(cavity, mask, iod_crop)
    np.testing.assert_allclose(out[mask], expected[mask], atol=1e-3)
    half = before.copy()
    cavity.apply(gbuf, rig, half, real=0.5)
    np.testing.assert_allclose(half[mask], 0.5 * before[mask] + 0.5 * expected[mask], atol=1e-3)
    untouched = before.copy()
    cavity.apply(gbuf, rig, untouched, real=1.0)
    np.testing.assert_array_equal(untouched, before)


def test_apply_with_no_mouth_pixels_is_a_no_op(cavity):
    mask = np.zeros((20, 30), bool)
    gbuf, rig = _gbuf_and_rig(mask, cavity.iod_image)
    out = np.full((20, 30, 3), 7.0, np.float32)
    cavity.apply(gbuf, rig, out, real=0.0)
    assert (out == 7.0).all()


# ------------------------------------------------------------------------- teeth's colour
def _no_photo_teeth(monkeypatch):
    """Set the astronaut's own teeth aside: the drawn teeth's colour is then the rule's."""
    monkeypatch.setattr(M, "_photo_teeth", lambda *a: None)


def test_the_teeth_level_follows_the_skins_luma(astronaut_rgb, astronaut_landmarks, monkeypatch):
    """A darker face gets darker teeth, less than in proportion (a darker skin is partly a darker
    surface); the level no longer stops at one ivory for every face lighter than a mid grey (d0's
    teeth were drawn far lighter than his own, L* 77 against 67)."""
    _no_photo_teeth(monkeypatch)
    lumas = {}
    for k in (0.75, 0.5):
        rgb = (astronaut_rgb * k).astype(np.uint8)
        lumas[k] = MouthCavity(rgb, astronaut_landmarks).teeth_luma
    assert lumas[0.5] < 0.9 * lumas[0.75]
    assert lumas[0.5] / lumas[0.75] == pytest.approx((0.5 / 0.75) ** M.TEETH_LEVEL[1], abs=0.03)
    assert M.teeth_level(125.0) > 125.0 and M.teeth_level(255.0) == 255.0
    assert M.teeth_level(60.0) > 1.5 * 60.0      # teeth stand out of a dark skin
    # a pale face's teeth are as light as keeps their tint: none of its channels clipped (a
    # clipped red drew d14's teeth green-grey)
    tints = []
    for k in (0.75, 1.1):
        teeth = MouthCavity(np.clip(astronaut_rgb * k, 0, 255).astype(np.uint8), astronaut_landmarks).colours["teeth"]
        assert teeth.max() <= 255.0
        tints.append(teeth[0] / teeth[2])
    assert tints[1] == pytest.approx(tints[0], rel=0.03)


def test_a_dark_skins_teeth_stay_teeth_bright(astronaut_rgb, astronaut_landmarks, monkeypatch):
    """A skin of luma 40-70 is a dark skin more than a dim light: its teeth, a pale surface, are
    drawn no darker than TEETH_LEVEL_MIN (the power alone drew a skin of luma 50's at 118, a
    grey-brown), and the level still rises with the skin above it."""
    _no_photo_teeth(monkeypatch)
    dark = (astronaut_rgb * 0.25).astype(np.uint8)          # her skin's luma about 50
    assert MouthCavity(dark, astronaut_landmarks).teeth_luma > 135.0
    for skin in (0.0, 40.0, 50.0, 60.0):
        assert M.teeth_level(skin) == pytest.approx(M.TEETH_LEVEL_MIN)
    assert M.teeth_level(100.0) > M.teeth_level(80.0) > M.TEETH_LEVEL_MIN


def _dark_skinned(rgb, lm, skin=(75.0, 45.0, 30.0), whites=(1.0, 1.0, 1.0)):
    """The astronaut with her skin (the whole photo but her eye openings) recoloured to `skin`
    (RGB, her cheeks' median) and her eyes' openings, the whites, scaled by `whites`."""
    import cv2

    from realtime.face import topology

    eyes = np.zeros(rgb.shape[:2], np.uint8)
    for upper, lower in ((topology.RIGHT_EYE_UPPER, topology.RIGHT_EYE_LOWER),
                         (topology.LEFT_EYE_UPPER, topology.LEFT_EYE_LOWER)):
        opening = np.concatenate([lm[list(upper), :2], lm[list(reversed(lower[1:-1])), :2]])
        cv2.fillPoly(eyes, [np.round(opening).astype(np.int32)], 1)
    eyes = eyes.astype(bool)
    cheeks = rgb[np.round(lm[[50, 280], 1]).astype(int), np.round(lm[[50, 280], 0]).astype(int)].mean(0)
    out = rgb * (np.array(skin) / cheeks)
    out[eyes] = rgb[eyes] * np.array(whites)
    return np.clip(out, 0, 255).astype(np.uint8)


def _spread(c):
    c = np.asarray(c.colours["teeth"], np.float64)
    return float(np.ptp(c) / (c @ M.LUMA))


def _lab(rgb):
    """CIELAB (L*, a*, b*) of one RGB colour (0..255)."""
    return cv2.cvtColor(np.asarray(rgb, np.float32).reshape(1, 1, 3) / 255.0, cv2.COLOR_RGB2LAB)[0, 0]


def _light_spread(c):
    """The spread of the light the drawn teeth are lit by (their colour over their own tint)."""
    c = np.asarray(c.colours["teeth_cast"], np.float64)
    return float(np.ptp(c) / (c @ M.LUMA))


def _eyes_shut(lm):
    """`lm` with each eye's lids met halfway: no white shows."""
    shut = np.array(lm)
    for upper, lower in ((M.topology.RIGHT_EYE_UPPER, M.topology.RIGHT_EYE_LOWER),
                         (M.topology.LEFT_EYE_UPPER, M.topology.LEFT_EYE_LOWER)):
        for up, lo in zip(upper[1:-1], lower[1:-1]):
            shut[up] = shut[lo] = 0.5 * (shut[up] + shut[lo])
    return shut


def _skin_rule(monkeypatch, photo, lm):
    """The cavity of `photo` by the skin's rule alone: no white read (eyes shut) and no cap in
    its place (`NO_WHITE_SPREAD`)."""
    with monkeypatch.context() as m:
        m.setattr(M, "NO_WHITE_SPREAD", np.inf)
        return MouthCavity(photo, _eyes_shut(lm))


def test_a_dark_skins_teeth_are_near_white(astronaut_rgb, astronaut_landmarks, monkeypatch):
    """A dark skin's colour is its melanin's, not the light's: under the light her eyes' whites
    show (near-white), the teeth are near-white, a little yellow, not the skin's tan (a skin of
    (75, 45, 30) drew (171, 130, 101))."""
    _no_photo_teeth(monkeypatch)
    lm = np.asarray(astronaut_landmarks)
    teeth = np.asarray(MouthCavity(_dark_skinned(astronaut_rgb, lm), lm).colours["teeth"])
    assert teeth[0] >= teeth[1] >= teeth[2]
    assert np.ptp(teeth) / float(teeth @ M.LUMA) < 0.2
    assert M.photo_white(_dark_skinned(astronaut_rgb, lm), lm, 52.0) is not None


def test_the_teeth_are_no_more_colourful_than_the_eyes_white(astronaut_rgb, astronaut_landmarks, monkeypatch):
    """The white of the eyes bounds the light's colour: warmer whites on the same dark skin give
    warmer teeth, up to the skin's rule (`TEETH_SKIN_TINT`) and no further."""
    _no_photo_teeth(monkeypatch)
    lm = np.asarray(astronaut_landmarks)
    white = MouthCavity(_dark_skinned(astronaut_rgb, lm), lm)
    warm = MouthCavity(_dark_skinned(astronaut_rgb, lm, whites=(1.0, 0.94, 0.88)), lm)
    warmer = MouthCavity(_dark_skinned(astronaut_rgb, lm, whites=(1.0, 0.6, 0.35)), lm)
    skin_rule = _skin_rule(monkeypatch, _dark_skinned(astronaut_rgb, lm), lm)
    assert _spread(white) < 0.8 * _spread(warm)
    assert _spread(warm) < 0.8 * _spread(skin_rule)
    assert _spread(warmer) == pytest.approx(_spread(skin_rule), abs=0.01)


def test_the_capped_light_is_as_colourful_as_the_white_in_the_skins_hue(astronaut_rgb, astronaut_landmarks,
                                                                         monkeypatch):
    """Where the white caps it, the light spreads exactly as much as the white does, with the skin's
    hue (its channels in the skin's order) and the skin's rule's luma."""
    _no_photo_teeth(monkeypatch)
    lm = np.asarray(astronaut_landmarks)
    photo = _dark_skinned(astronaut_rgb, lm, whites=(1.0, 0.94, 0.88))
    white = M.photo_white(photo, lm, 52.0)
    capped, skin_rule = MouthCavity(photo, lm), _skin_rule(monkeypatch, photo, lm)
    assert _light_spread(capped) == pytest.approx(float(np.ptp(white) / (white @ M.LUMA)), abs=1e-3)
    assert _light_spread(capped) < 0.8 * _light_spread(skin_rule)
    cast, rule = (np.asarray(c.colours["teeth_cast"]) for c in (capped, skin_rule))
    assert list(np.argsort(cast)) == list(np.argsort(rule))


def test_with_no_white_to_read_a_dark_skins_teeth_are_not_its_tan(astronaut_rgb, astronaut_landmarks,
                                                                   monkeypatch):
    """Where the photo shows no white (eyes shut), the light spreads no more than an eval driver's
    white does (`NO_WHITE_SPREAD`), in the skin's hue: a skin of (75, 45, 30) with its eyes shut got
    the skin's rule alone, light spread 0.45, tan teeth (CIELAB b* 20-22); a pale skin's light,
    which spreads less (hers 0.16), is its own. (A warm light skin's is capped too: s1's 0.30, s9's
    0.35 with their eyes shut.)"""
    _no_photo_teeth(monkeypatch)
    lm = np.asarray(astronaut_landmarks)
    photo = _dark_skinned(astronaut_rgb, lm)
    shut, skin_rule = MouthCavity(photo, _eyes_shut(lm)), _skin_rule(monkeypatch, photo, lm)
    assert _light_spread(skin_rule) > 0.4
    assert _light_spread(shut) == pytest.approx(M.NO_WHITE_SPREAD, abs=1e-3)
    cast, rule = (np.asarray(c.colours["teeth_cast"]) for c in (shut, skin_rule))
    assert list(np.argsort(cast)) == list(np.argsort(rule))
    assert _lab(shut.colours["teeth"])[2] < 14.0      # b* 12.2 (the skin's rule 21.4; a cap of 0.3, 15.0)
    pale = MouthCavity(astronaut_rgb, _eyes_shut(lm))       # her own light skin: 0.16
    assert _light_spread(pale) == pytest.approx(_light_spread(_skin_rule(monkeypatch, astronaut_rgb, lm)), abs=1e-6)
    assert _light_spread(pale) < M.NO_WHITE_SPREAD


def test_a_dark_skins_teeth_are_as_light_as_its_eyes_white_says(astronaut_rgb, astronaut_landmarks, monkeypatch):
    """Teeth and the white of the eyes are pale surfaces under one light: where the white shows,
    the teeth are at least WHITE_LEVEL × its luma, whatever the skin (a skin of (60, 40, 30) under
    her white of luma ~205 drew its teeth at TEETH_LEVEL_MIN, 139: grey); with no white, or where
    the skin's rule is lighter (every eval driver), the skin's rule as before."""
    _no_photo_teeth(monkeypatch)
    lm = np.asarray(astronaut_landmarks)
    photo = _dark_skinned(astronaut_rgb, lm, skin=(60.0, 40.0, 30.0))
    white = float(M.photo_white(photo, lm, 45.0) @ M.LUMA)
    assert white > 150.0
    cavity = MouthCavity(photo, lm)
    teeth = np.asarray(cavity.colours["teeth"])
    assert cavity.teeth_luma > 1.15 * white or teeth.max() >= 254.5   # 1.18 × (or as light as its tint keeps)
    assert cavity.teeth_luma > 1.3 * M.TEETH_LEVEL_MIN
    assert MouthCavity(photo, _eyes_shut(lm)).teeth_luma < 1.05 * M.TEETH_LEVEL_MIN
    assert M.teeth_level(50.0, 180.0) > 1.15 * 180.0
    assert M.teeth_level(50.0, 60.0) == M.teeth_level(50.0) == pytest.approx(M.TEETH_LEVEL_MIN)
    for skin, seen in ((154.0, 135.0), (211.0, 182.0), (126.0, 126.0)):    # d0, d14, d19's frame 0
        assert M.teeth_level(skin, seen) == M.teeth_level(skin)


def test_dark_eye_openings_are_not_a_white(astronaut_rgb, astronaut_landmarks, monkeypatch):
    """Eye openings darker than half the skin (lashes, a hat's shade) read no white: the skin's
    rule alone, not their grey."""
    _no_photo_teeth(monkeypatch)
    lm = np.asarray(astronaut_landmarks)
    photo = _dark_skinned(astronaut_rgb, lm, whites=(0.1, 0.1, 0.1))
    assert M.photo_white(photo, lm, 53.0) is None
    assert _light_spread(MouthCavity(photo, lm)) == pytest.approx(
        _light_spread(MouthCavity(photo, _eyes_shut(lm))), abs=1e-6)


def test_a_clipped_white_says_nothing_of_the_light(astronaut_rgb, astronaut_landmarks, monkeypatch):
    """An overexposed photo's whites are (255, 255, 255) whatever the light's colour: they do not
    cap the skin's rule (they drew her teeth a neutral ivory, light spread 0 against 0.16)."""
    _no_photo_teeth(monkeypatch)
    lm = np.asarray(astronaut_landmarks)
    cheeks = astronaut_rgb[np.round(lm[[50, 280], 1]).astype(int), np.round(lm[[50, 280], 0]).astype(int)]
    photo = _dark_skinned(astronaut_rgb, lm, skin=tuple(cheeks.mean(0)), whites=(1.5, 1.5, 1.5))
    assert M.photo_white(photo, lm, 150.0) is None
    assert _light_spread(MouthCavity(photo, lm)) == pytest.approx(
        _light_spread(MouthCavity(photo, _eyes_shut(lm))), abs=1e-6)
    assert _light_spread(MouthCavity(photo, lm)) > 0.1


def test_a_greyscale_photo_gets_grey_teeth_and_tongue(astronaut_rgb, astronaut_landmarks, monkeypatch):
    """Nothing the cavity makes up (the teeth's own yellow, each tooth's, the tongue's pink) is
    drawn into a photo with no colour: a grey photo's canines were yellow (b* 8) and its tongue
    pink. A colour photo keeps them (see the tests above)."""
    _no_photo_teeth(monkeypatch)
    import cv2

    grey = np.repeat(cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    iod = 300.0
    mask = _mask(iod, 0.5, width=0.7)
    img = _shade(_sharp(MouthCavity(grey, astronaut_landmarks)), mask, iod, tongue=1.0)[mask]
    assert np.ptp(img, axis=1).max() < 1.0
    assert M.colourfulness(np.array([200.0, 160.0, 140.0])) == 1.0


def _row_colours(monkeypatch, astronaut_rgb, astronaut_landmarks, iod=300.0):
    """The shaded upper teeth of a wide smile (RGB image, NaN outside), its mask, centre column
    and the row of the upper lip's edge there."""
    _no_photo_teeth(monkeypatch)
    cavity = _sharp(MouthCavity(astronaut_rgb, astronaut_landmarks))
    mask = _mask(iod, 0.3, width=0.7)
    img = _shade(cavity, mask, iod)
    c = _centre_column(mask)
    return img, mask, c, np.nonzero(mask[:, c])[0][0]


def _yellow(rgb):
    """Green over blue: the teeth's own yellow, whatever the light's cast (the same on all)."""
    rgb = np.asarray(rgb, np.float64)
    return rgb[..., 1] / rgb[..., 2]


def test_each_tooth_has_its_own_shade(monkeypatch, astronaut_rgb, astronaut_landmarks):
    """Natural teeth differ: the canines are yellower than the central incisors (the light's
    cast, a warm one here, is the same on both). One uniform colour drew d0's and d19's
    yellow, uneven teeth as a pale even bar."""
    iod = 300.0
    img, mask, c, top = _row_colours(monkeypatch, astronaut_rgb, astronaut_landmarks, iod)
    row = top + int(0.05 * iod)
    edges = M._edges(M.UPPER_W)
    def tooth(k):       # the middle of the k-th upper tooth from the midline, right side
        x = M.ARCH_R[0] * np.sin(0.5 * (edges[k] + edges[k + 1]) / M.ARCH_R[0])
        return img[row, c + int(round(x * iod))]
    incisor, canine = tooth(0), tooth(2)
    assert np.isfinite(incisor).all() and np.isfinite(canine).all()
    assert _yellow(canine) > 1.03 * _yellow(incisor)


def test_a_tooth_is_more_chromatic_at_the_gum_than_at_its_tip(monkeypatch, astronaut_rgb, astronaut_landmarks):
    """Down a central incisor: yellower at its cervical end (under the lip), less so at the
    translucent tip."""
    iod = 300.0
    img, mask, c, top = _row_colours(monkeypatch, astronaut_rgb, astronaut_landmarks, iod)
    x = c + int(0.047 * iod)
    rows = np.nonzero(mask[:, x])[0]
    rows = rows[:_upper_band(img, mask, x) + np.argmax(_luma(img[rows, x]) > 120.0)]
    rows = rows[_luma(img[rows, x]) > 120.0]                  # the upper incisor, root to tip
    assert len(rows) > 0.08 * iod
    yellow = _yellow(img[rows, x])
    assert yellow[2] > 1.02 * yellow[len(rows) // 2] > 1.02 * yellow[-2]


def test_two_teeth_meet_without_a_crease(monkeypatch, astronaut_rgb, astronaut_landmarks):
    """Near the root (where the gap between two teeth is faint) the rounded bodies meet in a
    smooth valley: a body shaded 1 − 0.15·across² met its neighbour in a V whose sides, a few
    levels a pixel, drew every boundary as a line (the fine grid on d14's grin)."""
    iod = 300.0
    img, mask, c, top = _row_colours(monkeypatch, astronaut_rgb, astronaut_landmarks, iod)
    luma = _luma(img)
    edges = M._edges(M.UPPER_W)
    x = c + int(round(M.ARCH_R[0] * np.sin(edges[1] / M.ARCH_R[0]) * iod))   # incisor | lateral
    row = top + int(0.03 * iod)
    near = luma[row, x + 2:x + 6]
    assert np.isfinite(near).all()
    assert np.abs(np.diff(near)).max() < 1.5


def test_photo_blur_reads_how_soft_the_photo_is(astronaut_rgb, astronaut_landmarks):
    """A photo blurred by a further sigma reads about the quadrature sum of its own and that one."""
    import cv2

    own = M.photo_blur(astronaut_rgb, astronaut_landmarks)
    assert 0.5 < own < 1.5
    for s in (1.5, 3.0):
        soft = M.photo_blur(cv2.GaussianBlur(astronaut_rgb, (0, 0), s), astronaut_landmarks)
        assert soft == pytest.approx(np.hypot(own, s), rel=0.25)


def test_a_soft_photo_gets_soft_gaps(astronaut_rgb, astronaut_landmarks):
    """The dark gap at the teeth's tips is no sharper than the photo: drawn 1 px wide into a soft
    webcam face (d14, blur 2 px) it was a fine dark grid the real teeth do not show. A softer
    photo's gap is shallower (and wider: it keeps about its darkness in all)."""
    import cv2

    iod = 120.0
    mask = _mask(iod, 0.3)
    c = _centre_column(mask)
    incisor = int(0.047 * iod)
    depth = {}
    for s in (0.0, 2.5):
        rgb = astronaut_rgb if s == 0 else cv2.GaussianBlur(astronaut_rgb, (0, 0), s)
        luma = _luma(_shade(MouthCavity(rgb, astronaut_landmarks), mask, iod))
        top = np.nonzero(mask[:, c])[0][0]
        row = top + int(np.nanargmax(luma[top:top + int(0.2 * iod), c + incisor]))   # the tooth's lightest
        depth[s] = 1 - luma[row, c - 1:c + 2].min() / luma[row, c + incisor]
    assert depth[2.5] < 0.7 * depth[0.0]


# `photo_white` on drawn eyes: two eye openings of known shape (landmarks of their contours and
# irises only), each pixel painted by where it lies in them, so that which pixels the white is
# read from, and so the white itself, is known exactly.
_EYE_WIDTH, _EYE_UP, _EYE_DOWN, _IRIS_R = 200.0, 45.0, 40.0, 22.0   # px: SCLERA_ERODE ⇒ 12 px, SCLERA_IRIS ⇒ 26.4
_EYE_MIDDLES = ((130.0, 60.0), (370.0, 60.0))                     # the right eye's, the left's (x, y)
_PHOTO = (120, 500)
_CLIPPED = (255, 255, 255)


def _drawn_eyes_landmarks() -> np.ndarray:
    """(478, 3) landmarks with both eyes' contours (corner to corner, the upper lid an arc _EYE_UP
    above the corners' line, the lower one _EYE_DOWN below it) and irises (centre in the eye's
    middle, ring points _IRIS_R from it); every other landmark at the origin."""
    lm = np.zeros((M.topology.N_LANDMARKS, 3))
    eyes = ((M.topology.RIGHT_EYE_UPPER, M.topology.RIGHT_EYE_LOWER, M.topology.RIGHT_IRIS),
            (M.topology.LEFT_EYE_UPPER, M.topology.LEFT_EYE_LOWER, M.topology.LEFT_IRIS))
    for (upper, lower, iris), (mx, my) in zip(eyes, _EYE_MIDDLES):
        t = np.linspace(0.0, 1.0, len(upper))
        x = mx + _EYE_WIDTH * (t - 0.5)
        lm[list(upper), 0], lm[list(upper), 1] = x, my - _EYE_UP * np.sin(np.pi * t)
        lm[list(lower), 0], lm[list(lower), 1] = x, my + _EYE_DOWN * np.sin(np.pi * t)
        lm[iris[0], :2] = mx, my
        for k, a in enumerate(np.linspace(0.0, 2.0 * np.pi, len(iris) - 1, endpoint=False)):
            lm[iris[1 + k], :2] = mx + _IRIS_R * np.cos(a), my + _IRIS_R * np.sin(a)
    return lm


def _eye_zones(lm, shape=_PHOTO):
    """Per eye (right, left), (H, W) bool masks of its opening's pixels: `lid`, those the erosion
    takes (within SCLERA_ERODE eye widths of the contour, r, taken by a round and a square brush
    of that radius alike); `iris`, those within SCLERA_IRIS iris radii of its centre; `core`, those
    neither brush takes (over r√2 + 0.5 px from the contour) and 0.5 px or more outside the
    iris's circle: the sclera the white is read from; `rim`, the core's pixels within 4 px of its
    border. The documented SCLERA_ERODE (0.06) and SCLERA_IRIS (1.2) are written out here, so
    that another value fails the tests that read these zones."""
    zones = []
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]]
    for (mx, my), (upper, lower) in zip(_EYE_MIDDLES, ((M.topology.RIGHT_EYE_UPPER, M.topology.RIGHT_EYE_LOWER),
                                                       (M.topology.LEFT_EYE_UPPER, M.topology.LEFT_EYE_LOWER))):
        inside = np.zeros(shape, np.uint8)
        cv2.fillPoly(inside, [np.round(lm[M.topology.opening_ring(upper, lower), :2]).astype(np.int32)], (1,))
        depth = cv2.distanceTransform(np.pad(inside, 1), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        r = round(0.06 * _EYE_WIDTH)
        from_iris = np.hypot(gx - mx, gy - my) - 1.2 * _IRIS_R
        lid = (inside > 0) & (depth <= r)
        iris = (inside > 0) & ~lid & (from_iris <= 0.0)
        core = (depth > r * np.sqrt(2.0) + 0.5) & (from_iris > 0.5)
        rim = core & ((depth < r * np.sqrt(2.0) + 4.5) | (from_iris < 4.5))
        zones.append({"lid": lid, "iris": iris, "core": core, "rim": rim})
    return zones


def test_the_white_is_read_from_both_eyes_sclera_clear_of_lids_and_iris(monkeypatch):
    """The white is the mean of the pixels inside both eyes' openings, clear of the lids by
    SCLERA_ERODE (0.06) eye widths and of the iris's centre by SCLERA_IRIS (1.2) iris radii (the
    SCLERA_BAND luma band open here: every pixel read counts). Each eye's sclera a different white,
    the rim of it (next to the lids and the iris) a third: the read is the pixel-weighted mean of
    both eyes' and the rim's, none of the lids' (a lash-brown) nor the iris's (a blue)."""
    monkeypatch.setattr(M, "SCLERA_BAND", (0.0, 100.0))
    lm = _drawn_eyes_landmarks()
    zones = _eye_zones(lm)
    photo = np.full(_PHOTO + (3,), _CLIPPED, np.uint8)        # clipped: not read wherever it is
    whites = (np.array([236.0, 214.0, 196.0]), np.array([204.0, 216.0, 238.0]))
    rim = np.array([222.0, 222.0, 206.0])
    total, n = np.zeros(3), 0
    for z, white in zip(zones, whites):
        photo[z["lid"]] = (150, 95, 80)
        photo[z["iris"]] = (70, 100, 150)
        photo[z["core"]] = white
        photo[z["rim"]] = rim
        deep = z["core"] & ~z["rim"]
        assert deep.sum() > 300 and z["rim"].sum() > 300
        total += deep.sum() * white + z["rim"].sum() * rim
        n += int(z["core"].sum())
    read = M.photo_white(photo, lm, 0.0)
    assert read is not None
    np.testing.assert_allclose(read, total / n, atol=0.05)


def test_the_white_is_the_lit_white_between_the_luma_percentiles():
    """Of the pixels read, the white is the mean of those between the 60th and the 95th luma
    percentiles (SCLERA_BAND): the lit white, not the lashes' and the lids' shade below it (up to
    three fifths of the pixels) nor a catchlight above it."""
    lm = _drawn_eyes_landmarks()
    zones = _eye_zones(lm)
    photo = np.full(_PHOTO + (3,), _CLIPPED, np.uint8)
    rng = np.random.default_rng(7)
    read = []
    for z in zones:
        n = int(z["core"].sum())
        kind = rng.choice(3, size=n, p=(0.5, 0.45, 0.05))        # shade and lashes, white, catchlight
        shade = np.outer(rng.uniform(0.15, 0.6, n), (210.0, 160.0, 140.0))
        white = np.outer(rng.uniform(0.78, 0.95, n), (250.0, 240.0, 226.0))
        catchlight = np.outer(rng.uniform(0.96, 0.99, n), (236.0, 244.0, 252.0))
        colours = np.round(np.choose(kind[:, None], (shade, white, catchlight))).astype(np.uint8)
        photo[z["core"]] = colours
        read.append(colours.astype(np.float64))
    pixels = np.concatenate(read)
    luma = pixels @ np.asarray(M.LUMA, np.float64)
    lo, hi = np.percentile(luma, (60.0, 95.0))
    expected = pixels[(luma >= lo) & (luma <= hi)].mean(0)
    white = M.photo_white(photo, lm, 0.0)
    assert white is not None
    np.testing.assert_allclose(white, expected, atol=0.05)
    # the band matters: all of them, or the 50th to the 100th, read another colour
    for band in ((0.0, 100.0), (50.0, 100.0), (60.0, 100.0), (70.0, 95.0)):
        a, b = np.percentile(luma, band)
        assert np.abs(pixels[(luma >= a) & (luma <= b)].mean(0) - expected).max() > 1.0, band


@pytest.mark.parametrize("right, left, reads", [(11, 0, False), (0, 11, False), (6, 5, False),
                                                (12, 0, True), (0, 12, True), (6, 6, True)])
def test_a_white_is_read_from_a_dozen_pixels_of_both_eyes_together(right, left, reads):
    """Fewer than SCLERA_PIXELS (12) pixels of white, both eyes' counted together, are a noise,
    not a white (None); twelve are, whichever eyes show them."""
    lm = _drawn_eyes_landmarks()
    photo = np.full(_PHOTO + (3,), _CLIPPED, np.uint8)
    white = (226, 214, 204)
    for z, k in zip(_eye_zones(lm), (right, left)):
        ys, xs = np.nonzero(z["core"] & ~z["rim"])
        photo[ys[:k], xs[:k]] = white
    read = M.photo_white(photo, lm, 0.0)
    assert (read is not None) == reads
    if reads:
        np.testing.assert_allclose(read, white, atol=1e-3)


def test_a_pixel_with_a_clipped_channel_is_not_read():
    """A pixel with any channel at SCLERA_CLIPPED (250) or above has lost its hue and is not read;
    one at 249 is."""
    lm = _drawn_eyes_landmarks()
    photo = np.full(_PHOTO + (3,), _CLIPPED, np.uint8)
    kept = (249, 236, 222)
    for z in _eye_zones(lm):
        ys, xs = np.nonzero(z["core"])
        photo[ys, xs] = kept
        photo[ys[0::3], xs[0::3]] = (250, 236, 222)
        photo[ys[1::3], xs[1::3]] = (236, 250, 222)
    np.testing.assert_allclose(M.photo_white(photo, lm, 0.0), kept, atol=1e-3)
    photo[photo == 249] = 250
    assert M.photo_white(photo, lm, 0.0) is None


def test_a_white_darker_than_half_the_skin_is_not_a_white():
    """A read under SCLERA_MIN_LUMA (0.5) of the skin's luma is None; at or above it, the white."""
    lm = _drawn_eyes_landmarks()
    photo = np.full(_PHOTO + (3,), _CLIPPED, np.uint8)
    white = np.array([180.0, 170.0, 160.0])
    for z in _eye_zones(lm):
        photo[z["core"]] = white
    luma = float(white @ M.LUMA)
    np.testing.assert_allclose(M.photo_white(photo, lm, 1.98 * luma), white, atol=1e-3)
    assert M.photo_white(photo, lm, 2.02 * luma) is None


def test_no_iris_landmarks_no_white():
    """Landmarks without the irises' (468 of them) give no white: the iris is not known to be
    left out."""
    lm = _drawn_eyes_landmarks()
    photo = np.full(_PHOTO + (3,), (226, 214, 204), np.uint8)
    assert M.photo_white(photo, lm, 0.0) is not None
    assert M.photo_white(photo, lm[:468], 0.0) is None
