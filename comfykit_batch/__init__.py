"""comfykit_batch: run ComfyUI workflows at scale from Python.

``ComfyKit`` keeps the published ComfyKit API; the executors are blocking and
thread-safe and share one interface (``Executor``) and one error family
(``BackendError``); the batch session (``run_manifest``, ``plan``; the CLI is
``python -m comfykit_batch MANIFEST``) spreads a parameter sweep over many
backends and can resume. Everything named here is the public API; anything
else may change.
"""

import logging

from .batch.run.plan import Plan
from .batch.run.runner import Progress, Summary
from .batch.run.session import RunOptions, plan, run_manifest
from .batch.spec.manifest import BackendSpec, Manifest, WorkflowSpec, load_manifest
from .defaults import DEFAULTS, Defaults
from .errors import (
    AuthError,
    BackendError,
    ComfyKitError,
    ConfigError,
    LocalServerError,
    ManifestError,
    MissingNodesError,
    ParameterError,
    UsageError,
    WorkflowError,
)
from .executors.base import Executor, ProgressCallback, ProgressEvent
from .executors.factory import create_executor
from .kit import ComfyKit
from .local_comfyui import LocalComfyUI
from .result import ExecuteResult, Failure, OutputFile
from .sources import resolve_workflow
from .workflow import InputType, Parameter, Workflow

__version__ = "0.2.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> object:
    """The concrete executors load on first use, so importing the package pulls in no transport library."""
    from .executors import factory

    if name in factory.EXECUTOR_CLASSES:
        return factory.executor_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULTS",
    "AuthError",
    "BackendError",
    "BackendSpec",
    "ComfyKit",
    "ComfyKitError",
    "ConfigError",
    "Defaults",
    "ExecuteResult",
    "Executor",
    "Failure",
    "HttpExecutor",
    "InputType",
    "LocalComfyUI",
    "LocalServerError",
    "Manifest",
    "ManifestError",
    "MissingNodesError",
    "OutputFile",
    "Parameter",
    "ParameterError",
    "Plan",
    "Progress",
    "ProgressCallback",
    "ProgressEvent",
    "RunOptions",
    "RunningHubExecutor",
    "Summary",
    "UsageError",
    "WebSocketExecutor",
    "Workflow",
    "WorkflowError",
    "WorkflowSpec",
    "create_executor",
    "load_manifest",
    "plan",
    "resolve_workflow",
    "run_manifest",
]
