"""`run.py bench`: latency, comparisons and quality of the engine on a driver clip or camera.

    run.py bench --profile P --driver CLIP|0 [--frames N] [--warmup N] [--device cpu|cuda]
                 [--json OUT.json] [--plot OUT.png] [--quality] [--self-reenact VIDEO]
                 [--compare KEY=A,B] [--roundtrip] [--block N]

Passes (each shows a tqdm bar on stderr when stderr is a terminal):

1. Latency (always): the engine as it runs live — ``EngineOptions(realtime=True)``, the clip
   paced at its own rate by a realtime ``Grabber`` (newest frame wins, drops counted), a
   realtime ``ThreadedSink(NullSink())``. Per-frame stage timings and capture→sink latency go
   into ``bench.stats.StageTimes``; the first ``--warmup`` frames (dropped ones included) are
   left out (``realtime.engine.loop.run`` also warms every engine up before its first frame).
   ``fps`` = frames that reached the sink / the capture time the counted frames span (k capture
   slots, k = last − first captured index + 1 with drops, at the measured mean capture
   interval; summed over blocks): a clip paced at 30 fps with nothing dropped gives 30, and
   every dropped frame lowers it.
2. ``--compare KEY=A,B[,C]``: one engine per value, all built before anything runs; the driver
   is played in blocks of ``--block`` frames, ABBA-interleaved (A B, then B A, ...), each
   variant seeing the same frames of a clip (a camera's stream is shared out block by block),
   so slow drifts of the machine (thermal, other load) hit every variant alike. The report adds
   ``variant / baseline`` ratios (baseline = the first value). Keys: see ``KNOBS``.
3. ``--quality``: an offline pass (media clock, every frame) per variant, see
   ``bench/quality.py`` for the exact definitions.
4. ``--self-reenact VIDEO``: an avatar enrolled from VIDEO's first half (an appearance atlas,
   or an image profile from its first frame when the clip cannot make one; or ``--profile``),
   the second half drives it, output size = the video's frame size, the driver's neutral
   pinned to the enrollment frame and the head following the driver's distance as well as its
   position (``follow_scale`` 1, `SELF_REENACT_FOLLOW_SCALE`; live use keeps the head size fixed), so
   the output should reproduce the real frames, and the quality pass adds PSNR / SSIM against
   the real frames. Without ``--profile/--driver`` this
   pair is the whole benchmark; with them, the self-reenactment is an extra quality pass whose
   ``psnr`` / ``ssim`` join ``quality`` and whose full numbers go under ``self_reenact``.
5. ``--roundtrip``: true output latency through a virtual camera read back with OpenCV (a frame
   counter encoded in the pixels), only where pyvirtualcam opens a device that cv2 can read;
   otherwise a note says why not.

Output: a Markdown table on stdout, ``--json`` (``bench.report.write_json``; the result keys of
``bench.stats.StageTimes.to_dict`` plus ``device``, ``quality``, ``machine``, ...), ``--plot``
(``bench.report.plot``). User mistakes print one ``error: ...`` line on stderr and return 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from realtime.core.errors import PuppeteerError

__all__ = ["add_arguments", "main", "KNOBS", "DEVICES", "UsageError", "encode_stamp",
           "decode_stamp", "roundtrip_probe"]

DEFAULT_WARMUP = 30
DEFAULT_CAMERA_FRAMES = 300
DEFAULT_BLOCK = 60
#: Self-reenactment follows the driver's distance to the camera (see `self_reenact_options`).
SELF_REENACT_FOLLOW_SCALE = 1.0
CUDA_MISSING = "--device cuda needs an NVIDIA GPU and the gpu extra (pip install '.[gpu]')"


class UsageError(PuppeteerError):
    """A mistake of the user's: main() prints `error: <message>` and returns 2."""


# ---------------------------------------------------------------------------------------------
# Devices: where the engine's image stages run (realtime/device.py)
# ---------------------------------------------------------------------------------------------

def _cuda_available() -> bool:
    from kernels._dispatch import cuda_available

    return cuda_available()


@functools.lru_cache(maxsize=1)
def _cpu_model() -> str:
    from bench.report import machine_info

    return str(machine_info()["cpu"])


class CpuDevice:
    """The numba kernels on the CPU; stage times from perf_counter."""

    name = "cpu"

    def check(self) -> None:
        pass

    def configure(self, options):
        return dataclasses.replace(options, device=self.name)

    def label(self) -> str:
        return self.name

    def info(self) -> dict:
        return {}

    def describe(self) -> str:
        import numba

        return f"{_cpu_model()}, {numba.get_num_threads()} kernel thread(s)"


@functools.lru_cache(maxsize=1)
def _cuda_context():
    from realtime.core.context import open_device

    return open_device("cuda")


