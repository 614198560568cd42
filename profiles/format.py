"""The profile format: human-editable YAML + one `.npz` of arrays, each file with a sha256.

    profiles/<name>/profile.yaml   settings (yaml.safe_load only), file list with sha256
    profiles/<name>/arrays.npz     cached arrays (np.load with allow_pickle=False)

Security: no pickle anywhere; every file a profile names must stay inside its folder; a file
whose hash does not match is refused. Saving is atomic: a profile is written to a hidden
temporary folder beside its destination and renamed into place, so a failed enrollment never
leaves a half-written profile.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml

FORMAT_VERSION = 1
ARRAYS_FILE = "arrays.npz"
YAML_FILE = "profile.yaml"
TIERS = ("warp", "atlas", "neural")

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


class ProfileError(Exception):
    """A profile that cannot be read, written or trusted. The message says which and why."""


def profiles_root() -> Path:
    """Where profiles live: $PUPPETEER_PROFILES, else the `profiles/` folder of the project."""
    env = os.environ.get("PUPPETEER_PROFILES")
    return Path(env) if env else Path(__file__).resolve().parent


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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

    def __post_init__(self):
        if self.tier not in TIERS:
            raise ProfileError(f"profile {self.name!r}: tier {self.tier!r} is not one of {TIERS}")
        missing = sorted(set(REQUIRED_ARRAYS) - set(self.arrays))
        if missing:
            raise ProfileError(f"profile {self.name!r} lacks arrays {missing}")
        for key, (kind, ndim) in REQUIRED_ARRAYS.items():
            a = self.arrays[key]
            if a.dtype.kind != kind or a.ndim != ndim:
                raise ProfileError(f"profile {self.name!r}: array {key!r} has dtype {a.dtype} and "
                                   f"{a.ndim} dims, expected kind {kind!r} and {ndim} dims")

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def frame(self):
        """The target's face frame as a Similarity."""
        from realtime.geometry import Similarity

        return Similarity(self.arrays["frame_rotation"].astype(np.float64),
                          float(self.arrays["frame_scale"]),
                          self.arrays["frame_translation"].astype(np.float64))

    def to_yaml(self, digests: dict[str, str]) -> dict:
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
        }


def resolve(name_or_path: str | os.PathLike, root: Path | None = None) -> Path:
    """A profile folder from a name (under the profiles root) or a path to a folder/YAML."""
    p = Path(name_or_path)
    if p.name == YAML_FILE:
        p = p.parent
    if p.is_dir():
        return p
    named = (root or profiles_root()) / str(name_or_path)
    if named.is_dir():
        return named
    raise ProfileError(f"no profile {str(name_or_path)!r}: not a folder, and nothing at {named} "
                       f"(make one with: python run.py enroll IMAGE --name {p.name})")


def _inside(folder: Path, rel: str) -> Path:
    path = (folder / rel).resolve()
    if folder.resolve() not in path.parents:
        raise ProfileError(f"profile file {rel!r} points outside its folder {folder}")
    return path


def load(name_or_path: str | os.PathLike, root: Path | None = None) -> Profile:
    """Read and verify a profile (hashes, array shapes). Raises ProfileError."""
    folder = resolve(name_or_path, root)
    yml = folder / YAML_FILE
    if not yml.is_file():
        raise ProfileError(f"{folder} has no {YAML_FILE}; is it a profile folder?")
    try:
        meta = yaml.safe_load(yml.read_text())
    except yaml.YAMLError as e:
        raise ProfileError(f"{yml} is not valid YAML: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise ProfileError(f"{yml}: unsupported profile format {meta.get('format') if isinstance(meta, dict) else meta!r}"
                           f" (this engine reads format {FORMAT_VERSION})")
    files = meta.get("files") or {}
    if ARRAYS_FILE not in files:
        raise ProfileError(f"{yml} lists no {ARRAYS_FILE}")
    for entry in files.values():
        path = _inside(folder, str(entry["path"]))
        if not path.is_file():
            raise ProfileError(f"profile {folder.name!r} is missing {entry['path']}")
        if _sha256(path) != entry.get("sha256"):
            raise ProfileError(f"{path} does not match the sha256 in {yml}: the file changed or is "
                               f"corrupt; enroll the profile again")
    with np.load(_inside(folder, files[ARRAYS_FILE]["path"]), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return Profile(name=str(meta.get("name", folder.name)), kind=str(meta.get("kind", "image")),
                   source=str(meta.get("source", "")), arrays=arrays,
                   tier=str(meta.get("tier", "warp")), crop_size=int(meta.get("crop_size", 256)),
                   settings=dict(meta.get("settings") or {}), created=str(meta.get("created", "")),
                   folder=folder)


def save(profile: Profile, folder: Path, overwrite: bool = False) -> Path:
    """Write `profile` to `folder` atomically. Refuses to replace a folder unless `overwrite`."""
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise ProfileError(f"{folder} already exists (pass --force to replace it)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        np.savez(tmp / ARRAYS_FILE, **profile.arrays)
        digests = {ARRAYS_FILE: _sha256(tmp / ARRAYS_FILE)}
        with open(tmp / YAML_FILE, "w") as f:
            yaml.safe_dump(profile.to_yaml(digests), f, sort_keys=False)
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    profile.folder = folder
    return folder
