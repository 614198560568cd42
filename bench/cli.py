"""`run.py bench`: latency, comparisons and quality of the engine on a driver clip or camera.

    run.py bench --profile P --driver CLIP|0 [--frames N] [--warmup N] [--device cpu|cuda]
                 [--json OUT.json] [--plot OUT.png] [--quality] [--self-reenact VIDEO]
                 [--self-drive CLIP [--frame K]] [--sheet OUT.png]
                 [--compare KEY=A,B | --compare list] [--roundtrip] [--block N]
                 [--mode reenact|swap] [--pose-from SOURCE] [--expression-from SOURCE]
                 [--gain REGION=G,...]
    run.py bench --streams N|A,B,.. --profile P[,P2..] --driver CLIP[,CLIP2..] [--stream-mode M]

`add_arguments` registers the options on the subcommand's parser; `main` runs the benchmark
(`bench.benchmark.run_benchmark`, which says what each pass measures) and maps a
`PuppeteerError` (a user mistake: `bench.usage.UsageError`, a profile that cannot be read, a
driver that cannot be opened, ...) to one ``error: <first line>`` line on stderr and exit code
2; a Ctrl-C goes on up with what a stopped bench leaves (`STOPPED`; where it came while the
report was printed or the files written, that and which files are written), which run.py
prints as it does every command's stop (exit 130, 143 for a SIGTERM); any other exception is
a bug and propagates. ``--compare list`` prints the comparison keys with their help, marking
those that --mode and --device would refuse, and says on stderr which other options given with
it are ignored (it runs nothing).

This module is light: building the parser (``run.py --help``, ``run.py bench --help``) imports
neither the engine nor numba nor torch; `main` imports them when a benchmark runs.
"""
from __future__ import annotations

import argparse
import sys

from bench.usage import DEFAULT_BLOCK, DEFAULT_CAMERA_FRAMES, DEFAULT_WARMUP, DEVICE_NAMES, UsageError, given
from realtime.core.errors import PuppeteerError
from realtime.mesh.gains import MergeGains, gains_argument

__all__ = ["add_arguments", "main", "UsageError"]


