"""realtime.io.tracked: tracked clips (`run.py track`), played through the loop without MediaPipe.

- the file format: round trip, refusals (missing, not a tracked clip, damaged, another format,
  a resize, a clip beside it that is not the one tracked);
- the source: landmarks only, or with the clip's images when it is beside the file;
- `tracking`: `track_clip` gives what the loop tracks, and a tracked clip drives the engine to
  the same frames as the clip itself;
- with mediapipe blocked (an import hook that refuses it) `run.py live` and `run.py bench` play
  a tracked clip; `run.py track` says in one line what is missing.
"""
from __future__ import annotations

import io
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import run
from realtime.core.frame import Frame
from realtime.io import tracked as T
from realtime.io.capture import ClipSource, open_source
from tests.bench.helpers import disk_full_after, moving_clip

ROOT = Path(run.__file__).resolve().parent
N = 12


def _moving_landmarks(lm: np.ndarray, n: int) -> np.ndarray:
    """`n` frames of `lm` shifting sideways and opening the mouth a little."""
    out = np.repeat(lm[None].astype(np.float32), n, axis=0)
    for t in range(n):
        out[t, :, 0] += 3.0 * np.sin(t / 3.0)
        out[t, [14, 17, 87, 317], 1] += 4.0 * t / n
    return out


def _write_track(path: Path, lm: np.ndarray, clip: str = "clip.avi", sha: str = "0" * 64,
                 size=(512, 512), absent=(5,)) -> T.TrackedClip:
    landmarks = _moving_landmarks(lm, N)
    present = np.ones(N, bool)
    present[list(absent)] = False
    landmarks[~present] = 0
    tc = T.TrackedClip(landmarks=landmarks, present=present, fps=25.0, size=size, sha256=sha,
                       clip=clip, tracker="test")
    tc.save(path)
    return tc


# ------------------------------------------------------------------------------------ format
def test_round_trip(tmp_path, astronaut_landmarks):
    path = tmp_path / "a.track.npz"
    tc = _write_track(path, astronaut_landmarks)
    back = T.TrackedClip.load(path)
    np.testing.assert_array_equal(back.landmarks, tc.landmarks)
    np.testing.assert_array_equal(back.present, tc.present)
    assert (back.fps, back.size, back.sha256, back.clip, back.tracker) == (25.0, (512, 512), "0" * 64,
                                                                           "clip.avi", "test")
    assert len(back) == N and back.at(5) is None
    assert back.at(0).dtype == np.float32 and back.at(0) is not back.at(0)
    assert back.upright                            # read upright (files before it: no key, False)
    with np.load(path, allow_pickle=False) as z:   # no pickled object inside
        assert set(z.files) == set(T._KEYS) | {"upright"}


def test_a_full_disk_is_one_line_and_keeps_the_file_there(tmp_path, astronaut_landmarks):
    """Before the fix (new-user walkthrough): `run.py track CLIP --out T` on a full disk tracked
    the whole clip, then died with a traceback (OSError from the write). Now a TrackError (one
    `error:` line in run.py) names the file; the previous T and no temporary file are left. A
    file-size limit (EFBIG, as here) says what to do as a full disk does (before helper 127: only
    ENOSPC and EDQUOT did)."""
    path = tmp_path / "a.track.npz"
    tc = _write_track(path, astronaut_landmarks)
    before = path.read_bytes()
    with disk_full_after(2000), pytest.raises(T.TrackError) as info:
        tc.save(path)
    assert str(info.value) == f"cannot write {path}: File too large: free some space, or choose another file"
    assert path.read_bytes() == before and [f.name for f in tmp_path.iterdir()] == ["a.track.npz"]


def test_the_teeth_shares_travel_with_the_landmarks(tmp_path, astronaut_landmarks):
    """A tracked clip keeps each frame's teeth share (realtime.face.teeth), so its frames drive
    the synthetic mouth without the video; a file written before the shares loads without them."""
    old = tmp_path / "old.track.npz"
    tc = _write_track(old, astronaut_landmarks)
    assert T.TrackedClip.load(old).teeth is None
    src = T.TrackedClipSource(old)
    assert "teeth" not in src.read()
    src.close()
    tc.teeth = np.linspace(0, 1, N).astype(np.float32)
    new = tc.save(tmp_path / "new.track.npz")
    back = T.TrackedClip.load(new)
    np.testing.assert_array_equal(back.teeth, tc.teeth)
    src = T.TrackedClipSource(new)
    shares = [fields["teeth"] for fields in iter(src.read, None)]
    src.close()
    assert shares == pytest.approx(list(tc.teeth))
    tc.teeth = np.ones(N + 1, np.float32)
    with pytest.raises(T.TrackError, match="damaged: teeth"):
        T.TrackedClip.load(tc.save(tmp_path / "bad.track.npz"))


