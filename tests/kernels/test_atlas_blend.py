"""kernels.atlas_blend: golden cases of the atlas tier's blend, against plain `interpolate` +
`texture` lookups on the CPU, on every device of the `dev` fixture.

The blend computes each sample point as a float32 barycentric sum; the references interpolate
in float64 (`interpolate`), so sample points differ by a few ulp of the coordinate (< 1e-5 px
here), which moves a sample of a 0..255 image by < 0.01: ATOL."""
from __future__ import annotations

import numpy as np
import pytest

from kernels import GBuffer, atlas_blend, interpolate, rasterize, texture
from tests.kernels.test_rasterize import face_mesh

ATOL = 0.02
SIZE = 64
N_KEYS, KEY_SIZE = 4, 48


@pytest.fixture(scope="module")
def scene():
    """A rasterised face mesh (the last quarter of its triangles the head layer), a reference
    image and N_KEYS keyframe crops with per-vertex coordinates that follow the mesh."""
    rng = np.random.default_rng(11)
    v, t = face_mesh(n=200, seed=1, size=SIZE)
    g = rasterize(v, t, SIZE, SIZE)
    c = v[:, :2].mean(0)

    def uv_into(h, w):
        s = rng.uniform(0.6, 0.9) * min(h, w) / SIZE
        uv = (v[:, :2] - c) * s + np.array([w / 2, h / 2]) + rng.normal(0, 1.0, size=(len(v), 2))
        return uv.astype(np.float32)

    ref_uv = uv_into(50, 60)
    ref_image = rng.integers(0, 256, size=(50, 60, 3)).astype(np.uint8)
    key_uv = np.stack([uv_into(KEY_SIZE, KEY_SIZE) for _ in range(N_KEYS)])
    key_images = rng.integers(0, 256, size=(N_KEYS, KEY_SIZE, KEY_SIZE, 3)).astype(np.uint8)
    head_start = len(t) - len(t) // 4
    return dict(g=g, t=t, head_start=head_start, ref_uv=ref_uv, ref_image=ref_image, key_uv=key_uv,
                key_images=key_images, nv=len(v))


def run(dev, s, keys, weights, alpha, head_start=None, ref_image=None, out=None):
    """atlas_blend on `dev`'s arrays; the result back on the host."""
    p = dev.put
    head = s["head_start"] if head_start is None else head_start
    img = s["ref_image"] if ref_image is None else ref_image
    res = atlas_blend(p(s["g"]), p(s["t"]), head, p(s["ref_uv"]), p(img),
                      p(np.asarray(keys, np.int64)), p(s["key_uv"]), p(s["key_images"]),
                      p(np.asarray(weights, np.float32)), p(np.asarray(alpha, np.float32)), out=out)
    return dev.get(res)


def lookup(s, image, uv):
    """`image` sampled at the interpolated per-vertex coordinates `uv` (the CPU reference)."""
    return texture(image, interpolate(s["g"], s["t"], uv))


def covered(s):
    return s["g"].tri_id >= 0


def face_px(s):
    return covered(s) & (s["g"].tri_id < s["head_start"])


def head_px(s):
    return s["g"].tri_id >= s["head_start"]


@pytest.mark.parametrize("key", [0, 2])
def test_one_key_with_weight_one_is_a_texture_lookup(scene, dev, key):
    s = scene
    alpha = np.zeros((s["nv"], 3))
    out = run(dev, s, [key], [[1.0, 0.3, 0.7]], alpha, head_start=len(s["t"]))  # no head layer
    ref = lookup(s, s["key_images"][key], s["key_uv"][key])
    cov = covered(s)
    assert cov.mean() > 0.4
    np.testing.assert_allclose(out[cov], ref[cov], rtol=0, atol=ATOL)
    assert np.all(out[~cov] == 0)  # empty pixels are 0


