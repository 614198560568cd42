"""Benchmark output: a Markdown table for people on a terminal, JSON for machines, a PNG plot.

A *result* is what :meth:`bench.stats.StageTimes.to_dict` returns, optionally extended with
``"quality": {metric: value}``, ``"device": str``, ``"machine": bench.machine.machine_info()``,
``"name": str``. A *comparison* is ``{"variants": {label: result, ...}, "baseline": label}``
(baseline defaults to the first variant); it is reported side by side with ratio columns
``variant / baseline``.
"""
from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.usage import UsageError
from realtime.core.paths import out_of_space, write_atomic

__all__ = ["markdown_table", "write_json", "plot", "plot_formats", "save_figure", "write_output", "write_outputs",
           "report_and_write", "stopped_reporting", "stopped_writing", "BUDGET_MS", "drop_runs", "frame_budget"]

BUDGET_MS = 1000.0 / 30.0  # DESIGN §9: p95 capture→sink ≤ 33 ms on the CPU tier (a 30 fps driver)


def frame_budget(fps: float | None) -> tuple[float, float]:
    """(budget ms, fps) of the plot's budget line: one frame period of the driver's `fps` (a
    25 fps clip has 40 ms for each frame); `BUDGET_MS` (30 fps) when the rate is not known."""
    if fps is None or not math.isfinite(fps) or fps <= 0:
        fps = 30.0
    return 1000.0 / fps, float(fps)


_PCTS = ("p50", "p95", "p99")


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------

def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(f):
        return "nan"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    if f != 0 and abs(f) < 10 ** -nd:
        return f"{f:.{nd}e}"
    return f"{f:.{nd}f}"


