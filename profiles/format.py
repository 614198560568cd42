"""The profile format: human-editable YAML + one `.npz` of arrays, each file with a sha256.

    profiles/<name>/profile.yaml   settings (yaml.safe_load only), file list with sha256
    profiles/<name>/arrays.npz     cached arrays (np.load with allow_pickle=False)

Security: no pickle anywhere; every file a profile names must stay inside its folder; a file
whose hash does not match is refused. Saving is atomic: a profile is written to a hidden
temporary folder beside its destination and renamed into place, so a failed enrollment never
leaves a half-written profile.
"""
from __future__ import annotations

import difflib
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml

from profiles import schema, store
from profiles.consent import check_record, rebind
from profiles.schema import profiles_root
from realtime.core import paths
from realtime.core.errors import ProfileError
from realtime.core.paths import sha256_file
from realtime.core.profile import ARRAYS_FILE, GENERATOR_PATH, NEURAL_DIR, YAML_FILE
from realtime.face.geometry import Similarity
from realtime.tiers.registry import TIER_NAMES as TIERS

FORMAT_VERSION = 1

# name -> (dtype kind, ndim): what every profile must hold.
REQUIRED_ARRAYS = {
    "image": ("u", 3),              # (H, W, 3) uint8 RGB, the target frame (background included)
    "landmarks": ("f", 2),          # (478, 3) target landmarks in image pixels
    "neutral": ("f", 2),            # (478, 3) canonical neutral shape
    "frame_rotation": ("f", 2),     # (3, 3) face frame of the target
    "frame_scale": ("f", 0),
    "frame_translation": ("f", 1),  # (3,)
    "crop_from_image": ("f", 2),    # (2, 3) affine image px -> crop px
    "head_points": ("f", 2),        # (K, 3) head-layer rings, canonical
    "head_gains": ("f", 1),         # (K,)
    "head_border": ("f", 2),        # (B, 2) fixed crop-border points, image px
    "head_triangles": ("i", 2),     # (M, 3) int32
    "paste_mask": ("f", 2),         # (S, S) float32 soft mask for paste-back
    "face_mask": ("u", 2),          # (S, S) uint8 1 where the neutral face covers the crop
}

# name -> (dtype kind, ndim): arrays a profile may hold, validated the same way when present.
# The appearance atlas of a video profile (tier "atlas", realtime/atlas.py); N keyframes, each
# its own square face crop of side A; d = the query dimensions the triangulation uses.
OPTIONAL_ARRAYS = {
    "atlas_images": ("u", 4),       # (N, A, A, 3) uint8 RGB keyframe face crops
    "atlas_landmarks": ("f", 3),    # (N, 478, 3) keyframe landmarks in their crop's pixels
    "atlas_query": ("f", 2),        # (N, 4) (yaw/30°, pitch/20°, mouth/iod/0.3, eyes/iod/0.1)
    "atlas_dims": ("i", 1),         # (d,) which query dimensions are triangulated
    "atlas_simplices": ("i", 2),    # (M, d+1) Delaunay simplices over atlas_query[:, dims]
    "atlas_flipped": ("u", 1),      # (N,) 1 for a mirrored copy of another keyframe
    "atlas_frames": ("i", 1),       # (N,) source frame index of each keyframe
}
ATLAS_ARRAYS = ("atlas_images", "atlas_landmarks", "atlas_query", "atlas_dims",
                "atlas_simplices", "atlas_flipped")


