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
    names = {f.name for c in (EstimatorConfig, FuseConfig) for f in dataclasses.fields(c)}
    assert {"tier", "device", "size"} | names <= set(variants.knobs())
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
    assert len(lines) == len(variants.knobs())
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
    ("ease_s=0.1,slow", "--compare ease_s: could not convert string to float: 'slow'"),
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
