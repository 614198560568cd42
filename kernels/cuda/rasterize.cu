// CUDA twin of kernels/rasterize.py: triangles -> G-buffer (tri_id, bary, depth).
//
// Three launches (the host clears `keys` to all ones first):
//   rasterize_setup    one thread per triangle: the numba twin's _setup_triangles, record for
//                      record (fixed-point vertices, clipped bbox, top-left thresholds, float64
//                      barycentric / depth planes of the unsnapped vertices);
//   rasterize_cover    a warp (32 lanes) per triangle striding over its bbox: the exact integer
//                      edge functions with the top-left rule, then depth; each covered pixel
//                      takes atomicMin of a 64-bit key, order-preserving float depth bits in the
//                      high word and the triangle index in the low word, so the nearest surface
//                      wins and depth ties go to the lower index whatever order the threads run;
//   rasterize_resolve  one thread per pixel: recompute bary / depth of the winning triangle.
// Built with --fmad=false, the float64 plane evaluation rounds exactly as the numba twin's, so
// the depth (hence the key order) and the stored bary / depth are bit-identical to it. Float32
// subnormals are converted by hand, both ways (f64_of_f32, f32_bits): cupy compiles every twin
// with -ftz=true appended after our options (cupy/cupy#9576; an explicit -ftz=false loses), so
// the conversion instructions flush them to zero (measured on an H200), and a subnormal depth
// orders triangles in the numba twin (tests/kernels/test_cuda_parity.py's emulated-ftz backend
// runs the kernels with the host's flush-to-zero modes on). Loads, stores and bit casts never
// flush; only float32 arithmetic and conversions do, and none is left here.

enum { I_X0, I_Y0, I_X1, I_Y1, I_X2, I_Y2, I_XMIN, I_XMAX, I_YMIN, I_YMAX, I_VALID, I_T0, I_T1, I_T2, NI };
enum { F_X0, F_Y0, F_A1, F_C1, F_A2, F_C2, F_Z0, F_DZ1, F_DZ2, NF };

#define EMPTY_KEY 0xFFFFFFFFFFFFFFFFULL

__device__ __forceinline__ bool finite64(double v) { return v - v == 0.0; }  // false for +-inf, NaN

