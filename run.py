#!/usr/bin/env python3
"""Puppeteer: drive an avatar face from a webcam into a virtual camera.

    python run.py demo                      the embedded default: astronaut + scripted performance
    python run.py enroll PHOTO --name NAME  make an avatar profile from a portrait
    python run.py live --profile NAME       webcam → avatar → virtual camera
    python run.py train --profile NAME ...  train the neural tier on the profile's video
    python run.py export --profile NAME     build the neural tier's TensorRT engine (GPU)
    python run.py bench --profile NAME ...  latency and quality benchmark
    python run.py track CLIP                landmarks of every frame → CLIP.track.npz (--driver plays it)
    python run.py devices                   cameras, virtual cameras, audio, GPU
    python run.py verify FILE|DIR           was this video/image made by this engine? (its mark)
    python run.py consent [NAME --by TEXT]  record (or list) who agreed to a profile's use

Every subcommand has --help. User mistakes print one line starting with "error:" and exit 2.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shlex
import signal
import stat
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from bench import cli as bench_cli  # noqa: E402  (light: no engine, numba or torch)
from bench.usage import FOLLOW_RANGE, MAX_SIDE, RENDER_SIZE_RANGE  # noqa: E402  (light)
from bench.usage import given as _given  # noqa: E402  (an empty name refused)
from realtime.core import stop as user_stop  # noqa: E402
from realtime.core.errors import PuppeteerError  # noqa: E402
from realtime.core.paths import out_of_space  # noqa: E402
from realtime.core.profile import cli_name  # noqa: E402
from realtime.core.text import count, printable  # noqa: E402
from realtime.mesh.gains import SWAP_OWN, MergeGains, gains_argument  # noqa: E402  (light: numpy, as bench's parser has it)
from realtime.tiers.registry import TIER_NAMES  # noqa: E402  (light: imports no tier)


class UserError(PuppeteerError):
    """A mistake in the command line that only the CLI can see (e.g. a flag for another device)."""


class _Parser(argparse.ArgumentParser):
    """argparse with its mistakes as one line: ``error: ...`` and exit 2, like every other."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # a value that starts with '-' and a digit ('--size -5x5') is a value, not an unknown
        # option: our own check then says what it wants ("expected one argument" did not)
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)     # for `error`'s hint
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        if (m := re.fullmatch(r"argument (\S+): expected one argument", message)) is not None:
            options = m.group(1).split("/")
            given = getattr(self, "_given", [])
            after = [given[i + 1] for i, word in enumerate(given[:-1]) if word in options]
            if after and after[-1].startswith("-"):       # a value taken for an option, not a missing one
                message += f" (a value that begins with '-' is written {max(options, key=len)}=VALUE)"
        self.exit(2, f"error: {_printable(message)} (see {self.prog} --help)\n")


def _printable(text: str, limit: int = 500) -> str:
    """`text` safe for the terminal: control characters (ANSI escapes, bidi overrides) escaped
    (`realtime.core.text.printable`); a text over `limit` characters loses its middle (" … "),
    not its end, which says what to do (a message quoting two long paths lost its advice)."""
    if len(text) > limit:
        head = (limit - 3) * 3 // 5
        text = f"{text[:head]} … {text[-(limit - 3 - head):]}"
    return printable(text, len(text))


def _command(*words: str) -> str:
    """A command line to print for the user to copy (``next: ...``): ``python run.py`` and
    `words`, each quoted for a POSIX shell where it needs it (shlex.quote: 'a b', not a b)."""
    return " ".join(["python", "run.py", *(shlex.quote(str(w)) for w in words)])


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if not (16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE):
            raise ValueError
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants WIDTHxHEIGHT between 16x16 and "
                                         f"{MAX_SIDE}x{MAX_SIDE}, got {text!r}") from None


def _number(what: str, lo: float, hi: float, above: bool = False):
    """An argparse type: a finite number in [lo, hi] (or (lo, hi] when `above`)."""
    def parse(text: str) -> float:
        try:
            v: float | None = float(text)
        except ValueError:
            v = None
        if v is None or not math.isfinite(v) or not (lo < v if above else lo <= v) or v > hi:
            bounds = f"above {lo:g} and at most {hi:g}" if above else f"between {lo:g} and {hi:g}"
            raise argparse.ArgumentTypeError(f"wants {what} {bounds}, got {text!r}")
        return v
    return parse


_fps = _number("a frame rate (frames per second)", 1.0, 240.0)
_follow = _number("a fraction (0 = not at all, 1 = fully)", *FOLLOW_RANGE)
_minutes = _number("a number of minutes", 0.0, 7 * 24 * 60.0, above=True)


def _render_size(text: str) -> int:
    try:
        v = int(text)
        if not RENDER_SIZE_RANGE[0] <= v <= RENDER_SIZE_RANGE[1]:
            raise ValueError
        return v
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants pixels between "
                                         f"{RENDER_SIZE_RANGE[0]} and {RENDER_SIZE_RANGE[1]}, "
                                         f"got {text!r}") from None


def _frame_range(text: str) -> tuple[int, int | None]:
    a, sep, b = text.partition(":")
    try:
        start = int(a) if a else 0
        stop = int(b) if b else None
    except ValueError:
        start, stop = -1, None
    if not sep or start < 0 or (stop is not None and stop <= start):
        raise argparse.ArgumentTypeError(f"wants START:STOP with 0 ≤ START < STOP, got {text!r}")
    return start, stop


def _positive_int(text: str, most: int = 1_000_000_000) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if not 1 <= v <= most:
        raise argparse.ArgumentTypeError(f"wants a whole number from 1 to {most:,}, got {text!r}")
    return v


def _at_most(most: int):
    return lambda text: _positive_int(text, most)


