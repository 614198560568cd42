"""realtime.swap.colour: Lab conversions, the normalised blur, and the colour transfer — a face
transferred onto itself is unchanged; another face takes the driver's colour and light."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.swap.colour import (
    ColourTransfer,
    gaussian_matrix,
    lab_to_srgb,
    lut_apply,
    normalised_blur,
    robust_weights,
    srgb_to_lab,
    toe_free_lab,
    transfer_colours,
    transfer_lut,
    transfer_matrix,
)
from realtime.swap.colour_numba import GREY_CHROMA, RED_KNEE, TO_XYZ

L = 16


def face_samples(seed=0, tint=(1.0, 1.0, 1.0), light=None):
    """(2L, 2L, 3) skin-like samples with texture, and a skin weight (an ellipse)."""
    rng = np.random.default_rng(seed)
    n = 2 * L
    yy, xx = np.mgrid[0:n, 0:n] / (n - 1)
    base = np.array([200.0, 150.0, 125.0]) * np.array(tint)
    img = base * (1.0 + 0.05 * rng.normal(size=(n, n, 1)))
    if light is not None:
        img = img * (light[0] + light[1] * xx)[..., None]
    w = (((xx - 0.5) / 0.4) ** 2 + ((yy - 0.5) / 0.45) ** 2 < 1.0).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.float32), w


def nodes(n):
    """(n, n, n, 3) float32 sRGB colours of a colour table's nodes: the identity table."""
    g = np.linspace(0.0, 255.0, n, dtype=np.float32)
    return np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1)


def test_lab_round_trip_and_reference_values():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(200, 3)).astype(np.float32)
    np.testing.assert_allclose(lab_to_srgb(srgb_to_lab(x)), x, atol=0.01)
    np.testing.assert_allclose(srgb_to_lab(np.array([[255.0, 255.0, 255.0]])), [[100, 0, 0]], atol=0.01)
    np.testing.assert_allclose(srgb_to_lab(np.array([[0.0, 0.0, 0.0]])), [[0, 0, 0]], atol=0.01)
    np.testing.assert_allclose(srgb_to_lab(np.array([[255.0, 0.0, 0.0]])), [[53.24, 80.09, 67.20]], atol=0.05)


def test_normalised_blur_fills_holes_and_keeps_constants():
    k = gaussian_matrix(L, 2.0)
    x = np.full((L, L, 3), 7.0, np.float32)
    w = np.zeros((L, L), np.float32)
    w[4:12, 4:12] = 1.0
    low, den = normalised_blur(k, x * w[..., None], w)
    np.testing.assert_allclose(low[den > 1e-3], 7.0, rtol=1e-5)
    assert den[0, 0] < den[8, 8]


def test_robust_weights_drop_dark_samples_and_keep_side_light():
    img, w = face_samples(light=(0.5, 1.0))           # half the face in shadow, smoothly
    hair = img.copy()
    hair[:8] *= 0.2                                   # a dark fringe over the top
    k = gaussian_matrix(L, 3.0)
    rw = robust_weights(hair, w, k)
    assert rw[:8][w[:8] > 0].mean() < 0.2             # the fringe is out
    inside = w > 0
    assert rw[8:][inside[8:]].mean() > 0.9            # the shadowed skin stays


@pytest.mark.parametrize("reference", [False, True], ids=["compiled", "array"])
def test_a_face_transferred_onto_itself_is_unchanged(reference):
    d, w = face_samples(1, light=(0.8, 0.4))
    ct = ColourTransfer(L, reference=reference)
    assert ct.compiled is not reference
    for _ in range(3):                                # the driver's memory does not drift
        lut, gain, low = ct(d, w, d, w)
        np.testing.assert_allclose(lut, nodes(lut.shape[0]), atol=0.01)      # the identity table
        np.testing.assert_allclose(lut_apply(lut, d), d, atol=0.01)
        np.testing.assert_allclose(gain, 1.0, atol=1e-4)


