"""`run.py bench --streams N`: N independent engines sharing one device, each playing its own
driver at that clip's own rate, and the largest N that still holds that rate (up to 30 fps)
with p95 ≤ 33 ms.

    run.py bench --streams 3 --profile s1,s5,s12 --driver d10.mp4,d14.mp4,d19.mp4 [--frames F]
                 [--device cpu|cuda] [--stream-mode thread|process] [--json J] [--plot P]

Stream i (0-based) drives profile ``i mod P`` with driver ``i mod D`` (P profiles, D drivers,
comma-separated). ``--streams N`` tries 1, 2, ..., N streams; ``--streams 1,2,4,8`` those
counts. For each count every stream is measured as the latency pass measures one engine
(`bench.latency.run_block`: a realtime Grabber paces the clip at its fps, newest frame wins, a
realtime null sink; the first ``--warmup`` frames are not counted) and all of them start
together (a barrier, after every engine was built and warmed up). A stream *holds* when it
delivers at least `FPS_TOLERANCE` of its clip's rate, up to `HOLD_FPS` (29.1 fps for a 30 fps
clip: at most 3% dropped; 24.25 for a 25 fps one) with capture→sink p95 ≤ `P95_LIMIT_MS`; a
count holds when every stream does. Counts are tried in increasing order and the ramp stops
after two counts in a row that do not hold.

Before anything runs (`check_streams_args`): the options of the single bench the streams do
not use are refused, not ignored (--mode swap, --pose-from, --floor, --frame, ...), the
--json / --plot files are checked as the bench checks its own (`bench.benchmark.check_outputs`:
never onto a driver or a profile's file, a folder, a plot format matplotlib does not write),
and a driver no longer than --warmup is refused (nothing left to measure).

Threads, not processes, by default, because that is how one GPU serves many streams well: the
engines of one process share one CUDA context, each on its own CUDA stream, so their kernels
and CUDA-graph replays can overlap on the device; N processes would each own a context, which
the GPU time-slices (no overlap without MPS), and each would hold its own copy of the CUDA
runtime, cupy's compiled kernels and torch's allocator pool. The price is the GIL over the
Python glue between stages; the heavy parts release it (numba kernels are ``nogil``, OpenCV,
MediaPipe's graph, onnxruntime and torch calls). ``--stream-mode process`` runs each stream in
its own process (spawned), which removes the GIL from the picture: on a CPU that shows what
the GIL costs (README "Streams" quotes both on the 2-core machine).
"""
from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.benchmark import check_empty, check_frames, check_given, check_outputs
from bench.devices import get_device
from bench.drivers import Driver, open_driver
from bench.latency import Accumulator, run_block
from bench.machine import machine_info
from bench.report import _fmt, _table, report_and_write, save_figure, write_json
from bench.stats import StageTimes
from bench.usage import UsageError
from bench.variants import build_engine
from profiles.format import load
from realtime.core.errors import PuppeteerError
from realtime.core.text import count
from realtime.engine.loop import EngineOptions, set_kernel_threads

__all__ = ["HOLD_FPS", "FPS_TOLERANCE", "P95_LIMIT_MS", "MODES", "MIN_MEASURED", "StreamSpec", "parse_counts",
           "hold_fps", "holds", "streams_pass", "check_streams_args", "run_streams", "markdown",
           "plot_streams"]

HOLD_FPS = 30.0
FPS_TOLERANCE = 0.97
P95_LIMIT_MS = 33.0
MODES = ("thread", "process")
#: frames each stream must measure after --warmup: an fps and a p95 of fewer say nothing (with 1
#: frame a stream read "largest N 0", with 2 "holds" on a p95 of two samples)
MIN_MEASURED = 30
_PLURAL = {"thread": "threads", "process": "processes"}
BARRIER_TIMEOUT_S = 600.0
#: how long a stream process may play after the barrier before its result is given up on
PLAY_TIMEOUT_S = 600.0
#: how often the parent, waiting for the results, looks for a stream process that died
POLL_S = 0.5
#: how long a stream process that gave its result may take to close before it is ended
REAP_S = 30.0


