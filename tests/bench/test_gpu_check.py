"""bench.gpu_check: what travels, slimming a trained profile, the summary, CPU kernel times, and
the check's shell scripts parse (the check itself runs on a GPU machine; `make gpu-rehearse`
runs it here)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bench import gpu_check as G

ROOT = Path(G.__file__).resolve().parent.parent


def test_travel_is_the_working_tree_plus_the_carried_folder(tmp_path):
    def git(*a):
        subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / ".gitignore").write_text("/.gpu-check/\n*.log\n")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py", ".gitignore")
    (tmp_path / "new.py").write_text("y = 2\n")          # untracked, not ignored: travels
    (tmp_path / "noise.log").write_text("no")            # ignored: stays
    for rel in (".gpu-check/clips/c.track.npz", ".gpu-check/out/old.tar.gz"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"0" * 10)
    got = {str(p.relative_to(tmp_path)) for p in G.travel_files([".gpu-check"], root=tmp_path)}
    assert got == {".gitignore", "a.py", "new.py", ".gpu-check/clips/c.track.npz"}


def test_travel_refuses_a_carried_path_that_does_not_exist(tmp_path, capsys):
    """Before: `travel --carry .gpu-check` without .gpu-check/ reported success (the working
    tree alone)."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / ".gitignore").write_text("/notes.txt\n")
    (tmp_path / "notes.txt").write_text("ignored, carried as a file")
    with pytest.raises(G.UsageError) as e:
        G.travel_files([".gpu-check"], root=tmp_path)
    assert str(e.value) == f"--carry .gpu-check: no such path in {tmp_path} (`make gpu-prep` makes .gpu-check/)"
    assert G.travel_files(["notes.txt"], root=tmp_path) == [tmp_path / ".gitignore", tmp_path / "notes.txt"]
    assert G.main(["travel", "--carry", "no-such-folder"]) == 2
    assert capsys.readouterr().err == f"error: --carry no-such-folder: no such path in {G.ROOT}\n"


def test_slim_drops_the_trainers_files_and_keeps_a_valid_profile(tmp_path, astronaut_profile):
    from profiles.format import attach_files, load, save

    folder = save(astronaut_profile, tmp_path / "p")
    (folder / "neural").mkdir()
    rels = ["neural/generator.safetensors", "neural/train_state.safetensors", "neural/losses.png",
            "neural/samples.png"]
    for rel in rels:
        (folder / rel).write_bytes(b"w")
    attach_files(folder, rels)
    assert G.main(["slim", str(folder)]) == 0
    assert sorted(load(folder).files) == ["arrays.npz", "neural/generator.safetensors"]
    assert not (folder / "neural/train_state.safetensors").exists()
    assert load(folder).tier == "neural"   # the check times that tier (`train` may leave it off)


def test_summary_reads_every_result(tmp_path):
    (tmp_path / "pytest-cuda.log").write_text("....\n== 120 passed, 3 skipped in 40.1s ==\n")
    (tmp_path / "kernels-cuda.json").write_text(json.dumps({
        "device": "cuda", "gpu": "NVIDIA H200", "kernels_ms": {"rasterize 256² (854 tris)": 0.031},
        "generator": {"label": "generator 512² FP16 CUDA graph", "ms": 2.5, "resolution": 512}}))
    run = {"fps": 30.0, "latency_ms": {"p50": 4.0, "p95": 6.5}, "device": "cuda: NVIDIA H200",
           "stages_ms": {"render": {"p50": 0.1, "p95": 0.2}}}
    (tmp_path / "bench-warp.json").write_text(json.dumps({
        "profile": "s1", "driver": "d10.track.npz", "variants": {"device=cpu": dict(run, device="cpu"),
                                                                  "device=cuda": run}}))
    (tmp_path / "live-warp.log").write_text("448 frames in 2.10 s = 213.3 fps; dropped 0\n")
    (tmp_path / "streams.json").write_text(json.dumps({"streams": {
        "device": "cuda: NVIDIA H200", "mode": "thread", "max_streams": 12,
        "counts": [{"n": 12, "min_fps": 30.0, "max_p95_ms": 20.0, "holds": True}]}}))
    assert G.main(["summary", str(tmp_path)]) == 0
    text = (tmp_path / "summary.md").read_text()
    for expect in ("pytest -m cuda: 120 passed, 3 skipped", "## kernels on NVIDIA H200",
                   "| rasterize 256² (854 tris) | 0.0310 | ≤ 0.05 |",
                   "| device=cuda (cuda: NVIDIA H200) | 30.0 | 4.0/6.5 |",
                   "213.3 fps", "**12**", "Maxine"):
        assert expect in text, expect


@pytest.mark.slow
def test_kernel_times_on_the_cpu(astronaut_profile):
    result = G.kernel_times("cpu", astronaut_profile)
    assert len(result["kernels_ms"]) == 6 and all(v > 0 for v in result["kernels_ms"].values())
    assert result["generator"]["resolution"] == 128 and result["generator"]["ms"] > 0


def test_kernels_on_cuda_without_a_gpu_is_one_line(capsys, monkeypatch):
    from kernels._dispatch import cuda_available

    if cuda_available():
        pytest.skip("a GPU is here")
    assert G.main(["kernels", "--device", "cuda"]) == 2
    assert capsys.readouterr().err.startswith("error: --device cuda needs an NVIDIA GPU")


@pytest.mark.parametrize("script", ["bench/gpu_check.sh", "bench/gpu_prep.sh"])
def test_scripts_parse(script):
    assert subprocess.run(["bash", "-n", str(ROOT / script)]).returncode == 0
