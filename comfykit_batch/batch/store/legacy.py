"""The folder's own sqlite index made from what older runs left: a folder with only ``index.json`` and a journal.

Folders written before sqlite held their records in ``index.json`` (and a journal since it was last
written). The first open imports them once (a meta flag says so, so the export is never read back
over newer rows), and every open replays the folder's journal.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from . import index_db as db
from . import journal
from .index_json import import_index
from .layout import DB, INDEX, JOURNAL

logger = logging.getLogger("comfykit_batch.batch.store.legacy")

IMPORTED = "imported"  # meta key: the folder's index.json was imported into its sqlite
#: what to do about the folder's own index when it is damaged (a part's is rebuilt by ``merge``)
REBUILD_ROOT = ("move it (and its -wal and -shm files) away and run again: it is rebuilt from index.json, the journal "
                "and the parts (a job finished since index.json was last written runs again)")


def prepare_root(root: Path) -> int:
    """Make sure the folder's own sqlite exists and holds what older runs left (index.json, journal); how many
    records that added (its ``index.json`` is then behind it).

    Done under a lock on the folder, so shards starting together create and import it once (two
    processes creating one sqlite file in WAL mode at the same moment get "database is locked");
    the root journal is emptied only after its lines are committed.
    """
    imported = 0
    with _folder_lock(root), contextlib.closing(db.connect(root / DB)) as conn:
        with db.exclusive(conn):
            if db.get_meta(conn, IMPORTED) is None:
                imported = import_index(conn, root / INDEX)
                db.set_meta(conn, IMPORTED, "1")
                if imported:
                    logger.info("imported %d records from %s", imported, root / INDEX)
        replayed = journal.replay(conn, root / JOURNAL)
        if replayed:
            logger.info("replayed %s", root / JOURNAL)
        journal.truncate(root / JOURNAL)
    return imported + replayed


@contextlib.contextmanager
def _folder_lock(root: Path) -> Iterator[None]:
    """An exclusive lock between processes on ``root/.lock`` (flock: also across nodes on NFS v4)."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: one process at a time is then the user's affair
        yield
        return
    with open(root / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
