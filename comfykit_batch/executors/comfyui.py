"""Executors for a ComfyUI server: the shared job lifecycle, and the HTTP-polling one.

A job is: bind parameters, upload inputs, submit under a prompt id we chose,
wait, read the outputs from ``/history`` (the only source of truth: cached
prompts and dropped sockets included). Waiting is what differs between
transports: ``HttpExecutor`` polls, ``WebSocketExecutor`` listens.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from ..errors import MissingNodesError
from ..fetch import upload_bytes
from ..files import Saved, save_stream
from ..result import ExecuteResult, Failure, OutputFile, kind_of
from ..workflow import PendingUpload, Workflow
from .base import Executor, ProgressCallback
from .comfyui_client import ComfyUIClient, PromptRejected, TransportError

logger = logging.getLogger("comfykit_batch.comfyui")

JsonDict = dict[str, Any]

#: how long a missing prompt must stay missing from queue and history before it counts as lost
LOST_CHECK_INTERVAL = 5.0
#: consecutive failed polls tolerated before the server counts as gone
MAX_POLL_FAILURES = 8


class _Stop(Exception):
    """Waiting ended without a history entry (timeout, cancel, prompt lost)."""

    def __init__(self, failure: Failure) -> None:
        self.failure = failure


class ComfyUIExecutor(Executor):
    """What both ComfyUI transports share; subclasses implement ``_wait``."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        cookies: str | Mapping[str, str] | None = None,
        concurrency: int = 2,
        poll_max: float = 1.0,
    ) -> None:
        self.client = ComfyUIClient(url, api_key=api_key, cookies=cookies, pool_size=max(4, concurrency * 2 + 2))
        self.name = self.client.display_url
        self.concurrency = concurrency
        self.poll_max = poll_max
        self.client_id = uuid.uuid4().hex
        self._uploaded: dict[str, str] = {}  # sha256 of the bytes -> server file name
        self._upload_lock = threading.Lock()

    # -- checks -----------------------------------------------------------------
    def prepare(self, workflow: Workflow) -> None:
        info = self.client.object_info()
        missing = {cls: ids for cls, ids in workflow.node_classes().items() if cls not in info}
        if missing:
            raise MissingNodesError(missing, self.name)
        workflow.refine_types(info)

    # -- one job ----------------------------------------------------------------
    def execute(
        self,
        workflow: Workflow,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> ExecuteResult:
        bound = workflow.bind(params)
        started = time.monotonic()
        deadline = started + timeout if timeout else None
        prompt_id = str(uuid.uuid4())
        extras: JsonDict = {"prompt_id": prompt_id, "backend": self.name, "seeds": bound.seeds}
        submitted = False
        try:
            names = {up.name: self._upload(up) for up in bound.uploads}
            prompt = bound.with_uploads(names)
            extras["params"] = dict(bound.values)
            self._listen(prompt_id, on_progress)
            try:
                self.client.submit(prompt, prompt_id=prompt_id, client_id=self.client_id)
                submitted = True
                logger.debug("submitted %s to %s", prompt_id, self.name)
                entry = self._wait(prompt_id, deadline, cancel, on_progress)
            finally:
                self._unlisten(prompt_id)
        except PromptRejected as exc:
            return ExecuteResult.failed(Failure("rejected", f"prompt rejected: {exc}"), **extras)
        except _Stop as stop:
            if submitted and stop.failure.kind in ("timeout", "cancelled"):
                self._abort(prompt_id)
            return ExecuteResult.failed(stop.failure, duration=time.monotonic() - started, **extras)
        except TransportError as exc:
            return ExecuteResult.failed(Failure("connection", f"{self.name}: {exc}", transient=True), **extras)
        except KeyboardInterrupt:
            if submitted:
                self._abort(prompt_id)
            raise
        result = self._collect(entry, workflow, prompt_id)
        result.duration = time.monotonic() - started
        result.backend, result.seeds = self.name, bound.seeds
        result.params = extras.get("params", {})
        return result

    def _abort(self, prompt_id: str) -> None:
        try:
            self.client.interrupt(prompt_id)
            logger.info("interrupted %s on %s", prompt_id, self.name)
        except TransportError as exc:
            logger.warning("could not interrupt %s on %s: %s", prompt_id, self.name, exc)

    def _upload(self, up: PendingUpload) -> str:
        src = up.source
        if src.kind == "server":
            return src.filename
        try:
            data = upload_bytes(src)
        except requests.RequestException as exc:  # a download failure is this input's fault
            raise TransportError(f"could not download {up.name} from {src.describe()}: {type(exc).__name__}") from None
        digest = hashlib.sha256(data).hexdigest()
        with self._upload_lock:
            cached = self._uploaded.get(digest)
        if cached:
            return cached
        stem, ext = os.path.splitext(os.path.basename(src.filename) or up.name)
        # Content-addressed name: the same bytes map to the same server file, never to "x (1).png".
        name = self.client.upload(f"{stem[:60]}-{digest[:12]}{ext}", data, overwrite=True)
        with self._upload_lock:
            self._uploaded[digest] = name
        return name

    # -- reading outputs ------------------------------------------------------------
    def _collect(self, entry: JsonDict, workflow: Workflow, prompt_id: str) -> ExecuteResult:
        outputs = entry.get("outputs") or {}
        result = ExecuteResult(status="completed", prompt_id=prompt_id, outputs=outputs)
        for nid, out in outputs.items():
            var = workflow.output_names.get(str(nid), str(nid))
            if not isinstance(out, Mapping):
                continue
            for key, items in out.items():
                if not isinstance(items, list):
                    continue
                for item in items:
                    if isinstance(item, str):
                        result.add_text(var, item)
                    elif isinstance(item, Mapping) and isinstance(item.get("filename"), str):
                        fname, sub, typ = item["filename"], str(item.get("subfolder") or ""), str(item.get("type") or "output")
                        result.add_file(
                            OutputFile(
                                url=self.client.view_url(fname, sub, typ), filename=fname,
                                kind=kind_of(fname, key), var=var, node_id=str(nid), subfolder=sub, type=typ,
                            )
                        )
        failure = failure_from_status(entry.get("status") or {})
        if failure:
            result.status, result.failure, result.msg = "failed", failure, failure.message
        return result

    def download(self, file: OutputFile, dest: Path) -> Saved:
        return save_stream(self.client.stream(file.url), dest)

    # -- waiting (transport-specific) --------------------------------------------------
    def _listen(self, prompt_id: str, on_progress: ProgressCallback | None = None) -> None:
        """Called before submit, so no event of this prompt can be missed."""

    def _unlisten(self, prompt_id: str) -> None:
        """Called when the job is over."""

    def _wait(
        self, prompt_id: str, deadline: float | None, cancel: threading.Event | None,
        on_progress: ProgressCallback | None,
    ) -> JsonDict:
        raise NotImplementedError

    def _check_stop(self, deadline: float | None, cancel: threading.Event | None, started: float) -> None:
        if cancel is not None and cancel.is_set():
            raise _Stop(Failure("cancelled", "cancelled by the caller; prompt interrupted", transient=True))
        if deadline is not None and time.monotonic() >= deadline:
            raise _Stop(Failure("timeout", f"timeout after {time.monotonic() - started:.1f}s; prompt interrupted", transient=True))

    def _sleep(self, seconds: float, deadline: float | None, cancel: threading.Event | None) -> None:
        if deadline is not None:
            seconds = max(0.0, min(seconds, deadline - time.monotonic()))
        if cancel is not None:
            cancel.wait(seconds)
        else:
            time.sleep(seconds)

    def _poll_history(self, prompt_id: str, since: float, state: JsonDict) -> JsonDict | None:
        """One history look-up that also notices a prompt the server lost (restart, queue cleared)."""
        try:
            entry = self.client.history(prompt_id)
            state["failures"] = 0
        except TransportError as exc:
            state["failures"] = state.get("failures", 0) + 1
            if state["failures"] >= MAX_POLL_FAILURES:
                raise _Stop(Failure("connection", f"{self.name}: lost contact while waiting: {exc}", transient=True)) from None
            return None
        if entry is not None:
            return entry
        now = time.monotonic()
        if now - state.get("queue_checked", since) >= LOST_CHECK_INTERVAL:
            state["queue_checked"] = now
            if not self._in_queue(prompt_id) and self.client.history(prompt_id) is None:
                raise _Stop(Failure("server", f"{self.name}: prompt vanished from queue and history (restarted?)", transient=True))
        return None

    def _in_queue(self, prompt_id: str) -> bool:
        q = self.client.queue()
        for item in (q.get("queue_running") or []) + (q.get("queue_pending") or []):
            if isinstance(item, list) and len(item) > 1 and item[1] == prompt_id:
                return True
        return False

    def close(self) -> None:
        self.client.close()


def failure_from_status(status: Mapping[str, Any]) -> Failure | None:
    """A ``Failure`` from a history entry's status, or None when it succeeded."""
    if status.get("status_str", "success") == "success" and status.get("completed", True):
        return None
    for kind, data in status.get("messages") or []:
        if kind == "execution_error":
            return execution_failure(data)
        if kind == "execution_interrupted":
            return Failure(
                "interrupted", f"interrupted at node {data.get('node_id')} ({data.get('node_type')})",
                transient=True, node_id=_str(data.get("node_id")), node_type=data.get("node_type"),
            )
    return Failure("execution", f"execution ended with status {status.get('status_str')!r}")


def execution_failure(data: Mapping[str, Any]) -> Failure:
    tb = data.get("traceback")
    return Failure(
        "execution",
        f"node {data.get('node_id')} ({data.get('node_type')}) raised "
        f"{data.get('exception_type')}: {str(data.get('exception_message', '')).strip()}",
        node_id=_str(data.get("node_id")),
        node_type=data.get("node_type"),
        exception_type=data.get("exception_type"),
        traceback="".join(tb) if isinstance(tb, list) else tb,
    )


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


#: HTTP polling: wait this fraction of the time already waited, within [POLL_MIN, poll_max]
POLL_FRACTION = 0.25
POLL_MIN = 0.01


class HttpExecutor(ComfyUIExecutor):
    """Waits by polling ``/history``; the interval grows with the time already waited.

    Polling at a quarter of the elapsed time (10 ms to ``poll_max``) bounds the added
    latency to about 25% of the job while a 100 ms job costs ~9 requests, not ~17 as
    at 10% (each poll is ~1 ms of client CPU). In a batch the next prompt already
    waits in the server's queue, so this latency never idles the server.
    """

    def _wait(self, prompt_id, deadline, cancel, on_progress):  # type: ignore[no-untyped-def]
        started = time.monotonic()
        state: JsonDict = {}
        while True:
            self._check_stop(deadline, cancel, started)
            entry = self._poll_history(prompt_id, started, state)
            if entry is not None:
                return entry
            elapsed = time.monotonic() - started
            self._sleep(min(self.poll_max, max(POLL_MIN, elapsed * POLL_FRACTION)), deadline, cancel)
