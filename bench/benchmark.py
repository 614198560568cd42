"""One benchmark run (`run.py bench`): the arguments resolved, the passes run, the result
reported.

Passes (each shows a tqdm bar on stderr when stderr is a terminal):

1. Latency (always, `bench.latency`): the engine as it runs live, per-stage timings and
   capture→sink latency, fps and drops.
2. ``--compare KEY=A,B[,C]`` (`bench.variants`): one engine per value, played ABBA-interleaved
   in blocks of ``--block`` frames by the latency pass; the report adds ``variant / baseline``
   ratios (baseline = the first value).
3. ``--quality``: an offline pass (media clock, every frame) per variant, see
   ``bench/quality.py`` for the exact definitions.
4. ``--self-reenact VIDEO`` (`bench.drivers.prepare_self_reenact`): an avatar enrolled from
   VIDEO's first half (an appearance atlas, or an image profile from its first frame when the
   clip cannot make one; or ``--profile``), the second half drives it, output size = the
   video's frame size, the driver's neutral pinned to the enrollment frame and the head
   following the driver's distance as well as its position (`self_reenact_options`), so the
   output should reproduce the real frames, and the quality pass adds PSNR / SSIM against the
   real frames. Without ``--profile/--driver`` this pair is the whole benchmark; with them, the
   self-reenactment is an extra quality pass whose ``psnr`` / ``ssim`` join ``quality`` and
   whose full numbers go under ``self_reenact``.
5. ``--self-drive CLIP`` (`bench.drivers.prepare_self_drive`): a photo profile from frame
   ``--frame`` of CLIP, driven by the whole clip with the options of a self-reenactment; the
   quality pass adds PSNR / SSIM against the real frames. Every quality pass reports the
   expression fidelity (`bench.fidelity`: per signal, how much of the driver's motion reaches
   the output, gain and r) and ``--sheet`` draws its contact sheet.
6. ``--roundtrip`` (`bench.roundtrip`): true output latency through a virtual camera read back
   with OpenCV, only where one exists; otherwise a note says why not.

Output: a Markdown table on stdout, ``--json`` (``bench.report.write_json``; the result keys of
``bench.stats.StageTimes.to_dict`` plus ``device``, ``quality``, ``machine``, ...), ``--plot``
(``bench.report.plot``).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench import fidelity
from bench.devices import get_device
from bench.drivers import Driver, open_driver, prepare_self_drive, prepare_self_reenact, self_reenact_options
from bench.latency import latency_pass, recalibration_note
from bench.machine import machine_info
from bench.quality import quality_pass
from bench.report import _fmt, markdown_table, plot, plot_formats, report_and_write, write_json
from bench.roundtrip import roundtrip_pass
from bench.swap import SwapExtremes, swap_quality_pass
from bench.usage import DEFAULT_BLOCK, UsageError
from bench.variants import CUDA_ONLY, SWAP_ONLY, build_engine, check_mode, check_variants, make_variants, parse_compare
from profiles.consent import require_consent
from profiles.format import load, profile_files
from realtime.core import paths
from realtime.core.errors import ProfileError
from realtime.core.paths import IMAGE_SUFFIXES, cannot_write
from realtime.core.text import count
from realtime.engine.loop import EngineOptions
from realtime.image.disclose import DisclosureOptions
from realtime.io.audio import AudioBridge
from realtime.io.remix import both_remixed, run_inputs
from realtime.io.sinks.file import overwrites_input
from realtime.mesh.fuse import GAIN_FIELD, FuseConfig
from realtime.mesh.gains import SWAP_OWN, profile_gains
from realtime.swap.skin import profile_drops_fringe

__all__ = ["Setup", "resolve", "run_benchmark", "check_empty", "check_given", "check_outputs",
           "check_frames"]


@dataclass
class Setup:
    """What the arguments resolve to."""

    profile: Any
    driver: Driver
    variants: list
    compare: tuple | None
    pin: Any = None                # driver neutral pinned to these landmarks (self-reenactment)
    main_is_self: bool = False     # the main pair is the self-reenactment
    self_re: tuple | None = None   # (profile, driver, landmarks) of --self-reenact
    self_re_variants: list = dataclasses.field(default_factory=list)   # its engines (`_self_reenact_variants`)
    gains: dict | None = None      # the per-region gains of the profile's settings (as `live`)
    notes: list = dataclasses.field(default_factory=list)   # warnings for the report's notes


def _load(name: str):
    try:
        return load(name)
    except ProfileError as exc:
        raise UsageError(str(exc)) from None


def resolve(args: argparse.Namespace) -> Setup:
    """Check the arguments and open what they name; UsageError for every user mistake."""
    check_given(args)
    self_drive = getattr(args, "self_drive", None)
    if self_drive is not None:
        if args.self_reenact is not None or args.profile is not None or args.driver is not None:
            raise UsageError("--self-drive makes its own profile and driver: use it without "
                             "--profile, --driver and --self-reenact")
    elif args.self_reenact is None and (args.profile is None or args.driver is None):
        missing = " and ".join(f"--{n}" for n in ("profile", "driver") if getattr(args, n) is None)
        raise UsageError(f"{missing} required (or --self-drive CLIP alone, or --self-reenact VIDEO)")
    if args.driver is not None and args.profile is None:
        raise UsageError("--driver needs --profile")
    if args.profile is not None and args.driver is None and args.self_reenact is None:
        raise UsageError("--profile needs --driver (or --self-reenact VIDEO)")
    for flag, given, what in (("--floor", getattr(args, "floor", False), "measures the quality pass's own floor"),
                              ("--sheet", getattr(args, "sheet", None), "draws the quality pass's frames")):
        if given and not _quality_pass(args):
            raise UsageError(f"{flag} {what}: use it with --quality, --self-drive or --self-reenact "
                             f"(without --driver: with one, --self-reenact only names the profile's video)")
    if (getattr(args, "mode", None) or "reenact") == "reenact" and getattr(args, "pose_from", None) is not None \
            and getattr(args, "expression_from", None) is not None:   # as `run.py live` refuses it
        raise UsageError(both_remixed(args.pose_from, args.expression_from,
                                      driver_advice=getattr(args, "driver", None) is not None))
    compare = parse_compare(args.compare) if args.compare is not None else None
    check_mode(compare, getattr(args, "mode", None) or "reenact")
    swapping = getattr(args, "mode", None) == "swap" or (compare is not None and compare[0] == "mode"
                                                          and "swap" in compare[1])
    gains = getattr(args, "gain", None) or {}
    for region, (source, why) in SWAP_OWN.items():
        if region in gains and getattr(args, "mode", None) == "swap" and getattr(args, source, None) is None:
            raise UsageError(f"--gain {region}={gains[region]:g} is an option of --mode reenact ({why}): drop it")
    both = _compared_region(compare)
    if both in gains:
        raise UsageError(f"--gain {both}={gains[both]:g} and --compare {compare[0]}=... set the "
                         f"same gain: drop {both} from --gain (the compared values are the ones measured)")
    if compare and getattr(args, "audio", None):
        raise UsageError("--audio follows one engine's latency: use it without --compare")
    if compare and args.self_reenact and compare[0] == "size":
        raise UsageError("--compare size cannot be used with --self-reenact (the output must "
                         "have the video's frame size)")
    if compare and self_drive is not None and compare[0] == "size":   # its PSNR / SSIM, as above
        raise UsageError("--compare size cannot be used with --self-drive (the output must "
                         "have the clip's frame size)")
    if compare and compare[0] == "calibration_s" and (self_drive is not None or args.driver is None):
        what = "--self-drive" if self_drive is not None else "--self-reenact"
        raise UsageError(f"--compare calibration_s=... varies how long the driver's neutral is "
                         f"calibrated, and {what} pins it to the profile's own frame (no calibration): "
                         f"its variants would be the same engine; compare another key")
    device = get_device(args.device)
    device.check()
    if compare and compare[0] == "device":
        for d in compare[1]:
            get_device(d).check()
    check_outputs(args)

    if self_drive is not None:
        profile, driver, lm = prepare_self_drive(self_drive, _frame(args), args.frames)
        check_frames(driver, args.warmup, f"--self-drive {self_drive}")
        setup = Setup(profile, driver, [], compare, pin=lm, main_is_self=True, notes=_frames_note(args, driver))
        options = _with_command_line(self_reenact_options(driver.fps, profile, driver.size), args)
        setup.variants = make_variants(device.configure(options), device.name, compare)
        _swap_sizes(setup.variants, driver, quality=_quality_pass(args))
        check_variants(profile, setup.variants)
        return setup
    given = None
    if args.self_reenact and args.profile is not None and args.driver is None:
        given = _load(args.profile)  # enrolled from the video's first half by the user
        if swapping:
            require_consent(given)   # the user's profile, swapped onto the video's face
    warnings: list[str] = []
    self_re = (prepare_self_reenact(args.self_reenact, args.frames, given, warnings)
               if args.self_reenact else None)
    if args.profile is not None and args.driver is not None:
        profile = _load(args.profile)
        if swapping:
            require_consent(profile)   # swap puts this person's face on someone else
        driver = open_driver(args.driver, args.frames, swap=swapping)
        if not driver.pictures:
            for flag, what in (("--sheet", "draws the driver's frames"), ("--floor", "tracks the driver's frames")):
                if getattr(args, flag[2:], None):
                    raise UsageError(f"{flag} {what}, and {driver.label} carries none (a tracked clip without "
                                     f"its video beside it): put the clip beside it, or drop {flag}")
        gains = profile_gains(profile)   # as `run.py live` runs it
        setup = Setup(profile, driver, [], compare, self_re=self_re, gains=gains)
        base = EngineOptions(fps=driver.fps, fuse=FuseConfig().with_gains(gains),
                             drop_fringe=profile_drops_fringe(profile))
    else:
        profile, driver, lm = self_re
        setup = Setup(profile, driver, [], compare, pin=lm, main_is_self=True, self_re=self_re)
        base = self_reenact_options(driver.fps, profile, driver.size)
    setup.notes = warnings + _frames_note(args, driver)
    for region, (source, why) in SWAP_OWN.items():
        if swapping and region in (setup.gains or {}) and getattr(args, source, None) is None:
            setup.notes.append(f"the profile's {region} gain does not apply in swap ({why})")
    setup.variants = make_variants(device.configure(_with_command_line(base, args)), device.name, compare)
    _swap_sizes(setup.variants, driver, quality=_quality_pass(args))
    check_variants(profile, setup.variants)
    if self_re is not None and not setup.main_is_self:
        setup.self_re_variants = _self_reenact_variants(args, setup)
        try:
            check_variants(self_re[0], setup.self_re_variants)
        except UsageError as exc:    # the video's own avatar cannot draw every variant: one pass
            if compare is None:
                raise
            setup.self_re_variants = _self_reenact_variants(args, setup, each=False)
            check_variants(self_re[0], setup.self_re_variants)
            setup.notes.append(f"self-reenact: one pass at its own options, not one per variant "
                               f"(its avatar: {exc})")
    check_frames(driver, args.warmup)
    return setup


def check_frames(driver: Driver, warmup: int, what: str = "") -> None:
    """UsageError when `driver` leaves nothing after the `warmup` frames the latency statistics
    leave out (`what`: the driver, when it is not --driver's, e.g. "--self-drive s1.jpg"). A
    file whose frame count is not known (a PNG opened as a clip) is read up to the warm-up."""
    total = driver.total
    if total is None and not driver.is_camera:
        total = driver.frames_up_to(warmup + 1)
    if total == 1 and driver.count is None and total <= warmup:   # not cut to one by --frames: a photo
        raise UsageError(f"{what or '--driver ' + driver.spec}: one picture has no motion to measure: "
                         f"use a clip or a folder of pictures")
    if total is not None and total <= warmup:
        raise UsageError(f"{what + ': ' if what else ''}--frames/clip gives {count(total, 'frame')}, not more "
                         f"than --warmup {warmup}: nothing left to measure (use a longer clip, or "
                         f"a smaller --warmup)")


def _frame(args: argparse.Namespace) -> int:
    """--frame, 0 when not given."""
    return 0 if getattr(args, "frame", None) is None else args.frame


#: (option, attribute) of the options that name a file or a spec: given empty, they name nothing.
_NAMED = (("--json", "json"), ("--plot", "plot"), ("--sheet", "sheet"), ("--compare", "compare"),
          ("--streams", "streams"))
#: (option, attribute, what it does, the option it needs, attribute of that one): an option
#: given without the one it belongs to.
_PARTNERS = (("--frame", "frame", "picks the frame of --self-drive CLIP the profile is made from",
              "--self-drive CLIP", "self_drive"),
             ("--block", "block", "sets the frames per interleaved block of --compare",
              "--compare KEY=A,B", "compare"),
             ("--stream-mode", "stream_mode", "says how --streams runs its engines",
              "--streams N", "streams"))


def check_empty(args: argparse.Namespace) -> None:
    """UsageError for an option of `_NAMED` given empty or blank (``--json ''``), which the bench
    would take as not given."""
    for flag, attr in _NAMED:
        value = getattr(args, attr, None)
        if value is not None and not str(value).strip():
            raise UsageError(f"{flag} {value!r} is empty: give it a value, or drop {flag}")


def check_given(args: argparse.Namespace) -> None:
    """UsageError for an option that would be silently ignored: one that names a file or a spec
    given empty (``--json ''``: `check_empty`), or one given without the option it belongs to
    (`_PARTNERS`)."""
    check_empty(args)
    for flag, attr, what, needs, other in _PARTNERS:
        value = getattr(args, attr, None)
        if value is not None and getattr(args, other, None) is None:
            raise UsageError(f"{flag} {value} {what}: add {needs}, or drop {flag}")


def _compared_region(compare: tuple | None) -> str | None:
    """The `--gain` region whose gain `--compare` varies (`compare`: parse_compare's), or None."""
    return next((r for r, field in GAIN_FIELD.items() if compare is not None and field == compare[0]), None)


def _frames_note(args: argparse.Namespace, driver) -> list[str]:
    """The report's line when --frames asks for more than the driver has (it measures what there
    is), else none."""
    if args.frames is None or driver.total is None or driver.total >= args.frames:
        return []
    return [f"--frames {args.frames}: the driver has only {driver.total} frames (all measured, less the "
            f"--warmup {args.warmup})"]


def gain_notes(profile_gains: dict, cli_gains: dict | None, compare: tuple | None) -> list[str]:
    """The report's lines on the expression gains the engines run with: the profile's own (its
    settings, as `run.py live` applies them; the one a --compare varies says so), less the
    regions --gain replaces (said so), and --gain's."""
    notes = []
    profile_gains, cli_gains = profile_gains or {}, cli_gains or {}
    kept = {k: v for k, v in profile_gains.items() if k not in cli_gains}
    replaced = ", ".join(f"{k}={v:g}" for k, v in profile_gains.items() if k in cli_gains)
    if kept:
        compared = _compared_region(compare)
        notes.append("the profile's gains apply (its settings, as in `run.py live`): "
                     + ", ".join(f"{k}={v:g}" for k, v in kept.items())
                     + (f" ({compared}: --compare {compare[0]} sets it)"
                        if compare is not None and compared in kept else "")
                     + (f"; --gain replaces its {replaced}" if replaced else ""))
    elif replaced:
        notes.append(f"the profile's gains (its settings: {replaced}) do not apply: --gain replaces "
                     f"{'it' if len(cli_gains.keys() & profile_gains.keys()) == 1 else 'them'}")
    if cli_gains:
        notes.append("--gain applies: " + ", ".join(f"{k}={v:g}" for k, v in cli_gains.items()))
    return notes


def _quality_pass(args: argparse.Namespace) -> bool:
    """True when the bench runs a quality pass: --quality, --self-drive, or --self-reenact
    without --driver."""
    return bool(args.quality or getattr(args, "self_drive", None) is not None
                or (args.self_reenact is not None and args.driver is None))


def check_outputs(args: argparse.Namespace, drivers: list[str] | None = None,
                  profiles: list[str] | None = None) -> None:
    """UsageError, before anything runs, for a --json / --plot / --sheet file that could not be
    written when the bench ends: a file the bench reads (the driver or its images, the
    --self-reenact / --self-drive video, the remix sources: `run_inputs`; the profile's files;
    under any name: `overwrites_input`), another of these outputs (the last written would
    replace the first), a new picture among a driver folder's images, its folder missing or not
    writable, a folder, a --json file not named .json, or (--plot, --sheet) a picture format
    that is not written (matplotlib's formats, OpenCV's). `drivers` / `profiles`: what the run
    plays (default: --driver and --profile; `bench --streams` gives its comma lists)."""
    drivers = [args.driver] if drivers is None else drivers
    profiles = [getattr(args, "profile", None)] if profiles is None else profiles
    outputs = [(flag, path) for flag, path in (("--json", args.json), ("--plot", args.plot),
                                               ("--sheet", getattr(args, "sheet", None))) if path]
    inputs = run_inputs([*((d, "the driver") for d in drivers),
                         (args.self_reenact, "the --self-reenact video"),
                         (getattr(args, "self_drive", None), "the --self-drive clip"),
                         (getattr(args, "pose_from", None), "the --pose-from source"),
                         (getattr(args, "expression_from", None), "the --expression-from source")]
                        ) if outputs else []
    for name in profiles:
        inputs += [(f, "one of the profile's files") for f in profile_files(name)] if outputs else []
    folders = [os.path.realpath(spec) for spec in (*drivers, getattr(args, "pose_from", None),
                                                    getattr(args, "expression_from", None))
               if spec and paths.is_dir(spec)]
    for i, (flag, path) in enumerate(outputs):
        problem = overwrites_input(path, inputs + [(p, f"the {f} output") for f, p in outputs[:i]])
        if problem is not None:
            raise UsageError(f"{flag} {path} {problem}: choose another file")
        if (Path(path).suffix.lower() in IMAGE_SUFFIXES
                and os.path.realpath(Path(path).parent) in folders):
            raise UsageError(f"{flag} {path} would lie among the images a driver folder plays "
                             f"({Path(path).parent}) and play as one of its frames next time: "
                             f"choose another folder")
        problem = cannot_write(path)
        if problem is not None:
            raise UsageError(f"cannot write {path} ({flag}): {problem}")
    if args.json and Path(args.json).suffix.lower() != ".json":      # `--json clip.mp4` replaced the clip
        raise UsageError(f"--json {args.json}: the report is JSON; name it e.g. {Path(args.json).with_suffix('.json')}")
    if args.plot and Path(args.plot).suffix.lower().lstrip(".") not in plot_formats():
        raise UsageError(f"--plot {args.plot}: not a picture format the plot is written in "
                         f"({', '.join(sorted(plot_formats()))}); name it e.g. "
                         f"{Path(args.plot).stem}.png")
    sheet = getattr(args, "sheet", None)
    if sheet and not cv2.haveImageWriter(str(sheet)):
        raise UsageError(f"--sheet {sheet}: not an image format OpenCV writes; name it e.g. "
                         f"{Path(sheet).stem}.png")


def _with_command_line(options, args: argparse.Namespace):
    """`options` with the mode, the remix sources and the gains of the command line (`--mode`,
    `--pose-from`, `--expression-from`; `--gain` on top of the options' own, as in live)."""
    gains = getattr(args, "gain", None)
    fuse = options.fuse.with_gains(gains) if gains else options.fuse
    return dataclasses.replace(options, mode=getattr(args, "mode", None) or "reenact",
                               pose_from=getattr(args, "pose_from", None),
                               expression_from=getattr(args, "expression_from", None), fuse=fuse)


def _swap_sizes(variants: list, driver: Driver, quality: bool = False) -> None:
    """A swap variant's output is the driver's own frame: its size, unless one was given (a
    latency pass may fit it to another; UsageError for a `quality` pass, whose measures compare
    the output with the driver's frame pixel for pixel)."""
    if not any(v.options.mode == "swap" and (v.options.output_size is None or quality) for v in variants):
        return
    size = driver.size
    if size is None:
        lim = driver.open()
        try:
            size = (int(lim.size[0]), int(lim.size[1]))
        finally:
            lim.source.close()
    for v in variants:
        if v.options.mode != "swap":
            continue
        if v.options.output_size is None:
            v.options = dataclasses.replace(v.options, output_size=size)
        elif quality and tuple(int(x) for x in v.options.output_size) != size:
            w, h = (int(x) for x in v.options.output_size)
            raise UsageError(f"a swap's quality pass compares its output with the driver's own {size[0]}x{size[1]} "
                             f"frames: its output cannot be {w}x{h} (variant {v.label!r}); drop the size, or "
                             f"drop --quality to time that size")


def _ratios(variants: dict, baseline: str) -> dict:
    """{label: variant / baseline} for every number both have (fps, latency, stages,
    quality); a ratio with no finite value or a zero baseline is left out."""
    def ratio(a, b):
        try:
            a, b = float(a), float(b)
        except (TypeError, ValueError):
            return None
        return a / b if b and np.isfinite(a) and np.isfinite(b) else None

    def walk(v, b):
        if isinstance(v, dict) and isinstance(b, dict):
            out = {k: walk(v[k], b[k]) for k in v if k in b}
            return {k: x for k, x in out.items() if x is not None and x != {}}
        return ratio(v, b)

    keys = ("fps", "frames", "dropped", "latency_ms", "stages_ms", "quality")
    base = variants[baseline]
    return {label: walk({k: r[k] for k in keys if k in r}, base)
            for label, r in variants.items() if label != baseline}


def _columns_table(title: str, columns: dict[str, dict]) -> str:
    """`_kv_table` with one value column per entry of `columns` ({label: {key: value}})."""
    keys = list(dict.fromkeys(k for c in columns.values() for k in c))
    lines = [f"| {title} | " + " | ".join(columns) + " |", "| :--- | " + " | ".join("---:" for _ in columns) + " |"]
    lines += [f"| {k} | " + " | ".join(_fmt(c.get(k), 4) if isinstance(c.get(k), float) or c.get(k) is None
                                        else str(c[k]) for c in columns.values()) + " |" for k in keys]
    return "\n".join(lines)


def _kv_table(title: str, rows: list[tuple[str, Any]]) -> str:
    lines = [f"| {title} | value |", "| :--- | ---: |"]
    lines += [f"| {k} | {_fmt(v, 4) if isinstance(v, float) else v} |" for k, v in rows]
    return "\n".join(lines)


def _profile_label(args: argparse.Namespace, profile) -> str:
    """The report's ``profile``: --profile as given, or what --self-reenact enrolled."""
    if args.profile:
        return args.profile
    if getattr(args, "self_drive", None):
        return f"{Path(args.self_drive).name} frame {_frame(args)} (photo profile)"
    enrolled = (f"{profile.name} ({profile.kind} profile, reference frame "
                f"{profile.settings.get('atlas', {}).get('reference_frame', 0)})")
    return f"{Path(args.self_reenact).name} first half: {enrolled}"


def _self_reenact_section(args: argparse.Namespace, st: Setup, pair: str, results: dict,
                          notes: list[str]) -> dict:
    """The extra self-reenactment quality pass (with --profile/--driver; with --compare one per
    variant, `_self_reenact_variants`): its numbers under ``self_reenact`` (each variant's under
    ``self_reenact.variants``), its psnr / ssim joined to the variant's ``quality``."""
    sr_profile, sr_driver, sr_lm = st.self_re
    sr_variants = st.self_re_variants or _self_reenact_variants(args, st)
    passes = {}
    for v in sr_variants:
        q = quality_pass(
            lambda v=v: build_engine(sr_profile, v.options, realtime=False, fps=sr_driver.fps,
                                     disclosure=NO_DISCLOSURE),
            sr_profile, sr_driver.open(), fps=sr_driver.fps, total=sr_driver.total, pin=sr_lm,
            real_frames=True, desc="self-reenact" if len(sr_variants) == 1 else f"self-reenact {v.label}")
        notes += [f"self-reenact: {n}" if len(sr_variants) == 1 else f"self-reenact {v.label}: {n}"
                  for n in q.notes]
        passes[v.label] = q
    video = Path(args.self_reenact).name
    if st.compare is None or set(passes) == set(results):   # per variant: its compared value
        notes.append(f"quality.psnr / quality.ssim come from the self-reenactment of {video}"
                     + ("" if st.compare is None else " (each variant's own)")
                     + f"; the other quality metrics from {pair}")
        for label, r in results.items():
            r.setdefault("quality", {}).update(
                {k: passes[label].metrics[k] for k in ("psnr", "ssim") if k in passes[label].metrics})
    else:   # one pass (`_self_reenact_variants`): its numbers are no variant's
        notes.append(f"self-reenact: the self-reenactment of {video} ran once, at its own options (--compare "
                     f"{st.compare[0]} does not apply to it, or its avatar cannot draw every variant): its "
                     f"psnr / ssim are under self_reenact only, not in the variants' quality")
    first = next(iter(passes.values()))
    section = {"video": args.self_reenact, "driver": sr_driver.label,
               "quality": first.metrics, "quality_info": first.info}
    if len(passes) > 1:
        section["variants"] = {label: {"quality": q.metrics, "quality_info": q.info}
                               for label, q in passes.items()}
    return section


def _self_reenact_variants(args: argparse.Namespace, st: Setup, each: bool = True) -> list:
    """The engines of the extra self-reenactment pass (--self-reenact with --profile/--driver):
    its own options (`self_reenact_options`), and with --compare each variant's compared value
    on them, so that the psnr / ssim joined to a variant are that variant's; a key of --mode
    swap (or the mode itself) does not apply to a self-reenactment, nor calibration_s (its
    neutral is pinned to the profile's own frame: no calibration), nor one of the neural tier's
    CUDA runtime to an avatar without that tier: one pass, "run" (also with `each` False)."""
    sr_profile, sr_driver, _ = st.self_re
    device = get_device(args.device)
    base = device.configure(self_reenact_options(sr_driver.fps, sr_profile, sr_driver.size))
    compare = st.compare
    neural = (base.tier or getattr(sr_profile, "tier", None)) == "neural"
    if each and compare is not None and compare[0] not in ("mode", "calibration_s") and compare[0] not in SWAP_ONLY \
            and (compare[0] not in CUDA_ONLY or neural):
        return make_variants(base, device.name, compare)
    return make_variants(base, device.name, None)


NO_DISCLOSURE = DisclosureOptions(label=False, mark=False)


def _audio_bridge(spec: str) -> AudioBridge:
    """The audio process of `--audio IN:OUT`, opened before the engines are built (its streams
    settle meanwhile); a bad device name is an AudioError (one line) before anything runs."""
    bridge = AudioBridge(spec)
    bridge.open()
    return bridge


def run_benchmark(args: argparse.Namespace) -> int:
    """Run the benchmark `args` describe (see `bench.cli.add_arguments`); print the report,
    write --json / --plot; return 0. User mistakes raise UsageError."""
    st = resolve(args)
    profile, driver, variants, compare = st.profile, st.driver, st.variants, st.compare
    pair = f"{getattr(profile, 'name', 'profile')} ← {driver.label}"
    notes = st.notes + gain_notes(st.gains, getattr(args, "gain", None), compare)
    block = DEFAULT_BLOCK if args.block is None else args.block

    # -- latency -----------------------------------------------------------------------------
    audio_report = None
    bridge = _audio_bridge(args.audio) if getattr(args, "audio", None) else None
    try:
        accs = latency_pass(profile, variants, driver, args.warmup, block, pin=st.pin, audio=bridge)
    finally:
        if bridge is not None:
            audio_report = bridge.stop()
    if missed := accs[variants[0].label].faces_missed():   # the same driver for every variant
        notes.append(f"latency pass: {missed} (the timings are of an engine with no face to draw "
                     f"on those frames)")
    if recalibrated := recalibration_note(accs):
        notes.append(recalibrated)
    results = {}
    for v in variants:
        acc = accs[v.label]
        r = acc.times.to_dict(acc.wall_s if acc.wall_s > 0 else None)
        dev = get_device(v.device)
        r.update(device=dev.label(), device_detail=dev.describe(), **dev.info(),
                 disclosure=v.options.disclosure_of_mode().describe(),
                 name=pair if compare is None else v.label, blocks=acc.blocks, held=acc.held,
                 auto_recalibrations=list(acc.recalibrated),
                 options=dataclasses.asdict(v.options))
        results[v.label] = r

    # -- quality -----------------------------------------------------------------------------
    sheets = {}
    if args.quality or st.main_is_self:
        for i, v in enumerate(variants):
            floor = bool(getattr(args, "floor", False)) and i == 0   # the driver's: once
            if floor and (v.options.pose_from or v.options.expression_from):
                notes.append("floor r is the main driver's own; the remix takes part of the face "
                             "state from another source")
            # The picture is measured without the label and mark: they are the disclosure stage's
            # (its cost is in the latency pass above; the mark's own PSNR: `run.py verify`).
            v = dataclasses.replace(v, options=dataclasses.replace(v.options, disclosure=NO_DISCLOSURE))
            results[v.label]["quality_disclosure"] = NO_DISCLOSURE.describe()
            swap = v.options.mode == "swap"
            # the tiles number the clip's own frames, as the title's range (a self-reenactment
            # plays the clip's second half)
            extremes = ((SwapExtremes(start=driver.start) if swap else fidelity.Extremes(start=driver.start))
                        if getattr(args, "sheet", None) else None)
            if swap:   # the driver's own frame, face replaced: bench/swap.py
                q = swap_quality_pass(
                    lambda v=v: build_engine(profile, v.options, realtime=False, fps=driver.fps),
                    profile, driver.open(), fps=driver.fps, total=driver.total,
                    desc="quality swap" if compare is None else f"quality {v.label}", extremes=extremes,
                    floor=floor)
            else:
                q = quality_pass(
                    lambda v=v: build_engine(profile, v.options, realtime=False, fps=driver.fps),
                    profile, driver.open(), fps=driver.fps, total=driver.total, pin=st.pin,
                    real_frames=st.main_is_self,
                    desc="quality" if compare is None else f"quality {v.label}", extremes=extremes,
                    floor=floor)
            results[v.label].update(quality=q.metrics, quality_info=q.info, follow=q.follow)
            notes += [n if compare is None else f"{v.label}: {n}" for n in q.notes]
            if extremes is not None:
                sheets[v.label] = extremes

    if sheets and not any(ex.best for ex in sheets.values()):
        notes.append(f"--sheet {args.sheet} not written: no driver frame was tracked (no face found "
                     f"in {driver.label}), so there is no extreme to show")
        sheets = {}

    sr_section = None
    if st.self_re is not None and not st.main_is_self:
        sr_section = _self_reenact_section(args, st, pair, results, notes)

    # -- round trip --------------------------------------------------------------------------
    roundtrip = None
    if args.roundtrip:
        roundtrip = roundtrip_pass(profile, variants[0].options, driver, args.warmup)
        if not roundtrip["available"]:
            notes.append(f"roundtrip not available here: {roundtrip['reason']}")

    read = [driver] + ([st.self_re[1]] if st.self_re is not None and st.self_re[1] is not driver else [])
    for early in dict.fromkeys(e.removeprefix("note: ") for d in read if (e := d.ended_early())):
        notes.append(early)      # a truncated driver (the same file twice: once)

    # -- JSON, table, plot -------------------------------------------------------------------
    machine = machine_info()
    per_frame = {v.label: accs[v.label].times.per_frame() for v in variants}
    common = {"profile": _profile_label(args, profile),
              "driver": driver.label, "driver_fps": driver.fps, "warmup": args.warmup}
    if compare is None:
        out = {**results["run"], **common}
        shown = dict(results["run"])
    else:
        base = list(results)[0]
        out = {"compare": {"key": compare[0], "values": compare[1], "block": block},
               "baseline": base, "variants": results, "ratios": _ratios(results, base),
               **common}
        shown = {"variants": results, "baseline": base}
    if sr_section is not None:
        out["self_reenact"] = sr_section
    if roundtrip is not None:
        out["roundtrip"] = roundtrip
    if audio_report is not None:
        out["audio"] = audio_report.to_dict()
    if notes:
        out["notes"] = notes
    out["machine"] = machine

    text = [f"## bench: {common['profile']} ← {driver.label}"
            + (f" · compare {compare[0]} = {', '.join(compare[1])}" if compare else ""),
            markdown_table({k: v for k, v in shown.items() if k != "name"})]
    if sr_section is not None:
        sr_profile = st.self_re[0]
        per_variant = sr_section.get("variants")
        text.append(f"### self-reenactment: {Path(args.self_reenact).name}, avatar "
                    f"{sr_profile.name} ({sr_profile.kind} profile), "
                    f"driven by {sr_section['driver']}\n\n"
                    + (_kv_table("metric", list(sr_section["quality"].items())) if not per_variant
                       else _columns_table("metric", {k: v["quality"] for k, v in per_variant.items()})))
    if any(r.get("follow") for r in results.values()):
        text.append(_follow_table(results))
    own = _driver_own_table(results)
    if own:
        text.append(own)
    if roundtrip is not None and roundtrip["available"]:
        lat = roundtrip["latency_ms"]
        text.append(_kv_table("round trip (capture → virtual camera → read back)", [
            ("device", roundtrip["device"]), ("frames", roundtrip["frames"]),
            *((f"{k} ms", lat[k]) for k in ("p50", "p95", "p99"))]))
    if audio_report is not None:
        text.append(audio_report.summary())
    if notes:
        text.append("notes:\n" + "\n".join(f"- {n}" for n in notes))
    outputs: list[tuple[str, str, Callable[[], object]]] = []
    if args.json:
        outputs.append(("--json", args.json, lambda: write_json(args.json, out)))
    if sheets:
        outputs.append(("--sheet", args.sheet,
                        lambda: write_sheet(args.sheet, sheets, f"{common['profile']} ← {driver.label}")))
    if args.plot:
        if compare is None:
            drawn = (dict(results["run"], machine=machine), per_frame["run"])
        else:   # one driver: one frame budget for every variant
            drawn = ({"variants": {k: dict(v, machine=machine) for k, v in results.items()},
                      "baseline": shown["baseline"]}, per_frame)
        outputs.append(("--plot", args.plot, lambda: plot(*drawn, args.plot, fps=driver.fps)))
    report_and_write("\n\n".join(text), outputs)
    return 0


def _follow_table(results: dict) -> str:
    """Expression fidelity, one row per signal: gain (r) of each variant's output against the
    driver (`bench.fidelity`), the blink check, and with --floor the measure's own floor r. A
    single run also shows where its motion is lost (`fidelity.split_follow`): the engine's mesh
    against the driver, and the output against that mesh."""
    labels = [k for k, r in results.items() if r.get("follow")]
    floor = next((results[label]["quality_info"]["floor"] for label in labels
                  if results[label].get("quality_info", {}).get("floor")), None)
    mirror = next((results[label]["quality_info"]["floor_mirror"] for label in labels
                   if results[label].get("quality_info", {}).get("floor_mirror")), None) if floor else None
    split = (results[labels[0]].get("quality_info", {}).get("follow_split") if len(labels) == 1 else None)
    parts = [results[label]["follow"] for label in labels]
    if split:
        parts += [split["mesh"], split["picture"]]
    floors = [f for f in (floor, mirror) if f is not None]
    pad = ["–"] * ((2 if split else 0) + len(floors))
    rows = []
    dashes: dict[str, list[str]] = {}   # why a signal's cell is '–' -> the signals
    for name in fidelity.SIGNALS:
        cells = []
        for k, part in enumerate(parts):
            s = part.get(name, {})
            g, r = s.get("gain"), s.get("r")
            mark = "*" if s.get("small") else ""
            cells.append("–" if g is None else f"{g:.2f} ({r:.2f}){mark}" if r is not None else f"{g:.2f}{mark}")
            if g is None:
                _dash(dashes, name, s, mesh=split is not None and k == len(parts) - 1)
        for f in floors:
            s = f.get(name, {})
            cells.append("–" if s.get("r") is None else f"{s['r']:.2f}")
            if s.get("r") is None:
                _dash(dashes, name, s, floor=True)
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    small = any(results[label]["follow"].get(name, {}).get("small") for label in labels
                for name in fidelity.SIGNALS)
    blinks = []
    for label in labels:
        b = results[label].get("quality_info", {}).get("blinks")
        if b:
            blinks.append(f"{b['closed_frames'] - b['missed']}/{b['closed_frames']}")
    columns = (labels + (["engine's mesh", "output vs mesh"] if split else [])
               + (["floor r"] if floor is not None else []) + (["mirror r"] if mirror is not None else []))
    head = "| fidelity: gain (r) | " + " | ".join(columns) + " |"
    sep = "| :--- | " + " | ".join("---:" for _ in columns) + " |"
    tail = (["| closed eyes that arrive (each eye of each frame) | " + " | ".join(blinks + pad) + " |"]
            if len(blinks) == len(labels) else [])
    offsets = [results[label]["follow"].get("gaze_x", {}).get("offset") for label in labels]
    if all(o is not None for o in offsets):
        tail.append("| gaze_x offset: median output − driver, eye widths | "
                    + " | ".join([f"{o:+.3f}" for o in offsets] + pad) + " |")
    for key, what in (("output_pose_std", "head yaw/pitch std °, tracked output"),
                      ("mesh_pose_std", "head yaw/pitch std °, engine's mesh")):
        stds = [results[label].get("quality_info", {}).get(key) for label in labels]
        if all(stds):
            tail.append(f"| {what} | " + " | ".join(
                [f"{d['yaw']:.2f} / {d['pitch']:.2f}" for d in stds] + pad) + " |")
    note = (["\nengine's mesh: the engine's posed mesh against the driver (what it drew); output vs "
             "mesh: the tracked output against that mesh (how much of it the picture shows)"]
            if split else [])
    note += ([f"\n\\* the driver hardly moves this signal (std below {fidelity.SMALL_MOTION:g}× the "
             f"smallest motion it measures): its r is mostly tracking noise"] if small else [])
    if floor is not None:
        note.append(f"\nfloor r (--floor): the driver against its own copy downscaled to "
                    f"{fidelity.FLOOR_SCALE:g}× and back, same measure: the best r an engine can "
                    f"read on this clip")
    if mirror is not None:
        note.append("mirror r (--floor): the driver against its own frames flipped left to right, tracked and "
                    "flipped back: the same motion in a picture the tracker has not seen, as an output is; "
                    "where it is far under floor r, the tracker's reading of that signal depends on the "
                    "picture as much as on the motion")
    if dashes or (pad and tail):
        note.append(_dash_legend(dashes, columns[len(labels):] if pad and tail else []))
    return "\n".join([head, sep, *rows, *tail, *note])


#: Why a fidelity cell is '–' (`_dash`), as the legend under the table says it.
_DASH_WHY = {
    "still": "{them}: the driver hardly moves {it} (std below {std}), so no gain (it would be "
             "tracking noise)",
    "still_mesh": "{them} under output vs mesh: the engine's mesh hardly moves {it} (std below {std})",
    "few": "{them}: fewer than 3 frames with both faces tracked",
    "flat": "{them} under floor r or mirror r: the copy's signal did not move (no r)",
    "none": "{them}: not measured",
}


def _dash(dashes: dict, name: str, stats: dict, mesh: bool = False, floor: bool = False) -> None:
    """Record why `name`'s cell (its `fidelity.follow_stats` entry `stats`) shows '–' rather
    than a gain (r): no stats, too few frames, or a driver (the mesh: `mesh`) that hardly moves
    it; a `floor` cell with a gain but no r: the copy's signal was constant."""
    if not stats:
        why = "none"
    elif stats.get("n", 0) < 3:
        why = "few"
    elif floor and stats.get("gain") is not None:
        why = "flat"
    else:
        why = "still_mesh" if mesh else "still"
    if name not in dashes.setdefault(why, []):
        dashes[why].append(name)


def _dash_legend(dashes: dict, padded: list[str]) -> str:
    """The line under the fidelity table that says what its '–' cells mean: per reason (`_dash`),
    the signals; `padded`: the columns the rows under the signals leave empty."""
    def std(names):   # the angles' in degrees, the others' in their own units (MIN_STD)
        angles = [n for n in names if n in fidelity.MIN_STD]
        limits = {f"{fidelity.MIN_STD[n]:g}°" for n in angles}
        if len(angles) == len(names):
            return ", ".join(sorted(limits))
        other = f"{fidelity.MIN_STD_DEFAULT:g}"
        return other if not angles else f"{other}; {', '.join(sorted(limits))} for {', '.join(angles)}"
    parts = [_DASH_WHY[why].format(them=", ".join(names), it="it" if len(names) == 1 else "them",
                                   std=std(names))
             for why, names in dashes.items()]
    if padded:
        parts.append(f"the rows under the signals are the output's alone (none under "
                     f"{', '.join(padded)})")
    return "\n– : " + "; ".join(parts)


_OWN_KEYS = ("fwe", "fwe_short", "fwe_long", "id_dist")   # the same name in quality and driver_own


def _driver_own_table(results: dict) -> str:
    """With --floor: each variant's FWE and identity distance beside the driver's own video's on
    the same measures (`bench.quality.DriverReference`); "" when no pass measured it."""
    own = next((r["quality_info"]["driver_own"] for r in results.values()
                if r.get("quality_info", {}).get("driver_own")), None)
    if own is None:
        return ""
    rows = [[label, *(r.get("quality", {}).get(k) for k in _OWN_KEYS)] for label, r in results.items()]
    rows.append(["the driver's own video", *(own.get(k) for k in _OWN_KEYS)])
    head = "| yardstick (--floor) | " + " | ".join(_OWN_KEYS) + " |"
    sep = "| :--- | " + " | ".join("---:" for _ in _OWN_KEYS) + " |"
    body = ["| " + " | ".join([str(row[0])] + ["–" if v is None else f"{v:.4f}" for v in row[1:]]) + " |"
            for row in rows]
    note = ("\nthe driver's own video: its face framed as enrollment frames a photo (the crop box of "
            "its first face, fixed), the same FWE; id_dist: its distance to its own first frame, how far "
            "a real face's expressions carry it from itself")
    if own.get("id_r") is not None:
        note += (f"; per sampled frame, the output's id_dist moves with it at r {own['id_r']:.2f}"
                 + (f" ({next(iter(results))})" if len(results) > 1 else ""))
    return "\n".join([head, sep, *body, note])


def write_sheet(path: str, sheets: dict, title: str) -> None:
    """The contact sheet(s) of the quality pass as one picture (variants stacked), in the format
    `path`'s suffix names, written whole or not at all (`write_atomic`: a Ctrl-C or a full disk
    mid-write leaves the file that was there); UsageError when OpenCV cannot encode it (it says
    so only by returning False)."""
    images = [(ex.sheet if hasattr(ex, "sheet") else lambda t, ex=ex: fidelity.contact_sheet(ex, t))(
        title if len(sheets) == 1 else f"{title} · {label}") for label, ex in sheets.items()]
    width = max(im.shape[1] for im in images)
    images = [np.pad(im, ((0, 0), (0, width - im.shape[1]), (0, 0)), constant_values=255)
              for im in images]
    ok, encoded = cv2.imencode(Path(path).suffix.lower() or ".png",
                               cv2.cvtColor(np.concatenate(images, axis=0), cv2.COLOR_RGB2BGR))
    if not ok:
        raise UsageError(f"cannot write the contact sheet {path} (--sheet): OpenCV cannot encode it as "
                         f"{Path(path).suffix or 'PNG'}")
    paths.write_atomic(path, encoded.tobytes())
