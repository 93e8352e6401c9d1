"""Resume by position: a whole sweep's completed jobs are known by their place in it, never by a wrong one.

A row's ``(sweep, seq)`` is trusted only under the same sweep signature; everything else goes the
id path, and the states a walk gives must always be the ones the id path gives.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3

import pytest

from comfykit_batch.batch.run.plan import rerun_counts
from comfykit_batch.batch.spec import sweep as sweep_module
from comfykit_batch.batch.spec.shard import Shard
from comfykit_batch.batch.spec.sweep import Sweep
from comfykit_batch.batch.store.store import COMPLETED, MISSING, NEW, ResultStore

FP = {"w": "f" * 64}
GRID = [{"grid": {"a": list(range(10)), "b": list(range(10))}}]  # 100 jobs


@pytest.fixture
def ids_made(monkeypatch):
    """Every job id the sweep computes from here on."""
    made: list[tuple] = []
    real = sweep_module.job_id
    monkeypatch.setattr(sweep_module, "job_id", lambda *a: made.append(a) or real(*a))
    return made


def record(store: ResultStore, job, status: str = "completed", *, content: bytes | None = b"x", seq: bool = True) -> None:
    """Record a job as the runner does (its position as ``seq``), with one output file written when ``content``."""
    files = []
    if content is not None:
        path = store.path_for(job.workflow, job.id, "image", 0, "x.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        files = [{"var": "image", "path": store.relative(path), "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}]
    rec = {"id": job.id, "workflow": job.workflow, "params": dict(job.params), "repeat": job.repeat, "status": status,
           "files": files, "error": {"kind": "x", "message": "m", "transient": False} if status == "failed" else None}
    if seq:
        rec["seq"] = job.seq
    store.record(rec)


def finished(tmp_path, sweep: Sweep, *, every: int = 1, signed: bool = True) -> list:
    """An output folder where every ``every``-th job of ``sweep`` completed (recorded during a run of it)."""
    store = ResultStore(tmp_path, "m").open()
    if signed:
        store.use_sweep(sweep.signature)
    done = [job for job in sweep if job.seq % every == 0]
    for job in done:
        record(store, job)
    store.close()
    return done


def by_id(tmp_path, jobs, *, verify: bool = False) -> list[tuple[str, str]]:
    """The states the id path gives (a plain list of jobs is never walked by position)."""
    store = ResultStore(tmp_path, "m").open()
    try:
        return [(j.id, state) for j, state in store.walk(list(jobs), verify=verify)]
    finally:
        store.close()


def walked(tmp_path, sweep: Sweep, *, run: bool = True, verify: bool = False) -> list[tuple]:
    store = ResultStore(tmp_path, "m").open()
    try:
        if run:
            store.use_sweep(sweep.signature)
        return list(store.walk(sweep, verify=verify))
    finally:
        store.close()


def signatures(tmp_path) -> set:
    return {sig for _, sig in positions(tmp_path).values()}


def positions(tmp_path) -> dict[str, tuple]:
    conn = sqlite3.connect(tmp_path / "index.sqlite")
    try:
        return {i: (seq, sig) for i, seq, sig in conn.execute("SELECT id, seq, sweep FROM jobs")}
    finally:
        conn.close()


def test_a_finished_sweep_resumes_without_making_a_single_job(tmp_path, ids_made):
    sweep = Sweep(GRID, FP)
    finished(tmp_path, sweep)
    ids_made.clear()
    out = walked(tmp_path, sweep)
    assert out == [(None, COMPLETED)] * 100
    assert ids_made == []


def test_only_the_jobs_not_completed_are_made(tmp_path, ids_made):
    sweep = Sweep(GRID, FP)
    done = finished(tmp_path, sweep, every=3)
    ids_made.clear()
    out = walked(tmp_path, sweep)
    assert len(ids_made) == 100 - len(done)
    assert [state for _, state in out] == [COMPLETED if i % 3 == 0 else NEW for i in range(100)]
    assert [j.id for j, _ in out if j is not None] == [j.id for j in sweep if j.seq % 3]


def test_a_deleted_file_makes_its_job_missing_and_verify_checks_the_content(tmp_path):
    sweep = Sweep(GRID, FP)
    finished(tmp_path, sweep)
    jobs = list(sweep)
    (tmp_path / "files" / "w" / f"{jobs[7].id}_image.png").unlink()
    (tmp_path / "files" / "w" / f"{jobs[9].id}_image.png").write_bytes(b"y")  # same size, other content
    out = walked(tmp_path, sweep)
    assert out[7] == (jobs[7], MISSING) and out[9] == (None, COMPLETED)
    assert sum(state == COMPLETED for _, state in out) == 99
    out = walked(tmp_path, sweep, verify=True)
    assert out[7] == (jobs[7], MISSING) and out[9] == (jobs[9], MISSING)
    assert [s for _, s in out] == [s for _, s in by_id(tmp_path, jobs, verify=True)]


def test_a_missing_folder_means_missing_files(tmp_path):
    sweep = Sweep(GRID, FP)
    finished(tmp_path, sweep)
    for f in (tmp_path / "files" / "w").iterdir():
        f.unlink()
    (tmp_path / "files" / "w").rmdir()
    assert [s for _, s in walked(tmp_path, sweep)] == [MISSING] * 100


def test_failed_jobs_come_with_their_job(tmp_path):
    sweep = Sweep(GRID, FP)
    store = ResultStore(tmp_path, "m").open()
    store.use_sweep(sweep.signature)
    jobs = list(sweep)
    record(store, jobs[0], "failed", content=None)
    record(store, jobs[1])
    store.close()
    out = walked(tmp_path, sweep)
    assert out[:3] == [(jobs[0], "failed"), (None, COMPLETED), (jobs[2], NEW)]


CHANGES = [
    [{"grid": {"a": [-1, *range(10)], "b": list(range(10))}}],  # a value added in front: every position moves
    [{"grid": {"a": list(range(1, 10)), "b": list(range(10))}}],  # a value removed
    [{"grid": {"a": list(reversed(range(10))), "b": list(range(10))}}],  # values reordered
    [{"grid": {"b": list(range(10)), "a": list(range(10))}}],  # axes reordered: the same jobs, other places
    [{"grid": {"a": list(range(10)), "b": list(range(10))}, "exclude": [{"a": 2}, {"b": 5}]}],
    [{"grid": {"a": list(range(10)), "b": list(range(10))}, "repeat": 2}],
    [{"grid": {"a": [0]}}, *GRID],  # a block added in front
    [{"grid": {"a": list(range(10)), "b": list(range(12))}, "exclude": [{"a": 1, "b": 11}]}],
]


@pytest.mark.parametrize("blocks", CHANGES)
def test_a_changed_sweep_never_skips_a_wrong_job(tmp_path, blocks):
    old = Sweep(GRID, FP)
    finished(tmp_path, old, every=2)
    new = Sweep(blocks, FP)
    assert new.signature != old.signature
    expected = by_id(tmp_path, new)
    out = walked(tmp_path, new)
    assert [(j.id, s) for j, s in out] == expected  # nothing is known by position: every job is made
    again = walked(tmp_path, new)  # the run noted the positions of the completed jobs it found by id
    assert [(None, COMPLETED) if s == COMPLETED else (j, s) for j, s in zip(new, [s for _, s in expected], strict=True)] == again


def test_a_row_under_another_signature_is_not_trusted(tmp_path, ids_made):
    sweep = Sweep(GRID, FP)
    finished(tmp_path, sweep)
    conn = sqlite3.connect(tmp_path / "index.sqlite")
    conn.execute("UPDATE jobs SET sweep = 'another'")
    conn.commit()
    conn.close()
    ids_made.clear()
    out = walked(tmp_path, sweep, run=False)
    assert len(ids_made) == 100 and [s for _, s in out] == [COMPLETED] * 100 and all(j is not None for j, _ in out)


def test_random_changes_give_the_states_of_the_id_path(tmp_path):
    rng = random.Random(7)
    for k in range(25):
        folder = tmp_path / str(k)
        blocks = [_random_block(rng) for _ in range(rng.randint(1, 2))]
        fps = {"w": "1" * 64, "v": "2" * 64} if rng.random() < 0.3 else FP
        finished(folder, Sweep(blocks, fps), every=rng.randint(1, 3))
        changed = Sweep([_random_block(rng) if rng.random() < 0.5 else b for b in blocks], fps)
        jobs = list(changed)
        assert [(j.id if j else jobs[i].id, s) for i, (j, s) in enumerate(walked(folder, changed))] == by_id(folder, jobs)
        assert [(j.id if j else jobs[i].id, s) for i, (j, s) in enumerate(walked(folder, changed))] == by_id(folder, jobs)


def test_jobs_found_by_reading_ahead_give_the_states_of_the_id_path(tmp_path, monkeypatch):
    from comfykit_batch.batch.store import resume

    monkeypatch.setattr(resume, "READ_AHEAD_ROWS", 0)  # as for a million rows not placed in this sweep
    old = Sweep(GRID, FP)
    finished(tmp_path, old, every=2)
    for blocks in CHANGES[:4]:
        new = Sweep(blocks, FP)
        expected = by_id(tmp_path, new)
        assert [(j.id if j else None, s) for j, s in walked(tmp_path, new, run=False)] == expected


def _random_block(rng: random.Random) -> dict:
    block: dict = {"grid": {k: rng.sample(range(5), rng.randint(1, 4)) for k in rng.sample("abc", rng.randint(1, 2))}}
    if rng.random() < 0.4:
        block["exclude"] = [{k: rng.randint(0, 4)} for k in rng.sample(sorted(block["grid"]), 1)]
    if rng.random() < 0.3:
        block["repeat"] = rng.randint(1, 3)
    if rng.random() < 0.3:
        block["seeds"] = {"param": "seed", "count": rng.randint(1, 3)}
    return block


def test_iter_skipping_is_the_sweep_with_runs_where_settled():
    rng = random.Random(3)
    for _ in range(200):
        sweep = Sweep([_random_block(rng) for _ in range(rng.randint(1, 3))], {"w": "1" * 64, "v": "2" * 64})
        jobs = list(sweep)
        odds = rng.choice([0.1, 0.5, 0.9, 1.0])
        settled = bytearray(rng.random() < odds for _ in range(rng.randint(0, len(jobs) + 2)))
        expected = [None if i < len(settled) and settled[i] else j for i, j in enumerate(jobs)]
        out = []
        for item in sweep.iter_skipping(settled):
            out += [None] * item if isinstance(item, int) else [item]
        assert out == expected
    assert [j.seq for j in jobs] == list(range(len(jobs)))


def test_a_settled_run_is_stepped_over_without_making_parameters(monkeypatch):
    sweep = Sweep([{"grid": {"a": list(range(100)), "b": list(range(100))}, "repeat": 2},
                   {"grid": {"a": [1, 2]}}], FP)
    made = []
    real = sweep_module._digits

    def counting(block):
        digits, params_of = real(block)
        return digits, lambda d: made.append(d) or params_of(d)

    monkeypatch.setattr(sweep_module, "_digits", counting)
    settled = bytearray([1]) * 20_001  # every job of the first block, and the first one of the second
    out = list(sweep.iter_skipping(settled))
    assert out[:2] == [20_000, 1] and [j.seq for j in out[2:]] == [20_001]
    assert len(made) == 1  # the parameters of the one job not settled only


def test_jobs_found_by_id_are_placed_for_the_next_resume(tmp_path, ids_made):
    sweep = Sweep(GRID, FP)
    finished(tmp_path, sweep, signed=False)  # as an index made before positions, or replayed from a journal
    assert signatures(tmp_path) == {None}
    ids_made.clear()
    assert [s for _, s in walked(tmp_path, sweep)] == [COMPLETED] * 100 and len(ids_made) == 100
    assert positions(tmp_path) == {j.id: (j.seq, sweep.signature) for j in sweep}
    ids_made.clear()
    assert walked(tmp_path, sweep) == [(None, COMPLETED)] * 100 and ids_made == []


def test_a_dry_run_writes_no_positions(tmp_path):
    sweep = Sweep(GRID, FP)
    finished(tmp_path, sweep, signed=False)
    assert [s for _, s in walked(tmp_path, sweep, run=False)] == [COMPLETED] * 100
    assert signatures(tmp_path) == {None}


def test_a_replayed_journal_keeps_seq_without_the_signature_and_keeps_a_known_position(tmp_path):
    sweep = Sweep(GRID, FP)
    jobs = list(sweep)
    store = ResultStore(tmp_path, "m").open()
    store.use_sweep(sweep.signature)
    record(store, jobs[0])
    store.flush()  # committed with its position
    record(store, jobs[0])  # recorded again, and a new one: only in the journal when the run is killed
    record(store, jobs[1])
    again = ResultStore(tmp_path, "m").open()  # the first store never closed: as after a kill
    again.close()
    assert positions(tmp_path) == {jobs[0].id: (0, sweep.signature), jobs[1].id: (1, None)}
    assert [s for _, s in walked(tmp_path, sweep)][:3] == [COMPLETED, COMPLETED, NEW]


OLD_SCHEMA = """
CREATE TABLE jobs (n INTEGER PRIMARY KEY, id TEXT NOT NULL, status TEXT NOT NULL, transient INTEGER,
                   files TEXT NOT NULL, line TEXT NOT NULL);
