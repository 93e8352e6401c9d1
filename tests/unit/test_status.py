"""``comfykit-batch status``: a folder's counts, failures by reason, rate and ETA, backends and models, who holds it.

The folders are written through ``ResultStore`` (as a run writes them) and ``run.json`` through the
run-state functions the session calls; nothing here runs a batch or sleeps.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from comfykit_batch.batch.run.eta import eta, format_duration
from comfykit_batch.batch.spec.shard import Shard
from comfykit_batch.batch.store.records import JobRecord
from comfykit_batch.batch.store.run_state import (
    RUN_STATE,
    RunState,
    end_run_state,
    holding,
    pid_alive,
    read_run_state,
    write_run_state,
)
from comfykit_batch.batch.store.status import FolderStatus, Rate, RunView, failure_reason, folder_status
from comfykit_batch.batch.store.store import ResultStore
from comfykit_batch.cli import main as cli_main
from comfykit_batch.cli.status import eta_of, line, main, screen, watch
from comfykit_batch.result import Failure

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "status.schema.json").read_text())
NOW = 1_764_100_000.0
HOST = socket.gethostname()
KSAMPLER = {"kind": "execution", "message": "CUDA out of memory (job 1)", "transient": False, "node_id": "3",
            "node_type": "KSampler", "exception_type": "RuntimeError"}
TIMEOUT = {"kind": "timeout", "message": "no result in 600 s", "transient": True}


def rec(i: int, *, backend: str | None = "gpu1", finished: float = NOW - 10, duration: float | None = 4.0,
        error: dict | None = None, models: list[str] | None = None) -> JobRecord:
    return JobRecord(id=f"job{i:03}", seq=i, workflow="w", workflow_sha256=None, params={"i": i}, repeat=0, seeds={},
                     backend=backend, status="failed" if error else "completed", attempts=1, prompt_id=None,
                     started=finished - (duration or 0), finished=finished, duration=duration, files=[],
                     models=models, error=error)


def _folder(tmp_path: Path, records: list[JobRecord], *, close: bool = True) -> Path:
    root = tmp_path / "out"
    store = ResultStore(root, "portraits").open("name: portraits\n")
    for r in records:
        store.record(r)
    if close:
        store.close()
    return root


def _busy_folder(tmp_path: Path, *, close: bool = True) -> Path:
    """Twelve jobs on two backends: 3 failed the same way on gpu2, 1 timed out on gpu1; models on gpu1 only."""
    records = [rec(i, finished=NOW - 200 + 10 * i, models=["sdxl.safetensors"]) for i in range(6)]
    records += [rec(10 + i, backend="gpu2", finished=NOW - 100 + 10 * i, error={**KSAMPLER, "message": f"oom {i}"})
                for i in range(3)]
    records += [rec(20, finished=NOW - 40, error=TIMEOUT, models=["sdxl.safetensors", "lora.safetensors"])]
    records += [rec(30 + i, backend="gpu2", finished=NOW - 30 + i) for i in range(2)]
    return _folder(tmp_path, records, close=close)


def _state(root: Path, **fields) -> None:
    base = {"pid": 4242, "host": HOST, "started": NOW - 1000, "total": 20, "name": "portraits", "ended": None, "exit": None}
    (root / RUN_STATE).write_text(json.dumps({**base, **fields}))


def _json(output: Path | str) -> dict:
    out = io.StringIO()
    assert main(["status", str(output), "--json"], stream=out) == 0
    doc = json.loads(out.getvalue())
    jsonschema.validate(doc, SCHEMA)
    return doc


# -- what the records say --------------------------------------------------------------------------
def test_counts_failures_by_reason_backends_and_models_mid_run(tmp_path):
    root = _busy_folder(tmp_path, close=False)  # the store still open: the newest records are in the journal only
    _state(root)
    st = folder_status(root, now=NOW, alive=lambda pid: pid == 4242)
    assert (st.completed, st.failed, st.total, st.held, st.left) == (8, 4, 20, True, 8)
    assert st.failures == [("execution: node 3 (KSampler) raised RuntimeError", 3), ("timeout: no result in 600 s", 1)]
    assert [(b.name, b.jobs, b.failed, b.models) for b in st.backends] == [
        ("gpu1", 7, 1, ["sdxl.safetensors", "lora.safetensors"]), ("gpu2", 5, 3, None)]
    assert [f.id for f in st.last_failures] == ["job020", "job012", "job011", "job010"]
    assert st.last_failures[0].reason == "timeout: no result in 600 s" and st.last_failures[0].backend == "gpu1"


def test_the_reason_is_the_one_the_runs_summary_groups_by():
    failure = Failure("execution", "boom", node_id="3", node_type="KSampler", exception_type="RuntimeError")
    assert failure_reason(failure.to_dict()) == failure.reason
    assert failure_reason(Failure("connection", "refused").to_dict()) == "connection: refused"
    assert failure_reason(None) == "unknown: no error recorded"
    assert failure_reason({"kind": "something-new", "message": "x"}) == "something-new: x"  # a kind from a newer version


def test_the_rate_counts_the_last_five_minutes_never_before_the_run_started_and_gives_the_eta(tmp_path):
    root = _folder(tmp_path, [rec(i, finished=NOW - 600 + 10 * i) for i in range(1, 61)])  # one every 10 s up to now
    _state(root, started=NOW - 1000, total=100)
    st = folder_status(root, now=NOW, alive=lambda pid: True)
    assert (st.rate.jobs, st.rate.window, st.rate.per_second) == (30, 300.0, 0.1)
    assert eta_of(st) == 400.0 and st.left == 40
    _state(root, started=NOW - 100, total=100)  # a run started 100 s ago: its own jobs only, over its own time
    st = folder_status(root, now=NOW, alive=lambda pid: True)
    assert (st.rate.jobs, st.rate.window) == (10, 100.0)


def test_the_busy_share_counts_each_second_once_whatever_is_in_flight(tmp_path):
    """Two prompts in flight at once on one backend: 100 s of one window, not 200."""
    records = [rec(i, finished=NOW - 100 + 10 * i, duration=20.0) for i in range(11)]  # [NOW-120, NOW] covered twice
    root = _folder(tmp_path, records)
    _state(root, started=NOW - 200)
    st = folder_status(root, now=NOW, alive=lambda pid: True)
    assert st.backends[0].busy == 0.6  # 120 s busy of the 200 s since the run started


def test_a_record_without_models_or_backend_shows_a_dash(tmp_path):
    root = _folder(tmp_path, [rec(1, models=["a.ckpt"]), rec(2, finished=NOW - 5), rec(3, backend=None, error=TIMEOUT)])
    st = folder_status(root, now=NOW)
    assert [(b.name, b.models) for b in st.backends] == [("-", None), ("gpu1", None)]  # gpu1's last record names none
    text = "\n".join(screen(st))
    assert "  gpu1   " in text and text.splitlines()[-1].endswith("-  timeout: no result in 600 s")


# -- who holds the folder ------------------------------------------------------------------------
def test_the_run_state_file_is_written_at_start_and_completed_at_the_end(tmp_path):
    write_run_state(tmp_path, name="portraits", total=40, started=NOW)
    data = json.loads((tmp_path / RUN_STATE).read_text())
    assert data == {"pid": os.getpid(), "host": HOST, "started": NOW, "total": 40, "name": "portraits", "ended": None,
                    "exit": None}
    assert holding(read_run_state(tmp_path)) == "running"  # this very process
    end_run_state(tmp_path, 1)
    data = json.loads((tmp_path / RUN_STATE).read_text())
    assert data["exit"] == 1 and data["ended"] >= NOW and data["pid"] == os.getpid()
    assert holding(read_run_state(tmp_path)) == "ended" and os.listdir(tmp_path) == [RUN_STATE]


def test_a_run_state_that_cannot_be_written_never_stops_the_run(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    write_run_state(blocker / "sub", name="n", total=1, started=NOW)  # its folder is a file
    end_run_state(blocker / "sub", 0)  # nothing written: nothing to end
    assert "could not write the run state" in caplog.text
    (tmp_path / RUN_STATE).write_text("{not json")
    assert read_run_state(tmp_path) is None


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(("fields", "held", "says"), [
    ({"pid": os.getpid()}, True, "held by pid {pid} on this host since "),
    ({"pid": "dead"}, False, "no run holds the folder (the last one, pid {pid}, stopped without finishing at "),
    ({"pid": os.getpid(), "ended": NOW - 5, "exit": 0}, False, "no run holds the folder (the last one ended at "),
    ({"host": "gpu-node-7"}, True, "held by gpu-node-7 (pid {pid}) since "),
])
def test_alive_dead_ended_and_another_hosts_run(tmp_path, fields, held, says):
    root = _busy_folder(tmp_path)
    fields = {**fields, "pid": _dead_pid()} if fields.get("pid") == "dead" else fields
    _state(root, **fields)
    doc = _json(root)
    assert doc["run"]["held"] is held and (doc["pending"] is not None) is held and (doc["not_run"] is None) is held
    assert held or doc["eta"] is None  # nothing is coming; while held, the ETA is tested with a clock of its own
    text = io.StringIO()
    assert main(["status", str(root)], stream=text) == 0
    pid = fields.get("pid", 4242)
    assert says.format(pid=pid) in text.getvalue()
    if fields.get("host"):
        assert "(not checkable from here)" in text.getvalue()


def test_a_killed_run_is_stopped_at_its_last_record(tmp_path):
    root = _busy_folder(tmp_path)
    _state(root, pid=_dead_pid())
    st = folder_status(root, now=NOW)
    assert st.runs[0].holding == "stopped" and st.runs[0].stopped_at == NOW - 29
    assert st.rate.until == NOW - 29 and eta_of(st) is None and st.left == 8


def test_without_a_run_state_it_says_unknown(tmp_path):
    root = _busy_folder(tmp_path)
    doc = _json(root)
    assert doc["run"] == {"held": None, "since": None, "runs": []}
    assert (doc["total"], doc["pending"], doc["not_run"], doc["eta"], doc["completed"]) == (None, None, None, None, 8)
    st = folder_status(root, now=NOW)
    assert screen(st)[1].startswith("run state unknown") and "run state unknown" in line(st)


def test_a_sharded_folder_adds_up_its_parts_and_their_runs(tmp_path):
    root = tmp_path / "out"
    for index in range(2):
        store = ResultStore(root, "portraits", part=Shard(index, 2)).open("name: portraits\n")
        for i in range(3):
            store.record(rec(10 * index + i, backend=f"gpu{index}"))
        write_run_state(store.home, name="portraits", total=5, started=NOW - 100)
        if index == 0:
            end_run_state(store.home, 0)
        store.close()
    st = folder_status(root, now=NOW)
    assert (st.completed, st.total, st.left, st.held) == (6, 10, 4, True)
    assert [(r.state.part, r.holding) for r in st.runs] == [("0000-of-0002", "ended"), ("0001-of-0002", "running")]
    assert [b.name for b in st.backends] == ["gpu0", "gpu1"]
    assert [s.split("] ")[0] for s in screen(st)[1:3]] == ["[0000-of-0002", "[0001-of-0002"]
    _json(root)


def test_a_remote_folder_is_read_through_the_mirror_with_its_run_state(tmp_path):
    import fsspec

    url = f"memory://{tmp_path.name}/run1"  # fsspec's in-memory file system: a remote folder without a network
    try:
        store = ResultStore(url, "portraits", local=tmp_path / "node").open("name: portraits\n")
        store.record(rec(1, models=["flux.safetensors"]))
        write_run_state(store.home, name="portraits", total=3, started=NOW - 100, folder=store)
        store.close()  # the index goes out at the flush
        doc = _json(url)
        assert doc["folder"] == url and doc["completed"] == 1 and doc["run"]["held"] is True and doc["pending"] == 2
        assert doc["backends"][0]["models"] == ["flux.safetensors"]
        assert not (tmp_path / "node" / "status").exists()
    finally:
        fsspec.filesystem("memory").rm(f"/{tmp_path.name}", recursive=True)


# -- the command -------------------------------------------------------------------------------------
def test_the_json_document_follows_the_schema_in_every_field(tmp_path):
    root = _busy_folder(tmp_path)
    _state(root, pid=os.getpid(), total=20)
    doc = _json(root)
    assert doc["name"] == "portraits" and doc["folder"] == str(root)
    assert doc["failures"][0] == {"reason": "execution: node 3 (KSampler) raised RuntimeError", "jobs": 3}
    assert set(doc["backends"][0]) == {"name", "jobs", "failed", "busy", "models"} and len(doc["last_failures"]) == 4
    assert doc["run"]["runs"][0]["holding"] == "running" and doc["run"]["since"] == NOW - 1000


def test_the_text_screen_shows_every_part(tmp_path):
    root = _busy_folder(tmp_path)
    _state(root, pid=os.getpid(), total=20, started=NOW - 300)
    lines = screen(folder_status(root, now=NOW))
    assert lines[0] == f"{root}  (portraits)"
    assert lines[1].startswith(f"held by pid {os.getpid()} on this host since ") and lines[1].endswith("(05:00 ago)")
    assert lines[2] == "jobs:     20 expected: 8 completed, 4 failed, 8 pending"
    assert lines[3].startswith("rate:     0.04 jobs/s (12 finished in the last 05:00); ETA ")
    assert lines[4:7] == ["failures by reason:", "        3  execution: node 3 (KSampler) raised RuntimeError",
                          "        1  timeout: no result in 600 s"]
    assert lines[7].split() == ["backend", "jobs", "failed", "busy", "last", "models"]
    assert lines[8].split()[:4] == ["gpu1", "7", "1", "9%"] and lines[8].endswith("sdxl.safetensors, lora.safetensors")
    assert lines[9].split() == ["gpu2", "5", "3", "6%", "-"]  # 17 s: its last two overlap
    assert lines[10] == "last 4 failure(s):" and "job020  gpu1  timeout: no result in 600 s" in lines[11]


def test_not_an_output_folder_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli_main(["status", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nowhere'}: no such output folder\n"
    assert cli_main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no index.json here; give the output folder of a batch" in err
    assert cli_main(["status", str(tmp_path), "--bogus"]) == 2


def test_watch_refreshes_until_the_run_ends_then_prints_the_final_state(tmp_path):
    """Each wait is a step of the run: a record, then its end. No sleeping: the wait is the test's."""
    root = _folder(tmp_path, [rec(1)])
    write_run_state(root, name="portraits", total=2, started=NOW - 50)
    waits: list[float] = []

    def step(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:
            store = ResultStore(root, "portraits").open()
            store.record(rec(2))
            store.close()
        else:
            end_run_state(root, 0)

    out = io.StringIO()
    assert main(["status", str(root), "--watch"], stream=out, wait=step) == 0
    lines = out.getvalue().splitlines()
    assert waits == [10.0, 10.0]  # not a terminal: a line every 10 s
    assert "completed 1 failed 0 | pending 1 / 2 |" in lines[0] and "completed 2 failed 0 | pending 0 / 2 |" in lines[1]
    assert lines[2] == str(root) + "  (portraits)" and "the last one ended at" in lines[3] and "exit 0" in lines[3]


def test_watch_on_a_terminal_clears_the_screen_every_2_s_and_ctrl_c_exits_0(tmp_path):
    root = _busy_folder(tmp_path)
    _state(root, pid=os.getpid())

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    waits: list[float] = []

    def step(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            raise KeyboardInterrupt

    out = Tty()
    assert main(["status", str(root), "--watch"], stream=out, wait=step) == 0
    assert waits == [2.0, 2.0] and out.getvalue().count("\x1b[H\x1b[2J") == 2
    json_out = io.StringIO()
    waits.clear()
    assert main(["status", str(root), "--watch", "--json"], stream=json_out, wait=step) == 0
    for doc in json_out.getvalue().splitlines():
        jsonschema.validate(json.loads(doc), SCHEMA)


def test_watch_returns_the_first_status_no_run_holds():
    seen: list[bool | None] = []
    states = iter([None, True, False])

    def read() -> FolderStatus:
        return _held(FolderStatus("f", "n", NOW, 0, 0, None, [], [], [], Rate(0.0, 0.0, 0, None), []), next(states))

    final = watch(read, lambda st: seen.append(st.held), lambda s: None, 1.0)
    assert seen == [None, True] and final.held is False


def _held(st: FolderStatus, held: bool | None) -> FolderStatus:
    if held is None:
        return st
    return replace(st, runs=[RunView(RunState(1, HOST, NOW, 1, "n"), "running" if held else "ended")])


# -- the ETA rule ----------------------------------------------------------------------------------
def test_the_eta_rule_and_how_it_is_written():
    assert eta(40, 0.1) == 400.0 and eta(0, 0.0) == 0.0 and eta(-3, 1.0) == 0.0 and eta(5, 0.0) is None
    assert [format_duration(s) for s in (None, 0, 59.9, 61, 3600, 27 * 3600 + 5)] == [
        "--:--", "00:00", "00:59", "01:01", "1:00:00", "27:00:05"]


def test_pid_alive_knows_this_process_and_a_gone_one():
    assert pid_alive(os.getpid()) and not pid_alive(_dead_pid())


def test_ending_leaves_another_runs_state_alone(tmp_path):
    """This run's start was never written: the earlier run's file keeps its own end."""
    (tmp_path / RUN_STATE).write_text(json.dumps({"pid": _dead_pid(), "host": HOST, "started": NOW, "total": 3,
                                                  "name": "n", "ended": NOW + 5, "exit": 0}))
    end_run_state(tmp_path, 1)
    assert read_run_state(tmp_path).exit == 0
