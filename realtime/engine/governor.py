"""The real-time budget of the automatic render size, measured on the machine it runs on.

`choose_render_size` picks the face crop's size from the output (sharpness), capped by a CPU
budget measured on one 2-core machine (`MAX_RENDER_SIZE`). A slower CPU cannot draw that size
in real time: on a 2-core Xeon at 2.1 GHz, d10 → s1 at the automatic 400² ran at 30 fps but with
a capture→sink p95 of 47 ms (stage sum 28.6 ms of a 33.3 ms period, so frames queue), where
320² gave 31 ms and 256² 27 ms. So a live run (`run.py live --realtime` with no `--render-size`)
times the machine at start-up (`Engine._presize`: `presize`) and then watches its own frame times
for the whole run: while their median over a window is over `BUDGET` of the frame period, it steps
the render size down (`ladder`) to the largest rung predicted to fit, never below the profile's
own crop size. A machine is not only slow but busy, now and then (a video call or a browser on
the same two cores: two busy loops beside d10 → s1 took 10 % of the frames at 400², 1 % at 256²),
so it also steps back up once `RAISE_AFTER` windows in a row predict that a larger rung fits with
room to spare (`RAISE_MARGIN`): a start-up under load no longer keeps the smallest size for good.
A raise that overruns before it has held for `RAISE_AFTER` windows doubles the wait before the
next one (up to `RAISE_MAX` times), so a machine on the edge settles instead of flapping. Only
frames that drew a tracked face are judged (a lost face or a held frame costs less). A rebuild
costs about 80 ms (warp tier; ~200 ms under load), nothing before the first frame. CPU, warp and
atlas tiers only (`Engine._governor`).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["BUDGET", "RAISE_AFTER", "RAISE_MARGIN", "RAISE_MAX", "SCALABLE_STAGES", "RenderGovernor", "ladder"]

BUDGET = 0.7       # median frame time / frame period above which the render size steps down
WINDOW = 12        # frames per decision (0.4 s at 30 fps)
SETTLE = 3         # frames ignored after a start or a step (caches, the first tracking)
SCALABLE_STAGES = ("render", "generate", "smooth")   # their time scales with the crop's area
STEP = 0.8         # each rung is this fraction of the one above
RAISE_AFTER = 8    # windows in a row predicting a larger rung fits before stepping up (3.2 s at 30 fps)
RAISE_MARGIN = 0.9  # ... fits: its predicted median within this fraction of the budget
RAISE_MAX = 16     # a raise that overran doubles the wait, up to this many times RAISE_AFTER (51 s)


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
    """Decides, from per-frame processing times, when the engine should draw smaller or larger.

    `sizes`: the ladder (largest first; the engine starts on sizes[0]); `period_s`: the frame
    period. `observe(ms, scalable_ms)` takes one frame's processing time and the part of it that
    scales with the crop's area (render, generate, smooth). When the window's median exceeds
    `budget` × period it returns the rung to draw at: the largest smaller one whose time,
    predicted from the medians (the rest kept, the scalable part × the area ratio), fits — else
    the last — so a slow machine gets there in one rebuild. When `raise_after` windows in a row
    predict that a larger rung fits within `RAISE_MARGIN` of the budget, it returns the largest
    such rung (the load that made it step down has gone). Otherwise None. A raise stepped down
    from before it held for `raise_after` windows doubles the windows the next raise waits for
    (at most `RAISE_MAX` × `raise_after`); one that holds resets the wait."""

    def __init__(self, sizes: list[int], period_s: float, budget: float = BUDGET,
                 window: int = WINDOW, settle: int = SETTLE, raise_after: int = RAISE_AFTER):
        if not sizes or period_s <= 0 or not 0 < budget <= 1 or window < 1 or settle < 0 or raise_after < 1:
            raise ValueError(f"RenderGovernor: sizes {sizes}, period {period_s} s, budget {budget}, "
                             f"window {window}, settle {settle}, raise_after {raise_after}")
        self.sizes, self.limit_ms = list(sizes), budget * period_s * 1e3
        self.window, self.settle, self.raise_after = int(window), int(settle), int(raise_after)
        self.rung = 0
        self.steps: list[tuple[int, int, float]] = []   # (from, to, median ms) of each step, down or up
        self.predicted: set[int] = set()   # indices into `steps` of those `presize` took (a timed frame)
        self._times: list[tuple[float, float]] = []
        self._skip = self.settle
        self._roomy = 0                    # windows in a row predicting a larger rung fits
        self._wait = self.raise_after      # ... needed for a raise
        self._held: int | None = None      # windows judged since a raise (None: the last step was down)

    @property
    def size(self) -> int:
        return self.sizes[self.rung]

    @property
    def lowered(self) -> bool:
        """Drawing below the ladder's first rung."""
        return self.rung > 0

    @property
    def raise_wait(self) -> int:
        """Windows in a row that must predict a larger rung fits before it steps up."""
        return self._wait

    def observe(self, ms: float, scalable_ms: float = 0.0) -> int | None:
        if self._skip > 0:
            self._skip -= 1
            return None
        self._times.append((float(ms), min(float(scalable_ms), float(ms))))
        if len(self._times) < self.window:
            return None
        total, scalable = (float(v) for v in np.median(np.asarray(self._times), axis=0))
        self._times = []
        if total > self.limit_ms:
            self._roomy = 0
            if self.rung == len(self.sizes) - 1:
                return None                   # nothing smaller: the frames are dropped instead
            if self._held is not None and self._held < self.raise_after:   # a raise that did not hold
                self._wait = min(2 * self._wait, RAISE_MAX * self.raise_after)
            return self._step(total, scalable)
        if self._held is not None:
            self._held += 1
            if self._held >= self.raise_after:
                self._wait, self._held = self.raise_after, None    # it held: the next raise waits as usual
        up = self._larger(total, scalable)
        self._roomy = self._roomy + 1 if up is not None else 0
        if up is None or self._roomy < self._wait:
            return None
        self.steps.append((self.size, self.sizes[up], total))
        self.rung, self._held = up, 0
        self._times, self._skip, self._roomy = [], self.settle, 0
        return self.size

    def _larger(self, total: float, scalable: float) -> int | None:
        """The largest rung above this one predicted to fit within RAISE_MARGIN of the budget
        (a frame measured at this size: `total` ms, of it `scalable`), or None."""
        for rung in range(self.rung):
            if total - scalable + scalable * (self.sizes[rung] / self.size) ** 2 <= RAISE_MARGIN * self.limit_ms:
                return rung
        return None

    def presize(self, total_ms: float, scalable_ms: float) -> int | None:
        """Before the first frame: the rung predicted to fit for a frame measured at the current
        size (`total_ms`, of it `scalable_ms`), or None when it fits. Watching goes on either
        way (a prediction is checked against the real frames)."""
        if self.rung == len(self.sizes) - 1 or total_ms <= self.limit_ms:
            return None
        self.predicted.add(len(self.steps))
        return self._step(float(total_ms), min(float(scalable_ms), float(total_ms)))

    def _step(self, total: float, scalable: float) -> int:
        """Move to the largest smaller rung predicted to fit (else the last); returns its size."""
        was, rung = self.size, self.rung + 1
        while rung < len(self.sizes) - 1 and \
                total - scalable + scalable * (self.sizes[rung] / was) ** 2 > self.limit_ms:
            rung += 1
        self.steps.append((was, self.sizes[rung], total))
        self.rung, self._held, self._roomy = rung, None, 0
        self._times, self._skip = [], self.settle     # a new window at the new size
        return self.size
