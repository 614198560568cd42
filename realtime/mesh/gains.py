"""Per-region expression gains: how much of the driver's motion each part of the avatar shows.

    eyes    the lids (how far they open and close)
    brows   the brows and the forehead above them
    mouth   the lips and the lower face that moves with them
    gaze    the irises (where the eyes look)
    pose    the head's rotation (angle relative to the neutral pose)

1.0 everywhere reproduces the driver; 1.2 exaggerates a region by 20%, 0.5 halves it, 0 freezes
it as the photo has it (a mouth at 0 keeps the photo's lips, parted or not; at 1 they part as
the driver's do, `realtime.mesh.fuse.lip_rest_shift`). A region's gain applies at full strength
on its own landmarks and fades out over a few rings of mesh neighbours, so the skin around it
follows without a crease (a wider mouth drags the chin along). Set from the command line
(``--gain eyes=1.2,mouth=0.9``), from a profile's ``settings: gains:`` in its YAML, and live
with the window's hotkeys.
"""
from __future__ import annotations

import argparse
from functools import lru_cache

import numpy as np

from realtime.core.errors import PuppeteerError
from realtime.face import topology

__all__ = ["REGIONS", "GAIN_RANGE", "SWAP_GAZE", "SWAP_POSE", "SWAP_OWN", "GainError", "parse_gains", "gains_argument",
           "MergeGains", "check_gains", "profile_gains", "hotkey_note", "landmark_gains"]

REGIONS = ("eyes", "brows", "mouth", "gaze", "pose")
GAIN_RANGE = (0.0, 3.0)
_FEATHER = {"eyes": (0.6, 0.25), "brows": (0.8, 0.5, 0.25), "mouth": (1.0, 1.0, 0.8, 0.6, 0.4, 0.2),
            "gaze": ()}


#: Why the gaze gain is reenactment's only (live, bench and --compare refuse it in swap).
SWAP_GAZE = "swap shows the driver's own eyes inside the profile's lids, looking where they look"
#: why swap has no pose gain (without --pose-from): the face sits on the driver's head
SWAP_POSE = "swap puts the face on your own head, turned as your head turns"
#: The regions whose gain swap does not use, unless a remix source gives them: region ->
#: (the EngineOptions / argparse name of that source, why).
SWAP_OWN = {"gaze": ("expression_from", SWAP_GAZE), "pose": ("pose_from", SWAP_POSE)}


class GainError(PuppeteerError):
    """A gain setting that cannot be used (unknown region, not a number, out of range)."""


def check_gains(gains: dict, where: str = "--gain", numbers_only: bool = False) -> dict[str, float]:
    """{region: float} validated: known regions, finite numbers in GAIN_RANGE; `numbers_only`
    (a profile's YAML): true/false are refused (YAML reads `yes` as True, which was taken as 1),
    where --gain's values are text to read (as is YAML's 5e-1, a string to it)."""
    out = {}
    if not isinstance(gains, dict):
        raise GainError(f"{where}: gains must be a mapping region: number, got {type(gains).__name__}")
    for region, value in gains.items():
        if region not in REGIONS:
            raise GainError(f"{where}: unknown region {region!r}; regions: {', '.join(REGIONS)}")
        if numbers_only and isinstance(value, bool):
            raise GainError(f"{where}: {region} gain {value!r} is not a number (write e.g. {region}: 1.2)")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise GainError(f"{where}: {region} gain {value!r} is not a number") from None
        lo, hi = GAIN_RANGE
        if not (lo <= v <= hi):   # NaN fails too
            raise GainError(f"{where}: {region} gain {v} is outside [{lo:g}, {hi:g}]")
        out[region] = v
    return out


def profile_gains(profile) -> dict[str, float]:
    """The gains a profile carries in its settings (``settings: gains:``), validated: what
    `run.py live` runs it with (the command line's on top) and `run.py bench` measures."""
    gains = profile.settings.get("gains")
    return check_gains({} if gains is None else gains, where=f"profile {profile.name!r} settings.gains")


def hotkey_note(start: dict[str, float], end: dict[str, float], own: dict[str, float],
                regions=REGIONS) -> str | None:
    """A line for the end of a live run whose gains the window's hotkeys changed (None when they
    did not): what moved, and how to start there next time. `start` / `end`: the gains when the
    run started (the profile's own with --gain on top) and ended; `own`: the profile's own
    (``settings: gains``; a region it does not set is 1), which a run without --gain starts
    from; `regions`: those whose gain does something in this run."""
    def differ(a: float, b: float) -> bool:
        return abs(a - b) > 1e-6
    moved = [r for r in regions if differ(start[r], end[r])]
    if not moved:
        return None
    moves = ", ".join(f"{r} {start[r]:g} → {end[r]:g}" for r in moved)
    keep = {r: end[r] for r in regions if differ(end[r], own.get(r, 1.0))}
    if not keep:
        return f"hotkeys changed the gains: {moves}; they end as the profile's own (no --gain starts there)"
    flag = ",".join(f"{r}={v:g}" for r, v in keep.items())
    yaml = ", ".join(f"{r}: {v:g}" for r, v in {**own, **keep}.items())     # the profile's other gains kept
    return (f"hotkeys changed the gains: {moves}; to start there next time: --gain {flag} (or "
            f"settings: gains: {{{yaml}}} in the profile's profile.yaml)")


