"""What a real ComfyUI cannot be made to do on demand: drops, 5xx, races, restarts."""

from __future__ import annotations

import threading
import time

import pytest

from comfykit_batch import Workflow
from comfykit_batch.executors.comfyui import HttpExecutor
from comfykit_batch.executors.comfyui_ws import WebSocketExecutor

BOTH = pytest.mark.parametrize("cls", [HttpExecutor, WebSocketExecutor], ids=["http", "websocket"])


@pytest.fixture
def wf(workflows):
    return Workflow.from_file(workflows / "invert.json")


@BOTH
def test_history_lagging_behind_success_event(cls, fake_comfy, wf):
    fake_comfy.history_lag = 0.3
    with cls(fake_comfy.url) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
    assert r.status == "completed" and r.images_by_var["inverted"]


def test_websocket_drop_mid_job_falls_back_to_history(fake_comfy, wf):
    fake_comfy.work_seconds = 0.3
    fake_comfy.drop_ws_on_start = 1
    with WebSocketExecutor(fake_comfy.url) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
        assert r.status == "completed" and r.images
        # and the socket comes back for the next job: progress events flow again
        events = []
        r2 = ex.execute(wf, {"width": 5}, timeout=10, on_progress=events.append)
    assert r2.status == "completed" and events


def test_websocket_without_any_events_still_completes(fake_comfy, wf):
    """A proxy that swallows events: completion is still found through /history."""
    fake_comfy.send_events = False
    with WebSocketExecutor(fake_comfy.url) as ex:
        import comfykit_batch.executors.comfyui_ws as mod

        old, mod.SAFETY_POLL = mod.SAFETY_POLL, 0.2
        try:
            r = ex.execute(wf, {"width": 4}, timeout=10)
        finally:
            mod.SAFETY_POLL = old
    assert r.status == "completed"


@BOTH
def test_5xx_on_submit_is_a_transient_failure(cls, fake_comfy, wf):
    fake_comfy.submit_failures.append(503)
    with cls(fake_comfy.url) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=10)
        assert r.status == "failed" and r.failure.kind == "connection" and r.failure.transient
        assert "HTTP 503" in r.msg
        assert ex.execute(wf, {"width": 4}, timeout=10).status == "completed"


@BOTH
def test_server_down_is_a_transient_failure(cls, wf):
    with cls("http://127.0.0.1:9") as ex:
        r = ex.execute(wf, {"width": 4}, timeout=5)
    assert r.status == "failed" and r.failure.transient and r.failure.kind == "connection"


@BOTH
def test_server_restart_loses_the_prompt(cls, fake_comfy, wf, monkeypatch):
    import comfykit_batch.executors.comfyui as mod

    monkeypatch.setattr(mod, "LOST_CHECK_INTERVAL", 0.2)
    fake_comfy.work_seconds = 5
    threading.Timer(0.3, fake_comfy.restart).start()
    t0 = time.monotonic()
    with cls(fake_comfy.url) as ex:
        r = ex.execute(wf, {"width": 4}, timeout=30)
    assert r.status == "failed" and r.failure.transient and r.failure.kind in ("server", "connection")
    assert time.monotonic() - t0 < 10


@BOTH
def test_timeout_removes_queued_prompt(cls, fake_comfy, wf):
    fake_comfy.work_seconds = 2
    with cls(fake_comfy.url) as ex:
        blocker = threading.Thread(target=ex.execute, args=(wf, {"width": 1}), kwargs={"timeout": 10})
        blocker.start()
        time.sleep(0.2)
        r = ex.execute(wf, {"width": 2}, timeout=0.5)
        assert r.status == "failed" and r.failure.kind == "timeout"
        assert all(p[1] != r.prompt_id for p in fake_comfy.queue_state()["queue_pending"])
        blocker.join()