class CudaDevice:
    """The engine's CUDA path (`EngineOptions.device = "cuda"`): render → generate → smooth →
    composite on the GPU, the frame downloaded once. Stage times come from CUDA events on the
    engine's stream, read after each frame's synchronisation (`realtime.core.context.EventTimer`), so
    they are device-synchronised; the GPU's name and compute capability go into the report."""

    name = "cuda"

    def check(self) -> None:
        from realtime.core.context import DeviceUnavailable

        if not _cuda_available():
            raise UsageError(CUDA_MISSING)
        try:
            _cuda_context()
        except DeviceUnavailable as exc:
            raise UsageError(str(exc)) from None

    def configure(self, options):
        return dataclasses.replace(options, device=self.name)

    def label(self) -> str:
        return f"cuda: {_cuda_context().describe()}"

    def info(self) -> dict:
        ctx = _cuda_context()
        return {"gpu": {"name": ctx.gpu_name, "compute_capability": ctx.capability}}

    def describe(self) -> str:
        return _cuda_context().describe()


DEVICES: dict[str, Callable[[], Any]] = {"cpu": CpuDevice, "cuda": CudaDevice}


def get_device(name: str):
    try:
        return DEVICES[name]()
    except KeyError:
        raise UsageError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}") from None


# ---------------------------------------------------------------------------------------------
# Configuration knobs (--compare KEY=A,B): a registry, one entry per key
# ---------------------------------------------------------------------------------------------

@dataclass
class Variant:
    label: str
    options: Any          # realtime.engine.loop.EngineOptions
    device: str = "cpu"


@dataclass(frozen=True)
class Knob:
    help: str
    parse: Callable[[str], Any]
    apply: Callable[[Variant, Any], None]


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT (e.g. 512x512)") from None
    if w < 16 or h < 16:
        raise ValueError(f"size {text!r} is too small (at least 16x16)")
    return (w, h)


def _parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean (true/false)")


def _parse_device(text: str) -> str:
    if text not in DEVICES:
        raise ValueError(f"unknown device {text!r} (choose {', '.join(DEVICES)})")
    return text


def _parse_backend(text: str) -> str:
    from realtime.tiers.neural.generator import BACKENDS

    if text not in BACKENDS:
        raise ValueError(f"unknown backend {text!r} (choose {', '.join(BACKENDS)})")
    return text


def _set_device(v: Variant, value: str) -> None:
    v.device = value
    v.options = get_device(value).configure(v.options)


def _set_option(name: str):
    def apply(v: Variant, value) -> None:
        v.options = dataclasses.replace(v.options, **{name: value})
    return apply


def _set_nested(group: str, name: str):
    def apply(v: Variant, value) -> None:
        inner = dataclasses.replace(getattr(v.options, group), **{name: value})
        v.options = dataclasses.replace(v.options, **{group: inner})
    return apply


def _parser_for(default) -> Callable[[str], Any]:
    if isinstance(default, bool):
        return _parse_bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    return str


def _build_knobs() -> dict[str, Knob]:
    from realtime.face.estimate import EstimatorConfig
    from realtime.mesh.fuse import FuseConfig
    from realtime.engine.loop import EngineOptions

    knobs = {
        "tier": Knob("generator tier (warp, atlas, neural)", str, _set_option("tier")),
        "device": Knob("cpu or cuda", _parse_device, _set_device),
        "size": Knob("output size WxH, e.g. 512x512", _parse_size, _set_option("output_size")),
        "kernel_threads": Knob("numba threads of the kernels", int,
                               _set_option("kernel_threads")),
        "backend": Knob("neural tier on cuda: torch or tensorrt", _parse_backend,
                        _set_option("backend")),
    }
    fixed = {"fps", "realtime", "output_size"}   # set by the bench itself (size: above)
    for f in dataclasses.fields(EngineOptions):
        if f.name in knobs or f.name in fixed or f.default is dataclasses.MISSING:
            continue
        if isinstance(f.default, (bool, int, float, str)):
            knobs[f.name] = Knob(f"EngineOptions.{f.name} (default {f.default})",
                                 _parser_for(f.default), _set_option(f.name))
    for group, cls in (("estimator", EstimatorConfig), ("fuse", FuseConfig)):
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            knobs[f.name] = Knob(f"{cls.__name__}.{f.name} (default {default})",
                                 _parser_for(default), _set_nested(group, f.name))
    return knobs


KNOBS: dict[str, Knob] = _build_knobs()


def parse_compare(spec: str) -> tuple[str, list[str]]:
    key, sep, values = spec.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--compare wants KEY=A,B (e.g. tier=warp,atlas), got {spec!r}")
    if key not in KNOBS:
        raise UsageError(f"--compare: unknown key {key!r}; keys: {', '.join(KNOBS)}")
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if len(vals) < 2:
        raise UsageError(f"--compare {key}: give at least two values, e.g. {key}=A,B")
    if len(set(vals)) != len(vals):
        raise UsageError(f"--compare {key}: values repeat ({values})")
    return key, vals


