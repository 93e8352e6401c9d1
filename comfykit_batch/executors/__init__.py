"""Executors: the only code that talks to servers, all behind ``Executor``."""

from .base import Executor, ProgressCallback, ProgressEvent

__all__ = ["Executor", "ProgressCallback", "ProgressEvent"]
