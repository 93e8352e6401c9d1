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

``FetchError`` is a third-party URL's trouble (a workflow, input or cookies
file that cannot be downloaded); its callers wrap it in what it means to them
(``WorkflowError``, ``ConfigError``, a job's ``upload`` failure).

A foreign exception mapped into one of these is kept as its ``__cause__``
(``raise ... from exc``) once ``scrub_chain`` has taken the secrets out of its
text: a traceback in a log shows where it came from, never a key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar


class ComfyKitError(Exception):
    """Base class of every error this package raises."""


class WorkflowError(ComfyKitError, ValueError):
    """The workflow itself is unusable: not JSON, UI format, malformed nodes, a bad DSL title."""


class ParameterError(ComfyKitError, ValueError):
    """The parameters do not fit the workflow: unknown, missing, or of the wrong type."""


class InputFileError(ParameterError):
    """An upload value names a local file that is not there: refused before a run, a job's upload failure during one."""


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


class FetchError(ComfyKitError):
    """A third-party URL (a workflow file, an input file, a cookies file) could not be fetched.

    The message is the reason in a few words ("HTTP 404", "timed out", "could not connect"), never the
    URL, whose query may hold a signed token; the caller says what was being fetched. ``status`` is
    the HTTP status when the server answered one.
    """

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class LocalServerError(ComfyKitError, RuntimeError):
    """The managed local ComfyUI could not be installed or started."""


class StorageError(ComfyKitError):
    """The output folder cannot be written (disk full, file too large, read-only): the batch stops, nothing finished is lost."""


E = TypeVar("E", bound=BaseException)
#: exceptions a chain is followed through at most (a cycle or a pathological chain ends the walk)
MAX_CHAIN = 16
#: attribute values a scrubbed exception keeps as they are; text is scrubbed, anything else dropped
_PLAIN = (int, float, bool, type(None), BaseException)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then every exception it came from: its cause and context, and those it holds as arguments or
    attributes (``MaxRetryError.reason``), each once."""
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo and len(seen) < MAX_CHAIN:
        link = todo.pop(0)
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        held = [*link.args, *vars(link).values(), link.__cause__, link.__context__]
        todo.extend(x for x in held if isinstance(x, BaseException))


def scrub_chain(exc: E, redact: Callable[[str], str]) -> E:
    """``exc`` fit to chain as a cause: ``redact`` applied to the text of it and of every exception it came from.

    Done in place, and ``exc`` returned, so ``raise Ours(...) from scrub_chain(exc, redact)`` keeps the
    real type and traceback. A traceback prints each link's text: a URL's signed query or a
    server's echo of a key would land in a log. Attributes that are neither text nor plain values
    (a ``requests`` request with its headers and body, a response, a connection, headers) are
    dropped: a traceback never prints them, and nothing of this package reads them.
    """
    for link in exception_chain(exc):
        link.args = tuple(redact(a) if isinstance(a, str) else a for a in link.args)
        for name, value in list(vars(link).items()):
            link.__dict__[name] = _scrubbed(value, redact)
        if isinstance(link, OSError):
            link.strerror = _scrubbed(link.strerror, redact)
            link.filename = _scrubbed(link.filename, redact)
            link.filename2 = _scrubbed(link.filename2, redact)
    return exc


def _scrubbed(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):  # __notes__
        return [redact(v) for v in value]
    return value if isinstance(value, _PLAIN) else None
