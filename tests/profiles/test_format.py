"""profiles.format: YAML + npz profiles, hashes, path confinement, safe loading, atomic saves."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from profiles import format as fmt
from profiles.format import ARRAYS_FILE, YAML_FILE, Profile, ProfileError, load, resolve, save
from tests.hostile import small_arrays


@pytest.fixture(scope="module")
def small_profile() -> Profile:
    """A valid profile with small arrays (fast to save and hash)."""
    arrays = small_arrays(crop=16, seed=0)
    return Profile(name="tiny", kind="image", source="tiny.png", arrays=arrays, crop_size=16,
                   settings={"gains": {"eyes": 1.2}, "swap": {"drop_fringe": True}})


def test_a_profile_reads_as_its_arrays_shapes_not_their_contents(small_profile):
    text = repr(small_profile)
    image = small_profile.arrays["image"]
    assert "name='tiny'" in text and "tier='warp'" in text
    assert f"image: uint8{list(image.shape)}" in text
    assert len(text) < 120 + 40 * len(small_profile.arrays), text
    assert "\n" not in text


def _saved(profile, tmp_path, name="tiny") -> Path:
    return save(profile, tmp_path / name)


def _rewrite_yaml(folder: Path, edit) -> None:
    meta = yaml.safe_load((folder / YAML_FILE).read_text())
    edit(meta)
    (folder / YAML_FILE).write_text(yaml.safe_dump(meta, sort_keys=False))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------- round trip
def test_save_load_round_trip_is_exact(small_profile, tmp_path):
    folder = _saved(small_profile, tmp_path)
    assert folder == tmp_path / "tiny" and small_profile.folder == folder
    assert sorted(p.name for p in folder.iterdir()) == sorted([ARRAYS_FILE, YAML_FILE])
    back = load(folder)
    assert set(back.arrays) == set(small_profile.arrays)
    for k, a in small_profile.arrays.items():
        b = back[k]
        assert b.dtype == np.asarray(a).dtype and b.shape == np.asarray(a).shape, k
        np.testing.assert_array_equal(b, a, err_msg=k)
    assert (back.name, back.kind, back.source, back.tier, back.crop_size) == \
        ("tiny", "image", "tiny.png", "warp", 16)
    assert back.settings == {"gains": {"eyes": 1.2}, "swap": {"drop_fringe": True}}
    assert back.folder == folder
    f = back.frame()
    assert f.scale == pytest.approx(12.5) and f.translation.tolist() == [1, 2, 3]


def test_yaml_is_human_readable_and_lists_hashes(small_profile, tmp_path):
    folder = _saved(small_profile, tmp_path)
    text = (folder / YAML_FILE).read_text()
    meta = yaml.safe_load(text)
    assert meta["format"] == fmt.FORMAT_VERSION
    assert meta["name"] == "tiny" and meta["tier"] == "warp" and meta["crop_size"] == 16
    assert meta["kind"] == "image" and meta["source"] == "tiny.png"
    assert meta["created"]  # a timestamp
    assert meta["settings"] == {"gains": {"eyes": 1.2}, "swap": {"drop_fringe": True}}
    assert meta["files"][ARRAYS_FILE] == {"path": ARRAYS_FILE, "sha256": _sha(folder / ARRAYS_FILE)}
    assert "!!python" not in text and "numpy" not in text


def test_load_by_name_under_the_root_and_by_yaml_path(small_profile, tmp_path, monkeypatch):
    _saved(small_profile, tmp_path)
    monkeypatch.setenv("PUPPETEER_PROFILES", str(tmp_path))
    assert fmt.profiles_root() == tmp_path
    assert load("tiny").folder == tmp_path / "tiny"
    assert load(tmp_path / "tiny" / YAML_FILE).name == "tiny"
    assert resolve("tiny") == tmp_path / "tiny"
    with pytest.raises(ProfileError, match="enroll"):
        load("nobody")


def test_a_bare_name_is_the_profile_even_beside_a_folder_of_that_name(small_profile, tmp_path, monkeypatch):
    """Before (stop 63's audit): in a directory holding a folder `tiny/` (photos, say),
    `--profile tiny` took that folder and said it had no profile.yaml."""
    root = tmp_path / "root"
    _saved(small_profile, root)
    monkeypatch.setenv("PUPPETEER_PROFILES", str(root))
    work = tmp_path / "work"
    (work / "tiny").mkdir(parents=True)
    monkeypatch.chdir(work)
    assert resolve("tiny") == root / "tiny"
    assert resolve("./tiny") == Path("./tiny")          # a path is a path
    assert resolve(str(work / "tiny")) == work / "tiny"


def test_a_tilde_in_the_profiles_root_is_home(monkeypatch, tmp_path):
    """Before (stop 63's audit): PUPPETEER_PROFILES='~/p' (quoted: no shell expansion) made a
    folder named '~' in the current directory."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PUPPETEER_PROFILES", "~/p")
    assert fmt.profiles_root() == tmp_path / "p"


@pytest.mark.parametrize("given, expect", [
    ("nobody", "no profile 'nobody': not a folder, and nothing at {root}/nobody (make one with: "
               "python run.py enroll IMAGE --name nobody)"),
    ("my.face", "(make one with: python run.py enroll IMAGE --name my_face)"),       # no dots in a name
    ("{root}/s 1.jpg", "'{root}/s 1.jpg' is a file, not a profile (make one from it with: python run.py "
                       "enroll '{root}/s 1.jpg' --name s_1)"),
    ("s1,s0", "no profile 's1,s0': a list of profiles is for bench --streams N"),
])
def test_a_missing_profile_s_hint_is_a_command_that_works(tmp_path, monkeypatch, given, expect):
    """Before the fix: `--profile s1.jpg` suggested `enroll IMAGE --name s1.jpg` (refused: no dots),
    and `--profile s1,s0` (a bench --streams list) `--name s1,s0`."""
    monkeypatch.setenv("PUPPETEER_PROFILES", str(tmp_path))
    (tmp_path / "s 1.jpg").write_bytes(b"x")
    with pytest.raises(ProfileError) as e:
        resolve(given.format(root=tmp_path))
    assert expect.format(root=tmp_path) in str(e.value)


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_profiles_root_that_is_not_a_folder_is_named(tmp_path, monkeypatch, kind):
    """Before the fix (new-user walkthrough): with PUPPETEER_PROFILES mistyped, `--profile s1` said
    "nothing at <typo>/s1 (make one with: python run.py enroll ...)", as if s1 had never been
    enrolled, while the profiles folder itself was what was missing."""
    root = tmp_path / "typo"
    if kind == "file":
        root.write_bytes(b"")
    monkeypatch.setenv("PUPPETEER_PROFILES", str(root))
    with pytest.raises(ProfileError) as e:
        resolve("s1")
    what = "does not exist" if kind == "missing" else "is not a folder"
    assert str(e.value) == (f"no profile 's1': not a folder, and the profiles folder {root} (PUPPETEER_PROFILES) "
                            f"{what}: check that path, or make one with: python run.py enroll IMAGE --name s1")


def test_a_near_name_or_a_file_inside_a_profile_points_at_the_profile(small_profile, tmp_path):
    """Before (stop 61's review): `--profile S1` said "no profile" and to enroll one; the
    profile's arrays.npz given as the profile said to enroll it `--name arrays`."""
    folder = save(small_profile, tmp_path / "s1")
    for given in ("S1", "s"):
        with pytest.raises(ProfileError, match=r"no profile '.*' \(did you mean 's1'\?\)") if given == "S1" \
                else pytest.raises(ProfileError, match="make one with"):
            resolve(given, tmp_path)
    inner = folder / "neural" / "generator.safetensors"
    inner.parent.mkdir()
    inner.write_bytes(b"")
    for given in (folder / ARRAYS_FILE, inner):
        with pytest.raises(ProfileError, match=rf"'{given}' is inside the profile in '{folder}': "
                                               r"pass that folder \(or its name\) as the profile"):
            resolve(str(given), tmp_path)
    with pytest.raises(ProfileError, match=rf"'{inner.parent}' is inside the profile in '{folder}': "):
        load(inner.parent)         # a folder resolves as itself; loading it says whose it is


def test_save_refuses_to_replace_unless_asked(small_profile, tmp_path):
    folder = _saved(small_profile, tmp_path)
    with pytest.raises(ProfileError, match="exists"):
        save(small_profile, folder)
    other = Profile(name="tiny", kind="image", source="other.png",
                    arrays=dict(small_profile.arrays), crop_size=16)
    save(other, folder, overwrite=True)
    assert load(folder).source == "other.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]  # no temporary left over


def test_save_never_replaces_what_is_not_a_profile(small_profile, tmp_path):
    (tmp_path / "code.py").write_text("source")
    (tmp_path / "cache").mkdir()
    for path in (tmp_path / "code.py", tmp_path / "cache"):
        with pytest.raises(ProfileError, match="is not a profile"):
            save(small_profile, path, overwrite=True)
    assert (tmp_path / "code.py").read_text() == "source" and not any((tmp_path / "cache").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "code.py"]


# ------------------------------------------------------------------------------- integrity
def test_changed_arrays_file_is_refused(small_profile, tmp_path):
    folder = _saved(small_profile, tmp_path)
    data = bytearray((folder / ARRAYS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / ARRAYS_FILE).write_bytes(bytes(data))
    with pytest.raises(ProfileError, match="sha256"):
        load(folder)


def test_hash_mismatch_in_the_yaml_is_refused(small_profile, tmp_path):
    folder = _saved(small_profile, tmp_path)
    _rewrite_yaml(folder, lambda m: m["files"][ARRAYS_FILE].update(sha256="0" * 64))
    with pytest.raises(ProfileError, match="sha256"):
        load(folder)


def test_arrays_replaced_by_another_valid_file_are_refused(small_profile, tmp_path):
    folder = _saved(small_profile, tmp_path)
    arrays = dict(small_profile.arrays)
    arrays["frame_scale"] = np.float32(99.0)
    np.savez(folder / ARRAYS_FILE, **arrays)
    with pytest.raises(ProfileError):
        load(folder)


def test_a_listed_file_too_large_for_its_kind_is_refused_before_hashing(small_profile, tmp_path, monkeypatch):
    """Before (stop 63's audit): a listed plot grown to 20 GB was hashed in full (54 s) on every
    start before its sha256 refused it. Now its size refuses it at once (sparse file here; a plot
    itself is no longer checked: `test_a_deleted_or_edited_plot_does_not_stop_the_profile`)."""
    folder = _saved(small_profile, tmp_path)
    (folder / "neural").mkdir()
    plot = folder / "neural" / "train_state.safetensors"
    plot.write_bytes(b"state")
    meta = yaml.safe_load((folder / YAML_FILE).read_text())
    meta["files"]["neural/train_state.safetensors"] = {"path": "neural/train_state.safetensors", "sha256": _sha(plot)}
    (folder / YAML_FILE).write_text(yaml.safe_dump(meta, sort_keys=False))
    assert load(folder).name == "tiny"
    os.truncate(plot, (2 << 30) + 1)
    real = fmt.sha256_file
    monkeypatch.setattr(fmt, "sha256_file", lambda p: pytest.fail(f"hashed {p}") if p.name == plot.name else real(p))
    with pytest.raises(ProfileError, match=r"train_state.safetensors is 2147483649 bytes, more than a profile's "
                                           r"\.safetensors may be \(2048 MiB\)"):
        load(folder)


@pytest.mark.parametrize("bad_path", ["../x", "../tiny2/arrays.npz", "/etc/passwd", "sub/../../x"])
def test_file_paths_outside_the_folder_are_refused(small_profile, tmp_path, bad_path):
    folder = _saved(small_profile, tmp_path)
    (tmp_path / "x").write_bytes(b"outside")
    _rewrite_yaml(folder, lambda m: m["files"].update(
        {"extra": {"path": bad_path, "sha256": _sha(tmp_path / "x")}}))
    with pytest.raises(ProfileError, match="outside"):
        load(folder)


def test_arrays_path_escaping_the_folder_is_refused(small_profile, tmp_path):
    """The arrays entry itself pointing at a (matching!) file outside the folder."""
    folder = _saved(small_profile, tmp_path)
    outside = tmp_path / "stolen.npz"
    outside.write_bytes((folder / ARRAYS_FILE).read_bytes())
    _rewrite_yaml(folder, lambda m: m["files"][ARRAYS_FILE].update(path="../stolen.npz"))
    with pytest.raises(ProfileError, match="outside"):
        load(folder)


def test_symlink_out_of_the_folder_is_refused(small_profile, tmp_path):
    folder = _saved(small_profile, tmp_path)
    real = tmp_path / "real.npz"
    os.replace(folder / ARRAYS_FILE, real)
    os.symlink(real, folder / ARRAYS_FILE)
    with pytest.raises(ProfileError, match="outside"):
        load(folder)


def test_python_object_tags_are_refused(small_profile, tmp_path):
    folder = _saved(small_profile, tmp_path)
    marker = tmp_path / "pwned"
    text = (folder / YAML_FILE).read_text()
    text += f"exploit: !!python/object/apply:os.system ['touch {marker}']\n"
    (folder / YAML_FILE).write_text(text)
    with pytest.raises(ProfileError):
        load(folder)
    assert not marker.exists()


def test_pickled_arrays_are_never_unpickled(small_profile, tmp_path):
    """An object array in the npz (with a matching hash) is refused, nothing is executed."""
    folder = _saved(small_profile, tmp_path)
    arrays = dict(small_profile.arrays)
    arrays["evil"] = np.array([{"a": 1}], dtype=object)
    np.savez(folder / ARRAYS_FILE, **arrays)
    _rewrite_yaml(folder, lambda m: m["files"][ARRAYS_FILE].update(sha256=_sha(folder / ARRAYS_FILE)))
    with pytest.raises((ProfileError, ValueError)):
        load(folder)


@pytest.mark.parametrize("payload", ["object_array", "not_a_zip"])
def test_unreadable_arrays_raise_profile_error(small_profile, tmp_path, payload):
    folder = _saved(small_profile, tmp_path)
    if payload == "object_array":
        arrays = dict(small_profile.arrays)
        arrays["evil"] = np.array([{"a": 1}], dtype=object)
        np.savez(folder / ARRAYS_FILE, **arrays)
    else:
        (folder / ARRAYS_FILE).write_bytes(b"this is not a zip file")
    _rewrite_yaml(folder, lambda m: m["files"][ARRAYS_FILE].update(sha256=_sha(folder / ARRAYS_FILE)))
    with pytest.raises(ProfileError):
        load(folder)


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.update(format=99), "format"),
    (lambda m: m.pop("files"), ARRAYS_FILE),
    (lambda m: m.update(tier="diamond"), "tier"),
])
def test_bad_yaml_contents_are_refused(small_profile, tmp_path, edit, match):
    folder = _saved(small_profile, tmp_path)
    _rewrite_yaml(folder, edit)
    with pytest.raises(ProfileError, match=match):
        load(folder)


