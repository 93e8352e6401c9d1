"""Issue 20, the run room: one ``Selection`` for the run and the dry run, typed backend figures, the run's waits
from one ``Timings``, and failure kinds decided by ``FAILURE_KINDS`` alone."""

from __future__ import annotations

import json
import threading
from contextlib import ExitStack

import pytest

from comfykit_batch.batch.run.backend import Backend, BackendStats
from comfykit_batch.batch.run.plan import build_plan
from comfykit_batch.batch.run.runner import BatchRunner, Summary
from comfykit_batch.batch.run.selection import Selection
from comfykit_batch.batch.run.session import RunOptions, plan, prepare, run_manifest, start_backends
from comfykit_batch.batch.spec.shard import Shard
from comfykit_batch.batch.spec.sweep import Sweep
from comfykit_batch.batch.store.store import ResultStore
from comfykit_batch.cli.run import _print_summary
from comfykit_batch.defaults import Timings
from comfykit_batch.errors import BackendError, UsageError
from comfykit_batch.result import FAILURE_KINDS, Failure
from comfykit_batch.workflow import Workflow
from tests.helpers import scripted
from tests.helpers.manifests import write_manifest
from tests.helpers.scripted import ScriptedExecutor
from tests.unit.test_authoring_plan import FakeStore

SWEEP = {"grid": {"width": list(range(1, 21)), "height": [1, 2]}}  # 40 jobs


@pytest.fixture
def manifest(tmp_path, fake_comfy, workflows):
    return write_manifest(tmp_path, [{"name": "f", "url": fake_comfy.url}], workflow=workflows / "invert.json", sweep=SWEEP)


def _sweep(path):
    prepared = prepare(path)
    return prepared.manifest, prepared.sweep


def test_a_dry_run_of_a_shard_shows_that_shards_jobs(manifest, fake_comfy):
    shard = Shard(1, 4)
    _, sweep = _sweep(manifest)
    mine = [j.id for j in sweep if shard.contains(j.id)]
    p = plan(manifest, RunOptions(shard=shard), show=100)
    assert [j.id for j in p.first_jobs] == mine and p.total == len(mine) and p.per_workflow == {"w": len(mine)}
    assert p.lines[0].startswith(f"t: {len(mine)} jobs (--shard 1/4); output ")
    assert fake_comfy.submitted == []


def test_a_shards_dry_run_and_its_run_take_the_same_jobs(manifest, fake_comfy, tmp_path):
    options = RunOptions(shard=Shard(2, 3), limit=5)
    planned = [j.id for j in plan(manifest, options).first_jobs]
    summary = run_manifest(manifest, options)
    assert summary.done == len(planned) == 5
    ran = {p.name for p in (tmp_path / "out" / "parts").iterdir()}
    assert ran == {"0002-of-0003"}


def test_an_unknown_only_id_is_refused_by_the_run_and_the_dry_run_alike(manifest, fake_comfy):
    options = RunOptions(only=["nope"])
    with pytest.raises(UsageError) as dry:
        plan(manifest, options)
    with pytest.raises(UsageError) as run:
        run_manifest(manifest, options)
    assert str(dry.value) == str(run.value) and "--only: 1 id(s) not in this sweep: nope" in str(run.value)
    assert fake_comfy.submitted == []


def test_run_options_give_their_selection():
    options = RunOptions(only=["a", "b", "a"], shard=Shard(0, 2), limit=3, retry_failed=True)
    assert options.selection == Selection(frozenset({"a", "b"}), Shard(0, 2), 3, retry_failed=True)
    assert RunOptions().selection.whole and RunOptions(only=[]).selection.whole


def test_the_expected_count_of_each_selection(manifest):
    _, sweep = _sweep(manifest)
    assert Selection().expected(sweep) == 40
    assert Selection(shard=Shard(0, 3)).expected(sweep) == 14  # a shard's share, rounded up: the summary counts exactly
    assert Selection(shard=Shard(0, 3), limit=5).expected(sweep) == 5
    assert Selection(only=frozenset({"x", "y"})).expected(sweep) == 2


def test_the_labels_name_every_part_of_a_selection():
    assert Selection().label() == ""
    assert Selection(only=frozenset({"a"}), shard=Shard(3, 8), limit=1000).label() == "(--only 1 id) (--shard 3/8) (--limit 1,000)"


def test_a_dry_run_with_retry_failed_runs_every_earlier_failure_again(manifest):
    m, sweep = _sweep(manifest)
    jobs = list(sweep)
    records = {jobs[0].id: {"status": "completed", "files": []},
               jobs[1].id: {"status": "failed", "error": {"transient": False}},
               jobs[2].id: {"status": "failed", "error": {"transient": True}}}
    plain = build_plan(m, sweep, store=FakeStore(records))
    again = build_plan(m, sweep, store=FakeStore(records), selection=Selection(retry_failed=True))
    assert "2 failed earlier (1 transient, run again; 1 skipped unless --retry-failed), 38 to run" in plain.lines[-1]
    assert "2 failed earlier (run again: --retry-failed), 39 to run" in again.lines[-1]


