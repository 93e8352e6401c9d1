"""Issue 19: a value listed twice (or two blocks making the same job) at concurrency 4, against the fake
ComfyUI: each id runs once, the batch completes, and the summary says what was folded."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from comfykit_batch.cli import main
from tests.fakes.fake_comfyui import FakeComfyUI
from tests.helpers.manifests import write_manifest

NOTE = "folded duplicates (each distinct combination runs once): "


@pytest.fixture
def fake():
    server = FakeComfyUI(work_seconds=0.05).start()
    yield server
    server.stop()


def _widths(fake: FakeComfyUI) -> Counter:
    return Counter(p["prompt"]["1"]["inputs"]["width"] for p in fake.submitted)


def _index(tmp_path) -> list[dict]:
    return json.loads((tmp_path / "out" / "index.json").read_text())["jobs"]


def test_a_value_file_with_a_line_twice_runs_each_id_once_at_concurrency_4(tmp_path, fake, workflows, capsys):
    (tmp_path / "widths.txt").write_text("8\n16\n16\n24\n32\n8\n")
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url, "concurrency": 4}], workflow=workflows / "invert.json",
                       sweep={"grid": {"width": {"from": "widths.txt"}, "height": [4]}})
    assert main([str(m), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert plan.startswith("t: 4 jobs;") and f"  {NOTE}sweep.grid.width: 2 repeated values\n" in plan
    assert main([str(m), "-q"]) == 0
    out = capsys.readouterr().out
    assert "4 completed, 0 failed, 0 completed earlier of 4" in out and f"  {NOTE}sweep.grid.width: 2 repeated values" in out
    assert _widths(fake) == {8: 1, 16: 1, 24: 1, 32: 1}
    jobs = _index(tmp_path)
    assert len(jobs) == len({j["id"] for j in jobs}) == 4 and all(j["status"] == "completed" for j in jobs)
    assert main([str(m), "-q"]) == 0 and len(fake.submitted) == 4, "a re-run finds every job done"


def test_two_blocks_making_the_same_jobs_run_each_once(tmp_path, fake, workflows, capsys):
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url, "concurrency": 4}], workflow=workflows / "invert.json",
                       sweep=[{"grid": {"width": [8, 16, 24]}}, {"grid": {"width": [16, 24, 32]}}])
    assert main([str(m), "-q"]) == 0
    out = capsys.readouterr().out
    assert "4 completed, 0 failed, 0 completed earlier of 4" in out
    assert f"  {NOTE}2 jobs with the parameters of an earlier job" in out
    assert _widths(fake) == {8: 1, 16: 1, 24: 1, 32: 1}
    assert main([str(m), "-q"]) == 0 and len(fake.submitted) == 4
    assert "0 completed, 0 failed, 4 completed earlier of 4" in capsys.readouterr().out
