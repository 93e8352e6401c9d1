"""Downloads from third-party URLs (workflow files, input images, cookie files).

A separate, credential-free session: the ComfyUI or RunningHub keys are never
sent to a host they do not belong to (the published package leaked them here).
Downloads stream to disk and are hashed on the way, so memory stays flat.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import requests

from .uploads import UploadSource

DEFAULT_TIMEOUT = (10.0, 120.0)
CHUNK = 1 << 20
MAX_INPUT_BYTES = 512 << 20

_local = threading.local()


def _session() -> requests.Session:
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
        s.trust_env = True
    return s


def fetch_bytes(url: str, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT, limit: int = MAX_INPUT_BYTES) -> bytes:
    """GET a public URL with no credentials at all; raise ``requests.RequestException`` on failure."""
    with _session().get(url, stream=True, timeout=timeout) as r:
        r.raise_for_status()
        buf = bytearray()
        for chunk in r.iter_content(CHUNK):
            buf += chunk
            if len(buf) > limit:
                raise requests.RequestException(f"download larger than {limit >> 20} MB")
        return bytes(buf)


def upload_bytes(src: UploadSource) -> bytes:
    """The bytes of a local path, URL (fetched without credentials) or in-memory upload value.

    Raises ``requests.RequestException`` when a URL cannot be fetched; a "server" value has no bytes.
    """
    if src.kind == "path":
        assert src.path is not None
        return src.path.read_bytes()
    if src.kind == "url":
        assert src.url is not None
        return fetch_bytes(src.url)
    if src.kind == "bytes":
        return src.data or b""
    raise ValueError(f"{src.describe()} is already on the server: nothing to read")


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
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    tmp = dest.with_name(f".{dest.name}.part")  # one writer per destination: no random name needed
    try:
        with open(tmp, "wb") as fh:
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
