"""Input sets (``{from: "photos/*.jpg"}``, ``{from: photos/, ext: [png]}``) and the content of local input files.

An input set is a list of file paths, made when the manifest loads, so it goes wherever a list of values
goes. A ``{from: ...}`` is an input set, not a value file, when its ``from`` ends with ``/``, holds a glob
character (``*``, ``?``, ``[``), or ``ext:`` is given; a value file (``prompts.txt``) is read line by line.

A job follows its inputs' content, not their paths: a local file given to an upload parameter enters
the job id as its sha256 (``Sweep``), so an edited file makes a new job and a moved folder none. Each file
is hashed once: digests are kept by (absolute path, size, mtime_ns) in this process and in a small sqlite
file in the user's cache folder, so a million-file resume costs a ``stat`` per file, not a read.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...result import AUDIO_EXT, IMAGE_EXT, VIDEO_EXT
from .manifest_text import Context, Path_, key_path

logger = logging.getLogger("comfykit_batch.inputs")

#: what a folder gives without ``ext:``: the files a load node (image, video, audio, mask) takes
MEDIA_EXT = IMAGE_EXT | VIDEO_EXT | AUDIO_EXT
GLOB_CHARS = frozenset("*?[")
#: an input set's names the dry run shows
SHOWN = 3
CHUNK = 1 << 20


# -- input sets --------------------------------------------------------------------------------------
def is_input_set(node: Any) -> bool:
    """A ``{from: ...}`` naming files, not a value file: ``from`` ends with ``/``, has a glob character, or ``ext:`` is given."""
    if not (isinstance(node, dict) and isinstance(node.get("from"), str) and set(node) <= {"from", "ext", "column"}):
        return False
    pattern = node["from"]
    return "ext" in node or pattern.endswith("/") or not GLOB_CHARS.isdisjoint(pattern)


@dataclass(frozen=True)
class InputSet:
    """One input set as the dry run shows it: where the manifest writes it, its pattern, and what it matched."""

    where: str
    pattern: str
    count: int
    first: tuple[str, ...]

    def line(self) -> str:
        more = ", ..." if self.count > len(self.first) else ""
        files = f"{self.count:,} file{'s' if self.count != 1 else ''}"
        return f"input set {self.where}: {self.pattern} ({files}: {', '.join(self.first)}{more})"


#: the input sets each manifest being read has met (the value-file readers only pass the ``Context`` along)
_FOUND: weakref.WeakKeyDictionary[Context, list[InputSet]] = weakref.WeakKeyDictionary()


def found(ctx: Context) -> list[InputSet]:
    """The input sets read so far for the manifest ``ctx`` reads, in the order met."""
    return list(_FOUND.get(ctx, ()))


def _extensions(spec: Mapping[str, Any], where: Path_, ctx: Context) -> frozenset[str] | None:
    """The extensions kept (lower case, with the dot); None keeps every file a glob matches."""
    ext = spec.get("ext")
    if ext is None:
        return MEDIA_EXT if spec["from"].endswith("/") else None
    listed = [ext] if isinstance(ext, str) else ext
    if not isinstance(listed, list) or not listed or not all(isinstance(e, str) and e.strip(". ") for e in listed):
        raise ctx.error((*where, "ext"), f"expected a list of extensions (e.g. [png, jpg]), got {ext!r}")
    return frozenset("." + e.strip().lstrip(".").lower() for e in listed)


def _matches(pattern: str, base: Path) -> list[str]:
    """Absolute paths of the files the pattern matches, relative to ``base`` unless absolute; ``**`` recurses.
    A folder (``photos/``, or ``photos`` with ``ext:``) stands for the files in it."""
    pattern = os.path.expanduser(pattern)
    full = pattern if os.path.isabs(pattern) else os.path.join(glob.escape(str(base)), pattern)
    if pattern.endswith("/") or (GLOB_CHARS.isdisjoint(pattern) and os.path.isdir(full)):
        full = os.path.join(full, "*")
    return [os.path.abspath(p) for p in glob.glob(full, recursive=True) if os.path.isfile(p)]


def input_set(spec: Mapping[str, Any], where: Path_, ctx: Context) -> list[str]:
    """The files an input set names, sorted by their path relative to the manifest: absolute paths, as uploads take them."""
    if "column" in spec:
        raise ctx.error((*where, "column"), f"{spec['from']}: column: applies to value files; an input set lists files")
    keep = _extensions(spec, where, ctx)
    files = [p for p in _matches(spec["from"], ctx.base) if keep is None or os.path.splitext(p)[1].lower() in keep]
    if not files:
        shown = f" with extension {', '.join(sorted(keep))}" if spec.get("ext") is not None and keep else ""
        raise ctx.error(where, f"{spec['from']}: no files match{shown}")
    names = sorted((relative(p, ctx.base), p) for p in files)
    _FOUND.setdefault(ctx, []).append(InputSet(key_path(where), spec["from"], len(names), tuple(n for n, _ in names[:SHOWN])))
    return [p for _, p in names]


def relative(path: str, base: Path | None) -> str:
    """``path`` relative to ``base`` (the manifest's folder) with ``/`` separators; as it is without a base."""
    if base is None:
        return path
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive (Windows)
        return path


# -- content -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputFile:
    """A local input file as a job's id and record know it."""

    path: str  # relative to the manifest's folder
    size: int
    sha256: str

    def record(self, param: str) -> dict[str, Any]:
        return {"param": param, "path": self.path, "size": self.size, "sha256": self.sha256}


def local_file(value: Any) -> str | None:
    """The absolute path an upload value names when it is a local file (as ``uploads.classify`` decides), else None."""
    if not isinstance(value, str) or not value or value.startswith(("data:", "http://", "https://")):
        return None
    path = os.path.abspath(os.path.expanduser(value))
    return path if os.path.isfile(path) else None


def sha256_of(path: str) -> str:
    """The file's sha256 (hex), read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def default_cache_file() -> Path:
    """Where digests persist across runs: the user's cache folder (``XDG_CACHE_HOME``, else ``~/.cache``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "comfykit_batch" / "input-hashes.sqlite"


class HashCache:
    """sha256 of local files by (absolute path, size, mtime_ns): in memory, and in a sqlite file when it can be used.

    The file is only a shortcut: one that cannot be opened or written (read-only, locked by another shard)
    is left alone with a debug line and the digests are computed again.
    """

    def __init__(self, file: Path | None = None) -> None:
        self.file = file
        self._memory: dict[tuple[str, int, int], str] = {}
        self._pending: list[tuple[str, int, int, str]] = []
        self._conn: sqlite3.Connection | None = None
        self._opened = False
        self._lock = threading.Lock()

    def digest(self, path: str) -> tuple[int, str]:
        """(size, sha256) of the file at the absolute ``path``; raises ``OSError`` when it cannot be read."""
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        with self._lock:
            known = self._memory.get(key) or self._stored(key)
        if known is None:
            known = sha256_of(path)
            with self._lock:
                self._pending.append((*key, known))
                if len(self._pending) >= 1000:
                    self._flush()
        with self._lock:
            self._memory[key] = known
        return st.st_size, known

    def flush(self) -> None:
        """Write the digests computed since the last flush to the cache file."""
        with self._lock:
            self._flush()

    def _stored(self, key: tuple[str, int, int]) -> str | None:
        conn = self._connection()
        if conn is None:
            return None
        try:
            row = conn.execute("SELECT sha256 FROM files WHERE path=? AND size=? AND mtime_ns=?", key).fetchone()
        except sqlite3.Error as exc:
            self._give_up(exc)
            return None
        return str(row[0]) if row else None

    def _flush(self) -> None:
        conn, pending, self._pending = self._connection(), self._pending, []
        if conn is None or not pending:
            return
        try:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", pending)
        except sqlite3.Error as exc:
            self._give_up(exc)

    def _connection(self) -> sqlite3.Connection | None:
        if self._opened or self.file is None:
            return self._conn
        self._opened = True
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.file, timeout=5, check_same_thread=False)
            conn.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT)")
            self._conn = conn
        except (OSError, sqlite3.Error) as exc:
            self._give_up(exc)
        return self._conn

    def _give_up(self, exc: Exception) -> None:
        logger.debug("input hash cache %s not used: %s", self.file, exc)
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def close(self) -> None:
        self.flush()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_SHARED: dict[Path, HashCache] = {}


