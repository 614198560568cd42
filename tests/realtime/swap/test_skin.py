"""realtime.swap.skin: the identity's skin map keeps a bare forehead and the face below the eyes;
with `strands` (the swap's `drop_fringe`) it drops a fringe over the forehead, its skin-coloured
gaps included (the astronaut's own fringe, a painted one, and a real bare forehead from
../shared/eval when it is there); without it, the swap paints a fringe out of the photo with its
skin (`fill_fringe`), so that the map keeps the forehead whole."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.face import topology
from realtime.mesh import rig as rig_mod
from realtime.swap.crop import face_rig, nominal_affine
from realtime.swap.skin import (
    EDGE_INSET,
    FRINGE_COVER,
    FRINGE_STRANDS,
    SHADE_FRINGE,
    SHADE_REACH,
    fringe_fill,
    fringe_hint,
    hair_shade,
    hue_turn,
    lift_hair_shade,
    skin_map,
)


@pytest.fixture(scope="module")
def photo_rig(astronaut_profile):
    """(photo at the crop's density, its texture coordinates, the swap rig) of the astronaut."""
    prof = astronaut_profile
    rig = face_rig(rig_mod.build(prof), nominal_affine(prof, int(prof.crop_size)))
    photo, uv = rig.texture_at_crop_density(np.ascontiguousarray(prof["image"]),
                                            np.ascontiguousarray(rig.attributes[:, :2]))
    return np.ascontiguousarray(photo), uv, rig


def forehead(photo, uv):
    """(H, W) bool: the face outline's pixels a little above the brows (the astronaut's own
    fringe lies there), and the interocular, in texture pixels."""
    a, b = uv[topology.EYE_OUTER[0]], uv[topology.EYE_OUTER[1]]
    iod = float(np.linalg.norm(b - a))
    top = uv[list(topology.RIGHT_BROW) + list(topology.LEFT_BROW), 1].min() - 0.1 * iod
    oval = np.zeros(photo.shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(uv[list(topology.FACE_OVAL)]).astype(np.int32)], 1)
    oval = cv2.erode(oval, np.ones((5, 5), np.uint8)) > 0
    return oval & (np.arange(photo.shape[0])[:, None] < top), iod


def bare(photo, uv):
    """The photo with a bare forehead (the astronaut's fringe painted over inside the face's
    outline, in the cheeks' skin colour with a little noise, from just above the brows up); and
    the outline's part above the brows."""
    region, iod = forehead(photo, uv)
    brows = uv[list(topology.RIGHT_BROW) + list(topology.LEFT_BROW)]
    outline = np.zeros(photo.shape[:2], np.uint8)
    cv2.fillPoly(outline, [np.round(uv[list(topology.FACE_OVAL)]).astype(np.int32)], 1)
    paint = (outline > 0) & (np.arange(photo.shape[0])[:, None] < brows[:, 1].min() - 0.08 * iod)
    nose, chin = uv[1], uv[topology.CHIN]
    cheek = photo[int(nose[1]):int(chin[1]), int(nose[0]) - 40:int(nose[0]) - 20].reshape(-1, 3)
    out = photo.copy()
    noise = np.random.default_rng(0).normal(0, 3, (int(paint.sum()), 3))
    out[paint] = np.clip(np.median(cheek, 0) + noise, 0, 255).astype(np.uint8)
    return out, region & paint


def test_the_astronauts_fringe_goes_and_her_lower_face_stays(photo_rig):
    """Her fringe reaches down to the face mesh's top: by colour alone its lighter strands and
    its shaded lower edge were kept in places (0.68 of it, closed 0.28); with its edge's hue
    (`skin_map` on a photo wearing a fringe) 0.16 is, and closed less still (0.08). Below the eyes
    nothing is dropped."""
    photo, uv, rig = photo_rig
    region, _ = forehead(photo, uv)
    by_colour, closed = skin_map(photo, uv, rig), skin_map(photo, uv, rig, strands=FRINGE_STRANDS)
    assert closed[region].mean() <= by_colour[region].mean() < 0.2, (closed[region].mean(), by_colour[region].mean())
    nose, chin = uv[1], uv[topology.CHIN]
    assert closed[int(nose[1]):int(chin[1]), int(nose[0]) - 5:int(nose[0]) + 5].min() > 0.99


EVAL = Path(__file__).resolve().parents[3].parent / "shared" / "eval"


@pytest.mark.skipif(not (EVAL / "targets" / "s12.jpg").is_file(), reason="needs ../shared/eval")
def test_a_bare_forehead_stays():
    """s12's forehead (bare, between dark hair and dark brows) is kept whole: it is no fringe."""
    from profiles.enroll import build_profile
    from realtime.face.track import Tracker

    rgb = np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(EVAL / "targets" / "s12.jpg")), cv2.COLOR_BGR2RGB))
    with Tracker(static=True) as tracker:
        landmarks = tracker(rgb)
    prof = build_profile(rgb, landmarks, name="s12", source="s12.jpg")
    rig = face_rig(rig_mod.build(prof), nominal_affine(prof, int(prof.crop_size)))
    photo, uv = rig.texture_at_crop_density(np.ascontiguousarray(prof["image"]),
                                            np.ascontiguousarray(rig.attributes[:, :2]))
    region, _ = forehead(np.ascontiguousarray(photo), uv)
    info: dict = {}
    keep = skin_map(np.ascontiguousarray(photo), uv, rig, strands=FRINGE_STRANDS, info=info)
    assert region.sum() > 1000 and keep[region].mean() > 0.95
    assert info["forehead_hair"] < 0.5 * FRINGE_COVER


