"""Media files read with their size checked first: a photo's dimensions come from its header
(Pillow reads only that) and a video's from its container (OpenCV's properties, before a frame
is decoded), and either is refused above the caps below before a single pixel is decoded. A
PNG that declares 30,000² pixels is one line, not 5 GB and 18 s.

The decoders run with the native stderr silenced (`realtime.core.quiet`): libpng's and
FFmpeg's warnings ("iCCP: known incorrect sRGB profile", "moov atom not found") would print
before the one `error:` line. A clip's frames are read while the engine prints, so there FFmpeg's
own log is turned off instead (`OPENCV_FFMPEG_LOGLEVEL`, read by OpenCV when it first opens a
file with FFmpeg; a value the user sets is kept): a damaged clip printed raw decoder lines
("[h264 @ 0x…] Invalid NAL unit size") beside the engine's own note that it ended early.

FFmpeg picks how to read a file by its content, not its name: a "clip.mp4" that is an HLS
playlist plays the local files it lists. `open_video` refuses such text playlists first.
"""
from __future__ import annotations

import contextlib
import math
import os
import struct
import threading
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from realtime.core.errors import PuppeteerError
from realtime.core.paths import playlist_kind
from realtime.core.quiet import quiet_native_stderr

__all__ = ["damage", "WHOLE_FORMATS", "MAX_IMAGE_PIXELS", "MAX_IMAGE_SIDE", "MAX_VIDEO_PIXELS", "MAX_VIDEO_SIDE",
           "check_frame", "check_image", "image_size", "read_image", "open_video"]

MAX_IMAGE_SIDE = 20_000          # a 20,000 px panorama still opens
MAX_IMAGE_PIXELS = 100_000_000   # 100 MP: a 12,000 × 8,000 photo (~300 MB decoded)
MAX_VIDEO_SIDE = 8192
MAX_VIDEO_PIXELS = 4096 * 4096   # 4K UHD and DCI 4K fit
# The formats whose header is read before OpenCV decodes them (what OpenCV reads, less the
# exotic ones: a file Pillow cannot identify among these is not decoded at all).
HEADER_FORMATS = ("PNG", "JPEG", "BMP", "DIB", "WEBP", "TIFF", "PPM", "JPEG2000", "SUN")

_pil_lock = threading.Lock()

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")   # AV_LOG_QUIET: see the module docstring


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from the image file's header, or None when it is not an image file of
    a known format (nothing is decoded)."""
    header = _header(path)
    return None if header is None else header[:2]


#: What Pillow raises for a file it cannot read as a picture.
_PIL_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error)


@contextlib.contextmanager
def _pillow():
    """Pillow, one thread at a time, quiet, and without its own pixel cap (the caps are ours,
    checked on the header with the declared size in the message)."""
    with _pil_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


#: The formats whose EXIF orientation OpenCV's colour read applies itself: it ignores a WebP's,
#: and fails on a TIFF's ("can't read data"), so those are turned by Pillow (`_over_white`).
_OPENCV_TURNS = ("JPEG", "PNG")


def _header(path: str | Path) -> tuple[int, int, bool, bool] | None:
    """(width, height, has transparency, has an EXIF turn OpenCV does not apply) from the image
    file's header, or None (`image_size`)."""
    with _pillow():
        try:
            with Image.open(path, formats=HEADER_FORMATS) as im:
                w, h = im.size
                alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
                turned = im.format not in _OPENCV_TURNS and im.getexif().get(0x0112, 1) not in (0, 1)
        except _PIL_ERRORS:
            return None
    return int(w), int(h), bool(alpha), bool(turned)


def _over_white(path: Path) -> np.ndarray | None:
    """The transparent picture at `path` over a white background, (H, W, 3) uint8 BGR, turned
    upright by its EXIF orientation as OpenCV's colour read does; None when Pillow cannot decode
    it. Pillow, not OpenCV: OpenCV's unchanged read ignores EXIF, and gives a grey picture's
    transparent colour (tRNS) no alpha at all."""
    with _pillow():
        try:
            with Image.open(path) as im:
                im = ImageOps.exif_transpose(im)
                if im.mode in ("I", "I;16", "I;16B", "I;16L"):
                    # 16-bit grey: Pillow's convert clips each value at 255 (a white picture)
                    grey = np.asarray(im, np.float32)
                    key = im.info.get("transparency")
                    alpha = np.ones_like(grey) if not isinstance(key, int) else (grey != key).astype(np.float32)
                    grey = np.clip(grey / 257.0, 0.0, 255.0) / 255.0
                    rgba = np.dstack([grey, grey, grey, alpha])
                else:
                    rgba = np.asarray(im.convert("RGBA"), np.float32) / 255.0
        except _PIL_ERRORS:
            return None
    a = rgba[..., 3:]
    rgb = np.clip(255.0 * (rgba[..., :3] * a + (1.0 - a)) + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb[..., ::-1])


def _check(w: int, h: int, max_side: int, max_pixels: int, what: str, error, advice: str):
    if w <= 0 or h <= 0:
        raise error(f"{what} declares an empty picture ({w}×{h} px)")
    if w > max_side or h > max_side or w * h > max_pixels:
        root = math.isqrt(max_pixels)
        area = (f"{max_pixels // 1_000_000} megapixels" if max_pixels % 1_000_000 == 0
                else f"{root}×{root} px in all" if root * root == max_pixels    # 4K's 4096², not "16.7772 MP"
                else f"{max_pixels / 1e6:g} megapixels")
        raise error(f"{what} is {w}×{h} px, larger than this reads (at most {max_side} px a side "
                    f"and {area}); {advice}")