def test_a_copied_profiles_tier_mistake_names_its_folder_and_the_fix(small_profile, tmp_path):
    """Before (stop 61's review): a copy of s1 in folder s1g set to `tier: atlas` said "profile
    's1': tier 'atlas' needs an appearance atlas (enroll a video of the target); it lacks ['atlas_images', ...]":
    the YAML's name, not what --profile takes, a Python list, and no way out for a photo profile."""
    folder = _saved(small_profile, tmp_path)
    copy = folder.parent / "copied"
    shutil.copytree(folder, copy)
    _rewrite_yaml(copy, lambda m: m.update(tier="atlas"))
    assert small_profile.name != "copied"
    with pytest.raises(ProfileError) as e:
        load(copy)
    said = str(e.value)
    assert said.startswith("profile 'copied': tier 'atlas' needs an appearance atlas, which only a profile "
                           "enrolled from a video has (it lacks atlas_")
    assert said.endswith("): set 'tier: warp' in its profile.yaml, or enroll a video of the target") and "[" not in said


def test_invalid_yaml_and_missing_files(small_profile, tmp_path):
    folder = _saved(small_profile, tmp_path)
    (folder / ARRAYS_FILE).unlink()
    with pytest.raises(ProfileError, match="missing"):
        load(folder)
    (folder / YAML_FILE).write_text("format: [1\n")
    with pytest.raises(ProfileError, match="YAML"):
        load(folder)
    (folder / YAML_FILE).unlink()
    with pytest.raises(ProfileError, match=YAML_FILE):
        load(folder)


