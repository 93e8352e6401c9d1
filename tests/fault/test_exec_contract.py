"""One contract, three executors: the same cases over HTTP, WebSocket and RunningHub (against the fakes).

Each backend is an adapter that knows how to start its fake, build the
workflow of a scenario and read back what the fake recorded; the cases say
what every executor must do, so a new executor is tested by adding an adapter.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from comfykit_batch import ParameterError, Workflow
from comfykit_batch.errors import BackendError
from comfykit_batch.executors.base import Executor
from comfykit_batch.executors.comfyui_http import HttpExecutor
from comfykit_batch.executors.comfyui_ws import WebSocketExecutor
from comfykit_batch.executors.runninghub import RunningHubExecutor
from comfykit_batch.result import OutputFile
from tests.fakes.fake_comfyui import FakeComfyUI
from tests.fakes.fake_runninghub import GOOD_KEY, FakeRunningHub

DEAD_URL = "http://127.0.0.1:9"

COMFY_NODES: dict[str, Any] = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 0},
          "_meta": {"title": "$width"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "c"},
          "_meta": {"title": "$output.image"}},
    "3": {"class_type": "PreviewAny", "inputs": {"source": "hello"}, "_meta": {"title": "$output.caption, $text.source"}},
}


def wait_for(condition: Any, what: str, limit: float = 10.0) -> None:
    """Poll a fake's state until ``condition()`` holds (no sleeping on hope)."""
    tick = threading.Event()
    for _ in range(int(limit / 0.01)):
        if condition():
            return
        tick.wait(0.01)
    raise AssertionError(f"never happened: {what}")


class ComfyAdapter:
    """ComfyUI over one transport, against FakeComfyUI."""

    def __init__(self, cls: type[HttpExecutor]) -> None:
        self.cls = cls
        self.fake = FakeComfyUI().start()

    def executor(self, url: str | None = None) -> Executor:
        return self.cls(url or self.fake.url)

    def workflow(self, scenario: str) -> Workflow:
        nodes = {k: dict(v) for k, v in COMFY_NODES.items()}
        if scenario == "raise":
            nodes["4"] = {"class_type": "Raise", "inputs": {"message": "boom"}, "_meta": {"title": "Bad"}}
        if scenario == "slow":
            nodes["4"] = {"class_type": "Slow", "inputs": {"seconds": 30.0}}
        if scenario == "missing_output":
            nodes["5"] = {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}, "_meta": {"title": "$output.ghost"}}
        return Workflow(nodes, source=f"{scenario}.json")

    def failing_node(self) -> tuple[str, str]:
        return "4", "Raise"

    def started(self) -> bool:
        return self.fake.queue_state()["queue_running"] != []

    def remote_stopped(self, prompt_id: str) -> bool:
        entry = self.fake.history.get(prompt_id)
        pending = [p[1] for p in self.fake.queue_state()["queue_pending"]]
        interrupted = entry is not None and entry["status"]["status_str"] == "error"
        return ("POST", "/interrupt") in self.fake.requests and prompt_id not in pending and (
            interrupted or entry is None)

    def missing_file(self) -> OutputFile:
        ex = self.executor()
        url = ex.client.view_url("nope.png")  # type: ignore[attr-defined]
        return OutputFile(url=url, filename="nope.png", kind="image", var="image", node_id="2")

    def request_count(self) -> int:
        return len(self.fake.requests)

    def stop(self) -> None:
        self.fake.stop()


class RunningHubAdapter:
    WF_ID = "1904136902449209346"

    def __init__(self) -> None:
        self.fake = FakeRunningHub()
        self.fake.workflows[self.WF_ID] = {}
        self.fake.start()

    def executor(self, url: str | None = None) -> Executor:
        return RunningHubExecutor(url or self.fake.url, GOOD_KEY, poll_interval=0.02, queue_backoff=0.05, retry_count=1)

    def workflow(self, scenario: str) -> Workflow:
        nodes = {
            "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a dog"}, "_meta": {"title": "$text.text"}},
            "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "rh"}, "_meta": {"title": "$output.image"}},
            "12": {"class_type": "PreviewAny", "inputs": {"source": "x"}, "_meta": {"title": "$output.caption"}},
            "13": {"class_type": "EmptyImage", "inputs": {"width": 4}, "_meta": {"title": "$width"}},
        }
        outputs: list[Any] = [
            {"fileUrl": f"{self.fake.url}/files/t/ComfyUI_00001_.png", "fileType": "png", "nodeId": "9",
             "taskCostTime": "1", "consumeCoins": "1"},
            {"text": "hello", "nodeId": "12", "fileType": "txt"},
        ]
        if scenario == "missing_output":
            outputs = outputs[:1]
        self.fake.outputs = outputs
        if scenario == "slow":
            self.fake.run_seconds = 30
        return Workflow({"_source": "runninghub", "_workflow_id": self.WF_ID, **nodes}, source=f"{scenario}.json")

    def failing_node(self) -> tuple[str, str]:
        return "9", "KSampler"

    def started(self) -> bool:
        return bool(self.fake.tasks)

    def remote_stopped(self, prompt_id: str) -> bool:
        cancels = [b["taskId"] for p, b in self.fake.calls if p == "/task/openapi/cancel"]
        return cancels == [prompt_id] and self.fake.tasks[prompt_id]["cancelled"]

    def missing_file(self) -> OutputFile:
        return OutputFile(url=f"{self.fake.url}/nothing-here.png", filename="nothing-here.png", kind="image",
                          var="image", node_id="9")

    def request_count(self) -> int:
        return len(self.fake.calls) + len(self.fake.headers)

    def stop(self) -> None:
        self.fake.stop()


