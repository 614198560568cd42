"""Reading the provenance mark back from a video, an image or a folder of images (DESIGN §7b).

A video is decoded by FFmpeg (imageio_ffmpeg's binary) straight to the detector's canonical
CANON × CANON luma, so its size never matters; its frames are pooled over consecutive windows of
`window_s` seconds (the last one may be shorter). An image is read by OpenCV and is a window of
its own. A window counts as marked when its pilot z reaches Z_FOUND and its payload passes the
CRC (`realtime.image.mark.Detection.found`). The report also pools every window in which the
pilot is present, for the payload and the confidence it prints.
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from realtime.core.errors import PuppeteerError
from realtime.core.paths import IMAGE_SUFFIXES, not_a_file, playlist_kind
from realtime.core.quiet import quiet_native_stderr
from realtime.core.text import ended_early_note
from realtime.image.mark import CANON, ENGINE_KEY, Z_FOUND, Detection, canonical_luma, cell_stats, detect

__all__ = ["VerifyError", "Window", "Report", "verify_path", "verify_frames"]

WINDOW_S = 2.0


class VerifyError(PuppeteerError):
    """The input cannot be read as a video, an image or a folder of images."""


@dataclass
class Window:
    name: str                   # "frames 0-59 (0.0-2.0 s)" or the image's file name
    first: int                  # frame indices first..last (an image: its index in the folder)
    last: int
    detection: Detection
    frames_found: int = 0       # frames of the window in which the mark is found on its own

    @property
    def found(self) -> bool:
        return self.detection.found


@dataclass
class Report:
    source: str
    kind: str                   # "video" or "images"
    frames: int = 0
    fps: float = 0.0
    windows: list[Window] = field(default_factory=list)
    pooled: Detection | None = None     # over the windows where the pilot is present (else all)
    notes: list[str] = field(default_factory=list)    # about the input (a video that ends early)

    @property
    def found(self) -> bool:
        return any(w.found for w in self.windows)

    @property
    def found_windows(self) -> list[Window]:
        return [w for w in self.windows if w.found]

    def verdict(self) -> str:
        """One paragraph for people."""
        n, k = len(self.windows), len(self.found_windows)
        unit = "window" if self.kind == "video" else "image"
        p = self.pooled
        if self.found and p is not None and p.payload is not None:
            frames = sum(w.frames_found for w in self.windows)
            bound = _bound(p.z)
            lines = [f"FOUND: made by {p.payload.engine_name} (engine id {p.payload.engine}), mode "
                     f"{p.payload.mode}, profile fingerprint {p.payload.fingerprint_hex}",
                     f"  the mark is in {k} of {_count(n, unit)} ({100.0 * k / max(n, 1):.0f}%); in {frames} "
                     f"of {_count(self.frames, 'frame')} on their own",
                     f"  confidence: pilot z {p.z:.1f} pooled (a picture without this mark scores "
                     f"that with probability < {bound}); payload CRC-16 ok, {p.bit_errors} of "
                     f"162 coded bits corrected"]
            return "\n".join(lines)
        best = max(self.windows, key=lambda w: w.detection.z)
        if p is not None and p.pattern_present:
            return (f"NOT VERIFIED: this engine's key pattern is present (pooled z {p.z:.1f}) but no "
                    f"payload passes its check: the frames were altered or damaged beyond repair")
        return (f"NOT FOUND: no {unit} carries this engine's mark (best pilot z "
                f"{best.detection.z:.1f} in {best.name}; {Z_FOUND:.0f} needed)")

    def text(self, show_all: bool = False) -> str:
        """The report for people: a header, one line per window (up to 40 unless `show_all`),
        the verdict."""
        unit = "window" if self.kind == "video" else "image"
        head = (f"{_count(self.frames, 'frame')} at {self.fps:g} fps, {_count(len(self.windows), 'window')}"
                if self.kind == "video" else _count(self.frames, "image"))
        lines = [f"verify {self.source}: {head}"]
        if show_all or len(self.windows) <= 40:
            for w in self.windows:
                d = w.detection
                state = "MARK" if w.found else ("pattern, payload fails" if d.pattern_present else "-")
                pay = f"  {d.payload.describe()}" if w.found and d.payload is not None else ""
                lines.append(f"  {unit} {w.name}: z {d.z:6.1f}  {state}{pay}")
        else:
            lines.append(f"  ({len(self.windows)} {unit}s: --all lists each)")
        return "\n".join(lines + [self.verdict()] + self.notes)

    def to_json(self) -> dict:
        def det(d: Detection | None) -> dict | None:
            if d is None:
                return None
            pay = d.payload
            return {"z": round(d.z, 3), "found": d.found, "bit_errors": d.bit_errors,
                    "payload": None if pay is None else {"engine": pay.engine, "engine_name": pay.engine_name,
                                                         "mode": pay.mode,
                                                         "fingerprint": pay.fingerprint_hex}}

        return {"source": self.source, "kind": self.kind, "frames": self.frames, "fps": self.fps,
                "found": self.found, "windows_found": len(self.found_windows),
                "windows": [{"name": w.name, "first": w.first, "last": w.last,
                             "frames_found": w.frames_found, **(det(w.detection) or {})}
                            for w in self.windows],
                "pooled": det(self.pooled), "notes": list(self.notes)}


def _count(n: int, unit: str) -> str:
    """"1 window", "3 windows"."""
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _bound(z: float) -> str:
    """exp(-z²/2) as text (it underflows a float64 beyond z ≈ 38)."""
    if z <= 0:
        return "1"
    e10 = -0.5 * z * z / math.log(10)
    return f"1e{math.floor(e10) + 1}" if e10 < -300 else f"{10 ** e10:.1e}"


def _pool(windows: list[Window], stats: list[tuple[np.ndarray, np.ndarray]], key: bytes) -> Detection:
    use = [i for i, w in enumerate(windows) if w.detection.pattern_present] or list(range(len(windows)))
    c = sum(stats[i][0] for i in use)
    e = sum(stats[i][1] for i in use)
    return detect(c, e, key)


def verify_frames(lumas, fps: float, window_s: float = WINDOW_S, key: bytes = ENGINE_KEY,
                  source: str = "frames") -> Report:
    """Check an iterable of (CANON, CANON) luma frames at `fps`, pooled over windows."""
    size = max(1, int(round(window_s * fps)))
    report = Report(source=source, kind="video", fps=float(fps))
    windows: list[Window] = []
    stats: list[tuple[np.ndarray, np.ndarray]] = []
    acc: list[np.ndarray] | None = None
    found = first = 0

    def close(last: int) -> None:
        assert acc is not None
        d = detect(acc[0], acc[1], key)
        t0, t1 = first / fps, (last + 1) / fps
        windows.append(Window(f"frames {first}-{last} ({t0:.1f}-{t1:.1f} s)", first, last, d, found))
        stats.append((acc[0], acc[1]))

    for i, y in enumerate(lumas):
        c, e = cell_stats(y)
        if acc is None:
            acc, found, first = [c.copy(), e.copy()], 0, i
        else:
            acc[0] += c
            acc[1] += e
        found += detect(c, e, key).found
        report.frames = i + 1
        if i + 1 - first == size:
            close(i)
            acc = None
    if acc is not None:
        close(report.frames - 1)
    if not windows:
        raise VerifyError(f"{source}: no frames could be decoded")
    report.windows = windows
    report.pooled = _pool(windows, stats, key)
    return report


def _video_lumas(path: Path):
    """(meta, generator of (CANON, CANON) float32 luma frames) of a video, via FFmpeg."""
    try:
        import imageio_ffmpeg  # noqa: PLC0415 - optional: absent on a bare GPU machine
    except ModuleNotFoundError:
        raise VerifyError("verify: reading a video needs the imageio-ffmpeg package: "
                          "pip install imageio-ffmpeg") from None
    log = logging.getLogger("imageio_ffmpeg")  # it warns that the frames are resized: we ask it to
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="gray", bpp=1, output_params=[
            "-vf", f"scale={CANON}:{CANON}:flags=area"])
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise VerifyError(_unreadable(path, str(exc))) from None
    finally:
        log.setLevel(level)
    if str(meta.get("codec", "")).strip(" ,").lower() in TEXT_CODECS:      # ("bintext," as FFmpeg prints it)
        reader.close()
        raise VerifyError(f"cannot read {path} as a video or an image (FFmpeg reads it as text art, codec "
                          f"{str(meta.get('codec')).strip(' ,')!r}: it is not a picture)")

    def frames():
        try:
            for buf in reader:
                yield np.frombuffer(buf, np.uint8).reshape(CANON, CANON).astype(np.float32)
        finally:
            reader.close()

    return meta, frames()


def _unreadable(path: Path, ffmpeg: str) -> str:
    """Why FFmpeg read no video from `path`, in our words, from what it printed (`ffmpeg`): a
    file without a video stream (audio only, or empty) says which streams it has; another keeps
    FFmpeg's reason for the input (e.g. "Invalid data found when processing input")."""
    streams = re.findall(r"Stream #\S+: (\w+)", ffmpeg)
    if "does not contain any stream" in ffmpeg or (streams and "Video" not in streams):
        held = (f"only {' and '.join(sorted(set(streams))).lower()} (no video stream)" if streams
                else "no stream at all")
        return f"{path} holds {held} and is not an image: name a video file, an image or a folder of images"
    last = (ffmpeg.strip().splitlines() or ["unknown reason"])[-1]
    reason = re.sub(r"^Error opening (input|output) files?: ", "", last)
    return f"cannot read {path} as a video or an image ({reason[:200]})"


