"""Every exception this package raises, under one base class.

Two families:

- **Bad input** (``WorkflowError``, ``ParameterError``, ``MissingNodesError``,
  ``ConfigError``, ``ManifestError``, ``UsageError``): raised before anything
  is submitted, in one line that names what to fix.
- **Backend trouble** (``BackendError`` and its subclasses): raised by an
  executor's ``prepare`` and ``download`` (never by ``execute``, which returns a
  failed ``ExecuteResult`` instead, so one bad job never stops a batch).
  ``transient`` says whether the same call may succeed later or elsewhere.
  Every foreign exception (``requests``, ``websocket``, ``OSError`` from a
  socket) is mapped into this family at the executor's edge; nothing above the
  executors catches a library-specific exception.
"""

from __future__ import annotations


class ComfyKitError(Exception):
    """Base class of every error this package raises."""


class WorkflowError(ComfyKitError, ValueError):
    """The workflow itself is unusable: not JSON, UI format, malformed nodes, a bad DSL title."""


class ParameterError(ComfyKitError, ValueError):
    """The parameters do not fit the workflow: unknown, missing, or of the wrong type."""


class ConfigError(ComfyKitError, ValueError):
    """A constructor argument or environment variable is unusable."""


class ManifestError(ComfyKitError, ValueError):
    """A batch manifest cannot be used as written (file, key path and what was expected)."""


class UsageError(ComfyKitError, ValueError):
    """A command-line or session option is unusable (``--jobs 0``, an unknown ``--only`` id, ...)."""


class MissingNodesError(ComfyKitError):
    """The server lacks node classes the workflow uses (usually custom nodes not installed)."""

    def __init__(self, missing: dict[str, list[str]], server: str) -> None:
        self.missing = missing
        self.server = server
        listing = ", ".join(f"{cls} (node {', '.join(ids)})" for cls, ids in sorted(missing.items()))
        super().__init__(f"{server} does not have these node classes: {listing}; install the custom nodes that provide them")


class BackendError(ComfyKitError):
    """A backend could not be reached or answered something unusable.

    ``transient``: the same call may succeed later or on another backend
    (connection refused or dropped, 5xx, a timeout); False for answers that will
    not change by asking again (404 on an output, a malformed answer).
    """

    def __init__(self, message: str, *, transient: bool = True, backend: str | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.backend = backend


class AuthError(BackendError):
    """The backend wants credentials we do not have or refused ours (401/403, a redirect to a login page)."""

    def __init__(self, message: str, *, backend: str | None = None) -> None:
        super().__init__(message, transient=False, backend=backend)


class LocalServerError(ComfyKitError, RuntimeError):
    """The managed local ComfyUI could not be installed or started."""


class StorageError(ComfyKitError):
    """The output folder cannot be written (disk full, file too large, read-only): the batch stops, nothing finished is lost."""
