import pytest

from comfykit_batch import ComfyKit, ConfigError


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


def test_defaults(monkeypatch):
    for v in ("COMFYUI_BASE_URL", "COMFYUI_EXECUTOR_TYPE", "RUNNINGHUB_TIMEOUT"):
        monkeypatch.delenv(v, raising=False)
    kit = ComfyKit()
    assert kit.comfyui_url == "http://127.0.0.1:8188" and kit.executor_type == "http" and kit.runninghub_timeout == 300


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
