"""``ComfyKit``: the seed's user-facing API, over the blocking executors.

``execute_sync`` / ``execute_json_sync`` do the work; ``execute`` and
``execute_json`` are the same calls run on the kit's own thread pool, so async
code gets the seed's API and a cancelled task interrupts its remote prompt.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from .errors import ConfigError
from .executors.base import Executor, ProgressCallback
from .executors.comfyui import HttpExecutor
from .executors.comfyui_ws import WebSocketExecutor
from .result import ExecuteResult
from .sources import WorkflowSource, is_runninghub_id, is_runninghub_workflow, load_workflow, runninghub_app_id
from .workflow import Workflow

DEFAULT_COMFYUI_URL = "http://127.0.0.1:8188"
DEFAULT_RUNNINGHUB_URL = "https://www.runninghub.ai"
DEFAULT_TIMEOUT = 3600.0


def _env_number(name: str, default: float, cast: type = float) -> Any:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return cast(default)
    try:
        return cast(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number, got {raw!r}") from None


def make_comfyui_executor(
    url: str,
    executor_type: str = "http",
    *,
    api_key: str | None = None,
    cookies: str | Mapping[str, str] | None = None,
    concurrency: int = 2,
) -> Executor:
    """The ComfyUI executor for a transport name ("http" or "websocket")."""
    kinds = {"http": HttpExecutor, "websocket": WebSocketExecutor, "ws": WebSocketExecutor}
    try:
        cls = kinds[executor_type.lower()]
    except KeyError:
        raise ConfigError(f"executor_type must be 'http' or 'websocket', got {executor_type!r}") from None
    return cls(url, api_key=api_key, cookies=cookies, concurrency=concurrency)


class ComfyKit:
    """Run ComfyUI workflows on a ComfyUI server or on RunningHub.

    Arguments left as None fall back to the environment variables the published
    package reads (``COMFYUI_BASE_URL``, ``COMFYUI_EXECUTOR_TYPE``, ``COMFYUI_API_KEY``,
    ``COMFYUI_COOKIES``, ``RUNNINGHUB_BASE_URL``, ``RUNNINGHUB_API_KEY``,
    ``RUNNINGHUB_TIMEOUT``, ``RUNNINGHUB_RETRY_COUNT``), then to the documented defaults.
    """

    def __init__(
        self,
        comfyui_url: str | None = None,
        executor_type: Literal["http", "websocket"] | None = None,
        api_key: str | None = None,
        cookies: str | None = None,
        runninghub_url: str | None = None,
        runninghub_api_key: str | None = None,
        runninghub_timeout: int | None = None,
        runninghub_retry_count: int | None = None,
        *,
        timeout: float | None = None,
        max_workers: int = 16,
    ) -> None:
        self.comfyui_url = (comfyui_url or os.environ.get("COMFYUI_BASE_URL") or DEFAULT_COMFYUI_URL).rstrip("/")
        self.executor_type = executor_type or os.environ.get("COMFYUI_EXECUTOR_TYPE") or "http"
        self.api_key = api_key or os.environ.get("COMFYUI_API_KEY") or None
        self.cookies = cookies or os.environ.get("COMFYUI_COOKIES") or None
        self.runninghub_url = (runninghub_url or os.environ.get("RUNNINGHUB_BASE_URL") or DEFAULT_RUNNINGHUB_URL).rstrip("/")
        self.runninghub_api_key = runninghub_api_key or os.environ.get("RUNNINGHUB_API_KEY") or None
        self.runninghub_timeout = (
            runninghub_timeout if runninghub_timeout is not None else _env_number("RUNNINGHUB_TIMEOUT", 300, int)
        )
        self.runninghub_retry_count = (
            runninghub_retry_count if runninghub_retry_count is not None else _env_number("RUNNINGHUB_RETRY_COUNT", 3, int)
        )
        self.timeout = timeout if timeout is not None else _env_number("COMFYUI_TIMEOUT", DEFAULT_TIMEOUT)
        if self.executor_type not in ("http", "websocket"):
            raise ConfigError(f"executor_type must be 'http' or 'websocket', got {self.executor_type!r}")
        self.max_workers = max_workers
        self._comfyui: Executor | None = None
        self._runninghub: Executor | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows keys or cookies
        return f"ComfyKit(comfyui_url={self.comfyui_url!r}, executor_type={self.executor_type!r})"

    # -- executors ----------------------------------------------------------------
    @property
    def comfyui(self) -> Executor:
        """The executor for the configured ComfyUI server (created on first use)."""
        with self._lock:
            if self._comfyui is None:
                self._comfyui = make_comfyui_executor(
                    self.comfyui_url, self.executor_type, api_key=self.api_key, cookies=self.cookies,
                    concurrency=self.max_workers,
                )
            return self._comfyui

    @property
    def runninghub(self) -> Executor:
        """The executor for RunningHub (created on first use; needs an API key)."""
        with self._lock:
            if self._runninghub is None:
                if not self.runninghub_api_key:
                    raise ConfigError("this workflow runs on RunningHub: set runninghub_api_key or RUNNINGHUB_API_KEY")
                from .executors.runninghub import RunningHubExecutor

                self._runninghub = RunningHubExecutor(
                    self.runninghub_url, self.runninghub_api_key,
                    timeout=self.runninghub_timeout, retry_count=self.runninghub_retry_count,
                )
            return self._runninghub

    def _route(self, workflow: WorkflowSource | Workflow) -> tuple[Executor, Workflow]:
        app = runninghub_app_id(workflow)
        if is_runninghub_id(workflow) or app:
            from .executors.runninghub import remote_workflow

            return self.runninghub, remote_workflow(app or str(workflow), webapp=bool(app))
        wf = load_workflow(workflow)
        return (self.runninghub if is_runninghub_workflow(wf) else self.comfyui), wf

    # -- blocking API ---------------------------------------------------------------
    def execute_sync(
        self,
        workflow: WorkflowSource,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> ExecuteResult:
        """Run a workflow (path, URL, dict or RunningHub id) and wait for its result."""
        executor, wf = self._route(workflow)
        return executor.execute(
            wf, params, timeout=timeout if timeout is not None else self.timeout,
            on_progress=on_progress, cancel=cancel,
        )

    def execute_json_sync(
        self,
        workflow_json: Mapping[str, Any],
        params: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> ExecuteResult:
        """``execute_sync`` for a workflow given as a dict."""
        return self.execute_sync(Workflow(workflow_json), params, **kw)

    def list_params(self, workflow: WorkflowSource) -> list[dict[str, Any]]:
        """The workflow's DSL parameters: name, nodes, required, default, type, description."""
        executor, wf = self._route(workflow)
        if not wf.nodes and wf.meta.get("_workflow_id"):
            executor.prepare(wf)  # a RunningHub workflow id: fetch its JSON to read its markers
        return [p.to_dict() for p in wf.parameters.values()]

    # -- async API (the seed's) --------------------------------------------------------
    async def execute(
        self,
        workflow: WorkflowSource,
        params: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> ExecuteResult:
        """Run a workflow and return its ``ExecuteResult`` (the seed API)."""
        return await self._in_thread(self.execute_sync, workflow, params, **kw)

    async def execute_json(
        self,
        workflow_json: Mapping[str, Any],
        params: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> ExecuteResult:
        """Run a workflow given as a dict (the seed API)."""
        return await self._in_thread(self.execute_json_sync, workflow_json, params, **kw)

    async def _in_thread(self, fn: Any, *args: Any, **kw: Any) -> ExecuteResult:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="comfykit")
            pool = self._pool
        cancel = kw.pop("cancel", None) or threading.Event()
        future = asyncio.get_running_loop().run_in_executor(pool, lambda: fn(*args, cancel=cancel, **kw))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            cancel.set()  # the worker interrupts the remote prompt and returns
            raise

    # -- lifecycle ------------------------------------------------------------------
    def close(self) -> None:
        for ex in (self._comfyui, self._runninghub):
            if ex is not None:
                ex.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._comfyui = self._runninghub = self._pool = None

    def __enter__(self) -> ComfyKit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> ComfyKit:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
