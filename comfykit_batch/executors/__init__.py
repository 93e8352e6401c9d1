"""Executors: the only code that talks to servers, all behind ``Executor``."""

from .base import Executor, InputTypes, ProgressCallback, ProgressEvent

__all__ = ["Executor", "InputTypes", "ProgressCallback", "ProgressEvent"]
