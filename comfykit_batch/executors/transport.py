"""The executors' edge with the network: URL checks, exception mapping, secret scrubbing.

Everything a foreign library can raise (``requests``, ``urllib3``,
websocket-client, socket ``OSError``, ``ssl``, a JSON decode error) is turned
into the package's own ``BackendError`` / ``AuthError`` here, through one table
of exception types (``foreign_exceptions``; the model is httpx's
``map_httpcore_exceptions``), the foreign exception kept as the cause once its
text is scrubbed: nothing above the executors catches a library's exception,
and nothing classifies an exception by its message. Server text that ends up
in a message (or a chained cause) first loses every credential sent to that
server, as is and percent- or base64-encoded, since a server that echoes
request headers would otherwise hand the key back into logs and the index.
"""

from __future__ import annotations

import base64
import functools
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, urlparse

from ..errors import AuthError, BackendError, ComfyKitError, ConfigError, exception_chain, scrub_chain
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


@dataclass(frozen=True)
class Cause:
    """What a foreign exception means here: a few words for the message, and whether asking again may help."""

    reason: str
    transient: bool = True


REFUSED = Cause("connection refused")
HOST_NOT_FOUND = Cause("host name not found")
CONNECT_TIMEOUT = Cause("connect timed out")
READ_TIMEOUT = Cause("no answer in time (read timed out)")
DROPPED = Cause("connection dropped mid-answer")
TLS_FAILED = Cause("TLS handshake failed")
CONNECTION_FAILED = Cause("connection failed")

ForeignTable = tuple[tuple[tuple[type[BaseException], ...], Cause], ...]


@functools.cache
def foreign_exceptions() -> ForeignTable:
    """The one table from foreign exception types to what they mean, the most telling row first.

    An exception means the first row that it, or any exception it came from, matches: a
    ``requests.ConnectionError`` caused by a ``ConnectionRefusedError`` is a refusal, a
    ``requests.ConnectTimeout`` (whose chain ends in a socket's ``TimeoutError``) a connect
    timeout. Types only, never message text. Built on first use, as httpx builds its
    ``HTTPCORE_EXC_MAP``: the HTTP executor does not load websocket-client for it.
    """
    import requests
    import urllib3.exceptions as u3
    import websocket

    unusable = tuple(((t,), Cause(f"unusable answer ({t.__name__})", transient=False))
                     for t in (TypeError, KeyError, AttributeError))
    return (
        ((ConnectionRefusedError,), REFUSED),
        ((socket.gaierror, websocket.WebSocketAddressException), HOST_NOT_FOUND),
        ((ConnectTimeout, requests.ConnectTimeout), CONNECT_TIMEOUT),
        ((requests.ReadTimeout, u3.ReadTimeoutError, websocket.WebSocketTimeoutException, TimeoutError), READ_TIMEOUT),
        ((ProtocolError, requests.exceptions.ChunkedEncodingError, u3.ProtocolError, ConnectionResetError, BrokenPipeError,
          websocket.WebSocketConnectionClosedException), DROPPED),
        ((ssl.SSLError, requests.exceptions.SSLError, u3.SSLError), TLS_FAILED),
        ((requests.RequestException, u3.HTTPError, websocket.WebSocketException, OSError), CONNECTION_FAILED),
        ((ValueError,), Cause("unusable answer (answer is not valid JSON)", transient=False)),
        *unusable,
    )


def cause_of(exc: BaseException) -> Cause | None:
    """What ``exc`` means (see ``foreign_exceptions``); None for one the table does not map (a bug, or one of
    this package's own): it passes unchanged."""
    table = foreign_exceptions()
    if isinstance(exc, ComfyKitError) or not any(isinstance(exc, types) for types, _ in table):
        return None
    chain = list(exception_chain(exc))
    return next(cause for types, cause in table if any(isinstance(link, types) for link in chain))


def reason(exc: BaseException) -> str:
    """What went wrong on the wire, in a few words, without the URL (which may carry a query)."""
    cause = cause_of(exc)
    return cause.reason if cause is not None else type(exc).__name__


def _kept(text: str) -> str:
    return text


@contextmanager
def mapped(doing: str, backend: str, redact: Callable[[str], str] = _kept) -> Iterator[None]:
    """Turn every foreign exception raised inside into ``BackendError`` (the package's own pass through).

    Network trouble is transient (the same call may work later or elsewhere); an answer that does
    not parse is not. The foreign exception is the error's cause, its text passed through
    ``redact`` (give the server's ``Redactor`` wherever a credential was sent).
    """
    try:
        yield
    except Exception as exc:
        cause = cause_of(exc)
        if cause is None:
            raise
        raise BackendError(f"{backend}: {doing}: {cause.reason}", transient=cause.transient,
                           backend=backend) from scrub_chain(exc, redact)


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
