import errno
import json
import os

import numpy as np
import pytest

from bench.report import markdown_table, plot, report_and_write, write_json, write_output, write_outputs
from bench.stats import StageTimes
from bench.usage import UsageError
from tests.bench.helpers import disk_full_after

STAGES = ["capture", "track", "render", "generate", "sink"]


def _run(scale=1.0, n=120, seed=0):
    rng = np.random.default_rng(seed)
    st = StageTimes()
    for i in range(n):
        if i % 25 == 24:
            st.add({}, None, dropped=True)
            continue
        t = {s: scale * float(rng.uniform(0.5, 4.0)) for s in STAGES}
        st.add(t, sum(t.values()) + scale * float(rng.uniform(2, 6)))
    st.skip_warmup(5)
    r = st.to_dict(wall_s=n / 30.0)
    r["device"] = "cpu"
    return r, st.per_frame()


def test_markdown_table_single():
    r, _ = _run()
    r["quality"] = {"ssim": 0.8731, "fwe": 0.0123}
    md = markdown_table(r)
    for s in STAGES:
        assert f"| {s} |" in md
        assert f"{r['stages_ms'][s]['p95']:.2f}" in md
    assert "capture→sink" in md and f"{r['latency_ms']['p99']:.2f}" in md
    assert f"{r['fps']:.1f}" in md and "dropped" in md
    assert "ssim" in md and "0.8731" in md
    # stage rows come before totals, quality last
    assert md.index("| generate |") < md.index("| fps |") < md.index("| ssim |")
    assert "held" not in md                       # said only when the source left frames empty
    assert "| held (nothing came in time; in frames) | 3 |" in markdown_table(dict(r, held=3))


def test_markdown_table_comparison_ratios():
    a, _ = _run(1.0)
    b, _ = _run(0.5)
    b["fps"] = 2 * a["fps"]
    md = markdown_table({"variants": {"numba": a, "cuda": b}, "baseline": "numba"})
    head = md.splitlines()[0]
    assert "numba" in head and "cuda" in head and "cuda / numba" in head
    row = next(l for l in md.splitlines() if l.startswith("| generate p50 ms"))
    assert row.rstrip(" |").endswith("0.50×")
    fps_row = next(l for l in md.splitlines() if "**fps**" in l)
    assert fps_row.rstrip(" |").endswith("2.00×")


def test_a_stage_of_a_few_microseconds_reads_as_under_a_hundredth_of_a_ms():
    """Before (stop 60's review): a 5 µs stage printed as 5.26e-03 in a column of ms."""
    r, _ = _run()
    r["stages_ms"]["sink"] = {"p50": 0.00526, "p95": 0.0071, "p99": 0.0}
    r["quality"] = {"fwe": 1.5e-5}
    md = markdown_table(r)
    assert "| sink | <0.01 | <0.01 | 0.00 |" in md
    assert "| fwe | 1.5000e-05 |" in md          # a quality value keeps its digits
    row = next(l for l in markdown_table({"variants": {"a": r, "b": r}}).splitlines()
               if l.startswith("| sink p50 ms"))
    assert row.startswith("| sink p50 ms | <0.01 | <0.01 |") and "e-03" not in row


@pytest.mark.parametrize("dropped, jitter, legend", [
    ((4, 4), 0.5, None),
    ((0, 3), 0.5, "a ratio – has nothing to divide by (the numba value is 0)"),
    ((4, 4), None, "a value – was not measured in that run"),
    ((0, 3), None, "a value – was not measured in that run; a ratio – has nothing to divide by"),
    ((0, 0), 0.5, None),          # stop 60's review: none dropped in either said "–" and the legend
])
def test_a_comparisons_dashes_are_explained(dropped, jitter, legend):
    """Before the fix: "dropped | 0 | 0 | –" and rows of "–" for a metric one run lacks, unsaid;
    both 0 reads "same"."""
    a, _ = _run(1.0)
    b, _ = _run(0.5)
    a["dropped"], b["dropped"] = dropped
    a["quality"], b["quality"] = {"fwe": 0.01, "jitter_px": jitter}, {"fwe": 0.02, "jitter_px": 0.4}
    md = markdown_table({"variants": {"numba": a, "cuda": b}, "baseline": "numba"})
    last = md.split("\n\n")[-2]       # before the devices line
    if legend is None:
        assert last.startswith("| ")
    else:
        assert last.startswith(legend)
    row = next(line for line in md.splitlines() if line.startswith("| dropped"))
    assert row.rstrip(" |").endswith({(4, 4): "1.00×", (0, 3): "–", (0, 0): "same"}[dropped])


