"""realtime.io.media: opening pictures and clips within the caps, upright."""
from __future__ import annotations

import subprocess

import cv2
import numpy as np
import pytest

from realtime.io.capture import ClipSource
from realtime.io.media import open_video


def _ffmpeg() -> str:
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:          # a dependency, but its binary may be missing
        pytest.skip(f"no ffmpeg binary to tag a clip's rotation: {exc}")


def _phone_clip(tmp_path, rotation: int):
    """A 160×90 clip (red top band) tagged to be shown turned by `rotation` degrees, as a phone
    stores what it filmed held upright; and the frame as stored (BGR)."""
    raw, tagged = tmp_path / "raw.mp4", tmp_path / "phone.mp4"
    frame = np.zeros((90, 160, 3), np.uint8)
    frame[:30] = (0, 0, 255)
    out = cv2.VideoWriter(str(raw), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (160, 90))
    for _ in range(5):
        out.write(frame)
    out.release()
    done = subprocess.run([_ffmpeg(), "-y", "-loglevel", "error", "-display_rotation", str(rotation), "-i", str(raw),
                           "-c", "copy", str(tagged)], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:             # an FFmpeg older than 6 has no -display_rotation
        pytest.skip(f"ffmpeg could not tag the clip's rotation: {done.stderr.strip()[-200:]}")
    return tagged, frame


def test_a_phone_clip_comes_upright(tmp_path):
    """A clip whose pixels are stored sideways with a display-rotation tag (every phone's
    portrait video) was read sideways: a sideways avatar from `enroll`, a sideways swap (new-user
    review). It is read as a player shows it, and its size is the turned one."""
    path, stored = _phone_clip(tmp_path, 90)
    cap = open_video(path, RuntimeError, "cannot open")
    ok, bgr = cap.read()
    cap.release()
    assert ok and bgr.shape == (160, 90, 3)
    turned = [np.abs(np.rot90(stored, k).astype(int) - bgr).mean() for k in (1, 3)]
    assert min(turned) < 8 < max(turned)         # one of the two quarter turns, not the stored frame
    src = ClipSource(path)
    assert src.size == (90, 160) and src.read()["image"].shape == (160, 90, 3)
    src.close()


@pytest.mark.parametrize("depth", [np.uint8, np.uint16])
def test_a_transparent_picture_is_shown_over_white(tmp_path, depth):
    """OpenCV drops a PNG's transparency and keeps whatever colour the transparent pixels hold
    (a cut-out portrait enrolled over black or garbage, without a word: new-user review). Read
    in colour it is shown over white; opaque pixels keep their colour, half-transparent ones blend."""
    from realtime.io.media import read_image

    top = np.iinfo(depth).max
    bgra = np.zeros((40, 60, 4), depth)
    bgra[..., :3] = (top // 3, top // 2, top // 5)        # the colour under the transparency
    bgra[10:30, 20:40] = (0, 0, top, top)                 # an opaque red square
    bgra[:, :5, 3] = top // 2 + 1                         # a half-transparent strip
    path = tmp_path / "cutout.png"
    cv2.imwrite(str(path), bgra)
    got = read_image(path, RuntimeError, "cannot read")
    assert got.dtype == np.uint8 and got.shape == (40, 60, 3)
    assert (got[0, 30] == 255).all() and (got[20, 30] == (0, 0, 255)).all()
    half = np.round(255 * (0.5 * np.array([1 / 3, 1 / 2, 1 / 5]) + 0.5))
    assert np.abs(got[20, 2].astype(float) - half).max() <= 2
    opaque = tmp_path / "opaque.png"                      # no transparency: as OpenCV reads it
    cv2.imwrite(str(opaque), bgra[..., :3])
    np.testing.assert_array_equal(read_image(opaque, RuntimeError, "x"), cv2.imread(str(opaque)))


def test_a_transparent_picture_keeps_its_exif_turn_and_a_grey_ones_transparent_colour(tmp_path):
    """(code review) OpenCV's unchanged read, which kept the alpha, ignored the EXIF orientation
    that its colour read applies; and a grey PNG's transparent colour (tRNS) got no alpha."""
    from PIL import Image

    from realtime.io.media import read_image

    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :30, 3] = 255                                  # left half opaque red, right transparent
    exif = Image.Exif()
    exif[0x0112] = 6                                       # shown turned 90° clockwise
    Image.fromarray(rgba, "RGBA").save(tmp_path / "turned.png", exif=exif)
    plain = np.ascontiguousarray(rgba[..., :3])
    Image.fromarray(plain, "RGB").save(tmp_path / "turned_opaque.png", exif=exif)
    got = read_image(tmp_path / "turned.png", RuntimeError, "x")
    assert got.shape == cv2.imread(str(tmp_path / "turned_opaque.png")).shape == (60, 40, 3)
    assert (got[0] == (0, 0, 200)).all() and (got[-1] == 255).all()   # red on top, white below
    grey = np.full((20, 20), 120, np.uint8)
    grey[:, :10] = 7
    Image.fromarray(grey, "L").save(tmp_path / "grey.png", transparency=7)
    got = read_image(tmp_path / "grey.png", RuntimeError, "x")
    assert (got[:, :10] == 255).all() and (got[:, 10:] == 120).all()


def test_a_16_bit_grey_picture_with_a_transparent_colour_keeps_its_greys(tmp_path):
    """(enrollment audit, stop 66) Pillow's convert to RGBA clips a 16-bit grey value at 255:
    such a PNG with a tRNS colour was read as a white picture ("no human face")."""
    from PIL import Image

    from realtime.io.media import read_image

    grey = np.full((20, 20), 120 * 257, np.uint16)
    grey[:, :10] = 7
    Image.fromarray(grey).save(tmp_path / "grey16.png", transparency=7)
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    got = read_image(tmp_path / "grey16.png", RuntimeError, "x")
    assert (got[:, :10] == 255).all() and (got[:, 10:] == 120).all()


def test_a_single_picture_driver_reads_as_enroll_reads_it(tmp_path):
    """(code review) A picture given as the driver was decoded by FFmpeg (`ClipSource`), not by
    `read_image`: its transparent part came out black and its EXIF turn was not applied."""
    from PIL import Image

    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :30, 3] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut.png", exif=exif)
    src = ClipSource(tmp_path / "cut.png")
    rgb = src.read()["image"]
    src.close()
    assert src.size == (40, 60) and rgb.shape == (60, 40, 3)
    assert (rgb[0] == (200, 0, 0)).all() and (rgb[-1] == 255).all()


