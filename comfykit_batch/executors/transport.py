"""The executors' edge with the network: URL checks, exception mapping, secret scrubbing.

Everything a foreign library can raise (``requests``, ``urllib3``, socket
``OSError``, a JSON decode error) is turned into the package's own
``BackendError`` / ``AuthError`` here, in one place (the model is httpx's
``map_httpcore_exceptions``): nothing above the executors catches a library's
exception. Server text that ends up in a message first loses every credential
sent to that server, as is and percent- or base64-encoded, since a server that
echoes request headers would otherwise hand the key back into logs and the index.
"""

from __future__ import annotations

import base64
import re
import socket
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, urlparse

import requests
import urllib3.exceptions

from ..errors import AuthError, BackendError, ComfyKitError, ConfigError
from ..result import Failure
from .pool import ConnectTimeout, ProtocolError

#: a short secret is not worth scrubbing (and would mangle ordinary words)
MIN_SECRET = 4
#: the shortest piece of a longer base64 blob scrubbed as a secret's (shorter runs turn up by chance)
MIN_BASE64_PIECE = 8
_URLSAFE = str.maketrans("+/", "-_")
#: how much of an error body is kept in a message
BODY_EXCERPT = 200


@dataclass(frozen=True)
class ServerURL:
    """A checked base URL and its display form (no ``user:password@``, no query)."""

    base: str
    display: str
    host: str


def check_url(url: str, what: str) -> ServerURL:
    """Refuse anything but ``http(s)://host[:port][/path]``; tokens belong in ``api_key``, not in the URL."""
    parsed = urlparse(str(url))
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"{what} URL must be http(s)://host[:port], got {_shown(url)!r}")
    if parsed.query or parsed.fragment:
        raise ConfigError(f"{what} URL must not carry a query or fragment; pass tokens as api_key")
    try:
        port = parsed.port
    except ValueError:
        raise ConfigError(f"{what} URL has an invalid port: {_shown(url)!r}") from None
    host = parsed.hostname
    display = f"{parsed.scheme}://{host}" + (f":{port}" if port else "") + parsed.path.rstrip("/")
    return ServerURL(str(url).rstrip("/"), display, host)


def _shown(url: str) -> str:
    """A URL for an error message: credentials and query removed."""
    p = urlparse(str(url))
    netloc = p.netloc.rsplit("@", 1)[-1]
    return p._replace(netloc=netloc, query="", fragment="").geturl()


def _percent_forms(text: str) -> set[str]:
    """``text`` percent-encoded as ``quote`` and ``quote_plus`` do, with upper- and lower-case hex digits."""
    forms = {quote(text, safe=""), quote(text), quote_plus(text), quote_plus(text, safe="/")}
    return forms | {re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), f) for f in forms}