def test_write_json_roundtrip(tmp_path):
    r, _ = _run()
    r["quality"] = {"psnr": float("inf"), "x": np.float32(1.5), "n": np.int64(3),
                    "arr": np.arange(3)}
    p = write_json(tmp_path / "sub" / "r.json", r)
    back = json.loads(p.read_text())
    assert back["frames"] == r["frames"]
    assert back["quality"] == {"psnr": None, "x": 1.5, "n": 3, "arr": [0, 1, 2]}
    assert back["stages_ms"]["track"]["p50"] == pytest.approx(r["stages_ms"]["track"]["p50"])


def test_plot_writes_png(tmp_path):
    r, pf = _run()
    r["machine"] = {"cpu": "Test CPU", "cores": 2, "gpu": None, "git_commit": "abcdef123456"}
    p = plot(r, pf, tmp_path / "plot.png")
    blob = p.read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n" and len(blob) > 10_000
    b, pfb = _run(0.5, seed=1)
    p2 = plot({"variants": {"numba": r, "cuda": b}}, {"numba": pf, "cuda": pfb},
              tmp_path / "cmp.png")
    assert p2.stat().st_size > 10_000


def test_a_plot_the_disk_cuts_short_leaves_the_one_there(tmp_path):
    """Before the fix (new-user walkthrough): `bench --plot P` on a full disk wrote P in place:
    the previous plot was gone and a truncated PNG (24 KB of it) was left, with a traceback. Now
    the plot is drawn in memory and renamed over P whole: the write fails, P is as it was, and no
    hidden file is left beside it."""
    r, pf = _run()
    path = tmp_path / "plot.png"
    path.write_bytes(b"the previous plot")
    with disk_full_after(2000), pytest.raises(OSError):
        plot(r, pf, path)
    assert path.read_bytes() == b"the previous plot"
    assert [f.name for f in tmp_path.iterdir()] == ["plot.png"]


@pytest.mark.parametrize(("code", "why"), [
    (errno.ENOSPC, "No space left on device: free some space, or choose another file"),
    (errno.EROFS, "Read-only file system"),
])
def test_a_refused_output_is_one_line_naming_it(tmp_path, code, why):
    def refused():
        raise OSError(code, os.strerror(code))
    with pytest.raises(UsageError) as info:
        write_output("--json", tmp_path / "b.json", refused)
    assert str(info.value) == f"cannot write {tmp_path / 'b.json'} (--json): {why}"


def test_an_error_about_another_file_is_not_called_the_outputs(tmp_path):
    """Before (review of helper 118's change): write_output made any OSError raised while the
    output was drawn and written "cannot write OUT (--plot): No such file or directory": a font
    matplotlib could not open (a stale font cache) read as the plot's own folder gone. Only the
    system's answer about the output, its hidden file or its folder is the one error line;
    another file's error propagates, naming that file."""
    font = "/usr/share/fonts/gone/DejaVuSans.ttf"

    def draws():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), font)
    with pytest.raises(FileNotFoundError) as info:
        write_output("--plot", tmp_path / "p.png", draws)
    assert info.value.filename == font
    for named in (tmp_path / ".p.partial-1-ab.png", tmp_path / "p.png", tmp_path):   # its own: one line
        def refused(named=named):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(named))
        with pytest.raises(UsageError):
            write_output("--plot", tmp_path / "p.png", refused)


def test_a_stop_among_the_outputs_names_those_written_and_those_not(tmp_path, capsys):
    """Each output is said once written; a Ctrl-C among them names the written ones, then the
    others (the one it cut short among them), and a stop with its own message keeps it."""
    def stopped():
        raise KeyboardInterrupt
    outputs = [("--json", tmp_path / "b.json", lambda: write_json(tmp_path / "b.json", {})),
               ("--sheet", tmp_path / "s.png", stopped), ("--plot", tmp_path / "p.png", stopped)]
    with pytest.raises(KeyboardInterrupt) as info:
        write_outputs(outputs)
    assert str(info.value) == (f"stopped while the bench wrote its files, after its report: --json "
                               f"{tmp_path / 'b.json'} written; --sheet {tmp_path / 's.png'}, --plot "
                               f"{tmp_path / 'p.png'} not written")
    assert capsys.readouterr().out == f"\nwrote {tmp_path / 'b.json'}\n"
    with pytest.raises(KeyboardInterrupt) as info:
        write_outputs(outputs[1:])
    assert str(info.value) == (f"stopped while the bench wrote its files, after its report: --sheet "
                               f"{tmp_path / 's.png'}, --plot {tmp_path / 'p.png'} not written")

    def said():
        raise KeyboardInterrupt("its own words")
    with pytest.raises(KeyboardInterrupt, match="^its own words$"):
        write_outputs([("--plot", tmp_path / "p.png", said)])
    assert capsys.readouterr().out == "" and sorted(f.name for f in tmp_path.iterdir()) == ["b.json"]


