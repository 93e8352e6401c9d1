import asyncio
import inspect
import threading

import pytest

from comfykit_batch import ComfyKit, ConfigError
from comfykit_batch.defaults import DEFAULTS
from comfykit_batch.executors.base import Executor
from comfykit_batch.result import ExecuteResult

ENV = ("COMFYUI_URL", "COMFYUI_BASE_URL", "COMFYUI_EXECUTOR_TYPE", "COMFYUI_TIMEOUT", "RUNNINGHUB_TIMEOUT",
       "RUNNINGHUB_RETRY_COUNT", "RUNNINGHUB_API_KEY")
WF = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8}, "_meta": {"title": "$width"}}}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


class Recorder(Executor):
    """Records what the kit asks for; runs nothing."""

    def __init__(self, name):
        self.name, self.calls = name, []

    def execute(self, workflow, params=None, *, timeout=None, on_progress=None, cancel=None):
        self.calls.append({"workflow": workflow, "params": params, "timeout": timeout, "on_progress": on_progress,
                           "cancel": cancel})
        return ExecuteResult(status="completed", backend=self.name)

    def download(self, file, dest):
        raise NotImplementedError


def _kit_with_recorders(**kw):
    kit = ComfyKit(runninghub_api_key="rk-test", **kw)
    kit._comfyui, kit._runninghub = Recorder("comfyui"), Recorder("runninghub")
    return kit


def test_environment_fallbacks(monkeypatch):
    monkeypatch.setenv("COMFYUI_BASE_URL", "http://gpu.test:9000/")
    monkeypatch.setenv("COMFYUI_EXECUTOR_TYPE", "websocket")
    monkeypatch.setenv("COMFYUI_API_KEY", "sk-env")
    monkeypatch.setenv("RUNNINGHUB_TIMEOUT", "42")
    kit = ComfyKit()
    assert kit.comfyui_url == "http://gpu.test:9000"
    assert kit.executor_type == "websocket"
    assert kit.api_key == "sk-env"
    assert kit.runninghub_timeout == 42 and kit.runninghub_retry_count == 3
    assert kit.runninghub_url == "https://www.runninghub.ai"
    assert "sk-env" not in repr(kit)


def test_arguments_beat_environment(monkeypatch):
    monkeypatch.setenv("COMFYUI_BASE_URL", "http://gpu.test:9000")
    kit = ComfyKit("http://other.test:1", "http")
    assert kit.comfyui_url == "http://other.test:1" and kit.executor_type == "http"


def test_defaults():
    kit = ComfyKit()
    assert kit.comfyui_url == "http://127.0.0.1:8188" and kit.executor_type == "http" and kit.runninghub_timeout == 300
    assert (kit.comfyui_url, kit.executor_type, kit.timeout, kit.runninghub_timeout, kit.runninghub_retry_count) == (
        DEFAULTS.comfyui_url, DEFAULTS.library_executor, DEFAULTS.library_timeout, DEFAULTS.runninghub_timeout,
        DEFAULTS.runninghub_retry_count)


def test_comfyui_url_env_comes_before_the_seeds_base_url(monkeypatch):
    monkeypatch.setenv("COMFYUI_BASE_URL", "http://seed.test:1")
    monkeypatch.setenv("COMFYUI_URL", "http://batch.test:2/")
    assert ComfyKit().comfyui_url == "http://batch.test:2"
    assert ComfyKit("http://arg.test:3").comfyui_url == "http://arg.test:3"


@pytest.mark.parametrize("spelling", ["ws", "WebSocket"])
def test_executor_type_spellings_are_the_packages(monkeypatch, spelling):
    assert ComfyKit(executor_type=spelling).executor_type == "websocket"
    monkeypatch.setenv("COMFYUI_EXECUTOR_TYPE", spelling)
    assert ComfyKit().executor_type == "websocket"
    monkeypatch.setenv("COMFYUI_EXECUTOR_TYPE", "grpc")
    with pytest.raises(ConfigError, match="COMFYUI_EXECUTOR_TYPE must be"):
        ComfyKit()


def test_runninghub_timeout_bounds_every_runninghub_call_unless_one_is_given():
    kit = _kit_with_recorders(runninghub_timeout=2, timeout=50)
    kit.execute_sync("1877265245566922753", {"prompt": "x"})
    kit.execute_sync("webapp:42", {"52.prompt": "x"})
    kit.execute_sync("1877265245566922753", timeout=9)
    assert [c["timeout"] for c in kit._runninghub.calls] == [2, 2, 9]
    kit.execute_sync(WF, {"width": 8})
    kit.execute_json_sync(WF, timeout=4)
    assert [c["timeout"] for c in kit._comfyui.calls] == [50, 4]


def test_runninghub_timeout_reaches_the_executor_it_builds():
    kit = ComfyKit(runninghub_api_key="rk-test", runninghub_timeout=2, runninghub_retry_count=0)
    ex = kit.runninghub
    assert type(ex).__name__ == "RunningHubExecutor" and ex.timeout == 2 and ex.retry_count == 0
    kit.close_sync()


def test_async_api_names_every_keyword_and_passes_them_through():
    for fn in (ComfyKit.execute, ComfyKit.execute_json, ComfyKit.execute_json_sync):
        sig = inspect.signature(fn)
        assert {"timeout", "on_progress", "cancel"} <= set(sig.parameters)
        assert not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()), fn.__name__
    kit = _kit_with_recorders()
    progress, stop = (lambda event: None), threading.Event()
    asyncio.run(kit.execute(WF, {"width": 8}, timeout=3, on_progress=progress, cancel=stop))
    asyncio.run(kit.execute_json(WF, timeout=5))
    first, second = kit._comfyui.calls
    assert (first["timeout"], first["on_progress"], first["cancel"]) == (3, progress, stop)
    assert second["timeout"] == 5 and isinstance(second["cancel"], threading.Event)
    kit.close_sync()


def test_list_params_still_reads_the_markers():
    rows = ComfyKit().list_params(WF)
    assert [(r["name"], r["nodes"], r["type"]) for r in rows] == [("width", ["1.width"], "number")]


def test_bad_executor_type():
    with pytest.raises(ConfigError, match="executor_type"):
        ComfyKit(executor_type="grpc")


def test_library_does_not_configure_logging():
    import subprocess
    import sys

    code = "import logging, comfykit_batch; r = logging.getLogger(); print(len(r.handlers), r.level)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "30"], "importing the library must leave the root logger alone"
    assert out.stderr == ""