__device__ __forceinline__ long long floor_div(long long a, long long b)
{
    const long long q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

__device__ __forceinline__ long long snap(double v, double fix) { return (long long)floor(v * fix + 0.5); }

// Top-left rule for an edge of a positively wound triangle (y down): top and left edges own
// the pixel centres on them. Antisymmetric: exactly one of d and -d is owned for d != 0.
__device__ __forceinline__ bool owned(long long dx, long long dy) { return dy < 0 || (dy == 0 && dx > 0); }

// float64 of the float32 *p, subnormals kept: a zero exponent is mantissa * 2^-149, exactly.
__device__ __forceinline__ double f64_of_f32(const float* p)
{
    const unsigned int u = __float_as_uint(*p);
    if ((u & 0x7f800000u) == 0u) {
        const double m = ldexp((double)(u & 0x007fffffu), -149);
        return (u & 0x80000000u) ? -m : m;
    }
    return (double)*p;
}

// The bits of float32(v), rounded to nearest even as the numba twin's np.float32(v), subnormal
// results included: below FLT_MIN the result is k * 2^-149 with k = rint(|v| * 2^149) <= 2^23
// (exact scaling; k = 2^23 is FLT_MIN itself, whose bits are k too).
__device__ __forceinline__ unsigned int f32_bits(double v)
{
    const double a = fabs(v);
    if (a < 1.1754943508222875e-38) {
        const unsigned int k = (unsigned int)rint(ldexp(a, 149));
        return (copysign(1.0, v) < 0.0 ? 0x80000000u : 0u) | k;
    }
    return __float_as_uint((float)v);  // normal, +-inf or NaN
}

// Barycentric weights (w1, w2) and the float64 depth (before float32 rounding) of triangle
// record g at pixel (x, y).
__device__ __forceinline__ double plane_at(const double* __restrict__ g, int x, int y, double* w1, double* w2)
{
    const double rx = (double)x - g[F_X0];
    const double ry = (double)y - g[F_Y0];
    *w1 = g[F_A1] * rx + g[F_C1] * ry;
    *w2 = g[F_A2] * rx + g[F_C2] * ry;
    return g[F_Z0] + *w1 * g[F_DZ1] + *w2 * g[F_DZ2];
}

// vertices (V, 3); triangles (T, 3); records ti (T, NI) int64 and tf (T, NF) float64.
extern "C" __global__ void rasterize_setup(const float* __restrict__ vertices, const int* __restrict__ triangles,
                                           int n_tri, int height, int width, int subpixel_bits, double max_coord,
                                           long long* __restrict__ ti, double* __restrict__ tf)
{
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n_tri) return;
    long long* r = ti + (long long)t * NI;
    double* g = tf + (long long)t * NF;
    r[I_VALID] = 0;
    const float* v0 = vertices + 3 * (long long)triangles[3 * t];
    const float* v1 = vertices + 3 * (long long)triangles[3 * t + 1];
    const float* v2 = vertices + 3 * (long long)triangles[3 * t + 2];
    double x0 = f64_of_f32(v0), y0 = f64_of_f32(v0 + 1), x1 = f64_of_f32(v1), y1 = f64_of_f32(v1 + 1);
    double x2 = f64_of_f32(v2), y2 = f64_of_f32(v2 + 1);
    const double z0 = f64_of_f32(v0 + 2), z1 = f64_of_f32(v1 + 2), z2 = f64_of_f32(v2 + 2);
    // `<=` is false for NaN
    if (!(fabs(x0) <= max_coord && fabs(y0) <= max_coord && fabs(x1) <= max_coord && fabs(y1) <= max_coord &&
          fabs(x2) <= max_coord && fabs(y2) <= max_coord))
        return;
    if (!(finite64(z0) && finite64(z1) && finite64(z2))) return;
    const double fix = (double)(1LL << subpixel_bits);
    const long long f = 1LL << subpixel_bits;
    const long long X0 = snap(x0, fix), Y0 = snap(y0, fix);
    long long X1 = snap(x1, fix), Y1 = snap(y1, fix);
    long long X2 = snap(x2, fix), Y2 = snap(y2, fix);
    const long long area = (X1 - X0) * (Y2 - Y0) - (Y1 - Y0) * (X2 - X0);
    if (area == 0) return;
    // pixel bbox: pixel centres p with p * f in [min X, max X]
    const long long xmn = X0 < X1 ? (X0 < X2 ? X0 : X2) : (X1 < X2 ? X1 : X2);
    const long long xmx = X0 > X1 ? (X0 > X2 ? X0 : X2) : (X1 > X2 ? X1 : X2);
    const long long ymn = Y0 < Y1 ? (Y0 < Y2 ? Y0 : Y2) : (Y1 < Y2 ? Y1 : Y2);
    const long long ymx = Y0 > Y1 ? (Y0 > Y2 ? Y0 : Y2) : (Y1 > Y2 ? Y1 : Y2);
    long long pxmin = -floor_div(-xmn, f), pxmax = floor_div(xmx, f);
    long long pymin = -floor_div(-ymn, f), pymax = floor_div(ymx, f);
    pxmin = pxmin > 0 ? pxmin : 0;
    pymin = pymin > 0 ? pymin : 0;
    pxmax = pxmax < width - 1 ? pxmax : width - 1;
    pymax = pymax < height - 1 ? pymax : height - 1;
    if (pxmin > pxmax || pymin > pymax) return;
    if (area < 0) {  // draw both windings: test edges in positive order v0, v2, v1
        const long long tx = X1, ty = Y1;
        X1 = X2;
        Y1 = Y2;
        X2 = tx;
        Y2 = ty;
    }
    r[I_X0] = X0;
    r[I_Y0] = Y0;
    r[I_X1] = X1;
    r[I_Y1] = Y1;
    r[I_X2] = X2;
    r[I_Y2] = Y2;
    r[I_XMIN] = pxmin;
    r[I_XMAX] = pxmax;
    r[I_YMIN] = pymin;
    r[I_YMAX] = pymax;
    r[I_T0] = owned(X1 - X0, Y1 - Y0) ? 0 : 1;
    r[I_T1] = owned(X2 - X1, Y2 - Y1) ? 0 : 1;
    r[I_T2] = owned(X0 - X2, Y0 - Y2) ? 0 : 1;
    // barycentric planes from the unsnapped coordinates (snapped ones if those degenerate)
    double d = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0);
    if (d == 0.0) {
        x0 = (double)X0 / fix;
        y0 = (double)Y0 / fix;
        // original (unswapped) vertex order for the weights
        x1 = floor(x1 * fix + 0.5) / fix;
        y1 = floor(y1 * fix + 0.5) / fix;
        x2 = floor(x2 * fix + 0.5) / fix;
        y2 = floor(y2 * fix + 0.5) / fix;
        d = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0);
    }
    const double inv = 1.0 / d;
    g[F_X0] = x0;
    g[F_Y0] = y0;
    g[F_A1] = (y2 - y0) * inv;
    g[F_C1] = -(x2 - x0) * inv;
    g[F_A2] = -(y1 - y0) * inv;
    g[F_C2] = (x1 - x0) * inv;
    g[F_Z0] = z0;
    g[F_DZ1] = z1 - z0;
    g[F_DZ2] = z2 - z0;
    r[I_VALID] = 1;
}