def make_variants(base_options, device: str, compare: tuple[str, list[str]] | None) -> list[Variant]:
    if compare is None:
        return [Variant("run", base_options, device)]
    key, values = compare
    knob = KNOBS[key]
    out = []
    for text in values:
        try:
            value = knob.parse(text)
        except ValueError as exc:
            raise UsageError(f"--compare {key}: {exc}") from None
        v = Variant(f"{key}={text}", base_options, device)
        knob.apply(v, value)
        out.append(v)
    return out


# ---------------------------------------------------------------------------------------------
# Driver sources
# ---------------------------------------------------------------------------------------------

class _Limit:
    """A source view: at most `count` frames of `source` (None = all); close() closes
    `source` only when the view `owns` it."""

    def __init__(self, source, count: int | None, owns: bool = False):
        self.source, self.count, self.read_count, self.owns = source, count, 0, owns
        self.fps, self.size, self.is_live = source.fps, source.size, source.is_live
        self.frame_count = count
        self.exhausted = False

    def read(self):
        if self.count is not None and self.read_count >= self.count:
            return None
        fields = self.source.read()
        if fields is None:
            self.exhausted = True
            return None
        self.read_count += 1
        return fields

    def close(self) -> None:
        if self.owns:
            self.source.close()

    def __repr__(self) -> str:
        return f"{self.source!r}[:{self.count}]"


@dataclass
class Driver:
    """What drives the engine: a camera index or a file, from frame `start`, `count` frames."""

    spec: str
    start: int = 0
    count: int | None = None
    label: str = ""
    fps: float = 30.0
    is_camera: bool = False
    total: int | None = None    # frames it will deliver, when known

    def open(self):
        """The source positioned at `start`, limited to `count` frames (the caller closes
        `.source`)."""
        from realtime.io.capture import open_source

        src = open_source(self.spec)
        for _ in range(self.start):
            if src.read() is None:
                break
        return _Limit(src, self.count, owns=True)


def open_driver(spec: str, frames: int | None) -> Driver:
    from realtime.io.capture import CaptureError, open_source

    try:
        src = open_source(spec)
    except CaptureError as exc:
        raise UsageError(f"--driver: {exc}") from None
    try:
        camera = bool(src.is_live)
        count = frames if frames is not None else (DEFAULT_CAMERA_FRAMES if camera else None)
        n = src.frame_count
        total = count if n is None else (n if count is None else min(n, count))
        return Driver(spec, 0, count, label=Path(spec).name if not camera else f"camera {spec}",
                      fps=float(src.fps), is_camera=camera, total=total)
    finally:
        src.close()


def _count_frames(src) -> int:
    n = 0
    while src.read() is not None:
        n += 1
    return n


def self_reenact_options(fps: float, profile):
    """Engine options of a self-reenactment: the video's frame size, and the head following
    the driver's distance (`SELF_REENACT_FOLLOW_SCALE`): the real frames show the camera moving
    closer and away, and a fixed head size (the live default) would count that as error of
    every tier alike."""
    from realtime.mesh.fuse import FuseConfig
    from realtime.engine.loop import EngineOptions

    return EngineOptions(fps=fps, output_size=_image_size(profile),
                         fuse=FuseConfig(follow_scale=SELF_REENACT_FOLLOW_SCALE))


def prepare_self_reenact(video: str, frames: int | None, profile=None):
    """(profile, driver, enrollment landmarks) for self-reenactment on `video`.

    The avatar is `profile` when given (it must have been enrolled from the first half of
    `video`); otherwise a video profile (appearance atlas) is enrolled from the whole first
    half, or, for a clip too short or too poor for an atlas, an image profile from frame 0.
    The driver is the second half; the driver's neutral is pinned to the profile's reference
    frame, so a perfect engine reproduces the real frames.
    """
    from profiles.enroll import EnrollError, build_profile, detect_single_face
    from realtime.io.capture import CaptureError, open_source

    try:
        src = open_source(video)
    except CaptureError as exc:
        raise UsageError(f"--self-reenact: {exc}") from None
    try:
        if src.is_live:
            raise UsageError("--self-reenact needs a video file, not a camera")
        first = src.read()
        n = src.frame_count
        fps = float(src.fps)
    finally:
        src.close()
    if n is None:
        src = open_source(video)
        try:
            n = _count_frames(src)
        finally:
            src.close()
    if first is None or n < 4:
        raise UsageError(f"--self-reenact: {video} has {n} frame(s); it needs a video of at "
                         f"least 4 frames (enrolled on the first, driven by the second half)")
    name = Path(video).name
    half = n // 2
    if profile is None:
        from profiles.enroll_video import build_video_profile

        try:
            profile = build_video_profile(video, f"{Path(video).stem}-self", stop=half)
        except EnrollError:
            profile = None
    if profile is None:
        rgb = first["image"]
        try:
            lm = detect_single_face(rgb, f"the first frame of {name}")
        except EnrollError as exc:
            raise UsageError(f"--self-reenact: {exc}") from None
        profile = build_profile(rgb, lm, name=f"{Path(video).stem}-self", source=name)
    lm = profile["landmarks"]
    count = n - half if frames is None else min(n - half, frames)
    driver = Driver(video, start=half, count=count,
                    label=f"{name} frames {half}–{half + count - 1}", fps=fps, total=count)
    return profile, driver, lm


