"""Issue 19 on S3 (moto on loopback): a damaged part in the bucket is rebuilt from the bucket's copy of its
index.json and put back; two parts that disagree are judged by the file in the bucket; every message
names the folder by its URL as given (``s3://bucket/...``, never ``s3:/bucket``)."""

from __future__ import annotations

import json

import s3fs

from comfykit_batch.batch.spec.shard import Shard
from comfykit_batch.batch.store.store import ResultStore
from comfykit_batch.cli import main
from tests.s3.test_s3_store import _finish


def test_a_damaged_part_in_the_bucket_is_rebuilt_and_put_back(bucket, tmp_path, capsys, monkeypatch):
    url = f"{bucket}/runs/m"
    for i in range(2):
        s = ResultStore(url, "m", Shard(i, 2), local=tmp_path / f"node{i}").open("name: m\n")
        _finish(s, i)
        s.close()
    fs = s3fs.S3FileSystem()
    fs.pipe(f"{url[5:]}/parts/0001-of-0002/index.sqlite", b"garbage" * 1000)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "merge-node"))
    assert main(["merge", url]) == 0
    captured = capsys.readouterr()
    assert f"warning: {url}/parts/0001-of-0002/index.sqlite: file is not a database; rebuilt" in captured.err
    assert f"index: {url}/index.json" in captured.out and "s3:/b" not in captured.out + captured.err
    assert sorted(j["id"] for j in json.loads(fs.cat(f"{url[5:]}/index.json"))["jobs"]) == ["job0", "job1"]
    assert fs.exists(f"{url[5:]}/parts/0001-of-0002/index.sqlite.damaged")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "another-node"))
    assert main(["merge", url]) == 0 and "warning" not in capsys.readouterr().err, "the bucket holds the rebuilt part"


def test_a_part_with_nothing_to_rebuild_from_is_named_by_its_url(bucket, tmp_path, capsys):
    url = f"{bucket}/m"
    s = ResultStore(url, "m", Shard(0, 2), local=tmp_path / "node").open()
    _finish(s, 1)
    s.close()
    fs = s3fs.S3FileSystem()
    fs.pipe(f"{url[5:]}/parts/0000-of-0002/index.sqlite", b"garbage" * 1000)
    fs.rm(f"{url[5:]}/parts/0000-of-0002/index.json")
    assert main(["merge", url]) == 3
    err = capsys.readouterr().err
    assert f"error: {url}/parts/0000-of-0002/index.sqlite: file is not a database" in err and "s3:/b" not in err


def test_two_parts_that_disagree_are_judged_by_the_file_in_the_bucket(bucket, tmp_path, capsys):
    url = f"{bucket}/m"
    a = ResultStore(url, "m", Shard(0, 2), local=tmp_path / "a").open()
    b = ResultStore(url, "m", Shard(1, 3), local=tmp_path / "b").open()
    b_rec = _finish(b, 7, b"layout 3 bytes")
    a_rec = _finish(a, 7, b"layout 2 bytes")  # written last: the bucket holds layout 2's bytes
    b.close()
    a.close()
    assert main(["merge", url]) == 3
    line = next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("conflict:"))
    assert a_rec["files"][0]["sha256"] in line and b_rec["files"][0]["sha256"] in line
    assert "kept the record of parts/0000-of-0002: it matches the file on disk" in line
    jobs = json.loads(s3fs.S3FileSystem().cat(f"{url[5:]}/index.json"))["jobs"]
    assert [j["files"][0]["sha256"] for j in jobs] == [a_rec["files"][0]["sha256"]]


def test_a_part_whose_index_is_gone_from_the_bucket_is_rebuilt_from_its_index_json(bucket, tmp_path):
    url = f"{bucket}/m"
    s = ResultStore(url, "m", Shard(1, 2), local=tmp_path / "node").open()
    _finish(s, 4)
    s.close()
    fs = s3fs.S3FileSystem()
    fs.rm(f"{url[5:]}/parts/0001-of-0002/index.sqlite")
    assert main(["merge", url, "-q"]) == 0
    assert [j["id"] for j in json.loads(fs.cat(f"{url[5:]}/index.json"))["jobs"]] == ["job4"]
