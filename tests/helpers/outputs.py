"""Reading an output folder the way a resuming run does (the sqlite index, the journal, index.json), and a job's state."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from comfykit_batch.batch.store.view import FolderView


def records(out: Path) -> list[dict]:
    """Every record kept so far, the newest per job id (a line cut short by a kill is skipped)."""
    return FolderView(out).records()


def state(store, job_id: str, *, verify: bool = False) -> str:
    """The state a resume's walk gives one job (``new``, ``completed``, ``missing``, ``failed``, ``transient``)."""
    return next(iter(store.walk([SimpleNamespace(id=job_id)], verify=verify)))[1]
