"""``comfykit-batch merge``: combine the shards' parts of an output folder into its ``index.json``.

Opening the folder's store folds the parts in (``fold.py``), rebuilding a damaged one where it can
(``repair.py``); this writes the combined ``index.json`` and says what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..spec.location import is_remote_folder
from .fold import Conflict, FoldReport
from .layout import manifest_name, part_dirs
from .store import ResultStore


@dataclass(frozen=True)
class MergeResult:
    """What ``merge`` wrote: the combined index, its counts by status, how many parts it read, and what was wrong."""

    index: Path
    counts: dict[str, int]
    parts: int
    rebuilt: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    @property
    def clean(self) -> bool:
        """Every part was read and no two disagree: the index holds every job the parts did, once."""
        return not (self.lost or self.conflicts)


def merge_output(root: Path | str, name: str | None = None, *, local: Path | None = None) -> MergeResult:
    """Combine every part of ``root`` (a folder, or a remote URL mirrored in ``local``) into ``root/index.json``.

    A damaged part is rebuilt where it can be; the result names the parts rebuilt, those left out and
    the conflicts (``clean`` is False for the last two). The folder's own index unreadable: ``UnreadableIndex``.
    """
    if not is_remote_folder(root) and not Path(root).is_dir():
        raise FileNotFoundError(f"{root}: no such output folder")
    store = ResultStore(root, name or "", local=local).open(repair=True)
    try:
        store.name = name or manifest_name(store.root)
        index = store.flush(force=True)
        counts = store.counts()
        parts = len(part_dirs(store.root))
        report = store.fold_report or FoldReport()
    finally:
        store.close()
    return MergeResult(index, counts, parts, report.rebuilt, report.lost, report.conflicts)
