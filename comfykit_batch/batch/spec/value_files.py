"""Value lists read from files: ``{from: prompts.txt}``, ``{from: x.csv, column: c}``, ``{from: cases.jsonl}``;
and input sets, lists of file paths: ``{from: "photos/*.jpg"}``, ``{from: photos/, ext: [png]}`` (see ``inputs``).

Resolved when the manifest loads, relative to the manifest's folder, so the
sweep sees plain lists and job ids depend on the values, not on the file. Where
a block may name a file is each sweep kind's to say (``axes``, ``blocks.read_files``);
this module only reads them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

from .inputs import input_set, is_input_set
from .manifest_text import Context, Path_, did_you_mean


def is_value_file(node: Any) -> bool:
    """A ``{from: FILE}`` read as values: a value file (read by line or row) or an input set (a list of files)."""
    return isinstance(node, dict) and "from" in node and (set(node) <= {"from", "column"} or is_input_set(node))


def _lines(text: str) -> list[str]:
    """The file's lines, split at a line feed (or CR LF) only: ``str.splitlines`` also splits at a form feed,
    U+2028 and the like, which are part of a value (and valid inside a JSON string)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _file_rows(spec: Mapping[str, Any], where: Path_, ctx: Context) -> Iterator[tuple[int, Any]]:
    """(line number, row) of a value file: a str (.txt), a dict (.csv header + row), or any JSON value (.jsonl)."""
    path = ctx.base / str(spec["from"])
    try:
        text = path.read_text(encoding="utf-8-sig")
    except IsADirectoryError:
        raise ctx.error(where, f"{spec['from']}: a folder: write {spec['from']}/ to take its files as an input set") from None
    except OSError as exc:
        raise ctx.error(where, f"{spec['from']}: cannot read the value file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ctx.error(where, f"{spec['from']}: not UTF-8 text") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))  # the csv module's newlines: a quoted one is kept
        for row in reader:
            if None in row or None in row.values():
                raise ctx.error(where, f"{spec['from']} line {reader.line_num}: expected {len(reader.fieldnames or [])} fields "
                                       f"({', '.join(reader.fieldnames or [])})")
            yield reader.line_num, row
    elif suffix in (".jsonl", ".ndjson"):
        for n, line in enumerate(_lines(text), 1):
            if line.strip():
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ctx.error(where, f"{spec['from']} line {n}: not valid JSON ({exc.msg})") from None
    else:
        for n, line in enumerate(_lines(text), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                yield n, line.strip()


def file_values(spec: Mapping[str, Any], where: Path_, ctx: Context) -> list[Any]:
    """One value per row: the line (.txt), the column (.csv), or the JSON value or its key (.jsonl); an input set's
    files."""
    if is_input_set(spec):
        return input_set(spec, where, ctx)
    column, name = spec.get("column"), spec["from"]
    out: list[Any] = []
    for n, row in _file_rows(spec, where, ctx):
        if isinstance(row, dict):
            if column is None:
                raise ctx.error(where, f"{name}: say which column holds the values (column: one of {', '.join(map(str, row))})")
            if column not in row:
                columns = ", ".join(map(str, row))
                raise ctx.error(where, f"{name} line {n}: no column {column!r}{did_you_mean(column, row)}; columns: {columns}")
            out.append(row[column])
        elif column is not None:
            raise ctx.error(where, f"{name} line {n}: column: applies to CSV rows and JSON objects, got {type(row).__name__}")
        else:
            out.append(row)
    if not out:
        raise ctx.error(where, f"{name}: no values (blank lines and # comments are skipped)")
    return out


def file_cases(spec: Mapping[str, Any], where: Path_, ctx: Context, *, keep_empty: bool = False) -> list[dict[str, Any]]:
    """One mapping per row; an empty CSV cell leaves its parameter out of that case (unless ``keep_empty``)."""
    if is_input_set(spec):
        raise ctx.error(where, f"{spec['from']}: an input set is a list of values, not of cases: "
                               f"give it a parameter (grid: {{image: {{from: {spec['from']}}}}})")
    csv_file = str(spec["from"]).lower().endswith(".csv")
    cases: list[dict[str, Any]] = []
    for n, row in _file_rows(spec, where, ctx):
        if not isinstance(row, dict):
            raise ctx.error(where, f"{spec['from']} line {n}: a case is a CSV row or a JSON object, got {type(row).__name__}")
        cases.append({k: v for k, v in row.items() if keep_empty or v != "" or not csv_file})
    if not cases:
        raise ctx.error(where, f"{spec['from']}: no cases")
    return cases


def values_in(node: Any, where: Path_, ctx: Context) -> Any:
    """``node`` as written, or the list of values of the file it names."""
    return file_values(node, where, ctx) if is_value_file(node) else node


def one_value_in(node: Any, where: Path_, ctx: Context) -> Any:
    """``node`` as written, or the one value of the file it names (a fixed value)."""
    if not is_value_file(node):
        return node
    values = file_values(node, where, ctx)
    if len(values) != 1:
        kind = "an input set matching one file" if is_input_set(node) else "a file with one value"
        raise ctx.error(where, f"{node['from']}: a fixed value needs {kind}, it has {len(values)}")
    return values[0]


def cases_in(node: Any, where: Path_, ctx: Context, *, keep_empty: bool = False) -> Any:
    """``node`` as written, or one mapping per row of the file it names (see ``file_cases``)."""
    return file_cases(node, where, ctx, keep_empty=keep_empty) if is_value_file(node) else node
