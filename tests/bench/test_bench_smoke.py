"""A tiny run of every benchmark, so the benchmarks cannot rot (their figures are not asserted on speed)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.real


def test_client_overhead_smoke():
    from bench.client_overhead import measure

    out = measure(5)
    assert set(out["rows"]) >= {"comfykit_batch http c=2", "comfykit_batch websocket c=2", "comfykit 0.1.12 http gather"}
    assert out["rows"]["comfykit_batch http c=2"]["ok"] == 5 and out["rows"]["comfykit_batch websocket c=2"]["ok"] == 5
    assert out["rows"]["comfykit 0.1.12 http gather"]["ok"] == 5, "the published package ran side by side"


def test_utilisation_smoke():
    from bench.utilisation import measure

    out = measure([1, 2], 4, 0.02, "websocket")
    assert [r["exit"] for r in out["rows"].values()] == [0, 0]
    assert all(0 < r["utilisation_min"] <= 1.0 for r in out["rows"].values())


def test_latency_smoke():
    from bench.latency import measure

    out = measure(3)
    assert len(out["rows"]) == 4 and all(q["median_ms"] >= 0 for q in out["rows"].values())


def test_scale_smoke():
    from bench.scale import measure

    out = measure(100, dry_side=20)
    assert out["dry_run_1m"]["jobs"] == 400 and out["run"]["exit"] == 0 and out["run"]["jobs"] == 100
    assert out["resume_skip_phase"]["pending"] == 1 and out["resume_run"]["exit"] == 0


def test_downloads_smoke():
    from bench.downloads import measure

    out = measure(2, 1)
    assert out["rows"]["streamed"]["files"] == 1 and out["rows"]["in memory"]["peak_rss_growth_mb"] >= 0


def test_table_renders():
    from bench.run_all import table

    assert "Client overhead" in table({"client_overhead": {"n": 1, "rows": {"x": {
        "jobs_per_s": 1, "cpu_ms_per_job": 1, "jobs_per_s_vs_comfykit_http": 1, "cpu_per_job_vs_comfykit_http": 1}}}})