# ----------------------------------------------------------------------------------------- demo
def cmd_demo(args) -> int:
    from realtime.engine.loop import Engine, EngineOptions
    from realtime.io.capture import Grabber
    from realtime.io.performance import ScriptedSource
    from realtime.io.sinks import check_output

    _check_label(args)
    check_output(args.out, overwrite=args.overwrite, option="--out")   # before the profile and engine
    profile = demo_profile()
    engine = Engine(profile, EngineOptions(fps=args.fps, output_size=args.size,
                                           disclosure=_disclosure(args)))
    source = ScriptedSource(profile["neutral"], frames=args.frames, fps=args.fps)
    out = Path(args.out)
    try:
        report, wrote = _drive(engine, Grabber(source, realtime=False), f"file:{out}", args.fps,
                               realtime=False, total=args.frames, label="demo", overwrite=args.overwrite)
    except KeyboardInterrupt as stop:      # the summary of the frames done, then its message
        if (done := _report_of(stop)) is not None:
            print(done.summary(warmup=min(10, done.frames // 4)))
        raise
    print(_printable(wrote, 4000))
    print(report.summary(warmup=min(10, report.frames // 4)))
    print(f"disclosure: {engine.options.disclosure.describe(engine.output_size)}")
    return 0


#: The demo profile's `source` (what `demo_profile` enrolls and accepts as its own).
DEMO_SOURCE = "skimage.data.astronaut()"


def demo_profile():
    """The astronaut of scikit-image (public domain), enrolled once into profiles/astronaut.

    A folder of that name that does not load (damaged), or holds another face (the user's own
    `enroll ... --name astronaut`), is never replaced nor used: the demo then uses the astronaut
    built in memory and says so."""
    import skimage.data

    from profiles import ProfileError, load, profiles_root, save

    folder = profiles_root() / "astronaut"
    try:
        found = load(folder)
    except ProfileError as e:
        problem = None if not os.path.lexists(folder) else \
            f"is not a profile this demo can load ({_printable(str(e).splitlines()[0] if str(e) else '', 160)})"
    else:
        if found.source == DEMO_SOURCE:
            return found
        problem = f"is a profile of {found.source or 'another picture'}, not the demo's astronaut"
    from profiles.enroll import build_profile, detect_single_face

    rgb = skimage.data.astronaut()
    profile = build_profile(rgb, detect_single_face(rgb, DEMO_SOURCE), name="astronaut", source=DEMO_SOURCE)
    if problem is not None:
        print(f"note: {_printable(str(folder))} {problem}; it is left as it is and the demo uses the "
              f"built-in astronaut", file=sys.stderr)
        return profile
    try:
        save(profile, folder)     # never over anything: a folder that appeared meanwhile stays
    except (ProfileError, OSError):
        pass                      # a read-only profiles folder: the demo runs all the same
    return profile


# --------------------------------------------------------------------------------------- enroll
def cmd_enroll(args) -> int:
    from profiles import profiles_root
    from profiles.enroll_video import enroll, is_video

    if args.frames is not None and not is_video(args.source):
        raise UserError(f"--frames START:STOP picks frames of a video; {_printable(Path(args.source).name)} "
                        f"is not one: drop --frames")
    start, stop = args.frames or (0, None)
    t0 = time.perf_counter()
    before = _folder_id(profiles_root() / args.name)
    dropped = _consent_of(profiles_root() / args.name) if args.force and args.consent is None else None
    own = _own_settings(profiles_root() / args.name) if args.force else None
    trained = _trained_generator(profiles_root() / args.name) if args.force else None
    try:
        folder = enroll(args.source, args.name, crop_size=args.crop, force=args.force,
                        progress=sys.stderr.isatty(), start=start, stop=stop, consent=args.consent)
    except KeyboardInterrupt as interrupt:     # say whether the profile was saved or not
        now = _folder_id(profiles_root() / args.name)
        interrupt.args = (("stopped: no profile was written" if now is None and before is None else
                           f"stopped: profile {args.name!r} left as it was" if now == before else
                           f"stopped while replacing profile {args.name!r}: the next enroll of that "
                           f"name puts the previous one back" if now is None else
                           f"stopped just after profile {args.name!r} was saved: it is complete"),)
        raise
    print(f"enrolled {args.name!r} in {time.perf_counter() - t0:.1f} s → {folder}")
    if (used := _frames_used(folder)) is not None:
        print(used)
    if dropped:
        print(f"note: the replaced profile's {dropped} is not carried over (a record belongs to the "
              f"pictures it was given for); record it again with: "
              f"{_command('consent', args.name, '--by', 'NAME, how they agreed')}")
    if own:
        print(f"note: the replaced profile's own settings are not carried over ({own}); add them "
              f"again under 'settings:' in {_printable(str(folder / 'profile.yaml'))} if you want them")
    if trained:
        print(f"note: the replaced profile's {trained} was discarded with it: the new profile has none "
              f"until it is trained again")
    if args.consent is not None:    # checked first and saved with the profile, in one step
        from profiles import load
        from profiles.consent import describe

        print(describe(load(folder).consent))
    print(f"next: {_command('live', '--profile', args.name, '--driver', '0', '--sink', 'window')}")
    return 0


def _consent_of(folder: Path) -> str | None:
    """The consent record of the profile at `folder`, described, or None (none there, none in it,
    or a profile that does not load: `enroll --force` replaces it all the same)."""
    from profiles import load
    from profiles.consent import describe

    try:
        record = load(folder).consent if (folder / "profile.yaml").is_file() else None
    except PuppeteerError:
        return None
    return describe(record) if record else None


#: A video profile with fewer seconds of usable video than this gets a note (a 5-frame clip enrolled
#: as an atlas without a word: enrollment audit, stop 66)
SHORT_ATLAS_S = 3.0
#: How a video enrollment's rejection counts (settings.atlas.rejected) read to a user.
_LEFT_OUT = {"no_face": "no face", "another_person": "another person",
             "multi_face": "another face in view", "blurred": "blurred",
             "unsteady": "unsteady", "occluded": "face covered"}


def _frames_used(folder: Path) -> str | None:
    """For a profile enrolled from a video: how many of its frames the atlas was built from, and
    why the others were left out (None for a photo's)."""
    from profiles import load

    try:
        atlas = load(folder).settings.get("atlas") or {}
    except PuppeteerError:       # said by whatever loads it next
        return None
    if "usable_frames" not in atlas or "frames" not in atlas:
        return None
    left = [f"{_LEFT_OUT.get(k, k)} {v}" for k, v in (atlas.get("rejected") or {}).items() if v]
    used = (f"used {atlas['usable_frames']} of the {count(atlas['frames'], 'frame')} read"
            + (f" (left out: {', '.join(left)})" if left else "")
            + f"; {atlas.get('keyframes', '?')} keyframes")
    seconds = atlas["usable_frames"] / float(atlas.get("fps") or 30.0)
    if seconds < SHORT_ATLAS_S:
        used += (f"\nnote: the atlas has {seconds:.1f} s of usable video: few expressions and views to "
                 f"blend (a 20-60 s clip of the person talking, turning a little and smiling gives it "
                 f"real teeth and views)")
    return used


def _own_settings(folder: Path) -> str | None:
    """The settings a user may have set in the profile.yaml at `folder` (`gains`, `swap`), as
    YAML flow text for a note, or None (none, or no YAML that reads): `enroll --force` writes a
    new profile without them."""
    import yaml

    from profiles.schema import read_yaml

    try:
        settings = read_yaml(folder / "profile.yaml").get("settings") if (folder / "profile.yaml").is_file() else None
    except PuppeteerError:
        return None
    kept = {k: settings[k] for k in ("gains", "swap")
            if isinstance(settings, dict) and settings.get(k)}
    return _printable(yaml.safe_dump(kept, default_flow_style=True, width=1000).strip()) if kept else None


def _trained_generator(folder: Path) -> str | None:
    """What `enroll --force` discards of the profile at `folder`'s training: "trained generator
    (neural/, N steps)" (the steps as its checkpoint says, when it reads), or None (none trained)."""
    from realtime.core.profile import GENERATOR_FILE, NEURAL_DIR, STATE_FILE
    from realtime.tiers.neural.checkpoint import CheckpointError, read_metadata

    try:
        files = [_neural_dir(folder) / name for name in (STATE_FILE, GENERATOR_FILE)]
    except UserError:          # neural/ leads out of the profile: nothing of it is read
        return None
    if not any(f.is_file() for f in files):
        return None
    for f in (f for f in files if f.is_file()):
        try:
            steps = read_metadata(f).get("step")
        except (CheckpointError, OSError):
            continue
        if isinstance(steps, int):
            return f"trained generator ({NEURAL_DIR}/, {count(steps, 'training step')})"
    return f"trained generator ({NEURAL_DIR}/)"


def _folder_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the folder at `path`, None when there is none: a save replaces a
    profile's folder by another one (`profiles.store.replace_dir`), so a changed id means saved."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


# ----------------------------------------------------------------------------------------- live
def cmd_live(args) -> int:
    from realtime.io.sinks import sink_file

    inputs = _check_live(args)
    if args.audio and (recording := sink_file(args.sink)) is not None:     # said once, at the start
        print(_printable(f"note: --audio plays the sound to its output only: {recording} gets the "
                         f"picture without sound", 4000), file=sys.stderr)
    # The audio process first: a bad device name fails at once, and its streams settle (a
    # PortAudio output on PulseAudio takes about 2 s) while the engine's modules load.
    bridge = _audio_bridge(args.audio) if args.audio else None
    stopped = None
    try:
        report, wrote, notes = _live(args, bridge, inputs)
    except KeyboardInterrupt as stop:      # the summary of the frames done, then its message
        report = _report_of(stop)
        if report is None:
            raise
        stopped, wrote, notes = stop, "", []
    finally:
        audio = bridge.stop() if bridge is not None else None
    if audio is not None:
        report.audio = audio
        if args.audio_report:
            _write_json(args.audio_report, bridge.timeline())
    for line in (_printable(wrote, 4000), *notes):     # a file name may hold escapes or a newline
        if line:
            print(line)
    print(report.summary(warmup=min(10, report.frames // 4)))
    if stopped is not None:
        raise stopped
    return 0


def _report_of(stop: KeyboardInterrupt):
    """The RunReport of the frames a Ctrl-C cut short (`run` attaches it), or None when it came
    before the first frame."""
    report = getattr(stop, "report", None)
    return report if report is not None and report.frames else None


#: live options that only swap mode uses: (flag, is it given).
_SWAP_ONLY = (("--keep-grain", lambda a: a.keep_grain),
              ("--keep-sockets", lambda a: a.keep_sockets),
              ("--fill-far-side / --no-fill-far-side", lambda a: a.fill_far_side is not None),
              ("--drop-fringe / --no-drop-fringe", lambda a: a.drop_fringe is not None),
              ("--no-keep-glasses", lambda a: not a.keep_glasses),
              ("--hide-unswapped", lambda a: a.hide_unswapped))


#: live options that swap mode has no use for: (flag, is it given, why).
_REENACT_ONLY = (("--follow-scale", lambda a: a.follow_scale is not None,
                  "swap puts the face on your own head, at its size and position"),
                 ("--follow-translation", lambda a: a.follow_translation is not None,
                  "swap puts the face on your own head, at its size and position"),
                 ("--render-size", lambda a: a.render_size is not None,
                  "swap draws the face at the profile's own crop size"),
                 ("--no-smile-folds", lambda a: not a.smile_folds, "swap shows your own face's shading"),
                 *((f"--gain {region}=...", lambda a, r=region, s=source: r in (a.gain or {}) and getattr(a, s) is None,
                    why) for region, (source, why) in SWAP_OWN.items()))


def _check_live(args) -> list[tuple[Path, str]]:
    """What can be checked of `live`'s command line before anything starts: options given
    without the one they need, and the output (`check_sink`: a file sink's container, writable
    folder, an existing file, and never an input of the run). Returns the run's inputs as
    (path, role) pairs, which the file sink must not write onto (UserError / SinkError)."""
    from realtime.io.sinks import check_sink, overwrites_input, sink_file

    _check_label(args)
    if args.audio_report and not args.audio:
        raise UserError("--audio-report writes the report of --audio IN:OUT: add --audio, or drop "
                        "--audio-report")
    if args.audio:
        from realtime.io.capture import is_camera

        if args.realtime is False or (args.realtime is None and not is_camera(args.driver)):
            raise UserError("--audio keeps the microphone in step with a live picture, and this run "
                            "plays the driver offline (as fast as it computes, each frame late by "
                            "the read-ahead): add --realtime, or drive from a camera")
    if args.mode != "swap":
        given = [flag for flag, is_given in _SWAP_ONLY if is_given(args)]
        if given:
            raise UserError(f"{given[0]} is an option of --mode swap (this run is --mode "
                            f"{args.mode}): add --mode swap, or drop it")
    else:
        given = [(flag, why) for flag, is_given, why in _REENACT_ONLY if is_given(args)]
        if given:
            raise UserError(f"{given[0][0]} is an option of --mode reenact ({given[0][1]}): drop it, "
                            f"or use --mode reenact")
    if args.mode == "reenact" and args.pose_from is not None and args.expression_from is not None:
        from realtime.io.remix import both_remixed

        raise UserError(both_remixed(args.pose_from, args.expression_from))
    recording = sink_file(args.sink)
    if args.overwrite and recording is None and not args.audio_report:
        raise UserError(f"--overwrite replaces an existing recording: it goes with --sink file:OUT.mp4 "
                        f"(or --audio-report), not --sink {_printable(args.sink)}; drop it")
    inputs = _live_inputs(args)
    check_sink(args.sink, overwrite=args.overwrite, protect=inputs)
    if args.audio_report:
        from profiles.format import profile_files
        from realtime.core.paths import taken

        report = Path(args.audio_report)
        if report.suffix.lower() != ".json":      # `--audio-report profile.yaml` replaced the profile's
            raise UserError(f"--audio-report {_printable(args.audio_report)}: the report is JSON; name it "
                            f"e.g. {_printable(str(report.with_suffix('.json')))}")
        _check_writable(args.audio_report, "--audio-report")
        problem = overwrites_input(args.audio_report, inputs + [
            *((f, "one of the profile's files") for f in profile_files(args.profile)),
            *([(recording, "the recording (--sink)")] if recording is not None else [])])
        if problem is not None:
            raise UserError(f"--audio-report {_printable(args.audio_report)} {problem}: choose another file")
        if taken(args.audio_report) and not args.overwrite:   # as the file sink does
            raise UserError(f"--audio-report {_printable(args.audio_report)} exists already; pass --overwrite "
                            f"to replace it, or choose another name")
    return inputs


def _live_inputs(args) -> list[tuple[Path, str]]:
    """Every file a `live` run reads, with what it is (`run_inputs`): the driver (a clip, an
    image folder's images, a tracked clip and the clip beside it) and the remix sources."""
    from realtime.io.remix import run_inputs

    return run_inputs([(args.driver, "the driver"), (args.pose_from, "the --pose-from source"),
                       (args.expression_from, "the --expression-from source")])


def _check_writable(path: str, flag: str) -> None:
    """UserError naming `flag` when no file can be written at `path` (checked before a run)."""
    from realtime.core.paths import cannot_write

    problem = cannot_write(path)
    if problem is not None:
        raise UserError(f"{flag} {_printable(str(path))}: cannot write there: {_printable(problem)}")


#: swap: the smallest driver frame side that can hold a face to swap
SWAP_MIN_SIDE = 64
#: swap, live: a run that dropped more than this share of its frames with driver frames larger than
#: this (px, 1080p) is told --size (a 4K driver: 85 % dropped at 3.5 fps on the 2-core EPYC)
SLOW_SWAP_DROPS, SLOW_SWAP_AREA = 0.05, 1920 * 1080


def _live(args, bridge, inputs=()):
    from profiles import load
    from realtime.core.context import check_device
    from realtime.engine.loop import Engine, EngineOptions
    from realtime.engine.swap import SWAP_TIERS
    from realtime.io.capture import Grabber, open_source
    from realtime.io.tracked import swap_without_frames
    from realtime.mesh.fuse import FuseConfig
    from realtime.mesh.gains import profile_gains
    from realtime.swap.skin import fringe_hint, profile_drops_fringe

    check_device(args.device)
    if args.backend == "tensorrt" and args.device != "cuda":
        raise UserError("--backend tensorrt runs on the GPU: add --device cuda")
    profile = load(args.profile)
    unrecorded = None                 # a note on the consent record, after the driver's checks
    if args.mode == "swap":
        from profiles.consent import recorded_here, require_consent

        record = require_consent(profile)
        if not recorded_here(record):     # anyone can write a valid record: say whose it is
            name = cli_name(profile)
            again = _command("consent", name, "--by", "NAME, how they agreed")
            unrecorded = (f"note: profile {_printable(name)}'s consent record ({_printable(record['by'], 120)}) is "
                          f"not in this machine's consent records (brought with the profile, or recorded before "
                          f"they were kept): swap this face only if it is true; record it here with: {again}")
    source = open_source(args.driver, fps=args.fps)
    if args.mode == "swap" and (problem := swap_without_frames(source)) is not None:
        source.close()
        raise UserError(problem)
    if args.mode == "swap" and min(source.size) < SWAP_MIN_SIDE:    # --size only rescales what is there
        source.close()
        raise UserError(f"the driver's frames are {source.size[0]}x{source.size[1]} px: too small to hold a face to "
                        f"swap (a swap needs frames at least {SWAP_MIN_SIDE} px a side, with the face at least "
                        f"~24 px between the eyes)")
    if unrecorded is not None:
        print(unrecorded, file=sys.stderr)
    realtime = source.is_live if args.realtime is None else args.realtime
    fps = args.fps or source.fps or 30.0
    if not 1.0 <= fps <= 240.0:      # a file may claim any rate
        source.close()
        raise UserError(f"the driver reports {fps:g} fps; pass --fps F (1 to 240) to drive it at a "
                        f"usable rate")
    gains = {**profile_gains(profile), **(args.gain or {})}
    size = args.size or (tuple(source.size) if args.mode == "swap" else None)  # swap: the driver's frame
    options = EngineOptions(tier=args.tier, output_size=size, fps=fps, realtime=realtime,
                            smooth=not args.no_smooth, device=args.device, backend=args.backend,
                            render_size=args.render_size or 0, adapt_render_size=realtime,
                            fuse=FuseConfig(**{k: v for k, v in (("follow_scale", args.follow_scale),
                                                                 ("follow_translation", args.follow_translation))
                                               if v is not None}).with_gains(gains),  # else its defaults
                            mode=args.mode, pose_from=args.pose_from, expression_from=args.expression_from,
                            even_grain=not args.keep_grain, fill_far_side=args.fill_far_side is not False,
                            lift_sockets=not args.keep_sockets,
                            drop_fringe=(profile_drops_fringe(profile) if args.drop_fringe is None
                                         else args.drop_fringe),
                            keep_glasses=args.keep_glasses, hide_unswapped=args.hide_unswapped,
                            smile_folds=args.smile_folds, disclosure=_disclosure(args))
    engine = Engine(profile, options)
    total = args.frames or source.frame_count
    report, wrote = _drive(engine, Grabber(source, realtime=realtime), args.sink, fps, realtime,
                           total=total, max_frames=args.frames, label=f"live {cli_name(profile)}", audio=bridge,
                           overwrite=args.overwrite, protect=inputs)
    lines = [f"face crop drawn at {engine.render_size}² px (profile {profile.crop_size}²)"]
    if (own := _settings_in_effect(profile, args)) is not None:
        lines.append(own)
    ended_early = getattr(source, "ended_early", None)   # a clip cut short: said, not silent
    if ended_early is not None and (args.frames is None or report.frames < args.frames) and (note := ended_early()):
        lines.append(note)
    if (not realtime and args.fps is None
            and (varying := getattr(source, "varying_rate", lambda: None)()) is not None):
        lines.append(f"note: the driver's frame rate varies (its frames are {1000 * varying[0]:.0f}-"
                     f"{1000 * varying[1]:.0f} ms apart): each became one output frame at its average "
                     f"{fps:.3g} fps, so its timing is not kept (--realtime plays it at its own times; or "
                     f"re-encode it at a constant rate, e.g. ffmpeg -i IN -r 30 OUT.mp4)")
    if args.mode == "swap" and args.tier is None and profile.tier not in SWAP_TIERS:
        lines.append(f"note: swap textured the face with the {'atlas' if profile.has_atlas else 'warp'} tier: the "
                     f"profile's {profile.tier} tier is trained on its own framing and background")
    for region, (given_by, why) in SWAP_OWN.items():
        if args.mode == "swap" and getattr(args, given_by) is None and region in gains:   # the profile's
            lines.append(f"note: the profile's {region} gain ({gains[region]:g}, its settings.gains) "
                         f"does not apply in swap: {why}")
    lines += _governor_lines(engine.governor)
    if (note := _short_recording(args.sink, realtime, report, fps)) is not None:
        lines.append(note)
    if (args.mode == "swap" and realtime and args.size is None and report.frames
            and report.dropped > SLOW_SWAP_DROPS * (report.frames + report.dropped)
            and source.size[0] * source.size[1] > SLOW_SWAP_AREA):
        w, h = source.size
        k = 1280 / max(w, h)
        lines.append(f"note: swap keeps the driver's {w}x{h} frames, and {report.dropped} were dropped: --size "
                     f"{2 * round(w * k / 2)}x{2 * round(h * k / 2)} makes the output smaller (the mark and the "
                     f"sink work on every output pixel; the driver's frames are still read and tracked whole)")
    attributes = next((s for s in engine.stages if s.name == "attributes"), None)
    swapped = any(row.get("face") for row in report.per_frame)     # else nothing was swapped to hint at
    if (attributes is not None and swapped and not options.drop_fringe
            and (hint := fringe_hint(attributes.forehead_hair))):
        lines.append(hint)
    if args.hide_unswapped:
        n = engine.compositor.hidden
        lines.append(f"swap: {count(n, 'frame')} with no face to swap went out blurred (--hide-unswapped)" if n else
                     "swap: a face was swapped in every frame (--hide-unswapped blurred none)")
    glasses = engine.glasses
    if glasses is not None and glasses.found_at is not None:
        lines.append(f"swap: glasses found on the driver at frame {glasses.found_at}: their rims were kept in "
                     f"front of the swapped face (--no-keep-glasses, or 'g' in the window, paints the profile's eyes "
                     f"over them)")
    return report, wrote, lines + [f"disclosure: {engine.disclosure.options.describe(engine.output_size)}"]


def _settings_in_effect(profile, args) -> str | None:
    """The summary's line on the profile's own settings (its profile.yaml's `settings:`) that this
    live run applies: gains, and in swap `swap.drop_fringe` (a user who edited them could not tell
    they took effect), with those the command line replaced; None where it sets none of them. A
    gain that does nothing in swap has its own note (`SWAP_OWN`)."""
    from realtime.mesh.gains import profile_gains
    from realtime.swap.skin import profile_drops_fringe

    own, cli, swap = profile_gains(profile), args.gain or {}, args.mode == "swap"
    live = {r: v for r, v in own.items()
            if not (swap and r in SWAP_OWN and getattr(args, SWAP_OWN[r][0]) is None)}
    applied = [f"gains {', '.join(f'{r}={v:g}' for r, v in live.items() if r not in cli)}"]
    replaced = [f"--gain replaces its {', '.join(f'{r}={v:g}' for r, v in live.items() if r in cli)}"]
    if not live.keys() - cli.keys():
        applied = []
    if not live.keys() & cli.keys():
        replaced = []
    if swap and profile_drops_fringe(profile):
        if args.drop_fringe is None:
            applied.append("swap.drop_fringe true")
        elif not args.drop_fringe:
            replaced.append("--no-drop-fringe replaces its swap.drop_fringe true")
    if not applied and not replaced:
        return None
    said = (f"the profile's own settings apply (its profile.yaml): {'; '.join(applied)}" if applied
            else "the profile's own settings do not apply")
    return said + (f" ({'; '.join(replaced)})" if replaced else "")


def _short_recording(sink_spec: str, realtime: bool, report, fps: float) -> str | None:
    """A note where a --realtime run recorded to a file dropped frames: the file holds the frames
    that were sent, one after the other at the run's fps, so it is shorter than the session and
    plays faster (load audit: 402 frames, 13.4 s, for a 15 s run under load); None otherwise."""
    if not (realtime and sink_spec.startswith("file:") and report.dropped and report.frames and fps > 0):
        return None
    return (f"note: the recording holds the {count(report.frames, 'frame')} sent ({report.frames / fps:.1f} s at "
            f"{fps:g} fps) of a {report.wall_s:.1f} s run: the {report.dropped} dropped are left out, so it plays "
            f"faster than the session went (--offline records one frame for every frame of a clip)")


#: the render size's steps the summary lists one by one (the last ones; the rest are counted)
GOVERNOR_LINES = 6


def _governor_lines(governor) -> list[str]:
    """The summary's lines on the render size's real-time governor: each step down (its frames'
    median time over the budget: a slow or busy machine) and back up (room again), the last
    GOVERNOR_LINES of them, the earlier ones counted."""
    steps = list(getattr(governor, "steps", None) or [])
    if not steps:
        return []
    lines = []
    if len(steps) > GOVERNOR_LINES:
        down = sum(now < was for was, now, _ in steps)
        lines.append(f"  the render size changed {len(steps)} times ({down} down, {len(steps) - down} up: "
                     f"the machine's load came and went); the last {GOVERNOR_LINES}:")
    predicted = getattr(governor, "predicted", set())
    for i, (was, now, ms) in enumerate(steps[-GOVERNOR_LINES:], start=max(0, len(steps) - GOVERNOR_LINES)):
        took = (f"a frame timed before the first took {ms:.1f} ms" if i in predicted
                else f"frames took {ms:.1f} ms (median)")
        if now < was:
            lines.append(f"  lowered from {was}² to {now}²: {took}, over the real-time "
                         f"budget of {governor.limit_ms:.1f} ms (a slow or busy machine; --render-size N fixes "
                         f"the size)")
        else:
            lines.append(f"  raised from {was}² to {now}²: frames took {ms:.1f} ms at {was}², room for {now}² "
                         f"again")
    return lines


def _check_label(args) -> None:
    """UserError when a label flag comes with --no-label (it would be ignored)."""
    if args.no_label:
        given = [flag for flag, value in (("--label-text", args.label_text), ("--label-corner", args.label_corner))
                 if value is not None]
        if given:
            raise UserError(f"{given[0]} says how to draw the label, and --no-label leaves it out: "
                            f"drop one of them")


def _disclosure(args):
    """The label and mark options, from the command line only (never from a profile)."""
    from realtime.image.disclose import DisclosureOptions

    if args.no_label:
        return DisclosureOptions(label=False)
    defaults = DisclosureOptions()
    return DisclosureOptions(label_text=args.label_text,   # None: the mode's (a swap says it is one)
                             label_corner=args.label_corner or defaults.label_corner)


def _audio_bridge(spec: str):
    """The audio process for `--audio IN:OUT`, its streams running but silent until `_drive`
    gives it the first frame's latency (after the engine's warm-up)."""
    from realtime.io.audio import AudioBridge

    bridge = AudioBridge(spec)
    bridge.open()
    return bridge


def _write_json(path: str, data) -> None:
    import json

    from realtime.core.paths import write_atomic

    write_atomic(path, json.dumps(data, indent=1) + "\n")
    print(_printable(f"wrote {path}", 4000))


def _drive(engine, grabber, sink_spec, fps, realtime, total=None, max_frames=None, label="",
           audio=None, overwrite=False, protect=()):
    """Open the sink, run the loop with a progress bar, return the RunReport and what a file sink
    wrote (`_written`: its finished file and frame count, or that it wrote nothing; "" for the
    other sinks). A file sink
    replaces an existing file only with `overwrite`, and never one of `protect` (what the run
    reads). `audio`: an open AudioBridge, fed every frame's measured latency. The sink is closed
    however the run ends; a Ctrl-C (KeyboardInterrupt) leaves with its message saying where a
    file sink's output went (or that nothing was written)."""
    from realtime.engine.loop import LIVE_HISTORY, run
    from realtime.io.sinks import ThreadedSink, make_sink

    try:
        inner = make_sink(sink_spec, fps, overwrite=overwrite, protect=protect)
        sink = ThreadedSink(inner, realtime=realtime)
    except BaseException:
        grabber.source.close()
        engine.close()
        raise
    closed = False          # a close that failed (its timeout) is not waited for twice
    try:
        try:
            sink.open(*engine.output_size, fps)
        except BaseException:
            grabber.source.close()      # `run`, which closes it when it ends, never started
            raise
        if device := getattr(inner, "device_name", None):   # a virtual camera: the one to pick
            width, height = engine.output_size
            print(f"virtual camera: {_printable(str(device))} ({width}x{height}); choose it as the camera "
                  f"in your video-call or streaming app", file=sys.stderr)
        # A live session keeps the last five minutes of per-frame rows for its summary.
        try:
            report = _run_with_bar(run, engine, grabber, sink, max_frames or total, max_frames, label, audio,
                                   history=LIVE_HISTORY if realtime else None)
        except PuppeteerError as error:     # a mistake met mid-run (an undecodable image in a folder)
            from realtime.io.sinks.base import SinkError
            closed = True
            sink.close()
            if not (isinstance(error, SinkError) and _nothing_left(inner)):   # else its own error said it
                error.after = _written(inner, stopped=True, why="the run up to the error")
            raise
        closed = True
        sink.close()        # before the message: the file is in place (or gone) once it returns
        return report, _written(inner)
    except KeyboardInterrupt as stop:
        closed = True
        try:
            user_stop.through_stops(sink.close)   # also finishes a close the interrupt cut short
        except KeyboardInterrupt as abandoned:    # the user gave up on it: say what is left
            abandoned.args = (_written(inner, stopped=True),)
            raise abandoned from None
        stop.args = (_written(inner, stopped=True),)
        raise
    finally:
        try:
            if not closed:
                sink.close()    # idempotent: `run` closes it, a failure before `run` did not
        finally:
            engine.close()  # even when the sink's close fails (its timeout)


def _run_with_bar(run, engine, grabber, sink, total, max_frames, label, audio, history):
    """`run` (realtime.engine.loop.run) under a progress bar of `total` frames."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="frame", leave=False,
               disable=not sys.stderr.isatty() and os.environ.get("CI") == "true")
    notice = threading.Timer(WARM_UP_NOTICE_S, lambda: tqdm.write(WARM_UP_NOTICE, file=sys.stderr))
    notice.daemon = True

    def tick(frame):
        if bar.n == 0:          # the rate counts from the first frame, not from the warm-up
            notice.cancel()
            bar.reset(total=total)
        bar.update(1)
        if audio is not None:  # the sound passes from the first frame's latency on
            audio.on_frame(frame)

    try:
        if audio is not None:
            audio.wait_settled()  # else the first seconds of sound would be silent or off
        notice.start()
        return run(engine, grabber, sink, max_frames=max_frames, on_frame=tick, history=history)
    finally:
        notice.cancel()
        bar.close()


#: Said when the first frame has not come after WARM_UP_NOTICE_S seconds: a cold numba cache (a
#: fresh install, or kernels edited) compiles the CPU kernels for 10-60 s before the first frame.
WARM_UP_NOTICE = ("warming up the engine (a first run also compiles the CPU kernels: up to a minute; "
                  "later runs load them from the cache)...")
WARM_UP_NOTICE_S = 3.0


def _partial_left(sink) -> Path | None:
    """The hidden partial file a file sink left instead of a finished one (a close that was cut
    short or timed out), or None."""
    left = getattr(sink, "partial", None)
    return Path(left) if left is not None and sink.kept is None and os.path.lexists(left) else None


def _nothing_left(sink) -> bool:
    """A file sink that kept no file and left no partial one (its own error said what became of
    its frames); False for the other sinks, and where a partial file is left (`_written` says
    where it is)."""
    return getattr(sink, "name", None) == "file" and sink.kept is None and _partial_left(sink) is None


def _written(sink, stopped: bool = False, why: str = "the run so far") -> str:
    """Where a run's output is, once its sink closed: a file sink's finished file and its frame
    count (a kept name beside the one asked for when a file appeared there meanwhile, and it
    says so), or that none was written; "" for the other sinks. `stopped`: the run was cut
    short (a Ctrl-C, or an error: then `why` says what the frames are)."""
    if getattr(sink, "name", None) != "file":
        return ""
    head = "stopped: " if stopped and why == "the run so far" else ""
    if sink.kept is None:
        if sink.frames_written and (left := _partial_left(sink)) is not None:
            return (f"{head}the recording ({count(sink.frames_written, 'frame')}) was not finished: it is left "
                    f"as {left} (hidden: ls -a shows it)")
        if sink.frames_written:
            return f"{head}nothing was kept of the {count(sink.frames_written, 'frame')} written"
        return f"{head}nothing was written (no frame had reached the file)"
    notes = [count(sink.frames_written, "frame")]
    size, written = getattr(sink, "size", None), getattr(sink, "file_size", None)
    if size is not None and written is not None and written != size:   # an odd size (--size, a swap's driver)
        notes.append(f"{size[0]}x{size[1]} padded to {written[0]}x{written[1]} with black: H.264 wants "
                     f"even sides")
    elif size is not None:
        notes.append(f"{size[0]}x{size[1]}")
    if stopped:
        notes.append(why)
    if sink.displaced is not None:
        notes.append(f"a file appeared at {sink.displaced} while recording and was left as it is")
    return f"{head}wrote {sink.kept} ({', '.join(notes)})"


# ---------------------------------------------------------------------------------------- train
def cmd_train(args) -> int:
    """Train the neural tier. Every file is written under a temporary name and committed into
    the profile with `profiles.store.commit_files` (checkpoints as they come, the plots at the
    end), holding the profile's writer lock: a Ctrl-C at any moment leaves a profile that loads."""
    from profiles import load
    from profiles.enroll_video import check_source_clip
    from profiles.store import name_lock
    from realtime.core import paths
    from realtime.tiers.neural.checkpoint import CheckpointError

    if args.steps is None and args.minutes is None:
        raise UserError("say how long to train: --steps N or --minutes M")
    if args.force and not args.other_video:
        raise UserError("--force goes with --other-video (train on a clip whose faces look like another "
                        "person's); without --other-video there is nothing for it to force")
    if args.device == "cuda":
        from realtime.core.context import require_torch_cuda

        require_torch_cuda()
    if args.restart:    # its neural/ files are trained afresh: broken ones no longer stop the load
        from profiles.format import forget_broken_neural, resolve

        folder = resolve(args.profile)
        with name_lock(folder.parent, folder.name):
            dropped = forget_broken_neural(folder)
        if dropped:
            print(f"note: --restart: {', '.join(_printable(k) for k in dropped)} (missing or changed) taken off "
                  f"profile {_printable(folder.name)}'s list of files; training starts afresh", file=sys.stderr)
    profile = load(args.profile)
    if not profile.has_atlas:
        raise UserError(f"profile {profile.name!r} was enrolled from a photo; the neural tier "
                        f"trains on a video of the target (python run.py enroll CLIP.mp4 --name NAME)")
    video = Path(args.video)
    if (problem := paths.not_a_file(video)) is not None:
        raise UserError(f"--video {_printable(str(video))} {problem} (the clip profile {profile.name!r} "
                        f"was enrolled from: {profile.source})")
    same_clip = check_source_clip(profile, video, other=args.other_video)
    if args.other_video and same_clip:
        print(f"note: {_printable(video.name)} is the clip profile {profile.name!r} was enrolled from: "
              f"training on it as without --other-video", file=sys.stderr)
    with name_lock(profile.folder.parent, profile.folder.name):
        try:
            return _train(profile, video, args, same_clip)
        except CheckpointError as e:
            raise UserError(f"{e}; pass --restart to train from scratch without it") from None


def _without(frames, spans):
    """The (index, frame) pairs of `frames` whose index is in none of the [first, last] `spans`."""
    for i, rgb in frames:
        if not any(a <= i <= b for a, b in spans):
            yield i, rgb


def _same_person_or_force(profile, name: str, pairs, force: bool) -> None:
    """--other-video: UserError (unless `force`) where the clip's faces are far from what the
    profile draws (`render_l1` above `OTHER_PERSON_L1`): another person's clip would teach the
    generator to turn the profile into them."""
    from realtime.train.dataset import OTHER_PERSON_L1, render_l1

    l1 = render_l1(pairs)
    if l1 <= OTHER_PERSON_L1:           # NaN (no face pixel to compare) is refused below
        return
    said = (f"the faces in {name} are far from profile {profile.name!r}: face L1 {l1:.3f} between its "
            f"renders and the frames (more of the profile's own recording reads under {OTHER_PERSON_L1:g}, "
            f"another person 0.3-0.5)")
    if not force:
        raise UserError(f"{said}. Is it another person, or very different light? --other-video trains on "
                        f"more of the same person's recording; pass --force to train on it anyway")
    print(f"note: {said}; training anyway (--force)", file=sys.stderr)


def _neural_dir(folder: Path) -> Path:
    """The profile's neural/ folder, resolved; UserError when it is a file, or leads out of the profile (a
    symbolic link to elsewhere): `train` would resume from a state file there, unchecked, and
    write, rename and delete its checkpoints' files there (security review)."""
    from profiles.store import inside
    from realtime.core.errors import ProfileError
    from realtime.core.profile import NEURAL_DIR

    try:
        path = inside(Path(folder), NEURAL_DIR)
    except ProfileError:
        raise UserError(f"{NEURAL_DIR}/ in profile folder {_printable(str(folder))} leads out of it (a link to "
                        f"{_printable(str((Path(folder) / NEURAL_DIR).resolve()))}): a profile's files stay in its "
                        f"folder; remove the link (its training is then started afresh)") from None
    if path.exists() and not path.is_dir():     # (before: a FileExistsError traceback after the pairs)
        raise UserError(f"{_printable(str(path))} is a file, not a folder: `train` keeps the neural tier's "
                        f"checkpoints in a folder of that name; move the file out of the profile folder")
    return path


def _training_resolution(profile, args) -> int:
    """--resolution, or the resumed checkpoint's; UserError when the two differ (its weights
    would not fit, and --restart would throw the training away unasked)."""
    from realtime.core.profile import STATE_FILE
    from realtime.tiers.neural.checkpoint import read_metadata

    state = _neural_dir(profile.folder) / STATE_FILE
    if args.restart or not state.is_file():    # from scratch: as asked, else as the last training
        last = (profile.settings.get("neural") or {}).get("resolution")
        return args.resolution or (last if last in (128, 256, 512) else 128)
    stored = (read_metadata(state).get("config") or {}).get("resolution")
    if not isinstance(stored, int):
        return args.resolution or 128     # let the loader say what is wrong with it
    if args.resolution not in (None, stored):
        raise UserError(f"the training to resume ({state}) is at {stored}²: resume it with --resolution "
                        f"{stored} (or without --resolution), or start again at {args.resolution}² with "
                        f"--restart (which discards it)")
    return stored


def _train(profile, video: Path, args, same_clip: bool = True) -> int:
    """Train `profile` on `video`: the frames it was enrolled from where `same_clip` (the clip it
    was enrolled from), else (--other-video) the whole of another clip, which must be framed as
    the profile's (build_pairs refuses it before training where it is not)."""
    import contextlib

    import cv2
    from tqdm import tqdm

    from profiles.clip import frame_count
    from profiles.enroll_video import read_frames
    from profiles.store import commit_files
    from realtime.core.paths import sha256_file
    from realtime.core.profile import GENERATOR_PATH, NEURAL_DIR
    from realtime.train import loop as T
    from realtime.train.dataset import HELD_OUT_SHARE, MIN_HELD_OUT, UnusableFrames, build_pairs, held_out

    args.resolution = _training_resolution(profile, args)
    # what a killed run left of its writes (a checkpoint's, a plot's temporary file), under the lock
    for leftover in T.remove_partials(_neural_dir(profile.folder)):
        print(f"note: removed {_printable(leftover)}, left in {NEURAL_DIR}/ by a training that was killed",
              file=sys.stderr)
    atlas = profile.settings.get("atlas", {})
    fps = float(atlas.get("fps", 30.0))
    name = _printable(video.name)
    clip_frames = frame_count(video)
    if same_clip:       # the frames the profile was enrolled from
        lo, hi = atlas.get("frame_range", [0, None])
        if clip_frames is not None and lo >= clip_frames:
            raise UserError(f"{name} has {clip_frames} frames, and profile {profile.name!r} was enrolled "
                            f"from its frames {lo}..{hi}: is this the clip it was enrolled from "
                            f"({profile.source})?")
        what = f"frames {lo}..{hi} of {name}" if lo or hi is not None else name
    else:               # --other-video: the enrolled frame range is the enrollment clip's
        lo, hi = 0, None
        what = name
        if (enrolled := atlas.get("frame_range")) is not None:
            print(f"note: training on {name} from its start"
                  + (f" ({count(clip_frames, 'frame')})" if clip_frames else "")
                  + f": the enrolled frames {enrolled[0]}..{enrolled[1]} are those of "
                  f"{_printable(profile.source)}", file=sys.stderr)
    total = (hi - lo + 1) if hi is not None else clip_frames
    stop = None if hi is None else hi + 1
    frames = read_frames(video, lo, stop)
    if same_clip and (others := atlas.get("other_people")):   # enrollment found someone else there
        frames = _without(frames, others)
        total = None if total is None else max(0, total - sum(b - a + 1 for a, b in others))
        print(f"note: training leaves out {name}'s frames "
              f"{', '.join(f'{a}-{b}' for a, b in others[:5])}{', ...' if len(others) > 5 else ''}: "
              f"another person, as the enrollment said", file=sys.stderr)
    try:
        with tqdm(total=total, desc="training pairs", unit="frame") as bar:
            pairs = build_pairs(profile, frames, resolution=args.resolution,
                                fps=fps, progress=bar.update, same_clip=same_clip)
    except UnusableFrames as e:
        hint = ("" if same_clip else
                f". --other-video trains on another clip of the same person filmed with the same "
                f"framing as {_printable(profile.source)}: {_frame_size(profile)}, the face where it "
                f"is there and about as large (e.g. more of the same recording)")
        raise UserError(f"cannot train profile {profile.name!r} on {what}: {e}{hint}") from None
    if not same_clip:
        _same_person_or_force(profile, name, pairs, args.force)
    out_dir = _neural_dir(profile.folder)
    # frames kept from training to test the generator on at the end (the same ones every run)
    split = held_out(pairs, fps)
    clip = "enrolled clip" if same_clip else f"sha256:{sha256_file(video)}"
    options = T.TrainOptions(resolution=args.resolution, steps=args.steps, minutes=args.minutes,
                             batch=args.batch, device=args.device, resume=not args.restart,
                             threads=args.threads, train_on=split.train, held_out=(clip, split.frames))
    trained_on = int(len(split.train))
    # a resumed run's bar counts from its checkpoint's step to that + --steps, as the summary does
    # (a total of --steps under a count from the step resumed made tqdm drop the total and ETA)
    start = 0 if args.restart else _resumed_step(out_dir)
    if args.steps is not None:
        bar = tqdm(total=start + args.steps, initial=start, desc="training", unit="step")
    else:       # --minutes: a bar of the time budget (before: a step count with no total nor ETA)
        bar = tqdm(total=round(60 * args.minutes), desc="training", unit="s",
                   bar_format="{l_bar}{bar}| {elapsed}<{remaining} of " + _budget(args.minutes) + "{postfix}")
    began = time.monotonic()
    done = {"step": None, "saved": None, "shown": None}     # the last step, the last checkpoint's

    def progress(step, losses):
        if args.steps is None:      # the time spent, to the budget (the last step may overrun it)
            bar.update(min(bar.total, round(time.monotonic() - began)) - bar.n)
        elif done["step"] is None and step - 1 != bar.n:     # resumed from another step than read
            bar.initial = bar.n = bar.last_print_n = step - 1
            bar.total = step - 1 + args.steps
        first = done["step"] is None
        done["step"] = step
        if args.steps is not None:
            bar.update(1)
        if step % 5 == 0 or first:
            done["shown"] = {k: f"{v:.3f}" for k, v in losses.items() if k in
                             ("rec", "ssim", "adv", "per", "style", "app", "tmp", "d_loss")}
        if args.steps is None:
            bar.set_postfix({"step": step, **(done["shown"] or {})})
        elif step % 5 == 0 or first:
            bar.set_postfix(done["shown"])

    # Only a finished run's generator is tested against the render (`face_l1`): from the first
    # checkpoint on, a neural profile is atlas until the end of the run decides, so that a run
    # stopped any way (Ctrl-C, a full disk, a kill) never leaves its generator the default.
    back = profile.tier == "neural"

    def commit(files):          # the checkpoints, into the profile (its tier is decided at the end)
        commit_files(profile.folder, {f"{NEURAL_DIR}/{k}": v for k, v in files.items()},
                     tier="atlas" if back else None)

    try:
        result = T.train(pairs, out_dir, options, progress=progress, commit=commit,
                         on_checkpoint=lambda step: done.update(saved=step))
    except KeyboardInterrupt as e:
        step, saved = done["step"], done["saved"]
        if saved is not None and (step is None or saved > step):
            step = saved        # a Ctrl-C between a step's checkpoint and its progress call
        e.args = (_stopped_training(step, saved, _resumed_step(out_dir)),)   # what main prints
        if saved is not None:   # the YAML says what the committed generator now is
            _stopped_settings(e, profile, back, {"resolution": args.resolution, "steps": int(saved),
                                                 "pairs": trained_on})
        raise
    finally:
        bar.close()
    plots = {name: out_dir / f".{name}.partial.png" for name in ("losses", "samples")}
    committed = False
    try:
        # The neural tier becomes the profile's default only where its generator brings the render
        # closer to the real frames it did not train on (`held_out`): a few steps change next to
        # nothing and cost a frame's time, and on its own training frames a generator improves long
        # before it does on others (s32: 68 steps, 0.0327 → 0.0314 on them, "neural").
        generator = profile.folder / GENERATOR_PATH
        seen = T.face_l1(pairs, generator, count=32, index=split.train)
        tested = T.face_l1(pairs, generator, index=split.test) if len(split.test) else None
        unseen = bool(result.get("held_out_unseen", True)) and tested is not None
        better = unseen and tested[1] < (1.0 - NEURAL_MIN_GAIN) * tested[0]
        measured = {"trained": {"render": round(seen[0], 5), "output": round(seen[1], 5)}}
        if tested is not None:
            measured = {"render": round(tested[0], 5), "output": round(tested[1], 5),
                        "held_out": int(len(split.test)), **measured}
        grid = T.samples(pairs, generator)
        # both drawn in memory first: an OSError while drawing (a font matplotlib cannot open)
        # goes on up as itself, naming its file, not as a refused write of the plots
        drawn = {"losses": T.draw_losses(result["history"]),
                 "samples": _png(cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))}
        # each plot is written to its hidden partial file and renamed in by the commit: in the
        # profile it is whole or not at all (the finally removes what a failed write left)
        try:
            for name, png in drawn.items():
                plots[name].write_bytes(png)
            commit_files(profile.folder, {f"{NEURAL_DIR}/{k}.png": v for k, v in plots.items()},
                         tier="neural" if better else "atlas",
                         settings={"neural": {"resolution": args.resolution, "steps": result["steps"],
                                              "pairs": trained_on, "face_l1": measured}})
        except OSError as e:
            # a full disk (or a folder made read-only) while plotting: the steps are saved, as
            # after a Ctrl-C here, and settings.neural says so in the same words (before: a
            # traceback). Only the writes: an OSError from reading the generator (`face_l1`,
            # `samples`) or from drawing the plots, above, goes on up as itself.
            failed = UserError(_plots_not_written(e, out_dir, int(result["steps"])))
            _stopped_settings(failed, profile, back, {"resolution": args.resolution,
                                                      "steps": int(result["steps"]), "pairs": trained_on})
            raise failed from None
        committed = True
    except KeyboardInterrupt as e:
        # the steps are saved (before: "stopped", and settings.neural kept the last finished
        # run's steps and face L1 beside this run's generator)
        if not committed:
            e.args = (f"stopped at step {result['steps']} while measuring and plotting it; saved, `train` "
                      f"resumes from it (the plots come with the next finished run)",)
            _stopped_settings(e, profile, back, {"resolution": args.resolution, "steps": int(result["steps"]),
                                                 "pairs": trained_on})
        raise
    finally:
        for path in plots.values():
            with contextlib.suppress(OSError):
                path.unlink()
    start = int(result.get("resumed_at", 0))
    ran = (f"{count(result['steps'] - start, 'step')} (resumed at step {start}: {result['steps']} in all)"
           if start else count(result["steps"], "step"))
    took = result["seconds"]
    took = f"{took:.1f} s" if took < 120 else f"{took / 60:.1f} min"
    skipped = int(getattr(pairs, "skipped", 0))
    notes = [f"{count(len(split.test), 'frame')} held out to test it"
             + (f", {split.gap} beside them neither" if split.gap else "")] if len(split.test) else []
    if skipped:
        notes.append(f"{count(skipped, 'frame')} left out: the face not where the profile's crop expects it")
    notes = f" ({'; '.join(notes)})" if notes else ""
    print(f"trained {ran} in {took} on {count(trained_on, 'frame')}{notes} → {out_dir}")
    on_seen = f"{seen[0]:.4f} → {seen[1]:.4f} on frames it trained on"
    change = (f"face L1 to the real frames {tested[0]:.4f} → {tested[1]:.4f} on the {len(split.test)} held "
              f"out ({on_seen})" if tested is not None else f"face L1 to the real frames {on_seen}")
    atlas_now = "is now 'atlas' (it was 'neural')" if profile.tier == "neural" else "stays 'atlas'"
    if better:
        print(f"profile tier is now 'neural' ({change})")
    elif tested is None:
        print(f"profile tier {atlas_now}: the clip is too short to hold frames out of training to test the "
              f"generator on ({change}; under {count(round(MIN_HELD_OUT / HELD_OUT_SHARE), 'frame')} none is "
              f"held out): try it with `live --tier neural`, or train on a longer clip")
    elif not unseen:
        print(f"profile tier {atlas_now}: the checkpoint this run resumed had trained on the frames held out "
              f"to test it (it is from before frames were held out, or another split), so they cannot say "
              f"whether it improves on the atlas render ({change}): `train --restart` trains afresh and "
              f"tests it fairly; `live --tier neural` runs it as it is")
    else:
        print(f"profile tier {atlas_now}: the generator does not yet improve on the atlas render on frames it "
              f"did not train on ({change}; 'neural' wants {NEURAL_MIN_GAIN:.0%} lower on the held-out ones): "
              f"train on (`train` resumes), or try it with `live --tier neural`")
    print(f"last losses: {T.summary_json(result)}")
    return 0


def _budget(minutes: float) -> str:
    """--minutes M as the progress bar's budget: "30 min", "1.5 min", "45 s"."""
    return f"{minutes:g} min" if minutes >= 1 else f"{60 * minutes:.3g} s"


def _resumed_step(out_dir: Path) -> int:
    """The step of the checkpoint in `out_dir` that `train` resumes from (0: none, or one whose
    header does not read: the loader then says what is wrong with it)."""
    from realtime.core.profile import STATE_FILE
    from realtime.tiers.neural.checkpoint import read_metadata

    state = out_dir / STATE_FILE
    if not state.is_file():
        return 0
    try:
        step = read_metadata(state).get("step")
    except (OSError, PuppeteerError):
        return 0
    return step if isinstance(step, int) and step >= 0 else 0


def _png(bgr) -> bytes:
    """`bgr` (an OpenCV image) encoded as PNG, in memory."""
    import cv2

    ok, data = cv2.imencode(".png", bgr)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {bgr.shape} {bgr.dtype} image as PNG")
    return data.tobytes()


def _plots_not_written(error: OSError, out_dir: Path, steps: int) -> str:
    """The one line of a training whose steps were saved but whose plots the system refused
    (`error`: a full disk, a quota, a read-only folder): what failed, then what is kept."""
    why = error.strerror or type(error).__name__
    hint = " (free some space)" if out_of_space(error) else ""
    return (f"cannot write the plots of step {steps} in {_printable(str(out_dir))}: {why}{hint}; the steps "
            f"are saved, `train` resumes from step {steps} (the plots come with the next finished run)")


def _stopped_settings(stop: BaseException, profile, back: bool, neural: dict) -> None:
    """After a Ctrl-C (or a refused write of the plots) that left a committed generator:
    settings.neural says what it is (`neural`: its resolution, steps and pairs; no face L1, which
    was the last finished run's), and the stop's message says the tier went back to 'atlas'
    where it was 'neural' (`back`)."""
    from profiles.store import commit_files

    with contextlib.suppress(OSError, PuppeteerError):    # (the stop's message comes first)
        commit_files(profile.folder, {}, settings={"neural": neural})
    if back:
        stop.args = (f"{stop.args[0]}; the profile's tier is 'atlas' again until a finished run "
                     f"shows the generator improves on the render",)


def _frame_size(profile) -> str:
    """The frame size of the clip `profile` was enrolled from (its reference frame's), as WxH."""
    h, w = profile["image"].shape[:2]
    return f"{w}x{h}"


#: How much lower the trained generator's face L1 must be than the render's (`T.face_l1`) for
#: `train` to make the neural tier the profile's default.
NEURAL_MIN_GAIN = 0.02


def _stopped_training(step: int | None, saved: int | None, on_disk: int = 0) -> str:
    """What a Ctrl-C during the steps kept: `step`, the last step done (None: none this run),
    `saved`, the step of this run's last checkpoint (None: none written), `on_disk`, the step of
    the checkpoint `train` now resumes from (`_resumed_step`; 0: none)."""
    if step is None:
        return "stopped before the first step: nothing new to save"
    if saved == step:
        return f"stopped at step {step}; saved, `train` resumes from it"
    if saved is not None:
        return (f"stopped at step {step} while saving it; steps after {saved} are lost, "
                f"`train` resumes from step {saved}")
    # (before: "resumes from the checkpoint before it (if any)", whether there was one or not)
    if on_disk == step:         # its commit done, the Ctrl-C before it was reported (or an older one's)
        return f"stopped at step {step} while saving it; `train` resumes from step {step}, the checkpoint there now"
    if on_disk:
        return (f"stopped at step {step} while saving it; this run's steps are lost, `train` resumes "
                f"from step {on_disk}, the checkpoint there before this run")
    return (f"stopped at step {step} while saving it; this run's steps are lost and no checkpoint "
            f"is saved: `train` starts afresh")


# --------------------------------------------------------------------------------------- export
def cmd_export(args) -> int:
    """The neural tier's TensorRT engine, built from the profile's trained generator and cached
    in the profile with a manifest (realtime/neural/tensorrt.py). The profile is checked first
    (a clear error without a trained generator, GPU or not), then the GPU, then TensorRT."""
    from profiles import load
    from realtime.core.context import require_torch_cuda
    from realtime.tiers.neural import tensorrt as trt_mod

    profile = load(args.profile)
    trt_mod.engine_files(profile, args.precision)      # ProfileError: no trained generator
    if args.device != "cuda":
        raise UserError("a TensorRT engine is built on and for an NVIDIA GPU: use --device cuda")
    require_torch_cuda()
    try:
        builder = trt_mod.TensorRTBuilder()
    except trt_mod.TensorRTMissing as exc:
        raise UserError(f"{exc}; without it, live --device cuda runs the generator with torch "
                        f"FP16 + CUDA graphs") from None
    t0 = time.perf_counter()
    record = trt_mod.ensure_engine(profile, args.precision, builder, force=args.force,
                                   log=lambda text: print(text, flush=True))
    m = record.manifest
    if record.built:
        print(f"built {record.files.engine} in {time.perf_counter() - t0:.1f} s "
              f"({m['precision']}, {m['resolution']}², TensorRT {m['tensorrt']}, {m['gpu']} "
              f"sm_{m['compute_capability'].replace('.', '')})")
    else:
        print(f"{record.files.engine} is up to date (manifest {record.files.manifest}); "
              f"--force rebuilds it")
    print(f"next: {_command('live', '--profile', profile.name, '--device', 'cuda', '--backend', 'tensorrt')}")
    return 0


# --------------------------------------------------------------------------------------- verify
def cmd_verify(args) -> int:
    """Exit 0 when the mark is found (with a payload that checks), 1 when not, 2 on bad input."""
    import json

    from profiles import profiles_root
    from profiles.consent import list_profiles
    from profiles.format import problem
    from realtime.core import paths
    from realtime.core.paths import IMAGE_SUFFIXES
    from realtime.image.verify import WINDOW_S, verify_path

    if args.window is not None and (paths.is_dir(args.path) or Path(args.path).suffix.lower() in IMAGE_SUFFIXES):
        raise UserError(f"--window pools a video's frames; {_printable(args.path)} is "
                        f"{'a folder of images' if paths.is_dir(args.path) else 'an image'}, each checked on its "
                        f"own: drop --window")
    window = WINDOW_S if args.window is None else args.window
    if args.attacks:
        return _verify_attacks(args, window)
    from realtime.image.verify import VerifyError
    from realtime.io.media import check_image

    # the image size caps every other command applies, from the header, before a picture is decoded
    report = verify_path(args.path, window_s=window,
                         check_image=lambda p: check_image(p, VerifyError, f"cannot read {p} as an image"))
    local = []          # the local profiles the fingerprint points to
    if report.found:
        fingerprint = report.pooled.payload.fingerprint_hex
        root = profiles_root()
        for name, fp, consent in list_profiles(root):
            if fp == fingerprint:
                broken = problem(root / name)
                local.append({"profile": name, "consent": consent, "loads": broken is None,
                              **({} if broken is None else {"problem": _printable(broken)})})
    if args.json:
        print(json.dumps({**report.to_json(), "local_profiles": local}, indent=1))
        return 0 if report.found else 1
    print(report.text(show_all=args.all))
    for entry in local:
        fp = report.pooled.payload.fingerprint_hex
        if entry["loads"]:
            print(f"  fingerprint {fp} is local profile {entry['profile']!r} ({entry['consent']})")
        else:      # only its YAML names those arrays: they are missing, damaged or elsewhere
            print(f"  fingerprint {fp} is listed by local profile {entry['profile']!r}, which does not load "
                  f"({entry['problem']})")
    return 0 if report.found else 1


def _arrays_check(folder: Path) -> bool:
    """Whether the files `folder`'s profile.yaml lists are there, inside it, with their sha256."""
    from profiles.format import check_files

    try:
        check_files(folder)
    except (PuppeteerError, OSError):
        return False
    return True


def _verify_attacks(args, window: float) -> int:
    """`verify FILE --attacks`: exit 0 when the mark is in every window of every re-encoded copy."""
    import json

    from bench.provenance import attack_table, format_table

    def progress(row) -> None:
        if row.attack == "as is":
            print(f"re-encoding {args.path} as a call would, reading the mark back from each copy:",
                  file=sys.stderr)
        print(f"  {row.attack}: {row.windows_found} of {row.windows} windows, worst z {row.worst_z:.1f}",
              file=sys.stderr, flush=True)

    rows = attack_table(args.path, window_s=window, progress=progress)
    print(json.dumps([r.to_json() for r in rows], indent=1) if args.json else format_table(rows))
    return 0 if all(r.every_window for r in rows) else 1


# -------------------------------------------------------------------------------------- consent
def cmd_consent(args) -> int:
    from profiles import load, profiles_root, resolve
    from profiles.consent import check_text, describe, list_profiles, record_consent, revoke_consent
    from profiles.format import check_files, problem
    from profiles.schema import ConsentRecordError
    from realtime.image.disclose import profile_fingerprint

    if args.name is None:
        if args.by is not None or args.revoke:
            example = "NAME --revoke" if args.revoke else 'NAME --by "..."'
            raise UserError(f"say which profile: python run.py consent {example}")
        root = profiles_root()
        rows = list_profiles(root)
        print(f"profiles in {root}:" if rows else f"no profiles in {root}")
        for name, fp, consent in rows:    # a profile that `live` refuses is flagged with why, and
            broken = problem(root / name)    # its fingerprint only where its arrays check
            print(f"  {name:20s} fingerprint {fp if broken is None or _arrays_check(root / name) else '?     '}  "
                  f"{consent if broken is None else 'BROKEN: ' + _printable(broken)}")
        return 0
    folder = resolve(args.name)
    if args.by is not None:
        check_text(args.by)            # before anything is read or changed
    try:
        before = load(folder).consent  # the profile verified (hashes, the record) before any change
        broken = False
    except ConsentRecordError:         # a record that does not check: --by / --revoke replace it
        if args.by is None and not args.revoke:
            raise
        check_files(folder)            # but only on a profile whose files are sound
        before, broken = None, True
    if args.revoke:
        if not before and not broken:
            print(f"profile {folder.name!r} has no consent record: nothing to revoke")
        else:
            revoke_consent(folder)
            print(f"revoked {describe(before) if before else 'a consent record that did not check'}; swap "
                  f"refuses this profile until one is recorded again")
    elif args.by is not None:
        record_consent(folder, args.by, via="consent")
        if before or broken:
            print(f"replaced {describe(before) if before else 'a consent record that did not check'}")
    profile = load(folder)
    print(f"profile {folder.name!r} (fingerprint {profile_fingerprint(profile):06x}): "
          f"{describe(profile.consent)}")
    return 0


# ---------------------------------------------------------------------------------------- track
def cmd_track(args) -> int:
    """Landmarks of every frame of a clip → a tracked clip that `--driver` plays without
    MediaPipe (realtime/io/tracked.py)."""
    from tqdm import tqdm

    from realtime.io.capture import ClipSource
    from realtime.io.tracked import default_track_path, is_track_file, track_clip

    clip = Path(args.clip)
    _refuse_photo(clip)
    out = Path(args.out) if args.out else default_track_path(clip)
    if not is_track_file(out):
        raise UserError(f"--out {out}: a tracked clip's name ends in .track.npz")
    if out.exists() and not args.force:
        raise UserError(f"{out} exists: --force replaces it")
    _check_writable(str(out), "--out")        # before the clip is tracked
    source = ClipSource(clip)
    t0 = time.perf_counter()
    try:
        with tqdm(total=source.frame_count, desc=f"track {clip.name}", unit="frame") as bar:
            tracked = track_clip(source, clip, out, progress=bar.update)
    finally:
        source.close()
    found = int(tracked.present.sum())
    print(f"tracked {len(tracked)} frames of {clip.name} ({found} with a face, "
          f"{tracked.size[0]}x{tracked.size[1]}, {tracked.fps:g} fps) in "
          f"{time.perf_counter() - t0:.1f} s → {out}")
    if found == 0:
        print(f"warning: no face was found in {clip.name}: as a driver it moves nothing (is a face in "
              f"view, lit and large enough?)", file=sys.stderr)
        return 0
    beside = out.parent / clip.name
    if beside.is_file():       # the clip, or a copy (a copy that differs is refused when played)
        how = f"the clip's frames come along while {clip.name} is beside it"
    else:    # --out elsewhere: the tracked clip plays the clip only when it finds it beside itself
        how = (f"landmarks only: reenact plays them as they are; --mode swap and passthrough need the "
               f"clip's frames, so copy {clip.name} into {_printable(str(out.parent))!r} beside it")
    print(f"next: {_command('live', '--profile', 'NAME', '--driver', str(out))} ({how})")
    return 0


def _refuse_photo(clip: Path) -> None:
    """UserError when `clip` is an image file (by its header, whatever its name): `track` reads
    a video; a photo would make a one-frame 'clip' at a made-up rate."""
    from realtime.core import paths
    from realtime.io.media import image_size

    size = image_size(clip) if paths.is_file(clip) else None
    if size is not None:
        raise UserError(f"{_printable(str(clip))} is a photo ({size[0]}x{size[1]}), not a video: "
                        f"`track` takes a video file (mp4/mov/...)")


# -------------------------------------------------------------------------------------- devices
def cmd_devices(args) -> int:
    from realtime.io.inventory import format_devices, list_devices

    print(format_devices(list_devices()))
    return 0


# ----------------------------------------------------------------------------------------- main
LABEL_CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")  # = disclose.CORNERS


def _disclosure_args(p: argparse.ArgumentParser) -> None:
    """The label flags. The invisible provenance mark has none: it is always on (README)."""
    p.add_argument("--no-label", action="store_true",
                   help="do not draw the visible label ('AI avatar', in swap 'AI face swap'; the invisible mark stays)")
    p.add_argument("--label-text", default=None, metavar="TEXT",
                   help="the label's text (printable ASCII, up to 40 characters; default 'AI avatar', in swap "
                        "'AI face swap')")
    p.add_argument("--label-corner", default=None, choices=LABEL_CORNERS,
                   help="where the label goes (default bottom-right)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=Path(sys.argv[0]).name or "run.py", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="render the embedded demo (astronaut, scripted performance)")
    d.add_argument("--out", default="demo.mp4", help="output video (default: demo.mp4)")
    d.add_argument("--frames", type=_at_most(1_000_000), default=300, help="frames to render (default 300)")
    d.add_argument("--fps", type=_fps, default=30.0, help="frame rate, 1..240 (default 30)")
    d.add_argument("--size", type=_size, default=None, help="output WxH (default: the photo's size)")
    _disclosure_args(d)
    d.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    d.set_defaults(func=cmd_demo)

    e = sub.add_parser("enroll", help="make an avatar profile from a portrait photo or a video")
    e.add_argument("source", type=_given, help="portrait photo (jpg/png/...) with exactly one face, or a "
                                  "20–60 s video of the target (mp4/mov/...: tier atlas)")
    e.add_argument("--frames", type=_frame_range, default=None, metavar="START:STOP",
                   help="video only: enroll frames START..STOP-1 (e.g. 0:150)")
    e.add_argument("--name", required=True, help="profile name (its folder under profiles/, or under "
                                                 "$PUPPETEER_PROFILES when set): up to 64 letters, digits, '-' or '_'")
    e.add_argument("--crop", type=int, default=256, choices=(128, 256, 384, 512),
                   help="face crop size in pixels (default 256)")
    e.add_argument("--force", action="store_true", help="replace an existing profile")
    e.add_argument("--consent", default=None, metavar="TEXT",
                   help="record who agreed to this face's use and how (swap mode needs it), e.g. "
                        "\"Jane Doe, signed release 2025-03-01\"")
    e.set_defaults(func=cmd_enroll)

    lv = sub.add_parser("live", help="drive an avatar from a camera, clip or image folder")
    lv.add_argument("--profile", required=True, type=_given, help="profile name or folder")
    lv.add_argument("--driver", default="0", type=_given, help="camera index, video file, image folder or tracked "
                                                  "clip (.track.npz, see track) (default 0)")
    lv.add_argument("--sink", default="vcam",
                    help="vcam[:DEVICE] | window[:TITLE] | null | file:OUT.mp4 (default vcam)")
    lv.add_argument("--frames", type=_positive_int, default=None, help="stop after N frames")
    lv.add_argument("--fps", type=_fps, default=None,
                    help="nominal frame rate, 1..240 (default: the source's)")
    lv.add_argument("--overwrite", action="store_true",
                    help="with --sink file:OUT.mp4, replace OUT.mp4 if it exists (and --audio-report's file)")
    lv.add_argument("--size", type=_size, default=None,
                    help="output WxH (default: reenact: the profile's picture, at most 640 px on its "
                         "long side; swap: the driver's own frames)")
    lv.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                    help="where the image stages (render, generate, composite) run (default cpu; "
                         "cuda needs an NVIDIA GPU and the gpu extra)")
    lv.add_argument("--backend", default="torch", choices=("torch", "tensorrt"),
                    help="neural tier on cuda: torch FP16 + CUDA graphs, or the profile's "
                         "TensorRT engine (built on first use; see export)")
    lv.add_argument("--tier", default=None, choices=TIER_NAMES, help="quality tier (default: the profile's)")
    lv.add_argument("--render-size", type=_render_size, default=None, metavar="PX",
                    help="reenact: face crop side in pixels (default: the face's size in the output, "
                         "capped for the CPU budget)")
    rt = lv.add_mutually_exclusive_group()
    rt.add_argument("--realtime", dest="realtime", action="store_true", default=None,
                    help="play a clip at its own fps like a camera: newest frame wins, drops counted "
                         "(default for a camera)")
    rt.add_argument("--offline", dest="realtime", action="store_false",
                    help="every input frame gives one output frame (default for files)")
    lv.add_argument("--no-smooth", action="store_true",
                    help="switch off the motion-compensated temporal smoothing")
    lv.add_argument("--follow-scale", type=_follow, default=None,
                    help="reenact: 0 keeps the avatar's head size fixed, 1 follows your distance "
                         "(default 0)")
    lv.add_argument("--follow-translation", type=_follow, default=None,
                    help="reenact: how much the head follows your sideways motion (default 1)")
    lv.add_argument("--gain", type=gains_argument, action=MergeGains, default=None, metavar="REGION=G,...",
                    help="per-region expression gains, e.g. eyes=1.2,mouth=0.9 (regions: eyes, "
                         "brows, mouth, gaze, pose; 1 = as the driver; default: the profile's "
                         "settings.gains, else 1; gaze and pose: reenact only, swap shows your own eyes "
                         "on your own head, unless --expression-from / --pose-from gives them); "
                         "window hotkeys 1-5 select, +/- change, 0 resets")
    lv.add_argument("--mode", default="reenact", choices=("reenact", "swap"),
                    help="reenact: the avatar moves in its own picture (default); swap: your own "
                         "frame with your face replaced by the profile's (needs its consent record)")
    lv.add_argument("--no-smile-folds", dest="smile_folds", action="store_false",
                    help="reenact: draw no smile folds (by default, while the avatar smiles, the "
                         "folds from its nose wings past its mouth corners are shaded deeper, as a "
                         "real smile's are)")
    lv.add_argument("--keep-grain", action="store_true",
                    help="swap: keep the photo's grain (by default a grainy photo's face, or a blotchy "
                         "photo's skin, is denoised first, or the swap turns them into a speckle)")
    lv.add_argument("--keep-sockets", action="store_true",
                    help="swap: keep the photo's shaded eye sockets as they are (by default sockets "
                         "much darker than the photo's skin, a painting's or a top light's shadow, "
                         "are lifted most of the way towards it, or they read as bruises round your "
                         "own eyes under your light)")
    lv.add_argument("--fill-far-side", action=argparse.BooleanOptionalAction, default=None,
                    help="swap: fill a turned photo's squeezed far cheek and temple (their shadow and "
                         "hair, which your frontal face shows stretched as a dark band) from the "
                         "mirrored near side (default on; a frontal photo is never changed); "
                         "--no-fill-far-side uses the photo as it is")
    lv.add_argument("--drop-fringe", action=argparse.BooleanOptionalAction, default=None,
                    help="swap: leave the photo's fringe out: where hair covers most of its forehead, "
                         "all of the forehead above the brows goes and yours shows (by default the "
                         "fringe is painted out of the photo with its own skin, so the forehead is the "
                         "profile's (not the atlas tier's keyframes); dropping it costs more likeness to "
                         "a photo that wears the fringe). "
                         "Default: the profile's settings (swap: {drop_fringe: true}), else off")
    lv.add_argument("--keep-glasses", action=argparse.BooleanOptionalAction, default=True,
                    help="swap: keep your glasses' rims in front of the swapped face (found by their "
                         "shape round your eyes over the first second; taken off, within a second; put "
                         "on, within a few seconds: 3-7 s on the eval clips; default on). --no-keep-glasses "
                         "paints the profile's eyes over them; 'g' in the window switches it live")
    lv.add_argument("--hide-unswapped", action="store_true",
                    help="swap: a frame with no face to swap (the tracker lost yours: turned away, "
                         "covered, too small, out of view) goes out blurred past recognition, never "
                         "as it is (default: it passes as it is, your own face in it); the space "
                         "hotkey's passthrough still shows it")
    lv.add_argument("--pose-from", default=None, type=_given, metavar="SOURCE",
                    help="remix: take the head pose from SOURCE instead: still (a steady head), "
                         "script (the demo performance), a camera index, a clip, an image folder or "
                         "a CLIP.track.npz (run.py track)")
    lv.add_argument("--expression-from", default=None, type=_given, metavar="SOURCE",
                    help="remix: take the expression from SOURCE instead (still, script, a camera, "
                         "a clip, an image folder, a CLIP.track.npz)")
    lv.add_argument("--audio", default=None, metavar="IN:OUT",
                    help="also pass the microphone IN to the output OUT, delayed to stay in sync "
                         "with the video: PulseAudio/PipeWire source:sink names where that server "
                         "runs (e.g. vmic:engine_out), else PortAudio names or indices, or "
                         "default:default (python run.py devices lists them; needs PortAudio)")
    lv.add_argument("--audio-report", default=None, metavar="JSON",
                    help="with --audio: write the audio report and the frames' and audio's "
                         "timing to this file")
    _disclosure_args(lv)
    lv.set_defaults(func=cmd_live)

    t = sub.add_parser("train", help="train the neural tier of a video profile")
    t.add_argument("--profile", required=True, type=_given, help="a profile enrolled from a video")
    t.add_argument("--video", required=True, type=_given, help="the clip the profile was enrolled from")
    t.add_argument("--other-video", action="store_true",
                   help="train on a clip other than the one the profile was enrolled from")
    length = t.add_mutually_exclusive_group()
    length.add_argument("--steps", type=_at_most(10_000_000), default=None, help="optimisation steps")
    length.add_argument("--minutes", type=_minutes, default=None,
                        help="train for this long (at most a week): the training steps and their "
                             "checkpoints, from the first step; building the pairs before (its own "
                             "bar) and measuring and plotting after (seconds to a minute) come on top")
    t.add_argument("--resolution", type=int, default=None, choices=(128, 256, 512),
                   help="generator resolution (default: the checkpoint's when it resumes, else the "
                        "profile's last training's, else 128: real time on a laptop CPU)")
    t.add_argument("--batch", type=_at_most(256), default=4, help="batch size (default 4)")
    t.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="where to train (default cpu; cuda needs an NVIDIA GPU and a CUDA build of torch)")
    t.add_argument("--threads", type=_at_most(256), default=None, help="torch CPU threads")
    t.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    t.add_argument("--force", action="store_true",
                   help="--other-video: train even when its faces look like another person's")
    t.set_defaults(func=cmd_train)

    x = sub.add_parser("export", help="build the neural tier's TensorRT engine into the profile")
    x.add_argument("--profile", required=True, type=_given, help="a profile with a trained generator")
    x.add_argument("--precision", default="fp16", choices=("fp16", "fp32"),
                   help="engine precision (default fp16)")
    x.add_argument("--device", default="cuda", choices=("cpu", "cuda"), metavar="cuda",
                   help="the GPU to build for: cuda only, TensorRT builds on and for an NVIDIA GPU "
                        "(--device cpu is refused with that reason)")
    x.add_argument("--force", action="store_true", help="rebuild even when the cached engine matches")
    x.set_defaults(func=cmd_export)

    tr = sub.add_parser("track", help="save the landmarks of every frame of a clip (CLIP.track.npz), "
                                      "so that --driver plays it without MediaPipe")
    tr.add_argument("clip", type=_given, help="a video file")
    tr.add_argument("--out", default=None, type=_given, metavar="CLIP.track.npz",
                    help="where to write (default: the clip's name with .track.npz, beside it)")
    tr.add_argument("--force", action="store_true", help="replace an existing file")
    tr.set_defaults(func=cmd_track)

    dv = sub.add_parser("devices", help="list cameras, virtual cameras, audio devices and GPUs")
    dv.set_defaults(func=cmd_devices)

    v = sub.add_parser("verify", help="find this engine's invisible mark in a video, image or folder "
                                      "(exit 0 found, 1 not found, 2 bad input)")
    v.add_argument("path", type=_given, help="a video file, an image file or a folder of images")
    v.add_argument("--window", type=float, default=None, help="seconds of video pooled per window (default 2)")
    v.add_argument("--all", action="store_true", help="list every window, however many")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.add_argument("--attacks", action="store_true",
                   help="re-encode the video as a call would (H.264 at 300 kbit/s, 320x240, +10%% brightness, "
                        "all three) and read the mark back from each copy: a table; exit 0 when every "
                        "window of every copy carries it")
    v.set_defaults(func=cmd_verify)

    c = sub.add_parser("consent", help="record who agreed to a profile's use (swap needs it); "
                                       "without NAME, list the profiles and their records")
    c.add_argument("name", nargs="?", default=None, type=_given, help="profile name or folder")
    who = c.add_mutually_exclusive_group()
    who.add_argument("--by", default=None, metavar="TEXT",
                     help="who agreed and how, e.g. \"Jane Doe, signed release 2025-03-01\"")
    who.add_argument("--revoke", action="store_true", help="remove the profile's consent record")
    c.set_defaults(func=cmd_consent)

    b = sub.add_parser("bench", help="latency and quality benchmark")
    bench_cli.add_arguments(b)
    b.set_defaults(func=bench_cli.main)
    return p


def _stdout_reader_gone() -> bool:
    """True when standard output is a pipe or a socket whose reader has closed it (poll reports
    an error or a hang-up on it: Linux pipes say POLLERR, sockets and BSD pipes POLLHUP)."""
    import select

    try:
        fd = sys.stdout.fileno()
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            return False
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):    # closed, or replaced by one without a descriptor
        return True


def main(argv=None) -> int:
    """The CLI. A `PuppeteerError` (anything the user can fix) is printed as one ``error:`` line
    and exits 2; a Ctrl-C (or SIGTERM, SIGHUP) prints its message, or "stopped", and exits 130 (143, 129),
    also when a clean-up it cut short failed after it (then a second line names that failure);
    any other exception is a bug and shows its traceback."""
    args = build_parser().parse_args(argv)
    replaced = _on_sigterm()
    int_installed, int_previous = _on_sigint()
    user_stop.on_waiting = _finishing_note
    try:
        return int(args.func(args) or 0)
    except PuppeteerError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"error: {_printable(first)}", file=sys.stderr)
        if after := getattr(e, "after", ""):     # what a run it stopped left (`_drive`)
            print(f"  ({_printable(after)})", file=sys.stderr)
        return 2
    except BrokenPipeError:            # `run.py verify x.mp4 | head`: the reader has what it wanted
        if not _stdout_reader_gone():
            raise                      # another pipe broke: a bug, with its traceback
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        return 141
    except KeyboardInterrupt as e:     # its message, where one says what was kept
        with contextlib.suppress(OSError):     # after a SIGHUP the terminal may be gone
            print(_printable(str(e)) if str(e) else "stopped", file=sys.stderr)
        return _stop_code(e)
    except Exception as e:
        # a clean-up that failed because the Ctrl-C cut something short (numba's compile in
        # the warm-up, seen once): the user asked to stop, and stopped it is
        stop = _interrupt_behind(e)
        if stop is None and isinstance(e, OSError) and user_stop.requested():
            # a terminal hung up (SIGHUP): writing the summary to it fails with EIO once the run
            # has stopped and its file is in place; there is no one to tell
            return 128 + (_last_signal[0] if _last_signal else int(signal.SIGINT))
        if stop is None:
            raise
        first = (str(e).strip().splitlines() or [""])[0]
        with contextlib.suppress(OSError):      # the terminal may be gone (SIGHUP)
            print(_printable(str(stop)) if str(stop) else "stopped", file=sys.stderr)
            print(f"  (while stopping: {type(e).__name__}{': ' if first else ''}{_printable(first)})",
                  file=sys.stderr)
        return _stop_code(stop)
    finally:
        for signum, previous in replaced:
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        if int_installed:
            signal.signal(signal.SIGINT, int_previous)
        user_stop.clear()
        user_stop.on_waiting = None
        _last_signal.clear()


def _finishing_note(left: int) -> None:
    """Said at the first Ctrl-C that a run's closing waits out (`realtime.core.stop.through_stops`)."""
    with contextlib.suppress(OSError):
        print(f"stopping: finishing the output first (Ctrl-C {count(left, 'more time')} to abandon it)",
              file=sys.stderr)


def _interrupt_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (or SIGTERM) that `error` was raised while handling, if any (on its
    ``__context__`` chain)."""
    seen: set[int] = set()
    e: BaseException | None = error.__context__
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        e = e.__context__
    return None


#: the last stop signal's number (`main`'s exit status when only an OSError is left of it)
_last_signal: list[int] = []


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (`signum`), raised like a Ctrl-C so that every `finally` runs (the file
    sink finishes and renames its file, a save removes its temporary folder)."""

    signum = int(signal.SIGTERM)


def _stop_code(stop: KeyboardInterrupt) -> int:
    """The exit status of a run stopped by `stop`: 128 + the signal's number (130 for a Ctrl-C)."""
    return 128 + (stop.signum if isinstance(stop, _Terminated) else int(signal.SIGINT))


#: Signals that stop a run as SIGTERM does: a closed terminal or a dropped SSH session (SIGHUP)
#: left the recording under its hidden partial name, with no word.
_TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _on_sigterm() -> list:
    """Install the SIGTERM and SIGHUP handler (main thread only): [(signal, the previous handler)]
    of those replaced. An ignored one (`nohup`) stays ignored."""
    def terminated(signum, frame):
        user_stop.note()
        _last_signal[:] = [int(signum)]
        stop = _Terminated()
        stop.signum = int(signum)
        raise stop

    replaced = []
    for signum in _TERMINATING:
        try:
            if signum != signal.SIGTERM and signal.getsignal(signum) == signal.SIG_IGN:
                continue
            replaced.append((signum, signal.signal(signum, terminated)))
        except (ValueError, OSError):     # not the main thread
            break
    return replaced


def _on_sigint():
    """Install the Ctrl-C handler (main thread only): the one there before (Python's own raises
    KeyboardInterrupt), which also records the stop (`realtime.core.stop`: a Ctrl-C that a
    library swallows still stops a profile's replacement). An ignored SIGINT (a job started in
    the background of a script) stays ignored. (installed, the previous handler)."""
    try:
        previous = signal.getsignal(signal.SIGINT)
        if previous in (signal.SIG_IGN, None):
            return False, None
        chained = previous if callable(previous) else signal.default_int_handler

        def interrupted(signum, frame):
            user_stop.note()
            _last_signal[:] = [int(signum)]
            chained(signum, frame)

        return True, signal.signal(signal.SIGINT, interrupted)
    except (ValueError, OSError):     # not the main thread
        return False, None


if __name__ == "__main__":
    sys.exit(main())
