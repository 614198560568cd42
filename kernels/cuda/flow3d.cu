// CUDA twin of kernels/flow3d.py: dense t -> t-1 flow and visibility (UniFaceGAN eq. 11-16).
// One thread per pixel; float64 arithmetic in the numba twin's order (built with --fmad=false),
// so flow and visibility are bit-identical to it.

__device__ __forceinline__ bool finite64(double v) { return v - v == 0.0; }  // false for +-inf, NaN

// Z^{t-1} at (qx, qy): bilinear if the 4 neighbours are finite, else the nearest pixel; +inf
// when (qx, qy) rounds outside the image (or is NaN) or lands on an empty pixel.
__device__ __forceinline__ double depth_at(const float* __restrict__ depth, int h, int w, double qx, double qy)
{
    const double rx = floor(qx + 0.5);
    const double ry = floor(qy + 0.5);
    if (!(rx >= 0.0 && rx <= (double)(w - 1) && ry >= 0.0 && ry <= (double)(h - 1)))
        return __longlong_as_double(0x7ff0000000000000LL);
    const double cx = qx < 0.0 ? 0.0 : (qx > (double)(w - 1) ? (double)(w - 1) : qx);
    const double cy = qy < 0.0 ? 0.0 : (qy > (double)(h - 1) ? (double)(h - 1) : qy);
    const int x0 = (int)cx;
    const int y0 = (int)cy;
    const int x1 = x0 + 1 < w ? x0 + 1 : w - 1;
    const int y1 = y0 + 1 < h ? y0 + 1 : h - 1;
    const double a = (double)depth[y0 * w + x0];
    const double b = (double)depth[y0 * w + x1];
    const double c = (double)depth[y1 * w + x0];
    const double d = (double)depth[y1 * w + x1];
    if (finite64(a) && finite64(b) && finite64(c) && finite64(d)) {
        const double fx = cx - (double)x0;
        const double fy = cy - (double)y0;
        const double top = a + fx * (b - a);
        const double bot = c + fx * (d - c);
        return top + fy * (bot - top);
    }
    return (double)depth[(int)ry * w + (int)rx];
}

// tri_id (h*w), bary (h*w, 2): G-buffer at t; triangles (T, 3); verts_t, verts_prev (V, 3);
// depth_prev (h*w); outputs flow (h*w, 2) and visible (h*w) as 0/1 bytes.
extern "C" __global__ void flow3d(const int* __restrict__ tri_id, const float* __restrict__ bary,
                                  const int* __restrict__ triangles, int n_tri,
                                  const float* __restrict__ verts_t, const float* __restrict__ verts_prev,
                                  const float* __restrict__ depth_prev, int h, int w, double eps,
                                  float* __restrict__ flow, unsigned char* __restrict__ visible)
{
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= h * w) return;
    float fx = 0.0f;
    float fy = 0.0f;
    unsigned char vis = 0;
    const int t = tri_id[p];
    if (t >= 0 && t < n_tri) {
        const float* t0 = verts_t + 3 * (long long)triangles[3 * t];
        const float* t1 = verts_t + 3 * (long long)triangles[3 * t + 1];
        const float* t2 = verts_t + 3 * (long long)triangles[3 * t + 2];
        const float* p0 = verts_prev + 3 * (long long)triangles[3 * t];
        const float* p1 = verts_prev + 3 * (long long)triangles[3 * t + 1];
        const float* p2 = verts_prev + 3 * (long long)triangles[3 * t + 2];
        const double l1 = (double)bary[2 * p];
        const double l2 = (double)bary[2 * p + 1];
        const double l0 = 1.0 - l1 - l2;
        const double wx = l0 * ((double)t0[0] - (double)p0[0]) + l1 * ((double)t1[0] - (double)p1[0]) +
                          l2 * ((double)t2[0] - (double)p2[0]);
        const double wy = l0 * ((double)t0[1] - (double)p0[1]) + l1 * ((double)t1[1] - (double)p1[1]) +
                          l2 * ((double)t2[1] - (double)p2[1]);
        const double qz = l0 * (double)p0[2] + l1 * (double)p1[2] + l2 * (double)p2[2];
        const double zp = depth_at(depth_prev, h, w, (double)(p % w) - wx, (double)(p / w) - wy);
        if (finite64(zp) && qz <= zp + eps) {  // +inf: outside the image or empty at t-1
            vis = 1;
            fx = (float)(-wx);
            fy = (float)(-wy);
        }
    }
    flow[2 * p] = fx;
    flow[2 * p + 1] = fy;
    visible[p] = vis;
}