@pytest.mark.parametrize("reference", [False, True], ids=["compiled", "array"])
def test_another_face_takes_the_drivers_colour_and_light(reference):
    d, w = face_samples(2, tint=(1.0, 0.8, 0.7), light=(0.6, 0.6))   # warmer, lit from one side
    r, _ = face_samples(3, tint=(0.85, 1.0, 1.05))                    # paler, evenly lit
    ct = ColourTransfer(L, keep=0.0, reference=reference)
    lut, gain, _ = ct(d, w, r, w)
    recoloured = lut_apply(lut, r)
    inside = w > 0
    mean_d = d[inside].mean(0)
    assert np.abs(recoloured[inside].mean(0) - mean_d).max() < 0.1 * np.abs(r[inside].mean(0) - mean_d).max() + 3
    g = np.repeat(np.repeat(gain.mean(-1), 2, 0), 2, 1)
    left, right = g[:, :L][inside[:, :L]].mean(), g[:, L:][inside[:, L:]].mean()
    assert right > left * 1.1                          # the driver's lit side is lit


@pytest.mark.parametrize("keep", [0.0, 0.5])
def test_driver_memory(keep):
    d1, w = face_samples(4)
    d2 = d1 * 0.5
    ct = ColourTransfer(L, keep=keep)
    ct.driver(d1, w)
    low2 = ct.driver(d2, w)[0]
    fresh = ColourTransfer(L).driver(d2, w)[0]
    if keep == 0.0:
        np.testing.assert_allclose(low2, fresh, rtol=1e-5)
    else:
        assert (low2 > fresh * 1.2)[w[::2, ::2] > 0].all()   # between the two, nearer the old
    ct.reset()
    np.testing.assert_allclose(ct.driver(d2, w)[0], fresh, rtol=1e-5)


def test_compiled_transfer_matches_the_array_version(monkeypatch):
    """The compiled transfer (realtime.swap.colour_numba, which runs on every device: the colour
    statistics are a host step) against the array version (`reference=True`): a lit, tinted
    driver with a dark fringe and a render read as a strided view,
    over a few frames of the driver's memory. Each really runs its own path."""
    from realtime.swap import colour_numba

    calls = {"measure": 0, "transfer": 0}
    for name in calls:
        real = getattr(colour_numba, name)

        def counted(*args, _real=real, _name=name):
            calls[_name] += 1
            return _real(*args)
        monkeypatch.setattr(colour_numba, name, counted)
    d, w = face_samples(5, tint=(1.0, 0.85, 0.7), light=(0.5, 0.8))
    d[:6] *= 0.25                                      # hair: out of the statistics
    big, w_r = face_samples(6, tint=(0.8, 1.0, 1.1))
    wide = np.zeros((2 * L, 2 * L, 4), np.float32)
    wide[..., :3] = big
    r = wide[..., :3]                                  # not contiguous, as the render's samples
    compiled, array = ColourTransfer(L), ColourTransfer(L, reference=True)
    for t in range(3):
        dt = np.clip(d * (1.0 + 0.1 * t), 0, 255).astype(np.float32)
        calls.update(measure=0, transfer=0)
        got_all = compiled(dt, w, r, w_r)
        assert calls == {"measure": 2, "transfer": 1}      # the driver's and the render's samples
        want_all = array(dt, w, r, w_r)
        assert calls == {"measure": 2, "transfer": 1}      # the array version calls neither
        # the table to 0.002 of an sRGB level (float32 against float64 in the darks' steep gamma)
        for got, want, atol in zip(got_all, want_all, (2e-3, 2e-4, 2e-4)):
            assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=atol)


