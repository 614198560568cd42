"""realtime.swap.skin computes a fringe's paint only over the part of the photo it changes or
reads, bit for bit as over the whole photo: blurs over a box read only what their kernel
reaches (`_blur_in`), the fill's colour over a box is the whole colour's there, and
`fill_fringe` hands back what painting the whole photo gave (s1's start-up: 979 ms, most of it
full-size blurs of a 676 px texture and full-size arithmetic on her 1145 px photo)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.core.colour import LUMA
from realtime.mesh import rig as rig_mod
from realtime.swap import skin
from realtime.swap.crop import face_rig, nominal_affine
from realtime.swap.sockets import eye_openings, feathered

BOXES = [(40, 90, 30, 100), (0, 20, 0, 150), (100, 120, 140, 160), (0, 120, 0, 160), (60, 61, 80, 81)]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("sigma", [0.8, 3.0, 12.5, 36.9])
def test_a_blur_over_a_box_is_the_whole_images_blur_there(channels, sigma):
    """In the middle, at the borders and corners, and with a kernel wider than the image."""
    rng = np.random.default_rng(0)
    image = rng.random((120, 160, channels) if channels > 1 else (120, 160)).astype(np.float32) * 255
    whole = cv2.GaussianBlur(image, (0, 0), sigma)
    for y0, y1, x0, x1 in BOXES:
        assert np.array_equal(skin._blur_in(image, sigma, (y0, y1, x0, x1)), whole[y0:y1, x0:x1])


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("sigma", [0.2, 0.45])      # cv2's 3- and 5-tap kernels
@pytest.mark.parametrize("width", [41, 42])
def test_a_small_blur_over_a_box_at_the_right_edge_is_the_whole_images_blur_there(channels, sigma, width):
    """cv2's 3- and 5-tap row filters compute the last pixel of an odd-width row apart from the
    rest (1 ulp off): a box at the image's right edge, read as a crop whose width's parity was not
    the image's (every other box here), got its last column 1 ulp off the whole image's blur."""
    rng = np.random.default_rng(2)
    image = rng.random((40, width, channels) if channels > 1 else (40, width)).astype(np.float32) * 255
    whole = cv2.GaussianBlur(image, (0, 0), sigma)
    for x0 in range(width - 12, width):
        assert np.array_equal(skin._blur_in(image, sigma, (5, 35, x0, width)), whole[5:35, x0:]), x0


def _fill_source(shape, seed=0):
    """A photo-like (h, w, 3) float32 and a 0/1 skin source with holes, a few of them wide."""
    rng = np.random.default_rng(seed)
    px = cv2.GaussianBlur(rng.random(shape + (3,)).astype(np.float32) * 255, (0, 0), 3.0)
    source = (cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 6.0) > 0.5).astype(np.float32)
    source[20:70, 30:120] = 0.0
    return px, source


def test_the_fill_colour_over_a_box_is_the_whole_colour_there():
    px, source = _fill_source((120, 160))
    whole = skin._fill_colour(px, source, 20.0)
    assert whole.shape == (120, 160, 3)
    for y0, y1, x0, x1 in BOXES:
        assert np.array_equal(skin._fill_colour(px, source, 20.0, (y0, y1, x0, x1)), whole[y0:y1, x0:x1])


@pytest.mark.parametrize("width", [160, 161])
def test_the_fill_colour_over_a_box_at_the_right_edge_is_the_whole_colour_there(width):
    """With its finest blur (sigma / 16) a 5-tap one, as for a texture whose interocular is
    under 30 texels."""
    px, source = _fill_source((120, width))
    whole = skin._fill_colour(px, source, 6.0)
    for x0 in range(width - 30, width, 3):
        assert np.array_equal(skin._fill_colour(px, source, 6.0, (10, 110, x0, width)), whole[10:110, x0:]), x0


def test_the_quadratic_form_is_einsums_bit_for_bit():
    rng = np.random.default_rng(1)
    d = rng.normal(size=(40000, 3)) * 30.0      # a few chunks, the last one short
    cov = np.cov(d[:200].T) + np.eye(3)
    inv = np.linalg.inv(cov)
    assert np.array_equal(skin._mahalanobis2(d, inv), np.einsum("ij,jk,ik->i", d, inv, d))


def _whole_photo_paint(image, profile):
    """`fill_fringe` as it was: each step over the whole photo (and the whole texture)."""
    def finest(colour, px, source, sigmas):
        for s in sigmas:
            den = cv2.GaussianBlur(source, (0, 0), s)
            num = cv2.GaussianBlur(px * source[..., None], (0, 0), s)
            k = np.clip(den / skin.FILL_SUPPORT, 0.0, 1.0)[..., None]
            colour = num / np.maximum(den, 1e-6)[..., None] * k + colour * (1.0 - k)
        return colour

    def around(image, hole, sigma, source):
        ys, xs = np.nonzero(hole > 0.0)
        if len(ys) == 0:
            return image
        m = int(np.ceil(24 * sigma)) + 1
        y0, y1 = max(0, ys.min() - m), min(image.shape[0], ys.max() + m + 1)
        x0, x1 = max(0, xs.min() - m), min(image.shape[1], xs.max() + m + 1)
        box, wt = image[y0:y1, x0:x1], hole[y0:y1, x0:x1]
        src = ((wt < 0.02) & source[y0:y1, x0:x1]).astype(np.float32)
        if src.sum() < 1:
            return image
        fill = np.broadcast_to(box[src > 0].mean(0), box.shape).astype(np.float32)
        fill = finest(fill, box, src, (8 * sigma, 4 * sigma, 2 * sigma, sigma))
        out = image.copy()
        out[y0:y1, x0:x1] = box * (1.0 - wt[..., None]) + fill * wt[..., None]
        return out

    rig = face_rig(rig_mod.build(profile), nominal_affine(profile, int(profile.crop_size)))
    uv0 = np.ascontiguousarray(rig.attributes[:, :2])
    small, uv = rig.texture_at_crop_density(np.ascontiguousarray(image), uv0)
    small = np.ascontiguousarray(small)
    found = skin._fringe_weight(small, uv, rig)
    if found is None:
        return image
    weight, source = found
    sigma = skin.FILL_SIGMA * skin._eye_line(uv)[3]
    px = small.astype(np.float32)
    den = cv2.GaussianBlur(source, (0, 0), sigma)
    num = cv2.GaussianBlur(px * source[..., None], (0, 0), sigma)
    mean = (small.reshape(-1, 3).astype(np.float64)[source.ravel() > 0]).mean(0)
    colour = np.where((den < 1e-3)[..., None], mean.astype(np.float32), num / np.maximum(den, 1e-3)[..., None])
    colour = finest(colour, px, source, (sigma / 2, sigma / 4, sigma / 8, sigma / 16)).astype(np.float32)
    h, w = image.shape[:2]
    if weight.shape != (h, w):
        weight = cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR)
        colour = cv2.resize(colour, (w, h), interpolation=cv2.INTER_LINEAR)
    iod = skin._eye_line(uv0)[3]
    r = max(1, int(round(skin.BROW_EYES * iod)))
    eyes = cv2.dilate(eye_openings(uv0, (h, w)), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    off_eyes = 1.0 - feathered(eyes, skin.BROW_SOFT * iod)
    raised = skin._under_the_edge(weight, image, colour, skin._brow_span(uv0, (h, w)), iod)
    wt = weight + (raised - weight) * off_eyes
    out = image.astype(np.float32) * (1.0 - wt[..., None]) + colour * wt[..., None]
    alpha, region = skin.brow_strokes(uv0, (h, w))
    region *= off_eyes
    skin_like = (eyes == 0) & (out @ LUMA > 0.6 * (colour @ LUMA))
    out = around(out, region, 0.015 * iod, skin_like)
    a = alpha[..., None]
    out = out * (1.0 - a) + skin.brow_colour(image, uv0) * a
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_painting_a_fringe_over_its_part_gives_what_painting_the_whole_photo_gave(
        astronaut_rgb, astronaut_landmarks, monkeypatch, scale):
    """The astronaut's forehead taken for a fringe (any share of hair is one here), at her size
    and at twice it (s1's photo is about as dense: the texture is a downscale of the photo)."""
    from profiles.enroll import build_profile

    monkeypatch.setattr(skin, "FRINGE_COVER", -1.0)
    lm = np.array(astronaut_landmarks) * scale
    img = cv2.resize(np.ascontiguousarray(astronaut_rgb), None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    profile = build_profile(img, lm, name="fringed", source="test")
    painted = skin.fill_fringe(img, profile)
    assert (painted != img).any(-1).sum() > 1000          # it painted
    assert np.array_equal(painted, _whole_photo_paint(img, profile))
