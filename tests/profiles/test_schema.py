"""profile.yaml as a user's editor leaves it: `profiles.schema.read_yaml` (the other checks of
the schema are exercised through `load` in test_format.py and test_hostile.py)."""
from __future__ import annotations

import pytest

from profiles.schema import read_yaml
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
