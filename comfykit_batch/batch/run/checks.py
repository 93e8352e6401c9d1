"""Checks that run before the first job, so a bad setup fails in seconds with one line.

Every swept parameter name against each workflow's DSL; every distinct swept
value against the workflow's types (and each backend's, once it answered: learning
them also refuses a marker naming an input that backend does not list);
every backend's reachability; and whether the output folder holds jobs made
with a different version of a workflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ...errors import BackendError, ManifestError, ParameterError
from ...executors.base import Executor
from ...workflow import Workflow
from ..spec.manifest import Manifest
from ..spec.manifest_text import key_path
from ..spec.sweep import Sweep, job_id
from ..store.store import ResultStore

#: (workflow, parameter) -> distinct values, each with the key path it came from
SweptValues = dict[tuple[str, str], dict[str, tuple[Any, str]]]


def check_sweep_names(manifest: Manifest, sweep: Sweep, workflows: dict[str, Workflow]) -> None:
    """Every swept name must be a DSL parameter; remote workflows are checked once their JSON is fetched."""
    for wf_name, names in sweep.param_sets():
        if not workflows[wf_name].nodes:
            continue
        try:
            workflows[wf_name].check_params(dict.fromkeys(names))
        except ParameterError as exc:
            raise ManifestError(f"{manifest.path}: sweep (workflow {wf_name!r}): {exc}") from None


def swept_values(manifest: Manifest, workflow_names: list[str]) -> SweptValues:
    """Each distinct value once per (workflow, parameter): a million-job grid has only a few hundred."""
    out: SweptValues = {}
    for i, block in enumerate(manifest.blocks):
        targets = workflow_names if block.workflows is None else list(block.workflows)
        for name, value, path in block.swept():
            key = json.dumps(value, sort_keys=True, default=str)
            for wf in targets:
                distinct = out.setdefault((wf, name), {})
                if key not in distinct:
                    distinct[key] = (value, f"{manifest.block_path(i)}.{key_path(path)}")
    return out


def check_sweep_values(manifest: Manifest, workflows: dict[str, Workflow], executors: Mapping[str, Executor]) -> None:
    """Refuse a value that does not fit: each backend's types (given ``executors``), else the workflow's own.

    A parameter a server does not describe keeps the workflow's own type, so checking against every
    backend also covers the workflow (``prepare`` already checked local workflows before any backend).
    """
    typings: dict[str, list[tuple[str, Any]]] = {}  # workflow -> (" on backend 'x'", its types), learned once
    for (wf_name, param), distinct in swept_values(manifest, list(workflows)).items():
        wf = workflows[wf_name]
        if not wf.nodes or param not in wf.parameters:
            continue
        if wf_name not in typings:
            typings[wf_name] = [(f" on backend {name!r}", _types_on(manifest, wf_name, wf, name, ex))
                                for name, ex in executors.items()] or [("", None)]
        for value, where in distinct.values():
            for on, types in typings[wf_name]:
                try:
                    wf.check_value(param, value, types)
                except ParameterError as exc:
                    raise ManifestError(f"{manifest.path}: {where}{on}: {exc}") from None


def _types_on(manifest: Manifest, wf_name: str, wf: Workflow, backend: str, executor: Executor) -> Any:
    """A backend's types for a workflow; a marker the backend would ignore is refused here, naming both."""
    try:
        return executor.types_for(wf)
    except ParameterError as exc:
        raise ManifestError(f"{manifest.path}: workflow {wf_name!r} on backend {backend!r}: {exc}") from None


def check_backends(executors: Mapping[str, Executor], notice: Any) -> set[str]:
    """The names of the backends that answer; raises ``BackendError`` when none does."""
    def probe(item: tuple[str, Executor]) -> tuple[str, BackendError | None]:
        try:
            item[1].check()
            return item[0], None
        except BackendError as exc:
            return item[0], exc

    with ThreadPoolExecutor(max(1, len(executors))) as pool:
        results = list(pool.map(probe, executors.items()))
    problems = [f"backend {name!r}: {exc}" for name, exc in results if exc is not None]
    usable = {name for name, exc in results if exc is None}
    if not usable:
        raise BackendError("no backend can be used: " + "; ".join(problems), transient=False)
    for p in problems:
        notice(f"warning: {p}; running on the other backend(s)")
    return usable


def refuse_changed_workflows(store: ResultStore, manifest: Manifest, workflows: dict[str, Workflow], *, force: bool) -> None:
    """Refuse to add to a folder whose jobs were made by another version of a workflow (unless ``force``)."""
    if force or not len(store):
        return
    current = {name: wf.fingerprint() for name, wf in workflows.items() if wf.nodes}
    changed: dict[str, int] = {}
    for rec in _records(store):
        name = rec.get("workflow")
        if name not in current:
            continue
        recorded = rec.get("workflow_sha256")
        same = recorded == current[name] if recorded else job_id(current[name], rec.get("params") or {}, rec.get("repeat", 0)) == rec["id"]
        if not same:
            changed[name] = changed.get(name, 0) + 1
    if changed:
        what = ", ".join(f"{n} job(s) of workflow {w!r}" for w, n in sorted(changed.items()))
        raise ManifestError(
            f"{manifest.output} holds {what} made with an earlier version of that workflow (its nodes changed since); "
            "use --force to add the new jobs beside them, or --output DIR for a fresh folder"
        )


def _records(store: ResultStore) -> Iterator[dict[str, Any]]:
    records = getattr(store, "records", None)
    if callable(records):
        yield from records()
        return
    for jid in store.ids():
        rec = store.get(jid)
        if rec is not None:
            yield rec
