"""Whether a completed job's output files are still there: what makes a resume run a job again.

A record packs its files as ``path\\tsize\\tsha256`` lines (``index_db.pack_files``). A job is only
skipped when each file is where the record says, with its size (and its hash, with ``verify``). The
remote folder's check (one listing of the bucket) is the mirror's, in ``remote.py``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ...files import sha256_file
from . import index_db as db


class FilesCheck(Protocol):
    """How a store checks a completed job's files (a local folder, or a remote one's mirror)."""

    def files_ok(self, files: str, verify: bool) -> bool: ...


class LocalFiles:
    """The files of a local output folder, each checked with a ``stat`` (and hashed, with ``verify``)."""

    def __init__(self, root: Path) -> None:
        self._root_sep = str(root) + os.sep

    def files_ok(self, files: str, verify: bool) -> bool:
        for rel, size, sha in db.unpack_files(files):
            path = self._root_sep + rel
            try:
                if os.stat(path).st_size != size:
                    return False
            except OSError:
                return False
            if verify and sha256_file(Path(path)) != sha:
                return False
        return True

    def listing(self) -> Callable[[str], bool]:
        """A check of many jobs' files against one listing per folder (see ``Listing``)."""
        return Listing(self._root_sep).has_all


def bulk_check(files: FilesCheck, verify: bool) -> Callable[[str], bool]:
    """How a walk of many completed jobs checks their files: size and hash of each (``verify``), the remote
    folder's one listing, else one listing of each local folder."""
    if isinstance(files, LocalFiles) and not verify:
        return files.listing()
    return functools.partial(files.files_ok, verify=verify)


class Listing:
    """Which files a local folder holds, from one listing per folder instead of a ``stat`` per file.

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
