"""The index as a table, one row per output file (a failed job is one row without a file), for CSV and Parquet."""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..files import save_stream
from .index import failure_reason, label_of

FIXED = ["job_id", "workflow", "status", "backend", "attempts", "duration", "var", "kind", "path", "size", "sha256",
         "workflow_sha256", "error"]


def column(name: str, taken: Iterable[str]) -> str:
    """A parameter's column name, prefixed when it would clash with a fixed one."""
    return f"param_{name}" if name in set(taken) else name


def rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for rec in records:
        base: dict[str, Any] = {"job_id": rec.get("id"), "workflow": rec.get("workflow"), "status": rec.get("status"),
                                "backend": rec.get("backend"), "attempts": rec.get("attempts"), "duration": rec.get("duration"),
                                "workflow_sha256": rec.get("workflow_sha256"),
                                "error": None if rec.get("status") == "completed" else failure_reason(rec)}
        params = dict(rec.get("params") or {})
        for k, v in (rec.get("seeds") or {}).items():
            params.setdefault(k, v)
        for k, v in params.items():
            base[column(k, FIXED)] = v
        for var, texts in (rec.get("texts") or {}).items():
            base[column(f"text_{var}", FIXED)] = "\n".join(str(t) for t in texts)
        files = rec.get("files") or []
        for f in files:
            out.append({**base, **{k: f.get(k) for k in ("var", "kind", "path", "size", "sha256")}})
        if not files:
            out.append(dict(base))
    return out


def columns(table: list[dict[str, Any]]) -> list[str]:
    seen = dict.fromkeys(FIXED)
    for row in table:
        for k in row:
            seen.setdefault(k, None)
    return list(seen)


def one_type_per_column(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with every column of one type: a column mixing types (``5`` and ``"five"``) becomes text.

    Arrow (``datasets``, Parquet) gives a column one type and refuses mixed ones; text keeps every value
    readable, written as the gallery shows it (strings bare, the rest as JSON). Missing keys stay missing.
    """
    mixed = {name for name in {k for row in table for k in row} if not _one_type([row.get(name) for row in table])}
    return [{k: label_of(v) if k in mixed and v is not None else v for k, v in row.items()} for row in table]


def _one_type(values: list[Any]) -> bool:
    return functools.reduce(_merge, map(_kind, values), None) != MIXED


MIXED = "mixed"


def _kind(value: Any) -> Any:
    """The Arrow type a JSON value asks for: numbers are one type, lists and objects are typed by what they hold."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (list, tuple)):
        inner = functools.reduce(_merge, map(_kind, value), None)
        return MIXED if inner == MIXED else ("list", inner)
    if isinstance(value, Mapping):
        fields = {str(k): _kind(v) for k, v in value.items()}
        return MIXED if MIXED in fields.values() else ("object", fields)
    return "str"


def _merge(a: Any, b: Any) -> Any:
    """One type for two, as Arrow infers it (null fits all, an empty list any list, objects join their fields), or MIXED."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0]:
        if a[0] == "list":
            inner = _merge(a[1], b[1])
            return MIXED if inner == MIXED else ("list", inner)
        fields = {k: _merge(a[1].get(k), b[1].get(k)) for k in {**a[1], **b[1]}}
        return MIXED if MIXED in fields.values() else ("object", fields)
    return MIXED


def write_csv(table: list[dict[str, Any]], dest: Path) -> Path:
    """RFC 4180 rows (CRLF): the csv module quotes a field holding a line end of its terminator, so with CRLF a
    bare carriage return in a prompt is quoted too, rather than splitting its row in other readers."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(table), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(table)
    return save_stream([buf.getvalue().encode("utf-8")], dest).path


def write_parquet(table: list[dict[str, Any]], dest: Path) -> Path:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("--format parquet needs pyarrow: pip install 'comfykit-batch[parquet]' (or pip install pyarrow)") from None
    names = columns(table)
    typed = one_type_per_column(table)
    arrays = {}
    for name in names:
        values = [row.get(name) for row in typed]
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # what Arrow still cannot hold (huge ints): text
            arrays[name] = pa.array([None if v is None else label_of(v) for v in values])
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    pq.write_table(pa.table(arrays), tmp)
    tmp.replace(dest)
    return dest
