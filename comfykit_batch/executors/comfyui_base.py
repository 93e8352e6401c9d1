"""What both ComfyUI executors share: the job lifecycle around a transport-specific wait.

A job is: learn the server's input types (once per workflow), bind parameters
against them, upload inputs, submit under a prompt id we chose, wait, read the
outputs from ``/history`` (the only source of truth: cached prompts and
dropped sockets included). Waiting is what differs between transports:
``HttpExecutor`` polls, ``WebSocketExecutor`` listens.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypedDict

from ..defaults import DEFAULTS, TIMINGS, Timings
from ..errors import AuthError, BackendError, MissingNodesError
from ..files import Saved, save_stream
from ..models import ModelInput, learned_inputs, static_inputs
from ..result import ExecuteResult, Failure, OutputFile, failure_of, kind_of
from ..workflow import BoundPrompt, PendingUpload, Workflow
from .base import Executor, InputTypes, ProgressCallback
from .comfyui_client import ComfyUIClient, PromptRejected
from .lifecycle import Deadline, Stop, missing_outputs, node_failure, read_upload
from .shared_output import SharedOutput
from .transport import mapped

logger = logging.getLogger("comfykit_batch.comfyui")

JsonDict = dict[str, Any]

#: consecutive failed polls tolerated before the server counts as gone
MAX_POLL_FAILURES = 8


class ComfyUIOptions(TypedDict, total=False):
    """The keyword arguments every ComfyUI executor takes (subclasses forward them unchanged)."""

    api_key: str | None
    cookies: str | Mapping[str, str] | None
    concurrency: int
    poll_max: float
    server_output_dir: str | os.PathLike[str] | None
    timings: Timings


class ComfyUIExecutor(Executor):
    """What both ComfyUI transports share; subclasses implement ``_wait``."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        cookies: str | Mapping[str, str] | None = None,
        concurrency: int = DEFAULTS.concurrency,
        poll_max: float = 1.0,
        server_output_dir: str | os.PathLike[str] | None = None,
        timings: Timings = TIMINGS,
    ) -> None:
        self.client = ComfyUIClient(url, api_key=api_key, cookies=cookies, pool_size=max(4, concurrency * 2 + 2))
        self.name = self.client.display_url
        #: the server's output folder as this machine sees it: outputs are read there, not downloaded
        self.shared = SharedOutput(server_output_dir, self.name) if server_output_dir is not None else None
        self.concurrency = concurrency
        self.poll_max = poll_max
        #: every wait of a job (``Timings``): a test passes short ones instead of patching constants
        self.timings = timings
        self.client_id = uuid.uuid4().hex
        self._uploaded: dict[str, str] = {}  # sha256 of the bytes -> server file name
        self._upload_lock = threading.Lock()
        self._types: dict[str, InputTypes] = {}  # workflow fingerprint -> this server's input types
        self._types_lock = threading.Lock()
        self._model_inputs: dict[str, frozenset[ModelInput]] = {}  # workflow fingerprint -> its model inputs here

    # -- checks -----------------------------------------------------------------
    def check(self) -> None:
        try:
            self.client.system_stats()
        except AuthError as exc:
            raise AuthError(f"{exc}; set api_key/COMFYUI_API_KEY or cookies/COMFYUI_COOKIES for {self.name}",
                            backend=self.name) from exc
        except BackendError as exc:
            raise BackendError(f"{exc}; is ComfyUI running at {self.name}? set COMFYUI_URL or backends[].url",
                               transient=exc.transient, backend=self.name) from exc
        if self.shared is not None:
            self.shared.check(self._served)

    def prepare(self, workflow: Workflow) -> None:
        info = self.client.object_info()
        missing = {cls: ids for cls, ids in workflow.node_classes().items() if cls not in info}
        if missing:
            raise MissingNodesError(missing, self.name)
        self.types_for(workflow)

    def types_for(self, workflow: Workflow) -> InputTypes:
        """The server's types, learned once per workflow; a marker on an input the server does not list raises
        ``ParameterError`` here, so ``prepare`` and every job refuse it before anything is submitted."""
        key = workflow.fingerprint()
        with self._types_lock:
            known = self._types.get(key)
        if known is not None:
            return known
        info = self.client.object_info()
        with mapped("reading input types", self.name, self.client.redact):  # /object_info is the server's: odd shapes are its fault
            types: InputTypes = MappingProxyType(workflow.input_types(info))
        for warning in workflow.check_server_inputs(info, self.name):  # raises for a marker the server would drop
            logger.warning("%s", warning)
        with self._types_lock:
            self._types[key] = types
        return types

    def model_inputs(self, workflow: Workflow) -> frozenset[ModelInput]:
        """The workflow's own model inputs plus those this server's model folders reveal (a custom loader's combo
        of files); learned once per workflow, since scheduling asks for every job's key."""
        key = workflow.fingerprint()
        with self._types_lock:
            known = self._model_inputs.get(key)
        if known is not None:
            return known
        found = static_inputs(workflow.nodes) | self._learned_inputs(workflow)
        with self._types_lock:
            self._model_inputs[key] = found
        return found

    def _learned_inputs(self, workflow: Workflow) -> frozenset[ModelInput]:
        """What ``/models`` and ``/object_info`` say; a server that lists no folders is not asked for its types."""
        folders = self.client.model_folders()
        if not folders:
            return frozenset()
        info = self.client.object_info()
        with mapped("reading model inputs", self.name, self.client.redact):  # /object_info is the server's: odd shapes are its fault
            return learned_inputs(workflow.nodes, info, folders)

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
        deadline = Deadline(timeout, cancel)
        prompt_id = str(uuid.uuid4())
        extras: JsonDict = {"prompt_id": prompt_id, "backend": self.name}
        try:
            bound = self._bind(workflow, params)
        except BackendError as exc:  # could not learn the types: the server's fault, not the job's
            return self._failed(Failure("connection", str(exc), transient=exc.transient), deadline, extras)
        extras["seeds"] = bound.seeds
        submitted = False
        try:
            names = {up.name: self._upload(up) for up in bound.uploads}
            prompt = bound.with_uploads(names)
            extras["params"] = dict(bound.values)
            self._listen(prompt_id, workflow, on_progress)
            try:
                deadline.check("nothing was submitted")
                submitted = True  # from here on the server may hold it, even if the answer is lost
                self.client.submit(prompt, prompt_id=prompt_id, client_id=self.client_id, deadline=deadline.at)
                logger.debug("submitted %s to %s", prompt_id, self.name)
                entry = self._wait(prompt_id, deadline, on_progress)
            finally:
                self._unlisten(prompt_id)
        except PromptRejected as exc:
            if exc.queued:
                self._abort(prompt_id)  # a 200 with node_errors: the valid branches are queued; stop them
            failure = Failure("validation" if exc.queued else "rejected", f"prompt rejected: {exc}")
            return self._failed(failure, deadline, extras)
        except Stop as stop:
            if submitted and stop.failure.kind in ("timeout", "cancelled"):
                self._abort(prompt_id)
            return self._failed(stop.failure, deadline, extras)
        except BackendError as exc:
            return self._failed(self._transport_failure(exc, deadline, submitted, prompt_id), deadline, extras)
        except KeyboardInterrupt:
            if submitted:
                self._abort(prompt_id)
            raise
        result = self._collect(entry, workflow, prompt_id)
        result.duration = deadline.elapsed()
        result.backend, result.seeds, result.params = self.name, bound.seeds, extras.get("params", {})
        return result

    def _bind(self, workflow: Workflow, params: Mapping[str, Any] | None) -> BoundPrompt:
        """Bind against this server's types (learned once); bad values raise ``ParameterError`` here."""
        workflow.check_params(params or {})  # names first: a typo costs no request
        return workflow.bind(params, types=self.types_for(workflow) if workflow.nodes else None)

    def _transport_failure(self, exc: BackendError, deadline: Deadline, submitted: bool, prompt_id: str) -> Failure:
        """A request that failed: a timeout if the call ran out of time, an auth or connection failure otherwise."""
        if deadline.passed():
            if submitted:
                self._abort(prompt_id)
            return Failure("timeout", f"timeout after {deadline.elapsed():.1f}s ({exc}); prompt interrupted",
                           transient=True)
        return failure_of(exc)

    def _failed(self, failure: Failure, deadline: Deadline, extras: JsonDict) -> ExecuteResult:
        return ExecuteResult.failed(self.client.redact.failure(failure), duration=deadline.elapsed(), **extras)

    def _abort(self, prompt_id: str) -> None:
        try:
            self.client.interrupt(prompt_id)
            logger.info("interrupted %s on %s", prompt_id, self.name)
        except BackendError as exc:
            logger.warning("could not interrupt %s on %s: %s", prompt_id, self.name, exc)

    def _upload(self, up: PendingUpload) -> str:
        src = up.source
        if src.kind == "server":
            return src.filename
        data = read_upload(up)
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
        outputs = outputs if isinstance(outputs, dict) else {}
        result = ExecuteResult(status="completed", prompt_id=prompt_id, outputs=outputs)
        for nid, out in outputs.items():
            if isinstance(out, Mapping):
                self._collect_node(result, str(nid), workflow.output_names.get(str(nid), str(nid)), out)
        status = entry.get("status")
        failure = failure_from_status(status if isinstance(status, Mapping) else {}) or missing_outputs(result, workflow)
        if failure:
            self.client.redact.failure(failure)  # a node's exception text may quote the request it was sent
            result.status, result.failure, result.msg = "failed", failure, failure.message
        return result

    def _collect_node(self, result: ExecuteResult, nid: str, var: str, out: Mapping[str, Any]) -> None:
        """Every text and file of one node's output; unknown keys are kept as files of kind "file"."""
        for key, items in out.items():
            if not isinstance(items, list):
                continue
            for item in items:
                if isinstance(item, str):
                    result.add_text(var, item)
                elif isinstance(item, Mapping) and isinstance(item.get("filename"), str):
                    fname, sub, typ = item["filename"], str(item.get("subfolder") or ""), str(item.get("type") or "output")
                    result.add_file(OutputFile(
                        url=self.client.view_url(fname, sub, typ), filename=fname, kind=kind_of(fname, str(key)),
                        var=var, node_id=nid, subfolder=sub, type=typ,
                    ))

    def download(self, file: OutputFile, dest: Path) -> Saved:
        chunks = self.shared.open(file, self._served) if self.shared is not None else None
        # the stream maps network errors (and the shared folder's read errors); the output disk's pass
        return save_stream(self.client.stream(file.url) if chunks is None else chunks, dest)

    def _served(self, name: str) -> bytes | None:
        """What the server's ``/view`` serves for ``name`` in its output folder (None: nothing)."""
        try:
            return b"".join(self.client.stream(self.client.view_url(name)))
        except BackendError as exc:
            if exc.transient or isinstance(exc, AuthError):
                raise
            return None  # a 404: not there

    # -- waiting (transport-specific) --------------------------------------------------
    def _listen(self, prompt_id: str, workflow: Workflow, on_progress: ProgressCallback | None = None) -> None:
        """Called before submit, so no event of this prompt can be missed."""

    def _unlisten(self, prompt_id: str) -> None:
        """Called when the job is over."""

    def _wait(self, prompt_id: str, deadline: Deadline, on_progress: ProgressCallback | None) -> JsonDict:
        raise NotImplementedError

    def _poll_history(self, prompt_id: str, deadline: Deadline, state: JsonDict) -> JsonDict | None:
        """One history look-up that also notices a prompt the server lost (restart, queue cleared)."""
        try:
            entry = self.client.history(prompt_id, deadline=deadline.at)
            state["failures"] = 0
        except AuthError:
            raise
        except BackendError as exc:
            state["failures"] = state.get("failures", 0) + 1
            if state["failures"] >= MAX_POLL_FAILURES:
                raise Stop(Failure("connection", f"lost contact while waiting: {exc}", transient=True)) from exc
            return None
        if entry is not None:
            return entry
        now = deadline.clock()
        if now - state.get("queue_checked", deadline.started) >= self.timings.lost_check:
            state["queue_checked"] = now
            if not self._in_queue(prompt_id, deadline) and self.client.history(prompt_id, deadline=deadline.at) is None:
                raise Stop(Failure("server", f"{self.name}: prompt vanished from queue and history (restarted?)",
                                   transient=True))
        return None

    def _in_queue(self, prompt_id: str, deadline: Deadline) -> bool:
        q = self.client.queue(deadline=deadline.at)
        running, pending = q.get("queue_running") or [], q.get("queue_pending") or []
        items = (running if isinstance(running, list) else []) + (pending if isinstance(pending, list) else [])
        return any(isinstance(item, list) and len(item) > 1 and item[1] == prompt_id for item in items)

    def close(self) -> None:
        self.client.close()


def failure_from_status(status: Mapping[str, Any]) -> Failure | None:
    """A ``Failure`` from a history entry's status, or None when it succeeded."""
    if status.get("status_str", "success") == "success" and status.get("completed", True):
        return None
    for kind, data in status_messages(status):
        if kind == "execution_error":
            return node_failure(data)
        if kind == "execution_interrupted":
            nid = data.get("node_id")
            return Failure("interrupted", f"interrupted at node {nid} ({data.get('node_type')})", transient=True,
                           node_id=None if nid is None else str(nid), node_type=_opt_str(data.get("node_type")))
    return Failure("execution", f"execution ended with status {status.get('status_str')!r}")


def status_messages(status: Any) -> Iterator[tuple[Any, Mapping[str, Any]]]:
    """The ``[kind, data]`` messages of a history entry's status, skipping any of another shape."""
    messages = status.get("messages") if isinstance(status, Mapping) else None
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, list) and len(message) == 2 and isinstance(message[1], Mapping):
            yield message[0], message[1]


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)
