// CUDA twin of kernels/warp.py: backward warp, out[y, x] = image(x + flow_x, y + flow_y).
// One thread per pixel; warp_u8 / warp_f32 for uint8 / float32 images.

#include "bilinear.cuh"

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