def test_invalid_yaml_says_where(small_profile, tmp_path):
    """Before the fix (README audit): "is not valid YAML: while parsing a flow node", without
    the line and column to look at."""
    folder = _saved(small_profile, tmp_path)
    text = (folder / YAML_FILE).read_text().splitlines()
    (folder / YAML_FILE).write_text("\n".join(text[:2] + ["settings: {gains: [1, 2", "x: 3"] + text[2:]) + "\n")
    with pytest.raises(ProfileError) as err:
        load(folder)
    assert str(err.value).endswith("is not valid YAML: line 4, column 2: expected ',' or ']', but got ':' "
                                   "(while parsing a flow sequence)"), str(err.value)


def test_profile_validates_its_arrays(small_profile):
    arrays = dict(small_profile.arrays)
    del arrays["paste_mask"]
    with pytest.raises(ProfileError, match="paste_mask"):
        Profile(name="x", kind="image", source="", arrays=arrays)
    arrays = dict(small_profile.arrays)
    arrays["image"] = arrays["image"].astype(np.float32)
    with pytest.raises(ProfileError, match="image"):
        Profile(name="x", kind="image", source="", arrays=arrays)
    arrays = dict(small_profile.arrays)
    arrays["landmarks"] = arrays["landmarks"][None]
    with pytest.raises(ProfileError, match="landmarks"):
        Profile(name="x", kind="image", source="", arrays=arrays)


