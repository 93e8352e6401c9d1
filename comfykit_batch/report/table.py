"""The index as a table, one row per output file (a failed job is one row without a file), for CSV and Parquet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..files import save_stream
from .index import failure_reason

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


def write_csv(table: list[dict[str, Any]], dest: Path) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(table), lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return save_stream([buf.getvalue().encode("utf-8")], dest).path


def write_parquet(table: list[dict[str, Any]], dest: Path) -> Path:
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        raise UsageError("--format parquet needs pyarrow: pip install 'comfykit-batch[parquet]' (or pip install pyarrow)") from None
    names = columns(table)
    arrays = {}
    for name in names:
        values = [row.get(name) for row in table]
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in one parameter: keep them as text
            arrays[name] = pa.array([None if v is None else str(v) for v in values])
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    pq.write_table(pa.table(arrays), tmp)
    tmp.replace(dest)
    return dest