def test_the_tongue_shares_travel_with_the_landmarks(tmp_path, astronaut_landmarks):
    """... and its tongue share (`tongue_share`), so a tracked clip without its video still
    gives the avatar the driver's tongue; a file written before it loads without one (its frames
    then read the tongue from the clip's images, when the clip is beside it)."""
    tc = _write_track(tmp_path / "old.track.npz", astronaut_landmarks)
    assert T.TrackedClip.load(tmp_path / "old.track.npz").tongue is None
    src = T.TrackedClipSource(tmp_path / "old.track.npz")
    assert "tongue" not in src.read()
    src.close()
    tc.tongue = np.linspace(0, 0.5, N).astype(np.float32)
    back = T.TrackedClip.load(tc.save(tmp_path / "new.track.npz"))
    np.testing.assert_array_equal(back.tongue, tc.tongue)
    src = T.TrackedClipSource(tmp_path / "new.track.npz")
    shares = [fields["tongue"] for fields in iter(src.read, None)]
    src.close()
    assert shares == pytest.approx(list(tc.tongue))


def test_names_and_default_path(tmp_path):
    assert T.is_track_file("x/d10.track.npz") and T.is_track_file("D10.TRACK.NPZ")
    assert not T.is_track_file("d10.npz") and not T.is_track_file("d10.mp4")
    assert T.default_track_path(tmp_path / "d10.mp4") == tmp_path / "d10.track.npz"


@pytest.mark.parametrize("case", ["missing", "not_npz", "other_npz", "format", "damaged", "suffix"])
def test_refusals_name_the_file(tmp_path, astronaut_landmarks, case):
    path = tmp_path / "a.track.npz"
    if case == "not_npz":
        path.write_bytes(b"not a zip")
    elif case == "other_npz":
        np.savez(path.open("wb"), x=np.zeros(3))
    elif case in ("format", "damaged"):
        tc = _write_track(path, astronaut_landmarks)
        with np.load(path, allow_pickle=False) as z:
            fields = dict(z)
        if case == "format":
            fields["format"] = np.int64(99)
        else:
            fields["landmarks"] = tc.landmarks[:, :10]
        with path.open("wb") as f:
            np.savez(f, **fields)
    elif case == "suffix":
        with pytest.raises(T.TrackError, match=r"\.track\.npz"):
            _write_track(tmp_path / "a.npz", astronaut_landmarks)
        return
    with pytest.raises(T.TrackError) as info:
        T.TrackedClip.load(path)
    message = str(info.value)
    assert str(path.name) in message and "\n" not in message
    if case in ("missing", "other_npz", "format", "damaged"):
        assert "track" in message