def test_a_stop_while_the_report_is_printed_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """A Ctrl-C at the report's print (the run measured) says the report is cut short and names
    the outputs asked for, none written, or that none was asked; printed whole, the outputs
    follow it. A stop with its own message keeps it."""
    import builtins

    outputs = [("--json", tmp_path / "b.json", lambda: write_json(tmp_path / "b.json", {})),
               ("--plot", tmp_path / "p.png", lambda: (tmp_path / "p.png").write_bytes(b"png"))]
    real_print = builtins.print
    words = [""]

    def cut(*a, **k):
        if a and a[0] == "the report":
            raise KeyboardInterrupt(*filter(None, words))
        real_print(*a, **k)
    with monkeypatch.context() as mp:
        mp.setattr(builtins, "print", cut)
        with pytest.raises(KeyboardInterrupt) as info:
            report_and_write("the report", outputs)
        assert str(info.value) == ("stopped while the bench printed its report, after the whole run was measured: "
                                   f"the report is cut short; --json {tmp_path / 'b.json'}, --plot "
                                   f"{tmp_path / 'p.png'} not written")
        with pytest.raises(KeyboardInterrupt) as info:
            report_and_write("the report", [])
        assert str(info.value).endswith("the report is cut short (no file was asked for)")
        words[0] = "its own words"
        with pytest.raises(KeyboardInterrupt, match="^its own words$"):
            report_and_write("the report", outputs)
    assert list(tmp_path.iterdir()) == []
    report_and_write("the report", outputs)
    assert capsys.readouterr().out == f"the report\n\nwrote {tmp_path / 'b.json'}\nwrote {tmp_path / 'p.png'}\n"


def _budget_lines(monkeypatch):
    """[(x or y, label)] of the plot's budget lines, spied on matplotlib's axvline / axhline."""
    from matplotlib.axes import Axes

    lines = []
    for name in ("axvline", "axhline"):
        real = getattr(Axes, name)

        def spy(self, v=0, *a, _real=real, **k):
            if "budget" in str(k.get("label", "")):
                lines.append((round(v, 3), k["label"]))
            return _real(self, v, *a, **k)
        monkeypatch.setattr(Axes, name, spy)
    return lines


@pytest.mark.parametrize("fps, ms, label", [
    (25.0, 40.0, "budget 40.0 ms (1 frame at 25 fps)"),
    (30.0, 33.333, "budget 33.3 ms (1 frame at 30 fps)"),
    (60.0, 16.667, "budget 16.7 ms (1 frame at 60 fps)"),
])
def test_the_budget_line_is_one_frame_of_the_drivers_rate(tmp_path, monkeypatch, fps, ms, label):
    """Before the fix (review): the budget line was "33.3 ms (30 fps)" whatever the driver: on d0,
    a 25 fps clip, a frame has 40 ms."""
    lines = _budget_lines(monkeypatch)
    r, pf = _run()
    plot(r, pf, tmp_path / "plot.png", fps=fps)
    assert lines == [(ms, label)] * 2                  # the histogram's and the timeline's
    lines.clear()
    b, pfb = _run(0.5, seed=1)                         # variants of one driver: one budget
    plot({"variants": {"a": r, "b": b}}, {"a": pf, "b": pfb}, tmp_path / "cmp.png", fps=fps)
    assert lines == [(ms, label)] * 3                  # the histogram's, and each timeline's
    lines.clear()
    plot(dict(r, driver_fps=fps), pf, tmp_path / "own.png")   # a result that says its rate
    assert lines == [(ms, label)] * 2


