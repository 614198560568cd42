"""The swap mode end to end on the astronaut (realtime.engine.swap): the frame is untouched
outside the face, a face swapped onto itself comes back, a frame without a face passes through,
the largest face is the one swapped, hotkeys and tiers."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.engine.loop import Engine, EngineOptions, ModeError
from realtime.engine.swap import SwapModeError
from realtime.face import geometry as G
from realtime.face import topology as T
from realtime.face.state import FaceState
from realtime.image.disclose import DisclosureOptions
from realtime.image.mark import canonical_luma, cell_stats, detect
from realtime.io.performance import Blendshapes
from realtime.io.remix import StateSource
from realtime.swap.fuse import JAW_MARGIN

NO_DISCLOSURE = DisclosureOptions(label=False, mark=False)


def swap_engine(profile, size=(512, 512), disclosure=NO_DISCLOSURE, **kw):
    """The swap's own contract is checked without the label and mark (the disclosure stage's,
    which draws on every output pixel); `test_a_swapped_frame_is_labelled_and_marked_swap` adds them."""
    engine = Engine(profile, EngineOptions(mode="swap", output_size=size, fps=30.0, kernel_threads=1,
                                           disclosure=disclosure, **kw))
    engine.warm_up()
    return engine


def run(engine, images):
    frames = []
    for i, img in enumerate(images):
        f = Frame(index=i, t_capture=i / 30.0, image=img)
        engine.process(f)
        frames.append(f)
    return frames


def link(engine):
    return next(s for s in engine.stages if s.name == "fuse").link


def footprint(engine, frame, shape):
    """(H, W) bool: frame pixels whose crop position is within 2 px of the drawn face."""
    geo_crop = link(engine).current.crop
    cov = (np.asarray(frame.gbuf.tri_id) >= 0).astype(np.uint8)
    cov = cv2.dilate(cov, np.ones((5, 5), np.uint8))
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u = np.round(geo_crop[0, 0] * xx + geo_crop[0, 1] * yy + geo_crop[0, 2]).astype(int)
    v = np.round(geo_crop[1, 0] * xx + geo_crop[1, 1] * yy + geo_crop[1, 2]).astype(int)
    s = cov.shape[0]
    inside = (u >= 0) & (u < s) & (v >= 0) & (v < s)
    out = np.zeros((h, w), bool)
    out[inside] = cov[v[inside], u[inside]] > 0
    return out


@pytest.fixture(scope="module")
def flipped(astronaut_rgb):
    """Another-looking driver: the astronaut mirrored, her colours shifted."""
    img = np.ascontiguousarray(astronaut_rgb[:, ::-1])
    return np.clip(img.astype(np.int16) + np.array([-20, 10, 25]), 0, 255).astype(np.uint8)


def test_swap_changes_only_the_face(astronaut_profile, flipped):
    engine = swap_engine(astronaut_profile)
    frames = run(engine, [flipped] * 4)
    f = frames[-1]
    assert f.output.shape == flipped.shape and link(engine).current is not None
    face = footprint(engine, f, flipped.shape)
    assert 0.02 < face.mean() < 0.5
    np.testing.assert_array_equal(f.output[~face], flipped[~face])     # exact outside the face
    assert np.abs(f.output[face].astype(int) - flipped[face]).mean() > 2.0
    engine.close()


def test_the_openings_field_is_the_full_crops_as_the_face_moves(astronaut_profile, flipped):
    """The attributes stage interpolates the eye and mouth fans over their bounding box only: the
    field equals the whole crop's interpolation (times the openings' edge coverage), also after
    the face moved (the old box cleared)."""
    from kernels import interpolate

    engine = swap_engine(astronaut_profile)
    when = next(s for s in engine.stages if s.name == "attributes")
    stage, boxes, drawn = when.stage, set(), []

    def checked(frame):
        stage(frame)
        full = interpolate(frame.gbuf, stage.fan_triangles, stage._fan_attr)
        full *= stage._coverage(frame.gbuf, frame.vertices)[..., None]
        drawn.append(int((full[..., 0] > 0).sum()))
        np.testing.assert_array_equal(stage.fields.fan, full)
        boxes.add(stage._fan_box)

    when.stage = checked
    run(engine, [flipped, np.roll(flipped, (40, -30), axis=(0, 1)), flipped, np.roll(flipped, (-35, 25), axis=(0, 1))])
    assert len(drawn) >= 3 and min(drawn) > 200                      # eyes and mouth drawn
    assert len(boxes) >= 2
    engine.close()


def test_the_openings_borders_are_anti_aliased(astronaut_profile, flipped):
    """The driver's pixels come into the openings with a soft border, not the crop's staircase:
    the fan weight is 1 a pixel or more inside an opening, falls towards ½ on its rim, and is 0
    outside; where it is partial, the driver's pixel it points at is the same as before."""
    from kernels import interpolate

    engine = swap_engine(astronaut_profile)
    frames = run(engine, [flipped] * 3)
    stage = next(s for s in engine.stages if s.name == "attributes").stage
    fan = np.asarray(stage.fields.fan)
    f = frames[-1]
    plain = interpolate(f.gbuf, stage.fan_triangles, stage._fan_attr)
    inside = plain[..., 0] > 0
    w = fan[..., 0]
    assert np.all(w[~inside] == 0.0)
    assert np.all((w[inside] >= 0.5) & (w[inside] <= 1.0))
    deep = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert deep.sum() > 50 and np.all(w[deep] == 1.0)
    rim = inside & ~(cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    assert np.all(plain[rim, 0] == 1.0) and np.mean(w[rim] < 0.95) > 0.25   # a hard edge, now soft
    np.testing.assert_allclose(fan[inside, 1:] / w[inside, None], plain[inside, 1:], rtol=1e-5, atol=1e-3)
    engine.close()


def test_a_wide_open_drivers_eye_is_not_squashed_into_the_identitys(astronaut_profile, flipped):
    """Before (helper 122): the eye openings mapped the driver's lids onto the identity's, so a
    driver's eye opened wider than the identity's came in squashed: its iris a flat oval, its
    up-down gaze cut with it (s1 <- d10: the drawn iris moved 0.58 of the driver's vertical
    gaze, and read as a squint). Now, around the identity's iris, the driver's pixels step as far
    down as across (a similarity, its scale the eyes' width ratio), and the identity's iris
    shows the driver's."""
    engine = swap_engine(astronaut_profile)
    f = run(engine, [flipped] * 3)[-1]
    stage = next(s for s in engine.stages if s.name == "attributes").stage
    geo = link(engine).current
    wide = geo.driver_vertices.copy()
    for upper, lower in ((T.RIGHT_EYE_UPPER, T.RIGHT_EYE_LOWER), (T.LEFT_EYE_UPPER, T.LEFT_EYE_LOWER)):
        rows = sorted(set(upper) | set(lower))
        mid = wide[rows, :2].mean(0)
        # the driver's openings 1.8x as tall, and wider all round than the identity's (nothing in
        # them is kept inside the driver's lids: `eye_sources`)
        wide[rows, :2] = mid + (wide[rows, :2] - mid) * [1.3, 1.8]
    fan = np.asarray(stage._openings(f, dataclasses.replace(geo, driver_vertices=wide)))
    own = np.asarray(f.vertices)[:, :2]
    drv = np.asarray(geo.driver_landmarks)[:, :2]
    for iris, (outer, inner) in zip((T.RIGHT_IRIS[0], T.LEFT_IRIS[0]), T.EYE_CORNERS):
        x, y = np.rint(own[iris]).astype(int)
        w = fan[y - 1:y + 2, x - 1:x + 2, 0]
        assert np.all(w > 0)                                   # inside the opening
        src = fan[y - 1:y + 2, x - 1:x + 2, 1:] / w[..., None]
        across, down = (src[1, 2] - src[1, 0]) / 2, (src[2, 1] - src[0, 1]) / 2
        scale = np.linalg.norm(drv[inner] - drv[outer]) / np.linalg.norm(own[inner] - own[outer])
        assert np.linalg.norm(across) == pytest.approx(scale, rel=0.02)
        assert np.linalg.norm(down) == pytest.approx(scale, rel=0.02)    # was 1.4 x across
        assert abs(across @ down) < 0.02 * scale ** 2
        # the pixel on the identity's iris shows the driver's iris
        np.testing.assert_allclose(src[1, 1], drv[iris] + across * (x - own[iris][0]) + down * (y - own[iris][1]),
                                   atol=0.05)
    engine.close()


def test_a_swapped_frame_is_labelled_and_marked_swap(astronaut_profile, flipped):
    engine = swap_engine(astronaut_profile, disclosure=DisclosureOptions())
    f = run(engine, [flipped] * 3)[-1]
    bare = swap_engine(astronaut_profile)
    g = run(bare, [flipped] * 3)[-1]
    corner = np.abs(f.output[-40:, -200:].astype(int) - g.output[-40:, -200:]).max()
    assert corner > 60                                                # the label, bottom right
    found = detect(*cell_stats(canonical_luma(f.output)))
    assert found.found and found.payload.mode == "swap"
    engine.close()
    bare.close()


def test_a_face_swapped_onto_itself_comes_back(astronaut_profile, astronaut_rgb):
    engine = swap_engine(astronaut_profile)
    f = run(engine, [astronaut_rgb] * 6)[-1]
    face = footprint(engine, f, astronaut_rgb.shape)
    d = np.abs(f.output.astype(np.int16) - astronaut_rgb)[face]
    assert np.median(d) <= 6 and d.mean() < 10, (np.median(d), d.mean())
    engine.close()


def test_no_face_passes_the_frame_through(astronaut_profile, flipped):
    engine = swap_engine(astronaut_profile)
    blank = np.full((512, 512, 3), 90, np.uint8)
    frames = run(engine, [flipped, blank, blank, flipped])
    for f in frames[1:3]:
        assert f.output is f.image or np.array_equal(f.output, f.image)
    assert link(engine).current is not None                          # the face is back
    engine.close()



def test_hide_unswapped_blurs_a_frame_with_no_face_and_passthrough_still_shows_it(astronaut_profile, flipped):
    """`--hide-unswapped`: where no face is swapped (the tracker lost it), the frame goes out
    blurred past recognition, not as it is (the default, above); a swapped frame is as without
    it; the passthrough hotkey (space) still shows the frame as it is."""
    from realtime.swap.composite import HIDE_CELLS, hidden

    engine = swap_engine(astronaut_profile, hide_unswapped=True)
    scene = np.ascontiguousarray(np.repeat(np.linspace(0, 255, 512, dtype=np.uint8)[None, :, None], 512, 0)
                                 .repeat(3, 2))
    scene[200:260, 200:260] = (250, 30, 30)          # a detail no blur past recognition keeps
    frames = run(engine, [flipped, scene, flipped])
    plain = swap_engine(astronaut_profile)
    expect = run(plain, [flipped])[0].output
    np.testing.assert_array_equal(frames[0].output, expect)
    out = frames[1].output
    np.testing.assert_array_equal(out, hidden(scene))
    assert np.abs(out.astype(int) - scene).max() > 60               # the patch is gone ...
    small = cv2.resize(scene, (HIDE_CELLS, HIDE_CELLS), interpolation=cv2.INTER_AREA)
    assert np.abs(cv2.resize(out, (HIDE_CELLS, HIDE_CELLS), interpolation=cv2.INTER_AREA).astype(int)
                  - small).max() < 24                                # ... the scene's colours stay
    assert engine.compositor.hidden == 1
    engine.handle("toggle")
    np.testing.assert_array_equal(run(engine, [scene])[0].output, scene)
    engine.close()
    plain.close()


def test_a_face_not_yet_believed_is_drawn_where_it_is(astronaut_profile, flipped):
    """A folder of different portraits (new-user review): on the frames where the estimator does
    not believe a face yet (a new face, or one back after an absence), its state is the eased
    neutral of the last face believed, and the swap drew the identity where that face had been
    (over a chin and neck). It is drawn at rest where the tracked face is, until believed; never
    left out (the driver's own face would show for those frames)."""
    engine = swap_engine(astronaut_profile)
    blank = np.full_like(flipped, 90)
    moved = np.ascontiguousarray(np.roll(flipped, (60, 80), axis=(0, 1)))
    frames = run(engine, [moved] + [flipped] * 3 + [blank] + [moved] * 3)
    for k in (0, 5, 6, 7):             # a run's first frame; a face back elsewhere; then believed
        f = frames[k]
        assert f.landmarks is not None and f.state.present == (k >= 6)   # tracked; believed from 6
        assert not np.array_equal(f.output, f.image)                      # drawn ...
        ys, xs = np.nonzero(np.any(f.output != f.image, axis=-1))
        centre = f.landmarks[:, :2].mean(0)
        assert abs(xs.mean() - centre[0]) < 25 and abs(ys.mean() - centre[1]) < 35, \
            (xs.mean(), ys.mean(), centre)                                # ... on the face it tracked
    engine.close()


def test_a_held_frame_shows_the_last_output_and_the_face_stays_believed(astronaut_profile, flipped):
    """A camera slower than the run: the loop emits a held frame (no image) when none came in
    time (`Grabber.held_frame`). The swap showed it black and counted it as a face gone, so a
    camera at half the run's rate gave a black frame every other frame and a face never
    believed (code review). A held frame shows the last output again and changes no state."""
    engine = swap_engine(astronaut_profile)
    frames = run(engine, [flipped] * 4)
    assert frames[-1].state.present
    prev = frames[-1]
    for k in range(4, 12):          # held and real frames in turn
        f = Frame(index=k, t_capture=k / 30.0, image=None if k % 2 == 0 else flipped)
        engine.process(f)
        if f.image is None:
            assert f.output is prev.output and f.notes == prev.notes    # the preview's lines too
        else:
            assert f.state.present and not np.array_equal(f.output, f.image)
        prev = f
    engine.close()


def test_a_face_that_jumps_mid_run_is_held_then_passed(astronaut_profile, flipped, monkeypatch):
    """A face the estimator rejects as a jump from the one it believed (a tracker's mis-fit, a
    hand over the face): drawing it at rest where the mis-fit lies (code review) snaps the face
    there and back. The last face drawn is held for HOLD_FRAMES frames, then the frame passes as
    with no face (a face never believed is none)."""
    from realtime.swap.fuse import HOLD_FRAMES

    engine = swap_engine(astronaut_profile)
    frames = run(engine, [flipped] * 4)
    last = link(engine).current
    believe = engine.estimator.believe
    monkeypatch.setattr(engine.estimator, "believe", lambda lm, t: False)   # every later face jumped
    attributes = next(s for s in engine.stages if s.name == "attributes").stage
    memory = attributes.colour._d
    fields = engine.compositor.fields
    held = []
    for k in range(HOLD_FRAMES + 1):
        f = Frame(index=4 + k, t_capture=(4 + k) / 30.0, image=flipped)
        engine.process(f)
        held.append((f, np.asarray(fields.fan).copy(), attributes.colour._d is memory))
    later = [f for f, _, _ in held]
    assert all(f.landmarks is not None and not f.state.present for f in later)
    for f, fan, same_memory in held[:HOLD_FRAMES]:
        assert not np.array_equal(f.output, f.image)
        # nothing read from this image where the last face was: no openings, no colour samples
        assert not fan.any() and same_memory
    np.testing.assert_array_equal(later[0].vertices, frames[-1].vertices)     # the last face, where it was
    assert later[-1].output is later[-1].image or np.array_equal(later[-1].output, later[-1].image)
    assert link(engine).current is None and last is not None
    monkeypatch.setattr(engine.estimator, "believe", believe)
    engine.close()


@pytest.mark.tracking
@pytest.mark.parametrize("mode, size", [("reenact", (320, 240)), ("swap", (512, 512)), ("swap", (640, 400))])
def test_the_preview_dots_sit_on_the_face_the_output_shows(astronaut_profile, flipped, mode, size):
    """`Frame.face_points` (the window's dots) are the face the output shows, in its pixels: the
    avatar's in reenactment (power-user review: the driver's landmarks were stretched over the
    output and floated beside the avatar), the swapped face in swap, letterboxed with the frame.
    Checked against MediaPipe run on the output about the face: the letterboxed face is a tenth
    of the 640x400 frame's width, where the detector is at its edge on the whole frame (a 1 px
    shift of the output lost it)."""
    from realtime.face.track import Tracker

    engine = Engine(astronaut_profile, EngineOptions(mode=mode, output_size=size, fps=30.0, kernel_threads=1,
                                                     disclosure=NO_DISCLOSURE))
    engine.warm_up()
    f = run(engine, [flipped] * 4)[-1]
    engine.close()
    assert f.face_points is not None
    lo, hi = f.face_points.min(0), f.face_points.max(0)
    (x0, y0), (x1, y1) = (np.clip(lo - (hi - lo), 0, None).astype(int),
                          np.minimum(hi + (hi - lo), f.output.shape[1::-1]).astype(int))
    seen = Tracker(static=True)(np.ascontiguousarray(f.output[y0:y1, x0:x1]))
    assert seen is not None
    assert np.abs(f.face_points - (seen[:T.N_LANDMARKS, :2] + [x0, y0])).mean() < 4.0

def test_passthrough_hotkey(astronaut_profile, flipped):
    engine = swap_engine(astronaut_profile)
    engine.handle("toggle")
    f = run(engine, [flipped])[0]
    np.testing.assert_array_equal(f.output, flipped)
    engine.close()


@pytest.mark.parametrize("passthrough", [False, True])
def test_output_fitted_to_the_requested_size_not_stretched(astronaut_profile, flipped, passthrough):
    """Before the fix: a 512x512 driver frame was stretched to 320x240 (the reenactment
    letter-boxes its photo); now it is fitted, 240x240 between two black bars of 40 px."""
    engine = swap_engine(astronaut_profile, size=(320, 240))
    if passthrough:
        engine.handle("toggle")
    f = run(engine, [flipped])[0]
    assert f.output.shape == (240, 320, 3)
    assert not f.output[:, :40].any() and not f.output[:, 280:].any()
    fitted = cv2.resize(flipped, (240, 240), interpolation=cv2.INTER_AREA)
    if passthrough:
        np.testing.assert_array_equal(f.output[:, 40:280], fitted)
    else:   # the scene outside the face is the driver's, fitted
        same = np.all(f.output[:, 40:280] == fitted, axis=2)
        assert same.mean() > 0.6 and same[:, :20].all()
    engine.close()


def test_the_swaps_tier_draws_no_eyeballs_or_mouth(astronaut_profile):
    """The driver's own eyes and mouth show through the identity's openings: the tier is not
    asked to draw them (the reenactment's is)."""
    gens = {}
    for mode in ("swap", "reenact"):
        engine = Engine(astronaut_profile, EngineOptions(mode=mode, output_size=(112, 64), kernel_threads=1))
        gens[mode] = next(s for s in engine.stages if s.name == "generate").generator
    assert gens["swap"].eyes.eyeballs is False and gens["reenact"].eyes.eyeballs is True
    lo, hi = gens["swap"].rig.ranges["mouth"]
    assert lo == hi and gens["reenact"].rig.ranges["mouth"][1] > gens["reenact"].rig.ranges["mouth"][0]


def test_swap_refuses_the_neural_tier_and_unknown_modes(astronaut_profile):
    """The tier suggested is one the profile can use (power-user review: a video profile was
    told the warp tier, though its atlas swaps; a photo profile without a generator the atlas)."""
    from realtime.core.errors import ProfileError

    with pytest.raises(SwapModeError, match=r"choose the warp tier \(or leave --tier out"):
        Engine(astronaut_profile, EngineOptions(mode="swap", output_size=(64, 64), tier="neural"))
    with pytest.raises(ProfileError, match=r"has no trained generator: .*; or choose the warp tier$"):
        Engine(astronaut_profile, EngineOptions(tier="neural"))
    with pytest.raises(ModeError, match="unknown mode"):
        Engine(astronaut_profile, EngineOptions(mode="morph"))


@pytest.mark.parametrize("mode", ["reenact", "swap"])
def test_remix_runs_in_both_modes(astronaut_profile, flipped, mode):
    engine = Engine(astronaut_profile, EngineOptions(mode=mode, output_size=(256, 256), fps=30.0, kernel_threads=1,
                                                     pose_from="still", expression_from="script"))
    assert [s.name for s in engine.stages][:4] == ["track", "estimate", "remix", "fuse"]
    engine.warm_up()
    frames = run(engine, [flipped] * 3)
    assert frames[-1].state.angles == pytest.approx((0.0, 0.0, 0.0), abs=1e-9) or mode == "swap"
    assert engine.remix.last["expression"] is not None
    engine.close()
    if mode == "reenact":   # the remix cancels the lips' whole rest gap at once: no ease under it
        assert engine.stages[3].clock is None
        pose_only = Engine(astronaut_profile, EngineOptions(output_size=(80, 64), pose_from="still"))
        assert pose_only.stages[3].clock is not None
        pose_only.close()


def test_the_drivers_lower_lip_stays_under_the_swapped_face(astronaut_profile, astronaut_rgb):
    """Tracked frames of a driver whose lower lip drops far below where the identity's chin
    ends: the drawn chin comes down with it (JAW_MARGIN below the lip in the face's own frame;
    in the crop a little less, the head's pitch projects the chin's depth)."""
    lm = np.asarray(astronaut_profile["landmarks"], np.float32)
    iod = G.interocular(lm)
    lip = sorted(set(T.OUTER_LIP) & {int(i) for i in np.flatnonzero(lm[:, 1] > lm[14, 1])})  # its lower half
    dropped = lm.copy()
    dropped[lip, 1] += 0.6 * iod
    engine = swap_engine(astronaut_profile)
    for i, marks in enumerate([lm] * 35 + [dropped] * 6):
        f = Frame(index=i, t_capture=i / 30.0, image=astronaut_rgb, landmarks=marks.copy(), tracked=True)
        engine.process(f)
    geo = link(engine).current
    scale = np.linalg.norm(geo.crop[:, 0])                 # crop px per frame px
    lowest_lip = geo.driver_vertices[list(T.OUTER_LIP), 1].max()
    old_chin = (lm[T.CHIN, 1] * geo.crop[1, 1] + lm[T.CHIN, 0] * geo.crop[1, 0] + geo.crop[1, 2])
    assert lowest_lip > old_chin - 0.2 * iod * scale           # the lip reaches the old chin
    assert f.vertices[T.CHIN, 1] >= lowest_lip + 0.8 * JAW_MARGIN * iod * scale
    engine.close()


def test_on_a_device_the_colour_transfer_runs_on_the_host(astronaut_profile, flipped):
    """Off the CPU the colour transfer (small arrays, ~100 operations) gets its samples in one
    download and hands back the colour map and the gain field: the same frame as on the CPU."""
    from realtime.swap.colour import LUT_NODES
    from tests.host_device import CopyingContext

    def engine(device=None):
        e = Engine(astronaut_profile, EngineOptions(mode="swap", output_size=(512, 512), fps=30.0,
                                                    kernel_threads=1, disclosure=NO_DISCLOSURE), device=device)
        e.warm_up()
        return e

    cpu, ctx = engine(), CopyingContext()
    dev = engine(ctx)
    attributes = next(s for s in dev.stages if s.name == "attributes")
    n = attributes._n
    ctx.downloads.clear()
    ctx.uploads.clear()
    got, ref = run(dev, [flipped] * 3), run(cpu, [flipped] * 3)
    assert ctx.downloads.count((n, n, 8)) == 3          # the samples and their weights, together
    table = (LUT_NODES,) * 3 + (3,)                     # the colour table
    assert ctx.uploads.count(table) == 3 and ctx.uploads.count((n // 2, n // 2, 6)) == 3
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g.output, r.output)
    cpu.close()
    dev.close()


class _OpenMouth(StateSource):
    """An expression source whose jaw is wide open (the scripted performance's `jaw_open`, on
    `neutral`: synthetic, not retargeted) with no teeth showing, and eyes open as in the photo."""

    def __init__(self, neutral):
        self.expression = Blendshapes(neutral)({"jaw_open": 1.0})

    def state(self, frame, t):
        return FaceState(expression=self.expression.copy())


def _openings_stages(engine):
    generator = next(s for s in engine.stages if s.name == "generate").generator
    attributes = next(s for s in engine.stages if s.name == "attributes").stage
    return generator, attributes


@pytest.mark.parametrize("remix", [{}, {"pose_from": "still"}, {"expression_from": "script"},
                                   {"pose_from": "still", "expression_from": "script"}])
def test_the_openings_are_the_drivers_only_with_the_drivers_expression(astronaut_profile, flipped, remix):
    """Before (review): with `--expression-from`, the swap still mapped the main driver's own
    mouth and eyes into the identity's openings, whose shapes were the other source's: d14's
    closed lips stretched over d10's open mouth (a red blob), d14's shut lids over d10's open
    eyes (white ovals, no iris). With another source's expression the tier draws the identity's
    mouth interior and eyeballs and no driver pixel is mapped (the fan field stays zero);
    with the driver's own expression (no remix, or the pose alone) nothing changes."""
    engine = swap_engine(astronaut_profile, **remix)
    own = "expression_from" not in remix
    generator, attributes = _openings_stages(engine)
    assert generator.eyes.eyeballs is (not own)
    lo, hi = generator.rig.ranges["mouth"]
    assert (lo == hi) is own
    assert attributes.driver_openings is own
    fans = []
    for i in range(4):
        engine.process(Frame(index=i, t_capture=i / 30.0, image=flipped))
        assert link(engine).current is not None
        fans.append(np.asarray(attributes.fields.fan).copy())
    if own:
        assert all((fan[..., 0] > 0).sum() > 200 for fan in fans)     # eyes and mouth mapped
    else:
        assert not any(fan.any() for fan in fans)
    engine.close()


def test_an_expression_remix_swaps_in_the_identitys_open_mouth(astronaut_profile, flipped):
    """The driver's mouth is a smile, the expression source's jaw wide open: inside the identity's
    mouth opening the output shows the tier's mouth cavity (a dark interior), not the driver's
    own teeth and lips stretched over it (before the fix)."""
    engine = swap_engine(astronaut_profile, expression_from="still")
    engine.remix.expression = _OpenMouth(astronaut_profile["neutral"])
    f = run(engine, [flipped] * 4)[-1]
    geo = link(engine).current
    lo, hi = engine.rig.ranges["mouth"]
    tid = np.asarray(f.gbuf.tri_id)
    vs, us = np.nonzero((tid >= lo) & (tid < hi))
    assert len(us) > 300                                                # the mouth opens wide
    a = geo.crop_inv
    xs = np.rint(a[0, 0] * us + a[0, 1] * vs + a[0, 2]).astype(int)
    ys = np.rint(a[1, 0] * us + a[1, 1] * vs + a[1, 2]).astype(int)
    inside = (xs >= 0) & (xs < flipped.shape[1]) & (ys >= 0) & (ys < flipped.shape[0])
    luma = f.output[ys[inside], xs[inside]].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    # the cavity's dark interior between its teeth rows (0.42 of the opening below 80, median 86);
    # before, the smiling driver's teeth stretched over it (0.05, median 170)
    assert np.mean(luma < 80) > 0.25 and np.median(luma) < 120, np.percentile(luma, [10, 50, 90])
    engine.close()


def test_an_expression_remix_on_a_device_draws_the_same_openings(astronaut_profile, flipped):
    """Off the CPU (a device context whose every transfer is a copy) the remixed swap's tier
    draws its mouth and eyeballs on the host and uploads them, the fan field stays the device's
    zeros: the same frames as on the CPU."""
    from tests.host_device import CopyingContext

    def engine(device=None):
        e = Engine(astronaut_profile, EngineOptions(mode="swap", output_size=(512, 512), fps=30.0, kernel_threads=1,
                                                    disclosure=NO_DISCLOSURE, expression_from="still"), device=device)
        e.warm_up()
        e.remix.expression = _OpenMouth(astronaut_profile["neutral"])
        return e

    cpu, dev = engine(), engine(CopyingContext())
    assert _openings_stages(dev)[0].host_layers and not _openings_stages(cpu)[0].host_layers
    got, ref = run(dev, [flipped] * 3), run(cpu, [flipped] * 3)
    assert not np.asarray(_openings_stages(dev)[1].fields.fan).any()
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g.output, r.output)
    cpu.close()
    dev.close()
