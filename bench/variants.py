"""The configurations a benchmark compares (`--compare KEY=A,B[,C]`) and the engine built for
each.

`knobs()` is the registry, one `Knob` per key: ``tier``, ``device``, ``size``,
``kernel_threads``, ``backend``, every other plain `EngineOptions` field, and every field of
`EstimatorConfig` and `FuseConfig` by its own name (``follow_scale``, ``ease_s``, ...). It is
built on first use, from the dataclasses themselves, so a new option is a new key. `Variant` is
one configuration (a label, `EngineOptions`, a device name); the first value of `--compare` is
the baseline. `build_engine` turns a configuration the engine refuses (ValueError: a tier that
does not exist, a profile without what the tier needs) into a `UsageError`.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.devices import DEVICES, get_device
from bench.usage import FOLLOW_RANGE, MAX_SIDE, RENDER_SIZE_RANGE, UsageError
from realtime.engine.loop import Engine, EngineOptions
from realtime.face.estimate import EstimatorConfig
from realtime.image.disclose import LabelTooSmall
from realtime.mesh.fuse import FuseConfig
from realtime.mesh.gains import GAIN_RANGE, SWAP_GAZE, SWAP_POSE
from realtime.tiers.neural import BACKENDS
from realtime.tiers.registry import TIER_NAMES

__all__ = ["Variant", "Knob", "knobs", "knob_list", "parse_compare", "make_variants",
           "build_engine", "check_variants", "SWAP_ONLY", "REENACT_ONLY", "NO_EFFECT", "check_mode"]


@dataclass
class Variant:
    label: str
    options: Any          # realtime.engine.loop.EngineOptions
    device: str = "cpu"
    key: str | None = None   # the --compare key it varies (None: a plain run)


@dataclass(frozen=True)
class Knob:
    help: str
    parse: Callable[[str], Any]
    apply: Callable[[Variant, Any], None]


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT (e.g. 512x512)") from None
    if w < 16 or h < 16:
        raise ValueError(f"size {text!r} is too small (at least 16x16)")
    if w > MAX_SIDE or h > MAX_SIDE:
        raise ValueError(f"size {text!r} is too large (at most {MAX_SIDE}x{MAX_SIDE}, as live --size)")
    return (w, h)


INF = math.inf

#: The valid values of the numeric knobs: (lowest, highest, lowest excluded). A numeric knob
#: not listed takes any finite number ≥ 0 (seconds, distances, speeds, betas, responses, counts).
#: The ranges of live's own flags are theirs (bench.usage, realtime.mesh.gains).
RANGES: dict[str, tuple[float, float, bool]] = {
    "follow_translation": (*FOLLOW_RANGE, False),
    "follow_scale": (*FOLLOW_RANGE, False),
    **{f"{r}_gain": (*GAIN_RANGE, False) for r in ("eye", "brow", "mouth", "gaze", "pose")},
    "max_render_size": (*RENDER_SIZE_RANGE, False),
    "kernel_threads": (1, 1024, False),
    "max_head_angle": (0.0, 180.0, True),           # degrees
    **{k: (0.0, INF, True) for k in ("pose_min_cutoff", "expr_min_cutoff", "region_min_cutoff",
                                      "region_d_cutoff")},  # One-Euro cutoffs (Hz)
}


def _bounds(lo: float, hi: float, above: bool) -> str:
    if hi == INF:
        return f"above {lo:g}" if above else f"at least {lo:g}"
    return f"above {lo:g} and at most {hi:g}" if above else f"between {lo:g} and {hi:g}"


def _checked(name: str, kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """`kind` (int or float) as a knob's parser that also refuses a value outside the knob's
    `RANGES` entry (not finite, or below 0 when it has none): ValueError naming the value as
    typed and the range."""
    lo, hi, above = RANGES.get(name, (0.0, INF, False))

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"{text.strip()!r} is not "
                             + ("a whole number" if kind is int else "a number")) from None
        if not math.isfinite(value):
            raise ValueError(f"{text.strip()!r} is not a finite number")
        if not (lo < value if above else lo <= value) or value > hi:
            raise ValueError(f"{text.strip()!r} is out of range: wants a number "
                             f"{_bounds(lo, hi, above)}")
        return value
    return parse


def _parse_tier(text: str) -> str:
    """A generator tier's name (`TIER_NAMES`), as typed."""
    if text.strip() not in TIER_NAMES:
        raise ValueError(f"{text.strip()!r} is not a tier: choose {', '.join(TIER_NAMES)}")
    return text.strip()


