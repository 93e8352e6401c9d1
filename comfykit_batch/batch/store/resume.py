"""The resume's walk: the state of each job of a run in the output folder, the one status query of the store.

States: ``NEW`` (no record), ``COMPLETED`` (files intact), ``MISSING`` (completed, but a file is gone
or changed), ``FAILED`` and ``TRANSIENT`` (failed; ``error.transient``).

A resume of a whole sweep is by position: each row notes the job's place in the sweep under the
sweep's signature (``use_sweep``), so the walk skips the positions known completed without making
their jobs, and checks their files against one listing per folder instead of a ``stat`` each. The
other jobs are looked up by id, their records read alongside in the order they were written.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, TypeVar, cast

from ..spec.sweep import Job, Sweep
from . import index_db as db
from .files_check import FilesCheck, bulk_check
from .live_index import LiveIndex
from .parts import OtherIndexes

NEW, COMPLETED, MISSING, FAILED, TRANSIENT = "new", "completed", "missing", "failed", "transient"
# A walk by position finds the jobs not placed in the sweep by id: one lookup each, unless they are more than
# this many (a first resume after the sweep or this program changed), then by reading them in written order.
READ_AHEAD_ROWS = 50_000
ADOPT_ROWS = 20000  # positions noted per transaction by a walk that found completed jobs by id


class HasId(Protocol):
    @property
    def id(self) -> str: ...


J = TypeVar("J", bound=HasId)


class ResumeWalk:
    """The states of jobs against one store's index (``others``: the indexes a shard also consults).

    ``run_sweep``: the signature of the sweep a run records (``use_sweep``), whose positions a walk of it
    notes for the completed jobs it had to find by id; None for a dry run, which writes nothing.
    """

    def __init__(self, index: LiveIndex, others: OtherIndexes, files: FilesCheck, run_sweep: str | None) -> None:
        self._index = index
        self._others = others
        self._files = files
        self._run_sweep = run_sweep

    def walk(self, jobs: Iterable[J], *, verify: bool = False, chunk: int = 512) -> Iterator[tuple[J | None, str]]:
        """``(job, state)`` for each job (anything with an ``id``), in order: the resume's fast path.

        Given a whole ``Sweep``, a job the index placed in it (same signature) as completed, with its
        files there, is known by its position: it is not made (no parameters, no id) and comes as
        ``(None, COMPLETED)``. The job is None for nothing else. Its files are checked against one
        listing per folder (being there is the check; size and hash too with ``verify``).

        The other jobs are looked up by id. Their records are read in the order they were written,
        alongside the jobs: a resumed sweep asks in about that order, so most answers come from one
        sequential read (a few hundred ns a job) instead of a lookup at a random place of the id
        index (a few us). The rest are looked up by id, here and in the other parts.
        """
        if isinstance(jobs, Sweep):
            return cast(Iterator[tuple[J | None, str]], self._walk_sweep(jobs, verify, chunk))
        return self._walk_ids(jobs, verify, chunk)

    def _walk_ids(self, jobs: Iterable[J], verify: bool, chunk: int) -> Iterator[tuple[J | None, str]]:
        reader = self._index.reader()
        try:
            ahead = _ReadAhead(reader)
            it = iter(jobs)
            while batch := list(itertools.islice(it, chunk)):
                rows = self._lookup(ahead, [j.id for j in batch])
                yield from zip(batch, (self._state(rows.get(j.id), verify) for j in batch), strict=True)
        finally:
            if reader is not None:
                reader.close()  # at once: an open reader keeps sqlite's WAL files beside the index

    def _walk_sweep(self, sweep: Sweep, verify: bool, chunk: int) -> Iterator[tuple[Job | None, str]]:
        """``walk`` of a whole sweep: by position where the index placed a completed job in it, by id for the rest."""
        reader = self._index.reader()
        try:
            settled, unplaced = self._settled(reader, sweep, verify)
            ahead = _ReadAhead(reader if unplaced > READ_AHEAD_ROWS else None, not_in=sweep.signature)
            noter = _Noter(self._index, sweep.signature) if self._run_sweep == sweep.signature else None  # a run
            held: list[Job | int] = []  # jobs to look up together, and the settled runs between them
            jobs = 0
            for item in sweep.iter_skipping(settled):
                if isinstance(item, int) and not jobs:
                    yield from itertools.repeat((None, COMPLETED), item)
                    continue
                held.append(item)
                jobs += not isinstance(item, int)
                if jobs >= chunk:
                    yield from self._resolved(held, ahead, verify, noter)
                    held, jobs = [], 0
            yield from self._resolved(held, ahead, verify, noter)
            if noter is not None:
                noter.flush()
        finally:
            if reader is not None:
                reader.close()

    def _resolved(self, held: list[Job | int], ahead: _ReadAhead, verify: bool,
                  noter: _Noter | None) -> Iterator[tuple[Job | None, str]]:
        """The states of held jobs (looked up together), with the settled runs between them, in order."""
        jobs = [j for j in held if not isinstance(j, int)]
        rows = self._lookup(ahead, [j.id for j in jobs]) if jobs else {}
        states = {j.id: self._state(rows.get(j.id), verify) for j in jobs}
        if noter is not None:
            noter.add(j for j in jobs if states[j.id] == COMPLETED)
        for item in held:
            if isinstance(item, int):
                yield from itertools.repeat((None, COMPLETED), item)
            else:
                yield item, states[item.id]

    def _lookup(self, ahead: _ReadAhead, ids: list[str]) -> dict[str, db.Found]:
        """The rows of ``ids``: from the read-ahead window, the rest (and any not completed there) by id."""
        rows = ahead.take(ids)
        missing = [i for i in ids if i not in rows or rows[i][0] != "completed"]
        if missing:
            rows.update(self._others.complete(missing, self._index.find_many(missing)))
        return rows

    def _settled(self, reader: sqlite3.Connection | None, sweep: Sweep, verify: bool) -> tuple[bytearray, int]:
        """1 at each position of ``sweep`` where the index placed a completed job whose files are there; and
        how many rows the index has besides those (to be found by id)."""
        settled = bytearray()
        if reader is None:
            return settled, 0
        placed = 0
        files_ok = bulk_check(self._files, verify)
        for seq, files in db.completed_at(reader, sweep.signature, sweep.upper_bound()):
            placed += 1
            if files and not files_ok(files):
                continue
            try:
                settled[seq] = 1
            except IndexError:  # grown by doubling: a few copies in all
                settled.extend(bytes(max(seq + 1 - len(settled), len(settled))))
                settled[seq] = 1
        return settled, db.count(reader) - placed

    def _state(self, row: db.Found | None, verify: bool) -> str:
        """A job's state from its row (None: no record)."""
        if row is None:
            return NEW
        if row[0] == "completed":
            return COMPLETED if self._files.files_ok(row[2], verify) else MISSING
        return TRANSIENT if row[1] else FAILED


