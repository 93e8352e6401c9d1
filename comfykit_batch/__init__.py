"""comfykit_batch: run ComfyUI workflows at scale from Python.

``ComfyKit`` keeps the published ComfyKit API; the executors are blocking and
thread-safe; the batch runner (``python -m comfykit_batch MANIFEST``) spreads a
parameter sweep over many backends and can resume.
"""

import logging

from .errors import ComfyKitError, ConfigError, MissingNodesError, ParameterError, WorkflowError
from .executors.base import Executor, ProgressEvent
from .executors.comfyui import HttpExecutor
from .executors.comfyui_ws import WebSocketExecutor
from .kit import ComfyKit
from .result import ExecuteResult, Failure, OutputFile
from .workflow import Parameter, Workflow

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "ComfyKit",
    "ComfyKitError",
    "ConfigError",
    "ExecuteResult",
    "Executor",
    "Failure",
    "HttpExecutor",
    "MissingNodesError",
    "OutputFile",
    "Parameter",
    "ParameterError",
    "ProgressEvent",
    "WebSocketExecutor",
    "Workflow",
    "WorkflowError",
]