def test_a_file_without_read_permission_is_said_as_such(tmp_path, monkeypatch):
    """Before (stop 60's review): a folder driver's picture without read permission was "empty,
    truncated or not a .png picture (move it out of the folder or replace it)"; a clip, "OpenCV
    does not recognise it as a video". Faked: the suite may run as root, who reads anything."""
    from profiles.enroll import EnrollError, read_rgb
    from realtime.io import media
    from realtime.io.capture import ImageDirSource
    from realtime.io.source import CaptureError

    cv2.imwrite(str(tmp_path / "a.png"), np.full((32, 32, 3), 90, np.uint8))
    clip = tmp_path / "c.avi"
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (32, 32))
    out.write(np.zeros((32, 32, 3), np.uint8))
    out.release()

    def refused(path, mode="r", *a, **k):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(media, "open", refused, raising=False)
    said = "permission denied (make it readable, e.g. chmod a+r, or copy it somewhere you can read)"
    for attempt, error in ((lambda: ImageDirSource(tmp_path), CaptureError),
                           (lambda: ClipSource(tmp_path / "a.png"), CaptureError),
                           (lambda: ClipSource(clip), CaptureError),
                           (lambda: read_rgb(tmp_path / "a.png"), EnrollError)):
        with pytest.raises(error) as e:
            attempt()
        assert said in str(e.value) and "truncated" not in str(e.value)


