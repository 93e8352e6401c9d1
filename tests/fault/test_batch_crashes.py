"""Crashes of the runner itself: SIGKILL at many seeded points, and a full disk. Nothing finished is lost or redone."""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comfykit_batch.cli import main
from comfykit_batch.files import sha256_file
from tests.fakes.fake_comfyui import FakeComfyUI
from tests.helpers.manifests import ROOT, write_manifest
from tests.helpers.outputs import records

KILL_POINTS = int(os.environ.get("COMFYKIT_KILL_POINTS", "50"))
KILL_SEED = int(os.environ.get("COMFYKIT_KILL_SEED", "20261125"))


@pytest.fixture
def fake():
    server = FakeComfyUI(work_seconds=0.01).start()
    yield server
    server.stop()


def _spawn(manifest: Path, *extra: str, fsize: int | None = None) -> subprocess.Popen[str]:
    def limit() -> None:
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, like a full disk
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "comfykit_batch", str(manifest), "-q", *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit)


def _finished_ids(out: Path) -> dict[str, str]:
    """Job id -> status, from everything a resuming run reads: the sqlite index, the journal, index.json."""
    return {r["id"]: r["status"] for r in records(out)}


def _size_of(prompt: dict) -> tuple[int, int]:
    inputs = prompt["prompt"]["1"]["inputs"]
    return inputs["width"], inputs["height"]


def _wait_journal(out: Path, proc: subprocess.Popen[str], at_least: int) -> None:
    """Until the journal holds ``at_least`` more lines, or the run ended (polls the folder's state)."""
    journal = out / "journal.jsonl"
    start = len(journal.read_text().splitlines()) if journal.exists() else 0
    while proc.poll() is None:
        now = len(journal.read_text().splitlines()) if journal.exists() else 0
        start = min(start, now)  # the run folds the old journal into its index when it opens
        if now - start >= at_least:
            return
        time.sleep(0.005)


def _check_index_files(out: Path) -> list[dict]:
    jobs = json.loads((out / "index.json").read_text())["jobs"]
    for j in jobs:
        for f in j["files"]:
            assert sha256_file(out / f["path"]) == f["sha256"], f"{f['path']} does not match its recorded hash"
    return jobs


def test_sigkill_at_many_seeded_points_loses_and_redoes_nothing(tmp_path, fake, workflows):
    rng = random.Random(KILL_SEED)
    sweep = {"grid": {"width": list(range(1, 81)), "height": [1, 2, 3]}}  # 240 jobs: more than the kills can finish
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url, "executor": rng.choice(["http", "websocket"])}],
                       workflow=workflows / "invert.json", sweep=sweep)
    out = tmp_path / "out"
    kills = 0
    for point in range(KILL_POINTS):
        before = _finished_ids(out)
        submitted_before = len(fake.submitted)
        proc = _spawn(m)
        _wait_journal(out, proc, rng.choice([0, 0, 1, 1, 2, 3]))
        time.sleep(rng.random() * 0.01)  # a seeded nudge, so kills also land between journal lines
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        completed_before = {i for i, s in before.items() if s == "completed"}
        resubmitted = [_size_of(p) for p in fake.submitted[submitted_before:]]
        done_sizes = {(r["params"]["width"], r["params"]["height"]) for r in records(out) if r["id"] in completed_before}
        assert not [s for s in resubmitted if s in done_sizes], f"kill point {point} (seed {KILL_SEED}): a completed job ran again"
    assert kills == KILL_POINTS, f"only {kills} of {KILL_POINTS} runs were killed mid-batch"
    assert main([str(m), "-q"]) == 0
    jobs = _check_index_files(out)
    assert len(jobs) == 240 and all(j["status"] == "completed" for j in jobs)
    assert len({_size_of(p) for p in fake.submitted}) == 240


def _stopped_in_one_line(proc: subprocess.Popen[str], out: Path) -> None:
    """The run stopped with exit 1 and one error line, and left no partial file behind."""
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    _no_partial_files(out)


def _no_partial_files(out: Path) -> None:
    partial = [p for p in out.rglob("*") if p.name.endswith(".part")]
    assert not partial, f"partial files left under the output folder: {partial}"


def test_disk_full_while_writing_an_output_stops_in_one_line_and_resumes(tmp_path, fake, workflows):
    sweep = {"grid": {"width": list(range(1, 11)), "height": [1, 2]}}  # 20 jobs
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep=sweep)
    out = tmp_path / "out"
    assert main([str(m), "-q", "--limit", "5"]) == 0
    fake.output_size = 256 * 1024  # every output is now larger than the file-size limit below
    proc = _spawn(m, fsize=128 * 1024)
    _stopped_in_one_line(proc, out)
    assert len(_check_index_files(out)) == 5, "the index still parses and holds the jobs finished before"
    assert main([str(m), "-q"]) == 0  # space freed: the re-run finishes the batch
    jobs = _check_index_files(out)
    assert len(jobs) == 20 and all(j["status"] == "completed" for j in jobs)


def test_disk_full_while_writing_the_index_keeps_every_finished_job(tmp_path, fake, workflows):
    sweep = {"grid": {"width": list(range(1, 41)), "height": [1, 2]}}  # 80 jobs: records outgrow the limit
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep=sweep)
    out = tmp_path / "out"
    proc = _spawn(m, fsize=24 * 1024)
    _stopped_in_one_line(proc, out)
    if (out / "index.json").exists():
        json.loads((out / "index.json").read_text())  # never half-written
    kept = {i for i, s in _finished_ids(out).items() if s == "completed"}
    submitted = len(fake.submitted)
    assert main([str(m), "-q"]) == 0
    jobs = _check_index_files(out)
    assert len(jobs) == 80 and all(j["status"] == "completed" for j in jobs)
    assert len(fake.submitted) - submitted <= 80 - len(kept) + 4, "jobs recorded before the disk filled ran again"
