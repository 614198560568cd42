"""bench.variants: the --compare knob registry, the variants it makes, an engine per variant."""
from __future__ import annotations

import dataclasses

import pytest

from bench import variants
from bench.usage import UsageError
from realtime.engine.loop import EngineOptions
from realtime.face.estimate import EstimatorConfig
from realtime.mesh.fuse import FuseConfig


def test_knob_registry_covers_the_configs():
    # every scalar field (a pair such as FuseConfig.lid_meet cannot be written in KEY=A,B)
    names = {f.name for c in (EstimatorConfig, FuseConfig) for f in dataclasses.fields(c)
             if isinstance(getattr(c(), f.name), (bool, int, float, str))}
    assert {"tier", "device", "size"} | names <= set(variants.knobs())
    assert "lid_meet" in {f.name for f in dataclasses.fields(FuseConfig)} - set(variants.knobs())
    vs = variants.make_variants(EngineOptions(), "cpu", variants.parse_compare("size=256x256,640x480"))
    assert [v.options.output_size for v in vs] == [(256, 256), (640, 480)]
    vs = variants.make_variants(EngineOptions(), "cpu", variants.parse_compare("follow_scale=0,0.5"))
    assert [v.options.fuse.follow_scale for v in vs] == [0.0, 0.5]
    assert vs[0].options.fuse.follow_translation == FuseConfig().follow_translation
    vs = variants.make_variants(EngineOptions(), "cpu", variants.parse_compare("ease_s=0.1,0.5"))
    assert [v.options.estimator.ease_s for v in vs] == [0.1, 0.5]


def test_registry_is_built_once_and_leaves_out_what_the_bench_sets():
    assert variants.knobs() is variants.knobs()
    assert not {"fps", "realtime", "output_size"} & set(variants.knobs())
    assert {"smooth", "cuda_graphs", "kernel_threads", "backend"} <= set(variants.knobs())
    lines = variants.knob_list().splitlines()
    assert len(lines) == len(variants.knobs()) - len(variants.NO_EFFECT)
    assert not {line.split()[0] for line in lines} & set(variants.NO_EFFECT)   # refused: not offered
    assert lines[0].split()[0] == "tier"


def test_without_compare_one_variant_named_run():
    opts = EngineOptions(fps=25.0)
    (v,) = variants.make_variants(opts, "cpu", None)
    assert (v.label, v.options, v.device) == ("run", opts, "cpu")


def test_values_are_parsed_by_type():
    vs = variants.make_variants(EngineOptions(), "cpu", variants.parse_compare("smooth=off,yes"))
    assert [v.options.smooth for v in vs] == [False, True]
    assert [v.label for v in vs] == ["smooth=off", "smooth=yes"]
    vs = variants.make_variants(EngineOptions(), "cpu", variants.parse_compare("device=cpu,cuda"))
    assert [(v.device, v.options.device) for v in vs] == [("cpu", "cpu"), ("cuda", "cuda")]


@pytest.mark.parametrize("spec, expect", [
    ("follow_scale", "--compare wants KEY=A,B (e.g. tier=warp,atlas), got 'follow_scale'"),
    ("=1,2", "--compare wants KEY=A,B"),
    ("colour=1,2", "--compare: unknown key 'colour'; keys: tier, device, size"),
    ("tier=warp", "--compare tier: give at least two values, e.g. tier=A,B"),
    ("tier=warp,warp", "--compare tier: values repeat (warp,warp)"),
])
def test_bad_compare_specs(spec, expect):
    with pytest.raises(UsageError) as e:
        variants.parse_compare(spec)
    assert str(e.value).startswith(expect)


@pytest.mark.parametrize("spec, expect", [
    ("size=512x512,big", "--compare size: size 'big' is not WIDTHxHEIGHT (e.g. 512x512)"),
    ("size=512x512,8x8", "--compare size: size '8x8' is too small (at least 16x16)"),
    ("smooth=on,maybe", "--compare smooth: 'maybe' is not a boolean (true/false)"),
    ("device=cpu,tpu", "--compare device: unknown device 'tpu' (choose cpu, cuda)"),
    ("backend=torch,jax", "--compare backend: unknown backend 'jax' (choose torch, tensorrt)"),
    # before (stop 58, new-user review): Python's own words ("could not convert string to float:
    # 'slow'"), and a tier's without the option ("... choose one of ['warp', 'atlas', 'neural']")
    ("ease_s=0.1,slow", "--compare ease_s: 'slow' is not a number"),
    ("kernel_threads=1,x", "--compare kernel_threads: 'x' is not a whole number"),
    ("tier=warp,bogus", "--compare tier: 'bogus' is not a tier: choose warp, atlas, neural"),
])
def test_bad_compare_values(spec, expect):
    with pytest.raises(UsageError) as e:
        variants.make_variants(EngineOptions(), "cpu", variants.parse_compare(spec))
    assert str(e.value) == expect


def test_a_configuration_the_engine_refuses_is_a_usage_error(astronaut_profile, monkeypatch):
    with pytest.raises(UsageError, match="tier 'nosuch' is not available"):
        variants.build_engine(astronaut_profile, EngineOptions(), tier="nosuch")

    def refuse(profile, options):
        raise ValueError("first line\nsecond line")
    monkeypatch.setattr(variants, "Engine", refuse)
    with pytest.raises(UsageError) as e:
        variants.check_variants(astronaut_profile, variants.make_variants(EngineOptions(), "cpu", None))
    assert str(e.value) == "first line"