def _positive(minimum: int = 1):
    """An argparse type: a whole number ≥ `minimum` (the message leaves out the option's name:
    argparse puts it in front)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be ≥ {minimum}, got {v}")
        return v
    return parse


class _Once(argparse.Action):
    """An option given at most once: a second one would silently replace the first."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} is given twice ({getattr(namespace, self.dest)} and {values}): "
                         f"one comparison a run (bench twice, or compare one key)")
        setattr(namespace, self.dest, values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the `bench` options on `parser` (the subcommand's parser). The options of another
    one (--frame, --block, --stream-mode) default to None, so that one given without it is told
    (`bench.benchmark.check_given`); their defaults apply where they are used."""
    parser.description = ("Measure the engine: per-stage latency percentiles, fps and drops "
                          "(realtime pass), optional quality metrics (offline pass), "
                          "side-by-side comparisons with ratios.")
    parser.add_argument("--profile", metavar="P", type=given,
                        help="avatar profile: a name under profiles/ or a profile folder")
    parser.add_argument("--driver", metavar="CLIP|0", type=given,
                        help="driver video file, tracked clip (CLIP.track.npz, see run.py track), image "
                             "folder, or camera index")
    parser.add_argument("--frames", type=_positive(), metavar="N",
                        help="driver frames per pass, warm-up included (default: the whole clip;"
                             f" {DEFAULT_CAMERA_FRAMES} from a camera)")
    parser.add_argument("--warmup", type=_positive(0), default=DEFAULT_WARMUP,
                        metavar="N", help=f"first frames left out of the latency statistics "
                                          f"(default {DEFAULT_WARMUP})")
    parser.add_argument("--device", default="cpu", choices=sorted(DEVICE_NAMES),
                        help="where the kernels run (default cpu)")
    parser.add_argument("--json", metavar="OUT.json", help="write the result as JSON")
    parser.add_argument("--plot", metavar="OUT.png",
                        help="latency histogram + per-frame timeline stacked by stage")
    parser.add_argument("--quality", action="store_true",
                        help="offline quality pass: expr_err, pose_err_deg, id_dist, fwe, jitter_px, "
                             "and the expression fidelity per signal (gain, r)")
    parser.add_argument("--self-reenact", metavar="VIDEO", type=given, dest="self_reenact",
                        help="enroll VIDEO's first half as an atlas (its first frame as a photo "
                             "when the clip is too short or poor for one; or --profile, enrolled "
                             "from that half), drive with its second half, report PSNR/SSIM "
                             "against the real frames")
    parser.add_argument("--self-drive", metavar="CLIP", type=given, dest="self_drive",
                        help="expression fidelity: enroll one frame of CLIP as a photo profile "
                             "(--frame), drive it with the whole clip, report per signal how much "
                             "of the motion arrives (gain, r) and PSNR/SSIM against the real frames")
    parser.add_argument("--frame", type=_positive(0), default=None, metavar="K",
                        help="--self-drive: the frame of CLIP the profile is made from (default 0)")
    parser.add_argument("--sheet", metavar="OUT.png",
                        help="with --quality or --self-drive: a contact sheet, driver above output, "
                             "at the driver's widest eyes, closed (else narrowest) eyes, highest brows, widest mouth, "
                             "strongest smile and furthest gaze (--mode swap: its first face, widest mouth, "
                             "furthest turn and largest light change, whole frames)")
    parser.add_argument("--floor", action="store_true",
                        help="with --quality or --self-drive: also track each driver frame's copy "
                             "downscaled to 40%% and back, and report per signal the r it reads "
                             "against the driver: the measure's own floor on this clip (a signal "
                             "the driver hardly moves reads low even there), and each frame flipped "
                             "left to right, tracked and flipped back (mirror r: the same motion in "
                             "another picture, as an output is); in reenactment also "
                             "the driver's own video's flow warping error and identity drift, "
                             "beside the output's")
    parser.add_argument("--compare", metavar="KEY=A,B", action=_Once,
                        help="run variants side by side, interleaved, with ratios "
                             "(e.g. tier=warp,atlas); '--compare list' lists the keys; one key a run")
    parser.add_argument("--block", type=_positive(), default=None, metavar="N",
                        help=f"frames per interleaved block with --compare (default {DEFAULT_BLOCK})")
    parser.add_argument("--gain", type=gains_argument, action=MergeGains, default=None, metavar="REGION=G,...",
                        help="per-region expression gains on top of the profile's own (as live "
                             "--gain), e.g. eyes=0.7,mouth=0.75: measure what a damped or "
                             "exaggerated region does to the rest (regions: eyes, brows, mouth, "
                             "gaze, pose)")
    parser.add_argument("--mode", default="reenact", choices=("reenact", "swap"),
                        help="reenact: the avatar in its own frame (default); swap: the driver's own "
                             "frame with the face replaced (--quality then reports id_photo, id_driver, "
                             "psnr_scene, fwe_face; see bench/swap.py)")
    parser.add_argument("--pose-from", metavar="SOURCE", type=given, dest="pose_from", default=None,
                        help="remix: the head pose from SOURCE (still, script, a camera, a clip, an image "
                             "folder, a CLIP.track.npz)")
    parser.add_argument("--expression-from", metavar="SOURCE", type=given, dest="expression_from", default=None,
                        help="remix: the expression from SOURCE (still, script, a camera, a clip, an image "
                             "folder, a CLIP.track.npz)")
    parser.add_argument("--audio", default=None, metavar="IN:OUT",
                        help="the latency pass passes the microphone IN to the output OUT, delayed by "
                             "the measured video latency (as live --audio); the JSON gets an 'audio' "
                             "section (delay, A/V offset, underruns, stalls). Not with --compare")
    parser.add_argument("--roundtrip", action="store_true",
                        help="true output latency through a virtual camera read back with "
                             "OpenCV (where one exists)")
    parser.add_argument("--streams", metavar="N|A,B,..",
                        help="N independent engines on one device, each at its clip's rate "
                             "(profiles and drivers: comma lists, cycled): tries 1..N (or the "
                             "counts given), reports per-stream fps, drops, p95 and the largest "
                             "N holding 30 fps with p95 ≤ 33 ms (bench/streams.py)")
    parser.add_argument("--stream-mode", dest="stream_mode", default=None,
                        choices=("thread", "process"),
                        help="--streams: engines in threads of one process (default: one CUDA "
                             "context shared) or in processes")


#: the options `--compare list` honours: the keys a run with them would refuse are marked
LIST_OPTIONS = ("compare", "mode", "device")


def ignored_by_list(args: argparse.Namespace) -> list[str]:
    """The options given with `--compare list` (those not at their default) that it does not use,
    as typed (``--profile``), in the parser's order."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    defaults = vars(parser.parse_args([]))
    return [f"--{dest.replace('_', '-')}" for dest, default in defaults.items()
            if dest not in LIST_OPTIONS and getattr(args, dest, default) != default]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


#: What a bench stopped before its end says: its report and its files come only at the end.
#: (Stopped while it prints its report, or while it writes its files after it, it says so and
#: which files are written instead: `bench.report.report_and_write`.)
STOPPED = ("stopped before the bench's end: it prints its report and writes --json, --plot and --sheet only "
           "once the whole run is measured")


def main(args: argparse.Namespace) -> int:
    """Run the benchmark described by `args` (from `add_arguments`); returns the exit code (2
    for a user's mistake, said in one `error:` line). A Ctrl-C (or run.py's SIGTERM) goes on up
    as a KeyboardInterrupt that says what a stopped bench leaves (`STOPPED`), for run.py to print
    and exit 130 (143) as every command does."""
    try:
        if args.compare is not None and args.compare.strip() == "list":
            from bench.variants import knob_list  # noqa: PLC0415 - keeps `run.py --help` light (engine)

            print(knob_list(getattr(args, "mode", None), getattr(args, "device", None)))
            if ignored := ignored_by_list(args):
                print(f"note: --compare list runs nothing: {', '.join(ignored)} "
                      f"{'is' if len(ignored) == 1 else 'are'} ignored (--mode and --device mark the keys "
                      f"that run would refuse)", file=sys.stderr)
            return 0
        if getattr(args, "streams", None):
            from bench.streams import run_streams  # noqa: PLC0415 - keeps `run.py --help` light (engine)

            return run_streams(args)
        from bench.benchmark import run_benchmark  # noqa: PLC0415 - keeps `run.py --help` light (engine)

        return run_benchmark(args)
    except PuppeteerError as exc:
        print(f"error: {_first_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:   # a Ctrl-C or a SIGTERM is no error: run.py says "stopped"
        if not str(stop):                 # and exits 130 (143 for a SIGTERM), as every command does
            stop.args = (STOPPED,)
        raise


if __name__ == "__main__":  # python -m bench.cli ...
    _p = argparse.ArgumentParser(prog="bench")
    add_arguments(_p)
    try:
        sys.exit(main(_p.parse_args()))
    except KeyboardInterrupt as _stop:
        print(str(_stop), file=sys.stderr)
        sys.exit(130)