@dataclass
class Profile:
    name: str
    kind: str                      # "image" or "video"
    source: str                    # file name the profile was made from (no directories)
    arrays: dict[str, np.ndarray]
    tier: str = "warp"
    crop_size: int = 256
    settings: dict = field(default_factory=dict)
    created: str = ""
    folder: Path | None = None
    files: dict = field(default_factory=dict)  # YAML "files": name -> {path, sha256}
    consent: dict | None = None    # YAML "consent": who agreed, how, when (profiles/consent.py)

    def __repr__(self) -> str:
        # the dataclass's own repr printed every array's contents (a photo's: thousands of lines,
        # in each error or log line that names a profile, or a SwapPhotoProfile wrapping one)
        arrays = ", ".join(f"{k}: {v.dtype}{list(v.shape)}" for k, v in self.arrays.items())
        return (f"Profile(name={self.name!r}, kind={self.kind!r}, source={self.source!r}, tier={self.tier!r}, "
                f"crop_size={self.crop_size}, folder={self.folder!r}, arrays={{{arrays}}})")

    def __post_init__(self):
        if self.tier not in TIERS:
            raise ProfileError(f"profile {self.name!r}: tier {self.tier!r} is not one of {TIERS}")
        missing = sorted(set(REQUIRED_ARRAYS) - set(self.arrays))
        if missing:
            raise ProfileError(f"profile {self.name!r} lacks arrays {missing}; enroll the profile again")
        optional = {k: v for k, v in OPTIONAL_ARRAYS.items() if k in self.arrays}
        for key, (kind, ndim) in {**REQUIRED_ARRAYS, **optional}.items():
            a = self.arrays[key]
            if a.dtype.kind != kind or a.ndim != ndim:
                raise ProfileError(f"profile {self.name!r}: array {key!r} has dtype {a.dtype} and "
                                   f"{a.ndim} dims, expected kind {kind!r} and {ndim} dims")
        if self.tier == "atlas" and not self.has_atlas:
            missing = [k for k in ATLAS_ARRAYS if k not in self.arrays]
            raise ProfileError(f"profile {self.name!r}: tier 'atlas' needs an appearance atlas, which only "
                               f"a profile enrolled from a video has (it lacks {', '.join(missing)}): set "
                               f"'tier: warp' in its profile.yaml, or enroll a video of the target")

    @property
    def has_atlas(self) -> bool:
        """True when the profile holds an appearance atlas (a video profile)."""
        return all(k in self.arrays for k in ATLAS_ARRAYS)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def frame(self):
        """The target's face frame as a Similarity."""
        return Similarity(self.arrays["frame_rotation"].astype(np.float64),
                          float(self.arrays["frame_scale"]),
                          self.arrays["frame_translation"].astype(np.float64))

    def path(self, rel: str) -> Path:
        """The path of `rel` inside the profile's folder (ProfileError when the profile is not
        saved in a folder or `rel` would leave it). Listed files are verified by `load`."""
        if self.folder is None:
            raise ProfileError(f"profile {self.name!r} is not saved in a folder")
        return store.inside(self.folder, rel)

    def to_yaml(self, digests: dict[str, str]) -> dict:
        """The YAML of this profile whose files have these digests; a consent record (verified
        when this profile was loaded) is bound to the new arrays digest."""
        consent = {} if not self.consent else {"consent": rebind(self.consent, digests[ARRAYS_FILE])}
        return {
            "format": FORMAT_VERSION,
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "created": self.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tier": self.tier,
            "crop_size": int(self.crop_size),
            "settings": dict(self.settings),
            "files": {k: {"path": k, "sha256": v} for k, v in digests.items()},
            **consent,
        }


def profile_files(name_or_path: str | os.PathLike | None) -> list[Path]:
    """Every file under the folder of the profile `name_or_path` names (none when it names none,
    or one `resolve` refuses: loading it will say why): what a command's outputs must not replace."""
    if not name_or_path:
        return []
    try:
        folder = resolve(name_or_path)
    except ProfileError:
        return []
    return sorted(f for f in folder.rglob("*") if f.is_file())


def resolve(name_or_path: str | os.PathLike, root: Path | None = None) -> Path:
    """A profile folder from a name (under the profiles root) or a path to a folder/YAML. A bare
    name that is a profile under the root is that profile, even where the current directory has
    a folder of that name."""
    p = Path(name_or_path)
    if p.name == YAML_FILE:
        p = p.parent
    named = (root or profiles_root()) / str(name_or_path)
    # A bare name is the profile of that name first: a folder `anna/` of photos in the current
    # directory must not hide profile `anna` (write `./anna` for the folder).
    if p.name == str(name_or_path) and p.name not in ("", ".", "..") and paths.is_file(named / YAML_FILE):
        return named
    if paths.is_dir(p):
        return p
    if paths.is_dir(named):
        return named
    if paths.is_dir(store.backup_path(named)):
        raise ProfileError(f"profile {str(name_or_path)!r} was being replaced when its enroll was "
                           f"interrupted: run the enroll again (it restores the previous copy first)")
    text = str(name_or_path)
    if "," in text:
        raise ProfileError(f"no profile {text!r}: a list of profiles is for bench --streams N")
    if paths.exists(p):           # a file inside a profile (arrays.npz, neural/generator...)
        _refuse_inside_a_profile(p)
    near = None if paths.is_file(p) else _near_profile(text, root or profiles_root())
    if near is not None:
        raise ProfileError(f"no profile {text!r} (did you mean {near!r}?)")
    # a name enroll takes (no dots: `--profile s1.jpg` suggests s1), from the file itself if it is one
    is_file = paths.is_file(p)
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", p.stem if is_file else p.name).lstrip("-_")[:40] or "NAME"
    if is_file:
        raise ProfileError(f"{text!r} is a file, not a profile (make one from it with: python run.py "
                           f"enroll {shlex.quote(text)} --name {name})")
    base = root or profiles_root()
    if not paths.is_dir(base):    # a mistyped PUPPETEER_PROFILES: "enroll one" alone would mislead
        via = " (PUPPETEER_PROFILES)" if root is None and os.environ.get("PUPPETEER_PROFILES") else ""
        raise ProfileError(f"no profile {text!r}: not a folder, and the profiles folder {base}{via} "
                           f"{'is not a folder' if paths.exists(base) else 'does not exist'}: check that "
                           f"path, or make one with: python run.py enroll IMAGE --name {name}")
    raise ProfileError(f"no profile {text!r}: not a folder, and nothing at {named} (make one with: "
                       f"python run.py enroll IMAGE --name {name})")


