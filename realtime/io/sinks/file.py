"""The file sink: H.264 video written by FFmpeg (imageio_ffmpeg's binary) through a pipe.

Nothing is lost: FFmpeg writes a hidden temporary file beside the output
(``.NAME.partial-PID-RANDOM.mp4``, a name no other writer has), renamed onto the output's name
only once FFmpeg has finished it, so a failed write (a full disk) leaves no unplayable file and
the file that was there before stays until the new one is complete; a sink closed before its
first frame leaves nothing. The sink never deletes another process's partial file (it may be a
live writer's on another machine or container, or a recording kept there); one left by a process
killed outright stays until the user deletes it. An existing file is not replaced unless asked
(`overwrite`, the CLI's ``--overwrite``), and never a file the run reads (`protect`: the driver,
a tracked driver's clip, an image folder's images, the remix sources). `check_output` makes
those checks (and the name's container, and that the folder is writable) before anything starts.
FFmpeg runs in its own process group: a Ctrl-C in the terminal reaches only Python, which closes
the pipe, so FFmpeg finishes the file and the sink renames it into place.

imageio_ffmpeg is imported when a file sink opens, so that everything else runs where it is not
installed (a bare GPU machine); there an `ffmpeg` on the PATH serves instead."""
from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
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
SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".ts", ".flv")

#: A path the run reads, alone (then it is "the driver") or with what it is to the run.
Protected = str | os.PathLike | tuple[str | os.PathLike, str]


def check_output(path: str | os.PathLike, overwrite: bool = False,
                 protect: Iterable[Protected] = (), option: str | None = None) -> Path:
    """The output file `path` (user expanded), or SinkError saying what to change when it: is
    empty; is one of the `protect` files the run reads (`overwrites_input`); has no extension of
    `SUFFIXES`; cannot be created (folder missing or not writable, a folder itself); exists and
    not `overwrite`. The error names the file sink, or `option` (e.g. "--out") when the output
    comes from that command-line option. Writes nothing that stays (the folder is probed with an
    empty file)."""
    if not str(path).strip():
        raise SinkError(f"{option} needs a file name: {option} OUT.mp4" if option
                        else "the file sink needs a path: file:OUT.mp4")
    out = Path(path).expanduser()
    head = f"{option} {str(out)!r}" if option else f"file sink: {str(out)!r}"
    problem = overwrites_input(out, protect)
    if problem is not None:
        raise SinkError(f"{head} {problem}: choose another output file")
    if out.suffix.lower() not in SUFFIXES:
        raise SinkError(f"{head} is not a video file name (H.264 in {', '.join(SUFFIXES)}; got "
                        f"{out.suffix or 'no extension'!r}): name it "
                        f"{'out' if out.stem.startswith('.') else out.stem}.mp4"
                        + ("" if option else ", or choose another sink"))
    problem = paths.cannot_write(out)
    if problem is not None:
        raise SinkError(f"{head}: cannot write there: {problem}; choose another output file")
    if paths.taken(out) and not overwrite:
        raise SinkError(f"{head} exists already; pass --overwrite to replace it, or choose "
                        f"another name")
    return out


def overwrites_input(out: str | os.PathLike, protect: Iterable[Protected]) -> str | None:
    """How writing `out` would destroy one of the `protect` files the run reads ("is the driver
    ('clip.mp4'); writing there would destroy it"), or None when it is none of them: the same
    file under any name (realpath and os.path.samefile, so symlinks and hard links too)."""
    out = Path(out).expanduser()
    real_out = os.path.realpath(out)
    for item in protect:
        other, role = item if isinstance(item, tuple) else (item, "the driver")
        if real_out == os.path.realpath(other) or _same_file(out, Path(other)):
            return f"is {role} ({str(other)!r}); writing there would destroy it"
    return None


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


#: x264's macroblock tree (on by default) spends fewer bits on what later frames do not reuse,
#: so a change that lasts a few frames — a blink, a mouth opening — is coded coarsely against a
#: still background: a shut lid came out speckled with the open eye's white showing through
#: (s12 swapped into d10, frames 221-224; helper 110). Off, at CRF 18, frames of s0 <- d0
#: (reenact) against the lossless render: mean PSNR 42.4 -> 45.1 dB, the worst 16x16 block's
#: RMSE (median over frames) 5.0 -> 2.5, 71 -> 234 kB (0.7 Mbit/s); s12 swapped into d10:
#: 40.9 -> 41.3 dB, 6.7 -> 6.1, 1.8 -> 2.3 MB for 15 s.
X264_PARAMS = "mbtree=0"