@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=["u8", "f32"])
def test_head_triangles_sample_the_reference_image_only(scene, dev, dtype):
    s = scene
    rng = np.random.default_rng(1)
    ref_image = s["ref_image"].astype(dtype)
    if dtype == np.float32:
        ref_image = ref_image / np.float32(255) - np.float32(0.5)  # any range
    alpha = rng.dirichlet(np.ones(4), size=s["nv"])[:, :3]
    out = run(dev, s, [1, 3], rng.uniform(0.1, 0.9, (2, 3)), alpha, ref_image=ref_image)
    ref = lookup(s, ref_image, s["ref_uv"])
    head = head_px(s)
    assert head.mean() > 0.05
    np.testing.assert_allclose(out[head], ref[head], rtol=0, atol=ATOL * np.ptp(ref_image) / 255)
    # the face pixels blend keys, which differ from the reference image
    assert np.abs(out - ref)[face_px(s)].mean() > 10 * np.ptp(ref_image) / 255
    # with every triangle in the head layer, the whole mesh is the reference image
    out = run(dev, s, [1, 3], rng.uniform(0.1, 0.9, (2, 3)), alpha, head_start=0, ref_image=ref_image)
    cov = covered(s)
    np.testing.assert_allclose(out[cov], ref[cov], rtol=0, atol=ATOL * np.ptp(ref_image) / 255)


def test_edge_alpha_one_gives_the_reference_image(scene, dev):
    s = scene
    alpha = np.zeros((s["nv"], 3))
    alpha[:, 2] = 1.0  # ar = 1: af = am = ae = 0, so no keyframe has weight
    out = run(dev, s, [0, 1, 2], [[0.5, 0.2, 0.2], [0.3, 0.3, 0.3], [0.2, 0.5, 0.5]], alpha)
    ref = lookup(s, s["ref_image"], s["ref_uv"])
    cov = covered(s)
    np.testing.assert_allclose(out[cov], ref[cov], rtol=0, atol=ATOL)


@pytest.mark.parametrize("region", [0, 1, 2], ids=["face", "mouth", "eyes"])
def test_a_region_takes_its_own_weight_column(scene, dev, region):
    s = scene
    alpha = np.zeros((s["nv"], 3))
    if region:
        alpha[:, region - 1] = 1.0  # am = 1 or ae = 1 everywhere: af = 0
    weights = np.array([[0.7, 0.1, 0.25], [0.3, 0.9, 0.75]])
    out = run(dev, s, [3, 0], weights, alpha, head_start=len(s["t"]))
    ref = (weights[0, region] * lookup(s, s["key_images"][3], s["key_uv"][3])
           + weights[1, region] * lookup(s, s["key_images"][0], s["key_uv"][0]))
    cov = covered(s)
    np.testing.assert_allclose(out[cov], ref[cov], rtol=0, atol=ATOL)


def test_several_keys_and_regions_blend_linearly(scene, dev):
    """out = ar·ref + Σ_j ((1 − am − ae − ar)·W[j,0] + am·W[j,1] + ae·W[j,2])·key_j with the
    per-pixel interpolated region alphas; a key listed twice counts twice."""
    s = scene
    rng = np.random.default_rng(5)
    alpha = rng.dirichlet(np.ones(4), size=s["nv"])[:, :3] * 0.9  # sum <= 0.9
    alpha[rng.random((s["nv"], 3)) < 0.4] = 0.0
    alpha = alpha.astype(np.float32)
    keys = [2, 0, 3, 2]
    weights = rng.uniform(0.05, 0.4, size=(4, 3)).astype(np.float32)
    out = run(dev, s, keys, weights, alpha)
    a = interpolate(s["g"], s["t"], alpha)
    am, ae, ar = a[..., 0:1], a[..., 1:2], a[..., 2:3]
    af = 1 - am - ae - ar
    ref = np.where(ar > 1e-4, ar * lookup(s, s["ref_image"], s["ref_uv"]), 0)
    for j, k in enumerate(keys):
        w = af * weights[j, 0] + am * weights[j, 1] + ae * weights[j, 2]
        ref = ref + w * lookup(s, s["key_images"][k], s["key_uv"][k])
    face = face_px(s)
    assert (ar[face] > 0.05).mean() > 0.2 and ((am + ae)[face] > 0.05).mean() > 0.2
    np.testing.assert_allclose(out[face], ref[face], rtol=0, atol=ATOL)


