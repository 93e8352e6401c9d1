"""The WebSocket executor: completion, outputs and progress from ComfyUI's event stream.

One socket per executor, read by one background thread that routes events to
the jobs waiting on them by prompt id. A prompt's outputs come from its own
``executed`` events when one connection saw the whole prompt end in
``execution_success`` (see ``_Seen``: they are the very dicts the server writes
to ``/history``); otherwise they are read from ``/history``, which also covers
older servers, a dropped socket (reconnected in the background, polled
meanwhile) and the race where ``execution_success`` arrives before the history
entry is visible.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import websocket

from ..errors import AuthError, BackendError, scrub_chain
from .base import ProgressCallback, ProgressEvent
from .comfyui_base import ComfyUIExecutor, ComfyUIOptions, JsonDict
from .comfyui_client import CHECK_TIMEOUT, cookie_header
from .lifecycle import Deadline
from .transport import Redactor, reason

if TYPE_CHECKING:  # typing.Unpack is 3.11+; annotations are never evaluated at run time
    from typing_extensions import Unpack

    from ..workflow import Workflow

logger = logging.getLogger("comfykit_batch.comfyui.ws")

_DROPPED = "_dropped"
_DONE_EVENTS = frozenset({"execution_success", "execution_error", "execution_interrupted"})
#: the events that tell a prompt's outputs (see ``_Seen``)
_OUTPUT_EVENTS = frozenset({"execution_start", "executed", "execution_cached"})
_REDIRECTS = frozenset({HTTPStatus.MOVED_PERMANENTLY, HTTPStatus.FOUND, HTTPStatus.SEE_OTHER,
                        HTTPStatus.TEMPORARY_REDIRECT, HTTPStatus.PERMANENT_REDIRECT})
#: the event types a waiting job acts on (``job_finished``, its outputs, and ``progress`` when asked for);
#: ``executing`` is judged apart (only ``node: null`` ends a prompt, see ``_EventHub._wanted``)
_WANTED = frozenset(k.encode() for k in (*_DONE_EVENTS, *_OUTPUT_EVENTS))
_TYPE_HEAD = re.compile(rb'\{\s*"type"\s*:\s*"([A-Za-z_]+)"')


def job_finished(kind: str | None, data: Mapping[str, Any]) -> bool:
    """The events after which a prompt's history entry is (about to be) written."""
    return kind in _DONE_EVENTS or (kind == "executing" and data.get("node") is None)


def connect(url: str, header: list[str], cookie: str | None, display: str, timeout: float,
            redact: Redactor) -> websocket.WebSocket:
    """Open the socket without ever following a redirect: a 302 would carry the key and cookies elsewhere.

    A redirect or 401/403 raises ``AuthError`` (the refused handshake its cause, the headers and
    body the server answered dropped from it by ``redact``); any other failure raises what
    websocket-client raised (the caller polls ``/history`` meanwhile).
    """
    ws = websocket.WebSocket(enable_multithread=True, skip_utf8_validation=True)
    try:
        ws.connect(url, timeout=timeout, header=header, cookie=cookie, redirect_limit=0,
                   http_proxy_host=None, http_no_proxy=["*"])
    except Exception as exc:
        status = getattr(ws.handshake_response, "status", None) or getattr(exc, "status_code", None)
        if status in _REDIRECTS or status in (401, 403):
            what = "redirect refused: credentials are never sent to another URL" if status in _REDIRECTS \
                else "authentication required: set api_key or cookies"
            raise AuthError(f"{display}: websocket /ws: HTTP {status} ({what})", backend=display) from scrub_chain(exc, redact)
        raise
    return ws


