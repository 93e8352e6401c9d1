"""The one small interface every executor offers, and the only one the batch layer uses.

An executor runs one bound workflow on one backend and can fetch the files it
produced. It is blocking and thread-safe: the batch runner calls ``execute``
from several threads at once, up to ``concurrency`` per executor.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import Saved
from ..result import ExecuteResult, OutputFile
from ..workflow import Workflow


@dataclass(frozen=True)
class ProgressEvent:
    """A node's progress (``value`` of ``max``), as the server reports it."""

    prompt_id: str
    node: str | None
    value: float
    max: float


ProgressCallback = Callable[[ProgressEvent], None]


class Executor(abc.ABC):
    """Runs workflows on one backend. Subclasses are the only code that talks to servers."""

    #: short label for logs and the index (never contains a secret)
    name: str = "executor"
    #: how many jobs to keep in flight on this backend by default
    concurrency: int = 2

    def prepare(self, workflow: Workflow) -> None:
        """Check a workflow against the backend before any job of it is submitted.

        Raises ``MissingNodesError`` for node classes the backend lacks and may
        refine parameter types from the backend's schema. Default: nothing to check.
        """

    @abc.abstractmethod
    def execute(
        self,
        workflow: Workflow,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> ExecuteResult:
        """Run one job to its end. Bad input raises; remote failures return ``status="failed"``.

        ``timeout`` bounds the whole call; when it passes, or ``cancel`` is set,
        the remote job is interrupted or cancelled before returning.
        """

    @abc.abstractmethod
    def download(self, file: OutputFile, dest: Path) -> Saved:
        """Stream one output file to ``dest`` (atomically), returning its size and hash."""

    def close(self) -> None:
        """Release connections and threads."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