def test_weights_at_or_below_the_cutoff_are_skipped_and_out_is_overwritten(scene, dev):
    s = scene
    alpha = np.zeros((s["nv"], 3))
    out = dev.put(np.full((SIZE, SIZE, 3), np.nan, np.float32))
    got = run(dev, s, [0, 1], [[1.0, 0, 0], [1e-4, 0, 0]], alpha, head_start=len(s["t"]), out=out)
    ref = lookup(s, s["key_images"][0], s["key_uv"][0])
    cov = covered(s)
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got[cov], ref[cov], rtol=0, atol=ATOL)
    # no keys at all: the face pixels are 0 (nothing to blend)
    got = run(dev, s, np.zeros(0, np.int64), np.zeros((0, 3)), alpha, head_start=len(s["t"]))
    assert np.all(got == 0)


def _args(dev, s, **change):
    a = dict(gbuf=s["g"], triangles=s["t"], head_start=s["head_start"], ref_uv=s["ref_uv"],
             ref_image=s["ref_image"], keys=np.array([0, 1], np.int64), key_uv=s["key_uv"],
             key_images=s["key_images"], weights=np.full((2, 3), 0.5, np.float32),
             alpha=np.zeros((s["nv"], 3), np.float32))
    a.update(change)
    return {k: (v if isinstance(v, int) else dev.put(v)) for k, v in a.items()}


@pytest.mark.parametrize(
    "change, exc, name",
    [
        (dict(triangles=np.zeros((5, 3), np.int64)), TypeError, "triangles"),
        (dict(ref_uv=np.zeros((7, 3), np.float32)), ValueError, "ref_uv"),
        (dict(ref_image=np.zeros((8, 8, 4), np.uint8)), ValueError, "ref_image"),
        (dict(ref_image=np.zeros((8, 8, 3), np.float64)), TypeError, "ref_image"),
        (dict(keys=np.array([0, 1], np.int32)), TypeError, "keys"),
        (dict(key_uv=np.zeros((N_KEYS, 5, 2), np.float32)), ValueError, "key_uv"),
        (dict(key_images=np.zeros((N_KEYS, 8, 8, 3), np.float32)), TypeError, "key_images"),
        (dict(key_images=np.zeros((N_KEYS + 1, 8, 8, 3), np.uint8)), ValueError, "key_images"),
        (dict(weights=np.zeros((3, 3), np.float32)), ValueError, "weights"),
        (dict(weights=np.zeros((2, 3), np.float64)), TypeError, "weights"),
        (dict(alpha=np.zeros((4, 3), np.float32)), ValueError, "alpha"),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_bad_inputs_name_the_argument(scene, dev, change, exc, name):
    with pytest.raises(exc, match=name):
        atlas_blend(**_args(dev, scene, **change))


def test_bad_gbuffer_out_and_key_index(scene, dev):
    s = scene
    with pytest.raises(TypeError, match="gbuf"):
        atlas_blend(**_args(dev, s, gbuf=s["g"].tri_id))
    g = s["g"]
    with pytest.raises(ValueError, match="gbuf.bary"):
        atlas_blend(**_args(dev, s, gbuf=GBuffer(g.tri_id, g.bary[:-1], g.depth)))
    with pytest.raises(TypeError, match="out"):
        atlas_blend(**_args(dev, s), out=dev.put(np.zeros((SIZE, SIZE, 3), np.float64)))
    with pytest.raises(ValueError, match="out"):
        atlas_blend(**_args(dev, s), out=dev.put(np.zeros((SIZE, SIZE, 4), np.float32)))
    for bad in ([0, N_KEYS], [-1]):
        with pytest.raises(ValueError, match="keys"):
            atlas_blend(**_args(dev, s, keys=np.array(bad, np.int64), weights=np.zeros((len(bad), 3), np.float32)))
