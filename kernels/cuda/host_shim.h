// host_shim.h: compile a twin's .cu file as plain C++ with g++, for the emulated-host parity
// test (tests/kernels/test_cuda_parity.py); never used by the real CUDA build.
//
//   g++ -std=c++14 -O2 -ffp-contract=off -shared -fPIC -include host_shim.h launcher.cpp
//
// where launcher.cpp #includes the .cu file and defines one `launch_<kernel>` per extern "C"
// __global__ kernel that calls `shim_launch`. A launch runs every (block, thread) of the grid
// sequentially on the calling thread, in forward or reverse order (a kernel whose result depends
// on the order its threads run in is racy on a GPU; the test runs both orders). Atomics are
// therefore plain read-modify-writes. Only the CUDA features the twins use are covered: the
// index built-ins, 64-bit atomicMin and the bit-cast intrinsics. -ffp-contract=off mirrors the
// twins' NVRTC option --fmad=false: no multiply-add contraction on either side.
#pragma once
#ifdef __CUDACC__
#error "host_shim.h is for host C++ compilers only"
#endif

#include <cmath>
#include <cstring>

#define __global__
#define __device__
#define __forceinline__ inline

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
};

static thread_local uint3 threadIdx;
static thread_local uint3 blockIdx;
static thread_local dim3 blockDim;
static thread_local dim3 gridDim;

inline unsigned long long atomicMin(unsigned long long* address, unsigned long long val) {
    const unsigned long long old = *address;
    if (val < old) *address = val;
    return old;
}

inline unsigned int __float_as_uint(float x) {
    unsigned int u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, sizeof f);
    return f;
}

inline double __longlong_as_double(long long i) {
    double d;
    std::memcpy(&d, &i, sizeof d);
    return d;
}

inline uint3 shim_unflatten(unsigned long long i, unsigned int nx, unsigned int ny) {
    return uint3{unsigned(i % nx), unsigned((i / nx) % ny), unsigned(i / (nx * ny))};
}

// Run kernel(args...) for every thread of a (gx, gy, gz) x (bx, by, bz) launch, sequentially.
template <typename Kernel, typename... Args>
void shim_launch(unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
                 unsigned int bz, int reverse, Kernel kernel, Args... args) {
    gridDim = dim3{gx, gy, gz};
    blockDim = dim3{bx, by, bz};
    const unsigned long long n_blocks = (unsigned long long)gx * gy * gz;
    const unsigned long long n_threads = (unsigned long long)bx * by * bz;
    for (unsigned long long b = 0; b < n_blocks; ++b) {
        blockIdx = shim_unflatten(reverse ? n_blocks - 1 - b : b, gx, gy);
        for (unsigned long long t = 0; t < n_threads; ++t) {
            threadIdx = shim_unflatten(reverse ? n_threads - 1 - t : t, bx, by);
            kernel(args...);
        }
    }
}
