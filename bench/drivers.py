"""What drives the engine in a benchmark: a camera or a clip (`open_driver`), or the second
half of a video that drives an avatar enrolled from its first half (`prepare_self_reenact`).

A `Driver` is a description, opened as often as the passes need (`Driver.open`: the source
positioned at its first frame, limited to its frame count); `Limit` is such a limited view, and
the latency pass uses it to cut one source into blocks.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from bench.usage import DEFAULT_CAMERA_FRAMES, UsageError
from profiles.enroll import EnrollError, build_profile, detect_single_face
from profiles.enroll_video import VIDEO_EXTS, build_video_profile
from realtime.core.paths import sha256_file
from realtime.engine.loop import EngineOptions
from realtime.io.capture import CaptureError, open_source
from realtime.io.tracked import swap_without_frames
from realtime.mesh.fuse import FuseConfig

__all__ = ["Driver", "Limit", "open_driver", "prepare_self_drive", "prepare_self_reenact", "self_reenact_options",
           "SELF_REENACT_FOLLOW_SCALE", "check_enrolled_from"]

#: Self-reenactment follows the driver's distance to the camera (see `self_reenact_options`).
SELF_REENACT_FOLLOW_SCALE = 1.0


class Limit:
    """A source view: at most `count` frames of `source` (None = all); close() closes
    `source` only when the view `owns` it. `on_end(note)` hears the source's truncation note
    (`ended_early`) when the view reads to the source's end."""

    def __init__(self, source, count: int | None, owns: bool = False,
                 on_end: Callable[[str], None] | None = None):
        self.source, self.count, self.read_count, self.owns = source, count, 0, owns
        self.fps, self.size, self.is_live = source.fps, source.size, source.is_live
        self.tracked = getattr(source, "tracked", False)   # a tracked clip: frames carry landmarks
        self.frame_count = count
        self.exhausted = False
        self.on_end = on_end

    def read(self):
        if self.count is not None and self.read_count >= self.count:
            return None
        fields = self.source.read()
        if fields is None:
            self.end()
            return None
        self.read_count += 1
        return fields

    def end(self) -> None:
        """The source has ended (read here, or through another view of it): `exhausted`, and
        its truncation note, if any, goes to `on_end`."""
        if self.exhausted:
            return
        self.exhausted = True
        if self.on_end is not None and (note := self.ended_early()):
            self.on_end(note)

    def close(self) -> None:
        if self.owns:
            self.source.close()

    def ended_early(self) -> str | None:
        """The source's note that its file ended well before the frame count its header
        announces (`ClipSource.ended_early`: a truncated or damaged clip), once this view has read
        to the source's end; None otherwise, and for sources that cannot tell."""
        says = getattr(self.source, "ended_early", None)
        return says() if self.exhausted and says is not None else None

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
    pictures: bool = True       # its frames carry images (a tracked clip without its video: no)
    size: tuple[int, int] | None = None   # its frames' (width, height), when known
    _ended: list[str] = field(default_factory=list, repr=False, compare=False)

    def open(self) -> Limit:
        """The source positioned at `start`, limited to `count` frames (the caller closes
        `.source`)."""
        src = open_source(self.spec)
        lim = Limit(src, self.count, owns=True, on_end=self._heard)
        for _ in range(self.start):
            if lim.source.read() is None:
                lim.end()
                break
        return lim

    def _heard(self, note: str) -> None:
        if note not in self._ended:
            self._ended.append(note)

    def ended_early(self) -> str | None:
        """A note when any pass read this driver to an end well before its file's announced
        frame count (`Limit.ended_early`): a bench on a truncated clip says so rather than
        measuring fewer frames in silence. Only the note is kept, not the sources."""
        return self._ended[0] if self._ended else None

    def frames_up_to(self, most: int) -> int:
        """How many frames it delivers, counting no further than `most` (reads them: for a file
        whose frame count its source does not know, e.g. a PNG opened as a clip)."""
        lim = self.open()
        try:
            n = 0
            while n < most and lim.read() is not None:
                n += 1
            return n
        finally:
            lim.source.close()


