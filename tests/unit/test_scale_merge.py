"""Parts written by shards: each shard skips what any part completed; merge combines them once each."""

import json

from comfykit_batch.batch.spec.shard import Shard
from comfykit_batch.batch.store.merge import merge_output
from comfykit_batch.batch.store.store import COMPLETED, NEW, TRANSIENT, ResultStore
from comfykit_batch.cli import main
from tests.helpers.outputs import state


def rec(i, status="completed", transient=None):
    r = {"id": f"job{i}", "status": status, "files": []}
    if status == "failed":
        r["error"] = {"kind": "x", "message": "m", "transient": transient}
    return r


def test_each_part_has_its_own_index_and_journal(tmp_path):
    s = ResultStore(tmp_path, "m", part=Shard(3, 64)).open("name: m\n")
    s.record(rec(1))
    s.close()
    part = tmp_path / "parts" / "0003-of-0064"
    assert (part / "index.sqlite").exists() and (part / "journal.jsonl").exists()
    assert [j["id"] for j in json.loads((part / "index.json").read_text())["jobs"]] == ["job1"]
    assert (tmp_path / "manifest.yaml").read_text() == "name: m\n"


def test_a_shard_skips_jobs_completed_in_any_part_so_the_count_may_change(tmp_path):
    a = ResultStore(tmp_path, "m", part=Shard(0, 2)).open()
    a.record(rec(1))
    a.record(rec(2, "failed", True))
    a.close()
    b = ResultStore(tmp_path, "m", part=Shard(1, 3)).open()  # a later run with another N
    assert [state(b, f"job{i}") for i in (1, 2, 3)] == [COMPLETED, TRANSIENT, NEW]
    assert b.get("job1")["status"] == "completed"
    assert len(b) == 0, "the other part's records are read, not copied"
    b.record(rec(2))
    b.close()
    c = ResultStore(tmp_path, "m", part=Shard(0, 2)).open()
    assert state(c, "job2") == COMPLETED, "a completed record in another part wins over a failed one here"


def test_merge_has_every_job_once_completed_winning_and_exit_codes(tmp_path, capsys):
    a = ResultStore(tmp_path, "m", part=Shard(0, 2)).open("name: m\n")
    b = ResultStore(tmp_path, "m", part=Shard(1, 2)).open("name: m\n")
    a.record(rec(1))
    a.record(rec(2, "failed", True))
    b.record(rec(3))
    b.record(rec(2))  # retried on the other shard and completed
    b.record(rec(4, "failed", False))
    # neither closes: as if both were cancelled; merge replays their journals
    result = merge_output(tmp_path)
    jobs = json.loads((tmp_path / "index.json").read_text())["jobs"]
    assert json.loads((tmp_path / "index.json").read_text())["manifest"] == "m"
    assert sorted(j["id"] for j in jobs) == ["job1", "job2", "job3", "job4"]
    assert {j["id"]: j["status"] for j in jobs}["job2"] == "completed"
    assert result.counts == {"completed": 3, "failed": 1} and result.parts == 2
    assert main(["merge", str(tmp_path), "-q"]) == 1
    c = ResultStore(tmp_path, "m", part=Shard(1, 2)).open()
    c.record(rec(4))
    c.close()
    assert main(["merge", str(tmp_path)]) == 0
    assert "merged 2 part(s): 4 completed" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "index.json").read_text())["jobs"]) == 4


def test_an_unsharded_run_sees_what_the_shards_did(tmp_path):
    a = ResultStore(tmp_path, "m", part=Shard(0, 2)).open()
    a.record(rec(1))
    a.close()
    s = ResultStore(tmp_path, "m").open()
    assert state(s, "job1") == COMPLETED and s.counts() == {"completed": 1}
    s.record(rec(2))
    s.close()
    assert [j["id"] for j in json.loads((tmp_path / "index.json").read_text())["jobs"]] == ["job1", "job2"]


def test_merge_of_a_missing_folder_is_a_usage_error(tmp_path, capsys):
    assert main(["merge", str(tmp_path / "nope")]) == 2
    assert "no such output folder" in capsys.readouterr().err


def _open_part(root, i, n, go, errors):
    go.wait()  # every shard opens at the same moment, as an array's tasks do
    try:
        s = ResultStore(root, "m", part=Shard(i, n)).open("name: m\n")
        s.record(rec(100 + i))
        s.close()
    except Exception as exc:  # reported to the test, which names it
        errors.put(f"shard {i}: {type(exc).__name__}: {exc}")


def test_shards_starting_together_on_a_fresh_folder_all_open(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for attempt in range(5):
        root = tmp_path / f"out{attempt}"
        go, errors = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_open_part, args=(root, i, 8, go, errors)) for i in range(8)]
        for p in procs:
            p.start()
        go.set()
        for p in procs:
            p.join(60)
        assert errors.empty(), errors.get()
        assert merge_output(root).counts == {"completed": 8}
