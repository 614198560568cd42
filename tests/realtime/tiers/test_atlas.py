"""The atlas tier (realtime/atlas.py): barycentric weights over the Delaunay triangulation of
the keyframe queries, their continuity across simplices and outside the hull, the cross-fade,
the region pickers, and the generator end to end on a profile enrolled from a synthetic clip.
"""
from __future__ import annotations

import numpy as np
import pytest

from realtime.face import geometry, topology
from realtime.tiers.atlas import query as Q
from realtime.tiers.atlas import regions as R
from realtime.tiers.atlas import weights as W
from tests.profiles.test_enroll_video import make_clip


def _points(d: int, n: int = 40, seed: int = 0) -> np.ndarray:
    """n query points in 4-D; the first d dimensions vary (a jittered grid, no slivers to speak
    of), the others are constant."""
    rng = np.random.default_rng(seed)
    pts = np.zeros((n, 4))
    pts[:, 3] = 1.0
    pts[:, :d] = rng.uniform(-1, 1, (n, d))
    return pts


@pytest.fixture(params=[1, 2, 3, 4])
def amap(request):
    return Q.AtlasMap.build(_points(request.param, n=12 * request.param + 8,
                                    seed=request.param))


# ---------------------------------------------------------------------------- triangulation

def test_build_keeps_only_the_dimensions_that_vary(amap):
    d = len(amap.dims)
    assert amap.dims.tolist() == list(range(d)) and d >= 1
    assert amap.simplices.shape[1] == d + 1 and len(amap.simplices) >= 1


def test_degenerate_sets():
    one = Q.AtlasMap.build(np.array([[0.1, 0.2, 0.0, 1.0]]))
    assert len(one.dims) == 0 and one.weights(np.zeros(4)).tolist() == [1.0]
    same = Q.AtlasMap.build(np.tile([0.1, 0.2, 0.0, 1.0], (5, 1)) + 1e-4 * np.arange(5)[:, None])
    w = same.weights(np.array([5.0, 5.0, 5.0, 5.0]))
    assert len(same.dims) == 0 and w.sum() == 1.0 and w.max() == 1.0
    # Two distinct points only: a 1-D atlas along the one dimension that separates them.
    two = Q.AtlasMap.build(np.array([[0, 0, 0, 1.0], [0.5, 0, 0, 1.0]]))
    assert two.dims.tolist() == [0]
    np.testing.assert_allclose(two.weights(np.array([0.1, 0, 0, 1.0])), [0.8, 0.2])


def test_weights_are_barycentric(amap):
    rng = np.random.default_rng(3)
    pts = amap.points
    for _ in range(200):
        q = pts[rng.integers(len(pts))].copy()
        q[amap.dims] = rng.uniform(-1.3, 1.3, len(amap.dims))  # some fall outside the hull
        w = amap.weights(q)
        assert w.min() >= 0 and abs(w.sum() - 1.0) < 1e-12
        assert np.count_nonzero(w) <= len(amap.dims) + 1
        # they reproduce the (projected) query: linear precision
        np.testing.assert_allclose(w @ pts[:, amap.dims], amap.project(q), atol=1e-9)
    used = np.unique(amap.simplices)
    for i in used:  # at a keyframe, only that keyframe
        w = amap.weights(pts[i])
        assert w[i] == pytest.approx(1.0, abs=1e-9)


def test_raw_weights_are_continuous_across_simplices_and_outside_the_hull(amap):
    """Walk straight paths through the whole atlas and out of it: wherever the simplex
    changes, the weights on both sides of the crossing agree (the shared facet gives the
    opposite vertex weight 0 in both); outside the hull, the radial projection keeps them
    continuous too."""
    rng = np.random.default_rng(5)
    d = len(amap.dims)
    crossings = 0

    def at(a, b, t):
        q = amap.points[0].copy()
        q[amap.dims] = a + t * (b - a)
        return q

    for _ in range(4):
        u = rng.normal(size=d)
        u /= np.linalg.norm(u)
        a, b = -1.6 * u + rng.normal(0, 0.2, d), 1.6 * u  # through the middle, out both sides
        ts = np.linspace(0, 1, 400)
        loc = [amap.locate(at(a, b, t))[0] for t in ts]
        for i in np.nonzero(np.diff(loc))[0]:
            lo, hi = ts[i], ts[i + 1]
            s_lo = loc[i]
            for _ in range(50):  # bisect to the crossing
                mid = 0.5 * (lo + hi)
                if amap.locate(at(a, b, mid))[0] == s_lo:
                    lo = mid
                else:
                    hi = mid
            w_lo, w_hi = amap.weights(at(a, b, lo)), amap.weights(at(a, b, hi))
            assert np.abs(w_lo - w_hi).sum() < 1e-6, (i, w_lo, w_hi)
            crossings += 1
        # and no jump anywhere along the path at this sampling beyond what the slope allows
        ws = np.array([amap.weights(at(a, b, t)) for t in ts])
        fine = np.array([amap.weights(at(a, b, t)) for t in ts + 1e-7])
        assert np.abs(fine - ws).sum(1).max() < 1e-3
    assert crossings >= 3


