"""The real-time budget of the automatic render size, measured on the machine it runs on.

`choose_render_size` picks the face crop's size from the output (sharpness), capped by a CPU
budget measured on one 2-core machine (`MAX_RENDER_SIZE`). A slower CPU cannot draw that size
in real time: on a 2-core Xeon at 2.1 GHz, d10 → s1 at the automatic 400² ran at 30 fps but with
a capture→sink p95 of 47 ms (stage sum 28.6 ms of a 33.3 ms period, so frames queue), where
320² gave 31 ms and 256² 27 ms. So a live run (`run.py live --realtime` with no `--render-size`)
watches its own frame times for the first seconds and, while their median is over `BUDGET` of
the frame period, steps the render size down a rung (`ladder`), once per window, never below
the profile's own crop size. Only frames that drew a tracked face are judged (a lost face or a
held frame costs less). It only ever steps down, and stops watching after the first window that
fits, so it cannot oscillate; a rebuild costs about 80 ms (warp tier). CPU, warp and atlas tiers
only (`Engine._governor`).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["BUDGET", "RenderGovernor", "ladder"]

BUDGET = 0.8       # median frame time / frame period above which the render size steps down
WINDOW = 30        # frames per decision (one second at 30 fps)
SETTLE = 10        # frames ignored after a start or a step (caches, the first tracking)
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
    period. `observe(ms)` takes one frame's processing time and returns the next rung's size
    when the window's median exceeds `budget` × period, else None. `done` once a window fits or
    the ladder's last rung is reached."""

    def __init__(self, sizes: list[int], period_s: float, budget: float = BUDGET,
                 window: int = WINDOW, settle: int = SETTLE):
        if not sizes or period_s <= 0 or not 0 < budget <= 1 or window < 1 or settle < 0:
            raise ValueError(f"RenderGovernor: sizes {sizes}, period {period_s} s, budget {budget}, "
                             f"window {window}, settle {settle}")
        self.sizes, self.limit_ms = list(sizes), budget * period_s * 1e3
        self.window, self.settle = int(window), int(settle)
        self.rung = 0
        self.steps: list[tuple[int, int, float]] = []   # (from, to, median ms) of each step down
        self._times: list[float] = []
        self._skip = self.settle
        self._fits = False

    @property
    def size(self) -> int:
        return self.sizes[self.rung]

    @property
    def done(self) -> bool:
        return self.rung == len(self.sizes) - 1 or self._fits

    def observe(self, ms: float) -> int | None:
        if self.done:
            return None
        if self._skip > 0:
            self._skip -= 1
            return None
        self._times.append(float(ms))
        if len(self._times) < self.window:
            return None
        median = float(np.median(self._times))
        if median <= self.limit_ms:
            self._fits = True        # this size fits: stop watching
            return None
        self.steps.append((self.size, self.sizes[self.rung + 1], median))
        self.rung += 1
        self._times, self._skip = [], self.settle
        return self.size
