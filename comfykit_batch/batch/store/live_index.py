"""The index a run writes: each record in the journal at once, in sqlite in batches, exported as ``index.json``.

Each finished job is appended to ``journal.jsonl`` as one flushed line the moment it ends, so a
crash, a kill or Ctrl-C loses nothing finished. The records live in ``index.sqlite`` (WAL), written
in batches: a batch cut short by a kill is still in the journal, which the next open replays. A
checkpoint (sqlite committed and synced) empties the journal; ``flush`` also exports ``index.json``.
Queries read the rows they ask about, never the whole index into memory.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import index_db as db
from .index_json import export_index
from .journal import Journal
from .layout import DB, INDEX, JOURNAL
from .remote import Mirror

FLUSH_EVERY = 30.0  # seconds between checkpoints (sqlite committed, journal emptied)
# A finished job waits in memory (and in the journal) for its sqlite commit this long, or until this
# many are waiting: ids are hashes, so each row dirties a random page of the id index, and big
# batches share pages (a million-job index: 4.3 us a job in batches of 20,000, 6 us in 5,000).
COMMIT_EVERY = 5.0
COMMIT_ROWS = 20000

logger = logging.getLogger("comfykit_batch.batch.store.live_index")


class LiveIndex:
    """One store's index (``home``: the folder, or a shard's part), open for writing; thread-safe.

    ``dirty``: it holds records ``index.json`` lacks (replayed, folded in); ``mirror``: where a remote
    folder's copy goes at each flush.
    """

    def __init__(self, conn: sqlite3.Connection, home: Path, *, dirty: bool = False, mirror: Mirror | None = None) -> None:
        self.home = home
        self._conn: sqlite3.Connection | None = conn
        self._mirror = mirror
        self._pending: dict[str, db.Row] = {}
        self._lock = threading.Lock()
        self._journal = Journal(home / JOURNAL)
        self._last_commit = self._last_flush = time.monotonic()
        self._dirty = dirty

    # -- writing -----------------------------------------------------------------------
    def record(self, row: db.Row) -> None:
        """Keep one job's outcome: journal line now (the crash guarantee), sqlite in the next batch."""
        with self._lock:
            self._journal.append(row[4])
            self._pending[row[0]] = row
            self._dirty = True
            now = time.monotonic()
            if len(self._pending) >= COMMIT_ROWS or now - self._last_commit > COMMIT_EVERY:
                self._commit_locked()
            if now - self._last_flush > FLUSH_EVERY:
                self._checkpoint_locked()

    def adopt(self, positions: list[tuple[int, str, str]]) -> None:
        """Note ``(seq, sweep, id)`` of completed jobs found by id (``index_db.adopt``), so the next resume skips them
        by position. A failure to write only leaves them to be found by id again."""
        with self._lock:
            try:
                if self._conn is not None:
                    db.adopt(self._conn, positions)
            except (sqlite3.OperationalError, OSError) as exc:
                logger.debug("positions of %d jobs not noted: %s", len(positions), exc)

    def _commit_locked(self) -> None:
        if self._pending and self._conn is not None:
            try:
                db.upsert(self._conn, self._pending.values())
            except sqlite3.OperationalError as exc:  # a full disk, a read-only folder: the journal still has them
                raise OSError(f"{self.home / DB}: {exc}") from None
            self._pending.clear()
        self._last_commit = time.monotonic()

    def _checkpoint_locked(self) -> None:
        """Everything in sqlite and on disk (a checkpoint syncs the WAL): the journal may be emptied."""
        self._commit_locked()
        if self._conn is not None:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.OperationalError as exc:
                raise OSError(f"{self.home / DB}: {exc}") from None
        self._journal.empty()
        self._last_flush = time.monotonic()

    def flush(self, name: str, *, force: bool = False) -> Path:
        """Commit, empty the journal, and export ``index.json`` (written for the manifest ``name``) atomically."""
        with self._lock:
            self._checkpoint_locked()
            index = self.home / INDEX
            if not (self._dirty or force) and index.exists():
                return index
            path = export_index(self._conn, name, index)
            if self._mirror is not None and self._conn is not None:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the .sqlite file alone now holds every row
                self._mirror.push()
            self._dirty = False
            return path

    def close(self) -> None:
        """Stop writing (after a ``flush``): the journal and the connection are closed."""
        with self._lock:
            self._journal.close()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- reading -----------------------------------------------------------------------
    def line(self, job_id: str) -> str | None:
        """A job's record as its JSON line, waiting for its commit or committed."""
        with self._lock:
            p = self._pending.get(job_id)
            if p is not None:
                return p[4]
            return db.line(self._conn, job_id) if self._conn is not None else None

    def find_many(self, job_ids: Sequence[str]) -> dict[str, db.Found]:
        """``(status, transient, files)`` of the jobs recorded here, by id."""
        with self._lock:
            self._commit_locked()
            return db.find_many(self._conn, job_ids) if self._conn is not None else {}

    def count(self) -> int:
        with self._lock:
            self._commit_locked()
            return db.count(self._conn)

    def counts(self) -> dict[str, int]:
        """``{status: jobs}``."""
        with self._lock:
            self._commit_locked()
            return db.counts(self._conn)

    def reader(self) -> sqlite3.Connection | None:
        """A connection of its own for a long walk, so ``record`` is never blocked behind it."""
        with self._lock:
            self._commit_locked()
        return db.connect_ro(self.home / DB)

    def streamed(self, query: Callable[..., Iterable[Any]], *args: Any) -> Iterator[Any]:
        """A query's rows from a reader of its own, closed once read (an open reader keeps sqlite's WAL files)."""
        conn = self.reader()
        if conn is None:
            return
        try:
            yield from query(conn, *args)
        finally:
            conn.close()

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record, streamed in first-recorded order (never all in memory)."""
        return (json.loads(line) for line in self.streamed(db.lines))
