"""realtime.tiers.warp: the warp tier (target texture on the recombined mesh, mouth cavity)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.face import geometry as G
from realtime.face import topology as T
from realtime.face.state import FaceState
from realtime.image.render import RenderStage
from realtime.io.performance import Blendshapes
from realtime.mesh import rig as R
from realtime.mesh.fuse import Recombiner
from realtime.tiers.registry import GenerateStage, make_generator
from realtime.tiers.warp import WarpGenerator


class _Avatar:
    """Everything between a FaceState and the generated face crop, for one profile."""

    def __init__(self, profile):
        self.profile = profile
        self.rig = R.build(profile)
        self.rec = Recombiner(profile["neutral"], profile.frame())
        self.render_stage = RenderStage(self.rig)
        self.gen = make_generator("warp", profile, self.rig)
        self.blendshapes = Blendshapes(profile["neutral"].astype(np.float64))
        a = profile["crop_from_image"].astype(np.float64)
        s = profile.crop_size
        self.background = cv2.warpAffine(profile["image"], a, (s, s),
                                         flags=cv2.INTER_LINEAR).astype(np.float32)

    def __call__(self, state: FaceState) -> Frame:
        f = Frame(index=0, t_capture=0.0, state=state)
        f.vertices = self.rig.pose(self.rec(state), self.rec.pose(state))
        self.render_stage(f)
        GenerateStage(self.gen)(f)
        return f

    def mouth_pixels(self, f: Frame) -> np.ndarray:
        lo, hi = self.rig.ranges["mouth"]
        return (f.gbuf.tri_id >= lo) & (f.gbuf.tri_id < hi)


@pytest.fixture(scope="module")
def avatar(astronaut_profile):
    return _Avatar(astronaut_profile)


@pytest.fixture(scope="module")
def closed_avatar(astronaut_rgb, astronaut_landmarks):
    """The astronaut with her lips closed (inner lip pairs moved together): the photo has no
    mouth interior to show, so an open mouth must be synthesised."""
    from profiles.enroll import build_profile

    lm = np.array(astronaut_landmarks)
    for up, lo in zip(T.INNER_LIP_UPPER[1:-1], T.INNER_LIP_LOWER[1:-1]):
        lm[up] = lm[lo] = 0.5 * (lm[up] + lm[lo])
    profile = build_profile(astronaut_rgb, lm, name="closed", source="astronaut")
    return _Avatar(profile)


def test_neutral_render_reproduces_the_photo_inside_the_face(avatar):
    f = avatar(FaceState.neutral())
    out = f.render
    s = avatar.profile.crop_size
    assert out.shape == (s, s, 3) and out.dtype == np.float32
    face = avatar.profile["face_mask"].astype(bool)
    assert face.mean() > 0.1
    diff = np.abs(out - avatar.background).mean(2)
    assert diff[face].mean() < 1.5
    assert np.percentile(diff[face], 99) < 8.0
    # and around the face too (hair, background), except the undrawn last row/column
    inner = np.zeros_like(face)
    inner[: s - 1, : s - 1] = True
    assert diff[inner].mean() < 2.5


def test_a_turned_head_changes_the_face_pixels(avatar):
    f = avatar(FaceState(rotation=G.rotation_from_euler(25, 0, 0)))
    face = avatar.profile["face_mask"].astype(bool)
    assert np.abs(f.render - avatar.background).mean(2)[face].mean() > 10


def test_open_jaw_draws_the_mouth_fan(avatar):
    neutral = avatar(FaceState.neutral())
    n0 = avatar.mouth_pixels(neutral).sum()
    opened = avatar(FaceState(expression=avatar.blendshapes({"jaw_open": 1.0})))
    n1 = avatar.mouth_pixels(opened).sum()
    assert n1 > 1.5 * n0 and n1 > 200
    assert G.mouth_opening(opened.vertices) > 2 * G.mouth_opening(neutral.vertices)


def test_closed_mouth_target_gets_a_dark_cavity(closed_avatar):
    av = closed_avatar
    assert not av.gen.mouth.photo_teeth
    neutral = av(FaceState.neutral())
    assert av.mouth_pixels(neutral).sum() < 5  # nothing to draw when the lips touch
    assert av.gen._own_gap < 0.5
    f = av(FaceState(expression=av.blendshapes({"jaw_open": 1.0})))
    mouth = av.mouth_pixels(f)
    assert mouth.sum() > 200
    luma = f.render[mouth].mean(1)
    lips = av.background[mouth].mean()  # what the photo had there: lips and teeth
    # teeth (a crown's length under the upper lip) and a tongue take part of it now
    assert (luma < 40).mean() > 0.12, "no dark interior"
    assert (luma > 150).mean() > 0.05, "no teeth"
    assert luma.mean() < lips
    assert np.isfinite(f.render).all()


def test_the_drivers_teeth_reach_the_synthetic_mouth(closed_avatar):
    """A driver whose open mouth is mostly teeth (FaceState.teeth) gets a smile's teeth: both
    rows, in full light, so the mouth is brighter than the same opening with none."""
    av = closed_avatar
    expression = av.blendshapes({"jaw_open": 0.15})      # a grin's opening, not a dropped jaw's
    plain, grin = (av(FaceState(expression=expression, teeth=t)) for t in (0.0, 1.0))
    mouth = av.mouth_pixels(plain)
    assert mouth.sum() > 100 and (mouth == av.mouth_pixels(grin)).all()
    assert grin.render[mouth].mean() > plain.render[mouth].mean() + 20


def test_generator_registry(astronaut_profile, avatar):
    assert isinstance(make_generator("warp", astronaut_profile, avatar.rig), WarpGenerator)
    with pytest.raises(ValueError, match="warp"):
        make_generator("hologram", astronaut_profile, avatar.rig)


def _border_error(avatar, f, sides):
    """Per side: the largest distance (image px) between where each border pixel samples the
    photo and where it sits at rest, and the mean colour difference to the background."""
    from kernels import interpolate

    s = avatar.profile.crop_size
    uv = interpolate(f.gbuf, avatar.rig.triangles, np.ascontiguousarray(avatar.rig.attributes[:, :2]))
    inv = np.linalg.inv(np.vstack([avatar.profile["crop_from_image"].astype(np.float64), [0, 0, 1]]))
    ys, xs = np.mgrid[0:s, 0:s]
    rest = np.stack([inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2],
                     inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]], -1)
    picks = {"top": (0, slice(0, s - 1)), "left": (slice(0, s - 1), 0),
             "bottom": (s - 1, slice(None)), "right": (slice(None), s - 1)}
    out = {}
    for side in sides:
        idx = picks[side]
        d_uv = np.linalg.norm(uv[idx] - rest[idx], axis=-1).max()
        d_rgb = np.abs(f.render[idx] - avatar.background[idx]).mean()
        out[side] = (float(d_uv), float(d_rgb))
    return out


@pytest.mark.parametrize("yaw", [40.0, -40.0])
def test_crop_border_is_unchanged_under_a_big_yaw(avatar, yaw):
    """The crop's border pixels show the background whatever the head does, so the pasted crop
    meets the frame without a seam (top and left here; right and bottom in the next test)."""
    f = avatar(FaceState(rotation=G.rotation_from_euler(yaw, 0, 0)))
    s = avatar.profile.crop_size
    assert (f.gbuf.tri_id[: s - 1, : s - 1] >= 0).all()
    for side, (d_uv, d_rgb) in _border_error(avatar, f, ("top", "left")).items():
        assert d_uv < 0.5, side
        assert d_rgb < 2.0, side
    assert np.abs(f.render - avatar.background).mean() > 5  # the head did move


def test_crop_last_row_and_column_show_the_background(avatar):
    f = avatar(FaceState(rotation=G.rotation_from_euler(40.0, 0, 0)))
    assert (f.gbuf.tri_id >= 0).all()
    for side, (d_uv, d_rgb) in _border_error(avatar, f, ("bottom", "right")).items():
        assert d_uv < 0.5, side
        assert d_rgb < 2.0, side


def test_on_a_device_the_eyes_and_mouth_are_drawn_on_host_copies(astronaut_profile, avatar):
    """Off the CPU the eye and mouth layers run in numpy on downloaded copies of the G-buffer's ids
    and weights and of the textured crop, which goes back up: the same pixels as on the CPU."""
    from realtime.core.context import CpuContext
    from tests.host_device import CopyingContext

    ctx = CopyingContext()
    device = WarpGenerator(astronaut_profile, avatar.rig, ctx)
    assert device.host_layers and isinstance(device.eyes.ctx, CpuContext) and type(device.eyes.ctx) is CpuContext
    assert not avatar.gen.host_layers
    shut_open = avatar.blendshapes({"jaw_open": 1.0, "blink_left": 1.0, "blink_right": -0.4})   # wide
    for state in (FaceState.neutral(), FaceState(expression=shut_open)):
        f = avatar(state)
        ref = f.render
        ctx.downloads.clear()
        ctx.uploads.clear()
        got = device(f)
        s = avatar.rig.crop_size
        assert sorted(ctx.downloads) == sorted([(s, s, 3), (s, s), (s, s, 2)])   # crop, ids, weights
        assert (s, s, 3) in ctx.uploads
        np.testing.assert_array_equal(got, ref)


def _centre_column(avatar, f, half=2):
    """Luma of the mouth's central columns (mean of 2·half + 1), from the upper lip's edge down."""
    m = avatar.mouth_pixels(f)
    cx = int(round(np.nonzero(m)[1].mean()))
    luma = f.render.mean(2)
    cols = []
    for x in range(cx - half, cx + half + 1):
        rows = np.nonzero(m[:, x])[0]
        cols.append(luma[rows[0]:rows[-1] + 1, x])
    n = min(len(c) for c in cols)
    return np.mean([c[:n] for c in cols], axis=0)


@pytest.mark.parametrize("jaw", [0.3, 0.6, 0.75])
def test_the_photos_own_teeth_hang_from_the_upper_lip_unstretched(avatar, jaw):
    """The astronaut smiles with her upper teeth showing. Opening her mouth (here 1.7, 2.4 and
    2.8 times her own) shows them under the upper lip, stretched no more than PHOTO_STRETCH
    (their tips come into view), and the dark cavity below.
    Before (the demo, frames 168-183): the mesh stretched them over the opening (a jagged row
    with a dark notch in the middle), then cross-faded them into the drawn cavity: a flat grey
    band (her teeth over the dark throat) over the lower half of the mouth."""
    from realtime.tiers.warp import PHOTO_STRETCH

    assert avatar.gen.mouth.photo_teeth
    rest = _centre_column(avatar, avatar(FaceState.neutral()))
    f = avatar(FaceState(expression=avatar.blendshapes({"jaw_open": jaw})))
    col = _centre_column(avatar, f)
    assert len(col) > 1.6 * len(rest)
    # her teeth above their tips (which fade into the cavity), as at rest stretched PHOTO_STRETCH
    # times (2.3-2.5 grey levels apart; stretched with the opening before, 23-36)
    k = int(0.7 * PHOTO_STRETCH * len(rest))
    ref = np.interp(np.arange(k) / PHOTO_STRETCH, np.arange(len(rest)), rest)
    assert np.abs(col[:k] - ref).mean() < 8.0, "the photo's teeth are stretched or faded"
    if jaw >= 0.6:                        # (less open, a smile's lower teeth meet the upper)
        assert col[len(rest) + 1:].min() < 40, "no dark cavity under the teeth"
    luma = f.render[avatar.mouth_pixels(f)].mean(1)
    assert ((luma > 60) & (luma < 140)).mean() < 0.25, "a grey mix of teeth and throat"


def test_the_photos_dark_mouth_corners_do_not_hang(avatar):
    """Only what reads as teeth hangs from the upper lip (`PHOTO_DARK`): the astronaut's dark
    mouth corners beyond her teeth (luma 20-110, her teeth ~240) hung as a reddish-brown patch
    at the ends of her upper row (d10 #96-100); now the drawn cavity shows there, and her teeth
    (and the light gaps between them) hang as before."""
    from realtime.core.colour import LUMA
    from realtime.tiers.warp import PHOTO_DARK

    gen = avatar.gen
    f = avatar(FaceState(expression=avatar.blendshapes({"jaw_open": 0.6})))
    pm = gen.photo_mouth.bind(f.gbuf)
    teeth = gen.mouth.teeth_luma
    assert pm.teeth_luma == teeth > 150

    def hung(teeth_luma):
        got = []
        pm.teeth_luma = teeth_luma
        try:
            gen.mouth.apply(f.gbuf, avatar.rig, f.render.copy(),
                            photo=lambda *a: got.append((pm(*a), a[4])) or got[-1][0])
        finally:
            pm.teeth_luma = teeth
        (colours, share), there = got[0]
        return colours @ LUMA, share, (colours != there).any(1)      # hung: not what the mesh drew

    luma, before, moved = hung(0.0)
    _, share, _ = hung(teeth)
    dark = moved & (luma < PHOTO_DARK[0] * teeth)
    assert (dark & (before > 0.5)).sum() >= 5, "no dark corner hung without it"
    assert share[dark].max() < 1e-3
    light = luma > PHOTO_DARK[1] * teeth
    np.testing.assert_allclose(share[light], before[light], atol=1e-6)
