"""The output folder of one manifest: files, ``index.json``, and the journal behind it.

Each finished job is appended to ``journal.jsonl`` as one flushed line the
moment it ends, so a crash, a kill or Ctrl-C loses nothing finished. The index
is rewritten from memory now and then and at the end, atomically (temp file +
rename), so it is never half-written; a re-run reads index + journal. Every
file name is made here from the job id and the output variable, never from a
name the server sent, so nothing can land outside the folder.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from ..files import safe_extension, safe_name, save_stream, sha256_file

INDEX = "index.json"
JOURNAL = "journal.jsonl"
MANIFEST_COPY = "manifest.yaml"
FLUSH_EVERY = 30.0  # seconds between index rewrites during a run (the journal covers the gap)


class _Entry(NamedTuple):
    """One job's record as kept in memory: what resuming needs, plus the record as a JSON line.

    A 100,000-job index held as dicts costs hundreds of MB and slows the garbage collector;
    as strings and flat tuples it is a fraction of that.
    """

    status: str
    files: tuple[tuple[str, int, str], ...]  # (relative path, size, sha256)
    line: str


def _entry(rec: dict[str, Any], line: str | None = None) -> _Entry:
    files = tuple((f["path"], int(f["size"]), f.get("sha256", "")) for f in rec.get("files") or [])
    return _Entry(str(rec.get("status")), files, line or json.dumps(rec, ensure_ascii=False, separators=(",", ":"), default=str))


class ResultStore:
    """Records and files of one manifest's runs; thread-safe."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = Path(root).resolve()
        self.name = name
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._journal: Any = None
        self._last_flush = time.monotonic()
        self._dirty = False

    # -- opening ------------------------------------------------------------------
    def open(self, manifest_text: str | None = None) -> ResultStore:
        self.root.mkdir(parents=True, exist_ok=True)
        index = self.root / INDEX
        if index.exists():
            try:
                self._load_index(index)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{index}: unreadable index ({exc}); move it away to start over") from None
        journal = self.root / JOURNAL
        if journal.exists():
            for line in journal.read_text(errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                    self._entries[rec["id"]] = _entry(rec, line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill: that job simply runs again
                self._dirty = True
        if manifest_text is not None:
            self._write_atomic(self.root / MANIFEST_COPY, manifest_text)
        self._journal = open(journal, "a", encoding="utf-8")
        return self

    def _load_index(self, index: Path) -> None:
        """Read the index a line at a time (as this store writes it); any other layout is parsed whole."""
        with open(index, encoding="utf-8") as fh:
            first = fh.readline()
            if first.rstrip().endswith('"jobs": ['):
                entries: dict[str, _Entry] = {}
                for raw in fh:
                    line = raw.rstrip().rstrip(",")
                    if line in ("]}", ""):
                        continue
                    rec = json.loads(line)
                    entries[rec["id"]] = _entry(rec, line)
                self._entries.update(entries)
                return
        data = json.loads(index.read_text(encoding="utf-8"))  # an index edited or written by hand
        for rec in data.get("jobs", []):
            self._entries[rec["id"]] = _entry(rec)

    # -- queries -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def ids(self) -> set[str]:
        return set(self._entries)

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The full record of a job, or None."""
        e = self._entries.get(job_id)
        return json.loads(e.line) if e else None

    def status(self, job_id: str) -> str | None:
        e = self._entries.get(job_id)
        return e.status if e else None

    def is_complete(self, job_id: str, *, verify: bool = False) -> bool:
        """Completed earlier and its files are still there (same size; same hash with ``verify``)."""
        e = self._entries.get(job_id)
        if not e or e.status != "completed":
            return False
        for rel, size, sha in e.files:
            path = os.path.join(self.root, rel)
            try:
                if os.stat(path).st_size != size:
                    return False
            except OSError:
                return False
            if verify and sha256_file(Path(path)) != sha:
                return False
        return True

    def settled(self, job_id: str, *, retry_failed: bool = False, verify: bool = False) -> bool:
        """Nothing to do for this job: completed with its files, or failed and not to be retried."""
        if self.is_complete(job_id, verify=verify):
            return True
        return not retry_failed and self.status(job_id) == "failed"

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
        return os.path.relpath(path, self.root)

    # -- writing -----------------------------------------------------------------------
    def record(self, rec: dict[str, Any]) -> None:
        """Keep one job's outcome: journal line now, index later."""
        entry = _entry(rec)
        with self._lock:
            self._entries[rec["id"]] = entry
            self._dirty = True
            self._journal.write(entry.line + "\n")
            self._journal.flush()
            due = time.monotonic() - self._last_flush > FLUSH_EVERY
        if due:
            self.flush()

    def flush(self) -> Path:
        """Rewrite index.json atomically from memory, then empty the journal it now contains."""
        with self._lock:
            if not self._dirty and (self.root / INDEX).exists():
                return self.root / INDEX
            head = json.dumps({"manifest": self.name, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})[:-1]

            def chunks() -> Iterator[bytes]:
                # One job per line: readable, diff-able, streamed (never the whole index in memory twice).
                yield f'{head}, "jobs": [\n'.encode()
                n = len(self._entries)
                for i, e in enumerate(self._entries.values(), 1):
                    yield (e.line + (",\n" if i < n else "\n")).encode("utf-8")
                yield b"]}\n"

            path = save_stream(chunks(), self.root / INDEX, fsync=True).path
            self._dirty = False
            if self._journal is not None:
                self._journal.truncate(0)
                self._journal.seek(0)
            self._last_flush = time.monotonic()
            return path

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    @staticmethod
    def _write_atomic(path: Path, text: str) -> Path:
        return save_stream([text.encode("utf-8")], path, fsync=True).path
