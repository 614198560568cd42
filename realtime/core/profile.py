"""What the engine needs of an avatar profile, and where a profile's files live.

The engine never imports `profiles` (that package reads, verifies and writes profile folders,
and enrollment uses the engine's face and mesh helpers, so the dependency runs from `profiles`
down to `realtime`). It takes any object of the shape `ProfileLike`; `profiles.format.Profile`
is the one that ships.

The file layout of a profile folder is named here, once; `profiles.format`, the neural tier
and the trainer all use these names:

    profile.yaml                     settings and the sha256 of every listed file
    arrays.npz                       the cached arrays
    neural/generator.safetensors     the trained generator (what the neural tier loads)
    neural/train_state.safetensors   the trainer's resumable state
    neural/engine-<precision>.plan   a TensorRT engine (a cache, not listed), + .json manifest
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["ProfileLike", "YAML_FILE", "ARRAYS_FILE", "NEURAL_DIR", "GENERATOR_FILE", "how_to_train",
           "STATE_FILE", "GENERATOR_PATH", "engine_paths"]

YAML_FILE = "profile.yaml"
ARRAYS_FILE = "arrays.npz"
NEURAL_DIR = "neural"
GENERATOR_FILE = "generator.safetensors"
STATE_FILE = "train_state.safetensors"
GENERATOR_PATH = f"{NEURAL_DIR}/{GENERATOR_FILE}"   # relative to the profile folder


def engine_paths(precision: str) -> tuple[str, str]:
    """(plan, manifest) of the TensorRT engine for `precision`, relative to the profile folder."""
    return f"{NEURAL_DIR}/engine-{precision}.plan", f"{NEURAL_DIR}/engine-{precision}.json"


@runtime_checkable
class ProfileLike(Protocol):
    """An avatar profile as the engine reads it.

    Arrays by name (``profile["image"]``, ``profile["neutral"]``, ...: see
    `profiles.format.REQUIRED_ARRAYS`); `tier` the profile's default tier; `files` the files it
    lists (relative path -> {path, sha256}); `path(rel)` where `rel` lies inside the profile's
    folder (ProfileError when the profile has no folder or `rel` would leave it).
    """

    name: str
    tier: str
    crop_size: int
    settings: dict
    files: dict

    @property
    def has_atlas(self) -> bool: ...

    def __getitem__(self, key: str) -> np.ndarray: ...

    def frame(self) -> Any:
        """The target's face frame (`realtime.face.geometry.Similarity`)."""

    def path(self, rel: str) -> Path: ...


def cli_name(profile: ProfileLike) -> str:
    """What to pass to ``--profile`` for `profile`: its folder's name (the YAML name may differ)."""
    folder = getattr(profile, "folder", None)
    return folder.name if folder is not None else profile.name


def how_to_train(profile: ProfileLike) -> str:
    """What the user does to give `profile` a trained generator (the neural tier): train it on
    its clip, or, for a profile enrolled from a photo (no atlas), enroll a video first."""
    if not getattr(profile, "has_atlas", False):
        return (f"profile {profile.name!r} was enrolled from a photo, and the neural tier trains on a "
                f"video of the target (python run.py enroll CLIP.mp4 --name NAME, then run.py train)")
    return (f"run python run.py train --profile {cli_name(profile)} --video CLIP.mp4 (the clip it was "
            f"enrolled from) first")

