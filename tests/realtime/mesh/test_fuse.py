"""realtime.mesh.fuse: recombination with retargeting (identity leak, gains, pose, lips/lids)."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.face import geometry as G
from realtime.face import topology as T
from realtime.face.estimate import Estimator
from realtime.face.geometry import Similarity
from realtime.face.state import FaceState
from realtime.io.performance import Blendshapes
from realtime.mesh.fuse import FuseConfig, FuseStage, Recombiner, response_field, retarget_gains

FPS = 30.0
MOUTH = sorted(set(T.OUTER_LIP + T.INNER_LIP_UPPER + T.INNER_LIP_LOWER))  # region 1
RIGHT_EYE = list(T.RIGHT_EYE_UPPER + T.RIGHT_EYE_LOWER + T.RIGHT_IRIS)
LEFT_EYE = list(T.LEFT_EYE_UPPER + T.LEFT_EYE_LOWER + T.LEFT_IRIS)


def _scale_region(shape, region, kx, ky, sigma):
    """Scale landmarks `region` about their centre by (kx, ky) in x/y, exactly on the region and
    fading out (Gaussian of `sigma` canonical units) around it, so the face stays smooth."""
    out = shape.copy()
    centre = shape[region].mean(0)
    d = shape - centre
    g = np.exp(-(d[:, :2] ** 2).sum(1) / (2 * sigma ** 2))
    g[region] = 1.0
    out[:, 0] += (kx - 1.0) * d[:, 0] * g
    out[:, 1] += (ky - 1.0) * d[:, 1] * g
    return out


def _region_size(shape, idx):
    p = shape[idx, :2]
    return float(np.sqrt(((p - p.mean(0)) ** 2).sum(1).mean()))


@pytest.fixture(scope="module")
def target(astronaut_profile):
    lm = astronaut_profile["landmarks"].astype(np.float64)
    return lm, astronaut_profile["neutral"].astype(np.float64), astronaut_profile.frame()


@pytest.fixture(scope="module")
def driver(target):
    """Driver B: another face shape (mouth 30 % wider, eyes 20 % smaller, face 12 % longer),
    seen turned 15° and from further away."""
    lm_a, n_a, f_a = target
    n_b = _scale_region(n_a, MOUTH, 1.3, 1.1, 0.4)
    n_b = _scale_region(n_b, RIGHT_EYE, 0.8, 0.8, 0.2)
    n_b = _scale_region(n_b, LEFT_EYE, 0.8, 0.8, 0.2)
    n_b[:, 1] *= 1.12
    f_b = Similarity(G.rotation_from_euler(15, -5, 4) @ f_a.rotation, 0.85 * f_a.scale,
                     f_a.translation + np.array([30.0, 10.0, 0.0]))
    return f_b.apply(n_b), n_b, f_b


def _calibrated_on(lm, rng, noise, frames=36):
    est = Estimator()
    state = None
    for i in range(frames):
        state = est(lm + rng.normal(0, noise, lm.shape), i / FPS)
    assert est.calibrator.done
    return est, state


# --------------------------------------------------------------------------- identity leak
def test_driver_neutral_gives_the_target_neutral(target, driver):
    """Driving A with B's neutral face gives A's neutral (< 1 % of A's interocular distance),
    although B's face shape, pose and distance differ and its landmarks jitter."""
    lm_a, n_a, f_a = target
    lm_b, _, _ = driver
    iod = G.interocular(lm_a)
    rng = np.random.default_rng(0)
    est, _ = _calibrated_on(lm_b, rng, noise=0.15)
    rec = Recombiner(n_a, f_a)
    rec.bind_driver(est.neutral.shape)
    for i in range(36, 51):
        state = est(lm_b + rng.normal(0, 0.15, lm_b.shape), i / FPS)
        out = rec(state)
        err = np.linalg.norm(out[:, :2] - lm_a[:, :2], axis=1)
        assert err.max() < 0.01 * iod, f"frame {i}: {err.max() / iod:.4f} IOD"
    # B really is another face: its own landmarks are far from A's in A's frame
    b_in_a = f_a.apply(G.face_frame(lm_b).invert_points(lm_b))
    assert np.linalg.norm(b_in_a[:, :2] - lm_a[:, :2], axis=1).max() > 0.1 * iod


def test_driver_expression_does_move_the_target(target, driver):
    """Control for the identity-leak test: B opening its mouth opens A's mouth (and only the
    lower face moves), so the test above is not vacuous."""
    lm_a, n_a, f_a = target
    lm_b, n_b, f_b = driver
    iod = G.interocular(lm_a)
    rng = np.random.default_rng(1)
    est, _ = _calibrated_on(lm_b, rng, noise=0.15)
    rec = Recombiner(n_a, f_a)
    rec.bind_driver(est.neutral.shape)
    opened = f_b.apply(n_b + Blendshapes(n_b)({"jaw_open": 0.6}))
    for i in range(36, 56):
        state = est(opened + rng.normal(0, 0.15, lm_b.shape), i / FPS)
    out = rec(state)
    err = np.linalg.norm(out[:, :2] - lm_a[:, :2], axis=1)
    assert G.mouth_opening(out) > G.mouth_opening(lm_a) + 0.1 * iod
    assert err[T.CHIN] > 0.1 * iod
    assert err[list(T.RIGID)].max() < 0.01 * iod  # the skull stays put


def test_retarget_gains_follow_the_region_size_ratio(target, driver):
    """Gains are target/driver size per region: B's wider mouth gives A's mouth a gain below
    1, B's smaller eyes give A's eyes a gain above 1; elsewhere the gain stays near 1."""
    _, n_a, _ = target
    lm_b, _, _ = driver
    n_b = G.face_frame(lm_b).invert_points(lm_b)
    gains = retarget_gains(n_a, n_b)
    assert gains.shape == (T.N_LANDMARKS, 1)
    lab = T.region_labels()
    g = gains[:, 0]
    for region in (1, 2, 3):
        idx = lab == region
        ratio = _region_size(n_a, idx) / _region_size(n_b, idx)
        assert abs(ratio - 1) > 0.1
        core = g[idx]
        # on the right side of 1 and a substantial part of the way to the ratio
        assert ((core - 1) * np.sign(ratio - 1) > 0.25 * abs(ratio - 1)).all(), region
        assert ((core - 1) * np.sign(ratio - 1) <= abs(ratio - 1) + 1e-9).all(), region
    assert g[[10, 151, 234, 454]] == pytest.approx(1.0, abs=0.06)
    np.testing.assert_allclose(retarget_gains(n_a, n_a), 1.0, atol=1e-12)
    # clipped to [0.5, 2] however different the driver
    tiny = n_a.copy()
    tiny[MOUTH] = tiny[MOUTH].mean(0) + 0.1 * (tiny[MOUTH] - tiny[MOUTH].mean(0))
    assert retarget_gains(n_a, tiny, iterations=0)[MOUTH].max() == pytest.approx(2.0)


def test_retarget_gains_equal_the_ratio_on_the_lips_and_lids(target, driver):
    _, n_a, _ = target
    lm_b, _, _ = driver
    n_b = G.face_frame(lm_b).invert_points(lm_b)
    g = retarget_gains(n_a, n_b)[:, 0]
    lab = T.region_labels()
    for region, points in ((1, T.INNER_LIP_UPPER + T.INNER_LIP_LOWER),
                           (2, T.RIGHT_EYE_UPPER[1:-1] + T.RIGHT_EYE_LOWER[1:-1])):
        idx = lab == region
        ratio = _region_size(n_a, idx) / _region_size(n_b, idx)
        np.testing.assert_allclose(g[list(points)], ratio, rtol=0.03)


def test_full_blink_of_a_smaller_eyed_driver_closes_the_target_eyes(target):
    lm_a, n_a, f_a = target
    n_b = _scale_region(n_a, RIGHT_EYE, 0.8, 0.8, 0.2)
    n_b = _scale_region(n_b, LEFT_EYE, 0.8, 0.8, 0.2)
    rec = Recombiner(n_a, f_a)
    rec.bind_driver(n_b)
    blink = Blendshapes(n_b)({"blink_right": 1.0, "blink_left": 1.0})
    assert max(G.eye_opening(n_b + blink)) < 1e-9  # B's eyes are shut
    shape = rec.canonical(FaceState(expression=blink))
    right, left = G.eye_opening(shape)
    r0, l0 = G.eye_opening(n_a)
    assert right < 0.03 * r0 and left < 0.03 * l0


def test_retargeted_mouth_opening_scales_with_the_gain(target):
    """Same driver as target (gain 1): the expression is copied; a driver with a twice-as-big
    mouth opens the target's mouth by about half as much."""
    _, n_a, f_a = target
    field = Blendshapes(n_a)({"jaw_open": 0.5})
    same = Recombiner(n_a, f_a)
    same.bind_driver(n_a)
    np.testing.assert_allclose(same.canonical(FaceState(expression=field)), n_a + field,
                               atol=1e-12)
    big = _scale_region(n_a, MOUTH, 2.0, 2.0, 0.01)
    rec = Recombiner(n_a, f_a, FuseConfig(smoothing_iterations=0))
    rec.bind_driver(big)
    gap0 = G.mouth_opening(n_a)
    opened = G.mouth_opening(rec.canonical(FaceState(expression=2.0 * field)))
    assert opened - gap0 == pytest.approx(G.mouth_opening(n_a + field) - gap0, rel=0.05)


def test_mouth_retarget_zero_moves_the_lips_as_much_as_the_drivers(target):
    """The swap's setting: the jaw that moves is the driver's, so a driver with a twice-as-big
    mouth opens the identity's by the same amount, not half; eyes keep their ratio."""
    _, n_a, f_a = target
    field = Blendshapes(n_a)({"jaw_open": 0.5})
    big = _scale_region(_scale_region(n_a, MOUTH, 2.0, 2.0, 0.01), RIGHT_EYE, 0.8, 0.8, 0.2)
    gap0 = G.mouth_opening(n_a)
    opened = {}
    for weight in (1.0, 0.5, 0.0):
        rec = Recombiner(n_a, f_a, FuseConfig(smoothing_iterations=0, mouth_retarget=weight))
        rec.bind_driver(big)
        rest = G.mouth_opening(rec.canonical(FaceState(expression=np.zeros_like(field))))
        opened[weight] = G.mouth_opening(rec.canonical(FaceState(expression=field))) - rest
        assert rec._gains[T.RIGHT_EYE_UPPER[3], 0] == pytest.approx(1.25, rel=0.03)
    assert opened[0.0] == pytest.approx(G.mouth_opening(n_a + field) - gap0, rel=1e-3)
    assert opened[0.0] == pytest.approx(2.0 * opened[1.0], rel=0.05)
    assert opened[1.0] < opened[0.5] < opened[0.0]
    with pytest.raises(ValueError, match="mouth_retarget"):
        Recombiner(n_a, f_a, FuseConfig(mouth_retarget=1.5))


@pytest.mark.parametrize("mouth_retarget", [1.0, 0.0])
def test_the_lips_gap_follows_the_drivers_own_not_the_photos_plus_the_change(target, mouth_retarget):
    """A photo with parted lips (s1) closes them when the driver's close; a driver calibrated
    with parted lips (d10 talks through her first second) parts the avatar's as much at rest, and
    closes them when their own close. The same identity (no driver bound) is drawn as it is."""
    _, n_a, f_a = target
    bs = Blendshapes(n_a)
    parted = n_a + bs({"jaw_open": 0.3})
    closed_gap, parted_gap = G.mouth_opening(n_a), G.mouth_opening(parted)
    iod = G.interocular(n_a)
    assert parted_gap - closed_gap > 0.05 * iod
    rest = FaceState(expression=np.zeros_like(n_a))
    config = FuseConfig(smoothing_iterations=0, mouth_retarget=mouth_retarget)
    photo_parted = Recombiner(parted, f_a, config)
    photo_parted.bind_driver(n_a)
    assert G.mouth_opening(photo_parted.canonical(rest)) == pytest.approx(closed_gap, abs=0.01 * iod)
    driver_parted = Recombiner(n_a, f_a, config)
    driver_parted.bind_driver(parted)
    at_rest = G.mouth_opening(driver_parted.canonical(rest))
    if mouth_retarget == 0.0:
        assert at_rest == pytest.approx(parted_gap, abs=0.01 * iod)
    else:    # scaled by the lips' size ratio (the parted driver's mouth region is the larger)
        assert closed_gap + 0.5 * (parted_gap - closed_gap) < at_rest < parted_gap
    shut = FaceState(expression=n_a - parted)          # the driver's lips meet
    assert G.mouth_opening(driver_parted.canonical(shut)) == pytest.approx(closed_gap, abs=0.01 * iod)
    # each pair closes about its middle: the lips' midline stays (per pair, not on average)
    mid = lambda s: 0.5 * (s[list(T.INNER_LIP_UPPER[1:-1]), 1] + s[list(T.INNER_LIP_LOWER[1:-1]), 1])
    shut_photo = photo_parted.canonical(rest)
    np.testing.assert_allclose(mid(shut_photo), mid(parted), atol=1e-12)
    gaps = lambda s: s[list(T.INNER_LIP_LOWER[1:-1]), 1] - s[list(T.INNER_LIP_UPPER[1:-1]), 1]
    want = gaps(n_a)                          # the driver's own gaps, pair by pair ...
    if mouth_retarget:                         # ... times the lips' size ratio
        g = photo_parted._gains[:, 0]
        want = want * 0.5 * (g[list(T.INNER_LIP_UPPER[1:-1])] + g[list(T.INNER_LIP_LOWER[1:-1])])
    np.testing.assert_allclose(gaps(shut_photo), want, atol=1e-9)
    # pressed harder than shut: the lips meet, they never cross
    pressed = photo_parted.canonical(FaceState(expression=bs({"jaw_open": -0.2})))
    assert (pressed[list(T.INNER_LIP_LOWER), 1] >= pressed[list(T.INNER_LIP_UPPER), 1] - 1e-12).all()
    # the mouth's gain scales the rest gap's change too: at 0 the photo's lips stay as they are
    photo_parted.set_gain("mouth", 0.0)
    assert G.mouth_opening(photo_parted.canonical(rest)) == pytest.approx(parted_gap, abs=1e-9)
    photo_parted.set_gain("mouth", 0.5)      # halfway from the photo's lips to the driver's
    np.testing.assert_allclose(gaps(photo_parted.canonical(rest)), 0.5 * (gaps(parted) + want), atol=1e-9)
    photo_parted.set_gain("mouth", 1.0)
    photo_parted.bind_driver(None)
    np.testing.assert_allclose(photo_parted.canonical(rest), parted, atol=1e-12)


# ------------------------------------------------------------------------------------- pose
def test_neutral_state_gives_the_target_landmarks_exactly(target):
    lm_a, n_a, f_a = target
    rec = Recombiner(n_a, f_a)
    np.testing.assert_allclose(rec(FaceState.neutral()), lm_a, atol=1e-3)
    rec.bind_driver(None)
    np.testing.assert_allclose(rec(FaceState.neutral(present=False)), lm_a, atol=1e-3)


def test_driver_rotation_is_applied_on_top_of_the_target_pose(target):
    lm_a, n_a, f_a = target
    rec = Recombiner(n_a, f_a)
    q = G.rotation_from_euler(24, -10, 5)   # within MAX_HEAD_ANGLE (30°) of the target's pose
    out = rec(FaceState(rotation=q))
    f_out = G.face_frame(out)
    np.testing.assert_allclose(f_out.rotation, q @ f_a.rotation, atol=1e-5)
    np.testing.assert_allclose(f_out.translation, f_a.translation, atol=1e-3)  # about the face centre
    assert f_out.scale == pytest.approx(f_a.scale, rel=1e-5)


def test_translation_and_scale_follow_the_config(target):
    lm_a, n_a, f_a = target
    state = FaceState(translation=np.array([0.2, -0.1, 0.5]), scale=1.5)
    rec = Recombiner(n_a, f_a)  # defaults: follow translation, keep the head size
    out = rec(state)
    shift = out.mean(0) - lm_a.mean(0)
    np.testing.assert_allclose(shift, [0.2 * f_a.scale, -0.1 * f_a.scale, 0.0], atol=1e-3)
    assert G.face_frame(out).scale == pytest.approx(f_a.scale, rel=1e-6)
    pinned = Recombiner(n_a, f_a, FuseConfig(follow_translation=0.0, follow_scale=1.0))
    out = pinned(state)
    f_out = G.face_frame(out)
    np.testing.assert_allclose(f_out.translation, f_a.translation, atol=1e-3)
    assert f_out.scale == pytest.approx(1.5 * f_a.scale, rel=1e-6)
    half = Recombiner(n_a, f_a, FuseConfig(follow_scale=0.5))
    assert G.face_frame(half(state)).scale == pytest.approx(1.25 * f_a.scale, rel=1e-6)


def test_expression_gain(target):
    _, n_a, f_a = target
    field = Blendshapes(n_a)({"smile": 1.0})
    rec = Recombiner(n_a, f_a, FuseConfig(expression_gain=0.5, brow_response=1.0,
                                          mouth_width_response=1.0, lid_response=1.0,
                                          lid_widen_response=1.0))
    np.testing.assert_allclose(rec.canonical(FaceState(expression=field)), n_a + 0.5 * field,
                               atol=1e-12)


def test_response_moves_brows_and_mouth_width_more_and_nothing_else(target):
    """The read-as-driver compensation: the brows (every axis) by `brow_response`, the mouth's
    x motion by `mouth_width_response`, its opening (y) and the rest of the face untouched."""
    _, n_a, f_a = target
    rec = Recombiner(n_a, f_a, FuseConfig(brow_response=1.2, mouth_width_response=1.1))
    plain = Recombiner(n_a, f_a, FuseConfig(brow_response=1.0, mouth_width_response=1.0,
                                            lid_response=1.0, lid_widen_response=1.0))
    expr = np.full_like(n_a, 0.01)
    moved = rec.canonical(FaceState(expression=expr)) - n_a
    base = plain.canonical(FaceState(expression=expr)) - n_a
    brows = list(T.RIGHT_BROW) + list(T.LEFT_BROW)
    np.testing.assert_allclose(moved[brows], 1.2 * base[brows], atol=1e-12)
    corners = [61, 291]
    np.testing.assert_allclose(moved[corners, 0], 1.1 * base[corners, 0], atol=1e-12)
    np.testing.assert_allclose(moved[corners, 1:], base[corners, 1:], atol=1e-12)
    lids = list(T.RIGHT_EYE_UPPER) + list(T.LEFT_EYE_LOWER)
    np.testing.assert_allclose(moved[lids], base[lids], atol=1e-12)
    rest = np.flatnonzero(np.all(response_field(1.2, 1.1) == 1.0, axis=1))
    assert len(rest) > 50         # the eyes, the irises, the nose bridge, the face outline
    np.testing.assert_allclose(moved[rest], base[rest], atol=1e-12)
    assert rec.canonical(FaceState(expression=np.zeros_like(n_a))) == pytest.approx(n_a)


# ------------------------------------------------------------------------------- lips, lids
def test_lips_and_lids_never_cross(target):
    """An expression pushing the lower lip above the upper one (or a lower lid above the upper
    lid) is folded back to the middle, never inverted."""
    _, n_a, f_a = target
    rec = Recombiner(n_a, f_a)
    expr = np.zeros_like(n_a)
    expr[list(T.INNER_LIP_LOWER[1:-1]), 1] = -0.5  # lower lip up by far more than the gap
    expr[list(T.LEFT_EYE_LOWER[1:-1]), 1] = -0.5
    shape = rec.canonical(FaceState(expression=expr))
    up, lo = np.array(T.INNER_LIP_UPPER[1:-1]), np.array(T.INNER_LIP_LOWER[1:-1])
    assert (shape[lo, 1] >= shape[up, 1] - 1e-12).all()
    up, lo = np.array(T.LEFT_EYE_UPPER[1:-1]), np.array(T.LEFT_EYE_LOWER[1:-1])
    assert (shape[lo, 1] >= shape[up, 1] - 1e-12).all()
    # untouched where nothing crossed: the right eye and the rest of the face
    idx = np.array(T.RIGHT_EYE_UPPER + T.RIGHT_EYE_LOWER + (10, 152, 234))
    np.testing.assert_array_equal(shape[idx], n_a[idx])
    # an ordinary expression is not altered
    field = Blendshapes(n_a)({"jaw_open": 0.3})
    np.testing.assert_allclose(rec.canonical(FaceState(expression=field)), n_a + field,
                               atol=1e-12)


# ----------------------------------------------------------------------------- the stage
class _CountingRecombiner(Recombiner):
    binds = 0

    def bind_driver(self, driver_neutral, ease=False):
        self.binds += 1
        super().bind_driver(driver_neutral, ease)


def test_fuse_stage_rebinds_only_when_the_neutral_changes(astronaut_profile, target):
    from realtime.mesh import rig as rig_mod

    _, n_a, f_a = target
    rig = rig_mod.build(astronaut_profile)
    rec = _CountingRecombiner(n_a, f_a)

    class _N:
        shape = n_a

    current = {"n": None}
    stage = FuseStage(rec, rig, neutral_of=lambda: current["n"])
    f = Frame(index=0, t_capture=0.0, state=FaceState.neutral())
    stage(f)
    assert rec.binds == 1
    assert f.vertices.shape == (rig.vertex_count, 3) and f.vertices.dtype == np.float32
    for _ in range(3):
        stage(Frame(index=0, t_capture=0.0, state=FaceState.neutral()))
    assert rec.binds == 1
    current["n"] = _N()
    stage(Frame(index=1, t_capture=0.0, state=FaceState.neutral()))
    stage(Frame(index=2, t_capture=0.0, state=FaceState.neutral()))
    assert rec.binds == 2


def test_a_driver_that_appears_brings_its_lips_rest_gap_in_over_the_ease(astronaut_profile, target):
    """The lips' rest gap is there with no expression on: bound at once, a photo's lips moved by
    the whole difference to the driver's in the frame the driver appeared (while its expression
    eased in). With the stage's clock it goes over in `ease_s`, by a smoothstep; a calibration's
    later neutrals do not restart it; a new calibration (a neutral's first frame) and a dropped
    neutral ease too, from where the gap is; a new stage on a calibrated driver binds at once."""
    from realtime.mesh import fuse as F
    from realtime.mesh import rig as rig_mod

    _, n_a, f_a = target
    rig = rig_mod.build(astronaut_profile)
    shut = n_a.copy()
    shut[F._LOWER_LIP, 1] = shut[F._UPPER_LIP, 1]             # a driver whose lips meet at rest

    class _N:
        def __init__(self, frames, extra=0.0):
            self.shape, self.frames = shut + extra, frames

    def gap(rec):
        c = rec.canonical(FaceState.neutral())
        return float(np.mean(c[F._LOWER_LIP, 1] - c[F._UPPER_LIP, 1]))

    at_once = Recombiner(n_a, f_a)
    photo = gap(at_once)
    at_once.bind_driver(shut)
    bound = gap(at_once)
    assert photo - bound > 0.01                                 # the photo's lips part more

    rec = Recombiner(n_a, f_a)
    current = {"n": None}
    stage = FuseStage(rec, rig, neutral_of=lambda: current["n"], clock=lambda f: f.t_capture, ease_s=0.25)

    def run(i, neutral):
        current["n"] = neutral
        stage(Frame(index=i, t_capture=i / 30.0, state=FaceState.neutral()))
        return gap(rec)

    assert run(0, None) == pytest.approx(photo)
    # the driver appears at frame 2 (t = 1/15); a later neutral of its calibration at frame 4
    gaps = [run(i, _N(1) if i == 2 else (_N(2, 1e-4) if i == 4 else current["n"])) for i in range(1, 13)]
    share = (photo - np.array(gaps)) / (photo - bound)           # of the way to the driver's gap
    assert share[1] == pytest.approx(0.0, abs=1e-9)              # nothing in the frame it appears
    assert 0.0 < share[2] < 0.08                                 # a smoothstep's slow start
    assert np.all(np.diff(share) > -1e-9) and np.diff(share).max() < 0.25   # no snap, no way back
    assert share[9] == pytest.approx(1.0, abs=1e-9)             # all of it ease_s on (frame 10)
    # a new calibration's first neutral eases from where the gap is, and so does dropping it
    wide = n_a.copy()
    wide[F._LOWER_LIP, 1] = wide[F._UPPER_LIP, 1] + 0.04
    new = type("N", (), {"shape": wide, "frames": 1})()
    before = gap(rec)
    after = [run(i, new) for i in range(13, 23)]
    rec_new = Recombiner(n_a, f_a)
    rec_new.bind_driver(wide)
    assert after[0] == pytest.approx(before) and after[-1] == pytest.approx(gap(rec_new))
    assert np.abs(np.diff([before] + after)).max() < 0.25 * abs(gap(rec_new) - before)
    mid = [run(i, None) for i in range(23, 28)]                  # dropped ...
    back = [run(i, new) for i in range(28, 31)]                  # ... and back mid-ease
    steps = np.abs(np.diff([after[-1]] + mid + back))
    assert steps.max() < 0.25 * abs(gap(rec_new) - photo)
    # a new stage on the calibrated driver (the render size's rebuild): at once, as before
    calibrated = _N(30)
    for clock in (lambda f: f.t_capture, None):
        fresh = FuseStage(Recombiner(n_a, f_a), rig, neutral_of=lambda: calibrated, clock=clock)
        fresh(Frame(index=0, t_capture=1.0, state=FaceState.neutral()))
        assert gap(fresh.recombiner) == pytest.approx(bound)


def test_a_rebuilt_fuse_stage_goes_on_where_the_old_one_was(astronaut_profile, target):
    """The render size's rebuild (`Engine._resize`: a new stage and recombiner) takes over the
    old stage's binding: mid-ease it goes on with the same ease; after it, a driver whose
    neutral is a first frame (a pinned one) is not eased in again."""
    from realtime.mesh import fuse as F
    from realtime.mesh import rig as rig_mod

    _, n_a, f_a = target
    rig = rig_mod.build(astronaut_profile)
    shut = n_a.copy()
    shut[F._LOWER_LIP, 1] = shut[F._UPPER_LIP, 1]
    pinned = type("N", (), {"shape": shut, "frames": 1})()
    clock = lambda f: f.t_capture

    def gap(stage):
        c = stage.recombiner.canonical(FaceState.neutral())
        return float(np.mean(c[F._LOWER_LIP, 1] - c[F._UPPER_LIP, 1]))

    for rebuild_at in (3, 12):                                   # mid-ease, and after it
        old = FuseStage(Recombiner(n_a, f_a), rig, neutral_of=lambda: pinned, clock=clock)
        for i in range(rebuild_at):
            old(Frame(index=i, t_capture=i / 30.0, state=FaceState.neutral()))
        new = FuseStage(Recombiner(n_a, f_a), rig, neutral_of=lambda: pinned, clock=clock)
        new.take_over(old)
        for i in range(rebuild_at, rebuild_at + 8):
            for stage in (old, new):
                stage(Frame(index=i, t_capture=i / 30.0, state=FaceState.neutral()))
            assert gap(new) == pytest.approx(gap(old), abs=1e-12)


def _lid_gap_after(profile):
    """gap_after(fraction): the avatar's gap (over its open gap) when the driver's upper lid comes
    down to `fraction` of the open gap (above 1: goes up)."""
    from realtime.mesh import fuse as F

    rec = Recombiner(profile["neutral"], profile.frame())
    n = rec.target_neutral
    up, lo = F._LIDS[0]
    mid = slice(len(up) // 2 - 1, len(up) // 2 + 2)
    rest = float((n[lo, 1] - n[up, 1])[mid].mean())

    def gap_after(fraction):
        expr = np.zeros_like(n)
        expr[up, 1] = (n[lo, 1] - n[up, 1]) * (1.0 - fraction)
        shape = rec.canonical(FaceState(expression=expr))
        return float((shape[lo, 1] - shape[up, 1])[mid].mean()) / rest
    return gap_after


def test_nearly_shut_lids_shut_and_open_lids_stay(astronaut_profile):
    """MediaPipe never reads a shut eye as shut: lids whose read-as-driver gap falls below
    LID_MEET[0] meet; an eye as open as the avatar's stays; a narrowing is LID_RESPONSE times
    the driver's between the knee and the cap, a widening LID_WIDEN_RESPONSE times past the
    knee, and a still eye's jitter is hardly amplified."""
    from realtime.mesh import fuse as F

    gap_after = _lid_gap_after(astronaut_profile)
    extra = (F.LID_RESPONSE - 1.0) * F.LID_RESPONSE_CAP
    assert gap_after(0.9 * (F.LID_MEET[0] + extra)) == pytest.approx(0.0, abs=1e-9)
    assert gap_after(1.0) == pytest.approx(1.0, abs=1e-9)
    assert gap_after(1.2) == pytest.approx(1.0 + F.LID_WIDEN_RESPONSE * 0.2, abs=1e-9)
    assert F.LID_KNEE < 0.2 < F.LID_RESPONSE_CAP
    assert gap_after(0.8) == pytest.approx(1.0 - F.LID_RESPONSE * 0.2, abs=1e-9)
    assert gap_after(0.6) == pytest.approx(0.6 - extra, abs=1e-9)   # past the cap: a constant extra
    assert (1.0 - gap_after(0.99)) / 0.01 < 1.05       # a still eye's jitter: hardly amplified
    assert (gap_after(1.01) - 1.0) / 0.01 < 1.05
    fractions = np.linspace(0.0, 1.2, 121)
    assert np.all(np.diff([gap_after(f) for f in fractions]) >= -1e-12)   # never reopens


def test_an_eye_as_open_as_the_avatars_is_left_bit_for_bit():
    """At the avatar's own open gap the lids are not touched at all: lower − (lower − upper)
    rounds away from `upper` for most lid heights, so this needs the early return."""
    from realtime.mesh import fuse as F

    up, lo = F._LIDS[0]
    rng = np.random.default_rng(1)
    for _ in range(20):
        shape = np.zeros((T.N_LANDMARKS, 3))
        shape[up, 1] = rng.uniform(-0.9, 0.3, len(up))
        shape[lo, 1] = shape[up, 1] + rng.uniform(0.05, 1.7, len(up))
        gap = shape[lo, 1] - shape[up, 1]
        rest = float(gap[len(gap) // 2 - 1:len(gap) // 2 + 2].mean())
        before = shape.copy()
        F._lids(up, lo, shape, rest, F.LID_RESPONSE, F.LID_WIDEN_RESPONSE, F.LID_MEET)
        assert np.array_equal(shape, before)


def test_a_half_shut_eye_is_drawn_half_shut(astronaut_profile):
    """A squint is not a blink: an eye at 40 % of its open gap is drawn at over a quarter of it,
    not nearly shut (the former smoothstep map drew 0.06: d11's squeezed slit came out shut)."""
    gap_after = _lid_gap_after(astronaut_profile)
    assert 0.25 < gap_after(0.4) < 0.4


def test_lid_response_and_meeting_band_are_checked(target):
    _, n_a, f_a = target
    with pytest.raises(ValueError, match="lid_response"):
        Recombiner(n_a, f_a, FuseConfig(lid_response=0.5))
    with pytest.raises(ValueError, match="lid_widen_response"):
        Recombiner(n_a, f_a, FuseConfig(lid_widen_response=0.9))
    with pytest.raises(ValueError, match="lid_meet"):
        Recombiner(n_a, f_a, FuseConfig(lid_meet=(0.2, 0.1)))
    with pytest.raises(ValueError, match="lid_meet"):
        Recombiner(n_a, f_a, FuseConfig(lid_meet=(-0.1, 0.1)))



def test_a_tracker_fold_under_the_lower_lip_is_undone(target, monkeypatch):
    """A driver whose tracked chin points rose onto the lower lip (MediaPipe on a very wide mouth):
    the avatar's lip does not fold over its chin — down each CHIN_COLUMNS column, every point
    stays at least CHIN_KEEP of its neutral distance below the one above; the rest is untouched."""
    from realtime.mesh import fuse

    _, n_a, f_a = target
    rec = Recombiner(n_a, f_a)
    rec.bind_driver(n_a)
    gap = n_a[18, 1] - n_a[17, 1]
    assert gap > 0
    fold = np.zeros_like(n_a)
    fold[[18, 200], 1] = -1.5 * gap                       # both rise above the lip's contour
    wide = FaceState(expression=Blendshapes(n_a)({"jaw_open": 1.0}))
    shape, opened = rec.canonical(FaceState(expression=fold)), rec.canonical(wide)
    with monkeypatch.context() as m:
        m.setattr(fuse, "_unfold_chin", lambda *a: None)
        before, opened_before = rec.canonical(FaceState(expression=fold)), rec.canonical(wide)
    assert before[18, 1] < before[17, 1]                  # folded without the guard
    neutral_gaps = np.diff(n_a[fuse.CHIN_COLUMNS, 1], axis=1)
    gaps = np.diff(shape[fuse.CHIN_COLUMNS, 1], axis=1)
    assert np.all(gaps >= fuse.CHIN_KEEP * neutral_gaps - 1e-12)
    assert shape[18, 1] == pytest.approx(shape[17, 1] + fuse.CHIN_KEEP * gap)
    moved = shape != before
    assert set(np.nonzero(moved.any(1))[0]) <= {18, 200} and not moved[:, ::2].any()   # only their y
    np.testing.assert_array_equal(opened, opened_before)  # a wide mouth that does not fold: as it was


def test_an_upper_lip_raised_into_the_nose_is_held_under_it(target, monkeypatch):
    """Before (audit, stop 66): `--gain mouth=2` on a smile raised the avatar's upper lip past its
    nose's base (lip top 0 over base 2) and the mouth's opening rose to the nostrils. Down each
    LIP_COLUMNS column every point stays at least LIP_KEEP of its neutral distance below the
    one above, the lip under a column's top going down with it (its thickness kept); a mouth
    that does not fold comes out as it was."""
    from realtime.mesh import fuse

    _, n_a, f_a = target
    rec = Recombiner(n_a, f_a)
    rec.bind_driver(n_a)
    top, carried = fuse.LIP_COLUMNS[:, -1], fuse._LIP_CARRIED
    lift = np.zeros_like(n_a)
    rise = n_a[0, 1] - n_a[2, 1]                             # the lip's top under the nose's base
    lift[np.concatenate([top, carried.ravel()]), 1] = -1.3 * rise     # the whole upper lip, past it
    wide = FaceState(expression=Blendshapes(n_a)({"jaw_open": 1.0}))
    shape, opened = rec.canonical(FaceState(expression=lift)), rec.canonical(wide)
    with monkeypatch.context() as m:
        m.setattr(fuse, "_unfold_upper_lip", lambda *a: None)
        before, opened_before = rec.canonical(FaceState(expression=lift)), rec.canonical(wide)
    assert before[0, 1] < before[2, 1]                       # above the nose's base without the guard
    neutral_gaps = np.diff(n_a[fuse.LIP_COLUMNS, 1], axis=1)
    gaps = np.diff(shape[fuse.LIP_COLUMNS, 1], axis=1)
    assert np.all(gaps >= fuse.LIP_KEEP * neutral_gaps - 1e-12) and shape[0, 1] > shape[2, 1]
    moved = shape[top, 1] - before[top, 1]
    assert np.all(moved > 0)
    np.testing.assert_allclose(shape[carried, 1] - before[carried, 1], np.repeat(moved[:, None], 3, 1))
    assert not (shape != before)[:, ::2].any()               # only y
    np.testing.assert_array_equal(opened, opened_before)     # a wide mouth that does not fold: as it was


def test_the_skin_above_a_moved_lid_comes_with_it():
    """What `_lids` adds to the driver's lid move goes LID_SKIN_FOLLOW of the way to the skin next
    to the upper lid (`_lid_skin`'s ring: each point the mean of its contour neighbours' moves, the
    corners still); nothing else moves, and an eye left as it is moves no skin."""
    from realtime.mesh import fuse as F

    up, lo = F._LIDS[0]
    ring, weights = F._LID_SKIN[0]
    assert len(ring) >= 5 and not set(ring) & (set(T.RIGHT_EYE_UPPER) | set(T.RIGHT_EYE_LOWER))
    assert (weights.sum(1) <= 1 + 1e-12).all() and (weights.sum(1) > 0).all()
    rng = np.random.default_rng(2)
    shape = np.zeros((T.N_LANDMARKS, 3))
    shape[:, :2] = rng.uniform(-1, 1, (T.N_LANDMARKS, 2))
    shape[lo, 1] = shape[up, 1] + 0.3
    rest = 0.5                                     # the eye at 0.6 of its open gap: narrowed more
    for follow in (F.LID_SKIN_FOLLOW, 0.0):
        moved = shape.copy()
        F._lids(up, lo, moved, rest, F.LID_RESPONSE, F.LID_WIDEN_RESPONSE, F.LID_MEET, F._LID_SKIN[0], follow)
        lid_move = moved[up, 1] - shape[up, 1]
        assert (lid_move > 0.01).all()             # down the face: the gap closes further
        assert np.allclose(moved[ring, 1] - shape[ring, 1], follow * weights @ lid_move)
        others = np.setdiff1d(np.arange(T.N_LANDMARKS), np.concatenate([up, ring]))
        assert np.array_equal(moved[others], shape[others])
        assert np.array_equal(moved[ring, 0], shape[ring, 0])
    # as open as the avatar's: nothing moves, the skin neither
    shape[lo, 1] = shape[up, 1] + rest
    before = shape.copy()
    F._lids(up, lo, shape, rest, F.LID_RESPONSE, F.LID_WIDEN_RESPONSE, F.LID_MEET, F._LID_SKIN[0])
    assert np.array_equal(shape, before)


def test_the_recombiner_moves_the_skin_above_both_lids_with_them(astronaut_profile):
    """Through `Recombiner.canonical`, each eye's ring above its upper lid follows the lid by
    LID_SKIN_FOLLOW of what the response adds: a ring point over the lid's middle moves down by
    that share of its contour neighbours' extra move, one beside a corner by less (but some); at
    neutral nothing moves."""
    from realtime.mesh import fuse as F

    rec = Recombiner(astronaut_profile["neutral"], astronaut_profile.frame())
    n = rec.target_neutral
    assert np.array_equal(rec.canonical(FaceState(expression=np.zeros_like(n))), n)
    expr = np.zeros_like(n)
    for up, lo in F._LIDS:
        expr[up, 1] = 0.3 * (n[lo, 1] - n[up, 1])        # the driver's lid down 0.3 of the gap
    shape = rec.canonical(FaceState(expression=expr))
    adj = T.vertex_adjacency()
    for (up, _lo), (ring, _) in zip(F._LIDS, F._LID_SKIN):
        extra = shape[up, 1] - (n[up, 1] + expr[up, 1])     # what the response added: down the face
        assert (extra > 0.0).all()
        moved = shape[ring, 1] - n[ring, 1]
        for k, v in enumerate(ring):
            near = [i for i, u in enumerate(up) if v in adj[u]]
            assert near, v
            by_corner = any(v in adj[c] for c in (T.RIGHT_EYE_UPPER + T.LEFT_EYE_UPPER)
                            if c not in up)
            want = F.LID_SKIN_FOLLOW * extra[near].mean()
            if by_corner:
                assert 0.0 < moved[k] < want
            else:
                assert moved[k] == pytest.approx(want, rel=1e-6)
