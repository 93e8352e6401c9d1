"""A lean keep-alive HTTP/1.1 client, for the ComfyUI hot path (submit, poll, download).

A job makes a few small requests to a server on the same network. Through ``requests`` a request
costs a few hundred microseconds of CPU (session settings merged per call, runtime Protocol
checks, cookie jars); through urllib3 and ``http.client`` still about 115 us (pool bookkeeping,
the URL parsed again, headers parsed by the ``email`` package). Written straight to a kept-alive
socket it costs about 10 us. This is the little the ComfyUI client needs and nothing more: fixed
headers, bodies as bytes, answers framed by ``Content-Length``, ``chunked`` or the connection's
end, a connect and a read timeout per request; no redirects (the caller refuses them), no
retries of a request the server may have seen, no proxies from the environment, TLS with the
same CA bundle ``requests`` uses (certifi). Errors are ``OSError``s (the socket's, ``ssl``'s, and
``ProtocolError``/``ConnectTimeout`` below); the caller maps them (``transport.mapped``).
"""

from __future__ import annotations

import collections
import json
import select
import socket
import ssl
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import certifi
from urllib3.filepost import encode_multipart_formdata

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: a status or header line longer than this, or more header lines, is not an HTTP answer worth reading
MAX_LINE = 65536
MAX_HEADERS = 200
#: answers that never carry a body, whatever their headers say
_NO_BODY = frozenset({204, 304})


class ProtocolError(ConnectionError):
    """The server's answer broke off or is not HTTP/1.x: the connection is not used again."""


class _NoAnswer(ProtocolError):
    """The connection ended before any byte of an answer (a kept-alive socket the server had just closed)."""


#: failures of a request on a kept-alive connection that the server cannot have answered (a GET is sent again)
_BEFORE_ANSWER = (_NoAnswer, ConnectionResetError, BrokenPipeError)


class ConnectTimeout(TimeoutError):
    """No connection within the connect timeout (the request was never sent)."""


class Headers(dict[str, str]):
    """An answer's headers, names lower-cased; ``get`` takes any case (``headers.get("Location")``)."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class _Conn:
    """One socket and its buffered reader."""

    __slots__ = ("reader", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader: BinaryIO = sock.makefile("rb")

    def dropped(self) -> bool:
        """An idle kept-alive socket that is readable has been closed by the server (or sent junk): not reusable."""
        try:
            if hasattr(select, "poll"):  # select() refuses descriptors past 1023; poll() has no such limit
                poller = select.poll()
                poller.register(self.sock, select.POLLIN)
                return bool(poller.poll(0))
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        for part in (self.reader, self.sock):
            try:
                part.close()
            except OSError:
                pass


class _Origin:
    """``scheme://host:port``: where connections go, and the idle ones kept for it."""

    def __init__(self, origin: str, maxsize: int, tls: ssl.SSLContext | None) -> None:
        parts = urlsplit(origin)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.host_header = parts.netloc.rsplit("@", 1)[-1]
        self.tls = tls if parts.scheme == "https" else None
        self.idle: collections.deque[_Conn] = collections.deque()  # append/pop are atomic: no lock
        self.maxsize = maxsize

    def take(self, connect_timeout: float) -> tuple[_Conn, bool]:
        """A kept-alive connection that is still open (and True), or a new one (and False)."""
        while True:
            try:
                conn = self.idle.pop()
            except IndexError:
                return self._connect(connect_timeout), False
            if not conn.dropped():
                return conn, True
            conn.close()

    def _connect(self, timeout: float) -> _Conn:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except TimeoutError as exc:
            raise ConnectTimeout(f"no connection within {timeout:g}s") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        return _Conn(sock)

    def give_back(self, conn: _Conn) -> None:
        if len(self.idle) < self.maxsize:
            self.idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