def _base64_pieces(raw: bytes) -> set[str]:
    """The base64 characters that spell ``raw`` wherever it sits in a longer blob (``user:key``, a JSON token).

    Base64 turns each 3 bytes into 4 characters, so the secret's bytes start at one of 3 offsets
    within a group; at each, the characters made only of the secret's bits are the same whatever
    surrounds it. The 1 or 2 characters at either end that mix in other bytes stay (they cannot
    rebuild the secret).
    """
    pieces = set()
    for k in range(3):
        blob = base64.b64encode(bytes(k) + raw).decode()
        piece = blob[-(-8 * k // 6):8 * (k + len(raw)) // 6]
        if len(piece) >= MIN_BASE64_PIECE:
            pieces |= {piece, piece.translate(_URLSAFE), quote(piece, safe="")}
    return pieces


def encoded_forms(secret: str) -> set[str]:
    """Every form in which a server may echo ``secret``: as is, JSON-escaped, percent-encoded, base64-encoded.

    A server or proxy that echoes a request back often shows the cookie header URL-encoded, an
    ``Authorization: Basic`` value in base64, or a key inside a base64 token: scrubbing only the
    literal would let the key through in the error text that reaches the index, the gallery and logs.
    """
    raw = secret.encode()
    forms = {secret, secret.replace("/", "\\/")} | _percent_forms(secret)
    for whole in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms |= {whole, whole.rstrip("=")} | _percent_forms(whole)
    return forms | _base64_pieces(raw)


class Redactor:
    """Replaces every secret sent to one server (key, cookie values), in any of its ``encoded_forms``, in text
    that came back from it."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        found = {f for s in secrets if s and len(s) >= MIN_SECRET for f in encoded_forms(s)}
        self._secrets = sorted(found, key=len, reverse=True)  # longest first: a key containing another

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, "***")
        return text

    def failure(self, failure: Failure) -> Failure:
        """``failure`` with the server's text in it (message, traceback) scrubbed, in place."""
        failure.message = self(failure.message)
        if failure.traceback:
            failure.traceback = self(failure.traceback)
        return failure

    def excerpt(self, text: str) -> str:
        """The start of a server's answer, scrubbed before it is cut (a cut key would escape the match)."""
        text = self(text).strip()
        return text if len(text) <= BODY_EXCERPT else text[:BODY_EXCERPT] + "..."


def reason(exc: BaseException) -> str:
    """What went wrong on the wire, in a few words, without the URL (which may carry a query)."""
    chain = _chain_text(exc)
    if isinstance(exc, ConnectionRefusedError) or "refused" in chain:
        return "connection refused"
    if isinstance(exc, socket.gaierror) or "Name or service not known" in chain or "not resolve" in chain:
        return "host name not found"
    if isinstance(exc, (ConnectTimeout, requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError)):
        return "connect timed out"
    if isinstance(exc, (requests.ReadTimeout, socket.timeout, urllib3.exceptions.ReadTimeoutError)):
        return "no answer in time (read timed out)"
    if isinstance(exc, (ProtocolError, requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError,
                        ConnectionResetError, BrokenPipeError)):
        return "connection dropped mid-answer"
    if isinstance(exc, (ssl.SSLError, requests.exceptions.SSLError, urllib3.exceptions.SSLError)):
        return "TLS handshake failed"
    if isinstance(exc, (requests.ConnectionError, urllib3.exceptions.HTTPError, OSError)):
        return "connection failed"
    if isinstance(exc, ValueError):
        return "answer is not valid JSON"
    return type(exc).__name__


def _chain_text(exc: BaseException) -> str:
    parts: list[str] = []
    cur: BaseException | None = exc
    seen = 0
    while cur is not None and seen < 8:
        if isinstance(cur, ConnectionRefusedError):
            return "refused"
        parts.append(str(cur))
        cur, seen = cur.__cause__ or cur.__context__, seen + 1
    return " ".join(parts)


def is_refused(exc: BaseException) -> bool:
    """The connection was refused: the request surely never reached the server."""
    return reason(exc) == "connection refused"


@contextmanager
def mapped(doing: str, backend: str) -> Iterator[None]:
    """Turn every foreign exception raised inside into ``BackendError`` (the package's own pass through).

    Network trouble is transient (the same call may work later or elsewhere);
    an answer that does not parse is not.
    """
    try:
        yield
    except ComfyKitError:
        raise
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise BackendError(f"{backend}: {doing}: {reason(exc)}", transient=True, backend=backend) from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a JSON decode error, an odd shape
        raise BackendError(f"{backend}: {doing}: unusable answer ({reason(exc)})", transient=False,
                           backend=backend) from None


def http_status_error(backend: str, doing: str, status: int, body: str, redact: Redactor) -> BackendError:
    """The error for an HTTP error status: 5xx and 429 may pass, other codes will not."""
    if status in (401, 403):
        return AuthError(f"{backend}: {doing}: HTTP {status} (authentication required: set api_key or cookies)",
                         backend=backend)
    excerpt = redact.excerpt(body)
    return BackendError(f"{backend}: {doing}: HTTP {status}" + (f": {excerpt}" if excerpt else ""),
                        transient=status == 429 or status >= 500, backend=backend)


def read_timeout(default: float, deadline: float | None, now: float) -> float:
    """A request's read timeout: its own limit, but never past the call's deadline."""
    if deadline is None:
        return default
    return max(0.05, min(default, deadline - now))
