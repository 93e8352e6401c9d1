"""The output folder of one manifest, as a run uses it: open it, walk a sweep against it, record outcomes, close it.

A facade over the rooms of the store: ``live_index`` (sqlite, the journal, ``index.json``), ``resume``
(the walk), ``parts`` and ``fold`` (shards), ``remote`` (an object-storage folder's mirror),
``legacy`` (a folder written before sqlite) and ``folder`` (where files go).

A sharded run (``part=Shard``) keeps its own index in ``parts/0003-of-0064/`` and consults the
others'; the unsharded store folds every part into its own index when it opens (that is what
``merge`` does). The folder may be remote (``s3://bucket/prefix``): the index, journal and
downloads in progress stay on local disk, each finished file is put in place by ``commit_file``,
and ``flush`` copies the index out.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from . import index_db as db
from .files_check import FilesCheck, LocalFiles
from .fold import FoldReport, open_folded
from .folder import OutputFolder
from .layout import DB, INDEX, JOURNAL, PartLike, write_manifest
from .legacy import REBUILD_ROOT, prepare_root
from .live_index import LiveIndex
from .parts import OtherIndexes, open_part
from .records import JobRecord
from .remote import Mirror
from .resume import COMPLETED, FAILED, MISSING, NEW, TRANSIENT, J, ResumeWalk

# the states of a walk and the file names, as the run room imports them from here
__all__ = ["COMPLETED", "DB", "FAILED", "INDEX", "JOURNAL", "MISSING", "NEW", "TRANSIENT", "ResultStore"]


class ResultStore(OutputFolder):
    """Records and files of one manifest's runs (one shard's, with ``part``); thread-safe."""

    def __init__(self, root: Path | str, name: str, part: PartLike | None = None, *, local: Path | None = None) -> None:
        super().__init__(root, part, local=local)
        self.name = name
        self._mirror = Mirror(self.remote, self.root, self.home) if self.remote is not None else None
        self._files: FilesCheck = self._mirror or LocalFiles(self.root)
        self._index: LiveIndex | None = None
        self._others = OtherIndexes([])
        self._sweep: str | None = None  # the signature of the sweep whose positions records' ``seq`` are
        self.fold_report: FoldReport | None = None  # what the unsharded store's open found folding the parts

    def open(self, manifest_text: str | None = None, *, repair: bool = False) -> ResultStore:
        """Open (or create) the index; a damaged one is ``index_db.UnreadableIndex`` naming it and what to do.

        The unsharded store folds the parts in; ``repair`` (``merge``): a damaged part is rebuilt from its
        ``index.json`` and journal instead of being left out (see ``fold_report``).
        """
        self.home.mkdir(parents=True, exist_ok=True)
        if self._mirror is not None:
            self._mirror.pull()
        with db.unreadable_as(self.shown(self.root / DB), REBUILD_ROOT):
            recovered = prepare_root(self.root)  # a kill's journal; a folder written before sqlite (index.json)
            if self.part is None:
                conn, self.fold_report = open_folded(self.root, repair=repair, remote=self.remote)
                dirty = bool(recovered or self.fold_report.folded)  # index.json lacks them: written again at close
        if self.part is not None:  # outside: a damaged part's index is named with the advice for a part
            conn, dirty = self._open_part()
        if manifest_text is not None:
            write_manifest(self.root, self.home, manifest_text)
        self._index = LiveIndex(conn, self.home, dirty=dirty, mirror=self._mirror)
        return self

    def _open_part(self) -> tuple[sqlite3.Connection, bool]:
        """This shard's own index, and whether its journal added anything; the other indexes it consults."""
        conn, replayed = open_part(self.home, self.shown(self.home / DB))
        self._others = OtherIndexes.of(self.root, self.home)
        return conn, bool(replayed)

    def _live(self) -> LiveIndex:
        if self._index is None:
            raise ValueError(f"{self.shown(self.home / DB)}: the store is not open")
        return self._index

    # -- a run -------------------------------------------------------------------------
    def use_sweep(self, signature: str) -> None:
        """The records from now on are of the sweep signed ``signature``: their ``seq`` is kept as a position in it,
        and a ``walk`` of that sweep notes the position of the completed jobs it had to find by id."""
        self._sweep = signature

    def walk(self, jobs: Iterable[J], *, verify: bool = False, chunk: int = 512) -> Iterator[tuple[J | None, str]]:
        """``(job, state)`` for each job, in order; a whole ``Sweep`` is walked by position (see ``ResumeWalk.walk``)."""
        return ResumeWalk(self._live(), self._others, self._files, self._sweep).walk(jobs, verify=verify, chunk=chunk)

    def commit_file(self, path: Path) -> str:
        """An output file written at ``path_for(...)`` is final: put it in place; returns its path for the record.

        Local folder: nothing to do. Remote folder: uploaded (streamed from the local file), then the
        local copy is removed, so a node's disk holds only the downloads in progress.
        """
        rel = self.relative(path)
        if self._mirror is not None:
            self._mirror.put_file(path, rel)
        return rel

    def record(self, rec: JobRecord | Mapping[str, Any]) -> None:
        """Keep one job's outcome: journal line now (the crash guarantee), sqlite in the next batch."""
        fields = rec.to_dict() if isinstance(rec, JobRecord) else rec
        self._live().record(db.row_of(fields, sweep=self._sweep))

    def flush(self, *, force: bool = False) -> Path:
        """Commit, empty the journal, and export ``index.json`` (this part's, for a shard) atomically."""
        return self._live().flush(self.name, force=force)

    def close(self) -> None:
        if self._index is None:
            return
        self._index.flush(self.name)
        self._index.close()
        self._others.close()
        self._index = None

    # -- what it holds -------------------------------------------------------------------
    def __len__(self) -> int:
        """Jobs recorded in this store's own index (for a shard: its part only)."""
        return self._live().count()

    def counts(self) -> dict[str, int]:
        """``{status: jobs}`` of this store's own index (the unsharded store includes every part)."""
        return self._live().counts()

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The full record of a job (here, else in another part), or None."""
        line = self._live().line(job_id)
        if line is None:
            line = self._others.line(job_id)
        return json.loads(line) if line is not None else None

    def records(self, last: int | None = None) -> Iterator[dict[str, Any]]:
        """Every record of this store's own index, streamed in first-recorded order (never all in memory); with
        ``last``, only the last that many, the latest first (where an earlier run left off)."""
        if last is not None:
            return (json.loads(line) for line in self._live().streamed(db.recent_lines, last))
        return self._live().records()

    def ids(self) -> set[str]:
        """Every recorded id of this store's own index; a set of a million ids costs ~100 MB."""
        return set(self._live().streamed(db.ids))
