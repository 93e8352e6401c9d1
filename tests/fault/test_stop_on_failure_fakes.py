"""Stop on systematic failure through the command line: a node missing on one of two servers drops that server;
every job failing the same way on both stops the batch in one line, and a re-run after the fix resumes."""

from __future__ import annotations

import json

import pytest

from comfykit_batch.cli import main
from tests.fakes.fake_comfyui import FakeComfyUI
from tests.helpers.manifests import write_manifest

SWEEP = {"grid": {"width": list(range(1, 41))}}  # 40 jobs
DEFAULTS = {"stop_after_failures": 5, "check_nodes": False, "retries": 0}


@pytest.fixture
def fakes():
    servers: list[FakeComfyUI] = []

    def make() -> FakeComfyUI:
        servers.append(FakeComfyUI().start())
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


def _index(tmp_path):
    return json.loads((tmp_path / "out" / "index.json").read_text())["jobs"]


def test_a_node_missing_on_one_server_drops_it_and_the_other_finishes(tmp_path, fakes, workflows, capsys):
    good, bad = fakes(), fakes()
    del bad.classes["ImageInvert"]
    m = write_manifest(tmp_path, [{"name": "good", "url": good.url, "concurrency": 1}, {"name": "bad", "url": bad.url, "concurrency": 1}],
                       workflow=workflows / "invert.json", sweep=SWEEP, defaults=DEFAULTS)
    assert main([str(m), "-q"]) == 1  # the jobs that failed on the bad server count
    out = capsys.readouterr().out
    assert "backend bad:" in out and "dropped: 5 jobs in a row failed the same way here" in out
    jobs = _index(tmp_path)
    failed = [j for j in jobs if j["status"] == "failed"]
    assert len(jobs) == 40 and len(failed) == 5 and all(j["backend"] == "bad" for j in failed)


def test_every_job_failing_the_same_way_stops_the_batch_and_a_rerun_after_the_fix_resumes(tmp_path, fakes, workflows, capsys):
    a, b = fakes(), fakes()
    for s in (a, b):
        del s.classes["ImageInvert"]
    servers = [{"name": "a", "url": a.url, "concurrency": 1}, {"name": "b", "url": b.url, "concurrency": 1}]
    m = write_manifest(tmp_path, servers, workflow=workflows / "invert.json", sweep=SWEEP, defaults=DEFAULTS)
    assert main([str(m), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: stopped: ") and "failed the same way (rejected" in err[0], err
    submitted = len(a.submitted) + len(b.submitted)
    assert len(_index(tmp_path)) < 12 and submitted == 0  # rejected at submission: nothing queued on the servers
    for s in (a, b):
        s.classes["ImageInvert"] = {"image": ["IMAGE"]}
    assert main([str(m), "-q", "--retry-failed"]) == 0
    jobs = _index(tmp_path)
    assert len(jobs) == 40 and all(j["status"] == "completed" for j in jobs)
