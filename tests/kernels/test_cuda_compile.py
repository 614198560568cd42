"""The CUDA twins are complete and compile, without a GPU:

- every kernel with a CPU twin has ``kernels/cuda/<name>.cu`` and ``<name>.py``, and the
  dispatcher finds each twin for a cupy array without importing cupy;
- every ``.cu`` compiles with ``nvcc --ptx`` and the twins' NVRTC options (skipped when nvcc is not
  on the PATH), declares the kernels its PTX defines, and has no fused multiply-adds;
- the sampling kernels share one bilinear sampler (bilinear.cuh)."""
from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import kernels  # noqa: F401 - registers the CPU twins
from kernels import _dispatch
from kernels.cuda import _runtime

CUDA_DIR = _runtime.SOURCE_DIR
SOURCES = sorted(CUDA_DIR.glob("*.cu"))
CPU_KERNELS = sorted(k for k, mod in _dispatch.registered() if mod == "numpy")
#: The oldest virtual architecture we promise to run on (Turing).
ARCH = "compute_75"


def test_every_cpu_kernel_has_a_cuda_twin():
    assert len(CPU_KERNELS) >= 6
    for k in CPU_KERNELS:
        assert (CUDA_DIR / f"{k}.cu").is_file(), f"kernel {k} has no kernels/cuda/{k}.cu"
        assert (CUDA_DIR / f"{k}.py").is_file(), f"kernel {k} has no kernels/cuda/{k}.py"
    assert sorted(p.stem for p in SOURCES) == CPU_KERNELS, "a .cu file without a kernel"


class FakeCupyArray(np.ndarray):
    """A numpy array whose type claims to live in cupy (dispatch looks only at __module__)."""


FakeCupyArray.__module__ = "cupy._core.core"


def test_dispatcher_loads_every_twin_without_importing_cupy():
    had_cupy = "cupy" in sys.modules
    x = np.zeros(1).view(FakeCupyArray)
    for k in CPU_KERNELS:
        fn = _dispatch.lookup(k, x)
        assert fn is _dispatch.registered()[(k, "cupy")]
        assert fn.func is importlib.import_module(f"kernels.cuda.{k}").twin and fn.args == (_runtime.CUPY,)
    assert ("cupy" in sys.modules) == had_cupy


@pytest.fixture(scope="module")
def ptx(tmp_path_factory):
    """{source name: (returncode, stderr, ptx text)}, all sources compiled in parallel."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not on the PATH")
    tmp = tmp_path_factory.mktemp("ptx")

    def compile_one(src: Path):
        dst = tmp / f"{src.stem}.ptx"
        cmd = ["nvcc", "--ptx", *_runtime.OPTIONS, f"-arch={ARCH}", "-o", str(dst), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        return src.stem, (proc.returncode, proc.stderr, dst.read_text() if dst.exists() else "")

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(compile_one, SOURCES))


@pytest.mark.parametrize("src", SOURCES, ids=[p.stem for p in SOURCES])
def test_cu_compiles_to_ptx(ptx, src):
    rc, stderr, text = ptx[src.stem]
    assert rc == 0, f"nvcc --ptx {src.name} failed:\n{stderr}"
    kernels_in_ptx = set(re.findall(r"\.entry\s+(\w+)", text))
    kernels_in_src = set(re.findall(r'extern\s+"C"\s+__global__\s+void\s+(\w+)', src.read_text()))
    assert kernels_in_src and kernels_in_ptx == kernels_in_src
    # --fmad=false is what makes the float64 arithmetic round as in the numba twins
    assert "fma." not in text, f"{src.name}: PTX contains fused multiply-adds"


def test_every_sampling_kernel_uses_the_one_shared_sampler():
    """texture.cu, warp.cu and composite.cu sample through bilinear.cuh (compiled into each by
    the PTX test above), and none carries a copy of its own."""
    for n in ("texture", "warp", "composite"):
        text = (CUDA_DIR / f"{n}.cu").read_text()
        assert '#include "bilinear.cuh"' in text, n
        assert "void bilinear(" not in text, n
