"""Where a workflow comes from: one resolver for every source the library, the CLI and manifests accept.

A source is a dict, a ``Workflow``, a path, an http(s) URL (downloaded without
any credential), an all-digit RunningHub workflow id, ``webapp:<id>`` (a
RunningHub AI app), or a file whose ``_source`` is ``runninghub``.
``runs_on_runninghub`` tells the caller which workflows run on RunningHub (a
workflow's ``RemoteRef`` says where).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .errors import FetchError, WorkflowError
from .fetch import fetch_bytes
from .uploads import redact_url
from .workflow import RUNNINGHUB, Workflow

WorkflowSource = str | Path | Mapping[str, Any] | Workflow

WEBAPP_PREFIX = "webapp:"
#: parsed workflow files kept (by path, file identity, size and modification time), most recently used last
FILE_CACHE_SIZE = 64
_files: OrderedDict[tuple[str, int, int, int, int], Workflow] = OrderedDict()
_files_lock = threading.Lock()


def is_runninghub_id(source: Any) -> bool:
    """An all-digit string names a RunningHub workflow (the published package's convention)."""
    return isinstance(source, str) and source.isdigit()


def runninghub_app_id(source: Any) -> str | None:
    """``"webapp:<digits>"`` names a RunningHub AI app; returns the id, else None."""
    if isinstance(source, str) and source.startswith(WEBAPP_PREFIX) and source[len(WEBAPP_PREFIX):].isdigit():
        return source[len(WEBAPP_PREFIX):]
    return None


def is_url(source: Any) -> bool:
    return isinstance(source, str) and source.startswith(("http://", "https://"))


def is_path_source(source: str) -> bool:
    """True when a string source names a local file (so a manifest resolves it against its own folder)."""
    return not (is_runninghub_id(source) or source.startswith(WEBAPP_PREFIX) or is_url(source))


def runs_on_runninghub(workflow: Workflow) -> bool:
    """True for a workflow that runs on RunningHub: an id, an AI app, or a file marked ``_source: runninghub`` or
    naming a ``_workflow_id`` / ``_webapp_id`` (``Workflow.remote``)."""
    return workflow.remote is not None


def remote_workflow(workflow_id: str, *, webapp: bool = False) -> Workflow:
    """A RunningHub workflow (or AI app) known only by id; its nodes are fetched by the executor on first use."""
    key = "_webapp_id" if webapp else "_workflow_id"
    label = f"{WEBAPP_PREFIX}{workflow_id}" if webapp else f"{RUNNINGHUB}:{workflow_id}"
    return Workflow({"_source": RUNNINGHUB, key: str(workflow_id)}, source=label, allow_empty=True)


def resolve_workflow(source: WorkflowSource) -> Workflow:
    """The ``Workflow`` for any source; raises ``WorkflowError`` in one line naming the source."""
    if isinstance(source, Workflow):
        return source
    if isinstance(source, Mapping):
        return Workflow(source)
    if isinstance(source, os.PathLike):
        return workflow_file(source)
    if not isinstance(source, str):
        raise WorkflowError(
            f"a workflow is a path, URL, dict, RunningHub id or webapp:<id>, not {type(source).__name__}"
        )
    app = runninghub_app_id(source)
    if app:
        return remote_workflow(app, webapp=True)
    if source.startswith(WEBAPP_PREFIX):
        raise WorkflowError(f"{source!r}: a RunningHub AI app is named webapp:<digits>")
    if is_runninghub_id(source):
        return remote_workflow(source)
    if is_url(source):
        return download_workflow(source)
    return workflow_file(source)


def workflow_file(path: str | os.PathLike[str]) -> Workflow:
    """A workflow file, parsed once while it stays the same (same size and modification time).

    The library is called with a path per job (``kit.execute("flow.json", ...)``): reading and
    parsing it each time was most of a small job's client CPU. A ``Workflow`` is never changed by
    running it (binding copies the prompt), so one object serves every call (a RunningHub
    workflow file is the exception: it is filled in when it runs, so it is never shared).
    """
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except OSError:
        return Workflow.from_file(p)  # says in one line what is wrong with the path
    key = (str(p), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)  # the file itself, as spelled: no resolve()
    with _files_lock:
        found = _files.get(key)
        if found is not None:
            _files.move_to_end(key)
            return found
    wf = Workflow.from_file(p)
    if runs_on_runninghub(wf):
        return wf  # its nodes are fetched into it when it runs: each call gets its own
    with _files_lock:
        _files[key] = wf
        while len(_files) > FILE_CACHE_SIZE:
            _files.popitem(last=False)
    return wf


def download_workflow(url: str) -> Workflow:
    """A workflow from an http(s) URL, fetched with no credential; errors name the host, never the query."""
    try:
        text = fetch_bytes(url)
    except FetchError as exc:
        raise WorkflowError(f"could not download the workflow from {_host(url)}: {exc}") from exc
    return Workflow.from_json(text, source=redact_url(url))


def _host(url: str) -> str:
    try:
        p = urlparse(url)
        return (p.hostname or "?") + (f":{p.port}" if p.port else "")
    except ValueError:
        return "?"

