"""The journal: each finished job's record as one line, appended and flushed the moment the job ends.

It is the crash guarantee: sqlite is written in batches, and a batch cut short by a kill, a crash
or Ctrl-C is still here, replayed by the next open. A line cut short by a kill is skipped (that job
runs again). The journal is emptied at each checkpoint, once sqlite holds everything in it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from . import index_db as db


class Journal:
    """A journal open for appending: one unbuffered ``write()`` a line, so nothing is held back in a buffer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: BinaryIO = open(path, "ab", buffering=0)  # open until close()

    def append(self, line: str) -> None:
        write_all(self._fh, (line + "\n").encode("utf-8"))

    def empty(self) -> None:
        """Drop every line (sqlite holds them all now)."""
        self._fh.truncate(0)
        self._fh.seek(0)

    def close(self) -> None:
        self._fh.close()


def write_all(fh: Any, data: bytes) -> None:
    """Write all of ``data`` to an unbuffered file (a write to a nearly full disk may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[fh.write(view):]


def read(path: Path) -> Iterator[tuple[dict[str, Any], str]]:
    """``(record, its line)`` for each whole line of a journal, oldest first; a line cut short by a kill is skipped."""
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            line = raw.rstrip("\n")
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "id" in rec:
                yield rec, line


def replay(conn: sqlite3.Connection, path: Path) -> int:
    """Commit a journal's records into an index; how many there were."""
    if not path.exists() or not path.stat().st_size:
        return 0
    rows: list[db.Row] = []
    for rec, line in read(path):
        try:
            rows.append(db.row_of(rec, line))
        except (ValueError, KeyError, TypeError):  # a line that is JSON but no record: skipped as a cut one is
            continue
    db.upsert(conn, rows)
    return len(rows)


def truncate(path: Path) -> None:
    """Empty a journal file that is not open (its lines are committed)."""
    if path.exists() and path.stat().st_size:
        with open(path, "r+", encoding="utf-8") as fh:
            fh.truncate(0)