def test_sparsify():
    w = np.array([0.4, 0.3, 0.2, 0.06, 0.04])
    s = W.sparsify(w, 3)
    assert np.count_nonzero(s) == 3 and s.sum() == pytest.approx(1.0)
    assert s[0] > s[1] > s[2] > 0
    # continuous where the 3rd and 4th swap rank: both are 0 there
    a = W.sparsify(np.array([0.45, 0.35, 0.1 + 1e-7, 0.1 - 1e-7, 0.0]), 3)
    b = W.sparsify(np.array([0.45, 0.35, 0.1 - 1e-7, 0.1 + 1e-7, 0.0]), 3)
    assert np.abs(a - b).max() < 1e-5
    assert W.sparsify(np.array([0.5, 0.5, 0.0]), 3).tolist() == [0.5, 0.5, 0.0]
    # near a tie of the small weights, small changes stay small (no division by ~0)
    rng = np.random.default_rng(0)
    base = np.array([0.46, 0.3, 0.08, 0.08, 0.08])
    for _ in range(100):
        d = rng.normal(0, 1e-4, 5)
        d -= d.mean()
        assert np.abs(W.sparsify(base + d, 3) - W.sparsify(base - d, 3)).sum() < 1e-2
    # (Keeping 3 of 5 equal large weights cannot be continuous at all; the cross-fade
    # spreads that switch over frames, see test_smoothed_weights_never_pop.)


def test_smoothed_weights_never_pop():
    """A query path crossing many simplices at the speed of a lively performance: after the
    cross-fade no frame moves the weight vector by more than a third of a complete switch
    (L1 2/3), the weights always sum to one, and a sudden switch from one keyframe to another
    takes three frames (~100 ms)."""
    amap = Q.AtlasMap.build(_points(3, n=44, seed=9))
    sm = W.WeightSmoother(len(amap.points))
    t = np.linspace(0, 1, 300)  # 10 s at 30 fps: turning ±27°, nodding ±16°, talking
    path = np.stack([np.sin(2 * np.pi * t) * 0.9, np.cos(3 * np.pi * t) * 0.8,
                     np.sin(5 * np.pi * t) * 0.7, np.ones_like(t)], 1)
    prev = prev_raw = None
    jumps, raw_jumps = [], []
    for q in path:
        raw = W.sparsify(amap.weights(q))
        w = sm(raw)
        assert w.sum() == pytest.approx(1.0) and np.count_nonzero(w) <= W.MAX_SAMPLED_KEYS
        if prev is not None:
            jumps.append(np.abs(w - prev).sum())
            raw_jumps.append(np.abs(raw - prev_raw).sum())
        prev, prev_raw = w, raw
    assert max(raw_jumps) > 0.7           # the path does cross rank swaps and slivers
    assert max(jumps) < 2.0 / 3.0 + 0.05  # ... which the cross-fade spreads over frames
    assert np.mean(np.abs(np.array(jumps) - np.array(raw_jumps)) < 1e-9) > 0.5  # no lag mostly
    sm = W.WeightSmoother(3)
    first = sm(np.array([1.0, 0.0, 0.0]))
    steps = [sm(np.array([0.0, 1.0, 0.0])) for _ in range(4)]
    assert first[0] == 1.0
    assert [round(s[1], 6) for s in steps] == [round(1 / 3, 6), round(2 / 3, 6), 1.0, 1.0]


# ---------------------------------------------------------------------------- measurements

