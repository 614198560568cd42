"""CUDA twins of the kernels (DESIGN.md §4), one pair of files per kernel:
``<name>.cu`` (plain CUDA C++, ``extern "C" __global__`` kernels, no headers) and ``<name>.py``
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
"""
