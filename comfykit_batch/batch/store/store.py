"""The output folder of one manifest: files, a sqlite index, its journal, and ``index.json``.

Each finished job is appended to ``journal.jsonl`` as one flushed line the moment it ends, so a
crash, a kill or Ctrl-C loses nothing finished. The records live in ``index.sqlite`` (WAL), written
in batches: a batch cut short by a kill is still in the journal, which the next open replays. A
resume therefore reads only the rows it asks about, never the whole index into memory: a
million-job folder opens in milliseconds. ``index.json`` (one record per line) is the readable
export, written by ``flush()``/``close()`` and by ``merge``.

A resume of a whole sweep is by position: each row notes the job's place in the sweep under the
sweep's signature (``use_sweep``), so ``walk`` skips the positions known completed without making
their jobs, and checks their files against one listing per folder instead of a ``stat`` each.

A sharded run (``part=Shard``) keeps its own sqlite and journal in ``parts/0003-of-0064/`` so
shards never write the same file; it skips a job completed in any part, so the shard count may
change between runs. The unsharded store folds every part into its own index when it opens
(that is what ``merge`` does). Every file name is made here from the job id and the output
variable, never from a name the server sent, so nothing can land outside the folder.

The folder may be remote (``s3://bucket/prefix``, see ``remote.py``): the index, journal and
downloads in progress stay on local disk (``local``), each finished file is put in place by
``commit_file``, and ``flush`` copies the index out.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from ...files import safe_extension, safe_name, save_stream, sha256_file
from ..spec.location import is_remote_folder, local_home
from ..spec.sweep import Job, Sweep
from . import index_db as db
from .remote import RemoteFolder

if TYPE_CHECKING:
    from .merge import FoldReport

INDEX = "index.json"
JOURNAL = "journal.jsonl"
DB = "index.sqlite"
PARTS = "parts"
MANIFEST_COPY = "manifest.yaml"
# What ``walk`` says of a job.
NEW, COMPLETED, MISSING, FAILED, TRANSIENT = "new", "completed", "missing", "failed", "transient"
FLUSH_EVERY = 30.0  # seconds between checkpoints (sqlite committed, journal emptied)
# A finished job waits in memory (and in the journal) for its sqlite commit this long, or until this
# many are waiting: ids are hashes, so each row dirties a random page of the id index, and big
# batches share pages (a million-job index: 4.3 us a job in batches of 20,000, 6 us in 5,000).
COMMIT_EVERY = 5.0
COMMIT_ROWS = 20000
# A walk by position finds the jobs not placed in the sweep by id: one lookup each, unless they are more than
# this many (a first resume after the sweep or this program changed), then by reading them in written order.
READ_AHEAD_ROWS = 50_000
ADOPT_ROWS = 20000  # positions noted per transaction by a walk that found completed jobs by id
#: what to do about the folder's own index when it is damaged (a part's is rebuilt by ``merge``)
REBUILD_ROOT = ("move it (and its -wal and -shm files) away and run again: it is rebuilt from index.json, the journal "
                "and the parts (a job finished since index.json was last written runs again)")

logger = logging.getLogger("comfykit_batch.batch.store.store")


class HasId(Protocol):
    @property
    def id(self) -> str: ...


J = TypeVar("J", bound=HasId)
T = TypeVar("T")


class PartLike(Protocol):
    """What the store needs of a shard: which of how many (read-only, as ``Shard``'s frozen fields are)."""

    @property
    def index(self) -> int: ...

    @property
    def count(self) -> int: ...


def part_name(part: PartLike) -> str:
    """``0003-of-0064``: sorts in shard order; the count is part of the name, so N may change."""
    return f"{part.index:04d}-of-{part.count:04d}"


class ResultStore:
    """Records and files of one manifest's runs (one shard's, with ``part``); thread-safe."""

    def __init__(self, root: Path | str, name: str, part: PartLike | None = None, *, local: Path | None = None) -> None:
        # A remote folder (s3://...) is mirrored by a local one (``local``, else one under the user's cache)
        # holding the sqlite index, the journal and downloads in progress; finished files and the index go out.
        self.remote = RemoteFolder(str(root)) if is_remote_folder(root) else None
        if self.remote is not None:
            self.root = Path(local or local_home(str(root))).resolve()
        else:
            self.root = Path(root).resolve()
        self.location = str(self.remote or self.root)  # where the results are, as it may be shown
        self._remote_sizes: dict[str, int] | None = None
        self.name = name
        self.part = part
        self._root_sep = str(self.root) + os.sep
        self.home = self.root / PARTS / part_name(part) if part is not None else self.root
        self._conn: sqlite3.Connection | None = None
        self._others: list[sqlite3.Connection] = []
        self._pending: dict[str, db.Row] = {}
        self._sweep: str | None = None  # the signature of the sweep whose positions records' ``seq`` are
        self._lock = threading.Lock()
        self._journal: Any = None
        self._last_commit = self._last_flush = time.monotonic()
        self._dirty = False
        self.fold_report: FoldReport | None = None  # what the unsharded store's open found folding the parts

    # -- opening ------------------------------------------------------------------
    def open(self, manifest_text: str | None = None, *, repair: bool = False) -> ResultStore:
        """Open (or create) the index; a damaged one is ``index_db.UnreadableIndex`` naming it and what to do.

        The unsharded store folds the parts in; ``repair`` (``merge``): a damaged part is rebuilt from its
        ``index.json`` and journal instead of being left out (see ``fold_report``).
        """
        self.home.mkdir(parents=True, exist_ok=True)
        if self.remote is not None:
            self._pull()
        with _unreadable_as(self.shown(self.root / DB), REBUILD_ROOT):
            prepare_root(self.root)  # imports a folder written before sqlite (index.json + journal)
            if self.part is None:
                self._open_folder(repair)
        if self.part is not None:
            self._open_part()
        if manifest_text is not None:
            self._write_manifest(manifest_text)
        self._journal = open(self.home / JOURNAL, "ab", buffering=0)  # unbuffered: one write() a line, nothing held back
        return self

    def _open_folder(self, repair: bool) -> None:
        from .merge import fold_parts  # merge builds on this module

        self._conn = db.connect(self.root / DB)
        self.fold_report = fold_parts(self._conn, self.root, repair=repair, remote=self.remote)
        if self.fold_report.folded:
            self._dirty = True

    def _open_part(self) -> None:
        """This shard's own index, with what its journal holds; a lost or damaged one is refused (``merge`` rebuilds it)."""
        from .merge import REBUILDS, emptied

        why = emptied(self.home)
        if why is not None:
            raise db.UnreadableIndex(f"{self.shown(self.home / DB)}: {why}; {REBUILDS}")
        with _unreadable_as(self.shown(self.home / DB), REBUILDS):
            conn = db.connect(self.home / DB)
            try:
                replayed = db.replay_journal(conn, self.home / JOURNAL)
            except BaseException:
                conn.close()
                raise
        self._conn, self._dirty = conn, bool(replayed)
        _truncate(self.home / JOURNAL)
        self._others = [c for c in (db.connect_ro(p) for p in other_dbs(self.root, self.home)) if c is not None]

    def shown(self, path: Path) -> str:
        """A path of the folder as it may be shown: under the remote URL for a remote folder (never the local mirror)."""
        return f"{self.location}/{self.relative(path)}" if self.remote is not None else str(path)

    def _pull(self) -> None:
        """Bring what a remote folder holds that this node lacks: the index (a resume elsewhere) and the parts'."""
        assert self.remote is not None
        own = self.home / DB
        if not own.exists() and not self.remote.get(self.relative(own), own) and self.part is None:
            self.remote.get(INDEX, self.root / INDEX)  # an index.json alone: imported like an old local folder
        if not (self.root / MANIFEST_COPY).exists():
            self.remote.get(MANIFEST_COPY, self.root / MANIFEST_COPY)
        for name in self.remote.children(PARTS):
            local = self.root / PARTS / name / DB
            if local == own:
                continue
            for leftover in (local.with_name(DB + "-wal"), local.with_name(DB + "-shm")):
                leftover.unlink(missing_ok=True)
            if not self.remote.get(f"{PARTS}/{name}/{DB}", local):  # the other part's last flushed state
                self.remote.get(f"{PARTS}/{name}/{INDEX}", local.with_name(INDEX))  # no index: merge rebuilds it from this

    def _push(self) -> None:
        """Copy the index out to the remote folder (called by ``flush``, with the lock held)."""
        assert self.remote is not None and self._conn is not None
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the .sqlite file alone now holds every row
        for path in (self.home / DB, self.home / INDEX, self.home / MANIFEST_COPY, self.root / MANIFEST_COPY):
            if path.exists():
                self.remote.put(path, self.relative(path))

    def commit_file(self, path: Path) -> str:
        """An output file written at ``path_for(...)`` is final: put it in place; returns its path for the record.

        Local folder: nothing to do. Remote folder: uploaded (streamed from the local file), then the
        local copy is removed, so a node's disk holds only the downloads in progress.
        """
        rel = self.relative(path)
        if self.remote is not None:
            size = os.stat(path).st_size
            self.remote.put(path, rel)
            os.unlink(path)
            with self._lock:
                if self._remote_sizes is not None:
                    self._remote_sizes[rel] = size
        return rel

    def _write_manifest(self, text: str) -> None:
        if self.part is None:
            save_stream([text.encode("utf-8")], self.root / MANIFEST_COPY, fsync=True)
            return
        # Shards start together: each keeps its own copy; the shared one is written once, by whoever is first.
        save_stream([text.encode("utf-8")], self.home / MANIFEST_COPY, fsync=True)
        try:
            with open(self.root / MANIFEST_COPY, "x", encoding="utf-8") as fh:
                fh.write(text)
        except FileExistsError:
            pass

    # -- queries -----------------------------------------------------------------------
    def _row(self, job_id: str) -> tuple[str, int | None, str] | None:
        """(status, transient, files) of a job from this part, else from any other part."""
        with self._lock:
            p = self._pending.get(job_id)
            if p is not None:
                return p[1], p[2], p[3]
            row = db.find(self._conn, job_id) if self._conn is not None else None
        if (row is not None and row[0] == "completed") or not self._others:
            return row
        for other in self._others:  # a completed record anywhere wins over a failed one
            found = _quietly(db.find, other, job_id)
            if found is not None and (row is None or found[0] == "completed"):
                row = found
                if found[0] == "completed":
                    break
        return row

    def __len__(self) -> int:
        """Jobs recorded in this store's own index (for a shard: its part only)."""
        with self._lock:
            self._commit_locked()
            return db.count(self._conn)

    def contains(self, job_id: str) -> bool:
        """A record exists for this job (here or in another part)."""
        return self._row(job_id) is not None

    def ids(self) -> set[str]:
        """Every recorded id of this store's own index; a set of a million ids costs ~100 MB: prefer ``contains``."""
        return set(self.iter_ids())

    def iter_ids(self) -> Iterator[str]:
        """Every recorded id of this store's own index, streamed in first-recorded order."""
        return self._streamed(db.ids)

    def _reader(self) -> sqlite3.Connection | None:
        """A connection of its own for a long walk, so record() is never blocked behind it."""
        with self._lock:
            self._commit_locked()
        return db.connect_ro(self.home / DB)

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The full record of a job, or None."""
        with self._lock:
            p = self._pending.get(job_id)
            if p is not None:
                return dict(json.loads(p[4]))
            line = db.line(self._conn, job_id) if self._conn is not None else None
        for other in self._others if line is None else ():
            line = _quietly(db.line, other, job_id)
            if line is not None:
                break
        return json.loads(line) if line is not None else None

    def status(self, job_id: str) -> str | None:
        row = self._row(job_id)
        return row[0] if row else None

    def counts(self) -> dict[str, int]:
        """``{status: jobs}`` of this store's own index (the unsharded store includes every part)."""
        with self._lock:
            self._commit_locked()
            return db.counts(self._conn)

    def failed_ids(self, transient: bool | None = None) -> Iterator[str]:
        """Ids of failed jobs; ``transient`` selects by the failure's ``error.transient`` (None: all)."""
        return self._streamed(db.failed_ids, transient)

    def _streamed(self, query: Callable[..., Iterator[str]], *args: Any) -> Iterator[str]:
        """A query's rows from a reader of its own, closed once read (an open reader keeps sqlite's WAL files)."""
        conn = self._reader()
        try:
            yield from query(conn, *args)
        finally:
            if conn is not None:
                conn.close()

    def is_complete(self, job_id: str, *, verify: bool = False) -> bool:
        """Completed earlier and its files are still there (same size; same hash with ``verify``)."""
        row = self._row(job_id)
        return row is not None and row[0] == "completed" and self._files_ok(row[2], verify)

    def _files_ok(self, files: str, verify: bool) -> bool:
        """Every file of a completed job is there with its size (and hash, with ``verify``)."""
        if self.remote is not None:
            return self._remote_files_ok(files, verify)
        for entry in files.split("\n") if files else ():
            rel, size, sha = entry.split("\t")
            path = self._root_sep + rel
            try:
                if os.stat(path).st_size != int(size):
                    return False
            except OSError:
                return False
            if verify and sha256_file(Path(path)) != sha:
                return False
        return True

    def _remote_files_ok(self, files: str, verify: bool) -> bool:
        """As ``_files_ok``, against one listing of the remote ``files/`` (not a request per file)."""
        assert self.remote is not None
        with self._lock:
            if self._remote_sizes is None:
                self._remote_sizes = self.remote.sizes("files")
            sizes = self._remote_sizes
        for entry in files.split("\n") if files else ():
            rel, size, sha = entry.split("\t")
            if sizes.get(rel) != int(size) or (verify and self.remote.sha256(rel) != sha):
                return False
        return True

    def settled(self, job_id: str, *, retry_failed: bool = False, verify: bool = False) -> bool:
        """Nothing to do for this job: completed with its files, or failed and not to be retried."""
        return self._settled_row(self._row(job_id), retry_failed, verify)

    def _settled_row(self, row: tuple[str, int | None, str] | None, retry_failed: bool, verify: bool) -> bool:
        if row is None:
            return False
        if row[0] == "completed":
            return self._files_ok(row[2], verify)
        return not retry_failed and row[0] == "failed"

    def settled_many(self, job_ids: Sequence[str], *, retry_failed: bool = False, verify: bool = False) -> list[bool]:
        """``settled`` for many jobs at once (one query per few hundred ids)."""
        rows = self._rows(job_ids)
        return [self._settled_row(rows.get(i), retry_failed, verify) for i in job_ids]

    def use_sweep(self, signature: str) -> None:
        """The records from now on are of the sweep signed ``signature``: their ``seq`` is kept as a position in it,
        and a ``walk`` of that sweep notes the position of the completed jobs it had to find by id."""
        with self._lock:
            self._sweep = signature

    def walk(self, jobs: Iterable[J], *, verify: bool = False, chunk: int = 512) -> Iterator[tuple[J | None, str]]:
        """``(job, state)`` for each job (anything with an ``id``), in order: the resume's fast path.

        States: ``NEW`` (no record), ``COMPLETED`` (files intact), ``MISSING`` (completed, but a
        file is gone or changed), ``FAILED`` and ``TRANSIENT`` (failed; ``error.transient``).

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
        reader = self._reader()
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
        reader = self._reader()
        try:
            settled, unplaced = self._settled(reader, sweep, verify)
            ahead = _ReadAhead(reader if unplaced > READ_AHEAD_ROWS else None, not_in=sweep.signature)
            noter = _Noter(self, sweep.signature) if self._sweep == sweep.signature else None  # a run, not a dry run
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

    def _lookup(self, ahead: _ReadAhead, ids: list[str]) -> dict[str, tuple[str, int | None, str]]:
        """The rows of ``ids``: from the read-ahead window, the rest (and any not completed there) by id."""
        rows = ahead.take(ids)
        missing = [i for i in ids if i not in rows or rows[i][0] != "completed"]
        if missing:
            rows.update(self._rows(missing))
        return rows

    def _settled(self, reader: sqlite3.Connection | None, sweep: Sweep, verify: bool) -> tuple[bytearray, int]:
        """1 at each position of ``sweep`` where the index placed a completed job whose files are there; and
        how many rows the index has besides those (to be found by id)."""
        settled = bytearray()
        if reader is None:
            return settled, 0
        placed = 0
        files_ok = self._files_check(verify)
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

    def _files_check(self, verify: bool) -> Callable[[str], bool]:
        """How a walk by position checks a completed job's files: size and hash of each (``verify``), one listing
        of a remote folder, else one listing of each local folder (see ``_Listing``)."""
        if verify or self.remote is not None:
            return functools.partial(self._files_ok, verify=verify)
        return _Listing(self._root_sep).has_all

    def _adopt(self, positions: list[tuple[int, str, str]]) -> None:
        """Note ``(seq, sweep, id)`` of completed jobs found by id, so the next resume skips them by position.
        A failure to write only leaves them to be found by id again."""
        with self._lock:
            try:
                if self._conn is not None:
                    db.adopt(self._conn, positions)
            except (sqlite3.OperationalError, OSError) as exc:
                logger.debug("positions of %d jobs not noted: %s", len(positions), exc)

    def _state(self, row: tuple[str, int | None, str] | None, verify: bool) -> str:
        if row is None:
            return NEW
        if row[0] == "completed":
            return COMPLETED if self._files_ok(row[2], verify) else MISSING
        return TRANSIENT if row[1] else FAILED

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record of this store's own index, streamed in first-recorded order (never all in memory)."""
        conn = self._reader()
        if conn is None:
            return
        try:
            for line in db.lines(conn):
                yield json.loads(line)
        finally:
            conn.close()

    def _rows(self, job_ids: Sequence[str]) -> dict[str, tuple[str, int | None, str]]:
        with self._lock:
            self._commit_locked()
            rows = db.find_many(self._conn, job_ids) if self._conn is not None else {}
        for other in self._others:  # a completed record anywhere wins over a failed one
            wanted = [i for i in job_ids if i not in rows or rows[i][0] != "completed"]
            if not wanted:
                break
            for i, found in (_quietly(db.find_many, other, wanted) or {}).items():
                if i not in rows or found[0] == "completed":
                    rows[i] = found
        return rows

    def path_for(self, workflow: str, job_id: str, var: str, n: int, server_name: str) -> Path:
        """Where one output file goes: ``files/<workflow>/<job>_<var>[_n].<ext>``, always inside root."""
        suffix = f"_{n}" if n else ""
        # Every part is sanitised (no separators, no leading dots), so the path cannot leave the folder;
        # the check below is a second lock that costs no system call.
        rel = os.path.join("files", safe_name(workflow), f"{safe_name(job_id)}_{safe_name(var)}{suffix}{safe_extension(server_name)}")
        path = os.path.normpath(os.path.join(self.root, rel))
        if not path.startswith(str(self.root) + os.sep):
            raise ValueError(f"refusing to write outside the output folder: {rel}")
        return Path(path)

    def relative(self, path: Path) -> str:
        text = str(path)
        if text.startswith(self._root_sep) and os.sep + ".." not in text:  # what path_for made: no relpath needed
            return text[len(self._root_sep):]
        return os.path.relpath(path, self.root)

    # -- writing -----------------------------------------------------------------------
    def record(self, rec: dict[str, Any]) -> None:
        """Keep one job's outcome: journal line now (the crash guarantee), sqlite in the next batch."""
        row = db.row_of(rec, sweep=self._sweep)
        with self._lock:
            _append(self._journal, (row[4] + "\n").encode("utf-8"))
            self._pending[row[0]] = row
            self._dirty = True
            now = time.monotonic()
            if len(self._pending) >= COMMIT_ROWS or now - self._last_commit > COMMIT_EVERY:
                self._commit_locked()
            if now - self._last_flush > FLUSH_EVERY:
                self._checkpoint_locked()

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
        if self._journal is not None:
            self._journal.truncate(0)
            self._journal.seek(0)
        self._last_flush = time.monotonic()

    def flush(self, *, force: bool = False) -> Path:
        """Commit, empty the journal, and export ``index.json`` (this part's, for a shard) atomically."""
        with self._lock:
            self._checkpoint_locked()
            index = self.home / INDEX
            if not (self._dirty or force) and index.exists():
                return index
            path = export_index(self._conn, self.name, index)
            if self.remote is not None:
                self._push()
            self._dirty = False
            return path

    def close(self) -> None:
        if self._conn is None:
            return
        self.flush()
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
            for c in [self._conn, *self._others]:
                c.close()
            self._conn, self._others = None, []


def _append(fh: Any, data: bytes) -> None:
    """Write all of ``data`` to an unbuffered file (a write to a nearly full disk may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[fh.write(view):]


@contextlib.contextmanager
def _unreadable_as(shown: str, advice: str) -> Iterator[None]:
    """A damaged sqlite file met inside is one ``UnreadableIndex`` line naming it (``shown``) and what to do."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if not db.is_corrupt(exc):
            raise
        raise db.UnreadableIndex(f"{shown}: {exc}; {advice}") from None


def _quietly(query: Callable[..., T], *args: Any) -> T | None:
    """A query of another shard's index: one that fails (being written on another node, a shared file
    system's stale view) reads as "not there", which costs at most a job run twice, never one skipped."""
    try:
        return query(*args)
    except sqlite3.DatabaseError as exc:
        logger.debug("another part's index could not be read: %s", exc)
        return None


class _ReadAhead:
    """A window onto the records in written order, a batch ahead of the jobs being asked about.

    Read a page at a time, each page a statement of its own, so the walk holds no read transaction
    while a long run consumes it (one would keep the writer's checkpoints from emptying the WAL).
    Records written after the walk began are not read; ``not_in``: only the records not placed in
    the sweep with this signature (a walk by position knows the others).
    """

    def __init__(self, conn: sqlite3.Connection | None, limit: int = 50_000, not_in: str | None = None) -> None:
        self._conn = conn
        self._window: OrderedDict[str, tuple[str, int | None, str]] = OrderedDict()
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

    def take(self, ids: Sequence[str]) -> dict[str, tuple[str, int | None, str]]:
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
    """The positions of completed jobs a run's walk found by id, noted in batches (``ResultStore._adopt``)."""

    def __init__(self, store: ResultStore, signature: str) -> None:
        self._store = store
        self._signature = signature
        self._waiting: list[tuple[int, str, str]] = []

    def add(self, jobs: Iterable[Job]) -> None:
        self._waiting += [(j.seq, self._signature, j.id) for j in jobs]
        if len(self._waiting) >= ADOPT_ROWS:
            self.flush()

    def flush(self) -> None:
        if self._waiting:
            self._store._adopt(self._waiting)
            self._waiting = []


class _Listing:
    """Which files the store's local folders hold, from one listing per folder instead of a ``stat`` per file.

    A file appears under its final name only once complete (written under a temporary name, then
    renamed), so being listed is the check (not its size: ``verify`` checks size and hash). A path
    is kept as its ``hash()``, a few times less memory than the string (a million names: ~70 MB
    instead of ~150 MB). Hashes are salted per process and never stored; a path absent from folders
    holding n names passes for present with a chance of about n / 2**64.
    """

    def __init__(self, root_sep: str) -> None:
        self._root = root_sep
        self._paths: set[int] = set()  # hash(relative path) of every name of the folders listed
        self._listed: set[str] = set()

    def has_all(self, files: str) -> bool:
        """Every file of a ``pack_files`` string is there (one file, the common case, without a generator)."""
        if "\n" not in files:
            return self.has(files.partition("\t")[0])
        return all(self.has(entry.partition("\t")[0]) for entry in files.split("\n"))

    def has(self, rel: str) -> bool:
        if hash(rel) in self._paths:
            return True
        folder = rel.rpartition(os.sep)[0]
        if folder in self._listed:
            return False
        self._list(folder)
        return hash(rel) in self._paths

    def _list(self, folder: str) -> None:
        self._listed.add(folder)
        prefix = folder + os.sep if folder else ""
        try:
            with os.scandir(self._root + folder) as entries:
                self._paths.update(hash(prefix + e.name) for e in entries)
        except OSError:  # no such folder: none of its files is there
            pass


def export_index(conn: sqlite3.Connection | None, name: str, dest: Path) -> Path:
    """Stream the records to ``dest`` as one JSON document, one job per line, in first-recorded order."""
    head = json.dumps({"manifest": name, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})[:-1]

    def chunks() -> Iterator[bytes]:
        yield f'{head}, "jobs": [\n'.encode()
        first = True
        for line in db.lines(conn) if conn is not None else ():
            yield ((b"" if first else b",\n") + line.encode("utf-8"))
            first = False
        yield b"\n]}\n" if not first else b"]}\n"

    return save_stream(chunks(), dest, fsync=True).path


def prepare_root(root: Path) -> None:
    """Make sure the folder's own sqlite exists and holds what older runs left (index.json, journal).

    Done under a lock on the folder, so shards starting together create and import it once (two
    processes creating one sqlite file in WAL mode at the same moment get "database is locked");
    the root journal is emptied only after its lines are committed.
    """
    with _folder_lock(root), contextlib.closing(db.connect(root / DB)) as conn:
        with db.exclusive(conn):
            if db.get_meta(conn, "imported") is None:
                n = import_index(conn, root / INDEX)
                db.set_meta(conn, "imported", "1")
                if n:
                    logger.info("imported %d records from %s", n, root / INDEX)
        if db.replay_journal(conn, root / JOURNAL):
            logger.info("replayed %s", root / JOURNAL)
        _truncate(root / JOURNAL)


@contextlib.contextmanager
def _folder_lock(root: Path) -> Iterator[None]:
    """An exclusive lock between processes on ``root/.lock`` (flock: also across nodes on NFS v4)."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: one process at a time is then the user's affair
        yield
        return
    with open(root / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def import_index(conn: sqlite3.Connection, index: Path) -> int:
    """Upsert an ``index.json``'s records (in the caller's transaction): an older folder's, or a lost part's."""
    if not index.exists():
        return 0
    try:
        rows = [db.row_of(rec, line) for rec, line in read_index(index)]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{index}: unreadable index ({exc}); move it away to start over") from None
    db.upsert(conn, rows, commit=False)
    return len(rows)


def read_index(index: Path) -> Iterator[tuple[dict[str, Any], str | None]]:
    """(record, its line) from an index.json: a line at a time when in this store's layout, else parsed whole."""
    with open(index, encoding="utf-8") as fh:
        first = fh.readline()
        if first.rstrip().endswith('"jobs": ['):
            for raw in fh:
                line = raw.rstrip().rstrip(",")
                if line in ("]}", ""):
                    continue
                yield json.loads(line), line
            return
    data = json.loads(index.read_text(encoding="utf-8"))  # an index edited or written by hand
    for rec in data.get("jobs", []):
        yield rec, None


def part_dirs(root: Path) -> list[Path]:
    """Every shard's folder under ``root/parts`` that holds an index, a journal or an ``index.json`` (its sqlite lost)."""
    base = Path(root) / PARTS
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and any((p / n).exists() for n in (DB, JOURNAL, INDEX)))


def other_dbs(root: Path, home: Path) -> list[Path]:
    """The indexes a shard consults for jobs it has not recorded itself: the folder's and the other parts'."""
    found = [root / DB] if (root / DB).exists() and home != root else []
    return found + [p / DB for p in part_dirs(root) if p != home and (p / DB).exists()]


def _truncate(path: Path) -> None:
    if path.exists() and path.stat().st_size:
        with open(path, "r+", encoding="utf-8") as fh:
            fh.truncate(0)

