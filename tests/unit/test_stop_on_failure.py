"""A batch whose jobs all fail the same way stops itself; one backend failing that way while others work is dropped."""

from __future__ import annotations

from comfykit_batch.batch.run.backend import Backend
from comfykit_batch.batch.run.runner import BatchRunner
from comfykit_batch.batch.run.stall import FailureWatch, Stall
from comfykit_batch.batch.spec.sweep import Sweep
from comfykit_batch.batch.store.store import ResultStore
from comfykit_batch.result import Failure
from comfykit_batch.workflow import Workflow
from tests.helpers.scripted import ScriptedExecutor

WF = Workflow({"1": {"class_type": "X", "inputs": {"v": 0}, "_meta": {"title": "$v"}}})
OOM = Failure("execution", "CUDA out of memory", node_id="3", node_type="KSampler", exception_type="OutOfMemoryError")


def _run(tmp_path, backends, n=60, limit=5):
    store = ResultStore(tmp_path / "out", "t").open()
    jobs = list(Sweep([{"grid": {"v": list(range(n))}}], {"w": WF.fingerprint()}))
    runner = BatchRunner(backends, {"w": WF}, store, timeout=10, retries=0, backoff=lambda a: 0.0, stop_after_failures=limit)
    summary = runner.run(jobs, n)
    store.close()
    return summary


def test_the_watch_stops_on_a_run_of_identical_failures_and_a_success_clears_it():
    w = FailureWatch(3)
    assert w.failed("a", OOM, {"a"}) is None and w.failed("a", OOM, {"a"}) is None
    assert w.ok("a") == []
    assert w.failed("a", OOM, {"a"}) is None and w.failed("a", OOM, {"a"}) is None
    verdict = w.failed("a", OOM, {"a"})
    assert isinstance(verdict, Stall) and verdict.kind == "execution" and verdict.node == "3 (KSampler)"
    assert "CUDA out of memory" in verdict.line() and "execution at node 3 (KSampler)" in verdict.line()


def test_failures_of_different_kinds_or_nodes_do_not_add_up():
    w = FailureWatch(2)
    assert w.failed("a", OOM, {"a"}) is None
    assert w.failed("a", Failure("execution", "x", node_id="9", node_type="VAEDecode"), {"a"}) is None
    assert w.failed("a", Failure("rejected", "unknown node"), {"a"}) is None


def test_zero_never_stops():
    w = FailureWatch(0)
    assert all(w.failed("a", OOM, {"a"}) is None for _ in range(100))


def test_a_batch_whose_every_job_fails_the_same_way_stops_with_the_rest_not_run(tmp_path):
    bad = ScriptedExecutor("a", lambda p, n: "execution", concurrency=1)
    summary = _run(tmp_path, [Backend("a", bad, 1)])
    assert summary.stalled is not None and summary.stalled.count == 5
    assert summary.failed == 5 and summary.not_run == 55 and summary.exit_code == 1
    assert len(bad.calls) == 5  # nothing more was submitted


def test_a_backend_failing_every_job_while_another_works_is_dropped_and_the_rest_continue(tmp_path):
    bad = ScriptedExecutor("bad", lambda p, n: "execution", concurrency=1)
    good = ScriptedExecutor("good", lambda p, n: "ok", concurrency=1)
    summary = _run(tmp_path, [Backend("bad", bad, 1), Backend("good", good, 1)])
    assert summary.stalled is None and summary.backends["bad"].dropped
    assert "failed the same way" in summary.backends["bad"].drop_reason
    assert summary.done == 60 - summary.failed and summary.failed == 5 and summary.not_run == 0


def test_both_backends_failing_the_same_way_stop_the_batch(tmp_path):
    a = ScriptedExecutor("a", lambda p, n: "execution", concurrency=1)
    b = ScriptedExecutor("b", lambda p, n: "execution", concurrency=1)
    summary = _run(tmp_path, [Backend("a", a, 1), Backend("b", b, 1)])
    assert summary.stalled is not None and summary.exit_code == 1
    assert len(a.calls) + len(b.calls) < 12


def test_a_backend_failing_before_any_other_has_a_result_is_held_until_one_does():
    w = FailureWatch(2)
    assert w.failed("a", OOM, {"a", "b"}) is None and w.failed("a", OOM, {"a", "b"}) is None
    assert "a" in w.held  # b has not said yet whether it works
    assert w.ok("b") == ["a"]  # it does: a is the one to drop
    w2 = FailureWatch(2)
    w2.failed("a", OOM, {"a", "b"})
    w2.failed("a", OOM, {"a", "b"})
    assert isinstance(w2.failed("b", OOM, {"a", "b"}), Stall)  # b fails the same way: the fault is everywhere
