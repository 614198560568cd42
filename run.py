#!/usr/bin/env python3
"""Puppeteer: drive an avatar face from a webcam into a virtual camera.

    python run.py demo                      the embedded default: astronaut + scripted performance
    python run.py enroll PHOTO --name NAME  make an avatar profile from a portrait
    python run.py live --profile NAME       webcam → avatar → virtual camera
    python run.py train --profile NAME ...  train the neural tier on the profile's video
    python run.py export --profile NAME     build the neural tier's TensorRT engine (GPU)
    python run.py bench --profile NAME ...  latency and quality benchmark
    python run.py devices                   cameras, virtual cameras, audio, GPU

Every subcommand has --help. User mistakes print one line starting with "error:" and exit 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from realtime.core.errors import PuppeteerError  # noqa: E402
from realtime.tiers.registry import TIER_NAMES  # noqa: E402  (light: imports no tier)


class UserError(PuppeteerError):
    """A mistake in the command line that only the CLI can see (e.g. a flag for another device)."""


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w < 16 or h < 16:
            raise ValueError
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size wants WIDTHxHEIGHT of at least 16x16, got {text!r}")


def _frame_range(text: str) -> tuple[int, int | None]:
    a, sep, b = text.partition(":")
    try:
        start = int(a) if a else 0
        stop = int(b) if b else None
    except ValueError:
        start, stop = -1, None
    if not sep or start < 0 or (stop is not None and stop <= start):
        raise argparse.ArgumentTypeError(f"--frames wants START:STOP with 0 ≤ START < STOP, got {text!r}")
    return start, stop


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"wants a whole number ≥ 1, got {text!r}")
    return v


# ----------------------------------------------------------------------------------------- demo
def cmd_demo(args) -> int:
    from realtime.io.capture import Grabber
    from realtime.engine.loop import Engine, EngineOptions
    from realtime.io.performance import ScriptedSource

    profile = demo_profile()
    engine = Engine(profile, EngineOptions(fps=args.fps, output_size=args.size))
    source = ScriptedSource(profile["neutral"], frames=args.frames, fps=args.fps)
    out = Path(args.out)
    report = _drive(engine, Grabber(source, realtime=False), f"file:{out}", args.fps,
                    realtime=False, total=args.frames, label="demo")
    print(f"wrote {out} ({report.frames} frames, {engine.output_size[0]}x{engine.output_size[1]})")
    print(report.summary(warmup=min(10, report.frames // 4)))
    return 0


def demo_profile():
    """The astronaut of scikit-image (public domain), enrolled once into profiles/astronaut."""
    import skimage.data

    from profiles import ProfileError, load, profiles_root, save
    from profiles.enroll import build_profile, detect_single_face

    try:
        return load("astronaut")
    except ProfileError:
        pass
    rgb = skimage.data.astronaut()
    profile = build_profile(rgb, detect_single_face(rgb, "skimage.data.astronaut()"),
                            name="astronaut", source="skimage.data.astronaut()")
    save(profile, profiles_root() / "astronaut", overwrite=True)
    return profile


# --------------------------------------------------------------------------------------- enroll
def cmd_enroll(args) -> int:
    from profiles.enroll_video import enroll

    start, stop = args.frames or (0, None)
    t0 = time.perf_counter()
    folder = enroll(args.source, args.name, crop_size=args.crop, force=args.force,
                    progress=sys.stderr.isatty(), start=start, stop=stop)
    print(f"enrolled {args.name!r} in {time.perf_counter() - t0:.1f} s → {folder}")
    print(f"next: python run.py live --profile {args.name} --driver 0 --sink window")
    return 0


# ----------------------------------------------------------------------------------------- live
def cmd_live(args) -> int:
    # The audio process first: a bad device name fails at once, and its streams settle (a
    # PortAudio output on PulseAudio takes about 2 s) while the engine's modules load.
    bridge = _audio_bridge(args.audio) if args.audio else None
    try:
        report = _live(args, bridge)
    finally:
        if bridge is not None:
            bridge.stop()
    if bridge is not None:
        report.audio = bridge.stop()
        if args.audio_report:
            _write_json(args.audio_report, bridge.timeline())
    if args.sink.startswith("file:"):
        print(f"wrote {args.sink[5:]}")
    print(report.summary(warmup=min(10, report.frames // 4)))
    return 0


def _live(args, bridge):
    from profiles import load
    from realtime.io.capture import Grabber, open_source
    from realtime.mesh.fuse import FuseConfig
    from realtime.engine.loop import Engine, EngineOptions

    from realtime.core.context import check_device

    check_device(args.device)
    if args.backend == "tensorrt" and args.device != "cuda":
        raise UserError("--backend tensorrt runs on the GPU: add --device cuda")
    profile = load(args.profile)
    source = open_source(args.driver, fps=args.fps)
    realtime = source.is_live if args.realtime is None else args.realtime
    fps = args.fps or source.fps or 30.0
    options = EngineOptions(tier=args.tier, output_size=args.size, fps=fps, realtime=realtime,
                            smooth=not args.no_smooth, device=args.device, backend=args.backend,
                            fuse=FuseConfig(follow_scale=args.follow_scale,
                                            follow_translation=args.follow_translation))
    engine = Engine(profile, options)
    total = args.frames or source.frame_count
    return _drive(engine, Grabber(source, realtime=realtime), args.sink, fps, realtime,
                  total=total, max_frames=args.frames, label=f"live {profile.name}", audio=bridge)


def _audio_bridge(spec: str):
    """The audio process for `--audio IN:OUT`, its streams running but silent until `_drive`
    gives it the first frame's latency (after the engine's warm-up)."""
    from realtime.io.audio import AudioBridge

    bridge = AudioBridge(spec)
    bridge.open()
    return bridge


def _write_json(path: str, data) -> None:
    import json

    Path(path).write_text(json.dumps(data, indent=1))
    print(f"wrote {path}")


def _drive(engine, grabber, sink_spec, fps, realtime, total=None, max_frames=None, label="",
           audio=None):
    """Open the sink, run the loop with a progress bar, return the RunReport. `audio`: an open
    AudioBridge, fed every frame's measured latency."""
    from tqdm import tqdm

    from realtime.engine.loop import run
    from realtime.io.sinks import ThreadedSink, make_sink

    sink = ThreadedSink(make_sink(sink_spec, fps), realtime=realtime)
    sink.open(*engine.output_size, fps)
    bar = tqdm(total=max_frames or total, desc=label, unit="frame", leave=False,
               disable=not sys.stderr.isatty() and os.environ.get("CI") == "true")

    def tick(frame):
        bar.update(1)
        if audio is not None:  # the sound passes from the first frame's latency on
            audio.on_frame(frame)

    if audio is not None:
        audio.wait_settled()  # else the first seconds of sound would be silent or off
    try:
        # A live session keeps the last ten minutes of per-frame rows for its summary.
        return run(engine, grabber, sink, max_frames=max_frames, on_frame=tick,
                   history=18000 if realtime else None)
    finally:
        bar.close()
        engine.close()