def test_a_fringe_is_dropped_with_its_skin_coloured_gaps(photo_rig):
    """Dark strands a tenth of an interocular wide over the bare forehead, the skin showing in
    gaps as wide: by colour alone the gaps read as skin; the closing drops the fringe as one."""
    photo, uv, rig = photo_rig
    img, region = bare(photo, uv)
    _, iod = forehead(photo, uv)
    period = max(4, int(round(0.2 * iod)))
    xs = np.arange(img.shape[1])
    strand = region & ((xs % period) < period // 2)[None, :]
    gaps = region & ~strand
    img[strand] = (60, 40, 30)
    by_colour = skin_map(img, uv, rig)
    closed = skin_map(img, uv, rig, strands=FRINGE_STRANDS)
    off = 2 * int(round(EDGE_INSET * iod)) + 3
    inner = cv2.erode(gaps.astype(np.uint8), np.ones((1, off), np.uint8)) > 0   # off the strands' inset edges
    assert by_colour[inner].mean() > 0.6
    assert closed[inner].mean() < 0.3
    assert closed[strand].mean() < 0.2


def test_the_swap_drops_the_fringe_when_asked(astronaut_profile):
    """`EngineOptions.drop_fringe` (`live --drop-fringe`) builds the swap's skin map with the
    closing; by default the map is the colour's alone."""
    from realtime.engine.loop import Engine, EngineOptions

    maps = {}
    for drop in (False, True):
        engine = Engine(astronaut_profile, EngineOptions(mode="swap", output_size=(512, 512), drop_fringe=drop,
                                                         even_grain=False, lift_sockets=False))   # the photo as it is
        maps[drop] = np.asarray(next(s for s in engine.stages if s.name == "attributes").skin_map)[..., 0]
        engine.close()
    rig = next(s for s in engine.stages if s.name == "attributes").rig
    photo, uv = rig.texture_at_crop_density(np.ascontiguousarray(astronaut_profile["image"]),
                                            np.ascontiguousarray(rig.attributes[:, :2]))
    # (the photo as the swap prepares it: her partial fringe's shade lifted, `lift_hair_shade`)
    photo, uv = rig.texture_at_crop_density(np.ascontiguousarray(lift_hair_shade(astronaut_profile["image"],
                                                                                 astronaut_profile)),
                                            np.ascontiguousarray(rig.attributes[:, :2]))
    np.testing.assert_array_equal(maps[False], skin_map(np.ascontiguousarray(photo), uv, rig))
    assert maps[True].mean() < maps[False].mean() - 0.005       # her fringe: less of it kept


def test_a_parted_fringe_goes_with_the_whole_forehead(photo_rig):
    """A fringe over all of the forehead down to the brows, parted in the middle, the parting
    too wide for the closing (0.4 interocular): hair covers more than FRINGE_COVER of the
    forehead, so all of it above the brows' upper edge goes, the parting too; the brows'
    outlines and the face below them stay."""
    photo, uv, rig = photo_rig
    _, iod = forehead(photo, uv)
    brows = uv[list(topology.RIGHT_BROW) + list(topology.LEFT_BROW)]
    outline = np.zeros(photo.shape[:2], np.uint8)
    cv2.fillPoly(outline, [np.round(uv[list(topology.FACE_OVAL)]).astype(np.int32)], 1)
    fringe = (outline > 0) & (np.arange(photo.shape[0])[:, None] < brows[:, 1].min() - 2)
    centre = 0.5 * (uv[topology.EYE_OUTER[0], 0] + uv[topology.EYE_OUTER[1], 0])
    parting = fringe & (np.abs(np.arange(photo.shape[1]) - centre) < 0.2 * iod)[None, :]
    strand = fringe & ~parting
    img = photo.copy()
    img[strand] = (60, 40, 30)
    by_colour = skin_map(img, uv, rig)
    info: dict = {}
    closed = skin_map(img, uv, rig, strands=FRINGE_STRANDS, info=info)
    assert info["forehead_hair"] > FRINGE_COVER
    inner = cv2.erode(parting.astype(np.uint8), np.ones((3, 5), np.uint8)) > 0
    assert inner.sum() > 50 and by_colour[inner].mean() > 0.6
    assert closed[inner].mean() < 0.1 and closed[strand].mean() < 0.1
    inner_tops = []
    for brow in (topology.RIGHT_BROW, topology.LEFT_BROW):
        lo = uv[list(brow), 1].max()          # a brow's lowest point: the outline is kept there
        x = int(uv[list(brow), 0].mean())
        assert closed[int(lo) - 1, x] > 0.5
        halves = [uv[list(brow[:5])], uv[list(brow[5:])]]
        upper = halves[int(np.argmin([p[:, 1].mean() for p in halves]))]
        inner_tops.append(upper[np.argmin(np.abs(upper[:, 0] - centre)), 1])
    # between the brows, at the height of their upper inner ends: unpainted skin, kept by colour;
    # the forehead's edge dips there to the brows' lower inner ends, so it goes
    glabella = (int(round(np.mean(inner_tops))), int(round(centre)))
    assert by_colour[glabella] > 0.9 and closed[glabella] < 0.2
    nose, chin = uv[1], uv[topology.CHIN]
    assert closed[int(nose[1]):int(chin[1]), int(nose[0]) - 5:int(nose[0]) + 5].min() > 0.99


def test_too_small_a_face_keeps_everything_and_says_so(photo_rig):
    """A photo whose face is a few pixels across: no colour model, everything kept, and the
    fringe test reads None (a swap then prints no hint)."""
    _, uv, rig = photo_rig
    uv = np.ascontiguousarray(uv * 0.04)
    info: dict = {}
    keep = skin_map(np.zeros((32, 32, 3), np.uint8), uv, rig, strands=FRINGE_STRANDS, info=info)
    assert info["forehead_hair"] is None and keep.min() == 1.0


def test_a_bare_forehead_with_a_few_strands_stays(photo_rig):
    """A few strands over a bare forehead (under FRINGE_COVER of it) are dropped by colour, and
    the forehead's skin between them stays: that is no fringe."""
    photo, uv, rig = photo_rig
    img, region = bare(photo, uv)
    _, iod = forehead(photo, uv)
    period = max(8, int(round(1.0 * iod)))
    xs = np.arange(img.shape[1])
    strand = region & ((xs % period) < max(2, int(0.12 * period)))[None, :]
    assert strand.sum() / region.sum() < 0.5 * FRINGE_COVER
    img[strand] = (60, 40, 30)
    closed = skin_map(img, uv, rig, strands=FRINGE_STRANDS)
    off = 2 * int(round(EDGE_INSET * iod)) + 7
    skin = cv2.erode((region & ~strand).astype(np.uint8), np.ones((3, off), np.uint8)) > 0   # off the inset edges
    assert skin.sum() > 100 and closed[skin].mean() > 0.75     # (dropped, it reads < 0.1)


def test_the_fringe_test_reads_the_astronauts_fringe_and_a_bare_forehead(photo_rig):
    """`info["forehead_hair"]`: her fringe covers a good part of her forehead (0.43: under
    FRINGE_COVER, her forehead stays with --drop-fringe, as s5's parted fringe's does); painted
    bare (but for a strip just above her brows, where her fringe's tips stay), less. Asking for
    it leaves the default map as it is."""
    photo, uv, rig = photo_rig
    info: dict = {}
    with_info = skin_map(photo, uv, rig, info=info)
    np.testing.assert_array_equal(with_info, skin_map(photo, uv, rig))
    hers = info["forehead_hair"]
    img, _ = bare(photo, uv)
    skin_map(img, uv, rig, info=info)
    assert 0.3 < hers < FRINGE_COVER and info["forehead_hair"] < hers - 0.1
    assert fringe_hint(None) is None and fringe_hint(FRINGE_COVER) is None
    assert "--drop-fringe" in fringe_hint(0.86)


def test_hair_over_a_cheeks_side_goes_and_a_beard_stays(photo_rig):
    """Hair-coloured strands along one cheek's side, inside the outline between the eyes and the
    mouth, are dropped with `sides` (the default) and kept without; the same colour under the
    mouth (a beard) is the identity's in both."""
    photo, uv, rig = photo_rig
    _, iod = forehead(photo, uv)
    h, w = photo.shape[:2]
    inside = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inside, [np.round(uv[list(topology.FACE_OVAL)]).astype(np.int32)], 1)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 3) / iod
    ys, xs = np.mgrid[0:h, 0:w]
    eye_y = uv[list(topology.EYE_OUTER), 1].mean()
    mouth_y = uv[[61, 291], 1].mean()
    nose_x = uv[topology.NOSE_TIP, 0]
    strip = (inside > 0) & (depth < 0.15) & (ys > eye_y + 0.2 * iod) & (ys < mouth_y - 0.27 * iod) & (xs < nose_x)
    lip, chin = uv[list(topology.OUTER_LIP), 1].max(), uv[topology.CHIN]
    beard = (inside > 0) & (ys > lip + 0.1 * iod) & (ys < chin[1] - 0.15 * iod) & (np.abs(xs - chin[0]) < 0.3 * iod)
    assert strip.sum() > 50 and beard.sum() > 200
    img = photo.copy()
    img[strip | beard] = (60, 40, 30)
    sides, none = skin_map(img, uv, rig), skin_map(img, uv, rig, sides=False)
    core = cv2.erode(strip.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert sides[core].mean() < 0.3
    assert none[core].mean() > 0.9
    for keep in (sides, none):
        assert keep[beard].min() > 0.95
        nose, chin_pt = uv[1], uv[topology.CHIN]
        assert keep[int(nose[1]):int(chin_pt[1]), int(nose[0]) - 5:int(nose[0]) + 5].min() > 0.99


def test_a_hair_coloured_patch_inside_the_face_stays_and_hair_over_its_outline_goes(photo_rig):
    """A dark patch between the brows, nowhere near the outline (a mole; s18's ginger brow tail
    and far lid's crease), is the face's own and stays; the same colour coming in over the
    outline onto the forehead (a lock of hair) goes."""
    photo, uv, rig = photo_rig
    img, region = bare(photo, uv)
    _, iod = forehead(photo, uv)
    h, w = img.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    mid = uv[list(topology.EYE_OUTER)].mean(0)
    patch = np.hypot(xs - mid[0], ys - (mid[1] - 0.16 * iod)) < 0.07 * iod
    lock = region & (np.abs(xs - (mid[0] + 0.4 * iod)) < 0.12 * iod)
    assert patch.sum() > 20 and lock.sum() > 20
    img[patch | lock] = (60, 40, 30)
    keep = skin_map(img, uv, rig)
    core = lambda m: cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert keep[core(patch)].min() > 0.9
    assert keep[core(lock)].mean() < 0.3


def test_few_samples_around_the_face_in_small_groups_still_make_a_model():
    """A photo cut off just above the eyes leaves ~50-60 samples in the band around the face; in
    three groups under 20 each, every k-means cluster was dropped and the swap's set-up raised
    (code review). They make one model then."""
    from realtime.swap.skin import _clusters

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(c, 1.0, (n, 3)) for c, n in (((20, 0, 0), 19), ((60, 10, 10), 19),
                                                                 ((90, -10, 20), 17))])
    models = _clusters(x)
    assert len(models) >= 1
    mu, cov = models[0]
    assert mu.shape == (3,) and cov.shape == (3, 3) and np.isfinite(cov).all()


