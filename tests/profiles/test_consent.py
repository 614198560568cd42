"""Consent records: round trip, the hash check, revocation, and `require_consent` for swap."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from profiles.consent import ConsentError, list_profiles, record_consent, require_consent, revoke_consent
from profiles.format import load, save
from realtime.core.errors import PuppeteerError
from realtime.core.profile import YAML_FILE


@pytest.fixture
def saved(tmp_path, astronaut_profile):
    return save(dataclasses.replace(astronaut_profile, arrays=dict(astronaut_profile.arrays)),
                tmp_path / "astro")


def _edit(folder, change):
    yml = folder / YAML_FILE
    meta = yaml.safe_load(yml.read_text())
    change(meta)
    yml.write_text(yaml.safe_dump(meta, sort_keys=False))


def test_a_profile_has_no_record_until_one_is_made(saved):
    assert load(saved).consent is None
    rec = record_consent(saved, "  Jane   Doe, signed release 2025-03-01 ")
    got = load(saved).consent
    assert got == rec and got["by"] == "Jane Doe, signed release 2025-03-01" and got["via"] == "consent"
    assert got["date"].endswith("+00:00")


def test_the_record_survives_a_round_trip(saved, tmp_path):
    record_consent(saved, "Ana, verbally on camera", via="enroll")
    p = load(saved)
    again = load(save(p, tmp_path / "copy"))  # re-saved: a new arrays file, the record rebound
    keys = ("by", "date", "via")
    assert {k: again.consent[k] for k in keys} == {k: p.consent[k] for k in keys}


@pytest.mark.parametrize("field,value", [("by", "Someone else"), ("date", "2020-01-01T00:00:00+00:00"),
                                         ("via", "enroll"), ("sha256", "0" * 64)])
def test_an_edited_record_is_refused(saved, field, value):
    record_consent(saved, "Jane Doe, signed release")
    _edit(saved, lambda meta: meta["consent"].__setitem__(field, value))
    with pytest.raises(PuppeteerError, match="consent record does not match"):
        load(saved)


def test_a_record_copied_from_another_profile_is_refused(saved, tmp_path, astronaut_profile):
    arrays = {**astronaut_profile.arrays, "frame_scale": astronaut_profile.arrays["frame_scale"] * 1.01}
    other = save(dataclasses.replace(astronaut_profile, name="other", arrays=arrays), tmp_path / "other")
    record = record_consent(saved, "Jane Doe, signed release")
    _edit(other, lambda meta: meta.__setitem__("consent", record))
    with pytest.raises(PuppeteerError, match="copied from another profile"):
        load(other)


def test_another_faces_arrays_listed_as_a_previous_sha256_do_not_pass_the_record(saved, tmp_path,
                                                                                astronaut_profile):
    """Before (YAML audit): another face's arrays.npz copied over a consented profile's, its
    sha256 added as the entry's `previous_sha256` (what an interrupted `train` commit writes for
    neural/ files), loaded with the record, the fingerprint of the arrays it replaced, and swap
    ran without a note."""
    import shutil

    from realtime.core.profile import ARRAYS_FILE

    arrays = {**astronaut_profile.arrays, "frame_scale": astronaut_profile.arrays["frame_scale"] * 1.01}
    other = save(dataclasses.replace(astronaut_profile, name="other", arrays=arrays), tmp_path / "other")
    record_consent(saved, "Jane Doe, signed release")
    theirs = load(other).files[ARRAYS_FILE]["sha256"]
    shutil.copyfile(other / ARRAYS_FILE, saved / ARRAYS_FILE)
    _edit(saved, lambda meta: meta["files"][ARRAYS_FILE].__setitem__("previous_sha256", theirs))
    with pytest.raises(PuppeteerError, match="does not match the sha256"):
        load(saved)


def test_a_malformed_record_is_refused(saved):
    _edit(saved, lambda meta: meta.__setitem__("consent", "yes"))
    with pytest.raises(PuppeteerError, match="consent must be a mapping"):   # the schema's line
        load(saved)


def test_revoke(saved):
    record_consent(saved, "Jane Doe")
    revoke_consent(saved)
    assert load(saved).consent is None


def test_consent_text_is_checked(saved):
    for bad in ("", "   ", "x" * 501):
        with pytest.raises(ConsentError):
            record_consent(saved, bad)
    assert load(saved).consent is None


def test_require_consent_for_swap(saved):
    with pytest.raises(ConsentError) as e:
        require_consent(load(saved))
    msg = str(e.value)
    assert isinstance(e.value, PuppeteerError) and "\n" not in msg
    # saved outside the profiles root: the command names its path (stop 60's review: "consent
    # astro", which `consent` could not find)
    assert "'astro'" in msg and f'python run.py consent {saved} --by "NAME, how they agreed"' in msg
    record_consent(saved, "Jane Doe")
    assert require_consent(load(saved))["by"] == "Jane Doe"


def test_list_profiles(saved, tmp_path):
    record_consent(saved, "Jane Doe")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / YAML_FILE).write_text("files: {}\n")
    rows = {name: (fp, text) for name, fp, text in list_profiles(tmp_path)}
    assert rows["astro"][1].startswith("consent: Jane Doe") and len(rows["astro"][0]) == 6
    assert rows["broken"][1].startswith("unreadable")


def test_list_profiles_flags_a_yaml_that_is_not_utf8(saved, tmp_path):
    """Before the fix: a profile.yaml with a Latin-1 byte raised UnicodeDecodeError out of the listing."""
    (tmp_path / "latin").mkdir()
    (tmp_path / "latin" / YAML_FILE).write_bytes((saved / YAML_FILE).read_bytes() + b"caf\xe9\n")
    rows = {name: (fp, text) for name, fp, text in list_profiles(tmp_path)}
    assert rows["latin"][0] == "?" and "profile.yaml is not UTF-8 text" in rows["latin"][1]
    assert rows["astro"][1] == "no consent record"


def test_a_record_without_its_fields_is_refused(saved):
    _edit(saved, lambda meta: meta.__setitem__("consent", {"by": "me", "date": "2024-01-01"}))
    with pytest.raises(PuppeteerError, match="must have text fields"):
        load(saved)


@pytest.mark.parametrize("text", [b"a: [1\n", b"name: \xff\xfe\n"])
def test_recording_consent_on_a_broken_yaml_is_a_profile_error(saved, text):
    """`record_consent` reads profile.yaml through the bounded reader: broken YAML or a file that
    is not UTF-8 is a ProfileError (one `error:` line), not a parser's or decoder's traceback."""
    from realtime.core.errors import ProfileError

    (saved / YAML_FILE).write_bytes(text)
    with pytest.raises(ProfileError):
        record_consent(saved, "Jane Doe, signed release")


def test_a_record_made_elsewhere_says_so_and_saving_it_again_does_not_make_it_ours(saved, tmp_path, monkeypatch):
    """Before (security review): anyone can write a valid record, and a received profile's read
    "consent: Jane Doe (recorded ... via enroll)" like one made here. Records made on this machine
    are remembered in the user's cache folder; another machine's (another cache) are described as
    having come with the profile, also after the profile is saved again here."""
    from profiles.consent import describe, recorded_here

    record_consent(saved, "Jane Doe, signed release 2025-03-01")
    here = load(saved).consent
    assert recorded_here(here) and describe(here).endswith("via consent)")
    resaved = load(save(load(saved), tmp_path / "copy"))        # rebound to new arrays: still ours
    assert recorded_here(resaved.consent)
    monkeypatch.setenv("PUPPETEER_CACHE", str(tmp_path / "another machine"))
    theirs = load(saved).consent
    assert not recorded_here(theirs)
    assert describe(theirs).endswith("via consent; not in this machine's consent records: brought with the "
                                     "profile, or recorded before they were kept)")
    laundered = load(save(load(saved), tmp_path / "laundered"))  # saved again on the other machine
    assert not recorded_here(laundered.consent)
    record_consent(tmp_path / "laundered", "Jane Doe, asked again today")
    assert recorded_here(load(tmp_path / "laundered").consent)


def test_enroll_s_consent_is_recorded_here(tmp_path, astronaut_profile):
    from profiles.consent import recorded_here
    from profiles.enroll import save_enrolled

    folder = save_enrolled(dataclasses.replace(astronaut_profile, arrays=dict(astronaut_profile.arrays)),
                           tmp_path / "astro", force=False, consent="Ana, on camera")
    assert recorded_here(load(folder).consent)