// Launch with blockDim (32, k): lane threadIdx.x of row threadIdx.y serves triangle
// blockIdx.x * k + threadIdx.y. keys (H*W) must hold EMPTY_KEY before the first call.
extern "C" __global__ void rasterize_cover(const long long* __restrict__ ti, const double* __restrict__ tf,
                                           int n_tri, int width, int subpixel_bits,
                                           unsigned long long* __restrict__ keys)
{
    const int t = blockIdx.x * blockDim.y + threadIdx.y;
    if (t >= n_tri) return;
    const long long* r = ti + (long long)t * NI;
    if (r[I_VALID] == 0) return;
    const double* g = tf + (long long)t * NF;
    const long long X0 = r[I_X0], Y0 = r[I_Y0], X1 = r[I_X1], Y1 = r[I_Y1], X2 = r[I_X2], Y2 = r[I_Y2];
    const long long th0 = r[I_T0], th1 = r[I_T1], th2 = r[I_T2];
    const long long xs = r[I_XMIN];
    const long long ys = r[I_YMIN];
    const long long nx = r[I_XMAX] - xs + 1;
    const long long n = nx * (r[I_YMAX] - ys + 1);
    for (long long k = threadIdx.x; k < n; k += blockDim.x) {
        const int x = (int)(xs + k % nx);
        const int y = (int)(ys + k / nx);
        // E_ab(P) = (Bx - Ax) * (Py - Ay) - (By - Ay) * (Px - Ax), P = (x, y) * 2^bits: exact
        const long long px = (long long)x << subpixel_bits;
        const long long py = (long long)y << subpixel_bits;
        const long long e0 = (X1 - X0) * (py - Y0) - (Y1 - Y0) * (px - X0);
        const long long e1 = (X2 - X1) * (py - Y1) - (Y2 - Y1) * (px - X1);
        const long long e2 = (X0 - X2) * (py - Y2) - (Y0 - Y2) * (px - X2);
        if (e0 < th0 || e1 < th1 || e2 < th2) continue;
        double w1, w2;
        unsigned int u = f32_bits(plane_at(g, x, y, &w1, &w2));
        // the numba twin draws only where z < the current depth (initially +inf): NaN and +inf never
        if (u == 0x7f800000u || (u & 0x7fffffffu) > 0x7f800000u) continue;
        if ((u & 0x7fffffffu) == 0u) u = 0u;  // -0 and +0 tie, as they do in the numba twin's `z < depth`
        const unsigned int ordered = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
        atomicMin(keys + (long long)y * width + x, ((unsigned long long)ordered << 32) | (unsigned int)t);
    }
}

// keys (H*W) from rasterize_cover; outputs tri_id (H*W), bary (H*W, 2), depth (H*W).
extern "C" __global__ void rasterize_resolve(const unsigned long long* __restrict__ keys, const double* __restrict__ tf,
                                             int n_pix, int width, int* __restrict__ tri_id,
                                             float* __restrict__ bary, float* __restrict__ depth)
{
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= n_pix) return;
    const unsigned long long key = keys[p];
    if (key == EMPTY_KEY) {
        tri_id[p] = -1;
        bary[2 * p] = 0.0f;
        bary[2 * p + 1] = 0.0f;
        depth[p] = __int_as_float(0x7f800000);
        return;
    }
    const int t = (int)(key & 0xFFFFFFFFULL);
    double w1, w2;
    // stored as the bits f32_bits rounded
    unsigned int* const depth_bits = reinterpret_cast<unsigned int*>(depth);
    unsigned int* const bary_bits = reinterpret_cast<unsigned int*>(bary);
    depth_bits[p] = f32_bits(plane_at(tf + (long long)t * NF, p % width, p / width, &w1, &w2));
    tri_id[p] = t;
    bary_bits[2 * p] = f32_bits(w1);
    bary_bits[2 * p + 1] = f32_bits(w2);
}
