"""Image-space kernels of the puppeteering engine (DESIGN.md §4).

Kernels (one public function each, with two twins: numba on the CPU, and CUDA in
``kernels/cuda/<name>.cu`` loaded by ``kernels/cuda/<name>.py`` for cupy arrays; the public
function validates its inputs once and dispatches on the array module of its first array
argument via `kernels._dispatch`):

- ``rasterize(vertices, triangles, height, width, out=None) -> GBuffer``
  triangles in pixel space -> per-pixel tri_id / barycentrics / depth; nearest surface wins,
  exact fixed-point (1/256 px) edge functions with the top-left fill rule, both windings drawn.
- ``interpolate(gbuf, triangles, attributes, out=None) -> (H, W, C) float32``
  barycentric interpolation of per-vertex attributes; 0 on empty pixels.
- ``texture(image, coords, mask=None, out=None) -> (H, W, C) float32``
  bilinear lookup at per-pixel source coordinates, border clamped; masked-out pixels 0/skipped.
- ``warp(image, flow, out=None) -> (H, W, C) float32``
  backward warp: out[y, x] = image(x + flow_x, y + flow_y), bilinear, border clamped.
- ``flow3d(gbuf_t, triangles, verts_t, verts_prev, depth_prev, depth_eps=0.5, out=None)
  -> (flow (H, W, 2) float32, visible (H, W) bool)``
  UniFaceGAN eq. 11-16; flow is the offset from a pixel at t to the same surface point at t-1,
  so ``warp(prev_image, flow)`` aligns t-1 to t (valid where visible).
- ``composite(crop, frame, frame_to_crop, mask, out=None) -> (H, W, 3) uint8``
  AP-GAN eq. 13 paste-back through an affine; ``out`` may be ``frame`` (in place).
  Helpers: ``mirrored_sigmoid_mask(size, alpha=0.08, gamma=0.7)`` (AP-GAN eq. 12) and
  ``feather_mask(coverage, radius_px)``.

Fused kernels of the stages (one pass where composing the kernels above would cost several):

- ``atlas_blend(gbuf, triangles, head_start, ref_uv, ref_image, keys, key_uv, key_images,
  weights, alpha, out=None) -> (H, W, 3) float32``: the atlas tier's blend of keyframe views.
- ``temporal_blend(gbuf, triangles, face_end, verts_t, verts_prev, depth_prev, render, prev,
  strength, inv_scale, box=None, depth_eps=0.5, out=None) -> (H, W, C) float32``: the
  smoother's flow3d + warp + blend on the face pixels.
- ``swap_blend(frame, render, alpha, fan, low, frame_to_crop, colour=None, occlusion=..., box=None, out=None)
  -> (H, W, 3) uint8``: the face swap's paste-back (colour-mapped and re-lit crop, soft mask, the
  driver's own mouth and eye openings, occluders kept); pixels outside the mask are the frame's,
  exactly. ``colour`` is an (N, N, N, 3) float32 table over sRGB (N ≥ 2, trilinear, the end cells
  extended beyond 0..255; ``from kernels.swap_blend import affine_table`` makes an affine
  map's); None: the identity.
- ``disclose(image, mark=None, label=None, origin=(0, 0), out=None) -> (H, W, 3) uint8``: the
  output frame's visible label (an RGBA sprite blended at origin) and invisible provenance mark
  (int8 luminance offsets added to every channel, saturating); ``out`` may be ``image``.

Conventions shared by every kernel and twin:

- Pixel (x, y) has its centre at integer coordinates (x, y) (OpenCV's convention); images are
  indexed [row y, column x, channel]; point/flow/coordinate pairs are ordered (x, y).
- Depth: smaller z is nearer the camera; empty depth is +inf.
- ``GBuffer.bary[..., 0]``, ``[..., 1]`` are the weights of a triangle's 2nd and 3rd vertices;
  the first vertex's weight is 1 - b0 - b1. ``tri_id`` is -1 where nothing was drawn.
- Bilinear sampling (texture, warp, composite) uses one shared numba helper
  (`kernels._sampling.bilinear_into`), clamps coordinates to the border and is exact at integer
  coordinates.
- Float outputs are float32; images may be uint8 (0..255) or float32 (any range) on input.
- Bad inputs raise ValueError (shape / value) or TypeError (dtype / type) naming the argument,
  the expected and the received shape/dtype. An ``out`` array is always fully overwritten and
  must match shape, dtype and array module.

CPU threading: the numba twins are ``parallel=True`` and use numba's thread pool
(``numba.set_num_threads(n)`` limits it per calling thread). The calls are short (~0.2-0.6 ms at
256²): on a machine whose cores are busy with other work, a statically split loop stalls for a
scheduler time slice waiting for its second thread. Importing this package therefore makes the
`tbb` wheel's library visible to numba (`kernels._threading`), whose TBB layer lets the calling
thread take the work its helper has not started; without it (OpenMP) one thread is steadier on
2 cores (`realtime.engine.loop.set_kernel_threads` decides).
"""
from ._dispatch import register
from ._threading import work_stealing  # first use of numba's threads is after this import: TBB loaded
from .atlas_blend import atlas_blend
from .composite import composite, feather_mask, mirrored_sigmoid_mask
from .disclose import disclose
from .flow3d import flow3d
from .gbuffer import GBuffer
from .interpolate import interpolate
from .rasterize import rasterize
from .swap_blend import swap_blend
from .temporal_blend import temporal_blend
from .texture import texture
from .warp import warp

__all__ = [
    "GBuffer",
    "rasterize",
    "interpolate",
    "texture",
    "warp",
    "flow3d",
    "composite",
    "atlas_blend",
    "temporal_blend",
    "swap_blend",
    "disclose",
    "mirrored_sigmoid_mask",
    "feather_mask",
    "register",
    "work_stealing",
]