@pytest.mark.parametrize("reference", [False, True], ids=["compiled", "array"])
def test_an_over_exposed_driver_gives_a_finite_transfer(reference):
    """Skin clipped at 255 in red with its green spread out: its mean Lab maps above 255.5 in sRGB,
    where the Jacobian's ±0.5 steps both fell in the clip; singular, it made the transfer NaN
    (compiled) or raised (array), and the swapped face black (code review)."""
    rng = np.random.default_rng(7)
    n = 2 * L
    d = np.empty((n, n, 3), np.float32)
    d[..., 0] = 255.0
    d[..., 1] = np.clip(207.0 + 35.0 * rng.normal(size=(n, n)), 0, 255)
    d[..., 2] = 135.0
    _, w = face_samples(8)
    assert lab_to_srgb(srgb_to_lab(d[w > 0]).mean(0))[0] > 255.5     # the case the review found
    r, _ = face_samples(9)
    lut, gain, _ = ColourTransfer(L, keep=0.0, reference=reference)(d, w, r, w)
    assert np.isfinite(lut).all() and np.isfinite(gain).all()
    recoloured = np.clip(lut_apply(lut, r), 0, 255)[w > 0].mean(0)
    assert recoloured[0] > 230 and np.abs(recoloured - d[w > 0].mean(0)).max() < 30


@pytest.mark.parametrize("reference", [False, True], ids=["compiled", "array"])
def test_a_grey_driver_gives_a_grey_face(reference):
    """Before (stop 58): the colour's spread was damped to half at most, so a black-and-white
    camera (or one a filter made grey) got a face with half its colour: a cyan-tinged skin with
    pink cheeks and lips in a grey scene. A colourless driver's floor is none; a driver with a
    skin's colour keeps the floor of half (`GREY_CHROMA`), less where its skin is darker than
    the photo's (a dim room: its skin's chroma is lower with its lightness)."""
    d, w = face_samples(9)
    d = np.repeat(d.mean(-1, keepdims=True), 3, axis=-1)              # the driver in black and white
    r, _ = face_samples(10, tint=(1.0, 0.8, 0.75))
    r[::3, ::3] *= np.array([1.1, 0.8, 0.8], np.float32)               # rosy patches: colour the mean lacks
    ct = ColourTransfer(L, keep=0.0, reference=reference)
    lut, gain, _ = ct(d, w, r, w)
    out = np.clip(lut_apply(lut, r)[w > 0], 0, 255)
    lab = srgb_to_lab(out)
    assert np.abs(lab[:, 1:]).max() < 1.0, np.abs(lab[:, 1:]).max()
    spread = gain.max(-1) - gain.min(-1)                               # the gain is grey too
    assert spread.max() < 0.02, spread.max()
    # a skin-coloured driver with little spread: the colour is damped to half, no further
    skin = d * np.array([1.0, 0.8, 0.7], np.float32)
    flat = np.repeat(skin.mean((0, 1), keepdims=True), 2 * L, 0).repeat(2 * L, 1)
    # (measured on the plain skin: the rosy patches lie past `RED_KNEE`, whose colour is kept)
    plain = np.ones(w.shape, bool)
    plain[::3, ::3] = False
    lut, _, _ = ColourTransfer(L, keep=0.0, reference=reference)(flat + 0.01 * skin, w, r, w)
    ratio = chroma_spread_ratio(lut, r[(w > 0) & plain])
    assert abs(ratio - 0.5) < 0.05, ratio
    # the same driver in a dim room: a darker skin carries less chroma, and so does the floor
    # (with its lightness, and with its chroma under GREY_CHROMA: 6.9 here)
    dim = (flat + 0.01 * skin) * 0.35
    lut, _, _ = ColourTransfer(L, keep=0.0, reference=reference)(dim, w, r, w)
    lab_dim = srgb_to_lab(dim[w > 0]).mean(0)
    l_ratio = lab_dim[0] / srgb_to_lab(r[w > 0])[:, 0].mean()
    floor = 0.5 * l_ratio * min(np.hypot(lab_dim[1], lab_dim[2]) / GREY_CHROMA, 1.0)
    ratio = chroma_spread_ratio(lut, r[(w > 0) & plain])
    assert l_ratio < 0.8 and abs(ratio - floor) < 0.02, (ratio, floor, l_ratio)


