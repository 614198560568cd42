"""realtime.swap.outline (with realtime.swap.farside.folds and crop.vertex_alpha's `outline`): the
swap mask leaves a turned texture's folded outline out — the photo's for the warp tier, the
keyframes' the atlas mixes on each frame for an atlas profile."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.face import topology
from realtime.mesh import rig as rig_mod
from realtime.swap.crop import derived_attribute, face_rig, nominal_affine, vertex_alpha
from realtime.swap.farside import folds
from realtime.swap.outline import OutlineWeights


def turned(neutral: np.ndarray, yaw_deg: float) -> np.ndarray:
    """(478, 2) the neutral shape turned about its vertical axis and seen straight on
    (orthographic): a photo's landmarks of a turned face, up to scale."""
    n = np.asarray(neutral, np.float64)
    c = n.mean(0)
    t = np.radians(yaw_deg)
    rot = np.array([[np.cos(t), 0.0, np.sin(t)], [0.0, 1.0, 0.0], [-np.sin(t), 0.0, np.cos(t)]])
    return ((n - c) @ rot.T + c)[:, :2]


@pytest.fixture(scope="module")
def rig(astronaut_profile):
    return face_rig(rig_mod.build(astronaut_profile), nominal_affine(astronaut_profile, 256))


def test_a_frontal_face_has_no_fold_and_a_turned_one_folds_on_its_far_side(astronaut_profile):
    n = astronaut_profile["neutral"]
    assert not folds(n, n).any()
    mid = n[list(topology.RIGID), 0].mean()
    for yaw in (55.0, -55.0):
        f = folds(turned(n, yaw), n)
        assert f.sum() >= 3
        side = np.sign(np.mean(np.sign(n[f, 0] - mid)))
        assert np.mean(np.sign(n[f, 0] - mid) == side) > 0.8    # on one side ...
        g = folds(turned(n, -yaw), n)
        assert np.mean(np.sign(n[g, 0] - mid) == -side) > 0.8   # ... the other for the other turn
        # the outline's fold: on the oval, none on the features (their tiny triangles turn over
        # with an expression), nor the nose's own fold away from the outline
        assert f[list(topology.FACE_OVAL)].any()
        assert not (f & (topology.region_labels() > 0)).any()
        assert not f[[topology.NOSE_TIP, 64, 294, 98, 327]].any()


def test_vertex_alpha_counts_extra_outline_vertices(astronaut_profile):
    n = astronaut_profile["neutral"]
    plain = vertex_alpha(n)
    extra = np.zeros(topology.N_LANDMARKS, bool)
    # a fully weighted vertex on one side, the nearest such to the outline, and its mirror
    full = np.flatnonzero((plain == 1.0) & (n[:topology.N_LANDMARKS, 0] < n[topology.NOSE_TIP, 0]))
    oval = n[list(topology.FACE_OVAL), :2]
    v = full[np.argmin(np.linalg.norm(n[full, None, :2] - oval[None], axis=-1).min(1))]
    extra[[v, topology.MIRROR[v]]] = True
    with_extra = vertex_alpha(n, outline=extra)
    assert np.all(with_extra[extra] == 0.0)
    assert np.all(with_extra <= plain + 1e-12)
    assert (with_extra < plain - 0.05).sum() > 3             # their neighbours fall too
    middle = [topology.NOSE_TIP] + list(topology.INNER_LIP_UPPER)      # far from them: as before
    assert np.all(with_extra[middle] == plain[middle])
    np.testing.assert_array_equal(vertex_alpha(n, outline=np.zeros(topology.N_LANDMARKS, bool)), plain)


class AtlasStub:
    """What `OutlineWeights` reads of an atlas generator."""

    tier = "atlas"

    def __init__(self, vertex_count: int, region: int | None = None):
        self.alpha = np.zeros((vertex_count, 3), np.float32)    # mouth, eyes, edge
        if region is not None:
            self.alpha[:, region] = 1.0
        self.last: dict = {}


def test_the_warp_tiers_weight_is_the_photos_and_fixed(rig, astronaut_profile):
    n = astronaut_profile["neutral"]
    prof = {"neutral": n, "landmarks": turned(n, 50.0)}
    ow = OutlineWeights(rig, prof, generator=object())
    assert not ow.varies
    expected = derived_attribute(rig, vertex_alpha(n, outline=folds(prof["landmarks"], n)))
    np.testing.assert_allclose(ow(), expected, atol=1e-6)
    assert (ow() < derived_attribute(rig, vertex_alpha(n)) - 0.05).any()   # the fold is left out


def test_the_atlas_weight_follows_the_keyframes_of_the_frame(rig, astronaut_profile):
    n = astronaut_profile["neutral"]
    frontal, left, right = turned(n, 0.0), turned(n, 50.0), turned(n, -50.0)
    prof = {"neutral": n, "landmarks": frontal, "atlas_landmarks": np.stack([frontal, left, right])}
    gen = AtlasStub(rig.vertex_count)
    ow = OutlineWeights(rig, prof, gen)
    assert ow.varies
    np.testing.assert_allclose(ow(), ow.reference)          # no frame drawn yet: the photo's
    plain = derived_attribute(rig, vertex_alpha(n))
    gen.last = {"keys": np.array([0]), "weights": np.array([[1.0, 0.0, 0.0]], np.float32)}
    np.testing.assert_allclose(ow(), plain, atol=1e-6)
    one = derived_attribute(rig, vertex_alpha(n, outline=folds(left, n)))
    gen.last = {"keys": np.array([1]), "weights": np.array([[1.0, 0.0, 0.0]], np.float32)}
    np.testing.assert_allclose(ow(), one, atol=1e-6)
    gen.last = {"keys": np.array([1, 2]), "weights": np.array([[0.5, 1.0, 0.0], [0.5, 0.0, 1.0]], np.float32)}
    other = derived_attribute(rig, vertex_alpha(n, outline=folds(right, n)))
    np.testing.assert_allclose(ow(), 0.5 * (one + other), atol=1e-6)
    # under the atlas's mouth and eye regions their own keyframes' weight, under its edge region
    # the reference's (as `kernels.atlas_blend` mixes the pixels)
    for region, expected in ((0, one), (1, other)):
        stub = AtlasStub(rig.vertex_count, region=region)
        stub.last = {"keys": np.array([1, 2]),
                     "weights": np.array([[0.5, 1.0, 0.0], [0.5, 0.0, 1.0]], np.float32)}
        np.testing.assert_allclose(OutlineWeights(rig, prof, stub)(), expected, atol=1e-6)
    stub = AtlasStub(rig.vertex_count, region=2)
    stub.last = gen.last
    ow_edge = OutlineWeights(rig, prof, stub)
    np.testing.assert_allclose(ow_edge(), ow_edge.reference, atol=1e-6)
