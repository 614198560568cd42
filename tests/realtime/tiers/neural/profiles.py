"""A saved image profile with a (tiny, untrained) generator attached, as `run.py train` leaves
it: what the neural tier and the TensorRT export read."""
from __future__ import annotations

from pathlib import Path


def profile_with_generator(folder: Path, profile, seed: int = 0, resolution: int = 32):
    """Save `profile` into `folder` with neural/generator.safetensors listed in its YAML;
    returns the loaded profile."""
    import torch

    from profiles.format import attach_files, load, save
    from realtime.core.profile import GENERATOR_FILE, NEURAL_DIR
    from realtime.tiers.neural.checkpoint import save_checkpoint
    from realtime.tiers.neural.model import NeuralGenerator
    from tests.realtime.tiers.neural import tiny_config

    if not (folder / "profile.yaml").exists():
        save(profile, folder)
    torch.manual_seed(seed)
    g = NeuralGenerator(tiny_config(resolution=resolution)).eval()
    save_checkpoint(folder / NEURAL_DIR / GENERATOR_FILE, {"G": g}, save_rng=False)
    attach_files(folder, [f"{NEURAL_DIR}/{GENERATOR_FILE}"], tier="neural")
    return load(folder)
