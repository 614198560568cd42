"""Disclosure stage: every output frame says what it is (DESIGN §7b).

After the compositor, on the engine's device context, one kernel pass (`kernels.disclose`) puts
two things on the finished frame:

- a visible label ("AI avatar", in swap "AI face swap", unless told otherwise), white on a translucent dark box, in a
  corner, its height scaled to the frame (4 % of the short side, at least 10 px: a text the
  frame cannot hold at 10 px is refused when the stage is made, before the run);
- the invisible provenance mark (`realtime.image.mark`): a keyed luminance pattern carrying the
  payload engine id, mode and profile fingerprint (`realtime.image.payload`), which ``run.py
  verify`` reads back.

The label is computed once per output size and uploaded once. The mark's signs are fixed for the
run; its amplitude follows the picture it is hidden in (`mark.masking_amplitude`: a dithered ±1
level on flat areas, more where the picture has texture of its own). Every REFIT_FRAMES frames
the stage re-quantises the pattern to the amplitude measured on a frame, a band of rows a frame
over the next BANDS frames (under 1 ms a band at 640²), then swaps it in: where the picture
went flat, the amplitude drops; where it gained texture, it rises by at most RELEASE a fit, so a
head moving over a wall leaves the wall's amplitude low. Between fits the picture changes: a
blink puts flat lid where the fit saw an open eye's iris and lashes, an edge moves off a wall.
So every frame is measured before it is marked (a frame that reaches the stage on a device
costs one extra download; a host frame, the swap's, is measured as it is; a frame with offsets
released sends them up again), and the pixels that read a point whose amplitude now is under
1 / RELEASE_NOW of the fitted one are quantised again for this frame, down to the amplitude
measured now where the picture went much flatter (`_released`): a shut lid is marked as
faintly as the lid it is. Only two passes follow the frame's size, measuring (one pass over
its bytes) and adding the mark (`kernels.disclose`); the release follows the area that went
flatter, the fit's bands their rows (one pass each). Offline on the 2-core AMD EPYC (p50):
s1 ← d10 at 640², some rows released on 430 of 448 frames (a face moves), measuring 0.6 ms,
releasing 0.8 ms, the stage 1.6 ms; the swap s12 ← d10 at 512², 1.7 ms (0.2 ms with the fit
alone). The swap s1 in the engine, alone on the machine: ← d10 at 512² 1.4-1.5 ms, ← d13 at
1280×720 1.5 ms (2.2 when whole rows were released, the luma resized and the bands quantised
in numpy), ← d10 at 1920×1080 3.9-4.3 ms (7.0-7.7; p95 5.0-5.6 against 9.6-10).
What is drawn depends only on `DisclosureOptions`, which the engine takes from its
`EngineOptions`, i.e. from the command line: nothing in a profile (its settings, its YAML) is
read here, so no profile can switch the label or the mark off.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from kernels import disclose
from realtime.core.context import CpuContext
from realtime.core.errors import PuppeteerError
from realtime.core.frame import Frame
from realtime.core.profile import ARRAYS_FILE
from realtime.image.mark import CANON, MAX_RMS, QUICK_AREA, T_FLAT, MarkPattern, Plan, masking_amplitude
from realtime.image.payload import ENGINE_ID, MODES, Payload, conv_encode, payload_bits

__all__ = ["DisclosureOptions", "DisclosureStage", "LabelError", "LabelTooSmall", "LABEL_TEXT", "LABEL_TEXTS",
           "CORNERS", "MARK_MIN_SIZE", "MARK_MIN_SIDE", "REFIT_FRAMES", "RELEASE", "RELEASE_NOW", "BANDS",
           "render_label", "check_label_text", "profile_fingerprint"]

LABEL_TEXT = "AI avatar"
LABEL_TEXTS = {"reenact": LABEL_TEXT, "swap": "AI face swap"}   # the label by mode, unless --label-text
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
LABEL_MAX_CHARS = 40
LABEL_HEIGHT = 0.04         # text cap height, as a fraction of the frame's short side
LABEL_MIN_HEIGHT = 10       # ... and never less, in px (README): a text that does not fit is refused
LABEL_BOX_ALPHA = 0.6       # opacity of the dark box behind the text
_FONT = cv2.FONT_HERSHEY_DUPLEX
REFIT_FRAMES = 30           # frames between two fits of the mark's amplitude to the picture
RELEASE = 1.5               # the most a point's amplitude rises from one fit to the next
BANDS = 4                   # a fit's pattern is quantised a band of rows a frame, over this many
RELEASE_NOW = 1.5           # a frame's amplitude under 1 / this of the fitted one: quantised again
RUN_GAP = 16                # canonical rows between two runs quantised again, below which they are one


class LabelError(PuppeteerError):
    """A label text or corner the label cannot show."""


class LabelTooSmall(LabelError):
    """A frame that cannot hold the label at LABEL_MIN_HEIGHT px: `frame` (width, height) and the
    smallest frame that can, `needs` (even sides), for callers whose own options differ (bench)."""

    def __init__(self, message: str, frame: tuple[int, int], needs: tuple[int, int]):
        super().__init__(message)
        self.frame, self.needs = frame, needs


#: The output whose mark `verify` reads back on a hard clip (README: found at 200×150 on d19's
#: reenactment, lost at 160×120). What reads is its area (the mark's evidence is summed over its
#: cells): 1000×120 and 120×1000 read at z 18 (demo, stop 61), so the check is on width × height,
#: and on the shorter side (`MARK_MIN_SIDE`): the mark's 64 cells a side need more than a pixel
#: each (1000×64 is lost, 1000×80 reads at z 14).
MARK_MIN_SIZE = (200, 150)
MARK_MIN_SIDE = 96


@dataclass
class DisclosureOptions:
    """What the disclosure stage puts on every frame. Set from the command line only."""

    label: bool = True                  # --no-label turns it off
    label_text: str | None = None       # --label-text; None: the mode's (LABEL_TEXTS)
    label_corner: str = "bottom-right"  # --label-corner
    mark: bool = True                   # the provenance mark (no CLI switch: see README)
    mode: str = "reenact"               # the payload's mode: "reenact" or "swap" (the engine sets it)

    @property
    def text(self) -> str:
        """The label's text: --label-text's, else the mode's (a swap says it is one)."""
        return self.label_text if self.label_text is not None else LABEL_TEXTS.get(self.mode, LABEL_TEXT)

    def describe(self, size: tuple[int, int] | None = None) -> str:
        """One line for the user; with the output's (width, height), it says when the mark is
        written but likely too small to be read back (fewer pixels than `MARK_MIN_SIZE` has, or a
        side under `MARK_MIN_SIDE`)."""
        label = (f"label {self.text!r} {self.label_corner}" if self.label
                 else "label OFF (--no-label)")
        mark = "on" if self.mark else "OFF"
        if self.mark and size is not None and (size[0] * size[1] < MARK_MIN_SIZE[0] * MARK_MIN_SIZE[1]
                                               or min(size) < MARK_MIN_SIDE):
            mark += (f", but at {size[0]}x{size[1]} likely too small to be read back (verify needs about "
                     f"{MARK_MIN_SIZE[0]}x{MARK_MIN_SIZE[1]}: {MARK_MIN_SIZE[0] * MARK_MIN_SIZE[1]:,} pixels or "
                     f"more, and {MARK_MIN_SIDE} px on the shorter side)")
        return f"{label}; provenance mark {mark}"


