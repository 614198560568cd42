// CUDA twin of kernels/warp.py: backward warp, out[y, x] = image(x + flow_x, y + flow_y).
// One thread per pixel; warp_u8 / warp_f32 for uint8 / float32 images.

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

template <typename T>
__device__ __forceinline__ void warp_body(const T* __restrict__ image, int h, int w, int nc,
                                          const float* __restrict__ flow, float* __restrict__ out)
{
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= h * w) return;
    const float x = (float)(p % w) + flow[2 * p];
    const float y = (float)(p / w) + flow[2 * p + 1];
    bilinear<T>(image, h, w, nc, x, y, out + (long long)p * nc);
}

// image (h, w, nc); flow (h*w, 2) = (dx, dy); out (h*w, nc).
extern "C" __global__ void warp_u8(const unsigned char* __restrict__ image, int h, int w, int nc,
                                   const float* __restrict__ flow, float* __restrict__ out)
{
    warp_body<unsigned char>(image, h, w, nc, flow, out);
}

extern "C" __global__ void warp_f32(const float* __restrict__ image, int h, int w, int nc,
                                    const float* __restrict__ flow, float* __restrict__ out)
{
    warp_body<float>(image, h, w, nc, flow, out);
}
