"""run.py verify / consent / enroll --consent and the label flags: exit codes and one-line errors."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

import run
from realtime.image.mark import pattern
from realtime.image.payload import Payload


@pytest.fixture
def profiles_root(tmp_path, monkeypatch):
    root = tmp_path / "profiles"
    monkeypatch.setenv("PUPPETEER_PROFILES", str(root))
    return root


def _error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


def _png(path, marked: bool, fingerprint: int = 0x00F00D):
    rng = np.random.default_rng(1)
    img = np.clip(rng.normal(120, 30, (240, 320, 3)), 0, 255)
    if marked:
        img += pattern(Payload(fingerprint=fingerprint), 320, 240)[..., None]
    cv2.imwrite(str(path), np.clip(img, 0, 255).astype(np.uint8))
    return str(path)


def test_verify_exit_codes(tmp_path, profiles_root, capsys):
    assert run.main(["verify", _png(tmp_path / "m.png", True)]) == 0
    out = capsys.readouterr().out
    assert "FOUND: made by Puppeteer" in out and "00f00d" in out
    assert run.main(["verify", _png(tmp_path / "u.png", False)]) == 1
    assert "NOT FOUND" in capsys.readouterr().out
    assert run.main(["verify", "--json", str(tmp_path / "m.png")]) == 0
    assert '"found": true' in capsys.readouterr().out
    assert run.main(["verify", str(tmp_path / "missing.mp4")]) == 2
    assert "does not exist" in _error_line(capsys)


def test_verify_refuses_pictures_larger_than_the_others_read_before_decoding(tmp_path, profiles_root, capsys,
                                                                            monkeypatch):
    """Before (stop 63's audit): verify decoded a 120-megapixel picture (777 MB) that every other
    command refuses from its header."""
    from PIL import Image

    Image.new("L", (12000, 10000)).save(tmp_path / "huge.png")
    monkeypatch.setattr("realtime.image.verify._read_image", lambda p: pytest.fail("decoded"))
    assert run.main(["verify", str(tmp_path / "huge.png")]) == 2
    assert "huge.png' is 12000×10000 px, larger than this reads (at most 20000 px a side and 100 megapixels)" \
        in _error_line(capsys)
    folder = tmp_path / "pictures"
    folder.mkdir()
    shutil.copy(tmp_path / "huge.png", folder / "a.png")
    assert run.main(["verify", str(folder)]) == 2
    assert "a.png' is 12000×10000 px" in _error_line(capsys)
    # a video is read scaled down by FFmpeg: no cap (review: 7680×4320 footage was refused)
    writer = cv2.VideoWriter(str(tmp_path / "wide.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (8200, 16))
    writer.write(np.zeros((16, 8200, 3), np.uint8))
    writer.release()
    assert run.main(["verify", str(tmp_path / "wide.avi")]) == 1
    assert "NOT FOUND" in capsys.readouterr().out


def test_verify_window_is_for_videos(tmp_path, profiles_root, capsys):
    """Before the fix: `verify IMAGES --window 5` ignored the window unsaid."""
    _png(tmp_path / "m.png", True)
    for path, what in ((tmp_path / "m.png", "an image"), (tmp_path, "a folder of images")):
        assert run.main(["verify", str(path), "--window", "5"]) == 2
        assert f"--window pools a video's frames; {path} is {what}, each checked on its own" in _error_line(capsys)
    assert run.main(["verify", str(tmp_path / "m.png")]) == 0


@pytest.fixture
def astro(profiles_root, astronaut_profile):
    from profiles.format import save

    return save(astronaut_profile, profiles_root / "astro")


def test_consent_command(astro, capsys):
    assert run.main(["consent", "astro"]) == 0
    assert "no consent record" in capsys.readouterr().out
    assert run.main(["consent", "astro", "--by", "Jane Doe, signed release"]) == 0
    assert "consent: Jane Doe, signed release" in capsys.readouterr().out
    assert run.main(["consent"]) == 0
    listing = capsys.readouterr().out
    assert "astro" in listing and "Jane Doe" in listing
    assert run.main(["consent", "astro", "--revoke"]) == 0
    assert "no consent record" in capsys.readouterr().out
    assert run.main(["consent", "--by", "x"]) == 2
    assert "which profile" in _error_line(capsys)
    assert run.main(["consent", "astro", "--by", "  "]) == 2
    assert "who agreed" in _error_line(capsys)


def test_verify_names_the_local_profile_and_says_when_it_does_not_load(tmp_path, astro, capsys):
    """Before the fix (stop 60's new-user review): a profile whose arrays were missing was named
    as the mark's owner like a sound one (its fingerprint is the sha256 its YAML lists)."""
    import yaml

    sha = yaml.safe_load((astro / "profile.yaml").read_text())["files"]["arrays.npz"]["sha256"]
    png = _png(tmp_path / "mine.png", True, fingerprint=int(sha[:6], 16))
    assert run.main(["verify", png]) == 0
    assert f"  fingerprint {sha[:6]} is local profile 'astro' (no consent record)" in capsys.readouterr().out
    import json  # the JSON says it too (before, stop 63's audit: only the text did)

    assert run.main(["verify", "--json", png]) == 0
    assert json.loads(capsys.readouterr().out)["local_profiles"] == [
        {"profile": "astro", "consent": "no consent record", "loads": True}]
    (astro / "arrays.npz").unlink()
    assert run.main(["verify", png]) == 0
    out = capsys.readouterr().out
    assert f"  fingerprint {sha[:6]} is listed by local profile 'astro', which does not load (" in out
    assert "is local profile" not in out
    assert run.main(["consent"]) == 0
    assert "fingerprint ?       BROKEN: " in capsys.readouterr().out


def test_the_consent_list_flags_a_profile_live_refuses(profiles_root, astronaut_profile, capsys):
    """Before the fix (new-user review): `consent` listed a profile whose arrays.npz no longer
    matched its sha256, or whose profile.yaml was invalid, like any other, while `live` and
    `consent NAME` refused it."""
    from profiles.format import save

    for name in ("good", "corrupt", "invalid", "untrained"):
        save(astronaut_profile, profiles_root / name)
    untrained = profiles_root / "untrained" / "profile.yaml"       # (stop 63's audit) live refuses it
    untrained.write_text(untrained.read_text().replace("tier: warp", "tier: neural"))
    with open(profiles_root / "corrupt" / "arrays.npz", "r+b") as f:
        f.seek(100)
        f.write(b"\0" * 8)
    yml = profiles_root / "invalid" / "profile.yaml"
    yml.write_text(yml.read_text().replace("kind: image", "kind: painting"))
    for name in ("corrupt", "invalid"):
        assert run.main(["consent", name]) == 2
        capsys.readouterr()
    assert run.main(["consent"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["good"].endswith("  no consent record") and " fingerprint ?" not in lines["good"]
    # a fingerprint only where the arrays check (stop 60's review): not for the changed arrays,
    # but for the invalid YAML's sound ones
    assert " fingerprint ?  " in lines["corrupt"] and " fingerprint ?  " not in lines["invalid"]
    assert lines["corrupt"].endswith("  BROKEN: arrays.npz does not match the sha256 in profile.yaml: the "
                                     "file changed or is corrupt")
    assert lines["invalid"].endswith("  BROKEN: profile.yaml: kind must be 'image' or 'video', not 'painting'")
    # a photo profile has no atlas: it runs with --tier warp, as `live` says (it said atlas: YAML audit)
    assert lines["untrained"].endswith("  BROKEN: its tier is neural and it has no trained generator (it runs with "
                                       "--tier warp)")


def test_the_consent_list_flags_a_profile_yaml_not_utf8_or_not_a_file(profiles_root, astronaut_profile, capsys):
    """Before the fix (bad-input review): `consent` died with a UnicodeDecodeError traceback when
    a profile.yaml was not UTF-8, and hung on one that was a pipe."""
    import os

    from profiles.format import save

    for name in ("good", "latin", "noise", "pipe"):
        save(astronaut_profile, profiles_root / name)
    with open(profiles_root / "latin" / "profile.yaml", "ab") as f:
        f.write(b"\xeb")
    (profiles_root / "noise" / "profile.yaml").write_bytes(bytes(range(256)) * 3)
    (profiles_root / "pipe" / "profile.yaml").unlink()
    os.mkfifo(profiles_root / "pipe" / "profile.yaml")
    assert run.main(["consent"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["good"].endswith("  no consent record")
    assert "  BROKEN: profile.yaml is not UTF-8 text (byte " in lines["latin"]
    assert "  BROKEN: profile.yaml is not UTF-8 text (byte 128, line 2)" in lines["noise"]   # line: YAML audit
    assert lines["pipe"].endswith("  BROKEN: profile.yaml is not a regular file (a pipe, a device or a socket)")
    assert run.main(["consent", "pipe"]) == 2
    assert "profile.yaml is not a regular file" in _error_line(capsys)


def test_consent_says_what_it_replaced_or_revoked(astro, capsys):
    """Before the fix: --by replaced an earlier record, and --revoke removed it, with no word of
    the record that went (and --revoke on a profile without one rewrote its YAML)."""
    assert run.main(["consent", "astro", "--by", "Jane Doe, signed release"]) == 0
    assert "replaced" not in capsys.readouterr().out
    assert run.main(["consent", "astro", "--by", "John Roe, by e-mail"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("replaced consent: Jane Doe, signed release (recorded ")
    assert "consent: John Roe, by e-mail" in out[1]
    assert run.main(["consent", "astro", "--revoke"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("revoked consent: John Roe, by e-mail") and "swap refuses" in out[0]
    assert "no consent record" in out[1]
    yaml_before = (astro / "profile.yaml").stat().st_mtime_ns
    assert run.main(["consent", "astro", "--revoke"]) == 0
    assert capsys.readouterr().out.startswith("profile 'astro' has no consent record: nothing to revoke")
    assert (astro / "profile.yaml").stat().st_mtime_ns == yaml_before


@pytest.mark.parametrize("text", ["bell\x07x", "esc\x1b[31mred", "rtl\u202eoverride"])
def test_a_consent_text_with_control_characters_is_refused_before_anything_changes(astro, capsys, text):
    """Before the fix: the text was saved, and the profile no longer loaded ("consent.by ...
    contains control characters"): not by live, nor by `consent --by` to fix it."""
    yaml_before = (astro / "profile.yaml").read_bytes()
    assert run.main(["consent", "astro", "--by", text]) == 2
    assert "contains control characters" in _error_line(capsys)
    assert (astro / "profile.yaml").read_bytes() == yaml_before


@pytest.mark.parametrize("argv, expect", [(["--by", "Jane Doe, in person"], "consent: Jane Doe, in person"),
                                          (["--revoke"], "no consent record")])
def test_a_record_that_does_not_check_can_be_replaced(astro, capsys, argv, expect):
    """Before the fix: a record edited by hand (or written with a control character) made every
    `consent NAME --by/--revoke` fail on loading the profile, as the error told the user to run."""
    import yaml

    from profiles import load

    assert run.main(["consent", "astro", "--by", "Someone"]) == 0
    yml = astro / "profile.yaml"
    meta = yaml.safe_load(yml.read_text())
    meta["consent"]["by"] = "Someone else"          # its sha256 no longer matches
    yml.write_text(yaml.safe_dump(meta))
    capsys.readouterr()
    assert run.main(["consent", "astro"]) == 2
    assert 'record it again with: python run.py consent astro --by "..."' in _error_line(capsys)
    elsewhere = astro.parent.parent / "elsewhere" / "my astro"     # a profile given by its path
    shutil.copytree(astro, elsewhere)
    assert run.main(["consent", str(elsewhere)]) == 2
    assert f"record it again with: python run.py consent '{elsewhere}' --by \"...\"" in _error_line(capsys)
    arrays = astro / "arrays.npz"
    intact = arrays.read_bytes()
    arrays.write_bytes(intact + b"x")                # damaged too: the record is left alone
    assert run.main(["consent", "astro", *argv]) == 2
    assert "arrays.npz does not match" in _error_line(capsys)
    assert yaml.safe_load(yml.read_text())["consent"]["by"] == "Someone else"
    arrays.write_bytes(intact)
    assert run.main(["consent", "astro", *argv]) == 0
    out = capsys.readouterr().out
    assert "a consent record that did not check" in out and expect in out
    record = load(astro).consent
    assert record is None if argv == ["--revoke"] else record["by"] == "Jane Doe, in person"


def test_a_malformed_record_on_a_damaged_profile_is_left_alone(astro, capsys):
    """Before the fix (review): `consent: garbage` stops `load` before the file hashes, and
    `consent --by` signed a new record over a damaged arrays.npz."""
    import yaml

    yml = astro / "profile.yaml"
    meta = yaml.safe_load(yml.read_text())
    meta["consent"] = "garbage"
    yml.write_text(yaml.safe_dump(meta))
    (astro / "arrays.npz").write_bytes((astro / "arrays.npz").read_bytes() + b"x")
    assert run.main(["consent", "astro", "--by", "Jane Doe"]) == 2
    assert "arrays.npz does not match the sha256" in _error_line(capsys)
    assert yaml.safe_load(yml.read_text())["consent"] == "garbage"


@pytest.mark.parametrize("fails", ["open", "replace"])
@pytest.mark.parametrize("argv", [["--by", "Jane Doe, in person"], ["--revoke"]])
def test_consent_on_a_read_only_profile_is_one_error_line(astro, monkeypatch, capsys, argv, fails):
    """A profile folder that cannot be written (read-only; simulated: the tests may run as
    root) used to raise PermissionError ... .profile.yaml.tmp with a traceback."""
    import errno
    import os

    from profiles import consent, load
    from realtime.core import paths

    assert run.main(["consent", "astro", "--by", "Someone"]) == 0
    before = (astro / "profile.yaml").read_bytes()
    capsys.readouterr()

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(args[0]))

    if fails == "open":                          # the file beside profile.yaml cannot be made
        monkeypatch.setattr(paths, "reserve_hidden", denied)
    else:
        monkeypatch.setattr(consent.os, "replace", denied)
    assert run.main(["consent", "astro", *argv]) == 2
    line = _error_line(capsys)
    assert f"cannot write the profile folder {astro}: Permission denied; make {astro} writable" in line
    monkeypatch.undo()
    assert (astro / "profile.yaml").read_bytes() == before and load(astro).consent["by"] == "Someone"
    assert sorted(os.listdir(astro)) == ["arrays.npz", "profile.yaml"]   # no temporary left


def test_enroll_with_consent(tmp_path, profiles_root, astronaut_rgb, capsys):
    from profiles import load

    photo = tmp_path / "me.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    assert run.main(["enroll", str(photo), "--name", "me", "--consent", "myself"]) == 0
    assert "consent: myself" in capsys.readouterr().out
    assert load("me").consent["via"] == "enroll"


@pytest.mark.tracking
@pytest.mark.parametrize("text", ["   ", "", "x" * 501])
def test_enroll_refuses_a_consent_text_before_enrolling(tmp_path, profiles_root, astronaut_rgb,
                                                         capsys, text):
    """It used to print "enrolled 'c1'", then the error (naming consent's --by), and leave the
    profile without a record, so that the retry found "profile 'c1' exists already"."""
    from profiles import load

    photo = tmp_path / "me.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    assert run.main(["enroll", str(photo), "--name", "c1", "--consent", text]) == 2
    line = _error_line(capsys)
    assert "who agreed" in line and "--consent \"Jane Doe" in line and "--by" not in line
    assert capsys.readouterr().out == ""
    assert not profiles_root.exists() or list(profiles_root.iterdir()) == []
    assert run.main(["enroll", str(photo), "--name", "c1", "--consent", "Jane Doe, in person"]) == 0
    assert load("c1").consent["by"] == "Jane Doe, in person"


@pytest.mark.tracking
def test_enroll_force_says_the_consent_record_is_not_carried_over(tmp_path, profiles_root, astronaut_rgb, capsys):
    """Before the fix: `enroll --force` over a profile with a consent record dropped it unsaid."""
    from profiles import load

    photo = tmp_path / "me.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    assert run.main(["enroll", str(photo), "--name", "c2", "--consent", "Jane Doe, in person"]) == 0
    capsys.readouterr()
    assert run.main(["enroll", str(photo), "--name", "c2", "--force"]) == 0
    out = capsys.readouterr().out
    assert "note: the replaced profile's consent: Jane Doe, in person (recorded " in out
    assert "python run.py consent c2 --by 'NAME, how they agreed'" in out and load("c2").consent is None
    assert run.main(["enroll", str(photo), "--name", "c2", "--force", "--consent", "John Roe"]) == 0
    assert "note: the replaced" not in capsys.readouterr().out
    assert run.main(["enroll", str(photo), "--name", "c3", "--consent", "bell\x07"]) == 2
    assert "contains control characters" in _error_line(capsys)
    assert not (profiles_root / "c3").exists()


def test_enroll_checks_the_consent_text_before_reading_a_clip(tmp_path, profiles_root, capsys):
    missing = tmp_path / "missing.mp4"
    assert run.main(["enroll", str(missing), "--name", "v", "--consent", " "]) == 2
    assert "--consent" in _error_line(capsys)


def _driver(tmp_path, astronaut_rgb):
    folder = tmp_path / "driver"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i}.jpg"), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    return str(folder)


def test_live_label_flags(tmp_path, astro, astronaut_rgb, capsys):
    driver = _driver(tmp_path, astronaut_rgb)
    out = tmp_path / "live.mp4"
    assert run.main(["live", "--profile", "astro", "--driver", driver, "--sink", f"file:{out}",
                     "--size", "320x240", "--no-label"]) == 0
    assert "label OFF (--no-label); provenance mark on" in capsys.readouterr().out
    assert run.main(["verify", str(out)]) == 0  # the mark stays without the label
    capsys.readouterr()
    assert run.main(["live", "--profile", "astro", "--driver", driver, "--sink", "null",
                     "--label-text", "KI-Avatar", "--label-corner", "top-left"]) == 0
    assert "label 'KI-Avatar' top-left" in capsys.readouterr().out
    assert run.main(["live", "--profile", "astro", "--driver", driver, "--sink", "null",
                     "--label-text", "Künstlich"]) == 2
    assert "label text" in _error_line(capsys)


def test_a_label_the_frame_cannot_hold_at_10_px_is_refused_before_the_run(tmp_path, capsys):
    """Before the fix (new-user review): the 40-character label was drawn ~4 px high on a
    160x120 demo, unreadable, without a word."""
    text = "W" * 40
    out = tmp_path / "lab.mp4"
    assert run.main(["demo", "--out", str(out), "--size", "160x120", "--frames", "2", "--label-text", text,
                     "--label-corner", "top-left"]) == 2
    line = _error_line(capsys)
    assert f"the label {text!r} does not fit a 160 px wide frame" in line
    assert "use a shorter --label-text or a larger --size" in line
    assert not out.exists()


def test_consent_without_a_name_shows_the_form_that_was_meant(capsys):
    """`consent --revoke` without a name suggested `consent NAME --by "..."` (new-user review)."""
    assert run.main(["consent", "--revoke"]) == 2
    assert 'python run.py consent NAME --revoke' in capsys.readouterr().err
    assert run.main(["consent", "--by", "me"]) == 2
    assert 'python run.py consent NAME --by "..."' in capsys.readouterr().err
