"""``comfykit-batch export``: an output folder as a dataset other tools read directly.

Formats: ``imagefolder`` / ``audiofolder`` (Hugging Face: files + ``metadata.jsonl``), ``kohya``
(image + same-named ``.txt`` caption), ``csv`` / ``parquet`` (the index, one row per file). Files
are hard-linked (copied across file systems) under readable, unique names; the originals are never
touched and nothing is written outside the target folder. ``provenance.json`` says where it all came from.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..files import safe_name, save_stream
from . import names, table
from .index import Results, load_results

log = logging.getLogger("comfykit_batch.report.export")

FORMATS = ("imagefolder", "audiofolder", "kohya", "csv", "parquet")
KIND = {"imagefolder": "image", "audiofolder": "audio", "kohya": "image"}
STATUSES = ("completed", "failed", "all")
RESERVED = {"file_name", "image", "audio", "job_id", "workflow", "output"}


@dataclass
class ExportResult:
    """What an export wrote: the folder, its index file (metadata.jsonl, CSV, ...) and counts."""

    to: Path
    format: str
    index: Path | None = None
    files: int = 0
    rows: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


def export(output_dir: str | Path, fmt: str, *, to: str | Path | None = None, caption: str | None = None,
           caption_var: str | None = None, status: str = "completed", name_template: str | None = None,
           var: str | None = None) -> ExportResult:
    """Export an output folder's results; ``to`` defaults to ``<output>/export/<fmt>``."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if status not in STATUSES:
        raise UsageError(f"--status {status}: expected one of {', '.join(STATUSES)}")
    if caption and caption_var:
        raise UsageError("--caption and --caption-var: give one of them")
    results = load_results(output_dir)
    dest = _target(results, fmt, to)
    records = [r for r in results.records if status == "all" or r.get("status") == status]
    if fmt in ("csv", "parquet"):
        result = _export_table(results, records, fmt, dest)
    else:
        result = _export_files(results, records, fmt, dest, caption=caption, caption_var=caption_var,
                               template=name_template or names.DEFAULT_TEMPLATE, var=var)
    _write_provenance(results, records, result, name_template=name_template, caption=caption, caption_var=caption_var)
    return result


def _target(results: Results, fmt: str, to: str | Path | None) -> Path:
    dest = Path(to).resolve() if to else results.root / "export" / fmt
    own = (results.root / "files", results.root / "thumbs")
    if dest == results.root or any(dest == d or d in dest.parents for d in own):
        raise UsageError(f"--to {dest}: would mix the export with the batch's own files; choose another folder")
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"--to {dest}: exists and is not a folder")
    return dest


def _export_table(results: Results, records: list[dict[str, Any]], fmt: str, dest: Path) -> ExportResult:
    rows = table.rows(records)
    path = dest / f"{safe_name(results.name)}.{fmt}"
    (table.write_csv if fmt == "csv" else table.write_parquet)(rows, path)
    return ExportResult(dest, fmt, path, files=0, rows=len(rows))


