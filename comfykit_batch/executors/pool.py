"""A lean pooled HTTP client on urllib3, for the ComfyUI hot path (submit, poll, download).

``requests`` spends most of a small call's CPU on itself (merging session
settings per call, runtime Protocol checks, cookie jars): a few hundred
microseconds a request, several requests a job. This is the little the
ComfyUI client needs and nothing more: fixed headers, no redirects, no
retries, no proxies from the environment, a timeout per request. Errors are
urllib3's and the socket's; the caller maps them (``transport.mapped``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import certifi
import urllib3

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class Response:
    """What the client reads of an answer: status, headers, the body (read at once, or streamed)."""

    __slots__ = ("_raw", "headers", "status_code")

    def __init__(self, raw: urllib3.BaseHTTPResponse) -> None:
        self._raw = raw
        self.status_code: int = raw.status
        self.headers = raw.headers

    @property
    def content(self) -> bytes:
        return self._raw.data

    @property
    def is_redirect(self) -> bool:
        return self.status_code in REDIRECT_STATUSES and "location" in self.headers

    def iter_content(self, chunk: int) -> Iterator[bytes]:
        yield from self._raw.stream(chunk)

    def close(self) -> None:
        self._raw.release_conn()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HttpPool:
    """Keep-alive connections to one server, with the headers every request carries."""

    def __init__(self, headers: Mapping[str, str], maxsize: int) -> None:
        self.headers = {"User-Agent": "comfykit-batch", **headers}
        self._json_headers = {**self.headers, "Content-Type": "application/json"}
        # The same CA bundle requests uses (certifi, one of its dependencies), so https backends verify alike.
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=maxsize, block=False, retries=False, headers=self.headers,
                                         ca_certs=certifi.where())
        self._origins: dict[str, urllib3.HTTPConnectionPool] = {}

    def request(self, method: str, url: str, *, timeout: tuple[float, float], json_body: Any = None,
                fields: Mapping[str, Any] | None = None, stream: bool = False) -> Response:
        """One request; ``stream`` leaves the body to ``iter_content`` (then ``close`` the response)."""
        pool, path = self._pool_for(url)
        kw: dict[str, Any] = {"headers": self.headers}
        if json_body is not None:
            kw["body"] = json.dumps(json_body, separators=(",", ":")).encode()
            kw["headers"] = self._json_headers
        elif fields is not None:
            kw["fields"] = dict(fields)
            kw["encode_multipart"] = True
        raw = pool.request(
            method, path, redirect=False, retries=False, preload_content=not stream,
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]), **kw,
        )
        return Response(raw)

    def _pool_for(self, url: str) -> tuple[urllib3.HTTPConnectionPool, str]:
        """The connection pool of the URL's origin (looked up once per origin) and the path to ask it for.

        Going to the origin's pool directly skips what ``PoolManager`` redoes per request (parsing the
        whole URL, building and normalising a pool key).
        """
        cut = url.find("/", url.find("//") + 2)
        origin, path = (url, "/") if cut < 0 else (url[:cut], url[cut:])
        pool = self._origins.get(origin)
        if pool is None:
            pool = self._pool.connection_from_url(origin)
            self._origins[origin] = pool
        return pool, path

    def close(self) -> None:
        self._origins.clear()
        self._pool.clear()
