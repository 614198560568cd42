"""The invisible provenance mark (DESIGN §7b): a keyed spread-spectrum pattern in the luminance.

Layout. The frame, whatever its size, is divided into GRID × GRID cells in normalised
coordinates (cell (i, j) covers x/W in [j/GRID, (j+1)/GRID), y/H likewise), so any resize of
the whole frame, aspect ratio included, maps the cells onto themselves and detection never needs
to know the size the mark was made at. Cell j carries ``chip_j · S``, S = sin(2πu)·sin(2πv)
over the cell's own coordinates u, v in [0, 1): one period per cell in each direction, a
mid-frequency band (a 10-pixel period in a 640-pixel frame, 5 pixels after a downscale to 320),
zero-mean in every cell and continuous across cell borders. Chip signs come from the key (SHAKE-256
of the key, so they are the same on every machine and numpy version): a keyed permutation makes
PILOT_CELLS cells the pilot (sign = the keyed chip) and deals the rest round-robin to the 162
coded bits of the payload (sign = keyed chip × (+1 for a 0 bit, −1 for a 1 bit)). The pattern's
signs are fixed for a run (its payload does not change) and its strength changes where the
picture does (`realtime.image.disclose`; a refit rescales it a little everywhere), which is what
lets it ride through a video codec's inter-frame prediction.

Strength. The offsets are added to R, G and B alike (a luminance change, no chroma); their
RMS is held ≤ MAX_RMS = 1.85 levels at every size, so a marked frame is ≥ 42.7 dB PSNR against
the unmarked one (saturation at 0 / 255 only removes error). Without a picture to hide in, the
peak is AMPLITUDE levels everywhere. The engine shapes it to the picture it marks
(`masking_amplitude`): a one-period-per-cell pattern is ~10 px on a 640-px frame, where the eye is
most sensitive to contrast, and at AMPLITUDE it shows as a fine grid on a wall or smooth skin; so
a flat area gets T_FLAT (a dithered ±1 level, a rare 2: not seen at 2× zoom on a wall or a
forehead), a textured one several levels, which its own texture hides. Texture means fine
texture, what the picture has at the pattern's own scale (hair, fabric, noise): a smooth shading
gradient or a soft edge (a hairline, a jaw in a blurry webcam video) hides nothing and counts as
flat (`fine_texture`; a local std that counted them showed the pattern there as a stipple).
Detection normalises every cell by its own energy, so a faint cell on a flat area still votes at
full weight where nothing else is there.

Detection. The frame's luma is resized to CANON × CANON (4 × 4 pixels per cell), high-passed
(minus a Gaussian blur of SIGMA px), and each cell gives its correlation with S, c_j, and its
energy, e_j. Frames are pooled by summing (c, e) over a window. The per-cell normalised
correlation a_j = c_j / sqrt(e_j + ε) is bounded, so the pilot statistic
``z = Σ chip_j a_j / sqrt(Σ a_j²)`` over the pilot cells is, for any frame that does not carry
this key's pattern, a Rademacher sum: P(z ≥ t) ≤ exp(−t²/2) whatever the picture (Hoeffding),
e.g. ≤ 1.5e-8 at Z_FOUND = 6. (It is at most sqrt(PILOT_CELLS) = 32, reached when every pilot
cell agrees.) The payload's soft bits (the same normalised sums over each coded
bit's cells) go to the Viterbi decoder and the CRC (`realtime.image.payload`).
"""
from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import cv2
import numpy as np
from numba import njit, prange

from realtime.image.payload import CODED_BITS, Payload, conv_encode, parse_bits, payload_bits, viterbi

__all__ = ["ENGINE_KEY", "GRID", "CANON", "CELL", "PILOT_CELLS", "AMPLITUDE", "MAX_RMS", "Z_FOUND",
           "T_FLAT", "MarkKey", "MarkPattern", "Plan", "Detection", "masking_amplitude", "fine_texture",
           "masking_from_luma", "pattern", "pattern_from_bits",
           "canonical_luma", "cell_stats", "detect", "upsampled"]