def test_build_engine_applies_the_changes(astronaut_profile):
    engine = variants.build_engine(astronaut_profile, EngineOptions(fps=30.0), realtime=True, fps=12.0)
    try:
        assert engine.options.realtime and engine.options.fps == 12.0
    finally:
        engine.close()


@pytest.mark.parametrize("spec, expect", [
    ("eye_beta=-5,2", "--compare eye_beta: '-5' is out of range: wants a number at least 0"),
    ("eye_beta=nan,2", "--compare eye_beta: 'nan' is not a finite number"),
    ("ease_s=0.1,inf", "--compare ease_s: 'inf' is not a finite number"),
    ("max_head_angle=1000,30", "--compare max_head_angle: '1000' is out of range: wants a number "
                               "above 0 and at most 180"),
    ("pose_min_cutoff=0,4", "--compare pose_min_cutoff: '0' is out of range: wants a number above 0"),
    ("follow_scale=0,2.5", "--compare follow_scale: '2.5' is out of range: wants a number between 0 and 2"),
    ("eye_gain=1,4", "--compare eye_gain: '4' is out of range: wants a number between 0 and 3"),
    ("render_size=0,16", "--compare render_size: '16' is out of range: wants 0 (automatic) or pixels "
                         "between 32 and 2048"),
    ("kernel_threads=0,2", "--compare kernel_threads: '0' is out of range: wants a number between 1 and 1024"),
    ("confirm_frames=-1,3", "--compare confirm_frames: '-1' is out of range: wants a number at least 0"),
    ("size=512x512,8192x512", "--compare size: size '8192x512' is too large (at most 4096x4096, as live --size)"),
])
def test_compare_values_are_checked_up_front(spec, expect):
    """Every value is checked by parse_compare itself (before anything is enrolled), against its
    option's range, and the error names the option and the value as typed (was: the engine's
    OneEuroFilter message with a numpy array, cut off; nan and 1000° ran)."""
    with pytest.raises(UsageError) as e:
        variants.parse_compare(spec)
    assert str(e.value) == expect


def test_compare_ranges_are_the_live_flags_own():
    """The options live checks itself keep live's ranges under --compare."""
    from bench.usage import FOLLOW_RANGE, RENDER_SIZE_RANGE
    from realtime.mesh.gains import GAIN_RANGE

    assert variants.RANGES["follow_scale"][:2] == FOLLOW_RANGE
    assert variants.RANGES["pose_gain"][:2] == GAIN_RANGE
    assert variants.RANGES["max_render_size"][:2] == RENDER_SIZE_RANGE
    vs = variants.make_variants(EngineOptions(), "cpu", variants.parse_compare("render_size=0,64"))
    assert [v.options.render_size for v in vs] == [0, 64]


@pytest.mark.parametrize("spec", ["backend=torch,tensorrt", "cuda_graphs=true,false"])
def test_a_cuda_only_key_is_refused_on_the_cpu(spec):
    """Before (stop 58, new-user review): on the CPU both variants ran the same engine and the
    table gave ratios ("0.90x" for TensorRT, which never ran)."""
    key = spec.split("=")[0]
    with pytest.raises(UsageError, match=rf"^--compare {key}=\.\.\. varies the neural tier's CUDA runtime, and "
                                         r"this run is on cpu: .* add --device cuda"):
        variants.make_variants(EngineOptions(), "cpu", variants.parse_compare(spec))
    assert len(variants.make_variants(EngineOptions(), "cuda", variants.parse_compare(spec))) == 2



def test_a_cuda_only_key_needs_the_neural_tier(astronaut_profile):
    """(stop 58 review) On the GPU too, `backend` and `cuda_graphs` vary only the neural tier:
    with a warp profile both variants were one engine, reported with ratios."""
    vs = variants.make_variants(EngineOptions(), "cuda", variants.parse_compare("backend=torch,tensorrt"))
    assert astronaut_profile.tier == "warp"
    with pytest.raises(UsageError, match=r"^--compare backend=\.\.\. varies the neural tier's CUDA runtime, and "
                                         r"this run draws with the warp tier: .*\(run\.py train\)"):
        variants.check_variants(astronaut_profile, vs)


@pytest.mark.parametrize("spec, expect", [
    ("smooth=1,yes", "--compare smooth: values repeat (1,yes): 1 and yes are the same value (true)"),
    ("smooth=on,true,0", "--compare smooth: values repeat (on,true,0): on and true are the same value (true)"),
    ("ease_s=0.5,.50", "--compare ease_s: values repeat (0.5,.50): 0.5 and .50 are the same value (0.5)"),
    ("kernel_threads=2,02", "--compare kernel_threads: values repeat (2,02): 2 and 02 are the same value (2)"),
    ("size=512x512,512X512",
     "--compare size: values repeat (512x512,512X512): 512x512 and 512X512 are the same value (512x512)"),
])
def test_two_spellings_of_one_value_are_a_repeat(spec, expect):
    """Before the fix (review): `--compare smooth=1,yes` ran two identical variants: the repeat
    check compared the values as typed, not as parsed."""
    with pytest.raises(UsageError) as e:
        variants.parse_compare(spec)
    assert str(e.value).startswith(expect)
    assert variants.parse_compare("smooth=1,no") == ("smooth", ["1", "no"])    # two values: runs
