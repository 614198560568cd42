// CUDA twin of kernels/interpolate.py: barycentric interpolation of per-vertex attributes.
// One thread per pixel; float64 arithmetic in the numba twin's order (built with --fmad=false),
// so the float32 results are bit-identical to it.

extern "C" __global__ void interpolate(
    const int* __restrict__ tri_id,        // (H*W) triangle index, -1 = empty
    const float* __restrict__ bary,        // (H*W, 2) weights of vertices 1 and 2
    const int* __restrict__ triangles,     // (T, 3)
    int n_tri,
    const float* __restrict__ attributes,  // (V, C)
    int n_ch,
    int n_pix,
    float* __restrict__ out)               // (H*W, C)
{
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= n_pix) return;
    float* o = out + (long long)p * n_ch;
    const int t = tri_id[p];
    if (t < 0 || t >= n_tri) {
        for (int c = 0; c < n_ch; ++c) o[c] = 0.0f;
        return;
    }
    const float* a0 = attributes + (long long)triangles[3 * t] * n_ch;
    const float* a1 = attributes + (long long)triangles[3 * t + 1] * n_ch;
    const float* a2 = attributes + (long long)triangles[3 * t + 2] * n_ch;
    const double b0 = (double)bary[2 * p];
    const double b1 = (double)bary[2 * p + 1];
    for (int c = 0; c < n_ch; ++c) {
        const double v0 = (double)a0[c];
        o[c] = (float)(v0 + b0 * ((double)a1[c] - v0) + b1 * ((double)a2[c] - v0));
    }
}
