"""Where an output folder is: a local path or an object-storage URL (``s3://bucket/prefix``), and how to show it.

Pure text: the manifest reads these to know what its ``output`` names, and the store's mirror
(``store.remote``, the only code that talks to object storage) uses them to name a folder.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from ...uploads import redact_url


def is_remote_folder(output: str | os.PathLike[str]) -> bool:
    """An fsspec URL other than a local ``file://`` one."""
    text = os.fspath(output)
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text)) and not text.startswith("file://")


def display_url(url: str) -> str:
    """The URL as it may be shown: no ``user:password@``, no ``?query``."""
    return redact_url(url, query_mark="")


def local_home(url: str) -> Path:
    """Where the local side (sqlite, journal, downloads in progress) of a remote folder lives by default."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "comfykit_batch" / "remote"
    return base / hashlib.sha256(display_url(url).encode()).hexdigest()[:20]
