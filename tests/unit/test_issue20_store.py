"""Issue 20, the store room: typed records whose bytes are unchanged, reports that read through the store's
read-only view (mid-run, after a kill, before a merge), and a room of small pieces."""

from __future__ import annotations

import ast
import fcntl
import json
import threading
from pathlib import Path

import pytest

from comfykit_batch.batch.spec.shard import Shard
from comfykit_batch.batch.spec.sweep import Job
from comfykit_batch.batch.store import index_db as db
from comfykit_batch.batch.store import live_index
from comfykit_batch.batch.store.records import JobRecord, job_record
from comfykit_batch.batch.store.store import COMPLETED, FAILED, NEW, ResultStore
from comfykit_batch.report.index import load_results
from comfykit_batch.result import ExecuteResult, Failure
from tests.helpers.outputs import state

STORE = Path(__file__).resolve().parents[2] / "comfykit_batch" / "batch" / "store"

# What the store wrote for these two jobs before records were typed (byte for byte).
OK_LINE = (
    '{"id":"abc123","seq":7,"workflow":"w","workflow_sha256":"' + "f" * 64 + '","params":{"prompt":"a cat",'
    '"url":"https://host/x.png?…","n":1.5},"repeat":2,"seeds":{"seed":5},"backend":"b0","status":"completed",'
    '"attempts":1,"prompt_id":"p-1","started":1764100000.123,"finished":1764100001.988,"duration":1.2346,'
    '"files":[{"var":"image","kind":"image","path":"files/w/abc123_image.png","size":10,"sha256":"ab",'
    '"source_name":"x.png","node":"9","type":"output"}],"texts":{"caption":["hi"]},"cost":{"coins":3}}'
)
FAILED_LINE = (
    '{"id":"abc123","seq":7,"workflow":"w","workflow_sha256":null,"params":{"prompt":"a cat",'
    '"url":"https://host/x.png?…","n":1.5},"repeat":2,"seeds":{},"backend":null,"status":"failed","attempts":3,'
    '"prompt_id":null,"started":0.0,"finished":0.0,"duration":null,"files":[],"error":{"kind":"execution",'
    '"message":"boom","transient":false,"node_id":"3","node_type":"KSampler","exception_type":"RuntimeError",'
    '"traceback_tail":"' + "A" * 500 + "B" * 1500 + '"}}'
)
JOB = Job("abc123", "w", {"prompt": "a cat", "url": "https://u:p@host/x.png?token=s#f", "n": 1.5}, repeat=2, seq=7)


def _records() -> tuple[JobRecord, JobRecord]:
    ok = ExecuteResult(status="completed", prompt_id="p-1", duration=1.234567, texts_by_var={"caption": ["hi"]},
                       seeds={"seed": 5}, cost={"coins": 3})
    files = [{"var": "image", "kind": "image", "path": "files/w/abc123_image.png", "size": 10, "sha256": "ab",
              "source_name": "x.png", "node": "9", "type": "output"}]
    bad = ExecuteResult.failed(Failure("execution", "boom", node_id="3", node_type="KSampler",
                                       exception_type="RuntimeError", traceback="A" * 1000 + "B" * 1500))
    return (job_record(JOB, "b0", 0, ok, files, 1764100000.12345, 1764100001.98765, "f" * 64),
            job_record(JOB, None, 2, bad, [], 0.0, 0.0, None))


# -- typed records ---------------------------------------------------------------------------------
def test_a_typed_record_writes_the_same_bytes_as_before():
    ok, bad = _records()
    assert isinstance(ok, JobRecord) and ok.id == "abc123" and ok.status == "completed" and bad.error["kind"] == "execution"
    assert db.row_of(ok.to_dict())[4] == OK_LINE and db.row_of(bad.to_dict())[4] == FAILED_LINE
    for rec in (ok, bad):
        assert JobRecord.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec
    with pytest.raises(AttributeError):
        ok.status = "failed"  # type: ignore[misc]


def test_the_store_keeps_a_typed_record_byte_for_byte_in_journal_sqlite_and_index_json(tmp_path):
    ok, _ = _records()
    s = ResultStore(tmp_path, "m").open()
    s.record(ok)
    assert (tmp_path / "journal.jsonl").read_text() == OK_LINE + "\n"
    s.close()
    conn = db.connect_ro(tmp_path / "index.sqlite")
    assert conn is not None and list(db.lines(conn)) == [OK_LINE]
    conn.close()
    assert OK_LINE in (tmp_path / "index.json").read_text().splitlines()


