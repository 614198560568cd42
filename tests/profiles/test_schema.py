"""profile.yaml as a user's editor leaves it: `profiles.schema.read_yaml` (the other checks of
the schema are exercised through `load` in test_format.py and test_hostile.py)."""
from __future__ import annotations

import pytest

from profiles.schema import ConsentRecordError, check_meta, read_yaml
from realtime.core.errors import ProfileError


def _refusal(path, raw: bytes) -> str:
    """The ProfileError `read_yaml` gives for a profile.yaml of bytes `raw` at `path`."""
    path.write_bytes(raw)
    with pytest.raises(ProfileError) as e:
        read_yaml(path)
    return str(e.value)


YAML = "format: 1\nname: s1\ntier: warp\nsettings:\n  gains: {mouth: 1.2}\n"


@pytest.mark.parametrize("text, where", [
    (YAML.replace("name: s1", "name: s1\x00"), "line 2, column 9: character #x0000"),
    (b"\0" * 300, "line 1, column 1: character #x0000"),      # a file a crash left zero-filled
    (YAML + "# \x1b[31m red\n", "line 6, column 3: character #x001b"),
])
def test_a_control_character_is_one_error_that_says_where(tmp_path, text, where):
    """Before: yaml.reader.ReaderError's traceback from every command, `run.py consent`'s
    listing of all profiles and `enroll --force` (the remedy) included."""
    path = tmp_path / "profile.yaml"
    said = _refusal(path, text if isinstance(text, bytes) else text.encode())
    assert said == (f"{path} is not valid YAML: {where} (a control character) is not allowed; "
                    f"delete it, or enroll the profile again")


@pytest.mark.parametrize("text, said", [
    (YAML.replace("tier: warp", "tier: atlas\ntier: warp"), "line 4: 'tier' is given twice (also on line 3)"),
    (YAML + "settings: {}\n", "line 6: 'settings' is given twice (also on line 4)"),
    (YAML.replace("{mouth: 1.2}", "{mouth: 1.2, eyes: 1, mouth: 2}"),
     "line 5: 'mouth' is given twice (also on line 5)"),
])
def test_a_key_given_twice_is_refused(tmp_path, text, said):
    """Before: YAML kept the last one without a word (a `tier: atlas` added above the file's
    own `tier: warp`, a second `settings:` added at the end over gains, did nothing)."""
    path = tmp_path / "profile.yaml"
    assert _refusal(path, text.encode()) == (f"{path} is not valid YAML: {said}, and only the last one "
                                             f"would count: delete one of them")


def test_a_merge_key_and_the_same_key_in_two_mappings_are_fine(tmp_path):
    path = tmp_path / "profile.yaml"
    path.write_text("a: &x {k: 1}\nb:\n  <<: *x\n  j: 2\nc: {k: 3}\n")
    assert read_yaml(path) == {"a": {"k": 1}, "b": {"k": 1, "j": 2}, "c": {"k": 3}}


@pytest.mark.parametrize("raw, where", [
    (YAML.replace("s1", "José").encode("latin-1"), "byte 19, line 2"),    # Notepad's "ANSI"
    (YAML.encode("utf-16"), "byte 0, line 1"),                            # Notepad's "Unicode"
])
def test_text_in_another_encoding_says_to_save_it_as_utf8(tmp_path, raw, where):
    """Before (YAML audit): "is not UTF-8 text (byte 19); enroll the profile again": an enroll
    that drops the consent record and the settings, for a file saved in the wrong encoding."""
    path = tmp_path / "profile.yaml"
    assert _refusal(path, raw) == (f"{path} is not UTF-8 text ({where}); save it again as UTF-8 (an editor's 'ANSI' "
                            f"or 'Unicode'/UTF-16 is not), or enroll the profile again")


# ----------------------------------------------- settings.atlas and settings.neural: records (audit)
#: settings.atlas as `profiles.enroll_video` writes it, and settings.neural as `train` does
ATLAS_RECORD = {
    "frames": 150, "frame_range": [0, 149], "fps": 30.0, "usable_frames": 120,
    "rejected": {"no_face": 10, "another_person": 40, "multi_face": 0, "blurred": 20, "unsteady": 0, "occluded": 0},
    "reference_frame": 12, "source_sha256": "a" * 64, "source_bytes": 123456, "source_frames": 150,
    "keyframes": 19, "flipped": 4, "simplices": 40, "dims": ["yaw", "pitch", "mouth"],
    "query_range": {"yaw": [-0.5, 0.6], "pitch": [-0.2, 0.3], "mouth": [0.0, 1.1], "eyes": [0.4, 1.0]},
    "crop_size": 192, "colour_shift_max": 3.5, "config": {"max_keyframes": 48, "colour": True},
    "other_people": [[100, 139]],
}
NEURAL_RECORD = {"resolution": 128, "steps": 3000, "pairs": 400,
                 "face_l1": {"render": 0.052, "output": 0.031, "held_out": 40,
                             "trained": {"render": 0.05, "output": 0.028}}}


