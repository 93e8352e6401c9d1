"""ComfyUI's HTTP routes, one method each, over one lean keep-alive HTTP/1.1 pool (``pool``).

Both ComfyUI executors stand on this. It knows the protocol (envelopes, error
shapes, auth headers), not job semantics, and raises only the package's
``BackendError`` family (see ``transport``). Redirects are never followed: a
ComfyUI-Login server answers 302 to /login, which is an auth failure, and
following redirects could carry credentials to another host. Cookies are sent
as a ``Cookie`` header to this server only: a cookie jar's domain matching
drops them for ``localhost`` and single-label hosts (``comfyui``, ``gpu1``).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode

from ..errors import AuthError, BackendError, ConfigError, FetchError
from ..fetch import fetch_bytes
from .pool import HttpPool, Response
from .transport import Redactor, check_url, http_status_error, mapped, read_timeout

logger = logging.getLogger("comfykit_batch.comfyui")

JsonDict = dict[str, Any]
#: model folder name -> the file names the server lists in it (``GET /models``, ``GET /models/{folder}``)
ModelFolders = Mapping[str, tuple[str, ...]]

#: characters ``urlencode`` leaves as they are: a name made only of them needs no quoting
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")
#: the reachability probe's limit: a server that cannot answer /system_stats in this is not usable
CHECK_TIMEOUT = 5.0


class PromptRejected(BackendError):
    """POST /prompt refused the prompt (400, or 200 with ``node_errors``): asking again will not help."""

    def __init__(self, message: str, error: Mapping[str, Any], node_errors: Mapping[str, Any], *,
                 backend: str | None = None, queued: bool = False) -> None:
        super().__init__(message, transient=False, backend=backend)
        self.error = dict(error)
        self.node_errors = dict(node_errors)
        #: True for a 200 with node_errors: the outputs that validated are queued and must be removed
        self.queued = queued


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
        except FetchError as exc:
            raise ConfigError(f"could not fetch the cookies from their URL ({exc})") from exc
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:  # no cause: it holds the cookies' text, whose values cannot be told apart to scrub
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


def cookie_header(cookies: Mapping[str, str]) -> str | None:
    """The ``Cookie`` header value for these cookies (both transports send exactly this)."""
    return "; ".join(f"{k}={v}" for k, v in cookies.items()) or None


def format_node_errors(error: Mapping[str, Any], node_errors: Mapping[str, Any]) -> str:
    """One readable line from a 400 answer: each failing node, its class, input and reason."""
    parts = []
    for nid, entry in (node_errors or {}).items():
        if not isinstance(entry, Mapping):
            continue
        cls = entry.get("class_type", "?")
        for e in entry.get("errors", []) or []:
            if not isinstance(e, Mapping):
                continue
            inp = (e.get("extra_info") or {}).get("input_name") if isinstance(e.get("extra_info"), Mapping) else None
            where = f"node {nid} ({cls})" + (f" input '{inp}'" if inp else "")
            detail = str(e.get("details") or "")
            msg = str(e.get("message") or e.get("type") or "invalid")
            parts.append(f"{where}: {msg}" + (f" ({detail})" if detail and detail not in msg else ""))
    head = str((error or {}).get("message") or (error or {}).get("type") or "prompt rejected")
    return head.rstrip(".") + (": " + "; ".join(parts) if parts else "")


def _rejection(data: Any, fallback: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(error, node_errors) of a /prompt answer, whatever its shape."""
    data = data if isinstance(data, Mapping) else {}
    error = data.get("error") or {}
    if not isinstance(error, Mapping):
        error = {"message": str(error)}
    node_errors = data.get("node_errors") or {}
    return (error or {"message": fallback}), (node_errors if isinstance(node_errors, Mapping) else {})


