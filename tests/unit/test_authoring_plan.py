"""The dry-run plan: counts per workflow and backend, axes, first jobs, what a re-run skips, size warnings."""

from pathlib import Path

import pytest

from comfykit_batch.batch.run.plan import build_plan, open_existing_store, spread
from comfykit_batch.batch.run.selection import Selection
from comfykit_batch.batch.spec import sweep as sweep_module
from comfykit_batch.batch.spec.manifest import load_manifest
from comfykit_batch.batch.spec.sweep import Sweep
from comfykit_batch.batch.store.store import COMPLETED, FAILED, MISSING, NEW, TRANSIENT
from comfykit_batch.workflow import Workflow

ROOT = Path(__file__).resolve().parents[2]


class FakeStore:
    """The part of ResultStore the plan reads."""

    def __init__(self, records: dict[str, dict]) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def walk(self, jobs):
        for job in jobs:
            rec = self.records.get(job.id)
            if rec is None:
                yield job, NEW
            elif rec["status"] == "completed":
                yield job, MISSING if rec.get("gone") else COMPLETED
            else:
                yield job, TRANSIENT if (rec.get("error") or {}).get("transient") else FAILED

    def get(self, job_id: str):
        return self.records.get(job_id)


@pytest.fixture
def shipped(monkeypatch):
    monkeypatch.delenv("COMFYUI_URL", raising=False)
    m = load_manifest(ROOT / "manifests" / "sweep.yaml")
    wf = Workflow.from_file(ROOT / "manifests" / "workflows" / "noisy_swatch.json")
    return m, Sweep(m.blocks, {"swatch": wf.fingerprint()})


def test_plan_of_the_shipped_sweep(shipped):
    m, sweep = shipped
    lines = build_plan(m, sweep).lines
    assert lines[:4] == [
        "example-sweep: 28 jobs (36 before exclude); output output/example-sweep",
        "  workflow swatch: 28 jobs",
        "  backend comfy (concurrency 2): ~28 jobs (swatch 28)",
        "  sweep[0] -> swatch: grid.strength 3 x grid.width 2 x zip(color, label) 2 x seeds.seed 3 = 36; "
        "exclude (2 rules) removes 8 = 28 jobs",
    ]
    first = next(iter(sweep))
    assert lines[4] == "  first 5 jobs:" and lines[5].startswith(f"    {first.id}  swatch  {{\"strength\": 0.0, ")
    assert len(lines) == 10


def test_rerun_counts_from_the_store(shipped):
    m, sweep = shipped
    jobs = list(sweep)
    records = {j.id: {"status": "completed", "files": [{"size": 1000}]} for j in jobs[:20]}
    records.update({j.id: {"status": "failed", "error": {"transient": j is jobs[20]}} for j in jobs[20:23]})
    records[jobs[0].id]["gone"] = True
    records["old-job"] = {"status": "completed"}
    plan = build_plan(m, sweep, store=FakeStore(records))
    r = plan.rerun
    assert (r.completed, r.failed, r.transient, r.missing_files, r.new, r.not_in_sweep) == (19, 3, 1, 1, 5, 1)
    assert plan.lines[-2:] == [
        "  re-run into the existing output: 19 completed (skipped), 3 failed earlier (1 transient, run again; "
        "2 skipped unless --retry-failed), 7 to run, 1 of them because a recorded file is gone",
        "  1 recorded job(s) are no longer in this sweep (their records are kept)",
    ]


def test_limit_and_only_select_like_the_run(shipped):
    m, sweep = shipped
    ids = [j.id for j in sweep]
    plan = build_plan(m, sweep, selection=Selection(limit=3))
    assert plan.total == 3 and [j.id for j in plan.first_jobs] == ids[:3] and "(--limit 3)" in plan.lines[0]
    plan = build_plan(m, sweep, selection=Selection(only=frozenset([ids[5], ids[7]])))
    assert plan.total == 2 and [j.id for j in plan.first_jobs] == [ids[5], ids[7]]


