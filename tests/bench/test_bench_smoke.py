"""A tiny run of every benchmark, so the benchmarks cannot rot (their figures are not asserted on speed)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.real


def test_client_overhead_smoke():
    from bench.client_overhead import measure

    out = measure(5, rounds=1, small=2)
    rows = out["rows"]
    assert rows["server-bound (raw client)"]["ok"] == 5 and out["server_bound_jobs_per_s"] > 0
    assert rows["server-bound, socket listening"]["ok"] == 5 and out["listening_x_server_bound"] > 0
    for label in ("library http c=2", "library websocket c=2", "cli http", "cli websocket", "cli websocket + gallery"):
        assert rows[label]["ok"] == 5, label
    assert rows["comfykit 0.1.12 websocket c=4"]["ok"] == 5, "the published package ran side by side"
    assert rows["comfykit 0.1.12 http c=1"]["ok"] == rows["comfykit 0.1.12 http c=1"]["n"] >= 4
    assert "marginal_cpu_ms_per_job" in rows["cli websocket"] and "x_comfykit_best" in rows["library websocket c=2"]


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


def test_models_smoke():
    from bench.models import ORDERS, POLICIES, measure, report

    out = measure(backends=2, keys=2, prompts=2, switch=0.02, job=0.005, table_backends=(1, 2), table_keys=(2, 3),
                  shard_counts=(2, 8), cpu_prompts=2, cpu_rounds=1, cpu_small_prompts=1)
    real = out["real"]
    assert real["jobs"] == 8 and real["lower_bound_s"] > 0 and len(real["rows"]) == len(ORDERS) * len(POLICIES)
    for label, r in real["rows"].items():
        assert r["done"] == r["total"] == 8 and sum(r["prompts"]) == 8, label
        assert len(r["switches"]) == 2 and sum(r["switches"]) >= 2 and r["x_lower_bound"] > 0, label
    assert real["speedup_vs_sweep_fastest"] > 0 and real["speedup_vs_swarm_slowest"] > 0
    assert [(r["backends"], r["keys"]) for r in out["replay"]["rows"]] == [(1, 2), (1, 3), (2, 2), (2, 3)]
    assert all(r[f"{o}: {p}"]["loads"] >= r["keys"] for r in out["replay"]["rows"] for o in ORDERS for p in POLICIES)
    shards = out["shards"]["rows"]
    assert set(shards) == {"2", "8"} and all(r["model"]["loads_total"] >= 2 and r["hash"]["loads_total"] >= 2 for r in shards.values())
    cpu = out["cpu"]
    assert set(cpu["cpu_ms_per_job"]) == {"sweep", "models"} and all(v > 0 for v in cpu["cpu_ms_per_job"].values())
    assert cpu["small_jobs"] < cpu["jobs"] and set(cpu["marginal_cpu_ms_per_job"]) == {"sweep", "models"}
    assert "SwarmUI-style" in report(out)
    from bench.run_all import table

    assert "Model scheduling" in table({"models": out})


def test_table_renders():
    from bench.run_all import table

    row = {"jobs_per_s": 1, "x_server_bound": 1, "x_comfykit_best": 1, "cpu_ms_per_job": 1}
    co = {"n": 1, "workflow": "w", "server_bound_jobs_per_s": 1, "comfykit_best": {"http": {"config": "c", "jobs_per_s": 1}},
          "rows": {"library http c=2": row, "cli http": {**row, "marginal_cpu_ms_per_job": 1}}}
    text = table({"client_overhead": co})
    assert "server-bound 1 jobs/s" in text and "cli http" in text


def test_end_of_run_smoke():
    from bench.end_of_run import measure, report
    from bench.run_all import table

    out = measure(20, side=64, job_s=0.02)
    lane = out["lane"]
    assert out["images"] == 20 and lane["made"] + lane["dropped"] == 20 and lane["failed"] == 0
    assert 0 <= lane["overlap_share"] <= 1 and out["today"]["end_s"] > 0 and out["extrapolated_10k"]["target_s"] == 2.0
    assert "End of run" in report(out) and "End of run" in table({"end_of_run": out})