class _ReadAhead:
    """A window onto the records in written order, a batch ahead of the jobs being asked about.

    Read a page at a time, each page a statement of its own, so the walk holds no read transaction
    while a long run consumes it (one would keep the writer's checkpoints from emptying the WAL).
    Records written after the walk began are not read; ``not_in``: only the records not placed in
    the sweep with this signature (a walk by position knows the others).
    """

    def __init__(self, conn: sqlite3.Connection | None, limit: int = 50_000, not_in: str | None = None) -> None:
        self._conn = conn
        self._window: OrderedDict[str, db.Found] = OrderedDict()
        self._limit = limit
        self._after = -(2**63)
        self._last = (conn.execute("SELECT max(n) FROM jobs").fetchone()[0] if conn is not None else None) or self._after
        self._sql = ("SELECT n, id, status, transient, files FROM jobs WHERE n > ? AND n <= ?"
                     + (" AND sweep IS NOT ?" if not_in is not None else "") + " ORDER BY n LIMIT ?")
        self._args: tuple[str, ...] = (not_in,) if not_in is not None else ()

    def _read(self, count: int) -> list[tuple[int, str, str, int | None, str]]:
        if self._conn is None or self._after >= self._last or not count:
            return []
        rows = self._conn.execute(self._sql, (self._after, self._last, *self._args, count)).fetchall()
        self._after = rows[-1][0] if len(rows) == count else self._last
        return rows

    def take(self, ids: Sequence[str]) -> dict[str, db.Found]:
        for r in self._read(len(ids)):  # keep pace: as many records read as jobs asked
            self._window[r[1]] = (r[2], r[3], r[4])
        while len(self._window) > self._limit:  # records the walk never asks for (jobs no longer in the sweep)
            self._window.popitem(last=False)
        out = {}
        for i in ids:
            row = self._window.pop(i, None)
            if row is not None:
                out[i] = row
        return out


class _Noter:
    """The positions of completed jobs a run's walk found by id, noted in batches."""

    def __init__(self, index: LiveIndex, signature: str) -> None:
        self._index = index
        self._signature = signature
        self._waiting: list[tuple[int, str, str]] = []

    def add(self, jobs: Iterable[Job]) -> None:
        self._waiting += [(j.seq, self._signature, j.id) for j in jobs]
        if len(self._waiting) >= ADOPT_ROWS:
            self.flush()

    def flush(self) -> None:
        if self._waiting:
            self._index.adopt(self._waiting)
            self._waiting = []