def chroma_spread_ratio(lut, rgb):
    """How far the table moves colours apart in chroma, against how far apart they were: the
    colours (N, 3) sRGB taken to their mean lightness (Lab), where the transfer is Reinhard's
    (`ColourTransfer`: ab' − abD = S · (ab − abR)): Σ |ab' − mean'| / Σ |ab − mean|."""
    lab = srgb_to_lab(rgb)
    lab[:, 0] = lab[:, 0].mean()
    out = srgb_to_lab(lut_apply(lut, lab_to_srgb(lab)))
    return (np.linalg.norm(out[:, 1:] - out[:, 1:].mean(0), axis=1).sum()
            / np.linalg.norm(lab[:, 1:] - lab[:, 1:].mean(0), axis=1).sum())


def lab_skin(mean, spread, seed):
    """(2L, 2L, 3) sRGB samples of a skin drawn in Lab: `mean` + `spread` · N(0, 1) per channel."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(2 * L, 2 * L, 3)).astype(np.float32)
    return np.clip(lab_to_srgb(np.asarray(mean, np.float32) + np.asarray(spread, np.float32) * noise), 0, 255)


def varnished_and_pink():
    """(render, driver, weights): a yellow, varnished painting's skin (Lab mean (60, 5, 36.5), its
    spread mostly along b) and a pink-skinned driver ((50, 17.6, 13.6)): s9 <- d19's means."""
    _, w = face_samples(0)
    return lab_skin((60, 5, 36.5), (3, 1, 5), 1), lab_skin((50, 17.6, 13.6), (3, 2, 2), 2), w


def hue(lab):
    """Lab hue angles (degrees) of (..., 3) colours."""
    return np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))


@pytest.mark.parametrize("reference", [False, True], ids=["compiled", "array"])
def test_a_shadow_between_grey_and_the_skin_keeps_the_drivers_hue(reference):
    """Before: Reinhard's transfer moves each Lab axis on its own, by the driver's mean: the
    painting's shadows, less yellow than her varnished skin (between grey and its mean), came
    out less yellow than the pink driver's skin: magenta-ward (hue 16-31° against its 37°;
    the gain field then lit them into magenta cheeks). Now a shadow between grey and the
    photo's skin colour lands between grey and the driver's (on its hue, with less chroma)."""
    r, d, w = varnished_and_pink()
    lab_r, lab_d = srgb_to_lab(r[w > 0]).mean(0), srgb_to_lab(d[w > 0]).mean(0)
    lut, _, _ = ColourTransfer(L, keep=0.0, reference=reference)(d, w, r, w)
    for share in (0.3, 0.5, 0.7):                  # of the photo's mean chroma
        for lightness in (20.0, 28.0, 36.0):        # ℓ 0.47-0.68 of the skin's
            shadow = np.array([lightness, share * lab_r[1], share * lab_r[2]], np.float32)
            shadow[1:] *= (lightness + 16.0) / (lab_r[0] + 16.0)     # its chroma for its light
            out = srgb_to_lab(lut_apply(lut, lab_to_srgb(shadow[None])))[0]
            assert abs(hue(out) - hue(lab_d)) < 12, (share, lightness, out, lab_d)
            chroma = np.hypot(out[1], out[2]) / (out[0] + 16.0)
            assert chroma < np.hypot(lab_d[1], lab_d[2]) / (lab_d[0] + 16.0), (share, lightness, out)