# --------------------------------------------------------------------------------- atomic
@pytest.mark.parametrize("where", ["arrays", "yaml", "rename"])
def test_failed_save_leaves_no_folder(small_profile, tmp_path, monkeypatch, where):
    def boom(*a, **k):
        raise OSError("disk full")

    if where == "arrays":
        monkeypatch.setattr(fmt.paths, "write_npz", boom)
    elif where == "yaml":
        monkeypatch.setattr(fmt.yaml, "safe_dump", boom)
    else:
        monkeypatch.setattr(fmt.Path, "rename", boom)
    with pytest.raises(OSError, match="disk full"):
        save(small_profile, tmp_path / "tiny")
    assert list(tmp_path.iterdir()) == []  # neither the profile nor a hidden temporary


def test_failed_overwrite_keeps_the_old_profile(small_profile, tmp_path, monkeypatch):
    folder = _saved(small_profile, tmp_path)
    monkeypatch.setattr(fmt.yaml, "safe_dump", lambda *a, **k: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(OSError):
        save(small_profile, folder, overwrite=True)
    monkeypatch.undo()
    assert load(folder).name == "tiny"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]


def test_a_stop_a_library_swallowed_still_keeps_the_old_profile(small_profile, tmp_path):
    """(bad-input review) A Ctrl-C that lands in an import can come out as an ImportError that a
    library's fallback catches: the enroll went on and replaced the profile the user had asked
    to keep. The stop is recorded (`realtime.core.stop`) and the replacement refuses it."""
    from realtime.core import stop

    folder = _saved(small_profile, tmp_path)
    before = sorted(p.name for p in folder.iterdir())
    other = Profile(name="other", kind="image", source="other.png", arrays=small_arrays(crop=16, seed=1),
                    crop_size=16)
    stop.note()
    try:
        with pytest.raises(KeyboardInterrupt):
            save(other, folder, overwrite=True)
        with pytest.raises(KeyboardInterrupt):
            save(other, tmp_path / "new")
    finally:
        stop.clear()
    assert load(folder).name == "tiny" and sorted(p.name for p in folder.iterdir()) == before   # not "other"
    assert not (tmp_path / "new").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []    # no leftovers
    save(other, tmp_path / "new")                                                   # cleared: saves
    assert load(tmp_path / "new").name == "other"


