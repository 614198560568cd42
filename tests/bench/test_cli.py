"""bench.cli: the options and their defaults, exit codes, `--compare list`, and a light import."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import run
from bench import benchmark
from bench.cli import STOPPED
from bench.usage import DEFAULT_BLOCK, DEFAULT_CAMERA_FRAMES, DEFAULT_WARMUP, UsageError
from realtime.core.errors import PuppeteerError
from realtime.io.capture import CaptureError
from tests.bench.helpers import parse

ROOT = Path(__file__).resolve().parents[2]


def test_defaults():
    a = parse()
    assert (a.profile, a.driver, a.frames, a.self_reenact, a.compare) == (None,) * 5
    assert (a.json, a.plot) == (None, None)
    assert a.warmup == DEFAULT_WARMUP == 30
    # given only with the option they belong to, so None unless given (the bench then uses
    # DEFAULT_BLOCK, frame 0, threads)
    assert (a.block, a.frame, a.stream_mode) == (None, None, None) and DEFAULT_BLOCK == 60
    assert a.device == "cpu"
    assert not a.quality and not a.roundtrip


def test_options_parse():
    a = parse("--profile", "p", "--driver", "0", "--frames", 12, "--warmup", 0, "--block", 4,
              "--device", "cuda", "--quality", "--roundtrip", "--self-reenact", "v.mp4",
              "--compare", "tier=warp,atlas", "--json", "o.json", "--plot", "o.png")
    assert (a.profile, a.driver, a.frames, a.warmup, a.block, a.device) == ("p", "0", 12, 0, 4, "cuda")
    assert a.quality and a.roundtrip and a.self_reenact == "v.mp4"
    assert (a.compare, a.json, a.plot) == ("tier=warp,atlas", "o.json", "o.png")


@pytest.mark.parametrize("argv, expect", [
    (("--frames", "0"), "argument --frames: must be ≥ 1, got 0\n"),     # the name once (was twice)
    (("--warmup", "-1"), "argument --warmup: must be ≥ 0, got -1\n"),
    (("--block", "x"), "argument --block: must be a whole number, got 'x'\n"),
    (("--device", "tpu"), "invalid choice: 'tpu'"),
    (("--profile", ""), "argument --profile: must not be empty"),      # was ". has no profile.yaml"
    (("--driver", " "), "argument --driver: must not be empty"),
])
def test_bad_option_values_are_usage_errors(capsys, argv, expect):
    with pytest.raises(SystemExit) as e:
        parse(*argv)
    assert e.value.code == 2
    assert expect in capsys.readouterr().err


def test_help_shows_defaults_and_how_to_list_the_keys(capsys):
    with pytest.raises(SystemExit) as e:
        parse("--help")
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--compare list" in out
    assert f"default {DEFAULT_WARMUP}" in out and f"default {DEFAULT_BLOCK}" in out
    assert f"{DEFAULT_CAMERA_FRAMES} from a camera" in out
    assert "{cpu,cuda}" in out


def test_help_names_every_kind_of_driver_it_plays(capsys):
    """Before the fix (new-user walkthrough): `bench --help` offered --driver a "video file, image
    folder, or camera index" and the remix sources "still, script, a clip, a camera", while bench
    plays a tracked clip (CLIP.track.npz) as a driver and as either source, and an image folder as
    a source, as live's help says."""
    with pytest.raises(SystemExit):
        parse("--help")
    out = " ".join(capsys.readouterr().out.split())
    driver = out.rsplit("--driver CLIP|0 ", 1)[1].split(" --frames")[0]
    assert "CLIP.track.npz" in driver and "image folder" in driver
    for flag in ("--pose-from SOURCE", "--expression-from SOURCE"):
        source = out.rsplit(f"{flag} ", 1)[1].split(" --")[0]
        assert "CLIP.track.npz" in source and "image folder" in source, source


