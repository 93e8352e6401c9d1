"""A folder of images through a LoadImage workflow, from the command line, against the fake ComfyUI: every file is
one job; an edited file runs again, a moved folder runs nothing, a file gone at run time fails its job alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from comfykit_batch.batch.run import session
from comfykit_batch.batch.spec import inputs
from comfykit_batch.cli import main
from tests.helpers.manifests import write_manifest
from tests.helpers.png import encode

COLOURS = [(200, 10, 10), (10, 200, 10), (10, 10, 200), (200, 200, 10), (10, 200, 200), (200, 10, 200)]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Digests persist in the user's cache folder (a test's own); the session's sweep knows the upload parameter
    (a no-op once ``session.prepare`` passes ``uploads=`` and ``base=`` itself: its own arguments win)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    inputs._SHARED.clear()


def _photos(folder: Path) -> None:
    folder.mkdir(parents=True)
    for i, rgb in enumerate(COLOURS):
        (folder / f"p{i}.png").write_bytes(encode(2, 2, rgb))


def _manifest(tmp_path: Path, fake, pattern: str) -> Path:
    return write_manifest(tmp_path, [{"name": "fake", "url": fake.url, "concurrency": 2}], workflow=Path(__file__).parents[1]
                          / "workflows" / "upload_invert.json", sweep={"grid": {"image": {"from": pattern}}},
                          defaults={"retries": 0})


def _jobs(tmp_path: Path) -> list[dict]:
    return json.loads((tmp_path / "out" / "index.json").read_text())["jobs"]


def test_a_folder_runs_once_per_file_and_reruns_follow_content(tmp_path, fake_comfy, capsys):
    _photos(tmp_path / "photos")
    m = _manifest(tmp_path, fake_comfy, "photos/")
    assert main([str(m), "--dry-run"]) == 0
    assert "  input set sweep.grid.image: photos/ (6 files: photos/p0.png, photos/p1.png, photos/p2.png, ...)" in capsys.readouterr().out
    assert main([str(m), "-q"]) == 0
    jobs = _jobs(tmp_path)
    assert len(jobs) == 6 and {j["status"] for j in jobs} == {"completed"} and len(fake_comfy.submitted) == 6
    assert sorted(j["inputs"][0]["path"] for j in jobs) == [f"photos/p{i}.png" for i in range(6)]
    assert all(j["inputs"][0]["size"] == len(encode(2, 2, COLOURS[0])) for j in jobs)

    (tmp_path / "photos" / "p3.png").write_bytes(encode(3, 3, (1, 2, 3)))  # edited: one new job
    assert main([str(m), "-q"]) == 0
    assert len(fake_comfy.submitted) == 7 and len(_jobs(tmp_path)) == 7

    shutil.move(tmp_path / "photos", tmp_path / "moved" / "pics")  # same contents, new paths: nothing to do
    m = _manifest(tmp_path, fake_comfy, "moved/pics/*.png")
    assert main([str(m), "-q"]) == 0
    assert len(fake_comfy.submitted) == 7


def test_a_file_gone_at_run_time_fails_its_job_alone_naming_the_path(tmp_path, fake_comfy, monkeypatch):
    _photos(tmp_path / "photos")
    m = _manifest(tmp_path, fake_comfy, "photos/*.png")
    assert main([str(m), "--dry-run", "-q"]) == 0
    gone = tmp_path / "photos" / "p2.png"
    checked = session.check_sweep_values

    def check_then_lose_a_file(manifest, workflows, executors):  # gone once the backends' checks passed
        checked(manifest, workflows, executors)
        if executors:
            gone.unlink()

    monkeypatch.setattr(session, "check_sweep_values", check_then_lose_a_file)
    assert main([str(m), "-q"]) == 1
    failed = [j for j in _jobs(tmp_path) if j["status"] != "completed"]
    assert len(_jobs(tmp_path)) == 6 and len(failed) == 1 and len(fake_comfy.submitted) == 5
    assert str(gone) in failed[0]["error"]["message"]
    assert failed[0]["error"]["kind"] == "upload"


def test_a_file_gone_at_run_time_is_an_upload_failure(tmp_path, fake_comfy, monkeypatch):
    _photos(tmp_path / "photos")
    m = _manifest(tmp_path, fake_comfy, "photos/")
    checked = session.check_sweep_values

    def check_then_lose_a_file(manifest, workflows, executors):
        checked(manifest, workflows, executors)
        if executors:
            (tmp_path / "photos" / "p0.png").unlink()

    monkeypatch.setattr(session, "check_sweep_values", check_then_lose_a_file)
    assert main([str(m), "-q"]) == 1
    assert [j["error"]["kind"] for j in _jobs(tmp_path) if j["status"] != "completed"] == ["upload"]