def test_a_folder_written_before_typed_records_still_resumes(tmp_path):
    """index.json and a journal as the previous version wrote them (no sqlite): imported, and the same bytes out."""
    done = OK_LINE.replace("abc123", "done1")  # its file is not there
    (tmp_path / "files" / "w").mkdir(parents=True)
    (tmp_path / "files" / "w" / "abc123_image.png").write_bytes(b"0123456789")
    (tmp_path / "index.json").write_text('{"manifest": "m", "updated": "x", "jobs": [\n' + OK_LINE + "\n]}\n")
    (tmp_path / "journal.jsonl").write_text(FAILED_LINE.replace('"abc123"', '"bad1"') + "\n" + done + "\n")
    s = ResultStore(tmp_path, "m").open()
    assert [state(s, i) for i in ("abc123", "bad1", "done1", "other")] == [COMPLETED, FAILED, "missing", NEW]
    s.close()
    lines = (tmp_path / "index.json").read_text().splitlines()
    assert lines[1:4] == [OK_LINE + ",", FAILED_LINE.replace('"abc123"', '"bad1"') + ",", done]


def test_a_resume_with_nothing_to_run_after_a_kill_writes_index_json_again(tmp_path):
    s = ResultStore(tmp_path, "m").open()
    s.record({"id": "a", "status": "completed", "files": []})
    s.flush()
    s.record({"id": "b", "status": "completed", "files": []})  # then killed: b is in the journal only
    again = ResultStore(tmp_path, "m").open()  # replays the journal; records nothing new
    again.close()
    assert [j["id"] for j in json.loads((tmp_path / "index.json").read_text())["jobs"]] == ["a", "b"]


# -- reports read through the store's read-only view --------------------------------------------------
def _killed_run(root: Path, monkeypatch) -> None:
    """Three jobs committed to sqlite (the journal emptied since), two in the journal only, no index.json: a kill."""
    s = ResultStore(root, "m").open("name: m\n")
    monkeypatch.setattr(live_index, "FLUSH_EVERY", -1.0)  # every record a checkpoint
    for i in range(3):
        s.record({"id": f"job{i}", "seq": i, "status": "completed", "params": {"i": i}, "files": []})
    monkeypatch.setattr(live_index, "FLUSH_EVERY", 1e9)
    monkeypatch.setattr(live_index, "COMMIT_EVERY", 1e9)
    s.record({"id": "job3", "seq": 3, "status": "failed", "params": {"i": 3}, "files": []})
    s.record({"id": "job4", "seq": 4, "status": "completed", "params": {"i": 4}, "files": []})


def test_a_report_after_a_kill_has_every_finished_job_from_sqlite_and_the_journal(tmp_path, monkeypatch):
    _killed_run(tmp_path, monkeypatch)
    assert not (tmp_path / "index.json").exists() and len((tmp_path / "journal.jsonl").read_text().splitlines()) == 2
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name in ("index.sqlite", "journal.jsonl")}
    results = load_results(tmp_path)
    assert [r["id"] for r in results.records] == [f"job{i}" for i in range(5)]
    assert [r["status"] for r in results.records] == ["completed"] * 3 + ["failed", "completed"]
    assert results.name == "m"
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name in ("index.sqlite", "journal.jsonl")}
    assert after == before and not (tmp_path / "index.json").exists(), "the view writes no index or journal"


def test_a_report_never_waits_for_the_runs_lock(tmp_path, monkeypatch):
    _killed_run(tmp_path, monkeypatch)
    done: list[int] = []
    with open(tmp_path / ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a run opening the folder holds it
        reader = threading.Thread(target=lambda: done.append(len(load_results(tmp_path).records)), daemon=True)
        reader.start()
        reader.join(30)
        fcntl.flock(held, fcntl.LOCK_UN)
    assert done == [5]


def test_a_report_of_shards_before_their_merge_has_every_part_completed_winning(tmp_path):
    a = ResultStore(tmp_path, "m", part=Shard(0, 2)).open("name: m\n")
    b = ResultStore(tmp_path, "m", part=Shard(1, 2)).open("name: m\n")
    a.record({"id": "x", "status": "completed", "params": {}, "files": []})
    a.record({"id": "y", "status": "failed", "params": {}, "files": []})
    b.record({"id": "y", "status": "completed", "params": {}, "files": []})
    b.record({"id": "x", "status": "failed", "params": {}, "files": []})  # the other shard's failure loses
    b.record({"id": "z", "status": "completed", "params": {}, "files": []})
    a.close()  # b is killed: its records are in its journal only
    statuses = {r["id"]: r["status"] for r in load_results(tmp_path).records}
    assert statuses == {"x": "completed", "y": "completed", "z": "completed"}


def test_a_report_beside_a_running_store_sees_what_it_recorded(tmp_path):
    s = ResultStore(tmp_path, "m").open()
    s.record({"id": "a", "status": "completed", "files": []})
    s.flush()
    s.record({"id": "b", "status": "completed", "files": []})
    assert [r["id"] for r in load_results(tmp_path).records] == ["a", "b"]
    s.close()


# -- the room's shape ----------------------------------------------------------------------------------
def test_no_class_of_the_store_has_more_than_15_methods_and_no_module_more_than_400_lines():
    for path in STORE.glob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 400, path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
                assert len(methods) <= 15, f"{path.name}: {node.name} has {len(methods)} methods"
