import json

import pytest

from comfykit_batch.batch.store.store import COMPLETED, FAILED, MISSING, NEW, TRANSIENT, ResultStore
from tests.helpers.outputs import state


def rec(i, status="completed", files=()):
    return {"id": f"job{i}", "status": status, "files": list(files)}


def test_journal_survives_without_index_and_ignores_a_cut_line(tmp_path):
    s = ResultStore(tmp_path, "m").open("name: m\n")
    s.record(rec(1))
    s.record(rec(2, "failed"))
    # simulate a kill: no close(), plus a half-written last line
    with open(tmp_path / "journal.jsonl", "a") as fh:
        fh.write('{"id": "job3", "sta')
    again = ResultStore(tmp_path, "m").open()
    assert again.get("job1")["status"] == "completed" and again.get("job2")["status"] == "failed" and again.get("job3") is None
    assert (tmp_path / "manifest.yaml").read_text() == "name: m\n"


def test_flush_writes_index_and_empties_journal(tmp_path):
    s = ResultStore(tmp_path, "m").open()
    s.record(rec(1))
    s.close()
    data = json.loads((tmp_path / "index.json").read_text())
    assert data["manifest"] == "m" and [j["id"] for j in data["jobs"]] == ["job1"]
    assert (tmp_path / "journal.jsonl").read_text() == ""
    assert not list(tmp_path.glob(".index.json.*")), "no temp files left behind"


def test_complete_means_files_still_there(tmp_path):
    s = ResultStore(tmp_path, "m").open()
    f = s.path_for("w", "job1", "image", 0, "x.png")
    f.parent.mkdir(parents=True)
    f.write_bytes(b"12345")
    import hashlib

    s.record(rec(1, files=[{"path": s.relative(f), "size": 5, "sha256": hashlib.sha256(b"12345").hexdigest()}]))
    assert state(s, "job1") == COMPLETED and state(s, "job1", verify=True) == COMPLETED
    f.write_bytes(b"54321")
    assert state(s, "job1") == COMPLETED and state(s, "job1", verify=True) == MISSING
    f.write_bytes(b"1")
    assert state(s, "job1") == MISSING
    f.unlink()
    assert state(s, "job1") == MISSING


@pytest.mark.parametrize("var, name", [("../../etc", "passwd"), ("a/b", "../../x.png"), ("..", "..")])
def test_paths_stay_inside_the_folder(tmp_path, var, name):
    s = ResultStore(tmp_path / "out", "m")
    p = s.path_for("../w", "job1", var, 0, name)
    assert (tmp_path / "out").resolve() in p.parents
    assert p.suffix in (".png", ".bin")


def test_a_failed_job_is_failed_or_transient_by_its_error_and_an_unknown_one_new(tmp_path):
    s = ResultStore(tmp_path, "m").open()
    s.record(rec(1, "failed"))
    s.record(failed(2, True))
    assert [state(s, i) for i in ("job1", "job2", "nope")] == [FAILED, TRANSIENT, NEW]


def test_index_layout_round_trips_and_hand_written_indexes_still_load(tmp_path):
    s = ResultStore(tmp_path, "m").open()
    for i in range(3):
        s.record(rec(i, files=[{"path": f"files/w/job{i}.png", "size": i, "sha256": "x"}]))
    s.close()
    text = (tmp_path / "index.json").read_text()
    assert len(text.splitlines()) == 5, "a header, one line per job, a footer"
    data = json.loads(text)
    assert [j["id"] for j in data["jobs"]] == ["job0", "job1", "job2"]
    again = ResultStore(tmp_path, "m").open()
    assert len(again) == 3 and again.get("job2")["files"][0]["size"] == 2
    # pretty-printed by someone else: still read
    (tmp_path / "index.json").write_text(json.dumps(data, indent=2))
    third = ResultStore(tmp_path, "m").open()
    assert third.ids() == {"job0", "job1", "job2"} and third.get("job1")["status"] == "completed"


def failed(i, transient):
    return {"id": f"job{i}", "status": "failed", "files": [], "error": {"kind": "x", "message": "m", "transient": transient}}


