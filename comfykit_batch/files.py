"""Writing files to disk safely: atomic replace, hashed on the way, names that cannot escape a folder.

No network here: the store and the executors both write through this module.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


def safe_name(text: str, limit: int = 64) -> str:
    """A file-name part made only of ``[A-Za-z0-9_.-]``, without leading dots: it cannot name a folder or escape one."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")[:limit] or "x"


def safe_extension(filename: str) -> str:
    """The lower-case extension of a server's file name if it is plain (``.png``), else ``.bin``."""
    ext = os.path.splitext(filename)[1].lower()
    return ext if re.fullmatch(r"\.[a-z0-9]{1,10}", ext) else ".bin"


@dataclass(frozen=True)
class Saved:
    """A file written to disk, with what the index records of it."""

    path: Path
    size: int
    sha256: str


def save_stream(chunks: Iterable[bytes], dest: Path, *, fsync: bool = False) -> Saved:
    """Write chunks to ``dest`` atomically (temp file + rename), hashing as it goes.

    A reader sees the old file or the new one, never half of one; ``fsync`` also makes the new
    one survive a power cut (for the index, not for every output file).
    """
    digest = hashlib.sha256()
    size = 0
    tmp = dest.with_name(f".{dest.name}.part")  # one writer per destination: no random name needed
    try:
        with _create(tmp) as fh:
            for chunk in chunks:
                if chunk:
                    fh.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return Saved(dest, size, digest.hexdigest())


def _create(path: Path) -> BinaryIO:
    """``path`` opened for writing, its folder made only when missing (a batch writes thousands of files into one)."""
    try:
        return open(path, "wb")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "wb")


def sha256_file(path: Path, chunk: int = CHUNK) -> str | None:
    """Hash of a file on disk, or None when it is missing."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while True:
                block = fh.read(chunk)
                if not block:
                    return digest.hexdigest()
                digest.update(block)
    except FileNotFoundError:
        return None
