"""The runner over scripted executors: retry, pause, probe, drop, honest counts (no server, no sleeps)."""

from __future__ import annotations

import json
import threading

import pytest

from comfykit_batch.batch.run.backend import Backend
from comfykit_batch.batch.run.runner import BatchRunner, retry_delay
from comfykit_batch.batch.spec.sweep import Sweep
from comfykit_batch.batch.store.store import ResultStore
from comfykit_batch.workflow import Workflow
from tests.helpers.scripted import ScriptedExecutor

WF = Workflow({"1": {"class_type": "X", "inputs": {"v": 0}, "_meta": {"title": "$v"}}})


def _jobs(n: int):
    return list(Sweep([{"grid": {"v": list(range(n))}}], {"w": WF.fingerprint()}))


def _run(tmp_path, backends, n=6, retries=2):
    store = ResultStore(tmp_path / "out", "t").open()
    runner = BatchRunner(backends, {"w": WF}, store, timeout=10, retries=retries, backoff=lambda attempt: 0.0)
    summary = runner.run(_jobs(n), n)
    store.close()
    index = json.loads((tmp_path / "out" / "index.json").read_text())["jobs"]
    return summary, {tuple(r["params"].values())[0]: r for r in index}


def _backend(name, script, **kw):
    return Backend(name, ScriptedExecutor(name, script), 2, pause_first=0.01, pause_max=0.02, **kw)


def test_transient_failure_is_retried_and_recorded_with_its_attempts(tmp_path):
    b = _backend("a", lambda p, n: "connection" if p["v"] == 3 and n == 0 else "ok")
    summary, index = _run(tmp_path, [b])
    assert summary.done == 6 and summary.failed == 0 and summary.exit_code == 0
    assert index[3]["attempts"] == 2 and index[3]["status"] == "completed"
    assert all(index[v]["attempts"] == 1 for v in (0, 1, 2, 4, 5))


def test_lasting_failure_is_recorded_once_and_not_retried(tmp_path):
    b = _backend("a", lambda p, n: "execution" if p["v"] == 2 else "ok")
    summary, index = _run(tmp_path, [b])
    assert summary.failed == 1 and summary.exit_code == 1
    assert index[2]["status"] == "failed" and index[2]["error"]["kind"] == "execution"
    assert index[2]["error"]["transient"] is False and index[2]["error"]["node_id"] == "1"
    assert sum(1 for c in b.executor.calls if c["v"] == 2) == 1


def test_failing_backend_is_paused_and_its_jobs_run_elsewhere(tmp_path):
    bad = _backend("bad", lambda p, n: "connection")
    good = _backend("good", lambda p, n: "ok")
    summary, index = _run(tmp_path, [bad, good], n=40, retries=2)
    assert summary.done == 40 and summary.failed == 0
    assert all(r["backend"] == "good" for r in index.values())
    assert bad.consecutive_faults >= 3 and bad.paused_until is not None, "paused after three faults in a row"
    retried = [r for r in index.values() if r["attempts"] > 1]
    assert retried and all(r["attempts"] == 2 for r in retried), "a retry goes to another backend, not back to the bad one"


def test_backend_down_past_its_limit_is_dropped_and_the_rest_go_on(tmp_path):
    bad = _backend("bad", lambda p, n: "connection", down_limit=0.0)
    good = _backend("good", lambda p, n: "ok")
    summary, _ = _run(tmp_path, [bad, good], n=12, retries=5)
    assert bad.dropped and not good.dropped
    assert summary.done == 12 and summary.backends["bad"].dropped is True


def test_every_backend_dropped_stops_the_batch_with_its_index_written(tmp_path):
    bad = _backend("bad", lambda p, n: "connection", down_limit=0.0)
    summary, index = _run(tmp_path, [bad], n=30, retries=50)
    assert bad.dropped and summary.not_run > 0 and summary.exit_code == 1
    assert summary.done == 0 and len(index) + summary.not_run == 30


def test_refused_credentials_drop_the_backend_and_its_jobs_run_elsewhere(tmp_path):
    locked = _backend("locked", lambda p, n: "auth")
    open_ = _backend("open", lambda p, n: "ok")
    summary, index = _run(tmp_path, [locked, open_], n=10, retries=0)
    assert locked.dropped and "credentials were refused" in locked.drop_reason
    assert summary.done == 10 and summary.failed == 0 and {r["backend"] for r in index.values()} == {"open"}
    assert len(locked.executor.calls) <= 2, "no more jobs went to a backend that refused the key"


def test_the_next_prompt_is_sent_while_the_last_one_downloads(tmp_path):
    second_started = threading.Event()
    downloading = {"now": 0, "most": 0}
    lock = threading.Lock()

    def script(params, n):
        if params["v"] == 1:
            second_started.set()
        return "ok"

    def download():
        with lock:
            downloading["now"] += 1
            downloading["most"] = max(downloading["most"], downloading["now"])
        try:
            if not second_started.is_set():
                assert second_started.wait(10), "the server idled while the first job's outputs downloaded"
        finally:
            with lock:
                downloading["now"] -= 1

    b = Backend("a", ScriptedExecutor("a", script, on_download=download), 1)
    summary, index = _run(tmp_path, [b], n=4)
    assert summary.done == 4 and all(r["status"] == "completed" for r in index.values())
    assert downloading["most"] <= 2, "at most one released job downloads beside the one in its slot"


@pytest.mark.parametrize("attempt", [0, 1, 5, 20])
def test_retry_delay_grows_and_is_capped(attempt):
    low, high = retry_delay(attempt, lambda: 0.0), retry_delay(attempt, lambda: 1.0)
    assert 0 < low <= 30.0 and high - low == 0.5
    assert retry_delay(attempt + 1, lambda: 0.0) >= low
