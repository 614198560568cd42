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
coded bits of the payload (sign = keyed chip × (+1 for a 0 bit, −1 for a 1 bit)). The pattern
is static for a run (its payload does not change), which is what lets it ride through a video
codec's inter-frame prediction.

Strength. The offsets are added to R, G and B alike (a luminance change, no chroma); their
RMS is held ≤ MAX_RMS = 1.85 levels at every size, so a marked frame is ≥ 42.7 dB PSNR against
the unmarked one (saturation at 0 / 255 only removes error). Without a picture to hide in, the
peak is AMPLITUDE levels everywhere. The engine shapes it to the picture it marks
(`masking_amplitude`): a one-period-per-cell pattern is ~10 px on a 640-px frame, where the eye is
most sensitive to contrast, and at AMPLITUDE it shows as a fine grid on a wall or smooth skin; so
a flat area gets T_FLAT (a dithered ±1 level, a rare 2: not seen at 2× zoom on a wall or a
forehead), a textured one several levels, which its own texture hides. Detection normalises
every cell by its own energy, so a faint cell on a flat area still votes at full weight where
nothing else is there.

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

from realtime.image.payload import CODED_BITS, Payload, conv_encode, parse_bits, payload_bits, viterbi

__all__ = ["ENGINE_KEY", "GRID", "CANON", "CELL", "PILOT_CELLS", "AMPLITUDE", "MAX_RMS", "Z_FOUND",
           "T_FLAT", "MarkKey", "MarkPattern", "Detection", "masking_amplitude", "pattern", "pattern_from_bits",
           "canonical_luma", "cell_stats", "detect"]

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
S_FLAT = 2.0               # local luma std (grey levels) up to which an area counts as flat
MASK_EXP = 0.7             # above it the peak grows as (std / S_FLAT) ** MASK_EXP
MASK_SIGMA = 1.5           # the local std's Gaussian window, canonical px (3-4 px of a 512-640 frame)

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
    uint8, any size) hides at each point of the detector's canonical grid: T_FLAT where it is
    flat (local luma std ≤ S_FLAT), T_FLAT · (std / S_FLAT) ** MASK_EXP where it has texture of
    its own. The grid is in normalised coordinates, so the map fits any size of the same frame."""
    y = canonical_luma(image)
    mu = cv2.GaussianBlur(y, (0, 0), MASK_SIGMA)
    sd = np.sqrt(np.maximum(cv2.GaussianBlur(y * y, (0, 0), MASK_SIGMA) - mu * mu, 0.0))
    return (T_FLAT * np.maximum(1.0, sd / S_FLAT) ** MASK_EXP).astype(np.float32)


class MarkPattern:
    """One payload's pattern at one frame size: the cells' signs times the cell shape, and the
    ordered dither, computed once; `offsets` quantises it at any amplitude (what the disclosure
    stage does again as the picture changes)."""

    def __init__(self, coded, width: int, height: int, key: bytes = ENGINE_KEY):
        self.width, self.height = int(width), int(height)
        signs = _key(bytes(key)).signs(np.asarray(coded, np.uint8))

        def axis(n: int) -> tuple[np.ndarray, np.ndarray]:
            t = (np.arange(n) + 0.5) / n * GRID
            cell = np.minimum(t.astype(np.int64), GRID - 1)
            return cell, np.sin(2 * np.pi * (t - cell))

        cx, sx = axis(self.width)
        cy, sy = axis(self.height)
        self.shape = (signs[cy][:, cx] * np.outer(sy, sx)).astype(np.float32)
        self.dither = np.tile(_BAYER, (self.height // 4 + 1, self.width // 4 + 1))[:self.height, :self.width]
        self.dither = self.dither.astype(np.float32)

    def offsets(self, amplitude: np.ndarray | None = None) -> np.ndarray:
        """The (height, width) int8 luminance offsets at `amplitude`, a (CANON, CANON) peak map
        (`masking_amplitude`, upsampled to the frame) or None (AMPLITUDE everywhere). Where the
        RMS would pass MAX_RMS, a map's part above its minimum is scaled down (the textured areas
        share what the flat ones leave), a flat amplitude as a whole; each value is clipped to ±8
        levels and quantised with a 4 × 4 ordered dither, so its mean follows the shape at any
        amplitude."""
        dither, shape = self.dither.ravel(), self.shape.ravel()
        if amplitude is None:
            u, floor = AMPLITUDE * shape, None
        else:
            amplitude = np.asarray(amplitude, np.float32)
            if amplitude.shape != (CANON, CANON):
                raise ValueError(f"amplitude must have shape ({CANON}, {CANON}), got {amplitude.shape}")
            a = cv2.resize(amplitude, (self.width, self.height), interpolation=cv2.INTER_LINEAR).ravel()
            floor = float(a.min())
            u = a * shape
        k = 1.0
        if floor is not None:
            # the map at k: (floor + k (a − floor)) · shape = k u + (1 − k) floor · shape; start
            # from the k where its unquantised RMS meets the bound (if the floor alone passes
            # it, the whole map is scaled, as a flat amplitude is)
            n, uu, us, ss = u.size, float(np.dot(u, u)), float(np.dot(u, shape)), float(np.dot(shape, shape))
            c0 = floor * floor * ss / n                               # |floor · shape|²
            c1 = floor * (us - floor * ss) / n                        # <floor · shape, excess>
            c2 = (uu - 2 * floor * us + floor * floor * ss) / n       # |excess|²
            if c0 >= MAX_RMS ** 2:
                floor, k = None, MAX_RMS / math.sqrt(uu / n)
            elif c2 > 0 and c0 + 2 * c1 + c2 > MAX_RMS ** 2:
                k = (-c1 + math.sqrt(max(c1 * c1 - c2 * (c0 - MAX_RMS ** 2), 0.0))) / c2
        while True:
            t = u + dither if k == 1.0 else np.float32(k) * u + dither
            if floor is not None and k != 1.0:
                t += np.float32((1.0 - k) * floor) * shape
            p = np.floor(t, out=t)
            np.clip(p, -8, 8, out=p)
            if k < 0.05 or float(np.dot(p, p)) <= MAX_RMS ** 2 * p.size:
                return p.astype(np.int8).reshape(self.height, self.width)
            k *= 0.97


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

    @property
    def false_alarm_bound(self) -> float:
        """Upper bound on the chance that a frame without this mark scores this z (Hoeffding)."""
        return 1.0 if self.z <= 0 else math.exp(-0.5 * self.z * self.z)


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
