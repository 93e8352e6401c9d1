"""The batch runner against fake servers: kills, Ctrl-C, dead and dying backends, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from comfykit_batch.cli import main
from comfykit_batch.cli.run import main as run_main
from comfykit_batch.defaults import Timings
from tests.fakes.fake_comfyui import FakeComfyUI
from tests.helpers.manifests import ROOT, write_manifest
from tests.helpers.waiting import wait_for

SWEEP = {"grid": {"width": list(range(1, 21)), "height": [1, 2]}}  # 40 jobs
#: a failing backend is probed again after 50 ms, not 5 s: the run's waits, shortened for a test
FAST = Timings(pause_first=0.05, pause_max=0.2, download_backoff=0.01, socket_connect_wait=0.2)


@pytest.fixture
def fakes():
    servers: list[FakeComfyUI] = []

    def make(**kw) -> FakeComfyUI:
        s = FakeComfyUI(**kw).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def _index(tmp_path):
    return json.loads((tmp_path / "out" / "index.json").read_text())["jobs"]


def _journal_lines(tmp_path):
    p = tmp_path / "out" / "journal.jsonl"
    return p.read_text().splitlines() if p.exists() else []


def _spawn(manifest, *extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "comfykit_batch", str(manifest), "-q", *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)





@pytest.mark.parametrize("executor", ["http", "websocket"])
def test_kill_mid_batch_then_resume_loses_and_redoes_nothing(tmp_path, fakes, workflows, executor):
    fake = fakes(work_seconds=0.05)
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url, "executor": executor}],
                       workflow=workflows / "invert.json", sweep=SWEEP)
    proc = _spawn(m)
    wait_for(lambda: len(_journal_lines(tmp_path)) >= 8)
    proc.kill()
    proc.wait()
    done_before = {json.loads(x)["id"] for x in _journal_lines(tmp_path) if x.strip().endswith("}")}
    assert 8 <= len(done_before) < 40
    submitted_before = len(fake.submitted)
    assert main([str(m), "-q"]) == 0
    jobs = _index(tmp_path)
    assert len(jobs) == 40 and all(j["status"] == "completed" for j in jobs)
    assert len(fake.submitted) - submitted_before == 40 - len(done_before), "a finished job was redone"
    for j in jobs:
        for f in j["files"]:
            assert (tmp_path / "out" / f["path"]).stat().st_size == f["size"]


def test_ctrl_c_interrupts_writes_index_and_resumes(tmp_path, fakes, workflows):
    fake = fakes(work_seconds=0.1)
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep=SWEEP)
    proc = _spawn(m)
    wait_for(lambda: len(_journal_lines(tmp_path)) >= 3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in out and "re-run the same command to resume" in out
    jobs = _index(tmp_path)  # written and valid
    assert 3 <= len(jobs) < 40 and all(j["status"] == "completed" for j in jobs)
    wait_for(lambda: not fake.queue_state()["queue_running"] and not fake.queue_state()["queue_pending"], 5)
    assert main([str(m), "-q"]) == 0
    assert len(_index(tmp_path)) == 40


def test_second_ctrl_c_exits_at_once_without_corruption(tmp_path, fakes, workflows):
    fake = fakes(work_seconds=0.1)
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep=SWEEP)
    proc = _spawn(m)
    wait_for(lambda: len(_journal_lines(tmp_path)) >= 2)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert main([str(m), "-q"]) == 0
    assert len(_index(tmp_path)) == 40


def test_backend_down_from_the_start(tmp_path, fakes, workflows, capsys):
    fake = fakes()
    m = write_manifest(tmp_path, [{"name": "dead", "url": "http://127.0.0.1:9", "executor": "http"},
                                  {"name": "alive", "url": fake.url}], workflow=workflows / "invert.json", sweep=SWEEP)
    assert main([str(m), "-q"]) == 0
    jobs = _index(tmp_path)
    assert len(jobs) == 40 and {j["backend"] for j in jobs} == {"alive"}
    err = capsys.readouterr().err
    assert "warning: backend 'dead'" in err and "http://127.0.0.1:9" in err and "running on the other backend(s)" in err


def test_backend_dying_mid_run(tmp_path, fakes, workflows):
    dying = fakes(work_seconds=0.02)
    dying.die_after = 4
    steady = fakes(work_seconds=0.02)
    m = write_manifest(tmp_path, [{"name": "dying", "url": dying.url}, {"name": "steady", "url": steady.url}],
                       workflow=workflows / "invert.json", sweep=SWEEP, defaults={"retries": 3})
    assert run_main([str(m), "-q"], timings=FAST) == 0
    jobs = _index(tmp_path)
    assert len(jobs) == 40 and all(j["status"] == "completed" for j in jobs)
    by = {b: sum(1 for j in jobs if j["backend"] == b) for b in ("dying", "steady")}
    assert 4 <= by["dying"] <= dying.views and by["steady"] == 40 - by["dying"]


def test_work_is_spread_over_backends(tmp_path, fakes, workflows):
    a, b = fakes(work_seconds=0.02), fakes(work_seconds=0.02)
    m = write_manifest(tmp_path, [{"name": "a", "url": a.url}, {"name": "b", "url": b.url}],
                       workflow=workflows / "invert.json", sweep=SWEEP)
    assert main([str(m), "-q"]) == 0
    assert 10 <= len(a.submitted) <= 30 and len(a.submitted) + len(b.submitted) == 40


def test_failed_jobs_exit_1_and_are_retried_only_when_asked(tmp_path, fakes, capsys):
    fake = fakes()
    wf = tmp_path / "raise.json"
    wf.write_text(json.dumps({"1": {"class_type": "Raise", "inputs": {"message": "x"}, "_meta": {"title": "$message"}}}))
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=wf, sweep={"grid": {"message": ["a", "b"]}})
    assert main([str(m), "-q"]) == 1
    out = capsys.readouterr().out
    assert "2 failed" in out and "2 x execution: node 1 (Raise) raised ValueError" in out
    jobs = _index(tmp_path)
    assert {j["error"]["node_type"] for j in jobs} == {"Raise"} and all(j["attempts"] == 1 for j in jobs)
    n = len(fake.submitted)
    assert main([str(m), "-q"]) == 1 and len(fake.submitted) == n  # failed jobs are not silently re-run
    assert main([str(m), "-q", "--retry-failed"]) == 1 and len(fake.submitted) == n + 2


def test_changed_manifest_is_refused_unless_forced(tmp_path, fakes, workflows, capsys):
    fake = fakes()
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": [1, 2]}})
    assert main([str(m), "-q"]) == 0
    # extending is fine: only the new job runs
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": [1, 2, 3]}})
    assert main([str(m), "-q"]) == 0 and len(fake.submitted) == 3
    # removing values is fine too: their records are kept and the summary says so
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": [5]}})
    assert main([str(m)]) == 0 and len(_index(tmp_path)) == 4
    assert "3 recorded job(s) are no longer in the sweep" in capsys.readouterr().out
    # a changed workflow is refused: its old results would be mixed with new ones
    changed = tmp_path / "invert-changed.json"
    data = json.loads((workflows / "invert.json").read_text())
    data["2"]["class_type"] = "ImageInvert"
    data["2"]["_meta"] = {"title": "inverted twice"}
    changed.write_text(json.dumps(data))
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=changed, sweep={"grid": {"width": [1, 2]}})
    assert main([str(m), "-q"]) == 2
    err = capsys.readouterr().err
    assert "made with an earlier version of that workflow" in err and "4 job(s) of workflow 'w'" in err
    assert main([str(m), "-q", "--force"]) == 0 and len(_index(tmp_path)) == 6


def test_manifest_errors_exit_2_before_submitting(tmp_path, fakes, workflows, capsys):
    fake = fakes()
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json",
                       sweep={"grid": {"widht": [1]}})
    assert main([str(m)]) == 2
    err = capsys.readouterr().err
    assert f"{m}: sweep (workflow 'w'): unknown parameter 'widht'" in err and "known: color, height, prefix, width" in err
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep={"grid": {}})
    m.write_text(m.read_text().replace("timeout: 30", "timeout: soon"))
    assert main([str(m)]) == 2
    assert f"{m}: defaults.timeout: expected number, got str" in capsys.readouterr().err
    assert fake.submitted == []


def test_missing_custom_node_is_named_before_submitting(tmp_path, fakes, workflows, capsys):
    fake = fakes()
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "missing_node.json",
                       sweep={"cases": [{}]})
    assert main([str(m)]) == 2
    assert "does not have these node classes: SomeCustomNodeNobodyInstalled (node 1)" in capsys.readouterr().err
    assert fake.submitted == []


def test_dry_run_submits_nothing(tmp_path, fakes, workflows, capsys):
    fake = fakes()
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep=SWEEP)
    assert main([str(m), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("t: 40 jobs") and "backend f (concurrency 2): ~40 jobs" in out and "grid.width 20 x grid.height 2" in out
    assert fake.submitted == [] and not (tmp_path / "out").exists()


def test_limit_and_only(tmp_path, fakes, workflows, capsys):
    fake = fakes()
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep=SWEEP)
    assert main([str(m), "-q", "--limit", "3"]) == 0 and len(fake.submitted) == 3
    ids = [j["id"] for j in _index(tmp_path)]
    assert main([str(m), "-q", "--only", ids[0], "--retry-failed"]) == 0 and len(fake.submitted) == 3
