"""CUDA twins of the kernels (DESIGN.md §4), one pair of files per kernel:
``<name>.cu`` (plain CUDA C++, ``extern "C" __global__`` kernels; the only headers are the
shared device code ``bilinear.cuh`` and ``flow3d.cuh``) and ``<name>.py``
(the host side, registered with ``kernels._dispatch.register(<name>, "cupy", ...)``).

Loading: nothing here imports cupy. The dispatcher imports ``kernels.cuda.<name>`` the first time
a cupy array reaches that kernel; the twin compiles its ``.cu`` with ``cupy.RawModule`` (NVRTC,
options `_runtime.OPTIONS`: ``-std=c++14 --fmad=false``) on its first call, once per device, and
cupy caches the binary on disk. Each twin takes the same arguments as the numba twin (see
``kernels/_dispatch.py``), copies non-contiguous inputs with ``cupy.ascontiguousarray``, and
fully overwrites ``out`` (through a contiguous scratch array when ``out`` is a strided view).
The host code of every twin is written against `_runtime.Runtime`, so the parity tests can run it
unchanged on an emulated device (``host_shim.h``: the ``.cu`` files compiled by g++ as C++).

Agreement with the numba twins (what tests/kernels/test_cuda_parity.py asserts):

- ``rasterize``: coverage is decided by the same exact fixed-point (1/256 px) edge functions and
  top-left rule, so it is identical. Depth resolution is order-free: every covered pixel takes
  an ``atomicMin`` of ((order-preserving float32 depth bits) << 32 | triangle index), i.e. the
  nearest surface wins and ties go to the lower triangle index, which is the numba twin's rule
  (visit in index order, replace on strictly nearer). Depth, bary are evaluated in float64 in the
  numba twin's order without FMA contraction, so tri_id / bary / depth come out bit-identical.
  tri_id could differ only where the two sides round a depth differently, which makes two
  surfaces' depths tie on one side and not on the other: with FMA contraction enabled (e.g. a
  build without ``--fmad=false``) that happens at pixels where overlapping triangles have
  (nearly) equal depth, typically along shared or intersecting edges. The parity test therefore
  allows up to 0.5 % of covered pixels to differ in tri_id, each an edge pixel or a depth
  near-tie; coverage must match exactly.
- ``interpolate``, ``flow3d``: float64 arithmetic in the same order, no contraction:
  bit-identical in practice; asserted to 1e-5 relative (``visible`` to <= 0.1 % of pixels).
- ``texture``, ``warp``, ``composite``: one bilinear sampler (``bilinear.cuh``, the CUDA
  version of ``kernels/_sampling.py``)
  (border clamp, exact at integer coordinates). The numba samplers are compiled with fastmath
  ``contract``, so on a CPU with FMA they may round the last bit differently: float32 outputs
  agree to 1e-5 relative; composite's uint8 output may differ by 1 on <= 0.1 % of values.
- ``atlas_blend``: float32 in the numba twin's order, sampled by ``bilinear.cuh``. The numba twin
  is compiled with fastmath ``contract``, so on a CPU with FMA its barycentric interpolation of
  each sample point (u, v) rounds differently: the points sit up to 2 ulp of the largest
  coordinate U from the CUDA twin's (measured), which moves a bilinear sample by up to that
  times the largest step S between neighbouring pixels (S = 255 for uint8 images, where one ulp
  at U = 64 is ~2e-3, about the 1e-5 relative bound). Asserted:
  |cuda - cpu| <= 1e-5 * max(1, max |cpu|) + 4 * S * ulp(U); empty pixels exactly 0. (A weight
  within an ulp of the 1e-4 cut-off could be skipped on one side only; not seen in the tests.)
- ``temporal_blend``: flow3d's motion and depth test (``flow3d.cuh``, float64), the warp sample
  (``bilinear.cuh``) and the blend in the numba twin's types and order (r and the weight in
  float64; exp in plain float64 arithmetic, within 3e-16 relative of libm's, as CUDA's exp uses
  FMAs). The numba pass is fastmath ``contract`` (its inlined flow3d helpers too), so a float64
  depth near-tie may pass the visibility test on one side only. Asserted: pixels outside the box
  or the face are exactly ``render``; the rest agree to 1e-5 * max(1, max |cpu|) except
  <= 0.1 % of pixels (observed: none).

The emulated twins (g++ -ffp-contract=off) and the GPU twins do the same IEEE operations without
contraction or flush-to-zero, so they are expected to agree bit for bit and every difference
above to come from the numba side (the tests do not rely on it).
"""
