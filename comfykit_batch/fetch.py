"""Downloads from third-party URLs (workflow files, input images, cookie files).

A separate, credential-free session: the ComfyUI or RunningHub keys are never
sent to a host they do not belong to (the published package leaked them here).
Writing to disk lives in ``files``.
"""

from __future__ import annotations

import threading

import requests

from .files import CHUNK
from .uploads import UploadSource

DEFAULT_TIMEOUT = (10.0, 120.0)
MAX_INPUT_BYTES = 512 << 20

_local = threading.local()


def _session() -> requests.Session:
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
        s.trust_env = True
    return s


class TooLarge(requests.RequestException):
    """The download passed its size limit."""


def describe_error(exc: BaseException) -> str:
    """A short reason for a failed download, without the URL (whose query may hold a signed token)."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"  # not the reason phrase: the server chose it
    if isinstance(exc, TooLarge):
        return str(exc)
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    if isinstance(exc, requests.exceptions.InvalidURL):
        return "invalid URL"
    return type(exc).__name__


def fetch_bytes(url: str, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT, limit: int = MAX_INPUT_BYTES) -> bytes:
    """GET a public URL with no credentials at all; raise ``requests.RequestException`` on failure."""
    with _session().get(url, stream=True, timeout=timeout) as r:
        r.raise_for_status()
        buf = bytearray()
        for chunk in r.iter_content(CHUNK):
            buf += chunk
            if len(buf) > limit:
                raise TooLarge(f"download larger than {limit >> 20} MB")
        return bytes(buf)


def upload_bytes(src: UploadSource) -> bytes:
    """The bytes of a local path, URL (fetched without credentials) or in-memory upload value.

    Raises ``requests.RequestException`` when a URL cannot be fetched; a "server" value has no bytes.
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