def _parse_render_size(text: str) -> int:
    """0 (automatic) or a side in RENDER_SIZE_RANGE, as live --render-size."""
    value = int(text)
    lo, hi = RENDER_SIZE_RANGE
    if value != 0 and not lo <= value <= hi:
        raise ValueError(f"{text.strip()!r} is out of range: wants 0 (automatic) or pixels "
                         f"between {lo} and {hi}")
    return value


def _parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean (true/false)")


def _parse_device(text: str) -> str:
    if text not in DEVICES:
        raise ValueError(f"unknown device {text!r} (choose {', '.join(DEVICES)})")
    return text


def _parse_backend(text: str) -> str:
    if text not in BACKENDS:
        raise ValueError(f"unknown backend {text!r} (choose {', '.join(BACKENDS)})")
    return text


def _set_device(v: Variant, value: str) -> None:
    v.device = value
    v.options = get_device(value).configure(v.options)


def _set_option(name: str):
    def apply(v: Variant, value) -> None:
        v.options = dataclasses.replace(v.options, **{name: value})
    return apply


def _set_nested(group: str, name: str):
    def apply(v: Variant, value) -> None:
        inner = dataclasses.replace(getattr(v.options, group), **{name: value})
        v.options = dataclasses.replace(v.options, **{group: inner})
    return apply


def _parser_for(name: str, default) -> Callable[[str], Any]:
    if isinstance(default, bool):
        return _parse_bool
    if isinstance(default, int):
        return _checked(name, int)
    if isinstance(default, float):
        return _checked(name, float)
    return str


@functools.lru_cache(maxsize=1)
def knobs() -> dict[str, Knob]:
    """The `--compare` keys, in the order `--compare list` shows them."""
    table = {
        "tier": Knob("generator tier (warp, atlas, neural)", _parse_tier, _set_option("tier")),
        "device": Knob("cpu or cuda", _parse_device, _set_device),
        "size": Knob("output size WxH, e.g. 512x512", _parse_size, _set_option("output_size")),
        "kernel_threads": Knob("numba threads of the kernels", _checked("kernel_threads", int),
                               _set_option("kernel_threads")),
        "backend": Knob("neural tier on cuda: torch or tensorrt", _parse_backend,
                        _set_option("backend")),
        "render_size": Knob("face crop side in px, 0: automatic (as live --render-size)",
                            _parse_render_size, _set_option("render_size")),
    }
    fixed = {"fps", "realtime", "output_size"}   # set by the bench itself (size: above)
    for f in dataclasses.fields(EngineOptions):
        if f.name in table or f.name in fixed or f.default is dataclasses.MISSING:
            continue
        if isinstance(f.default, (bool, int, float, str)):
            table[f.name] = Knob(f"EngineOptions.{f.name} (default {f.default})",
                                 _parser_for(f.name, f.default), _set_option(f.name))
    for group, cls in (("estimator", EstimatorConfig), ("fuse", FuseConfig)):
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if not isinstance(default, (bool, int, float, str)):
                continue        # a pair (FuseConfig.lid_meet): no way to write one value of it in KEY=A,B
            table[f.name] = Knob(f"{cls.__name__}.{f.name} (default {default})",
                                 _parser_for(f.name, default), _set_nested(group, f.name))
    return table


