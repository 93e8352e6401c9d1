"""``index.json``: the readable export of an index, one record per line, and reading one back.

Written whole by each flush (a temp file renamed, so a reader sees the old one or the new one); read
back a line at a time when in this layout, or parsed whole when edited or written by hand. It is also
the source of an older folder (made before sqlite) and of a part whose sqlite file was lost.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...files import save_stream
from . import index_db as db

HEAD_END = '"jobs": ['  # what the first line of this layout ends with


def export_index(conn: sqlite3.Connection | None, name: str, dest: Path) -> Path:
    """Stream the records to ``dest`` as one JSON document, one job per line, in first-recorded order."""
    head = json.dumps({"manifest": name, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})[:-1]

    def chunks() -> Iterator[bytes]:
        yield f"{head}, {HEAD_END}\n".encode()
        first = True
        for line in db.lines(conn) if conn is not None else ():
            yield ((b"" if first else b",\n") + line.encode("utf-8"))
            first = False
        yield b"\n]}\n" if not first else b"]}\n"

    return save_stream(chunks(), dest, fsync=True).path


def read_index(index: Path) -> Iterator[tuple[dict[str, Any], str | None]]:
    """(record, its line) from an index.json: a line at a time when in this store's layout, else parsed whole."""
    with open(index, encoding="utf-8") as fh:
        first = fh.readline()
        if first.rstrip().endswith(HEAD_END):
            for raw in fh:
                line = raw.rstrip().rstrip(",")
                if line in ("]}", ""):
                    continue
                yield json.loads(line), line
            return
    data = json.loads(index.read_text(encoding="utf-8"))  # an index edited or written by hand
    for rec in data.get("jobs", []):
        yield rec, None


def manifest_of(index: Path) -> str | None:
    """The manifest name an index.json was written for (from its first line in this layout), or None."""
    try:
        with open(index, encoding="utf-8") as fh:
            first = fh.readline().rstrip()
        if first.endswith(HEAD_END):
            head = json.loads(first[: -len(HEAD_END)].rstrip().rstrip(",") + "}")
        else:
            head = json.loads(index.read_text(encoding="utf-8"))  # edited or written by hand
    except (OSError, ValueError):
        return None
    name = head.get("manifest") if isinstance(head, dict) else None
    return name if isinstance(name, str) and name else None


def import_index(conn: sqlite3.Connection, index: Path) -> int:
    """Upsert an ``index.json``'s records (in the caller's transaction): an older folder's, or a lost part's."""
    if not index.exists():
        return 0
    try:
        rows = [db.row_of(rec, line) for rec, line in read_index(index)]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{index}: unreadable index ({exc}); move it away to start over") from None
    db.upsert(conn, rows, commit=False)
    return len(rows)