def test_a_damaged_clip_is_read_without_ffmpegs_own_lines(tmp_path):
    """Before the fix (README audit): a truncated H.264 clip printed raw decoder lines ("[h264 @
    0x…] Invalid NAL unit size") beside the engine's own note that it ended early. A fresh
    process: OpenCV reads the log level once, when it first opens a file with FFmpeg."""
    import os
    import sys
    from pathlib import Path

    rng = np.random.default_rng(0)
    clip = tmp_path / "clip.mp4"
    done = subprocess.run([_ffmpeg(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
                           "-s", "128x96", "-r", "30", "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                           "-movflags", "+faststart", str(clip)],
                          input=rng.integers(0, 256, (60, 96, 128, 3), np.uint8).tobytes(),
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size * 2 // 3])
    code = ("import sys; from realtime.io.capture import open_source; src = open_source(sys.argv[1]); n = 0\n"
            "while src.read() is not None: n += 1\n"
            "print(n, src.ended_early())")
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    run = subprocess.run([sys.executable, "-c", code, str(cut)], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[3], env=env)
    assert run.returncode == 0, run.stderr
    assert "ended at frame" in run.stdout and int(run.stdout.split()[0]) < 60
    assert run.stderr == ""


def _small_clip(path):
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (32, 32))
    for _ in range(3):
        out.write(np.full((32, 32, 3), 200, np.uint8))
    out.release()
    return path


PLAYLISTS = {
    "hls": (b"#EXTM3U\n#EXT-X-TARGETDURATION:20\n#EXTINF:3.0,\nother.avi\n#EXT-X-ENDLIST\n", "HLS/M3U playlist"),
    "hls_bom": (b"\xef\xbb\xbf \r\n\t#extm3u\n#EXTINF:3.0,\nother.avi\n", "HLS/M3U playlist"),
    "ffconcat": (b"ffconcat version 1.0\nfile other.avi\n", "FFmpeg concat list"),
    "pls": (b"[playlist]\nFile1=other.avi\nNumberOfEntries=1\n", "PLS playlist"),
    "sdp": (b"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nm=video 5004 RTP/AVP 96\n", "SDP"),
    "sdp_c_line": (b"o=- 0 0 IN IP4 127.0.0.1\nc=IN IP4 127.0.0.1\nm=video 5004 RTP/AVP 96\n", "SDP"),
    "dash": (b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"></MPD>\n', "XML or HTML"),
}


@pytest.mark.parametrize("case", sorted(PLAYLISTS))
def test_a_playlist_named_like_a_video_is_refused_before_ffmpeg_opens_it(tmp_path, case):
    """Before the fix (security review F6): FFmpeg picks its demuxer by the content, so a text
    HLS playlist or ffconcat list named clip.mp4 drove the engine with the frames of other local
    files it lists (here other.avi, beside it), which no input check saw. Every reader of a
    user's clip goes through `open_video` (a driver, enroll's clip reader) and refuses it in one
    line; the playlist is never handed to FFmpeg."""
    from profiles.clip import read_frames
    from profiles.enroll import EnrollError
    from realtime.io.capture import open_source
    from realtime.io.source import CaptureError

    _small_clip(tmp_path / "other.avi")
    text, kind = PLAYLISTS[case]
    path = tmp_path / "clip.mp4"
    path.write_bytes(text)
    for attempt, error in ((lambda: open_video(path, RuntimeError, "cannot open"), RuntimeError),
                           (lambda: ClipSource(path), CaptureError),
                           (lambda: open_source(str(path)), CaptureError),
                           (lambda: next(read_frames(path)), EnrollError)):
        with pytest.raises(error) as e:
            attempt()
        message = str(e.value)
        assert message.startswith(f"{str(path)!r} is ") and kind in message and "\n" not in message
        assert "not a video: FFmpeg would play the other files it names" in message
        assert message.endswith("a driver or clip must be the video file itself")


def test_a_real_clip_and_other_text_are_not_taken_for_playlists(tmp_path):
    from realtime.core.paths import playlist_kind

    clip = _small_clip(tmp_path / "c.avi")
    assert playlist_kind(clip) is None
    cap = open_video(clip, RuntimeError, "cannot open")
    cap.release()
    (tmp_path / "notes.mp4").write_bytes(b"just some text, not a video\n")
    with pytest.raises(RuntimeError, match="^cannot open$"):     # OpenCV's refusal, as before
        open_video(tmp_path / "notes.mp4", RuntimeError, "cannot open")


@pytest.mark.parametrize("fmt", [".jpg", ".png"])
def test_a_picture_cut_short_is_refused_as_damaged_when_read_whole(tmp_path, fmt):
    """Before the fix (README audit, helper 89): OpenCV decoded a JPEG cut at 90 kB of 120 with
    grey rows at the bottom, and enroll made an avatar of it without a word."""
    from realtime.io.media import damage, read_image

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (5, 5), 0)
    whole = tmp_path / f"whole{fmt}"
    cv2.imwrite(str(whole), image)
    cut = tmp_path / f"cut{fmt}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    assert damage(whole) is None
    if fmt == ".jpg":      # OpenCV alone decodes it, grey below the cut (a PNG it refuses by itself)
        assert cv2.imread(str(cut)) is not None
        assert read_image(cut, RuntimeError, "x").shape == image.shape     # a frame of a folder: as before
    with pytest.raises(RuntimeError) as e:
        read_image(cut, RuntimeError, "x", whole=True)
    assert str(e.value) == (f"{str(cut)!r} is damaged: the file ends before the picture does (a download or copy "
                            f"cut short?); use a complete copy of the picture")
    np.testing.assert_array_equal(read_image(whole, RuntimeError, "x", whole=True), cv2.imread(str(whole)))


@pytest.mark.parametrize("suffix", [".webp", ".tif"])
def test_a_webp_or_tiff_with_an_exif_turn_comes_upright(tmp_path, suffix):
    """(enrollment audit) OpenCV applies the EXIF orientation of a JPEG or PNG only: a WebP whose
    pixels are stored sideways (tag 6) was enrolled sideways, and such a TIFF was "cannot read
    ... as an image (supported: ... .tif ...)". Both read upright, as the JPEG does."""
    from PIL import Image

    from realtime.io.media import read_image

    upright = np.zeros((60, 40, 3), np.uint8)
    upright[:20] = (200, 0, 0)                             # red band on top (RGB)
    exif = Image.Exif()
    exif[0x0112] = 6                                       # shown turned 90° clockwise
    stored = Image.fromarray(upright, "RGB").transpose(Image.Transpose.ROTATE_90)
    stored.save(tmp_path / "ref.jpg", exif=exif, quality=95)
    stored.save(tmp_path / f"turned{suffix}", exif=exif, **({"lossless": True} if suffix == ".webp" else {}))
    ref = read_image(tmp_path / "ref.jpg", RuntimeError, "x")
    got = read_image(tmp_path / f"turned{suffix}", RuntimeError, "cannot read")
    assert ref.shape == got.shape == (60, 40, 3)
    assert (got[:15] == (0, 0, 200)).all() and (got[25:] == 0).all()   # BGR: red on top