# ---------------------------------------------------------------------------------------- train
def cmd_train(args) -> int:
    import cv2
    from tqdm import tqdm

    from profiles import load
    from profiles.format import attach_files
    from realtime.core.profile import GENERATOR_PATH, NEURAL_DIR, STATE_FILE
    from realtime.train import loop as T
    from realtime.train.dataset import build_pairs

    if args.steps is None and args.minutes is None:
        raise UserError("say how long to train: --steps N or --minutes M")
    if args.device == "cuda":
        from realtime.core.context import require_torch_cuda

        require_torch_cuda()
    profile = load(args.profile)
    if not profile.has_atlas:
        raise UserError(f"profile {profile.name!r} was enrolled from a photo; the neural tier "
                        f"trains on a video of the target (python run.py enroll CLIP.mp4 --name NAME)")
    atlas = profile.settings.get("atlas", {})
    lo, hi = atlas.get("frame_range", [0, None])
    fps = float(atlas.get("fps", 30.0))
    video = Path(args.video)
    if not video.is_file():
        raise UserError(f"no such video: {video} (the clip profile {profile.name!r} was enrolled "
                        f"from: {profile.source})")
    from profiles.enroll_video import read_frames

    total = (hi - lo + 1) if hi is not None else None
    stop = None if hi is None else hi + 1
    with tqdm(total=total, desc="training pairs", unit="frame") as bar:
        pairs = build_pairs(profile, read_frames(video, lo, stop), resolution=args.resolution,
                            fps=fps, progress=bar.update)
    out_dir = profile.folder / NEURAL_DIR
    rel = [f"{NEURAL_DIR}/{STATE_FILE}", GENERATOR_PATH]
    options = T.TrainOptions(resolution=args.resolution, steps=args.steps, minutes=args.minutes,
                             batch=args.batch, device=args.device, resume=not args.restart,
                             threads=args.threads)
    bar = tqdm(total=args.steps, desc="training", unit="step")

    def progress(step, losses):
        bar.update(1)
        if step % 5 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items() if k in
                             ("rec", "ssim", "adv", "per", "style", "tmp", "d_loss")})

    def checkpointed():
        attach_files(profile.folder, rel, tier="neural")

    try:
        result = T.train(pairs, out_dir, options, progress=progress, on_checkpoint=checkpointed)
    finally:
        bar.close()
    T.plot_losses(result["history"], out_dir / "losses.png")
    grid = T.samples(pairs, profile.folder / GENERATOR_PATH)
    cv2.imwrite(str(out_dir / "samples.png"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    attach_files(profile.folder, rel + [f"{NEURAL_DIR}/losses.png", f"{NEURAL_DIR}/samples.png"],
                 tier="neural", settings={"neural": {"resolution": args.resolution,
                                                     "steps": result["steps"],
                                                     "pairs": int(len(pairs))}})
    print(f"trained {result['steps']} steps in {result['seconds'] / 60:.1f} min on {len(pairs)} "
          f"frames → {out_dir} (profile tier is now 'neural')")
    print(f"last losses: {T.summary_json(result)}")
    return 0


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
    print(f"next: python run.py live --profile {profile.name} --device cuda --backend tensorrt")
    return 0


# -------------------------------------------------------------------------------------- devices
def cmd_devices(args) -> int:
    from realtime.io.inventory import format_devices, list_devices

    print(format_devices(list_devices()))
    return 0


# ----------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="render the embedded demo (astronaut, scripted performance)")
    d.add_argument("--out", default="demo.mp4", help="output video (default: demo.mp4)")
    d.add_argument("--frames", type=_positive_int, default=300, help="frames to render (default 300)")
    d.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    d.add_argument("--size", type=_size, default=None, help="output WxH (default: the photo's size)")
    d.set_defaults(func=cmd_demo)

    e = sub.add_parser("enroll", help="make an avatar profile from a portrait photo or a video")
    e.add_argument("source", help="portrait photo (jpg/png/...) with exactly one face, or a "
                                  "20–60 s video of the target (mp4/mov/...: tier atlas)")
    e.add_argument("--frames", type=_frame_range, default=None, metavar="START:STOP",
                   help="video only: enroll frames START..STOP-1 (e.g. 0:150)")
    e.add_argument("--name", required=True, help="profile name (folder under profiles/)")
    e.add_argument("--crop", type=int, default=256, choices=(128, 256, 384, 512),
                   help="face crop size in pixels (default 256)")
    e.add_argument("--force", action="store_true", help="replace an existing profile")
    e.set_defaults(func=cmd_enroll)

    lv = sub.add_parser("live", help="drive an avatar from a camera, clip or image folder")
    lv.add_argument("--profile", required=True, help="profile name or folder")
    lv.add_argument("--driver", default="0", help="camera index, video file or image folder (default 0)")
    lv.add_argument("--sink", default="vcam",
                    help="vcam | window | null | file:OUT.mp4 (default vcam)")
    lv.add_argument("--frames", type=_positive_int, default=None, help="stop after N frames")
    lv.add_argument("--fps", type=float, default=None, help="nominal frame rate (default: the source's)")
    lv.add_argument("--size", type=_size, default=None, help="output WxH (default: the profile's)")
    lv.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                    help="where the image stages (render, generate, composite) run (default cpu; "
                         "cuda needs an NVIDIA GPU and the gpu extra)")
    lv.add_argument("--backend", default="torch", choices=("torch", "tensorrt"),
                    help="neural tier on cuda: torch FP16 + CUDA graphs, or the profile's "
                         "TensorRT engine (built on first use; see export)")
    lv.add_argument("--tier", default=None, choices=TIER_NAMES, help="quality tier (default: the profile's)")
    rt = lv.add_mutually_exclusive_group()
    rt.add_argument("--realtime", dest="realtime", action="store_true", default=None,
                    help="play a clip at its own fps like a camera: newest frame wins, drops counted "
                         "(default for a camera)")
    rt.add_argument("--offline", dest="realtime", action="store_false",
                    help="every input frame gives one output frame (default for files)")
    lv.add_argument("--no-smooth", action="store_true",
                    help="switch off the motion-compensated temporal smoothing")
    lv.add_argument("--follow-scale", type=float, default=0.0,
                    help="0 keeps the avatar's head size fixed, 1 follows your distance (default 0)")
    lv.add_argument("--follow-translation", type=float, default=1.0,
                    help="how much the head follows your sideways motion (default 1)")
    lv.add_argument("--audio", default=None, metavar="IN:OUT",
                    help="also pass the microphone IN to the output OUT, delayed to stay in sync "
                         "with the video: PulseAudio/PipeWire source:sink names where that server "
                         "runs (e.g. vmic:engine_out), else PortAudio names or indices, or "
                         "default:default (python run.py devices lists them; needs PortAudio)")
    lv.add_argument("--audio-report", default=None, metavar="JSON",
                    help="with --audio: write the audio report and the frames' and audio's "
                         "timing to this file")
    lv.set_defaults(func=cmd_live)

    t = sub.add_parser("train", help="train the neural tier of a video profile")
    t.add_argument("--profile", required=True, help="a profile enrolled from a video")
    t.add_argument("--video", required=True, help="the clip the profile was enrolled from")
    length = t.add_mutually_exclusive_group()
    length.add_argument("--steps", type=_positive_int, default=None, help="optimisation steps")
    length.add_argument("--minutes", type=float, default=None, help="train for this long")
    t.add_argument("--resolution", type=int, default=128, choices=(128, 256, 512),
                   help="generator resolution (default 128: real time on a laptop CPU)")
    t.add_argument("--batch", type=_positive_int, default=4, help="batch size (default 4)")
    t.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    t.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads")
    t.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    t.set_defaults(func=cmd_train)

    x = sub.add_parser("export", help="build the neural tier's TensorRT engine into the profile")
    x.add_argument("--profile", required=True, help="a profile with a trained generator")
    x.add_argument("--precision", default="fp16", choices=("fp16", "fp32"),
                   help="engine precision (default fp16)")
    x.add_argument("--device", default="cuda", choices=("cpu", "cuda"),
                   help="the GPU to build for (TensorRT needs cuda; default cuda)")
    x.add_argument("--force", action="store_true", help="rebuild even when the cached engine matches")
    x.set_defaults(func=cmd_export)

    dv = sub.add_parser("devices", help="list cameras, virtual cameras, audio devices and GPUs")
    dv.set_defaults(func=cmd_devices)

    try:
        from bench import runner
    except ImportError:
        runner = None
    if runner is not None:
        b = sub.add_parser("bench", help="latency and quality benchmark")
        runner.add_arguments(b)
        b.set_defaults(func=runner.main)
    return p


def main(argv=None) -> int:
    """The CLI. A `PuppeteerError` (anything the user can fix) is printed as one ``error:`` line
    and exits 2; any other exception is a bug and shows its traceback."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PuppeteerError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"error: {first}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