def _ms(v: Any) -> str:
    """A time in ms, as `_fmt`; a few µs read '<0.01', not '5.26e-03' in a column of ms."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) \
            and 0 < float(v) < 0.01:
        return "<0.01"
    return _fmt(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    align = align or ("l" + "r" * (len(header) - 1))
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _is_comparison(result: Mapping) -> bool:
    return isinstance(result, Mapping) and "variants" in result


def _drop_str(r: Mapping) -> str:
    frames, dropped = r.get("frames") or 0, r.get("dropped") or 0
    total = frames + dropped
    pct = 100.0 * dropped / total if total else 0.0
    return f"{dropped} ({pct:.1f}%)"


def _single_table(r: Mapping) -> str:
    parts = []
    title = r.get("name")
    if title:
        parts.append(f"### {title}")
    stages = r.get("stages_ms") or {}
    rows = [[s, *(_ms(v.get(p)) for p in _PCTS)] for s, v in stages.items()]
    lat = r.get("latency_ms") or {}
    rows.append(["**capture→sink**", *(_ms(lat.get(p)) for p in _PCTS)])
    parts.append(_table(["stage", "p50 ms", "p95 ms", "p99 ms"], rows))
    tot = [["fps", _fmt(r.get("fps"), 1)],
           ["frames", _fmt(r.get("frames"))],
           ["dropped", _drop_str(r)],
           *([["held (nothing came in time; in frames)", r["held"]]] if r.get("held") else []),
           ["latency p50 / p95 / p99 ms", " / ".join(_ms(lat.get(p)) for p in _PCTS)]]
    if r.get("device"):
        tot.append(["device", r["device"]])
    parts.append(_table(["total", "value"], tot))
    q = r.get("quality") or {}
    if q:
        parts.append(_table(["quality", "value"], [[k, _fmt(v, 4)] for k, v in q.items()]))
    return "\n\n".join(parts)


def _ratio(v, base) -> str:
    try:
        v, base = float(v), float(base)
    except (TypeError, ValueError):
        return "–"
    if not (math.isfinite(v) and math.isfinite(base)):
        return "–"
    if base == 0:
        return "same" if v == 0 else "–"      # both 0 (none dropped): nothing to divide, nothing differs
    return f"{v / base:.2f}×"


def _comparison_table(result: Mapping) -> str:
    variants: Mapping[str, Mapping] = result["variants"]
    labels = list(variants)
    if not labels:
        return "(no variants)"
    base = result.get("baseline") or labels[0]
    if base not in variants:
        raise ValueError(f"baseline {base!r} is not one of the variants {labels}")
    others = [l for l in labels if l != base]
    rows: list[tuple[str, list]] = []  # (row name, values per variant)
    stage_names: list[str] = []
    for l in labels:
        for s in (variants[l].get("stages_ms") or {}):
            if s not in stage_names:
                stage_names.append(s)
    for s in stage_names:
        for p in ("p50", "p95"):
            rows.append((f"{s} {p} ms",
                         [((variants[l].get("stages_ms") or {}).get(s) or {}).get(p) for l in labels]))
    for p in _PCTS:
        rows.append((f"**capture→sink {p} ms**",
                     [(variants[l].get("latency_ms") or {}).get(p) for l in labels]))
    rows.append(("**fps**", [variants[l].get("fps") for l in labels]))
    rows.append(("frames", [variants[l].get("frames") for l in labels]))
    rows.append(("dropped", [variants[l].get("dropped") for l in labels]))
    qnames: list[str] = []
    for l in labels:
        for k in (variants[l].get("quality") or {}):
            if k not in qnames:
                qnames.append(k)
    for k in qnames:
        rows.append((k, [(variants[l].get("quality") or {}).get(k) for l in labels]))
    header = ["metric", *labels, *(f"{o} / {base}" for o in others)]
    bi = labels.index(base)
    body = []
    for name, vals in rows:
        nd = 4 if name in qnames else (1 if name == "**fps**" else 2)
        cells = [_ms(v) if name.endswith(" ms") or name.endswith(" ms**") else _fmt(v, nd) for v in vals]
        ratios = [_ratio(vals[labels.index(o)], vals[bi]) for o in others]
        body.append([name, *cells, *ratios])
    out = [_table(header, body)]
    legend = []
    if any("–" in row[1:1 + len(labels)] for row in body):
        legend.append("a value – was not measured in that run")
    if any("–" in row[1 + len(labels):] and "–" not in row[1:1 + len(labels)] for row in body):
        legend.append(f"a ratio – has nothing to divide by (the {base} value is 0)")
    if legend:
        out.append("; ".join(legend))
    devs = {l: variants[l].get("device") for l in labels if variants[l].get("device")}
    if devs:
        out.append("devices: " + "; ".join(f"{l}: {d}" for l, d in devs.items()))
    return "\n\n".join(out)


def markdown_table(result: Mapping) -> str:
    """Markdown for one result (stage rows p50/p95/p99 ms + capture→sink row, then totals
    fps / frames / drops / latency, then quality metrics if any) or for a comparison
    (one column per variant, then one ratio column `variant / baseline` per other variant;
    stage rows show p50 and p95; then fps, frames delivered, drops, quality)."""
    if _is_comparison(result):
        return _comparison_table(result)
    return _single_table(result)


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------

def _jsonable(o: Any) -> Any:
    if isinstance(o, Mapping):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, (np.bool_, bool)):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, (float, np.floating)):
        f = float(o)
        return f if math.isfinite(f) else None  # strict JSON has no NaN / inf
    if isinstance(o, Path):
        return str(o)
    return o


def write_json(path: str | os.PathLike, result: Any) -> Path:
    """Write `result` as indented strict JSON (numpy scalars/arrays converted, NaN/inf → null),
    creating parent folders; the file is replaced atomically. Returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(p, json.dumps(_jsonable(result), indent=2, allow_nan=False) + "\n")


