"""`verify_path`: videos (windows), images, folders, and bad inputs."""
from __future__ import annotations

import struct
import subprocess

import cv2
import numpy as np
import pytest

from realtime.image.mark import pattern
from realtime.image.payload import Payload
from realtime.image.verify import VerifyError, verify_path
from realtime.io.sinks.file import ffmpeg_exe

PAYLOAD = Payload(mode="reenact", fingerprint=0x0BADC0)


def frames(n, w=320, h=240, marked=True, seed=0):
    rng = np.random.default_rng(seed)
    mark = pattern(PAYLOAD, w, h)[..., None] if marked else 0
    y, x = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        img = 120 + 50 * np.sin((x + 3 * i) / 17.0 + y / 23.0)[..., None] + rng.normal(0, 6, (h, w, 3))
        out.append(np.clip(img + mark, 0, 255).astype(np.uint8))
    return out


def write_video(path, imgs, fps=10, bitrate=None):
    h, w = imgs[0].shape[:2]
    rate = ["-b:v", bitrate] if bitrate else ["-crf", "18"]
    cmd = [ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-framerate", str(fps), "-i", "pipe:0", "-c:v", "libx264", *rate,
           "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(cmd, input=b"".join(i.tobytes() for i in imgs), check=True)
    return path


def test_a_marked_video_is_found_in_every_window(tmp_path):
    path = write_video(tmp_path / "m.mp4", frames(25), bitrate="150k")
    r = verify_path(path)
    assert r.kind == "video" and r.frames == 25 and r.fps == 10
    assert [(w.first, w.last) for w in r.windows] == [(0, 19), (20, 24)]  # 2-s windows at 10 fps
    assert r.found and len(r.found_windows) == 2 and r.pooled.payload == PAYLOAD
    assert "FOUND" in r.text() and PAYLOAD.fingerprint_hex in r.text()
    assert r.to_json()["pooled"]["payload"]["fingerprint"] == "0badc0"


def test_only_the_marked_part_of_a_spliced_video(tmp_path):
    path = write_video(tmp_path / "s.mp4", frames(20, marked=False) + frames(20, seed=1))
    r = verify_path(path)
    assert [w.found for w in r.windows] == [False, True]
    assert r.windows[0].frames_found == 0 and r.windows[1].frames_found == 20


def test_an_unmarked_video_is_not_found(tmp_path):
    r = verify_path(write_video(tmp_path / "u.mp4", frames(20, marked=False)))
    assert not r.found and r.text().splitlines()[-1].startswith("NOT FOUND")


def test_images_and_folders(tmp_path):
    for i, img in enumerate(frames(3)):
        cv2.imwrite(str(tmp_path / f"m{i}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "u.jpg"), cv2.cvtColor(frames(1, marked=False)[0], cv2.COLOR_RGB2BGR))
    (tmp_path / "notes.txt").write_text("not an image")
    r = verify_path(tmp_path)
    assert r.kind == "images" and [w.name for w in r.windows] == ["m0.png", "m1.png", "m2.png", "u.jpg"]
    assert [w.found for w in r.windows] == [True, True, True, False] and r.found
    assert verify_path(tmp_path / "m1.png").found
    assert not verify_path(tmp_path / "u.jpg").found


def test_counts_read_as_words(tmp_path):
    """Before the fix: "1 windows", "1 image(s)", "in 1 of 1 images"."""
    one = verify_path(write_video(tmp_path / "m.mp4", frames(12), bitrate="150k"), window_s=2.0)
    assert "12 frames at 10 fps, 1 window\n" in one.text() and "the mark is in 1 of 1 window (" in one.text()
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(frames(1)[0], cv2.COLOR_RGB2BGR))
    picture = verify_path(tmp_path / "a.png").text()
    assert ": 1 image\n" in picture and "in 1 of 1 image (100%); in 1 of 1 frame on their own" in picture


def test_bad_inputs(tmp_path):
    with pytest.raises(VerifyError, match="does not exist"):
        verify_path(tmp_path / "missing.mp4")
    for window in (0.0, -1.0, float("nan"), float("inf"), 1e308):   # inf, 1e308: an OverflowError before
        with pytest.raises(VerifyError, match="the window must be a positive number of seconds"):
            verify_path(tmp_path / "missing.mp4", window_s=window)
    (tmp_path / "fake.mp4").write_bytes(b"this is no video")
    with pytest.raises(VerifyError, match="cannot read"):
        verify_path(tmp_path / "fake.mp4")
    (tmp_path / "fake.png").write_bytes(b"nor an image")
    with pytest.raises(VerifyError, match="cannot read"):
        verify_path(tmp_path / "fake.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VerifyError, match="no images"):
        verify_path(empty)


def _box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def test_a_file_without_a_video_stream_is_said_in_our_words(tmp_path):
    """Before the fix (new-user review): "cannot read zero.mp4 as a video or an image (Error opening
    output files: Invalid argument)", FFmpeg's words about its own output."""
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _box(b"mvhd", bytes(12) + struct.pack(">IIIH", 1000, 0, 0x10000, 0x100) + bytes(10) + matrix
                + bytes(24) + struct.pack(">I", 1))
    empty = tmp_path / "zero.mp4"             # an mp4 whose movie holds no track at all
    empty.write_bytes(_box(b"ftyp", b"isom" + bytes(4) + b"isomiso2mp41") + _box(b"mdat") + _box(b"moov", mvhd))
    audio = tmp_path / "audio.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=0.3", "-c:a", "aac",
                    str(audio)], check=True)
    for path, held in ((empty, "no stream at all"), (audio, "only audio (no video stream)")):
        with pytest.raises(VerifyError) as e:
            verify_path(path)
        assert str(e.value) == (f"{path} holds {held} and is not an image: name a video file, an image "
                                f"or a folder of images")
    (tmp_path / "fake.mp4").write_bytes(b"this is no video")
    with pytest.raises(VerifyError) as e:         # not a video at all: FFmpeg's reason, without "files"
        verify_path(tmp_path / "fake.mp4")
    assert str(e.value).endswith("as a video or an image (Invalid data found when processing input)")


@pytest.mark.parametrize("text, kind", [
    (b"ffconcat version 1.0\nfile marked.mp4\n", "an FFmpeg concat list"),
    (b"#EXTM3U\n#EXT-X-TARGETDURATION:20\n#EXTINF:3.0,\nmarked.mp4\n#EXT-X-ENDLIST\n", "an HLS/M3U playlist"),
])
def test_a_playlist_is_not_verified_in_place_of_the_files_it_lists(tmp_path, text, kind):
    """Before the fix (security review F6): `verify clip.mp4` of an ffconcat list named clip.mp4
    reported on marked.mp4 beside it, a file the user never named ("FOUND")."""
    write_video(tmp_path / "marked.mp4", frames(20))
    path = tmp_path / "clip.mp4"
    path.write_bytes(text)
    with pytest.raises(VerifyError) as e:
        verify_path(path)
    assert str(e.value) == (f"{path} is {kind} (text starting {text.split()[0].decode()}), not a video: "
                            f"FFmpeg would read the other files it names instead; verify the video file itself")


def test_a_video_cut_short_is_checked_and_said_to_end_early(tmp_path):
    """Audit of stop 65 (helper 93): `verify` of a download cut at 60 of 400 kB said FOUND (or,
    with --attacks, not found) with no word that the file stops at frame 14 of 150."""
    path = tmp_path / "whole.mp4"
    imgs = frames(60)
    h, w = imgs[0].shape[:2]
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
                    "-framerate", "10", "-i", "pipe:0", "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p",
                    "-movflags", "+faststart", str(path)], input=b"".join(i.tobytes() for i in imgs), check=True)
    assert verify_path(path).notes == []
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 5])
    r = verify_path(cut)
    assert 0 < r.frames < 54
    assert r.notes == [f"note: cut.mp4 ended at frame {r.frames} of the 60 its header announces: the file may be "
                       f"damaged (truncated or corrupt), and a mark in the frames it lost was not read"]
    assert r.text().endswith(r.notes[0]) and r.to_json()["notes"] == r.notes


def test_random_bytes_are_no_video_and_a_cut_png_says_nothing_raw(tmp_path, capfd):
    """Audit of stop 65 (helper 93): FFmpeg's text-art decoder took 50 kB of random bytes as a
    one-frame video, and `verify` said "NOT FOUND" (exit 1: an unmarked picture) instead of bad
    input; a cut PNG printed OpenCV's "[ WARN:0 ] ... PNG input buffer is incomplete" first."""
    junk = tmp_path / "rand.bin"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 51200, dtype=np.uint8).tobytes())
    with pytest.raises(VerifyError, match=r"^cannot read .*rand\.bin as a video or an image"):
        verify_path(junk)
    png = tmp_path / "cut.png"
    cv2.imwrite(str(png), frames(1)[0])
    png.write_bytes(png.read_bytes()[:500])
    capfd.readouterr()
    with pytest.raises(VerifyError):
        verify_path(png)
    assert "WARN" not in capfd.readouterr().err