ENGINE_KEY = b"Puppeteer provenance mark v1"
GRID = 64                  # cells per side
CELL = 4                   # canonical pixels per cell side
CANON = GRID * CELL        # the detector's canonical size (256)
PILOT_CELLS = 1024         # of GRID² = 4096; the rest carry the payload (~19 cells per coded bit)
AMPLITUDE = 3.6            # peak offset in grey levels (RMS ~1.8)
MAX_RMS = 1.85             # the pattern's RMS bound: PSNR ≥ 20·log10(255 / 1.85) = 42.79 dB
SIGMA = 0.5                # the detector's high-pass: luma minus a Gaussian blur of SIGMA px
Z_FOUND = 6.0              # pilot z from which a window counts as marked (false alarm ≤ e^-18)
# Contrast masking (`masking_amplitude`). Looked at on engine outputs (d10 swap, d19
# reenactment) beside the unmarked frames at 2× zoom: T_FLAT 1.0 shows nothing on the wall or the
# forehead, 1.25 at most a faint trace, 1.5 a faint grid on the forehead (the old flat 3.6, a clear
# one). 1.0 lost one 2-second window of the d10 swap re-encoded at 300 kbit/s (worst z 6.3);
# 1.25 reads every window of every attack in the README's table.
T_FLAT = 1.25              # peak offset, grey levels, on a flat area (a dithered ±1)
S_FLAT = 1.5               # local fine-texture RMS (grey levels) up to which an area counts as flat
MASK_EXP = 0.7             # above it the peak grows as (texture / S_FLAT) ** MASK_EXP
QUICK_AREA = 4             # `_half_canon_luma`'s quick route from this many × the half grid up
MASK_SIGMA = 1.5           # the texture RMS's Gaussian window, canonical px (3-4 px of a 512-640 frame)
# Fine texture is the luma minus its Gaussian blur of MASK_HP canonical px (half a cell: the
# pattern's scale). A local std counted a smooth shading gradient and a soft (blurred) edge as
# texture, though neither hides a 10-px pattern: on d14 (a soft, compressed webcam video) its
# forehead got 1.8 levels and its hairline, brows and face outline 5-8, a stipple at 2× zoom.
# The high-passed RMS reads fine texture (noise, hair, fabric) at ~0.9 of the std, a soft edge
# at a third or less. With S_FLAT 2.0 (the std's) the strength the soft edges gave up was lost:
# the swap s12 <- d10 at 300 kbit/s fell to worst window z 6.5 (10.5 before); 1.5 gives it to
# fine texture (~1.15x the std's strength there, within MAX_RMS): z 8.6, and a soft edge still
# gets half what the std gave it (d14's hairline 2.5 levels, not 4.7); 1.0: z 11.4, 3.3 levels.
MASK_HP = 2.0

DITHER_VAR = 1.0 / 12.0     # what the ordered dither's rounding adds to the offsets' mean square
_S1 = np.sin(2 * np.pi * (np.arange(CELL) + 0.5) / CELL)
_SHAPE = np.outer(_S1, _S1)  # S sampled at the canonical pixel centres of one cell


def _shake(key: bytes, what: bytes, n: int) -> bytes:
    return hashlib.shake_256(len(key).to_bytes(4, "little") + key + what).digest(n)