def test_mirrored_landmarks_mirror_the_query(astronaut_landmarks):
    lm = np.array(astronaut_landmarks)
    rot = geometry.rotation_from_euler(18.0, 7.0, 0.0)
    c = lm.mean(0)
    posed = (lm - c) @ rot.T + c
    q, lips, eyes = Q.measure(posed)
    qm, lips_m, eyes_m = Q.measure(Q.mirror_landmarks(posed, 512))
    assert q[0] > 0.3 and qm[0] == pytest.approx(-q[0], abs=0.02)
    np.testing.assert_allclose(qm[1:], q[1:], atol=0.03)
    np.testing.assert_allclose(Q.mirror_landmarks(Q.mirror_landmarks(posed, 512), 512), posed)


def test_region_alpha_covers_lips_eyes_and_the_edge(astronaut_profile):
    from realtime.mesh import rig as rig_mod

    rig = rig_mod.build(astronaut_profile)
    a = R.region_alpha(astronaut_profile["neutral"], rig.vertex_count)
    assert a.shape == (rig.vertex_count, 3) and a.dtype == np.float32
    assert (a[list(topology.INNER_LIP_UPPER), 0] == 1).all() and a[R.MOUTH_CENTRE, 0] == 1
    assert (a[list(topology.RIGHT_IRIS) + list(topology.LEFT_IRIS), 1] == 1).all()
    assert (a[list(topology.FACE_OVAL), 2] > 0.3).all()
    assert a[6].sum() == 0                  # the nose bridge: the barycentric blend alone
    assert a[R.HEAD_START:].sum() == 0  # head layer: never drawn through these
    assert (a.sum(1) <= 1 + 1e-6).all()


def test_region_picker_hard_and_soft():
    shapes = np.zeros((4, 3, 2))
    shapes[1] += 0.01
    shapes[2] += 0.02
    shapes[3] += 0.5
    query = np.zeros((4, 4))
    p = R.RegionPicker(shapes, query, np.zeros(4), shape_unit=0.05)
    target = np.zeros((3, 2)) + 0.012
    hard = p.target(p.cost(np.zeros(4), target), hardness=1.0)
    assert hard.tolist() == [0.0, 1.0, 0.0, 0.0]
    soft = p.target(p.cost(np.zeros(4), target), hardness=0.0)
    assert soft[1] > soft[0] > 0 and soft[2] > 0 and soft[3] == 0 and soft.sum() == pytest.approx(1)
    # hysteresis: a slightly better keyframe does not take over
    p.current = 0
    assert p.target(p.cost(np.zeros(4), np.zeros((3, 2)) + 0.006), 1.0)[0] == 1.0


def test_an_eye_picker_cuts_between_an_open_and_a_shut_eye_and_fades_between_open_ones():
    # keyframes 0 and 1: open eyes (query 1.1, 1.0); 2: shut (0.2). Region shapes: the lids'
    # gap, so the picker's choice follows the asked shape.
    shapes = np.zeros((3, 2, 2))
    shapes[:, 1, 1] = [0.11, 0.10, 0.02]
    query = np.zeros((3, 4))
    query[:, 3] = [1.1, 1.0, 0.2]

    def picker():
        return R.RegionPicker(shapes, query, np.zeros(3), shape_unit=0.03, cut_dim=3, cut=0.3)

    def ask(gap):
        s = np.zeros((2, 2))
        s[1, 1] = gap
        return s

    p = picker()
    assert p(np.zeros(4), ask(0.11)).tolist() == [1.0, 0.0, 0.0]
    assert p(np.zeros(4), ask(0.02)).tolist() == [0.0, 0.0, 1.0]       # shut at once
    assert p(np.zeros(4), ask(0.11)).tolist() == [1.0, 0.0, 0.0]       # and open again
    p = picker()
    p(np.zeros(4), ask(0.11))
    w = p(np.zeros(4), ask(0.10))                                      # open → open: faded
    assert 0.0 < w[1] < 1.0 and w[0] == pytest.approx(1.0 - w[1])
    p = R.RegionPicker(shapes, query, np.zeros(3), shape_unit=0.03)    # no cut: the blink fades
    p(np.zeros(4), ask(0.11))
    assert 0.0 < p(np.zeros(4), ask(0.02))[2] < 1.0


# ------------------------------------------------------------------------------- generator

@pytest.fixture(scope="module")
def video_profile(tmp_path_factory):
    from profiles.enroll_video import build_video_profile

    clip = make_clip(tmp_path_factory.mktemp("atlas") / "astronaut.avi")
    return build_video_profile(clip, "astro", progress=False)