def _check_readable(path: Path, error: type[PuppeteerError]) -> None:
    """Raise `error` naming why the file cannot be opened for reading: the decoders below give
    only None for a file without read permission, which would read as an empty or corrupt one."""
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise error(f"cannot read {str(path)!r}: permission denied (make it readable, e.g. "
                    f"chmod a+r, or copy it somewhere you can read)") from None
    except OSError as e:
        raise error(f"cannot read {str(path)!r}: {e.strerror or e}") from None


def check_image(path: str | Path, error: type[PuppeteerError], unreadable: str) -> tuple[int, int, bool, bool]:
    """(width, height, has transparency, has an EXIF turn that only Pillow applies) of the image
    file at `path`, from its header, after checking it can be opened and fits the caps (nothing
    decoded): `error(unreadable)` for a file that is not an image, `error(...)` naming the size
    or the reason otherwise."""
    path = Path(path)
    _check_readable(path, error)
    header = _header(path)
    if header is None:
        raise error(unreadable)
    _check(*header[:2], MAX_IMAGE_SIDE, MAX_IMAGE_PIXELS, repr(str(path)), error,
           "scale it down (e.g. to 2000 px on the long side) and try again")
    return header


def read_image(path: str | Path, error: type[PuppeteerError], unreadable: str,
               flags: int = cv2.IMREAD_COLOR, whole: bool = False) -> np.ndarray:
    """The image at `path` as OpenCV decodes it (BGR), after its header says it fits the caps.
    A transparent picture read in colour (the default `flags`) is shown over white (OpenCV would
    drop its transparency, leaving whatever colour the transparent pixels hold: often black), and
    a WebP or TIFF with an EXIF orientation is turned upright as a JPEG is (OpenCV left a phone's
    WebP sideways and could not read such a TIFF at all).
    Raises `error(unreadable)` for a file that is not an image, `error(...)` naming the size for
    one that is too large or why it cannot be opened (no read permission). whole: also
    `error(...)` for a JPEG or PNG file that ends before its picture does (a download or
    copy cut short: OpenCV fills the missing rows with grey and says nothing), at the cost of a
    second decode (`damage`): for a picture read once, an avatar's photo."""
    path = Path(path)
    header = check_image(path, error, unreadable)
    if whole and (why := damage(path)) is not None:
        raise error(f"{str(path)!r} is damaged: {why}; use a complete copy of the picture")
    try:
        with quiet_native_stderr():
            img = _over_white(path) if (header[2] or header[3]) and flags == cv2.IMREAD_COLOR else None
            if img is None:
                img = cv2.imread(str(path), flags)
    except cv2.error:
        img = None
    if img is None:
        raise error(unreadable)
    return img


#: the formats `damage` decodes whole (those whose files are often cut short, and which Pillow
#: decodes itself; OpenCV reads a cut one without a word)
WHOLE_FORMATS = ("JPEG", "PNG", "WEBP")


def damage(path: str | Path) -> str | None:
    """Why the picture at `path` cannot be decoded whole (e.g. "the file ends before the picture
    does"), or None: it decodes, or it is not one of `WHOLE_FORMATS`."""
    with _pillow():
        try:
            with Image.open(path, formats=WHOLE_FORMATS) as im:
                try:
                    im.load()
                except _PIL_ERRORS as e:
                    text = str(e)
                    if "truncated" in text or isinstance(e, (SyntaxError, struct.error, EOFError)):
                        return "the file ends before the picture does (a download or copy cut short?)"
                    return f"its data cannot be decoded ({text[:80]})"
        except _PIL_ERRORS:
            return None
    return None


def open_video(path: str | Path, error: type[PuppeteerError], unopenable: str) -> cv2.VideoCapture:
    """An opened cv2.VideoCapture of the file at `path` whose frame size (from the container,
    nothing decoded yet) fits the caps. Raises `error(unopenable)` when OpenCV cannot open it,
    and `error(...)` for a text playlist (`realtime.core.paths.playlist_kind`: an HLS .m3u8, an
    ffconcat list, ... under any name), which FFmpeg would follow to files the user never named.

    Frames come upright as a player shows them: a phone stores its clips' pixels as the sensor
    was held and tags the turn (display rotation), which OpenCV applies only when asked; the
    frame size it reports is then the turned one too."""
    path = Path(path)
    _check_readable(path, error)
    if (kind := playlist_kind(path)) is not None:
        raise error(f"{str(path)!r} is {kind}, not a video: FFmpeg would play the other files it names "
                    f"instead; a driver or clip must be the video file itself")
    with quiet_native_stderr():
        cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise error(unopenable)
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if w or h:
        try:
            _check(w, h, MAX_VIDEO_SIDE, MAX_VIDEO_PIXELS, path.name, error,
                   "scale it down (e.g. to 1280×720) and try again")
        except PuppeteerError:
            cap.release()
            raise
    return cap


def check_frame(frame: np.ndarray, path: str | Path, error: type[PuppeteerError]) -> None:
    """A decoded frame's size against the video caps (for containers that did not say)."""
    h, w = frame.shape[:2]
    _check(w, h, MAX_VIDEO_SIDE, MAX_VIDEO_PIXELS, Path(path).name, error,
           "scale it down (e.g. to 1280×720) and try again")