CREATE UNIQUE INDEX jobs_id ON jobs(id);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO meta VALUES ('imported', '1');
"""


def _old_database(path, jobs) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    conn.executemany("INSERT INTO jobs(id, status, transient, files, line) VALUES (?, 'completed', NULL, '', ?)",
                     [(j.id, f'{{"id": "{j.id}", "status": "completed", "files": []}}') for j in jobs])
    conn.commit()
    conn.close()


def test_an_old_database_gets_the_position_columns(tmp_path, ids_made):
    sweep = Sweep(GRID, FP)
    jobs = list(sweep)
    _old_database(tmp_path / "index.sqlite", jobs[:10])
    assert [s for _, s in walked(tmp_path, sweep)] == [COMPLETED] * 10 + [NEW] * 90
    columns = [r[1] for r in sqlite3.connect(tmp_path / "index.sqlite").execute("PRAGMA table_info(jobs)")]
    assert columns[-2:] == ["seq", "sweep"]
    ids_made.clear()
    assert walked(tmp_path, sweep)[:11] == [(None, COMPLETED)] * 10 + [(jobs[10], NEW)] and len(ids_made) == 90


def test_a_merge_keeps_the_positions(tmp_path, ids_made):
    sweep = Sweep(GRID, FP)
    _old_database(tmp_path / "index.sqlite", [])  # the folder's own index even predates positions
    for i in range(2):
        part = ResultStore(tmp_path, "m", part=Shard(i, 2)).open()
        part.use_sweep(sweep.signature)
        for job in sweep:
            if Shard(i, 2).contains(job.id):
                record(part, job)
        part.close()
    ids_made.clear()
    assert walked(tmp_path, sweep) == [(None, COMPLETED)] * 100 and ids_made == []
    assert positions(tmp_path) == {j.id: (j.seq, sweep.signature) for j in sweep}


def test_the_plan_samples_records_when_jobs_are_known_by_position(tmp_path):
    sweep = Sweep(GRID, FP)
    finished(tmp_path, sweep, every=2)
    store = ResultStore(tmp_path, "m").open()
    try:
        r = rerun_counts(sweep, store)
    finally:
        store.close()
    assert (r.completed, r.new, r.not_in_sweep, r.bytes_per_job) == (50, 50, 0, 1.0)
    assert r.record_bytes is not None and r.record_bytes > 100


def test_a_finished_run_resumes_by_position_and_reruns_only_a_job_whose_file_is_gone(tmp_path, fake_comfy, workflows, ids_made):
    from comfykit_batch.cli import main
    from tests.helpers.manifests import write_manifest

    sweep = {"grid": {"width": list(range(1, 11)), "height": [1, 2]}}  # 20 jobs
    m = write_manifest(tmp_path, [{"name": "f", "url": fake_comfy.url}], workflow=workflows / "invert.json", sweep=sweep)
    assert main([str(m), "-q"]) == 0
    assert len(fake_comfy.submitted) == 20
    ids_made.clear()
    assert main([str(m), "-q"]) == 0
    assert len(fake_comfy.submitted) == 20 and ids_made == []  # every job known completed by its position
    gone = sorted((tmp_path / "out" / "files" / "w").iterdir())[3]
    gone.unlink()
    assert main([str(m), "-q"]) == 0
    assert len(fake_comfy.submitted) == 21 and len(ids_made) == 1 and gone.exists()
    assert main([str(m), "-q", "--limit", "5"]) == 0 and main([str(m), "-q", "--shard", "1/2"]) == 0
    assert len(fake_comfy.submitted) == 21


def test_files_in_several_folders_and_several_files_a_job_are_each_checked(tmp_path):
    sweep = Sweep([{"grid": {"a": [1, 2, 3]}}], {"w": "1" * 64, "v": "2" * 64})  # 6 jobs, two workflows' folders
    store = ResultStore(tmp_path, "m").open()
    store.use_sweep(sweep.signature)
    jobs = list(sweep)
    for job in jobs:
        files = []
        for var in ("image", "mask"):
            path = store.path_for(job.workflow, job.id, var, 0, "x.png")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"1")
            files.append({"path": store.relative(path), "size": 1, "sha256": ""})
        store.record({"id": job.id, "seq": job.seq, "status": "completed", "files": files})
    (tmp_path / "top.txt").write_bytes(b"1")
    store.record({"id": jobs[5].id, "seq": 5, "status": "completed", "files": [{"path": "top.txt", "size": 1}]})
    store.close()
    (tmp_path / "files" / "v" / f"{jobs[3].id}_mask.png").unlink()
    out = walked(tmp_path, sweep)
    assert [s for _, s in out] == [COMPLETED, COMPLETED, COMPLETED, MISSING, COMPLETED, COMPLETED]
    assert out[3][0] == jobs[3] and [j for j, _ in out if j is not None] == [jobs[3]]


def test_a_walk_holds_no_read_transaction_so_the_wal_can_be_emptied(tmp_path):
    store = ResultStore(tmp_path, "m").open()
    for i in range(3000):
        store.record({"id": f"job{i}", "status": "completed", "files": []})
    store.flush()

    class J:
        def __init__(self, i):
            self.id = f"job{i}"

    walk = store.walk([J(i) for i in range(3000)], chunk=100)
    assert next(walk)[1] == COMPLETED  # the walk is under way, with records still to read
    for i in range(3000, 3100):
        store.record({"id": f"job{i}", "status": "completed", "files": []})
    store.flush()
    other = sqlite3.connect(tmp_path / "index.sqlite")  # a checkpoint of the whole WAL succeeds beside the walk
    busy = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    other.close()
    assert busy == 0 and (tmp_path / "index.sqlite-wal").stat().st_size == 0
    assert sum(1 for _ in walk) == 2999
    store.close()


def test_a_journal_line_is_written_whole_even_a_little_at_a_time(tmp_path):
    from comfykit_batch.batch.store.journal import write_all

    class Slow:
        def __init__(self):
            self.data = b""

        def write(self, view):
            self.data += bytes(view[:3])
            return min(3, len(view))

    fh = Slow()
    write_all(fh, b'{"id": "x"}\n')
    assert fh.data == b'{"id": "x"}\n'