def write_output(flag: str, path: str | os.PathLike, write: Callable[[], object]) -> None:
    """Call `write`, which writes the bench's output `path` (given as `flag`) whole or not at
    all; UsageError naming both when the system refuses the write (a full disk, a quota, a
    folder that went away or read-only after the bench's check before it ran). An OSError about
    another file (`_about_output`: a font matplotlib could not open while drawing) is no refused
    write: it propagates, naming its file."""
    try:
        write()
    except OSError as exc:
        if not _about_output(exc, path):
            raise
        why = exc.strerror or type(exc).__name__
        hint = ": free some space, or choose another file" if out_of_space(exc) else ""
        raise UsageError(f"cannot write {os.fspath(path)} ({flag}): {why}{hint}") from None


def report_and_write(report: str, outputs: Sequence[tuple[str, str | os.PathLike, Callable[[], object]]]) -> None:
    """Print the bench's `report` (the whole run is measured by then), then write its `outputs`
    (`write_outputs`). A Ctrl-C (or run.py's SIGTERM) while the report is printed goes on up
    saying so (`stopped_reporting`): none of the outputs is written, or none was asked for;
    `bench.cli.STOPPED` (the report and the files come only once the whole run is measured)
    would not be true."""
    try:
        print(report)
    except KeyboardInterrupt as stop:
        if not str(stop):
            stop.args = (stopped_reporting([(flag, path) for flag, path, _ in outputs]),)
        raise
    write_outputs(outputs)


def stopped_reporting(outputs: Sequence[tuple[str, str | os.PathLike]]) -> str:
    """What a bench stopped while it printed its report says: the run was measured, the report
    is cut short, and its `outputs` (``(flag, path)``) are not written (each as it was before)."""
    files = (f"; {', '.join(f'{flag} {os.fspath(path)}' for flag, path in outputs)} not written" if outputs
             else " (no file was asked for)")
    return ("stopped while the bench printed its report, after the whole run was measured: the report is "
            f"cut short{files}")


def write_outputs(outputs: Sequence[tuple[str, str | os.PathLike, Callable[[], object]]]) -> None:
    """Write the bench's outputs in turn, each ``(flag, path, write)`` through `write_output`,
    saying ``wrote PATH`` after each (the first after a blank line, below the report). A Ctrl-C
    (or run.py's SIGTERM) among them goes on up saying which are written and which not
    (`stopped_writing`): the run is measured and reported by then, so `bench.cli.STOPPED` (the
    files come only once the whole run is measured) would not be true."""
    written = 0
    try:
        for flag, path, write in outputs:
            write_output(flag, path, write)
            written += 1
            gap = "\n" if written == 1 else ""
            print(f"{gap}wrote {os.fspath(path)}")
    except KeyboardInterrupt as stop:
        if not str(stop):
            stop.args = (stopped_writing([(flag, path) for flag, path, _ in outputs], written),)
        raise


def stopped_writing(outputs: Sequence[tuple[str, str | os.PathLike]], written: int) -> str:
    """What a bench stopped while writing its `outputs` (``(flag, path)``, in the order they are
    written) says, the first `written` of them whole; each of the others is as it was before."""
    def named(part: Sequence[tuple[str, str | os.PathLike]]) -> str:
        return ", ".join(f"{flag} {os.fspath(path)}" for flag, path in part)
    done = f"{named(outputs[:written])} written; " if written else ""
    return f"stopped while the bench wrote its files, after its report: {done}{named(outputs[written:])} not written"


def _about_output(exc: OSError, path: str | os.PathLike) -> bool:
    """Whether `exc` is the system's answer to writing the output `path`: it names no file (a
    write, an fsync), or `path`, a file beside it (its hidden partial file) or a folder above it
    (a mkdir)."""
    if not isinstance(exc.filename, (str, bytes, os.PathLike)):
        return True
    out, named = Path(os.path.abspath(path)), Path(os.path.abspath(os.fsdecode(exc.filename)))
    return named == out or named.parent == out.parent or named in out.parents


def save_figure(fig, path: str | os.PathLike, **savefig: Any) -> Path:
    """Write the matplotlib figure `fig` to `path` whole or not at all: drawn in memory in the
    format its suffix names, then `write_atomic`, so a Ctrl-C or a full disk mid-write leaves the
    file that was there (or none), never a truncated picture. Returns `path` as a Path."""
    p = Path(path)
    blob = io.BytesIO()
    fig.savefig(blob, format=p.suffix[1:].lower() or None, **savefig)
    return write_atomic(p, blob.getvalue())