def parse_gains(text: str) -> dict[str, float]:
    """``"eyes=1.2,mouth=0.9"`` → {"eyes": 1.2, "mouth": 0.9} (GainError on a mistake)."""
    pairs = {}
    if not text.strip():
        raise GainError(f"--gain: no REGION=VALUE in {text!r}: give e.g. eyes=1.2,mouth=0.9, or drop --gain")
    for item in text.split(","):
        if not item.strip():        # "eyes=1,,mouth=2", "eyes=1,": a value lost, or a stray comma
            raise GainError(f"--gain: {text!r} has an empty item (two commas in a row, or one at an "
                            f"end): give REGION=VALUE[,REGION=VALUE...] (e.g. eyes=1.2,mouth=0.9)")
        region, sep, value = item.partition("=")
        if not sep:
            raise GainError(f"--gain: expected REGION=VALUE[,REGION=VALUE...] (e.g. eyes=1.2,mouth=0.9), "
                            f"got {item.strip()!r}")
        if region.strip() in pairs:
            raise GainError(f"--gain: {region.strip()} is given twice ({pairs[region.strip()]} and "
                            f"{value.strip()}): give it once")
        pairs[region.strip()] = value.strip()
    return check_gains(pairs)


def gains_argument(text: str) -> dict[str, float]:
    """`parse_gains` as an argparse type (`run.py live --gain`, `run.py bench --gain`): a mistake
    is an ArgumentTypeError, its message without the option's name (argparse adds it)."""
    try:
        return parse_gains(text)
    except GainError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--gain: ")) from None


class MergeGains(argparse.Action):
    """argparse action for a repeated ``--gain`` (type `gains_argument`): the lists are merged,
    ``--gain eyes=0 --gain mouth=1`` as ``--gain eyes=0,mouth=1`` (the last one alone was kept);
    a region given in two of them is an error."""

    def __call__(self, parser, namespace, values, option_string=None):
        merged = dict(getattr(namespace, self.dest, None) or {})
        for region, value in values.items():
            if region in merged:
                parser.error(f"argument {option_string}: {region} is given twice ({merged[region]:g} and "
                             f"{value:g}): give it once")
            merged[region] = value
        setattr(namespace, self.dest, merged)


def _feather(core: set[int], rings: tuple[float, ...]) -> np.ndarray:
    w = np.zeros(topology.N_LANDMARKS)
    w[list(core)] = 1.0
    adj = topology.vertex_adjacency()
    seen, frontier = set(core), set(core)
    for value in rings:
        nxt = {int(j) for i in frontier for j in adj[i]} - seen
        w[list(nxt)] = value
        seen |= nxt
        frontier = nxt
    return w


@lru_cache(maxsize=1)
def _weights() -> dict[str, np.ndarray]:
    irises = set(topology.RIGHT_IRIS) | set(topology.LEFT_IRIS)
    lids = (set(topology.RIGHT_EYE_UPPER) | set(topology.RIGHT_EYE_LOWER)
            | set(topology.LEFT_EYE_UPPER) | set(topology.LEFT_EYE_LOWER))
    lips = set(topology.OUTER_LIP) | set(topology.INNER_LIP_UPPER) | set(topology.INNER_LIP_LOWER)
    brows = set(topology.RIGHT_BROW) | set(topology.LEFT_BROW)
    w = {"eyes": _feather(lids, _FEATHER["eyes"]), "brows": _feather(brows, _FEATHER["brows"]),
         "mouth": _feather(lips, _FEATHER["mouth"]), "gaze": _feather(irises, ())}
    iris = sorted(irises)
    for k in ("eyes", "brows", "mouth"):
        w[k][iris] = 0.0          # the irises move with the gaze gain only
    for v in w.values():
        v.setflags(write=False)
    return w


def landmark_gains(gains: dict[str, float]) -> np.ndarray:
    """(478, 1) per-landmark factors of the expression residual for `gains` (pose excluded):
    the product over regions of 1 + (gain − 1)·weight."""
    out = np.ones(topology.N_LANDMARKS)
    for region, w in _weights().items():
        g = float(gains.get(region, 1.0))
        if g != 1.0:
            out *= 1.0 + (g - 1.0) * w
    return out[:, None]
