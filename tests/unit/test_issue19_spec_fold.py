"""Issue 19: one distinct combination is one job, whichever way a repeat arises (a value listed twice, two
blocks or cases making the same parameters, a caller handing the runner one job twice); ids, positions
and arithmetic counts of sweeps without repeats stay as they were."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pytest
import yaml

from comfykit_batch.batch.run.backend import Backend
from comfykit_batch.batch.run.plan import build_plan
from comfykit_batch.batch.run.runner import BatchRunner
from comfykit_batch.batch.spec import sweep as sweep_module
from comfykit_batch.batch.spec.manifest import load_manifest
from comfykit_batch.batch.spec.sweep import Sweep
from comfykit_batch.batch.store.store import ResultStore
from comfykit_batch.workflow import Workflow
from tests.helpers.scripted import ScriptedExecutor

FP = {"w": "f" * 64}
WF = Workflow({"1": {"class_type": "X", "inputs": {"v": 0}, "_meta": {"title": "$v"}}})


def _manifest(tmp_path: Path, sweep: object, files: dict[str, str] | None = None) -> Path:
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "wf.json").write_text(json.dumps(WF.nodes))
    doc = {"name": "t", "output": str(tmp_path / "out"), "workflows": [{"name": "w", "source": "wf.json"}],
           "sweep": sweep}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _seen(sweep: Sweep) -> list[tuple[int, dict]]:
    return [(j.seq, dict(j.params)) for j in sweep]


def test_a_value_file_with_a_line_twice_is_folded_at_load_keeping_the_first(tmp_path):
    m = load_manifest(_manifest(tmp_path, {"grid": {"v": {"from": "p.txt"}}, "zip": {"a": [1, 2, 1], "b": [3, 4, 3]},
                                           "seeds": {"param": "s", "values": [5, 5]}}, {"p.txt": "x\ny\nx\nz\n"}))
    block = m.blocks[0]
    assert block["grid"]["v"] == ["x", "y", "z"] and block["zip"] == {"a": [1, 2], "b": [3, 4]}
    assert block["seeds"]["values"] == [5]
    assert m.folded == [("sweep.grid.v", 1), ("sweep.zip", 1), ("sweep.seeds.values", 1)]
    s = Sweep(m.blocks, FP, fold=True)
    assert s.count() == 6 and len({j.id for j in s}) == 6 and s.folds.count == 0


def test_a_sweep_without_repeats_keeps_its_blocks_ids_positions_and_signature(tmp_path):
    raw = [{"grid": {"v": [1, 2]}, "cases": [{"a": 1}, {"a": 2}]}, {"grid": {"v": [3]}, "seeds": {"param": "s", "count": 2}}]
    m = load_manifest(_manifest(tmp_path, raw))
    assert m.blocks == raw and m.folded == []
    plain, folding = Sweep(raw, FP), Sweep(m.blocks, FP, fold=True)
    assert [(j.id, j.seq) for j in folding] == [(j.id, j.seq) for j in plain]
    assert folding.signature == plain.signature and not folding.may_repeat()


def test_two_blocks_making_the_same_parameters_fold_to_the_first(tmp_path):
    s = Sweep([{"grid": {"v": [1, 2]}}, {"grid": {"v": [2, 3]}}], FP, fold=True)
    assert _seen(s) == [(0, {"v": 1}), (1, {"v": 2}), (3, {"v": 3})]
    assert s.count() == 3 and s.count_by_workflow() == {"w": 3} and s.folds.count == 1
    assert len(list(Sweep(s.blocks, FP))) == 4, "without fold (a library caller's choice) every position is a job"


@pytest.mark.parametrize("block", [
    {"params": {"v": 1}, "cases": [{}, {"v": 1}]},  # alike once the fixed value fills them
    {"grid": {"v": [1, 2]}, "cases": [{"v": 3}]},  # a parameter set by two axes: the case hides the grid
    {"random": {"samples": 5, "params": {"v": {"choice": ["a"]}}}},  # samples that coincide
    {"grid": {"v": [1, 1.0, True, "1"]}, "repeat": 2},  # no repeat: 1, 1.0, true and "1" are four ids
])
def test_cases_axes_and_samples_that_coincide_run_once(block):
    s = Sweep([block], FP, fold=True)
    ids = [j.id for j in s]
    assert len(ids) == len(set(ids)) == s.count() == len(set(j.id for j in Sweep([block], FP)))


def test_one_workflow_named_twice_runs_each_job_once():
    s = Sweep([{"grid": {"v": [1, 2]}}], {"a": "f" * 64, "b": "f" * 64}, fold=True)
    assert [j.workflow for j in s] == ["a", "a"] and s.count_by_workflow() == {"a": 2, "b": 0}


def test_a_repeat_an_earlier_run_recorded_at_its_own_position_is_not_counted_twice():
    s = Sweep([{"grid": {"v": [1, 2]}}, {"grid": {"v": [2, 3]}}], FP, fold=True)
    walked = list(s.iter_skipping(bytearray([1, 0, 1, 0])))  # position 2 holds the repeat of position 1
    assert walked[0] == 1 and [(j.seq, dict(j.params)) for j in walked[1:]] == [(1, {"v": 2}), (3, {"v": 3})]


def test_a_million_job_sweep_without_repeats_is_counted_and_walked_lazily(monkeypatch):
    made = []
    real = sweep_module.job_id
    monkeypatch.setattr(sweep_module, "job_id", lambda *a: made.append(a) or real(*a))
    s = Sweep([{"grid": {"a": list(range(1000)), "b": list(range(1000))}}], FP, fold=True)
    assert s.count() == 1_000_000 and not made
    assert len(list(itertools.islice(s, 3))) == 3 and len(made) == 3


def test_the_plan_says_what_was_folded_and_only_then(tmp_path):
    path = _manifest(tmp_path, [{"grid": {"v": {"from": "p.txt"}}}, {"grid": {"v": ["c", "d"]}}], {"p.txt": "a\nb\na\nc\n"})
    m = load_manifest(path)
    plan = build_plan(m, Sweep(m.blocks, FP, fold=True))
    lines = plan.lines
    assert plan.total == 4 and lines[0].startswith("t: 4 jobs; output") and "before exclude" not in lines[0]
    assert ("  folded duplicates (each distinct combination runs once): sweep[0].grid.v: 1 repeated value; "
            "1 job with the parameters of an earlier job") in lines
    clean = load_manifest(_manifest(tmp_path, {"grid": {"v": [1, 2]}}))
    assert not any("folded" in line for line in build_plan(clean, Sweep(clean.blocks, FP, fold=True)).lines)


def test_the_runner_never_runs_two_jobs_with_one_id_at_once(tmp_path):
    """A caller's list with one job three times, at concurrency 4: the twins are folded, the batch completes."""
    a, b = Sweep([{"grid": {"v": [1, 2]}}], {"w": WF.fingerprint()})
    handed_out = threading.Event()

    def jobs():
        yield from [a, a, b, a]
        handed_out.set()

    def script(params, n):  # every job stays in flight until the runner took the last one
        assert handed_out.wait(30)
        return "ok"

    backend = Backend("s", ScriptedExecutor("s", script), 4)
    store = ResultStore(tmp_path / "out", "t").open()
    summary = BatchRunner([backend], {"w": WF}, store, timeout=10, retries=0).run(jobs(), 4)
    store.close()
    assert backend.executor.calls == [{"v": 1}, {"v": 2}] or backend.executor.calls == [{"v": 2}, {"v": 1}]
    assert (summary.done, summary.failed, summary.folded, summary.total, summary.exit_code) == (2, 0, 2, 2, 0)