def knob_list(mode: str | None = None, device: str | None = None) -> str:
    """The keys with their help, one a line (`--compare list`); not those `parse_compare` refuses
    (`NO_EFFECT`). With the run's `mode` (--mode) and `device` (--device), a key that run would
    refuse (`check_mode`, `CUDA_ONLY`) ends with what it needs, e.g. "[needs --mode swap]"."""
    table = {k: v for k, v in knobs().items() if k not in NO_EFFECT}
    width = max(len(k) for k in table)
    return "\n".join(f"{key:<{width}}  {knob.help}{_needs(key, mode, device)}" for key, knob in table.items())


def _needs(key: str, mode: str | None, device: str | None) -> str:
    """" [needs ...]" when a run with `mode` and `device` (None: not said) refuses `--compare key`."""
    if mode is not None and mode != "swap" and key in SWAP_ONLY:
        return " [needs --mode swap]"
    if mode == "swap" and key in REENACT_ONLY:
        return " [needs --mode reenact]"
    if device is not None and device != "cuda" and key in CUDA_ONLY:
        return " [needs --device cuda]"
    return ""


#: Keys of the registry that change nothing the bench measures (its variants would be one
#: engine, measured side by side as if they differed), and why.
NO_EFFECT = {"notice_s": "only sets how long the preview's overlay says the face was recalibrated, "
                         "and the bench draws no overlay"}


def parse_compare(spec: str) -> tuple[str, list[str]]:
    """`--compare KEY=A,B[,C]` → (key, values as typed), every value checked up front (its type
    and its knob's range, before anything is enrolled or measured): UsageError naming the key
    and the value; also for values that repeat, as typed or as parsed (``smooth=1,yes``,
    ``ease_s=0.5,.50``: both spellings named)."""
    table = knobs()
    key, sep, values = spec.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--compare wants KEY=A,B (e.g. tier=warp,atlas), got {spec!r}")
    if key not in table:
        raise UsageError(f"--compare: unknown key {key!r}; keys: {', '.join(table)}")
    if key in NO_EFFECT:
        raise UsageError(f"--compare {key}=... {NO_EFFECT[key]}: its variants would be the same "
                         f"engine; compare another key")
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if len(vals) < 2:
        raise UsageError(f"--compare {key}: give at least two values, e.g. {key}=A,B")
    if len(set(vals)) != len(vals):
        raise UsageError(f"--compare {key}: values repeat ({values})")
    seen: dict = {}     # parsed value -> the first spelling of it
    for text in vals:
        value = _parse_value(key, text)
        if value in seen:   # two spellings of one value (1 and yes, 0.5 and .50): one engine twice
            raise UsageError(f"--compare {key}: values repeat ({values}): {seen[value]} and {text} "
                             f"are the same value ({_shown(value)}); its variants would be one engine")
        seen[value] = text
    return key, vals