# ---------------------------------------------------------------------------------------------
# Plot
# ---------------------------------------------------------------------------------------------

def _machine_line(r: Mapping) -> str:
    m = r.get("machine") or {}
    if not m:
        return ""
    bits = [m.get("cpu") or ""]
    if m.get("cores_usable") or m.get("cores"):
        bits[0] += f" ({m.get('cores_usable') or m.get('cores')} cores)"
    if m.get("gpu"):
        bits.append(", ".join(g.get("name", "?") for g in m["gpu"]))
    if m.get("git_commit"):
        bits.append("git " + m["git_commit"][:8] + ("+dirty" if m.get("git_dirty") else ""))
    return " · ".join(b for b in bits if b)


def _lat_array(per_frame: Sequence[Mapping]) -> np.ndarray:
    return np.array([np.nan if (f.get("dropped") or f.get("latency_ms") is None)
                     else float(f["latency_ms"]) for f in per_frame], dtype=np.float64)


def _stage_order(result: Mapping, per_frame: Sequence[Mapping]) -> list[str]:
    names = list(result.get("stages_ms") or {})
    for f in per_frame:
        for s in (f.get("timings") or {}):
            if s not in names:
                names.append(s)
    return names


def drop_runs(index: Iterable[float], dropped: Iterable[bool]) -> list[tuple[float, float]]:
    """(start, width) in frame-index units of each run of consecutive dropped frames, each frame
    one unit wide centred on its index: the timeline's red bands (one per run, not per frame:
    a run that dropped most of its frames has thousands)."""
    runs: list[tuple[float, float]] = []
    for i, d in zip(index, dropped):
        if not d:
            continue
        if runs and runs[-1][0] + runs[-1][1] == i - 0.5:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1.0)
        else:
            runs.append((i - 0.5, 1.0))
    return runs


def _timeline(ax, result: Mapping, per_frame: Sequence[Mapping], colors: dict, budget_ms: float,
              label: str | None, show_legend: bool, budget_label: str = "") -> float:
    idx = np.array([f.get("index", i) for i, f in enumerate(per_frame)], dtype=np.float64)
    stages = _stage_order(result, per_frame)
    dropped = np.array([bool(f.get("dropped")) for f in per_frame], dtype=bool)
    # a dropped frame has no stage times: a gap in the stack (a red band below), not a dip to 0
    Y = np.array([[np.nan if d else float((f.get("timings") or {}).get(s, 0.0))
                   for f, d in zip(per_frame, dropped)] for s in stages]) if stages else np.zeros((0, len(per_frame)))
    if len(stages):
        # each frame a step one index wide: a frame between two drops keeps its stack
        ax.stackplot(np.repeat(idx, 2) + np.tile([-0.5, 0.5], len(idx)), np.repeat(Y, 2, axis=1),
                     labels=stages, colors=[colors[s] for s in stages], alpha=0.85, linewidth=0)
    lat = _lat_array(per_frame)
    ax.plot(idx, lat, color="black", lw=0.9, label="capture→sink latency")
    # a frame between two dropped ones has no neighbour to draw a segment to: a dot, or the line
    # leaves out its latency (every other frame, where half of them drop)
    ok = np.isfinite(lat)
    alone = ok & ~np.r_[False, ok[:-1]] & ~np.r_[ok[1:], False]
    if alone.any():
        ax.plot(idx[alone], lat[alone], linestyle="none", marker="o", markersize=2.5, color="black")
    ax.axhline(budget_ms, color="crimson", ls="--", lw=1.0, label=budget_label or f"budget {budget_ms:.1f} ms")
    if dropped.any():   # the full height, in axes units: visible at any latency scale
        ax.broken_barh(drop_runs(idx, dropped), (0.0, 1.0), transform=ax.get_xaxis_transform(),
                       facecolors="red", alpha=0.3, linewidth=0, label=f"dropped ({int(dropped.sum())})")
    top = np.nanmax(np.concatenate([lat[np.isfinite(lat)], Y.sum(0)[~dropped] if len(stages) else [],
                                    [budget_ms]]))
    ax.set_ylim(0, top * 1.12)
    if len(idx):
        ax.set_xlim(idx.min() - 0.5, idx.max() + 0.5)
    ax.set_ylabel("ms")
    ax.grid(alpha=0.3)
    if label:
        ax.set_title(label, fontsize=10, loc="left")
    if show_legend:
        # stages listed top-down in the order they stack bottom-up, outside the data
        h, l = ax.get_legend_handles_labels()
        k = len(stages)
        order = list(range(k - 1, -1, -1)) + list(range(k, len(h)))
        ax.legend([h[j] for j in order], [l[j] for j in order], loc="upper left",
                  bbox_to_anchor=(1.005, 1.0), fontsize=8, framealpha=0.9, borderaxespad=0)
    return top * 1.12


