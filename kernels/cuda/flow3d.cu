// CUDA twin of kernels/flow3d.py: dense t -> t-1 flow and visibility (UniFaceGAN eq. 11-16).
// One thread per pixel; float64 arithmetic in the numba twin's order (built with --fmad=false),
// so flow and visibility are bit-identical to it. The per-pixel motion and depth test live in
// flow3d.cuh, shared with temporal_blend.cu.

#include "flow3d.cuh"

// tri_id (h*w), bary (h*w, 2): G-buffer at t; triangles (T, 3); verts_t, verts_prev (V, 3);
// depth_prev (h*w); outputs flow (h*w, 2) and visible (h*w) as 0/1 bytes.
extern "C" __global__ void flow3d(const int* __restrict__ tri_id, const float* __restrict__ bary,
                                  const int* __restrict__ triangles, int n_tri,
                                  const float* __restrict__ verts_t, const float* __restrict__ verts_prev,
                                  const float* __restrict__ depth_prev, int h, int w, double eps,
                                  float* __restrict__ flow, unsigned char* __restrict__ visible)
{
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= h * w) return;
    float fx = 0.0f;
    float fy = 0.0f;
    unsigned char vis = 0;
    const int t = tri_id[p];
    if (t >= 0 && t < n_tri) {
        const SurfaceMotion m = surface_motion(bary, triangles, verts_t, verts_prev, p, t);
        if (visible_at_prev(depth_prev, h, w, p % w, p / w, m, eps)) {
            vis = 1;
            fx = (float)(-m.wx);
            fy = (float)(-m.wy);
        }
    }
    flow[2 * p] = fx;
    flow[2 * p + 1] = fy;
    visible[p] = vis;
}
