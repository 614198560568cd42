// The per-pixel surface motion and depth test of kernels/flow3d.py (its numba helpers
// `surface_motion` and `depth_at`), shared by flow3d.cu and temporal_blend.cu as the numba
// helpers are shared by the two numba twins. float64 arithmetic in the numba order; the twins
// are built with --fmad=false. (cupy compiles the .cu sources with this directory on the
// include path; nvcc and g++ find it next to the including file.)
#pragma once

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

// The surface point under pixel p (covered by the valid triangle t) from t-1 to t (eq. 11-14):
// its displacement (wx, wy) in pixels and its depth qz at t-1.
struct SurfaceMotion {
    double wx, wy, qz;
};

// bary (h*w, 2); triangles (T, 3); verts_t, verts_prev (V, 3).
__device__ __forceinline__ SurfaceMotion surface_motion(const float* __restrict__ bary,
                                                        const int* __restrict__ triangles,
                                                        const float* __restrict__ verts_t,
                                                        const float* __restrict__ verts_prev, int p, int t)
{
    const float* t0 = verts_t + 3 * (long long)triangles[3 * t];
    const float* t1 = verts_t + 3 * (long long)triangles[3 * t + 1];
    const float* t2 = verts_t + 3 * (long long)triangles[3 * t + 2];
    const float* p0 = verts_prev + 3 * (long long)triangles[3 * t];
    const float* p1 = verts_prev + 3 * (long long)triangles[3 * t + 1];
    const float* p2 = verts_prev + 3 * (long long)triangles[3 * t + 2];
    const double l1 = (double)bary[2 * p];
    const double l2 = (double)bary[2 * p + 1];
    const double l0 = 1.0 - l1 - l2;
    SurfaceMotion m;
    m.wx = l0 * ((double)t0[0] - (double)p0[0]) + l1 * ((double)t1[0] - (double)p1[0]) +
           l2 * ((double)t2[0] - (double)p2[0]);
    m.wy = l0 * ((double)t0[1] - (double)p0[1]) + l1 * ((double)t1[1] - (double)p1[1]) +
           l2 * ((double)t2[1] - (double)p2[1]);
    m.qz = l0 * (double)p0[2] + l1 * (double)p1[2] + l2 * (double)p2[2];
    return m;
}

// flow3d's visibility of pixel (x, y) moving by m (eq. 15): the point lands inside the image on a
// surface drawn at t-1 (depth_prev (h*w)) and is not behind it by more than eps.
__device__ __forceinline__ bool visible_at_prev(const float* __restrict__ depth_prev, int h, int w, int x, int y,
                                                const SurfaceMotion& m, double eps)
{
    const double zp = depth_at(depth_prev, h, w, (double)x - m.wx, (double)y - m.wy);
    return finite64(zp) && m.qz <= zp + eps;  // +inf: outside the image or empty at t-1
}