class MarkKey:
    """The cell layout a key defines (cells indexed j = row · GRID + column)."""

    def __init__(self, key: bytes = ENGINE_KEY):
        self.key = bytes(key)
        n = GRID * GRID
        chips = np.unpackbits(np.frombuffer(_shake(self.key, b"chips", n // 8), np.uint8))
        self.chips = (1.0 - 2.0 * chips).astype(np.float32)            # (n,) ±1
        order = np.frombuffer(_shake(self.key, b"order", 8 * n), "<u8")
        perm = np.argsort(order, kind="stable")
        self.pilot = np.sort(perm[:PILOT_CELLS])
        payload_cells = perm[PILOT_CELLS:]
        self.bit_of_cell = np.full(n, -1, np.int64)                    # −1: a pilot cell
        self.bit_of_cell[payload_cells] = np.arange(len(payload_cells)) % CODED_BITS
        self.payload_cells = np.sort(payload_cells)

    def signs(self, coded: np.ndarray) -> np.ndarray:
        """(GRID, GRID) float32 sign of every cell for these coded bits."""
        s = self.chips.copy()
        bits = self.bit_of_cell[self.payload_cells]
        s[self.payload_cells] *= 1.0 - 2.0 * np.asarray(coded, np.float32)[bits]
        return s.reshape(GRID, GRID)


@functools.lru_cache(maxsize=8)
def _key(key: bytes) -> MarkKey:
    return MarkKey(key)


_BAYER = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]) / 16.0 + 1.0 / 32


def masking_amplitude(image: np.ndarray) -> np.ndarray:
    """(CANON, CANON) float32: the peak offset, in grey levels, that `image` (RGB or single-channel
    uint8, any size) hides at each point of the detector's canonical grid: T_FLAT where it has
    no fine texture (`fine_texture` ≤ S_FLAT: a wall, smooth skin, and also a shading gradient
    or a soft edge, which do not hide a pattern at the mark's scale), T_FLAT · (texture /
    S_FLAT) ** MASK_EXP where it has (hair, fabric, noise). The grid is in normalised
    coordinates, so the map fits any size of the same frame. Measured at half the canonical
    resolution (small arrays: ~1 ms a 640² frame on the 2-core Xeon, where 256² float
    temporaries cost their page faults) and upsampled."""
    return masking_from_luma(_half_canon_luma(np.ascontiguousarray(image)))


def fine_texture(luma: np.ndarray) -> np.ndarray:
    """The local RMS (Gaussian window MASK_SIGMA canonical px) of the luma minus its Gaussian blur
    of MASK_HP canonical px, for a float32 luma on half the canonical grid (`_half_canon_luma`),
    same shape: what of the picture lies at the mark's own scale. A linear gradient reads ~0
    (its blur is itself); an edge blurred over 8 px of a 640-px frame reads a fifth of its std."""
    r = luma - cv2.GaussianBlur(luma, (0, 0), MASK_HP / 2)
    return np.sqrt(cv2.GaussianBlur(r * r, (0, 0), MASK_SIGMA / 2))


def masking_from_luma(luma: np.ndarray) -> np.ndarray:
    """`masking_amplitude` of a float32 luma on half the canonical grid: (CANON, CANON) float32."""
    amp = (T_FLAT * np.maximum(1.0, fine_texture(luma) / S_FLAT) ** MASK_EXP).astype(np.float32)
    return cv2.resize(amp, (CANON, CANON), interpolation=cv2.INTER_LINEAR)


def _half_canon_luma(img: np.ndarray) -> np.ndarray:
    """(CANON/2, CANON/2) float32: the luma of the uint8 image `img` (H, W, 3) RGB or (H, W),
    area-averaged to half the canonical grid, in whole grey levels (as OpenCV's uint8 area resize
    gives them). OpenCV's area resize is quick only at a whole ratio (640 → 128: 0.2 ms) and slow
    at any other (1920 × 1080: 1.9 ms, after a 0.7 ms luma pass, on the 2-core EPYC). So a frame
    whose sides are whole multiples of the half grid goes that way; another with QUICK_AREA × the
    half grid or more on its short side is averaged in one pass over its RGB bytes (`_area_luma`:
    each cell's R, G and B sums, the pixels on its borders by the part of them inside it, then
    the luma of those means: 0.5 ms at 1080p); a smaller one is area-resized directly (there it
    costs little)."""
    half = CANON // 2
    h, w = img.shape[:2]
    if min(h, w) < half:
        luma = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
        return cv2.resize(luma, (half, half), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    if img.ndim == 3 and (w % half or h % half) and min(h, w) >= QUICK_AREA * half:
        return _area_luma(img, _luma_weights(w), _area_tab(w, half), _area_tab(h, half))
    luma = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    return cv2.resize(luma, (half, half), interpolation=cv2.INTER_AREA).astype(np.float32)


# OpenCV's RGB → grey weights (fixed point, 14 bits): R 0.299, G 0.587, B 0.114
_LUMA_R, _LUMA_G, _LUMA_B, _LUMA_ONE = 4899, 9617, 1868, 1 << 14


@functools.lru_cache(maxsize=16)
def _area_tab(n: int, cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """How `n` pixels split into `cells` equal cells (n / cells pixels each, borders anywhere):
    cell c holds pixels lo[c]:hi[c] whole, and the part wlo[c] of pixel lo[c] − 1 and whi[c] of
    pixel hi[c] (0 where the border falls between pixels). Read-only arrays (cached)."""
    edge = np.arange(cells + 1) * (n / cells)
    start, end = edge[:-1], edge[1:]
    lo = np.minimum(np.ceil(start - 1e-9).astype(np.int64), n)
    hi = np.maximum(np.floor(end + 1e-9).astype(np.int64), lo)
    wlo = np.where(lo - start > 1e-9, lo - start, 0.0)
    whi = np.where((end - hi > 1e-9) & (hi < n), end - hi, 0.0)
    tab = (lo, hi, wlo, whi)
    for t in tab:
        t.setflags(write=False)
    return tab


@functools.lru_cache(maxsize=16)
def _luma_weights(width: int) -> np.ndarray:
    """(width · 3,) float32: the luma weight of every byte of an RGB row (read-only, cached)."""
    wts = np.tile(np.array([_LUMA_R, _LUMA_G, _LUMA_B], np.float32), width)
    wts.setflags(write=False)
    return wts


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def _area_luma(img, wts, xtab, ytab):
    """`_half_canon_luma`'s one pass: (len(ytab[0]), len(xtab[0])) float32 luma of the RGB uint8
    `img`, each cell the area average (`_area_tab`) of its bytes weighted by `wts`
    (`_luma_weights`), rounded to a whole grey level. A row of cells sums its frame rows' bytes
    (one pass over the frame; a row on a cell border is read for both cells), then each cell
    weighs its bytes of that sum. fastmath: the sums' order is free (they are rounded to a
    level), so the loops vectorise."""
    xlo, xhi, xwlo, xwhi = xtab
    ylo, yhi, ywlo, ywhi = ytab
    cw, ch = xlo.shape[0], ylo.shape[0]
    n = img.shape[1] * 3
    area = (img.shape[1] / cw) * (img.shape[0] / ch) * _LUMA_ONE
    rows = img.reshape(img.shape[0], n)
    out = np.empty((ch, cw), np.float32)
    for cy in prange(ch):
        acc = np.zeros(n, np.float32)
        for y in range(ylo[cy] - 1, yhi[cy] + 1):
            wy = np.float32(ywlo[cy] if y < ylo[cy] else (ywhi[cy] if y >= yhi[cy] else 1.0))
            if wy == 0.0:
                continue
            row = rows[y]
            for i in range(n):
                acc[i] += wy * row[i]
        for cx in range(cw):
            s = 0.0
            for i in range(3 * xlo[cx], 3 * xhi[cx]):
                s += wts[i] * acc[i]
            for x, wx in ((xlo[cx] - 1, xwlo[cx]), (xhi[cx], xwhi[cx])):     # the border pixels' parts
                if wx > 0.0:
                    i = 3 * x
                    s += wx * (wts[i] * acc[i] + wts[i + 1] * acc[i + 1] + wts[i + 2] * acc[i + 2])
            out[cy, cx] = np.floor(s / area + 0.5)
    return out


class MarkPattern:
    """One payload's pattern at one frame size: the cells' signs times the cell shape, and the
    ordered dither, computed once; `offsets` quantises it at any amplitude. The disclosure stage
    does that again as the picture changes: a fit a band of rows a frame, and on any frame the
    rows where the picture went flatter than the fit (`plan`, `quantise`, `quantise_rows`)."""

    def __init__(self, coded, width: int, height: int, key: bytes = ENGINE_KEY):
        self.width, self.height = int(width), int(height)
        signs = _key(bytes(key)).signs(np.asarray(coded, np.uint8))

        def axis(n: int) -> tuple[np.ndarray, np.ndarray]:
            t = (np.arange(n) + 0.5) / n * GRID
            cell = np.minimum(t.astype(np.int64), GRID - 1)
            return cell, np.sin(2 * np.pi * (t - cell))

        cx, sx = axis(self.width)
        cy, sy = axis(self.height)
        self.shape = signs[cy][:, cx] * np.outer(sy, sx)                            # float64
        self.dither = np.tile(_BAYER, (self.height // 4 + 1, self.width // 4 + 1))[:self.height, :self.width]
        # a map is quantised in float32, in one pass (`_quantise`): float64 costs twice the
        # memory traffic (the flat pattern keeps float64, bit for bit the pinned one)
        self._shape32, self._dither32 = self.shape.astype(np.float32), self.dither.astype(np.float32)
        self._canon_shape = np.kron(signs, _SHAPE).astype(np.float32)                # (CANON, CANON)
        self._rows, self._cols = _bilinear_tab(self.height), _bilinear_tab(self.width)

    def plan(self, amplitude: np.ndarray) -> Plan:
        """What `quantise_rows` needs for a (CANON, CANON) peak map: the map at the frame's size,
        its floor and the scale k of its part above the floor that keeps the RMS ≤ MAX_RMS (from
        the map's mean squares on the canonical grid, less what the dither's rounding adds; if
        the floor alone passes the bound, the whole map is scaled, as a flat amplitude is)."""
        a = np.asarray(amplitude, np.float32)
        if a.shape != (CANON, CANON):
            raise ValueError(f"amplitude must have shape ({CANON}, {CANON}), got {a.shape}")
        base = float(a.min())
        u = a * self._canon_shape
        s = self._canon_shape
        n, uu, us, ss = u.size, float(np.vdot(u, u)), float(np.vdot(u, s)), float(np.vdot(s, s))
        c0 = base * base * ss / n                                     # |base · shape|²
        c1 = base * (us - base * ss) / n                              # <base · shape, excess>
        c2 = (uu - 2 * base * us + base * base * ss) / n              # |excess|²
        bound = MAX_RMS ** 2 - DITHER_VAR
        k = 1.0
        if c0 >= bound:
            base, k = 0.0, math.sqrt(bound / (uu / n))
        elif c2 > 0 and c0 + 2 * c1 + c2 > bound:
            k = (-c1 + math.sqrt(max(c1 * c1 - c2 * (c0 - bound), 0.0))) / c2
        full = cv2.resize(a, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        return Plan(full, base, k)

    def quantise_rows(self, plan: Plan, r0: int, r1: int, out: np.ndarray) -> float:
        """out[r0:r1] = clip(floor((base + k (a − base)) · shape + dither), −8, 8) as int8, in
        float32 (the operations in this order); returns the band's Σ out² (exact: an integer).
        One pass (`_quantise`): 1.1 ms a 1080p frame, where the numpy route's eight passes over
        frame-sized temporaries took 4.7 ms (a fit's band 1.2 ms)."""
        return float(_quantise(plan.a, np.float32(plan.base), np.float32(plan.k), self._shape32, self._dither32,
                               out, r0, r1))

    def release_boxes(self, fit: Plan, amp: np.ndarray, low: np.ndarray, boxes, out: np.ndarray) -> None:
        """Within each box (r0, r1, c0, c1) of `boxes`, the pixels whose bilinear read of the
        canonical grid (`upsampled`) touches a point of the (CANON, CANON) boolean map `low`
        get the fit's offsets released to the (CANON, CANON) peak map `amp` (a flatter
        picture's), in one pass: bit for bit ``quantise_rows(Plan(a, fit.base, fit.k), ...)`` of
        the map a that is `amp` upsampled bilinearly to the frame where that is under the fitted
        map `fit.a` by more than 1e-3, else the fitted map; where the fit was scaled down
        (0 < k < 1), the scale undone, at most up to the fitted map. So never louder than the
        fit. Every other pixel of `out` is left as it is: where `low` holds every point where
        `amp` is under the fitted amplitude (the disclosure stage's), the release would give
        the fit's own offsets there. Only what the boxes hold is read or written: a picture gone
        flat in a few places is quantised again there, not in the frame."""
        a = np.asarray(amp)
        if a.shape != (CANON, CANON) or a.dtype != np.float32:
            raise ValueError(f"release_boxes: amp must be ({CANON}, {CANON}) float32, got {a.shape} {a.dtype}")
        m = np.asarray(low)
        if m.shape != (CANON, CANON) or m.dtype != np.bool_:
            raise ValueError(f"release_boxes: low must be ({CANON}, {CANON}) bool, got {m.shape} {m.dtype}")
        b = np.asarray(boxes, np.int64).reshape(-1, 4)
        inside = ((0 <= b[:, 0]) & (b[:, 0] <= b[:, 1]) & (b[:, 1] <= self.height)
                  & (0 <= b[:, 2]) & (b[:, 2] <= b[:, 3]) & (b[:, 3] <= self.width))
        if not inside.all():
            raise ValueError(f"release_boxes: box (r0, r1, c0, c1) {tuple(b[~inside][0])} is not inside the "
                             f"{self.width}x{self.height} frame")
        _release(a, m, *self._rows[:2], *self._cols, fit.a, np.float32(fit.base), np.float32(fit.k),
                 bool(0.0 < fit.k < 1.0), self._shape32, self._dither32, out, b)

    def offsets(self, amplitude: np.ndarray | None = None) -> np.ndarray:
        """The (height, width) int8 luminance offsets at `amplitude`, a (CANON, CANON) peak map
        (`masking_amplitude`, upsampled to the frame: see `plan`) or None (AMPLITUDE everywhere,
        scaled down as a whole if it must be); each value is clipped to ±8 levels and quantised
        with a 4 × 4 ordered dither, so its mean follows the shape at any amplitude. The RMS is
        ≤ MAX_RMS."""
        if amplitude is None:
            amp = AMPLITUDE
            while True:
                p = np.clip(np.floor(amp * self.shape + self.dither), -8, 8)
                if amp < 0.05 or float(np.mean(p * p)) <= MAX_RMS ** 2:
                    return p.astype(np.int8)
                amp *= 0.97
        return self.quantise(self.plan(amplitude))

    def quantise(self, plan: Plan) -> np.ndarray:
        """The (height, width) int8 offsets of `plan` (see `offsets`), its k lowered in place
        (by 3 % a step) until the dithered offsets keep the RMS bound."""
        out = np.empty((self.height, self.width), np.int8)
        while self.quantise_rows(plan, 0, self.height, out) > MAX_RMS ** 2 * out.size and plan.k >= 0.05:
            plan.k *= 0.97
        return out


def _bilinear_tab(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame pixel p's bilinear read of the CANON canonical points along one side of n pixels
    (pixel centres aligned, as cv2.resize's INTER_LINEAR): points i[p] and i[p] + 1, weighted
    1 − f[p] and f[p] (f float32); and start[q], the first pixel whose i is q or more."""
    y = np.clip((np.arange(n) + 0.5) * (CANON / n) - 0.5, 0, CANON - 1)
    i = np.minimum(y.astype(np.int64), CANON - 2)
    return i, (y - i).astype(np.float32), np.searchsorted(i, np.arange(CANON)).astype(np.int64)


def upsampled(a: np.ndarray, width: int, height: int) -> np.ndarray:
    """The (CANON, CANON) map `a` upsampled to height × width as `MarkPattern.release_boxes` reads
    it (`_bilinear_tab`: along the rows, then the columns, in float32); cv2.resize's INTER_LINEAR
    agrees to 1e-5 of the map's largest value (its IPP route rounds coarser)."""
    (yi, yf, _), (xi, xf, _) = _bilinear_tab(height), _bilinear_tab(width)
    a = np.asarray(a, np.float32)
    rows = a[yi] * (1 - yf)[:, None] + a[yi + 1] * yf[:, None]                 # (height, CANON)
    return rows[:, xi] * (1 - xf) + rows[:, xi + 1] * xf


@njit(cache=True, nogil=True)
def _quantise(a, base, k, shape, dither, out, r0, r1):
    """`MarkPattern.quantise_rows`'s pass: the numpy route's float32 operations, in its order (no
    fastmath: no contraction, so every value rounds as numpy's does); Σ out² as an integer."""
    lo, hi = np.float32(-8.0), np.float32(8.0)
    total = np.int64(0)
    for i in range(r0, r1):
        for j in range(a.shape[1]):
            t = min(max(np.floor(((a[i, j] - base) * k + base) * shape[i, j] + dither[i, j]), lo), hi)
            q = np.int8(t)
            out[i, j] = q
            total += np.int64(q) * np.int64(q)
    return total


@njit(cache=True, nogil=True)
def _release(amp, low, yi, yf, xi, xf, xstart, fitted, base, k, unscale, shape, dither, out, boxes):
    """`MarkPattern.release_boxes`'s pass over each box, a frame row at a time, and in a row only
    the runs of pixels whose read touches a point of `low`: `amp` read bilinearly as `upsampled`
    does (the run's canonical points, then its pixels), then released (`_release_row`)."""
    one = np.float32(1.0)
    for b in range(boxes.shape[0]):
        r0, r1, c0, c1 = boxes[b, 0], boxes[b, 1], boxes[b, 2], boxes[b, 3]
        if r0 >= r1 or c0 >= c1:
            continue
        j0, j1 = xi[c0], xi[c1 - 1]              # the box's pixels read canonical columns j0..j1 + 1
        v = np.empty(j1 - j0 + 2, np.float32)
        row = np.empty(c1 - c0, np.float32)
        for r in range(r0, r1):
            i, fy = yi[r], yf[r]
            gy = one - fy
            j = j0
            while j <= j1:
                if not (low[i, j] or low[i, j + 1] or low[i + 1, j] or low[i + 1, j + 1]):
                    j += 1
                    continue
                s = j                            # a run of pixels (those that read s..j) to release
                while j <= j1 and (low[i, j] or low[i, j + 1] or low[i + 1, j] or low[i + 1, j + 1]):
                    j += 1
                for q in range(s, j + 1):
                    v[q - j0] = amp[i, q] * gy + amp[i + 1, q] * fy
                p0, p1 = max(c0, xstart[s]), min(c1, xstart[j])
                for c in range(p0, p1):
                    fx = xf[c]
                    row[c - c0] = v[xi[c] - j0] * (one - fx) + v[xi[c] + 1 - j0] * fx
                _release_row(row[p0 - c0:p1 - c0], fitted[r, p0:p1], base, k, unscale, shape[r, p0:p1],
                             dither[r, p0:p1], out[r, p0:p1])


@njit(cache=True, nogil=True)
def _release_row(a, fitted, base, k, unscale, shape, dither, out):
    """One row of `_release`, on 1-d views: the same float32 operations, in the same order, as
    `_quantise` of the released map (no fastmath: no contraction, so every value rounds as
    numpy's does). A loop of its own over 1-d views: inlined into `_release`'s 2-d indexing it
    did not vectorise (5 ns a pixel against 0.6)."""
    tol = np.float32(1e-3)
    lo, hi = np.float32(-8.0), np.float32(8.0)
    for c in range(a.shape[0]):
        f = fitted[c]
        x = a[c]
        if not x < f - tol:
            x = f
        if unscale:
            x = min(base + (x - base) / k, f)
        t = np.floor(((x - base) * k + base) * shape[c] + dither[c])
        out[c] = np.int8(min(max(t, lo), hi))


@dataclass
class Plan:
    """A (height, width) float32 peak map `a`, quantised as base + k (a − base) (`MarkPattern.plan`)."""

    a: np.ndarray
    base: float
    k: float


def pattern_from_bits(coded, width: int, height: int, key: bytes = ENGINE_KEY,
                      amplitude: np.ndarray | None = None) -> np.ndarray:
    """The (height, width) int8 luminance offsets that carry these coded bits (`MarkPattern`)."""
    return MarkPattern(coded, width, height, key).offsets(amplitude)


def pattern(payload: Payload, width: int, height: int, key: bytes = ENGINE_KEY,
            amplitude: np.ndarray | None = None) -> np.ndarray:
    """The (height, width) int8 luminance offsets of the mark carrying `payload` (see
    `MarkPattern.offsets` for `amplitude`)."""
    return pattern_from_bits(conv_encode(payload_bits(payload)), width, height, key, amplitude)


def canonical_luma(image: np.ndarray) -> np.ndarray:
    """(CANON, CANON) float32 luma of an RGB uint8 image (or of a single-channel one)."""
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    h, w = image.shape[:2]
    interp = cv2.INTER_AREA if (w >= CANON and h >= CANON) else cv2.INTER_LINEAR
    return cv2.resize(image, (CANON, CANON), interpolation=interp).astype(np.float32)


def cell_stats(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(c, e): each cell's correlation with the cell shape and its high-passed energy, (GRID²,)
    float64, for a (CANON, CANON) luma (`canonical_luma`, or a decoder scaled to CANON)."""
    y = np.asarray(luma, np.float32)
    if y.shape != (CANON, CANON):
        raise ValueError(f"cell_stats wants a ({CANON}, {CANON}) luma, got shape {y.shape}")
    r = (y - cv2.GaussianBlur(y, (0, 0), SIGMA)).reshape(GRID, CELL, GRID, CELL).astype(np.float64)
    c = np.einsum("aibj,ij->ab", r, _SHAPE).ravel()
    e = np.einsum("aibj,aibj->ab", r, r).ravel()
    return c, e


@dataclass
class Detection:
    """What `detect` read from pooled cell statistics."""

    z: float                        # pilot statistic (≈ N(0, 1) without the mark)
    payload: Payload | None         # None: no payload passed its CRC
    bit_errors: int = 0             # coded bits whose soft sign the decoder overruled
    payload_z: float = 0.0          # correlation of the soft bits with the decoded codeword

    @property
    def pattern_present(self) -> bool:
        return self.z >= Z_FOUND

    @property
    def found(self) -> bool:
        """The key's pilot is there and the payload checks."""
        return self.pattern_present and self.payload is not None


def detect(c: np.ndarray, e: np.ndarray, key: bytes = ENGINE_KEY) -> Detection:
    """Read the mark from cell statistics (`cell_stats`, summed over any number of frames)."""
    k = _key(bytes(key))
    c = np.asarray(c, np.float64)
    e = np.asarray(e, np.float64)
    eps = 1e-2 * float(e.mean()) + 1e-9
    a = k.chips * (c / np.sqrt(e + eps))                # chip-aligned normalised correlations
    pa = a[k.pilot]
    den = math.sqrt(float(np.dot(pa, pa)))
    z = float(pa.sum()) / den if den > 0 else 0.0
    cells = k.payload_cells
    bits = k.bit_of_cell[cells]
    num = np.bincount(bits, weights=a[cells], minlength=CODED_BITS)
    norm = np.sqrt(np.bincount(bits, weights=a[cells] ** 2, minlength=CODED_BITS))
    soft = np.divide(num, norm, out=np.zeros(CODED_BITS), where=norm > 0)
    message = viterbi(soft)
    signs = 1.0 - 2.0 * conv_encode(message)
    errors = int(np.count_nonzero(np.sign(soft) != signs))
    pz = float(np.dot(soft, signs) / math.sqrt(CODED_BITS))
    return Detection(z=z, payload=parse_bits(message), bit_errors=errors, payload_z=pz)