def _refuse_inside_a_profile(path: Path) -> None:
    """ProfileError naming the profile folder that holds `path`, where one does (a profile's own
    file or folder given as the profile); nothing otherwise."""
    owner = next((d for d in path.parents if paths.is_file(d / YAML_FILE)), None)
    if owner is not None:
        raise ProfileError(f"{str(path)!r} is inside the profile in {str(owner)!r}: pass that folder "
                           f"(or its name) as the profile")


def _near_profile(name: str, root: Path) -> str | None:
    """The profile under `root` whose name `name` nearly is (another case, a letter off), or None."""
    if os.sep in name or "/" in name or not paths.is_dir(root):
        return None
    try:
        names = [d.name for d in root.iterdir() if (d / YAML_FILE).is_file()]
    except OSError:
        return None
    same_case = [n for n in names if n.lower() == name.lower()]
    if same_case:
        return same_case[0]
    near = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
    return near[0] if near else None


def _check_files(folder: Path, yml: Path, files: dict) -> None:
    """ProfileError unless every listed file is in the folder and has its sha256. The training's
    plots (neural/*.png, for the user to look at) are never read: one deleted or edited is left
    out (it made the whole profile refuse to load); their paths still stay inside the folder."""
    for key, entry in files.items():
        rel = str(entry["path"])
        path = store.inside(folder, rel)
        if rel != key:     # the engine opens a file by its name (neural/generator.safetensors):
            raise ProfileError(  # a `path:` elsewhere had that other file's sha256 checked instead
                f"{yml}: files entry {schema.printable(str(key), 60)!r} has path "
                f"{schema.printable(rel, 60)!r}: a listed file's path is its name; set 'path: "
                f"{schema.printable(str(key), 60)}' there, or enroll the profile again")
        neural = rel.startswith(f"{NEURAL_DIR}/")
        if neural and path.suffix.lower() == ".png":
            continue
        redo = (f"train it again with: python run.py train --profile {shlex.quote(folder.name)} --video "
                f"CLIP.mp4 --restart" if neural else "enroll the profile again")
        if not path.is_file():
            raise ProfileError(f"profile {folder.name!r} is missing {rel}; {redo}")
        if (too_big := schema.listed_size_problem(path)) is not None:
            raise ProfileError(f"{path} {too_big}: not the file {yml} lists; {redo}")
        # the arrays' sha256 is what the consent record and the provenance mark's fingerprint are
        # bound to: only the listed one (a `previous_sha256` there passed another face's arrays
        # under this profile's consent record and fingerprint; only neural/ files are committed so)
        accepted = {entry["sha256"]} if key == ARRAYS_FILE else schema.accepted_digests(entry)
        if sha256_file(path) not in accepted:
            raise ProfileError(f"{path} does not match the sha256 in {yml}: the file changed or is "
                               f"corrupt; {redo}")


def _yaml_inside(folder: Path, yml: Path) -> None:
    """ProfileError when `yml` (the folder's profile.yaml, a regular file) is a symbolic link
    whose target lies outside `folder`: like every file a profile names, its YAML stays inside
    it (a link to another profile's profile.yaml loaded that profile's settings under this name,
    and a link to /etc/passwd was read)."""
    if not os.path.islink(yml):
        return
    try:
        target = yml.resolve()
        inside = folder.resolve() in target.parents
    except (OSError, RuntimeError):     # a loop of links
        target, inside = yml, False
    if not inside:
        raise ProfileError(f"{yml} is a symbolic link to {schema.printable(str(target), 120)}, outside the "
                           f"profile's folder: a profile's files stay inside it (copy that file in "
                           f"place of the link, or enroll the profile again)")


