import numpy as np
import pytest

from bench.stats import StageTimes, summarize


def test_summarize_matches_numpy():
    rng = np.random.default_rng(0)
    v = rng.lognormal(1.0, 0.5, size=1000)
    s = summarize(v.tolist())
    p50, p95, p99 = np.percentile(v, [50, 95, 99])
    assert s["p50"] == pytest.approx(p50, abs=1e-12)
    assert s["p95"] == pytest.approx(p95, abs=1e-12)
    assert s["p99"] == pytest.approx(p99, abs=1e-12)
    assert s["mean"] == pytest.approx(v.mean(), abs=1e-12)
    assert s["std"] == pytest.approx(v.std(), abs=1e-12)
    assert s["n"] == 1000
    assert set(s) == {"p50", "p95", "p99", "mean", "std", "n"}


def test_summarize_ignores_missing_and_handles_empty():
    s = summarize([1.0, None, float("nan"), 3.0])
    assert s["n"] == 2 and s["p50"] == pytest.approx(2.0)
    e = summarize([])
    assert e["n"] == 0 and e["p50"] is None and e["mean"] is None


def _fill(st, n, rng, drop_every=0):
    lat, tr, ge = [], [], []
    for i in range(n):
        if drop_every and i % drop_every == drop_every - 1:
            st.add({}, None, dropped=True)
            continue
        t = {"track": float(rng.uniform(1, 3)), "generate": float(rng.uniform(4, 9))}
        l = sum(t.values()) + float(rng.uniform(2, 5))
        st.add(t, l)
        lat.append(l), tr.append(t["track"]), ge.append(t["generate"])
    return lat, tr, ge


def test_stage_times_to_dict_exact_keys_and_values():
    rng = np.random.default_rng(1)
    st = StageTimes()
    lat, tr, ge = _fill(st, 100, rng, drop_every=10)  # 10 dropped, 90 processed
    d = st.to_dict(wall_s=3.0)
    assert set(d) == {"fps", "frames", "dropped", "latency_ms", "stages_ms"}
    assert d["frames"] == 90 and d["dropped"] == 10
    assert d["fps"] == pytest.approx(90 / 3.0)
    assert set(d["latency_ms"]) == {"p50", "p95", "p99"}
    assert list(d["stages_ms"]) == ["track", "generate"]  # pipeline order kept
    for key, vals in (("track", tr), ("generate", ge)):
        assert set(d["stages_ms"][key]) == {"p50", "p95", "p99"}
        np.testing.assert_allclose([d["stages_ms"][key][p] for p in ("p50", "p95", "p99")],
                                   np.percentile(vals, [50, 95, 99]), rtol=0, atol=1e-12)
    np.testing.assert_allclose([d["latency_ms"][p] for p in ("p50", "p95", "p99")],
                               np.percentile(lat, [50, 95, 99]), rtol=0, atol=1e-12)


def test_skip_warmup_excludes_first_frames():
    st = StageTimes()
    for _ in range(5):
        st.add({"render": 100.0}, 500.0)  # slow warm-up (JIT)
    for _ in range(20):
        st.add({"render": 1.0}, 10.0)
    st.skip_warmup(5)
    d = st.to_dict(wall_s=1.0)
    assert d["frames"] == 20 and d["fps"] == pytest.approx(20.0)
    assert d["stages_ms"]["render"]["p99"] == pytest.approx(1.0)
    assert d["latency_ms"]["p99"] == pytest.approx(10.0)
    assert len(st.per_frame()) == 20 and len(st.per_frame(include_warmup=True)) == 25
    pf = st.per_frame()[0]
    assert set(pf) == {"index", "latency_ms", "timings", "dropped"} and pf["index"] == 5
    with pytest.raises(ValueError):
        st.skip_warmup(-1)


def test_to_dict_without_wall_time():
    st = StageTimes()
    st.add({"a": 1.0}, 2.0)
    assert st.to_dict(None)["fps"] is None