# ---------------------------------------------------------------------------------------------
# Latency pass
# ---------------------------------------------------------------------------------------------

@dataclass
class _Acc:
    """Per-variant accumulation over blocks."""

    times: Any                          # bench.stats.StageTimes
    wall_s: float = 0.0
    captured: int = 0
    done: bool = False
    blocks: int = 0


def _run_block(engine, source, fps, acc: _Acc, warmup: int, bar) -> None:
    """One realtime run of `engine` over `source` (a _Limit); appends to `acc`."""
    from realtime.io.capture import Grabber
    from realtime.engine.loop import run
    from realtime.io.sinks import NullSink, ThreadedSink

    grabber = Grabber(source, realtime=True, close_source=False)
    sink = ThreadedSink(NullSink(), realtime=True)
    sink.open(*engine.output_size, fps)
    t_cap: dict[int, float] = {}
    last = [-1]

    def on_frame(frame) -> None:
        t_cap.setdefault(frame.index, frame.t_capture)
        if bar is not None and frame.index > last[0]:
            bar.update(frame.index - last[0])
            last[0] = frame.index

    report = run(engine, grabber, sink, on_frame=on_frame)
    st = acc.times
    offset = acc.captured
    prev = -1
    span = []                                       # (index, t_capture) of counted frames
    for row in report.per_frame:
        idx = row["index"]
        for gap in range(prev + 1, idx):           # frames the grabber replaced: capture drops
            st.add(None, None, dropped=True, index=offset + gap)
        prev = max(prev, idx)
        lat = row.get("latency_ms")
        counted = len(st) >= warmup
        st.add(row["timings"], lat, dropped=lat is None, index=offset + idx)
        if counted and idx in t_cap:
            span.append((idx, t_cap[idx]))
    if len(span) >= 2:
        # k capture slots (drops included) at the measured mean capture interval
        (i0, t0), (i1, t1) = min(span), max(span)
        if i1 > i0:
            acc.wall_s += (t1 - t0) * (i1 - i0 + 1) / (i1 - i0)
    acc.captured += source.read_count
    acc.blocks += 1
    if bar is not None and source.read_count - 1 > last[0]:
        bar.update(source.read_count - 1 - last[0])


def latency_pass(profile, variants: list[Variant], driver: Driver, warmup: int, block: int,
                 pin=None) -> dict[str, _Acc]:
    """Realtime runs of every variant, ABBA-interleaved in blocks (one block without
    --compare). Returns per-variant accumulations."""
    from tqdm import tqdm

    from bench.stats import StageTimes

    fps = driver.fps
    engines = {}
    try:
        for v in variants:
            engines[v.label] = build_engine(profile, v.options, realtime=True, fps=fps)
            if pin is not None:
                from bench.quality import pin_neutral

                pin_neutral(engines[v.label].estimator, pin)
        accs = {v.label: _Acc(StageTimes()) for v in variants}
        for acc in accs.values():
            acc.times.skip_warmup(warmup)
        single = len(variants) == 1
        shared = driver.open() if driver.is_camera else None
        sources = {v.label: (shared or driver.open()) for v in variants}
        total = None if driver.total is None else driver.total * len(variants)
        per_run = None if driver.count is None else driver.count
        try:
            with tqdm(total=total, desc="latency", unit="frame", file=sys.stderr,
                      disable=None, leave=False) as bar:
                order = list(variants)
                while not all(a.done for a in accs.values()):
                    for v in order:
                        acc = accs[v.label]
                        if acc.done:
                            continue
                        left = None if per_run is None else per_run - acc.captured
                        n = left if single else (block if left is None else min(block, left))
                        lim = _Limit(sources[v.label].source, n)
                        _run_block(engines[v.label], lim, fps, acc, warmup, bar)
                        if lim.exhausted or (left is not None and acc.captured >= per_run) \
                                or lim.read_count == 0:
                            acc.done = True
                    order.reverse()                       # A B, B A, A B, ...
        finally:
            for s in {id(s): s for s in sources.values()}.values():
                s.source.close()
    finally:
        for e in engines.values():
            e.close()
    return accs