def striped(photo, uv, period_iod=0.2):
    """The photo with a fringe of dark strands over its bare forehead (`bare`), the skin showing
    in the gaps between them, as wide as the strands: (image, the strands, the gaps)."""
    img, region = bare(photo, uv)
    _, iod = forehead(photo, uv)
    period = max(4, int(round(period_iod * iod)))
    strand = region & ((np.arange(img.shape[1]) % period) < period // 2)[None, :]
    img[strand] = (60, 40, 30)
    return img, strand, region & ~strand


def test_a_fringe_is_painted_out_with_skin(photo_rig):
    """A fringe of strands with skin between them: by colour the map keeps the gaps and drops the
    strands (the swap drew them as hair patches torn across the driver's forehead); painted out
    by `fringe_fill`, the forehead is skin-coloured and the map keeps it whole. The brows, the
    eyes and the face below them keep their pixels."""
    photo, uv, rig = photo_rig
    img, strand, gaps = striped(photo, uv)
    region = strand | gaps
    found = fringe_fill(img, uv, rig)
    assert found is not None
    weight, colour = found
    assert weight[region].mean() > 0.95
    painted = np.clip(np.round(img * (1.0 - weight[..., None]) + colour * weight[..., None]), 0, 255).astype(np.uint8)
    before, after = skin_map(img, uv, rig), skin_map(painted, uv, rig)
    assert before[strand].mean() < before[gaps].mean() - 0.2     # a patchwork: hair dropped, gaps kept
    assert after[region].mean() > 0.95 and np.percentile(after[region], 5) > 0.8
    # no strand left in the painted skin: its pixels are as light as the gaps' skin
    luma = painted.astype(np.float32).mean(-1)
    assert luma[strand].mean() > 0.9 * img[gaps].astype(np.float32).mean()
    _, iod = forehead(photo, uv)
    ys = np.arange(img.shape[0])[:, None]
    below = ys > uv[list(topology.EYE_OUTER), 1].mean() + 0.1 * iod
    assert weight[np.broadcast_to(below, weight.shape)].max() == 0.0
    brows = np.zeros(img.shape[:2], np.uint8)
    for brow in (topology.RIGHT_BROW, topology.LEFT_BROW):
        cv2.fillPoly(brows, [np.round(uv[list(brow[:5]) + list(brow[5:][::-1])]).astype(np.int32)], 1)
    core = cv2.erode(brows, np.ones((3, 3), np.uint8)) > 0
    assert weight[core].mean() < 0.05              # (their edges a little: the map's blur)


def test_a_partial_fringe_and_a_bare_forehead_are_not_painted(photo_rig):
    """The astronaut's own fringe covers under FRINGE_COVER of her forehead, and a bare forehead
    none: `fringe_fill` leaves both (None), so such photos swap exactly as before."""
    photo, uv, rig = photo_rig
    assert fringe_fill(photo, uv, rig) is None
    img, _ = bare(photo, uv)
    assert fringe_fill(img, uv, rig) is None


def test_the_swap_paints_a_fringe_out_unless_it_drops_it(astronaut_rgb, astronaut_landmarks):
    """A photo wearing a fringe: the swap's skin map keeps its forehead whole (painted with its
    skin: the driver sees the identity's forehead, not hair patches over her own); with
    `drop_fringe` the fringe goes and the driver's forehead shows, as before."""
    from profiles.enroll import build_profile
    from realtime.engine.loop import Engine, EngineOptions

    uv = np.asarray(astronaut_landmarks, np.float64)[:, :2]
    img, strand, gaps = striped(np.ascontiguousarray(astronaut_rgb), uv)
    profile = build_profile(img, np.array(astronaut_landmarks), name="fringed", source="test")
    kept = {}
    for drop in (False, True):
        engine = Engine(profile, EngineOptions(mode="swap", output_size=(512, 512), drop_fringe=drop,
                                               even_grain=False, lift_sockets=False, fill_far_side=False))
        stage = next(s for s in engine.stages if s.name == "attributes")
        rig = stage.rig
        engine.close()
        # the forehead's strands and gaps at the map's density (the photo's through the rig's texture)
        small, _ = rig.texture_at_crop_density(np.ascontiguousarray(img), np.ascontiguousarray(rig.attributes[:, :2]))
        region = cv2.resize((strand | gaps).astype(np.uint8), small.shape[1::-1], interpolation=cv2.INTER_NEAREST) > 0
        region = cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        kept[drop] = float(np.asarray(stage.skin_map)[..., 0][region].mean())
    assert kept[False] > 0.9        # before: 0.5 or so, the gaps kept and the strands dropped
    assert kept[True] < 0.2


def test_the_swapped_forehead_takes_the_drivers_light(astronaut_rgb, astronaut_landmarks):
    """A photo with a bare forehead (as a painted-out fringe leaves it) swapped onto itself lit
    from above (the frames brighter the higher up the face, by half at an interocular above the
    eyes): the swapped forehead takes that light, as the driver's low band everywhere under the
    face. The gain field samples both faces' foreheads (`forehead_triangles`); before, neither
    face had a colour sample above the brows, the gain there was the eyes' and cheeks' carried up
    and the forehead kept the photo's light: a darker band across the driver's lit forehead
    (s1 ← d10: 40 levels of L below the driver's just above the brows)."""
    from profiles.enroll import build_profile
    from realtime.core.frame import Frame
    from realtime.engine.loop import Engine, EngineOptions
    from realtime.image.disclose import DisclosureOptions

    lm = np.asarray(astronaut_landmarks, np.float64)
    uv = lm[:, :2]
    img, region = bare(np.ascontiguousarray(astronaut_rgb), uv)
    _, iod = forehead(img, uv)
    profile = build_profile(img, np.array(astronaut_landmarks), name="bare", source="test")
    eyes = uv[list(topology.EYE_OUTER), 1].mean()
    ys = np.arange(img.shape[0], dtype=np.float64)[:, None]
    lift = np.clip((eyes - ys) / iod, 0.0, 1.0)[..., None]
    driver = np.clip(img * (1.0 + 0.5 * lift), 0, 255).astype(np.uint8)
    engine = Engine(profile, EngineOptions(mode="swap", output_size=img.shape[1::-1], fps=30.0, kernel_threads=1,
                                           disclosure=DisclosureOptions(label=False, mark=False)))
    for i in range(8):
        f = Frame(index=i, t_capture=i / 30.0, image=driver, landmarks=lm.astype(np.float32), tracked=True)
        engine.process(f)
    engine.close()
    # the painted forehead inside the face's outline, off its edge (where the driver shows)
    core = cv2.erode(region.astype(np.uint8), np.ones((int(0.1 * iod),) * 2, np.uint8)) > 0
    luma = lambda im: cv2.GaussianBlur(im.astype(np.float32).mean(-1), (0, 0), 0.05 * iod)   # noqa: E731
    shown = luma(f.output)[core] - luma(driver)[core]
    lit = luma(driver)[core] - luma(img)[core]
    assert np.median(lit) > 30                      # the driver's forehead is lit
    assert abs(float(np.median(shown))) < 8, (np.median(shown), np.median(lit))


def _brow_outline(uv, brow, shape):
    """(h, w) bool: `brow`'s landmark outline (its two contours joined) in `uv`."""
    out = np.zeros(shape, np.uint8)
    cv2.fillPoly(out, [np.round(uv[list(brow[:5]) + list(brow[5:][::-1])]).astype(np.int32)], 1)
    return out > 0


def tipped(photo, uv):
    """`striped`'s fringe, its tips hanging over the brows as s1's do: a flat-topped block of the
    hair's colour from each brow's lower contour up to its outline's top, and up from there to the
    fringe (what lies inside the brows' outlines is the tips, not a brow)."""
    img, strand, gaps = striped(photo, uv)
    _, iod = forehead(photo, uv)
    for brow in (topology.RIGHT_BROW, topology.LEFT_BROW):
        pts = uv[list(brow)]
        lower = max((uv[list(brow[:5])], uv[list(brow[5:])]), key=lambda h: h[:, 1].mean())   # image y down
        lower = lower[np.argsort(lower[:, 0])]
        top = pts[:, 1].min() - 0.15 * iod
        block = np.concatenate([lower, [[lower[-1, 0], top], [lower[0, 0], top]]])
        cv2.fillPoly(img, [np.round(block).astype(np.int32)], (60, 40, 30))
    return img


def test_brows_under_a_painted_fringe_are_drawn_back(astronaut_rgb, astronaut_landmarks):
    """s1: a fringe's tips hang over her brows down to MediaPipe's upper brow contour; with the
    fringe painted out and the brows' outlines kept as they were, her brows were the tips' dark
    flat-topped blocks (here: each outline kept whole, one flat colour). Now the outlines and a
    margin about them are painted with skin and a brow drawn back (its shape `brow_strokes`'):
    the outlines' pixels are new, a brow lies along the lower contour, streaked like hair, and
    no tips are left above it. (The astronaut at twice her size: s1's photo is about as dense.)"""
    from profiles.enroll import build_profile
    from realtime.swap.skin import fill_fringe

    lm = np.array(astronaut_landmarks) * 2.0
    uv = lm[:, :2]
    big = cv2.resize(np.ascontiguousarray(astronaut_rgb), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    img = tipped(big, uv)
    out = fill_fringe(img, build_profile(img, lm, name="tipped", source="test"))
    luma = out.astype(np.float32).mean(-1)
    nose, chin = uv[1], uv[topology.CHIN]
    cheek = img[int(nose[1]):int(chin[1]), int(nose[0]) - 80:int(nose[0]) - 40]
    ink = np.clip(1.0 - luma / float(np.median(cheek.astype(np.float32).mean(-1))), 0.0, 1.0)   # 0: skin
    _, iod = forehead(img, uv)
    rows = np.arange(img.shape[0])
    for brow in (topology.RIGHT_BROW, topology.LEFT_BROW):
        outline = cv2.erode(_brow_outline(uv, brow, img.shape[:2]).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert (out[outline] == img[outline]).all(-1).mean() < 0.2    # before: 0.35 (1.0 but at the fill's soft edge)
        lower, upper = sorted((uv[list(brow[:5])], uv[list(brow[5:])]), key=lambda h: -h[:, 1].mean())
        lower = lower[np.argsort(np.abs(lower[:, 0] - uv[168, 0]))]       # inner end first
        upper = upper[np.argsort(np.abs(upper[:, 0] - uv[168, 0]))]

        def column(p, lo, hi):
            """The ink down the column at p's x, from lo to hi interoculars above p."""
            return ink[(rows > p[1] - hi * iod) & (rows < p[1] - lo * iod), int(round(p[0]))]

        assert np.concatenate([column(upper[k], 0.03, 0.08) for k in (1, 2, 3, 4)]).mean() < 0.1   # no tips
        # along the brow's body (its inner end to its middle): dark, and streaked, not one flat colour
        along = [lower[0] + f * (lower[2] - lower[0]) for f in np.linspace(0.2, 1, 15)]
        body = np.array([column(p, -0.03, 0.05).max() for p in along])
        assert body.mean() > 0.3
        assert body.std() > 0.02                  # the tips' block: 0.0


def test_a_photo_without_a_fringe_is_returned_as_it_is(astronaut_profile):
    """No fringe painted out, no brow drawn: `fill_fringe` hands back the very array (the
    astronaut's partial fringe; s0, s5, s12 likewise), so such photos swap byte for byte as before."""
    from realtime.swap.skin import fill_fringe

    photo = astronaut_profile["image"]
    assert fill_fringe(photo, astronaut_profile) is photo


def test_the_drawn_brow_lies_in_the_painted_region_and_tapers(astronaut_landmarks):
    """`brow_strokes`: each brow drawn where the photo's brow is painted out (never over the
    photo as it is), its ink per column fuller in the middle than at the tail, and the same
    brow from the same landmarks."""
    from realtime.swap.skin import brow_strokes

    uv = np.asarray(astronaut_landmarks, np.float64)[:, :2] * 2.0
    alpha, region = brow_strokes(uv, (1024, 1024))
    assert alpha.max() > 0.6 and region.max() > 0.99
    assert alpha[region < 0.9].max() < 0.05
    for brow in (topology.RIGHT_BROW, topology.LEFT_BROW):
        lower = min((uv[list(brow[:5])], uv[list(brow[5:])]), key=lambda h: -h[:, 1].mean())
        lower = lower[np.argsort(np.abs(lower[:, 0] - uv[168, 0]))]
        middle = alpha[:, int(round(lower[2, 0]))].sum()
        tail = alpha[:, int(round(0.7 * lower[4, 0] + 0.3 * lower[3, 0]))].sum()
        assert tail < 0.7 * middle
    again, _ = brow_strokes(uv, (1024, 1024))
    np.testing.assert_array_equal(alpha, again)


def test_painting_out_the_brows_keeps_the_eyes_and_their_lashes(astronaut_rgb, astronaut_landmarks):
    """A face whose brows sit near its eyes (s9's lower brow contour is 0.081 interoculars above
    its upper lid, s5's 0.093; the astronaut's is moved down to 0.07 here): the brows' outlines
    grown by `BROW_MARGIN` and blurred reached the upper lid, and its lashes and liner were
    painted with skin (the brows' region was 1.0 on s9's lash line). The eye openings and their
    lash line keep their pixels."""
    from profiles.enroll import build_profile
    from realtime.swap.skin import fill_fringe
    from realtime.swap.sockets import eye_openings

    lm = np.array(astronaut_landmarks) * 2.0
    big = cv2.resize(np.ascontiguousarray(astronaut_rgb), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    _, iod = forehead(big, lm[:, :2])
    brows = list(topology.RIGHT_BROW) + list(topology.LEFT_BROW)
    lids = list(topology.RIGHT_EYE_UPPER) + list(topology.LEFT_EYE_UPPER)
    gap = np.linalg.norm(lm[lids, None, :2] - lm[None, brows, :2], axis=-1).min()    # 0.107 interoculars
    lm[brows, 1] += gap - 0.07 * iod                          # image y down
    uv = lm[:, :2]
    img = tipped(big, uv)
    out = fill_fringe(img, build_profile(img, lm, name="low-brows", source="test"))
    assert out is not img
    r = int(round(0.02 * iod))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    keep = cv2.dilate(eye_openings(uv, img.shape[:2]), disc) > 0      # the eyes and their lash line
    changed = np.abs(out.astype(np.int16) - img.astype(np.int16)).max(-1)[keep]
    assert (changed <= 2).mean() > 0.99, (changed.max(), (changed > 2).mean())


def test_the_drawn_brow_is_streaked_like_hair(astronaut_landmarks):
    """`brow_strokes`' opacity varies at the scale of its hairs, not only with its taper and arch:
    inside the brow, its departure from its own blur by 0.03 interoculars has std 0.10 (seed 0;
    0.08-0.11 over seeds 0-5); drawn without streaks, 0.046 (its soft edges alone)."""
    from realtime.swap.skin import brow_strokes

    uv = np.asarray(astronaut_landmarks, np.float64)[:, :2] * 2.0
    _, iod = forehead(np.zeros((1024, 1024, 3), np.uint8), uv)
    alpha, _ = brow_strokes(uv, (1024, 1024))
    core = cv2.erode((alpha > 0.4).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert core.sum() > 150
    assert float((alpha - cv2.GaussianBlur(alpha, (0, 0), 0.03 * iod))[core].std()) > 0.065


def test_brow_colour_is_the_darkest_hairs_not_the_tips_over_them(astronaut_landmarks):
    """`brow_colour`: inside the brows' outlines a fringe's lighter tips cover most of the brow
    (here 85% of the pixels) and its hairs show between them; the colour is the hairs', not the
    tips' (the median of all the outlines' pixels would be the tips')."""
    from realtime.swap.skin import brow_colour
    from realtime.swap.sockets import brow_polygons

    uv = np.asarray(astronaut_landmarks, np.float64)[:, :2]
    img = np.full((512, 512, 3), (200, 160, 140), np.uint8)
    inside = brow_polygons(uv, img.shape[:2]) > 0
    hair = inside & (np.random.default_rng(0).random(img.shape[:2]) < 0.15)
    img[inside] = (180, 150, 110)
    img[hair] = (50, 35, 25)
    np.testing.assert_allclose(brow_colour(img, uv), (50, 35, 25), atol=1.0)


def test_brow_hairs_beyond_the_painted_margin_do_not_darken_the_skin_painted_in(astronaut_rgb, astronaut_landmarks):
    """The brows' region is painted from the skin about it; a brow's stray hairs just beyond the
    margin (here a ring 0.065-0.1 interoculars out, half its pixels hair-dark) are not skin and
    are left out of that paint: the painted skin is as light as without them (171.7 against
    170.8 luma; taken in, 154)."""
    from profiles.enroll import build_profile
    from realtime.swap.skin import brow_strokes, fill_fringe
    from realtime.swap.sockets import brow_polygons

    lm = np.array(astronaut_landmarks) * 2.0
    uv = lm[:, :2]
    big = cv2.resize(np.ascontiguousarray(astronaut_rgb), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    _, iod = forehead(big, uv)
    plain = tipped(big, uv)

    def disc(reach):
        r = int(reach * iod)
        return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))

    brows = brow_polygons(uv, plain.shape[:2])
    ring = (cv2.dilate(brows, disc(0.1)) > 0) & ~(cv2.dilate(brows, disc(0.065)) > 0)
    haired = plain.copy()
    haired[ring & (np.random.default_rng(1).random(plain.shape[:2]) < 0.5)] = (50, 35, 25)
    alpha, region = brow_strokes(uv, plain.shape[:2])
    painted = (region > 0.99) & (alpha < 0.02)
    assert painted.sum() > 500
    outs = [fill_fringe(img, build_profile(img, lm, name="haired", source="test")) for img in (plain, haired)]
    luma = [float(out.astype(np.float32).mean(-1)[painted].mean()) for out in outs]
    assert luma[1] > 0.97 * luma[0], luma


def brows_inner_ends(uv):
    """The brows' lower contours' inner ends (the points nearest the nose's bridge, landmark 168,
    across the image), left to right: ((x0, y0), (x1, y1))."""
    inner = []
    for brow in (topology.RIGHT_BROW, topology.LEFT_BROW):
        lower = max((uv[list(brow[:5])], uv[list(brow[5:])]), key=lambda h: h[:, 1].mean())   # image y down
        inner.append(lower[np.argmin(np.abs(lower[:, 0] - uv[168, 0]))])
    return sorted(inner, key=lambda p: p[0])


def test_a_fringes_tips_between_the_brows_leave_no_band(astronaut_rgb, astronaut_landmarks):
    """s1: her fringe's tips hang between her brows down into the painted forehead's soft lower
    edge; there its partial weight blended them in, a darker bar from one brow's inner end to
    the other (L* 55 between the fill's 63 above and her glabella's 72 below), pale on the
    drivers' lit skin. Now the edge paints over what is darker than the fill, and the fill meets
    the skin below at that skin's shade: up the glabella the luma runs from the skin into the
    fill with no dip under either. (The astronaut at twice her size, as s1's photo is dense.)"""
    from profiles.enroll import build_profile
    from realtime.swap.skin import fill_fringe

    lm = np.array(astronaut_landmarks) * 2.0
    uv = lm[:, :2]
    big = cv2.resize(np.ascontiguousarray(astronaut_rgb), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    img = tipped(big, uv)
    _, iod = forehead(img, uv)
    (x0, y0), (x1, y1) = brows_inner_ends(uv)
    # the tips: from the fringe down to 0.04 interoculars below the brows' inner ends
    bottom = 0.5 * (y0 + y1) + 0.04 * iod
    top = min(y0, y1) - 0.3 * iod
    cv2.rectangle(img, (int(round(x0)), int(round(top))), (int(round(x1)), int(round(bottom))), (60, 40, 30), -1)
    out = fill_fringe(img, build_profile(img, lm, name="tips", source="test"))
    luma = cv2.GaussianBlur(out.astype(np.float32).mean(-1), (0, 0), 0.01 * iod)
    x = int(round(0.5 * (x0 + x1)))
    rows = np.arange(img.shape[0])
    eyes = uv[list(topology.EYE_OUTER), 1].mean()

    def column(lo, hi):
        """The luma down the glabella's column from lo to hi interoculars above the eye line."""
        return luma[(rows > eyes - hi * iod) & (rows < eyes - lo * iod), x - 2:x + 3].mean(1)

    below, above = np.median(column(-0.05, 0.0)), np.median(column(0.3, 0.35))
    band = column(0.0, 0.3).min()
    assert band > min(below, above) - 4.0, (band, below, above)


def test_near_its_edge_the_fill_takes_the_shade_of_the_skin_below(photo_rig):
    """s1: her glabella is lighter than her forehead's broad blur of the face's skin, and the fill
    met it a shade darker, a bar. Near its edge the fill takes finer blurs of the skin
    (`FILL_SUPPORT`): over a glabella painted a light shade, the fill's soft lower edge between the
    brows is within 23 levels of that shade (the broad blur alone: 30)."""
    photo, uv, rig = photo_rig
    img = tipped(photo, uv)
    _, iod = forehead(img, uv)
    (x0, y0), (x1, y1) = brows_inner_ends(uv)
    top, bottom = int(round(min(y0, y1) - 0.1 * iod)), int(round(max(y0, y1) + 0.25 * iod))
    shade = np.array((235, 205, 190), np.uint8)
    patch = img[top:bottom, int(x0):int(x1)]
    patch[patch.astype(np.int32).sum(-1) > 250] = shade         # the skin, not the tips
    found = fringe_fill(img, uv, rig)
    assert found is not None
    weight, colour = found
    x = slice(int(x0 + 0.3 * (x1 - x0)), int(x1 - 0.3 * (x1 - x0)))
    edge = (weight[:, x] > 0.3) & (weight[:, x] < 0.95)
    assert edge.sum() > 10
    assert np.abs(colour[:, x][edge] - shade).max(-1).mean() < 23.0


def test_the_raise_under_the_fills_edge_keeps_to_the_brows_band():
    """`_under_the_edge` raises the fill's weight over hair between the brows only (`_brow_span`):
    a soft-edged fill over hair everywhere keeps its weight beyond the brows' outer ends (the
    temples' hair: a span of ones drew flat skin patches over it) and above their band (the
    hairline), and over skin as light as the fill it keeps its weight everywhere (a blur of the
    weight itself spread the fill's every edge outwards: s1, 4290 pixels outside the face's
    outline up to 175 levels); over tips between the brows the raise is softened onto the skin
    below them (`EDGE_SOFT`)."""
    from realtime.swap.skin import _brow_span, _eye_line, _under_the_edge

    uv = np.asarray(np.load(Path(__file__).parents[2] / "data" / "astronaut_landmarks.npy",
                            allow_pickle=False), np.float64)[:, :2] * 2.0
    shape = (1024, 1024)
    mid, d, up, iod = _eye_line(uv)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    along = ((xx - mid[0]) * d[0] + (yy - mid[1]) * d[1]) / iod ** 2
    height = ((xx - mid[0]) * up[0] + (yy - mid[1]) * up[1]) / iod
    brows = uv[list(topology.RIGHT_BROW) + list(topology.LEFT_BROW)]
    reach = np.abs((brows - mid) @ d / iod ** 2).max()
    top = float(((brows - mid) @ up).max()) / iod
    # a fill wider than the brows, from their top to well above it, its edges soft all round
    block = ((np.abs(along) < reach + 0.3) & (height > top - 0.05) & (height < top + 0.5)).astype(np.float32)
    weight = cv2.GaussianBlur(block, (0, 0), 0.03 * iod)
    colour = np.full(shape + (3,), (200, 150, 130), np.float32)
    span = _brow_span(uv, shape)
    hair = np.full(shape + (3,), (60, 40, 30), np.uint8)
    raised = _under_the_edge(weight, hair, colour, span, iod)
    assert raised.dtype == np.float32 and raised.shape == shape
    lower_edge = (np.abs(along) < reach - 0.1) & (np.abs(height - (top - 0.05)) < 0.01) & (weight > 0.1)
    assert raised[lower_edge].min() > 0.99                         # the tips under it: painted over
    away = (np.abs(along) > reach + 0.15) | (height > top + 0.25)
    np.testing.assert_allclose(raised[away], weight[away], atol=1e-6)
    skin = np.full(shape + (3,), (210, 160, 140), np.uint8)
    np.testing.assert_allclose(_under_the_edge(weight, skin, colour, span, iod), weight, atol=1e-6)
    # tips between the brows over the lower edge: the raise's edge is soft, onto the skin below
    tips = skin.copy()
    tips[(np.abs(along) < 0.1) & (height > top - 0.1) & (height < top - 0.03)] = (60, 40, 30)
    raised = _under_the_edge(weight, tips, colour, span, iod)
    below = (np.abs(along) < 0.05) & (np.abs(height - (top - 0.12)) < 0.005)
    assert (raised - weight)[below].min() > 0.1




def _lock(shape, uv, iod):
    """`shaded_fringe`'s lock of hair on an image of `shape` with landmarks `uv`: (the brows' top
    row, the hair's lower edge's row, the face's centre column, row and column grids, the face's
    outline (uint8), the forehead's side under the lock, inside the outline (bool))."""
    top = uv[list(topology.RIGHT_BROW) + list(topology.LEFT_BROW), 1].min()
    edge = int(round(top - 0.2 * iod))
    cx = int(uv[list(topology.FACE_OVAL), 0].mean())
    ys, xs = np.arange(shape[0])[:, None], np.arange(shape[1])[None, :]
    outline = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(outline, [np.round(uv[list(topology.FACE_OVAL)]).astype(np.int32)], 1)
    side = (outline > 0) & (xs < cx - 0.05 * iod) & (xs > uv[list(topology.RIGHT_BROW), 0].min())
    return top, edge, cx, ys, xs, outline, side


def shaded_fringe(photo, uv, depth=0.8):
    """The photo with a bare forehead (`bare`) under a lock of hair over one side of it: solid
    dark hair over its left half down to 0.2 interoculars above the brows, coming in over the
    outline, and the skin below the hair's edge in its shade for 0.06 interoculars: the lit skin
    below it (its median, with the painted forehead's noise) at `depth` of its sRGB values;
    (image, the shade, the lit skin below it down to the brows, the interocular)."""
    img, _ = bare(photo, uv)
    _, iod = forehead(photo, uv)
    top, edge, cx, ys, xs, outline, side = _lock(img.shape, uv, iod)
    img[(ys < edge) & (xs < cx) & (cv2.dilate(outline, np.ones((15, 15), np.uint8)) > 0)] = (60, 40, 30)
    shade = side & (ys >= edge) & (ys < edge + 0.06 * iod)
    below = side & (ys >= edge + 0.12 * iod) & (ys < top - 0.03 * iod)
    # the shade of that skin (the painted forehead is the cheeks' colour, its hue 10 degrees
    # yellower than the forehead's own skin below it, which the lift takes for the lit skin)
    band = img[shade].astype(np.float64)
    img[shade] = np.clip(np.round((band - np.median(band, 0) + np.median(img[below], 0)) * depth), 0, 255)
    return img, shade, below, iod



def test_the_shade_along_a_fringes_edge_is_lifted_to_the_lit_forehead(astronaut_rgb, astronaut_landmarks):
    """A partial fringe's edge lies on the forehead in its shade (s5's painted fringe: her
    forehead 43.8 L* within 0.02 interoculars of it, 58.8 past 0.16): skin by its colour, the
    swap's map kept that band and left the hair beside it to the driver, a dark line drawn
    across the driver's forehead along the fringe's edge, on every driver. The swap's photo has
    it lifted to the lit forehead below it (here 0.8 of its luma before); the hair (but its
    rim), the lit skin and the face below the brows keep their pixels."""
    from profiles.enroll import build_profile
    from realtime.swap.photo import SwapPhotoProfile

    uv = np.asarray(astronaut_landmarks, np.float64)[:, :2]
    img, shade, below, iod = shaded_fringe(np.ascontiguousarray(astronaut_rgb), uv)
    profile = build_profile(img, np.array(astronaut_landmarks), name="fringed", source="test")
    out = SwapPhotoProfile(profile, even_grain=False, fill_far_side=False, lift_sockets=False)["image"]
    luma = out.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    # the band's lower rows (its top row meets the hair: the map's inset edge)
    rows = np.nonzero(shade.any(1))[0]
    band = shade & (np.arange(img.shape[0])[:, None] > rows.min())
    lit = float(np.median(luma[below]))
    assert band.sum() > 30 and below.sum() > 30
    # (0.94 before the skin map read a fringe's shaded edge by its hue, 0.93 since: the lock's
    # edge blurred into the band reads as shaded hair there, and the map moves it FRINGE_EDGE
    # onto the band, which the driver shows)
    assert np.median(luma[band]) > 0.92 * lit, (np.median(luma[band]), lit)
    # (but its first row, next to the shade: the feather of the lift's edge)
    ys = np.arange(img.shape[0])[:, None]
    lit_skin = below & (ys > np.nonzero(below.any(1))[0].min())
    np.testing.assert_array_equal(out[lit_skin], img[lit_skin])
    # the hair (but its rim, which the map keeps after its blur and inset: lifted with the shade)
    hair = cv2.erode((img == (60, 40, 30)).all(-1).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    np.testing.assert_array_equal(out[hair], img[hair])
    low = np.arange(img.shape[0]) > uv[list(topology.RIGHT_BROW) + list(topology.LEFT_BROW), 1].max() + 0.1 * iod
    np.testing.assert_array_equal(out[low], img[low])


def test_a_darkened_colour_keeps_its_hue_and_hair_turns_it():
    """`hue_turn`: a skin colour darkened alone (its linear light halved) is turned by 0 degrees
    (a shade's hue is the lit skin's, or redder); a yellower one (blond hair) by more than
    `SHADE_HUE`, a redder one by less than -`SHADE_HUE`; it wraps into (-180, 180]."""
    from realtime.swap.colour import lab_to_srgb
    from realtime.swap.skin import SHADE_HUE

    lit = np.array([220.0, 180.0, 150.0], np.float32)
    linear = np.where(lit / 255 <= 0.04045, lit / 255 / 12.92, ((lit / 255 + 0.055) / 1.055) ** 2.4) * 0.5
    dark = 255 * np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    colours = np.stack([dark, [150.0, 130.0, 80.0], [150.0, 90.0, 80.0]]).astype(np.float32)
    turn = hue_turn(colours, np.broadcast_to(lit, colours.shape))
    assert abs(turn[0]) < 0.1 and turn[1] > SHADE_HUE and turn[2] < -SHADE_HUE, turn
    # across Lab's 180 degrees (a cyan): 183.8 less 176.2, not -352
    cyan = lab_to_srgb(np.array([[60.0, -30.0, 2.0], [60.0, -30.0, -2.0]], np.float32))
    np.testing.assert_allclose(hue_turn(cyan[1], cyan[0]), 7.6, atol=0.3)
    assert hue_turn(lit, lit) == 0.0


def turned(img, region, lightness, turn, chroma=1.0):
    """`img` with `region` ((h, w) bool mask, (N, 3) pixels of the lit skin: `shaded_fringe`'s
    `below`) painted in the lit skin's median colour at `lightness` of its L*, its Lab hue
    turned by `turn` degrees (+: towards yellow) and its chroma times `chroma`, with a little
    noise."""
    from realtime.swap.colour import lab_to_srgb, srgb_to_lab

    out = img.copy()
    lab = srgb_to_lab(np.median(region[1], 0).astype(np.float32))
    angle = np.arctan2(lab[2], lab[1]) + np.radians(turn)
    c = chroma * float(np.hypot(lab[1], lab[2]))
    colour = lab_to_srgb(np.array([lightness * lab[0], c * np.cos(angle), c * np.sin(angle)], np.float32))
    noise = np.random.default_rng(1).normal(0, 2, (int(region[0].sum()), 3))
    out[region[0]] = np.clip(np.round(colour + noise), 0, 255).astype(np.uint8)
    return out


@pytest.mark.parametrize("turn, lifted", [(10.0, False), (-8.0, True)])
def test_hair_lighter_than_hair_luma_is_told_from_shade_by_its_hue(astronaut_rgb, astronaut_landmarks, turn,
                                                                    lifted):
    """Under a lock of dark hair, a band darker than the lit skin below it but above `HAIR_LUMA`
    of its luma (L* 0.6 of its: luma 0.55): turned towards yellow (+10 degrees, chroma 1.5 times:
    the astronaut's shaded blond fringe over her left brow, +9) it is hair, and keeps its pixels
    (lifted, a light rim painted into her fringe; here by up to 84 levels); turned towards red
    (-8: s5's shade) it is the skin's shade, lifted to the lit skin (more than half the way)."""
    from profiles.enroll import build_profile
    from realtime.swap.photo import SwapPhotoProfile

    uv = np.asarray(astronaut_landmarks, np.float64)[:, :2]
    img, shade, below, iod = shaded_fringe(np.ascontiguousarray(astronaut_rgb), uv, depth=1.0)
    img = turned(img, (shade, img[below]), 0.6, turn, 1.5 if turn > 0 else 1.0)
    profile = build_profile(img, np.array(astronaut_landmarks), name="fringed", source="test")
    out = SwapPhotoProfile(profile, even_grain=False, fill_far_side=False, lift_sockets=False)["image"]
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    rows = np.nonzero(shade.any(1))[0]
    band = shade & (np.arange(img.shape[0])[:, None] > rows.min())      # off the map's inset edge
    lit = float(np.median(img[below].astype(np.float32) @ luma))
    before = float(np.median(img[band].astype(np.float32) @ luma))
    after = float(np.median(out[band].astype(np.float32) @ luma))
    assert 0.45 < before / lit < 0.6, before / lit
    if lifted:
        assert after - before > 0.5 * (lit - before), (before, after, lit)
    else:
        # (but a pixel or two where the band meets the lit skin: its blurred hue is the skin's)
        moved = np.abs(out[band].astype(int) - img[band]).max(-1)
        assert (moved > 0).mean() < 0.05 and moved.max() <= 5, (np.bincount(moved), band.sum())


def test_the_astronauts_fringes_shaded_edge_goes_with_her_fringe(photo_rig):
    """Her blond fringe's lower edge, in its own shade (L* 46-57 against her skin's 82-88, its
    hue turned 10-15 degrees towards yellow), is skin by the colour odds: the map kept 0.72 of
    a band down her forehead's centre from 0.25 to 0.12 interoculars above her brows, a brown
    bar across every driver's forehead. It goes with the fringe (hair over 0.48 of her forehead:
    neither painted out nor dropped whole); the skin from the brows' top down stays."""
    photo, uv, rig = photo_rig
    info: dict = {}
    keep = skin_map(photo, uv, rig, info=info)
    assert SHADE_FRINGE <= info["forehead_hair"] <= FRINGE_COVER
    _, iod = forehead(photo, uv)
    top = uv[list(topology.RIGHT_BROW) + list(topology.LEFT_BROW), 1].min()
    cx = uv[list(topology.FACE_OVAL), 0].mean()
    cols = slice(int(round(cx - 0.3 * iod)), int(round(cx + 0.3 * iod)))
    bar = keep[int(round(top - 0.25 * iod)):int(round(top - 0.12 * iod)), cols]
    assert bar.mean() < 0.15, bar.mean()
    eyes = uv[[topology.EYE_OUTER[0], topology.EYE_OUTER[1]], 1].mean()
    assert keep[int(round(top)):int(round(eyes)), cols].mean() > 0.97


def test_a_grey_photos_forehead_is_not_judged_by_the_hue_of_its_noise(astronaut_rgb, astronaut_landmarks):
    """A greyscale photo has no hue but its noise's: the astronaut in grey wears her fringe (hair
    over 0.49 of her forehead, by the colour odds), and by that noise's hue, moved by +-1 level,
    the map dropped her forehead's shade at random (0.28-0.30 of the forehead kept, 0.49 without
    the noise; her sockets' shade under the brows 0.96). Her map keeps what its colour odds keep,
    the same with the noise or without it."""
    from profiles.enroll import build_profile
    from realtime.swap.skin import _at_crop_density

    grey = cv2.cvtColor(np.ascontiguousarray(astronaut_rgb), cv2.COLOR_RGB2GRAY)
    rng = np.random.default_rng(0)
    kept = []
    for noise in (0, 1, 1):
        img = np.repeat(grey[..., None], 3, -1).astype(np.int16)
        img = np.clip(img + rng.integers(-noise, noise + 1, img.shape), 0, 255).astype(np.uint8)
        profile = build_profile(img, np.array(astronaut_landmarks), name="grey", source="test")
        rig, _, small, uv = _at_crop_density(img, profile)
        info: dict = {}
        keep = skin_map(small, uv, rig, info=info)
        assert SHADE_FRINGE <= info["forehead_hair"] <= FRINGE_COVER
        _, iod = forehead(small, uv)
        top = uv[list(topology.RIGHT_BROW) + list(topology.LEFT_BROW), 1].min()
        eyes = uv[[topology.EYE_OUTER[0], topology.EYE_OUTER[1]], 1].mean()
        cx = uv[list(topology.FACE_OVAL), 0].mean()
        cols = slice(int(round(cx - 0.3 * iod)), int(round(cx + 0.3 * iod)))
        assert keep[int(round(top)):int(round(eyes)), cols].mean() > 0.99
        kept.append(float(keep[int(round(top - 0.6 * iod)):int(round(top)), cols].mean()))
    assert max(kept) - min(kept) < 0.05, kept


def test_a_grey_photos_fringe_is_not_lifted_by_the_hue_of_its_noise(astronaut_rgb, astronaut_landmarks):
    """A greyscale photo's hue is its noise's, and cannot tell hair from the skin's shade: the
    astronaut in grey still wears her fringe (over 0.3-0.6 of her forehead), and the shade lift
    painted a light patch into its shaded edge over her left brow where that noise's hue read
    as the skin's shade (399 px, and 256 or 293 with +-1 level of noise). Where the lit skin has
    no chroma nothing is lifted, with the noise or without it."""
    from profiles.enroll import build_profile
    from realtime.swap.skin import _at_crop_density

    grey = cv2.cvtColor(np.ascontiguousarray(astronaut_rgb), cv2.COLOR_RGB2GRAY)
    rng = np.random.default_rng(0)
    for noise in (0, 1, 1):
        img = np.repeat(grey[..., None], 3, -1).astype(np.int16)
        img = np.clip(img + rng.integers(-noise, noise + 1, img.shape), 0, 255).astype(np.uint8)
        profile = build_profile(img, np.array(astronaut_landmarks), name="grey", source="test")
        rig, _, small, uv = _at_crop_density(img, profile)
        assert hair_shade(small, uv, rig) is not None       # her fringe's shade is found
        np.testing.assert_array_equal(lift_hair_shade(img, profile), img)


@pytest.mark.parametrize("skin_chroma, band_chroma, turn, hair", [
    (20.0, 14.0, 15.0, True),       # a blond fringe's edge in its shade on coloured skin
    (20.0, 2.0, 90.0, False),       # a grey shade on coloured skin: its hue is its noise's
    (1.0, 10.0, 40.0, False),       # a greyscale photo's skin: its hue is its noise's
])
def test_a_hue_counts_only_where_it_has_chroma(skin_chroma, band_chroma, turn, hair):
    """`_shaded_hair` on a lit forehead (L* 75, CIE Lab hue 50 degrees) under a band in its shade
    (L* 45) turned towards yellow: with chroma in both (over 2 x `HUE_CHROMA`) the band is hair
    by its hue; a band with no chroma (under `HUE_CHROMA`) is not, however far its hue turns,
    nor is anything on a photo whose lit skin has none (a greyscale photo's faint cast: the
    turn is measured from its noise's hue)."""
    from realtime.swap.colour import lab_to_srgb
    from realtime.swap.skin import _shaded_hair

    def colour(lightness, chroma, hue):
        angle = np.radians(hue)
        return lab_to_srgb(np.array([lightness, chroma * np.cos(angle), chroma * np.sin(angle)], np.float32))

    img = np.empty((120, 160, 3), np.float32)
    img[:] = colour(75.0, skin_chroma, 50.0)
    img[:50] = colour(45.0, band_chroma, 50.0 + turn)
    img = np.round(img).astype(np.uint8)
    band = np.zeros(img.shape[:2], bool)
    band[:50] = True
    everywhere = np.ones(img.shape[:2], bool)
    out = _shaded_hair(img, everywhere.astype(np.float32), everywhere, band, everywhere, 100.0)
    # the band off its edge (blurred into the lit skin's chroma there), and the lit skin
    inner = out[:35]
    assert (inner.min() > 0.99) if hair else (inner.max() == 0.0), (inner.min(), inner.max())
    assert out[70:].max() == 0.0


def test_a_grey_photos_map_does_not_follow_the_way_its_cast_leans(astronaut_rgb, astronaut_landmarks):
    """A greyscale photo's skin has a faint cast at most (chroma 1.3 here), whose hue is noise: a
    band under a lock of hair with some colour (chroma 8, hue 70 degrees), turned from the skin's
    towards yellow (a cast of hue 50: +20 degrees) or towards red (a cast of hue 90: -20), is
    kept alike, by its colour odds (judged by its turn from the cast, the band towards yellow
    went with the lock: 0.005 of it kept against 0.33)."""
    from profiles.enroll import build_profile
    from realtime.swap.colour import lab_to_srgb, srgb_to_lab
    from realtime.swap.skin import _at_crop_density

    uv0 = np.asarray(astronaut_landmarks, np.float64)[:, :2]
    kept = []
    for cast in (50.0, 90.0):
        img, _, _, iod = shaded_fringe(np.ascontiguousarray(astronaut_rgb), uv0, depth=1.0)
        top, edge, cx, ys, xs, _, side = _lock(img.shape, uv0, iod)
        shade = side & (ys >= edge) & (ys < edge + 0.12 * iod)
        lab = srgb_to_lab(img.astype(np.float32))
        lab[..., 1:] = 1.5 * np.cos(np.radians(cast)), 1.5 * np.sin(np.radians(cast))
        img = np.clip(np.round(lab_to_srgb(lab)), 0, 255).astype(np.uint8)
        painted = bare(np.ascontiguousarray(astronaut_rgb), uv0)[1] & (xs > cx)
        skin = srgb_to_lab(np.median(img[painted], 0).astype(np.float32))
        assert np.hypot(skin[1], skin[2]) < 2.0
        angle = np.radians(70.0)
        band = lab_to_srgb(np.array([0.6 * skin[0], 8.0 * np.cos(angle), 8.0 * np.sin(angle)], np.float32))
        noise = np.random.default_rng(1).normal(0, 2, (int(shade.sum()), 3))
        img[shade] = np.clip(np.round(band + noise), 0, 255).astype(np.uint8)
        profile = build_profile(img, np.array(astronaut_landmarks), name="grey", source="test")
        rig, _, small, uv = _at_crop_density(img, profile)
        info: dict = {}
        keep = skin_map(small, uv, rig, info=info)
        assert SHADE_FRINGE <= info["forehead_hair"] <= FRINGE_COVER
        inner = cv2.resize(shade.astype(np.float32), small.shape[1::-1], interpolation=cv2.INTER_AREA) > 0.99
        inner = cv2.erode(inner.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        kept.append(float(keep[inner].mean()))
    assert min(kept) > 0.3 and max(kept) - min(kept) < 0.05, kept


@pytest.mark.parametrize("turn, kept", [(10.0, False), (-8.0, True)])
def test_a_fringes_edge_in_its_shade_goes_with_it_by_its_hue(astronaut_rgb, astronaut_landmarks, turn, kept):
    """The band under a lock of hair, L* 0.6 of the lit skin below it: turned towards yellow (+10
    degrees, chroma 1.5 times: the astronaut's blond fringe's lower edge, L* 46-57 against her
    skin's 82-88, which the colour odds kept as skin, a brown bar across every driver's
    forehead) the skin map drops it with the lock; turned towards red (-8: s5's shade, lifted
    by the swap's photo instead) it keeps it."""
    from profiles.enroll import build_profile
    from realtime.swap.skin import _at_crop_density

    uv0 = np.asarray(astronaut_landmarks, np.float64)[:, :2]
    img, _, below, iod = shaded_fringe(np.ascontiguousarray(astronaut_rgb), uv0, depth=1.0)
    # the band 0.12 interoculars tall (her fringe's edge: 0.2), a few of the map's pixels, turned
    # from the lit forehead's skin (the painted skin beside the lock)
    top, edge, cx, ys, xs, _, side = _lock(img.shape, uv0, iod)
    shade = side & (ys >= edge) & (ys < edge + 0.12 * iod)
    painted = bare(np.ascontiguousarray(astronaut_rgb), uv0)[1] & (xs > cx)
    img = turned(img, (shade, img[painted]), 0.6, turn, 1.5 if turn > 0 else 1.0)
    profile = build_profile(img, np.array(astronaut_landmarks), name="fringed", source="test")
    rig, _, small, uv = _at_crop_density(img, profile)
    info: dict = {}
    keep = skin_map(small, uv, rig, info=info)
    assert info["forehead_hair"] >= SHADE_FRINGE
    # the band at the map's density, off its edges (the map's inset and blur)
    band = cv2.resize(shade.astype(np.float32), small.shape[1::-1], interpolation=cv2.INTER_AREA) > 0.99
    band = cv2.erode(band.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    # the skin below it from the brows' top down to the eyes (the band's gradient to it, grown
    # over by FRINGE_EDGE, ends above the brows)
    eyes = uv0[[topology.EYE_OUTER[0], topology.EYE_OUTER[1]], 1].mean()
    lit = side & (ys >= top) & (ys < eyes)
    lit = cv2.resize(lit.astype(np.float32), small.shape[1::-1], interpolation=cv2.INTER_AREA) > 0.99
    assert band.sum() > 20 and lit.sum() > 20
    assert keep[lit].mean() > 0.97, keep[lit].mean()
    # (by its colour odds alone the red band is mostly kept, 0.77; the yellow one here is not)
    assert (keep[band].mean() > 0.7) if kept else (keep[band].mean() < 0.1), keep[band].mean()


def test_the_hairs_shade_reaches_only_the_forehead_beside_what_goes(photo_rig):
    """`hair_shade` is 0 farther than `SHADE_REACH` from what the skin map drops, below the
    brows (past the feather of what it reaches, 4 σ of `EDGE_INSET`), and beyond the brows'
    outer ends (the temples' own shade beside their hair)."""
    photo, uv, rig = photo_rig
    img, shade, _, iod = shaded_fringe(photo, uv)
    found = hair_shade(img, uv, rig)
    assert found is not None
    weight, colour = found
    assert weight.shape == img.shape[:2] and colour.shape == img.shape and weight[shade].mean() > 0.5
    gone = (skin_map(img, uv, rig) < 0.5).astype(np.uint8)
    far = cv2.distanceTransform(1 - gone, cv2.DIST_L2, 3) > SHADE_REACH * iod + 1
    assert weight[far].max() == 0.0
    brows = uv[list(topology.RIGHT_BROW) + list(topology.LEFT_BROW)]
    ys, xs = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    assert weight[ys > brows[:, 1].max() + 4 * EDGE_INSET * iod].max() == 0.0
    assert weight[(xs < brows[:, 0].min() - 0.06 * iod) | (xs > brows[:, 0].max() + 0.06 * iod)].max() == 0.0


def test_the_hairs_shade_fades_out_where_the_shade_does(photo_rig):
    """A fringe's shade that fades down the forehead (s5's: 12-15 L* darker by her fringe, 5-9 up
    to 0.1 interoculars): what it reaches (at least half the shade) is feathered, and its weight
    ends where the shade ends, not cut off where the shade is half its depth (cut off there, its
    weight on its own edge was 0.74 (median) here, 1.0 on s5, a light patch with a hard edge
    lifted across her forehead)."""
    photo, uv, rig = photo_rig
    img, _, _, iod = shaded_fringe(photo, uv, depth=1.0)        # the hair alone
    top, edge, _, ys, xs, _, side = _lock(img.shape, uv, iod)
    graded = side & (ys >= edge) & (ys < top - 0.03 * iod)
    light = 1.0 - 0.3 * (1.0 - np.clip((ys - edge) / (0.15 * iod), 0.0, 1.0))     # 0.7 by the hair, 1 from 0.15
    img[graded] = np.round(img[graded] * np.broadcast_to(light, graded.shape)[graded][:, None]).astype(np.uint8)
    found = hair_shade(img, uv, rig)
    assert found is not None
    weight = found[0]
    inside = cv2.erode(graded.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    rim = inside & (weight > 0) & (cv2.erode((weight > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) == 0)
    assert rim.sum() > 10 and weight[inside].max() > 0.9
    assert np.median(weight[rim]) < 0.25, np.median(weight[rim])


@pytest.mark.parametrize("cover", [None, 0.0, SHADE_FRINGE - 0.01])
def test_the_hairs_shade_is_not_looked_for_on_a_photo_measured_without_a_fringe(astronaut_profile, monkeypatch,
                                                                                 cover):
    """`lift_hair_shade` given `fill_fringe`'s measure of the forehead's hair, under
    `SHADE_FRINGE` (or None: a face too small to model), hands back the very array without a
    second skin map (50-150 ms at start-up: s12's and s0's preparation 214 and 257 ms with it, 168
    and 144 without); the default measures it itself."""
    import realtime.swap.skin as skin_mod

    def unwanted(*args, **kwargs):
        raise AssertionError("hair_shade called")

    monkeypatch.setattr(skin_mod, "hair_shade", unwanted)
    photo = astronaut_profile["image"]
    assert lift_hair_shade(photo, astronaut_profile, cover) is photo
    with pytest.raises(AssertionError, match="hair_shade called"):
        lift_hair_shade(photo, astronaut_profile)


def test_the_swap_photo_hands_fill_fringes_measure_to_the_shade_lift(astronaut_profile, monkeypatch):
    """`SwapPhotoProfile` passes `fill_fringe`'s "forehead_hair" on to `lift_hair_shade`."""
    import realtime.swap.skin as skin_mod
    from realtime.swap.photo import SwapPhotoProfile

    seen = []

    odds = np.zeros(4)

    def fill(photo, profile, info=None):
        info["forehead_hair"], info["skin_odds"] = 0.123, odds
        return photo

    monkeypatch.setattr(skin_mod, "fill_fringe", fill)
    monkeypatch.setattr(skin_mod, "lift_hair_shade",
                        lambda photo, profile, cover=-1.0, given=None: seen.append((cover, given)) or photo)
    SwapPhotoProfile(astronaut_profile, even_grain=False, fill_far_side=False, lift_sockets=False)
    assert len(seen) == 1 and seen[0][0] == 0.123 and seen[0][1] is odds


def test_the_skin_maps_colour_odds_are_reused_bit_for_bit(photo_rig, monkeypatch):
    """`skin_map`'s colour models depend on the image alone: given the "skin_odds" of an earlier
    map of the same image, with other `strands`, it computes none and draws the same map."""
    import realtime.swap.skin as skin_mod

    photo, uv, rig = photo_rig
    img, _, _, _ = shaded_fringe(photo, uv)
    info: dict = {}
    strands = skin_map(img, uv, rig, strands=FRINGE_STRANDS, info=info)
    plain, shade = skin_map(img, uv, rig), hair_shade(img, uv, rig)
    assert info["skin_odds"].shape == (img.shape[0] * img.shape[1],) and shade is not None

    def unwanted(*args, **kwargs):
        raise AssertionError("colour models computed again")

    monkeypatch.setattr(skin_mod, "_log_likelihood", unwanted)
    np.testing.assert_array_equal(skin_map(img, uv, rig, odds=info["skin_odds"]), plain)
    np.testing.assert_array_equal(skin_map(img, uv, rig, strands=FRINGE_STRANDS, odds=info["skin_odds"]), strands)
    again = hair_shade(img, uv, rig, info["skin_odds"])
    assert again is not None
    np.testing.assert_array_equal(again[0], shade[0])
    np.testing.assert_array_equal(again[1], shade[1])
    with pytest.raises(ValueError, match="skin_odds"):
        skin_map(img[:-1], uv, rig, odds=info["skin_odds"])


def test_the_swap_photo_models_the_skins_colour_once(astronaut_rgb, astronaut_landmarks, monkeypatch):
    """A photo whose partial fringe's shade is lifted: `fill_fringe`'s skin map's colour models
    serve the lift's too (100 ms of s5's start-up), and the lifted photo is the one that
    `lift_hair_shade` makes by itself."""
    import realtime.swap.skin as skin_mod
    from profiles.enroll import build_profile
    from realtime.swap.photo import SwapPhotoProfile

    uv = np.asarray(astronaut_landmarks, np.float64)[:, :2]
    img, _, _, _ = shaded_fringe(np.ascontiguousarray(astronaut_rgb), uv)
    profile = build_profile(img, np.array(astronaut_landmarks), name="fringed", source="test")
    alone = lift_hair_shade(img, profile)
    models = []
    real = skin_mod._robust_gaussian
    monkeypatch.setattr(skin_mod, "_robust_gaussian", lambda *a, **k: models.append(1) or real(*a, **k))
    view = SwapPhotoProfile(profile, even_grain=False, fill_far_side=False, lift_sockets=False)
    assert view.shade_lifted and not view.defringed and len(models) == 1
    np.testing.assert_array_equal(view["image"], alone)