def test_compare_list_prints_every_key_with_its_help(run_bench):
    rc, out, err = run_bench("--compare", "list")
    assert rc == 0 and err == ""
    rows = {line.split()[0]: line for line in out.strip().splitlines()}
    assert list(rows)[:5] == ["tier", "device", "size", "kernel_threads", "backend"]
    assert "generator tier" in rows["tier"]
    assert "FuseConfig.follow_scale (default" in rows["follow_scale"]
    assert "EstimatorConfig.ease_s (default 0.25)" in rows["ease_s"]


def test_compare_list_marks_the_keys_its_mode_and_device_refuse_and_says_what_it_ignores(run_bench):
    """Honesty audit: `--compare list` with other options printed the same list, silently: the keys
    that run would refuse looked usable, and --profile, --frames, ... seemed to matter."""
    rc, out, err = run_bench("--compare", "list", "--mode", "swap", "--profile", "s1", "--frames", "40")
    assert rc == 0
    rows = {line.split()[0]: line for line in out.strip().splitlines()}
    assert rows["follow_scale"].endswith(" [needs --mode reenact]")
    assert not rows["drop_fringe"].endswith("]")                      # a swap key: usable in swap
    assert rows["backend"].endswith(" [needs --device cuda]")
    assert err == ("note: --compare list runs nothing: --profile, --frames are ignored (--mode and --device "
                   "mark the keys that run would refuse)\n")
    rc, out, err = run_bench("--compare", "list", "--device", "cuda")
    rows = {line.split()[0]: line for line in out.strip().splitlines()}
    assert err == "" and not rows["backend"].endswith("]")
    assert rows["drop_fringe"].endswith(" [needs --mode swap]")      # the default mode is reenact


@pytest.mark.parametrize("exc, line", [
    (UsageError("--driver needs --profile"), "error: --driver needs --profile"),
    (CaptureError("cannot open 'x.mp4'\nsecond line"), "error: cannot open 'x.mp4'"),
    (PuppeteerError(""), "error: PuppeteerError"),
])
def test_puppeteer_errors_are_one_line_exit_2(monkeypatch, run_bench, exc, line):
    def fail(args):
        raise exc
    monkeypatch.setattr(benchmark, "run_benchmark", fail)
    rc, out, err = run_bench("--profile", "p", "--driver", "d")
    assert rc == 2 and out == ""
    assert err == line + "\n"


@pytest.mark.parametrize(("stop", "code"), [(KeyboardInterrupt, 130), (run._Terminated, 143)])
def test_a_stopped_bench_says_stopped_and_exits_as_every_command_does(monkeypatch, capsys, stop, code):
    """Before the fix (new-user walkthrough): a Ctrl-C in `run.py bench` printed "error:
    interrupted" (a stop called an error, not saying what was written) and a SIGTERM exited 130,
    not 143 as live, enroll, train and track do: bench's main caught the stop itself."""
    def fail(args):
        raise stop()
    monkeypatch.setattr(benchmark, "run_benchmark", fail)
    assert run.main(["bench", "--profile", "p", "--driver", "d"]) == code
    assert capsys.readouterr().err == STOPPED + "\n"


def test_other_errors_are_bugs_and_propagate(monkeypatch, run_bench):
    def fail(args):
        raise ValueError("a bug")
    monkeypatch.setattr(benchmark, "run_benchmark", fail)
    with pytest.raises(ValueError, match="a bug"):
        run_bench("--profile", "p", "--driver", "d")


def test_importing_the_cli_and_building_the_parser_stays_light():
    """`run.py --help` and `run.py bench --help` must not load the engine, numba or torch."""
    code = ("import argparse, sys\n"
            "import bench.cli\n"
            "p = argparse.ArgumentParser()\n"
            "bench.cli.add_arguments(p)\n"
            "p.format_help()\n"
            "heavy = ('torch', 'numba', 'mediapipe', 'cupy', 'cv2', 'realtime.engine',\n"
            "         'realtime.core.context', 'kernels', 'profiles')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