class FileSink:
    """H.264 video (yuv420p; mp4/m4v/mov with +faststart: plays in browsers and players) via FFmpeg.

    Frames go to imageio_ffmpeg's ffmpeg binary as raw rgb24 through a stdin pipe. Odd widths or
    heights are padded by one black pixel to even (yuv420p needs even sizes).

    Args:
        path: output file (`SUFFIXES`: .mp4 .m4v .mov .mkv .avi) in a writable folder (SinkError
            otherwise, raised here by `check_output`).
        fps: frame rate of the file; `open(..., fps)` overrides it when given (not None).
        crf, preset: x264 quality/speed (defaults: visually lossless-ish, fast enough for 2 cores).
        overwrite: replace an existing file at `path` (SinkError here otherwise).
        protect: the files the run reads (paths, or (path, role) pairs: the driver, a tracked
            driver's clip, an image folder's images, the remix sources): the output must be none
            of them (SinkError here).

    `kept` is the finished file once `close()` put it in place (None before, and after a close
    with no frame written: then nothing is left, not even the partial file); `displaced` is the
    output's name when a file appeared there while recording (it stays, and `kept` is beside it).
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
        self.displaced: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._stderr = None

    @property
    def file_size(self) -> tuple[int, int] | None:
        """The size the file is written at: the frames' `size`, padded to even sides (the
        command's pad filter); None before `open`."""
        if self.size is None:
            return None
        w, h = self.size
        return w + w % 2, h + h % 2

    def command(self, width: int, height: int, fps: float) -> list[str]:
        """The ffmpeg command line for frames of `width` x `height` at `fps`."""
        return [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
                "-framerate", f"{fps:g}", "-i", "pipe:0",
                "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                "-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf),
                "-x264-params", X264_PARAMS,
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
        ffmpeg_exe()             # no FFmpeg: SinkError before anything is created
        self._reserve_partial()
        # Its own process group: a terminal's Ctrl-C stops Python, which closes the pipe (ffmpeg
        # then finishes the file); ffmpeg interrupted itself would leave it for Python to discard.
        group = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if sys.platform == "win32"
                 else {"start_new_session": True})
        try:
            self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: ffmpeg never blocks on it
            self._proc = subprocess.Popen(self.command(*self.size, self.fps),
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._stderr, **group)
        except BaseException as exc:  # nothing left behind: no partial file, no open stderr file
            self._discard()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None
            if isinstance(exc, OSError):
                raise SinkError(f"file sink: cannot start ffmpeg from imageio_ffmpeg: {exc}") from exc
            raise

    def _reserve_partial(self) -> None:
        """Create the partial file under a name no other writer has (`.NAME.partial-PID-RANDOM`):
        ffmpeg's -y would overwrite another writer's of the same PID (another container on a
        shared folder, or a second sink in this process), and its discard would delete it. Its
        mode is an ordinary file's (0666 less the umask; ffmpeg and the rename keep it), not a
        temporary file's 0600: the recording is for others to read too."""
        try:
            self.partial = paths.reserve_hidden(self.path, "partial")
        except FileExistsError as exc:
            raise SinkError(f"file sink: {exc}") from exc
        except OSError as exc:
            raise SinkError(f"file sink: cannot write in {str(self.path.parent)!r}: "
                            f"{exc.strerror or exc}") from exc

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
                       f"{_failure(proc.returncode, self._ffmpeg_errors(), exc)}; nothing was written")
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
                                f"{_failure(proc.returncode, self._ffmpeg_errors())}; nothing was written")
            self._finish()
        finally:
            self._stderr.close()
            self._stderr = None

    def _discard(self) -> None:
        with contextlib.suppress(OSError):
            self.partial.unlink()

    def _finish(self) -> None:
        """The finished file takes the output's name, never silently over another file: when one
        appeared there meanwhile it stays (`displaced` is its name), and the recording takes the
        first free visible name of NAME-PID.mp4, NAME-PID-2.mp4, ... (`kept`). When the folder
        refuses the rename, SinkError says so and where the recording was left."""
        try:
            if self.overwrite:
                os.replace(self.partial, self.path)
            elif not self._link_to(self.path):
                for n in itertools.count(1):
                    aside = self.path.with_name(f"{self.path.stem}-{os.getpid()}"
                                                f"{'' if n == 1 else f'-{n}'}{self.path.suffix}")
                    if self._link_to(aside):
                        break
                self.kept, self.displaced = aside, self.path
                return
        except OSError as exc:
            raise SinkError(f"file sink: cannot rename the finished recording to {str(self.path)!r}: "
                            f"{exc.strerror or exc}; it was left as {str(self.partial)!r} (hidden: "
                            f"ls -a shows it); rename it yourself") from exc
        self.kept = self.path

    def _link_to(self, target: Path) -> bool:
        """Give the partial file the name `target` unless a file has it; False when one has."""
        try:
            os.link(self.partial, target)            # fails if a file is there
        except FileExistsError:
            return False
        except OSError:                              # no hard links here (FAT, some shares)
            if paths.taken(target):                  # a link to nothing is there too
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


def _failure(code: int | None, errors: str, fallback: object = "") -> str:
    """How FFmpeg failed, for an error line: "(exit N): its last line", with "is the disk full?"
    only where that is what it said (or it said nothing); "(killed by SIGNAME ...)" for a
    negative exit (ulimit -f's SIGXFSZ, a kill). `fallback`: what to say when it printed nothing."""
    last = _last_line(errors) or str(fallback or "")
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = " (the file size limit, ulimit -f)" if name == "SIGXFSZ" else ""
        return f"(killed by {name}{why}){f': {last}' if last else ''}"
    said = errors.lower()
    hint = (" (is the disk full?)" if "no space left" in said or not last else
            " (over the file size limit: the file system's, or ulimit -f)" if "file too large" in said else "")
    return f"(exit {code}): {last or 'no message'}{hint}"


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
