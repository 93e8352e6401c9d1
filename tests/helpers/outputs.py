"""Reading an output folder the way a resuming run does: the sqlite index, the journal, index.json."""

from __future__ import annotations

import json
from pathlib import Path

from comfykit_batch.batch.store import index_db


def records(out: Path) -> list[dict]:
    """Every record kept so far, the newest per job id (a line cut short by a kill is skipped)."""
    found: dict[str, dict] = {}
    index = out / "index.json"
    if index.exists():
        for rec in json.loads(index.read_text())["jobs"]:
            found[rec["id"]] = rec
    conn = index_db.connect_ro(out / "index.sqlite") if (out / "index.sqlite").exists() else None
    if conn is not None:
        for line in index_db.lines(conn):
            rec = json.loads(line)
            found[rec["id"]] = rec
        conn.close()
    journal = out / "journal.jsonl"
    if journal.exists():
        for line in journal.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut short by the kill
            found[rec["id"]] = rec
    return list(found.values())
