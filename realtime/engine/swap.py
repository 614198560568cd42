"""The swap mode's stage list (`--mode swap`, DESIGN §5b), wired from the reenactment's stages where
they fit and the swap's own (`realtime.swap`):

    track (largest face) → estimate → [remix] → fuse (swap) → render → generate → smooth
        → attributes → glasses (off: --no-keep-glasses, or the hotkey g) → composite (swap)

render, generate and smooth are the reenactment's, on the profile's rig without its head layer
(only the face is replaced) and run only on frames with a face; without one the frame passes
through untouched. The tier is the profile's warp (or atlas) tier texturing the identity's face.

The openings (mouth and eyes): with the driver's own expression, the driver's own teeth, tongue,
eye whites and irises show inside the identity's lips and lids (`driver_openings`), and the tier
draws no mouth interior and no eyeballs. With the expression from another source
(`--expression-from`), the driver's openings are not the expression's (a shut mouth under an open
one, shut eyes under open ones): the tier draws the identity's own, as the reenactment does
(mouth cavity with the source's teeth, eyeballs looking where the source looks), and the
openings are blended like the rest of the face.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from realtime.core.errors import PuppeteerError
from realtime.face.estimate import EstimateStage, Estimator, EstimatorConfig
from realtime.image.render import RenderStage
from realtime.image.smooth import SmoothStage
from realtime.mesh import rig as rig_mod
from realtime.mesh.fuse import Recombiner
from realtime.swap.composite import AttributesStage, SwapCompositeStage, SwapFields
from realtime.swap.crop import face_rig, nominal_affine
from realtime.swap.fuse import SwapFuseStage, SwapLink, swap_fuse_config
from realtime.swap.glasses import GlassesStage
from realtime.swap.outline import OutlineWeights
from realtime.swap.photo import SwapPhotoProfile
from realtime.swap.skin import FRINGE_STRANDS
from realtime.swap.track import LargestFaceTrackStage
from realtime.tiers.registry import GenerateStage, make_generator

__all__ = ["SWAP_TIERS", "SWAP_ESTIMATOR", "SwapModeError", "WhenFace", "build_swap", "driver_openings",
           "swap_estimator_config"]

#: The tiers that can texture a swapped face (the neural tier is trained on the profile's own
#: framing and background).
SWAP_TIERS = ("warp", "atlas")
#: The swap's estimator, changed from the reenactment's: the face must sit on the driver's own head,
#: so the pose is not eased in when a face appears and the filters follow faster (measured on
#: s1 ← d10, 150 frames: mouth r 0.76 → 0.89, yaw r 0.89 → 0.91, the face region's own flow
#: warping error unchanged).
SWAP_ESTIMATOR = {"ease_s": 0.0, "pose_min_cutoff": 8.0, "expr_min_cutoff": 8.0}


class SwapModeError(PuppeteerError):
    """A swap-mode setting that cannot work (a tier it cannot use)."""


class WhenFace:
    """Runs `stage` only on frames where the swap found a face (`link.current`); when the face is
    lost the stage's memory (if any) is reset. Timings keep the stage's name."""

    device_ready = True

    def __init__(self, stage, link: SwapLink):
        self.stage, self.link = stage, link
        self.name = getattr(stage, "name", type(stage).__name__)
        self._had = False

    def __getattr__(self, item):   # reset(), generator, ... of the wrapped stage
        if item in ("stage", "link"):
            raise AttributeError(item)
        return getattr(self.stage, item)

    def __call__(self, frame) -> None:
        if self.link.current is None:
            if self._had:
                reset = getattr(self.stage, "reset", None)
                if callable(reset):
                    reset()
            self._had = False
            return
        self._had = True
        self.stage(frame)


def swap_estimator_config(config: EstimatorConfig) -> EstimatorConfig:
    """`config` with the swap's settings (`SWAP_ESTIMATOR`) where it has the defaults."""
    default = EstimatorConfig()
    changes: dict[str, Any] = {k: v for k, v in SWAP_ESTIMATOR.items()
                               if getattr(config, k) == getattr(default, k)}
    return dataclasses.replace(config, **changes)


def driver_openings(options) -> bool:
    """Whether the swap shows the driver's own mouth and eyes inside the identity's openings:
    when the expression is the driver's own (no `expression_from`; `pose_from` alone keeps it),
    the openings' shapes are the driver's. With another source's expression they are not, and
    the tier draws the identity's own (see the module docstring)."""
    return options.expression_from is None


