"""An output folder's records, in sweep order, with what the report commands need to ask of them.

The records are read through the store's read-only view of the folder (``batch.store.view``): its
index with the journal's newer lines laid over it, so a gallery made during a run or after a crash
shows every finished job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..batch.spec.blocks import listed_values
from ..batch.spec.location import display_url, is_remote_folder
from ..batch.store.index_db import UnreadableIndex
from ..batch.store.layout import INDEX, MANIFEST_COPY
from ..batch.store.view import FolderView
from ..errors import UsageError

log = logging.getLogger("comfykit_batch.report")


@dataclass
class Results:
    """The records of one output folder (dicts exactly as in ``index.json``), in sweep order."""

    root: Path
    name: str
    records: list[dict[str, Any]]
    order: dict[str, dict[str, int]] = field(default_factory=dict)  # param -> value key -> position in the manifest

    def param_names(self) -> list[str]:
        """Every parameter name, in the order they first appear."""
        seen: dict[str, None] = {}
        for rec in self.records:
            for key in rec.get("params") or {}:
                seen.setdefault(key, None)
        return list(seen)

    def values(self, param: str, records: Iterable[Mapping[str, Any]] | None = None) -> list[Any]:
        """The distinct values of one parameter in sweep order: as listed in the manifest, else as first recorded.

        (Records are kept in the order jobs finished, which two jobs in flight can swap.)
        """
        found = distinct((rec.get("params") or {}).get(param) for rec in (self.records if records is None else records))
        listed = self.order.get(param) or {}
        return sorted(found, key=lambda v: listed.get(key_of(v), len(listed)))  # stable: unlisted ones keep their order

    def varying(self) -> list[str]:
        """Parameters that take more than one value: the ones worth an axis or a filter."""
        return [p for p in self.param_names() if len(self.values(p)) > 1]

    def check_param(self, param: str, option: str) -> None:
        if param not in self.param_names():
            known = ", ".join(self.param_names()) or "none"
            raise UsageError(f"{option} {param}: no such parameter in {self.root / INDEX}; known parameters: {known}")


def distinct(values: Iterable[Any]) -> list[Any]:
    """Distinct values in first-seen order; values compare by their JSON form (so 1 and 1.0 stay apart)."""
    seen: dict[str, Any] = {}
    for v in values:
        seen.setdefault(key_of(v), v)
    return list(seen.values())


def key_of(value: Any) -> str:
    """A stable text key for a parameter value (used for matching and in the gallery page)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def label_of(value: Any) -> str:
    """How a value is shown to people: strings bare, everything else as JSON."""
    return value if isinstance(value, str) else key_of(value)


def load_results(output_dir: str | Path) -> Results:
    """Read an output folder's records (its index + newer journal lines); bad input is one ``UsageError`` line."""
    if is_remote_folder(output_dir):
        raise UsageError(f"{display_url(str(output_dir))}: reports read a local output folder; copy it here first "
                         "(e.g. aws s3 sync URL DIR)")
    root = Path(output_dir)
    if not root.is_dir():
        raise UsageError(f"{output_dir}: no such output folder")
    view = FolderView(root)
    if not view.exists():
        raise UsageError(f"{root}: no {INDEX} here; give the output folder of a batch (output/<name>)")
    try:
        records = view.records()
    except UnreadableIndex as exc:
        raise UsageError(str(exc)) from None
    order = manifest_order(root / MANIFEST_COPY)
    if records and all(isinstance(r.get("seq"), int) for r in records):
        records.sort(key=lambda r: r["seq"])  # a sweep position, when the runner records one
    else:
        records = sweep_sorted(records, order)
    return Results(root.resolve(), view.name(), records, order)


def manifest_order(path: Path) -> dict[str, dict[str, int]]:
    """Each swept parameter's values in the order the manifest (the copy in the output folder) lists them.

    Read from the YAML alone (no workflow, no environment): ``params``, ``grid``, ``zip``, ``cases`` and
    ``seeds: {values}``; anything else (random samples, values from files) keeps the recorded order.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    blocks = data.get("sweep") if isinstance(data, dict) else None
    order: dict[str, dict[str, int]] = {}

    def add(name: Any, value: Any) -> None:
        seen = order.setdefault(str(name), {})
        seen.setdefault(key_of(value), len(seen))

    for block in blocks if isinstance(blocks, list) else [blocks]:
        for name, value in listed_values(block):
            add(name, value)
    return order


def sweep_sorted(records: list[dict[str, Any]], order: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    """Records ordered by their values' positions in the manifest (stable: what it does not list keeps its place)."""
    if not order:
        return records

    def key(rec: Mapping[str, Any]) -> tuple[int, ...]:
        params = rec.get("params") or {}
        return tuple(listed.get(key_of(params.get(p)), len(listed)) for p, listed in order.items())

    return sorted(records, key=key)


def parse_where(items: Sequence[str] | None) -> dict[str, str]:
    """``["label=red", "strength=0.2"]`` -> ``{"label": "red", "strength": "0.2"}`` (compared by ``same_value``)."""
    where: dict[str, str] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--where {item}: expected PARAM=VALUE, e.g. --where seed=1000")
        where[name.strip()] = text
    return where


def same_value(have: Any, want: Any) -> bool:
    """Whether a recorded value is the one asked for; text from a command line is also read as YAML (``0.2``, ``0xFF0000``)."""
    candidates = [want]
    if isinstance(want, str):
        try:
            candidates.append(yaml.safe_load(want))
        except yaml.YAMLError:
            pass
    for w in candidates:
        if isinstance(have, bool) or isinstance(w, bool):
            if have is w:
                return True
        elif have == w:
            return True
    return label_of(have) == label_of(want)


def matches(rec: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    """True when every ``where`` parameter has that value."""
    params = rec.get("params") or {}
    return all(same_value(params.get(name), want) for name, want in where.items())


def select(results: Results, where: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records matching ``where``; each name must be a known parameter."""
    for name in where:
        results.check_param(name, "--where")
    return [rec for rec in results.records if matches(rec, where)]


def failure_reason(rec: Mapping[str, Any]) -> str:
    """One line saying why a job has no output (its error, or its status)."""
    err = rec.get("error") or {}
    if isinstance(err, Mapping) and (err.get("message") or err.get("kind")):
        kind = err.get("kind")
        msg = str(err.get("message") or "")
        return f"{kind}: {msg}" if kind and msg else str(kind or msg)
    return str(rec.get("status") or "unknown status")
