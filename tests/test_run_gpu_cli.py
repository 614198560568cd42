"""run.py's GPU options on a machine without a GPU: `--device cuda` is one `error:` line and
exit 2 for live, bench, export and train (never a traceback); export checks the profile first."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import run
from kernels._dispatch import cuda_available

ROOT = Path(run.__file__).resolve().parent
no_gpu = pytest.mark.skipif(cuda_available(), reason="a GPU is here: --device cuda works")


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    r = tmp_path / "profiles"
    monkeypatch.setenv("PUPPETEER_PROFILES", str(r))
    return r


def _one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture
def trained(root, astronaut_profile):
    from tests.realtime.tiers.neural.profiles import profile_with_generator

    return profile_with_generator(root / "astro", astronaut_profile)


@no_gpu
def test_device_cuda_is_one_line_for_every_command(tmp_path, trained, capsys):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    for argv in (["live", "--profile", "astro", "--device", "cuda", "--sink", "null"],
                 ["export", "--profile", "astro", "--device", "cuda"],
                 ["export", "--profile", "astro"],
                 ["train", "--profile", "astro", "--video", str(clip), "--steps", "1",
                  "--device", "cuda"],
                 ["bench", "--profile", "astro", "--driver", str(clip), "--device", "cuda"]):
        assert run.main(argv) == 2, argv
        line = _one_error(capsys.readouterr().err)
        assert "cuda" in line.lower() and ("GPU" in line or "CUDA" in line), (argv, line)


@no_gpu
def test_device_cuda_in_a_subprocess_has_no_traceback(trained, root):
    import os

    env = dict(os.environ, PUPPETEER_PROFILES=str(root))
    for argv in (["live", "--profile", "astro", "--device", "cuda", "--sink", "null"],
                 ["export", "--profile", "astro"]):
        r = subprocess.run([sys.executable, str(ROOT / "run.py"), *argv], capture_output=True,
                           text=True, timeout=120, cwd=ROOT, env=env)
        assert r.returncode == 2, r.stderr
        _one_error(r.stderr)


def test_export_without_a_trained_generator(root, astronaut_profile, capsys):
    from profiles.format import save

    save(astronaut_profile, root / "plain")
    assert run.main(["export", "--profile", "plain"]) == 2
    line = _one_error(capsys.readouterr().err)
    assert "no trained generator" in line and "enrolled from a photo" in line and "enroll CLIP.mp4" in line
    assert run.main(["export", "--profile", "missing"]) == 2
    assert "no profile" in _one_error(capsys.readouterr().err)


def test_export_on_the_cpu_and_tensorrt_backend_on_the_cpu_are_refused(trained, capsys):
    assert run.main(["export", "--profile", "astro", "--device", "cpu"]) == 2
    assert "--device cuda" in _one_error(capsys.readouterr().err)
    assert run.main(["live", "--profile", "astro", "--backend", "tensorrt", "--sink", "null"]) == 2
    assert "--device cuda" in _one_error(capsys.readouterr().err)


def test_export_and_backend_have_help(capsys):
    with pytest.raises(SystemExit) as e:
        run.main(["export", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--precision" in out and "--force" in out
    with pytest.raises(SystemExit):
        run.main(["live", "--help"])
    assert "--backend" in capsys.readouterr().out