@pytest.mark.parametrize("case", ["text", "truncated"])
def test_a_corrupt_file_says_what_it_is_and_what_to_do(tmp_path, astronaut_landmarks, case):
    """Before: numpy's own words ("Cannot load file containing pickled data when
    allow_pickle=False", "File is not a zip file")."""
    path = tmp_path / "a.track.npz"
    if case == "text":
        path.write_bytes(b"garbage, not a tracked clip")
    else:
        _write_track(path, astronaut_landmarks)
        path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(T.TrackError) as info:
        T.TrackedClip.load(path)
    assert str(info.value) == (f"{path} is not a tracked clip this engine wrote, or it is damaged: "
                               f"track the clip again (`run.py track CLIP`)")


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e30, -1e30])
def test_landmarks_not_finite_or_huge_are_refused_at_load(tmp_path, astronaut_landmarks, astronaut_profile,
                                                          value, capsys, monkeypatch):
    """Before the fix (bad-input review): a frame with a face whose landmarks held NaN or 1e30
    loaded, and `live` died mid-run in umeyama ("SVD did not converge"). A frame without a face
    holds zeros that are never read: whatever it holds, it is not refused. The profile is saved
    here: CI's clean clone has no built-in profile until `make demo` makes one."""
    from profiles.format import save

    path = tmp_path / "a.track.npz"
    tc = _write_track(path, astronaut_landmarks)
    tc.landmarks[5] = np.nan                 # frame 5 has no face: not read, not refused
    tc.save(path)
    assert T.TrackedClip.load(path).at(5) is None
    tc.landmarks[7, 100, 1] = value
    tc.save(path)
    with pytest.raises(T.TrackError) as info:
        T.TrackedClip.load(path)
    assert str(info.value) == (f"{path} is damaged: the landmarks of frame 7 are not finite or beyond "
                               f"±100000 px; track the clip again (`run.py track CLIP`)")
    monkeypatch.setenv("PUPPETEER_PROFILES", str(tmp_path / "profiles"))
    save(astronaut_profile, tmp_path / "profiles" / "astro")
    assert run.main(["live", "--profile", "astro", "--driver", str(path), "--sink", "null"]) == 2
    assert capsys.readouterr().err == f"error: {info.value}\n"


@pytest.mark.parametrize("clip", ["../../../../etc/passwd", "/etc/passwd", "sub/clip.avi", "..",
                                  "a/../clip.avi", ""])
def test_a_clip_name_that_is_not_a_bare_file_name_is_refused(tmp_path, astronaut_landmarks, clip):
    """Before the fix (bad-input review): the `clip` field was joined to the file's folder as a
    path: `../../../../etc/passwd` hashed /etc/passwd and advised `run.py track` on it."""
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "a.track.npz"
    _write_track(path, astronaut_landmarks, clip=clip)
    message = (f"{path} is damaged: its clip name {clip!r} is not a bare file name; track the clip "
               f"again (`run.py track CLIP`)")
    for read in (T.TrackedClip.load, T.clip_beside, open_source):
        with pytest.raises(T.TrackError) as info:
            read(str(path) if read is open_source else path)
        assert str(info.value) == message
    _write_track(path, astronaut_landmarks, clip="clip name.avi")
    assert T.clip_beside(path) == tmp_path / "sub" / "clip name.avi"


def test_clip_beside_reads_only_the_clip_name(tmp_path, astronaut_landmarks, monkeypatch):
    """Before the fix: the whole landmark array was loaded to learn the clip's name. Its errors
    are `load`'s."""
    path = tmp_path / "a.track.npz"
    _write_track(path, astronaut_landmarks, clip="the clip.mp4")
    read = []
    real = np.lib.npyio.NpzFile.__getitem__
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", lambda z, key: read.append(key) or real(z, key))
    assert T.clip_beside(path) == tmp_path / "the clip.mp4"
    assert read == ["clip"]
    monkeypatch.undo()
    path.write_bytes(b"garbage, not a tracked clip")
    with pytest.raises(T.TrackError, match="is not a tracked clip this engine wrote"):
        T.clip_beside(path)
    with pytest.raises(T.TrackError, match="tracked clip not found"):
        T.clip_beside(tmp_path / "none.track.npz")


# ------------------------------------------------------- a file someone hands over (security review F1)
def _members(path: Path, **override) -> dict:
    """The members of the tracked clip at `path`, with `override` (None: leave the member out)."""
    with np.load(path, allow_pickle=False) as z:
        members = {k: z[k] for k in z.files}
    members.update(override)
    return {k: v for k, v in members.items() if v is not None}


def _write_members(path: Path, members: dict, compression=zipfile.ZIP_STORED) -> Path:
    """An .npz written member by member (numpy.lib.format), as a crafted file would be: a bytes
    value is the member's raw content (a header that lies about its shape)."""
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for key, value in members.items():
            with z.open(f"{key}.npy", "w") as f:
                if type(value) is bytes:         # (np.bytes_ is an array)
                    f.write(value)
                elif type(value) is str and value == "OBJECT":     # an object array's header, then junk
                    f.write(_header((1,), descr="|O") + b"not read")
                else:
                    np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
    return path


def _header(shape, descr="<f4", fortran=False) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": fortran, "shape": shape})
    return out.getvalue()