def test_failed_swap_keeps_the_old_profile(small_profile, tmp_path, monkeypatch):
    """Where the atomic exchange is unavailable: the backup path (profiles.store.replace_dir)."""
    from profiles import store

    folder = _saved(small_profile, tmp_path)
    monkeypatch.setattr(store, "_exchange", lambda a, b: False)
    real_rename = Path.rename
    calls = []

    def rename(self, target):
        calls.append(self)
        if len(calls) == 2:  # the temporary -> NAME step
            raise OSError("rename failed")
        return real_rename(self, target)

    monkeypatch.setattr(fmt.Path, "rename", rename)
    with pytest.raises(OSError):
        save(small_profile, folder, overwrite=True)
    monkeypatch.undo()
    assert load(folder).name == "tiny"


def test_problem_says_in_a_phrase_why_load_refuses_a_profile(small_profile, tmp_path, monkeypatch):
    """`run.py consent` lists every profile with it (it listed a corrupt one as fine)."""
    folder = _saved(small_profile, tmp_path)
    assert fmt.problem(folder) is None
    with open(folder / ARRAYS_FILE, "r+b") as f:
        f.seek(60)
        f.write(b"\0" * 8)
    assert fmt.problem(folder) == (f"{ARRAYS_FILE} does not match the sha256 in {YAML_FILE}: the file changed "
                                   f"or is corrupt")

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(fmt, "sha256_file", unreadable)
    assert fmt.problem(folder) == f"cannot read {ARRAYS_FILE}: Permission denied"