def check_files(folder: str | os.PathLike) -> None:
    """The checks of `load` on the files profile.yaml lists (inside the folder, each with its
    sha256), without the rest: for a profile whose consent record does not check (`load`
    stops there first) before `run.py consent` rewrites the record. ProfileError."""
    folder = Path(folder)
    yml = folder / YAML_FILE
    if (why := paths.not_a_file(yml)) is not None:   # a pipe there would hang the read
        raise ProfileError(f"{yml} {why}; enroll the profile again")
    _yaml_inside(folder, yml)
    meta = schema.read_yaml(yml)
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict) or not all(isinstance(e, dict) and "path" in e and "sha256" in e
                                              for e in files.values()):
        raise ProfileError(f"{yml}: its files list is not readable; enroll the profile again")
    _check_files(folder, yml, files)


def forget_broken_neural(folder: str | os.PathLike) -> list[str]:
    """For `train --restart` (which trains neural/ afresh): the neural/ files profile.yaml lists
    that are missing or do not match their sha256 are taken off its list (a `neural` tier whose
    generator goes becomes `atlas`), so that the profile loads again; returns their paths. Their
    errors said "train it again with --restart", and train refused the same profile the same way.
    Nothing changes where the YAML itself does not check (`load` then says why)."""
    folder = Path(folder)
    yml = folder / YAML_FILE
    if paths.not_a_file(yml) is not None:
        return []
    _yaml_inside(folder, yml)
    with store.yaml_lock(folder):     # `consent` may rewrite the YAML meanwhile
        return _forget_broken_neural(folder, yml)


def _forget_broken_neural(folder: Path, yml: Path) -> list[str]:
    meta = schema.read_yaml(yml)
    try:
        schema.check_meta(meta, str(yml))
    except ProfileError:
        return []
    files = meta.get("files") or {}
    broken = []
    for key, entry in files.items():
        if str(entry["path"]).startswith(f"{NEURAL_DIR}/"):
            try:
                _check_files(folder, yml, {key: entry})
            except ProfileError:
                broken.append(key)
    if broken:
        for key in broken:
            del files[key]
        if meta.get("tier") == "neural" and GENERATOR_PATH not in files:
            meta["tier"] = "atlas"
        try:
            store.write_yaml(yml, meta)
        except OSError as e:      # a read-only profile folder, a full disk: one line, nothing changed
            raise store.write_error(folder, e, f"make {folder} writable and try again",
                                    where=f"the profile folder {folder}") from None
    return broken


def load(name_or_path: str | os.PathLike, root: Path | None = None) -> Profile:
    """Read and verify a profile (hashes, array shapes). Raises ProfileError."""
    folder = resolve(name_or_path, root)
    yml = folder / YAML_FILE
    if (why := paths.not_a_file(yml)) is not None:   # a pipe there would hang the read
        if why == "does not exist":      # e.g. a profile's neural/ folder (`resolve` takes any folder)
            _refuse_inside_a_profile(folder)
        raise ProfileError(f"{folder} has no {YAML_FILE}; is it a profile folder?" if why == "does not exist"
                           else f"{yml} {why}; enroll the profile again")
    _yaml_inside(folder, yml)
    meta = schema.read_yaml(yml)           # bounded: size, UTF-8, aliases expanded, depth
    _check_format(meta.get("format"), yml)
    schema.check_meta(meta, str(yml))      # every field's type, range and length
    files = meta.get("files") or {}
    if ARRAYS_FILE not in files:           # a deleted `files:`, or its arrays.npz entry
        entry = f"{ARRAYS_FILE}: {{path: {ARRAYS_FILE}, sha256: HASH}}"
        raise ProfileError(
            (f"{yml} has no files: section (deleted?)" if not files else f"{yml}: files does not list {ARRAYS_FILE}")
            + f"; put it back as enroll wrote it ({'files: {' + entry + '}' if not files else entry}, HASH as "
              f"`sha256sum {ARRAYS_FILE}` prints it), or enroll the profile again")
    _check_files(folder, yml, files)
    arrays = schema.read_arrays(store.inside(folder, files[ARRAYS_FILE]["path"]), folder.name,
                                crop_size=int(meta.get("crop_size", 256)))
    name = str(meta.get("name", folder.name))
    consent = check_record(meta.get("consent"), files[ARRAYS_FILE].get("sha256"), yml)
    try:
        kind = meta.get("kind") or ("video" if all(k in arrays for k in ATLAS_ARRAYS) else "image")
        profile = Profile(name=name, kind=str(kind),
                          source=str(meta.get("source", "")), arrays=arrays,
                          tier=str(meta.get("tier", "warp")), crop_size=int(meta.get("crop_size", 256)),
                          settings=dict(meta.get("settings") or {}), created=str(meta.get("created", "")),
                          folder=folder, files=dict(files), consent=consent)
    except ProfileError as e:     # a copied or renamed folder: named as --profile names it
        if name == folder.name:
            raise
        raise ProfileError(str(e).replace(f"profile {name!r}", f"profile {folder.name!r}", 1)) from None
    schema.check_arrays(profile.arrays, profile.crop_size, profile.settings, f"profile {folder.name!r}")
    schema.check_enrolled_from(meta, profile.has_atlas, str(yml))
    return profile


