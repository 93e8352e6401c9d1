"""One job's index record: what ran, with which values, where, and what came of it.

Values that are URLs keep their scheme, host and path but never their query
(signed URLs carry tokens there); tracebacks keep only their tail.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def job_record(job: Job, backend: str | None, attempt: int, res: ExecuteResult, files: list[dict[str, Any]],
               started: float, finished: float, workflow_sha256: str | None) -> dict[str, Any]:
    """The record the store keeps for one finished job (see README, "The output folder")."""
    rec: dict[str, Any] = {
        "id": job.id, "seq": job.seq, "workflow": job.workflow, "workflow_sha256": workflow_sha256,
        "params": public_params(job.params), "repeat": job.repeat, "seeds": res.seeds, "backend": backend,
        "status": res.status, "attempts": attempt + 1, "prompt_id": res.prompt_id,
        "started": round(started, 3), "finished": round(finished, 3),
        "duration": round(res.duration, 4) if res.duration is not None else None, "files": files,
    }
    if res.texts_by_var:
        rec["texts"] = res.texts_by_var
    if res.cost:
        rec["cost"] = res.cost
    if res.failure:
        rec["error"] = res.failure.to_dict()
        rec["error"].pop("traceback", None)
        if res.failure.traceback:
            rec["error"]["traceback_tail"] = res.failure.traceback[-TRACEBACK_TAIL:]
    return rec