def test_problem_names_the_tier_a_photo_profile_runs_with(small_profile, tmp_path):
    """Before (YAML audit): a photo profile set to `tier: neural` was listed as "it runs with
    --tier atlas", a tier it has no atlas for (live itself says --tier warp)."""
    folder = _saved(small_profile, tmp_path)
    _rewrite_yaml(folder, lambda m: m.update(tier="neural"))
    assert fmt.problem(folder) == "its tier is neural and it has no trained generator (it runs with --tier warp)"


def _with_neural_files(folder: Path) -> None:
    (folder / "neural").mkdir()
    for name in ("generator.safetensors", "train_state.safetensors", "losses.png", "samples.png"):
        (folder / "neural" / name).write_bytes(f"the first training's {name}".encode())
    fmt.attach_files(folder, [f"neural/{n}" for n in ("generator.safetensors", "train_state.safetensors",
                                                     "losses.png", "samples.png")], tier="neural")


def test_a_deleted_or_edited_plot_does_not_stop_the_profile(small_profile, tmp_path):
    """Before (YAML audit): a training plot (neural/losses.png, samples.png: for the user, never
    read) deleted or saved again from an image viewer made the whole profile refuse to load,
    "train it again with --restart", which refused it the same way."""
    folder = _saved(small_profile, tmp_path)
    _with_neural_files(folder)
    (folder / "neural" / "losses.png").unlink()
    (folder / "neural" / "samples.png").write_bytes(b"annotated")
    assert load(folder).tier == "neural"
    _rewrite_yaml(folder, lambda m: m["files"]["neural/losses.png"].update(path="../../losses.png"))
    with pytest.raises(ProfileError, match="points outside its folder"):      # still inside it
        load(folder)


def test_a_missing_file_says_what_to_do(small_profile, tmp_path):
    folder = _saved(small_profile, tmp_path)
    _with_neural_files(folder)
    (folder / "neural" / "train_state.safetensors").unlink()
    with pytest.raises(ProfileError) as e:
        load(folder)
    assert str(e.value) == ("profile 'tiny' is missing neural/train_state.safetensors; train it again with: "
                            "python run.py train --profile tiny --video CLIP.mp4 --restart")
    (folder / ARRAYS_FILE).unlink()
    with pytest.raises(ProfileError) as e:
        fmt.check_files(folder)
    assert str(e.value) == "profile 'tiny' is missing arrays.npz; enroll the profile again"


