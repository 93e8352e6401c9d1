"""ComfyUI's HTTP routes, one method each, over one pooled ``requests.Session``.

Both ComfyUI executors stand on this. It knows the protocol (envelopes, error
shapes, auth headers), not job semantics. Redirects are never followed: a
ComfyUI-Login server answers 302 to /login, which is an auth failure, and
following redirects could carry credentials to another host.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO
from urllib.parse import urlencode, urlparse

import requests
from requests.adapters import HTTPAdapter

from ..errors import ConfigError
from ..fetch import fetch_bytes

JsonDict = dict[str, Any]


class TransportError(Exception):
    """The server could not be reached or answered nonsense; the job may succeed elsewhere or later."""


class AuthError(TransportError):
    """The server wants credentials we do not have (401/403, or a redirect to a login page)."""


class PromptRejected(Exception):
    """POST /prompt answered 400: the server validated the prompt and refused it."""

    def __init__(self, message: str, error: JsonDict, node_errors: JsonDict) -> None:
        super().__init__(message)
        self.error = error
        self.node_errors = node_errors


def parse_cookies(cookies: str | Mapping[str, str] | None) -> dict[str, str]:
    """Cookies as a dict from JSON, ``k=v; k2=v2``, or a URL that serves either (fetched without credentials)."""
    if not cookies:
        return {}
    if isinstance(cookies, Mapping):
        return {str(k): str(v) for k, v in cookies.items()}
    text = cookies.strip()
    if text.startswith(("http://", "https://")):
        try:
            text = fetch_bytes(text).decode("utf-8", "replace").strip()
        except requests.RequestException as exc:
            raise ConfigError(f"could not fetch the cookies from their URL ({type(exc).__name__})") from None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError("cookies look like JSON but do not parse") from None
        if not isinstance(data, dict):
            raise ConfigError("cookies JSON must be an object of name: value")
        return {str(k): str(v) for k, v in data.items()}
    out: dict[str, str] = {}
    for part in text.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    if not out:
        raise ConfigError("cookies must be JSON, 'name=value; name2=value2', or a URL serving either")
    return out


def format_node_errors(error: Mapping[str, Any], node_errors: Mapping[str, Any]) -> str:
    """One readable line from a 400 answer: each failing node, its class, input and reason."""
    parts = []
    for nid, entry in (node_errors or {}).items():
        cls = entry.get("class_type", "?")
        for e in entry.get("errors", []) or []:
            inp = (e.get("extra_info") or {}).get("input_name")
            where = f"node {nid} ({cls})" + (f" input '{inp}'" if inp else "")
            detail = e.get("details") or ""
            msg = e.get("message") or e.get("type") or "invalid"
            parts.append(f"{where}: {msg}" + (f" ({detail})" if detail and detail not in msg else ""))
    head = (error or {}).get("message") or (error or {}).get("type") or "prompt rejected"
    return head.rstrip(".") + (": " + "; ".join(parts) if parts else "")


class ComfyUIClient:
    """Thin wrapper of the ComfyUI routes used by the executors."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        cookies: str | Mapping[str, str] | None = None,
        pool_size: int = 16,
        timeout: tuple[float, float] = (5.0, 60.0),
    ) -> None:
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"ComfyUI URL must be http(s)://host[:port], got {base_url!r}")
        if parsed.query or parsed.fragment:
            raise ConfigError("ComfyUI URL must not carry a query or fragment; pass tokens as api_key")
        self.base_url = base_url.rstrip("/")
        # What logs, errors and the index may show: no user:password@, no query (tokens live there).
        host = parsed.hostname or ""
        self.display_url = f"{parsed.scheme}://{host}" + (f":{parsed.port}" if parsed.port else "") + parsed.path.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # never route a local server through a proxy from the environment
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.cookies = parse_cookies(cookies)
        for k, v in self.cookies.items():
            self.session.cookies.set(k, v, domain=parsed.hostname or "")
        self._object_info: JsonDict | None = None
        self._object_info_lock = threading.Lock()

    # -- plumbing --------------------------------------------------------------
    def _request(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", self.timeout)
        kw.setdefault("allow_redirects", False)
        try:
            r = self.session.request(method, self.base_url + path, **kw)
        except requests.RequestException as exc:
            raise TransportError(f"{method} {path}: {type(exc).__name__}: {_short(exc)}") from None
        if r.is_redirect or (r.status_code in (401, 403) and not path.startswith("/view")):
            where = r.headers.get("Location", "")
            raise AuthError(
                f"{method} {path}: HTTP {r.status_code}"
                + (" (redirect to a login page: set api_key or cookies)" if "login" in where else " (authentication required)")
            )
        return r

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        r = self._request(method, path, **kw)
        if r.status_code >= 400:
            raise TransportError(f"{method} {path}: HTTP {r.status_code}: {r.text[:200]}")
        try:
            return r.json()
        except ValueError:
            raise TransportError(f"{method} {path}: answer is not JSON") from None

    # -- routes ----------------------------------------------------------------
    def submit(self, prompt: JsonDict, *, prompt_id: str, client_id: str) -> JsonDict:
        body: JsonDict = {"prompt": prompt, "client_id": client_id, "prompt_id": prompt_id}
        if self.api_key:
            body["extra_data"] = {"api_key_comfy_org": self.api_key}
        r = self._request("POST", "/prompt", json=body)
        if r.status_code == 400:
            try:
                data = r.json()
            except ValueError:
                data = {"error": {"message": r.text[:300]}}
            error, node_errors = data.get("error") or {}, data.get("node_errors") or {}
            if isinstance(error, str):
                error = {"message": error}
            raise PromptRejected(format_node_errors(error, node_errors), error, node_errors)
        if r.status_code >= 400:
            raise TransportError(f"POST /prompt: HTTP {r.status_code}: {r.text[:200]}")
        try:
            return r.json()
        except ValueError:
            raise TransportError("POST /prompt: answer is not JSON") from None

    def history(self, prompt_id: str) -> JsonDict | None:
        """The history entry of a finished prompt, or None while it is queued or running."""
        data = self._json("GET", f"/history/{prompt_id}")
        entry = data.get(prompt_id) if isinstance(data, dict) else None
        return entry or None

    def queue(self) -> JsonDict:
        return self._json("GET", "/queue")

    def interrupt(self, prompt_id: str) -> None:
        """Stop ``prompt_id`` wherever it is: dropped from the queue, interrupted if running."""
        self._request("POST", "/queue", json={"delete": [prompt_id]})
        self._request("POST", "/interrupt", json={"prompt_id": prompt_id})

    def object_info(self) -> JsonDict:
        with self._object_info_lock:
            if self._object_info is None:
                self._object_info = self._json("GET", "/object_info", timeout=(self.timeout[0], 120.0))
            return self._object_info

    def system_stats(self) -> JsonDict:
        return self._json("GET", "/system_stats")

    def upload(self, filename: str, data: bytes | BinaryIO, *, overwrite: bool = False) -> str:
        """Put a file in the server's input folder; returns the name to use (the server may rename it)."""
        files = {"image": (filename, data)}
        form = {"type": "input", "overwrite": "true" if overwrite else "false"}
        info = self._json("POST", "/upload/image", files=files, data=form, timeout=(self.timeout[0], 300.0))
        name = info.get("name")
        if not name:
            raise TransportError("POST /upload/image: no file name in the answer")
        sub = info.get("subfolder") or ""
        return f"{sub}/{name}" if sub else name

    def view_url(self, filename: str, subfolder: str = "", type_: str = "output") -> str:
        return f"{self.base_url}/view?" + urlencode({"filename": filename, "subfolder": subfolder, "type": type_})

    def stream(self, url: str, chunk: int = 1 << 20) -> Iterator[bytes]:
        """Chunks of a file served by this server (``url`` must be one of its own)."""
        if not url.startswith(self.base_url + "/"):
            raise TransportError("refusing to send credentials to a URL outside this server")
        path = url[len(self.base_url):]
        r = self._request("GET", path, stream=True, timeout=(self.timeout[0], 300.0))
        with r:
            if r.status_code != 200:
                raise TransportError(f"GET {path.split('?')[0]}: HTTP {r.status_code}")
            try:
                yield from r.iter_content(chunk)
            except requests.RequestException as exc:
                raise TransportError(f"download interrupted: {type(exc).__name__}") from None

    def close(self) -> None:
        self.session.close()


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."
