"""Tier 3 in the engine: the CPU path (OpenCV glue around NeuralRunner) and the torch glue the
CUDA path runs, checked here on CPU tensors against the OpenCV computation."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from realtime.tiers.neural.generator import _gaussian_kernel, torch_glue
from tests.realtime.tiers.neural.profiles import profile_with_generator


@pytest.mark.parametrize("k", [3, 7, 9])
def test_gaussian_kernel_is_opencvs(k):
    assert np.allclose(_gaussian_kernel(k), cv2.getGaussianKernel(k, 0).ravel(), atol=1e-6)


def test_torch_glue_matches_the_opencv_glue():
    rng = np.random.default_rng(0)
    s, r, face_end, feather = 64, 32, 100, 3
    base = rng.uniform(0, 255, (s, s, 3)).astype(np.float32)
    tri = np.full((s, s), -1, np.int32)
    tri[8:56, 10:50] = rng.integers(0, 140, (48, 40))
    hint = np.zeros((1, 3, r, r), np.float32)
    seen = {}

    def forward(render, mask, h):          # a stand-in generator: darken the render
        seen["render"], seen["mask"] = render.float().clone(), mask.float().clone()
        return render * 0.5

    k = torch.from_numpy(_gaussian_kernel(feather))
    got = torch_glue(torch.from_numpy(base), torch.from_numpy(tri), face_end, forward,
                     torch.from_numpy(hint), r, k.view(1, 1, 1, -1), k.view(1, 1, -1, 1),
                     torch.float32).numpy()

    # the same with OpenCV, as HostGlue + NeuralRunner compute it
    face = ((tri >= 0) & (tri < face_end)).astype(np.float32)
    small = cv2.resize(base, (r, r), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(face, (r, r), interpolation=cv2.INTER_AREA)
    assert np.allclose(seen["render"][0].permute(1, 2, 0).numpy(), small / 127.5 - 1, atol=1e-5)
    assert np.allclose(seen["mask"][0, 0].numpy(), mask, atol=1e-6)
    y = np.clip(((small / 127.5 - 1) * 0.5 + 1) * 127.5, 0, 255)
    change = cv2.resize(y - small, (s, s), interpolation=cv2.INTER_LINEAR)
    soft = cv2.GaussianBlur(cv2.erode(face, np.ones((3, 3), np.uint8)), (feather, feather), 0)
    want = base + soft[..., None] * change
    assert got.shape == (s, s, 3) and got.dtype == np.float32
    assert np.abs(got - want).max() < 0.05


def test_neural_tier_runs_in_the_cpu_engine(tmp_path, astronaut_profile):
    from realtime.core.frame import Frame
    from realtime.engine.loop import Engine, EngineOptions
    from realtime.face.state import FaceState

    profile = profile_with_generator(tmp_path / "astro", astronaut_profile)
    engine = Engine(profile, EngineOptions(output_size=(128, 128), kernel_threads=1))
    gen = engine.stages[4].generator
    assert gen.tier == "neural" and gen.res == 32 and gen.ctx.name == "cpu"
    if gen.base.tier == "warp":   # its warp base draws no smile folds: it was trained on renders without
        assert gen.base.folds is None
    f = engine.process(Frame(index=0, t_capture=0.0, state=FaceState.neutral()))
    assert f.output.shape == (128, 128, 3) and f.output.dtype == np.uint8
    assert f.render.shape == (256, 256, 3) and np.isfinite(f.render).all()


def test_tensorrt_backend_on_the_cpu_is_refused(tmp_path, astronaut_profile):
    from realtime.engine.loop import Engine, EngineOptions

    profile = profile_with_generator(tmp_path / "astro", astronaut_profile)
    with pytest.raises(ValueError, match="runs on CUDA only"):
        Engine(profile, EngineOptions(backend="tensorrt"))
    with pytest.raises(ValueError, match="not one of"):
        Engine(profile, EngineOptions(backend="onnx"))


def test_torch_glue_shows_the_render_where_the_generator_gives_nan():
    """The device path's twin of `NeuralRunner`'s `_finite_or` (security review: a NaN output drew
    the frame black)."""
    rng = np.random.default_rng(1)
    s, r = 32, 16
    base = rng.uniform(0, 255, (s, s, 3)).astype(np.float32)
    tri = np.zeros((s, s), np.int32)
    k = torch.from_numpy(_gaussian_kernel(3))
    got = torch_glue(torch.from_numpy(base), torch.from_numpy(tri), 10, lambda x, m, h: x * float("nan"),
                     torch.zeros(1, 3, r, r), r, k.view(1, 1, 1, -1), k.view(1, 1, -1, 1), torch.float32).numpy()
    assert np.isfinite(got).all() and np.abs(got - base).max() < 1e-3


def test_a_generator_too_slow_for_the_run_on_the_cpu_is_said_once(tmp_path, astronaut_profile, monkeypatch, capsys):
    """Before (train audit): a 512² generator ran live on a CPU at ~3.5 fps with no word. Now an
    engine whose neural tier cannot keep the run's rate on the CPU (its generator's forward alone,
    `CPU_FORWARD_MS` by resolution, over a frame's time) says so once, with what to do; one that can
    says nothing. (No timing here: the check reads the resolution and the device.)"""
    from realtime.engine.loop import Engine, EngineOptions
    from realtime.tiers.neural import generator as G
    from realtime.tiers.neural import tensorrt as trt_mod

    monkeypatch.setattr(trt_mod, "_NOTICED", set())
    profile = profile_with_generator(tmp_path / "astro", astronaut_profile)     # a 32² generator: 16 ms
    capsys.readouterr()
    Engine(profile, EngineOptions(output_size=(128, 128), kernel_threads=1, fps=30.0))
    assert "neural tier" not in capsys.readouterr().err
    for _ in range(2):          # bench builds an engine per variant: said once
        Engine(profile, EngineOptions(output_size=(128, 128), kernel_threads=1, fps=120.0))
    err = capsys.readouterr().err
    assert err.count("note: profile astro's neural tier runs a 32² generator") == 1
    assert "--tier atlas" in err and "--resolution 128" not in err and "--device cuda" in err   # it is 32²
    assert G.cpu_speed_note(128, 30.0, "p") is None
    note = G.cpu_speed_note(512, 30.0, "p")
    assert note.startswith("profile p's neural tier runs a 512² generator: on a CPU about 450 ms a frame")
    assert "some 2 fps" in note and G.cpu_speed_note(256, 30.0, "p") is not None
    assert G.cpu_speed_note(256, 5.0, "p") is None      # 135 ms: within a frame at 5 fps
    assert "--resolution 128" in note
    # a 128² generator at a rate above its ~62 fps: no retraining at the size it has, and the
    # rate in plain digits (before: "some 6e+01 fps", and "train it at 128²")
    fast = G.cpu_speed_note(128, 120.0, "p")
    assert "some 62 fps" in fast and "--resolution 128" not in fast and "--tier atlas" in fast