def test_forget_broken_neural_leaves_what_checks_and_the_tier_it_can_run(tmp_path):
    """What `train --restart` does first (tests/test_run_hostile.py)."""
    from tests.hostile import atlas_arrays

    folder = save(Profile(name="vid", kind="video", source="clip.avi", tier="atlas", crop_size=16,
                          arrays={**small_arrays(), **atlas_arrays()}), tmp_path / "vid")
    _with_neural_files(folder)
    assert fmt.forget_broken_neural(folder) == [] and load(folder).tier == "neural"
    (folder / "neural" / "generator.safetensors").write_bytes(b"changed")
    assert fmt.forget_broken_neural(folder) == ["neural/generator.safetensors"]
    profile = load(folder)
    assert profile.tier == "atlas" and sorted(profile.files) == [
        ARRAYS_FILE, "neural/losses.png", "neural/samples.png", "neural/train_state.safetensors"]


def test_a_listed_file_is_checked_where_the_engine_reads_it(small_profile, tmp_path):
    """Before (YAML audit): `neural/generator.safetensors: {path: neural/g2.safetensors, sha256:
    <g2's>}` checked g2, and the neural tier loaded neural/generator.safetensors unchecked."""
    folder = _saved(small_profile, tmp_path)
    _with_neural_files(folder)
    os.replace(folder / "neural" / "generator.safetensors", folder / "neural" / "g2.safetensors")
    (folder / "neural" / "generator.safetensors").write_bytes(b"anything at all")
    _rewrite_yaml(folder, lambda m: m["files"]["neural/generator.safetensors"].update(path="neural/g2.safetensors"))
    with pytest.raises(ProfileError) as e:
        load(folder)
    assert str(e.value).endswith(": files entry 'neural/generator.safetensors' has path 'neural/g2.safetensors': a "
                                 "listed file's path is its name; set 'path: neural/generator.safetensors' there, "
                                 "or enroll the profile again")


# ------------------------------------------------------------- profile.yaml edited by hand (audit)
def _edit_text(folder: Path, old: str, new: str) -> Path:
    """profile.yaml with `old` replaced by `new` in its text, as an editor leaves it."""
    yml = folder / YAML_FILE
    text = yml.read_text()
    assert old in text, text
    yml.write_text(text.replace(old, new, 1))
    return yml


@pytest.mark.parametrize("old, new, said", [
    ("format: 1\n", "", " has no format: line (deleted?); put 'format: 1' back as its first line, or enroll the "
                        "profile again"),
    ("format: 1\n", "format:\n", " has no format: line (deleted?); put 'format: 1' back"),
    ("format: 1\n", "format: 2\n", ": unsupported profile format '2' (this engine reads format 1); a newer version "
                                   "of puppeteer wrote it: update this one, or enroll the profile again"),
    ("format: 1\n", "format: one\n", ": unsupported profile format 'one' (this engine reads format 1); put "
                                     "'format: 1' back, or enroll the profile again"),
])
def test_a_deleted_or_edited_format_line_says_what_to_do(small_profile, tmp_path, old, new, said):
    """Before (YAML audit): a deleted `format:` line said "unsupported profile format 'None'"."""
    folder = _saved(small_profile, tmp_path)
    yml = _edit_text(folder, old, new)
    with pytest.raises(ProfileError) as e:
        load(folder)
    assert str(e.value).startswith(f"{yml}{said}"), str(e.value)


