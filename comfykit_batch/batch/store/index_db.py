"""The sqlite layer of the result store: one table of records, one unique index on the job id.

Kept apart from ``live_index.py`` so the index reads as policy (journal first, commit in batches) and
this as storage. A row is ``(id, status, transient, files, line, seq, sweep)``: the
few fields a resume needs, plus the record as the JSON line ``index.json`` is made of. ``files``
packs ``path\\tsize\\tsha256`` lines, so checking a job's files parses no JSON. ``seq`` is the job's
position in the sweep whose signature is ``sweep`` (both NULL when not known): a position is only
trusted under that same signature, and lets a resume skip a job without computing its id. A
database made before these two columns gets them when opened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...errors import ComfyKitError
from ..spec.sweep import compact_json

Row = tuple[str, str, int | None, str, str, int | None, str | None]
#: what a resume asks of a job's row: (status, transient, files)
Found = tuple[str, int | None, str]

# seq and sweep come before the line, so a scan of them never reads a long record's overflow pages
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    n INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    transient INTEGER,
    files TEXT NOT NULL,
    seq INTEGER,
    sweep TEXT,
    line TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_id ON jobs(id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
POSITION_COLUMNS = ("seq INTEGER", "sweep TEXT")

#: a record without a position (replayed from the journal, imported) keeps the one its row has: the id is
#: the same, so the position under that signature still names this job
KEEP_POSITION = ("seq=CASE WHEN excluded.sweep IS NULL THEN jobs.seq ELSE excluded.seq END, "
                 "sweep=coalesce(excluded.sweep, jobs.sweep)")
UPSERT = (
    "INSERT INTO jobs(id, status, transient, files, line, seq, sweep) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET status=excluded.status, transient=excluded.transient, "
    "files=excluded.files, line=excluded.line, " + KEEP_POSITION
)
ADOPT = "UPDATE jobs SET seq = ?, sweep = ? WHERE id = ?"
# Big pages (new databases): a batch's inserts at random places of the id index dirty fewer pages (a
# million-job index, batches of 20,000: 4.3 us a job with 32 KB pages, 6.8 us with 4 KB); lookups by id
# and a resume's sequential reads measured no slower.
PAGE_SIZE = 32768
CACHE_KB = 65536  # page cache of a writer: holds a million-job id index (ids are hashes: it is hit at random)
CHECKPOINT_MB = 128  # WAL size between checkpoints (each one fsyncs), not the default 4 MB
MAX_VARS = 900  # below sqlite's oldest limit of bound parameters per statement (999)
FIND = "SELECT status, transient, files FROM jobs WHERE id = ?"


class UnreadableIndex(ComfyKitError, ValueError):
    """An index (sqlite file) that cannot be used as it is: the message names the file, why, and what to do
    (bad input, as an unreadable ``index.json`` is: the CLI prints the line and exits 2)."""


def is_corrupt(exc: sqlite3.Error) -> bool:
    """The file itself is damaged (not a database, a malformed page), not the moment (locked, disk full, I/O):
    sqlite raises those as ``OperationalError``, damage as a plain ``DatabaseError``."""
    return type(exc) is sqlite3.DatabaseError


@contextmanager
def unreadable_as(shown: str, advice: str) -> Iterator[None]:
    """A damaged sqlite file met inside is one ``UnreadableIndex`` line naming it (``shown``) and what to do."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if not is_corrupt(exc):
            raise
        raise UnreadableIndex(f"{shown}: {exc}; {advice}") from None


def check(conn: sqlite3.Connection) -> str | None:
    """What sqlite's own check of the whole file finds wrong (its first complaint), or None when sound."""
    found = conn.execute("PRAGMA quick_check(1)").fetchone()
    if found is None or found[0] == "ok":
        return None
    return " ".join(str(found[0]).replace("*** in database main ***", "").split())  # one line


def connect(path: Path) -> sqlite3.Connection:
    """A read-write connection in WAL mode; ``synchronous=NORMAL`` because the journal is the crash guarantee."""
    conn = sqlite3.connect(str(path), timeout=60.0, check_same_thread=False, isolation_level=None)
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a new database only: an existing one keeps its own
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KB}")
    conn.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_MB * 2**20 // _page_size(conn)}")
    conn.executescript(SCHEMA)
    if not _has_positions(conn):
        _add_positions(conn)
    return conn


def _page_size(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA page_size").fetchone()[0])


def _has_positions(conn: sqlite3.Connection) -> bool:
    return {r[1] for r in conn.execute("PRAGMA table_info(jobs)")} >= {"seq", "sweep"}


def _add_positions(conn: sqlite3.Connection) -> None:
    """Give a database made before positions its two columns (NULL: every job is found by id, as before)."""
    with exclusive(conn):  # another process may be doing the same: the second one finds them there
        have = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
        for column in POSITION_COLUMNS:
            if column.split()[0] not in have:
                conn.execute(f"ALTER TABLE jobs ADD COLUMN {column}")


def connect_ro(path: Path) -> sqlite3.Connection | None:
    """A read-only connection to another shard's index, or None if it cannot be read (being created)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60.0, check_same_thread=False)
        conn.execute("SELECT 1 FROM jobs LIMIT 1")
        return conn
    except sqlite3.Error:
        return None


@contextmanager
def exclusive(conn: sqlite3.Connection) -> Iterator[None]:
    """One writer at a time across processes (shards importing the same old folder)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))


