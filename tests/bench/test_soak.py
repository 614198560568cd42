"""bench.soak's summary: fps, memory growth, the p95's largest deviation and its trend."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.soak import p95_trend_pct, summarize
from tests.bench.helpers import disk_full_after, one_error_line


def _rows(p95, rss=None):
    rss = rss if rss is not None else [350.0] * len(p95)
    rows = []
    for i, (p, m) in enumerate(zip(p95, rss), start=1):
        ref = p95[1] if len(p95) > 1 else p
        rows.append({"minute": i, "fps": 30.0, "dropped": 0, "rss_mib": m, "p95_ms": p,
                     "drift_pct": round(100.0 * (p / ref - 1.0), 1) if i > 1 else None})
    return rows


def test_a_slowing_loop_shows_its_trend():
    p95 = [25.0] + [20.0 + 0.1 * k for k in range(29)]     # +2.8 ms over 28 minutes = +14 %
    s = summarize(_rows(p95))
    assert s["p95_trend_pct"] == pytest.approx(14.0, abs=0.1)
    assert s["max_abs_p95_drift_pct"] == pytest.approx(14.0, abs=0.1)


def test_the_stage_that_slows_is_named():
    rows = _rows([20.0] * 12)
    for r in rows:
        r["stages_p50"] = {"track": 5.0 + 0.1 * r["minute"], "render": 1.5}
    s = summarize(rows)
    assert s["stage_trend_pct"]["render"] == pytest.approx(0.0, abs=1e-9)
    assert s["stage_trend_pct"]["track"] == pytest.approx(100.0 * 1.0 / 5.2, abs=0.1)   # 5.2 → 6.2 ms


def test_noise_without_a_trend_is_not_drift():
    rng = np.random.default_rng(1)
    p95 = [25.0] + list(21.0 + rng.normal(0, 1.0, 29))    # ±1 ms a minute, no trend
    s = summarize(_rows(p95))
    assert abs(s["p95_trend_pct"]) < 5.0
    assert s["max_abs_p95_drift_pct"] > 5.0                 # single minutes do wander


def test_memory_growth_after_minute_five_and_short_runs():
    rss = [300.0 + 10.0 * min(i, 5) + 0.5 * max(i - 5, 0) for i in range(30)]
    s = summarize(_rows([20.0] * 30, rss))
    assert s["rss_growth_mib_per_h_after_5min"] == pytest.approx(30.0, abs=0.01)   # 0.5 MiB/min
    assert p95_trend_pct(_rows([20.0, 21.0])) is None
    # before (stop 60's new-user review): 0.0 though nothing was compared (drift is against minute 2)
    assert summarize(_rows([20.0, 21.0]))["max_abs_p95_drift_pct"] is None
    assert summarize(_rows([20.0, 21.0, 23.1]))["max_abs_p95_drift_pct"] == pytest.approx(10.0)
    assert summarize([]) == {}


@pytest.fixture
def a_profile(monkeypatch):
    """The soak's profile loads (what it plays is not these tests' concern)."""
    from bench import soak

    monkeypatch.setattr(soak, "load", lambda name: object())


@pytest.mark.parametrize("kind, said", [(None, "no such folder"), ("file", "is a file, not a folder")])
def test_a_drivers_folder_that_does_not_exist_is_one_line(tmp_path, capsys, a_profile, kind, said):
    """Before: a FileNotFoundError traceback from `iterdir`; and (stop 61's review) a file given
    as --drivers was "no such folder"."""
    from bench.soak import main

    nodir = tmp_path / "nodir"
    if kind == "file":
        nodir.write_bytes(b"")
    assert main(["--minutes", "1", "--drivers", str(nodir), "--cache", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err == (f"error: --drivers {nodir}: {said} (name a folder of "
                                       f"driver clips, e.g. ../shared/eval/drivers)\n")
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("minutes", ["0.5", "0.001", "1441"])
def test_a_soak_is_whole_minutes(capsys, minutes):
    """Before (stop 61's review): --minutes 0.001 built the clip, ran, and printed `{}`."""
    from bench.soak import main

    with pytest.raises(SystemExit) as e:
        main(["--minutes", minutes])
    assert e.value.code == 2
    assert f"--minutes wants 1 to 1440 (the soak reports whole minutes), got {float(minutes):g}" in \
        capsys.readouterr().err


def test_a_missing_default_profile_says_to_run_the_demo_before_the_clip_is_built(tmp_path, capsys, monkeypatch):
    """Before (stop 61's review): "make one with: python run.py enroll IMAGE --name astronaut",
    while --help says `run.py demo` makes it; and only after the clip was built."""
    from bench import soak

    monkeypatch.setenv("PUPPETEER_PROFILES", str(tmp_path / "profiles"))
    monkeypatch.setattr(soak, "build_long_clip", lambda *a, **k: pytest.fail("the clip was built"))
    assert soak.main(["--minutes", "1", "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the soak's default profile 'astronaut' is not there (") and \
        "make it with `python run.py demo`, or name another with --profile" in err
    assert soak.main(["--minutes", "1", "--profile", "nobody"]) == 2
    assert "no profile 'nobody'" in capsys.readouterr().err
    (tmp_path / "profiles" / "astronaut").mkdir(parents=True)     # there, but not a profile
    assert soak.main(["--minutes", "1"]) == 2
    err = capsys.readouterr().err
    assert "is it a profile folder?" in err and "not there" not in err


def test_an_out_that_cannot_be_written_is_one_line_before_the_soak(tmp_path, capsys, monkeypatch, a_profile):
    """Before the fix: the JSON was written only after the whole soak (30 minutes), and a missing
    folder was a traceback then, the results lost."""
    from bench import soak

    monkeypatch.setattr(soak, "build_long_clip", lambda *a, **k: pytest.fail("the soak started"))
    out = tmp_path / "no" / "soak.json"
    assert soak.main(["--minutes", "1", "--out", str(out), "--cache", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err == (f"error: cannot write {out} (--out): folder "
                                       f"'{out.parent}' does not exist\n")


def test_out_must_be_a_json_file(tmp_path, capsys, monkeypatch):
    """Before (stop 60's new-user review): --out x.txt was taken, while bench --json wants .json."""
    from bench import soak

    monkeypatch.setattr(soak, "build_long_clip", lambda *a, **k: pytest.fail("the soak started"))
    out = tmp_path / "soak.txt"
    assert soak.main(["--minutes", "1", "--out", str(out)]) == 2
    expect = f"error: --out {out}: the report is JSON; name it e.g. {out.with_suffix('.json')}\n"
    assert capsys.readouterr().err == expect


def test_the_json_is_written_whole_or_not_at_all(tmp_path, capsys, monkeypatch, a_profile):
    """Before: a plain write, so a Ctrl-C or a full disk at the end of a 30-minute soak left half a
    JSON over the last one; then (helper 118) written whole, but a full disk was a traceback. Now
    it is one error line and exit 2, the previous JSON kept."""
    from bench import soak

    monkeypatch.setattr(soak, "build_long_clip", lambda *a, **k: "clip")
    monkeypatch.setattr(soak, "soak", lambda *a, **k: {"rows": [], "summary": {"fps": 30.0}})
    out = tmp_path / "soak.json"
    argv = ["--minutes", "1", "--out", str(out), "--cache", str(tmp_path / "c")]
    assert soak.main(argv) == 0
    assert '"fps": 30.0' in out.read_text()
    before = out.read_text()
    capsys.readouterr()
    with disk_full_after(len(before) // 2):     # the new JSON's hidden file is cut short
        assert soak.main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: cannot write {out} (--out): ")
    assert out.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["soak.json"]


def test_a_clip_cut_short_while_it_is_built_is_not_kept(tmp_path, monkeypatch):
    """Before the fix (new-user walkthrough): ffmpeg wrote the cached clip in place, so a Ctrl-C
    while the soak built it left a truncated drivers-512-30fps.mp4 that every later soak took
    from the cache and refused ("cannot open video file ..."), until it was deleted by hand. Now
    the clip is renamed into the cache only once ffmpeg has finished it."""
    from bench import soak

    drivers = tmp_path / "drivers"
    drivers.mkdir()
    (drivers / "d.mp4").write_bytes(b"a driver clip")

    def cut_short(args):
        Path(args[-1]).write_bytes(b"the first half of a clip")
        raise KeyboardInterrupt
    monkeypatch.setattr(soak, "_ffmpeg", cut_short)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        soak.build_long_clip(drivers, 1.0, cache)
    assert list(cache.iterdir()) == []


def test_a_ctrl_c_is_one_line_and_130(tmp_path, capsys, monkeypatch, a_profile):
    """Before the fix (new-user walkthrough): a Ctrl-C in the soak ended in a KeyboardInterrupt
    traceback."""
    from bench import soak

    def stopped(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(soak, "build_long_clip", stopped)
    try:
        rc = soak.main(["--minutes", "1", "--cache", str(tmp_path / "c")])
    except KeyboardInterrupt:
        pytest.fail("the Ctrl-C went on up, as a KeyboardInterrupt traceback")
    assert rc == 130
    assert capsys.readouterr().err == ("stopped: the minutes measured so far are the JSON lines above; --out is "
                                       "written only at the soak's end\n")
