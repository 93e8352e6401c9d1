"""A shard's part whose index is lost or damaged: found before it is used, and rebuilt by ``merge``.

A part is checked whole before it is folded (sqlite's ``quick_check``): its jobs must never vanish
without a word. A damaged one (empty, not a database, malformed) is refused by its shard and left
out with a warning by a run; ``merge`` (``repair``) rebuilds it from the part's ``index.json`` and
journal, the damaged file kept beside it. A part with neither is named and left out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from pathlib import Path

from . import index_db as db
from . import journal
from .index_json import import_index
from .layout import DB, INDEX, JOURNAL, PARTS
from .remote import RemoteFolder

logger = logging.getLogger("comfykit_batch.batch.store.repair")

DAMAGED = DB + ".damaged"  # a rebuilt part's damaged index, kept beside it
REBUILDS = (f"'comfykit-batch merge' (with no shard running) rebuilds it from the part's {INDEX} and journal, "
            "and its jobs are left out until then")


def signature(part: Path) -> str:
    """Changes whenever the part's index does (main file or its WAL)."""
    sig = []
    for p in (part / DB, part / (DB + "-wal")):
        try:
            st = p.stat()
            sig.append(f"{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            sig.append("-")
    return "/".join(sig)


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
    journal.truncate(part / JOURNAL)
    return note


def _problem(part: Path, last: str | None) -> str | None:
    """Why the part's index cannot be folded as it is, or None (its journal then committed into it)."""
    why = emptied(part)
    if why is not None:
        return why
    path = part / DB
    try:
        with contextlib.closing(db.connect(path)) as pc:
            journal.replay(pc, part / JOURNAL)
            pc.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if signature(part) == last:
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
        from_journal = journal.replay(conn, part / JOURNAL)
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
