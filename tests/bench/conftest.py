"""Fixtures of the bench tests: the astronaut's profile saved as `astro`, a short driver clip,
and `run_bench`, which runs `run.py bench ARGS` through `bench.cli.main`."""
from __future__ import annotations

import pytest

from bench import cli
from profiles.enroll import build_profile
from profiles.format import save
from tests.bench.helpers import moving_clip, parse


@pytest.fixture(scope="session")
def assets(tmp_path_factory, astronaut_rgb, astronaut_landmarks):
    """{"root", "profiles" (holding `astro`), "astro" (its folder), "clip" (40 frames, 30 fps),
    "image"}."""
    root = tmp_path_factory.mktemp("bench")
    prof = build_profile(astronaut_rgb, astronaut_landmarks, name="astro", source="astronaut.png")
    save(prof, root / "profiles" / "astro")
    clip = moving_clip(root / "driver.avi", astronaut_rgb, 40)
    return {"root": root, "profiles": root / "profiles", "astro": root / "profiles" / "astro",
            "clip": clip, "image": astronaut_rgb}


@pytest.fixture
def run_bench(capsys):
    """run_bench(*argv) -> (exit code, stdout, stderr) of `run.py bench *argv`."""
    def call(*argv):
        rc = cli.main(parse(*argv))
        out, err = capsys.readouterr()
        return rc, out, err
    return call

