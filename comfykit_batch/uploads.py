"""What an upload parameter's value is: a local file, a URL, bytes, or a file already on the server.

Classifying is pure; reading the bytes of a URL is left to the executor, which
downloads it without any of the server's credentials.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse, urlsplit

from .errors import InputFileError, ParameterError

Kind = Literal["path", "url", "bytes", "server"]

_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF8", ".gif"),
    (b"RIFF", ".wav"),  # refined below for WEBP
    (b"ID3", ".mp3"),
    (b"fLaC", ".flac"),
    (b"OggS", ".ogg"),
]


def guess_extension(data: bytes) -> str:
    """A file extension from the first bytes, so uploaded bytes get a name the server accepts."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[4:8] == b"ftyp":
        return ".mp4"
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    return ".bin"


@dataclass(frozen=True)
class UploadSource:
    """One value of an upload parameter, classified."""

    kind: Kind
    filename: str
    path: Path | None = None
    #: the full URL, signed query included: only the download may read it (hidden from repr)
    url: str | None = field(default=None, repr=False)
    data: bytes | None = field(default=None, repr=False)

    def describe(self) -> str:
        if self.kind == "path":
            return str(self.path)
        if self.kind == "url":
            return redact_url(self.url or "")
        if self.kind == "bytes":
            return f"<{len(self.data or b'')} bytes>"
        return f"server:{self.filename}"


def redact_url(url: str, *, query_mark: str = "…") -> str:
    """A URL safe for a log line, an error or an index: scheme, host, port and path only.

    Input and workflow URLs often carry signed tokens (``?sig=``, ``?token=``,
    ``X-Amz-Signature``) in the query, or ``user:password@`` before the host; both
    are dropped. A dropped query is shown as ``?…`` (``query_mark``; "" drops the ``?``
    too) so two such URLs are not mistaken for the same unsigned one. A string that
    is no URL with a host (a path, ``local``, ``webapp:123``) comes back as written.
    """
    try:
        p = urlparse(url)
        host = p.hostname or ""
        port = p.port
    except ValueError:  # an unparseable port or bracket: show nothing that could be a secret
        return "<unparseable URL>"
    if not p.netloc and not p.query:
        return url
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    return p._replace(netloc=netloc, params="", query=query_mark if p.query else "", fragment="").geturl()


#: a URL inside free text: scheme, an optional ``user:password@``, host and path, an optional query or fragment
_URL_IN_TEXT = re.compile(r"\b([a-z][a-z0-9+.-]*://)(?:[^/\s@'\"]*@)?([^\s'\"?#]*)([?#][^\s'\"]*)?", re.IGNORECASE)


def redact_urls_in_text(text: str, *, query_mark: str = "?…") -> str:
    """``text`` (a message, a manifest kept beside the results) with every URL's credentials and query removed."""
    return _URL_IN_TEXT.sub(lambda m: m[1] + m[2] + (query_mark if m[3] else ""), text)


#: a shorter part of a URL is not worth scrubbing (and would mangle ordinary words)
MIN_URL_SECRET = 4


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that may be credentials (query, each query value, fragment, user and password),
    to scrub wherever a library quotes the URL back (an exception's text)."""
    p = urlsplit(url)
    values = [v for _, _, v in (pair.partition("=") for pair in p.query.split("&"))]
    return [s for s in (p.query, *values, p.fragment, p.username, p.password) if s and len(s) >= MIN_URL_SECRET]


def classify(value: Any, param: str) -> UploadSource:
    """Decide how to obtain the bytes of an upload parameter's value."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return UploadSource("bytes", f"{param}{guess_extension(data)}", data=data)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], (bytes, bytearray)):
        name, data = value
        return UploadSource("bytes", os.path.basename(str(name)) or param, data=bytes(data))
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise ParameterError(
            f"parameter {param!r} is an upload: give a local path, an http(s) URL, bytes, a data: URI "
            f"or the name of a file on the server, not {type(value).__name__} {value!r}"
        )
    if value.startswith("data:"):
        m = re.match(r"data:([^;,]*)(;base64)?,(.*)$", value, re.DOTALL)
        if not m or not m[2]:
            raise ParameterError(f"parameter {param!r}: only base64 data: URIs are accepted")
        try:
            data = base64.b64decode(m[3], validate=True)
        except binascii.Error as exc:
            raise ParameterError(f"parameter {param!r}: the data: URI is not valid base64 ({exc})") from exc
        ext = mimetypes.guess_extension(m[1] or "") or guess_extension(data)
        return UploadSource("bytes", f"{param}{ext}", data=data)
    parsed = urlparse(value)
    if parsed.scheme in ("http", "https"):
        name = os.path.basename(unquote(parsed.path)) or f"{param}.bin"
        return UploadSource("url", name, url=value)
    path = Path(value).expanduser()
    if path.is_file():
        return UploadSource("path", path.name, path=path)
    if value.startswith(("/", "./", "../", "~")):
        raise InputFileError(f"parameter {param!r}: no such file {value!r}")
    # Not a local file: the name of a file already in the server's input folder.
    return UploadSource("server", value)