def link(src: Path, dst: Path) -> None:
    """``dst`` becomes the same file as ``src`` (hard link), or a copy where links cannot be made."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        if dst.exists() and os.path.samefile(src, dst):
            return
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _export_files(results: Results, records: list[dict[str, Any]], fmt: str, dest: Path, *, caption: str | None,
                  caption_var: str | None, template: str, var: str | None) -> ExportResult:
    if fmt == "kohya" and not (caption or caption_var):
        raise UsageError("--format kohya needs a caption: --caption-var NAME (a text output) or --caption TEMPLATE")
    kind = KIND[fmt]
    chosen = [(rec, f) for rec in records for f in rec.get("files") or [] if f.get("kind") == kind and (var is None or f.get("var") == var)]
    if not chosen:
        raise UsageError(f"{results.root}: no {kind} output{f' named {var}' if var else ''} among the {len(records)} selected jobs")
    known = names.known_fields(results.records)  # a field only some jobs have is left empty for the others
    names.check_template(template, "--name-template", known)
    if caption:
        names.check_template(caption, "--caption", known)
    if caption_var and not any(caption_var in (rec.get("texts") or {}) for rec, _ in chosen):
        texts = sorted({k for rec, _ in chosen for k in rec.get("texts") or {}})
        raise UsageError(f"--caption-var {caption_var}: no such text output; text outputs: {', '.join(texts) or 'none'}")
    result = ExportResult(dest, fmt)
    planned = _plan(results, chosen, result, kohya=fmt == "kohya", caption=caption, caption_var=caption_var, template=template)
    meta = []
    for rec, f, rel, text in planned:
        link(results.root / f["path"], dest / rel)
        if text is not None:
            save_stream([text.encode("utf-8")], (dest / rel).with_suffix(".txt"))
        else:
            meta.append(_metadata_row(rel, rec, f))
    if fmt != "kohya":
        body = "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in table.one_type_per_column(meta))
        result.index = save_stream([body.encode("utf-8")], dest / "metadata.jsonl").path
    result.files = result.rows = len(planned)
    return result


Planned = tuple[dict[str, Any], dict[str, Any], str, str | None]  # record, file, exported name, caption


def _plan(results: Results, chosen: list[tuple[dict[str, Any], dict[str, Any]]], result: ExportResult, *, kohya: bool,
          caption: str | None, caption_var: str | None, template: str) -> list[Planned]:
    """Every exported file's name and caption, worked out before anything is written.

    So a template that fails on some job (``{label:d}``) stops the export with nothing half-written.
    """
    varying = results.varying()
    namer, planned = names.Namer(), []
    counter: dict[tuple[Any, Any], int] = {}
    for rec, f in chosen:
        if not (results.root / f["path"]).is_file():
            result.skipped["missing file"] = result.skipped.get("missing file", 0) + 1
            continue
        n = counter[(rec.get("id"), f.get("var"))] = counter.get((rec.get("id"), f.get("var")), -1) + 1
        values = names.fields(rec, f, n, varying)
        text = _caption(rec, values, caption, caption_var) if kohya else None
        if kohya and text is None:
            result.skipped["no caption"] = result.skipped.get("no caption", 0) + 1
            continue
        planned.append((rec, f, namer.name(names.render(template, values, "--name-template"), values["ext"]), text))
    return planned


def _caption(rec: Mapping[str, Any], values: Mapping[str, Any], template: str | None, caption_var: str | None) -> str | None:
    if template:
        return names.render(template, values, "--caption")
    texts = (rec.get("texts") or {}).get(caption_var or "")
    return " ".join(str(t).strip() for t in texts) if texts else None


def _metadata_row(rel: str, rec: Mapping[str, Any], f: Mapping[str, Any]) -> dict[str, Any]:
    """One ``metadata.jsonl`` line: the file, every parameter and seed, every text output."""
    row: dict[str, Any] = {"file_name": rel, "job_id": rec.get("id"), "workflow": rec.get("workflow"), "output": f.get("var")}
    params = dict(rec.get("params") or {})
    for k, v in (rec.get("seeds") or {}).items():
        params.setdefault(k, v)
    for k, v in params.items():
        row[f"param_{k}" if k in RESERVED else k] = v
    for k, texts in (rec.get("texts") or {}).items():
        key = f"text_{k}" if k in RESERVED or k in params else k
        row[key] = "\n".join(str(t) for t in texts)
    return row


def _write_provenance(results: Results, records: list[dict[str, Any]], result: ExportResult, **options: Any) -> Path:
    """``provenance.json``: which batch, which workflows (content hashes), which parameter values, how many."""
    workflows: dict[str, set[str]] = {}
    for rec in records:
        hashes = workflows.setdefault(str(rec.get("workflow")), set())
        if rec.get("workflow_sha256"):
            hashes.add(str(rec["workflow_sha256"]))
    data = {
        "manifest": results.name,
        "source": str(results.root),
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "format": result.format,
        "index": result.index.name if result.index else None,
        "counts": {"jobs": len(records), "files": result.files, "rows": result.rows, "skipped": result.skipped,
                   "completed": sum(r.get("status") == "completed" for r in records),
                   "failed": sum(r.get("status") != "completed" for r in records)},
        "workflows": {k: sorted(v) for k, v in workflows.items()},
        "parameters": {p: results.values(p, records) for p in results.param_names()},
        "options": {k: v for k, v in options.items() if v},
    }
    return save_stream([json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")], result.to / "provenance.json").path
