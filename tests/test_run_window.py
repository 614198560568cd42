"""`run.py live --sink window` in a real X server (Xvfb), driven by real key presses (xdotool):
the window opens, the hotkeys reach the engine, 'q' ends the run, and the summary says where
the hotkeys left the gains. Skipped where xvfb-run or xdotool is missing (`apt-get install xvfb
xdotool`; `.ci/run` installs them)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("xvfb-run") is None or shutil.which("xdotool") is None,
                                 reason="needs xvfb-run and xdotool (apt-get install xvfb xdotool)")]

ROOT = Path(__file__).resolve().parents[1]
TITLE = "PuppeteerWindowTest"

# Inside xvfb-run: the engine in the background, then the keys once its window exists. The keys
# go 200 ms apart, as a person types: OpenCV's waitKey returns one key per call, so keys pressed
# within one of the window's pumps (a frame, ~33 ms) are one key.
_SCRIPT = """
"$PYTHON" run.py live --profile "$PROFILE" --driver "$CLIP" --realtime --sink "window:$TITLE" &
engine=$!
wid=""
for _ in $(seq 240); do               # up to 60 s (a cold numba cache compiles first)
    kill -0 $engine 2>/dev/null || break
    wid=$(xdotool search --name "$TITLE" 2>/dev/null | head -1)
    [ -n "$wid" ] && break
    sleep 0.25
done
if [ -z "$wid" ]; then echo "no window"; kill $engine 2>/dev/null; wait $engine; exit 3; fi
sleep 1
xdotool windowfocus --sync "$wid"
xdotool key --delay 200 3 plus plus
sleep 0.5
xdotool key q
wait $engine
"""


def test_hotkeys_in_a_real_window_change_the_gains_and_q_quits(tmp_path, astronaut_rgb, astronaut_profile):
    from profiles.format import save

    profile = save(astronaut_profile, tmp_path / "astro")    # a clean clone has no built-in one yet
    clip = tmp_path / "nod.mp4"
    bgr = cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR)
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (512, 512))
    for i in range(450):                                  # 15 s: 'q' must end it long before
        m = cv2.getRotationMatrix2D((256, 200), 4.0 * np.sin(i / 10), 1.0)
        out.write(cv2.warpAffine(bgr, m, (512, 512), borderMode=cv2.BORDER_REPLICATE))
    out.release()
    env = {**os.environ, "PYTHON": sys.executable, "CLIP": str(clip), "TITLE": TITLE, "CI": "true",
           "PROFILE": str(profile)}
    done = subprocess.run(["xvfb-run", "-a", "bash", "-c", _SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text
    frames = int(re.search(r"(\d+) frames? in [\d.]+ s = ", text).group(1))
    assert 0 < frames < 400, text                          # 'q' ended the run
    assert ("hotkeys changed the gains: mouth 1 → 1.2; to start there next time: --gain mouth=1.2"
            in text), text
    assert "QObject" not in text, text                     # no Qt warnings at the end (window sink)
