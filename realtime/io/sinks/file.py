"""The file sink: an H.264 mp4 written by FFmpeg (imageio_ffmpeg's binary) through a pipe.

Nothing is lost: FFmpeg writes a hidden temporary file beside the output
(``.NAME.partial-PID.mp4``), renamed onto the output's name only once FFmpeg has finished it,
so a failed write (a full disk) leaves no unplayable file and the file that was there before
stays until the new one is complete. An existing file is not replaced unless asked
(`overwrite`, the CLI's ``--overwrite``), and never a file the run reads (`protect`: the driver
clip). FFmpeg runs in its own process group: a Ctrl-C in the terminal reaches only Python, which
closes the pipe, so FFmpeg finishes the file and the sink renames it into place.

imageio_ffmpeg is imported when a file sink opens, so that everything else runs where it is not
installed (a bare GPU machine); there an `ffmpeg` on the PATH serves instead."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from realtime.core import paths
from realtime.core.frame import Frame
from realtime.io.sinks.base import SinkError, checked_output


def ffmpeg_exe() -> str:
    """imageio_ffmpeg's ffmpeg binary, else an `ffmpeg` on the PATH, else SinkError."""
    try:
        import imageio_ffmpeg  # noqa: PLC0415 - optional: absent on a bare GPU machine
    except ModuleNotFoundError:
        found = shutil.which("ffmpeg")
        if found is None:
            raise SinkError("file sink: needs FFmpeg: pip install imageio-ffmpeg (or put an ffmpeg "
                            "on the PATH)") from None
        return found
    return imageio_ffmpeg.get_ffmpeg_exe()


class FileSink:
    """H.264 mp4 (yuv420p, +faststart: plays in browsers and players) via FFmpeg.

    Frames go to imageio_ffmpeg's ffmpeg binary as raw rgb24 through a stdin pipe. Odd widths or
    heights are padded by one black pixel to even (yuv420p needs even sizes).

    Args:
        path: output file; its folder must exist (SinkError otherwise, raised here).
        fps: frame rate of the file; `open(..., fps)` overrides it when given (not None).
        crf, preset: x264 quality/speed (defaults: visually lossless-ish, fast enough for 2 cores).
        overwrite: replace an existing file at `path` (SinkError here otherwise).
        protect: files the output must not be (the driver clip): SinkError here.
    """

    name = "file"

    def __init__(self, path: str | os.PathLike, fps: float | None = 30.0, crf: int = 18,
                 preset: str = "veryfast", overwrite: bool = False,
                 protect: Iterable[str | os.PathLike] = ()):
        self.path = Path(path).expanduser()
        folder = self.path.parent
        if not paths.is_dir(folder):
            raise SinkError(f"file sink: folder {str(folder)!r} for {str(self.path)!r} does "
                            f"not exist; create it first")
        for other in protect:
            if _same_file(self.path, Path(other)):
                raise SinkError(f"file sink: {str(self.path)!r} is the driver itself; writing "
                                f"there would destroy it: choose another output file")
        if paths.is_dir(self.path):
            raise SinkError(f"file sink: {str(self.path)!r} is a folder; name an output file")
        if paths.exists(self.path) and not overwrite:
            raise SinkError(f"file sink: {str(self.path)!r} exists already; pass --overwrite to "
                            f"replace it, or choose another name")
        self.overwrite = bool(overwrite)
        self.partial = folder / f".{self.path.stem}.partial-{os.getpid()}{self.path.suffix}"
        self.fps = fps
        self.crf, self.preset = int(crf), preset
        self.size: tuple[int, int] | None = None
        self.frames_written = 0
        self._proc: subprocess.Popen | None = None
        self._stderr = None

    def command(self, width: int, height: int, fps: float) -> list[str]:
        """The ffmpeg command line for frames of `width` x `height` at `fps`."""
        return [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
                "-framerate", f"{fps:g}", "-i", "pipe:0",
                "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                "-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf),
                "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-an", str(self.partial)]

    def open(self, width: int, height: int, fps: float | None = None) -> None:
        if self._proc is not None:
            raise SinkError(f"file sink {str(self.path)!r} is already open")
        if not self.path.parent.is_dir():
            raise SinkError(f"file sink: folder {str(self.path.parent)!r} does not exist")
        fps = fps if fps is not None else self.fps
        if fps is None or not fps > 0:
            raise SinkError(f"file sink: need a positive fps, got {fps!r}")
        self.fps = float(fps)
        self.size = (int(width), int(height))
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: ffmpeg can never block on it
        # Its own process group: a terminal's Ctrl-C stops Python, which closes the pipe (ffmpeg
        # then finishes the file); ffmpeg interrupted itself would leave it for Python to discard.
        group = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if sys.platform == "win32"
                 else {"start_new_session": True})
        try:
            self._proc = subprocess.Popen(self.command(*self.size, self.fps),
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._stderr, **group)
        except OSError as exc:
            raise SinkError(f"file sink: cannot start ffmpeg from imageio_ffmpeg: {exc}") from exc

    def _ffmpeg_errors(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-2000:]

    def write(self, frame: Frame) -> None:
        if self._proc is None:
            raise SinkError(f"file sink {str(self.path)!r}: write() before open()")
        out = checked_output(frame, self.size, self.name)
        try:
            self._proc.stdin.write(np.ascontiguousarray(out).data)
        except (BrokenPipeError, OSError, ValueError) as exc:
            proc, self._proc = self._proc, None
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            message = (f"file sink: ffmpeg stopped while writing {str(self.path)!r} "
                       f"(exit {proc.returncode}): {_last_line(self._ffmpeg_errors()) or exc}; "
                       f"is the disk full? Nothing was written")
            self._stderr.close()
            self._stderr = None
            self._discard()
            raise SinkError(message) from exc
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file; raises SinkError when ffmpeg reports a failure."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.returncode != 0:
                self._discard()
                raise SinkError(f"file sink: ffmpeg failed writing {str(self.path)!r} "
                                f"(exit {proc.returncode}): {_last_line(self._ffmpeg_errors())}; "
                                f"is the disk full? Nothing was written")
            self._finish()
        finally:
            self._stderr.close()
            self._stderr = None

    def _discard(self) -> None:
        with contextlib.suppress(OSError):
            self.partial.unlink()

    def _finish(self) -> None:
        """The finished file takes the output's name (never silently over another file)."""
        try:
            if self.overwrite:
                os.replace(self.partial, self.path)
                return
            try:
                os.link(self.partial, self.path)     # fails if a file appeared there meanwhile
            except FileExistsError:
                raise SinkError(f"file sink: {str(self.path)!r} appeared while recording; the "
                                f"recording is kept as {str(self.partial)!r}") from None
            except OSError:                          # no hard links here (FAT, some shares)
                if self.path.exists():
                    raise SinkError(f"file sink: {str(self.path)!r} appeared while recording; the "
                                    f"recording is kept as {str(self.partial)!r}") from None
                os.replace(self.partial, self.path)
                return
            self.partial.unlink()
        except OSError as exc:
            raise SinkError(f"file sink: cannot move the recording {str(self.partial)!r} to "
                            f"{str(self.path)!r}: {exc.strerror or exc}") from exc

    def poll_events(self) -> list[str]:
        return []


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