@pytest.mark.parametrize("reference", [False, True], ids=["compiled", "array"])
def test_black_stays_black_and_a_shadow_keeps_its_colour(reference):
    """No constant shift: black maps to black, and the photo's skin colour in shadow (its light
    scaled down 2, 8 and 27 times) maps to the driver's skin colour in shadow (the same
    chromaticity: chroma over ℓ = L + 16, without Lab's toe)."""
    r, d, w = varnished_and_pink()
    lut, _, _ = ColourTransfer(L, keep=0.0, reference=reference)(d, w, r, w)
    np.testing.assert_allclose(lut_apply(lut, np.zeros((1, 3), np.float32)), 0.0, atol=1e-3)
    skin_r = lab_to_srgb(srgb_to_lab(r[w > 0]).mean(0)[None])
    skin_d = toe_free_lab(lab_to_srgb(srgb_to_lab(d[w > 0]).mean(0)[None]))[0]
    for dim in (1.0, 2.0, 8.0, 27.0):
        lab = toe_free_lab(lut_apply(lut, to_srgb(to_linear(skin_r) / dim)))[0]
        np.testing.assert_allclose(lab[1:] / lab[0], skin_d[1:] / skin_d[0], atol=0.03)


def to_linear(rgb):
    c = rgb / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def to_srgb(lin):
    return (255.0 * np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1.0 / 2.4) - 0.055)).astype(np.float32)



def test_the_colour_table_matches_the_exact_transfer_between_its_nodes():
    """The 17³ table (array-built and compiled) against the transfer computed at each colour, on
    20,000 skin-like colours (hue 20-90°, chroma up to 48, L 15-90): within a level or two.
    Review: the tables were held to each other, and to the exact values only at the nodes."""
    r, d, w = varnished_and_pink()
    ct = ColourTransfer(L, keep=0.0, reference=True)
    _, _, mu_r, sd_r = ct._measure(r, w)
    _, _, mu_d, sd_d = ct._measure(d, w)
    k, s_l, knee = transfer_matrix(mu_r, sd_r, mu_d, sd_d, *ct.ratio)
    ell_r = max(float(mu_r[0]) + 16.0, 1.0)
    rng = np.random.default_rng(0)
    n = 20_000
    chroma, angle = 40.0 * rng.uniform(0.0, 1.2, n), np.radians(rng.uniform(20.0, 90.0, n))
    lab = np.stack([rng.uniform(15.0, 90.0, n), chroma * np.cos(angle), chroma * np.sin(angle)], -1)
    rgb = np.clip(lab_to_srgb(lab.astype(np.float32)), 0.0, 255.0)
    exact = transfer_colours(k, s_l, ell_r, knee, rgb)
    # the colours on `RED_KNEE`'s ramp, where the transfer bends between two linear maps
    f = np.cbrt(np.maximum(to_linear(rgb) @ TO_XYZ.T, 0.0))
    red = (500.0 * (f[:, 0] - f[:, 1]) - 116.0 * f[:, 1] * knee[0]) / knee[1]
    ramp = (red > RED_KNEE[0] - 1.5) & (red < RED_KNEE[1] + 1.5)     # and a table cell either side
    assert 0.05 < ramp.mean() < 0.7, ramp.mean()
    for table in (transfer_lut(k, s_l, ell_r, knee), ColourTransfer(L, keep=0.0)(d, w, r, w)[0]):
        err = np.abs(lut_apply(table, rgb) - exact).max(-1)
        off = err[~ramp]
        assert np.percentile(off, 99) < 1.5 and off.max() < 4.0, (np.percentile(off, 99), off.max())
        # on the ramp within a few levels (smooth: no banding); 2 a* wide there, it was 15
        assert np.percentile(err[ramp], 99) < 6.0 and err.max() < 10.0, (np.percentile(err[ramp], 99), err.max())