def shared_cache() -> HashCache:
    """This process's cache over the default cache file (one per file, so a run and its dry run share digests)."""
    file = default_cache_file()
    if file not in _SHARED:
        _SHARED[file] = HashCache(file)
    return _SHARED[file]


def contents_of(values: Iterable[str], base: Path | None, cache: HashCache) -> dict[str, InputFile]:
    """value -> its file's content, for each value that names a readable local file (others are left to the job,
    which fails alone, as ``upload``, when it cannot read its file)."""
    out: dict[str, InputFile] = {}
    for value in values:
        path = local_file(value)
        if path is None or value in out:
            continue
        try:
            size, sha = cache.digest(path)
        except OSError:
            continue
        out[value] = InputFile(relative(path, base), size, sha)
    cache.flush()
    return out


def upload_values(pairs: Iterator[tuple[str, Any, Path_]], names: frozenset[str]) -> Iterator[str]:
    """The text values given to upload parameters among a block's (parameter, value, key path)."""
    return (value for name, value, _ in pairs if name in names and isinstance(value, str))


def upload_names(workflows: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """workflow name -> its upload parameters (marked ``~`` or a load node's file), for ``Sweep(uploads=...)``."""
    return {name: frozenset(p.name for p in wf.parameters.values() if p.upload) for name, wf in workflows.items()}