def test_a_deleted_files_section_says_what_is_missing_and_what_to_do(small_profile, tmp_path):
    """Before (YAML audit): "profile.yaml lists no arrays.npz", without a remedy."""
    folder = _saved(small_profile, tmp_path)
    yml = folder / YAML_FILE
    digest = _sha(folder / ARRAYS_FILE)
    _rewrite_yaml(folder, lambda m: m.pop("files"))
    with pytest.raises(ProfileError) as e:
        load(folder)
    assert str(e.value) == (f"{yml} has no files: section (deleted?); put it back as enroll wrote it (files: "
                            f"{{arrays.npz: {{path: arrays.npz, sha256: HASH}}}}, HASH as `sha256sum arrays.npz` "
                            f"prints it), or enroll the profile again")
    _rewrite_yaml(folder, lambda m: m.update(files={"arrays.np": {"path": "arrays.np", "sha256": digest}}))
    with pytest.raises(ProfileError) as e:
        load(folder)
    assert str(e.value).startswith(f"{yml}: files does not list arrays.npz; put it back as enroll wrote it "
                                   f"(arrays.npz: {{path: arrays.npz, sha256: HASH}}, HASH as")
    _rewrite_yaml(folder, lambda m: m.update(files={ARRAYS_FILE: {"path": ARRAYS_FILE, "sha256": digest}}))
    assert load(folder).files[ARRAYS_FILE]["sha256"] == digest        # the remedy, as said


def _video_profile(tmp_path) -> Path:
    from tests.hostile import atlas_arrays

    return save(Profile(name="vid", kind="video", source="clip.avi", tier="atlas", crop_size=16,
                        arrays={**small_arrays(), **atlas_arrays()}, settings={"atlas": {"fps": 30.0}}),
                tmp_path / "vid")


def test_kind_that_contradicts_the_arrays_is_refused(small_profile, tmp_path):
    """Before (YAML audit): `kind: video` in a photo's profile (or `image` in a video's) was taken
    without a word, and changed nothing (the engine goes by the atlas arrays)."""
    photo, video = _saved(small_profile, tmp_path), _video_profile(tmp_path)
    yml = _edit_text(photo, "kind: image", "kind: video")
    with pytest.raises(ProfileError) as e:
        load(photo)
    assert str(e.value) == (f"{yml}: kind is 'video', but the profile has no atlas: it was enrolled from a photo, "
                            f"as kind records, and editing kind changes nothing; set 'kind: image' back (a video "
                            f"profile is made with: python run.py enroll CLIP.mp4 --name NAME)")
    yml = _edit_text(video, "kind: video", "kind: image")
    with pytest.raises(ProfileError) as e:
        load(video)
    assert str(e.value) == (f"{yml}: kind is 'image', but the profile holds an atlas: it was enrolled from a "
                            f"video, as kind records, and editing kind changes nothing; set 'kind: video' back")
    for folder, kind in ((photo, "image"), (video, "video")):     # a deleted kind: the arrays say
        _rewrite_yaml(folder, lambda m: m.pop("kind"))
        assert load(folder).kind == kind
        _rewrite_yaml(folder, lambda m: m.update(kind=None))      # a bare `kind:` (review): the same
        assert load(folder).kind == kind


def test_settings_atlas_in_a_photos_profile_is_refused(small_profile, tmp_path):
    """Before (YAML audit): a photo's profile took a `settings.atlas` (a video enrollment's record:
    enroll's summary reads its frame counts) without a word."""
    folder = _saved(small_profile, tmp_path)
    _rewrite_yaml(folder, lambda m: m["settings"].update(atlas={"frames": 3, "usable_frames": 3}))
    with pytest.raises(ProfileError) as e:
        load(folder)
    assert str(e.value) == (f"{folder / YAML_FILE}: settings.atlas is the record of a video's enrollment, and this "
                            f"profile has no atlas (it was enrolled from a photo): nothing reads it; delete it")
    assert load(_video_profile(tmp_path)).settings["atlas"] == {"fps": 30.0}


@pytest.mark.parametrize("empty", ["settings", "files"])
def test_attach_files_takes_a_null_settings_or_files(small_profile, tmp_path, empty):
    """Before (YAML audit): `settings:` alone (null) made attach_files raise AttributeError."""
    folder = _saved(small_profile, tmp_path)
    digest = _sha(folder / ARRAYS_FILE)
    _rewrite_yaml(folder, lambda m: m.update({empty: None}))
    fmt.attach_files(folder, [ARRAYS_FILE] if empty == "files" else [], settings={"gains": {"mouth": 1.1}})
    profile = load(folder)
    assert profile.settings["gains"] == {"mouth": 1.1}     # a section is replaced whole, as before
    assert profile.files[ARRAYS_FILE]["sha256"] == digest