def _refused(path: Path, match: str) -> str:
    """The one TrackError line `load` (and `clip_beside`, which reads the same headers) gives."""
    for read in (T.TrackedClip.load, T.clip_beside):
        with pytest.raises(T.TrackError) as info:
            read(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message and "track" in message
        assert re.search(match, message), message
    return message


def test_a_header_that_lies_about_its_shape_is_refused_before_anything_is_allocated(tmp_path, astronaut_landmarks):
    """Before the fix: a 3 KB file whose landmarks header declares (10^12, 478, 3) asked numpy for
    5 PiB (`_ArrayMemoryError`, a traceback); a deflated member holding the gigabytes it declares
    took them. Now every member's .npy header is read from the zip first."""
    path = tmp_path / "a.track.npz"
    _write_track(path, astronaut_landmarks)
    good = _members(path)
    _write_members(path, {**good, "landmarks": _header((10**12, 478, 3)) + bytes(100)})
    _refused(path, r"damaged: array 'landmarks' declares 5736000000000000 bytes but holds 100")
    _write_members(path, {**good, "landmarks": _header((N, 478, 3)) + bytes(100)})     # too short
    _refused(path, r"declares 68832 bytes but holds 100")


def test_frames_and_bytes_past_the_caps_are_refused_from_the_headers(tmp_path, astronaut_landmarks, monkeypatch):
    """An hour at 60 fps is the most a tracked clip holds (MAX_FRAMES), and all members together
    declare at most MAX_BYTES: checked on the headers, before np.load reads a member (here with
    the caps lowered, so the file stays small; a real bomb declares 400,000 frames in 2 MB)."""
    path = tmp_path / "a.track.npz"
    _write_track(path, astronaut_landmarks)
    read = []
    real = np.lib.npyio.NpzFile.__getitem__
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", lambda z, key: read.append(key) or real(z, key))
    monkeypatch.setattr(T, "MAX_FRAMES", N - 1)
    _refused(path, rf"damaged: it holds {N} frames \(a tracked clip holds 1 to {N - 1}, an hour at 60 fps\)")
    monkeypatch.setattr(T, "MAX_FRAMES", N)
    monkeypatch.setattr(T, "MAX_BYTES", 60_000)
    _refused(path, r"damaged: its arrays declare more than")
    assert read == []                          # refused before a member was read
    monkeypatch.undo()
    _write_members(path, _members(path, landmarks=np.zeros((0, 478, 3), np.float32), present=np.zeros(0, bool)))
    _refused(path, r"damaged: it holds 0 frames")
    _write_members(path, {**_members(path), **{f"x{i}": np.zeros(1) for i in range(40)}})
    _refused(path, r"damaged: it has 4\d members")


@pytest.mark.parametrize("key, value, match", [
    ("format", np.array([1, 1]), r"format has shape \(2,\), expected \(\)"),           # was a TypeError
    ("fps", np.array([25.0, 25.0]), r"fps has shape \(2,\), expected \(\)"),            # was a TypeError
    ("size", np.int64(5), r"size has shape \(\), expected \(2,\)"),                    # was a TypeError
    ("size", np.array([512, 512, 3]), r"size has shape \(3,\), expected \(2,\)"),
    ("upright", np.array([True, True]), r"upright has shape \(2,\)"),
    ("landmarks", np.zeros(3, np.float32), r"landmarks has shape \(3,\), expected \(N, 478, 3\)"),
    ("landmarks", np.zeros((N, 478, 3), np.int64), r"landmarks has dtype int64, expected f4"),
    ("landmarks", np.asfortranarray(np.zeros((N, 478, 3), np.float32)),
     r"landmarks has shape \(12, 478, 3\) in Fortran order"),
    ("present", np.array(["x"] * N), r"present has dtype <U1, expected b1"),
    ("present", np.ones(N + 5, bool), rf"present has shape \({N + 5},\), expected \(N,\) \(N={N}"),
    ("teeth", np.zeros(N - 1, np.float32), rf"teeth has shape \({N - 1},\)"),
    ("tongue", np.zeros(N + 1, np.float32), rf"tongue has shape \({N + 1},\)"),
    ("sha256", np.bytes_(b"\xff" * 10), r"sha256 has dtype \|S10, expected a string"),
    ("clip", np.str_("x" * 5000), r"clip has dtype <U5000, expected a string of at most 4096"),
    # an object member: its header says so; what follows it is never read (here not even a pickle)
    ("tracker", "OBJECT", r"array 'tracker' holds Python objects \(pickle\)"),
])
def test_members_of_the_wrong_dtype_or_shape_are_one_line(tmp_path, astronaut_landmarks, key, value, match):
    """Before the fix: a vector `format` or `fps`, or a 0-d `size`, was a TypeError traceback; an
    int `landmarks`, a bytes `sha256` or a vector `upright` loaded."""
    path = tmp_path / "a.track.npz"
    _write_track(path, astronaut_landmarks)
    _write_members(path, _members(path, **{"teeth": np.zeros(N, np.float32), "upright": np.bool_(True), key: value}))
    _refused(path, "damaged: " + match)


@pytest.mark.parametrize("key, value, match", [
    ("size", np.array([0, 0]), r"frame size 0x0 is not one a clip plays at \(16..8192 px a side"),
    ("size", np.array([-5, -5]), r"frame size -5x-5"),
    ("size", np.array([100_000, 100_000]), r"frame size 100000x100000"),
    ("size", np.array([2**62, 2**62]), r"frame size 4611686018427387904x"),
    ("size", np.array([8192, 8192]), r"frame size 8192x8192 .*16777216 px in all"),
    ("fps", np.float64("inf"), r"its rate inf fps is outside 0.1..1000"),
    ("fps", np.float64("nan"), r"its rate nan fps"),
    ("fps", np.float64(1e-300), r"its rate 1e-300 fps"),
    ("fps", np.float64(1e300), r"its rate 1e\+300 fps"),
    ("sha256", np.str_("not a digest"), r"its sha256 is not 64 hex digits"),
    ("teeth", np.full(N, 1e30, np.float32), r"teeth of frame 0 is 1e\+30, not a share in 0..1"),
    ("teeth", np.r_[np.zeros(3), np.nan, np.zeros(N - 4)].astype(np.float32), r"teeth of frame 3 is nan"),
    ("tongue", np.r_[np.zeros(2), -1.0, np.zeros(N - 3)].astype(np.float32), r"tongue of frame 2 is -1, not a share"),
])
def test_values_out_of_range_are_refused_at_load(tmp_path, astronaut_landmarks, key, value, match):
    """Before the fix: these loaded (an inf rate, a (2^62, 2^62) frame size, teeth 1e30)."""
    path = tmp_path / "a.track.npz"
    _write_track(path, astronaut_landmarks)
    _write_members(path, _members(path, **{"teeth": np.zeros(N, np.float32), key: value}))
    with pytest.raises(T.TrackError) as info:
        T.TrackedClip.load(path)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{path} is damaged: ")
    assert re.search(match, str(info.value)), str(info.value)


@pytest.mark.parametrize("error", [TypeError, MemoryError, OverflowError])
def test_an_error_while_reading_the_members_is_one_track_error(tmp_path, astronaut_landmarks, monkeypatch, error):
    """Whatever slips past the header checks while the members are read is the one "damaged" line
    (before: TypeError and MemoryError went up as tracebacks)."""
    path = tmp_path / "a.track.npz"
    _write_track(path, astronaut_landmarks)

    def fail(z, key):
        raise error("boom")

    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", fail)
    with pytest.raises(T.TrackError, match="is not a tracked clip this engine wrote, or it is damaged"):
        T.TrackedClip.load(path)


def test_a_clip_of_more_frames_than_a_tracked_clip_holds_is_not_written(tmp_path, astronaut_landmarks, monkeypatch):
    monkeypatch.setattr(T, "MAX_FRAMES", N - 1)
    with pytest.raises(T.TrackError, match=rf"{N} frames, and a tracked clip holds at most {N - 1}"):
        _write_track(tmp_path / "a.track.npz", astronaut_landmarks)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------ source
def test_source_without_the_clip_gives_landmarks_only(tmp_path, astronaut_landmarks):
    path = tmp_path / "a.track.npz"
    tc = _write_track(path, astronaut_landmarks)
    src = open_source(str(path))
    assert isinstance(src, T.TrackedClipSource)
    assert src.tracked and not src.is_live and not src.has_images
    assert (src.fps, src.size, src.frame_count) == (25.0, (512, 512), N)
    rows = []
    while (fields := src.read()) is not None:
        rows.append(fields)
    src.close()
    assert len(rows) == N and all(r["tracked"] and "image" not in r for r in rows)
    assert rows[5]["landmarks"] is None
    np.testing.assert_array_equal(rows[3]["landmarks"], tc.landmarks[3])
    assert open_source(str(path), fps=60).fps == 60.0


def test_a_swap_needs_the_clip_beside_the_landmarks(tmp_path, astronaut_landmarks, astronaut_profile,
                                                   capsys, monkeypatch):
    """Before: `live --mode swap` from landmarks alone wrote a black video without a word, and
    `bench --mode swap --quality` raised an IndexError."""
    from profiles.format import save

    path = tmp_path / "a.track.npz"
    _write_track(path, astronaut_landmarks)
    src = open_source(str(path))
    assert T.swap_without_frames(src) == ("--mode swap draws onto the driver's own frames, and "
                                          "a.track.npz carries landmarks only: put clip.avi beside it "
                                          "(or drive with the clip itself)")
    src.close()
    monkeypatch.setenv("PUPPETEER_PROFILES", str(tmp_path / "profiles"))
    save(astronaut_profile, tmp_path / "profiles" / "astro")
    run.main(["consent", "astro", "--by", "test"])
    capsys.readouterr()
    for argv in (["live", "--profile", "astro", "--driver", str(path), "--sink", "null", "--mode", "swap"],
                 ["bench", "--profile", "astro", "--driver", str(path), "--mode", "swap", "--quality",
                  "--frames", "8", "--warmup", "2"]):
        assert run.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["error: " + T.swap_without_frames(open_source(str(path)))], argv


def test_source_with_the_clip_beside_it(tmp_path, astronaut_rgb, astronaut_landmarks):
    clip = moving_clip(tmp_path / "clip.avi", astronaut_rgb, N)
    path = tmp_path / "clip.track.npz"
    _write_track(path, astronaut_landmarks, sha=T.sha256_file(clip))
    src = open_source(str(path))
    assert src.has_images and src.clip_path == clip
    plain = ClipSource(clip)
    for _ in range(N):
        fields, ref = src.read(), plain.read()
        np.testing.assert_array_equal(fields["image"], ref["image"])
    assert src.read() is None and plain.read() is None
    src.close()
    plain.close()


def test_a_different_clip_beside_it_is_refused(tmp_path, astronaut_rgb, astronaut_landmarks):
    moving_clip(tmp_path / "clip.avi", astronaut_rgb, N)
    path = tmp_path / "clip.track.npz"
    _write_track(path, astronaut_landmarks, sha="f" * 64)
    with pytest.raises(T.TrackError, match="not the clip .* track it again"):
        open_source(str(path))


@pytest.mark.tracking
def test_the_retrack_hint_is_a_command_that_works(tmp_path, astronaut_rgb, astronaut_landmarks, capsys):
    """Before the fix (README audit): the hint said `run.py track CLIP`, which then failed with
    "CLIP.track.npz exists: --force replaces it". It says --force, and --out for another name."""
    import shlex

    clip = moving_clip(tmp_path / "my clip.avi", astronaut_rgb, N)
    for path, out in ((tmp_path / "my clip.track.npz", ""), (tmp_path / "other.track.npz", " --out {path}")):
        _write_track(path, astronaut_landmarks, clip=clip.name, sha="f" * 64)
        with pytest.raises(T.TrackError) as err:
            open_source(str(path))
        hint = (f"track it again, replacing the other clip's tracking in {path.name} (`run.py track "
                f"{shlex.quote(str(clip))}{out.format(path=shlex.quote(str(path)))} --force`)")
        assert str(err.value).endswith(hint), str(err.value)
        command = shlex.split(hint.split("`")[1])[1:]
        assert run.main(command) == 0                                # the hint, as given, works
        assert T.TrackedClip.load(path).sha256 == T.sha256_file(clip)
        open_source(str(path)).close()



def test_a_clip_that_reads_at_another_size_is_refused(tmp_path, astronaut_rgb, astronaut_landmarks):
    """A phone clip tracked sideways (before clips were read upright) reads turned now: its
    landmarks would lie across the picture."""
    clip = moving_clip(tmp_path / "clip.avi", astronaut_rgb, N)
    path = tmp_path / "clip.track.npz"
    _write_track(path, astronaut_landmarks, sha=T.sha256_file(clip), size=(384, 512))
    with pytest.raises(T.TrackError, match="clip.avi reads 512x512 but clip.track.npz was tracked at 384x512: "
                                           "track it again"):
        open_source(str(path))


@pytest.mark.parametrize("upright", [False, True])
def test_a_turned_clip_tracked_before_clips_were_read_upright_is_refused(tmp_path, astronaut_landmarks, upright):
    """(code review) A phone clip turned 180° (or square and turned 90°) reads at the same size
    upright: a file tracked before clips were read upright (no `upright` key) has its landmarks
    upside down. Such a file beside a clip with a rotation tag is refused; a new one plays."""
    from tests.realtime.io.test_media import _phone_clip

    clip, _ = _phone_clip(tmp_path, 180)
    path = tmp_path / "phone.track.npz"
    tc = _write_track(path, astronaut_landmarks, clip=clip.name, sha=T.sha256_file(clip), size=(160, 90))
    if not upright:                      # as written before the key existed
        with np.load(path, allow_pickle=False) as z:
            old = {k: z[k] for k in z.files if k != "upright"}
        np.savez_compressed(path, **old)
    assert T.TrackedClip.load(path).upright is upright and tc.upright
    if upright:
        src = open_source(str(path))
        assert src.has_images
        src.close()
        return
    with pytest.raises(T.TrackError, match="phone.track.npz was tracked before clips were read upright, and "
                                           "phone.mp4 is turned 180° by its rotation tag: track it again"):
        open_source(str(path))

def test_a_resize_is_refused(tmp_path, astronaut_landmarks):
    path = tmp_path / "a.track.npz"
    _write_track(path, astronaut_landmarks)
    assert open_source(str(path), size=(512, 512)).size == (512, 512)
    with pytest.raises(T.TrackError, match="tracked at 512x512"):
        open_source(str(path), size=(320, 240))


def test_tracked_frames_pass_the_track_stage(astronaut_landmarks):
    from realtime.face.track import TrackStage

    stage = TrackStage()
    frame = Frame(index=0, t_capture=0.0, image=np.zeros((64, 64, 3), np.uint8), tracked=True)
    stage(frame)
    assert stage.tracker is None and frame.landmarks is None   # no face in that frame: stays None


# ------------------------------------------------------------------ the same as tracking live
def _engine_outputs(profile, source, n):
    from realtime.engine.loop import Engine, EngineOptions
    from realtime.io.grabber import Grabber

    engine = Engine(profile, EngineOptions(fps=source.fps))
    engine.warm_up(track=not getattr(source, "tracked", False))
    grabber = Grabber(source, realtime=False).start()
    outs, lms = [], []
    try:
        while (frame := grabber.get()) is not None:
            engine.process(frame)
            outs.append(frame.output.copy())
            lms.append(frame.landmarks)
    finally:
        grabber.stop()
        engine.close()
    assert len(outs) == n
    return outs, lms


@pytest.mark.tracking
def test_a_tracked_clip_drives_the_engine_like_the_clip(tmp_path, astronaut_rgb, astronaut_profile):
    clip = moving_clip(tmp_path / "clip.avi", astronaut_rgb, N)
    src = ClipSource(clip)
    ticks = []
    tc = T.track_clip(src, clip, tmp_path / "clip.track.npz", progress=ticks.append)
    src.close()
    assert len(tc) == N and sum(ticks) == N and tc.present.all()
    assert tc.sha256 == T.sha256_file(clip) and tc.clip == "clip.avi" and "mediapipe" in tc.tracker
    live_out, live_lm = _engine_outputs(astronaut_profile, ClipSource(clip), N)
    for with_clip in (True, False):
        where = tmp_path if with_clip else tmp_path / "alone"
        where.mkdir(exist_ok=True)
        if not with_clip:
            (where / "clip.track.npz").write_bytes((tmp_path / "clip.track.npz").read_bytes())
        src = open_source(str(where / "clip.track.npz"))
        assert src.has_images == with_clip
        out, lm = _engine_outputs(astronaut_profile, src, N)
        for i in range(N):
            np.testing.assert_array_equal(lm[i], live_lm[i])
            np.testing.assert_array_equal(out[i], live_out[i])


# --------------------------------------------------------------------- mediapipe blocked
_BLOCKED = textwrap.dedent("""
    import sys

    class NoMediapipe:
        def find_spec(self, name, path=None, target=None):
            if name == "mediapipe" or name.startswith("mediapipe."):
                raise ModuleNotFoundError(f"test: {name} is blocked", name=name)
            return None

    sys.meta_path.insert(0, NoMediapipe())
    sys.argv = ["run.py", *sys.argv[1:]]
    import run
    code = run.main()
    assert "mediapipe" not in sys.modules
    print("MEDIAPIPE-FREE" if code == 0 else f"EXIT {code}")
    sys.exit(code)
""")


def _blocked_run(*argv, env_root: Path, timeout=240):
    import os

    env = dict(os.environ, PUPPETEER_PROFILES=str(env_root), CI="true")
    return subprocess.run([sys.executable, "-c", _BLOCKED, *map(str, argv)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_live_and_bench_play_a_tracked_clip_with_mediapipe_blocked(tmp_path, astronaut_rgb,
                                                                   astronaut_landmarks, astronaut_profile):
    from profiles.format import save

    root = tmp_path / "profiles"
    save(astronaut_profile, root / "astro")
    clip = moving_clip(tmp_path / "clip.avi", astronaut_rgb, N)
    track = tmp_path / "clip.track.npz"
    _write_track(track, astronaut_landmarks, sha=T.sha256_file(clip))

    out = tmp_path / "out.mp4"
    live = _blocked_run("live", "--profile", "astro", "--driver", track, "--sink", f"file:{out}",
                        env_root=root)
    assert live.returncode == 0 and "MEDIAPIPE-FREE" in live.stdout, live.stderr[-2000:]
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N
    cap.release()

    bench = _blocked_run("bench", "--profile", "astro", "--driver", track, "--warmup", "2",
                         env_root=root)
    assert bench.returncode == 0 and "MEDIAPIPE-FREE" in bench.stdout, bench.stderr[-2000:]
    assert "clip.track.npz" in bench.stdout

    # the same blocked run that would have to track says so in one line
    traced = _blocked_run("track", clip, "--out", tmp_path / "again.track.npz", env_root=root)
    err = [l for l in traced.stderr.splitlines() if l.strip() and "%" not in l]
    assert traced.returncode == 2 and err[-1].startswith("error: tracking a face needs mediapipe"), \
        traced.stderr[-2000:]


@pytest.mark.tracking
def test_run_py_track_writes_beside_the_clip_and_refuses_to_overwrite(tmp_path, astronaut_rgb, capsys):
    clip = moving_clip(tmp_path / "clip.avi", astronaut_rgb, N)
    assert run.main(["track", str(clip)]) == 0
    out = tmp_path / "clip.track.npz"
    assert f"tracked {N} frames of clip.avi ({N} with a face" in capsys.readouterr().out
    assert len(T.TrackedClip.load(out)) == N
    assert run.main(["track", str(clip)]) == 2
    assert "exists: --force" in capsys.readouterr().err
    assert run.main(["track", str(clip), "--force", "--out", str(tmp_path / "x.npz")]) == 2
    assert "ends in .track.npz" in capsys.readouterr().err
    assert run.main(["track", str(tmp_path / "none.mp4")]) == 2
    assert "not found" in capsys.readouterr().err


def test_run_py_track_refuses_a_photo(tmp_path, astronaut_rgb, capsys):
    """Before: a photo made a one-frame "25 fps" s1.track.npz beside it. Refused by its header,
    whatever its name."""
    for name in ("s1.jpg", "s1.mp4"):
        photo = tmp_path / name
        assert cv2.imencode(".jpg", astronaut_rgb)[1].tofile(str(photo)) is None
        assert run.main(["track", str(photo)]) == 2
        err = capsys.readouterr().err
        assert err == (f"error: {photo} is a photo (512x512), not a video: `track` takes a video "
                       f"file (mp4/mov/...)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s1.jpg", "s1.mp4"]
