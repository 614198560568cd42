"""The real-time budget of the automatic render size, measured on the machine it runs on.

`choose_render_size` picks the face crop's size from the output (sharpness), capped by a CPU
budget measured on one 2-core machine (`MAX_RENDER_SIZE`). A slower CPU cannot draw that size
in real time: on a 2-core Xeon at 2.1 GHz, d10 → s1 at the automatic 400² ran at 30 fps but with
a capture→sink p95 of 47 ms (stage sum 28.6 ms of a 33.3 ms period, so frames queue), where
320² gave 31 ms and 256² 27 ms. So a live run (`run.py live --realtime` with no `--render-size`)
times the machine at start-up (`Engine._presize`: `presize`) and then watches its own frame times
for the first frames; while their median is over `BUDGET` of the frame period, it steps the render
size down (`ladder`) to the largest rung predicted to fit, never below the profile's own crop size.
Only frames that drew a tracked face are judged (a lost face or a held frame costs less). It only
ever steps down, and stops watching after the first window that fits, so it cannot oscillate; a
rebuild costs about 80 ms (warp tier), nothing before the first frame. CPU, warp and atlas tiers
only (`Engine._governor`).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["BUDGET", "SCALABLE_STAGES", "RenderGovernor", "ladder"]

BUDGET = 0.7       # median frame time / frame period above which the render size steps down
WINDOW = 12        # frames per decision (0.4 s at 30 fps)
SETTLE = 3         # frames ignored after a start or a step (caches, the first tracking)
SCALABLE_STAGES = ("render", "generate", "smooth")   # their time scales with the crop's area
STEP = 0.8         # each rung is this fraction of the one above


def ladder(size: int, floor: int, multiple: int, step: float = STEP) -> list[int]:
    """Render sizes from `size` down to `floor` (both kept), each about `step` × the one above,
    rounded up to `multiple`: e.g. ladder(400, 256, 16) = [400, 320, 256]."""
    if size <= floor:
        return [int(size)]
    sizes = [int(size)]
    while True:
        nxt = int(math.ceil(sizes[-1] * step / multiple - 1e-9)) * multiple
        if nxt < floor * 1.1 or nxt >= sizes[-1]:   # no rung a sliver above the floor
            break
        sizes.append(nxt)
    sizes.append(int(floor))
    return sizes


class RenderGovernor:
    """Decides, from per-frame processing times, when the engine should draw smaller.

    `sizes`: the ladder (largest first; the engine starts on sizes[0]); `period_s`: the frame
    period. `observe(ms, scalable_ms)` takes one frame's processing time and the part of it that
    scales with the crop's area (render, generate, smooth). When the window's median exceeds
    `budget` × period it returns the rung to draw at: the largest smaller one whose time,
    predicted from the medians (the rest kept, the scalable part × the area ratio), fits — else
    the last — so a slow machine gets there in one rebuild; otherwise None. `done` once a window
    fits or the ladder's last rung is reached."""

    def __init__(self, sizes: list[int], period_s: float, budget: float = BUDGET,
                 window: int = WINDOW, settle: int = SETTLE):
        if not sizes or period_s <= 0 or not 0 < budget <= 1 or window < 1 or settle < 0:
            raise ValueError(f"RenderGovernor: sizes {sizes}, period {period_s} s, budget {budget}, "
                             f"window {window}, settle {settle}")
        self.sizes, self.limit_ms = list(sizes), budget * period_s * 1e3
        self.window, self.settle = int(window), int(settle)
        self.rung = 0
        self.steps: list[tuple[int, int, float]] = []   # (from, to, median ms) of each step down
        self._times: list[tuple[float, float]] = []
        self._skip = self.settle
        self._fits = False

    @property
    def size(self) -> int:
        return self.sizes[self.rung]

    @property
    def done(self) -> bool:
        return self.rung == len(self.sizes) - 1 or self._fits

    def observe(self, ms: float, scalable_ms: float = 0.0) -> int | None:
        if self.done:
            return None
        if self._skip > 0:
            self._skip -= 1
            return None
        self._times.append((float(ms), min(float(scalable_ms), float(ms))))
        if len(self._times) < self.window:
            return None
        total, scalable = (float(v) for v in np.median(np.asarray(self._times), axis=0))
        self._times, self._skip = [], self.settle
        if total <= self.limit_ms:
            self._fits = True        # this size fits: stop watching
            return None
        return self._step(total, scalable)

    def presize(self, total_ms: float, scalable_ms: float) -> int | None:
        """Before the first frame: the rung predicted to fit for a frame measured at the current
        size (`total_ms`, of it `scalable_ms`), or None when it fits. Watching goes on either
        way (a prediction is checked against the real frames)."""
        if self.done or total_ms <= self.limit_ms:
            return None
        return self._step(float(total_ms), min(float(scalable_ms), float(total_ms)))

    def _step(self, total: float, scalable: float) -> int:
        """Move to the largest smaller rung predicted to fit (else the last); returns its size."""
        was, rung = self.size, self.rung + 1
        while rung < len(self.sizes) - 1 and \
                total - scalable + scalable * (self.sizes[rung] / was) ** 2 > self.limit_ms:
            rung += 1
        self.steps.append((was, self.sizes[rung], total))
        self.rung = rung
        self._times, self._skip = [], self.settle     # a new window at the new size
        return self.size
