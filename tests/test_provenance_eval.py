"""Acceptance on a real clip (issue #18), when ../shared/eval is there: the mark of a `live`
output survives H.264 at 300 kbit/s, a downscale to 320×240 and +10 % brightness in every
2-second window, and the evaluation clips themselves carry no mark."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import run
from realtime.io.sinks.file import ffmpeg_exe

ROOT = Path(run.__file__).resolve().parent
EVAL = ROOT.parent / "shared" / "eval"
pytestmark = [pytest.mark.eval, pytest.mark.slow,
              pytest.mark.skipif(not (EVAL / "drivers" / "d19.mp4").is_file(), reason="needs ../shared/eval")]


def _verify(path, capsys) -> tuple[int, dict]:
    code = run.main(["verify", "--json", str(path)])
    return code, json.loads(capsys.readouterr().out)


def test_a_live_output_survives_a_video_call(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PUPPETEER_PROFILES", str(tmp_path / "profiles"))
    assert run.main(["enroll", str(EVAL / "targets" / "s1.jpg"), "--name", "s1"]) == 0
    out = tmp_path / "live.mp4"
    assert run.main(["live", "--profile", "s1", "--driver", str(EVAL / "drivers" / "d19.mp4"),
                     "--sink", f"file:{out}"]) == 0
    capsys.readouterr()
    call = tmp_path / "call.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(out), "-vf",
                    "scale=320:240,lutrgb=r=val*1.1:g=val*1.1:b=val*1.1", "-c:v", "libx264", "-b:v", "300k",
                    "-pix_fmt", "yuv420p", str(call)], check=True)
    code, r = _verify(call, capsys)
    assert code == 0 and r["windows_found"] == len(r["windows"]) >= 4
    assert r["pooled"]["payload"]["engine_name"] == "Puppeteer" and r["pooled"]["payload"]["mode"] == "reenact"


@pytest.mark.parametrize("clip", ["drivers/d19.mp4", "targets/s32.mp4", "targets"])
def test_the_evaluation_clips_carry_no_mark(clip, capsys):
    code, r = _verify(EVAL / clip, capsys)
    assert code == 1 and r["windows_found"] == 0
