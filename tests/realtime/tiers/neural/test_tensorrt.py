"""The TensorRT engine cache of the neural tier: the manifest decides reuse or rebuild.

No GPU needed: the builder is a fake that records its calls and returns made-up plan bytes;
the real builder (torch-tensorrt) is exercised only by the `cuda` test at the end."""
from __future__ import annotations

import json

import pytest

from realtime.tiers.neural import tensorrt as T
from tests.realtime.tiers.neural.profiles import profile_with_generator

ENV = T.Environment(tensorrt="11.0.1", torch_tensorrt="2.13.0", torch="2.13.0",
                    gpu="NVIDIA Fake 80GB", compute_capability="9.0")


class FakeBuilder:
    def __init__(self, env: T.Environment = ENV, plan: bytes = b"plan-1"):
        self.env, self.plan = env, plan
        self.builds: list[str] = []
        self.loaded: list[bytes] = []

    def environment(self):
        return self.env

    def build(self, generator, precision):
        self.builds.append(precision)
        return self.plan + precision.encode(), ["render", "mask", "hint"], ["image"]

    def load(self, plan, inputs, outputs):
        self.loaded.append(plan)
        return lambda *a: ("ran", plan)


@pytest.fixture
def trained(tmp_path, astronaut_profile):
    return profile_with_generator(tmp_path / "astro", astronaut_profile)


def _expected(**changes):
    m = T.expected_manifest("fp16", 128, "w" * 64, ENV)
    m.update(changes)
    return m


def test_stale_reason_match_and_every_kind_of_mismatch():
    good = {**_expected(), "engine_sha256": "e" * 64}
    assert "that this machine built it" in T.stale_reason(good, _expected(), "e" * 64)
    T.record_built("e" * 64)
    assert T.stale_reason(good, _expected(), "e" * 64) is None
    assert "no engine" in T.stale_reason(None, _expected(), None)
    assert "missing" in T.stale_reason(good, _expected(), None)
    assert "sha256" in T.stale_reason(good, _expected(), "f" * 64)
    assert "format" in T.stale_reason({**good, "version": 99}, _expected(), "e" * 64)
    cases = {"precision": ("fp32", "precision"), "resolution": (256, "resolution"),
             "weights_sha256": ("x" * 64, "weights"), "tensorrt": ("10.9", "TensorRT version"),
             "torch_tensorrt": ("2.12.0", "torch-tensorrt version"),
             "compute_capability": ("8.6", "compute capability")}
    for key, (other, words) in cases.items():
        reason = T.stale_reason({**good, key: other}, _expected(), "e" * 64)
        assert reason is not None and words in reason, (key, reason)
        assert repr(other) in reason
    # the GPU's name alone does not invalidate an engine of the same compute capability
    assert T.stale_reason({**good, "gpu": "another board"}, _expected(), "e" * 64) is None


def test_first_build_then_reuse(trained):
    b = FakeBuilder()
    said = []
    rec = T.ensure_engine(trained, "fp16", b, log=said.append)
    assert rec.built and b.builds == ["fp16"] and "no engine" in rec.reason and said
    files = rec.files
    folder = trained.folder.resolve()
    for p in (files.engine, files.manifest):
        assert p.is_file() and folder in p.resolve().parents
    assert files.engine.read_bytes() == b"plan-1fp16"
    m = json.loads(files.manifest.read_text())
    assert m["engine_sha256"] == T.sha256_bytes(b"plan-1fp16")
    assert m["weights_sha256"] == T.sha256_file(files.weights)
    assert m["resolution"] == 32 and m["precision"] == "fp16"
    assert m["compute_capability"] == "9.0" and m["gpu"] == "NVIDIA Fake 80GB"
    assert m["inputs"] == ["render", "mask", "hint"] and m["outputs"] == ["image"]
    rec2 = T.ensure_engine(trained, "fp16", b)
    assert not rec2.built and b.builds == ["fp16"]           # cached: no second build
    run = T.load_engine(rec2, b)
    assert run() == ("ran", b"plan-1fp16")
    # a stale engine must not leave the profile unloadable: the cache is not in `files`
    from profiles.format import load

    assert files.engine_rel not in load(trained.folder).files


