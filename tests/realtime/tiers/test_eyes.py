"""realtime.tiers.eyes: eyes as layers (an eyeball behind lids that slide over it)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from kernels._dispatch import cuda_available
from realtime.face import geometry as G
from realtime.face import topology as T
from realtime.face.state import FaceState
from realtime.tiers import eyes as eye_layer
from realtime.tiers.eyes import EYES, build_eye_model
from tests.realtime.tiers.test_warp import _Avatar

LUM = np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def avatar(astronaut_profile):
    return _Avatar(astronaut_profile)


def _eye_pixels(av, f, eye):
    lo, hi = av.rig.ranges["eyes"]
    half = (hi - lo) // 2
    a, b = (lo, lo + half) if eye == 0 else (lo + half, hi)
    return (f.gbuf.tri_id >= a) & (f.gbuf.tri_id < b)


def test_the_model_is_an_eye(astronaut_rgb, astronaut_landmarks):
    m = build_eye_model(astronaut_rgb, astronaut_landmarks)
    lm = np.asarray(astronaut_landmarks)
    skin = astronaut_rgb[int(lm[151, 1]), int(lm[151, 0])].astype(float) @ LUM
    assert m.sclera.shape[0] == 2 and np.isfinite(m.sclera).all() and np.isfinite(m.iris).all()
    assert (m.sclera.reshape(2, -1, 3) @ LUM).mean(1).min() > skin          # the white is white
    assert (m.iris.reshape(2, -1, 3) @ LUM).mean(1).max() < (m.sclera.reshape(2, -1, 3) @ LUM).mean(1).min()
    assert ((0.12 <= m.iris_radius) & (m.iris_radius <= 0.3)).all()



def test_the_white_is_the_photos_where_it_shows_and_continues_it_around():
    model = np.full((24, 40, 3), 200.0, np.float32)
    grid = np.zeros_like(model)
    grid[8:16, 4:14] = (230.0, 180.0, 170.0)                # a warm white, seen left of the iris
    seen = np.zeros(model.shape[:2], bool)
    seen[8:16, 4:14] = True
    per_width = 40 / (2 * eye_layer.SCLERA_X)
    white = eye_layer._photo_white(model, grid, seen, per_width)
    assert np.allclose(white[10:14, 6:12], grid[10:14, 6:12], atol=1.0)   # the photo's, as it is
    near = white[8:16, 16]                                   # beside it (where the iris was): tinted
    assert (near[:, 0] - near[:, 2] > 20).all() and (near[:, 0] > 200).all()
    assert np.allclose(white[:, 36:], model[:, 36:], atol=1.0)            # far from it: the model
    assert np.array_equal(eye_layer._photo_white(model, grid, np.zeros_like(seen), per_width), model)
    few = np.zeros_like(seen)
    few[10, 6:6 + eye_layer.MIN_SEEN_WHITE - 1] = True       # a few stray texels are not a white
    assert np.array_equal(eye_layer._photo_white(model, grid, few, per_width), model)


def _iris_centroid(f, mask):
    """Centroid of the darkest third of the eye-opening pixels (the iris)."""
    ys, xs = np.nonzero(mask)
    lum = f.render[ys, xs] @ LUM
    dark = lum <= np.percentile(lum, 33)
    return np.array([xs[dark].mean(), ys[dark].mean()])


def test_the_iris_follows_the_gaze(avatar, astronaut_profile):
    n = astronaut_profile["neutral"].astype(np.float64)
    iod = G.interocular(n)
    rest = avatar(FaceState())
    look = np.zeros((T.N_LANDMARKS, 3))
    look[list(T.RIGHT_IRIS) + list(T.LEFT_IRIS), 0] = 0.06 * iod   # both irises to one side
    moved = avatar(FaceState(expression=look))
    for eye in (0, 1):
        m0, m1 = _eye_pixels(avatar, rest, eye), _eye_pixels(avatar, moved, eye)
        shift = _iris_centroid(moved, m1) - _iris_centroid(rest, m0)
        assert shift[0] * np.sign(avatar.rig.crop_from_image[0, 0]) > 1.0   # crop px, towards +x
        assert abs(shift[1]) < abs(shift[0])


def test_foreshorten_narrows_the_iris_along_the_way_it_looks():
    e = eye_layer.EYEBALL
    off = np.array([0.6 * e], np.float32)            # sin θ = 0.6: cos θ = 0.8
    zero = np.zeros(1, np.float32)
    one = np.ones(1, np.float32)
    dx, dy = eye_layer._foreshorten(np, 0.8 * one, zero, off, zero)       # 0.8 radii along: the rim
    assert np.hypot(dx, dy)[0] == pytest.approx(1.0, abs=1e-6)
    dx, dy = eye_layer._foreshorten(np, zero, one, off, zero)             # 1 radius across: unchanged
    assert np.hypot(dx, dy)[0] == pytest.approx(1.0, abs=1e-6)
    dx, dy = eye_layer._foreshorten(np, 0.8 * one, zero, zero, -off)      # looking up: along is across
    assert np.hypot(dx, dy)[0] == pytest.approx(0.8, abs=1e-6)
    dx, dy = eye_layer._foreshorten(np, 0.3 * one, -0.4 * one, zero, zero)  # straight ahead: as is
    assert (dx[0], dy[0]) == pytest.approx((0.3, -0.4))
    for tiny in (5e-7, 1e-6, 2e-6):       # review: a tiny diagonal look shrank the iris to half
        ox, oy = np.array([tiny, tiny], np.float32) / np.sqrt(2), np.array([0.0, tiny], np.float32)
        dx, dy = eye_layer._foreshorten(np, 0.6 * np.ones(2, np.float32), -0.8 * np.ones(2, np.float32), ox, oy)
        assert np.hypot(dx, dy) == pytest.approx(1.0, abs=1e-4)
    far = np.array([10.0], np.float32)                                    # past the eyeball: bounded
    dx, _ = eye_layer._foreshorten(np, one, zero, far, zero)
    assert dx[0] == pytest.approx(1.0 / eye_layer.FORESHORTEN_MIN)


def _posed_iris(av, f, eye):
    """(eye frame row of `EyeLayer.frames`, the posed iris centre in crop px, its radius in px)."""
    fr = av.gen.eyes.frames(f.vertices)[eye]
    centre = fr[:2] + fr[6] * (fr[7] * fr[2:4] + fr[8] * fr[4:6])
    return fr, centre, float(av.gen.eyes.model.iris_radius[eye]) * fr[6]


def _iris_box(av, f, eye):
    """(pixel count, spread along the eye's corner axis, spread across it: standard deviations,
    px) of the iris drawn black on a white eyeball, within 1.6 iris radii of the posed centre."""
    fr, centre, radius = _posed_iris(av, f, eye)
    ys, xs = np.nonzero(_eye_pixels(av, f, eye) & ((f.render @ LUM) < 128))
    p = np.stack([xs - centre[0], ys - centre[1]], 1)
    p = p[np.hypot(*p.T) < 1.6 * radius]
    return len(p), (p @ fr[2:4]).std(), (p @ fr[4:6]).std()


def test_an_iris_looking_aside_is_narrowed_as_a_turned_eyeball_shows_it(avatar, astronaut_profile, monkeypatch):
    """Before: a flat disc slid aside, which the tracker read as a smaller look (self-drive
    gaze_x gain 0.81-0.86 against the mesh's 1.00)."""
    layer = avatar.gen.eyes
    monkeypatch.setattr(layer, "iris", np.zeros_like(layer.iris))
    monkeypatch.setattr(layer, "sclera", np.full_like(layer.sclera, 255.0))
    monkeypatch.setattr(eye_layer, "MARGIN", (0.0, 0.0))     # no photo lashes among the iris pixels
    n = astronaut_profile["neutral"].astype(np.float64)
    look = np.zeros((T.N_LANDMARKS, 3))
    look[list(T.RIGHT_IRIS) + list(T.LEFT_IRIS), 0] = 0.05 * G.interocular(n)

    def irises():
        return {k: [_iris_box(avatar, avatar(FaceState(expression=g * look)), e) for e in (0, 1)]
                for k, g in (("rest", 0.0), ("aside", 1.0))}

    turned = irises()
    monkeypatch.setattr(eye_layer, "EYEBALL", 1e6)                            # a flat disc
    flat = irises()
    for e in (0, 1):
        assert turned["rest"][e] == flat["rest"][e]           # the photo's own look: as sampled
        count, along, across = turned["aside"][e]
        assert count < 0.95 * flat["aside"][e][0]
        assert along < 0.92 * flat["aside"][e][1]
        assert across == pytest.approx(flat["aside"][e][2], rel=0.04)


def test_wider_lids_show_more_eyeball_and_shut_lids_none(avatar, astronaut_profile):
    blend = avatar.blendshapes
    rest = avatar(FaceState())
    wide = avatar(FaceState(expression=-0.5 * (blend({"blink_right": 1.0}))))
    shut = avatar(FaceState(expression=blend({"blink_right": 1.0, "blink_left": 1.0})))
    assert _eye_pixels(avatar, wide, 0).sum() > 1.2 * _eye_pixels(avatar, rest, 0).sum()
    assert _eye_pixels(avatar, shut, 0).sum() == 0 and _eye_pixels(avatar, shut, 1).sum() == 0


def test_the_layer_draws_only_inside_the_openings(avatar):
    f = avatar(FaceState())
    eyes = _eye_pixels(avatar, f, 0) | _eye_pixels(avatar, f, 1)
    plain = f.render.copy()
    avatar.gen.eyes.apply(f.gbuf, f.vertices, plain)      # drawing again changes nothing outside
    assert np.array_equal(plain[~eyes], f.render[~eyes])
    assert eyes.sum() > 20


def test_without_eyeballs_the_openings_keep_the_photo_and_the_lids_are_drawn(avatar, astronaut_profile,
                                                                          monkeypatch):
    """eyeballs=False (the swap: the driver's eyes show there): the eye-fan pixels keep the
    photo's texture, everything else is what the full layer draws."""
    f = avatar(FaceState())
    eyes = _eye_pixels(avatar, f, 0) | _eye_pixels(avatar, f, 1)
    layer = avatar.gen.eyes
    base = f.render.copy()
    monkeypatch.setattr(layer, "apply", lambda *a, **k: None)
    photo = avatar(FaceState()).render                       # the warp tier without the layer
    monkeypatch.undo()
    monkeypatch.setattr(layer, "eyeballs", False)
    bare = photo.copy()
    layer.apply(f.gbuf, f.vertices, bare)
    assert np.array_equal(bare[eyes], photo[eyes]) and not np.array_equal(base[eyes], photo[eyes])
    assert np.array_equal(bare[~eyes], base[~eyes])



def _to_lid(av, f):
    """(S, S) px from each eye-fan pixel to its lid: the distance from the pixel to the line
    through its fan triangle's two contour vertices (the fan radiates from the opening's middle)."""
    tri = np.maximum(f.gbuf.tri_id, 0)
    a = f.vertices[av.rig.triangles[tri, 0], :2].astype(np.float64)
    b = f.vertices[av.rig.triangles[tri, 1], :2].astype(np.float64)
    ys, xs = np.mgrid[: tri.shape[0], : tri.shape[1]]
    ab, ap = b - a, np.stack([xs - a[..., 0], ys - a[..., 1]], -1)
    cross = ab[..., 0] * ap[..., 1] - ab[..., 1] * ap[..., 0]
    return np.abs(cross) / np.maximum(np.hypot(ab[..., 0], ab[..., 1]), 1e-9)


def _without_lash_lines(av, monkeypatch):
    """The layer without the lash lines it draws over the contour (their own tests)."""
    monkeypatch.setattr(av.gen.eyes, "_wide_lashes", lambda *a, **k: None)
    monkeypatch.setattr(av.gen.eyes, "apply_lids", lambda *a, **k: None)


def _warp_only(av, state, monkeypatch):
    """The render of `state` by the warp tier without the eye layer."""
    with monkeypatch.context() as m:
        m.setattr(av.gen.eyes, "apply", lambda *a, **k: None)
        return av(state).render


def _upper_fan(av, f, eye):
    """(S, S) bool: one eye's fan pixels along its upper lid."""
    layer = av.gen.eyes
    k = f.gbuf.tri_id - layer.lo - eye * layer.per_eye
    return _eye_pixels(av, f, eye) & (k < layer.upper_count)


def _kept(av, state, monkeypatch, margin):
    """Frame `state` drawn with the lids' margin `margin` (eye widths, upper and lower): per eye,
    (pixels where the opening kept what the warp drew, each pixel's px to its lid (`_to_lid`),
    the upper lid's fan pixels, the eye's pixels, the frame's eye-frame row, the eye's opening
    over the photo's held to 1)."""
    layer = av.gen.eyes
    monkeypatch.setattr(eye_layer, "MARGIN", margin)
    _without_lash_lines(av, monkeypatch)
    f = av(state)
    photo = _warp_only(av, state, monkeypatch)
    fr = layer.frames(f.vertices)
    narrow = np.minimum(layer.opening(fr), 1.0)
    to_lid = _to_lid(av, f)
    out = []
    for e in (0, 1):
        eyes = _eye_pixels(av, f, e)
        same = eyes & (np.abs(f.render - photo).max(-1) < 1e-3)
        out.append((same, to_lid, _upper_fan(av, f, e), eyes, fr[e], float(narrow[e])))
    return out


def test_the_lids_margin_keeps_the_photo_and_moves_with_the_lids(avatar, monkeypatch):
    """Within MARGIN eye widths of the contour (upper, lower), times the opening over the
    photo's as far as 1, the opening keeps what the warp drew there (the photo's lashes and the
    lid's shadow, through which MediaPipe's contour runs); inside it the eyeball is drawn, over
    a pixel's anti-aliased edge. The band stays at the lids as they open wider, and narrows as
    they come down."""
    blend = avatar.blendshapes
    margin = (0.15, 0.06)       # wider than MARGIN: a band of a few pixels on this small crop
    monkeypatch.setattr(eye_layer, "STALE_IRIS", -10.0)   # where the photo's iris was: its own test
    shown = {}
    for name, right, left in (("rest", 0.0, 0.0), ("wide", -0.5, -0.5), ("half", 0.3, 0.3), ("uneven", 0.3, 0.1)):
        state = FaceState(expression=blend({"blink_right": right, "blink_left": left}))
        for e, (same, to_lid, upper, eyes, fr, narrow) in enumerate(_kept(avatar, state, monkeypatch, margin)):
            for lid, m in ((upper, margin[0]), (eyes & ~upper, margin[1])):   # each lid its own band
                band = m * fr[6] * narrow - 0.5           # kept whole up to here, drawn beyond
                assert (same & lid).sum() > 0, (name, e, m)
                assert to_lid[same & lid].max() <= band + 0.05, (name, e, m)
                assert to_lid[lid & ~same].min() > band - 0.05, (name, e, m)
            shown[name, e] = (upper & ~same).sum() / upper.sum()
    for e in (0, 1):     # narrowing with the opening: the lid's fan keeps its share of eyeball
        assert shown["half", e] > 0.6 * shown["rest", e] > 0.05, shown


def _painted_irises(av, profile):
    """The avatar's texture with the photo's irises (their whole radius) painted pure green."""
    tex = np.array(av.gen.image, dtype=np.float32, copy=True)
    lm = np.asarray(profile["landmarks"], np.float64)
    to_tex = np.diag(av.gen._to_texture)
    ys, xs = np.mgrid[: tex.shape[0], : tex.shape[1]]
    for e, (outer, inner, centre, *_) in enumerate(EYES):
        width = np.linalg.norm(lm[outer, :2] - lm[inner, :2]) * to_tex[0]
        c = lm[centre, :2] * to_tex
        disc = np.hypot(xs - c[0], ys - c[1]) < av.gen.eyes.model.iris_radius[e] * width
        tex[disc] = (0.0, 255.0, 0.0)
    return tex.astype(av.gen.image.dtype)


def _green(f, mask):
    g = f.render
    return mask & (g[..., 1] - np.maximum(g[..., 0], g[..., 2]) > 100)


def _off_drawn_iris(av, f, eye, margin_px=1.0):
    """(S, S) bool: pixels more than `margin_px` outside the iris the layer draws on frame `f`,
    an ellipse turned the way it looks (`_foreshorten`)."""
    layer = av.gen.eyes
    fr, centre, radius = _posed_iris(av, f, eye)
    ys, xs = np.mgrid[: f.render.shape[0], : f.render.shape[1]]
    px, py = xs - centre[0], ys - centre[1]
    dx = (px * fr[2] + py * fr[3]) / radius
    dy = (px * fr[4] + py * fr[5]) / radius
    ahead = layer.model.iris_rest[eye]
    dx, dy = eye_layer._foreshorten(np, dx, dy, np.float64(fr[7] - ahead[0]), np.float64(fr[8] - ahead[1]))
    return np.hypot(dx, dy) > 1.0 + margin_px / radius


@pytest.mark.parametrize("blink", [0.0, -0.5, 0.4])
def test_the_photo_source_is_where_the_warp_took_each_eye_pixel_from(avatar, astronaut_profile, blink):
    """`_photo_source` against the warp's own texture coordinates (with `lid_uv`'s move of the
    lids' texture as an eye shuts), mapped back into the photo's eye frame."""
    layer, gen = avatar.gen.eyes, avatar.gen
    f = avatar(FaceState(expression=blink * avatar.blendshapes({"blink_right": 1.0, "blink_left": 0.7})))
    fr = layer.frames(f.vertices)
    uv = layer.lid_uv(gen._host_uv, f.vertices, gen._to_texture)
    uv = (gen._host_uv if uv is None else uv) / np.diag(gen._to_texture)      # photo px per vertex
    lm = np.asarray(astronaut_profile["landmarks"], np.float64)
    ys, xs = np.nonzero((f.gbuf.tri_id >= layer.lo) & (f.gbuf.tri_id < layer.hi))
    tri, b = f.gbuf.tri_id[ys, xs], f.gbuf.bary[ys, xs].astype(np.float64)
    w = np.stack([1.0 - b[:, 0] - b[:, 1], b[:, 0], b[:, 1]], 1)
    photo_px = (w[:, :, None] * uv[avatar.rig.triangles[tri]]).sum(1)
    t = tri - layer.lo
    e = (t >= layer.per_eye).astype(int)
    sx, sy = layer._photo_source(t, b.astype(np.float32), layer.closure(fr)[e].astype(np.float32))
    for k, (outer, inner, *_) in enumerate(EYES):
        mid, u, v, width = eye_layer._eye_frame(lm, outer, inner, eye_layer._down(lm))
        d = photo_px[e == k] - mid
        assert np.abs(d @ u / width - sx[e == k]).max() < 1e-4
        assert np.abs(d @ v / width - sy[e == k]).max() < 1e-4


def test_a_disc_is_anti_aliased_over_one_pixel():
    rho = np.array([2.0 - 0.5 / 8, 2.0, 2.0 + 0.5 / 8, 1.0, 3.0])
    assert eye_layer._disc(np, rho, 2.0, 8.0) == pytest.approx([1.0, 0.5, 0.0, 1.0, 0.0])
    per = np.array([4.0, 16.0])                        # a per-point scale: px per unit there
    assert eye_layer._disc(np, 2.0 + 0.25 / per, 2.0, per) == pytest.approx([0.25, 0.25])


def test_the_margin_shows_the_eyeball_where_the_photos_iris_was(avatar, astronaut_profile, monkeypatch):
    """Review: with the gaze aside and down, the band kept the photo's iris top under the upper
    lid (a dark arc where the white should be). Where the warp drew the photo's iris (its whole
    disc: its dark limbus too; with the lids stretched wide, or shutting, which moves their
    texture, `lid_uv`) and the drawn one is not, the band shows the eyeball, but for its outer
    STALE_KEEP, at least STALE_KEEP_PX (the lash line). At rest (the drawn iris where the
    photo's is) the band is as it was."""
    rest = avatar(FaceState()).render
    with monkeypatch.context() as m:
        m.setattr(eye_layer, "STALE_IRIS", -10.0)
        assert np.allclose(avatar(FaceState()).render, rest, atol=1e-2)

    monkeypatch.setattr(avatar.gen, "image", _painted_irises(avatar, astronaut_profile))
    margin = (0.3, 0.1)                                      # a deep band: the iris's top lies in it
    monkeypatch.setattr(eye_layer, "MARGIN", margin)
    n = astronaut_profile["neutral"].astype(np.float64)
    iod = G.interocular(n)
    layer = avatar.gen.eyes
    _without_lash_lines(avatar, monkeypatch)

    def left_green(keep, lids=0.0, look=(0.06, 0.02)):
        monkeypatch.setattr(eye_layer, "STALE_KEEP", keep)
        monkeypatch.setattr(eye_layer, "STALE_KEEP_PX", 0.0)
        gaze = np.zeros((T.N_LANDMARKS, 3))
        gaze[list(T.RIGHT_IRIS) + list(T.LEFT_IRIS), :2] = (look[0] * iod, look[1] * iod)
        state = FaceState(expression=gaze + lids * avatar.blendshapes({"blink_right": 1.0, "blink_left": 1.0}))
        f = avatar(state)
        warp = _warp_only(avatar, state, monkeypatch)            # the photo's iris green in it
        iris_there = cv2.dilate((warp[..., 1] - np.maximum(warp[..., 0], warp[..., 2]) > 5).astype(np.uint8),
                                np.ones((5, 5), np.uint8)).astype(bool)
        to_lid = _to_lid(avatar, f)
        frames = layer.frames(f.vertices)
        narrow = np.clip(layer.opening(frames), 0.0, 1.0)
        out = []
        for e in (0, 1):
            fr = frames[e]
            eyes = _eye_pixels(avatar, f, e)
            upper = _upper_fan(avatar, f, e)
            green = _green(f, eyes & _off_drawn_iris(avatar, f, e))
            band = np.where(upper, margin[0], margin[1]) * fr[6] * narrow[e]
            strip = band * keep + 0.5
            green_deeper = int((green & (to_lid > strip)).sum())
            # ... and the rest of the band (what the warp drew from elsewhere) stays as it was
            rest = eyes & (to_lid < band - 0.5) & ~iris_there
            assert np.abs(f.render[rest] - warp[rest]).max(initial=0.0) < 1e-3, (lids, look, e)
            out.append((int(green.sum()), green_deeper))
        return out

    # wide lids stretch the photo's iris with them; shutting ones move their texture (lid_uv)
    for lids, look in ((0.0, (0.06, 0.02)), (-0.5, (0.06, 0.02)), (0.35, (0.0, 0.04)), (0.35, (0.06, -0.02))):
        for count, _ in left_green(0.0, lids, look):
            assert count == 0, (lids, look)                    # none of the photo's iris left ...
        for _, deeper in left_green(0.35, lids, look):
            assert deeper == 0, (lids, look)                   # ... but in the lash line's strip
    assert sum(c for c, _ in left_green(0.35)) > 0             # which keeps some of it
    monkeypatch.setattr(eye_layer, "STALE_IRIS", -10.0)        # the band as it was
    for count, _ in left_green(0.0):
        assert count > 5


def test_the_openings_border_is_anti_aliased(avatar, monkeypatch):
    import cv2

    monkeypatch.setattr(eye_layer, "MARGIN", (0.0, 0.0))     # the lids' margin: its own test
    f = avatar(FaceState())
    eyes = _eye_pixels(avatar, f, 0) | _eye_pixels(avatar, f, 1)
    black, white = np.zeros_like(f.render), np.full_like(f.render, 255.0)
    avatar.gen.eyes.apply(f.gbuf, f.vertices, black)
    avatar.gen.eyes.apply(f.gbuf, f.vertices, white)
    under = (white - black)[..., 0] / 255.0          # 1 − coverage: how much of what was there shows
    border = eyes & ~cv2.erode(eyes.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert (under[eyes] <= 0.5 + 1e-5).all()                   # at least half drawn, everywhere
    assert (under[border] > 0.05).mean() > 0.25                # the border pixels are blended ...
    inside = cv2.erode(eyes.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert inside.sum() > 10 and np.allclose(under[inside], 0.0, atol=1e-5)   # ... the inside is not


def test_lid_texture_moves_only_as_the_eyes_shut(avatar):
    layer, gen = avatar.gen.eyes, avatar.gen
    open_ = avatar(FaceState())
    assert layer.lid_uv(gen._host_uv, open_.vertices, gen._to_texture) is None
    half = avatar(FaceState(expression=0.6 * avatar.blendshapes({"blink_right": 1.0})))
    uv = layer.lid_uv(gen._host_uv, half.vertices, gen._to_texture)
    assert uv is not None
    lower_r, upper_r = list(EYES[0][5][1:-1]), list(EYES[0][4][2:-2])
    lower_l = list(EYES[1][5][1:-1])
    down = np.sign(avatar.rig.crop_from_image[1, 1])          # image y grows down the face
    assert ((uv[lower_r, 1] - gen._host_uv[lower_r, 1]) * down > 0).all()   # lower lashes hide
    assert ((uv[upper_r, 1] - gen._host_uv[upper_r, 1]) * down < 0).all()   # lid skin comes down
    assert np.array_equal(uv[lower_l], gen._host_uv[lower_l])                # the open eye: as is


def _eye_luminance(av, f, eye):
    """Mean luminance of one eye's opening as the layer draws it on frame `f`."""
    out = f.render.copy()
    av.gen.eyes.apply(f.gbuf, f.vertices, out)
    return float((out[_eye_pixels(av, f, eye)] @ LUM).mean())


def test_a_narrowing_eye_dims_towards_its_lashes(avatar, monkeypatch):
    rest = avatar(FaceState())
    half = avatar(FaceState(expression=0.35 * avatar.blendshapes({"blink_right": 1.0})))  # ~half open
    dim_rest, dim_half = _eye_luminance(avatar, rest, 0), _eye_luminance(avatar, half, 0)
    monkeypatch.setattr(eye_layer, "SHOWN_FROM", 0.0)
    monkeypatch.setattr(eye_layer, "SHOWN_TO", 0.0)        # only the absolute CLOSED/OPEN: no dimming
    lit_rest, lit_half = _eye_luminance(avatar, rest, 0), _eye_luminance(avatar, half, 0)
    assert dim_rest == pytest.approx(lit_rest)                     # an open eye is not dimmed
    assert dim_half < 0.85 * lit_half                               # a half-shut one is
    assert _eye_luminance(avatar, half, 1) == pytest.approx(_eye_luminance(avatar, rest, 1), rel=0.02)


def _gaze_and_blink(av, gaze, blink):
    """Both irises moved `gaze` interoculars along x; the right lids `blink`, the left 0.7 of it."""
    n = av.profile["neutral"].astype(np.float64)
    look = np.zeros((T.N_LANDMARKS, 3))
    look[list(T.RIGHT_IRIS) + list(T.LEFT_IRIS), 0] = gaze * G.interocular(n)
    return FaceState(expression=look + av.blendshapes({"blink_right": blink, "blink_left": 0.7 * blink}))


def _sclera_pixels(av, f, eye):
    """One eye's opening minus a disc of 1.3 iris radii about the posed iris centre."""
    mask = _eye_pixels(av, f, eye)
    _, centre, radius = _posed_iris(av, f, eye)
    ys, xs = np.mgrid[: mask.shape[0], : mask.shape[1]]
    return mask & (np.hypot(xs - centre[0], ys - centre[1]) > 1.3 * radius)


@pytest.fixture(scope="module")
def shadowed_avatar(astronaut_rgb, astronaut_landmarks):
    """The astronaut with her eye openings at 0.6 of their light: whites in the lids' shadow."""
    import cv2

    from profiles.enroll import build_profile

    lm = np.asarray(astronaut_landmarks)
    image = astronaut_rgb.copy()
    mask = np.zeros(image.shape[:2], np.uint8)
    for _, _, _, _, upper, lower in EYES:
        poly = np.concatenate([lm[list(upper), :2], lm[list(reversed(lower[1:-1])), :2]])
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
    image[mask > 0] = (0.6 * image[mask > 0]).astype(np.uint8)
    return _Avatar(build_profile(image, lm, name="shadowed", source="test"))


def test_the_sclera_has_the_photos_light_at_rest_and_a_lit_front(shadowed_avatar):
    av = shadowed_avatar

    def sclera(f, eye, image=None):
        return float(((f.render if image is None else image)[_sclera_pixels(av, f, eye)] @ LUM).mean())

    rest = av(FaceState())
    for eye in (0, 1):     # an eye at rest looks like the photo's (a uniform light: 1.5× it)
        assert sclera(rest, eye) == pytest.approx(sclera(rest, eye, av.background), rel=0.12)
    aside = av(_gaze_and_blink(av, 0.06, 0.0))
    for eye in (0, 1):     # looking aside shows the eyeball's front, which is lit
        assert sclera(aside, eye) > 1.15 * sclera(rest, eye)


# ------------------------------------------------------------------------------ closed lids
def test_the_lid_region_lies_above_the_upper_lid():
    from realtime.tiers.eyes import lid_region

    tris = np.asarray(T.face_triangles())
    for _, _, _, _, upper, lower in EYES:
        region, ring1, ring2 = lid_region(tris, upper, lower)
        assert len(region) >= 14 and len(ring1) >= 5 and len(ring2) >= len(ring1)
        assert not np.isin(tris[region], list(lower[1:-1])).any()      # nothing below the lid
        assert not set(ring1) & set(upper) and not set(ring2) & (set(upper) | set(ring1))
        assert np.isin(tris[region], list(upper[1:-1]) + list(ring1)).any(axis=1).all()


def _saturation(rgb) -> np.ndarray:
    """(2,) CIE a*, b* over L* + 16 of an RGB colour 0..255: what stays the same as a surface is
    lit more or less (`eyes._lab_mix`)."""
    lab = cv2.cvtColor(np.float32(rgb).reshape(1, 1, 3) / 255.0, cv2.COLOR_RGB2Lab).reshape(3)
    return lab[1:] / (lab[0] + 16.0)


def _in_shade(rgb, k: float) -> np.ndarray:
    """RGB 0..255 `rgb` at `k` of its light (scaled in linear sRGB): the same skin in shade."""
    c = np.asarray(rgb, np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4) * k
    return 255.0 * np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


def test_a_shut_lid_has_the_cheeks_colour_lit_at_least_a_share_of_them(monkeypatch):
    """The cheeks' colour at the socket's light, at least LID_FLOOR of theirs; its saturation
    LID_CHROMA of the way to the socket's (all of it the cheeks' at 0)."""
    from realtime.tiers.eyes import LID_CHROMA, LID_FLOOR, lid_colour

    cheek = np.array([200.0, 150.0, 130.0])
    dark = np.array([60.0, 40.0, 45.0])                  # a socket in shadow, or eye make-up
    greyish = np.array([212.0, 168.0, 158.0])            # lighter than the cheeks: its own light
    hue = lambda c: c / (c @ LUM)
    for ring, light in ((dark, LID_FLOOR * (cheek @ LUM)), (greyish, greyish @ LUM)):
        lid = lid_colour(ring, cheek)
        assert lid @ LUM == pytest.approx(light, rel=1e-3)
        # LID_CHROMA of the way from the cheeks' saturation to the socket's (relighting the lid
        # in RGB moves it a little)
        sat = _saturation(lid) - _saturation(cheek)
        share = np.linalg.norm(sat) / np.linalg.norm(_saturation(ring) - _saturation(cheek))
        assert share == pytest.approx(LID_CHROMA, abs=0.06)
    assert np.array_equal(lid_colour(dark, np.zeros(3)), dark.astype(np.float32))   # no cheeks: as is
    monkeypatch.setattr(eye_layer, "LID_CHROMA", 0.0)
    lid = lid_colour(dark, cheek)
    np.testing.assert_allclose(hue(lid), hue(cheek), rtol=1e-3)                       # the cheeks' hue


def test_a_lid_lit_from_the_skin_in_its_socket_keeps_the_skins_colour():
    """A socket that is the cheeks' own skin in shade (the same colour at a fraction of its
    light) gives a shut lid of the cheeks' colour, not a greyer one. Before: the socket's CIE
    a*, b* were mixed in as they are, and a shade's a*, b* shrink with its L*: s0's shut lids
    (cheeks L* 73, a* 14, b* 20; her left socket L* 38, a* 8, b* 11) were lit to L* 68 at a* 9,
    b* 13, a grey-lavender patch in her warm face."""
    from realtime.tiers.eyes import lid_colour

    for cheek in (np.array([218.0, 169.0, 143.0]), np.array([208.0, 173.0, 103.0])):   # s0's, s9's
        for k in (0.12, 0.3, 0.6):
            lid = lid_colour(_in_shade(cheek, k), cheek)
            np.testing.assert_allclose(_saturation(lid), _saturation(cheek), atol=0.008)


def test_a_lid_is_never_more_saturated_than_the_cheeks():
    """A socket more saturated than the cheeks (a tinted photo's shade, s12's; red eye make-up)
    lends the lid its hue, not more colour than the lit skin has: lit to the cheeks' light at
    its own saturation, it was an orange oval (s12) or a painted one."""
    from realtime.tiers.eyes import lid_colour

    cheek = np.array([208.0, 184.0, 174.0])              # s12's cheeks: L* 76, a* 7, b* 8
    for socket in (np.array([77.0, 56.0, 48.0]), np.array([120.0, 40.0, 60.0])):
        lid = lid_colour(socket, cheek)
        assert np.linalg.norm(_saturation(lid)) <= np.linalg.norm(_saturation(cheek)) + 0.005
        turn = _saturation(lid) @ _saturation(socket) / np.linalg.norm(_saturation(lid))
        assert turn > _saturation(cheek) @ _saturation(socket) / np.linalg.norm(_saturation(cheek))


def test_lid_shade_is_a_rounded_lid():
    """`lid_shade`: lit where the lid faces forward, darker towards the lash line and the corners,
    and never lighter further down the lid: no fold line across it (a real shut lid's light falls
    from its first ring to its lash line without a dip; the fold drawn before dipped 0.1 a third
    of the way down and rose again)."""
    from realtime.tiers.eyes import LID_ROLL, LID_SIDES, lid_shade

    s = np.linspace(0.0, 1.0, 201)
    for side in (0.0, 0.25, 1.0):                         # the middle, on the way, the corners
        shade = lid_shade(np, s, np.full_like(s, side))
        assert np.all(np.diff(shade) <= 1e-9), side
        assert np.all(shade[s <= LID_ROLL[0]] == shade[0]), side
        assert shade[0] == pytest.approx(1.0 - LID_SIDES * side)
        assert shade[-1] == pytest.approx((1.0 - LID_ROLL[1]) * (1.0 - LID_SIDES * side))


def test_a_shut_lid_has_no_line_across_it(avatar, monkeypatch):
    """Down the middle of the drawn shut lid (its own colour, grain, crease and lash line aside),
    from the first ring above the contour to the contour, the light never rises again: no dark
    line across the lid. The fold drawn before (`LID_FOLD`, a dip of 0.1 a third of the way down)
    drew one, 3-5 L* deep on the self-drives' shut eyes (d0 #65, d10 #333, d14 #51), where the
    real lids fall smoothly."""
    f, lower, v, gy, gx, lum, _ = _shut_lids_shaded(avatar, monkeypatch)
    edges = np.linspace(0.0, 1.0, 21)
    for eye in (0, 1):
        along = _along(v, eye, gx, gy)
        lid = _lid_pixels(avatar, f, eye) & (f.gbuf.tri_id >= 0) & (along < 0.2)
        rows = [np.median(lum[lid & (lower >= a) & (lower < b)]) for a, b in zip(edges[:-1], edges[1:])
                if (lid & (lower >= a) & (lower < b)).sum() >= 3]
        assert len(rows) >= 10, (eye, len(rows))
        # within 1 % (pixels of a bin lie at different distances from the corners); the fold's
        # line rose again by 8 % of the lid's light
        assert np.diff(rows).max() < 0.01 * max(rows), (eye, np.round(rows, 1))


def test_a_shut_lid_is_shaded_as_a_rounded_lid(avatar, monkeypatch):
    """The drawn shut lid (grain and crease aside) is not one flat colour: darker towards the
    lash line than over the eyeball's bulge, and towards the corners than in the middle. Before:
    1 − 0.03 of it and 0.08 more at the edge, a flat patch (lash-ward 0.95 of the bulge's light,
    the corners as the middle)."""
    f, lower, v, gy, gx, lum, _ = _shut_lids_shaded(avatar, monkeypatch)
    for eye in (0, 1):
        along = _along(v, eye, gx, gy)
        lid = _lid_pixels(avatar, f, eye) & (f.gbuf.tri_id >= 0)
        bulge = np.median(lum[lid & (along < 0.2) & (lower > 0.1) & (lower < 0.25)])
        lashward = np.median(lum[lid & (along < 0.2) & (lower > 0.75) & (lower < 0.9)])
        assert lashward < 0.9 * bulge, (eye, lashward, bulge)
        middle = np.median(lum[lid & (along < 0.1) & (lower > 0.5)])
        sides = np.median(lum[lid & (along > 0.35) & (along < 0.43) & (lower > 0.5)])
        assert sides < 0.96 * middle, (eye, sides, middle)


def test_a_shut_lid_keeps_its_colour_in_its_shade(avatar, monkeypatch):
    """Towards the lash line the drawn shut lid (grain and crease aside) is darker at the same
    CIE a*, b*, as skin in shade is: the drivers' real shut lids are as red as their cheeks at
    4–7 L* darker. Before: the lid's RGB scaled down, its a*, b* falling with its L*, 0.5–4 a*
    less red than the real lid on each of the self-drives' seven shut eyes (a greyer patch)."""
    f, lower, v, gy, gx, _, out = _shut_lids_shaded(avatar, monkeypatch)
    lab = cv2.cvtColor(np.clip(out, 0.0, 255.0).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    for eye in (0, 1):
        along = _along(v, eye, gx, gy)
        lid = _lid_pixels(avatar, f, eye) & (f.gbuf.tri_id >= 0) & (along < 0.2)
        bulge = np.median(lab[lid & (lower > 0.1) & (lower < 0.25)], axis=0)
        lashward = np.median(lab[lid & (lower > 0.75) & (lower < 0.9)], axis=0)
        assert lashward[0] < bulge[0] - 3.0, (eye, lashward, bulge)          # darker ...
        np.testing.assert_allclose(lashward[1:], bulge[1:], atol=0.5)       # ... as red, as yellow


def test_a_shut_lid_has_the_photos_skin_grain(avatar, monkeypatch):
    """The lid skin is not a flat patch: it carries the grain of the photo's cheek (`skin_grain`),
    at most ±GRAIN_CLIP; with that grain flat, the lid is drawn as before."""
    from realtime.tiers import eyes as E

    layer = avatar.gen.eyes
    f = avatar(FaceState(expression=avatar.blendshapes({"blink_right": 1.0, "blink_left": 1.0})))
    base = np.full(f.render.shape, 150.0, np.float32)

    def lids():
        out = base.copy()
        layer.apply_lids(f.gbuf, f.vertices, out)
        return out

    grained = lids()
    monkeypatch.setattr(layer, "_grain", np.zeros_like(layer._grain))
    flat = lids()
    for eye in (0, 1):
        lid = _lid_pixels(avatar, f, eye) & (np.abs(flat - base).max(-1) > 1.0)
        assert lid.sum() > 30
        rel = (grained[lid] @ LUM) / (flat[lid] @ LUM) - 1.0
        assert 0.005 < rel.std() and np.abs(rel).max() <= E.GRAIN_CLIP + 1e-4


def test_skin_grain_is_the_cheeks_detail_in_eye_coordinates(astronaut_rgb, astronaut_landmarks):
    from realtime.tiers.eyes import GRAIN_CLIP, skin_grain

    lm = np.asarray(astronaut_landmarks, np.float64)[: T.N_LANDMARKS]
    flat = np.full_like(astronaut_rgb, 140)
    grain, at = skin_grain(flat, lm, 0.5)
    assert grain.shape[0] == 2 and grain.shape[1] == grain.shape[2] and np.abs(grain).max() < 1e-6
    noisy = np.clip(140 + np.random.default_rng(0).normal(0, 14, astronaut_rgb.shape[:2]), 0, 255)
    grain, _ = skin_grain(np.repeat(noisy[..., None], 3, 2).astype(np.uint8), lm, 1.0)
    assert 0.03 < grain.std() and np.abs(grain).max() <= GRAIN_CLIP + 1e-6
    np.testing.assert_array_equal(grain[:, :, ::-1], grain)          # mirrored: it wraps seamlessly
    for outer, inner, *_ in EYES:                                      # the eye's middle is (0, 0)
        np.testing.assert_allclose(0.5 * (at[outer] + at[inner]), 0.0, atol=1e-3)
    assert at.shape == (T.N_LANDMARKS, 2) and at.dtype == np.float32


def test_skin_grain_clamps_the_sizes_a_profile_asks_for(astronaut_rgb, astronaut_landmarks, monkeypatch):
    """Before (sec85 F2): a crop of 1e-5 crop px per photo px blurred the photo with sigma 1e5
    (`live` hung before its first frame), and one of 1e6 asked for a 7e6² grain patch. The
    schema refuses such a profile; the layer bounds what it builds all the same."""
    lm = np.asarray(astronaut_landmarks, np.float64)[: T.N_LANDMARKS]
    blur = cv2.GaussianBlur
    sigmas = []

    def spy(src, ksize, sigma, *args, **kwargs):
        sigmas.append(sigma)
        return src if sigma > 64 else blur(src, ksize, sigma, *args, **kwargs)   # never the slow one

    monkeypatch.setattr(eye_layer.cv2, "GaussianBlur", spy)
    grain, at = eye_layer.skin_grain(astronaut_rgb, lm, 1e-5)
    assert max(sigmas) <= 32.0 and np.isfinite(grain).all() and np.isfinite(at).all()

def test_skin_grain_clamps_its_patch_for_a_crop_denser_than_a_profile_has(astronaut_rgb, astronaut_landmarks):
    lm = np.asarray(astronaut_landmarks, np.float64)[: T.N_LANDMARKS]
    grain, at = eye_layer.skin_grain(astronaut_rgb, lm, 1e6)     # a 7e6² patch before
    assert grain.shape[1] == grain.shape[2] <= 2 * 256 and np.isfinite(at).all()   # 2 × MAX_GRAIN


def test_the_eye_model_clamps_its_grid_for_eyes_wider_than_a_photo_has(astronaut_rgb, astronaut_landmarks):
    """Before (sec85 F2): landmarks 100× too far apart built a sclera grid of 4.8 GB; 40× gave
    one 950 texels wide. The grid is at most MAX_SCLERA texels across."""
    lm = np.asarray(astronaut_landmarks, np.float64)
    centre = lm[:, :2].mean(0)
    wide = lm.copy()
    wide[:, :2] = centre + 40.0 * (lm[:, :2] - centre)
    m = build_eye_model(astronaut_rgb, wide)
    assert m.sclera.shape[2] <= 512 and np.isfinite(m.sclera).all()      # MAX_SCLERA


def test_a_shut_lid_over_a_shadowed_socket_is_lit_and_meets_the_socket(astronaut_rgb, astronaut_landmarks,
                                                                      monkeypatch):
    """The astronaut with the skin above her eyes at a third of its light (a deep-set or made-up
    eye): the lower half of her shut lids, the bulge over the eyeball, is lit nearly as her
    cheeks (LID_FLOOR), not as the socket; the top of the lid takes the socket's shade, so the
    lid is no light patch with an edge."""
    from profiles.enroll import build_profile
    from realtime.tiers.eyes import _CHEEKS

    lm = np.asarray(astronaut_landmarks)
    image = astronaut_rgb.copy()
    mask = _upper_lids_mask(lm, image.shape[:2])
    image[mask] = (image[mask] / 3).astype(np.uint8)
    profile = build_profile(image, lm, name="sockets", source="test")
    cheek = np.median([image[int(lm[i, 1]), int(lm[i, 0])] for i in _CHEEKS], axis=0) @ LUM

    def shut_lids(av, middle=False):
        """Per eye: the median luminance of the lid's top band (between the two rings above
        the contour) and of its lower half (next to the contour); `middle`: only where the lid
        is not tapered towards the corners (`LID_TAPER`), which show the socket itself."""
        f = av(FaceState(expression=av.blendshapes({"blink_right": 1.0, "blink_left": 1.0})))
        out = []
        v = np.asarray(f.vertices[:T.N_LANDMARKS], np.float64)
        gy, gx = np.mgrid[0:f.render.shape[0], 0:f.render.shape[1]]
        for eye in (0, 1):
            edge = _lid_edge(av, f)
            along = _along(v, eye, gx, gy)
            reach = eye_layer.LID_TAPER[0] if middle else np.inf
            lid = _lid_pixels(av, f, eye) & (f.gbuf.tri_id >= 0) & (along < reach)
            lum = f.render @ LUM
            out.append((float(np.median(lum[lid & (edge < 0.5)])), float(np.median(lum[lid & (edge >= 0.75)]))))
        return np.array(out)

    lids = shut_lids(_Avatar(profile))
    monkeypatch.setattr(eye_layer.EyeLayer, "_lash_line", lambda *a, **k: None)
    bare = shut_lids(_Avatar(profile))[:, 1]                 # the lid's own light, without its lash line
    monkeypatch.undo()
    # lit as the cheeks, less the lid's own shade (`lid_shade`: a rounded lid turning down into
    # the lash line, as the drivers' real ones do): 0.81 of the cheeks' luminance (with the lash
    # line 0.09 wide, 0.80; 0.74 at LID_FLOOR 0.92 under that shade, 3.5 L* darker than the
    # drivers' real shut lids; 0.83 with a flat lid 0.03 darker and 0.08 more at its edge; at
    # LID_FLOOR 0.75, 0.68 then: a grey patch). The lash line, as wide and soft as the real
    # ones' (`LASH_WIDTH`), reaches over part of this lid's lower half: 0.73-0.78 with it.
    assert bare.min() > 0.77 * cheek
    assert lids[:, 0].max() < 0.4 * cheek                   # the socket's shade (0.31–0.34)
    flat = _Avatar(profile)                              # one flat colour: a light band at the top
    flat.gen.eyes._lid_crease = flat.gen.eyes._lid_colour
    flat_top = shut_lids(flat, middle=True)[:, 0]
    assert flat_top.min() > 0.5 * cheek                    # (0.60–0.65)
    assert shut_lids(_Avatar(profile), middle=True)[:, 0].max() < flat_top.min() - 10.0   # the crease's shade
    monkeypatch.setattr(eye_layer, "LID_FLOOR", 0.0)      # the socket's colour: a dark patch
    assert shut_lids(_Avatar(profile))[:, 1].max() < 0.4 * cheek   # (0.21–0.26)


def _upper_lids_mask(lm, shape) -> np.ndarray:
    """(H, W) bool: both upper lids' skin in the photo (`lid_region`'s triangles under the
    landmarks `lm`), grown by 4 px."""
    from realtime.tiers.eyes import lid_region

    tris = np.asarray(T.face_triangles())
    mask = np.zeros(shape, np.uint8)
    for _, _, _, _, upper, lower in EYES:
        region, _, _ = lid_region(tris, upper, lower)
        for t in tris[region]:
            cv2.fillConvexPoly(mask, np.round(lm[t, :2]).astype(np.int32), 1)
    return cv2.dilate(mask, np.ones((9, 9), np.uint8)) > 0


def _plain_skin_photo(rgb, lm, cheek, socket_light):
    """A photo of one skin colour `cheek` (RGB) all over, its upper lids' skin (`_upper_lids_mask`)
    that skin at `socket_light` of its light (`_in_shade`): a deep-set socket's shade, no other
    colour, no grain."""
    image = np.empty_like(rgb)
    image[:] = np.round(cheek).astype(np.uint8)
    image[_upper_lids_mask(lm, image.shape[:2])] = np.round(_in_shade(cheek, socket_light)).astype(np.uint8)
    return image


def test_a_shut_lid_over_a_socket_in_shade_is_the_cheeks_skin_lit_as_them(astronaut_rgb, astronaut_landmarks,
                                                                          monkeypatch):
    """A photo whose skin above the open eyes is its cheeks' skin in shade (a third and two thirds
    of their light): where the shut lid faces forward (the lid's upper part, in the middle of the
    eye; crease, grain and lash line off), it is the cheeks' own colour at their light: a real
    shut lid's bulge is 0.93–1.0 of the cheeks' light (LID_FLOOR's measurement), and drawn at
    0.92 of it the lid under its own shade was 3.5 L* darker than the drivers' real ones. Its
    shade towards the lash line keeps that colour (`shaded`)."""
    from profiles.enroll import build_profile

    lm = np.asarray(astronaut_landmarks)
    cheek = np.array([205.0, 150.0, 118.0])              # a warm skin: CIE L* 67, a* 15, b* 23
    cheek_lab = _lab(cheek)
    for light in (1 / 3, 2 / 3):
        photo = _plain_skin_photo(astronaut_rgb, lm, cheek, light)
        av = _Avatar(build_profile(photo, lm, name="plain", source="test"))
        f, lower, v, gy, gx, lum, out = _shut_lids_shaded(av, monkeypatch)
        lab = cv2.cvtColor(np.clip(out, 0.0, 255.0).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
        for eye in (0, 1):
            along = _along(v, eye, gx, gy)
            lid = _lid_pixels(av, f, eye) & (f.gbuf.tri_id >= 0) & (along < 0.15)
            bulge = lid & (lower > 0.05) & (lower < 0.3)
            assert bulge.sum() > 10, (light, eye)
            # the cheeks' light (less `lid_shade`'s darkening towards the corners: under 0.3 %
            # this near the middle); at 0.97 of it 0.968
            assert 0.985 < np.median(lum[bulge]) / (cheek @ LUM) < 1.005, (light, eye, np.median(lum[bulge]))
            np.testing.assert_allclose(np.median(lab[bulge], axis=0), cheek_lab, atol=1.0)
            lashward = np.median(lab[lid & (lower > 0.8) & (lower < 0.95)], axis=0)
            assert lashward[0] < cheek_lab[0] - 5.0, (light, eye, lashward)     # in its shade ...
            np.testing.assert_allclose(lashward[1:], cheek_lab[1:], atol=1.0)   # ... as red, as yellow
        monkeypatch.undo()


def test_skin_shaded_keeps_its_colour():
    """`shaded`: the eval photos' skins (s0's, s9's, s12's cheeks, a darker and a dark skin) at any
    light a shut lid gets (`lid_shade`: down to its darkest, the corners' lash line) have the
    luminance of the colour × the light and keep its CIE a*, b*: their chroma within 3.5 % of the
    lit colour's, neither the greyer patch that scaling the colour drew (0.5–4 a* less red than
    the real shut lids) nor a more colourful one; each of a*, b* within 1.6."""
    from realtime.tiers.eyes import lid_shade, shaded

    skins = np.array([[218.0, 169.0, 143.0], [208.0, 173.0, 103.0], [208.0, 184.0, 174.0],
                      [200.0, 150.0, 130.0], [120.0, 80.0, 60.0], [75.0, 45.0, 30.0]])
    darkest = float(lid_shade(np, np.float64(1.0), np.float64(1.0)))
    assert darkest < 0.7
    lit = np.array([_lab(s) for s in skins])
    for k in np.linspace(darkest, 1.0, 12):
        out = shaded(np, skins, np.full((len(skins), 1), k))
        np.testing.assert_allclose(out @ LUM, k * (skins @ LUM), rtol=1e-6)
        lab = np.array([_lab(c) for c in out])
        chroma = np.linalg.norm(lab[:, 1:], axis=1) / np.linalg.norm(lit[:, 1:], axis=1)
        assert np.all(np.abs(chroma - 1.0) < 0.035), (k, np.round(chroma, 3))
        assert np.abs(lab[:, 1:] - lit[:, 1:]).max() < 1.6, (k, np.round(lab - lit, 2))
    assert np.all(shaded(np, np.array([[250.0, 30.0, 0.0]]), np.array([[0.7]])) >= 0.0)   # no channel below 0


def _lab(rgb) -> np.ndarray:
    """(3,) CIE L*, a*, b* of an RGB colour 0..255."""
    return cv2.cvtColor(np.float32(rgb).reshape(1, 1, 3) / 255.0, cv2.COLOR_RGB2Lab).reshape(3).astype(np.float64)


def _shut_lids_shaded(avatar, monkeypatch):
    """Both eyes shut, their lids drawn over a flat grey with grain, crease and lash line off
    (only the lid's own shading shows): (the frame, `lower` per pixel: 0 on the first ring above
    the contour, 1 on the contour; the posed landmarks; the pixel grid gy, gx; the luminance; the
    picture)."""
    layer = avatar.gen.eyes
    f = avatar(FaceState(expression=avatar.blendshapes({"blink_right": 1.0, "blink_left": 1.0})))
    monkeypatch.setattr(layer, "_grain", np.zeros_like(layer._grain))
    monkeypatch.setattr(layer, "_lid_crease", layer._lid_colour)
    monkeypatch.setattr(layer, "_lash_line", lambda *a, **k: None)
    out = np.full(f.render.shape, 150.0, np.float32)
    layer.apply_lids(f.gbuf, f.vertices, out)
    lower = 2.0 * _lid_edge(avatar, f) - 1.0
    v = np.asarray(f.vertices[:T.N_LANDMARKS], np.float64)
    gy, gx = np.mgrid[0:out.shape[0], 0:out.shape[1]]
    return f, lower, v, gy, gx, out @ LUM, out


def _along(v, eye: int, gx, gy) -> np.ndarray:
    """Each pixel's (`gx`, `gy`) distance from the middle of eye `eye` along the eye, in eye
    widths (`_eye_frame` of the posed landmarks `v`)."""
    mid, u, _, width = eye_layer._eye_frame(v, EYES[eye][0], EYES[eye][1], eye_layer._down(v))
    return np.abs((gx - mid[0]) * u[0] + (gy - mid[1]) * u[1]) / width

def _lid_edge(av, f):
    """(S, S) each pixel's edge value in the lid tables: 1 on the upper contour, 0.5 on the first
    ring above it, 0 on the second (meaningful on lid pixels only)."""
    t = np.maximum(f.gbuf.tri_id, 0)
    b = f.gbuf.bary
    w = np.stack([1.0 - b[..., 0] - b[..., 1], b[..., 0], b[..., 1]], axis=-1)
    return (w * np.asarray(av.gen.eyes._lid_edge)[t]).sum(-1)


def _lid_pixels(av, f, eye):
    return np.asarray(av.gen.eyes._lid_eye)[np.maximum(f.gbuf.tri_id, 0)] == eye


def _near_contour(av, f, eye, reach):
    """Pixels within `reach` crop px of the posed upper lid contour of `eye`."""
    c = np.asarray(f.vertices[av.gen.eyes._lid_contour[eye], :2], np.float64)
    s = f.render.shape[0]
    gy, gx = np.mgrid[0:s, 0:s]
    p = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float64)
    best = np.full(len(p), np.inf)
    for a, b in zip(c[:-1], c[1:]):
        t = np.clip(((p - a) @ (b - a)) / max((b - a) @ (b - a), 1e-9), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(p - (a + t[:, None] * (b - a)), axis=1))
    return (best <= reach).reshape(s, s), best.reshape(s, s)


def _shut_with_and_without(av, monkeypatch, part):
    """Both eyes shut, drawn as they are and with `EyeLayer.<part>` doing nothing; and which way
    is down the face in the crop (+1 / −1 along y)."""
    from realtime.tiers import eyes as E

    shut_state = FaceState(expression=av.blendshapes({"blink_right": 1.0, "blink_left": 1.0}))
    drawn = av(shut_state)
    monkeypatch.setattr(E.EyeLayer, part, lambda *a, **k: None)
    plain = av(shut_state)
    monkeypatch.undo()
    return drawn, plain, np.sign(av.rig.crop_from_image[1, 1])


def test_a_shut_eye_is_drawn_as_lid_skin_with_one_lash_line(avatar, monkeypatch):
    """Shut: the lid region is redrawn (skin towards the crease, darkest at its edge, the lash
    line); every other pixel is what the warp drew, but for the lash line's band about the lid's
    edge. Open or barely closing: nothing changes."""
    from realtime.tiers import eyes as E

    drawn, plain, down = _shut_with_and_without(avatar, monkeypatch, "apply_lids")
    for eye in (0, 1):
        lid = _lid_pixels(avatar, drawn, eye)
        assert lid.sum() > 30
        changed = np.abs(drawn.render - plain.render).max(-1) > 0
        assert changed[lid].mean() > 0.5
        ys, xs = np.nonzero(lid)
        lum = drawn.render[ys, xs] @ LUM
        depth = (ys - ys.min()) if down > 0 else (ys.max() - ys)       # 0 at the top of the lid
        low = depth >= np.percentile(depth, 90)
        assert lum[low].mean() < lum[~low].mean() - 10                  # the lash line at the edge
    lids = _lid_pixels(avatar, drawn, 0) | _lid_pixels(avatar, drawn, 1)
    for eye in (0, 1):
        width = avatar.gen.eyes.frames(drawn.vertices)[eye, 6]
        lids |= _near_contour(avatar, drawn, eye, 0.5 * (1 + E.LASH_SOFT) * E.LASH_WIDTH * width + 1.0)[0]
    assert np.array_equal(drawn.render[~lids], plain.render[~lids])
    # barely closing: 0.15 of a blink, which the fuse narrows 1.35× (LID_RESPONSE) to a closure
    # of about 0.21, its upper lid down about as far: below LID_FROM and SHUT_FROM
    for expr in (np.zeros((T.N_LANDMARKS, 3)), 0.15 * avatar.blendshapes({"blink_right": 1.0})):
        f = avatar(FaceState(expression=expr))
        fr = avatar.gen.eyes.frames(f.vertices)
        assert (avatar.gen.eyes.descent(f.vertices) < E.LID_FROM).all()
        assert (avatar.gen.eyes.closure(fr) < E.SHUT_FROM).all()
        again = f.render.copy()
        avatar.gen.eyes.apply_lids(f.gbuf, f.vertices, again)
        assert np.array_equal(again, f.render)                           # as is


def test_an_eye_opened_wider_than_the_photo_keeps_its_upper_lash_line(avatar, monkeypatch):
    """Widened: a dark line along the upper lid's contour, lying outside the opening (its inner
    edge on the contour: the drawn eye below it keeps its pixels), nothing else changed; the
    other eye, at the photo's opening, and an eye at rest are left as they are."""
    from realtime.tiers import eyes as E

    wide_state = FaceState(expression=-0.5 * avatar.blendshapes({"blink_right": 1.0}))
    drawn, rest = avatar(wide_state), avatar(FaceState())
    monkeypatch.setattr(E.EyeLayer, "_wide_lashes", lambda *a, **k: None)
    plain, plain_rest = avatar(wide_state), avatar(FaceState())
    monkeypatch.undo()
    fr = avatar.gen.eyes.frames(drawn.vertices)
    assert fr[0, 9] > 1.2 * avatar.gen.eyes._rest_gap[0]
    full = E.WIDE_LASH_WIDTH * fr[0, 6]                                # the line's middle width
    soft = E.WIDE_LASH_SOFT * 0.5 * full + 1.0                         # its edges' ramp, and a pixel
    band, _ = _near_contour(avatar, drawn, 0, (1 + E.WIDE_LASH_OUTSIDE) * 0.5 * full + soft)
    changed = np.abs(drawn.render - plain.render).max(-1) > 0
    darker = (plain.render - drawn.render) @ LUM
    assert changed.any() and not changed[~band].any()
    down = np.sign(avatar.rig.crop_from_image[1, 1])
    c = np.asarray(drawn.vertices[avatar.gen.eyes._lid_contour[0], :2], np.float64)
    rows = np.arange(drawn.render.shape[0])
    for mid in c[len(c) // 3: 2 * len(c) // 3 + 1]:                   # the lid's middle third
        x = int(round(mid[0]))
        offset = (rows - mid[1]) * down                                # + below the edge
        near = np.abs(offset) <= full + soft
        assert not changed[near & (offset > soft), x].any()           # the opening: as drawn
        assert darker[near & (offset < -0.25 * full) & (offset > -0.75 * full), x].mean() > 15
    assert np.array_equal(rest.render, plain_rest.render)


def test_a_shut_eyes_lash_line_lies_across_its_edge_tapered_and_smooth(avatar, monkeypatch):
    """The lash line of a shut eye darkens both sides of the lid's edge (the lid above, the
    lower lid below: a real closed eye's lashes hang over it), is widest in the middle and
    narrows towards the corners, and its border has partial pixels (no stair steps)."""
    from realtime.tiers import eyes as E

    drawn, plain, down = _shut_with_and_without(avatar, monkeypatch, "_lash_line")
    darker = (plain.render - drawn.render) @ LUM
    widths = avatar.gen.eyes.frames(drawn.vertices)[:, 6]
    reach = 0.5 * (1 + E.LASH_SOFT) * E.LASH_WIDTH * widths + 1.0      # the line's soft edge, and a pixel
    bands = [_near_contour(avatar, drawn, eye, reach[eye]) for eye in (0, 1)]
    assert (darker[~(bands[0][0] | bands[1][0])] == 0).all()
    for eye in (0, 1):
        c = np.asarray(drawn.vertices[avatar.gen.eyes._lid_contour[eye], :2], np.float64)
        half = 0.5 * E.LASH_WIDTH * widths[eye]
        near, dist = bands[eye]
        assert darker[near].max() > 20
        # both sides of the edge at the lid's middle: the pixel column through its middle vertex
        mid = c[len(c) // 2]
        col = np.arange(drawn.render.shape[0])
        x = int(round(mid[0]))
        dark = (darker[:, x] > 10) & (dist[:, x] <= half + 1.0)
        offset = (col[dark] - mid[1]) * down                           # + below the edge
        assert offset.min() < -0.3 and offset.max() > 0.3
        # tapered: how far from the edge the line reaches, along its middle third and its ends
        pts = np.concatenate([np.linspace(a, b, 50) for a, b in zip(c[:-1], c[1:])])
        arc = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        arc /= arc[-1]
        ys, xs = np.nonzero((darker > 10) & near)
        d = np.hypot(xs[:, None] - pts[None, :, 0], ys[:, None] - pts[None, :, 1])
        at, reach = arc[d.argmin(1)], d.min(1)
        middle = reach[(at > 1 / 3) & (at < 2 / 3)].max()
        ends = reach[(at < 0.05) | (at > 0.95)].max()
        assert middle > ends + 0.5, (middle, ends)
        # anti-aliased: partial coverage on the border (neither untouched nor the full line)
        part = near & (darker > 2) & (darker < 0.6 * darker[near].max())
        length = np.linalg.norm(np.diff(c, axis=0), axis=1).sum()
        assert part.sum() >= 0.5 * length


@pytest.mark.parametrize("soft", [0.3, 0.5, 1.0])
def test_a_lash_line_has_a_dark_core_and_soft_edges(avatar, soft):
    """Across a wide lash line: fully dark within `soft` of its half width of the middle, fading
    over `soft` × 2 half widths (not one pixel) to nothing — a painted band read as a stroke —
    and half dark at its nominal edge, whatever its softness."""
    canvas = np.full((200, 200, 3), 200.0, np.float32)                # the layer draws on S×S crops
    contour = np.stack([np.linspace(20.0, 180.0, 9), np.full(9, 100.0)], 1)
    width = 16.0
    avatar.gen.eyes._lash_line(canvas, contour, width, 1.0, np.zeros(3, np.float32), soft)
    alpha = 1.0 - canvas[:, 100, 0] / 200.0                     # the middle column, by row
    half = 0.5 * width
    offset = np.abs(np.arange(200) - 100.0)
    assert np.all(alpha[offset <= (1 - soft) * half - 0.5] > 0.99)
    assert np.all(alpha[offset >= (1 + soft) * half + 0.5] == 0.0)
    ramp = (alpha > 0.05) & (alpha < 0.95)
    assert ramp.sum() >= 8                                         # both edges, 4 px or more each
    np.testing.assert_allclose(alpha[offset == half], 0.5, atol=0.02)


def _across(darker, contour, down, eye_width):
    """The darkening `darker` (S, S) down the pixel columns through the middle two-thirds of a lid
    `contour` ((M, 2) crop px), each column's profile shifted to its darkest row and averaged:
    (offsets in eye widths, mean darkening), + below the edge."""
    xs = np.arange(int(np.ceil(contour[:, 0].min())), int(np.floor(contour[:, 0].max())) + 1)
    lo, hi = np.percentile(xs, [100 / 6, 500 / 6])
    rows = []
    for x in xs[(xs >= lo) & (xs <= hi)]:
        top = float(np.interp(x, *contour[np.argsort(contour[:, 0])].T))
        ys = np.arange(-30, 31) + int(round(top))
        col = darker[ys, x] if down > 0 else darker[ys, x][::-1]
        k = int(np.argmax(col[20:41])) + 20
        rows.append(col[k - 20:k + 21])
    return np.arange(-20, 21) / eye_width, np.mean(rows, axis=0)


def _width_at(at, prof, level):
    """The width of a ridge `prof` (at offsets `at`) where it is `level` of its peak: between the
    crossings either side of the peak, interpolated."""
    k, v = int(np.argmax(prof)), level * prof.max()
    ends = []
    for step in (-1, 1):
        j = k
        while prof[j + step] >= v:
            j += step
        ends.append(at[j] + step * (at[1] - at[0]) * (prof[j] - v) / (prof[j] - prof[j + step]))
    return ends[1] - ends[0]


def test_a_shut_eyes_lash_line_is_as_wide_as_a_real_one(avatar, monkeypatch):
    """Across the middle two-thirds of a shut eye's lash line, its darkening at half its depth is
    about 0.12 eye widths wide (`LASH_WIDTH`: the real shut lines' median width, 0.13 on the
    self-drives' output; 0.11 here), not 0.09 (0.08 here), narrower than most real ones."""
    drawn, plain, down = _shut_with_and_without(avatar, monkeypatch, "_lash_line")
    darker = (plain.render - drawn.render) @ LUM
    widths = avatar.gen.eyes.frames(drawn.vertices)[:, 6]
    for eye in (0, 1):
        c = np.asarray(drawn.vertices[avatar.gen.eyes._lid_contour[eye], :2], np.float64)
        at, prof = _across(darker, c, down, widths[eye])

        w50 = _width_at(at, prof, 0.5)
        assert 0.1 < w50 < 0.15, (eye, w50)


@pytest.mark.cuda
@pytest.mark.skipif(not cuda_available(), reason="needs cupy and an NVIDIA GPU")
@pytest.mark.parametrize("part", ["apply_lids", "apply"])
@pytest.mark.parametrize("gaze, blink", [(0.0, 1.0), (0.05, 0.4), (-0.04, -0.4)])
def test_cuda_eyes_match_the_cpu(avatar, astronaut_profile, part, gaze, blink):
    from realtime.core.context import CpuContext, open_device
    from realtime.tiers.eyes import EyeLayer

    f = avatar(_gaze_and_blink(avatar, gaze, blink))
    args = (astronaut_profile["image"], astronaut_profile["landmarks"], avatar.rig)
    ctx = open_device("cuda")
    with ctx.activate():
        layer = EyeLayer(*args, ctx)
        gbuf = type(f.gbuf)(tri_id=ctx.upload(f.gbuf.tri_id), bary=ctx.upload(f.gbuf.bary),
                            depth=ctx.upload(f.gbuf.depth))
        out = ctx.upload(f.render.copy())
        getattr(layer, part)(gbuf, f.vertices, out)
        got = ctx.to_host(out)
    ref = f.render.copy()
    getattr(EyeLayer(*args, CpuContext()), part)(f.gbuf, f.vertices, ref)
    np.testing.assert_allclose(got, ref, atol=1e-3)


def _narrowed(av, lid: str, share: float) -> FaceState:
    """Both eyes narrowed by `share` of their rest opening, by one lid only: "upper" comes down,
    "lower" rises (a smile's squint), in the expression (canonical units)."""
    n = av.profile["neutral"].astype(np.float64)
    expr = np.zeros((T.N_LANDMARKS, 3))
    for upper, lower in ((T.RIGHT_EYE_UPPER, T.RIGHT_EYE_LOWER), (T.LEFT_EYE_UPPER, T.LEFT_EYE_LOWER)):
        u, lo = np.array(upper[1:-1]), np.array(lower[1:-1])
        gap = n[lo, 1] - n[u, 1]
        if lid == "upper":
            expr[u, 1] = share * gap
        else:
            expr[lo, 1] = -share * gap
    return FaceState(expression=expr)


def test_the_lid_skin_comes_with_the_upper_lid_not_with_a_rising_lower_one(avatar):
    """An eye narrowed as far by its lower lid rising as by its upper lid coming down: only the
    upper lid's descent draws the shut lid's skin; the smile's squint keeps the open lid (it was
    drawn with a ghost of lid skin and lashes while the closure alone keyed it). `descent` is 0 at
    rest and follows the upper lid."""
    from realtime.tiers import eyes as E

    layer = avatar.gen.eyes
    rest = avatar(FaceState())
    assert np.allclose(layer.descent(rest.vertices), 0.0, atol=0.02)
    closures = {}
    for lid in ("upper", "lower"):
        f = avatar(_narrowed(avatar, lid, 0.3))
        fr = layer.frames(f.vertices)
        closures[lid] = layer.closure(fr)
        again = f.render.copy()
        layer.apply_lids(f.gbuf, f.vertices, again)
        lids = _lid_pixels(avatar, f, 0) | _lid_pixels(avatar, f, 1)
        changed = np.abs(again - f.render).max(-1) > 0
        if lid == "upper":
            assert (layer.descent(f.vertices) > E.LID_FROM + 0.05).all()
            assert changed[lids].mean() > 0.5
        else:
            assert (layer.descent(f.vertices) < E.LID_FROM).all() and (layer.closure(fr) < E.SHUT_FROM).all()
            assert not changed.any()
    # as far narrowed either way, and far enough that the closure alone would have drawn a lid
    assert np.allclose(closures["upper"], closures["lower"], atol=0.08)
    assert (closures["lower"] > 0.3).all()
    # shut by the lower lid alone, past SHUT_FROM: the lid is drawn all the same
    f = avatar(_narrowed(avatar, "lower", 0.9))
    fr = layer.frames(f.vertices)
    assert (layer.descent(f.vertices) < E.LID_FROM).all() and (layer.closure(fr) > E.SHUT_FROM + 0.2).all()
    again = f.render.copy()
    layer.apply_lids(f.gbuf, f.vertices, again)
    lids = _lid_pixels(avatar, f, 0) | _lid_pixels(avatar, f, 1)
    assert (np.abs(again - f.render).max(-1) > 0)[lids].mean() > 0.5


@pytest.mark.parametrize("euler", [(0.0, 25.0, 0.0), (0.0, -25.0, 0.0), (0.0, 0.0, 20.0), (20.0, 0.0, 0.0)])
def test_the_upper_lids_descent_does_not_move_with_the_head(avatar, euler):
    """`descent` is measured with the face moved back onto the photo's by its rigid points: a head
    that pitches (the lids' middle lies in front of the eye corners, so in the image it drops
    towards them), rolls or turns reads the same descent as one held straight, open or a little
    shut (measured on the image, a 30° pitch down read an open eye as 0.4 descended and drew it
    the lid skin)."""
    layer = avatar.gen.eyes
    for blink in (0.0, 0.3):
        expr = blink * avatar.blendshapes({"blink_right": 1.0, "blink_left": 1.0})
        straight = avatar(FaceState(expression=expr))
        turned = avatar(FaceState(expression=expr, rotation=G.rotation_from_euler(*euler)))
        assert np.allclose(layer.descent(turned.vertices), layer.descent(straight.vertices), atol=0.02)
    assert (layer.descent(straight.vertices) > 0.2).all()


def test_the_upper_lids_descent_does_not_move_with_the_jaw(avatar):
    """An open mouth moves the chin, and with it the forehead-to-chin axis of the face frame
    (`geometry.face_frame`); `descent` is fitted on rigid points only, so a jaw that drops and
    comes forward leaves it where a closed mouth has it (a talking s1 ← d14 drew lid skin over open
    eyes while the face frame measured it)."""
    layer = avatar.gen.eyes
    jaw = avatar.blendshapes({"jaw_open": 1.0})
    jaw[:, 2] -= np.abs(jaw[:, 1])                       # the chin comes forward as it drops
    for blink in (0.0, 0.3):
        lids = blink * avatar.blendshapes({"blink_right": 1.0, "blink_left": 1.0})
        closed = avatar(FaceState(expression=lids))
        open_ = avatar(FaceState(expression=lids + jaw))
        assert np.allclose(layer.descent(open_.vertices), layer.descent(closed.vertices), atol=0.01)


def test_a_shut_lids_skin_fades_out_towards_the_eyes_corners(avatar, monkeypatch):
    """The lid skin tapers off along the eye (LID_TAPER, eye widths from its middle): its ends met
    the canthus with an edge (d14 #51). Black lid skin on grey shows how much of it is drawn."""
    from realtime.tiers import eyes as E

    layer = avatar.gen.eyes
    f = avatar(FaceState(expression=avatar.blendshapes({"blink_right": 1.0, "blink_left": 1.0})))
    for name in ("_lid_colour", "_lid_crease", "_grain"):
        monkeypatch.setattr(layer, name, np.zeros_like(getattr(layer, name)))
    monkeypatch.setattr(layer, "_lash_line", lambda *a, **k: None)
    out = np.full(f.render.shape, 150.0, np.float32)
    layer.apply_lids(f.gbuf, f.vertices, out)
    drawn = 1.0 - out[..., 0] / 150.0                       # the lid skin's opacity per pixel
    s = out.shape[0]
    gy, gx = np.mgrid[0:s, 0:s]
    lm = np.asarray(f.vertices[:T.N_LANDMARKS], np.float64)
    for e, (outer, inner, *_) in enumerate(E.EYES):
        mid, u, _, width = E._eye_frame(lm, outer, inner, E._down(lm))
        along = np.abs((gx - mid[0]) * u[0] + (gy - mid[1]) * u[1]) / width
        lid = _lid_pixels(avatar, f, e)
        lo, hi = E.LID_TAPER
        middle, ends = drawn[lid & (along < lo)], drawn[lid & (along > 0.5 * (lo + hi))]
        assert len(middle) > 30 and len(ends) > 5
        assert middle.max() > 0.9 and ends.mean() < 0.5 * middle.mean(), (e, middle.mean(), ends.mean())
        assert drawn[lid & (along > E.LID_TAPER[1] + 0.05)].max(initial=0.0) < 0.05


def _painted_lash_line(image, lm, colour, width, iris=(60, 40, 30), white=(230, 225, 220)):
    """`image` with each eye painted: its opening `white`, its iris disc (radius from the iris
    landmarks) `iris`, and its upper lash line `colour`, `width` eye widths wide just above its
    upper contour."""
    from realtime.tiers.eyes import _down, _eye_frame

    out = image.copy()
    lm = np.asarray(lm, np.float64)
    for outer, inner, centre, ring, upper, lower in EYES:
        _, _, v, w = _eye_frame(lm, outer, inner, _down(lm))
        contour = lm[list(upper), :2]
        opening = np.concatenate([contour, lm[list(reversed(lower[1:-1])), :2]])
        cv2.fillPoly(out, [np.round(opening * 16).astype(np.int32)], white, lineType=cv2.LINE_AA, shift=4)
        band = np.concatenate([contour, (contour - width * w * v)[::-1]])
        cv2.fillPoly(out, [np.round(band * 16).astype(np.int32)], colour, lineType=cv2.LINE_AA, shift=4)
        r = float(np.mean(np.linalg.norm(lm[list(ring), :2] - lm[centre, :2], axis=1)))
        cv2.circle(out, tuple(int(round(c)) for c in lm[centre, :2]), int(round(r)), iris, -1, cv2.LINE_AA)
    return out


def test_the_lash_line_is_the_photos_own_not_its_darkest_pixel(astronaut_rgb, astronaut_landmarks):
    """`lash_line`: the colour of the photo's upper lash line, measured off the iris. The contour's
    darkest pixel (the colour the lash lines were drawn in) lies on the iris that the contour runs
    over: drawn in it, the lash line was a black liner (self-drive d14's shut lids at 0.2–0.3 of
    the skin's light, the real ones at 0.4; its widened lids' at 0.23–0.33 against 0.53–0.57)."""
    lm = np.asarray(astronaut_landmarks)
    colour = (110, 70, 60)
    m = build_eye_model(_painted_lash_line(astronaut_rgb, lm, colour, 0.11), lm)
    for eye in (0, 1):
        np.testing.assert_allclose(m.lash_line[eye], colour, atol=6)
        assert float(m.lash[eye] @ LUM) < 50                      # the contour's darkest: the iris
    # where the iris hides every column (a photo with no eyes to speak of): the contour's darkest
    assert eye_layer.lash_line(np.full_like(astronaut_rgb, 200), lm, 0, 1e4) is None


def test_the_lash_line_is_read_within_the_photo(astronaut_rgb, astronaut_landmarks):
    """An eye that the photo's edge cuts through (a tight crop): its lash line is measured on what
    the photo shows of it. Read past the edge (the border's black), its shut line was black, and
    that of an eye wholly past the edge was black too, where `lash_line` cannot see it."""
    lm = np.asarray(astronaut_landmarks, np.float64)
    colour = np.array([110, 70, 60])
    photo = _painted_lash_line(astronaut_rgb, lm, tuple(int(c) for c in colour), 0.11)
    for eye in (0, 1):
        outer, inner = EYES[eye][:2]
        width = abs(lm[inner, 0] - lm[outer, 0])
        if lm[outer, 0] < lm[inner, 0]:                 # the edge through the outer third
            cut = int(round(lm[outer, 0] + 0.3 * width))
            image, at = photo[:, cut:], lm - [cut, 0, 0]
        else:
            cut = int(round(lm[outer, 0] - 0.3 * width))
            image, at = photo[:, :cut], lm
        m = build_eye_model(np.ascontiguousarray(image), at)
        np.testing.assert_allclose(m.lash_line[eye], colour, atol=8)
        np.testing.assert_allclose(m.lash_shut[eye], eye_layer.LASH_SHUT * colour, atol=8)
    inner = EYES[1][1]                                  # the left eye, wholly past the edge
    cut = int(round(lm[inner, 0] - 0.3 * abs(lm[inner, 0] - lm[EYES[1][0], 0])))
    assert eye_layer.lash_line(np.ascontiguousarray(photo[:, :cut]), lm, 1, 5.0) is None


@pytest.fixture(scope="module")
def lashed_avatar(astronaut_rgb, astronaut_landmarks):
    """The astronaut with painted eyes (`_painted_lash_line`): a mid-brown lash line 0.11 eye widths
    wide above each eye, darker irises."""
    from profiles.enroll import build_profile

    lm = np.asarray(astronaut_landmarks)
    photo = _painted_lash_line(astronaut_rgb, lm, (110, 70, 60), 0.11)
    return _Avatar(build_profile(photo, lm, name="lashed", source="test"))


@pytest.mark.parametrize("how", ["shut", "wide"])
def test_a_drawn_lash_line_is_no_darker_than_the_photos(lashed_avatar, monkeypatch, how):
    """The lash line drawn along a lid opened wider than the photo's is as dark as the photo's own
    lash line (luminance 81: its darkest pixels within 8 levels darker), and over a shut lid a
    little darker (lashes meet: 0.7 of it to 4 levels darker; LASH_SHUT draws 73, the open
    line's colour there 81, which passed before), not as dark as the photo's iris (46)."""
    from realtime.tiers import eyes as E

    av = lashed_avatar
    blink = {"shut": 1.0, "wide": -0.6}[how]
    state = FaceState(expression=blink * av.blendshapes({"blink_right": 1.0, "blink_left": 1.0}))
    part = {"shut": "_lash_line", "wide": "_wide_lashes"}[how]
    drawn = av(state)
    monkeypatch.setattr(E.EyeLayer, part, lambda *a, **k: None)
    plain = av(state)
    monkeypatch.undo()
    line = float(np.array([110, 70, 60]) @ LUM)
    lo, hi = {"shut": (0.7 * line, line - 4), "wide": (line - 8, line + 25)}[how]
    changed = np.abs(drawn.render - plain.render).max(-1) > 0
    for eye in (0, 1):
        near, _ = _near_contour(av, drawn, eye, 0.2 * drawn.vertices[:, 0].ptp())
        lum = drawn.render[changed & near] @ LUM
        assert len(lum) > 20
        darkest = np.percentile(lum, 2)
        assert lo < darkest < hi, (how, eye, darkest, line)
