"""The one small interface every executor offers, and the only one the batch layer uses.

An executor runs one bound workflow on one backend and can fetch the files it
produced. It is blocking and thread-safe: the batch runner calls ``execute``
from several threads at once, up to ``concurrency`` per executor.

The error contract (what each method may raise) is the same for every
executor, so nothing above this layer imports a concrete executor module:

- bad input: ``ParameterError``/``WorkflowError`` (and ``MissingNodesError``
  from ``prepare``), before anything is submitted;
- backend trouble: ``BackendError`` (``transient`` says whether asking again
  may help) and its subclass ``AuthError``, from ``check``, ``prepare``,
  ``types_for`` and ``download``;
- ``execute`` never raises for a remote failure: it returns a failed
  ``ExecuteResult`` whose ``failure.kind`` says what happened (see ``result``).

No exception of ``requests``, ``websocket`` or the socket layer escapes: each is mapped
(``transport.foreign_exceptions``) and kept as the cause, its text scrubbed of secrets.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..defaults import DEFAULTS
from ..files import Saved
from ..models import ModelInput, static_inputs
from ..result import ExecuteResult, OutputFile
from ..workflow import InputType, Workflow


@dataclass(frozen=True)
class ProgressEvent:
    """A node's progress (``value`` of ``max``), as the server reports it."""

    prompt_id: str
    node: str | None
    value: float
    max: float


ProgressCallback = Callable[[ProgressEvent], None]

#: parameter name -> the server's type for it (type, choices, min, max)
InputTypes = Mapping[str, InputType]
#: the executor a ``with`` block binds: its own class (``typing.Self`` is 3.11+)
E = TypeVar("E", bound="Executor")


class Executor(abc.ABC):
    """Runs workflows on one backend. Subclasses are the only code that talks to servers."""

    #: short label for logs and the index (never contains a secret)
    name: str = "executor"
    #: how many jobs to keep in flight on this backend by default
    concurrency: int = DEFAULTS.concurrency

    def check(self) -> None:
        """A cheap probe that the backend answers and accepts our credentials (a few seconds at most).

        Raises ``AuthError`` (credentials missing or refused) or ``BackendError``
        whose message names the URL (display form, no secrets), the reason and
        the fix. Default: nothing to check.
        """

    def prepare(self, workflow: Workflow) -> None:
        """Check a workflow against the backend before any job of it is submitted.

        Raises ``MissingNodesError`` for node classes the backend lacks, and
        ``BackendError``/``AuthError`` when the backend cannot be asked. Fills
        the cache ``types_for`` reads. Default: nothing to check.
        """

    def types_for(self, workflow: Workflow) -> InputTypes:
        """The backend's input types for this workflow's parameters (empty when the backend has no schema).

        Learned once per executor and workflow fingerprint, and never written
        into ``workflow``: one workflow runs on backends whose model lists
        differ. Raises ``BackendError``/``AuthError`` when they cannot be read.
        """
        return {}

    def model_inputs(self, workflow: Workflow) -> frozenset[ModelInput]:
        """The inputs of ``workflow`` whose values name model files this backend loads (``models.py``).

        What the workflow shows by itself (core loaders, model file names), plus on a server that lists
        its models what its ``/models`` and ``/object_info`` say; learned once per workflow fingerprint.
        Raises ``BackendError``/``AuthError`` when the backend cannot be asked. Default: the workflow alone.
        """
        return static_inputs(workflow.nodes)

    #: True for a platform that places tasks itself (RunningHub): the runner does not group its jobs by model
    places_its_own_jobs: bool = False

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

        Raises only ``ParameterError``/``WorkflowError`` (values checked against
        ``types_for`` before anything is submitted). ``timeout`` bounds the
        whole call, each request included; when it passes, or ``cancel`` is
        set, the remote job is interrupted or cancelled before returning.
        """

    @abc.abstractmethod
    def download(self, file: OutputFile, dest: Path) -> Saved:
        """Stream one output file to ``dest`` (atomically), returning its size and hash.

        Raises ``BackendError`` (transient for a dropped connection or a 5xx;
        not for a file the server does not have); nothing is left under ``dest``
        then. ``OSError`` from the local disk passes through unchanged.
        """

    def close(self) -> None:
        """Release connections and threads."""

    def __enter__(self: E) -> E:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
