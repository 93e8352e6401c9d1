"""Fold the shards' parts of an output folder into its own index, and write the combined ``index.json``.

Shards write only ``parts/NNNN-of-MMMM/``; the folder's own ``index.sqlite`` is the union of them.
Every job appears once (the id is unique); a completed record wins over a failed one, otherwise
the part folded last wins. A part is re-read only when its files changed since the last fold, so
opening a finished folder again costs nothing.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import index_db as db
from .remote import is_remote
from .store import DB, JOURNAL, MANIFEST_COPY, ResultStore, _truncate, part_dirs

logger = logging.getLogger("comfykit_batch.batch.merge")

# A part's rows keep their position in the sweep (``index_db``), so the folder's resume is by position too.
FOLD = (
    "INSERT INTO main.jobs(id, status, transient, files, line, seq, sweep) "
    "SELECT id, status, transient, files, line, seq, sweep FROM part.jobs WHERE true ORDER BY n "
    "ON CONFLICT(id) DO UPDATE SET status=excluded.status, transient=excluded.transient, "
    "files=excluded.files, line=excluded.line, " + db.KEEP_POSITION + " "
    "WHERE excluded.status = 'completed' OR jobs.status <> 'completed'"
)


@dataclass(frozen=True)
class MergeResult:
    """What ``merge`` wrote: the combined index, its counts by status, and how many parts it read."""

    index: Path
    counts: dict[str, int]
    parts: int

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)


def _signature(part: Path) -> str:
    """Changes whenever the part's index does (main file or its WAL)."""
    sig = []
    for p in (part / DB, part / (DB + "-wal")):
        try:
            st = p.stat()
            sig.append(f"{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            sig.append("-")
    return "/".join(sig)


def fold_parts(conn: sqlite3.Connection, root: Path) -> int:
    """Fold every changed part into ``conn`` (the folder's index); returns how many were folded.

    A part's journal (a shard killed before its last commit) is committed into the part first, so
    nothing a shard finished is missed (``db.connect`` also gives a part made before positions its
    columns, so the fold can read them). Parts must not be running while this runs.
    """
    folded = 0
    for part in part_dirs(root):
        pc = db.connect(part / DB)
        try:
            db.replay_journal(pc, part / JOURNAL)
            pc.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            pc.close()
        _truncate(part / JOURNAL)
        key, sig = f"folded:{part.name}", _signature(part)
        if db.get_meta(conn, key) == sig:
            continue
        conn.execute("ATTACH DATABASE ? AS part", (str(part / DB),))
        try:
            with db.exclusive(conn):
                conn.execute(FOLD)
                db.set_meta(conn, key, sig)
        finally:
            conn.execute("DETACH DATABASE part")
        folded += 1
        logger.info("folded %s", part)
    return folded


def manifest_name(root: Path) -> str:
    """The manifest's name from the folder's copy of it (the folder's name if that is unreadable)."""
    try:
        data = yaml.safe_load((root / MANIFEST_COPY).read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            return data["name"]
    except (OSError, yaml.YAMLError):
        pass
    return root.name


def merge_output(root: Path | str, name: str | None = None, *, local: Path | None = None) -> MergeResult:
    """Combine every part of ``root`` (a folder, or a remote URL mirrored in ``local``) into ``root/index.json``."""
    if not is_remote(root) and not Path(root).is_dir():
        raise FileNotFoundError(f"{root}: no such output folder")
    store = ResultStore(root, name or "", local=local).open()
    try:
        store.name = name or manifest_name(store.root)
        index = store.flush(force=True)
        counts = store.counts()
        parts = len(part_dirs(store.root))
    finally:
        store.close()
    return MergeResult(index, counts, parts)
