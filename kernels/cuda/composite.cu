// CUDA twin of kernels/composite.py: AP-GAN eq. 13 paste-back of a crop through an affine map.
// One thread per pixel of the frame box (x0, y0, nx, ny) that bounds the mapped crop. `out`
// holds the frame on entry (the host copies it there first unless compositing in place); each
// thread reads its own frame pixel from `out` before overwriting it.

// ---- begin bilinear: kernels/_sampling.py; kept identical in texture.cu, warp.cu, composite.cu
// (a test checks it). Sample the (h, w, nc) image at (x, y), border clamped, into dst[0..nc);
// a NaN coordinate gives zeros; exact at integer coordinates.
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
// ---- end bilinear

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