class ComfyUIClient:
    """Thin wrapper of the ComfyUI routes used by the executors; raises only ``BackendError``/``AuthError``."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        cookies: str | Mapping[str, str] | None = None,
        pool_size: int = 16,
        timeout: tuple[float, float] = (5.0, 60.0),
    ) -> None:
        url = check_url(base_url, "ComfyUI")
        self.base_url, self.display_url, self.host = url.base, url.display, url.host
        self.api_key = api_key
        self.timeout = timeout
        self.cookies = parse_cookies(cookies)
        self.redact = Redactor([api_key, *self.cookies.values()])
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        cookie = cookie_header(self.cookies)
        if cookie:  # only ever sent to base_url: redirects are refused, foreign URLs never requested
            headers["Cookie"] = cookie
        # No proxy from the environment, no redirects, no retries: see ``pool``.
        self.pool = HttpPool(headers, maxsize=pool_size)
        self._object_info: JsonDict | None = None
        self._object_info_lock = threading.Lock()
        self._models: ModelFolders | None = None
        self._models_lock = threading.Lock()

    # -- plumbing --------------------------------------------------------------
    def _request(self, method: str, path: str, *, read: float | None = None, deadline: float | None = None,
                 connect: float | None = None, **kw: Any) -> Response:
        read = read_timeout(read or self.timeout[1], deadline, time.monotonic())
        timeout = (min(connect or self.timeout[0], read), read)
        with mapped(f"{method} {path.split('?')[0]}", self.display_url, self.redact):
            r = self.pool.request(method, self.base_url + path, timeout=timeout, **kw)
        if r.is_redirect or (r.status_code in (401, 403) and not path.startswith("/view")):
            where = r.headers.get("Location", "")
            r.close()
            raise AuthError(
                f"{self.display_url}: {method} {path.split('?')[0]}: HTTP {r.status_code}"
                + (" (redirect to a login page: set api_key or cookies)" if "login" in where
                   else " (redirect refused: credentials are never sent to another URL)" if r.is_redirect
                   else " (authentication required: set api_key or cookies)"),
                backend=self.display_url,
            )
        return r

    def _decode(self, r: Response, doing: str) -> Any:
        if r.status_code >= 400:
            raise http_status_error(self.display_url, doing, r.status_code, _text(r), self.redact)
        with mapped(doing, self.display_url, self.redact):
            return json.loads(r.content)

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return self._decode(self._request(method, path, **kw), f"{method} {path}")

    # -- routes ----------------------------------------------------------------
    def submit(self, prompt: JsonDict, *, prompt_id: str, client_id: str, deadline: float | None = None) -> JsonDict:
        """Queue a prompt; raises ``PromptRejected`` for a 400 and for a 200 that carries ``node_errors``.

        On a 200 with ``node_errors`` ComfyUI has already queued the outputs that validated:
        the caller must remove it (see ``interrupt``), since part of the job would be silently gone.
        """
        body: JsonDict = {"prompt": prompt, "client_id": client_id, "prompt_id": prompt_id}
        if self.api_key:
            body["extra_data"] = {"api_key_comfy_org": self.api_key}
        r = self._request("POST", "/prompt", json_body=body, deadline=deadline)
        if r.status_code == 400:
            try:
                data: Any = json.loads(r.content)
            except ValueError:
                data = {"error": {"message": self.redact.excerpt(_text(r))}}
            error, node_errors = _rejection(data, "prompt rejected")
            raise PromptRejected(self.redact(format_node_errors(error, node_errors)), error, node_errors,
                                 backend=self.display_url)
        data = self._decode(r, "POST /prompt")
        if not isinstance(data, dict):
            raise BackendError(f"{self.display_url}: POST /prompt: answer is not a JSON object", transient=False,
                               backend=self.display_url)
        if data.get("node_errors"):
            error, node_errors = _rejection({"node_errors": data["node_errors"]}, "some outputs failed validation")
            raise PromptRejected(self.redact(format_node_errors(error, node_errors)), error, node_errors,
                                 backend=self.display_url, queued=True)
        return data

    def history(self, prompt_id: str, *, deadline: float | None = None) -> JsonDict | None:
        """The history entry of a finished prompt, or None while it is queued or running."""
        data = self._json("GET", f"/history/{prompt_id}", deadline=deadline)
        entry = data.get(prompt_id) if isinstance(data, dict) else None
        if entry is not None and not isinstance(entry, dict):
            raise BackendError(f"{self.display_url}: GET /history: entry is not a JSON object", transient=False,
                               backend=self.display_url)
        return entry or None

    def queue(self, *, deadline: float | None = None) -> JsonDict:
        data = self._json("GET", "/queue", deadline=deadline)
        return data if isinstance(data, dict) else {}

    def interrupt(self, prompt_id: str) -> None:
        """Stop ``prompt_id`` wherever it is: dropped from the queue, interrupted if running (short timeouts)."""
        self._request("POST", "/queue", json_body={"delete": [prompt_id]}, read=10.0).close()
        self._request("POST", "/interrupt", json_body={"prompt_id": prompt_id}, read=10.0).close()

    def object_info(self) -> JsonDict:
        with self._object_info_lock:
            if self._object_info is None:
                data = self._json("GET", "/object_info", read=120.0)
                if not isinstance(data, dict):
                    raise BackendError(f"{self.display_url}: GET /object_info: answer is not a JSON object",
                                       transient=False, backend=self.display_url)
                self._object_info = data
            return self._object_info

    def model_folders(self) -> ModelFolders:
        """Every model folder's file names, read once: about 25 small requests, so the first caller pays them and
        later ones (other threads included) wait for its answer rather than ask again. A server without
        ``/models`` (older ComfyUI) lists none."""
        with self._models_lock:
            if self._models is None:
                self._models = self._read_models()
            return self._models

    def _read_models(self) -> ModelFolders:
        folders = self._names("/models")
        if folders is None:
            logger.debug("%s has no /models: only the workflow itself says which inputs name model files", self.display_url)
            return {}
        if any(self.redact(folder) != folder for folder in folders):  # it would be in the paths, hence in messages
            raise BackendError(f"{self.display_url}: GET /models: a folder name holds a credential", transient=False,
                               backend=self.display_url)
        return {folder: tuple(self._names(f"/models/{quote(folder, safe='')}") or ()) for folder in folders}

    def _names(self, path: str) -> list[str] | None:
        """A JSON list of names from ``path``; None for a 404 (no such route or folder), ``BackendError`` for any
        other failure or shape, as every route's answer."""
        r = self._request("GET", path)
        if r.status_code == 404:
            r.close()
            return None
        data = self._decode(r, f"GET {path}")
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise BackendError(f"{self.display_url}: GET {path}: answer is not a JSON list of names", transient=False,
                               backend=self.display_url)
        return data

    def system_stats(self, *, timeout: float = CHECK_TIMEOUT) -> JsonDict:
        data = self._json("GET", "/system_stats", read=timeout, connect=timeout)
        return data if isinstance(data, dict) else {}

    def upload(self, filename: str, data: bytes | BinaryIO, *, overwrite: bool = False) -> str:
        """Put a file in the server's input folder; returns the name to use (the server may rename it)."""
        body = data if isinstance(data, bytes) else data.read()
        form = {"image": (filename, body), "type": "input", "overwrite": "true" if overwrite else "false"}
        info = self._json("POST", "/upload/image", fields=form, read=300.0)
        name = info.get("name") if isinstance(info, dict) else None
        if not isinstance(name, str) or not name:
            raise BackendError(f"{self.display_url}: POST /upload/image: no file name in the answer", transient=False,
                               backend=self.display_url)
        sub = info.get("subfolder") or ""
        return f"{sub}/{name}" if sub else name

    def view_url(self, filename: str, subfolder: str = "", type_: str = "output") -> str:
        if _PLAIN.fullmatch(filename) and _PLAIN.fullmatch(subfolder) and _PLAIN.fullmatch(type_):
            return f"{self.base_url}/view?filename={filename}&subfolder={subfolder}&type={type_}"  # urlencode's, faster
        return f"{self.base_url}/view?" + urlencode({"filename": filename, "subfolder": subfolder, "type": type_})

    def stream(self, url: str, chunk: int = 1 << 20) -> Iterator[bytes]:
        """Chunks of a file served by this server (``url`` must be one of its own)."""
        if not url.startswith(self.base_url + "/"):
            raise BackendError(f"{self.display_url}: refusing to send credentials to a URL outside this server",
                               transient=False, backend=self.display_url)
        path = url[len(self.base_url):]
        r = self._request("GET", path, stream=True, read=300.0)
        with r:
            if r.status_code != 200:
                # 404: the file is gone (will not come back); 5xx may pass
                raise http_status_error(self.display_url, f"GET {path.split('?')[0]}", r.status_code, "", self.redact)
            with mapped("download interrupted", self.display_url, self.redact):
                yield from r.iter_content(chunk)

    def close(self) -> None:
        self.pool.close()


def _text(r: Response) -> str:
    return r.content.decode("utf-8", "replace")  # read with the answer: nothing left to fail