@pytest.mark.parametrize("reference", [False, True], ids=["compiled", "array"])
def test_lips_keep_their_red_where_the_skins_colour_is_damped(reference):
    """Before (visual audit, stop 66): Reinhard's chroma ratio is the skins' spread, so onto a
    driver whose skin has little colour (d14: a* σ 1.4 against s1's 6.4) it took the lips' red
    down with the skin's: s1's coral lips came out pale brown, s5's hardly there. A colour
    redder than the photo's skin by more than `RED_KNEE[1]` of its a* spread keeps its offset
    from the skin (the skin's own spread is still damped to the floor)."""
    _, w = face_samples(0)
    r = lab_skin((64, 26, 22), (4, 6.4, 4.8), 11)            # s1's skin: rosy, with colour spread
    d = lab_skin((78, 9.6, 11.4), (3, 1.4, 1.4), 12)          # d14's: pale, hardly any
    lips = np.array([[49.0, 43.0 + 0.3 * 26, 29.0]], np.float32)   # well past the knee (≈ 5 σ)
    ct = ColourTransfer(L, keep=0.0, reference=reference)
    lut, _, _ = ct(d, w, r, w)
    _, _, mu_r, sd_r = ct._measure(r, w)
    _, _, mu_d, _ = ct._measure(d, w)
    ell = lambda lab: lab[..., 0] + 16.0                      # noqa: E731
    out = srgb_to_lab(lut_apply(lut, lab_to_srgb(lips)))[0]
    skin_at = lambda mu, lab: ell(lab) / (mu[0] + 16.0) * mu[1:]   # noqa: E731 - the skin's ab at lab's light
    kept = (out[1:] - skin_at(mu_d, out)) / (lips[0, 1:] - skin_at(mu_r, lips[0]))
    assert np.all(np.abs(kept - 1.0) < 0.1), kept             # the lips' offset, kept
    assert chroma_spread_ratio(lut, r[w > 0]) < 0.6           # the skin's spread, damped


def painting_and_warm_driver():
    """(render, driver, weights): a painting's pale skin (Lab mean (68, 13.2, 19.9): C* 24 at 56°,
    a* and b* spreads 2.5 and 2.1) and a driver with less chroma whose a* varies more than its b*
    ((52.7, 11, 8.9): C* 14 at 39°, spreads 3.2 and 1.5): s0 <- d11's means and spreads."""
    _, w = face_samples(0)
    return lab_skin((68, 13.2, 19.9), (10, 2.5, 2.1), 21), lab_skin((52.7, 11.0, 8.9), (9.3, 3.2, 1.5), 22), w


@pytest.mark.parametrize("reference", [False, True], ids=["compiled", "array"])
def test_a_colour_paler_than_the_skin_stays_on_the_drivers_side_of_grey(reference):
    """Before: Reinhard's per-axis ratios (here 1.2 on a*, 0.69 on b*: the skins' spreads) took
    the painting's skin hue onto more than the driver's chroma, so the render's grey went past
    grey (C* 7 at 225°: cyan) and a colour between grey and the painting's skin — its pale
    forehead highlight (L* 80, a* 7, b* 16: short of the skin's chroma at its lightness) — came
    out grey-cyan beside the driver's warm skin. Now a colour a share of the way from grey to the
    render's skin (at its lightness) lands on the driver's side of grey, that share of the way
    to the driver's skin (`colour.not_past_grey`)."""
    r, d, w = painting_and_warm_driver()
    ct = ColourTransfer(L, keep=0.0, reference=reference)
    lut, _, _ = ct(d, w, r, w)
    _, _, mu_r, _ = ct._measure(r, w)
    _, _, mu_d, _ = ct._measure(d, w)
    chroma_d = np.hypot(mu_d[1], mu_d[2])
    u = mu_d[1:] / chroma_d
    for share in (0.0, 0.25, 0.5, 0.75):
        for lightness in (55.0, 68.0, 80.0, 90.0):
            colour = np.array([lightness, *(share * (lightness + 16.0) / (mu_r[0] + 16.0) * mu_r[1:])], np.float32)
            out = srgb_to_lab(lut_apply(lut, lab_to_srgb(colour[None])))[0]
            skin_d = chroma_d * (out[0] + 16.0) / (mu_d[0] + 16.0)       # the driver's chroma at out's light
            assert out[1:] @ u > share * skin_d - 1.0, (share, lightness, out, skin_d)
    forehead = np.array([[80.0, 7.0, 16.3]], np.float32)
    out = srgb_to_lab(lut_apply(lut, lab_to_srgb(forehead)))[0]
    skin_d = chroma_d * (out[0] + 16.0) / (mu_d[0] + 16.0)
    assert np.hypot(out[1], out[2]) > 0.45 * skin_d and abs(hue(out) - hue(mu_d)) < 20.0, (out, mu_d)


