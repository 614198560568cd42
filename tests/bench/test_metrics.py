import importlib.util

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench import metrics as M
from bench.metrics import (
    IdentityEncoder,
    expression_error,
    flow_warping_error,
    jitter_where_still,
    landmark_jitter_px,
    pose_error_deg,
    psnr,
    ssim,
    still_segments,
)

# --- landmark jitter ---------------------------------------------------------------------------

def test_jitter_of_still_face_equals_noise_sigma():
    rng = np.random.default_rng(0)
    base = rng.uniform(50, 200, size=(478, 2))
    sigma = 0.4
    lm = base[None] + rng.normal(0, sigma, size=(90, 478, 2))
    assert landmark_jitter_px(lm) == pytest.approx(sigma, rel=0.10)
    # z is ignored
    lm3 = np.concatenate([lm, rng.normal(0, 5, size=(90, 478, 1))], axis=-1)
    assert landmark_jitter_px(lm3) == pytest.approx(landmark_jitter_px(lm))


def test_still_segments_isolate_still_runs():
    rng = np.random.default_rng(1)
    base = rng.uniform(50, 200, size=(200, 2))
    sigma = 0.3
    T = 120
    offs = np.zeros((T, 2))
    offs[40:80, 0] = np.arange(1, 41) * 4.0   # head moves 4 px/frame for 40 frames
    offs[80:] = offs[79]                      # then still again
    lm = base[None] + offs[:, None] + rng.normal(0, sigma, size=(T, 200, 2))
    segs = still_segments(lm, thresh_px=1.5, min_len=10)
    assert len(segs) == 2
    (a0, b0), (a1, b1) = segs
    assert a0 == 0 and abs(b0 - 40) <= 1 and abs(a1 - 80) <= 1 and b1 == T
    assert landmark_jitter_px(lm) > 10 * sigma            # motion pollutes the raw std
    assert landmark_jitter_px(lm, segs) == pytest.approx(sigma, rel=0.10)
    lm[100] = np.nan                                      # lost track breaks a run
    assert len(still_segments(lm, 1.5, 10)) == 3


def test_jitter_where_the_reference_is_still():
    """Measured on the reference's still frames: an output that jitters past the still
    threshold (σ 1.2 px: its own still segments vanish) is still measured, at its σ; an output
    that moves while the reference holds still counts that motion; a moving reference gives NaN."""
    rng = np.random.default_rng(2)
    base = rng.uniform(50, 200, size=(200, 2))
    T = 120
    offs = np.zeros((T, 2))
    offs[40:80, 0] = np.arange(1, 41) * 4.0
    offs[80:] = offs[79]
    ref = base[None] + offs[:, None] + rng.normal(0, 0.3, size=(T, 200, 2))
    shaky = base[None] + offs[:, None] + rng.normal(0, 1.2, size=(T, 200, 2))
    assert still_segments(shaky) == []
    jit, frames = jitter_where_still(ref, shaky)
    assert jit == pytest.approx(1.2, rel=0.1) and frames >= 75
    wobble = base[None] + rng.normal(0, 0.3, size=(T, 200, 2))
    wobble[:, :, 1] += 3.0 * np.sin(np.arange(T) / 3.0)[:, None]      # moves while ref is still
    assert jitter_where_still(ref, wobble)[0] > 1.5
    moving = base[None] + np.arange(T)[:, None, None] * 4.0
    jit, frames = jitter_where_still(moving, ref)
    assert np.isnan(jit) and frames == 0


# --- flow warping error ------------------------------------------------------------------------

def _translation_clip(T=8, S=128, step=2):
    img = data.astronaut()
    # crop a moving window out of a larger image: pure global translation, no wrap-around
    return np.stack([img[100:100 + S, 150 + step * t:150 + step * t + S] for t in range(T)])


def test_fwe_pure_translation_is_near_zero_and_flicker_is_large():
    clip = _translation_clip()
    terms = flow_warping_error(clip, return_terms=True)
    assert terms["n_pairs"] == len(clip) - 1
    assert terms["fwe"] < 2e-3
    assert terms["fwe"] == pytest.approx(terms["short"] + terms["long"])
    rng = np.random.default_rng(0)
    gains = rng.uniform(0.7, 1.3, size=len(clip))
    flicker = np.stack([np.clip(clip[0] * g, 0, 255).astype(np.uint8) for g in gains])
    fl = flow_warping_error(flicker)
    assert fl > 0.03 and fl > 20 * terms["fwe"]


