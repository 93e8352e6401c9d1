"""Downloads from third-party URLs (workflow files, input images, cookie files).

A separate, credential-free session: the ComfyUI or RunningHub keys are never
sent to a host they do not belong to (the published package leaked them here).
Every failure is a ``FetchError`` naming the reason, never the URL (its query may
hold a signed token), with the ``requests`` exception as its cause, that token
scrubbed from its text: no other module of the inputs layer catches a
``requests`` exception. Writing to disk lives in ``files``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import requests
from requests.utils import requote_uri

from .errors import FetchError, scrub_chain
from .files import CHUNK
from .uploads import UploadSource, redact_urls_in_text, url_secrets

DEFAULT_TIMEOUT = (10.0, 120.0)
MAX_INPUT_BYTES = 512 << 20

#: a failed download's reason by its ``requests`` exception type, the first row that matches (types, never text)
REASONS: tuple[tuple[type[requests.RequestException], str], ...] = (
    (requests.Timeout, "timed out"),
    (requests.TooManyRedirects, "too many redirects"),
    (requests.ConnectionError, "could not connect"),
    (requests.exceptions.InvalidURL, "invalid URL"),
)

_local = threading.local()


def _session() -> requests.Session:
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
        s.trust_env = True
    return s


def fetch_bytes(url: str, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT, limit: int = MAX_INPUT_BYTES) -> bytes:
    """GET a public URL with no credentials at all; raise ``FetchError`` on failure."""
    try:
        return _get(url, timeout, limit)
    except OSError as exc:  # every requests exception is one
        raise _fetch_error(exc) from scrub_chain(exc, _scrubber(url))


def _get(url: str, timeout: tuple[float, float], limit: int) -> bytes:
    with _session().get(url, stream=True, timeout=timeout) as r:
        r.raise_for_status()
        buf = bytearray()
        for chunk in r.iter_content(CHUNK):
            buf += chunk
            if len(buf) > limit:
                raise FetchError(f"download larger than {limit >> 20} MB")
        return bytes(buf)


def _fetch_error(exc: OSError) -> FetchError:
    """The reason for a failed download: the HTTP status (not the reason phrase: the server chose it), else by type."""
    response = getattr(exc, "response", None)
    if isinstance(exc, requests.HTTPError) and response is not None:
        return FetchError(f"HTTP {response.status_code}", status=response.status_code)
    return FetchError(next((text for types, text in REASONS if isinstance(exc, types)), type(exc).__name__))


def _scrubber(url: str) -> Callable[[str], str]:
    """What hides ``url``'s secrets (query, fragment, ``user:password``) in an exception's text, as given or as
    ``requests`` re-quoted them."""
    secrets = sorted(set(url_secrets(url)) | set(url_secrets(requote_uri(url))), key=len, reverse=True)

    def scrub(text: str) -> str:
        text = redact_urls_in_text(text)
        for secret in secrets:
            text = text.replace(secret, "…")
        return text

    return scrub


def upload_bytes(src: UploadSource) -> bytes:
    """The bytes of a local path, URL (fetched without credentials) or in-memory upload value.

    Raises ``FetchError`` when a URL cannot be fetched and ``OSError`` when a path cannot be read;
    a "server" value has no bytes.
    """
    if src.kind == "path":
        assert src.path is not None
        return src.path.read_bytes()
    if src.kind == "url":
        assert src.url is not None
        return fetch_bytes(src.url)
    if src.kind == "bytes":
        return src.data or b""
    raise ValueError(f"{src.describe()} is already on the server: nothing to read")
