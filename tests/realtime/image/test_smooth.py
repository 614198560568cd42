"""realtime.image.smooth: motion-compensated temporal smoothing (DESIGN §6)."""
from __future__ import annotations

import numpy as np
import pytest

from kernels import rasterize
from kernels._dispatch import cuda_available
from realtime.core.frame import Frame
from realtime.image.smooth import SmoothStage
from realtime.mesh import rig as R
from realtime.tiers.warp import WarpGenerator


@pytest.fixture(scope="module")
def avatar(astronaut_profile):
    rig = R.build(astronaut_profile)
    return rig, WarpGenerator(astronaut_profile, rig)


def _frame(rig, gen, shift=(0.0, 0.0), index=0):
    """The avatar at rest, its whole mesh moved by `shift` crop pixels (the head layer's fixed
    border too, so the motion is one rigid translation), rendered by the warp tier."""
    lm = rig.attributes[:, :2]   # rest texture coordinates = image px of the rest pose
    verts = np.zeros((rig.vertex_count, 3), np.float32)
    a = rig.crop_from_image
    verts[:, 0] = a[0, 0] * lm[:, 0] + a[0, 1] * lm[:, 1] + a[0, 2] + shift[0]
    verts[:, 1] = a[1, 0] * lm[:, 0] + a[1, 1] * lm[:, 1] + a[1, 2] + shift[1]
    verts[:, 2] = np.where(np.arange(rig.vertex_count) >= R.HEAD_START, R.FAR_Z, 0.0)
    f = Frame(index=index, t_capture=index / 30.0, vertices=verts)
    f.gbuf = rasterize(verts, rig.triangles, rig.crop_size, rig.crop_size)
    f.render = gen(f)
    return f


def _face(rig, frame):
    t = frame.gbuf.tri_id
    return (t >= 0) & (t < rig.ranges["head"][0])


def test_shimmer_on_a_still_face_is_averaged_away(avatar):
    rig, gen = avatar
    base = _frame(rig, gen)
    rng = np.random.default_rng(0)
    stage = SmoothStage(rig, strength=0.6)
    outs = []
    for i in range(30):
        f = _frame(rig, gen, index=i)
        f.render = f.render + rng.normal(0, 2.0, f.render.shape).astype(np.float32)
        stage(f)
        outs.append(f.render)
    noise_in = 2.0
    noise_out = np.std(np.stack(outs[10:]) - base.render, axis=0)[_face(rig, base)].mean()
    # one-pole IIR with a = 0.6: std × sqrt((1 − a) / (1 + a)) = 0.5
    assert noise_out < 0.6 * noise_in


def test_a_real_change_passes_through_at_once(avatar):
    rig, gen = avatar
    stage = SmoothStage(rig)
    for i in range(5):
        stage(_frame(rig, gen, index=i))
    f = _frame(rig, gen, index=5)
    changed = f.render.copy()
    changed[100:140, 100:160] = np.clip(changed[100:140, 100:160] + 80.0, 0, 255)
    f.render = changed.copy()
    stage(f)
    box = (slice(102, 138), slice(102, 158))
    assert _face(rig, f)[box].mean() > 0.9        # a patch of the face, which is smoothed
    bright = changed[box] > 80.0                 # channels that really went up by 80
    assert np.abs(f.render[box][bright] - changed[box][bright]).max() < 1.0


def test_motion_is_compensated_not_ghosted(avatar):
    """The head moves 3 px a frame: the output keeps following the new render (a plain
    running average would trail a ghost of the old positions)."""
    rig, gen = avatar
    stage = SmoothStage(rig, strength=0.9, residual_scale=40.0)
    ghost = None
    for i in range(8):
        f = _frame(rig, gen, shift=(3.0 * i, 0.0), index=i)
        render = f.render.copy()
        ghost = render if ghost is None else 0.1 * render + 0.9 * ghost
        stage(f)
    face = _face(rig, f)
    err = np.abs(f.render - render)[face].mean()
    err_ghost = np.abs(ghost - render)[face].mean()
    assert err < 1.5
    assert err_ghost > 5 * err


def test_a_cut_or_a_lost_face_starts_afresh(avatar):
    rig, gen = avatar
    stage = SmoothStage(rig, max_step_px=12.0)
    rng = np.random.default_rng(1)
    for i in range(3):
        stage(_frame(rig, gen, index=i))
    f = _frame(rig, gen, shift=(20.0, 0.0), index=3)   # a jump: no blending with the past
    noisy = f.render + rng.normal(0, 3.0, f.render.shape).astype(np.float32)
    f.render = noisy.copy()
    stage(f)
    assert np.array_equal(f.render, noisy)


def test_disabled_is_the_identity(avatar):
    rig, gen = avatar
    stage = SmoothStage(rig, enabled=False)
    for i in range(3):
        f = _frame(rig, gen, index=i)
        before = f.render.copy()
        stage(f)
        assert f.render is not None and np.array_equal(f.render, before)


def test_strength_is_checked(avatar):
    with pytest.raises(ValueError, match="strength"):
        SmoothStage(avatar[0], strength=1.0)


@pytest.mark.cuda
@pytest.mark.skipif(not cuda_available(), reason="needs cupy and an NVIDIA GPU")
def test_a_host_only_generators_frame_is_smoothed_on_the_device(avatar):
    """After a host-only generator (the atlas tier, wrapped in `HostStage`, which brings the
    G-buffer and crop to the host) the CUDA smoother takes both back to the device (it stopped
    with 'triangles is a cupy array but gbuf.tri_id is a numpy array' on the GPU check) and
    smooths as the CPU one does."""
    import cupy

    from realtime.core.context import open_device

    rig, gen = avatar
    ctx = open_device("cuda")
    cpu, dev = SmoothStage(rig), SmoothStage(rig, ctx=ctx)
    with ctx.activate():
        for i in range(3):
            a, b = _frame(rig, gen, shift=(0.5 * i, 0.0), index=i), _frame(rig, gen, shift=(0.5 * i, 0.0), index=i)
            cpu(a)
            dev(b)           # host G-buffer and crop in, as HostStage leaves them
            assert isinstance(b.render, cupy.ndarray) and isinstance(b.gbuf.tri_id, cupy.ndarray)
            assert np.abs(ctx.to_host(b.render) - a.render).max() < 0.5
