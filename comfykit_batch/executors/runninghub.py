"""The RunningHub executor: create a task, poll it, read its outputs, cancel it on timeout.

Create is not idempotent (a blind retry can start and bill a second task), so
it is retried only when the server surely did not take it: the connection was
refused, or the answer was 421/415 (the key's queue is full: back off), 429 or
5xx. Status, outputs and uploads are safe to repeat. The API key travels only
in request bodies to the RunningHub host; it is never in a URL, log or error.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
import tenacity
from requests.adapters import HTTPAdapter

from ..errors import ConfigError, ParameterError, WorkflowError
from ..fetch import upload_bytes
from ..files import Saved, save_stream
from ..result import ExecuteResult, Failure, OutputFile, kind_of
from ..workflow import PendingUpload, Workflow
from .base import Executor, ProgressCallback

logger = logging.getLogger("comfykit_batch.runninghub")

CODES: dict[int, str] = {
    301: "parameters invalid", 380: "workflow does not exist", 412: "token invalid (wrong path)",
    415: "instance concurrency maxed", 416: "wallet balance too low", 421: "task queue maxed (concurrency limit of the key)",
    423: "task not found", 433: "prompt validation failed", 435: "exclusive instance problem",
    436: "exclusive instance problem", 500: "unknown server error", 801: "free users cannot use the API",
    802: "unauthorized (API key invalid)", 803: "invalid node info", 804: "task running", 805: "task failed or cancelled",
    806: "user not found", 807: "task not found", 808: "upload failed", 809: "file too large (30 MB limit)",
    810: "workflow not saved or never run in the web UI", 811: "corporate key invalid", 812: "corporate account has no funds",
    813: "task queued", 814: "personal queue over 1000 tasks", 901: "webapp does not exist",
}
QUEUE_FULL = frozenset({415, 421})
UPLOAD_TYPES = {"image": "image", "video": "video", "audio": "audio"}


def remote_workflow(workflow_id: str, *, webapp: bool = False) -> Workflow:
    """A RunningHub workflow (or AI app) known only by id; its nodes are fetched on first use."""
    key = "_webapp_id" if webapp else "_workflow_id"
    return Workflow({"_source": "runninghub", key: str(workflow_id)}, source=f"runninghub:{workflow_id}", allow_empty=True)


class _Transient(Exception):
    """A call that may be repeated (network trouble, 429/5xx)."""


class _Refused(_Transient):
    """The connection was refused: the request surely never reached the server."""


class _Answered(_Transient):
    """The server answered 429 or 5xx: it did not take the request."""


class RunningHubError(Exception):
    """A non-zero envelope code."""

    def __init__(self, code: int, msg: str, data: Any = None) -> None:
        self.code, self.msg, self.data = code, msg, data
        meaning = CODES.get(code, "unknown code")
        super().__init__(f"RunningHub code {code} ({meaning})" + (f": {msg}" if msg and msg.lower() != meaning else ""))


class RunningHubExecutor(Executor):
    """Runs workflows and AI apps on RunningHub (v1 OpenAPI), blocking, thread-safe."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 300.0,
        retry_count: int = 3,
        concurrency: int = 1,
        poll_interval: float = 3.0,
        queue_backoff: float = 5.0,
        instance_type: str | None = None,
        webhook_url: str | None = None,
        request_timeout: tuple[float, float] = (10.0, 60.0),
    ) -> None:
        if not api_key:
            raise ConfigError("RunningHub needs an API key (runninghub_api_key or RUNNINGHUB_API_KEY)")
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"RunningHub URL must be http(s)://host, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.name = f"runninghub:{parsed.hostname}"
        self._key = api_key
        self.timeout = timeout
        self.retry_count = retry_count
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.queue_backoff = queue_backoff
        self.instance_type = instance_type or os.environ.get("RUNNINGHUB_INSTANCE_TYPE") or None
        self.webhook_url = webhook_url
        self.request_timeout = request_timeout
        self.session = requests.Session()
        self.session.trust_env = True
        self.session.mount("https://", HTTPAdapter(pool_maxsize=max(4, concurrency * 2)))
        self.session.mount("http://", HTTPAdapter(pool_maxsize=max(4, concurrency * 2)))
        self._slots = threading.BoundedSemaphore(concurrency)  # tasks one key may run at once
        self._fetched: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RunningHubExecutor({self.base_url!r})"

    # -- the envelope ---------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any] | None = None, *, files: Any = None, key_field: str = "apiKey") -> Any:
        """One call; returns ``data`` of a code-0 envelope, raises RunningHubError / _Transient otherwise."""
        payload = {key_field: self._key, **(body or {})}
        try:
            if files is not None:
                r = self.session.post(self.base_url + path, data=payload, files=files, timeout=self.request_timeout,
                                      allow_redirects=False)
            else:
                r = self.session.post(self.base_url + path, json=payload, timeout=self.request_timeout, allow_redirects=False)
        except requests.ConnectionError as exc:
            if _refused(exc):
                raise _Refused(f"{path}: connection refused") from None
            raise _Transient(f"{path}: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            raise _Transient(f"{path}: {type(exc).__name__}") from None
        if r.status_code == 429 or r.status_code >= 500:
            raise _Answered(f"{path}: HTTP {r.status_code}")
        if r.status_code != 200:
            raise RunningHubError(r.status_code, f"HTTP {r.status_code} on {path}")
        try:
            env = r.json()
            code = int(env.get("code", -1))
        except (ValueError, AttributeError, TypeError):
            raise _Transient(f"{path}: answer is not a JSON envelope") from None
        if code != 0:
            raise RunningHubError(code, str(env.get("msg") or ""), env.get("data"))
        return env.get("data")

    def _safe(self, path: str, body: dict[str, Any] | None = None, **kw: Any) -> Any:
        """A call that is safe to repeat: retried on transient trouble, ``retry_count`` times."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=tenacity.stop_after_attempt(self.retry_count + 1),
            wait=tenacity.wait_exponential(multiplier=0.5, max=8),
            reraise=True,
        )
        return retrying(self._post, path, body, **kw)

    # -- preparing --------------------------------------------------------------------------
    def prepare(self, workflow: Workflow) -> None:
        """Fetch the API JSON of a workflow known only by id, so its DSL parameters are known."""
        wid = workflow.meta.get("_workflow_id")
        if workflow.nodes or not wid:
            return
        with self._lock:
            nodes = self._fetched.get(wid)
        if nodes is None:
            data = self._safe("/api/openapi/getJsonApiFormat", {"workflowId": str(wid)})
            prompt = (data or {}).get("prompt")
            try:
                nodes = json.loads(prompt) if isinstance(prompt, str) else dict(prompt or {})
            except ValueError:
                raise WorkflowError(f"runninghub:{wid}: the workflow JSON RunningHub returned does not parse") from None
            with self._lock:
                self._fetched[wid] = nodes
        workflow.load_nodes(nodes, fetched=True)

    # -- one job -----------------------------------------------------------------------------
    def execute(
        self,
        workflow: Workflow,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> ExecuteResult:
        started = time.monotonic()
        deadline = started + (timeout if timeout is not None else self.timeout)
        webapp = workflow.meta.get("_webapp_id")
        wid = workflow.meta.get("_workflow_id")
        if not webapp and not wid:
            raise WorkflowError(f"{workflow.source}: a RunningHub workflow file needs \"_workflow_id\" (or \"_webapp_id\")")
        try:
            if not webapp:
                self.prepare(workflow)
        except (RunningHubError, _Transient) as exc:
            return ExecuteResult.failed(self._failure(exc, "fetching the workflow"), backend=self.name)
        node_info, bound_values, seeds, send_workflow = self._node_info(workflow, params or {}, bool(webapp))
        extras: dict[str, Any] = {"backend": self.name, "params": bound_values, "seeds": seeds}
        with self._slots:
            try:
                self._upload_all(node_info)
                task_id = self._create(workflow, node_info, send_workflow, webapp, deadline, cancel)
            except _Stop as stop:
                return ExecuteResult.failed(stop.failure, duration=time.monotonic() - started, **extras)
            except (RunningHubError, _Transient) as exc:
                return ExecuteResult.failed(self._failure(exc, "creating the task"), duration=time.monotonic() - started, **extras)
            extras["prompt_id"] = task_id
            try:
                result = self._await(task_id, workflow, deadline, cancel, started)
            except KeyboardInterrupt:
                self._cancel(task_id)
                raise
        result.duration = time.monotonic() - started
        result.backend, result.params, result.seeds = self.name, bound_values, seeds
        return result

    def _node_info(
        self, workflow: Workflow, params: Mapping[str, Any], webapp: bool
    ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, int], dict[str, Any] | None]:
        """nodeInfoList entries from the DSL (workflows) or from "nodeId.fieldName" keys (AI apps)."""
        if webapp:
            info = []
            for key, value in params.items():
                nid, sep, fld = str(key).partition(".")
                if not sep or not nid or not fld:
                    raise ParameterError(f"AI app parameters are named 'nodeId.fieldName', got {key!r}")
                info.append({"nodeId": nid, "fieldName": fld, "fieldValue": value, "_upload": None})
            return info, dict(params), {}, None
        bound = workflow.bind(params)
        uploads = {up.name: up for up in bound.uploads}
        info = []
        for name in params:
            p = workflow.parameters[name]
            for nid, fld in p.targets:
                value = bound.values.get(name) if name not in uploads else None
                info.append({"nodeId": nid, "fieldName": fld, "fieldValue": value, "_upload": uploads.get(name)})
        send = bound.prompt if not workflow.meta.get("_fetched") and workflow.nodes else None
        return info, dict(bound.values), bound.seeds, send

    def _upload_all(self, node_info: list[dict[str, Any]]) -> None:
        done: dict[int, str] = {}
        for entry in node_info:
            up: PendingUpload | None = entry.pop("_upload")
            if up is None:
                continue
            if id(up) not in done:
                done[id(up)] = self._upload(up)
            entry["fieldValue"] = done[id(up)]

    def _upload(self, up: PendingUpload) -> str:
        src = up.source
        if src.kind == "server":
            return src.filename  # already on RunningHub, e.g. "api/abc.png"
        try:
            data = upload_bytes(src)
        except requests.RequestException as exc:
            raise _Stop(Failure("upload", f"could not download {up.name} from {src.describe()}: {type(exc).__name__}")) from None
        kind = kind_of(src.filename)
        file_type = UPLOAD_TYPES.get(kind, "input")
        try:
            data_out = self._safe("/task/openapi/upload", {"fileType": file_type}, files={"file": (src.filename, data)})
        except RunningHubError as exc:
            raise _Stop(self._failure(exc, f"uploading {up.name}")) from None
        name = (data_out or {}).get("fileName")
        if not name:
            raise _Stop(Failure("upload", f"RunningHub gave no fileName for {up.name}"))
        return str(name)

    def _create(self, workflow: Workflow, node_info: list[dict[str, Any]], send_workflow: dict[str, Any] | None,
                webapp: Any, deadline: float, cancel: threading.Event | None) -> str:
        body: dict[str, Any] = {"nodeInfoList": node_info}
        if webapp:
            path, body["webappId"] = "/task/openapi/ai-app/run", str(webapp)
        else:
            path, body["workflowId"] = "/task/openapi/create", str(workflow.meta["_workflow_id"])
            if send_workflow is not None:
                body["workflow"] = json.dumps(send_workflow, ensure_ascii=False)
        if self.instance_type:
            body["instanceType"] = self.instance_type
        if self.webhook_url:
            body["webhookUrl"] = self.webhook_url
        attempt = 0
        while True:
            try:
                data = self._post(path, body)
                task_id = (data or {}).get("taskId")
                if task_id in (None, ""):
                    raise _Stop(Failure("remote", "RunningHub accepted the task but gave no taskId"))
                logger.debug("created task %s", task_id)
                return str(task_id)
            except RunningHubError as exc:
                if exc.code not in QUEUE_FULL:
                    raise
                wait = self.queue_backoff * (1.5 ** min(attempt, 6)) * (6 if exc.code == 415 else 1)
                logger.info("RunningHub queue full (%s); retrying create in %.1fs", exc.code, wait)
            except (_Refused, _Answered):
                if attempt >= self.retry_count:
                    raise
                wait = min(8.0, 0.5 * 2**attempt)
            except _Transient as exc:
                # The request may have reached RunningHub: repeating it could start a second, billed task.
                raise _Stop(Failure("uncertain", f"creating the task: {exc}; it may or may not exist on "
                                    "RunningHub, so it was not sent again")) from None
            attempt += 1
            self._sleep_until(min(deadline, time.monotonic() + wait), deadline, cancel, None)

    def _await(self, task_id: str, workflow: Workflow, deadline: float, cancel: threading.Event | None,
               started: float) -> ExecuteResult:
        failed_polls = 0
        while True:
            try:
                self._sleep_until(time.monotonic() + self.poll_interval, deadline, cancel, task_id)
                status = self._post("/task/openapi/status", {"taskId": task_id})
                failed_polls = 0
            except _Stop as stop:
                return ExecuteResult.failed(stop.failure, prompt_id=task_id)
            except (_Transient, RunningHubError) as exc:
                failed_polls += 1
                if failed_polls > self.retry_count:
                    return ExecuteResult.failed(self._failure(exc, f"polling task {task_id}"), prompt_id=task_id)
                continue
            status = str(status or "").upper()
            if status in ("SUCCESS", "FAILED"):
                return self._outputs(task_id, workflow)
            if status not in ("QUEUED", "RUNNING", "CREATE"):
                logger.debug("task %s: unexpected status %r, still polling", task_id, status)

    def _outputs(self, task_id: str, workflow: Workflow) -> ExecuteResult:
        for _ in range(max(3, self.retry_count + 1)):
            try:
                data = self._safe("/task/openapi/outputs", {"taskId": task_id})
            except RunningHubError as exc:
                if exc.code == 805:
                    return ExecuteResult.failed(_failed_reason(exc.data, task_id), prompt_id=task_id)
                if exc.code in (804, 813):
                    time.sleep(min(self.poll_interval, 1.0))
                    continue
                return ExecuteResult.failed(self._failure(exc, f"reading outputs of task {task_id}"), prompt_id=task_id)
            except _Transient as exc:
                return ExecuteResult.failed(self._failure(exc, f"reading outputs of task {task_id}"), prompt_id=task_id)
            if data is None:  # finished but outputs not ready yet
                time.sleep(min(self.poll_interval, 1.0))
                continue
            return self._result(task_id, workflow, data)
        return ExecuteResult.failed(Failure("remote", f"task {task_id} finished but its outputs never came", transient=True),
                                    prompt_id=task_id)

    def _result(self, task_id: str, workflow: Workflow, items: list[dict[str, Any]]) -> ExecuteResult:
        result = ExecuteResult(status="completed", prompt_id=task_id, outputs={"runninghub": items})
        cost_time, coins = 0.0, 0.0
        for item in items or []:
            url = str(item.get("fileUrl") or "")
            nid = str(item.get("nodeId") or "")
            var = workflow.output_names.get(nid, nid or "output")
            text = item.get("text")
            if isinstance(text, str) and not url:
                result.add_text(var, text)
                continue
            filename = os.path.basename(urlparse(url).path) or f"output.{item.get('fileType', 'bin')}"
            result.add_file(OutputFile(url=url, filename=filename, kind=kind_of(filename, str(item.get("fileType", ""))),
                                       var=var, node_id=nid))
            cost_time = max(cost_time, _num(item.get("taskCostTime")))
            coins = max(coins, _num(item.get("consumeCoins")))
        result.cost = {"taskCostTime": cost_time, "consumeCoins": coins}
        return result

    def _cancel(self, task_id: str) -> None:
        try:
            self._post("/task/openapi/cancel", {"taskId": task_id})
            logger.info("cancelled task %s", task_id)
        except (RunningHubError, _Transient) as exc:
            logger.warning("could not cancel task %s: %s", task_id, exc)

    def _sleep_until(self, until: float, deadline: float, cancel: threading.Event | None, task_id: str | None) -> None:
        """Wait, but stop (cancelling the task, if any) on the deadline or on ``cancel``."""
        while True:
            now = time.monotonic()
            if cancel is not None and cancel.is_set():
                if task_id:
                    self._cancel(task_id)
                raise _Stop(Failure("cancelled", "cancelled by the caller" + (f"; task {task_id} cancelled" if task_id else ""),
                                    transient=True))
            if now >= deadline:
                if task_id:
                    self._cancel(task_id)
                raise _Stop(Failure("timeout", "timeout" + (f"; task {task_id} cancelled" if task_id else " before the task started"),
                                    transient=True))
            if now >= until:
                return
            step = min(until, deadline) - now
            if cancel is not None:
                cancel.wait(min(step, 0.2))
            else:
                time.sleep(min(step, 0.2))

    def _failure(self, exc: Exception, doing: str) -> Failure:
        if isinstance(exc, RunningHubError):
            transient = exc.code in QUEUE_FULL
            return Failure("remote", f"{doing}: {exc}", transient=transient, code=exc.code)
        return Failure("connection", f"{doing}: {exc}", transient=True)

    def download(self, file: OutputFile, dest: Path) -> Saved:
        """Output URLs are public CDN links: fetched without the API key (which is never in a URL)."""
        with requests.get(file.url, stream=True, timeout=self.request_timeout) as r:
            r.raise_for_status()
            return save_stream(r.iter_content(1 << 20), dest)

    def close(self) -> None:
        self.session.close()


class _Stop(Exception):
    def __init__(self, failure: Failure) -> None:
        self.failure = failure


def _refused(exc: requests.ConnectionError) -> bool:
    seen, cur = 0, exc.__context__ or exc.__cause__
    text = str(exc)
    while cur is not None and seen < 8:
        if isinstance(cur, ConnectionRefusedError):
            return True
        text += str(cur)
        cur, seen = cur.__context__ or cur.__cause__, seen + 1
    return "Connection refused" in text or "NewConnectionError" in text


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def _failed_reason(data: Any, task_id: str) -> Failure:
    reason = (data or {}).get("failedReason") if isinstance(data, dict) else None
    if not isinstance(reason, dict):
        return Failure("execution", f"task {task_id} failed (RunningHub gave no reason)", code=805)
    tb = reason.get("traceback")
    if isinstance(tb, str):
        try:
            parsed = json.loads(tb)
            tb = "".join(parsed) if isinstance(parsed, list) else str(parsed)
        except ValueError:
            pass
    return Failure(
        "execution",
        f"node {reason.get('node_id')} ({reason.get('node_name')}) raised {reason.get('exception_type')}: "
        f"{str(reason.get('exception_message', '')).strip()}",
        node_id=None if reason.get("node_id") is None else str(reason.get("node_id")),
        node_type=reason.get("node_name"), exception_type=reason.get("exception_type"),
        traceback=tb if isinstance(tb, str) else None, code=805,
    )


