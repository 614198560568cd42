"""The invisible provenance mark: strength, size independence, robustness, keys and payloads."""
from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from realtime.image.mark import (
    CANON,
    CODED_BITS,
    ENGINE_KEY,
    GRID,
    PILOT_CELLS,
    T_FLAT,
    Z_FOUND,
    MarkKey,
    MarkPattern,
    _half_canon_luma,
    canonical_luma,
    cell_stats,
    detect,
    masking_amplitude,
    masking_from_luma,
    pattern,
    pattern_from_bits,
)
from realtime.image.payload import Payload, conv_encode, payload_bits

PAYLOAD = Payload(engine=1, mode="reenact", fingerprint=0x3C5A96)


def scene(w, h, seed=0):
    """A picture with texture, edges, flat areas and saturated white and black."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    img = 110 + 60 * np.sin(7 * x + 3 * y)[..., None] + rng.normal(0, 12, (h, w, 3))
    img[: h // 5] = 255
    img[-h // 8:, : w // 3] = 0
    cv2.circle(img, (w // 2, h // 2), min(w, h) // 4, (200, 150, 120), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def apply(img, mark):
    return np.clip(img.astype(np.int16) + mark[..., None], 0, 255).astype(np.uint8)


def read(img, key=ENGINE_KEY):
    return detect(*cell_stats(canonical_luma(img)), key=key)


@pytest.mark.parametrize("size", [(640, 480), (640, 640), (512, 512), (480, 480), (375, 500), (1280, 720),
                                  (256, 256), (128, 96), (192, 384)])
def test_the_mark_is_faint(size):
    """≥ 42 dB PSNR on any frame: |clip(x + d) − x| ≤ |d|, so the pattern's own RMS bounds it; at
    sizes whose pixels sample the cell shape at its peaks (2 or 4 pixels per cell) too."""
    m = pattern(PAYLOAD, *size).astype(np.float64)
    assert m.shape == size[::-1] and np.abs(m).max() <= 4
    assert 20 * np.log10(255 / np.sqrt(np.mean(m ** 2))) >= 42.75
    assert abs(m.mean()) < 0.05  # no brightness shift


def test_the_layout_and_the_pattern_are_pinned():
    """Videos marked today must stay readable: the key's layout and the pattern's bits are fixed
    (SHAKE-256 of the key, never numpy's generators, whose streams may change)."""
    k = MarkKey()
    assert len(k.pilot) == PILOT_CELLS and len(np.intersect1d(k.pilot, k.payload_cells)) == 0
    counts = np.bincount(k.bit_of_cell[k.payload_cells], minlength=CODED_BITS)
    assert counts.min() >= 18 and counts.max() <= 19 and k.chips.shape == (GRID * GRID,)
    digest = hashlib.sha256(pattern(PAYLOAD, 64, 48).tobytes()).hexdigest()
    assert digest[:16] == "e80232b4d18d0bb7", digest


@pytest.mark.parametrize("size", [(640, 480), (512, 512), (480, 480), (375, 500)])
def test_found_with_its_payload_at_any_size(size):
    img = apply(scene(*size), pattern(PAYLOAD, *size))
    d = read(img)
    assert d.found and d.payload == PAYLOAD and d.z > 3 * Z_FOUND


def test_found_after_resize_compression_and_brightness():
    """A frame goes through what a call does to it: a different size and aspect, JPEG, +10 %."""
    img = apply(scene(640, 640), pattern(PAYLOAD, 640, 640))
    small = cv2.resize(img, (320, 240), interpolation=cv2.INTER_AREA)
    ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    back = cv2.cvtColor(cv2.imdecode(jpg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    bright = np.clip(back.astype(np.float32) * 1.1, 0, 255).astype(np.uint8)
    d = read(bright)
    assert d.found and d.payload == PAYLOAD


def test_a_frame_without_the_mark_is_not_found():
    d = read(scene(640, 480))
    assert not d.pattern_present and not d.found and abs(d.z) < 4


def test_a_mark_with_another_key_is_not_found():
    img = apply(scene(640, 480), pattern(PAYLOAD, 640, 480, key=b"someone else's key"))
    d = read(img)
    assert not d.found and abs(d.z) < 4
    assert read(img, key=b"someone else's key").found  # ... which that key reads


def test_a_tampered_payload_is_refused():
    """The pilot is there, but the payload's bits were changed without its CRC: not found, and
    the tampered payload is not reported."""
    bits = payload_bits(PAYLOAD)
    bits[10] ^= 1  # a fingerprint bit
    img = apply(scene(640, 480), pattern_from_bits(conv_encode(bits), 640, 480))
    d = read(img)
    assert d.pattern_present and d.payload is None and not d.found


def test_the_pilot_statistic_is_calibrated():
    """Without the mark z behaves like N(0, 1) whatever the picture (a Rademacher sum over the
    key's chips): the 6-sigma threshold is a real bound."""
    rng = np.random.default_rng(11)
    zs = []
    for i in range(120):
        w, h = [(640, 480), (320, 240), (500, 375)][i % 3]
        if i % 2:
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        else:
            img = scene(w, h, seed=i)
            img = np.roll(img, rng.integers(0, 50, 2), axis=(0, 1))
        zs.append(read(img).z)
    zs = np.array(zs)
    assert abs(zs.mean()) < 0.4 and 0.6 < zs.std() < 1.4 and zs.max() < Z_FOUND


def test_pooling_frames_adds_up():
    """Where fresh noise, not the picture, hides the mark, a window of frames sees more."""
    mark = pattern(PAYLOAD, 640, 480)
    rng = np.random.default_rng(5)
    stats = [cell_stats(canonical_luma(np.clip(128.0 + mark[..., None] + rng.normal(0, 120, (480, 640, 3)),
                                               0, 255).astype(np.uint8))) for _ in range(9)]
    one = detect(*stats[0])
    pooled = detect(sum(s[0] for s in stats), sum(s[1] for s in stats))
    assert one.z < Z_FOUND < pooled.z and pooled.z > 2 * one.z  # sqrt(9) = 3 while z << sqrt(1024)


def test_the_amplitude_follows_the_texture():
    """Shaped to the picture: T_FLAT (a dithered ±1, a rare 2) on a flat area, where a fine pattern would
    show, more on a textured one (hair, fabric: texture at the pattern's own scale), which hides
    it; the RMS bound holds; still read back."""
    rng = np.random.default_rng(3)
    img = np.full((480, 640, 3), 140.0)
    tex = cv2.GaussianBlur(rng.normal(0, 1, (480, 320)), (0, 0), 2.0)
    img[:, 320:] += (18 / tex.std()) * tex[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    a = masking_amplitude(img)
    assert a.shape == (256, 256) and a.dtype == np.float32 and a.min() == pytest.approx(T_FLAT)
    m = pattern(PAYLOAD, 640, 480, amplitude=a).astype(np.float64)
    assert np.sqrt(np.mean(m ** 2)) <= 1.85 and np.abs(m).max() <= 8
    flat, textured = m[:, :300], m[:, 340:]
    assert np.abs(flat).max() <= 2 and np.abs(flat).mean() < 0.6 and (np.abs(flat) >= 2).mean() < 0.03
    assert np.abs(textured).mean() > 3 * np.abs(flat).mean()
    d = read(apply(img, m.astype(np.int8)))
    assert d.found and d.payload == PAYLOAD
    with pytest.raises(ValueError, match="amplitude must have shape"):
        pattern(PAYLOAD, 640, 480, amplitude=a[:100])


def test_a_flat_picture_gets_a_faint_mark_that_is_still_read():
    """A grey wall: the mark stays a dithered ±1 level, and the detector, which normalises every cell
    by its own energy, still reads it with its payload."""
    img = np.full((480, 640, 3), 128, np.uint8)
    a = masking_amplitude(img)
    np.testing.assert_allclose(a, T_FLAT)
    m = pattern(PAYLOAD, 640, 480, amplitude=a)
    assert np.abs(m).max() <= 2 and 0.3 < np.abs(m).mean() < 0.6 and (np.abs(m) >= 2).mean() < 0.03
    d = read(apply(img, m))
    assert d.found and d.payload == PAYLOAD and d.z > 3 * Z_FOUND


def test_the_amplitude_map_fits_any_size_of_the_frame():
    """The map lives on the canonical grid: a frame and its half-size copy get (nearly) the same."""
    img = scene(640, 480)
    half = cv2.resize(img, (320, 240), interpolation=cv2.INTER_AREA)
    a, b = masking_amplitude(img), masking_amplitude(half)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9


def test_shading_and_soft_edges_get_the_flat_amplitude():
    """Only fine texture hides the mark: a face's smooth shading (up to ~1 level a pixel) gets
    T_FLAT, as a wall does, and a soft edge (a hairline or a jaw in a blurry webcam video: 60
    levels blurred over 8 px) about as little; fine texture (hair, fabric, noise) still gets
    several levels. A local std counted both as texture (1.9 and 3.8 levels peak), and the
    pattern showed there as a stipple (d14)."""
    rng = np.random.default_rng(5)
    h, w = 480, 640
    x = np.arange(w, dtype=np.float64)[None, :].repeat(h, 0)
    img = 128 + 60 * np.cos(2 * np.pi * x / 400)                       # shading: 188 → 68 over x < 200
    img[:, 200:] = 68 + 60 * cv2.GaussianBlur((x > 310).astype(np.float64), (0, 0), 8.0)[:, 200:]   # edge → 128
    tex = cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), 2.0)
    img[:, 440:] += (18 / tex.std()) * tex[:, 440:]
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)[..., None].repeat(3, 2)
    a = cv2.resize(masking_amplitude(img), (w, h))
    shading, edge, textured = a[:, 10:190], a[:, 210:410], a[:, 460:]
    assert shading.max() <= 1.01 * T_FLAT and edge.max() <= 1.25 * T_FLAT
    assert np.median(textured) > 3 * T_FLAT
    m = pattern(PAYLOAD, w, h, amplitude=masking_amplitude(img)).astype(np.float64)
    assert np.abs(m[:, 10:410]).max() <= 2 and np.abs(m[:, 460:]).mean() > 2.5 * np.abs(m[:, 10:410]).mean()


@pytest.mark.parametrize("size", [(1280, 720), (720, 1280), (1920, 1080), (300, 200), (100, 90)])
def test_the_amplitude_map_is_the_area_average_at_any_ratio(size):
    """The luma is measured at half the canonical grid by a quick route (a linear resize to a whole
    multiple, then whole blocks averaged) that reads what a plain area average of the whole
    frame reads: a textured scene's map within a few percent of it at every point."""
    w, h = size
    img = scene(w, h)
    half = CANON // 2
    luma = cv2.cvtColor(cv2.resize(img, (half, half), interpolation=cv2.INTER_AREA if min(h, w) >= half
                                   else cv2.INTER_LINEAR), cv2.COLOR_RGB2GRAY).astype(np.float32)
    plain = masking_from_luma(luma)
    a = masking_amplitude(img)
    assert a.shape == (CANON, CANON) and a.dtype == np.float32
    assert np.abs(a - plain).max() <= 0.1 * plain.max() and np.abs(a - plain).mean() <= 0.02 * plain.mean()


@pytest.mark.parametrize("gain", [3.0, 10.0])
def test_a_loud_amplitude_map_is_held_to_the_rms_bound(gain):
    """However loud a map asks to be (3×: its textured part is scaled down; 10×: its floor alone
    passes the bound, so all of it is), the offsets keep the RMS bound and the ±8 clip."""
    a = masking_amplitude(scene(640, 480)) * gain
    m = pattern(PAYLOAD, 640, 480, amplitude=a).astype(np.float64)
    assert np.sqrt(np.mean(m ** 2)) <= 1.85 and np.abs(m).max() <= 8


def test_quantised_in_bands_is_quantised_whole():
    """The disclosure stage quantises a plan a band of rows at a time: the bands together are
    exactly the whole frame's offsets, and their Σ offset² adds up to the frame's."""
    mp = MarkPattern(conv_encode(payload_bits(PAYLOAD)), 640, 480)
    a = masking_amplitude(scene(640, 480))
    whole = mp.offsets(a)
    plan = mp.plan(a)
    bands = np.empty_like(whole)
    total = sum(mp.quantise_rows(plan, 480 * i // 4, 480 * (i + 1) // 4, bands) for i in range(4))
    np.testing.assert_array_equal(bands, whole)
    assert total == pytest.approx(float(np.sum(whole.astype(np.float64) ** 2)))


def test_one_pattern_at_two_amplitudes_keeps_its_signs():
    """Re-quantised at a new amplitude (the stage does it as the picture changes), a cell keeps
    its sign: only the strength changes."""
    mp = MarkPattern(conv_encode(payload_bits(PAYLOAD)), 320, 240)
    weak = mp.offsets(np.full((256, 256), 1.0, np.float32)).astype(float)
    strong = mp.offsets(np.full((256, 256), 3.0, np.float32)).astype(float)
    assert np.abs(strong).mean() > 2 * np.abs(weak).mean()
    both = (weak != 0) & (strong != 0)
    assert both.mean() > 0.1 and (np.sign(weak[both]) == np.sign(strong[both])).mean() > 0.95
    np.testing.assert_array_equal(mp.offsets(), pattern(PAYLOAD, 320, 240))


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720), (720, 1280), (1000, 600)])
def test_a_large_frame_is_measured_in_one_pass_as_its_area_average(size, monkeypatch):
    """A frame whose sides are not whole multiples of the half grid is measured in one pass over
    its RGB bytes: no frame-sized luma image, no resize of the frame (before: a luma image, a
    linear resize of it to 1024 rows, then block means, 2.1 ms of a 1080p frame). It reads what
    the area average of its luma reads, in whole levels (one level off where the two round
    differently)."""
    w, h = size
    img = scene(w, h, seed=4)
    half = CANON // 2
    plain = cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (half, half), interpolation=cv2.INTER_AREA)
    seen = []

    def spying(f):
        def spy(src, *args, **kw):
            seen.append(np.asarray(src).shape)
            return f(src, *args, **kw)
        return spy

    for name in ("cvtColor", "resize"):
        monkeypatch.setattr(cv2, name, spying(getattr(cv2, name)))
    got = _half_canon_luma(img)
    amp = masking_amplitude(img)
    assert max((s[0] * s[1] for s in seen), default=0) <= CANON * CANON   # nothing frame-sized
    assert got.shape == (half, half) and got.dtype == np.float32 and amp.shape == (CANON, CANON)
    assert (got == np.round(got)).all()
    diff = np.abs(got - plain)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.1