class Response:
    """What the client reads of an answer: status, headers, the body (read at once with ``content``, or streamed)."""

    __slots__ = ("_body", "_conn", "_left", "_chunked", "_origin", "_reusable", "headers", "status_code")

    def __init__(self, conn: _Conn, origin: _Origin, status: int, headers: Headers, *, method: str,
                 reusable: bool) -> None:
        self._conn: _Conn | None = conn
        self._origin = origin
        self.status_code = status
        self.headers = headers
        self._body: bytes | None = None
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if method == "HEAD" or status in _NO_BODY or 100 <= status < 200:
            self._left: int | None = 0
        elif self._chunked:
            self._left = None
        elif length is not None and length.strip().isdigit():
            self._left = int(length)
        else:  # no framing: the body ends with the connection
            self._left, reusable = None, False
        self._reusable = reusable

    @property
    def content(self) -> bytes:
        if self._body is None:
            self._body = b"".join(self.iter_content(1 << 20))
        return self._body

    @property
    def is_redirect(self) -> bool:
        return self.status_code in REDIRECT_STATUSES and "location" in self.headers

    def iter_content(self, chunk: int) -> Iterator[bytes]:
        """The body in pieces of at most ``chunk`` bytes; the connection is kept once the body has been read whole."""
        if self._conn is None:
            if self._body:
                yield self._body
            return
        reader = self._conn.reader
        if self._chunked:
            yield from self._chunks(reader, chunk)
        elif self._left is None:  # until the server closes
            while data := reader.read1(chunk):  # type: ignore[attr-defined]
                yield data
        else:
            while self._left:
                data = reader.read1(min(chunk, self._left))  # type: ignore[attr-defined]
                if not data:
                    raise ProtocolError(f"answer cut short: {self._left} bytes of the body missing")
                self._left -= len(data)
                yield data
        self._finish()

    def _chunks(self, reader: BinaryIO, chunk: int) -> Iterator[bytes]:
        while True:
            size_line = reader.readline(MAX_LINE)
            if not size_line.endswith(b"\n"):
                raise ProtocolError("answer cut short in a chunk header")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:  # no cause: int() only quotes the server's bytes back
                raise ProtocolError("malformed chunk header") from None
            if size == 0:
                _read_headers(reader)  # the trailer, usually empty
                return
            while size:
                data = reader.read(min(chunk, size))
                if not data:
                    raise ProtocolError("answer cut short inside a chunk")
                size -= len(data)
                yield data
            if reader.read(2) != b"\r\n":
                raise ProtocolError("malformed chunk end")

    def _finish(self) -> None:
        """The body is read whole: the connection goes back to the pool (or is closed if the server asked)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._origin.give_back(conn) if self._reusable else conn.close()

    def close(self) -> None:
        """Done with the answer: a body left unread means the connection cannot be reused."""
        if self._left != 0 or self._chunked:
            self._reusable = False
        self._finish()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_headers(reader: BinaryIO) -> Headers:
    """The header block up to its blank line, parsed in one pass once it is all read."""
    lines = []
    for _ in range(MAX_HEADERS):
        line = reader.readline(MAX_LINE)
        if line in (b"\r\n", b"\n"):
            break
        if not line.endswith(b"\n"):
            raise ProtocolError("answer cut short in its headers")
        lines.append(line)
    else:
        raise ProtocolError(f"more than {MAX_HEADERS} header lines")
    headers = Headers()
    for name, sep, value in (line.partition(":") for line in b"".join(lines).decode("latin-1").splitlines()):
        if sep:
            key, value = name.strip().lower(), value.strip()
            seen = dict.get(headers, key)
            headers[key] = value if seen is None else f"{seen}, {value}"
    return headers


def _status(line: bytes) -> tuple[int, bool]:
    """(status code, whether the connection may be kept) of a status line."""
    parts = line.split(None, 2)
    if not line:
        raise _NoAnswer("connection closed before an answer")
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError("not an HTTP/1.x answer")
    return int(parts[1]), parts[0] != b"HTTP/1.0"


class HttpPool:
    """Keep-alive connections to the origins asked for, with the headers every request carries."""

    def __init__(self, headers: Mapping[str, str], maxsize: int) -> None:
        self.headers = {"User-Agent": "comfykit-batch", **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        self.maxsize = maxsize
        self._tls: ssl.SSLContext | None = None
        self._origins: dict[str, _Origin] = {}

    def request(self, method: str, url: str, *, timeout: tuple[float, float], json_body: Any = None,
                fields: Mapping[str, Any] | None = None, stream: bool = False) -> Response:
        """One request; ``stream`` leaves the body to ``iter_content`` (then ``close`` the response).

        A kept-alive connection that turns out closed before any answer came is replaced once for a
        GET (which the server cannot have acted on twice); any other failure is raised.
        """
        origin, path = self._origin_for(url)
        body, extra = b"", ""
        if json_body is not None:
            body, extra = json.dumps(json_body, separators=(",", ":")).encode(), "Content-Type: application/json\r\n"
        elif fields is not None:
            body, ctype = encode_multipart_formdata(dict(fields))
            extra = f"Content-Type: {ctype}\r\n"
        if body or method in ("POST", "PUT", "PATCH"):
            extra += f"Content-Length: {len(body)}\r\n"
        head = f"{method} {path} HTTP/1.1\r\nHost: {origin.host_header}\r\n{self._head}{extra}\r\n".encode("latin-1")
        for attempt in (1, 2):
            conn, reused = origin.take(timeout[0])
            try:
                r = self._exchange(conn, origin, method, head + body, timeout[1])
                break
            except BaseException as exc:
                conn.close()
                if attempt == 2 or not (reused and method == "GET" and isinstance(exc, _BEFORE_ANSWER)):
                    raise
        if not stream:
            try:
                r.content  # noqa: B018 - read now: the connection goes back to the pool
            except BaseException:
                r.close()
                raise
        return r

    @staticmethod
    def _exchange(conn: _Conn, origin: _Origin, method: str, data: bytes, read_timeout: float) -> Response:
        conn.sock.settimeout(read_timeout)
        conn.sock.sendall(data)
        while True:
            status, keep = _status(conn.reader.readline(MAX_LINE))
            headers = _read_headers(conn.reader)
            if status != 100:  # "100 Continue" precedes the real answer
                break
        keep = keep and "close" not in headers.get("connection", "").lower()
        return Response(conn, origin, status, headers, method=method, reusable=keep)

    def _origin_for(self, url: str) -> tuple[_Origin, str]:
        """The URL's origin (looked up once per origin) and the path to ask it for."""
        cut = url.find("/", url.find("//") + 2)
        key, path = (url, "/") if cut < 0 else (url[:cut], url[cut:])
        origin = self._origins.get(key)
        if origin is None:
            if key.startswith("https:") and self._tls is None:
                self._tls = ssl.create_default_context(cafile=certifi.where())
            origin = self._origins.setdefault(key, _Origin(key, self.maxsize, self._tls))
        return origin, path

    def close(self) -> None:
        for origin in list(self._origins.values()):
            origin.close()
        self._origins.clear()