@pytest.fixture(params=["http", "websocket", "runninghub"])
def backend(request: pytest.FixtureRequest) -> Any:
    adapter: Any = {"http": lambda: ComfyAdapter(HttpExecutor), "websocket": lambda: ComfyAdapter(WebSocketExecutor),
                    "runninghub": RunningHubAdapter}[request.param]()
    yield adapter
    adapter.stop()


def test_success_with_files_and_texts(backend: Any, tmp_path: Path) -> None:
    with backend.executor() as ex:
        r = ex.execute(backend.workflow("ok"), {"width": 4}, timeout=20)
        assert r.status == "completed", r.msg
        assert len(r.images_by_var["image"]) == 1 and r.texts_by_var["caption"] == ["hello"]
        saved = ex.download(r.files[0], tmp_path / "out.png")
    assert saved.size > 0 and (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG"


def test_node_error_is_an_execution_failure_naming_the_node(backend: Any) -> None:
    with backend.executor() as ex:
        r = ex.execute(backend.workflow("raise"), {"text": "FAIL"}, timeout=20)
    nid, cls = backend.failing_node()
    assert r.status == "failed" and r.failure.kind == "execution" and not r.failure.transient
    assert (r.failure.node_id, r.failure.node_type) == (nid, cls)
    assert r.msg.startswith(f"node {nid} ({cls}) raised ")


def test_declared_output_that_produced_nothing_fails(backend: Any) -> None:
    with backend.executor() as ex:
        r = ex.execute(backend.workflow("missing_output"), {}, timeout=20)
    assert r.status == "failed" and r.failure.kind == "missing_output"
    assert ("ghost" in r.msg or "caption" in r.msg) and "node" in r.msg


def test_timeout_returns_timeout_and_stops_the_remote_job(backend: Any) -> None:
    with backend.executor() as ex:
        r = ex.execute(backend.workflow("slow"), {}, timeout=1.0)
    assert r.status == "failed" and r.failure.kind == "timeout" and r.failure.transient
    wait_for(lambda: backend.remote_stopped(r.prompt_id), "the remote job was interrupted or cancelled")


def test_cancel_event_stops_the_remote_job(backend: Any) -> None:
    cancel = threading.Event()

    def cancel_once_started() -> None:
        wait_for(backend.started, "the job started on the server")
        cancel.set()

    watcher = threading.Thread(target=cancel_once_started)
    watcher.start()
    with backend.executor() as ex:
        r = ex.execute(backend.workflow("slow"), {}, timeout=30, cancel=cancel)
    watcher.join()
    assert r.status == "failed" and r.failure.kind == "cancelled"
    wait_for(lambda: backend.remote_stopped(r.prompt_id), "the remote job was interrupted or cancelled")


def test_unreachable_server_check_names_the_url(backend: Any) -> None:
    with backend.executor(DEAD_URL) as ex:
        with pytest.raises(BackendError, match="127.0.0.1:9") as err:
            ex.check()
        assert err.value.transient and "refused" in str(err.value)
        r = ex.execute(backend.workflow("ok"), {}, timeout=5)
    assert r.status == "failed" and r.failure.kind == "connection" and r.failure.transient


def test_check_passes_on_a_live_server(backend: Any) -> None:
    with backend.executor() as ex:
        ex.check()


def test_download_of_a_missing_file_is_a_final_backend_error(backend: Any, tmp_path: Path) -> None:
    with backend.executor() as ex, pytest.raises(BackendError, match="404") as err:
        ex.download(backend.missing_file(), tmp_path / "x.png")
    assert not err.value.transient and not list(tmp_path.iterdir())


def test_unknown_parameter_is_refused_before_any_request(backend: Any) -> None:
    wf = backend.workflow("ok")
    with backend.executor() as ex:
        before = backend.request_count()
        with pytest.raises(ParameterError, match="widht"):
            ex.execute(wf, {"widht": 4}, timeout=5)
        assert backend.request_count() == before
