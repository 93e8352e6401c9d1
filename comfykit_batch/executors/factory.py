"""One place that builds an executor from a URL and options: ``ComfyKit``, the batch session and the CLI use it.

Layers above the executors never import a concrete executor module; they name
the backend ``type`` ("comfyui" or "runninghub") and the ComfyUI transport
(``executor``: "http", "websocket" or "ws"), and get an ``Executor``. Options
left as None take their value from ``DEFAULTS``. The concrete classes are
imported here, lazily, so importing the factory pulls in no transport library.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping

from ..defaults import DEFAULTS, TIMINGS, Timings, executor_type
from ..errors import ConfigError
from .base import Executor

BACKEND_TYPES = ("comfyui", "runninghub")

#: the public executor classes -> the module that defines them (imported on first use)
EXECUTOR_CLASSES: dict[str, str] = {
    "HttpExecutor": "comfyui_http",
    "WebSocketExecutor": "comfyui_ws",
    "RunningHubExecutor": "runninghub",
}


def executor_class(name: str) -> type[Executor]:
    """A concrete executor class by its public name, importing its module only now."""
    try:
        module = EXECUTOR_CLASSES[name]
    except KeyError:
        raise ConfigError(f"no executor class {name!r}; known: {', '.join(EXECUTOR_CLASSES)}") from None
    cls: type[Executor] = getattr(importlib.import_module(f"{__package__}.{module}"), name)
    return cls


def create_executor(
    url: str,
    *,
    type: str = "comfyui",
    executor: str | None = None,
    api_key: str | None = None,
    cookies: str | Mapping[str, str] | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    retry_count: int | None = None,
    instance_type: str | None = None,
    webhook_url: str | None = None,
    poll_interval: float | None = None,
    server_output_dir: str | os.PathLike[str] | None = None,
    timings: Timings | None = None,
) -> Executor:
    """The executor for one backend.

    ComfyUI: ``executor`` picks the transport (default ``DEFAULTS.library_executor``);
    ``timeout``, ``retry_count``, ``instance_type``, ``webhook_url`` and ``poll_interval``
    are RunningHub's and are refused for ComfyUI rather than silently ignored (a ComfyUI
    call's timeout is given per ``execute``); ``server_output_dir`` is ComfyUI's (its output
    folder as this machine sees it: outputs are read there, see ``shared_output``) and is
    refused for RunningHub. RunningHub: ``url`` may be empty for
    ``DEFAULTS.runninghub_url``; ``timeout`` bounds each call made without its own.
    ``timings`` (default ``TIMINGS``): every wait of the executor (a test passes short ones).
    Raises ``ConfigError`` for an unknown type or transport, or a missing RunningHub key.
    """
    kind, waits = str(type).strip().lower(), timings or TIMINGS
    if kind == "runninghub":
        if server_output_dir is not None:
            raise ConfigError("server_output_dir: a ComfyUI option, not accepted for a RunningHub backend")
        return _runninghub(url, api_key, concurrency, timeout, retry_count, instance_type, webhook_url, poll_interval,
                           waits)
    if kind != "comfyui":
        raise ConfigError(f"backend type must be one of {', '.join(BACKEND_TYPES)}, got {type!r}")
    extra = {"timeout": timeout, "retry_count": retry_count, "instance_type": instance_type,
             "webhook_url": webhook_url, "poll_interval": poll_interval}
    given = sorted(k for k, v in extra.items() if v is not None)
    if given:
        raise ConfigError(f"{', '.join(given)}: RunningHub options, not accepted for a ComfyUI backend")
    if not url:
        raise ConfigError("a ComfyUI backend needs a URL (http(s)://host:port)")
    return _comfyui(url, executor, api_key, cookies, concurrency, server_output_dir, waits)


def _comfyui(url: str, executor: str | None, api_key: str | None, cookies: str | Mapping[str, str] | None,
             concurrency: int | None, server_output_dir: str | os.PathLike[str] | None, timings: Timings) -> Executor:
    transport = executor_type(executor if executor is not None else DEFAULTS.library_executor, where="executor")
    workers = DEFAULTS.concurrency if concurrency is None else _positive(concurrency, "concurrency")
    cls = executor_class("WebSocketExecutor" if transport == "websocket" else "HttpExecutor")
    return cls(url, api_key=api_key, cookies=cookies, concurrency=workers,  # type: ignore[call-arg]
               server_output_dir=server_output_dir, timings=timings)


def _runninghub(url: str, api_key: str | None, concurrency: int | None, timeout: float | None,
                retry_count: int | None, instance_type: str | None, webhook_url: str | None,
                poll_interval: float | None, timings: Timings) -> Executor:
    cls = executor_class("RunningHubExecutor")
    return cls(  # type: ignore[call-arg]
        url or DEFAULTS.runninghub_url,
        api_key or "",  # the executor refuses an empty key with a ConfigError naming the variable
        timeout=DEFAULTS.runninghub_timeout if timeout is None else timeout,
        retry_count=DEFAULTS.runninghub_retry_count if retry_count is None else retry_count,
        concurrency=DEFAULTS.runninghub_concurrency if concurrency is None else _positive(concurrency, "concurrency"),
        poll_interval=DEFAULTS.runninghub_poll_interval if poll_interval is None else poll_interval,
        instance_type=instance_type,
        webhook_url=webhook_url,
        timings=timings,
    )


def _positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value