def test_fwe_iterator_reference_and_mask():
    clip = _translation_clip(T=5)
    a = flow_warping_error(clip, long_term=False)
    b = flow_warping_error((f for f in clip), long_term=False)
    assert a == pytest.approx(b, abs=1e-12)
    assert a < 2e-3
    # flow taken from the original sequence (seed: "optical flow of the original sequence"):
    # outputs = a translating clip with a static overlay -> error where the overlay sits
    out = clip.copy()
    out[:, 40:80, 40:80] = np.random.default_rng(2).integers(0, 256, size=(40, 40, 3))
    e_ref = flow_warping_error(out, reference=clip, long_term=False)
    assert e_ref > 0.01
    # the mask restricts evaluation to pixels away from the overlay -> back to ~0
    mask = np.ones(clip.shape[1:3], bool)
    mask[30:90, 30:90] = False
    assert flow_warping_error(out, mask=mask, reference=clip, long_term=False) < 2e-3
    with pytest.raises(ValueError):
        flow_warping_error(clip[:1])


def test_fwe_fed_frame_by_frame_is_the_same_and_holds_two_frames():
    """`FlowWarpingError` (what a streaming pass pushes into) gives what `flow_warping_error`
    gives for the same frames, terms included, with a per-frame mask; it keeps only the first
    and the previous frame."""
    from bench.metrics import FlowWarpingError

    clip = _translation_clip(T=6)
    out = clip.copy()
    out[3:, 20:40, 20:40] = 255                                    # a change the flow does not explain
    masks = np.ones((len(clip), *clip.shape[1:3]), bool)
    masks[4, :, :64] = False
    acc = FlowWarpingError(lambda t: masks[t])
    for y, r in zip(out, clip):
        acc.push(y, r)
    assert acc.result() == pytest.approx(
        flow_warping_error(out, mask=masks, reference=clip, return_terms=True))
    assert acc.result()["short"] > 1e-3 and acc.result()["n_pairs"] == len(clip) - 1
    held = [v for v in vars(acc).values() if isinstance(v, tuple)]
    assert len(held) == 2
    with pytest.raises(ValueError, match="two frames"):
        FlowWarpingError().result()


def test_occlusion_mask_flags_inconsistent_flow():
    h, w = 32, 32
    fw = np.zeros((h, w, 2), np.float32)
    fw[..., 0] = 2.0
    bw = -fw
    assert M.occlusion_mask(fw, bw)[:, :-2].all()          # consistent (except out of frame)
    assert not M.occlusion_mask(fw, bw)[:, -2:].any()
    assert not M.occlusion_mask(fw, np.zeros_like(bw)).any()  # |w + w~|² = 4 > 0.01·4 + 0.5


# --- PSNR / SSIM -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, size=(64, 80, 3), dtype=np.uint8)
    noise = rng.integers(-20, 21, size=a.shape)
    b = np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)
    return a, b


def test_psnr_ssim_equal_skimage(pair):
    a, b = pair
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-6)
    assert ssim(a, b) == pytest.approx(
        structural_similarity(a, b, data_range=255, channel_axis=-1), abs=1e-6)
    ga, gb = a[..., 0], b[..., 0]
    assert ssim(ga, gb) == pytest.approx(structural_similarity(ga, gb, data_range=255), abs=1e-6)
    fa, fb = a / 255.0, b / 255.0
    assert psnr(fa, fb, data_range=1.0) == pytest.approx(
        peak_signal_noise_ratio(fa, fb, data_range=1.0), abs=1e-6)
    assert psnr(a, a) == float("inf") and ssim(a, a) == pytest.approx(1.0)


def test_face_region_variants_equal_skimage_on_crop(pair):
    a, b = pair
    box = (10, 5, 60, 50)  # x0, y0, x1, y1
    ca, cb = a[5:50, 10:60], b[5:50, 10:60]
    assert psnr(a, b, box=box) == pytest.approx(
        peak_signal_noise_ratio(ca, cb, data_range=255), abs=1e-6)
    assert ssim(a, b, box=box) == pytest.approx(
        structural_similarity(ca, cb, data_range=255, channel_axis=-1), abs=1e-6)
    m = np.zeros(a.shape[:2], bool)
    m[5:50, 10:60] = True
    assert psnr(a, b, mask=m) == pytest.approx(
        peak_signal_noise_ratio(ca, cb, data_range=255), abs=1e-6)
    # a full mask gives skimage's mean (same border exclusion)
    assert ssim(a, b, mask=np.ones(a.shape[:2], bool)) == pytest.approx(
        structural_similarity(a, b, data_range=255, channel_axis=-1), abs=1e-6)


