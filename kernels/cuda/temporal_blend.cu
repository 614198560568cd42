// CUDA twin of kernels/temporal_blend.py: the smoother's flow3d + warp + blend fused into one pass.
// One thread per pixel of the crop: a face pixel (triangle below face_end) inside the box
// [y0, y1) x [x0, x1) that flow3d finds visible at t-1 gets
//     out = render + a * (warp(prev) - render),  a = strength * exp(-r^2),
//     r = mean_c |warp(prev) - render| * inv_scale;
// every other pixel gets render. The motion and depth test are flow3d's (flow3d.cuh), the sample
// of prev the shared bilinear sampler (bilinear.cuh); arithmetic in the numba twin's order and
// types (built with --fmad=false).

#include "bilinear.cuh"
#include "flow3d.cuh"

// 2^e for an integer e in [-1022, 1023] (a normal float64).
__device__ __forceinline__ double pow2i(int e) { return __longlong_as_double((long long)(e + 1023) << 52); }

// exp(x) in plain float64 arithmetic, within a few ulp of the correctly rounded value (the numba
// twin calls libm's exp; CUDA's exp is built on fused multiply-adds, which these twins' PTX does
// not contain): x = k ln2 + r with |r| <= ln2 / 2 (Cody-Waite: ln2_hi has 32 significant bits, so
// k ln2_hi is exact), exp(r) by its Taylor series to r^13 (truncation < 1e-17 relative), times 2^k
// in two exact-or-once-rounded steps (so subnormal results come out right).
__device__ __forceinline__ double exp_plain(double x)
{
    if (!(x == x)) return x;  // NaN
    if (x > 710.0) return __longlong_as_double(0x7ff0000000000000LL);
    if (x < -746.0) return 0.0;
    const double k = floor(x * 1.4426950408889634 + 0.5);
    const double r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    double q = 1.6059043836821613e-10;  // 1/13!
    q = 2.08767569878681e-09 + r * q;
    q = 2.505210838544172e-08 + r * q;
    q = 2.755731922398589e-07 + r * q;
    q = 2.7557319223985893e-06 + r * q;
    q = 2.48015873015873e-05 + r * q;
    q = 0.0001984126984126984 + r * q;
    q = 0.001388888888888889 + r * q;
    q = 0.008333333333333333 + r * q;
    q = 0.041666666666666664 + r * q;
    q = 0.16666666666666666 + r * q;
    q = 0.5 + r * q;
    q = 1.0 + r * q;
    q = 1.0 + r * q;
    const int ki = (int)k;  // in [-1077, 1025]
    const int k1 = ki / 2;
    return q * pow2i(ki - k1) * pow2i(k1);
}

// tri_id (h*w), bary (h*w, 2): G-buffer at t; triangles (T, 3), the face below face_end (in
// [0, T]); verts_t, verts_prev (V, 3); depth_prev (h*w); render, prev (h*w, nc); out (h*w, nc),
// which must not overlap render or prev (the warped sample is staged in the pixel's out).
extern "C" __global__ void temporal_blend(const int* __restrict__ tri_id, const float* __restrict__ bary,
                                          const int* __restrict__ triangles, int n_tri, int face_end,
                                          const float* __restrict__ verts_t, const float* __restrict__ verts_prev,
                                          const float* __restrict__ depth_prev, int h, int w, double eps,
                                          const float* __restrict__ render, const float* __restrict__ prev, int nc,
                                          float strength, float inv_scale, int y0, int y1, int x0, int x1,
                                          float* __restrict__ out)
{
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= h * w) return;
    const int x = p % w;
    const int y = p / w;
    const float* rp = render + (long long)p * nc;
    float* o = out + (long long)p * nc;
    const int t = tri_id[p];
    if (y >= y0 && y < y1 && x >= x0 && x < x1 && t >= 0 && t < face_end && t < n_tri) {
        const SurfaceMotion m = surface_motion(bary, triangles, verts_t, verts_prev, p, t);
        if (visible_at_prev(depth_prev, h, w, x, y, m, eps)) {
            // warp(prev, flow) at this pixel, flow = (float)(-wx, -wy) as flow3d writes it: staged in o
            bilinear<float>(prev, h, w, nc, (float)x + (float)(-m.wx), (float)y + (float)(-m.wy), o);
            float d = 0.0f;
            for (int c = 0; c < nc; ++c) d += fabsf(o[c] - rp[c]);
            const double r = (double)d / (double)nc * (double)inv_scale;  // float64, as numba types it
            const double a = (double)strength * exp_plain(-r * r);
            for (int c = 0; c < nc; ++c) o[c] = (float)((double)rp[c] + a * (double)(o[c] - rp[c]));
            return;
        }
    }
    for (int c = 0; c < nc; ++c) o[c] = rp[c];
}