def plot_formats() -> set[str]:
    """The file extensions (lower case, no dot) `plot` can write: matplotlib's own formats."""
    from matplotlib.backend_bases import FigureCanvasBase  # noqa: PLC0415 - matplotlib only when asked

    return set(FigureCanvasBase.get_supported_filetypes())


def plot(result_or_results: Mapping, per_frame: Sequence[Mapping] | Mapping[str, Sequence[Mapping]],
         path: str | os.PathLike, fps: float | None = None) -> Path:
    """One PNG read at a glance (matplotlib, Agg backend).

    Left: histogram of capture→sink latency with p50/p95/p99 lines and the budget line: one
    frame period of the driver (`frame_budget`: 1000 / `fps`, e.g. 40 ms at 25 fps; None: the
    result's ``driver_fps``, else 30 fps), one line for all variants (they play one driver).
    Right: per-frame timeline — stage times stacked (stackplot, pipeline order, one step a frame),
    capture→sink latency as a black line, the budget dashed, dropped frames as red bands the
    full height of the plot (a gap in the stack, `drop_runs`). Title: fps, p95, drops, device,
    machine.

    `result_or_results`: a result dict, or a comparison ``{"variants": {label: result}}`` —
    then `per_frame` is ``{label: per_frame_list}`` (or a list of lists in variant order), the
    histograms are overlaid and there is one timeline per variant.
    `per_frame` items: ``{"index", "latency_ms", "timings": {stage: ms}, "dropped"}``.
    """
    # Agg canvas on a bare Figure: no pyplot state, no global backend switch for the caller.
    import matplotlib  # noqa: PLC0415 - matplotlib only when a plot is asked for
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - ditto
    from matplotlib.figure import Figure  # noqa: PLC0415 - ditto

    if _is_comparison(result_or_results):
        results = dict(result_or_results["variants"])
        if isinstance(per_frame, Mapping):
            pfs = {l: list(per_frame.get(l, [])) for l in results}
        else:
            pfs = dict(zip(results, per_frame))
    else:
        label = result_or_results.get("name") or "run"
        results = {label: result_or_results}
        pfs = {label: list(per_frame)}
    labels = list(results)
    n = len(labels)
    if fps is None:
        fps = next((results[l]["driver_fps"] for l in labels if results[l].get("driver_fps")), None)
    budget_ms, fps = frame_budget(fps)
    budget_label = f"budget {budget_ms:.1f} ms (1 frame at {fps:g} fps)"

    all_stages: list[str] = []
    for l in labels:
        for s in _stage_order(results[l], pfs[l]):
            if s not in all_stages:
                all_stages.append(s)
    cmap = matplotlib.colormaps["tab20" if len(all_stages) > 10 else "tab10"]
    colors = {s: cmap(i % cmap.N) for i, s in enumerate(all_stages)}
    vcolors = matplotlib.colormaps["tab10"]

    fig = Figure(figsize=(15, 4.2 + 2.6 * (n - 1)), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(n, 2, width_ratios=[1, 2.3])
    axh = fig.add_subplot(gs[:, 0])

    lats = {l: _lat_array(pfs[l]) for l in labels}
    finite = np.concatenate([v[np.isfinite(v)] for v in lats.values()] + [np.array([budget_ms])])
    hi = max(float(np.percentile(finite, 99.5)) * 1.15, budget_ms * 1.1)
    bins = np.linspace(0, hi, 60)
    for i, l in enumerate(labels):
        v = lats[l][np.isfinite(lats[l])]
        col = "steelblue" if n == 1 else vcolors(i)
        if v.size == 0:
            continue
        if n == 1:
            axh.hist(np.clip(v, 0, hi), bins=bins, color=col, alpha=0.8)
        else:
            axh.hist(np.clip(v, 0, hi), bins=bins, histtype="step", lw=1.6, color=col, label=l)
        p50, p95, p99 = np.percentile(v, (50, 95, 99))
        for p, val, ls in (("p50", p50, "-"), ("p95", p95, "--"), ("p99", p99, ":")):
            axh.axvline(val, color="black" if n == 1 else col, ls=ls, lw=1.2,
                        label=f"{p} {val:.1f} ms" if n == 1 else None)
    axh.axvline(budget_ms, color="crimson", lw=2.0, label=budget_label)
    axh.set_xlim(0, hi)
    clipped = sum(int((v > hi).sum()) for v in lats.values())
    axh.set_xlabel("capture→sink latency (ms)"
                   + (f"   [{clipped} frames > {hi:.0f} ms in the last bin]" if clipped else ""))
    axh.set_ylabel("frames")
    axh.grid(alpha=0.3)
    if n > 1:
        axh.plot([], [], color="black", ls="-", label="p50")
        axh.plot([], [], color="black", ls="--", label="p95")
        axh.plot([], [], color="black", ls=":", label="p99")
    axh.legend(fontsize=8, loc="best")
    axh.set_title("latency histogram", fontsize=10, loc="left")

    ax0 = None
    tops = []
    for i, l in enumerate(labels):
        ax = fig.add_subplot(gs[i, 1], sharey=ax0) if ax0 is not None else fig.add_subplot(gs[i, 1])
        ax0 = ax0 or ax
        r = results[l]
        sub = None
        if n > 1:
            p95 = (r.get('latency_ms') or {}).get('p95')
            sub = f"{l}: {_fmt(r.get('fps'), 1)} fps, p95 {_fmt(p95, 1)} ms"
        tops.append(_timeline(ax, r, pfs[l], colors, budget_ms,
                              sub if n > 1 else "per-frame timeline (stacked stages)",
                              show_legend=(i == 0), budget_label=budget_label))
        if i == n - 1:
            ax.set_xlabel("frame index")
    ax0.set_ylim(0, max(tops))  # timelines share y: the largest top

    if n == 1:
        r = results[labels[0]]
        lat = r.get("latency_ms") or {}
        head = (f"{_fmt(r.get('fps'), 1)} fps · capture→sink p50 {_fmt(lat.get('p50'), 1)} / "
                f"p95 {_fmt(lat.get('p95'), 1)} / p99 {_fmt(lat.get('p99'), 1)} ms · "
                f"dropped {_drop_str(r)}")
        dev = r.get("device")
    else:
        head = " vs ".join(f"{l} {_fmt(results[l].get('fps'), 1)} fps" for l in labels)
        devs = [results[l].get("device") for l in labels if results[l].get("device")]
        dev = " / ".join(dict.fromkeys(devs)) if devs else None
    sub = " · ".join(x for x in (f"device: {dev}" if dev else "",
                                 _machine_line(results[labels[0]])) if x)
    fig.suptitle(head + ("\n" + sub if sub else ""), fontsize=11)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, p)
