"""``gallery.html`` in an output folder: a small static page, its records in script files beside it.

A million records inline would make a page of hundreds of megabytes that no browser opens. So the page
holds no record: ``gallery-data/columns.js`` holds what filters and axes need, column by column (per
parameter one array of value positions, packed as bytes), and ``gallery-data/NNNN.js`` hold the rest of
each record (files, texts, failure), a thousand records a file, fetched only when one of them comes on
screen. Each data file is a script calling a global function, so ``file://`` works with no server.
Paths are relative, so the folder can be moved or zipped as a whole.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
import sys
import time
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import save_stream
from .index import Results, failure_reason, key_of, label_of, load_results
from .page import TEMPLATE
from .thumbs import SIZE, ensure_thumbs

log = logging.getLogger("comfykit_batch.report.gallery")

GALLERY = "gallery.html"
DATA_DIR = "gallery-data"
COLUMNS = "columns.js"
CHUNK = 1000  # records per detail file: a screenful of cards needs one or a few, each is ~100-300 KB


def write_gallery(output_dir: str | Path, *, thumbs: bool = True, thumb_size: int = SIZE) -> Path:
    """Write ``<output_dir>/gallery.html`` and its ``gallery-data/`` (and missing thumbnails under ``thumbs/``).

    Safe to call at the end of every batch: existing thumbnails are reused, every file is replaced atomically,
    the page last (it names the generation of data it reads, so a page open during a rewrite asks for a reload),
    and detail files an earlier, larger gallery left are removed. Returns the page's path.
    """
    results = load_results(output_dir)
    made = ensure_thumbs(results.root, results.records, thumb_size) if thumbs else {}
    token = str(time.time_ns())
    data = results.root / DATA_DIR
    jobs = JobColumns(len(results.records))
    count = write_chunks(data, token, (jobs.add(i, rec, made) for i, rec in enumerate(results.records)))
    meta = {**page_meta(results, param_columns(results)), **jobs.meta(), "chunk": CHUNK, "chunks": count}
    save_stream([script("galleryColumns", token, meta)], data / COLUMNS)
    remove_stale(data, count)
    title = html.escape(f"{results.name}: {len(results.records)} jobs")
    text = fill(TEMPLATE, {"__TOKEN__": token, "__TITLE__": title, "__DATA_DIR__": DATA_DIR})
    return save_stream([text.encode("utf-8")], results.root / GALLERY).path


def fill(template: str, values: Mapping[str, str]) -> str:
    """Each placeholder replaced in one pass over the template only, so no value is searched again.

    (Replacing one placeholder after another would rewrite a swept value that happens to read ``__TITLE__``.)
    """
    return re.sub("|".join(map(re.escape, values)), lambda m: values[m.group(0)], template)


def script(function: str, *args: Any) -> bytes:
    """A data file: one call of a global function with JSON arguments (JSON is valid script; nothing is HTML here)."""
    body = ",".join(json.dumps(a, ensure_ascii=False, separators=(",", ":")) for a in args)
    return f"{function}({body});\n".encode("utf-8", "replace")


def joined(labels: list[str]) -> str | list[str]:
    """Labels as one text split in the page (a million short strings parse far faster so), unless one holds the separator."""
    return labels if any("\0" in s for s in labels) else "\0".join(labels)


def chunk_name(index: int) -> str:
    return f"{index:04d}.js"


def write_chunks(data: Path, token: str, details: Iterable[dict[str, Any]]) -> int:
    """Write the records' details ``CHUNK`` at a time as ``NNNN.js``; returns how many files were written."""
    count, batch = 0, []
    for detail in details:
        batch.append(detail)
        if len(batch) == CHUNK:
            save_stream([script("galleryChunk", token, count, batch)], data / chunk_name(count))
            count, batch = count + 1, []
    if batch:
        save_stream([script("galleryChunk", token, count, batch)], data / chunk_name(count))
        count += 1
    return count


def remove_stale(data: Path, count: int) -> None:
    """Remove detail files numbered ``count`` and up (left by an earlier gallery of more records)."""
    for path in data.glob("[0-9][0-9][0-9][0-9]*.js"):
        stem = path.name[:-3]
        if stem.isdigit() and int(stem) >= count:
            path.unlink(missing_ok=True)