def pack_files(files: Sequence[dict[str, Any]]) -> str:
    if len(files) == 1:  # most jobs: no generator to run
        f = files[0]
        return f"{f['path']}\t{int(f['size'])}\t{f.get('sha256', '')}"
    return "\n".join(f"{f['path']}\t{int(f['size'])}\t{f.get('sha256', '')}" for f in files)


def unpack_files(packed: str) -> list[tuple[str, int, str]]:
    """``(path, size, sha256)`` of each file of a ``pack_files`` string (a list: a resume checks one a job)."""
    if "\n" not in packed:  # most jobs: one file, no generator to run
        if not packed:
            return []
        rel, size, sha = packed.split("\t")
        return [(rel, int(size), sha)]
    return [(rel, int(size), sha) for rel, size, sha in (entry.split("\t") for entry in packed.split("\n"))]


#: a record's JSON line, its encoder made once
_encode = compact_json(sort_keys=False)


def row_of(rec: Mapping[str, Any], line: str | None = None, sweep: str | None = None) -> Row:
    """The row for one record (``line`` when the caller already has its JSON); ``sweep`` is the signature
    of the sweep the record's ``seq`` is a position in (None: the position is not to be trusted)."""
    if line is None:
        line = _encode(rec)
    error = rec.get("error") or {}
    transient = error.get("transient") if isinstance(error, dict) else None
    seq = rec.get("seq")
    if type(seq) is not int:  # a bool is not a position
        seq = sweep = None
    return (str(rec["id"]), str(rec.get("status")), None if transient is None else int(bool(transient)),
            pack_files(rec.get("files") or []), line, seq, sweep)


def upsert(conn: sqlite3.Connection, rows: Iterable[Row], *, commit: bool = True) -> None:
    """Insert or replace records; a replaced record keeps its place (its row number) in the export."""
    if not commit:
        conn.executemany(UPSERT, rows)
        return
    _executemany(conn, UPSERT, rows)


def _executemany(conn: sqlite3.Connection, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """One statement over many rows, in one transaction."""
    conn.execute("BEGIN")
    try:
        conn.executemany(sql, rows)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def adopt(conn: sqlite3.Connection, positions: Iterable[tuple[int, str, str]]) -> None:
    """Note ``(seq, sweep, id)``: the job with this id sits at ``seq`` in the sweep signed ``sweep``."""
    _executemany(conn, ADOPT, positions)


def completed_at(conn: sqlite3.Connection, sweep: str, size: int) -> Iterator[tuple[int, str]]:
    """``(seq, files)`` of every completed job placed in the sweep signed ``sweep``, in no particular order
    (only whole positions below ``size``: a row edited by hand is found by id)."""
    return conn.execute("SELECT seq, files FROM jobs WHERE sweep = ? AND status = 'completed' "
                        "AND typeof(seq) = 'integer' AND seq >= 0 AND seq < ?", (sweep, size))


def find(conn: sqlite3.Connection, job_id: str) -> Found | None:
    return conn.execute(FIND, (job_id,)).fetchone()


def find_many(conn: sqlite3.Connection, job_ids: Sequence[str]) -> dict[str, Found]:
    """The rows of many jobs in one query: a quarter of the cost of asking one at a time."""
    found: dict[str, Found] = {}
    for k in range(0, len(job_ids), MAX_VARS):
        chunk = job_ids[k:k + MAX_VARS]
        sql = f"SELECT id, status, transient, files FROM jobs WHERE id IN ({','.join('?' * len(chunk))})"
        for r in conn.execute(sql, chunk):
            found[r[0]] = (r[1], r[2], r[3])
    return found


def line(conn: sqlite3.Connection, job_id: str) -> str | None:
    row = conn.execute("SELECT line FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return row[0] if row else None


def count(conn: sqlite3.Connection | None) -> int:
    return conn.execute("SELECT count(*) FROM jobs").fetchone()[0] if conn is not None else 0


def counts(conn: sqlite3.Connection | None) -> dict[str, int]:
    if conn is None:
        return {}
    return dict(conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())


def ids(conn: sqlite3.Connection | None) -> Iterator[str]:
    """Every id, streamed (a cursor of its own, so a long walk does not hold the store's lock)."""
    if conn is None:
        return iter(())
    return (r[0] for r in conn.execute("SELECT id FROM jobs ORDER BY n"))


def lines(conn: sqlite3.Connection) -> Iterator[str]:
    return (r[0] for r in conn.execute("SELECT line FROM jobs ORDER BY n"))


def recent_lines(conn: sqlite3.Connection, limit: int) -> Iterator[str]:
    """The last ``limit`` records first recorded, the latest first."""
    return (r[0] for r in conn.execute("SELECT line FROM jobs ORDER BY n DESC LIMIT ?", (limit,)))