class FrameReader:
    """Reads whole messages from the server's side of a WebSocket, out of one buffer.

    websocket-client parses a frame in pure Python from two or three small reads (header,
    length, payload), each a poll and a recv on a socket with a timeout; ComfyUI sends about
    fifteen events per prompt, which made this reader a fifth of the client's CPU per job. Here a
    burst of events is one recv and each frame a few slices. A timeout leaves a partial frame in
    the buffer (nothing is lost); pings are answered; a close frame is returned to the caller.
    """

    READ_SIZE = 65536

    def __init__(self, ws: websocket.WebSocket) -> None:
        self._ws = ws
        self._sock: Any = ws.sock  # None only if closed meanwhile: recv then fails in ``_read``, as a dropped socket
        self._buf = bytearray()
        self._parts: list[bytes] = []  # a fragmented message so far
        self._opcode = 0

    def recv_data(self) -> tuple[int, bytes]:
        """The next message as (opcode, payload), as ``WebSocket.recv_data`` returns it, with its timeout exception."""
        try:
            return self.next()
        except TimeoutError:
            raise websocket.WebSocketTimeoutException("no event within the socket's timeout") from None

    def next(self) -> tuple[int, bytes]:
        """The next message as (opcode, payload); raises ``TimeoutError``, or ``ConnectionError`` at EOF."""
        while True:
            frame = self._take()
            if frame is None:
                data = self._sock.recv(self.READ_SIZE)
                if not data:
                    raise ConnectionError("websocket closed by the server")
                self._buf += data
                continue
            fin, opcode, payload = frame
            if opcode == websocket.ABNF.OPCODE_PING:
                self._ws.pong(payload)
            elif opcode == websocket.ABNF.OPCODE_CLOSE:
                return opcode, payload
            elif opcode != websocket.ABNF.OPCODE_PONG:
                if opcode != websocket.ABNF.OPCODE_CONT:
                    self._parts, self._opcode = [], opcode
                self._parts.append(payload)
                if fin:
                    message, self._parts = b"".join(self._parts), []
                    return self._opcode, message

    def _take(self) -> tuple[bool, int, bytes] | None:
        """One whole frame off the buffer (fin, opcode, payload), or None until more bytes arrive."""
        buf = self._buf
        if len(buf) < 2:
            return None
        length, pos = buf[1] & 0x7F, 2
        if length >= 126:
            pos = 4 if length == 126 else 10
            if len(buf) < pos:
                return None
            length = int.from_bytes(buf[2:pos], "big")
        mask = None
        if buf[1] & 0x80:  # servers do not mask; accepted anyway
            mask, pos = bytes(buf[pos:pos + 4]), pos + 4
        end = pos + length
        if len(buf) < end:
            return None
        payload = bytes(buf[pos:end])
        if mask:
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        fin, opcode = bool(buf[0] & 0x80), buf[0] & 0x0F
        del buf[:end]
        return fin, opcode, payload


class _Waiter:
    """A prompt a job waits on: the hub notes its output events in ``seen`` and wakes the job through ``q``.

    Output events are only noted, never queued: the job needs them at its end, and waking a thread
    for each of them cost a context switch and a GIL hand-off per event.
    """

    __slots__ = ("progress", "q", "seen")

    def __init__(self, seen: _Seen, progress: bool) -> None:
        self.q: queue.SimpleQueue[tuple[str, JsonDict]] = queue.SimpleQueue()
        self.seen = seen
        self.progress = progress


