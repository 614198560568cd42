// The bilinear sampler of kernels/_sampling.py, shared by texture.cu, warp.cu, composite.cu,
// atlas_blend.cu and temporal_blend.cu.
// Sample the (h, w, nc) image at (x, y), border clamped, into dst[0..nc); a NaN coordinate gives
// zeros; exact at integer coordinates. (cupy compiles the .cu sources with this directory on the
// include path; nvcc and g++ find it next to the including file.)
#pragma once

template <typename T>
__device__ __forceinline__ void bilinear(const T* __restrict__ img, int h, int w, int nc, float x, float y,
                                         float* __restrict__ dst)
{
    if (!(x == x && y == y)) {
        for (int c = 0; c < nc; ++c) dst[c] = 0.0f;
        return;
    }
    const float xmax = (float)(w - 1);
    const float ymax = (float)(h - 1);
    x = x < 0.0f ? 0.0f : (x > xmax ? xmax : x);
    y = y < 0.0f ? 0.0f : (y > ymax ? ymax : y);
    const int x0 = (int)x;  // floor: x >= 0
    const int y0 = (int)y;
    const float fx = x - (float)x0;
    const float fy = y - (float)y0;
    const int x1 = x0 + 1 < w ? x0 + 1 : w - 1;
    const int y1 = y0 + 1 < h ? y0 + 1 : h - 1;
    const T* r0 = img + (long long)y0 * w * nc;
    const T* r1 = img + (long long)y1 * w * nc;
    for (int c = 0; c < nc; ++c) {
        const float a = (float)r0[x0 * nc + c];
        const float b = (float)r0[x1 * nc + c];
        const float cc = (float)r1[x0 * nc + c];
        const float d = (float)r1[x1 * nc + c];
        const float top = a + fx * (b - a);
        const float bot = cc + fx * (d - cc);
        dst[c] = top + fy * (bot - top);
    }
}
