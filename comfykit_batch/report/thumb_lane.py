"""Thumbnails made while a batch runs, so the end of the run has almost none left to make.

Making every thumbnail at the end kept the run alive for minutes after its last job (about 18 ms of
CPU for each 1024 px PNG, one after another). Here each finished job's images are made into
thumbnails as soon as its record is stored, from the files the runner has just written (still in the
page cache), on a few threads of their own at a lower priority than the job slots. The lane never
holds up the runner: ``submit`` only puts the record on a bounded queue and, when that is full, drops
it; the end-of-run gallery makes what the lane dropped or had no time for. Thumbnails land where the
gallery looks (``thumbs.thumb_name``), so it simply finds them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .thumbs import SIZE, Maker, image_files, make_thumb, thumb_name

log = logging.getLogger("comfykit_batch.report.thumb_lane")

#: records waiting for a worker; past this the lane drops them (the gallery pass makes their thumbnails)
QUEUE_SIZE = 512
#: added to the workers' nice value: with the CPU busy, downloads and dispatch go first
NICENESS = 10


def default_workers() -> int:
    """One core fewer than the machine has (at least one): a core stays for the dispatch loop and downloads."""
    return max(1, (os.cpu_count() or 1) - 1)


class ThumbLane:
    """A bounded pool of threads making thumbnails of finished jobs' images, apart from the job slots.

    ``submit`` never blocks and never raises; ``close`` waits for what is queued, at most ``timeout``
    seconds, then leaves the rest to the gallery. Counts (``made``, ``existed``, ``failed``, ``dropped``,
    ``abandoned``) say what happened to each image file.
    """

    def __init__(self, output_root: Path, *, size: int = SIZE, workers: int | None = None, queue_size: int = QUEUE_SIZE,
                 make: Maker = make_thumb) -> None:
        self.root = Path(output_root)
        self.size = size
        self.made = self.existed = self.failed = self.dropped = self.abandoned = 0
        self._make = make
        self._queue: queue.Queue[Mapping[str, Any] | None] = queue.Queue(max(1, queue_size))
        self._closed = False
        self._abandon = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._serve, name=f"comfykit-thumb-{i}", daemon=True)
                         for i in range(max(1, workers or default_workers()))]
        for t in self._threads:
            t.start()

    def submit(self, record: Mapping[str, Any]) -> None:
        """Queue a finished job's record (its ``files``, paths relative to the output folder); drop it if the queue is full."""
        if self._closed or not any(True for _ in image_files(record)):
            return
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._count("dropped", sum(1 for _ in image_files(record)))

    def close(self, timeout: float | None = None) -> None:
        """Wait for the queued thumbnails (at most ``timeout`` s), then stop the workers; later ``submit`` calls are ignored."""
        if self._closed:
            return
        self._closed = True
        deadline = None if timeout is None else time.monotonic() + timeout
        for _ in self._threads:
            if not self._put_stop(deadline):
                break
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            self._abandon.set()  # the workers skip what is left, after the thumbnail each one is making

    def _put_stop(self, deadline: float | None) -> bool:
        """One stop mark behind the queued records; False (and the rest abandoned) if the queue stays full past the deadline."""
        try:
            self._queue.put(None, timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        except queue.Full:
            self._abandon.set()
            return False
        return True

    def _serve(self) -> None:
        """A worker: records from the queue until a stop mark, each image file made into a thumbnail unless one exists."""
        _lower_priority()
        while True:
            try:
                record = self._queue.get(timeout=0.5 if self._abandon.is_set() else None)
            except queue.Empty:
                return
            if record is None:
                return
            for f in image_files(record):
                self._one(f)

    def _one(self, file: Mapping[str, Any]) -> None:
        if self._abandon.is_set():
            self._count("abandoned")
            return
        dest = self.root / thumb_name(file, self.size)
        if dest.is_file():
            self._count("existed")
            return
        try:
            ok = self._make(self.root / str(file["path"]), dest, self.size)
        except Exception as exc:  # noqa: BLE001 - a thumbnail is optional: the gallery tries again, the run goes on
            log.debug("no thumbnail for %s: %s", file.get("path"), exc)
            ok = False
        self._count("made" if ok else "failed")

    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + n)


def _lower_priority() -> None:
    """Raise this thread's nice value (Linux keeps one per thread), so a busy CPU serves the job slots first."""
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + NICENESS)