# -- the backends' figures ----------------------------------------------------------------------------
def test_the_summary_prints_each_backends_figures_as_before(capsys):
    summary = Summary(total=3, done=2, failed=1, skipped=0, interrupted=False, wall=1.0, failures={}, index="i",
                      backends={"a": BackendStats(2, 0, False, "", 0.25), "b": BackendStats(0, 1, True, "", 0.5),
                                "c": BackendStats(0, 0, True, "its credentials were refused (401)", 1.0)}, name="t")
    _print_summary(summary)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:4] == ["  backend a: 2 completed, 0 failed, idle 25.0%",
                          "  backend b: 0 completed, 1 failed, idle 50.0% (dropped: stayed down)",
                          "  backend c: 0 completed, 0 failed, idle 100.0% (dropped: its credentials were refused (401))"]


# -- the run's waits --------------------------------------------------------------------------------
WF = Workflow({"1": {"class_type": "X", "inputs": {"v": 0}, "_meta": {"title": "$v"}}})


class _NoWait(threading.Event):
    """A cancel event whose waits return at once, noting how long they were asked to be."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return self.is_set()


def _runner(tmp_path, backends, **kw):
    store = ResultStore(tmp_path / "out", "t").open()
    return store, BatchRunner(backends, {"w": WF}, store, timeout=10, retries=2, backoff=lambda attempt: 0.0, **kw)


def test_a_failed_download_is_tried_again_after_the_runs_download_backoff(tmp_path):
    fails = iter([True, True])

    def download():
        if next(fails, False):
            raise BackendError("connection reset", transient=True)

    b = Backend("a", ScriptedExecutor("a", lambda p, n: "ok", on_download=download), 1)
    store, runner = _runner(tmp_path, [b], timings=Timings(download_backoff=0.125))
    runner.cancel = _NoWait()
    jobs = list(Sweep([{"grid": {"v": [1]}}], {"w": WF.fingerprint()}))
    summary = runner.run(jobs, 1)
    store.close()
    assert summary.done == 1 and [w for w in runner.cancel.waits if w] == [0.125, 0.25]


def test_the_session_gives_its_timings_to_backends_and_executors(tmp_path, fake_comfy, workflows):
    path = write_manifest(tmp_path, [{"name": "f", "url": fake_comfy.url}], workflow=workflows / "invert.json", sweep=SWEEP)
    prepared = prepare(path)
    timings = Timings(pause_first=0.5, pause_max=0.75, lost_check=0.25)
    with ExitStack() as stack:
        [b] = start_backends(prepared.manifest, prepared.workflows, stack, RunOptions(timings=timings), lambda m: None)
        assert (b.pause_first, b.pause_max, b.pause_len) == (0.5, 0.75, 0.5)
        assert b.executor.timings is timings


# -- failure kinds ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(set(FAILURE_KINDS) - {"storage", "auth"}))  # these stop the run, drop the backend
def test_a_failure_pauses_its_backend_only_when_its_kind_says_so(tmp_path, kind, monkeypatch):
    monkeypatch.setitem(scripted.FAILURES, kind, Failure(kind, f"a {kind} failure"))  # the kind's own transience
    bad = Backend("bad", ScriptedExecutor("bad", lambda p, n: kind), 1, pause_first=60.0)  # never waited for:
    good = Backend("good", ScriptedExecutor("good", lambda p, n: "ok"), 1)  # the jobs go on here
    store, runner = _runner(tmp_path, [bad, good])
    runner.run(list(Sweep([{"grid": {"v": list(range(12))}}], {"w": WF.fingerprint()})), 12)
    store.close()
    assert len(bad.executor.calls) >= 3, "enough faults in a row to pause a backend"
    assert (bad.paused_until is not None) == FAILURE_KINDS[kind].pauses_backend


def test_a_full_disk_stops_the_run_and_its_job_runs_next_time(tmp_path):
    def download():
        raise OSError(28, "No space left on device")

    b = Backend("a", ScriptedExecutor("a", lambda p, n: "ok", on_download=download), 1)
    store, runner = _runner(tmp_path, [b])
    with pytest.raises(Exception, match="No space left on device"):
        runner.run(list(Sweep([{"grid": {"v": [1, 2]}}], {"w": WF.fingerprint()})), 2)
    store.close()
    index = json.loads((tmp_path / "out" / "index.json").read_text())["jobs"]
    assert index == [] and FAILURE_KINDS["storage"].transient