def test_spread_follows_concurrency_and_restrictions():
    out = spread({"a": 90, "b": 30}, {"a": ["g1", "g2"], "b": ["g2"]}, {"g1": 2, "g2": 2})
    # b can only run on g2: a fills g1 first so both backends end together (60 jobs each)
    assert out == {"g1": {"a": 60}, "g2": {"b": 30, "a": 30}}
    assert spread({"a": 10}, {"a": ["x", "y"]}, {"x": 3, "y": 1}) == {"x": {"a": 8}, "y": {"a": 2}}


def test_plan_spreads_over_backends_from_the_manifest(tmp_path):
    (tmp_path / "wf.json").write_text("{}")
    (tmp_path / "m.yaml").write_text(
        "name: t\nbackends: [{name: g1, url: 'http://a:1', concurrency: 3}, {name: g2, url: 'http://b:1', concurrency: 1}]\n"
        "workflows: [{name: w, source: wf.json}, {name: v, source: wf.json, backends: [g2]}]\n"
        "sweep: [{workflow: w, grid: {x: [1, 2, 3, 4, 5, 6, 7, 8]}}, {workflow: v, params: {y: 1}}]\n")
    m = load_manifest(tmp_path / "m.yaml")
    lines = build_plan(m, Sweep(m.blocks, {"w": "1", "v": "2"})).lines
    assert "  backend g1 (concurrency 3): ~7 jobs (w 7)" in lines
    assert "  backend g2 (concurrency 1): ~2 jobs (v 1, w 1)" in lines
    assert "  backend g1 (concurrency 1): ~5 jobs (w 5)" in build_plan(m, Sweep(m.blocks, {"w": "1", "v": "2"}), jobs=1).lines


def test_warning_past_100000_jobs_with_estimated_size(tmp_path):
    (tmp_path / "m.yaml").write_text("name: big\nworkflows: [{name: w, source: wf.json}]\n"
                                     "sweep: {grid: {a: {from: a.txt}, b: {from: a.txt}}, seeds: {param: seed, count: 2}}\n")
    (tmp_path / "a.txt").write_text("\n".join(map(str, range(300))))
    m = load_manifest(tmp_path / "m.yaml")
    sweep = Sweep(m.blocks, {"w": "f"})
    plan = build_plan(m, sweep)
    assert plan.total == 180_000
    assert plan.lines[-1] == ("warning: 180,000 jobs (over 100,000): the index alone will be ~126.0 MB; output size unknown "
                              "until some jobs ran (try --limit 10 first); check the axes above if that is more than you meant")
    first = next(iter(sweep))
    store = FakeStore({first.id: {"status": "completed", "files": [{"size": 2_000_000}]}})
    assert "the outputs ~360.0 GB (2.0 MB per job so far)" in build_plan(m, sweep, store=store).lines[-1]
    assert not build_plan(m, sweep, selection=Selection(limit=10)).warnings


def test_a_walked_count_reports_progress(shipped, monkeypatch):
    monkeypatch.setattr(sweep_module, "ENUMERATION_LIMIT", 1)
    monkeypatch.setattr(sweep_module, "PROGRESS_EVERY", 10)
    m, sweep = shipped
    seen = []
    assert build_plan(m, sweep, on_progress=lambda done, total: seen.append((done, total))).total == 28
    assert seen == [(10, 36), (20, 36), (30, 36), (36, 36)]  # walked once, with progress


def test_a_dry_run_creates_no_output_folder(tmp_path, shipped):
    m, _ = shipped
    m.output = tmp_path / "out"
    assert open_existing_store(m) is None and not m.output.exists()


def test_rerun_counts_from_a_real_output_folder(shipped, tmp_path):
    from comfykit_batch.batch.store.store import ResultStore

    m, sweep = shipped
    m.output = tmp_path / "out"
    jobs = list(sweep)
    store = ResultStore(m.output, m.name).open()
    for job, status in zip(jobs[:3], ["completed", "completed", "failed"], strict=True):
        store.record({"id": job.id, "workflow": job.workflow, "params": dict(job.params), "repeat": 0, "status": status,
                      "files": [], "error": {"kind": "node", "message": "x", "transient": False} if status == "failed" else None})
    store.close()
    reopened = open_existing_store(m)
    try:
        r = build_plan(m, sweep, store=reopened).rerun
    finally:
        reopened.close()
    assert (r.completed, r.failed, r.transient, r.new, r.not_in_sweep) == (2, 1, 0, 25, 0)
