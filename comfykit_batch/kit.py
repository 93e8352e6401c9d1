"""``ComfyKit``: the seed's user-facing API, over the blocking executors.

``execute_sync`` / ``execute_json_sync`` do the work; ``execute`` and
``execute_json`` are the same calls run on the kit's own thread pool, so async
code gets the seed's API and a cancelled task interrupts its remote prompt.

The two halves differ in one deliberate way. The seed's async calls answer every
run with an ``ExecuteResult``, as code written for the published ``comfykit``
expects: bad input (a missing file, a missing required parameter) is a failed
result whose ``msg`` says why, and a parameter the workflow does not have is
ignored, named in ``ignored_params`` and logged. The blocking calls are this
package's own and raise before anything is submitted, as ``strict=True`` makes
the async calls do too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from .defaults import DEFAULTS, env_comfyui_url, executor_type
from .errors import ComfyKitError, ConfigError
from .executors.base import Executor, ProgressCallback
from .executors.factory import create_executor
from .result import ExecuteResult, failure_of
from .sources import WorkflowSource, resolve_workflow, runs_on_runninghub
from .workflow import Workflow

logger = logging.getLogger(__name__)

UnknownParams = Literal["warn", "error"]
#: ``compat="comfykit"``: the published package's status words for a failed run
COMPAT_MODES = ("comfykit",)


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


def _compat(value: str | None) -> str | None:
    """The ``compat`` argument, else ``COMFYKIT_COMPAT``; None or one of ``COMPAT_MODES``."""
    raw = value if value is not None else os.environ.get("COMFYKIT_COMPAT", "").strip() or None
    if raw is not None and raw not in COMPAT_MODES:
        where = "compat" if value is not None else "COMFYKIT_COMPAT"
        raise ConfigError(f"{where} must be one of {', '.join(COMPAT_MODES)} (or unset), got {raw!r}")
    return raw


class ComfyKit:
    """Run ComfyUI workflows on a ComfyUI server or on RunningHub.

    Arguments left as None fall back to the environment variables the published
    package reads (``COMFYUI_URL`` then ``COMFYUI_BASE_URL``, ``COMFYUI_EXECUTOR_TYPE``,
    ``COMFYUI_API_KEY``, ``COMFYUI_COOKIES``, ``COMFYUI_TIMEOUT``, ``RUNNINGHUB_BASE_URL``,
    ``RUNNINGHUB_API_KEY``, ``RUNNINGHUB_TIMEOUT``, ``RUNNINGHUB_RETRY_COUNT``), then to ``DEFAULTS``.

    ``timeout`` bounds each ComfyUI call and ``runninghub_timeout`` each RunningHub
    call, unless the call passes its own ``timeout=``.

    ``strict`` makes ``execute``/``execute_json`` raise bad input as the blocking calls
    do, instead of returning a failed result. ``unknown_params``: ``"warn"`` (the default
    when not strict) runs without parameters the workflow does not have, naming them in
    ``result.ignored_params`` and a logged warning; ``"error"`` refuses them.
    ``compat="comfykit"`` (or ``COMFYKIT_COMPAT=comfykit``) gives failed results the
    published package's status words, ``"error"`` (``"timeout"`` for a timeout).
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
        runninghub_instance_type: str | None = None,
        *,
        timeout: float | None = None,
        max_workers: int = DEFAULTS.library_max_workers,
        strict: bool = False,
        unknown_params: UnknownParams | None = None,
        compat: str | None = None,
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
        self.runninghub_instance_type = runninghub_instance_type or os.environ.get("RUNNINGHUB_INSTANCE_TYPE") or None
        self.timeout = timeout if timeout is not None else _env_number("COMFYUI_TIMEOUT", DEFAULTS.library_timeout)
        self.max_workers = max_workers
        if unknown_params not in (None, "warn", "error"):
            raise ConfigError(f"unknown_params must be 'warn' or 'error', got {unknown_params!r}")
        self.strict = strict
        self.unknown_params: UnknownParams = unknown_params or ("error" if strict else "warn")
        self.compat = _compat(compat)
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
                    also = (" (the ComfyUI api_key is never sent to RunningHub: pass it as runninghub_api_key to use it there)"
                            if self.api_key else "")
                    raise ConfigError(f"this workflow runs on RunningHub: set runninghub_api_key or RUNNINGHUB_API_KEY{also}")
                self._runninghub = create_executor(
                    self.runninghub_url, type="runninghub", api_key=self.runninghub_api_key,
                    timeout=self.runninghub_timeout, retry_count=self.runninghub_retry_count,
                    instance_type=self.runninghub_instance_type,
                )
            return self._runninghub

    def _route(self, workflow: WorkflowSource) -> tuple[Executor, Workflow, float]:
        """The executor for a workflow, the workflow, and the timeout of a call that gives none."""
        wf = resolve_workflow(workflow)
        if runs_on_runninghub(wf):
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
        Bad input raises (``WorkflowError``, ``ParameterError``, ``ConfigError``, ...) before
        anything is submitted, whatever ``strict`` says.
        """
        return self._call(workflow, params, True, timeout, on_progress, cancel)

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
        return self._call(workflow_json, params, True, timeout, on_progress, cancel)

    def _call(
        self,
        workflow: WorkflowSource,
        params: Mapping[str, Any] | None,
        strict: bool,
        timeout: float | None,
        on_progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> ExecuteResult:
        """One run; a lenient call (not ``strict``) turns bad input into a failed result instead of raising."""
        ignored: list[str] = []
        try:
            executor, wf, default_timeout = self._route(workflow)
            params, ignored = self._known_params(executor, wf, params, strict)
            result = executor.execute(
                wf, params, timeout=timeout if timeout is not None else default_timeout,
                on_progress=on_progress, cancel=cancel,
            )
        except ComfyKitError as exc:
            if strict:
                raise
            result = ExecuteResult.failed(failure_of(exc))
        result.ignored_params = ignored
        if self.compat == "comfykit" and result.status == "failed":
            result.status = "timeout" if result.failure and result.failure.kind == "timeout" else "error"
        return result

    def _known_params(
        self, executor: Executor, wf: Workflow, params: Mapping[str, Any] | None, strict: bool
    ) -> tuple[Mapping[str, Any] | None, list[str]]:
        """``params`` without the names ``wf`` lacks, and those names; unchanged when unknown names are refused.

        Strict calls (the blocking ones, and every call of a ``strict`` kit) refuse them; AI apps
        (``webapp:<id>``, named by ``nodeId.fieldName``) have no markers to compare with.
        """
        if not params or (wf.remote is not None and wf.remote.is_app):
            return params, []
        if wf.nodes_pending:
            executor.prepare(wf)  # a RunningHub workflow id: its markers come with its JSON
        if strict or self.unknown_params == "error":
            if wf.nodes:
                wf.check_params(params)  # names first: a typo costs no request
            return params, []
        ignored = sorted(str(k) for k in params if k not in wf.parameters)
        if not ignored:
            return params, []
        logger.warning("%s: ignoring parameters the workflow does not have: %s (known: %s)",
                       wf.source, ", ".join(ignored), ", ".join(sorted(wf.parameters)) or "none")
        return {k: v for k, v in params.items() if k in wf.parameters}, ignored

    def list_params(self, workflow: WorkflowSource) -> list[dict[str, Any]]:
        """The workflow's DSL parameters: name, nodes, required, default, type, description."""
        executor, wf, _ = self._route(workflow)
        if wf.nodes_pending:
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
        """Run a workflow and return its ``ExecuteResult`` (the seed API); cancelling the task interrupts the job.

        Bad input is a failed result (``msg`` says why, ``failure.kind`` is ``invalid``,
        ``config`` or ``auth``) unless the kit is ``strict``.
        """
        return await self._in_thread(
            lambda stop: self._call(workflow, params, self.strict, timeout, on_progress, stop), cancel,
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
        """Run a workflow given as a dict (the seed API); bad input is a failed result, as in ``execute``."""
        return await self._in_thread(
            lambda stop: self._call(workflow_json, params, self.strict, timeout, on_progress, stop),
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
    async def close(self) -> None:
        """Release the executors' connections and the kit's threads (the seed's ``await kit.close()``)."""
        self.close_sync()

    def close_sync(self) -> None:
        """``close`` for blocking code (``with ComfyKit(...) as kit`` calls it)."""
        for ex in (self._comfyui, self._runninghub):
            if ex is not None:
                ex.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._comfyui = self._runninghub = self._pool = None

    def __enter__(self) -> ComfyKit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_sync()

    async def __aenter__(self) -> ComfyKit:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close_sync()

