// CUDA twin of kernels/composite.py: AP-GAN eq. 13 paste-back of a crop through an affine map.
// One thread per pixel of the frame box (x0, y0, nx, ny) that bounds the mapped crop. `out`
// holds the frame on entry (the host copies it there first unless compositing in place); each
// thread reads its own frame pixel from `out` before overwriting it.

#include "bilinear.cuh"

// crop (h, w, 3) float32 0..255; mask (h, w) float32; (a00 .. a12) the frame->crop affine;
// out (H, frame_width, 3) uint8.
extern "C" __global__ void composite(const float* __restrict__ crop, const float* __restrict__ mask, int h, int w,
                                     double a00, double a01, double a02, double a10, double a11, double a12,
                                     int x0, int y0, int nx, int ny, int frame_width,
                                     unsigned char* __restrict__ out)
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
    float m;
    bilinear<float>(mask, h, w, 1, uf, vf, &m);
    m = m < 0.0f ? 0.0f : (m > 1.0f ? 1.0f : m);
    if (m <= 0.0f) return;  // out already holds the frame pixel
    float cs[3];
    bilinear<float>(crop, h, w, 3, uf, vf, cs);
    unsigned char* o = out + ((long long)y * frame_width + x) * 3;
    for (int c = 0; c < 3; ++c) {
        float val = m * cs[c] + (1.0f - m) * (float)o[c];
        val = val + 0.5f;
        val = val < 0.0f ? 0.0f : (val > 255.0f ? 255.0f : val);
        o[c] = (unsigned char)val;  // truncation of val + 0.5: round half up
    }
}