def open_driver(spec: str, frames: int | None, swap: bool = False) -> Driver:
    """The driver `--driver spec` names, `frames` long (None: the whole clip, or
    `DEFAULT_CAMERA_FRAMES` from a camera). `swap`: it must carry its frames (UsageError)."""
    try:
        src = open_source(spec)
    except CaptureError as exc:
        raise UsageError(f"--driver: {exc}") from None
    try:
        if swap and (problem := swap_without_frames(src)) is not None:
            raise UsageError(problem)
        camera = bool(src.is_live)
        count = frames if frames is not None else (DEFAULT_CAMERA_FRAMES if camera else None)
        n = src.frame_count
        total = count if n is None else (n if count is None else min(n, count))
        return Driver(spec, 0, count, label=Path(spec).name if not camera else f"camera {spec}",
                      fps=float(src.fps), is_camera=camera, total=total,
                      pictures=bool(getattr(src, "has_images", True)),
                      size=(int(src.size[0]), int(src.size[1])) if src.size else None)
    finally:
        src.close()


def _count_frames(src) -> int:
    n = 0
    while src.read() is not None:
        n += 1
    return n


def image_size(profile) -> tuple[int, int]:
    """(width, height) of the profile's image."""
    h, w = profile["image"].shape[:2]
    return (w, h)


def self_reenact_options(fps: float, profile, size: tuple[int, int] | None = None) -> EngineOptions:
    """Engine options of a self-reenactment: the video's frame `size` (width, height; None: the
    profile's image's, which is the video's for a profile enrolled from it), and the head
    following the driver's distance (`SELF_REENACT_FOLLOW_SCALE`): the real frames show the
    camera moving closer and away, and a fixed head size (the live default) would count that as
    error of every tier alike. (Sized as a photo profile from another file, the output could
    not be compared with the real frames: no PSNR, SSIM or FWE, and a swap refused.)"""
    return EngineOptions(fps=fps, output_size=tuple(size) if size is not None else image_size(profile),
                         fuse=FuseConfig(follow_scale=SELF_REENACT_FOLLOW_SCALE))


def _open_clip(video: str, option: str):
    """The source of a clip file for `option` (UsageError when it cannot be opened or is a
    camera)."""
    try:
        src = open_source(video)
    except CaptureError as exc:
        raise UsageError(f"{option}: {exc}") from None
    if src.is_live:
        src.close()
        raise UsageError(f"{option} needs a video file, not a camera")
    if getattr(src, "tracked", False) and not getattr(src, "has_images", True):
        track = getattr(src, "track", None)
        clip = track.clip if track is not None else "the clip"
        src.close()
        raise UsageError(f"{option} enrolls the avatar from the clip's own frames and compares the "
                         f"output with them, and {Path(video).name} carries landmarks only: put {clip} "
                         f"beside it (or give the clip itself)")
    return src


def check_enrolled_from(profile, video: str, half: int, notes: list[str]) -> None:
    """UsageError unless `profile` (--profile with --self-reenact `video`) can have been enrolled
    from `video`: a clip profile records its clip (settings.atlas.source_sha256, else the file
    name in `source`); a mismatch would compare the output with another person's or scene's
    frames. A photo profile records only its file name: one that is not `video` must be one of
    its first half's frames, saved (`_frame_of`), else it is refused too. A clip profile enrolled
    from frames the second half (`half` on) plays gets a line in `notes`."""
    name, source = Path(video).name, str(getattr(profile, "source", "") or "")
    atlas = (getattr(profile, "settings", None) or {}).get("atlas") or {}
    recorded = atlas.get("source_sha256")
    enroll = (f"enroll its first half (run.py enroll {video} --frames 0:{half} --name NAME) and "
              f"pass that, or drop --profile")
    if recorded is not None or Path(source).suffix.lower() in VIDEO_EXTS:
        same = sha256_file(video) == recorded if recorded is not None else source == name
        if not same:
            differs = " (its sha256 differs)" if recorded is not None and source == name else ""
            raise UsageError(f"--self-reenact {name}: profile {profile.name!r} was enrolled from "
                             f"{source or 'another clip'}{differs}, not from this video: its second "
                             f"half would be compared with another clip's frames; {enroll}")
        last = (atlas.get("frame_range") or [0, 0])[-1]
        if last >= half:
            notes.append(f"self-reenact: profile {profile.name!r} was enrolled from frames up to "
                         f"{last} of {name}, the driven half starts at {half}: PSNR / SSIM there "
                         f"measure frames the avatar was made from")
    elif source != name and _frame_of(profile, video, half) is None:
        raise UsageError(f"--self-reenact {name}: profile {profile.name!r} was enrolled from the photo "
                         f"{source or 'an unnamed image'}, which is none of this video's first {half} frames: "
                         f"its second half would be compared with another picture's face; {enroll}")


