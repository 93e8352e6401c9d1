"""``ComfyKit``: the seed's user-facing API, over the blocking executors.

``execute_sync`` / ``execute_json_sync`` do the work; ``execute`` and
``execute_json`` are the same calls run on the kit's own thread pool, so async
code gets the seed's API and a cancelled task interrupts its remote prompt.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from .defaults import DEFAULTS, env_comfyui_url, executor_type
from .errors import ConfigError
from .executors.base import Executor, ProgressCallback
from .executors.factory import create_executor
from .result import ExecuteResult
from .sources import WorkflowSource, is_remote, resolve_workflow
from .workflow import Workflow


def _env_number(name: str, default: float, cast: Callable[[Any], Any] = float) -> Any:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return cast(default)
    try:
        return cast(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number, got {raw!r}") from None


def _executor_type(value: str | None) -> str:
    """The argument, else ``COMFYUI_EXECUTOR_TYPE``, else the library default; one spelling rule for all."""
    if value is not None:
        return executor_type(value, where="executor_type")
    env = os.environ.get("COMFYUI_EXECUTOR_TYPE", "").strip()
    if env:
        return executor_type(env, where="COMFYUI_EXECUTOR_TYPE")
    return DEFAULTS.library_executor


class ComfyKit:
    """Run ComfyUI workflows on a ComfyUI server or on RunningHub.

    Arguments left as None fall back to the environment variables the published
    package reads (``COMFYUI_URL`` then ``COMFYUI_BASE_URL``, ``COMFYUI_EXECUTOR_TYPE``,
    ``COMFYUI_API_KEY``, ``COMFYUI_COOKIES``, ``COMFYUI_TIMEOUT``, ``RUNNINGHUB_BASE_URL``,
    ``RUNNINGHUB_API_KEY``, ``RUNNINGHUB_TIMEOUT``, ``RUNNINGHUB_RETRY_COUNT``), then to ``DEFAULTS``.

    ``timeout`` bounds each ComfyUI call and ``runninghub_timeout`` each RunningHub
    call, unless the call passes its own ``timeout=``.
    """

    def __init__(
        self,
        comfyui_url: str | None = None,
        executor_type: Literal["http", "websocket", "ws"] | None = None,
        api_key: str | None = None,
        cookies: str | None = None,
        runninghub_url: str | None = None,
        runninghub_api_key: str | None = None,
        runninghub_timeout: float | None = None,
        runninghub_retry_count: int | None = None,
        *,
        timeout: float | None = None,
        max_workers: int = DEFAULTS.library_max_workers,
    ) -> None:
        self.comfyui_url = (comfyui_url or env_comfyui_url() or DEFAULTS.comfyui_url).rstrip("/")
        self.executor_type = _executor_type(executor_type)
        self.api_key = api_key or os.environ.get("COMFYUI_API_KEY") or None
        self.cookies = cookies or os.environ.get("COMFYUI_COOKIES") or None
        self.runninghub_url = (runninghub_url or os.environ.get("RUNNINGHUB_BASE_URL") or DEFAULTS.runninghub_url).rstrip("/")
        self.runninghub_api_key = runninghub_api_key or os.environ.get("RUNNINGHUB_API_KEY") or None
        self.runninghub_timeout = (
            runninghub_timeout if runninghub_timeout is not None
            else _env_number("RUNNINGHUB_TIMEOUT", DEFAULTS.runninghub_timeout, int)
        )
        self.runninghub_retry_count = (
            runninghub_retry_count if runninghub_retry_count is not None
            else _env_number("RUNNINGHUB_RETRY_COUNT", DEFAULTS.runninghub_retry_count, int)
        )
        self.timeout = timeout if timeout is not None else _env_number("COMFYUI_TIMEOUT", DEFAULTS.library_timeout)
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
                self._comfyui = create_executor(
                    self.comfyui_url, executor=self.executor_type, api_key=self.api_key, cookies=self.cookies,
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
                self._runninghub = create_executor(
                    self.runninghub_url, type="runninghub", api_key=self.runninghub_api_key,
                    timeout=self.runninghub_timeout, retry_count=self.runninghub_retry_count,
                )
            return self._runninghub

    def _route(self, workflow: WorkflowSource) -> tuple[Executor, Workflow, float]:
        """The executor for a workflow, the workflow, and the timeout of a call that gives none."""
        wf = resolve_workflow(workflow)
        if is_remote(wf):
            return self.runninghub, wf, float(self.runninghub_timeout)
        return self.comfyui, wf, float(self.timeout)

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
        """Run a workflow (path, URL, dict, RunningHub id or ``webapp:<id>``) and wait for its result.

        ``timeout`` defaults to the kit's ``timeout`` on ComfyUI and to ``runninghub_timeout``
        on RunningHub; when it passes, the remote job is interrupted and the result is failed.
        """
        executor, wf, default_timeout = self._route(workflow)
        return executor.execute(
            wf, params, timeout=timeout if timeout is not None else default_timeout,
            on_progress=on_progress, cancel=cancel,
        )

    def execute_json_sync(
        self,
        workflow_json: Mapping[str, Any],
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> ExecuteResult:
        """``execute_sync`` for a workflow given as a dict."""
        return self.execute_sync(Workflow(workflow_json), params, timeout=timeout, on_progress=on_progress, cancel=cancel)

    def list_params(self, workflow: WorkflowSource) -> list[dict[str, Any]]:
        """The workflow's DSL parameters: name, nodes, required, default, type, description."""
        executor, wf, _ = self._route(workflow)
        if not wf.nodes and wf.meta.get("_workflow_id"):
            executor.prepare(wf)  # a RunningHub workflow id: fetch its JSON to read its markers
        return wf.list_params()

    # -- async API (the seed's) --------------------------------------------------------
    async def execute(
        self,
        workflow: WorkflowSource,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> ExecuteResult:
        """Run a workflow and return its ``ExecuteResult`` (the seed API); cancelling the task interrupts the job."""
        return await self._in_thread(
            lambda stop: self.execute_sync(workflow, params, timeout=timeout, on_progress=on_progress, cancel=stop),
            cancel,
        )

    async def execute_json(
        self,
        workflow_json: Mapping[str, Any],
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> ExecuteResult:
        """Run a workflow given as a dict (the seed API)."""
        return await self._in_thread(
            lambda stop: self.execute_json_sync(workflow_json, params, timeout=timeout, on_progress=on_progress,
                                                cancel=stop),
            cancel,
        )

    async def _in_thread(
        self, call: Callable[[threading.Event], ExecuteResult], cancel: threading.Event | None
    ) -> ExecuteResult:
        """Run ``call`` on the kit's pool; a cancelled awaiting task sets the job's cancel event."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="comfykit")
            pool = self._pool
        stop = cancel or threading.Event()
        future = asyncio.get_running_loop().run_in_executor(pool, call, stop)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            stop.set()  # the worker interrupts the remote prompt and returns
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