def test_the_records_enroll_and_train_write_pass():
    from profiles.schema import ATLAS_DIMS
    from realtime.tiers.atlas.query import DIM_NAMES

    check_meta({"format": 1, "settings": {"atlas": ATLAS_RECORD, "neural": NEURAL_RECORD}}, "p.yaml")
    assert ATLAS_DIMS == DIM_NAMES      # spelled out in the schema (the atlas's module imports scipy)


RECORD_SAYS = "is the record {} wrote, and nothing reads a key added to it: delete it"


@pytest.mark.parametrize("section, said", [
    ({"atlas": {**ATLAS_RECORD, "bogus": 1}},
     "settings.atlas.bogus is not a setting; settings.atlas " + RECORD_SAYS.format("a video's enrollment")),
    ({"atlas": {"keyframe": 19}}, "settings.atlas.keyframe is not a setting (did you mean keyframes?); settings.atlas"),
    ({"neural": {**NEURAL_RECORD, "face_l1": {"render": 0.1, "outptu": 0.2}}},
     "settings.neural.face_l1.outptu is not a setting; settings.neural is the record train wrote (face_l1: "
     "{render, output, held_out, trained: {render, output}}), and nothing reads a key added to it: delete it"),
    ({"neural": {"face_l1": {"trained": {"render": 0.1, "out": 0.2}}}},
     "settings.neural.face_l1.trained.out is not a setting"),
    ({"neural": {"face_l1": {"held_out": 2.5}}}, "settings.neural.face_l1.held_out must be a whole number"),
    ({"neural": {"resolutoin": 128}}, "settings.neural.resolutoin is not a setting (did you mean resolution?); "
                                      "settings.neural " + RECORD_SAYS.format("train")),
    ({"atlas": {"rejected": {"blurred": "many"}}}, "settings.atlas.rejected.blurred must be a whole number"),
    ({"atlas": {"rejected": [1, 2]}}, "settings.atlas.rejected must be a mapping"),
    ({"atlas": {"dims": ["yaw", "roll"]}}, "settings.atlas.dims must be a list of yaw, pitch, mouth, eyes"),
    ({"atlas": {"query_range": {"yaw": [0, "x"]}}}, "settings.atlas.query_range must map yaw, pitch, mouth, eyes"),
    ({"atlas": {"simplices": -1}}, "settings.atlas.simplices must be a whole number"),
    ({"atlas": {"colour_shift_max": "big"}}, "settings.atlas.colour_shift_max must be a number"),
    ({"atlas": {"config": "default"}}, "settings.atlas.config must be a mapping"),
    ({"atlas": {"other_people": [[140, 100]]}}, "settings.atlas.other_people must be a list of [first, last]"),
    ({"atlas": {"other_people": [100, 139]}}, "settings.atlas.other_people must be a list of [first, last]"),
    ({"neural": {"face_l1": "low"}}, "settings.neural.face_l1 must be a mapping"),
    ({"neural": {"face_l1": {"render": float("nan")}}}, "settings.neural.face_l1.render must be a number"),
])
def test_the_records_refuse_an_unknown_key_or_a_wrong_type(section, said):
    """Before (YAML audit): settings.atlas took any key and most types, and settings.neural's
    face_l1 anything, without a word (editing these records does nothing)."""
    with pytest.raises(ProfileError) as e:
        check_meta({"format": 1, "settings": section}, "p.yaml")
    assert str(e.value).startswith(f"p.yaml: {said}"), str(e.value)


# --------------------------------------------------------------- consent: an unquoted date (audit)
@pytest.mark.parametrize("value, said", [
    ("2026-12-07T01:55:03+00:00", "a date, not text: put it in quotes, as enroll wrote it (date: "
                                  "'2026-12-07T01:55:03+00:00')"),
    ("2026-12-07", "a date, not text: put it in quotes, as enroll wrote it (date: '2026-12-07')"),
])
def test_an_unquoted_consent_date_says_to_quote_it(tmp_path, value, said):
    """Before (YAML audit): "the consent record must have text fields by, date, via, sha256",
    where YAML had read the date's quotes away and made it a date."""
    path = tmp_path / "profile.yaml"
    path.write_text(f"format: 1\nconsent:\n  by: me\n  date: {value}\n  via: enroll\n  sha256: {'0' * 64}\n")
    with pytest.raises(ConsentRecordError) as e:
        check_meta(read_yaml(path), str(path))
    assert str(e.value).startswith(f"{path}: consent.date is not in quotes, so YAML reads it as {said}; record "
                                   f"it again with: python run.py consent"), str(e.value)


@pytest.mark.parametrize("by, what", [("yes", "true or false"), ("2025", "a number")])
def test_an_unquoted_consent_text_that_yaml_reads_otherwise_says_to_quote_it(tmp_path, by, what):
    path = tmp_path / "profile.yaml"
    path.write_text(f"format: 1\nconsent:\n  by: {by}\n  date: '2026'\n  via: enroll\n  sha256: {'0' * 64}\n")
    with pytest.raises(ConsentRecordError, match=f"consent.by is not in quotes, so YAML reads it as {what}, not "
                                                 f"text: put it in quotes, as enroll wrote it; record it again"):
        check_meta(read_yaml(path), str(path))
