"""What an output folder holds: its file names, the shards' parts, and the copy of the manifest.

Stated once here, so the store, the merge, the mirror and the reports' read-only view all name the
same files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import yaml

from ...files import save_stream

INDEX = "index.json"
JOURNAL = "journal.jsonl"
DB = "index.sqlite"
PARTS = "parts"
MANIFEST_COPY = "manifest.yaml"


class PartLike(Protocol):
    """What the store needs of a shard: which of how many (read-only, as ``Shard``'s frozen fields are)."""

    @property
    def index(self) -> int: ...

    @property
    def count(self) -> int: ...


def part_name(part: PartLike) -> str:
    """``0003-of-0064``: sorts in shard order; the count is part of the name, so N may change."""
    return f"{part.index:04d}-of-{part.count:04d}"


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


def manifest_name(root: Path) -> str:
    """The manifest's name from the folder's copy of it (the folder's name if that is unreadable)."""
    try:
        data = yaml.safe_load((root / MANIFEST_COPY).read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            return data["name"]
    except (OSError, yaml.YAMLError):
        pass
    return root.name


def write_manifest(root: Path, home: Path, text: str) -> None:
    """Keep the manifest as used: the folder's copy, and a shard's own (``home`` is its part's folder).

    Shards start together: each keeps its own copy; the shared one is written once, by whoever is first.
    """
    if home == root:
        save_stream([text.encode("utf-8")], root / MANIFEST_COPY, fsync=True)
        return
    save_stream([text.encode("utf-8")], home / MANIFEST_COPY, fsync=True)
    try:
        with open(root / MANIFEST_COPY, "x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        pass
