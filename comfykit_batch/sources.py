"""Where a workflow comes from: a dict, a file, an http(s) URL, or a RunningHub id."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from .errors import WorkflowError
from .fetch import fetch_bytes
from .workflow import Workflow

WorkflowSource = str | Path | Mapping[str, Any] | Workflow


WEBAPP_PREFIX = "webapp:"


def is_runninghub_id(source: Any) -> bool:
    """An all-digit string names a RunningHub workflow (the published package's convention)."""
    return isinstance(source, str) and source.isdigit()


def runninghub_app_id(source: Any) -> str | None:
    """``"webapp:<digits>"`` names a RunningHub AI app; returns the id, else None."""
    if isinstance(source, str) and source.startswith(WEBAPP_PREFIX) and source[len(WEBAPP_PREFIX):].isdigit():
        return source[len(WEBAPP_PREFIX):]
    return None


def is_runninghub_workflow(wf: Workflow) -> bool:
    return str(wf.meta.get("_source", "")).lower() == "runninghub"


def load_workflow(source: WorkflowSource) -> Workflow:
    """A ``Workflow`` from any local source (RunningHub ids are resolved by the kit)."""
    if isinstance(source, Workflow):
        return source
    if isinstance(source, Mapping):
        return Workflow(source)
    if isinstance(source, os.PathLike):
        return Workflow.from_file(source)
    if isinstance(source, str):
        if source.startswith(("http://", "https://")):
            try:
                text = fetch_bytes(source)
            except requests.RequestException as exc:
                raise WorkflowError(f"could not download the workflow {source.split('?')[0]}: {type(exc).__name__}") from None
            return Workflow.from_json(text, source=source.split("?")[0])
        return Workflow.from_file(source)
    raise WorkflowError(f"a workflow is a path, URL, dict or RunningHub id, not {type(source).__name__}")