class _EventHub:
    """Owns the socket; notes each prompt's output events and wakes that prompt's job for its end."""

    def __init__(self, url: str, header: list[str], cookie: str | None, display: str,
                 redact: Redactor | None = None) -> None:
        self.url, self.header, self.cookie, self.display = url, header, cookie, display
        self.redact = redact or Redactor([])
        self.connected = threading.Event()
        self.generation = 0  # connections made so far: events of one prompt all came on one connection if unchanged
        self.auth_error: AuthError | None = None  # the last handshake was refused (until one succeeds)
        self._queues: dict[str, _Waiter] = {}
        self._progress = 0  # waiters that want progress events (none: progress frames are not even parsed)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ws: websocket.WebSocket | None = None
        self._closed = False

    def add(self, prompt_id: str, seen: _Seen, progress: bool = False) -> _Waiter:
        """Watch this prompt: its output events go to ``seen``, its end (and progress, if asked for) to the waiter's queue."""
        waiter = _Waiter(seen, progress)
        with self._lock:
            self._forget(prompt_id)
            self._queues[prompt_id] = waiter
            self._progress += waiter.progress
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="comfykit-ws", daemon=True)
                self._thread.start()
        return waiter

    def get(self, prompt_id: str) -> _Waiter | None:
        with self._lock:
            return self._queues.get(prompt_id)

    def remove(self, prompt_id: str) -> None:
        with self._lock:
            self._forget(prompt_id)

    def _forget(self, prompt_id: str) -> None:
        """Under the lock: stop watching a prompt."""
        old = self._queues.pop(prompt_id, None)
        if old is not None:
            self._progress -= old.progress

    def _idle(self) -> bool:
        """Atomically with add(): decide that the reader thread ends."""
        with self._lock:
            if not self._queues or self._closed:
                self._thread = None
                return True
            return False

    def _run(self) -> None:
        backoff = 0.1
        while not self._idle():
            try:
                ws = self.open(10.0)
            except AuthError as exc:
                self.auth_error = exc
                logger.warning("%s", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except Exception as exc:  # noqa: BLE001 - any other failure to connect means: poll and try again
                logger.debug("websocket connect to %s failed: %s", self.display, reason(exc))
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff, self.auth_error = 0.1, None
            ws.settimeout(1.0)
            self._ws = ws
            self.generation += 1
            self.connected.set()
            try:
                self._read(FrameReader(ws))
            finally:
                self.connected.clear()
                self._ws = None
                try:
                    ws.close(timeout=0.5)
                except Exception:  # noqa: BLE001
                    pass
                with self._lock:
                    waiting = list(self._queues.values())
                for w in waiting:
                    w.q.put((_DROPPED, {}))

    def open(self, timeout: float) -> websocket.WebSocket:
        return connect(self.url, self.header, self.cookie, self.display, timeout, self.redact)

    def _read(self, ws: websocket.WebSocket | FrameReader) -> None:
        while not self._closed:
            try:
                opcode, data = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                with self._lock:
                    if not self._queues:
                        return  # nobody waiting: close; the next job reconnects
                continue
            except Exception as exc:  # noqa: BLE001 - socket gone: the waiters fall back to /history
                logger.info("websocket dropped: %s", reason(exc))
                return
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return
            if opcode != websocket.ABNF.OPCODE_TEXT:
                continue  # binary preview/text frames: not needed, never parsed
            if not self._wanted(data):
                continue
            try:
                msg = json.loads(data)
                kind, payload = msg.get("type"), msg.get("data") or {}
            except (ValueError, AttributeError):
                continue
            if not isinstance(kind, str) or not isinstance(payload, dict):
                continue  # not a ComfyUI event: a proxy's or another tool's message
            pid = payload.get("prompt_id")
            if not pid or not isinstance(pid, str):
                continue
            waiter = self.get(pid)
            if waiter is None:
                continue
            if kind in _OUTPUT_EVENTS:
                waiter.seen.take(kind, payload)  # read by the job after its end event, which comes later on the queue
            elif job_finished(kind, payload) or (kind == "progress" and waiter.progress):
                waiter.q.put((kind, payload))  # wake the job only for what it acts on

    def _wanted(self, data: bytes) -> bool:
        """Whether an event may matter, judged from its type before parsing it (most of a prompt's events do not).

        ComfyUI writes ``{"type": ...`` first; anything laid out otherwise is parsed and judged in full.
        """
        m = _TYPE_HEAD.match(data, 0, 64) if isinstance(data, bytes) else None
        if m is None:
            return True
        kind = m.group(1)
        if kind == b"executing":  # one per node; only the last (node null) ends a prompt, the rest need no parsing
            return b'"node": null' in data or b'"node":null' in data
        return kind in _WANTED or (kind == b"progress" and self._progress > 0)

    def close(self) -> None:
        self._closed = True
        ws = self._ws
        if ws is not None:
            try:
                ws.abort()
            except Exception:  # noqa: BLE001
                pass


class _Seen:
    """What one connection of the socket told of one prompt: its outputs, as the server writes them to ``/history``.

    ComfyUI writes a node's UI output to the history entry exactly when it sends that node's
    ``executed`` event (an output node served from cache included, with its cached output), and
    sends a prompt's events in order on the socket registered for its client id. So when one
    connection saw the prompt from its ``execution_start`` to its ``execution_success``, the
    events hold the entry's outputs, and the ``/history`` request is skipped: one request less per
    job for client and server. Servers from before ComfyUI's 2024 execution rewrite put a cached
    output node's output in the history without an event: a cached output node (per
    ``/object_info``) without its ``executed`` event sends the job to ``/history``, as does an
    error, a reconnect, or no socket at all.
    """

    __slots__ = ("cached", "executed", "generation", "output_nodes", "outputs", "started")

    def __init__(self, generation: int | None, output_nodes: frozenset[str]) -> None:
        self.generation = generation  # the connection that was up when the prompt was submitted (None: none was)
        self.output_nodes = output_nodes
        self.outputs: JsonDict = {}
        self.executed: set[str] = set()
        self.cached: set[str] = set()
        self.started = False

    def take(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind == "execution_start":
            self.started = True
        elif kind == "executed":
            node, output = str(data.get("node")), data.get("output")
            self.executed.add(node)
            if isinstance(output, dict) and output:
                self.outputs[node] = output
        elif kind == "execution_cached" and isinstance(data.get("nodes"), list):
            self.cached.update(str(n) for n in data["nodes"])

    def entry(self, generation: int) -> JsonDict | None:
        """The history entry the events amount to after ``execution_success``, or None if they may be incomplete."""
        if self.generation is None or generation != self.generation or not self.started:
            return None
        if not self.cached & self.output_nodes <= self.executed:
            return None
        return {"outputs": self.outputs, "status": {"status_str": "success", "completed": True, "messages": []}}


class WebSocketExecutor(ComfyUIExecutor):
    """Like ``HttpExecutor`` but learns of completion at once and reports progress."""

    def __init__(self, url: str, **options: Unpack[ComfyUIOptions]) -> None:
        super().__init__(url, **options)
        ws_url = "ws" + self.client.base_url[len("http"):] + f"/ws?clientId={self.client_id}"
        header = [f"Authorization: Bearer {self.client.api_key}"] if self.client.api_key else []
        self._hub = _EventHub(ws_url, header, cookie_header(self.client.cookies), self.name, self.client.redact)
        self._outputs: dict[str, frozenset[str]] = {}  # workflow fingerprint -> its output nodes on this server

    def check(self) -> None:
        """The HTTP probe, then one handshake: a /ws that redirects or wants credentials is an ``AuthError``."""
        super().check()
        try:
            self._hub.open(CHECK_TIMEOUT).close()
        except AuthError:
            raise
        except Exception as exc:  # noqa: BLE001 - no socket is not fatal: jobs poll /history instead
            logger.info("%s: no websocket (%s); jobs will poll /history", self.name, reason(exc))

    def _listen(self, prompt_id: str, workflow: Workflow, on_progress: ProgressCallback | None = None) -> None:
        seen = _Seen(None, self._output_nodes(workflow))
        self._hub.add(prompt_id, seen, progress=on_progress is not None)
        end = time.monotonic() + self.timings.socket_connect_wait
        while not self._hub.connected.wait(0.02):
            if self._hub.auth_error is not None:
                self._hub.remove(prompt_id)
                raise self._hub.auth_error
            if time.monotonic() >= end:
                break
        # Before the prompt is submitted, so no event of it is noted yet: the connection its events will come on.
        seen.generation = self._hub.generation if self._hub.connected.is_set() else None

    def _output_nodes(self, workflow: Workflow) -> frozenset[str]:
        """The workflow's output nodes (``output_node`` in this server's ``/object_info``), found once per workflow."""
        key = workflow.fingerprint()
        found = self._outputs.get(key)
        if found is None:
            info = self.client.object_info()
            found = frozenset(nid for nid, node in workflow.nodes.items()
                              if isinstance(spec := info.get(node.get("class_type")), Mapping) and spec.get("output_node"))
            self._outputs[key] = found  # two threads may both compute it: the same value
        return found

    def _unlisten(self, prompt_id: str) -> None:
        self._hub.remove(prompt_id)

    def _wait(self, prompt_id: str, deadline: Deadline, on_progress: ProgressCallback | None) -> JsonDict:
        waiter = self._hub.get(prompt_id)
        assert waiter is not None
        q, seen = waiter.q, waiter.seen
        state: JsonDict = {}
        live = self._hub.connected.is_set()
        next_poll = deadline.started + (self.timings.socket_safety_poll if live else 0.005)
        while True:
            deadline.check()
            now = time.monotonic()
            wait = max(0.0, next_poll - now)
            left = deadline.left()
            if left is not None:
                wait = min(wait, max(0.0, left))
            if deadline.cancel is not None:  # the queue cannot also wait on the event: look at it this often
                wait = min(wait, self.timings.cancel_check)
            try:
                kind, data = q.get(timeout=wait)
            except queue.Empty:
                kind, data = None, {}
            if kind == "progress" and on_progress is not None:
                self._report(on_progress, prompt_id, data)
            if job_finished(kind, data):
                entry = seen.entry(self._hub.generation) if kind == "execution_success" else None
                entry = entry or self._history_after_event(prompt_id, deadline)
                if entry is not None:
                    return entry
                next_poll = min(next_poll, time.monotonic() + self.timings.poll_min)  # not there yet: poll, tolerating errors
            if time.monotonic() >= next_poll or kind == _DROPPED:
                entry = self._poll_history(prompt_id, deadline, state)
                if entry is not None:
                    return entry
                next_poll = time.monotonic() + self._poll_step(deadline)

    def _poll_step(self, deadline: Deadline) -> float:
        """The wait before the next look at ``/history``: rare while the socket is live (in case an event was
        lost), paced as the HTTP executor's polling without it."""
        t = self.timings
        if self._hub.connected.is_set():
            return t.socket_safety_poll
        return min(self.poll_max, max(t.poll_min, deadline.elapsed() * t.poll_fraction))

    def _history_after_event(self, prompt_id: str, deadline: Deadline) -> JsonDict | None:
        """History may lag the success event by a moment: look a few times."""
        for delay in (0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1):
            deadline.sleep(delay)
            try:
                entry = self.client.history(prompt_id, deadline=deadline.at)
            except AuthError:
                raise
            except BackendError:
                return None  # the polling path counts failures and decides when the server is gone
            if entry is not None:
                return entry
        return None

    @staticmethod
    def _report(callback: ProgressCallback, prompt_id: str, data: JsonDict) -> None:
        try:
            node = data.get("node")
            callback(ProgressEvent(prompt_id, None if node is None else str(node), _num(data.get("value")),
                                   _num(data.get("max"))))
        except Exception:  # noqa: BLE001 - a caller's callback must not kill the job
            logger.exception("progress callback raised")

    def close(self) -> None:
        self._hub.close()
        super().close()


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0
