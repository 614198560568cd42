"""What realtime.core.profile tells the user about a profile."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from realtime.core.profile import how_to_train


@pytest.mark.parametrize("has_atlas", [True, False])
def test_how_to_train_says_what_this_profile_needs(has_atlas):
    """Before the fix: the hint named `run.py train --profile P` (no --video, which train requires)
    also for a photo profile, which train refuses."""
    profile = SimpleNamespace(name="Ann B", folder=Path("/p/ann"), has_atlas=has_atlas)
    hint = how_to_train(profile)
    if has_atlas:
        assert "python run.py train --profile ann --video CLIP.mp4" in hint
    else:
        assert "enrolled from a photo" in hint and "run.py enroll CLIP.mp4" in hint
        assert "--profile" not in hint
