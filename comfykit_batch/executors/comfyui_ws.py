"""The WebSocket executor: completion and progress from ComfyUI's event stream.

One socket per executor, read by one background thread that routes events to
the jobs waiting on them by prompt id. Events are hints: the outputs are always
read from ``/history``, which also covers prompts served from cache, a dropped
socket (reconnected in the background, polled meanwhile) and the race where
``execution_success`` arrives before the history entry is visible.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

import websocket

from .base import ProgressCallback, ProgressEvent
from .comfyui import LOST_CHECK_INTERVAL, POLL_FRACTION, POLL_MIN, ComfyUIExecutor, JsonDict

logger = logging.getLogger("comfykit_batch.comfyui.ws")

_DROPPED = "_dropped"
_DONE_EVENTS = frozenset({"execution_success", "execution_error", "execution_interrupted"})
#: with a live socket, /history is still read this often in case an event was lost
SAFETY_POLL = LOST_CHECK_INTERVAL


class _EventHub:
    """Owns the socket; hands each prompt's events to that prompt's queue."""

    def __init__(self, url: str, header: list[str], cookie: str | None) -> None:
        self.url, self.header, self.cookie = url, header, cookie
        self.connected = threading.Event()
        self._queues: dict[str, queue.SimpleQueue[tuple[str, JsonDict]]] = {}
        self._progress: set[str] = set()  # prompts whose caller wants progress events
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ws: websocket.WebSocket | None = None
        self._closed = False

    def add(self, prompt_id: str, progress: bool = False) -> queue.SimpleQueue[tuple[str, JsonDict]]:
        """Route this prompt's events to a new queue: the end events, and progress only if asked for."""
        q: queue.SimpleQueue[tuple[str, JsonDict]] = queue.SimpleQueue()
        with self._lock:
            self._queues[prompt_id] = q
            if progress:
                self._progress.add(prompt_id)
            else:
                self._progress.discard(prompt_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="comfykit-ws", daemon=True)
                self._thread.start()
        return q

    def get(self, prompt_id: str) -> queue.SimpleQueue[tuple[str, JsonDict]] | None:
        with self._lock:
            return self._queues.get(prompt_id)

    def remove(self, prompt_id: str) -> None:
        with self._lock:
            self._queues.pop(prompt_id, None)
            self._progress.discard(prompt_id)

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
                # skip_utf8_validation: websocket-client's check is pure Python, per byte; json.loads checks anyway
                ws = websocket.create_connection(
                    self.url, timeout=10, header=self.header, cookie=self.cookie, enable_multithread=True,
                    skip_utf8_validation=True,
                )
            except Exception as exc:  # noqa: BLE001 - any failure to connect means: poll and try again
                logger.debug("websocket connect to %s failed: %s", self.url.split("?")[0], type(exc).__name__)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            ws.settimeout(1.0)
            self._ws = ws
            self.connected.set()
            try:
                self._read(ws)
            finally:
                self.connected.clear()
                self._ws = None
                try:
                    ws.close(timeout=0.5)
                except Exception:  # noqa: BLE001
                    pass
                with self._lock:
                    waiting = list(self._queues.values())
                for q in waiting:
                    q.put((_DROPPED, {}))

    def _read(self, ws: websocket.WebSocket) -> None:
        while not self._closed:
            try:
                opcode, data = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                with self._lock:
                    if not self._queues:
                        return  # nobody waiting: close; the next job reconnects
                continue
            except Exception as exc:  # noqa: BLE001 - socket gone: the waiters fall back to /history
                logger.info("websocket dropped: %s", type(exc).__name__)
                return
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return
            if opcode != websocket.ABNF.OPCODE_TEXT:
                continue  # binary preview/text frames: not needed, never parsed
            try:
                msg = json.loads(data)
                kind, payload = msg.get("type"), msg.get("data") or {}
            except (ValueError, AttributeError):
                continue
            pid = payload.get("prompt_id") if isinstance(payload, dict) else None
            if not pid:
                continue
            # Wake a waiting job only for what it acts on: its end, and progress if it asked for it.
            if kind in _DONE_EVENTS or (kind == "executing" and payload.get("node") is None):
                pass
            elif not (kind == "progress" and pid in self._progress):
                continue
            q = self.get(pid)
            if q is not None:
                q.put((kind, payload))

    def close(self) -> None:
        self._closed = True
        ws = self._ws
        if ws is not None:
            try:
                ws.abort()
            except Exception:  # noqa: BLE001
                pass


class WebSocketExecutor(ComfyUIExecutor):
    """Like ``HttpExecutor`` but learns of completion at once and reports progress."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        cookies: str | Mapping[str, str] | None = None,
        concurrency: int = 2,
        poll_max: float = 1.0,
        connect_wait: float = 5.0,
    ) -> None:
        super().__init__(url, api_key=api_key, cookies=cookies, concurrency=concurrency, poll_max=poll_max)
        ws_url = "ws" + self.client.base_url[len("http"):] + f"/ws?clientId={self.client_id}"
        header = [f"Authorization: Bearer {api_key}"] if api_key else []
        cookie = "; ".join(f"{k}={v}" for k, v in self.client.cookies.items()) or None
        self._hub = _EventHub(ws_url, header, cookie)
        self.connect_wait = connect_wait

    def _listen(self, prompt_id: str, on_progress: ProgressCallback | None = None) -> None:
        self._hub.add(prompt_id, progress=on_progress is not None)
        self._hub.connected.wait(self.connect_wait)

    def _unlisten(self, prompt_id: str) -> None:
        self._hub.remove(prompt_id)

    def _wait(self, prompt_id, deadline, cancel, on_progress):  # type: ignore[no-untyped-def]
        started = time.monotonic()
        q = self._hub.get(prompt_id)
        assert q is not None
        state: JsonDict = {}
        next_poll = started + (SAFETY_POLL if self._hub.connected.is_set() else 0.005)
        while True:
            self._check_stop(deadline, cancel, started)
            now = time.monotonic()
            wait = max(0.0, next_poll - now)
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - now))
            if cancel is not None:
                wait = min(wait, 0.1)
            try:
                kind, data = q.get(timeout=wait)
            except queue.Empty:
                kind, data = None, {}
            if kind == "progress" and on_progress is not None:
                self._report(on_progress, prompt_id, data)
            finished = kind in _DONE_EVENTS or (kind == "executing" and data.get("node") is None)
            if finished:
                entry = self._history_after_event(prompt_id)
                if entry is not None:
                    return entry
            if time.monotonic() >= next_poll or kind == _DROPPED:
                entry = self._poll_history(prompt_id, started, state)
                if entry is not None:
                    return entry
                elapsed = time.monotonic() - started
                live = self._hub.connected.is_set()
                step = SAFETY_POLL if live else min(self.poll_max, max(POLL_MIN, elapsed * POLL_FRACTION))
                next_poll = time.monotonic() + step

    def _history_after_event(self, prompt_id: str) -> JsonDict | None:
        """History may lag the success event by a moment: look a few times."""
        for delay in (0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1):
            time.sleep(delay)
            entry = self.client.history(prompt_id)
            if entry is not None:
                return entry
        return None

    @staticmethod
    def _report(callback: Any, prompt_id: str, data: JsonDict) -> None:
        try:
            callback(ProgressEvent(prompt_id, data.get("node"), data.get("value", 0), data.get("max", 0)))
        except Exception:  # noqa: BLE001 - a caller's callback must not kill the job
            logger.exception("progress callback raised")

    def close(self) -> None:
        self._hub.close()
        super().close()
