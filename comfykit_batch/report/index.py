"""An output folder's records, in sweep order, with what the report commands need to ask of them.

The index is read whole (it is a JSON document), then any journal lines newer than it are laid
over it, so a gallery made during a run or after a crash shows every finished job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import UsageError

log = logging.getLogger("comfykit_batch.report")

INDEX = "index.json"
JOURNAL = "journal.jsonl"


@dataclass
class Results:
    """The records of one output folder (dicts exactly as in ``index.json``), in sweep order."""

    root: Path
    name: str
    records: list[dict[str, Any]]

    def param_names(self) -> list[str]:
        """Every parameter name, in the order they first appear."""
        seen: dict[str, None] = {}
        for rec in self.records:
            for key in rec.get("params") or {}:
                seen.setdefault(key, None)
        return list(seen)

    def values(self, param: str, records: Iterable[Mapping[str, Any]] | None = None) -> list[Any]:
        """The distinct values of one parameter, in sweep order (first appearance)."""
        return distinct((rec.get("params") or {}).get(param) for rec in (self.records if records is None else records))

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
    """Read ``index.json`` (+ newer journal lines) of an output folder; bad input is one ``UsageError`` line."""
    root = Path(output_dir)
    if not root.is_dir():
        raise UsageError(f"{root}: no such output folder")
    index = root / INDEX
    if not index.is_file():
        raise UsageError(f"{root}: no {INDEX} here; give the output folder of a batch (output/<name>)")
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        by_id = {rec["id"]: rec for rec in data["jobs"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{index}: not a batch index ({exc})") from None
    _overlay_journal(root / JOURNAL, by_id)
    records = list(by_id.values())
    if records and all(isinstance(r.get("seq"), int) for r in records):
        records.sort(key=lambda r: r["seq"])  # a sweep position, when the runner records one
    return Results(root.resolve(), str(data.get("manifest") or root.name), records)


def _overlay_journal(journal: Path, by_id: dict[str, dict[str, Any]]) -> None:
    if not journal.is_file():
        return
    for line in journal.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
            by_id[rec["id"]] = rec
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill


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