def test_the_timeline_shows_the_latency_of_a_frame_between_two_drops():
    """Before the fix (audit): the latency was one line through the frames' values, and a frame
    whose neighbours both dropped had no segment to draw: `bench --self-drive d0.mp4 --plot` on a
    loaded machine (20% dropped) showed stage stacks with no latency at all on a third of them."""
    from matplotlib.figure import Figure

    from bench.report import _timeline

    st = StageTimes()
    for i in range(7):          # 0 1 | 3 | 5 6: frame 3 alone between two drops
        if i in (2, 4):
            st.add({}, None, dropped=True)
        else:
            st.add({"track": 2.0}, 10.0 + i)
    ax = Figure().add_subplot()
    _timeline(ax, {"stages_ms": {"track": {}}}, st.per_frame(), {"track": "C0"}, 33.3, None, False)

    def shown(line):              # the points a Line2D puts on screen: a marker, or a segment
        x, y = (np.asarray(a, float) for a in line.get_data())
        if line.get_marker() not in (None, "None", "", " "):
            return set(zip(x[np.isfinite(y)], y[np.isfinite(y)]))
        if line.get_linestyle() in ("None", "", " "):
            return set()
        ok = np.isfinite(y)
        joined = ok & (np.r_[False, ok[:-1]] | np.r_[ok[1:], False])
        return set(zip(x[joined], y[joined]))
    points = set().union(*(shown(line) for line in ax.lines))
    assert {(0.0, 10.0), (1.0, 11.0), (3.0, 13.0), (5.0, 15.0), (6.0, 16.0)} <= points


def test_a_comparison_has_a_frames_row():
    """Honesty audit: the comparison showed fps and drops per variant but not the frames each
    delivered (the single table had them)."""
    a, _ = _run(1.0)
    b, _ = _run(0.5)
    b["frames"] = a["frames"] // 2
    md = markdown_table({"variants": {"numba": a, "cuda": b}, "baseline": "numba"})
    rows = [line for line in md.splitlines() if line.startswith("| frames |")]
    assert rows == [f"| frames | {a['frames']} | {b['frames']} | 0.50× |"]
    names = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("|")]
    assert names.index("**fps**") < names.index("frames") < names.index("dropped")


def test_dropped_frames_are_red_bands_not_a_dip_in_the_stack():
    """Honesty audit: a dropped frame has no stage times, and the stack drew it as a dip to zero
    (a frame that cost nothing) with a red tick half under the x axis."""
    from matplotlib.figure import Figure

    from bench.report import _timeline, drop_runs

    assert drop_runs([0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 1, 0, 0, 1, 0, 1]) == [(0.5, 2.0), (4.5, 1.0), (6.5, 1.0)]
    assert drop_runs([3, 4], [False, False]) == []
    st = StageTimes()
    for i in range(8):
        if i in (2, 3, 6):
            st.add({}, None, dropped=True)
        else:
            st.add({"track": 2.0, "render": 3.0}, 10.0)
    ax = Figure().add_subplot()
    _timeline(ax, {"stages_ms": {"track": {}, "render": {}}}, st.per_frame(), {"track": "C0", "render": "C1"},
              33.3, None, False)
    bands = [c for c in ax.collections if c.get_label().startswith("dropped")]
    assert len(bands) == 1 and bands[0].get_label() == "dropped (3)"
    spans = sorted((float(v[:, 0].min()), float(v[:, 0].max()), float(v[:, 1].min()), float(v[:, 1].max()))
                   for v in (p.vertices for p in bands[0].get_paths()))
    assert spans == [(1.5, 3.5, 0.0, 1.0), (5.5, 6.5, 0.0, 1.0)]        # the full height (axes units)
    # the stack leaves the dropped frames out: no polygon reaches down to 0 ms at them
    stack_x = np.concatenate([p.vertices[:, 0] for c in ax.collections if c not in bands for p in c.get_paths()])
    assert not np.isin(stack_x, [2.0, 3.0, 6.0]).any()


def test_a_frame_between_two_drops_keeps_its_stage_stack():
    """With the drops left out of the stack, a frame alone between two of them had a polygon of no
    width (half the frames of a loaded run showed a latency dot and no stages): each frame is a
    step one index wide."""
    from matplotlib.figure import Figure

    from bench.report import _timeline

    st = StageTimes()
    for i in range(5):
        st.add(*(({}, None) if i in (1, 3) else ({"track": 2.0}, 10.0)), dropped=i in (1, 3))
    ax = Figure().add_subplot()
    _timeline(ax, {"stages_ms": {"track": {}}}, st.per_frame(), {"track": "C0"}, 33.3, None, False)
    (stack,) = [c for c in ax.collections if c.get_label() == "track"]
    widths = sorted(float(np.ptp(p.vertices[:, 0])) for p in stack.get_paths())
    assert widths == [1.0, 1.0, 1.0]                   # frames 0, 2 and 4, each its own step
