"""The file sink: an H.264 mp4 written by FFmpeg (imageio_ffmpeg's binary) through a pipe.

Nothing is lost: FFmpeg writes a hidden temporary file beside the output
(``.NAME.partial-PID.mp4``), renamed onto the output's name only once FFmpeg has finished it,
so a failed write (a full disk) leaves no unplayable file and the file that was there before
stays until the new one is complete; a sink closed before its first frame leaves nothing, and a
partial file left by a process that no longer runs (one killed outright) is removed when the
next sink opens at that name. An existing file is not replaced unless asked (`overwrite`, the
CLI's ``--overwrite``), and never a file the run reads nor one inside a folder it reads
(`protect`: the driver, a tracked driver's clip, the remix sources). `check_output` makes those
checks (and the name's container, and that the folder is writable) before anything starts.
FFmpeg runs in its own process group: a Ctrl-C in the terminal reaches only Python, which
closes the pipe, so FFmpeg finishes the file and the sink renames it into place.

imageio_ffmpeg is imported when a file sink opens, so that everything else runs where it is not
installed (a bare GPU machine); there an `ffmpeg` on the PATH serves instead."""
from __future__ import annotations

import contextlib
import os
import re
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

#: The containers the file sink writes H.264 into (by the output name's extension).
SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")

#: A path the run reads, alone or with what it is to the run ("the driver", ...).
Protected = str | os.PathLike | tuple[str | os.PathLike, str]


def check_output(path: str | os.PathLike, overwrite: bool = False,
                 protect: Iterable[Protected] = ()) -> Path:
    """The output file `path` (user expanded), or SinkError saying what to change when it: is one
    of the `protect` paths the run reads (the same file under any name: realpath and
    os.path.samefile, so symlinks and hard links too) or lies inside one that is a folder; has no
    extension of `SUFFIXES`; cannot be created (folder missing or not writable, a folder itself);
    exists and not `overwrite`. Writes nothing that stays (the folder is probed with an empty file)."""
    out = Path(path).expanduser()
    for item in protect:
        other, role = item if isinstance(item, tuple) else (item, "the driver")
        _check_not_input(out, Path(other), role)
    if out.suffix.lower() not in SUFFIXES:
        raise SinkError(f"file sink: {str(out)!r} is not a video name it writes (H.264 in "
                        f"{', '.join(SUFFIXES)}; got {out.suffix or 'no extension'!r}): name it "
                        f"{out.stem}.mp4, or choose another sink")
    problem = paths.cannot_write(out)
    if problem is not None:
        raise SinkError(f"file sink: cannot write {str(out)!r}: {problem}; choose another output file")
    if paths.exists(out) and not overwrite:
        raise SinkError(f"file sink: {str(out)!r} exists already; pass --overwrite to "
                        f"replace it, or choose another name")
    return out


def _check_not_input(out: Path, other: Path, role: str) -> None:
    """SinkError when writing `out` would destroy `other` (`role`: what it is to the run)."""
    real_out, real_other = os.path.realpath(out), os.path.realpath(other)
    if real_out == real_other or _same_file(out, other):
        raise SinkError(f"file sink: {str(out)!r} is {role} itself ({str(other)!r}); writing "
                        f"there would destroy it: choose another output file")
    if paths.is_dir(other) and os.path.commonpath([real_out, real_other]) == real_other:
        raise SinkError(f"file sink: {str(out)!r} lies inside {str(other)!r}, the folder {role} "
                        f"reads; choose an output file outside it")


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
        path: output file (.mp4 .m4v .mov .mkv) in a writable folder (SinkError otherwise, raised
            here by `check_output`).
        fps: frame rate of the file; `open(..., fps)` overrides it when given (not None).
        crf, preset: x264 quality/speed (defaults: visually lossless-ish, fast enough for 2 cores).
        overwrite: replace an existing file at `path` (SinkError here otherwise).
        protect: what the run reads (paths, or (path, role) pairs: the driver, a tracked
            driver's clip, the remix sources, image folders): the output must be none of them nor
            inside one of the folders (SinkError here).

    `kept` is the finished file once `close()` put it in place (None before, and after a close
    with no frame written: then nothing is left, not even the partial file).
    """

    name = "file"

    def __init__(self, path: str | os.PathLike, fps: float | None = 30.0, crf: int = 18,
                 preset: str = "veryfast", overwrite: bool = False,
                 protect: Iterable[Protected] = ()):
        self.path = check_output(path, overwrite, protect)
        folder = self.path.parent
        self.overwrite = bool(overwrite)
        self.partial = folder / f".{self.path.stem}.partial-{os.getpid()}{self.path.suffix}"
        self.fps = fps
        self.crf, self.preset = int(crf), preset
        self.size: tuple[int, int] | None = None
        self.frames_written = 0
        self.kept: Path | None = None
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
        self._remove_stale_partials()
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

    def _remove_stale_partials(self) -> None:
        """Remove this output's partial files whose writer no longer runs (killed outright, or
        left by an older version); a running writer's stays."""
        pattern = re.compile(re.escape(f".{self.path.stem}.partial-") + r"(\d+)" + re.escape(self.path.suffix))
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.path.parent):
                match = pattern.fullmatch(entry.name)
                if match and int(match.group(1)) != os.getpid() and not _running(int(match.group(1))):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

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
            if self.frames_written == 0:     # stopped before the first frame: leave nothing
                self._discard()
                return
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
        """The finished file takes the output's name (never silently over another file: one that
        appeared there meanwhile stays, and the recording is kept beside it as NAME-PID.mp4)."""
        try:
            if self.overwrite:
                os.replace(self.partial, self.path)
            elif not self._link_to(self.path):
                aside = self.path.with_name(f"{self.path.stem}-{os.getpid()}{self.path.suffix}")
                if not self._link_to(aside):
                    raise SinkError(f"file sink: {str(self.path)!r} and {str(aside)!r} appeared "
                                    f"while recording; the recording is kept as {str(self.partial)!r}")
                self.kept = aside
                raise SinkError(f"file sink: {str(self.path)!r} appeared while recording; the "
                                f"recording is kept as {str(aside)!r}")
        except OSError as exc:
            raise SinkError(f"file sink: cannot move the recording {str(self.partial)!r} to "
                            f"{str(self.path)!r}: {exc.strerror or exc}") from exc
        self.kept = self.path

    def _link_to(self, target: Path) -> bool:
        """Give the partial file the name `target` unless a file has it; False when one has."""
        try:
            os.link(self.partial, target)            # fails if a file is there
        except FileExistsError:
            return False
        except OSError:                              # no hard links here (FAT, some shares)
            if target.exists():
                return False
            os.replace(self.partial, target)
            return True
        self.partial.unlink()
        return True

    def poll_events(self) -> list[str]:
        return []


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _running(pid: int) -> bool:
    """True when a process `pid` exists (another user's counts: it may be writing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