def _read_image(path: Path) -> np.ndarray | None:
    data = np.fromfile(str(path), np.uint8)
    with quiet_native_stderr():      # a cut PNG's "[ WARN:0 ] ... PNG input buffer is incomplete"
        img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def verify_images(paths: list[Path], key: bytes = ENGINE_KEY, source: str = "",
                  check: Callable[[Path], object] | None = None) -> Report:
    """Check still images, each one its own window; `check(path)` (raising VerifyError) vets
    each file before it is decoded (the caller's size caps, from the header)."""
    report = Report(source=source, kind="images")
    stats = []
    for i, p in enumerate(paths):
        if check is not None:
            check(p)
        img = _read_image(p)
        if img is None:
            raise VerifyError(f"cannot read {p} as an image")
        c, e = cell_stats(canonical_luma(img))
        d = detect(c, e, key)
        report.windows.append(Window(p.name, i, i, d, int(d.found)))
        stats.append((c, e))
        report.frames += 1
    if not report.windows:
        raise VerifyError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in it")
    report.pooled = _pool(report.windows, stats, key)
    return report


def verify_path(path: str | Path, window_s: float = WINDOW_S, key: bytes = ENGINE_KEY,
                check_image: Callable[[Path], object] | None = None) -> Report:
    """Check a video file, an image file or a folder of images. VerifyError on bad input.
    `check_image`: see `verify_images` (a video needs none: FFmpeg hands its frames over scaled
    down to the canonical size, so 8K footage reads as any other)."""
    p = Path(path)
    if not 0 < window_s <= 86400:     # NaN and inf fail too (a window's frame count is an int)
        raise VerifyError(f"the window must be a positive number of seconds (at most a day), got {window_s}")
    if p.is_dir():
        images = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
        return verify_images(images, key, source=str(p), check=check_image)
    if (problem := not_a_file(p)) is not None:
        raise VerifyError(f"{p} {problem}")
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return verify_images([p], key, source=str(p), check=check_image)
    if (kind := playlist_kind(p)) is not None:     # FFmpeg would read the files it lists instead
        raise VerifyError(f"{p} is {kind}, not a video: FFmpeg would read the other files it names "
                          f"instead; verify the video file itself")
    meta, frames = _video_lumas(p)
    fps = float(meta.get("fps") or 30.0)
    try:
        report = verify_frames(frames, fps, window_s, key, source=str(p))
    except (OSError, RuntimeError) as exc:
        raise VerifyError(f"cannot decode {p}: {exc}") from None
    if (note := _ended_early(p.name, report.frames, meta)) is not None:
        report.notes.append(note)
    return report


#: FFmpeg's decoders of text art (ANSI, BinText, XBin, iCEDraw, TTY): they take any file as one
#: "frame" of characters, so a file of random bytes would read as a video without the mark
TEXT_CODECS = frozenset({"bintext", "xbin", "idf", "ansi", "tty"})


def _ended_early(name: str, got: int, meta: dict) -> str | None:
    """`ended_early_note` for a video that stopped well short of its header's duration × rate (a
    file cut short: its mark may be in the frames it lost), else None."""
    try:
        announced = int(round(float(meta.get("duration") or 0.0) * float(meta.get("fps") or 0.0)))
    except (TypeError, ValueError):
        return None
    return ended_early_note(name, got, announced or None,
                            lost="and a mark in the frames it lost was not read")