@dataclass(frozen=True)
class StreamSpec:
    """Stream `index`: profile `profile` (a name or folder) driven by `driver` (a file spec)."""

    index: int
    profile: str
    driver: str


def parse_counts(text: str) -> list[int]:
    """``"3"`` → [1, 2, 3]; ``"1,2,4"`` → [1, 2, 4]; UsageError otherwise."""
    try:           # an empty item ('1,,2', '4,') is a mistake, as --gain's are
        values = [int(v) for v in str(text).split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise UsageError(f"--streams wants N ≥ 1 (tries 1..N) or counts like 1,2,4, got {text!r}")
    if len(set(values)) < len(values):      # as --compare's values: a repeat would be run once
        twice = sorted({v for v in values if values.count(v) > 1})
        raise UsageError(f"--streams {text}: {', '.join(map(str, twice))} given twice; name each count once")
    if len(values) == 1:
        return list(range(1, values[0] + 1))
    return sorted(values)


def hold_fps(stream: dict) -> float:
    """The fps a stream must deliver to hold: its clip's rate up to `HOLD_FPS`, within
    `FPS_TOLERANCE` (a 25 fps clip cannot give 30: it holds at 24.25)."""
    rate = stream.get("driver_fps")
    return FPS_TOLERANCE * (HOLD_FPS if not rate else min(HOLD_FPS, float(rate)))


def holds(stream: dict) -> bool:
    """One stream's result holds its clip's rate up to 30 fps (`hold_fps`) with p95 ≤ `P95_LIMIT_MS`."""
    fps, p95 = stream.get("fps"), (stream.get("latency_ms") or {}).get("p95")
    return fps is not None and p95 is not None and fps >= hold_fps(stream) and p95 <= P95_LIMIT_MS


# ------------------------------------------------------------------------------ one stream
def _load(name: str):
    try:
        return load(name)
    except PuppeteerError as exc:
        raise UsageError(str(exc)) from None


class _Stream:
    """One stream's engine and driver, built and warmed up, ready to play."""

    def __init__(self, spec: StreamSpec, device: str, frames: int | None, warmup: int):
        self.spec, self.warmup = spec, warmup
        self.profile = _load(spec.profile)
        self.driver: Driver = open_driver(spec.driver, frames)
        if self.driver.is_camera:
            raise UsageError(f"--streams plays files, not a camera ({spec.driver!r})")
        self.options = get_device(device).configure(EngineOptions(fps=self.driver.fps))
        self.engine = build_engine(self.profile, self.options, realtime=True, fps=self.driver.fps)
        self.source = self.driver.open()
        self._closed = False
        self.engine.warm_up(track=not getattr(self.source, "tracked", False))

    def play(self) -> dict:
        """Play the driver through the engine (in the calling thread); the stream's result."""
        set_kernel_threads(self.options.kernel_threads)   # numba's thread count is per thread
        acc = Accumulator(StageTimes())
        acc.times.skip_warmup(self.warmup)
        try:
            run_block(self.engine, self.source, self.driver.fps, acc, self.warmup, None)
        finally:
            self.close()
        r = acc.times.to_dict(acc.wall_s if acc.wall_s > 0 else None)
        r.update(stream=self.spec.index, profile=self.spec.profile, driver=self.driver.label,
                 driver_fps=self.driver.fps, tier=self.options.tier or self.profile.tier,
                 held=acc.held)    # frames the loop emitted again while the clip's reader was late
        r["holds"] = holds(r)
        if note := self.driver.ended_early():   # a truncated clip: said, as the bench says it
            r["note"] = note.removeprefix("note: ")
        return r

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.source.close()
            self.engine.close()


def _threads(specs: list[StreamSpec], device: str, frames, warmup) -> list[dict]:
    streams: list[_Stream] = []
    try:
        for spec in specs:                 # built one after another: JIT, graph capture, tracker
            streams.append(_Stream(spec, device, frames, warmup))
    except BaseException:
        for s in streams:
            s.close()
        raise
    barrier = threading.Barrier(len(streams))
    results: list[dict | None] = [None] * len(streams)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(BARRIER_TIMEOUT_S)
            results[i] = streams[i].play()
        except threading.BrokenBarrierError:
            streams[i].close()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
            barrier.abort()
            streams[i].close()

    workers = [threading.Thread(target=body, args=(i,), name=f"stream-{i}") for i in range(len(streams))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


def _process_main(spec: StreamSpec, device: str, frames, warmup, barrier, out) -> None:
    """A spawned stream: build, wait for the others, play, put (index, result | error line).
    A Ctrl-C is not its to act on (its parent ends it: `_end`); SIGINT, blocked since it was
    started (`_deaf_to_ctrl_c`), is ignored here too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        stream = _Stream(spec, device, frames, warmup)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        barrier.abort()
        out.put((spec.index, f"{type(exc).__name__}: {exc}"))
        return
    try:
        barrier.wait(BARRIER_TIMEOUT_S)
    except threading.BrokenBarrierError:
        stream.close()
        out.put((spec.index, None))
        return
    try:
        out.put((spec.index, stream.play()))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.put((spec.index, f"{type(exc).__name__}: {exc}"))


def _processes(specs: list[StreamSpec], device: str, frames, warmup) -> list[dict]:
    ctx = mp.get_context("spawn")          # no fork of a process holding threads or a GPU
    barrier, out = ctx.Barrier(len(specs)), ctx.Queue()
    procs = [ctx.Process(target=_process_main, args=(s, device, frames, warmup, barrier, out),
                         name=f"stream-{s.index}") for s in specs]
    results: dict[int, dict] = {}
    errors: list[str] = []
    ended = False
    try:
        with _deaf_to_ctrl_c():
            for p in procs:
                p.start()
        by_index = {s.index: p for s, p in zip(specs, procs)}
        heard: set[int] = set()
        deadline = time.monotonic() + BARRIER_TIMEOUT_S + PLAY_TIMEOUT_S
        while len(heard) < len(procs) and not errors:
            try:
                index, result = out.get(timeout=POLL_S)
            except queue.Empty:
                dead = next(((i, p.exitcode) for i, p in by_index.items()
                             if i not in heard and p.exitcode not in (None, 0)), None)
                if dead is not None:
                    errors.append(f"stream {dead[0]}: its process ended without a result ({_exit_said(dead[1])})")
                elif time.monotonic() > deadline:
                    errors.append("a stream process gave no result in time")
                continue
            heard.add(index)
            if isinstance(result, dict):
                results[index] = result
            elif isinstance(result, str):
                errors.append(f"stream {index}: {result}")
        ended = not errors
    finally:
        _end([p for p in procs if p.pid is not None], wait=ended)
    if errors:
        raise UsageError(errors[0])
    return [results[i] for i in sorted(results)]


def _exit_said(code: int) -> str:
    """A dead stream process's exit code in words: a signal's name (SIGKILL: most often the
    system out of memory), else the code."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}" + (": out of memory?" if -code == signal.SIGKILL else "")
    return f"exit code {code}"


#: The stops whose Python handler `_deaf_to_ctrl_c` holds off: a Ctrl-C, and the SIGTERM and
#: SIGHUP that run.py raises as a Ctrl-C (`_Terminated`).
_STOPS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def _deaf_to_ctrl_c() -> Iterator[None]:
    """Within: SIGINT blocked in the calling thread, and so in every process spawned from it
    (the block is inherited through fork and exec): a stream process never sees the Ctrl-C a
    terminal sends its whole process group, from its first instruction on. (Ignored in the
    child's entry only, it came too late: the child imports run.py and the engine first, seconds
    on a CPU, and a Ctrl-C then printed its KeyboardInterrupt traceback beside the bench's
    `stopped` line.) A Ctrl-C, SIGTERM or SIGHUP meanwhile reaches this process at the end of
    the block: in the main thread their Python handlers are held off within (`_held`) and each
    signal caught raised again after, in the order it came. Only SIGINT is blocked: SIGTERM is
    how `_end` ends a child. Nothing is blocked where the platform has no `pthread_sigmask`."""
    if not hasattr(signal, "pthread_sigmask"):     # pragma: no cover - Windows
        yield
        return
    caught: list[int] = []
    held = {signum: handler for signum in _STOPS if (handler := _held(signum, caught)) is not None}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        for signum, handler in held.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(caught):    # through the handlers now in place: a
            signal.raise_signal(signum)         # KeyboardInterrupt (run.py's note, `_Terminated`)


def _held(signum: int, caught: list[int]):
    """Replace `signum`'s handler with one that only appends to `caught`, and return the one it
    replaced; None (nothing replaced) off the main thread, or where `signum` is ignored or its
    handler not Python's. Why a block alone does not hold a Ctrl-C off: the kernel hands a
    process's signal to any thread that does not block it (numpy's BLAS threads are there from
    its import on), and the main thread then runs the Python handler wherever it is: a
    KeyboardInterrupt (or run.py's `_Terminated`) in the middle of a `Process.start` (a stream
    spawned but not yet on record, which `_end` cannot end) or of `_end`'s terminating."""
    current = signal.getsignal(signum)
    if current in (signal.SIG_IGN, None):
        return None
    try:
        return signal.signal(signum, lambda number, frame: caught.append(number))
    except ValueError:      # not the main thread: the KeyboardInterrupt is raised in that one
        return None


def _end(procs: list, wait: bool) -> None:
    """Reap the started stream processes. After a pass that ended well (`wait`) each has put
    its result and is closing: waited for, up to `REAP_S`; otherwise (a Ctrl-C, a SIGTERM, a
    stream's error), or for one that outlives the wait, or at a Ctrl-C during it, ended at once
    (SIGTERM, then SIGKILL): they ignore a Ctrl-C and would play on after this one left."""
    try:
        if wait:
            for p in procs:
                p.join(timeout=REAP_S)
    finally:
        with _deaf_to_ctrl_c():         # a second Ctrl-C (or a SIGTERM) here would leave them running
            for p in procs:
                if p.is_alive():
                    p.terminate()
            for p in procs:
                p.join(timeout=REAP_S)
                if p.is_alive():
                    p.kill()
                    p.join()


def streams_pass(specs: list[StreamSpec], device: str, frames: int | None, warmup: int,
                 mode: str = "thread") -> dict:
    """One count: every stream of `specs` at once; ``{"n", "streams": [...], "min_fps",
    "max_p95_ms", "holds"}``."""
    if mode not in MODES:
        raise UsageError(f"--stream-mode must be one of {', '.join(MODES)}, got {mode!r}")
    rows = (_threads if mode == "thread" else _processes)(specs, device, frames, warmup)
    fps = [r["fps"] for r in rows if r.get("fps") is not None]
    p95 = [r["latency_ms"]["p95"] for r in rows if r["latency_ms"].get("p95") is not None]
    return {"n": len(specs), "streams": rows, "min_fps": min(fps) if fps else None,
            "max_p95_ms": max(p95) if p95 else None,
            "holds": len(rows) == len(specs) and all(r["holds"] for r in rows)}


# ------------------------------------------------------------------------------------ report
def markdown(result: dict) -> str:
    """The per-stream table of every count, then the largest count that holds."""
    rows = []
    for c in result["counts"]:
        for r in c["streams"]:
            lat = r.get("latency_ms") or {}
            total = (r.get("frames") or 0) + (r.get("dropped") or 0)
            drop = f"{r.get('dropped', 0)} ({100.0 * (r.get('dropped') or 0) / total:.1f}%)" if total else "–"
            rows.append([c["n"], r["stream"], f"{Path(r['profile']).name} ← {r['driver']}", r.get("tier", ""),
                         _fmt(r.get("fps"), 1), drop, str(r.get("held", 0)), _fmt(lat.get("p50"), 1),
                         _fmt(lat.get("p95"), 1), "yes" if r["holds"] else "no"])
        rows.append([f"**{c['n']}**", "all", "", "", f"min {_fmt(c['min_fps'], 1)}", "", "", "",
                     f"max {_fmt(c['max_p95_ms'], 1)}", "**yes**" if c["holds"] else "**no**"])
    table = _table(["N", "stream", "profile ← driver", "tier", "fps", "dropped", "held", "p50 ms", "p95 ms",
                    "holds"], rows, align="rrllrrrrrl")
    best = result["max_streams"]
    tried = ", ".join(str(c["n"]) for c in result["counts"])
    rates = sorted({hold_fps(r) for c in result["counts"] for r in c["streams"]}) or [HOLD_FPS * FPS_TOLERANCE]
    held = f"≥ {round(rates[0], 2):g}" + (f" to {round(rates[-1], 2):g}" if len(rates) > 1 else "")
    line = (f"largest N that holds its clips' rate up to {HOLD_FPS:g} fps ({held}) with p95 ≤ "
            f"{P95_LIMIT_MS:g} ms: **{best}** (tried {tried}; {_PLURAL[result['mode']]}; {result['device']})")
    return f"## bench --streams\n\n{table}\n\n{line}"


def plot_streams(result: dict, path: str) -> None:
    """Per-stream fps and p95 against N, with the 30 fps and 33 ms lines, written to `path` whole
    or not at all (`save_figure`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - matplotlib only for a plot
    from matplotlib.figure import Figure  # noqa: PLC0415 - ditto
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415 - ditto

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax_fps, ax_lat = fig.subplots(1, 2)
    for c in result["counts"]:
        for r in c["streams"]:
            ok = "tab:green" if r["holds"] else "tab:red"
            ax_fps.scatter(c["n"], r.get("fps") or 0.0, color=ok, s=18)
            ax_lat.scatter(c["n"], (r.get("latency_ms") or {}).get("p95") or 0.0, color=ok, s=18)
    for rate in {hold_fps(r) for c in result["counts"] for r in c["streams"]} or {HOLD_FPS * FPS_TOLERANCE}:
        ax_fps.axhline(rate, color="k", ls="--", lw=1)
    ax_lat.axhline(P95_LIMIT_MS, color="k", ls="--", lw=1)
    ax_fps.set(xlabel="streams", ylabel="fps per stream", title="fps (dashed: what holds)")
    ax_lat.set(xlabel="streams", ylabel="capture→sink p95 ms", title="p95 (dashed: 33 ms)")
    for ax in (ax_fps, ax_lat):                 # a count of streams: whole numbers only
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"bench --streams · {result['device']} · {_PLURAL[result['mode']]} · "
                 f"largest N holding: {result['max_streams']}")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


# ---------------------------------------------------------------------------------- command
#: The bench options --streams does not use (its engines are plain reenactments at their
#: defaults, measured by the latency pass alone): (attribute, given?).
_NOT_WITH_STREAMS = tuple((a, lambda v: v is not None) for a in (
    "compare", "self_reenact", "self_drive", "sheet", "gain", "pose_from", "expression_from", "frame",
    "block", "audio")) + tuple((a, bool) for a in ("quality", "roundtrip", "floor")) + (
    ("mode", lambda v: v not in (None, "reenact")),)


def _listed(flag: str, value: str, form: str) -> list[str]:
    """The comma-separated items of `flag`'s `value`, or UsageError where one is empty (a list
    with nothing in it, or an item left out: "s1,,s5")."""
    items = [item.strip() for item in value.split(",")]
    if not all(items):
        raise UsageError(f"--streams: {flag} {value!r} has an empty item: give {flag} {form}")
    return items


def check_streams_args(args: argparse.Namespace) -> tuple[list[int], list[str], list[str]]:
    """(counts, profiles, drivers) of `--streams`, or UsageError, before anything runs: a bench
    option the streams do not use (`_NOT_WITH_STREAMS`), an empty value, an output the bench
    would not write (as the bench's own: `check_outputs`)."""
    check_empty(args)
    counts = parse_counts(args.streams)
    if not args.profile or not args.driver:
        raise UsageError("--streams needs --profile P[,P2,...] and --driver CLIP[,CLIP2,...]")
    for attr, given in _NOT_WITH_STREAMS:
        value = getattr(args, attr, None)
        if given(value):
            flag = f"--{attr.replace('_', '-')}"
            shown = "" if isinstance(value, bool) else (
                " " + ",".join(f"{k}={v:g}" for k, v in value.items()) if isinstance(value, dict)
                else f" {value}")
            raise UsageError(f"--streams cannot be combined with {flag}{shown} (the streams are plain "
                             f"reenactments measured by the latency pass): drop {flag}, or drop --streams")
    check_given(args)
    profiles = _listed("--profile", args.profile, "P[,P2,...]")
    drivers = _listed("--driver", args.driver, "CLIP[,CLIP2,...]")
    check_outputs(args, drivers=drivers, profiles=profiles)
    return counts, profiles, drivers


def run_streams(args: argparse.Namespace) -> int:
    """`run.py bench --streams ...`: run the ramp, print the table, write --json / --plot."""
    counts, profiles, drivers = check_streams_args(args)
    mode = getattr(args, "stream_mode", None) or "thread"
    device = get_device(args.device)
    device.check()
    for name in profiles:
        _load(name)
    for spec in drivers:
        driver = open_driver(spec, args.frames)
        if driver.is_camera:
            raise UsageError(f"--streams plays files, not a camera ({spec!r})")
        check_frames(driver, args.warmup, f"--driver {spec}")
        left = None if driver.total is None else driver.total - args.warmup
        if left is not None and left < MIN_MEASURED:
            raise UsageError(f"--driver {spec}: --frames/clip leaves {count(left, 'frame')} after --warmup "
                             f"{args.warmup}: a stream's fps and p95 need at least {MIN_MEASURED} (use more "
                             f"frames, or a smaller --warmup)")
    result = {"mode": mode, "device": device.label(), "device_detail": device.describe(),
              **device.info(), "warmup": args.warmup, "frames": args.frames,
              "hold": {"fps": HOLD_FPS, "fps_tolerance": FPS_TOLERANCE, "p95_ms": P95_LIMIT_MS},
              "counts": [], "max_streams": 0}
    misses = 0
    for n in counts:
        specs = [StreamSpec(i, profiles[i % len(profiles)], drivers[i % len(drivers)]) for i in range(n)]
        print(f"streams: {n} at once ({_PLURAL[mode]}) ...", file=sys.stderr, flush=True)
        c = streams_pass(specs, args.device, args.frames, args.warmup, mode)
        result["counts"].append(c)
        if c["holds"]:
            result["max_streams"] = max(result["max_streams"], n)
            misses = 0
        else:
            misses += 1
            if misses == 2:
                break
    result["machine"] = machine_info()
    notes = list(dict.fromkeys(r["note"] for c in result["counts"] for r in c["streams"] if r.get("note")))
    if notes:
        result["notes"] = notes
    report = markdown(result) + ("\n\nnotes:\n" + "\n".join(f"- {n}" for n in notes) if notes else "")
    outputs: list[tuple[str, str, Callable[[], object]]] = []
    if args.json:
        outputs.append(("--json", args.json, lambda: write_json(args.json, {"streams": result})))
    if args.plot:
        outputs.append(("--plot", args.plot, lambda: plot_streams(result, args.plot)))
    report_and_write(report, outputs)
    return 0
