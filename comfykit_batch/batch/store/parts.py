"""A shard's own part of an output folder, and the other indexes it consults.

A sharded run (``part=Shard``) keeps its own sqlite and journal in ``parts/0003-of-0064/`` so
shards never write the same file. It skips a job completed in any part (or in the folder's own
index), so the shard count may change between runs: it reads the others, never writes them.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from . import index_db as db
from . import journal
from .layout import DB, JOURNAL, other_dbs
from .repair import REBUILDS, emptied

logger = logging.getLogger("comfykit_batch.batch.store.parts")

T = TypeVar("T")


def open_part(home: Path, shown: str) -> tuple[sqlite3.Connection, int]:
    """A shard's own index (``shown``: its path as it may be shown), with what its journal holds committed, and
    how many journal lines that was; a lost or damaged index is refused (``merge`` rebuilds it)."""
    why = emptied(home)
    if why is not None:
        raise db.UnreadableIndex(f"{shown}: {why}; {REBUILDS}")
    with db.unreadable_as(shown, REBUILDS):
        conn = db.connect(home / DB)
        try:
            replayed = journal.replay(conn, home / JOURNAL)
        except BaseException:
            conn.close()
            raise
    journal.truncate(home / JOURNAL)
    return conn, replayed


def quietly(query: Callable[..., T], *args: object) -> T | None:
    """A query of another shard's index: one that fails (being written on another node, a shared file
    system's stale view) reads as "not there", which costs at most a job run twice, never one skipped."""
    try:
        return query(*args)
    except sqlite3.DatabaseError as exc:
        logger.debug("another part's index could not be read: %s", exc)
        return None


class OtherIndexes:
    """The indexes a shard consults read-only: the folder's and the other parts' (none for the unsharded store,
    which folded them into its own). A completed record anywhere wins over a failed one."""

    def __init__(self, conns: list[sqlite3.Connection]) -> None:
        self._conns = conns

    @classmethod
    def of(cls, root: Path, home: Path) -> OtherIndexes:
        """The ones there now for the shard whose part is ``home`` (one being created is left out)."""
        return cls([c for c in (db.connect_ro(p) for p in other_dbs(root, home)) if c is not None])

    def complete(self, job_ids: Sequence[str], rows: dict[str, db.Found]) -> dict[str, db.Found]:
        """``rows`` (this part's) with the jobs not completed there looked up in the others."""
        for other in self._conns:
            wanted = [i for i in job_ids if i not in rows or rows[i][0] != "completed"]
            if not wanted:
                break
            for i, found in (quietly(db.find_many, other, wanted) or {}).items():
                if i not in rows or found[0] == "completed":
                    rows[i] = found
        return rows

    def line(self, job_id: str) -> str | None:
        """A job's record in the first other index that has one."""
        for other in self._conns:
            found = quietly(db.line, other, job_id)
            if found is not None:
                return found
        return None

    def close(self) -> None:
        for c in self._conns:
            c.close()
        self._conns = []
