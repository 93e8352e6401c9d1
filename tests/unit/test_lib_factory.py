"""``executors.factory.create_executor``: one builder for every executor, defaults from ``DEFAULTS``."""

from __future__ import annotations

import pytest

from comfykit_batch.defaults import DEFAULTS
from comfykit_batch.errors import ConfigError
from comfykit_batch.executors.factory import EXECUTOR_CLASSES, create_executor, executor_class

URL = "http://127.0.0.1:9"  # nothing is contacted: building an executor opens no connection


@pytest.mark.parametrize("spelling, cls", [(None, "HttpExecutor"), ("http", "HttpExecutor"), ("HTTP", "HttpExecutor"),
                                           ("websocket", "WebSocketExecutor"), ("ws", "WebSocketExecutor")])
def test_comfyui_transports_by_any_accepted_spelling(spelling, cls):
    with create_executor(URL, executor=spelling) as ex:
        assert type(ex).__name__ == cls
        assert ex.concurrency == DEFAULTS.concurrency


def test_comfyui_options_reach_the_executor():
    with create_executor(URL, executor="http", concurrency=5, api_key="sk-test") as ex:
        assert ex.concurrency == 5
        assert "sk-test" not in ex.name


def test_runninghub_defaults_come_from_DEFAULTS():
    with create_executor("", type="runninghub", api_key="rk-test") as ex:
        assert type(ex).__name__ == "RunningHubExecutor"
        assert ex.base_url == DEFAULTS.runninghub_url
        assert ex.timeout == DEFAULTS.runninghub_timeout and ex.retry_count == DEFAULTS.runninghub_retry_count
        assert ex.concurrency == DEFAULTS.runninghub_concurrency and ex.poll_interval == DEFAULTS.runninghub_poll_interval


def test_runninghub_options_reach_the_executor():
    with create_executor("https://rh.example", type="RunningHub", api_key="rk", timeout=7, retry_count=0,
                         concurrency=3, poll_interval=0.5, instance_type="plus", webhook_url="https://hook.example/x") as ex:
        assert (ex.base_url, ex.timeout, ex.retry_count, ex.concurrency, ex.poll_interval) == (
            "https://rh.example", 7, 0, 3, 0.5)
        assert ex.instance_type == "plus" and ex.webhook_url == "https://hook.example/x"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"type": "grpc"}, "backend type must be one of comfyui, runninghub, got 'grpc'"),
        ({"executor": "carrier-pigeon"}, "executor must be 'http' or 'websocket'"),
        ({"concurrency": 0}, "concurrency must be a whole number of at least 1"),
        ({"timeout": 5, "poll_interval": 1}, "poll_interval, timeout: RunningHub options"),
        ({"type": "runninghub"}, "API key"),
    ],
)
def test_bad_options_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        create_executor(URL, **kwargs)


def test_executor_classes_load_by_public_name():
    assert set(EXECUTOR_CLASSES) == {"HttpExecutor", "WebSocketExecutor", "RunningHubExecutor"}
    assert executor_class("HttpExecutor").__name__ == "HttpExecutor"
    with pytest.raises(ConfigError, match="no executor class 'FtpExecutor'"):
        executor_class("FtpExecutor")
