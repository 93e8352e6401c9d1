"""What every executor's job lifecycle repeats: the deadline, cancelling, the shared failure shapes.

One ``Stop`` (waiting ended without an answer), one ``Deadline`` (time left,
and a sleep that wakes on cancel), one builder of "node N (T) raised E", one
reader of upload bytes, one check that declared outputs arrived. Executors
differ in how they talk to their server, not in these.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import FetchError
from ..fetch import upload_bytes
from ..result import ExecuteResult, Failure
from ..workflow import PendingUpload, Workflow


class Stop(Exception):  # noqa: N818 - not an error: the end of a wait
    """Waiting ended without an answer (timeout, cancel, lost prompt, bad upload): carries the failure."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Deadline:
    """One call's time limit and cancel event; ``None`` timeout means no limit."""

    def __init__(self, timeout: float | None, cancel: threading.Event | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.at = self.started + timeout if timeout else None
        self.cancel = cancel

    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float | None:
        return None if self.at is None else self.at - self.clock()

    def passed(self) -> bool:
        return self.at is not None and self.clock() >= self.at

    def check(self, what: str = "prompt interrupted") -> None:
        """Raise ``Stop`` when cancelled or out of time; ``what`` says what was done about the remote job."""
        if self.cancel is not None and self.cancel.is_set():
            raise Stop(Failure("cancelled", f"cancelled by the caller; {what}", transient=True))
        if self.passed():
            raise Stop(Failure("timeout", f"timeout after {self.elapsed():.1f}s; {what}", transient=True))

    def sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, never past the deadline, waking at once when cancelled."""
        left = self.left()
        if left is not None:
            seconds = min(seconds, left)
        if seconds <= 0:
            return
        if self.cancel is not None:
            self.cancel.wait(seconds)
        else:
            time.sleep(seconds)


def node_failure(data: Mapping[str, Any], *, type_key: str = "node_type", code: int | None = None) -> Failure:
    """``node N (T) raised E: message`` from an execution error (ComfyUI's, or RunningHub's failedReason)."""
    nid, ntype, etype = data.get("node_id"), data.get(type_key), data.get("exception_type")
    tb = data.get("traceback")
    return Failure(
        "execution",
        f"node {nid} ({ntype}) raised {etype}: {str(data.get('exception_message', '')).strip()}",
        node_id=None if nid is None else str(nid),
        node_type=None if ntype is None else str(ntype),
        exception_type=None if etype is None else str(etype),
        traceback="".join(map(str, tb)) if isinstance(tb, list) else tb if isinstance(tb, str) else None,
        code=code,
    )


def read_upload(up: PendingUpload) -> bytes:
    """The bytes of an upload value; a URL that cannot be fetched fails the job as ``upload``, not the backend."""
    try:
        return upload_bytes(up.source)
    except (FetchError, OSError) as exc:  # a URL's reason, or a local file's (its path is in describe())
        why = str(exc) if isinstance(exc, FetchError) else exc.strerror or type(exc).__name__
        raise Stop(Failure("upload", f"could not read {up.name} from {up.source.describe()}: {why}")) from exc


def missing_outputs(result: ExecuteResult, workflow: Workflow) -> Failure | None:
    """A failure naming each declared ``$output.NAME`` that produced neither a file nor a text."""
    produced = {f.node_id for f in result.files} | {
        nid for nid, var in workflow.output_names.items() if result.texts_by_var.get(var)}
    missing = [(nid, var) for nid, var in workflow.output_names.items() if nid not in produced]
    if not missing:
        return None
    listing = ", ".join(f"{var} (node {nid}, {workflow.nodes.get(nid, {}).get('class_type', '?')})" for nid, var in missing)
    nid = missing[0][0]
    return Failure("missing_output", f"declared output{'s' if len(missing) > 1 else ''} produced nothing: {listing}",
                   node_id=nid, node_type=workflow.nodes.get(nid, {}).get("class_type"))

