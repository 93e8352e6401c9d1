"""Exceptions raised for bad input, before anything reaches a server.

Remote failures (a node that raised, a timeout, a server that went away) are not
exceptions: they come back as an ``ExecuteResult`` with ``status == "failed"``,
so one bad job never stops a batch.
"""

from __future__ import annotations


class ComfyKitError(Exception):
    """Base class of every error this package raises."""


class WorkflowError(ComfyKitError, ValueError):
    """The workflow itself is unusable: not JSON, UI format, malformed nodes, a bad DSL title."""


class ParameterError(ComfyKitError, ValueError):
    """The parameters do not fit the workflow: unknown, missing, or of the wrong type."""


class MissingNodesError(ComfyKitError):
    """The server lacks node classes the workflow uses (usually custom nodes not installed)."""

    def __init__(self, missing: dict[str, list[str]], server: str) -> None:
        self.missing = missing
        self.server = server
        listing = ", ".join(f"{cls} (node {', '.join(ids)})" for cls, ids in sorted(missing.items()))
        super().__init__(f"{server} does not have these node classes: {listing}; install the custom nodes that provide them")


class ConfigError(ComfyKitError, ValueError):
    """A constructor argument or environment variable is unusable."""
