"""One job's index record: what ran, with which values, where, and what came of it.

Values that are URLs keep their scheme, host and path but never their query
(signed URLs carry tokens there); tracebacks keep only their tail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ...result import ExecuteResult
from ...uploads import redact_url
from ..spec.sweep import Job

TRACEBACK_TAIL = 2000


def redact_url_query(value: Any) -> Any:
    """An http(s) URL without credentials, query or fragment (see ``uploads.redact_url``); anything else as it is."""
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return redact_url(value)
    return value


def public_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as the index shows them: URL values without credentials or query."""
    return {k: redact_url_query(v) for k, v in params.items()}


@dataclass(frozen=True)
class JobRecord:
    """One finished job's record (see README, "The output folder"), as the store keeps it.

    ``to_dict`` is the record as written to the journal, sqlite and ``index.json``, its keys in this
    order (``models``, ``inputs``, ``texts``, ``cost`` and ``error`` only when there are some); ``from_dict`` reads one back
    (a field an older record lacks is None). Frozen: a record is not changed once made.
    """

    id: str
    seq: int | None
    workflow: str | None
    workflow_sha256: str | None
    params: dict[str, Any]
    repeat: int | None
    seeds: dict[str, Any]
    backend: str | None
    status: str
    attempts: int | None
    prompt_id: str | None
    started: float | None
    finished: float | None
    duration: float | None
    files: list[dict[str, Any]]
    texts: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None
    models: list[str] | None = None  # the model files the job loaded (its model key), when it loads any
    error: dict[str, Any] | None = None
    #: its local upload files, ``{"param", "path", "size", "sha256"}`` each (path relative to the manifest's folder)
    inputs: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "id": self.id, "seq": self.seq, "workflow": self.workflow, "workflow_sha256": self.workflow_sha256,
            "params": self.params, "repeat": self.repeat, "seeds": self.seeds, "backend": self.backend,
            "status": self.status, "attempts": self.attempts, "prompt_id": self.prompt_id,
            "started": self.started, "finished": self.finished, "duration": self.duration, "files": self.files,
        }
        optional = (("models", self.models), ("inputs", self.inputs), ("texts", self.texts), ("cost", self.cost), ("error", self.error))
        for key, value in optional:
            if value:
                rec[key] = value
        return rec

    @classmethod
    def from_dict(cls, rec: Mapping[str, Any]) -> JobRecord:
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {name: rec.get(name) for name in known}
        values.update(id=str(rec["id"]), status=str(rec.get("status")), params=dict(rec.get("params") or {}),
                      seeds=dict(rec.get("seeds") or {}), files=list(rec.get("files") or []))
        return cls(**values)


def job_record(job: Job, backend: str | None, attempt: int, res: ExecuteResult, files: list[dict[str, Any]],
               started: float, finished: float, workflow_sha256: str | None, models: Sequence[str] = (),
               inputs: Sequence[Mapping[str, Any]] | None = None) -> JobRecord:
    """The record the store keeps for one finished job; its input files are the job's own (``Job.inputs``) unless given."""
    return JobRecord(
        id=job.id, seq=job.seq, workflow=job.workflow, workflow_sha256=workflow_sha256,
        params=public_params(job.params), repeat=job.repeat, seeds=res.seeds, backend=backend,
        status=res.status, attempts=attempt + 1, prompt_id=res.prompt_id,
        started=round(started, 3), finished=round(finished, 3),
        duration=round(res.duration, 4) if res.duration is not None else None, files=files,
        texts=res.texts_by_var or None, cost=res.cost or None, error=_error(res), models=list(models) or None,
        inputs=[dict(i) for i in (job.inputs if inputs is None else inputs)] or None,
    )


def _error(res: ExecuteResult) -> dict[str, Any] | None:
    """The failure as the record keeps it: the traceback's tail only."""
    if res.failure is None:
        return None
    error = res.failure.to_dict()
    error.pop("traceback", None)
    if res.failure.traceback:
        error["traceback_tail"] = res.failure.traceback[-TRACEBACK_TAIL:]
    return error