def _inside(path: str) -> bool:
    """A relative path that stays in the folder (an edited index cannot point the page elsewhere)."""
    return bool(path) and not path.startswith("/") and ".." not in path.split("/")  # as Path's parts, without its cost


def packed(values: Sequence[int], limit: int) -> list[Any]:
    """``[bytes per item, base64 of the little-endian array]``: the smallest width that holds ``limit``."""
    code = "B" if limit < 256 else "H" if limit < 65536 else "i"
    arr = array(code, values)
    if sys.byteorder == "big":
        arr.byteswap()
    return [arr.itemsize, base64.b64encode(arr.tobytes()).decode("ascii")]


class Codes:
    """Distinct items in first-seen order, each coded as 1 + its position (0 is left for "absent")."""

    def __init__(self) -> None:
        self.items: dict[Any, int] = {}
        self.codes = array("i")

    def add(self, item: Any) -> None:
        self.codes.append(self.items.setdefault(item, len(self.items)) + 1)

    def meta(self) -> dict[str, Any]:
        return {"names": list(self.items), "codes": packed(self.codes, len(self.items) + 1)}


@dataclass
class JobColumns:
    """Per job what the page lays out and filters by without its details: status, workflow, outputs per kind.

    ``counts[var][i]`` is how many files of output ``var`` job ``i`` has, plus one if it has texts of it (what
    that output shows of it); ``every[i]`` the same over all outputs. The detail of each job goes to the files.
    """

    n: int
    status: Codes = field(default_factory=Codes)
    workflow: Codes = field(default_factory=Codes)
    counts: dict[str, bytearray] = field(default_factory=dict)
    every: array[int] = field(default_factory=lambda: array("i"))

    def add(self, i: int, rec: Mapping[str, Any], thumbs: Mapping[str, str]) -> dict[str, Any]:
        """Note job ``i`` in the columns; returns its detail for the chunk files."""
        self.status.add(str(rec.get("status")))
        self.workflow.add(str(rec.get("workflow")))
        files = [[str(f.get("var")), f.get("kind"), f["path"], thumbs.get(f["path"])]
                 for f in rec.get("files") or [] if _inside(str(f.get("path") or ""))]
        texts = {str(k): [str(t) for t in v] for k, v in (rec.get("texts") or {}).items()}
        per: dict[str, int] = {}
        for var in [f[0] for f in files] + list(texts):  # a job's texts of one output are one item
            per[var] = per.get(var, 0) + 1
        for var, k in per.items():
            column = self.counts.get(var)
            if column is None:
                column = self.counts[var] = bytearray(self.n)
            column[i] = min(255, k)
        self.every.append(min(65535, len(files) + len(texts)))
        detail: dict[str, Any] = {"id": str(rec.get("id")), "f": files, "t": texts}
        if rec.get("status") != "completed":
            detail["e"] = failure_reason(rec)
        return detail

    def meta(self) -> dict[str, Any]:
        return {"n": self.n, "status": self.status.meta(), "workflow": self.workflow.meta(), "vars": list(self.counts),
                "counts": {v: packed(c, 255) for v, c in self.counts.items()}, "every": packed(self.every, 65536)}


@dataclass
class ParamColumns:
    """Each parameter's values in sweep order (as ``Results.values`` gives them) and per job its value's code.

    A code is 1 + the value's position; 0 means the job does not set the parameter (which ``Results.values``
    counts as the value ``None``, so ``none[p]`` keeps that code for comparisons between parameters).
    """

    names: list[str]
    values: dict[str, list[Any]]
    codes: dict[str, list[int]]
    none: dict[str, int]


