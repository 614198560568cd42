"""CUDA twins vs numba twins on the same random inputs.

Each test runs the twin of `kernels.cuda.<name>` on one of three backends and compares it with
the numba twin, called with the same (twin-signature) arguments:

- ``emulated`` (always, needs only g++): every ``kernels/cuda/*.cu`` is compiled as plain C++
  with ``kernels/cuda/host_shim.h`` into a shared library whose launchers run a grid's threads
  one after the other; the twin's own host code runs unchanged on numpy arrays through an
  `EmulatedRuntime` that also checks every kernel argument against the C signature (dtype,
  contiguity, writability, exact scalar type), which a real launch would not.
- ``emulated-reversed``: the same with blocks and threads run in reverse order, so a kernel
  whose result depends on thread order (a race on a GPU) fails.
- ``emulated-ftz`` (x86-64 only): the same with the SSE flush-to-zero and denormals-are-zero
  modes on during each launch, as the twins run on a GPU (cupy appends -ftz=true to their
  NVRTC options): a twin whose result leans on float32 subnormals surviving fails here as it
  did there (rasterize's subnormal depth ties on an H200). Stricter than a GPU in one way: the
  SSE modes flush float64 subnormals too, which the GPU's -ftz does not.
- ``cuda`` (marked ``cuda``, skipped without cupy and a GPU): the twin registered for cupy.

Tolerances (the same on every backend; why in ``kernels/cuda/__init__.py``):
- rasterize: coverage identical; tri_id identical except <= 0.5 % of covered pixels, each on a
  triangle edge or a depth near-tie; bary / depth where tri_id agrees within 1e-5 relative.
- interpolate, texture, warp, flow3d's flow: |cuda - cpu| <= 1e-5 * max(1, max |cpu|).
- flow3d's visible: identical except <= 0.1 % of pixels.
- composite: uint8 values equal except <= 0.1 % of them, which differ by 1.
- atlas_blend: empty pixels exactly 0; |cuda - cpu| <= 1e-5 * max(1, max |cpu|) + 4 * S * ulp(U),
  U the largest uv coordinate, S the largest step between neighbouring pixels (the numba twin's
  FMA-contracted uv interpolation moves sample points by up to 2 ulp(U) per coordinate).
- temporal_blend: pixels outside the box or the face exactly `render`; elsewhere
  |cuda - cpu| <= 1e-5 * max(1, max |cpu|) except on <= 0.1 % of pixels (visibility near-ties).
- disclose: integer arithmetic: identical.
"""
from __future__ import annotations

import ctypes
import importlib
import platform
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import kernels
from kernels import GBuffer, _dispatch, mirrored_sigmoid_mask
from kernels.composite import _frame_roi
from kernels.cuda import _runtime

from .test_rasterize import face_mesh

CUDA_DIR = _runtime.SOURCE_DIR
SOURCES = sorted(p.stem for p in CUDA_DIR.glob("*.cu"))

REL = 1e-5  # float32 outputs, relative to the output's magnitude
MAX_TRI_ID_DIFF = 0.005  # fraction of covered pixels
MAX_FLAG_DIFF = 0.001  # fraction of visible flags / composite values


# ---------------------------------------------------------------------------------------------
# the emulated device
# ---------------------------------------------------------------------------------------------

_SIGNATURE = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)')
_POINTEE = {
    "float": np.float32,
    "double": np.float64,
    "int": np.int32,
    "long long": np.int64,
    "unsigned char": np.uint8,
    "signed char": np.int8,
    "unsigned long long": np.uint64,
}
_SCALAR = {"int": (np.int32, ctypes.c_int), "float": (np.float32, ctypes.c_float),
           "double": (np.float64, ctypes.c_double)}


def kernel_signatures(source: str) -> dict[str, list[tuple[str, str, bool, bool]]]:
    """{kernel: [(C parameter text, base type, is pointer, is const)]} of a .cu file."""
    code = re.sub(r"/\*.*?\*/", "", re.sub(r"//[^\n]*", "", source), flags=re.S)
    sigs = {}
    for name, params in _SIGNATURE.findall(code):
        out = []
        for p in (" ".join(s.split()) for s in params.split(",")):
            words = p[: re.search(r"\w+$", p).start()].replace("*", " * ").split()  # without the name
            base = " ".join(w for w in words if w not in ("const", "__restrict__", "*"))
            out.append((p, base, "*" in words, "const" in words))
        sigs[name] = out
    return sigs


# MXCSR: FTZ (bit 15) flushes subnormal results to zero, DAZ (bit 6) reads subnormal inputs as zero
_FLUSH_BITS = 0x8040
_CSR = """#if defined(__x86_64__)
#include <xmmintrin.h>
extern "C" unsigned shim_get_csr() { return _mm_getcsr(); }
extern "C" void shim_set_csr(unsigned v) { _mm_setcsr(v); }
#endif"""


