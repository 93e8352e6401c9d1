"""The result store on S3 (moto on loopback): files go out as they finish, the index at each flush;
a kill, a resume on the same node and on another, shards and their merge, and no credential written."""

from __future__ import annotations

import hashlib
import json

import s3fs

from comfykit_batch.batch.spec.shard import Shard
from comfykit_batch.batch.store.merge import merge_output
from comfykit_batch.batch.store.store import COMPLETED, FAILED, MISSING, ResultStore
from comfykit_batch.cli import main
from tests.helpers.outputs import state
from tests.s3.conftest import SECRET


def _finish(store: ResultStore, i: int, data: bytes = b"png-bytes") -> dict:
    """What the runner does for one job: download to path_for, commit the file, record the job."""
    path = store.path_for("w", f"job{i}", "image", 0, "ComfyUI_0001_.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    rel = store.commit_file(path)
    assert not path.exists(), "the local copy goes once the file is in place"
    rec = {"id": f"job{i}", "status": "completed",
           "files": [{"var": "image", "path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}]}
    store.record(rec)
    return rec


def _remote_index(url: str) -> dict[str, str]:
    jobs = json.loads(s3fs.S3FileSystem().cat(url.removeprefix("s3://") + "/index.json"))["jobs"]
    assert len(jobs) == len({j["id"] for j in jobs})
    return {j["id"]: j["status"] for j in jobs}


def test_files_go_out_as_they_finish_and_a_kill_then_resume_loses_nothing(bucket, tmp_path):
    url = f"{bucket}/runs/m"
    s = ResultStore(url, "m", local=tmp_path / "node1").open("name: m\n")
    for i in range(3):
        _finish(s, i)
    fs = s3fs.S3FileSystem()
    assert fs.cat(f"{url[5:]}/files/w/job0_image.png") == b"png-bytes"
    # killed: never closed. The same node resumes from its local journal.
    again = ResultStore(url, "m", local=tmp_path / "node1").open()
    assert [state(again, f"job{i}") for i in range(3)] == [COMPLETED] * 3 and state(again, "job1", verify=True) == COMPLETED
    again.close()
    fs.rm(f"{url[5:]}/files/w/job2_image.png")
    later = ResultStore(url, "m", local=tmp_path / "node1").open()  # a new run lists the bucket again
    assert state(later, "job2") == MISSING, "a file gone from the bucket means the job runs again"
    _finish(later, 2)
    later.close()
    assert _remote_index(url) == {"job0": "completed", "job1": "completed", "job2": "completed"}
    assert fs.exists(f"{url[5:]}/index.sqlite") and fs.cat(f"{url[5:]}/manifest.yaml") == b"name: m\n"


def test_another_node_resumes_from_what_was_flushed(bucket, tmp_path):
    url = f"{bucket}/m"
    s = ResultStore(url, "m", local=tmp_path / "node1").open()
    _finish(s, 1)
    s.close()
    other = ResultStore(url, "m", local=tmp_path / "node2").open()
    assert state(other, "job1") == COMPLETED and other.get("job1")["files"][0]["path"] == "files/w/job1_image.png"


def test_shards_on_two_nodes_merge_on_a_third(bucket, tmp_path, capsys):
    url = f"{bucket}/m"
    a = ResultStore(url, "m", Shard(0, 2), local=tmp_path / "a").open("name: m\n")
    b = ResultStore(url, "m", Shard(1, 2), local=tmp_path / "b").open("name: m\n")
    _finish(a, 1)
    _finish(b, 2)
    b.record({"id": "job3", "status": "failed", "files": [], "error": {"kind": "x", "message": "m", "transient": False}})
    a.close()
    b.close()
    later = ResultStore(url, "m", Shard(0, 3), local=tmp_path / "c").open()  # N changed: sees both parts
    assert [state(later, f"job{i}") for i in (1, 2, 3)] == [COMPLETED, COMPLETED, FAILED]
    later.close()
    result = merge_output(url, local=tmp_path / "merge")
    assert result.counts == {"completed": 2, "failed": 1} and result.parts >= 2
    assert _remote_index(url) == {"job1": "completed", "job2": "completed", "job3": "failed"}
    assert main(["merge", url]) == 1
    assert "merged" in capsys.readouterr().out


def test_no_credential_is_written_anywhere(bucket, tmp_path):
    url = f"{bucket}/m"
    s = ResultStore(url, "m", local=tmp_path / "node").open("name: m\n")
    _finish(s, 1)
    s.close()
    fs = s3fs.S3FileSystem()
    for key in fs.find(url[5:]):
        assert SECRET.encode() not in fs.cat(key), key
    for path in (tmp_path / "node").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
