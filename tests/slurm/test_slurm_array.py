"""The shipped SLURM scripts on a real SLURM: an array of shards, one task cancelled mid-run and
resubmitted, the merge job after each: the merged index equals a single-process run's, every job once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comfykit_batch.cli import main
from tests.fakes.fake_comfyui import FakeComfyUI
from tests.helpers.manifests import ROOT, write_manifest

DEPLOY = ROOT / "deploy" / "slurm"
SHARDS = 4
SWEEP = {"grid": {"width": list(range(1, 25)), "height": [1, 2]}}  # 48 jobs, about 12 a shard


@pytest.fixture
def fake():
    server = FakeComfyUI(work_seconds=0.15).start()
    yield server
    server.stop()


def _env(slurm: dict[str, str]) -> dict[str, str]:
    return dict(slurm, PYTHONPATH=str(ROOT), COMFYKIT_PYTHON=sys.executable)


def _sbatch(env: dict[str, str], cwd: Path, *args: str) -> str:
    out = subprocess.run(["sbatch", "--parsable", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(";")[0]


def _wait_until(pred, what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _queued(env: dict[str, str], *job_ids: str) -> bool:
    """Any of these jobs still pending or running (a squeue that fails, e.g. a busy controller, says yes)."""
    out = subprocess.run(["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i %T"], env=env, capture_output=True,
                         text=True, timeout=30)
    return out.returncode != 0 or bool(out.stdout.strip())


def _logs(folder: Path) -> str:
    """The tasks' own output, for a failure message."""
    return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(folder.glob("comfykit*.out")))


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _state(env: dict[str, str], job: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", job], env=env, capture_output=True, text=True, timeout=30).stdout
    return next((w.split("=", 1)[1] for w in out.split() if w.startswith("JobState=")), "?")


def _jobs(index: Path) -> list[dict]:
    jobs = json.loads(index.read_text())["jobs"]
    assert len(jobs) == len({j["id"] for j in jobs}), "a job appears twice"
    return jobs


def _summary(index: Path) -> dict[str, tuple]:
    return {j["id"]: (j["status"], sorted((f["path"], f["size"], f["sha256"]) for f in j["files"])) for j in _jobs(index)}


def test_array_cancel_resubmit_merge_equals_one_process(tmp_path, slurm, fake, workflows):
    env = _env(slurm)
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    m = write_manifest(sharded, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep=SWEEP)
    out = sharded / "out"
    sub = subprocess.run([str(DEPLOY / "submit.sh"), str(SHARDS), str(m), str(out)], env=env, cwd=sharded,
                         capture_output=True, text=True, timeout=60)
    assert sub.returncode == 0, sub.stderr
    array, merge = sub.stdout.split()

    victim = out / "parts" / f"0001-of-{SHARDS:04d}" / "journal.jsonl"
    _wait_until(lambda: _lines(victim) >= 2, "task 1 to finish two jobs")
    subprocess.run(["scancel", f"{array}_1"], env=env, check=True, timeout=30)
    _wait_until(lambda: not _queued(env, array, merge), "the array and its merge to end")
    assert _state(env, f"{array}_1") == "CANCELLED", _logs(sharded)
    assert _state(env, merge) in ("COMPLETED", "FAILED"), _logs(sharded)  # merge ran after the cancel (afterany)
    first = _jobs(out / "index.json")
    done = {j["id"] for j in first if j["status"] == "completed"}
    assert len(done) < 48, "task 1 was cancelled before its last job"
    # A job running when the task was cancelled may be recorded as interrupted: transient, so it runs again.
    assert all(j["error"]["transient"] for j in first if j["status"] != "completed"), _logs(sharded)
    submitted = len(fake.submitted)

    again = _sbatch(dict(env, COMFYKIT_SHARDS=str(SHARDS)), sharded, "--array=1", str(DEPLOY / "comfykit-array.sbatch"), str(m))
    merge2 = _sbatch(env, sharded, f"--dependency=afterany:{again}", str(DEPLOY / "comfykit-merge.sbatch"), str(out))
    _wait_until(lambda: not _queued(env, again, merge2), "the resubmitted task and its merge to end")
    assert _state(env, merge2) == "COMPLETED", (sharded / f"comfykit-merge-{merge2}.out").read_text()
    merged = _summary(out / "index.json")
    assert len(fake.submitted) - submitted == 48 - len(done), ("only the jobs the cancelled task left run again",
                                                                _logs(sharded))

    single = tmp_path / "single"
    single.mkdir()
    m1 = write_manifest(single, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep=SWEEP)
    assert main([str(m1), "-q"]) == 0
    assert merged == _summary(single / "out" / "index.json")
    assert len(merged) == 48 and all(status == "completed" for status, _ in merged.values())
    parts = sorted(p.name for p in (out / "parts").iterdir())
    assert parts == [f"{i:04d}-of-{SHARDS:04d}" for i in range(SHARDS)]
    print(f"SLURM: array {array} of {SHARDS} tasks; task {array}_1 cancelled with {len(done)} of 48 jobs done; "
          f"resubmitted as {again}; merged {len(merged)} jobs, all completed, each once")