def test_image_profiles_refuse_the_atlas_tier(astronaut_profile):
    from profiles.format import ProfileError
    from realtime.mesh import rig as rig_mod
    from realtime.tiers.registry import TIER_NAMES, make_generator

    assert "atlas" in TIER_NAMES
    with pytest.raises(ProfileError, match="enrolled from a video"):
        make_generator("atlas", astronaut_profile, rig_mod.build(astronaut_profile))


def _run(profile, tier, frames=12):
    from realtime.core.frame import Frame
    from realtime.engine.loop import Engine, EngineOptions
    from realtime.io.performance import ScriptedSource

    engine = Engine(profile, EngineOptions(tier=tier, smooth=False))
    src = ScriptedSource(profile["neutral"], frames=frames, fps=30)
    out = []
    for i in range(frames):
        f = Frame(index=i, t_capture=0.0, **src.read())
        engine.process(f)
        out.append(f)
    return engine, out


@pytest.mark.tracking
def test_atlas_engine_runs_and_matches_the_warp_tier_at_the_reference(video_profile):
    """At the reference's own pose and expression the atlas shows the reference keyframe,
    a resample of the very photo the warp tier textures from: the two renders agree."""
    from realtime.core.frame import Frame
    from realtime.face.state import FaceState

    renders = {}
    for tier in ("warp", "atlas"):
        engine, frames = _run(video_profile, tier, frames=3)
        f = Frame(index=10, t_capture=0.0, state=FaceState.neutral())
        engine.process(f)
        renders[tier] = f.render
        assert f.output.shape[2] == 3 and f.output.dtype == np.uint8
        assert np.isfinite(f.render).all()
        if tier == "atlas":
            gen = engine.stages[4].generator
            w = gen.last["weights"]
            assert w[:, 0].sum() == pytest.approx(1.0)
            assert gen.last["keys"][np.argmax(w[:, 0])] == 0  # the reference keyframe
            face = (f.gbuf.tri_id >= 0) & (f.gbuf.tri_id < engine.rig.ranges["head"][0])
    diff = np.abs(renders["atlas"] - renders["warp"])[face].mean()
    assert diff < 6.0, diff
    head = f.gbuf.tri_id >= engine.rig.ranges["head"][0]
    np.testing.assert_allclose(renders["atlas"][head], renders["warp"][head], atol=0.02)


@pytest.mark.tracking
def test_atlas_follows_a_scripted_performance(video_profile):
    engine, frames = _run(video_profile, "atlas", frames=60)
    gen = engine.stages[4].generator
    for f in frames:
        assert f.render.shape == (256, 256, 3) and np.isfinite(f.render).all()
    w = gen.last["weights"]
    assert np.allclose(w.sum(0), 1.0)
    assert len(gen.last["keys"]) <= W.MAX_SAMPLED_KEYS + 4 + 2


@pytest.mark.tracking
def test_an_atlas_swap_masks_with_the_keyframes_outline_of_each_frame(video_profile, astronaut_rgb):
    """`--mode swap` on a video profile: the swap mask's outline weight is the one mixed from the
    keyframes the atlas drew this frame (`realtime.swap.outline`), uploaded before the mask is
    interpolated — not the photo's (the keyframes' weights are made to differ from it here)."""
    from realtime.core.frame import Frame
    from realtime.engine.loop import Engine, EngineOptions
    from realtime.image.disclose import DisclosureOptions

    engine = Engine(video_profile, EngineOptions(mode="swap", output_size=(512, 512), fps=30.0, kernel_threads=1,
                                                 disclosure=DisclosureOptions(label=False, mark=False)))
    engine.warm_up()
    attrs = next(s for s in engine.stages if s.name == "attributes").stage
    outline = attrs.outline
    assert outline.varies
    outline.keys[:] = np.random.default_rng(0).uniform(0.2, 0.8, outline.keys.shape).astype(np.float32)
    f = Frame(index=0, t_capture=0.0, image=astronaut_rgb)
    engine.process(f)
    assert attrs.link.current is not None                         # a face was swapped
    used = np.asarray(attrs.uv_alpha)[:, 2]
    np.testing.assert_allclose(used, outline(), atol=1e-6)
    assert np.abs(used - outline.reference).max() > 0.1
