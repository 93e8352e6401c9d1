"""Fold the shards' parts of an output folder into its own index.

Shards write only ``parts/NNNN-of-MMMM/``; the folder's own ``index.sqlite`` is the union of them.
Every job appears once (the id is unique); a completed record wins over a failed one, otherwise
the part folded last wins. A part is re-read only when its files changed since the last fold, so
opening a finished folder again costs nothing. A damaged part is rebuilt or left out (``repair.py``).
Two parts that completed the same job with other files (two shard layouts run at once) are a conflict:
the record whose files are the ones on disk is kept, and the conflict is noted in the folder's index,
so every merge reports it while both parts exist.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...files import sha256_file
from . import index_db as db
from .layout import DB, PARTS, part_dirs
from .parts import quietly
from .remote import RemoteFolder
from .repair import settle_part, signature

logger = logging.getLogger("comfykit_batch.batch.store.fold")

# A part's rows keep their position in the sweep (``index_db``), so the folder's resume is by position too.
# The jobs in ``temp.kept`` keep the folder's record: another part's, whose files are the ones on disk.
FOLD = (
    "INSERT INTO main.jobs(id, status, transient, files, line, seq, sweep) "
    "SELECT id, status, transient, files, line, seq, sweep FROM part.jobs WHERE id NOT IN (SELECT id FROM temp.kept) "
    "ORDER BY n "
    "ON CONFLICT(id) DO UPDATE SET status=excluded.status, transient=excluded.transient, "
    "files=excluded.files, line=excluded.line, " + db.KEEP_POSITION + " "
    "WHERE excluded.status = 'completed' OR jobs.status <> 'completed'"
)
# Completed here and in the part, with other files: a conflict if another part holds the folder's record.
DIFFERING = ("SELECT p.id, p.files, m.files FROM part.jobs AS p CROSS JOIN main.jobs AS m ON m.id = p.id "
             "WHERE p.status = 'completed' AND m.status = 'completed' AND p.files <> m.files")
CONFLICT = "conflict:"  # meta keys of the conflicts noted (``conflict:<job id>``)


@dataclass(frozen=True)
class Conflict:
    """A job completed in two parts with other files: the record kept and the other one, each ``(part, files)``.

    ``matches`` says which matches the files on disk (the reason for the choice): ``kept``, ``both`` (other
    paths) or ``neither`` (then the part folded last is kept, as without a conflict).
    """

    id: str
    kept: tuple[str, str]
    other: tuple[str, str]
    matches: str

    def describe(self) -> str:
        why = {"kept": "it matches the file on disk",
               "both": "both match files on disk; kept the one folded last",
               "neither": "neither matches the file on disk; kept the one folded last "
                          "(a run with --verify runs the job again)"}[self.matches]
        return f"conflict: job {self.id} completed in {_side(self.kept)} and in {_side(self.other)}; " \
               f"kept the record of {PARTS}/{self.kept[0]}: {why}"


def _side(side: tuple[str, str]) -> str:
    files = ", ".join(f"{rel} sha256 {sha or '?'}" for rel, _, sha in db.unpack_files(side[1])) or "no files"
    return f"{PARTS}/{side[0]} ({files})"


@dataclass
class FoldReport:
    """What a fold did besides folding: parts rebuilt (a note each), parts left out (a line each), conflicts."""

    folded: int = 0
    rebuilt: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def open_folded(root: Path, *, repair: bool = False, remote: RemoteFolder | None = None) -> tuple[sqlite3.Connection, FoldReport]:
    """The folder's own index, open for writing, with every part folded in (see ``fold_parts``), and what the fold found."""
    conn = db.connect(root / DB)
    try:
        return conn, fold_parts(conn, root, repair=repair, remote=remote)
    except BaseException:
        conn.close()
        raise


def fold_parts(conn: sqlite3.Connection, root: Path, *, repair: bool = False,
               remote: RemoteFolder | None = None) -> FoldReport:
    """Fold every changed part into ``conn`` (the folder's index); ``remote``: the folder ``root`` mirrors.

    A part's journal (a shard killed before its last commit) is committed into the part first, so
    nothing a shard finished is missed (``db.connect`` also gives a part made before positions its
    columns, so the fold can read them). A damaged part is rebuilt (``repair``) or left out, and
    said so in the report. Parts must not be running while this runs.
    """
    report = FoldReport()
    where = str(remote) if remote is not None else str(root)
    digest = _digest(root, remote)
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS kept(id TEXT PRIMARY KEY)")
    for part in part_dirs(root):
        key = f"folded:{part.name}"
        try:
            note = settle_part(part, last=db.get_meta(conn, key), repair=repair, where=where, remote=remote)
        except db.UnreadableIndex as exc:
            logger.warning("%s", exc)
            report.lost.append(str(exc))
            continue
        if note is not None:
            logger.warning("%s", note)
            report.rebuilt.append(note)
        sig = signature(part)
        if db.get_meta(conn, key) != sig:
            _fold(conn, part, key, sig, digest)
            report.folded += 1
    report.conflicts = noted_conflicts(conn, root)
    return report