def test_records_live_in_sqlite_and_a_kill_between_commits_loses_nothing(tmp_path):
    s = ResultStore(tmp_path, "m").open()
    for i in range(5):
        s.record(rec(i))  # fewer than a commit batch: only the journal has them
    assert (tmp_path / "index.sqlite").exists()
    again = ResultStore(tmp_path, "m").open()  # the first one never closed: as after a kill
    assert len(again) == 5 and all(again.get(f"job{i}")["status"] == "completed" for i in range(5))
    assert (tmp_path / "journal.jsonl").read_text() == "", "the journal was committed and emptied"
    import sqlite3

    n = sqlite3.connect(tmp_path / "index.sqlite").execute("select count(*) from jobs").fetchone()[0]
    assert n == 5


def test_counts_ids_and_the_states_of_failed_jobs(tmp_path):
    s = ResultStore(tmp_path, "m").open()
    s.record(rec(1))
    s.record(failed(2, True))
    s.record(failed(3, False))
    s.record({"id": "job4", "status": "failed", "files": [], "error": {"kind": "config", "message": "m"}})
    assert s.counts() == {"completed": 1, "failed": 3}
    assert [state(s, f"job{i}") for i in range(1, 6)] == [COMPLETED, TRANSIENT, FAILED, FAILED, NEW]
    assert s.ids() == {"job1", "job2", "job3", "job4"} and s.get("job4")["error"]["kind"] == "config"


def test_a_re_recorded_job_keeps_its_place_and_takes_its_new_outcome(tmp_path):
    s = ResultStore(tmp_path, "m").open()
    for i in range(3):
        s.record(failed(i, True))
    s.flush()
    s.record(rec(1))
    s.close()
    jobs = json.loads((tmp_path / "index.json").read_text())["jobs"]
    assert [(j["id"], j["status"]) for j in jobs] == [("job0", "failed"), ("job1", "completed"), ("job2", "failed")]


def test_an_old_folder_with_index_json_and_journal_is_imported(tmp_path):
    lines = [json.dumps(rec(i)) for i in range(3)]
    (tmp_path / "index.json").write_text('{"manifest": "m", "updated": "x", "jobs": [\n' + ",\n".join(lines) + "\n]}\n")
    (tmp_path / "journal.jsonl").write_text(json.dumps(failed(3, True)) + "\n" + json.dumps(rec(0, "failed")) + "\n")
    s = ResultStore(tmp_path, "m").open()
    assert len(s) == 4 and [s.get(f"job{i}")["status"] for i in (0, 3, 2)] == ["failed", "failed", "completed"]
    s.close()
    again = ResultStore(tmp_path, "m").open()  # imported once: the export is not read back over newer rows
    assert again.counts() == {"completed": 2, "failed": 2}


def test_an_unreadable_old_index_is_named(tmp_path):
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(ValueError, match="index.json: unreadable index"):
        ResultStore(tmp_path, "m").open()


def test_nothing_recorded_still_exports_a_valid_empty_index(tmp_path):
    ResultStore(tmp_path, "m").open().close()
    assert json.loads((tmp_path / "index.json").read_text())["jobs"] == []


class J:
    def __init__(self, i):
        self.id = f"job{i}"


def test_walk_gives_each_jobs_state_in_any_order_and_sees_pending_records(tmp_path):
    s = ResultStore(tmp_path, "m").open()
    f = s.path_for("w", "job1", "image", 0, "x.png")
    f.parent.mkdir(parents=True)
    f.write_bytes(b"12")
    for i in range(0, 40, 2):
        s.record(rec(i) if i % 4 else failed(i, i % 8 == 0))
    s.record(rec(1, files=[{"path": s.relative(f), "size": 2, "sha256": ""}]))
    s.record(rec(3, files=[{"path": "files/w/missing.png", "size": 2, "sha256": ""}]))
    s.flush()
    s.record(rec(5))  # not committed yet
    order = [J(i) for i in [*range(45), *reversed(range(45))]]
    states = [(j.id, state) for j, state in s.walk(order, chunk=7)]

    def expect(i):
        if i in (1, 5) or (i < 40 and i % 4 == 2):
            return "completed"
        if i == 3:
            return "missing"
        if i < 40 and i % 4 == 0:
            return "transient" if i % 8 == 0 else "failed"
        return "new"

    assert states == [(j.id, expect(int(j.id[3:]))) for j in order]
    assert [state(s, j.id) for j in order] == [st for _, st in states], "one job at a time: the same states"


def test_records_streams_every_record(tmp_path):
    s = ResultStore(tmp_path, "m").open()
    for i in range(3):
        s.record(rec(i))
    assert [r["id"] for r in s.records()] == ["job0", "job1", "job2"]
