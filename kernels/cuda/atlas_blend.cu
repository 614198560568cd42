// CUDA twin of kernels/atlas_blend.py: the atlas tier's blend of keyframe views over a G-buffer.
// One thread per pixel; atlas_blend_u8 / atlas_blend_f32 for a uint8 / float32 reference image
// (the keyframe crops are uint8). float32 arithmetic in the numba twin's order (built with
// --fmad=false); the images are sampled by the shared bilinear.cuh.

#include "bilinear.cuh"

// b0 * uv[i0] + b1 * uv[i1] + b2 * uv[i2] of component c of a (V, n) per-vertex array.
__device__ __forceinline__ float bary_mix(const float* __restrict__ a, int n, int i0, int i1, int i2, float b0,
                                          float b1, float b2, int c)
{
    return b0 * a[(long long)i0 * n + c] + b1 * a[(long long)i1 * n + c] + b2 * a[(long long)i2 * n + c];
}

template <typename T>
__device__ __forceinline__ void atlas_blend_body(
    const int* __restrict__ tri_id, const float* __restrict__ bary, const int* __restrict__ triangles, int n_tri,
    int head_start, const float* __restrict__ ref_uv, const T* __restrict__ ref_image, int ref_h, int ref_w,
    const long long* __restrict__ keys, int n_keys, const float* __restrict__ key_uv, int n_verts,
    const unsigned char* __restrict__ key_images, int key_size, const float* __restrict__ weights,
    const float* __restrict__ alpha, int n_pix, float* __restrict__ out)
{
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= n_pix) return;
    float* o = out + 3 * (long long)p;
    const int t = tri_id[p];
    if (t < 0 || t >= n_tri) {
        o[0] = 0.0f;
        o[1] = 0.0f;
        o[2] = 0.0f;
        return;
    }
    const int i0 = triangles[3 * t];
    const int i1 = triangles[3 * t + 1];
    const int i2 = triangles[3 * t + 2];
    const float b1 = bary[2 * p];
    const float b2 = bary[2 * p + 1];
    const float b0 = 1.0f - b1 - b2;
    if (t >= head_start) {  // head layer: the reference image only
        const float u = bary_mix(ref_uv, 2, i0, i1, i2, b0, b1, b2, 0);
        const float v = bary_mix(ref_uv, 2, i0, i1, i2, b0, b1, b2, 1);
        bilinear<T>(ref_image, ref_h, ref_w, 3, u, v, o);
        return;
    }
    const float am = bary_mix(alpha, 3, i0, i1, i2, b0, b1, b2, 0);
    const float ae = bary_mix(alpha, 3, i0, i1, i2, b0, b1, b2, 1);
    const float ar = bary_mix(alpha, 3, i0, i1, i2, b0, b1, b2, 2);
    const float af = 1.0f - am - ae - ar;
    float r = 0.0f;
    float g = 0.0f;
    float bl = 0.0f;
    float tmp[3];
    if (ar > 1e-4f) {
        const float u = bary_mix(ref_uv, 2, i0, i1, i2, b0, b1, b2, 0);
        const float v = bary_mix(ref_uv, 2, i0, i1, i2, b0, b1, b2, 1);
        bilinear<T>(ref_image, ref_h, ref_w, 3, u, v, tmp);
        r += ar * tmp[0];
        g += ar * tmp[1];
        bl += ar * tmp[2];
    }
    for (int j = 0; j < n_keys; ++j) {
        const float wt = af * weights[3 * j] + am * weights[3 * j + 1] + ae * weights[3 * j + 2];
        if (wt <= 1e-4f) continue;
        const long long k = keys[j];
        const float* uv = key_uv + k * n_verts * 2;
        const float u = bary_mix(uv, 2, i0, i1, i2, b0, b1, b2, 0);
        const float v = bary_mix(uv, 2, i0, i1, i2, b0, b1, b2, 1);
        bilinear<unsigned char>(key_images + k * key_size * key_size * 3, key_size, key_size, 3, u, v, tmp);
        r += wt * tmp[0];
        g += wt * tmp[1];
        bl += wt * tmp[2];
    }
    o[0] = r;
    o[1] = g;
    o[2] = bl;
}

// tri_id (H*W), bary (H*W, 2); triangles (T, 3), the head layer from head_start (in [0, T]);
// ref_uv (V, 2), ref_image (ref_h, ref_w, 3); keys (n_keys) indices into key_uv (N, V, 2) and
// key_images (N, key_size, key_size, 3); weights (n_keys, 3); alpha (V, 3); out (H*W, 3).
extern "C" __global__ void atlas_blend_u8(
    const int* __restrict__ tri_id, const float* __restrict__ bary, const int* __restrict__ triangles, int n_tri,
    int head_start, const float* __restrict__ ref_uv, const unsigned char* __restrict__ ref_image, int ref_h,
    int ref_w, const long long* __restrict__ keys, int n_keys, const float* __restrict__ key_uv, int n_verts,
    const unsigned char* __restrict__ key_images, int key_size, const float* __restrict__ weights,
    const float* __restrict__ alpha, int n_pix, float* __restrict__ out)
{
    atlas_blend_body<unsigned char>(tri_id, bary, triangles, n_tri, head_start, ref_uv, ref_image, ref_h, ref_w,
                                    keys, n_keys, key_uv, n_verts, key_images, key_size, weights, alpha, n_pix,
                                    out);
}

extern "C" __global__ void atlas_blend_f32(
    const int* __restrict__ tri_id, const float* __restrict__ bary, const int* __restrict__ triangles, int n_tri,
    int head_start, const float* __restrict__ ref_uv, const float* __restrict__ ref_image, int ref_h, int ref_w,
    const long long* __restrict__ keys, int n_keys, const float* __restrict__ key_uv, int n_verts,
    const unsigned char* __restrict__ key_images, int key_size, const float* __restrict__ weights,
    const float* __restrict__ alpha, int n_pix, float* __restrict__ out)
{
    atlas_blend_body<float>(tri_id, bary, triangles, n_tri, head_start, ref_uv, ref_image, ref_h, ref_w, keys,
                            n_keys, key_uv, n_verts, key_images, key_size, weights, alpha, n_pix, out);
}
