// CUDA twin of kernels/disclose.py: the output frame's visible label and invisible provenance
// mark in one pass. One thread per pixel: the label sprite (colour and alpha, 0..255) is blended
// over its box as (colour * alpha + pixel * (255 - alpha) + 127) / 255, then the mark's int8
// luminance offset is added to every channel, saturating at 0 and 255. Integer arithmetic, so
// the result is the numba twin's bit for bit. `image` and `out` may be the same buffer (each
// thread reads its pixel before writing it), so neither is __restrict__.

// image, out (h*w, 3) uint8; mark (h*w) int8 (read only when has_mark); label (lh, lw, 4) uint8
// at (ly0, lx0), inside the frame (lh = lw = 0: no label).
extern "C" __global__ void disclose(const unsigned char* image, int h, int w,
                                    const signed char* __restrict__ mark, int has_mark,
                                    const unsigned char* __restrict__ label, int ly0, int lx0, int lh, int lw,
                                    unsigned char* out)
{
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= h * w) return;
    const int x = p % w;
    const int y = p / w;
    const unsigned char* src = image + (long long)p * 3;
    int v[3] = {src[0], src[1], src[2]};
    const int lx = x - lx0;
    const int ly = y - ly0;
    if (ly >= 0 && ly < lh && lx >= 0 && lx < lw) {
        const unsigned char* s = label + ((long long)ly * lw + lx) * 4;
        const int a = s[3];
        for (int c = 0; c < 3; ++c) v[c] = ((int)s[c] * a + v[c] * (255 - a) + 127) / 255;
    }
    const int m = has_mark ? (int)mark[p] : 0;
    unsigned char* o = out + (long long)p * 3;
    for (int c = 0; c < 3; ++c) {
        const int t = v[c] + m;
        o[c] = (unsigned char)(t < 0 ? 0 : (t > 255 ? 255 : t));
    }
}
