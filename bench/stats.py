"""Latency statistics: percentiles of per-stage timings and of capture→sink latency.

Everything here is in milliseconds except `wall_s` (seconds). Percentiles are numpy's default
(linear interpolation between closest ranks, `np.percentile(..., method="linear")`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["summarize", "StageTimes", "PERCENTILES"]

PERCENTILES = (50, 95, 99)


def _clean(values_ms: Iterable[float | None]) -> np.ndarray:
    """Float64 array of the finite values (None / NaN / inf are dropped)."""
    a = np.asarray([np.nan if v is None else v for v in values_ms], dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def summarize(values_ms: Iterable[float | None]) -> dict:
    """Summary statistics of a list of durations in ms.

    Returns ``{"p50", "p95", "p99", "mean", "std", "n"}``: numpy percentiles (linear
    interpolation), the mean, the population standard deviation (ddof=0) and the number of
    finite values. None / NaN entries are ignored; with no finite value every statistic is
    None and n is 0 (so that the result stays valid JSON).
    """
    a = _clean(values_ms)
    if a.size == 0:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "std": None, "n": 0}
    p50, p95, p99 = np.percentile(a, PERCENTILES)
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99),
            "mean": float(a.mean()), "std": float(a.std()), "n": int(a.size)}


def _pcts(values_ms: Iterable[float | None]) -> dict:
    s = summarize(values_ms)
    return {"p50": s["p50"], "p95": s["p95"], "p99": s["p99"]}


class StageTimes:
    """Accumulates per-frame stage timings and capture→sink latencies.

    Call :meth:`add` once per frame the loop saw, in order, including frames it dropped
    (``dropped=True``; their timings may be empty and their latency None). Stages keep the
    order in which they were first seen, which is the pipeline order.

    >>> st = StageTimes()
    >>> st.add({"track": 2.0, "render": 1.0}, latency_ms=20.0)
    >>> st.skip_warmup(0)
    >>> st.to_dict(wall_s=1 / 30)["fps"]
    30.0
    """

    def __init__(self) -> None:
        self._records: list[dict] = []
        self._stages: dict[str, None] = {}  # ordered set
        self._warmup = 0

    # -- input -----------------------------------------------------------------------------
    def add(self, frame_timings: Mapping[str, float] | None, latency_ms: float | None,
            dropped: bool = False, *, index: int | None = None) -> None:
        """Record one frame: ``{stage: ms}``, its capture→sink latency (ms, or None) and
        whether it was dropped. `index` is the frame's capture index (defaults to the number
        of frames added so far)."""
        timings = {str(k): float(v) for k, v in (frame_timings or {}).items()}
        for k in timings:
            self._stages.setdefault(k, None)
        self._records.append({
            "index": len(self._records) if index is None else int(index),
            "latency_ms": None if latency_ms is None else float(latency_ms),
            "timings": timings,
            "dropped": bool(dropped),
        })

    def skip_warmup(self, n: int) -> None:
        """Exclude the first `n` frames added (dropped or not) from every statistic.

        May be called before or after the frames are added; the last call wins. Warm-up
        frames carry JIT compilation, cache misses and camera start-up."""
        if n < 0:
            raise ValueError(f"skip_warmup: n must be >= 0, got {n}")
        self._warmup = int(n)

    # -- output ----------------------------------------------------------------------------
    @property
    def stages(self) -> list[str]:
        """Stage names in pipeline (first-seen) order."""
        return list(self._stages)

    def counted(self) -> list[dict]:
        """The per-frame records after the warm-up frames."""
        return self._records[self._warmup:]

    def per_frame(self, include_warmup: bool = False) -> list[dict]:
        """Per-frame records ``{"index", "latency_ms", "timings", "dropped"}`` (copies),
        the format :func:`bench.report.plot` reads."""
        recs = self._records if include_warmup else self.counted()
        return [dict(r, timings=dict(r["timings"])) for r in recs]

    def __len__(self) -> int:
        return len(self._records)

    def to_dict(self, wall_s: float | None) -> dict:
        """Summary of the counted (post-warm-up) frames.

        `wall_s` is the wall-clock time in seconds spanned by the counted frames, measured by
        the caller (e.g. from the capture of the first counted frame to the sink write of the
        last). Returns exactly::

            {"fps": frames / wall_s (None without wall_s),
             "frames": counted frames that reached the sink (not dropped),
             "dropped": counted frames that were dropped,
             "latency_ms": {"p50", "p95", "p99"},            # capture→sink, not-dropped frames
             "stages_ms": {stage: {"p50", "p95", "p99"}}}    # every frame that timed the stage
        """
        recs = self.counted()
        done = [r for r in recs if not r["dropped"]]
        n_drop = len(recs) - len(done)
        fps = None
        if wall_s is not None and wall_s > 0:
            fps = len(done) / float(wall_s)
        stages = {}
        for s in self._stages:
            vals = [r["timings"][s] for r in recs if s in r["timings"]]
            if vals:
                stages[s] = _pcts(vals)
        return {
            "fps": fps,
            "frames": len(done),
            "dropped": n_drop,
            "latency_ms": _pcts(r["latency_ms"] for r in done),
            "stages_ms": stages,
        }
