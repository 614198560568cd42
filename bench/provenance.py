"""How well the provenance mark survives what a video call does to a video (`run.py verify FILE
--attacks`): the file re-encoded by FFmpeg through each of `ATTACKS`, each copy read back by
`realtime.image.verify.verify_path`, one row per attack: the 2-second windows in which the mark
is found, the worst window's pilot z (Z_FOUND needed) and the frames in which it is found on
their own. The README's table of the mark's robustness is this, on `live` outputs.
"""
from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from realtime.core.paths import IMAGE_SUFFIXES, not_a_file
from realtime.image.verify import WINDOW_S, VerifyError, verify_path
from realtime.io.sinks.file import ffmpeg_exe

__all__ = ["ATTACKS", "AttackRow", "attack_table", "format_table"]

_BRIGHT = "lutrgb=r=val*1.1:g=val*1.1:b=val*1.1"
#: name → FFmpeg output options: a low bitrate, a small size, brighter, and all three at once
ATTACKS: dict[str, list[str]] = {
    "H.264 300 kbit/s": ["-c:v", "libx264", "-b:v", "300k"],
    "320×240": ["-vf", "scale=320:240", "-c:v", "libx264", "-crf", "18"],
    "+10 % brightness": ["-vf", _BRIGHT, "-c:v", "libx264", "-crf", "18"],
    "all three": ["-vf", f"scale=320:240,{_BRIGHT}", "-c:v", "libx264", "-b:v", "300k"],
}


@dataclass
class AttackRow:
    attack: str                 # "as is" for the file itself
    windows_found: int
    windows: int
    worst_z: float              # the lowest pilot z over the windows
    frames_found: int           # frames in which the mark is found on their own
    frames: int

    @property
    def every_window(self) -> bool:
        return self.windows > 0 and self.windows_found == self.windows

    def to_json(self) -> dict:
        return {"attack": self.attack, "windows_found": self.windows_found, "windows": self.windows,
                "worst_z": round(self.worst_z, 2), "frames_found": self.frames_found, "frames": self.frames}


def _row(name: str, path: Path, window_s: float) -> AttackRow:
    r = verify_path(path, window_s=window_s)
    return AttackRow(name, len(r.found_windows), len(r.windows), min(w.detection.z for w in r.windows),
                     sum(w.frames_found for w in r.windows), r.frames)


def attack_table(path: str | Path, attacks: dict[str, list[str]] | None = None, window_s: float = WINDOW_S,
                 progress=None) -> list[AttackRow]:
    """The file as it is, then one row per attack (see the module docstring). `progress(row)` is
    called as each row is done. VerifyError when `path` is not a readable video or FFmpeg fails."""
    p = Path(path)
    if (problem := not_a_file(p)) is not None:
        raise VerifyError(f"--attacks re-encodes a video file; {p} {problem}")
    if p.suffix.lower() in IMAGE_SUFFIXES:
        raise VerifyError(f"--attacks re-encodes a video; {p.name} is an image (verify it without --attacks)")
    rows = [_row("as is", p, window_s)]
    if progress:
        progress(rows[-1])
    ffmpeg = ffmpeg_exe()
    with tempfile.TemporaryDirectory(prefix="puppeteer-attacks-") as tmp:
        for i, (name, options) in enumerate((attacks if attacks is not None else ATTACKS).items()):
            out = Path(tmp) / f"attack{i}.mp4"
            done = subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i", str(p), *options, "-pix_fmt", "yuv420p",
                                   "-an", str(out)], capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                raise VerifyError(f"FFmpeg could not re-encode {p.name} for {name!r}: {last}")
            rows.append(_row(name, out, window_s))
            if progress:
                progress(rows[-1])
    return rows


def format_table(rows: list[AttackRow]) -> str:
    """A markdown table of `rows`."""
    lines = ["| attack | windows found | worst window z | frames found on their own |",
             "| :--- | ---: | ---: | ---: |"]
    for r in rows:
        pct = 100.0 * r.frames_found / max(r.frames, 1)
        lines.append(f"| {r.attack} | {r.windows_found} of {r.windows} | {r.worst_z:.1f} | "
                     f"{r.frames_found} of {r.frames} ({pct:.0f} %) |")
    return "\n".join(lines)
