"""``status`` and the gallery beside a real run in another process (against the fake ComfyUI), then after that run is killed.

While the run goes, ``status --json`` sees its counts move, a finite ETA and the run holding the folder
(its pid); after a SIGKILL it still reads every job the run recorded (the sqlite rows and the journal's
tail) and says that no run holds the folder. Nothing here sleeps: every wait polls the folder.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import jsonschema

from comfykit_batch.cli import main as cli_main
from comfykit_batch.cli.status import main as status_main
from comfykit_batch.report.index import load_results
from tests.fakes.fake_comfyui import FakeComfyUI
from tests.helpers.manifests import ROOT, write_manifest
from tests.helpers.waiting import wait_for

SCHEMA = json.loads((ROOT / "schemas" / "status.schema.json").read_text())
SWEEP = {"grid": {"width": list(range(1, 101)), "height": [1, 2]}}  # 200 jobs: the run outlives a few reads


def _status(out: Path) -> dict:
    text = io.StringIO()
    assert status_main(["status", str(out), "--json"], stream=text) == 0
    doc = json.loads(text.getvalue())
    jsonschema.validate(doc, SCHEMA)
    return doc


def _recorded_ids(out: Path) -> set[str]:
    """Every job the killed run recorded: its committed sqlite rows and its journal's whole lines."""
    lines = (out / "journal.jsonl").read_text().splitlines() if (out / "journal.jsonl").exists() else []
    ids = {json.loads(x)["id"] for x in lines if x.strip().endswith("}")}
    conn = sqlite3.connect(f"file:{out / 'index.sqlite'}?mode=ro", uri=True)
    try:
        ids |= {row[0] for row in conn.execute("SELECT id FROM jobs")}
    finally:
        conn.close()
    return ids


def test_status_follows_a_live_run_and_tells_the_truth_after_its_kill(tmp_path, workflows):
    fake = FakeComfyUI(work_seconds=0.05).start()
    proc = None
    try:
        m = write_manifest(tmp_path, [{"name": "f", "url": fake.url}], workflow=workflows / "invert.json", sweep=SWEEP)
        out = tmp_path / "out"
        proc = subprocess.Popen([sys.executable, "-m", "comfykit_batch", str(m), "-q"], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: (out / "run.json").exists() and _status(out)["completed"] >= 3)
        first = _status(out)
        wait_for(lambda: _status(out)["completed"] > first["completed"])  # the counts move
        live = _status(out)
        run = live["run"]["runs"][0]
        assert live["run"]["held"] is True and run["holding"] == "running" and run["pid"] == proc.pid
        assert live["total"] == 200 and live["pending"] == 200 - live["completed"] - live["failed"] > 0
        assert live["not_run"] is None and live["rate"]["per_second"] > 0
        assert isinstance(live["eta"], float) and math.isfinite(live["eta"]) and live["eta"] > 0
        assert [b["name"] for b in live["backends"]] == ["f"] and live["backends"][0]["jobs"] >= live["completed"]

        mid = load_results(out).records  # the reports read the live store too: no "no index.json here" mid-run
        assert len(mid) >= live["completed"] and cli_main(["gallery", str(out), "--no-thumbs"]) == 0

        proc.send_signal(signal.SIGKILL)
        proc.wait()
        after = _status(out)
        recorded = _recorded_ids(out)
        assert 3 <= len(recorded) < 200
        assert after["completed"] + after["failed"] == len(recorded), "status missed jobs the run recorded"
        assert after["run"]["held"] is False and after["run"]["runs"][0]["holding"] == "stopped"
        assert after["pending"] is None and after["not_run"] == 200 - len(recorded) and after["eta"] is None
        assert {r["id"] for r in load_results(out).records} == recorded  # the gallery's records: every finished job
        assert cli_main(["gallery", str(out), "--no-thumbs"]) == 0 and (out / "gallery.html").exists()

        shown = subprocess.run([sys.executable, "-m", "comfykit_batch", "status", str(out)], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                               capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert f"no run holds the folder (the last one, pid {proc.pid}, stopped without finishing at " in shown.stdout
        assert f"{200 - len(recorded):,} not run" in shown.stdout
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        fake.stop()
