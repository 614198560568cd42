"""The tiers: the one list of tier names, and the generate stage that runs one of them.

A tier turns the frame's G-buffer (the posed avatar mesh, rasterised) into the face crop:

    warp     one photo on the mesh, synthetic mouth cavity          (`realtime.tiers.warp`)
    atlas    keyframe views of a video blended by pose/expression   (`realtime.tiers.atlas`)
    neural   a trained generator correcting the atlas/warp render   (`realtime.tiers.neural`)

This is the only module that imports the tiers. Each tier's module is imported when that tier
is built, not when this one is: the CLI lists the names without loading numba or torch. The
neural tier does not pick its own base render: it gets it from here (the atlas for a video
profile, the warp tier for a photo).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from realtime.core.frame import Frame
from realtime.core.profile import ProfileLike

__all__ = ["TIER_NAMES", "make_generator", "GenerateStage"]


def _warp(profile: ProfileLike, rig, ctx=None, eyeballs: bool = True, folds: bool = True, **_: Any):
    from realtime.tiers.warp import WarpGenerator  # noqa: PLC0415 - a tier is imported when it is built (keeps the CLI light)

    return WarpGenerator(profile, rig, ctx, eyeballs=eyeballs, folds=folds)


def _atlas(profile: ProfileLike, rig, ctx=None, **_: Any):
    from realtime.tiers.atlas.generator import AtlasGenerator  # noqa: PLC0415 - a tier is imported when it is built (keeps the CLI light)

    return AtlasGenerator(profile, rig)


def _neural(profile: ProfileLike, rig, ctx=None, folds: bool = True, **options: Any):
    from realtime.tiers.neural.generator import NeuralTierGenerator  # noqa: PLC0415 - a tier is imported when it is built (keeps the CLI light)

    # A warp base draws no smile folds whatever `folds` says: the generator corrects the render
    # it was trained on, and those had none (realtime.tiers.folds came later).
    base = _atlas(profile, rig) if profile.has_atlas else _warp(profile, rig, ctx, folds=False)
    return NeuralTierGenerator(profile, rig, base, ctx, **options)


_FACTORIES: dict[str, Callable[..., Any]] = {"warp": _warp, "atlas": _atlas, "neural": _neural}
TIER_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def make_generator(tier: str, profile: ProfileLike, rig, ctx=None, **options: Any):
    """The generator of `tier` on the device context `ctx` (default: the CPU). `options` are
    the tier's own (the neural tier: backend, cuda_graphs; the warp tier: eyeballs=False leaves
    the eye openings as the photo's, for a caller that shows something else there: the swap;
    folds=False draws no smile folds, `realtime.tiers.folds`, for a caller whose lighting is
    the driver's own: the swap);
    tiers ignore what they do not use."""
    try:
        factory = _FACTORIES[tier]
    except KeyError:
        raise ValueError(f"tier {tier!r} is not available; choose one of {list(TIER_NAMES)}") from None
    return factory(profile, rig, ctx, **options)


class GenerateStage:
    """The loop's generate stage: ``frame.render = generator(frame)``."""

    name = "generate"

    def __init__(self, generator):
        self.generator = generator

    @property
    def device_ready(self) -> bool:
        """True when the generator takes the frame's arrays on the engine's device."""
        return bool(getattr(self.generator, "device_ready", False))

    def __call__(self, frame: Frame) -> None:
        frame.render = self.generator(frame)
