"""What the numbers were measured on (`machine_info`): CPU, cores, RAM, OS, Python, the
versions of the packages that matter, GPUs (nvidia-smi) and the git commit of this checkout."""
from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

__all__ = ["machine_info", "cpu_model"]

_PACKAGES = {
    "numpy": ("numpy",),
    "numba": ("numba",),
    "torch": ("torch",),
    "opencv": ("opencv-contrib-python", "opencv-python", "opencv-python-headless",
               "opencv-contrib-python-headless"),
    "mediapipe": ("mediapipe",),
    "scikit-image": ("scikit-image",),
    "cupy": ("cupy-cuda12x", "cupy-cuda11x", "cupy"),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "torch-tensorrt": ("torch-tensorrt", "torch_tensorrt"),
    "dlib": ("dlib-bin", "dlib"),
}


def _version(dists: Sequence[str]) -> str | None:
    for d in dists:
        try:
            return metadata.version(d)
        except metadata.PackageNotFoundError:
            continue
    return None


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _ram_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 ** 2, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024 ** 3, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _run(cmd: Sequence[str], cwd: str | None = None, timeout: float = 5.0) -> str | None:
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def _gpu() -> list[dict] | None:
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                "--format=csv,noheader,nounits"])
    if not out:
        return None
    gpus = []
    for line in out.splitlines():
        f = [x.strip() for x in line.split(",")]
        if len(f) >= 3:
            try:
                mem = round(float(f[2]) / 1024, 1)
            except ValueError:
                mem = None
            gpus.append({"name": f[0], "driver": f[1], "memory_gb": mem})
    return gpus or None


def machine_info(repo: str | os.PathLike | None = None) -> dict:
    """What the numbers were measured on: ``{"cpu", "cores", "cores_usable", "ram_gb", "os",
    "python", "packages": {name: version | None}, "gpu": [{"name", "driver", "memory_gb"}] |
    None, "git_commit": str | None, "git_dirty": bool | None}``. `repo` defaults to the
    checkout this package lives in."""
    repo = str(repo) if repo is not None else str(Path(__file__).resolve().parent.parent)
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    commit = _run(["git", "rev-parse", "HEAD"], cwd=repo)
    dirty = None
    if commit:
        st = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo)
        dirty = None if st is None else bool(st)
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "ram_gb": _ram_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {k: _version(v) for k, v in _PACKAGES.items()},
        "gpu": _gpu(),
        "git_commit": commit,
        "git_dirty": dirty,
    }
