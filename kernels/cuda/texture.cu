// CUDA twin of kernels/texture.py: bilinear lookup of an image at per-pixel source coordinates.
// One thread per output pixel; texture_u8 / texture_f32 for uint8 / float32 images.

#include "bilinear.cuh"

template <typename T>
__device__ __forceinline__ void texture_body(const T* __restrict__ image, int h, int w, int nc,
                                             const float* __restrict__ coords, const unsigned char* __restrict__ mask,
                                             int has_mask, int n_pix, float* __restrict__ out)
{
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= n_pix) return;
    float* o = out + (long long)p * nc;
    if (has_mask && mask[p] == 0) {
        for (int c = 0; c < nc; ++c) o[c] = 0.0f;
        return;
    }
    bilinear<T>(image, h, w, nc, coords[2 * p], coords[2 * p + 1], o);
}

// image (h, w, nc); coords (H*W, 2) = (x, y); mask (H*W) read only when has_mask; out (H*W, nc).
extern "C" __global__ void texture_u8(const unsigned char* __restrict__ image, int h, int w, int nc,
                                      const float* __restrict__ coords, const unsigned char* __restrict__ mask,
                                      int has_mask, int n_pix, float* __restrict__ out)
{
    texture_body<unsigned char>(image, h, w, nc, coords, mask, has_mask, n_pix, out);
}

extern "C" __global__ void texture_f32(const float* __restrict__ image, int h, int w, int nc,
                                       const float* __restrict__ coords, const unsigned char* __restrict__ mask,
                                       int has_mask, int n_pix, float* __restrict__ out)
{
    texture_body<float>(image, h, w, nc, coords, mask, has_mask, n_pix, out);
}