def _launcher(cu: Path, sigs) -> str:
    lines = [f'#include "{cu}"', _CSR]
    for name, params in sigs.items():
        arg_names = [p[0].split()[-1] for p in params]
        lines.append(
            f'extern "C" void launch_{name}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, '
            f"unsigned bz, int reverse, {', '.join(p[0] for p in params)}) {{\n"
            f"    shim_launch(gx, gy, gz, bx, by, bz, reverse, {name}, {', '.join(arg_names)});\n}}"
        )
    return "\n".join(lines) + "\n"


class EmulatedRuntime:
    """`kernels.cuda._runtime.Runtime` on numpy arrays and the g++-built kernels."""

    xp = np

    def __init__(self, libs: dict, reverse: bool, flush: bool = False):
        self.libs = libs  # {source: {kernel: (ctypes function, signature)}}
        self.reverse = reverse
        self.flush = flush

    def launch(self, source, kernel, grid, block, args):
        fn, params = self.libs[source][kernel]
        assert len(args) == len(params), f"{kernel}: {len(args)} arguments for {len(params)} parameters"
        cargs = []
        for (decl, base, is_ptr, is_const), a in zip(params, args):
            if is_ptr:
                assert isinstance(a, np.ndarray), f"{kernel}({decl}): got {type(a).__name__}"
                assert a.dtype == _POINTEE[base], f"{kernel}({decl}): got dtype {a.dtype}"
                assert a.flags.c_contiguous, f"{kernel}({decl}): array is not C-contiguous"
                assert is_const or a.flags.writeable, f"{kernel}({decl}): output is read-only"
                cargs.append(a.ctypes.data)
            else:
                assert type(a) is _SCALAR[base][0], f"{kernel}({decl}): got {type(a).__name__} {a!r}"
                cargs.append(a.item())
        g = tuple(grid) + (1,) * (3 - len(grid))
        b = tuple(block) + (1,) * (3 - len(block))
        if not self.flush:
            fn(*g, *b, int(self.reverse), *cargs)
            return
        csr = self.libs[source]["__csr__"]
        old = csr.get()
        csr.set(old | _FLUSH_BITS)          # this thread only: the launch runs on it
        try:
            fn(*g, *b, int(self.reverse), *cargs)
        finally:
            csr.set(old)


@pytest.fixture(scope="module")
def emulated_libs(tmp_path_factory):
    """Every .cu built once with g++ and host_shim.h: {source: {kernel: (function, signature)}}."""
    if shutil.which("g++") is None:
        pytest.skip("g++ not on the PATH")
    tmp = tmp_path_factory.mktemp("emulated")

    def build(stem: str):
        cu = CUDA_DIR / f"{stem}.cu"
        sigs = kernel_signatures(cu.read_text())
        src = tmp / f"{stem}_launch.cpp"
        src.write_text(_launcher(cu, sigs))
        lib = tmp / f"{stem}.so"
        cmd = ["g++", "-std=c++14", "-O2", "-ffp-contract=off", "-shared", "-fPIC",
               "-include", str(CUDA_DIR / "host_shim.h"), "-o", str(lib), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        return stem, sigs, lib, proc

    with ThreadPoolExecutor(max_workers=2) as pool:
        built = list(pool.map(build, SOURCES))
    libs = {}
    for stem, sigs, lib, proc in built:
        assert proc.returncode == 0, f"g++ {stem}.cu with host_shim.h failed:\n{proc.stderr}"
        dll = ctypes.CDLL(str(lib))
        libs[stem] = {}
        for name, params in sigs.items():
            fn = getattr(dll, f"launch_{name}")
            fn.restype = None
            fn.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_int] + [
                ctypes.c_void_p if is_ptr else _SCALAR[base][1] for _, base, is_ptr, _ in params
            ]
            libs[stem][name] = (fn, params)
        if hasattr(dll, "shim_get_csr"):
            dll.shim_get_csr.restype = ctypes.c_uint
            dll.shim_set_csr.argtypes = [ctypes.c_uint]
            libs[stem]["__csr__"] = _Csr(dll.shim_get_csr, dll.shim_set_csr)
    return libs


class _Csr:
    """The SSE control/status register of the calling thread (x86-64 builds only)."""

    def __init__(self, get, set_):
        self.get, self.set = get, set_