# --- pose error --------------------------------------------------------------------------------

def test_pose_error_identity_and_known_rotation():
    R = Rotation.random(20, random_state=4).as_matrix()
    assert pose_error_deg(R, R) == pytest.approx(0.0, abs=1e-6)
    axes = Rotation.random(20, random_state=5).as_rotvec()
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    d = Rotation.from_rotvec(axes * np.radians(10)).as_matrix()
    assert pose_error_deg(R, R @ d) == pytest.approx(10.0, abs=1e-6)
    assert pose_error_deg(R, d @ R) == pytest.approx(10.0, abs=1e-6)
    # Euler angles (yaw, pitch, roll) in degrees
    ang = np.array([[20.0, -5.0, 3.0]])
    assert pose_error_deg(ang, ang + [10.0, 0, 0]) == pytest.approx(10.0, abs=1e-6)
    assert pose_error_deg(np.eye(3), Rotation.from_euler("z", 170, degrees=True).as_matrix()) \
        == pytest.approx(170.0, abs=1e-6)


# --- expression error --------------------------------------------------------------------------

def _face(rng, n=478):
    lm = rng.uniform(0, 200, size=(n, 2))
    lm[33], lm[263] = (60.0, 80.0), (140.0, 80.0)  # interocular distance 80 px
    return lm


def test_expression_error_zero_for_similarity_copy():
    rng = np.random.default_rng(6)
    ref = np.stack([_face(rng) for _ in range(4)])
    th = np.radians(25)
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    out = 1.7 * ref @ R.T + [13.0, -40.0]
    assert expression_error(out, ref) == pytest.approx(0.0, abs=1e-9)
    # 3-D landmarks too
    ref3 = np.concatenate([ref, rng.normal(0, 20, size=ref.shape[:2] + (1,))], -1)
    R3 = Rotation.from_euler("xyz", [10, -20, 30], degrees=True).as_matrix()
    assert expression_error(0.6 * ref3 @ R3.T + 5.0, ref3) == pytest.approx(0.0, abs=1e-9)


def test_expression_error_known_value_for_perturbed_copy():
    rng = np.random.default_rng(7)
    ref = _face(rng)
    c = ref - ref.mean(0)
    delta = rng.normal(0, 2.0, size=ref.shape)
    delta -= delta.mean(0)
    delta -= c @ np.linalg.lstsq(c, delta, rcond=None)[0]   # cᵀδ = 0: best rotation is I
    # Umeyama of out = ref + δ onto ref: R = I, s = Σ|c|² / (Σ|c|² + Σ|δ|²), t = (1−s)·mean
    s = (c ** 2).sum() / ((c ** 2).sum() + (delta ** 2).sum())
    expected = np.linalg.norm((s - 1) * c + s * delta, axis=1).mean() / 80.0
    out = ref + delta
    assert expression_error(out, ref) == pytest.approx(expected, rel=1e-9)
    # invariant to a similarity transform of the output
    out2 = 0.5 * out @ np.array([[0.0, -1.0], [1.0, 0.0]]).T + 7.0
    assert expression_error(out2, ref) == pytest.approx(expected, rel=1e-9)
    assert expression_error(out, ref) > 0.01


# --- identity distance -------------------------------------------------------------------------

def test_identity_encoder_reports_missing_dlib(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "dlib" else real(name, *a))
    monkeypatch.setattr(IdentityEncoder, "_checked", False)
    monkeypatch.setattr(IdentityEncoder, "_reason", None)
    assert IdentityEncoder.available() is False
    assert "pip install '.[quality]'" in IdentityEncoder.unavailable_reason()
    with pytest.raises(RuntimeError, match="quality"):
        IdentityEncoder()


@pytest.fixture(scope="module")
def encoder():
    if not IdentityEncoder.available():
        pytest.skip(IdentityEncoder.unavailable_reason())
    return IdentityEncoder()


def test_identity_distance_astronaut(encoder):
    img = data.astronaut()
    assert encoder.distance(img, img) == pytest.approx(0.0, abs=1e-6)
    d_mirror = encoder.distance(img, img[:, ::-1])
    assert d_mirror is not None and 0.05 < d_mirror < 0.4   # DESIGN: ≈ 0.19
    desc = encoder.descriptor(img)
    assert desc.shape == (128,)
    assert encoder.distance(desc, img) == pytest.approx(0.0, abs=1e-6)
    assert encoder.distance(img, np.full((120, 120, 3), 128, np.uint8)) is None