@pytest.mark.parametrize("change, words", [
    ("tamper", "sha256"), ("delete", "missing"), ("gpu", "compute capability"),
    ("trt", "TensorRT version"), ("retrain", "weights"), ("force", "--force"),
    ("manifest", "no engine"),
])
def test_mismatch_rebuilds(trained, change, words, astronaut_profile):
    b = FakeBuilder()
    rec = T.ensure_engine(trained, "fp16", b)
    profile, builder, force = trained, b, False
    if change == "tamper":
        rec.files.engine.write_bytes(b"evil")
    elif change == "delete":
        rec.files.engine.unlink()
    elif change == "gpu":
        builder = FakeBuilder(T.Environment(**{**ENV.__dict__, "compute_capability": "8.6"}))
    elif change == "trt":
        builder = FakeBuilder(T.Environment(**{**ENV.__dict__, "tensorrt": "11.1.0"}))
    elif change == "retrain":
        profile = profile_with_generator(trained.folder, astronaut_profile, seed=1)
    elif change == "force":
        force = True
    elif change == "manifest":
        rec.files.manifest.write_text("not json")
    again = T.ensure_engine(profile, "fp16", builder, force=force)
    assert again.built and words in again.reason, again.reason
    assert builder.builds == ["fp16"] * (2 if builder is b else 1)
    assert again.files.engine.read_bytes() == b"plan-1fp16"
    assert T.ensure_engine(profile, "fp16", builder).built is False   # and now it is current


def test_a_plan_that_came_with_a_copied_profile_is_rebuilt_never_loaded(trained, tmp_path, monkeypatch):
    """The manifest travels with the plan, so it cannot vouch for it: a plan and a matching
    manifest built elsewhere (another user's cache) are rebuilt here, and never deserialised."""
    elsewhere = FakeBuilder(plan=b"their plan ")
    monkeypatch.setenv("PUPPETEER_CACHE", str(tmp_path / "their-cache"))
    theirs = T.ensure_engine(trained, "fp16", elsewhere)
    monkeypatch.setenv("PUPPETEER_CACHE", str(tmp_path / "my-cache"))
    mine = FakeBuilder()
    with pytest.raises(T.EngineError, match="no record in .* that this machine built it"):
        T.load_engine(theirs, mine)
    again = T.ensure_engine(trained, "fp16", mine)
    assert again.built and "that this machine built it" in again.reason
    assert mine.builds == ["fp16"] and mine.loaded == []
    assert T.load_engine(again, mine)() == ("ran", b"plan-1fp16")
    assert json.loads((tmp_path / "my-cache" / T.BUILT_FILE).read_text())["engines"] == \
        [T.sha256_bytes(b"plan-1fp16")]


def test_an_unwritable_cache_is_a_clear_error_before_the_build(trained, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("PUPPETEER_CACHE", str(tmp_path / "file" / "cache"))
    builder = FakeBuilder()
    with pytest.raises(T.EngineError, match="PUPPETEER_CACHE"):
        T.ensure_engine(trained, "fp16", builder)
    assert builder.builds == []           # said before minutes of building, not after


def test_a_damaged_record_is_set_aside_not_overwritten(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PUPPETEER_CACHE", str(tmp_path))
    T.record_built("a" * 64)
    (tmp_path / T.BUILT_FILE).write_text('{"engines": ["' + "a" * 64 + '", ')      # cut short
    assert not T.built_here("a" * 64)
    assert (tmp_path / (T.BUILT_FILE + ".damaged")).read_text().startswith('{"engines"')
    T.record_built("b" * 64)
    assert T.built_here("b" * 64) and "moved to built-engines.json.damaged" in capsys.readouterr().err


def test_a_manifest_that_is_a_pipe_huge_or_deep_is_not_read(tmp_path):
    """sec85 F9: the manifest of a received profile was read whole with no cap (a sparse file of
    gigabytes), and a pipe in its place blocked `live --tier neural`. Each is no manifest (the
    engine is rebuilt and the manifest written anew)."""
    import os
    import threading

    pipe = tmp_path / "engine-fp16.json"
    os.mkfifo(pipe)
    got: list = []
    reader = threading.Thread(target=lambda: got.append(T.read_manifest(pipe)), daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():                    # blocked in open(): a writer lets it go, then fail
        with open(pipe, "wb"):
            pass
        reader.join(10)
        pytest.fail("read_manifest blocked on a pipe")
    assert got == [None]
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"format": T.MANIFEST_FORMAT, "pad": "x" * (1 << 20)}))
    assert T.read_manifest(big) is None
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 50_000 + "]" * 50_000)
    assert T.read_manifest(deep) is None
    fine = tmp_path / "fine.json"
    fine.write_text(json.dumps({"format": T.MANIFEST_FORMAT}))
    assert T.read_manifest(fine) == {"format": T.MANIFEST_FORMAT}