class Backend:
    """Runs a CUDA twin: `put` / `get` move arrays, `run(kernel, *twin_args)` calls the twin."""

    def __init__(self, name: str, emulated_libs=None):
        self.name = name
        if name == "cuda":
            import cupy

            self.xp = cupy
            self._rt = None
        else:
            self.xp = np
            self._rt = EmulatedRuntime(emulated_libs, reverse=name.endswith("reversed"),
                                       flush=name.endswith("ftz"))

    def put(self, a):
        if isinstance(a, GBuffer):
            return GBuffer(self.put(a.tri_id), self.put(a.bary), self.put(a.depth))
        return self.xp.array(a)  # a copy: the twin must not see the CPU twin's arrays

    def get(self, a):
        if isinstance(a, GBuffer):
            return GBuffer(self.get(a.tri_id), self.get(a.bary), self.get(a.depth))
        if isinstance(a, tuple):
            return tuple(self.get(x) for x in a)
        return a.get() if self.name == "cuda" else np.asarray(a)

    def run(self, kernel: str, *args):
        mod = importlib.import_module(f"kernels.cuda.{kernel}")
        if self._rt is None:
            return _dispatch.registered()[(kernel, "cupy")](*args)
        return mod.twin(self._rt, *args)


@pytest.fixture(
    params=[
        "emulated",
        "emulated-reversed",
        pytest.param("emulated-ftz", marks=pytest.mark.skipif(
            platform.machine() not in ("x86_64", "AMD64"), reason="the flush modes are x86's MXCSR")),
        pytest.param(
            "cuda",
            marks=[pytest.mark.cuda,
                   pytest.mark.skipif(not _dispatch.cuda_available(), reason="needs cupy and an NVIDIA GPU")],
        ),
    ]
)
def backend(request) -> Backend:
    if request.param == "cuda":
        return Backend("cuda")
    return Backend(request.param, request.getfixturevalue("emulated_libs"))


def cpu(kernel: str, *args):
    return _dispatch.registered()[(kernel, "numpy")](*args)


def strided(xp, a):
    """A non-contiguous view (every other element of the last axis) equal to `a`."""
    big = xp.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


def dirty(xp, shape, dtype, contiguous=True):
    """An output array full of garbage (the twin must overwrite all of it)."""
    fill = 77 if np.dtype(dtype).kind in "iub" else np.nan
    a = np.full(shape, fill, dtype=dtype) if np.dtype(dtype) != np.bool_ else np.ones(shape, dtype=bool)
    return xp.array(a) if contiguous else strided(xp, xp.array(a))


# ---------------------------------------------------------------------------------------------
# comparisons
# ---------------------------------------------------------------------------------------------


def assert_close(got, ref, what):
    scale = max(1.0, float(np.nanmax(np.abs(np.where(np.isfinite(ref), ref, 0)), initial=0.0)))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"{what}: NaN positions")
    np.testing.assert_allclose(got, ref, rtol=0, atol=REL * scale, err_msg=what)


def assert_gbuffer_parity(got: GBuffer, ref: GBuffer):
    np.testing.assert_array_equal(got.tri_id >= 0, ref.tri_id >= 0, err_msg="coverage")
    cov = ref.tri_id >= 0
    diff = got.tri_id != ref.tri_id
    assert diff.sum() <= MAX_TRI_ID_DIFF * cov.sum(), f"{diff.sum()} of {cov.sum()} covered pixels differ in tri_id"
    if diff.any():
        pad = np.pad(ref.tri_id, 1, constant_values=-1)
        c = pad[1:-1, 1:-1]
        edge = (pad[:-2, 1:-1] != c) | (pad[2:, 1:-1] != c) | (pad[1:-1, :-2] != c) | (pad[1:-1, 2:] != c)
        with np.errstate(invalid="ignore"):  # inf - inf where a pixel is empty on both sides
            tie = np.abs(got.depth - ref.depth) <= REL * (1 + np.abs(ref.depth))
        assert np.all((edge | tie)[diff]), "tri_id differs away from edges and depth ties"
    same = ~diff
    np.testing.assert_allclose(got.depth[same], ref.depth[same], rtol=REL, atol=REL, err_msg="depth")
    np.testing.assert_allclose(got.bary[same], ref.bary[same], rtol=REL, atol=REL, err_msg="bary")
    assert np.all(got.bary[~cov] == 0) and np.all(got.depth[~cov] == np.inf)


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------


