"""Fold the shards' parts of an output folder into its own index, and write the combined ``index.json``.

Shards write only ``parts/NNNN-of-MMMM/``; the folder's own ``index.sqlite`` is the union of them.
Every job appears once (the id is unique); a completed record wins over a failed one, otherwise
the part folded last wins. A part is re-read only when its files changed since the last fold, so
opening a finished folder again costs nothing.

A part is checked whole before it is folded (sqlite's ``quick_check``): its jobs must never vanish
without a word. A damaged one (empty, not a database, malformed) is left out with a warning by a run,
and rebuilt by ``merge`` (``repair``) from the part's ``index.json`` and journal, the damaged file kept
beside it; a part with neither is named and left out. Two parts that completed the same job with other
files (two shard layouts run at once) are a conflict: the record whose files are the ones on disk is
kept, and the conflict is noted in the folder's index, so every merge reports it while both parts exist.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from ...files import sha256_file
from ..spec.location import is_remote_folder
from . import index_db as db
from .remote import RemoteFolder
from .store import DB, INDEX, JOURNAL, MANIFEST_COPY, PARTS, ResultStore, _quietly, _truncate, import_index, part_dirs

logger = logging.getLogger("comfykit_batch.batch.store.merge")

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
DAMAGED = DB + ".damaged"  # a rebuilt part's damaged index, kept beside it
REBUILDS = (f"'comfykit-batch merge' (with no shard running) rebuilds it from the part's {INDEX} and journal, "
            "and its jobs are left out until then")


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


@dataclass(frozen=True)
class MergeResult:
    """What ``merge`` wrote: the combined index, its counts by status, how many parts it read, and what was wrong."""

    index: Path
    counts: dict[str, int]
    parts: int
    rebuilt: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    @property
    def clean(self) -> bool:
        """Every part was read and no two disagree: the index holds every job the parts did, once."""
        return not (self.lost or self.conflicts)


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
        sig = _signature(part)
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
    row = _quietly(db.find, conn, job_id)
    return row is not None and row[0] == "completed" and row[2] == files


def _judged(job_id: str, mine: tuple[str, str], theirs: tuple[str, str], digest: Callable[[str], str | None]) -> Conflict:
    """The conflict, keeping the record whose files are the ones on disk (the part folded now when both or neither are)."""
    ok_mine, ok_theirs = _on_disk(mine[1], digest), _on_disk(theirs[1], digest)
    if ok_theirs and not ok_mine:
        return Conflict(job_id, theirs, mine, "kept")
    return Conflict(job_id, mine, theirs, "both" if ok_mine and ok_theirs else "kept" if ok_mine else "neither")


def _on_disk(files: str, digest: Callable[[str], str | None]) -> bool:
    entries = list(db.unpack_files(files))
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


# -- damaged parts ---------------------------------------------------------------------------
def emptied(part: Path) -> str | None:
    """Why a part's index was lost though its ``index.json`` is there ("missing", "empty file"), else None.

    Checked before sqlite opens it: sqlite takes an empty or missing file for a new database, and the
    fold would then drop the part's jobs without a word.
    """
    path = part / DB
    if not (part / INDEX).exists():
        return None
    if not path.exists():
        return "missing"
    return None if path.stat().st_size else "empty file"


def settle_part(part: Path, *, last: str | None = None, repair: bool = False, where: str = "",
                remote: RemoteFolder | None = None) -> str | None:
    """Commit a part's journal into its index, checked whole unless it still has the signature ``last``.

    A damaged index is rebuilt (``repair``: returns what was done) or raised as ``UnreadableIndex``
    naming it (``where``: the folder as shown), so a run goes on without it and ``merge`` says so.
    """
    shown = f"{where or part.parent.parent}/{PARTS}/{part.name}/{DB}"
    why = _problem(part, last)
    note = None
    if why is not None:
        if not repair:
            raise db.UnreadableIndex(f"{shown}: {why}; {REBUILDS}")
        note = _rebuild(part, why, shown, remote)
    _truncate(part / JOURNAL)
    return note


def _problem(part: Path, last: str | None) -> str | None:
    """Why the part's index cannot be folded as it is, or None (its journal then committed into it)."""
    why = emptied(part)
    if why is not None:
        return why
    path = part / DB
    try:
        with contextlib.closing(db.connect(path)) as pc:
            db.replay_journal(pc, part / JOURNAL)
            pc.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if _signature(part) == last:
            return None
        with contextlib.closing(db.connect(path)) as pc:
            found = db.check(pc)
    except sqlite3.DatabaseError as exc:
        if not db.is_corrupt(exc):
            raise
        return str(exc)
    return None if found is None else f"fails sqlite's check ({found})"


