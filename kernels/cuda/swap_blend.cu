// CUDA twin of kernels/swap_blend.py: the face swap's paste-back. One thread per pixel of the
// frame box (x0, y0, nx, ny) that bounds the mapped crop. `out` holds the frame on entry (the
// host copies it there first); `frame` is read only (the mouth and eye openings sample it
// around the pixel), so out never aliases it.

#include "bilinear.cuh"

__device__ __forceinline__ float ramp01(float x, float lo, float hi)
{
    const float t = (x - lo) / (hi - lo);
    return t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
}

// How much the pixel q is not the skin s around it (0..1): much darker, or another colour.
__device__ __forceinline__ float occluder(float q0, float q1, float q2, float s0, float s1, float s2,
                                          float dark_lo, float dark_hi, float chroma_lo, float chroma_hi)
{
    const float yq = 0.299f * q0 + 0.587f * q1 + 0.114f * q2 + 1.0f;
    const float ys = 0.299f * s0 + 0.587f * s1 + 0.114f * s2 + 1.0f;
    const float dark = 1.0f - ramp01(yq / ys, dark_lo, dark_hi);
    const float d0 = q0 / yq - s0 / ys;
    const float d1 = q1 / yq - s1 / ys;
    const float d2 = q2 / yq - s2 / ys;
    const float hue = ramp01(sqrtf(d0 * d0 + d1 * d1 + d2 * d2), chroma_lo, chroma_hi);
    return dark > hue ? dark : hue;
}

__device__ __forceinline__ float lerp(float a, float b, float t)
{
    return a + t * (b - a);
}

// The (n, n, n, 3) colour table (C order) at the colour (r0, r1, r2), trilinear, into dst[0..3):
// the `lut_colour` of kernels/_sampling.py, the same lerps in the same order; scale = (n - 1) /
// 255; beyond the table the end cells extend linearly.
__device__ __forceinline__ void lut_colour(const float* __restrict__ lut, int n, float scale, float r0, float r1,
                                           float r2, float* __restrict__ dst)
{
    const float x[3] = {r0 * scale, r1 * scale, r2 * scale};
    int i[3];
    float t[3];
    for (int a = 0; a < 3; ++a) {
        int c = (int)floorf(x[a]);
        c = c < 0 ? 0 : (c > n - 2 ? n - 2 : c);
        i[a] = c;
        t[a] = x[a] - (float)c;
    }
    const long long dj = 3LL * n;
    const long long di = dj * n;
    const float* p = lut + i[0] * di + i[1] * dj + 3LL * i[2];
    for (int c = 0; c < 3; ++c, ++p) {
        const float c00 = lerp(p[0], p[3], t[2]);
        const float c01 = lerp(p[dj], p[dj + 3], t[2]);
        const float c10 = lerp(p[di], p[di + 3], t[2]);
        const float c11 = lerp(p[di + dj], p[di + dj + 3], t[2]);
        dst[c] = lerp(lerp(c00, c01, t[1]), lerp(c10, c11, t[1]), t[0]);
    }
}

__device__ __forceinline__ float clamp01(float x)
{
    return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x);
}

// frame (H, frame_width, 3) uint8; render (h, w, 3) float32; alpha (h, w) float32; fan (h, w, 3) float32;
// low (lh, lw, 7) float32; colour (n, n, n, 3) float32, the colour table; (a00 .. a12) the frame->crop affine;
// occlusion thresholds.
extern "C" __global__ void swap_blend(const unsigned char* __restrict__ frame, const float* __restrict__ render,
                                      const float* __restrict__ alpha_map, const float* __restrict__ fan,
                                      const float* __restrict__ low,
                                      const float* __restrict__ colour, int n, int h, int w,
                                      int lh, int lw, int frame_height, int frame_width,
                                      double a00, double a01, double a02, double a10, double a11, double a12,
                                      float dark_lo, float dark_hi, float chroma_lo, float chroma_hi,
                                      int x0, int y0, int nx, int ny, unsigned char* __restrict__ out)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nx * ny) return;
    const int x = x0 + i % nx;
    const int y = y0 + i / nx;
    const double u = a00 * (double)x + a01 * (double)y + a02;
    const double v = a10 * (double)x + a11 * (double)y + a12;
    if (!(u >= -0.5 && u < (double)w - 0.5 && v >= -0.5 && v < (double)h - 0.5)) return;
    const float uf = (float)u;
    const float vf = (float)v;
    float av[1], fv[3];
    bilinear<float>(alpha_map, h, w, 1, uf, vf, av);
    const float alpha = av[0] < 1.0f ? av[0] : 1.0f;
    if (!(alpha > 0.0f)) return;  // out already holds the frame pixel
    bilinear<float>(fan, h, w, 3, uf, vf, fv);
    const float cs = (float)h / (float)lh;
    const float c0 = (cs - 1.0f) / 2.0f;
    float rv[3], lv[7], sv[3];
    bilinear<float>(render, h, w, 3, uf, vf, rv);
    bilinear<float>(low, lh, lw, 7, (uf - c0) / cs, (vf - c0) / cs, lv);
    lut_colour(colour, n, (float)(n - 1) / 255.0f, rv[0], rv[1], rv[2], rv);
    for (int c = 0; c < 3; ++c) rv[c] *= lv[c];
    const float fw = clamp01(fv[0]);
    if (fw > 0.0f) {
        bilinear<unsigned char>(frame, frame_height, frame_width, 3, fv[1] / fv[0], fv[2] / fv[0], sv);
        for (int c = 0; c < 3; ++c) rv[c] = fw * sv[c] + (1.0f - fw) * rv[c];
    }
    const unsigned char* p = frame + ((long long)y * frame_width + x) * 3;
    const float p0 = (float)p[0], p1 = (float)p[1], p2 = (float)p[2];
    const float o_d = clamp01(lv[6]) * occluder(p0, p1, p2, lv[3], lv[4], lv[5], dark_lo, dark_hi, chroma_lo,
                                                chroma_hi);
    const float m = alpha * (1.0f - o_d);
    unsigned char* o = out + ((long long)y * frame_width + x) * 3;
    const float pv[3] = {p0, p1, p2};
    for (int c = 0; c < 3; ++c) {
        float val = m * rv[c] + (1.0f - m) * pv[c];
        val = val + 0.5f;
        val = val < 0.0f ? 0.0f : (val > 255.0f ? 255.0f : val);
        o[c] = (unsigned char)val;  // truncation of val + 0.5: round half up
    }
}