def triangle_soup(seed, h, w, n=300, flat=False):
    """Overlapping random triangles on the quarter-pixel grid (many centres on edges and
    vertices), duplicates in both windings (depth ties), and skipped ones (degenerate, NaN,
    beyond the fixed-point range). `flat`: every z is +-0 or +-the smallest float32 subnormal,
    so depths tie everywhere, and round to -0 inside some triangles and +0 in others (a tie)."""
    rng = np.random.default_rng(seed)
    xy = rng.integers(-8, 4 * (max(h, w) + 2), size=(n, 3, 2)) / 4.0
    xy[: n // 3] = xy[: n // 3, :1] + rng.integers(-24, 25, size=(n // 3, 3, 2)) / 4.0  # small ones
    if flat:
        tiny = float(np.finfo(np.float32).smallest_subnormal)
        z = rng.choice([-0.0, 0.0, -tiny, tiny], size=(n, 3))
    else:
        z = rng.normal(0, 5, size=(n, 3))
    v = np.concatenate([xy, z[..., None]], 2).reshape(-1, 3)
    t = np.arange(3 * n).reshape(n, 3)
    extra_v = np.array([[1, 1, 0], [9, 9, 0], [5, 5, 0], [np.nan, 2, 0], [7, 2, 0], [2, 7, 0], [3e7, 1, 0]])
    v = np.concatenate([v, extra_v]).astype(np.float32)
    base = 3 * n
    extra_t = [[base, base + 1, base + 2], [base + 3, base + 4, base + 5], [base + 6, base + 4, base + 5]]
    dup = t[rng.choice(n, size=n // 10, replace=False)]
    t = np.concatenate([t, dup, dup[:, ::-1], extra_t]).astype(np.int32)
    return v, t


def grid_layers(h, w):
    """A regular mesh on integer coordinates (horizontal, vertical and diagonal edges through
    pixel centres, shared edges and vertices everywhere) at z = 0; the same mesh again in the
    opposite winding at z = -0 (a tie at every pixel, which the first copy must win); and a
    shifted, tilted copy of part of it that cuts through the plane z = 0."""
    xs = np.arange(2.0, w - 1, 4.0)
    ys = np.arange(1.0, h - 1, 3.0)
    xx, yy = np.meshgrid(xs, ys)
    idx = np.arange(xx.size).reshape(xx.shape)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    t = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    n = xx.size
    layer = np.stack([xx.ravel(), yy.ravel(), np.zeros(n)], 1)
    again = layer.copy()
    again[:, 2] = -0.0
    tilted = layer + np.array([1.0, 2.0, 0.0])
    tilted[:, 2] = -1.0 + 0.05 * tilted[:, 0] - 0.02 * tilted[:, 1]
    v = np.concatenate([layer, again, tilted])
    t = np.concatenate([t, t[:, ::-1] + n, t[: len(t) // 3] + 2 * n])
    return v.astype(np.float32), t.astype(np.int32)


RASTER_CASES = {
    "grid": lambda: (*grid_layers(40, 50), 40, 50),
    "face-256": lambda: (*face_mesh(), 256, 256),
    "soup": lambda: (*triangle_soup(1, 72, 90), 72, 90),
    "soup-flat": lambda: (*triangle_soup(2, 64, 64, flat=True), 64, 64),
    "empty": lambda: (np.zeros((3, 3), np.float32), np.zeros((0, 3), np.int32), 5, 7),
}


# ---------------------------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(RASTER_CASES))
def test_rasterize(backend, case):
    v, t, h, w = RASTER_CASES[case]()
    ref = cpu("rasterize", v, t, h, w, GBuffer.empty(h, w))
    xp = backend.xp
    out = GBuffer(dirty(xp, (h, w), np.int32), dirty(xp, (h, w, 2), np.float32, contiguous=False),
                  dirty(xp, (h, w), np.float32))
    res = backend.run("rasterize", strided(xp, xp.array(v)), strided(xp, xp.array(t)), h, w, out)
    assert res is out
    got = backend.get(out)
    if case != "empty":
        assert (ref.tri_id >= 0).mean() > 0.4
    assert_gbuffer_parity(got, ref)
    if case == "soup-flat":
        # subnormal depths and their rounding: bit for bit where the same triangle won
        same = got.tri_id == ref.tri_id
        np.testing.assert_array_equal(got.depth[same].view(np.uint32), ref.depth[same].view(np.uint32))
        np.testing.assert_array_equal(got.bary[same].view(np.uint32), ref.bary[same].view(np.uint32))


@pytest.mark.parametrize("nc", [1, 3, 5])
def test_interpolate(backend, nc):
    v, t = face_mesh(n=200, seed=nc, size=96)
    g = kernels.rasterize(v, t, 96, 96)
    g.tri_id[::7, ::5] = np.where(g.tri_id[::7, ::5] >= 0, len(t) + 3, -1)  # defensive: invalid ids
    attr = np.random.default_rng(nc).normal(0, 100, size=(len(v), nc)).astype(np.float32)
    ref = cpu("interpolate", g, t, attr, np.empty((96, 96, nc), np.float32))
    xp = backend.xp
    gd = GBuffer(backend.put(g.tri_id), strided(xp, xp.array(g.bary)), backend.put(g.depth))
    out = dirty(xp, (96, 96, nc), np.float32, contiguous=nc != 3)
    res = backend.run("interpolate", gd, backend.put(t), strided(xp, xp.array(attr)), out)
    assert res is out
    assert_close(backend.get(out), ref, "interpolate")


def sample_coords(rng, shape, h, w):
    """(x, y) source coordinates: mostly continuous across and beyond the image, plus integer,
    half-pixel and NaN ones."""
    c = np.stack([rng.uniform(-4, w + 3, shape), rng.uniform(-4, h + 3, shape)], -1)
    kind = rng.random(shape)
    c[kind < 0.1] = np.round(c[kind < 0.1])
    c[(kind >= 0.1) & (kind < 0.15)] = np.round(c[(kind >= 0.1) & (kind < 0.15)]) + 0.5
    c[(kind >= 0.15) & (kind < 0.17), 0] = np.nan
    return c.astype(np.float32)


def random_image(rng, shape, dtype):
    if dtype == np.uint8:
        return rng.integers(0, 256, size=shape).astype(np.uint8)
    return rng.normal(0, 3, size=shape).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=["u8", "f32"])
@pytest.mark.parametrize("nc", [1, 3, 4])
@pytest.mark.parametrize("mask_kind", [None, "bool", "uint8"])
def test_texture(backend, dtype, nc, mask_kind):
    rng = np.random.default_rng(nc + 10 * (dtype == np.uint8))
    image = random_image(rng, (37, 53, nc), dtype)
    coords = sample_coords(rng, (40, 45), 37, 53)
    mask = None
    if mask_kind is not None:
        mask = rng.random((40, 45)) < 0.7
        if mask_kind == "uint8":  # any nonzero value means "sample"
            mask = (mask * rng.integers(1, 256, size=mask.shape)).astype(np.uint8)
    ref = cpu("texture", image, coords, mask, np.empty((40, 45, nc), np.float32))
    xp = backend.xp
    out = dirty(xp, (40, 45, nc), np.float32, contiguous=mask_kind != "bool")
    md = None if mask is None else strided(xp, xp.array(mask))
    res = backend.run("texture", strided(xp, xp.array(image)), backend.put(coords), md, out)
    assert res is out
    assert_close(backend.get(out), ref, "texture")


@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=["u8", "f32"])
@pytest.mark.parametrize("nc", [1, 3])
def test_warp(backend, dtype, nc):
    rng = np.random.default_rng(nc + 5)
    image = random_image(rng, (48, 64, nc), dtype)
    flow = rng.normal(0, 6, size=(48, 64, 2)).astype(np.float32)
    whole = rng.random((48, 64)) < 0.1
    flow[whole] = np.round(flow[whole])
    flow[rng.random((48, 64)) < 0.02, 1] = np.nan
    ref = cpu("warp", image, flow, np.empty((48, 64, nc), np.float32))
    xp = backend.xp
    out = dirty(xp, (48, 64, nc), np.float32, contiguous=nc == 1)
    res = backend.run("warp", backend.put(image), strided(xp, xp.array(flow)), out)
    assert res is out
    assert_close(backend.get(out), ref, "warp")


@pytest.mark.parametrize("eps", [0.5, 0.02])
def test_flow3d(backend, eps):
    rng = np.random.default_rng(7)
    vt, t = face_mesh(n=300, seed=4, size=128)
    # previous frame: a small rotation and shift plus per-vertex noise; parts fold over
    c = vt[:, :2].mean(0)
    th = 0.08
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    vp = vt.copy()
    vp[:, :2] = (vt[:, :2] - c) @ rot.T + c + np.array([3.0, -2.0]) + rng.normal(0, 1.5, size=(len(vt), 2))
    vp[:, 2] += rng.normal(0, 2, size=len(vt))
    vp = vp.astype(np.float32)
    g = kernels.rasterize(vt, t, 128, 128)
    depth_prev = kernels.rasterize(vp, t, 128, 128).depth
    ref = cpu("flow3d", g, t, vt, vp, depth_prev, eps, np.empty((128, 128, 2), np.float32), np.empty((128, 128), bool))
    assert 0.1 < ref[1].mean() < (g.tri_id >= 0).mean()  # some pixels visible, some hidden
    xp = backend.xp
    flow = dirty(xp, (128, 128, 2), np.float32, contiguous=eps > 0.1)
    vis = dirty(xp, (128, 128), np.bool_)
    res = backend.run("flow3d", backend.put(g), backend.put(t), strided(xp, xp.array(vt)), backend.put(vp),
                      backend.put(depth_prev), eps, flow, vis)
    assert res[0] is flow and res[1] is vis
    got_flow, got_vis = backend.get((flow, vis))
    assert (got_vis != ref[1]).sum() <= MAX_FLAG_DIFF * got_vis.size
    both = got_vis & ref[1]
    assert_close(got_flow[both], ref[0][both], "flow")
    assert np.all(got_flow[~got_vis] == 0)


def affine(theta, scale, tx, ty):
    c, s = np.cos(theta) * scale, np.sin(theta) * scale
    return np.array([[c, -s, tx], [s, c, ty]], np.float64)


COMPOSITE_CASES = {
    "rotated": (affine(0.3, 0.8, 5.0, -20.0), "sigmoid", "copy"),
    "in-place": (affine(-0.5, 1.3, -30.0, 12.0), "random", "in-place"),
    "strided-out": (affine(0.1, 0.5, 10.0, 0.0), "random", "strided"),
    "identity": (affine(0.0, 1.0, -40.0, -30.0), "sigmoid", "copy"),
    "outside": (affine(0.0, 1.0, 500.0, 0.0), "random", "copy"),
}


@pytest.mark.parametrize("case", list(COMPOSITE_CASES))
def test_composite(backend, case):
    a, mask_kind, out_kind = COMPOSITE_CASES[case]
    rng = np.random.default_rng(len(case))
    h, w, fh, fw = 40, 40, 90, 120
    crop = rng.uniform(0, 255, size=(h, w, 3)).astype(np.float32)
    frame = rng.integers(0, 256, size=(fh, fw, 3)).astype(np.uint8)
    mask = (mirrored_sigmoid_mask(h) if mask_kind == "sigmoid"
            else rng.uniform(-0.2, 1.2, size=(h, w)).astype(np.float32))
    roi = _frame_roi(a, h, w, fh, fw)
    ref = cpu("composite", crop, frame, a, mask, roi, True, np.empty_like(frame))
    xp = backend.xp
    frame_d = backend.put(frame)
    if out_kind == "in-place":
        out, copy = frame_d, False
    else:
        out, copy = dirty(xp, (fh, fw, 3), np.uint8, contiguous=out_kind != "strided"), True
    res = backend.run("composite", strided(xp, xp.array(crop)), frame_d, a, backend.put(mask), roi, copy, out)
    assert res is out
    got = backend.get(out)
    d = np.abs(got.astype(np.int16) - ref.astype(np.int16))
    assert d.max() <= 1 and (d > 0).sum() <= MAX_FLAG_DIFF * d.size
    if case != "outside":
        assert (ref != frame).mean() > 0.05  # the crop landed
    if out_kind != "in-place":
        np.testing.assert_array_equal(backend.get(frame_d), frame)  # the frame itself untouched


def atlas_inputs(seed, ref_dtype, n_keys=3, size=96):
    """A rasterised face mesh whose last quarter of triangles is the head layer; a reference
    image and N = 5 square keyframe crops with per-vertex coordinates that follow the mesh (scaled,
    shifted, jittered, some beyond the image border); region alphas (mouth, eyes, edge) that are
    0 on most vertices and sum to <= 1; `n_keys` weighted keyframes, some weights 0 or tiny."""
    rng = np.random.default_rng(seed)
    v, t = face_mesh(n=300, seed=seed, size=size)
    g = kernels.rasterize(v, t, size, size)
    nv = len(v)
    head_start = len(t) - len(t) // 4
    rh, rw, a, n = 70, 83, 64, 5
    c = v[:, :2].mean(0)

    def uv_into(hh, ww):
        s = rng.uniform(0.6, 1.1) * min(hh, ww) / size
        uv = (v[:, :2] - c) * s + np.array([ww / 2, hh / 2]) + rng.normal(0, 1.5, size=(nv, 2))
        return uv.astype(np.float32)

    ref_uv = uv_into(rh, rw)
    ref_image = random_image(rng, (rh, rw, 3), ref_dtype)
    key_uv = np.stack([uv_into(a, a) for _ in range(n)])
    key_images = rng.integers(0, 256, size=(n, a, a, 3)).astype(np.uint8)
    keys = rng.choice(n, size=n_keys, replace=False).astype(np.int64)
    weights = rng.dirichlet(np.ones(max(n_keys, 1)), size=3).T[:n_keys].astype(np.float32)
    if n_keys:
        weights[0, 1] = 0.0  # no mouth weight: skipped where only the mouth counts
        weights[-1, 2] = 5e-5  # below the 1e-4 cut-off
    alpha = rng.dirichlet(np.ones(4), size=nv)[:, :3]
    alpha[rng.random((nv, 3)) < 0.6] = 0.0  # most vertices belong to no region
    alpha = alpha.astype(np.float32)
    return g, t, head_start, ref_uv, ref_image, keys, key_uv, key_images, weights, alpha


ATLAS_CASES = {
    # (seed, reference image dtype, keys, head_start: None = the inputs', out contiguous)
    "u8": (1, np.uint8, 3, None, True),
    "f32-strided-out": (2, np.float32, 3, None, False),
    "one-key": (3, np.uint8, 1, None, True),
    "no-keys": (4, np.float32, 0, None, True),
    "all-head": (5, np.uint8, 2, -7, True),
    "no-head": (6, np.uint8, 5, 10**12, False),
}


@pytest.mark.parametrize("case", list(ATLAS_CASES))
def test_atlas_blend(backend, case):
    seed, ref_dtype, n_keys, head, contiguous = ATLAS_CASES[case]
    g, t, head_start, ref_uv, ref_image, keys, key_uv, key_images, weights, alpha = atlas_inputs(
        seed, ref_dtype, n_keys)
    if head is not None:
        head_start = head
    hh, ww = g.tri_id.shape
    args = (t, head_start, ref_uv, ref_image, keys, key_uv, key_images, weights, alpha)
    ref = cpu("atlas_blend", g, *args, np.empty((hh, ww, 3), np.float32))
    cov = g.tri_id >= 0
    assert cov.mean() > 0.4 and np.all(ref[~cov] == 0)
    xp = backend.xp
    gd = GBuffer(backend.put(g.tri_id), strided(xp, xp.array(g.bary)), backend.put(g.depth))
    out = dirty(xp, (hh, ww, 3), np.float32, contiguous=contiguous)
    res = backend.run("atlas_blend", gd, backend.put(t), head_start, strided(xp, xp.array(ref_uv)),
                      backend.put(ref_image), backend.put(keys), strided(xp, xp.array(key_uv)),
                      backend.put(key_images), strided(xp, xp.array(weights)), backend.put(alpha), out)
    assert res is out
    got = backend.get(out)
    np.testing.assert_array_equal(got[~cov], 0)
    # the numba twin's float32 uv interpolation is FMA-contracted on a CPU with FMA: its sample
    # points sit up to 2 ulp(U) from the CUDA twin's in each coordinate (U: the largest
    # coordinate), which moves a sample by up to (|du| + |dv|) * (largest step between pixels)
    u_max = float(max(np.abs(ref_uv).max(), np.abs(key_uv).max()))
    step = float(max(np.ptp(ref_image), np.ptp(key_images)))
    atol = REL * max(1.0, float(np.abs(ref).max())) + 4 * step * float(np.spacing(np.float32(u_max)))
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol, err_msg="atlas_blend")


def smooth_image(rng, h, w, nc, shift=(0.0, 0.0)):
    """A smooth random colour field (a sum of sinusoids) around 128, shifted by `shift` (x, y)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = x - shift[0], y - shift[1]
    img = np.full((h, w, nc), 128.0)
    for _ in range(4):
        fx, fy = rng.normal(0, 0.08, 2)
        img += rng.uniform(10, 30, nc) * np.sin((fx * x + fy * y)[..., None] + rng.uniform(0, 6.3, nc))
    return img.astype(np.float32)


def temporal_inputs(seed, nc, size=128):
    """flow3d's scene (a face mesh at t-1 and, rotated, shifted and jittered, at t; parts fold
    over), its last quarter of triangles the head layer; `render` a smooth image, `prev` the same
    image moved back with the mesh, plus noise (so the blend weight spans 0..strength)."""
    rng = np.random.default_rng(seed)
    vt, t = face_mesh(n=300, seed=seed, size=size)
    c = vt[:, :2].mean(0)
    th = 0.05
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    vp = vt.copy()
    vp[:, :2] = (vt[:, :2] - c) @ rot.T + c + np.array([2.0, -1.5]) + rng.normal(0, 1.0, size=(len(vt), 2))
    vp[:, 2] += rng.normal(0, 2, size=len(vt))
    vp = vp.astype(np.float32)
    g = kernels.rasterize(vt, t, size, size)
    depth_prev = kernels.rasterize(vp, t, size, size).depth
    render = smooth_image(np.random.default_rng(seed + 100), size, size, nc)
    prev = smooth_image(np.random.default_rng(seed + 100), size, size, nc, shift=(2.0, -1.5))
    prev += rng.normal(0, 3.0, size=prev.shape).astype(np.float32)
    face_end = len(t) - len(t) // 4
    return g, t, face_end, vt, vp, depth_prev, render, prev


TEMPORAL_CASES = {
    # (seed, channels, box, depth_eps, out: "contiguous" / "strided" / "render" (in place))
    "rgb": (1, 3, None, 0.5, "contiguous"),
    "box-strided-out": (2, 3, (20, 90, 35, 110), 0.5, "strided"),
    "one-channel-tight-eps": (3, 1, None, 0.02, "contiguous"),
    "four-channels-in-place": (4, 4, (0, 128, 10, 64), 0.5, "render"),
    "empty-box": (5, 3, (60, 60, 0, 128), 0.5, "contiguous"),
}


@pytest.mark.parametrize("case", list(TEMPORAL_CASES))
def test_temporal_blend(backend, case):
    seed, nc, box, eps, out_kind = TEMPORAL_CASES[case]
    g, t, face_end, vt, vp, depth_prev, render, prev = temporal_inputs(seed, nc)
    hh, ww = g.tri_id.shape
    box = (0, hh, 0, ww) if box is None else box
    strength, inv_scale = 0.6, 0.1
    args = (vt, vp, depth_prev, render, prev, strength, inv_scale, box, eps)
    ref = cpu("temporal_blend", g, t, face_end, *args, np.empty((hh, ww, nc), np.float32))
    y0, y1, x0, x1 = box
    inside = np.zeros((hh, ww), bool)
    inside[y0:y1, x0:x1] = True
    blended = (ref != render).any(axis=2)
    assert not blended[~inside].any()
    if case != "empty-box":
        change = np.abs(ref - render).max(axis=2)[blended]
        assert blended.mean() > 0.1 and change.max() > 1.0  # a real blend
    xp = backend.xp
    render_d = backend.put(render)
    if out_kind == "render":
        out = render_d
    else:
        out = dirty(xp, (hh, ww, nc), np.float32, contiguous=out_kind == "contiguous")
    res = backend.run("temporal_blend", backend.put(g), strided(xp, xp.array(t)), face_end,
                      strided(xp, xp.array(vt)), backend.put(vp), backend.put(depth_prev), render_d,
                      strided(xp, xp.array(prev)), strength, inv_scale, box, eps, out)
    assert res is out
    got = backend.get(out)
    face = (g.tri_id >= 0) & (g.tri_id < face_end)
    np.testing.assert_array_equal(got[~(inside & face)], render[~(inside & face)])  # render, exactly
    # a pixel whose float64 depth test is a near-tie may come out visible on one side only (the
    # numba pass is FMA-contracted); everywhere else the float32 results agree to rounding
    d = np.abs(got - ref).max(axis=2)
    bad = d > REL * max(1.0, float(np.abs(ref).max()))
    assert bad.sum() <= MAX_FLAG_DIFF * bad.size, f"{bad.sum()} pixels differ beyond rounding"


def test_fused_twins_share_the_device_code():
    """atlas_blend.cu and temporal_blend.cu sample through bilinear.cuh, and temporal_blend.cu
    takes flow3d's surface motion and depth test from flow3d.cuh, as flow3d.cu does: no copies.
    (The sampling kernels' version of this check is in test_cuda_compile.py.)"""
    text = {n: (CUDA_DIR / f"{n}.cu").read_text() for n in ("atlas_blend", "temporal_blend", "flow3d")}
    for n in ("atlas_blend", "temporal_blend"):
        assert '#include "bilinear.cuh"' in text[n] and "void bilinear(" not in text[n], n
    for n in ("temporal_blend", "flow3d"):
        assert '#include "flow3d.cuh"' in text[n], n
        assert "depth_at(const" not in text[n] and "surface_motion(const" not in text[n], n


DISCLOSE_CASES = {
    # (mark, label, origin, out: "new" / "in-place" / "strided", image contiguous)
    "both-in-place": (True, True, (3, 50), "in-place", True),
    "mark-only-new": (True, False, (0, 0), "new", True),
    "label-only-strided-out": (False, True, (40, 0), "strided", True),
    "label-corner-strided-image": (True, True, (57, 97), "new", False),
    "neither": (False, False, (0, 0), "new", True),
}


@pytest.mark.parametrize("case", list(DISCLOSE_CASES))
def test_disclose(backend, case):
    use_mark, use_label, origin, out_kind, contiguous = DISCLOSE_CASES[case]
    rng = np.random.default_rng(len(case))
    h, w = 61, 103
    image = rng.integers(0, 256, size=(h, w, 3)).astype(np.uint8)
    image[:5] = 255  # saturation at both ends
    image[5:10] = 0
    mark = rng.integers(-128, 128, size=(h, w)).astype(np.int8) if use_mark else None
    label = None
    if use_label:
        label = rng.integers(0, 256, size=(4, 6, 4)).astype(np.uint8)
        label[0, :, 3] = 0
        label[1, :, 3] = 255
    ref = cpu("disclose", image, mark, label, origin, np.empty_like(image))
    xp = backend.xp
    img_d = backend.put(image) if contiguous else strided(xp, xp.array(image))
    if out_kind == "in-place":
        out = img_d
    else:
        out = dirty(xp, (h, w, 3), np.uint8, contiguous=out_kind != "strided")
    res = backend.run("disclose", img_d, None if mark is None else strided(xp, xp.array(mark)),
                      None if label is None else backend.put(label), origin, out)
    assert res is out
    np.testing.assert_array_equal(backend.get(out), ref)
    if out_kind != "in-place":
        np.testing.assert_array_equal(backend.get(img_d), image)  # the image itself untouched