def check_label_text(text: str) -> str:
    """`text` stripped, when the label can draw it (1-40 printable ASCII characters)."""
    t = str(text).strip()
    if not t:
        raise LabelError(f"the label text is blank ({'empty' if not text else 'only white space'}): the label "
                         f"needs something to say, e.g. "
                         f"--label-text '{LABEL_TEXT}' (or --no-label)")
    if len(t) > LABEL_MAX_CHARS or not all(" " <= ch <= "~" for ch in t):
        raise LabelError(f"label text {text!r} cannot be drawn: use 1-{LABEL_MAX_CHARS} printable "
                         f"ASCII characters (the label font has no others), e.g. --label-text "
                         f"'{LABEL_TEXT}'")
    return t


def _label_box(text: str, cap: int) -> tuple[float, int, int, int, int]:
    """(font scale, thickness, text width, text height, padding) of `text` at cap height `cap`
    px; the box around it is (text width + 2 padding) × (text height + 2 padding)."""
    thick = max(1, round(cap / 14))
    scale = cv2.getFontScaleFromHeight(_FONT, cap, thick)
    (tw, th), _ = cv2.getTextSize(text, _FONT, scale, thick)
    return scale, thick, tw, th, max(1, th // 2)


def _margin(width: int, height: int) -> int:
    return max(1, round(0.02 * min(width, height)))


def _label_fits(text: str, cap: int, width: int, height: int) -> bool:
    _, _, tw, th, pad = _label_box(text, cap)
    room = 2 * _margin(width, height)
    return tw + 2 * pad <= width - room and th + 2 * pad <= height - room


def _too_small(text: str, width: int, height: int) -> LabelTooSmall:
    """Why the label cannot be drawn at LABEL_MIN_HEIGHT px on a width × height frame, with the
    smallest --size that holds it."""
    _, _, tw, th, pad = _label_box(text, LABEL_MIN_HEIGHT)
    w, h = width, height
    while not _label_fits(text, LABEL_MIN_HEIGHT, w, h):   # grow the side that is short (margins grow too)
        room = 2 * _margin(w, h)
        h += th + 2 * pad > h - room
        w += tw + 2 * pad > w - room
    low = h > height                  # the height is short (else only the width)
    w, h = w + w % 2, h + h % 2       # even sides: a video file wants them
    if low:
        message = (f"a {width}x{height} frame is too low for the label {text!r} at its smallest readable "
                   f"height ({LABEL_MIN_HEIGHT} px text): use a larger --size, e.g. --size {max(w, width)}x{h}")
    else:
        message = (f"the label {text!r} does not fit a {width} px wide frame at its smallest readable height "
                   f"({LABEL_MIN_HEIGHT} px text; it needs {w} px): use a shorter --label-text or a larger "
                   f"--size, e.g. --size {w}x{h}")
    return LabelTooSmall(message, (width, height), (max(w, width), max(h, height)))


def render_label(text: str, width: int, height: int, corner: str = "bottom-right"
                 ) -> tuple[np.ndarray, tuple[int, int]]:
    """The label sprite for a width × height frame: ((h, w, 4) uint8 colour + alpha, (y0, x0)).

    White anti-aliased text over a dark box of opacity LABEL_BOX_ALPHA, its cap height
    LABEL_HEIGHT of the short side, smaller where the box would not fit the frame but never
    under LABEL_MIN_HEIGHT px (the README's promise), a margin of 2 % of the short side from the
    corner. LabelError (one line: the frame, the text, what to do) when even that height does
    not fit."""
    text = check_label_text(text)
    if corner not in CORNERS:
        raise LabelError(f"label corner {corner!r} is not one of {', '.join(CORNERS)}")
    cap = max(LABEL_MIN_HEIGHT, round(LABEL_HEIGHT * min(width, height)))
    while cap > LABEL_MIN_HEIGHT and not _label_fits(text, cap, width, height):
        cap -= 1
    if not _label_fits(text, cap, width, height):
        raise _too_small(text, width, height)
    scale, thick, tw, th, pad = _label_box(text, cap)
    margin = _margin(width, height)
    bw, bh = tw + 2 * pad, th + 2 * pad
    ink = np.zeros((bh, bw), np.uint8)
    cv2.putText(ink, text, (pad, pad + th), _FONT, scale, 255, thick, cv2.LINE_AA)
    t = ink.astype(np.float32) / 255.0
    alpha = 1.0 - (1.0 - t) * (1.0 - LABEL_BOX_ALPHA)           # text over box over frame
    colour = 255.0 * t / alpha
    sprite = np.empty((bh, bw, 4), np.uint8)
    sprite[..., :3] = np.rint(colour)[..., None]
    sprite[..., 3] = np.rint(255.0 * alpha)
    y0 = margin if corner.startswith("top") else height - bh - margin
    x0 = margin if corner.endswith("left") else width - bw - margin
    return sprite, (min(max(0, y0), height - bh), min(max(0, x0), width - bw))


def profile_fingerprint(profile) -> int:
    """The profile's 24-bit fingerprint: the first 6 hex digits of its arrays file's sha256 (as
    listed in its profile.yaml), or of its image's bytes for a profile that was never saved."""
    files = getattr(profile, "files", None) or {}
    entry = files.get(ARRAYS_FILE)
    digest = entry.get("sha256") if isinstance(entry, dict) else None
    if not isinstance(digest, str) or len(digest) < 6:
        digest = hashlib.sha256(np.ascontiguousarray(profile["image"]).tobytes()).hexdigest()
    return int(digest[:6], 16)


class _Sized:
    """What one output size needs: the label sprite and the mark (its pattern, the amplitude it
    is quantised at with the plan that did it, the offsets on the host and on the device, a
    scratch for a frame's released offsets and the frame boxes where it differs from them)."""

    def __init__(self, label, origin, pattern: MarkPattern | None):
        self.label, self.origin, self.pattern = label, origin, pattern
        self.amplitude: np.ndarray | None = None
        self.plan: Plan | None = None
        self.offsets: np.ndarray | None = None
        self.mark = None
        self.released: np.ndarray | None = None
        self.dirty: list[tuple[int, int, int, int]] | None = None   # boxes where released ≠ offsets; None: all

    def adopt(self, amplitude: np.ndarray, plan: Plan, offsets: np.ndarray, ctx) -> None:
        self.amplitude, self.plan, self.offsets = amplitude, plan, offsets
        self.mark = ctx.upload(offsets)
        self.dirty = None


class _Fit:
    """A fit in progress: the amplitude measured, its plan (made with the first band, so that the
    measuring frame does only the measuring), the offsets quantised so far."""

    def __init__(self, entry: _Sized, amplitude: np.ndarray):
        self.entry, self.amplitude = entry, amplitude
        self.plan: Plan | None = None
        self.out = np.empty((entry.pattern.height, entry.pattern.width), np.int8)
        self.band, self.total = 0, 0.0


def _load_kernels(entry: _Sized) -> None:
    """Compile (on a cold numba cache: a first run after an install) or load from the cache the
    passes that the warm-up's frames may not take — the release (`MarkPattern.release_boxes`:
    only a frame flatter than the fit, which the warm-up's plain frames never are), the
    large-frame luma measure (`masking_amplitude` of a frame 512 px or more on its short side,
    not a multiple of 128, whatever size the warm-up's frames come in) — so that neither costs
    its compile time (seconds) in the middle of a stream. Writes nothing: no box is released."""
    side = QUICK_AREA * CANON // 2 + 1
    masking_amplitude(np.zeros((side, side, 3), np.uint8))
    if entry.released is None:
        entry.released = np.empty_like(entry.offsets)
    entry.pattern.release_boxes(entry.plan, entry.amplitude, np.zeros((CANON, CANON), np.bool_),
                                np.zeros((0, 4), np.int64), entry.released)


def _span(i0: int, i1: int, n: int) -> tuple[int, int]:
    """The frame pixels [p0, p1) along a side of n whose bilinear upsampling (`mark.upsampled`)
    reads any of the canonical points i0..i1 along it: one canonical point more each side."""
    return max(0, (i0 - 1) * n // CANON), min(n, -(-(i1 + 2) * n // CANON))


def _runs(idx: np.ndarray) -> list[tuple[int, int]]:
    """The sorted indices `idx` as runs (first, last), joined across gaps under RUN_GAP."""
    cut = np.flatnonzero(np.diff(idx) > RUN_GAP)
    return [(int(a), int(b)) for a, b in zip(np.r_[idx[0], idx[cut + 1]], np.r_[idx[cut], idx[-1]])]


def _boxes(low: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes (i0, i1, j0, j1) (canonical rows i0..i1, columns j0..j1) that hold every true point
    of the boolean map `low`: its rows cut into runs where RUN_GAP rows or more hold none, each
    run as wide as its points reach. (Inside a box, `MarkPattern.release_boxes` skips the pixels
    that read no point of `low`: finer boxes cost more to find than they save.) Empty for a map
    with no true point."""
    rows = np.flatnonzero(low.any(axis=1))
    if rows.size == 0:
        return []
    boxes = []
    for i0, i1 in _runs(rows):
        cols = np.flatnonzero(low[i0:i1 + 1].any(axis=0))
        boxes.append((i0, i1, int(cols[0]), int(cols[-1])))
    return boxes


class DisclosureStage:
    """The label and the mark on every output frame, in place, on the device context `ctx`.

    `size` is the engine's output size (width, height); a frame of another size (none today)
    gets its own label and mark. `background`: the avatar's background (the compositor's), what
    the mark's amplitude starts from (None: T_FLAT everywhere) until the first frame is measured
    (module docstring). `bypass`: a callable that is true while the output is not synthetic (the
    compositor's passthrough hotkey shows the driver's own camera, which is neither an avatar
    nor this engine's work, so it is neither labelled nor marked)."""

    name = "disclose"
    device_ready = True

    def __init__(self, profile, size: tuple[int, int], options: DisclosureOptions | None = None,
                 ctx=None, bypass: Callable[[], bool] | None = None,
                 background: np.ndarray | None = None):
        self.options = o = options or DisclosureOptions()
        self.bypass = bypass
        self.ctx = ctx if ctx is not None else CpuContext()
        if o.mode not in MODES:
            raise LabelError(f"mode {o.mode!r} is not one of {MODES}")
        if o.label:
            check_label_text(o.text)
            if o.label_corner not in CORNERS:
                raise LabelError(f"label corner {o.label_corner!r} is not one of {', '.join(CORNERS)}")
        self.payload = Payload(engine=ENGINE_ID, mode=o.mode, fingerprint=profile_fingerprint(profile))
        self._coded = conv_encode(payload_bits(self.payload))
        self._start = (masking_amplitude(background) if background is not None
                       else np.full((CANON, CANON), T_FLAT, np.float32))
        self._frames = 0            # marked frames since the start (or the last reset)
        self._fit: _Fit | None = None   # an amplitude measured, being quantised a band a frame
        self._cache: dict[tuple[int, int], _Sized] = {}
        self._loaded = False        # `_load_kernels` done
        self._for_size(int(size[0]), int(size[1]))

    def reset(self) -> None:
        """Forget the pictures seen (the engine's warm-up frames): back to the start amplitude.
        The first reset (the engine's warm-up) also loads the numba passes that only some frames
        take (`_load_kernels`)."""
        self._frames, self._fit = 0, None
        for entry in self._cache.values():
            if entry.pattern is not None:
                self._quantise(entry, self._start)
                if not self._loaded:
                    _load_kernels(entry)
                    self._loaded = True

    def _quantise(self, entry: _Sized, amplitude: np.ndarray) -> None:
        plan = entry.pattern.plan(amplitude)
        entry.adopt(amplitude, plan, entry.pattern.quantise(plan), self.ctx)

    def _for_size(self, width: int, height: int) -> _Sized:
        entry = self._cache.get((width, height))
        if entry is None:
            o = self.options
            label, origin = None, (0, 0)
            if o.label:
                sprite, origin = render_label(o.text, width, height, o.label_corner)
                label = self.ctx.upload(sprite)
            entry = self._cache[(width, height)] = _Sized(
                label, origin, MarkPattern(self._coded, width, height) if o.mark else None)
            if entry.pattern is not None:
                self._quantise(entry, self._start)
        return entry

    def __call__(self, frame: Frame) -> None:
        bypass = self.bypass is not None and self.bypass()
        if frame.output is None or bypass or not (self.options.mark or self.options.label):
            if frame.output is not None:
                frame.output = self.ctx.to_host(frame.output)
            return
        source = frame.output
        out = self.ctx.to_device(source)
        entry = self._for_size(int(out.shape[1]), int(out.shape[0]))
        mark = entry.mark
        if entry.pattern is not None:
            self._frames += 1
            # measured before it is marked, on the frame as it came (a host frame, as the swap's
            # compositor hands over, is not downloaded again)
            now = masking_amplitude(self.ctx.to_host(source))
            if self._fit is not None:
                self._quantise_band()
            elif self._frames % REFIT_FRAMES == 1:
                self._fit = _Fit(entry, now if self._frames == 1 else np.minimum(now, RELEASE * entry.amplitude))
            mark = self._released(entry, now)
        disclose(out, mark, entry.label, entry.origin, out=out)
        frame.output = self.ctx.to_host(out)

    def _quantise_band(self) -> None:
        """One band of the fit in progress; after the last, the new offsets replace the old (or,
        if their RMS passes the bound, the fit starts over a little fainter)."""
        fit = self._fit
        p = fit.entry.pattern
        if fit.plan is None:
            fit.plan = p.plan(fit.amplitude)
        r0, r1 = p.height * fit.band // BANDS, p.height * (fit.band + 1) // BANDS
        fit.total += p.quantise_rows(fit.plan, r0, r1, fit.out)
        fit.band += 1
        if fit.band < BANDS:
            return
        if fit.total > MAX_RMS ** 2 * fit.out.size and fit.plan.k >= 0.05:
            fit.plan.k *= 0.97
            fit.band, fit.total = 0, 0.0
            return
        fit.entry.adopt(fit.amplitude, fit.plan, fit.out, self.ctx)
        self._fit = None

    def _released(self, entry: _Sized, now: np.ndarray):
        """This frame's offsets on the device: the fitted ones, except where the picture is now
        flatter than the fit saw (`now` · RELEASE_NOW < the fitted amplitude at some point of the
        canonical grid): the boxes that hold those points (`_boxes`), and the frame pixels whose
        upsampling reads them (`_span`), are quantised again with the fit's base and scale
        (`MarkPattern.release_boxes`, in one pass: so never louder than the fit, and the RMS bound
        still holds) at the fitted amplitude where `now` is within RELEASE_NOW of it, at `now`
        where it is RELEASE_NOW² or more below, and in between at (now · RELEASE_NOW)² / fitted,
        which joins the two (three times as steep as `now` there, not a step): a point near the
        threshold, whose measure wavers with the camera's noise, does not flip between two
        strengths (a pattern that changes from frame to frame costs a video codec bits: with a
        plain min(now, fitted), swap d10 re-encoded at 300 kbit/s read 43 % of its frames
        against 52 %). Only those pixels are computed, and the last frame's boxes put back: in
        the swap s1 ← d10 at 1920×1080 the whole rows that held such a point were half the frame
        (p50), their boxes an eighth, and the pixels that read one fewer still."""
        low = now * RELEASE_NOW < entry.amplitude
        boxes = _boxes(low)
        if not boxes:
            return entry.mark
        p = entry.pattern
        if entry.released is None:
            entry.released = np.empty_like(entry.offsets)
        buf = entry.released
        if entry.dirty is None:
            np.copyto(buf, entry.offsets)
        else:
            for r0, r1, c0, c1 in entry.dirty:
                buf[r0:r1, c0:c1] = entry.offsets[r0:r1, c0:c1]
        fitted = entry.amplitude
        amp = np.minimum(fitted, np.maximum(now, (now * RELEASE_NOW) ** 2 / fitted))
        entry.dirty = [_span(i0, i1, p.height) + _span(j0, j1, p.width) for i0, i1, j0, j1 in boxes]
        p.release_boxes(entry.plan, amp, low, entry.dirty, buf)
        return self.ctx.upload(buf)