def _fast_key(value: Any) -> Any:
    """A dict key telling values apart as ``key_of`` does (1, 1.0, True and -0.0 stay apart), without JSON for scalars."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return kind, value
    if kind is float:
        return kind, value.hex()
    return "json", key_of(value)


def param_columns(results: Results) -> ParamColumns:
    """One pass over the records (a million in seconds): the distinct values of each parameter and each job's code."""
    n = len(results.records)
    seen: dict[str, dict[Any, tuple[int, Any]]] = {}
    local: dict[str, list[int]] = {}
    for i, rec in enumerate(results.records):
        params = rec.get("params") or {}
        for p, v in params.items():
            if p not in seen:
                seen[p], local[p] = ({_fast_key(None): (0, None)} if i else {}), [0] * n
            found = seen[p].setdefault(_fast_key(v), (len(seen[p]), v))
            local[p][i] = found[0] + 1
        if len(params) != len(seen):
            for p in seen.keys() - params.keys():
                seen[p].setdefault(_fast_key(None), (len(seen[p]), None))
    return _sorted_columns(results, seen, local)


def _sorted_columns(results: Results, seen: Mapping[str, Mapping[Any, tuple[int, Any]]],
                    local: Mapping[str, list[int]]) -> ParamColumns:
    """Codes renumbered so each parameter's values are in sweep order (manifest order, else first seen)."""
    values, codes, none = {}, {}, {}
    for p, found in seen.items():
        firsts: dict[str, tuple[int, Any]] = {}
        table = [0] * (len(found) + 1)
        for position, value in found.values():
            firsts.setdefault(key_of(value), (position, value))
        listed = results.order.get(p) or {}
        ordered = sorted(firsts.items(), key=lambda kv: (listed.get(kv[0], len(listed)), kv[1][0]))
        rank = {k: r for r, (k, _) in enumerate(ordered)}
        for position, value in found.values():
            table[position + 1] = rank[key_of(value)] + 1
        values[p] = [v for _, (_, v) in ordered]
        codes[p] = [table[c] for c in local[p]]
        none[p] = rank.get(key_of(None), -1) + 1
    return ParamColumns(list(seen), values, codes, none)


def page_meta(results: Results, cols: ParamColumns) -> dict[str, Any]:
    """What the page's script reads besides the job columns: parameters with their values and codes, default axes."""
    x, y = default_axes(results, cols)
    return {"name": results.name, "params": cols.names, "x": x, "y": y,
            "values": {p: joined([label_of(v) for v in vs]) for p, vs in cols.values.items()},
            "codes": {p: packed(cols.codes[p], len(cols.values[p]) + 1) for p in cols.names}}


def page_data(results: Results, thumbs: Mapping[str, str]) -> dict[str, Any]:
    """Everything the page reads, in memory (for tests and tools): the columns' meta and every job's detail."""
    jobs = JobColumns(len(results.records))
    details = [jobs.add(i, rec, thumbs) for i, rec in enumerate(results.records)]
    cols = param_columns(results)
    labels = {p: [label_of(v) for v in vs] for p, vs in cols.values.items()}
    return {**page_meta(results, cols), **jobs.meta(), "values": labels, "param_codes": cols.codes, "details": details}


def default_axes(results: Results, cols: ParamColumns | None = None) -> tuple[str, str]:
    """The page's first X and Y: two varying parameters that vary independently of each other.

    Parameters swept together (a ``zip`` of colour and its label) would make a diagonal table, so
    only one of such a group is used, preferring the one with text values (``label`` over ``0xFF0000``);
    Y prefers a text-valued parameter too.
    """
    cols = cols or param_columns(results)
    chosen: list[str] = []
    for p in (p for p in cols.names if len(cols.values[p]) > 1):
        partner = next((c for c in chosen if _linked(cols, c, p)), None)
        if partner is None:
            chosen.append(p)
        elif _is_text(cols, p) and not _is_text(cols, partner):
            chosen[chosen.index(partner)] = p
    if not chosen:
        return "", ""
    rest = chosen[1:]
    y = next((p for p in rest if _is_text(cols, p)), rest[0] if rest else "")  # words read best as row labels
    return chosen[0], y


def _linked(cols: ParamColumns, a: str, b: str) -> bool:
    """Every value of ``a`` comes with one value of ``b`` and back (1:1 over the records; unset counts as None)."""
    pairs = set(zip(_with_none(cols, a), _with_none(cols, b), strict=True))
    return len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs})


def _with_none(cols: ParamColumns, p: str) -> Iterator[int]:
    none = cols.none[p]
    return (c or none for c in cols.codes[p])


def _is_text(cols: ParamColumns, p: str) -> bool:
    return all(isinstance(v, str) for v in cols.values[p])
