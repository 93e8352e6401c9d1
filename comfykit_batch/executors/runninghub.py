"""The RunningHub executor: create a task, poll it, read its outputs, cancel it on timeout.

Create is not idempotent (a blind retry can start and bill a second task), so
it is retried only when the server surely did not take it: the connection was
refused, or the answer was 421/415 (the key's queue is full: back off), 429 or
5xx. Status, outputs and uploads are safe to repeat. The API key travels only
in request bodies to the RunningHub host; it is never in a URL, log or error,
and server text is scrubbed of it before it lands in a message.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter

from ..defaults import DEFAULTS, TIMINGS, Timings
from ..errors import AuthError, BackendError, ConfigError, ParameterError, WorkflowError, scrub_chain
from ..files import Saved, save_stream
from ..result import ExecuteResult, Failure, OutputFile, kind_of
from ..uploads import url_secrets
from ..workflow import PendingUpload, RemoteRef, Workflow
from .base import Executor, ProgressCallback
from .lifecycle import Deadline, Stop, missing_outputs, node_failure, read_upload
from .transport import REFUSED, Redactor, cause_of, check_url, http_status_error, mapped, read_timeout

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
AUTH_CODES = frozenset({412, 801, 802, 806, 811})
UPLOAD_TYPES = {"image": "image", "video": "video", "audio": "audio"}
#: the reachability probe's limit
CHECK_TIMEOUT = 5.0
#: cancelling a task must work even after the call's deadline passed
CANCEL_TIMEOUT = (5.0, 10.0)


class _Transient(Exception):
    """A call that may be repeated (network trouble, 429/5xx)."""


class _Refused(_Transient):
    """The connection was refused, or the server answered 429/5xx: it surely did not take the request."""


class _CodeError(Exception):
    """A non-zero envelope code (or an HTTP status other than 200 that is not transient)."""

    def __init__(self, code: int, msg: str, data: Any = None) -> None:
        self.code, self.msg, self.data = code, msg, data
        meaning = CODES.get(code, "unknown code")
        super().__init__(f"RunningHub code {code} ({meaning})" + (f": {msg}" if msg and msg.lower() != meaning else ""))


class RunningHubExecutor(Executor):
    """Runs workflows and AI apps on RunningHub (v1 OpenAPI), blocking, thread-safe."""

    #: the platform places tasks on its machines itself: grouping them by model would only delay them
    places_its_own_jobs = True

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULTS.runninghub_timeout,
        retry_count: int = DEFAULTS.runninghub_retry_count,
        concurrency: int = DEFAULTS.runninghub_concurrency,
        poll_interval: float = DEFAULTS.runninghub_poll_interval,
        queue_backoff: float = 5.0,
        instance_type: str | None = None,
        webhook_url: str | None = None,
        request_timeout: tuple[float, float] = (10.0, 60.0),
        timings: Timings = TIMINGS,
    ) -> None:
        if not api_key:
            raise ConfigError("RunningHub needs an API key (runninghub_api_key or RUNNINGHUB_API_KEY)")
        url = check_url(base_url, "RunningHub")
        self.base_url, self.display_url = url.base, url.display
        self.name = f"runninghub:{url.host}"
        self._key = api_key
        self._redact = Redactor([api_key])
        self.timeout = timeout
        self.retry_count = retry_count
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.queue_backoff = queue_backoff
        self.instance_type = instance_type or os.environ.get("RUNNINGHUB_INSTANCE_TYPE") or None
        self.webhook_url = webhook_url
        self.request_timeout = request_timeout
        self.timings = timings  # the pauses between retries (``retry_first`` doubling up to ``retry_max``)
        self.session = requests.Session()
        self.session.trust_env = True
        self.session.mount("https://", HTTPAdapter(pool_maxsize=max(4, concurrency * 2)))
        self.session.mount("http://", HTTPAdapter(pool_maxsize=max(4, concurrency * 2)))
        self._files = requests.Session()  # output CDN links: a session that never holds a credential
        self._slots = threading.BoundedSemaphore(concurrency)  # tasks one key may run at once
        self._fetched: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RunningHubExecutor({self.display_url!r})"

    # -- the envelope ---------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any] | None = None, *, files: Any = None, key_field: str = "apiKey",
              deadline: float | None = None, timeout: tuple[float, float] | None = None) -> Any:
        """One call; returns ``data`` of a code-0 envelope, raises ``_CodeError`` / ``_Transient`` otherwise."""
        payload = {key_field: self._key, **(body or {})}
        connect, read = timeout or self.request_timeout
        read = read_timeout(read, deadline, time.monotonic())
        kw: dict[str, Any] = {"data": payload, "files": files} if files is not None else {"json": payload}
        try:
            r = self.session.post(self.base_url + path, timeout=(min(connect, read), read), allow_redirects=False, **kw)
        except Exception as exc:
            cause = cause_of(exc)
            if cause is None:
                raise
            unsent = _Refused if cause is REFUSED else _Transient  # refused: the server surely did not take it
            raise unsent(f"{path}: {cause.reason}") from scrub_chain(exc, self._redact)
        if r.status_code == 429 or r.status_code >= 500:
            raise _Refused(f"{path}: HTTP {r.status_code}")
        if r.status_code != 200:
            raise _CodeError(r.status_code, f"HTTP {r.status_code} on {path}")
        code, env = self._envelope(r.content, path)
        if code != 0:
            raise _CodeError(code, self._redact.excerpt(str(env.get("msg") or "")), env.get("data"))
        return env.get("data")

    def _envelope(self, content: bytes, path: str) -> tuple[int, dict[str, Any]]:
        """(code, envelope) of an answer; one that is not a JSON envelope may be a proxy's hiccup: transient."""
        try:
            env = json.loads(content)
            return int(env.get("code", -1)), env
        except (ValueError, AttributeError, TypeError) as exc:
            raise _Transient(f"{path}: answer is not a JSON envelope") from scrub_chain(exc, self._redact)

    def _post_retrying(self, path: str, body: dict[str, Any] | None = None, *, deadline: Deadline | None = None,
                       **kw: Any) -> Any:
        """A call that is safe to repeat (status, outputs, uploads): retried ``retry_count`` times on transient trouble."""
        for attempt in range(self.retry_count + 1):
            try:
                return self._post(path, body, deadline=deadline.at if deadline else None, **kw)
            except _Transient:
                if attempt >= self.retry_count or (deadline is not None and deadline.passed()):
                    raise
            pause = self._backoff(attempt)
            if deadline is not None:
                deadline.sleep(pause)
            else:
                time.sleep(pause)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        """The pause before sending a call again after ``attempt`` transient failures."""
        return min(self.timings.retry_max, self.timings.retry_first * 2**attempt)

    def _error(self, exc: Exception, doing: str) -> BackendError:
        """The package's error for a failed call (what ``check``, ``prepare`` and ``download`` raise)."""
        if isinstance(exc, _CodeError) and exc.code in AUTH_CODES:
            return AuthError(f"{self.name}: {doing}: {exc}; set RUNNINGHUB_API_KEY or backends[].api_key",
                             backend=self.name)
        transient = not isinstance(exc, _CodeError) or exc.code in QUEUE_FULL
        return BackendError(f"{self.name}: {doing}: {self._redact(str(exc))}", transient=transient, backend=self.name)

    # -- checks --------------------------------------------------------------------------
    def check(self) -> None:
        """Ask for the key's account status: one call proves the host answers and the key is valid."""
        try:
            self._post("/uc/openapi/accountStatus", {}, key_field="apikey", timeout=(CHECK_TIMEOUT, CHECK_TIMEOUT))
        except (_Transient, _CodeError) as exc:
            err = self._error(exc, "checking the account")
            if isinstance(err, AuthError):
                raise err from exc
            raise BackendError(f"{err}; is RunningHub reachable at {self.display_url}? set runninghub_url or "
                               "backends[].url", transient=err.transient, backend=self.name) from exc

    def prepare(self, workflow: Workflow) -> None:
        """Fetch the API JSON of a workflow known only by id, so its DSL parameters are known."""
        try:
            self._fetch_nodes(workflow)
        except (_Transient, _CodeError) as exc:
            raise self._error(exc, "fetching the workflow") from exc

    def _fetch_nodes(self, workflow: Workflow, deadline: Deadline | None = None) -> None:
        if not workflow.nodes_pending:
            return
        wid = _ref(workflow).workflow_id
        assert wid is not None
        with self._lock:
            nodes = self._fetched.get(wid)
        if nodes is None:
            data = self._post_retrying("/api/openapi/getJsonApiFormat", {"workflowId": wid}, deadline=deadline)
            prompt = data.get("prompt") if isinstance(data, dict) else None
            try:
                nodes = json.loads(prompt) if isinstance(prompt, str) else dict(prompt or {})
            except (ValueError, TypeError) as exc:
                raise WorkflowError(f"runninghub:{wid}: the workflow JSON RunningHub returned does not parse") \
                    from scrub_chain(exc, self._redact)
            if not isinstance(nodes, dict):
                raise WorkflowError(f"runninghub:{wid}: the workflow JSON RunningHub returned is not an object")
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
        """Run one task; ``timeout=None`` means this executor's own ``timeout`` (never unbounded)."""
        deadline = Deadline(timeout if timeout is not None else self.timeout, cancel)
        ref = _ref(workflow)
        webapp = ref.webapp_id
        if not webapp and not ref.workflow_id:
            raise WorkflowError(f"{workflow.source}: a RunningHub workflow file needs \"_workflow_id\" (or \"_webapp_id\")")
        extras: dict[str, Any] = {"backend": self.name}
        try:
            if not webapp:
                self._fetch_nodes(workflow, deadline)
        except (_CodeError, _Transient) as exc:
            return self._failed(self._failure(exc, "fetching the workflow"), deadline, extras)
        node_info, bound_values, seeds, send_workflow = self._node_info(workflow, params or {}, bool(webapp))
        extras.update(params=bound_values, seeds=seeds)
        with self._slots:
            try:
                self._upload_all(node_info, deadline)
                task_id = self._create(workflow, node_info, send_workflow, webapp, deadline)
            except Stop as stop:
                return self._failed(stop.failure, deadline, extras)
            except (_CodeError, _Transient) as exc:
                return self._failed(self._failure(exc, "creating the task"), deadline, extras)
            extras["prompt_id"] = task_id
            try:
                result = self._await(task_id, workflow, deadline)
            except Stop as stop:
                return self._failed(stop.failure, deadline, extras)
            except KeyboardInterrupt:
                self._cancel(task_id)
                raise
        result.duration, result.prompt_id = deadline.elapsed(), task_id
        result.backend, result.params, result.seeds = self.name, bound_values, seeds
        if result.failure is not None:
            result.msg = self._redact.failure(result.failure).message
        return result

    def _failed(self, failure: Failure, deadline: Deadline, extras: dict[str, Any]) -> ExecuteResult:
        return ExecuteResult.failed(self._redact.failure(failure), duration=deadline.elapsed(), **extras)

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
        send = bound.prompt if not _ref(workflow).fetched and workflow.nodes else None
        return info, dict(bound.values), bound.seeds, send

    def _upload_all(self, node_info: list[dict[str, Any]], deadline: Deadline) -> None:
        done: dict[int, str] = {}
        for entry in node_info:
            up: PendingUpload | None = entry.pop("_upload")
            if up is None:
                continue
            if id(up) not in done:
                done[id(up)] = self._upload(up, deadline)
            entry["fieldValue"] = done[id(up)]

    def _upload(self, up: PendingUpload, deadline: Deadline) -> str:
        src = up.source
        if src.kind == "server":
            return src.filename  # already on RunningHub, e.g. "api/abc.png"
        data = read_upload(up)
        file_type = UPLOAD_TYPES.get(kind_of(src.filename), "input")
        try:
            data_out = self._post_retrying("/task/openapi/upload", {"fileType": file_type},
                                           files={"file": (src.filename, data)}, deadline=deadline)
        except _CodeError as exc:
            raise Stop(self._failure(exc, f"uploading {up.name}")) from exc
        name = data_out.get("fileName") if isinstance(data_out, dict) else None
        if not name:
            raise Stop(Failure("upload", f"RunningHub gave no fileName for {up.name}"))
        return str(name)

    def _create(self, workflow: Workflow, node_info: list[dict[str, Any]], send_workflow: dict[str, Any] | None,
                webapp: Any, deadline: Deadline) -> str:
        body: dict[str, Any] = {"nodeInfoList": node_info}
        if webapp:
            path, body["webappId"] = "/task/openapi/ai-app/run", str(webapp)
        else:
            path, body["workflowId"] = "/task/openapi/create", _ref(workflow).workflow_id
            if send_workflow is not None:
                body["workflow"] = json.dumps(send_workflow, ensure_ascii=False)
        if self.instance_type:
            body["instanceType"] = self.instance_type
        if self.webhook_url:
            body["webhookUrl"] = self.webhook_url
        attempt = 0
        while True:
            deadline.check("no task was created")
            try:
                data = self._post(path, body, deadline=deadline.at)
                task_id = data.get("taskId") if isinstance(data, dict) else None
                if task_id in (None, ""):
                    raise Stop(Failure("remote", "RunningHub accepted the task but gave no taskId"))
                logger.debug("created task %s", task_id)
                return str(task_id)
            except _CodeError as exc:
                if exc.code not in QUEUE_FULL:
                    raise
                wait = self.queue_backoff * (1.5 ** min(attempt, 6)) * (6 if exc.code == 415 else 1)
                logger.info("RunningHub queue full (%s); retrying create in %.1fs", exc.code, wait)
            except _Refused:
                if attempt >= self.retry_count:
                    raise
                wait = self._backoff(attempt)
            except _Transient as exc:
                # The request may have reached RunningHub: repeating it could start a second, billed task.
                late = " (the call's time ran out)" if deadline.passed() else ""
                raise Stop(Failure("uncertain", f"creating the task: {exc}{late}; it may or may not exist on "
                                   "RunningHub, so it was not sent again")) from exc
            attempt += 1
            deadline.sleep(wait)

    def _await(self, task_id: str, workflow: Workflow, deadline: Deadline) -> ExecuteResult:
        failed_polls = 0
        while True:
            self._pause(deadline, self.poll_interval, task_id)
            try:
                status = self._post("/task/openapi/status", {"taskId": task_id}, deadline=deadline.at)
                failed_polls = 0
            except (_Transient, _CodeError) as exc:
                failed_polls += 1
                if failed_polls > self.retry_count and not deadline.passed():
                    return ExecuteResult.failed(self._failure(exc, f"polling task {task_id}"), prompt_id=task_id)
                continue
            status = str(status or "").upper()
            if status in ("SUCCESS", "FAILED"):
                return self._outputs(task_id, workflow, deadline)
            if status not in ("QUEUED", "RUNNING", "CREATE"):
                logger.debug("task %s: unexpected status %r, still polling", task_id, status[:40])

    def _pause(self, deadline: Deadline, seconds: float, task_id: str) -> None:
        """Sleep, then stop (cancelling the task) if the call ran out of time or was cancelled."""
        deadline.sleep(seconds)
        try:
            deadline.check(f"task {task_id} cancelled")
        except Stop:
            self._cancel(task_id)
            raise

    def _outputs(self, task_id: str, workflow: Workflow, deadline: Deadline) -> ExecuteResult:
        for _ in range(max(3, self.retry_count + 1)):
            try:
                data = self._post_retrying("/task/openapi/outputs", {"taskId": task_id}, deadline=deadline)
            except _CodeError as exc:
                if exc.code == 805:
                    return ExecuteResult.failed(_failed_reason(exc.data, task_id), prompt_id=task_id)
                if exc.code in (804, 813):
                    self._pause(deadline, min(self.poll_interval, 1.0), task_id)
                    continue
                return ExecuteResult.failed(self._failure(exc, f"reading outputs of task {task_id}"), prompt_id=task_id)
            except _Transient as exc:
                return ExecuteResult.failed(self._failure(exc, f"reading outputs of task {task_id}"), prompt_id=task_id)
            if data is None:  # finished but outputs not ready yet
                self._pause(deadline, min(self.poll_interval, 1.0), task_id)
                continue
            if not isinstance(data, list):
                return ExecuteResult.failed(Failure("remote", f"task {task_id}: outputs are not a list"), prompt_id=task_id)
            return self._result(task_id, workflow, data)
        return ExecuteResult.failed(Failure("remote", f"task {task_id} finished but its outputs never came", transient=True),
                                    prompt_id=task_id)

    def _result(self, task_id: str, workflow: Workflow, items: list[Any]) -> ExecuteResult:
        result = ExecuteResult(status="completed", prompt_id=task_id, outputs={"runninghub": items})
        cost_time, coins = 0.0, 0.0
        for item in items:
            if not isinstance(item, Mapping):
                continue
            url = item.get("fileUrl")
            url = url if isinstance(url, str) else ""
            nid = str(item.get("nodeId") or "")
            var = workflow.output_names.get(nid, nid or "output")
            text = item.get("text")
            if isinstance(text, str) and not url:
                result.add_text(var, text)
                continue
            if not url.startswith(("http://", "https://")):
                continue  # nothing to fetch: no file to promise
            filename = os.path.basename(urlparse(url).path) or f"output.{item.get('fileType', 'bin')}"
            result.add_file(OutputFile(url=url, filename=filename, kind=kind_of(filename, str(item.get("fileType", ""))),
                                       var=var, node_id=nid))
            cost_time = max(cost_time, _num(item.get("taskCostTime")))
            coins = max(coins, _num(item.get("consumeCoins")))
        result.cost = {"taskCostTime": cost_time, "consumeCoins": coins}
        missing = missing_outputs(result, workflow)
        if missing:
            result.status, result.failure, result.msg = "failed", missing, missing.message
        return result

    def _cancel(self, task_id: str) -> None:
        try:
            self._post("/task/openapi/cancel", {"taskId": task_id}, timeout=CANCEL_TIMEOUT)
            logger.info("cancelled task %s", task_id)
        except (_CodeError, _Transient) as exc:
            logger.warning("could not cancel task %s: %s", task_id, exc)

    def _failure(self, exc: Exception, doing: str) -> Failure:
        if isinstance(exc, _CodeError):
            return Failure("auth" if exc.code in AUTH_CODES else "remote", f"{doing}: {exc}",
                           transient=exc.code in QUEUE_FULL, code=exc.code)
        return Failure("connection", f"{doing}: {exc}", transient=True)

    def download(self, file: OutputFile, dest: Path) -> Saved:
        """Output URLs are public CDN links: fetched without the API key (which is never in a URL)."""
        host = urlparse(file.url).hostname or "?"
        redact = Redactor([self._key, *url_secrets(file.url)])  # a CDN link's query may be a signed token
        with mapped(f"downloading {file.filename}", host, redact):
            r = self._files.get(file.url, stream=True, timeout=self.request_timeout)
        with r:
            if r.status_code != 200:
                raise http_status_error(host, f"downloading {file.filename}", r.status_code, "", redact)
            return save_stream(self._chunks(r, host, file.filename, redact), dest)

    @staticmethod
    def _chunks(r: requests.Response, host: str, filename: str, redact: Redactor) -> Iterator[bytes]:
        with mapped(f"downloading {filename}: interrupted", host, redact):
            yield from r.iter_content(1 << 20)

    def close(self) -> None:
        self.session.close()
        self._files.close()


def _ref(workflow: Workflow) -> RemoteRef:
    """Where on RunningHub ``workflow`` lives (no ids at all for one that is not RunningHub's: ``execute`` refuses it)."""
    return workflow.remote or RemoteRef()


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def _failed_reason(data: Any, task_id: str) -> Failure:
    reason_ = data.get("failedReason") if isinstance(data, dict) else None
    if not isinstance(reason_, dict):
        return Failure("execution", f"task {task_id} failed (RunningHub gave no reason)", code=805)
    tb = reason_.get("traceback")
    if isinstance(tb, str):
        try:
            parsed = json.loads(tb)
            tb = "".join(map(str, parsed)) if isinstance(parsed, list) else str(parsed)
        except ValueError:
            pass
    return node_failure({**reason_, "traceback": tb}, type_key="node_name", code=805)