# ---------------------------------------------------------------------------------------------
# Round trip through a virtual camera
# ---------------------------------------------------------------------------------------------

STAMP_BITS = 16
_STAMP_MARK = (1, 0, 1, 0)
STAMP_BLOCK = 16


def _stamp_bits(value: int) -> list[int]:
    v = int(value) % (1 << STAMP_BITS)
    bits = [(v >> k) & 1 for k in range(STAMP_BITS)]
    check = sum(bits) % 16
    return list(_STAMP_MARK) + bits + [(check >> k) & 1 for k in range(4)]


def encode_stamp(image: np.ndarray, value: int, block: int = STAMP_BLOCK) -> np.ndarray:
    """Write `value` (mod 2^16) into the top-left row of `image` (in place): marker bits,
    16 value bits and a 4-bit checksum as `block`-px black/white squares."""
    bits = _stamp_bits(value)
    if image.shape[1] < block * len(bits) or image.shape[0] < block:
        raise ValueError(f"image {image.shape[1]}x{image.shape[0]} too small for a "
                         f"{block * len(bits)}x{block} stamp")
    for k, b in enumerate(bits):
        image[:block, k * block:(k + 1) * block] = 255 if b else 0
    return image


def decode_stamp(image: np.ndarray, block: int = STAMP_BLOCK) -> int | None:
    """The value `encode_stamp` wrote (robust to compression: each square's centre is averaged
    and thresholded), or None when marker or checksum do not match."""
    n = len(_STAMP_MARK) + STAMP_BITS + 4
    if image.shape[1] < block * n or image.shape[0] < block:
        return None
    q = block // 4
    bits = []
    for k in range(n):
        cell = image[q:block - q, k * block + q:(k + 1) * block - q]
        bits.append(1 if float(np.mean(cell)) >= 128 else 0)
    if tuple(bits[:4]) != _STAMP_MARK:
        return None
    val_bits = bits[4:4 + STAMP_BITS]
    value = sum(b << k for k, b in enumerate(val_bits))
    check = sum(b << k for k, b in enumerate(bits[4 + STAMP_BITS:]))
    return value if check == sum(val_bits) % 16 else None


def roundtrip_probe(width: int, height: int, fps: float, timeout: float = 5.0):
    """(device, None) when pyvirtualcam opens a device that OpenCV reads back, else
    (None, reason)."""
    from realtime.io.inventory import _with_timeout
    from realtime.io.sinks import vcam_install_hint

    try:
        import pyvirtualcam
    except ImportError:
        return None, "pyvirtualcam is not installed (pip install pyvirtualcam)"
    try:
        cam = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB)
    except Exception as exc:  # noqa: BLE001 - every backend's error in one RuntimeError
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, f"no virtual camera device ({first}); {vcam_install_hint()}"
    try:
        device = cam.device
        img = np.zeros((height, width, 3), np.uint8)
        encode_stamp(img, 4321)

        def read_back():
            import cv2

            cap = cv2.VideoCapture(device)
            try:
                if not cap.isOpened():
                    return "cannot be opened"
                for _ in range(30):
                    cam.send(img)
                    ok, bgr = cap.read()
                    if ok and decode_stamp(bgr[..., ::-1]) == 4321:
                        return None
                return "delivered no readable frame"
            finally:
                cap.release()

        ok, result = _with_timeout(read_back, timeout)
        if not ok:
            return None, f"OpenCV cannot read {device} back: {result}"
        if result is not None:
            return None, f"OpenCV cannot read {device} back: {result}"
        return device, None
    finally:
        cam.close()


class _StampSink:
    """A virtual-camera sink that stamps each frame's index into its pixels first."""

    name = "vcam-stamp"

    def __init__(self, inner, sent: dict):
        self.inner, self.sent = inner, sent

    def open(self, width, height, fps=None):
        self.inner.open(width, height, fps)

    def write(self, frame):
        encode_stamp(frame.output, frame.index)
        self.sent[frame.index % (1 << STAMP_BITS)] = frame.t_capture
        self.inner.write(frame)

    def close(self):
        self.inner.close()

    def poll_events(self):
        return []