#: How close (mean absolute difference, grey levels, every 4th pixel) a photo profile's picture
#: must be to a frame of the clip to count as one of its frames saved: frame 5 of s18.mp4 saved
#: as PNG reads 0.0 against itself, as JPEG (quality 90) 0.8, and 1-4 against the frames 1-6
#: away (a still scene: as good a reference). A picture of another shape is never one; one of
#: another size is compared at the clip's.
SAME_FRAME_MAD = 6.0


def _frame_of(profile, video: str, half: int) -> int | None:
    """The index of the frame among `video`'s first `half` that `profile`'s photo is (a frame
    saved from the clip, at any size, and enrolled), or None (another picture: another shape, or
    none close)."""
    image = profile["image"]
    src = open_source(video)
    try:
        (w, h), (iw, ih) = src.size, (image.shape[1], image.shape[0])
        if abs(w * ih - h * iw) > 0.01 * w * ih:    # another shape: no frame of the clip
            return None
        if (iw, ih) != (w, h):                      # a frame saved at another size
            image = cv2.resize(image, (int(w), int(h)), interpolation=cv2.INTER_AREA)
        probe = image[::4, ::4].astype(np.int16)
        for i in range(half):
            frame = src.read()
            if frame is None:
                return None
            if float(np.abs(frame["image"][::4, ::4].astype(np.int16) - probe).mean()) <= SAME_FRAME_MAD:
                return i
        return None
    finally:
        src.close()


def prepare_self_reenact(video: str, frames: int | None, profile=None, notes: list[str] | None = None):
    """(profile, driver, enrollment landmarks) for self-reenactment on `video`.

    The avatar is `profile` when given (it must have been enrolled from the first half of
    `video`: `check_enrolled_from`, its warnings added to `notes`); otherwise a video profile
    (appearance atlas) is enrolled from the whole first half, or, for a clip too short or too
    poor for an atlas, an image profile from frame 0.
    The driver is the second half; the driver's neutral is pinned to the profile's reference
    frame, so a perfect engine reproduces the real frames.
    """
    src = _open_clip(video, "--self-reenact")
    try:
        first = src.read()
        n = src.frame_count
        fps = float(src.fps)
        size = (int(src.size[0]), int(src.size[1]))
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
    if profile is not None:
        check_enrolled_from(profile, video, half, [] if notes is None else notes)
    if profile is None:
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
                    label=f"{name} frames {half}–{half + count - 1}", fps=fps, total=count, size=size)
    return profile, driver, lm


def prepare_self_drive(video: str, frame: int, frames: int | None):
    """(profile, driver, landmarks) of a self-drive of `video`: a photo profile made from its
    frame `frame`, driven by the whole clip from frame 0, the driver's neutral pinned to that
    frame. A perfect engine reproduces the clip; `bench.fidelity` measures how much of each
    motion (mouth, eyes, brows, gaze, pose) arrives."""
    src = _open_clip(video, "--self-drive")
    try:
        fps = float(src.fps)
        n = src.frame_count
        size = (int(src.size[0]), int(src.size[1]))
        picked = None
        for _ in range(frame + 1):
            picked = src.read()
            if picked is None:
                break
    finally:
        src.close()
    if picked is None:
        raise UsageError(f"--self-drive: {video} has no frame {frame} (--frame counts from 0)")
    name = Path(video).name
    try:
        lm = detect_single_face(picked["image"], f"frame {frame} of {name}")
    except EnrollError as exc:
        raise UsageError(f"--self-drive: {exc}") from None
    profile = build_profile(picked["image"], lm, name=f"{Path(video).stem}-drive", source=name)
    count = frames if n is None or frames is None else min(n, frames)
    total = n if frames is None else count
    driver = Driver(video, start=0, count=frames, label=f"{name} (self-drive from frame {frame})",
                    fps=fps, total=total, size=size)
    return profile, driver, profile["landmarks"]