def build_swap(engine, profile, tracker=None) -> list:
    """The swap stage list for `engine` (its options, device context, estimator and clock); sets
    ``engine.recombiner`` and ``engine.compositor`` (the gains hotkeys and the passthrough toggle
    act on them) and ``engine.rig``. The openings are the driver's own pixels or the tier's
    synthesised mouth and eyes, as `driver_openings(engine.options)` says."""
    options, ctx = engine.options, engine.device
    tier = options.tier or profile.tier
    if tier not in SWAP_TIERS:
        usable = "atlas" if profile.has_atlas else "warp"     # what the swap picks by itself
        if options.tier is not None:
            raise SwapModeError(f"--mode swap textures the face with the {' or '.join(SWAP_TIERS)} tier, "
                                f"not {tier!r}: choose the {usable} tier (or leave --tier out: it is the default)")
        tier = usable
    engine.estimator = Estimator(swap_estimator_config(options.estimator))
    # the photo's grain evened where the swap's gain would make it a speckle (realtime.swap.grain),
    # a turned face's squeezed far side filled from its near side (realtime.swap.farside), its
    # shaded sockets lifted towards its skin (realtime.swap.sockets), a fringe painted out with its
    # skin unless the swap drops it to show the driver's forehead (realtime.swap.skin.fill_fringe)
    fill_fringe = not options.drop_fringe
    if options.even_grain or options.fill_far_side or options.lift_sockets or fill_fringe:
        profile = SwapPhotoProfile(profile, options.even_grain, options.fill_far_side, options.lift_sockets,
                                   atlas=tier == "atlas", fill_fringe=fill_fringe)
    nominal = nominal_affine(profile, int(profile.crop_size))
    rig = face_rig(rig_mod.build(profile), nominal)
    engine.rig = rig
    link = SwapLink(ctx)
    fields = SwapFields()
    own = driver_openings(options)
    config = swap_fuse_config(options.fuse, own_pose=options.pose_from is None, own_gaze=own)
    engine.recombiner = Recombiner(profile["neutral"], profile.frame(), config)
    engine.compositor = SwapCompositeStage(link, fields, options.output_size, ctx,
                                           hide_unswapped=options.hide_unswapped)
    if own:
        # The mouth opening shows the driver's own mouth (realtime.swap.composite): the tier is
        # given no mouth to synthesise (an empty "mouth" range; its triangles are still drawn and
        # textured). Nor eyeballs: the driver's own eyes show through the identity's eye openings
        # (~2 ms a frame on the 2-core CPU that only the openings' rim pixels would show). Nor
        # smile folds (`realtime.tiers.folds`): the driver's own face shows its shading.
        hi = rig.ranges["mouth"][1]
        generator = make_generator(tier, profile, dataclasses.replace(rig, ranges={**rig.ranges, "mouth": (hi, hi)}),
                                   ctx, eyeballs=False, folds=False)
    else:
        # Another source's expression: the identity's own mouth interior (its teeth are the
        # source's, `realtime.io.remix.combine`) and eyeballs (their irises at the posed iris
        # landmarks: the source's gaze), as the reenactment draws them; no smile folds (as above:
        # the swap's lighting is the driver's frame's, `realtime.tiers.folds`).
        generator = make_generator(tier, profile, rig, ctx, folds=False)
    warm = profile["landmarks"]
    fuse = SwapFuseStage(engine.recombiner, rig, nominal, link, lambda: engine.estimator.neutral,
                         warm_landmarks=warm, absent_of=lambda: engine.estimator.absent)
    track = LargestFaceTrackStage(tracker)
    engine.glasses = GlassesStage(rig, link, fields, ctx, face_id=lambda: track.switches, enabled=options.keep_glasses)
    face = [WhenFace(ctx.place(s), link) for s in (
        RenderStage(rig, ctx),
        GenerateStage(generator),
        SmoothStage(rig, enabled=options.smooth, ctx=ctx),
        AttributesStage(rig, profile, link, fields, ctx, strands=FRINGE_STRANDS if options.drop_fringe else 0.0,
                        outline=OutlineWeights(rig, profile, generator), driver_openings=own),
        engine.glasses,
    )]
    # No teeth gauge on the driver either way: its own mouth shows, or the expression source's
    # teeth replace its state's (`realtime.io.remix.combine`; the source gauges its own).
    return [ctx.place(s) for s in (track,
                                   EstimateStage(engine.estimator, engine.clock, teeth=False), fuse)] + face + [
        engine.compositor]