def _fold(conn: sqlite3.Connection, part: Path, key: str, sig: str, digest: Callable[[str], str | None]) -> None:
    """Fold one part, noting its conflicts and keeping the folder's record where that one's files are on disk."""
    conn.execute("ATTACH DATABASE ? AS part", (str(part / DB),))
    try:
        with db.exclusive(conn):
            conn.execute("DELETE FROM temp.kept")
            for c in _conflicts(conn, part, digest):
                logger.warning("%s", c.describe())
                db.set_meta(conn, CONFLICT + c.id, json.dumps(asdict(c)))
                if c.kept[0] != part.name:
                    conn.execute("INSERT INTO temp.kept(id) VALUES (?)", (c.id,))
            conn.execute(FOLD)
            db.set_meta(conn, key, sig)
    finally:
        conn.execute("DETACH DATABASE part")
    logger.info("folded %s", part)


def _conflicts(conn: sqlite3.Connection, part: Path, digest: Callable[[str], str | None]) -> list[Conflict]:
    """Jobs the part completed with other files than another part did (not than its own older record)."""
    differing = conn.execute(DIFFERING).fetchall()
    if not differing:
        return []
    others = {p.name: c for p in part_dirs(part.parent.parent) if p != part and (c := db.connect_ro(p / DB)) is not None}
    try:
        found = []
        for job_id, mine, theirs in differing:
            holder = next((name for name, c in others.items() if _completed_with(c, job_id, theirs)), None)
            if holder is not None:
                found.append(_judged(job_id, (part.name, mine), (holder, theirs), digest))
        return found
    finally:
        for c in others.values():
            c.close()


def _completed_with(conn: sqlite3.Connection, job_id: str, files: str) -> bool:
    row = quietly(db.find, conn, job_id)
    return row is not None and row[0] == "completed" and row[2] == files


def _judged(job_id: str, mine: tuple[str, str], theirs: tuple[str, str], digest: Callable[[str], str | None]) -> Conflict:
    """The conflict, keeping the record whose files are the ones on disk (the part folded now when both or neither are)."""
    ok_mine, ok_theirs = _on_disk(mine[1], digest), _on_disk(theirs[1], digest)
    if ok_theirs and not ok_mine:
        return Conflict(job_id, theirs, mine, "kept")
    return Conflict(job_id, mine, theirs, "both" if ok_mine and ok_theirs else "kept" if ok_mine else "neither")


def _on_disk(files: str, digest: Callable[[str], str | None]) -> bool:
    entries = db.unpack_files(files)
    return bool(entries) and all(sha and digest(rel) == sha for rel, _, sha in entries)


def _digest(root: Path, remote: RemoteFolder | None) -> Callable[[str], str | None]:
    """The sha256 of an output file by its path in the folder (None: not there), each file hashed once."""
    if remote is not None:
        return functools.lru_cache(maxsize=None)(remote.sha256)
    return functools.lru_cache(maxsize=None)(lambda rel: sha256_file(root / rel))


def noted_conflicts(conn: sqlite3.Connection, root: Path) -> list[Conflict]:
    """The conflicts noted by any fold whose two parts are both still there (moving a part away settles its own)."""
    found = []
    for (value,) in conn.execute("SELECT value FROM meta WHERE key >= ? AND key < ? ORDER BY key",
                                 (CONFLICT, CONFLICT[:-1] + chr(ord(CONFLICT[-1]) + 1))):
        try:
            d = json.loads(value)
            c = Conflict(d["id"], tuple(d["kept"]), tuple(d["other"]), d["matches"])
        except (ValueError, KeyError, TypeError):  # edited by hand: not ours to report
            continue
        if (root / PARTS / c.kept[0]).is_dir() and (root / PARTS / c.other[0]).is_dir():
            found.append(c)
    return found
