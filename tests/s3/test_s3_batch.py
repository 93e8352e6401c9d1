"""A batch whose output is an s3:// URL (moto on loopback), through the CLI: killed, resumed, merged."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import s3fs

from comfykit_batch.batch.spec.location import local_home
from comfykit_batch.cli import main
from tests.fakes.fake_comfyui import FakeComfyUI
from tests.helpers.manifests import ROOT, write_manifest
from tests.helpers.waiting import wait_for
from tests.s3.conftest import SECRET

SWEEP = {"grid": {"width": list(range(1, 21)), "height": [1, 2]}}  # 40 jobs


@pytest.fixture
def fake():
    server = FakeComfyUI(work_seconds=0.05).start()
    yield server
    server.stop()


def _lines(path):
    return path.read_text().splitlines() if path.exists() else []





def test_batch_to_s3_killed_resumed_and_merged(tmp_path, bucket, fake, workflows, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever goes wrong, nothing lands in the checkout
    url = f"{bucket}/runs/t"
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep=SWEEP)
    journal = local_home(url) / "journal.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "comfykit_batch", str(m), "-q", "--output", url],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: len(_lines(journal)) >= 6 or proc.poll() is not None, 30.0)
    assert not (tmp_path / "s3:").exists(), "the s3:// output was taken for a local folder"
    proc.kill()
    proc.wait()
    done_before = {json.loads(x)["id"] for x in _lines(journal) if x.strip().endswith("}")}
    assert 6 <= len(done_before) < 40
    fs = s3fs.S3FileSystem()
    for line in _lines(journal):
        if line.strip().endswith("}"):
            for f in json.loads(line)["files"]:
                assert fs.size(f"{url[5:]}/{f['path']}") == f["size"], "a recorded file is already in the bucket"
    submitted = len(fake.submitted)

    assert main([str(m), "-q", "--output", url]) == 0
    assert len(fake.submitted) - submitted == 40 - len(done_before), "a finished job was redone"
    jobs = json.loads(fs.cat(f"{url[5:]}/index.json"))["jobs"]
    assert len(jobs) == 40 and all(j["status"] == "completed" for j in jobs)
    assert all(fs.size(f"{url[5:]}/{f['path']}") == f["size"] for j in jobs for f in j["files"])
    assert not list((local_home(url) / "files").rglob("*.png")), "no output stays on the local disk"

    assert main(["merge", url]) == 0
    assert "40 completed" in capsys.readouterr().out
    for key in fs.find(url[5:]):
        assert SECRET.encode() not in fs.cat(key), key


def test_status_of_a_folder_in_the_bucket_reads_what_the_run_put_there(tmp_path, bucket, fake, workflows, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"{bucket}/runs/st"
    m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep=SWEEP)
    assert main([str(m), "-q", "--output", url]) == 0
    capsys.readouterr()
    assert main(["status", url, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["completed"] == 40 and doc["failed"] == 0 and doc["run"]["held"] is False
    assert SECRET not in json.dumps(doc)