def test_the_compiled_transfer_matrix_matches_the_array_one_where_grey_is_held():
    """`colour_numba._transfer_matrix` against `colour.transfer_matrix` value for value on skins
    whose maps `not_past_grey` changes (s0 <- d11's and <- d0's means and spreads), and on one at
    the colour's floor, where it leaves them."""
    from realtime.swap import colour_numba
    from realtime.swap.colour import not_past_grey

    ratio = ColourTransfer(L).ratio
    mu_r, sd_r = np.array([68.0, 13.3, 19.8]), np.array([10.9, 2.54, 2.17])
    cases = (((52.7, 11.0, 8.9), (9.3, 3.19, 1.5), True), ((61.0, 10.5, 13.5), (9.0, 2.5, 2.9), True),
             ((70.0, 5.0, 5.0), (9.0, 0.5, 0.5), False))     # C* 7 at the floor (0.35): kept
    for mu_d, sd_d, changed in cases:
        mu_d, sd_d = np.array(mu_d), np.array(sd_d)
        floor = ratio[0][1] * min(np.hypot(*mu_d[1:]) / GREY_CHROMA, 1.0) * min(mu_d[0] / mu_r[0], 1.0)
        s2 = np.diag(np.clip(sd_d[1:] / sd_r[1:], floor, ratio[1][1:]))     # the damped lit map's
        assert bool(np.abs(not_past_grey(s2, mu_r[1:], mu_d[1:], floor) - s2).max() > 0.05) == changed
        want = transfer_matrix(mu_r, sd_r, mu_d, sd_d, *ratio)
        got = colour_numba._transfer_matrix(mu_r, sd_r, mu_d, sd_d, *ratio)
        for g, w_ in zip(got, want):
            np.testing.assert_allclose(np.asarray(g, np.float32), w_, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compiled", [False, True], ids=["array", "compiled"])
def test_a_nearly_grey_drivers_hue_noise_does_not_swing_the_face(compiled):
    """Review of `not_past_grey`: its direction is the driver's hue, a unit vector however little
    chroma there is, so on a driver whose skin is nearly grey (C* 0.3) but still varies in colour
    the painting's forehead swung over 8.9 a*b* units as that (noise) hue went round — a flicker
    from frame to frame (0.7 before the correction). The correction fades out under
    `GREY_CHROMA`: the swing is as small as without it."""
    from realtime.swap import colour_numba

    ratio = ColourTransfer(L).ratio
    mu_r, sd_r = np.array([68.0, 13.3, 19.8]), np.array([10.9, 2.54, 2.17])
    forehead = lab_to_srgb(np.array([[80.0, 7.0, 16.3]], np.float32))
    outs = []
    for angle in np.radians(np.arange(0.0, 360.0, 15.0)):
        mu_d, sd_d = np.array([52.7, 0.3 * np.cos(angle), 0.3 * np.sin(angle)]), np.array([9.3, 3.2, 1.5])
        matrix = colour_numba._transfer_matrix if compiled else transfer_matrix
        k, s_l, knee = (np.asarray(v, np.float32) for v in matrix(mu_r, sd_r, mu_d, sd_d, *ratio))
        outs.append(srgb_to_lab(transfer_colours(k, s_l, np.float32(mu_r[0] + 16.0), knee, forehead))[0, 1:])
    outs = np.array(outs)
    swing = np.linalg.norm(outs[:, None] - outs[None], axis=-1).max()
    assert swing < 1.5, swing
