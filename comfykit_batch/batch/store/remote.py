"""An output folder on object storage (``s3://bucket/prefix``, ``gs://...``), through fsspec, and its local mirror.

The store keeps its sqlite index, journal and the file being downloaded on local disk (sqlite needs
real file locks; a half-downloaded file must never be visible), and hands each finished file here
to be put in place: streamed from the local file, never read whole into memory. The mirror brings
the indexes in when a store opens (a resume on another node, the other shards' parts) and copies its
own out at each flush. Credentials come
from the usual environment of each backend (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, instance roles,
...): nothing here takes or stores one, and a URL is shown without any ``user:password@``.
``fsspec`` (and ``s3fs`` for S3) is an optional extra: ``pip install 'comfykit-batch[s3]'``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

from ...errors import UsageError
from ..spec.location import display_url
from . import index_db as db
from .layout import DB, INDEX, MANIFEST_COPY, PARTS

logger = logging.getLogger("comfykit_batch.batch.store.remote")

CHUNK = 1 << 20


class RemoteFolder:
    """One remote folder: put, get, size and list files by their path relative to it."""

    def __init__(self, url: str) -> None:
        if "?" in url:
            raise UsageError(f"output {display_url(url)}: a URL with ?query is refused (credentials come from the environment)")
        try:
            import fsspec
        except ImportError:
            raise UsageError(f"output {display_url(url)}: remote outputs need fsspec (and s3fs for s3://): "
                             "pip install 'comfykit-batch[s3]'") from None
        self.url = url.rstrip("/")
        try:
            self.fs, self.base = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as exc:
            raise UsageError(f"output {display_url(url)}: {exc}") from None
        self.base = self.base.rstrip("/")

    def __str__(self) -> str:
        return display_url(self.url)

    def _full(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def put(self, local: Path, rel: str) -> None:
        """Upload a local file (streamed by the backend: multipart for large ones)."""
        self.fs.put_file(str(local), self._full(rel))

    def get(self, rel: str, local: Path) -> bool:
        """Download to ``local`` (via a temp name, so a cut download is never taken for the file); False if absent."""
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.part")
        try:
            self.fs.get_file(self._full(rel), str(tmp))
        except FileNotFoundError:
            return False
        os.replace(tmp, local)
        return True

    def size(self, rel: str) -> int | None:
        try:
            info: dict[str, Any] = self.fs.info(self._full(rel))
        except FileNotFoundError:
            return None
        return int(info.get("size") or 0)

    def sizes(self, prefix: str) -> dict[str, int]:
        """Every file under ``prefix`` -> its size, in one listing (a resume checks outputs against it)."""
        try:
            found: dict[str, dict[str, Any]] = self.fs.find(self._full(prefix), detail=True)
        except FileNotFoundError:
            return {}
        cut = len(self.base) + 1
        return {name[cut:]: int(info.get("size") or 0) for name, info in found.items()}

    def sha256(self, rel: str) -> str | None:
        digest = hashlib.sha256()
        try:
            with self.fs.open(self._full(rel), "rb") as fh:
                while block := fh.read(CHUNK):
                    digest.update(block)
        except FileNotFoundError:
            return None
        return digest.hexdigest()

    def children(self, prefix: str) -> list[str]:
        """Names of the folders directly under ``prefix`` (the shards' parts)."""
        try:
            entries = self.fs.ls(self._full(prefix), detail=False)
        except FileNotFoundError:
            return []
        return sorted(str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)


class Mirror:
    """The local side of a remote folder: ``root`` mirrors ``remote``; ``home`` is this store's own (a shard's part).

    Thread-safe: finished files are put in place from the runner's worker threads.
    """

    def __init__(self, remote: RemoteFolder, root: Path, home: Path) -> None:
        self.remote = remote
        self.root = root
        self.home = home
        self._sizes: dict[str, int] | None = None  # the remote files/ listing, once a resume asked
        self._lock = threading.Lock()

    def _rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root)

    def pull(self) -> None:
        """Bring what the remote folder holds that this node lacks: the index (a resume elsewhere) and the parts'."""
        own = self.home / DB
        if not own.exists() and not self.remote.get(self._rel(own), own) and self.home == self.root:
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

    def push(self) -> None:
        """Copy this store's index out (its sqlite file must hold every row: the caller emptied the WAL)."""
        for path in (self.home / DB, self.home / INDEX, self.home / MANIFEST_COPY, self.root / MANIFEST_COPY):
            if path.exists():
                self.remote.put(path, self._rel(path))

    def put_file(self, path: Path, rel: str) -> None:
        """Put a finished output file in place (streamed from the local file), then remove the local copy."""
        size = os.stat(path).st_size
        self.remote.put(path, rel)
        os.unlink(path)
        with self._lock:
            if self._sizes is not None:
                self._sizes[rel] = size

    def files_ok(self, files: str, verify: bool) -> bool:
        """Every file of a completed job is there with its size (and hash, with ``verify``), against one listing
        of the remote ``files/`` (not a request per file)."""
        with self._lock:
            if self._sizes is None:
                self._sizes = self.remote.sizes("files")
            sizes = self._sizes
        return all(sizes.get(rel) == size and not (verify and self.remote.sha256(rel) != sha)
                   for rel, size, sha in db.unpack_files(files))