def test_records_from_processes_building_at_once_are_all_kept(tmp_path):
    """Review: eight processes recording 64 engines kept 10 of them (read-modify-write, no lock)."""
    import subprocess
    import sys

    code = ("import sys; from realtime.tiers.neural import tensorrt as T\n"
            "for i in range(8): T.record_built(f'{sys.argv[1]}{i:02d}' + 'f' * 61)")
    env = {**__import__("os").environ, "PUPPETEER_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(k)], env=env) for k in range(6)]
    assert all(p.wait(60) == 0 for p in procs)
    kept = json.loads((tmp_path / T.BUILT_FILE).read_text())["engines"]
    assert len(kept) == 48 == len(set(kept))


def test_tampered_plan_is_never_deserialised(trained):
    b = FakeBuilder()
    rec = T.ensure_engine(trained, "fp16", b)
    rec.files.engine.write_bytes(b"swapped after the check")
    with pytest.raises(T.EngineError, match="sha256"):
        T.load_engine(rec, b)
    assert b.loaded == []


def test_precisions_have_their_own_engine(trained):
    b = FakeBuilder()
    a = T.ensure_engine(trained, "fp16", b)
    c = T.ensure_engine(trained, "fp32", b)
    assert a.files.engine != c.files.engine and b.builds == ["fp16", "fp32"]
    with pytest.raises(ValueError, match="precision"):
        T.ensure_engine(trained, "int8", b)


def test_profile_without_generator_is_a_clear_error(tmp_path, astronaut_profile):
    from profiles.format import ProfileError, load, save

    save(astronaut_profile, tmp_path / "plain")
    with pytest.raises(ProfileError, match="no trained generator.*enrolled from a photo.*run.py train"):
        T.engine_files(load(tmp_path / "plain"), "fp16")


def test_notice_once(capsys):
    assert T.notice_once("tensorrt test notice")
    assert not T.notice_once("tensorrt test notice")
    assert capsys.readouterr().err.count("tensorrt test notice") == 1


def test_builder_without_tensorrt_says_so(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_trt(name, *a, **kw):
        if name in ("tensorrt", "torch_tensorrt"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_trt)
    with pytest.raises(T.TensorRTMissing, match=r"TensorRT is not installed.*\.\[gpu\]"):
        T.TensorRTBuilder()


def _have_tensorrt() -> bool:
    import importlib.util

    from kernels._dispatch import cuda_available

    return cuda_available() and importlib.util.find_spec("torch_tensorrt") is not None


@pytest.mark.cuda
@pytest.mark.skipif(not _have_tensorrt(), reason="needs an NVIDIA GPU, cupy and torch-tensorrt")
def test_real_engine_matches_torch(trained):
    import torch

    from realtime.tiers.neural.checkpoint import load_generator
    from realtime.tiers.neural.export import sample_inputs

    b = T.TensorRTBuilder()
    rec = T.ensure_engine(trained, "fp16", b)
    run = T.load_engine(rec, b)
    g = load_generator(rec.files.weights).cuda().half().eval()
    x = [t.cuda().half() for t in sample_inputs(32)]
    with torch.inference_mode():
        ref = g(*x).float()
        got = run(*x).float()
    torch.cuda.synchronize()
    assert (got - ref).abs().max().item() < 2e-2