def _rebuild(part: Path, why: str, shown: str, remote: RemoteFolder | None) -> str:
    """A new index for a damaged part from its ``index.json`` and journal, the damaged file kept as ``DAMAGED``.

    With neither to read, ``UnreadableIndex``: the damaged file stays, so every merge names the part.
    """
    rel = f"{PARTS}/{part.name}"
    if remote is not None and not (part / INDEX).exists():
        remote.get(f"{rel}/{INDEX}", part / INDEX)
    new = part / (DB + ".rebuilt")
    _move(new, None)
    with contextlib.closing(db.connect(new)) as conn:
        from_index = _import(conn, part / INDEX)
        from_journal = db.replay_journal(conn, part / JOURNAL)
    if from_index is None and not from_journal:
        _move(new, None)
        raise db.UnreadableIndex(f"{shown}: {why}, and the part has no readable {INDEX} or journal to rebuild it from: "
                                 f"its jobs are left out of the index; move {rel} away and run shard {_shard(part)} again")
    _move(part / DB, part / DAMAGED)
    os.replace(new, part / DB)
    if remote is not None:
        for name in (DB, DAMAGED):
            if (part / name).exists():
                remote.put(part / name, f"{rel}/{name}")
    return (f"{shown}: {why}; rebuilt from the part's {INDEX} ({from_index or 0} records) and journal ({from_journal}), "
            f"the old file kept as {DAMAGED} (a job finished after {INDEX} was last written and not in the journal "
            "runs again on a resume)")


def _import(conn: sqlite3.Connection, index: Path) -> int | None:
    """How many records a part's ``index.json`` gave, or None when there is none or it is unreadable."""
    if not index.exists():
        return None
    try:
        with db.exclusive(conn):
            return import_index(conn, index)
    except (ValueError, OSError) as exc:
        logger.debug("%s: %s", index, exc)
        return None


def _move(path: Path, to: Path | None) -> None:
    """A sqlite file with its ``-wal`` and ``-shm`` moved to ``to`` (None: removed); a stale WAL is never left behind."""
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if to is None:
            src.unlink(missing_ok=True)
        elif src.exists():
            os.replace(src, to.with_name(to.name + suffix))


def _shard(part: Path) -> str:
    """``--shard`` of a part's folder name (``0003-of-0064`` -> ``3/64``)."""
    index, _, count = part.name.partition("-of-")
    return f"{int(index)}/{int(count)}" if index.isdigit() and count.isdigit() else part.name


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
    """Combine every part of ``root`` (a folder, or a remote URL mirrored in ``local``) into ``root/index.json``.

    A damaged part is rebuilt where it can be; the result names the parts rebuilt, those left out and
    the conflicts (``clean`` is False for the last two). The folder's own index unreadable: ``UnreadableIndex``.
    """
    if not is_remote_folder(root) and not Path(root).is_dir():
        raise FileNotFoundError(f"{root}: no such output folder")
    store = ResultStore(root, name or "", local=local).open(repair=True)
    try:
        store.name = name or manifest_name(store.root)
        index = store.flush(force=True)
        counts = store.counts()
        parts = len(part_dirs(store.root))
        report = store.fold_report or FoldReport()
    finally:
        store.close()
    return MergeResult(index, counts, parts, report.rebuilt, report.lost, report.conflicts)