def _shown(value) -> str:
    """A parsed --compare value as the message names it: a bool as true/false, a size as WxH."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


#: The keys only --mode swap uses (`realtime.engine.swap.build_swap`; live's swap-only flags).
SWAP_ONLY = ("even_grain", "fill_far_side", "lift_sockets", "drop_fringe", "keep_glasses", "hide_unswapped")
_ON_HEAD = "swap puts the face on the driver's own head, at its size, position and turn"
_CROP = "swap draws the face at the profile's own crop size, unsharpened"
#: The keys --mode swap has no use for, and why (live refuses --follow-scale,
#: --follow-translation and --render-size in swap mode): `swap_fuse_config` sets the head's
#: following and the mouth's retargeting, and the swap draws at the profile's crop size
#: (`Engine.__init__`), without the reenactment's sizing, governor or texture prefilter.
REENACT_ONLY = {"follow_scale": _ON_HEAD, "follow_translation": _ON_HEAD, "max_head_angle": _ON_HEAD,
                "mouth_retarget": "swap opens the driver's own jaw, on the driver's head",
                "render_size": _CROP, "max_render_size": _CROP, "adapt_render_size": _CROP,
                "texture_sharpen": _CROP, "smile_folds": "swap shows the driver's own face's shading",
                "gaze_gain": SWAP_GAZE, "pose_gain": SWAP_POSE}


def check_mode(compare: tuple[str, list[str]] | None, mode: str) -> None:
    """UsageError when `compare` (parse_compare's) varies a key the run's `mode` (--mode) does not
    use: its variants would be the same engine. ``--compare mode=...`` varies the mode itself
    and no other key, so nothing to check."""
    if compare is None:
        return
    key = compare[0]
    if mode != "swap" and key in SWAP_ONLY:
        raise UsageError(f"--compare {key}=... varies an option of --mode swap (this run is --mode "
                         f"{mode}: its variants would be the same): add --mode swap, or compare "
                         f"another key")
    if mode == "swap" and key in REENACT_ONLY:
        raise UsageError(f"--compare {key}=... varies an option of --mode reenact ({REENACT_ONLY[key]}"
                         f": its variants would be the same): use --mode reenact, or compare "
                         f"another key")


def _parse_value(key: str, text: str):
    """`text` parsed by `key`'s knob; a value it refuses is a UsageError naming both."""
    try:
        return knobs()[key].parse(text)
    except ValueError as exc:
        raise UsageError(f"--compare {key}: {exc}") from None


#: --compare keys that only the CUDA device uses (the neural tier's runtime): on another device
#: their variants would be one engine, and ratios between them noise dressed as a finding
CUDA_ONLY = ("backend", "cuda_graphs")


def _cuda_only(key: str, this_run: str, fix: str) -> UsageError:
    """The refusal of a `CUDA_ONLY` comparison that `this_run` (its device, or its tier) makes
    into one engine twice."""
    return UsageError(f"--compare {key}=... varies the neural tier's CUDA runtime, and this run {this_run}: "
                      f"its variants would be the same engine; {fix}, or compare another key")


def make_variants(base_options, device: str, compare: tuple[str, list[str]] | None) -> list[Variant]:
    """One `Variant` per value of `compare` (KEY, values) on `base_options`, or the one "run"
    without; UsageError for a key its device does not use (`CUDA_ONLY`; its tier:
    `check_variants`)."""
    if compare is None:
        return [Variant("run", base_options, device)]
    key, values = compare
    if key in CUDA_ONLY and device != "cuda":
        raise _cuda_only(key, f"is on {device}", "add --device cuda")
    knob = knobs()[key]
    out = []
    for text in values:
        value = _parse_value(key, text)
        v = Variant(f"{key}={text}", base_options, device, key=key)
        knob.apply(v, value)
        out.append(v)
    return out


def build_engine(profile, options, **changes) -> Engine:
    """An Engine for `options` (with `changes`); a configuration the engine refuses (a tier that
    does not exist, a profile without what the tier needs) is a UsageError."""
    try:
        return Engine(profile, dataclasses.replace(options, **changes))
    except ValueError as exc:
        raise UsageError((str(exc).strip().splitlines() or [type(exc).__name__])[0]) from None
    except LabelTooSmall as exc:      # its advice names live's options, which bench has not
        (w, h), (nw, nh) = exc.frame, exc.needs
        what, use = (("in swap, the driver's frame", "a larger driver") if options.mode == "swap"
                     else ("its --compare size, or --self-reenact's video", "a larger size or video")
                     if options.output_size is not None
                     else ("the profile's output size", "a profile with a larger output"))
        raise UsageError(f"the output is {w}x{h} px ({what}): too small for the disclosure label at its "
                         f"smallest readable height (it needs {nw}x{nh}): bench {use}") from None


def check_variants(profile, variants: list[Variant]) -> None:
    """Build (and close) every variant's engine once, so a configuration the engine refuses
    stops the run before anything is measured; UsageError for a `CUDA_ONLY` comparison of a
    profile whose generator is not the neural tier (its variants would be one engine)."""
    key = variants[0].key
    if key in CUDA_ONLY:
        tier = variants[0].options.tier or getattr(profile, "tier", None)
        if tier != "neural":
            raise _cuda_only(key, f"draws with the {tier} tier",
                             "bench a profile with a trained neural tier (run.py train)")
    for v in variants:
        get_device(v.device).check()
        build_engine(profile, v.options).close()