def roundtrip_pass(profile, options, driver: Driver, warmup: int) -> dict:
    """Capture → virtual camera → OpenCV read-back latency, or {"available": False, "reason"}."""
    import cv2

    from realtime.io.capture import Grabber
    from realtime.engine.loop import run
    from realtime.io.sinks import ThreadedSink, VirtualCameraSink

    engine = build_engine(profile, options, realtime=True, fps=driver.fps)
    try:
        w, h = engine.output_size
        device, reason = roundtrip_probe(w, h, driver.fps)
        if device is None:
            return {"available": False, "reason": reason}
        sent: dict[int, float] = {}
        got: list[tuple[int, float]] = []
        stop = threading.Event()
        sink = ThreadedSink(_StampSink(VirtualCameraSink(driver.fps, device=device), sent),
                            realtime=True)
        sink.open(w, h, driver.fps)
        cap = cv2.VideoCapture(device)

        def reader():
            seen = set()
            while not stop.is_set():
                ok, bgr = cap.read()
                t = time.perf_counter()
                if ok:
                    v = decode_stamp(bgr[..., ::-1])
                    if v is not None and v not in seen:
                        seen.add(v)
                        got.append((v, t))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        lim = driver.open()
        try:
            run(engine, Grabber(lim, realtime=True, close_source=False), sink)
        finally:
            time.sleep(0.3)
            stop.set()
            th.join(2.0)
            cap.release()
            lim.source.close()
        lat = [(t - sent[v]) * 1000.0 for v, t in got if v in sent and v >= warmup]
        from bench.stats import summarize

        s = summarize(lat)
        return {"available": True, "device": device, "frames": s["n"],
                "latency_ms": {k: s[k] for k in ("p50", "p95", "p99")}}
    finally:
        engine.close()


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def _positive(name: str, minimum: int = 1):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be ≥ {minimum}, got {v}")
        return v
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the `bench` options on `parser` (the subcommand's parser)."""
    parser.description = ("Measure the engine: per-stage latency percentiles, fps and drops "
                          "(realtime pass), optional quality metrics (offline pass), "
                          "side-by-side comparisons with ratios.")
    parser.add_argument("--profile", metavar="P",
                        help="avatar profile: a name under profiles/ or a profile folder")
    parser.add_argument("--driver", metavar="CLIP|0",
                        help="driver video file, image folder, or camera index")
    parser.add_argument("--frames", type=_positive("--frames"), metavar="N",
                        help="driver frames per pass, warm-up included (default: the whole clip;"
                             f" {DEFAULT_CAMERA_FRAMES} from a camera)")
    parser.add_argument("--warmup", type=_positive("--warmup", 0), default=DEFAULT_WARMUP,
                        metavar="N", help=f"first frames left out of the latency statistics "
                                          f"(default {DEFAULT_WARMUP})")
    parser.add_argument("--device", default="cpu", choices=sorted(DEVICES),
                        help="where the kernels run (default cpu)")
    parser.add_argument("--json", metavar="OUT.json", help="write the result as JSON")
    parser.add_argument("--plot", metavar="OUT.png",
                        help="latency histogram + per-frame timeline stacked by stage")
    parser.add_argument("--quality", action="store_true",
                        help="offline quality pass: expr_err, pose_err_deg, id_dist, fwe, jitter_px")
    parser.add_argument("--self-reenact", metavar="VIDEO", dest="self_reenact",
                        help="enroll VIDEO's first frame, drive with its second half, "
                             "report PSNR/SSIM against the real frames")
    parser.add_argument("--compare", metavar="KEY=A,B",
                        help="run variants side by side, interleaved, with ratios; keys: "
                             + ", ".join(KNOBS))
    parser.add_argument("--block", type=_positive("--block"), default=DEFAULT_BLOCK, metavar="N",
                        help=f"frames per interleaved block with --compare (default {DEFAULT_BLOCK})")
    parser.add_argument("--roundtrip", action="store_true",
                        help="true output latency through a virtual camera read back with "
                             "OpenCV (where one exists)")


def _ratios(variants: dict, baseline: str) -> dict:
    """{label: variant / baseline} for every number both have (fps, latency, stages,
    quality); a ratio with no finite value or a zero baseline is left out."""
    def ratio(a, b):
        try:
            a, b = float(a), float(b)
        except (TypeError, ValueError):
            return None
        return a / b if b and np.isfinite(a) and np.isfinite(b) else None

    def walk(v, b):
        if isinstance(v, dict) and isinstance(b, dict):
            out = {k: walk(v[k], b[k]) for k in v if k in b}
            return {k: x for k, x in out.items() if x is not None and x != {}}
        return ratio(v, b)

    keys = ("fps", "frames", "dropped", "latency_ms", "stages_ms", "quality")
    base = variants[baseline]
    return {label: walk({k: r[k] for k in keys if k in r}, base)
            for label, r in variants.items() if label != baseline}


def _kv_table(title: str, rows: list[tuple[str, Any]]) -> str:
    from bench.report import _fmt

    lines = [f"| {title} | value |", "| :--- | ---: |"]
    lines += [f"| {k} | {_fmt(v, 4) if isinstance(v, float) else v} |" for k, v in rows]
    return "\n".join(lines)


@dataclass
class _Setup:
    """What the arguments resolve to."""

    profile: Any
    driver: Driver
    variants: list
    compare: tuple | None
    pin: Any = None                # driver neutral pinned to these landmarks (self-reenactment)
    main_is_self: bool = False     # the main pair is the self-reenactment
    self_re: tuple | None = None   # (profile, driver, landmarks) of --self-reenact


def _setup(args: argparse.Namespace) -> _Setup:
    """Check the arguments and open what they name; UsageError for every user mistake."""
    from profiles.format import ProfileError, load
    from realtime.engine.loop import EngineOptions

    if args.self_reenact is None and (args.profile is None or args.driver is None):
        missing = " and ".join(f"--{n}" for n in ("profile", "driver") if getattr(args, n) is None)
        raise UsageError(f"{missing} required (or --self-reenact VIDEO)")
    if args.driver is not None and args.profile is None:
        raise UsageError("--driver needs --profile")
    if args.profile is not None and args.driver is None and args.self_reenact is None:
        raise UsageError("--profile needs --driver (or --self-reenact VIDEO)")
    compare = parse_compare(args.compare) if args.compare else None
    if compare and args.self_reenact and compare[0] == "size":
        raise UsageError("--compare size cannot be used with --self-reenact (the output must "
                         "have the video's frame size)")
    device = get_device(args.device)
    device.check()
    if compare and compare[0] == "device":
        for d in compare[1]:
            get_device(d).check()
    for path in (args.json, args.plot):
        if path and not Path(path).resolve().parent.is_dir():
            raise UsageError(f"cannot write {path}: folder {Path(path).parent} does not exist")

    given = None
    if args.self_reenact and args.profile is not None and args.driver is None:
        try:
            given = load(args.profile)  # enrolled from the video's first half by the user
        except ProfileError as exc:
            raise UsageError(str(exc)) from None
    self_re = (prepare_self_reenact(args.self_reenact, args.frames, given)
               if args.self_reenact else None)
    if args.profile is not None and args.driver is not None:
        try:
            profile = load(args.profile)
        except ProfileError as exc:
            raise UsageError(str(exc)) from None
        driver = open_driver(args.driver, args.frames)
        setup = _Setup(profile, driver, [], compare, self_re=self_re)
        base = EngineOptions(fps=driver.fps)
    else:
        profile, driver, lm = self_re
        setup = _Setup(profile, driver, [], compare, pin=lm, main_is_self=True, self_re=self_re)
        base = self_reenact_options(driver.fps, profile)
    setup.variants = make_variants(device.configure(base), device.name, compare)
    _check_variants(profile, setup.variants)
    if driver.total is not None and driver.total <= args.warmup:
        raise UsageError(f"--frames/clip gives {driver.total} frames, not more than --warmup "
                         f"{args.warmup}: nothing left to measure")
    return setup


def _image_size(profile) -> tuple[int, int]:
    h, w = profile["image"].shape[:2]
    return (w, h)


def _run(args: argparse.Namespace) -> int:
    from bench import quality as qmod
    from bench.report import machine_info, markdown_table, plot, write_json

    st = _setup(args)
    profile, driver, variants, compare = st.profile, st.driver, st.variants, st.compare
    pair = f"{getattr(profile, 'name', 'profile')} ← {driver.label}"
    notes: list[str] = []

    # -- latency -----------------------------------------------------------------------------
    accs = latency_pass(profile, variants, driver, args.warmup, args.block, pin=st.pin)
    results = {}
    for v in variants:
        acc = accs[v.label]
        r = acc.times.to_dict(acc.wall_s if acc.wall_s > 0 else None)
        dev = get_device(v.device)
        r.update(device=dev.label(), device_detail=dev.describe(), **dev.info(),
                 name=pair if compare is None else v.label, blocks=acc.blocks,
                 options=dataclasses.asdict(v.options))
        results[v.label] = r

    # -- quality -----------------------------------------------------------------------------
    if args.quality or st.main_is_self:
        for v in variants:
            q = qmod.quality_pass(
                lambda v=v: build_engine(profile, v.options, realtime=False, fps=driver.fps),
                profile, driver.open(), fps=driver.fps, total=driver.total, pin=st.pin,
                real_frames=st.main_is_self,
                desc="quality" if compare is None else f"quality {v.label}")
            results[v.label].update(quality=q.metrics, quality_info=q.info)
            notes += [n if compare is None else f"{v.label}: {n}" for n in q.notes]

    sr_section = None
    if st.self_re is not None and not st.main_is_self:
        sr_profile, sr_driver, sr_lm = st.self_re
        sr_opts = get_device(args.device).configure(
            self_reenact_options(sr_driver.fps, sr_profile))
        q = qmod.quality_pass(
            lambda: build_engine(sr_profile, sr_opts, realtime=False, fps=sr_driver.fps),
            sr_profile, sr_driver.open(), fps=sr_driver.fps, total=sr_driver.total, pin=sr_lm,
            real_frames=True, desc="self-reenact")
        sr_section = {"video": args.self_reenact, "driver": sr_driver.label,
                      "quality": q.metrics, "quality_info": q.info}
        notes += [f"self-reenact: {n}" for n in q.notes]
        notes.append(f"quality.psnr / quality.ssim come from the self-reenactment of "
                     f"{Path(args.self_reenact).name}; the other quality metrics from {pair}")
        for r in results.values():
            r.setdefault("quality", {}).update(
                {k: q.metrics[k] for k in ("psnr", "ssim") if k in q.metrics})

    # -- round trip --------------------------------------------------------------------------
    roundtrip = None
    if args.roundtrip:
        roundtrip = roundtrip_pass(profile, variants[0].options, driver, args.warmup)
        if not roundtrip["available"]:
            notes.append(f"roundtrip not available here: {roundtrip['reason']}")

    # -- JSON, table, plot -------------------------------------------------------------------
    machine = machine_info()
    per_frame = {v.label: accs[v.label].times.per_frame() for v in variants}
    enrolled = (f"{profile.name} ({profile.kind} profile, reference frame "
                f"{profile.settings.get('atlas', {}).get('reference_frame', 0)})")
    common = {"profile": args.profile or f"{Path(args.self_reenact).name} first half: {enrolled}",
              "driver": driver.label, "driver_fps": driver.fps, "warmup": args.warmup}
    if compare is None:
        out = {**results["run"], **common}
        shown = dict(results["run"])
    else:
        base = list(results)[0]
        out = {"compare": {"key": compare[0], "values": compare[1], "block": args.block},
               "baseline": base, "variants": results, "ratios": _ratios(results, base),
               **common}
        shown = {"variants": results, "baseline": base}
    if sr_section is not None:
        out["self_reenact"] = sr_section
    if roundtrip is not None:
        out["roundtrip"] = roundtrip
    if notes:
        out["notes"] = notes
    out["machine"] = machine

    text = [f"## bench: {common['profile']} ← {driver.label}"
            + (f" · compare {compare[0]} = {', '.join(compare[1])}" if compare else ""),
            markdown_table({k: v for k, v in shown.items() if k != "name"})]
    if sr_section is not None:
        sr_profile = st.self_re[0]
        text.append(f"### self-reenactment: {Path(args.self_reenact).name}, avatar "
                    f"{sr_profile.name} ({sr_profile.kind} profile), "
                    f"driven by {sr_section['driver']}\n\n"
                    + _kv_table("metric", list(sr_section["quality"].items())))
    if roundtrip is not None and roundtrip["available"]:
        lat = roundtrip["latency_ms"]
        text.append(_kv_table("round trip (capture → virtual camera → read back)", [
            ("device", roundtrip["device"]), ("frames", roundtrip["frames"]),
            *((f"{k} ms", lat[k]) for k in ("p50", "p95", "p99"))]))
    if notes:
        text.append("notes:\n" + "\n".join(f"- {n}" for n in notes))
    print("\n\n".join(text))
    if args.json:
        write_json(args.json, out)
        print(f"\nwrote {args.json}")
    if args.plot:
        if compare is None:
            plot(dict(results["run"], machine=machine), per_frame["run"], args.plot)
        else:
            plot({"variants": {k: dict(v, machine=machine) for k, v in results.items()},
                  "baseline": shown["baseline"]}, per_frame, args.plot)
        print(f"wrote {args.plot}")
    return 0


def build_engine(profile, options, **changes):
    """An Engine for `options` (with `changes`); a configuration the engine refuses (a tier that
    does not exist, a profile without what the tier needs) is a UsageError."""
    from realtime.engine.loop import Engine

    try:
        return Engine(profile, dataclasses.replace(options, **changes))
    except ValueError as exc:
        raise UsageError(str(exc).strip().splitlines()[0]) from None


def _check_variants(profile, variants: list[Variant]) -> None:
    """Build (and close) every variant's engine once, so a configuration the engine refuses
    stops the run before anything is measured."""
    for v in variants:
        get_device(v.device).check()
        build_engine(profile, v.options).close()


def main(args: argparse.Namespace) -> int:
    """Run the benchmark described by `args` (from `add_arguments`); returns the exit code."""
    from profiles.enroll import EnrollError
    from profiles.format import ProfileError
    from realtime.io.capture import CaptureError
    from realtime.io.sinks import SinkError

    try:
        return _run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ProfileError, EnrollError, CaptureError, SinkError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"error: {first}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # python -m bench.runner ...
    _p = argparse.ArgumentParser(prog="bench")
    add_arguments(_p)
    sys.exit(main(_p.parse_args()))
