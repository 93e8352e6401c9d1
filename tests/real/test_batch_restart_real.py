"""The real ComfyUI killed and restarted mid-batch: every job completes, and none that completed runs again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from comfykit_batch.local_comfyui import LocalComfyUI, free_port
from tests.conftest import TEST_NODES
from tests.helpers.manifests import ROOT, write_manifest
from tests.helpers.outputs import records

pytestmark = pytest.mark.real

JOBS = 16


def _completed(out) -> set[str]:
    return {r["params"]["label"] for r in records(out) if r["status"] == "completed"}


def _history_labels(server: LocalComfyUI) -> list[str]:
    import requests

    history = requests.get(server.url + "/history", timeout=10).json()
    return [p["prompt"][2]["1"]["inputs"]["label"] for p in history.values()]


def _kill(server: LocalComfyUI) -> None:
    assert server.proc is not None
    os.killpg(server.proc.pid, signal.SIGKILL)  # the whole server, as a crash or an OOM kill would
    server.proc.wait(timeout=30)


@pytest.mark.parametrize("executor", ["http", "websocket"])
def test_server_killed_and_restarted_mid_batch(tmp_path, workflows, executor):
    port = free_port()
    base = tmp_path / "server"
    notices: list[str] = []
    first = LocalComfyUI(base, port=port, custom_nodes=[TEST_NODES], on_notice=notices.append).start()
    assert notices[-1] == f"starting the managed local CPU ComfyUI on {first.url}"  # the line the CLI prints
    labels = [f"{executor}-{i}" for i in range(JOBS)]
    m = write_manifest(tmp_path, [{"name": "real", "url": first.url, "executor": executor}],
                       workflow=workflows / "slow.json",
                       sweep={"params": {"steps": 4, "step_seconds": 0.1}, "grid": {"label": labels}},
                       defaults={"retries": 20, "timeout": 120})
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "comfykit_batch", str(m), "-q"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = None
    try:
        deadline = time.monotonic() + 120
        while len(_completed(tmp_path / "out")) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        done_before_kill = _completed(tmp_path / "out")
        assert 3 <= len(done_before_kill) < JOBS, "the server is killed mid-batch"
        _kill(first)
        second = LocalComfyUI(base, port=port, custom_nodes=[TEST_NODES]).start()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        jobs = json.loads((tmp_path / "out" / "index.json").read_text())["jobs"]
        assert sorted(j["params"]["label"] for j in jobs) == sorted(labels)
        assert all(j["status"] == "completed" for j in jobs)
        rerun = set(_history_labels(second)) & done_before_kill
        assert not rerun, f"completed before the kill, yet run again after the restart: {sorted(rerun)}"
        assert len(_history_labels(second)) == len(set(_history_labels(second))), "a job ran twice on the new server"
    finally:
        if proc.poll() is None:
            proc.kill()
        for server in (first, second):
            if server is not None:
                server.stop()