def _check_format(value, yml: Path) -> None:
    """ProfileError unless `value` (profile.yaml's `format:`) is the one this engine reads."""
    if value is None:      # a deleted line (or `format:` alone)
        raise ProfileError(f"{yml} has no format: line (deleted?); put 'format: {FORMAT_VERSION}' back as its "
                           f"first line, or enroll the profile again")
    if type(value) is not int or value != FORMAT_VERSION:    # not `true`, not 1.0
        newer = type(value) is int and value > FORMAT_VERSION
        raise ProfileError(f"{yml}: unsupported profile format {schema.printable(str(value), 40)!r} (this engine "
                           f"reads format {FORMAT_VERSION}); "
                           + ("a newer version of puppeteer wrote it: update this one, or enroll the profile again"
                              if newer else f"put 'format: {FORMAT_VERSION}' back, or enroll the profile again"))


def problem(folder: str | os.PathLike) -> str | None:
    """None when `load` reads the profile in `folder`; else why it refuses it, in one short
    phrase: its error without the folder's path and without what to do (`run.py consent` lists
    profiles with it)."""
    try:
        profile = load(Path(folder))
    except ProfileError as exc:
        return str(exc).replace(f"{Path(folder)}{os.sep}", "").split("; ")[0]
    except OSError as exc:          # a file it cannot read (permissions): the others are listed
        return f"cannot read {Path(exc.filename or folder).name}: {exc.strerror or exc}"
    if profile.tier == "neural" and GENERATOR_PATH not in profile.files:   # `live` refuses it
        return (f"its tier is neural and it has no trained generator (it runs with --tier "
                f"{'atlas' if profile.has_atlas else 'warp'})")
    return None


def save(profile: Profile, folder: Path, overwrite: bool = False) -> Path:
    """Write `profile` to `folder` atomically. Refuses to replace a folder unless `overwrite`,
    and never replaces anything but a profile folder (one with a profile.yaml)."""
    folder = Path(folder)
    if store.occupied(folder) and not overwrite:
        raise ProfileError(f"{folder} already exists (pass --force to replace it)")
    if store.occupied(folder) and not store.is_profile(folder):
        raise ProfileError(f"{folder} exists and is not a profile (it has no {YAML_FILE}); "
                           f"it is not replaced: save the profile elsewhere")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = store.temp_dir(folder)
    try:
        paths.write_npz(tmp / ARRAYS_FILE, profile.arrays)
        digests = {ARRAYS_FILE: sha256_file(tmp / ARRAYS_FILE)}
        with open(tmp / YAML_FILE, "w") as f:
            yaml.safe_dump(profile.to_yaml(digests), f, sort_keys=False)
        store.replace_dir(tmp, folder)   # an atomic exchange, or a backup `enroll` restores
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    profile.folder = folder
    profile.files = {k: {"path": k, "sha256": v} for k, v in digests.items()}  # as load() gives
    return folder


def attach_files(folder: Path, rel_paths: list[str], tier: str | None = None,
                 settings: dict | None = None) -> None:
    """List files written into a profile folder (e.g. trained weights) in its YAML with their
    sha256, optionally switching its tier / merging settings. The YAML is replaced atomically."""
    folder = Path(folder)
    yml = folder / YAML_FILE
    meta = schema.read_yaml(yml)
    files = meta["files"] = meta.get("files") or {}     # `files:` or `settings:` alone is null
    for rel in rel_paths:
        path = store.inside(folder, rel)
        if not path.is_file():
            raise ProfileError(f"cannot attach {rel!r} to profile {folder.name!r}: no such file")
        files[rel] = {"path": rel, "sha256": sha256_file(path)}
    if tier is not None:
        if tier not in TIERS:
            raise ProfileError(f"tier {tier!r} is not one of {TIERS}")
        meta["tier"] = tier
    if settings:
        meta["settings"] = {**(meta.get("settings") or {}), **settings}
    store.write_yaml(yml, meta)
