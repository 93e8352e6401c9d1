"""A protocol-faithful fake ComfyUI: a real HTTP + WebSocket server on loopback.

For what the real server cannot be made to do on demand: 5xx answers, dropped
sockets, the history/event race, a server dying mid-batch, a fixed time per
prompt (for utilisation benchmarks), a price for switching models (for model-aware
scheduling). It follows ``comfyui-protocol.md``: the
same routes, envelopes, event order, one worker executing one prompt at a time,
history written before ``executing`` with ``node: null``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
DEFAULT_CLASSES = {
    "EmptyImage": {"width": ["INT", {"default": 512, "min": 1}], "height": ["INT", {"default": 512, "min": 1}],
                   "batch_size": ["INT", {"default": 1}], "color": ["INT", {"default": 0}]},
    "ImageInvert": {"image": ["IMAGE"]},
    "SaveImage": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]},
    "PreviewImage": {"images": ["IMAGE"]},
    "PreviewAny": {"source": ["*"]},
    "LoadImage": {"image": [["example.png"], {"image_upload": True}]},
    "KSampler": {"seed": ["INT", {"default": 0}], "steps": ["INT", {"default": 20}], "cfg": ["FLOAT", {"default": 8.0}]},
    "Raise": {"message": ["STRING", {"default": "boom"}]},
    "Slow": {"seconds": ["FLOAT", {"default": 1.0}]},
    "SaveMesh": {"source": ["*"]},  # an output kind no client knows ("meshes")
}
OUTPUT_CLASSES = frozenset({"SaveImage", "PreviewImage", "PreviewAny", "SaveMesh"})
_STRENGTH = ["FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}]
# model folder -> (loader class, the input naming its file, its other inputs), as ComfyUI's /object_info lists them
LOADERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "checkpoints": ("CheckpointLoaderSimple", "ckpt_name", {}),
    "vae": ("VAELoader", "vae_name", {}),
    "loras": ("LoraLoader", "lora_name", {"model": ["MODEL"], "clip": ["CLIP"], "strength_model": _STRENGTH,
                                          "strength_clip": _STRENGTH}),
    "diffusion_models": ("UNETLoader", "unet_name", {"weight_dtype": [["default", "fp8_e4m3fn", "fp8_e5m2"]]}),
}
ModelSet = frozenset[tuple[str, str]]  # (folder, file name) of every model a prompt uses


class _WsClient:
    def __init__(self, sock: socket.socket, client_id: str) -> None:
        self.sock, self.client_id = sock, client_id
        self.lock = threading.Lock()
        self.alive = True

    def send(self, payload: bytes, opcode: int = 1) -> None:
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        with self.lock:
            try:
                self.sock.sendall(head + payload)
            except OSError:
                self.alive = False

    def drop(self) -> None:
        self.alive = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class FakeComfyUI:
    """Start with ``FakeComfyUI().start()``; ``url`` is where it listens. Knobs are plain attributes."""

    def __init__(self, *, work_seconds: float = 0.0, port: int = 0, model_files: dict[str, list[str]] | None = None,
                 switch_cost: float = 0.0, slots: int = 1) -> None:
        self.work_seconds = work_seconds
        # Model files by folder ({"vae": ["a.safetensors"], ...}): served by /models and the loaders' combos of
        # /object_info. None: a server without /models (404), as older ComfyUI is.
        self.model_files = model_files
        self.switch_cost = switch_cost  # seconds a prompt pays when its model set is not resident, before its work
        self.slots = slots  # how many distinct model sets stay resident (least recently used goes first)
        self.switches = 0
        self.loads: list[ModelSet] = []  # every model set loaded, in order
        self.model_log: list[tuple[str, ModelSet, bool]] = []  # (prompt_id, model set, switched) per executed prompt
        self._resident: list[ModelSet] = []  # most recently used last
        self.classes = dict(DEFAULT_CLASSES)
        self.submit_failures: deque[int] = deque()  # HTTP codes to answer the next POST /prompt calls with
        self.history_lag = 0.0  # seconds between execution_success and the history entry (the race)
        self.drop_ws_on_start = 0  # drop every socket when the next N prompts start executing
        self.send_events = True
        self.muted_events: set[str] = set()  # event types never sent (as if the socket joined mid-prompt)
        self.output_size = 0  # >0: SaveImage outputs are files of this many bytes (streamed)
        self.output_dir: Path | None = None  # set: type "output" files are written there and /view serves them from there
        self.die_after: int | None = None  # stop serving once this many output files were fetched (prompts done whole)
        self.views = 0  # output files served whole
        self.requests: list[tuple[str, str]] = []
        self.headers: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers) of every request
        # Scripted answers, by "METHOD /route" ("GET /history", "POST /prompt", "GET /view", "GET /ws", ...):
        # (status, body[, headers]) to send instead, or "stall" (never answer), "truncate" (promise more bytes than sent),
        # "cut" (for /view: stop half-way through the file), or a function of the path returning one of
        # these. Each is used once, in order.
        self.script: dict[str, deque[Any]] = {}
        self.ws_redirect: str | None = None  # answer /ws with 302 to this URL
        self.foreign_events = False  # also send every client events of prompts that are not theirs
        self.cached_nodes: list[str] = []  # reported in execution_cached, and sent no executed event (as older servers did)
        self.echo_headers = False  # error bodies echo the request's headers (as some proxies do)
        self.released = threading.Event()  # ends every "stall"
        self.submitted: list[dict[str, Any]] = []
        self.busy: list[tuple[float, float]] = []  # (start, end) of each prompt's execution
        self.finished_at: dict[str, float] = {}
        self.history: dict[str, Any] = {}
        self.files: dict[tuple[str, str, str], Any] = {}
        self.uploads: dict[str, bytes] = {}
        self._pending: deque[tuple[str, dict, str]] = deque()
        self._running: tuple[str, dict, str] | None = None
        self._interrupt: set[str] = set()
        self._cond = threading.Condition()
        self._ws: list[_WsClient] = []
        self._ws_lock = threading.Lock()  # a socket is registered before its handshake's answer goes out, as in ComfyUI
        self._conns: set[socket.socket] = set()
        self._counter = 0
        self._port = port
        self._stopped = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> FakeComfyUI:
        fake = self

        class Handler(_Handler):
            app = fake

        self.server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self.server.daemon_threads = True
        self._port = self.server.server_address[1]
        self._stopped.clear()
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        threading.Thread(target=self._worker, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def stop(self) -> None:
        """Die: stop listening, drop every connection, forget the queue."""
        self._stopped.set()
        self.released.set()
        with self._cond:
            self._cond.notify_all()
        for c in list(self._ws):
            c.drop()
        for conn in list(self._conns):  # a dead server's keep-alive connections die with it
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def restart(self) -> FakeComfyUI:
        """Come back on the same port with empty memory, as a restarted ComfyUI does."""
        self.stop()
        self.history.clear()
        self._pending.clear()
        self._resident.clear()
        self._running = None
        return self.start()

    def drop_sockets(self) -> None:
        for c in list(self._ws):
            c.drop()

    # -- models -----------------------------------------------------------------
    def known_classes(self) -> dict[str, dict[str, Any]]:
        """The node classes served: the plain ones plus a loader per model folder, its combo being the folder's files."""
        loaders = {cls: {**{name: [list(files)]}, **extra} for folder, files in (self.model_files or {}).items()
                   if folder in LOADERS for cls, name, extra in [LOADERS[folder]]}
        return {**self.classes, **loaders}

    def model_set(self, prompt: dict) -> ModelSet:
        """The (folder, file) pairs a prompt names: any string input equal to a file of a folder counts."""
        files = self.model_files or {}
        return frozenset((folder, v) for n in prompt.values() for v in (n.get("inputs") or {}).values()
                         if isinstance(v, str) for folder, names in files.items() if v in names)

    def _switch(self, pid: str, prompt: dict) -> float:
        """Make the prompt's models resident (LRU of ``slots`` sets); the seconds that costs, 0 when they already were."""
        wanted = self.model_set(prompt)
        with self._cond:
            switched = bool(wanted) and wanted not in self._resident
            if wanted:
                self._resident = [s for s in self._resident if s != wanted] + [wanted]
                del self._resident[: -max(self.slots, 1)]
            if switched:
                self.switches += 1
                self.loads.append(wanted)
            self.model_log.append((pid, wanted, switched))
        return self.switch_cost if switched else 0.0

    def _names_model(self, node: dict) -> bool:
        return bool(self.model_set({"n": node}))

    # -- queue ------------------------------------------------------------------
    def enqueue(self, prompt_id: str, prompt: dict, client_id: str) -> None:
        with self._cond:
            self._pending.append((prompt_id, prompt, client_id))
            self._cond.notify_all()

    def queue_state(self) -> dict[str, Any]:
        with self._cond:
            running = [[0, self._running[0], {}, {}, []]] if self._running else []
            pending = [[i + 1, pid, {}, {}, []] for i, (pid, _, _) in enumerate(self._pending)]
        return {"queue_running": running, "queue_pending": pending}

    def delete_pending(self, ids: list[str]) -> None:
        with self._cond:
            self._pending = deque(p for p in self._pending if p[0] not in ids)

    def interrupt(self, prompt_id: str | None) -> None:
        with self._cond:
            if self._running and (prompt_id is None or self._running[0] == prompt_id):
                self._interrupt.add(self._running[0])
                self._cond.notify_all()

    def _emit(self, client_id: str, kind: str, data: dict) -> None:
        if not self.send_events or kind in self.muted_events:
            return
        payload = json.dumps({"type": kind, "data": data}).encode()
        foreign = json.dumps({"type": kind, "data": {**data, "prompt_id": "other-" + str(data.get("prompt_id"))}}).encode()
        with self._ws_lock:
            clients = list(self._ws)
        for c in clients:
            if c.client_id == client_id and c.alive:
                if self.foreign_events:
                    c.send(foreign)
                c.send(payload)

    def validate(self, prompt: dict) -> tuple[dict, dict]:
        """(node_errors, prompt keeping only valid outputs), as ComfyUI does: an EmptyImage width < 1 is invalid."""
        bad = {nid: {"class_type": n.get("class_type"), "dependent_outputs": [], "errors": [
            {"type": "value_smaller_than_min", "message": f"Value {n['inputs']['width']} smaller than min of 1",
             "details": "width", "extra_info": {"input_name": "width"}}]}
            for nid, n in prompt.items()
            if n.get("class_type") == "EmptyImage" and isinstance(n.get("inputs", {}).get("width"), int)
            and n["inputs"]["width"] < 1}

        def upstream(nid: str, seen: set[str]) -> set[str]:
            for v in (prompt.get(nid, {}).get("inputs") or {}).values():
                if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and v[0] not in seen:
                    seen.add(v[0])
                    upstream(v[0], seen)
            return seen

        kept = dict(prompt)
        for nid, n in prompt.items():
            if n.get("class_type") in OUTPUT_CLASSES and upstream(nid, set()) & set(bad):
                del kept[nid]
                for b in upstream(nid, set()) & set(bad):
                    bad[b]["dependent_outputs"].append(nid)
        return bad, kept

    def _interrupted(self, pid: str, cid: str, nid: str, cls: Any, messages: list) -> bool:
        """Whether the prompt was interrupted; if so its ``execution_interrupted`` is noted and sent, as ComfyUI does."""
        if pid not in self._interrupt:
            return False
        data = {"prompt_id": pid, "node_id": nid, "node_type": cls, "executed": []}
        messages.append(["execution_interrupted", data])
        self._emit(cid, "execution_interrupted", data)
        return True

    def _worker(self) -> None:
        while not self._stopped.is_set():
            with self._cond:
                while not self._pending and not self._stopped.is_set():
                    self._cond.wait(0.2)
                if self._stopped.is_set():
                    return
                pid, prompt, cid = self._running = self._pending.popleft()
            self._execute(pid, prompt, cid)
            with self._cond:
                self._running = None

    def viewed(self) -> None:
        """One output file served whole: the server dies here if it is told to (``die_after``)."""
        with self._cond:
            self.views += 1
            dying = self.die_after is not None and self.views == self.die_after
        if dying:
            threading.Thread(target=self.stop, daemon=True).start()

    def _execute(self, pid: str, prompt: dict, cid: str) -> None:
        start = time.perf_counter()
        ts = int(time.time() * 1000)
        self._emit(cid, "execution_start", {"prompt_id": pid, "timestamp": ts})
        if self.drop_ws_on_start > 0:
            self.drop_ws_on_start -= 1
            self.drop_sockets()
        self._emit(cid, "execution_cached", {"nodes": list(self.cached_nodes), "prompt_id": pid, "timestamp": ts})
        outputs: dict[str, Any] = {}
        messages: list[Any] = [["execution_start", {"prompt_id": pid, "timestamp": ts}]]
        status = "success"
        seconds = self.work_seconds + sum(
            float(n.get("inputs", {}).get("seconds", 0)) for n in prompt.values() if n.get("class_type") == "Slow"
        )
        loading = self._switch(pid, prompt)  # paid by the first node naming a model (a loader reads its file), before any work
        for nid, node in prompt.items():
            cls = node.get("class_type")
            self._emit(cid, "executing", {"node": nid, "display_node": nid, "prompt_id": pid})
            works = cls == "Slow" or (seconds and cls in ("SaveImage", "PreviewAny"))
            if loading and (works or self._names_model(node)):
                self._pause(pid, loading)
                loading = 0.0
                if self._interrupted(pid, cid, nid, cls, messages):
                    status = "error"
                    break
            if cls == "Raise":
                err = {"prompt_id": pid, "node_id": nid, "node_type": cls, "exception_message": node["inputs"].get("message", ""),
                       "exception_type": "ValueError", "traceback": ["Traceback...\n", "ValueError: boom\n"], "executed": []}
                messages.append(["execution_error", err])
                self._emit(cid, "execution_error", err)
                status = "error"
                break
            if works:
                steps = 4
                for i in range(steps):
                    if self._pause(pid, seconds / steps):
                        break
                    self._emit(cid, "progress", {"value": i + 1, "max": steps, "node": nid, "prompt_id": pid})
                seconds = 0
                if self._interrupted(pid, cid, nid, cls, messages):
                    status = "error"
                    break
            out = self._outputs(node)
            if out:
                outputs[nid] = out
                if nid not in self.cached_nodes:
                    self._emit(cid, "executed", {"node": nid, "output": out, "prompt_id": pid})
        end = time.perf_counter()
        self.busy.append((start, end))
        if self._stopped.is_set():
            return
        entry = {"prompt": [0, pid, prompt, {}, []], "outputs": outputs, "meta": {},
                 "status": {"status_str": status, "completed": status == "success", "messages": messages}}
        if status == "success":
            done = int(time.time() * 1000)  # as ComfyUI stamps it: when the prompt ended
            messages.append(["execution_success", {"prompt_id": pid, "timestamp": done}])
            self._emit(cid, "execution_success", {"prompt_id": pid, "timestamp": done})
        if self.history_lag:
            time.sleep(self.history_lag)
        self.history[pid] = entry
        self.finished_at[pid] = time.perf_counter()
        self._emit(cid, "executing", {"node": None, "prompt_id": pid})

    def _pause(self, pid: str, seconds: float) -> bool:
        """Spend ``seconds`` of the prompt's execution (the fake's only clock); True when interrupted or stopped meanwhile."""
        with self._cond:
            self._cond.wait_for(lambda: pid in self._interrupt or self._stopped.is_set(), seconds)
            return pid in self._interrupt or self._stopped.is_set()

    def _outputs(self, node: dict) -> dict[str, Any]:
        cls = node.get("class_type")
        if cls in ("SaveImage", "PreviewImage"):
            self._counter += 1
            typ = "output" if cls == "SaveImage" else "temp"
            prefix = str(node.get("inputs", {}).get("filename_prefix", "ComfyUI"))
            sub, _, base = prefix.rpartition("/")
            name = f"{base}_{self._counter:05}_.png"
            self.files[(name, sub, typ)] = self.output_size or PNG_1PX
            if self.output_dir is not None and typ == "output":  # written before its executed event, as ComfyUI does
                (self.output_dir / sub).mkdir(parents=True, exist_ok=True)
                (self.output_dir / sub / name).write_bytes(PNG_1PX)
            return {"images": [{"filename": name, "subfolder": sub, "type": typ}]}
        if cls == "PreviewAny":
            return {"text": [str(node.get("inputs", {}).get("source", ""))]}
        if cls == "SaveMesh":
            self._counter += 1
            name = f"mesh_{self._counter:05}_.glb"
            self.files[(name, "", "output")] = b"glTF-fake"
            return {"meshes": [{"filename": name, "subfolder": "", "type": "output"}]}
        return {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    app: FakeComfyUI

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        # Like aiohttp: no Nagle delay between the header and body writes of one answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.app._conns.add(self.connection)

    def finish(self) -> None:
        self.app._conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def handle_one_request(self) -> None:
        if self.app._stopped.is_set():
            self.close_connection = True
            return
        super().handle_one_request()

    def _send(self, code: int, body: Any = None, ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _path(self) -> str:
        path = urlparse(self.path).path
        return path[4:] if path.startswith("/api/") else path

    def _scripted(self, method: str, path: str) -> bool:
        """Play the next scripted answer for this route, if any; True when it was played."""
        app = self.app
        app.headers.append((method, path, dict(self.headers.items())))
        route = f"{method} /{path.strip('/').split('/')[0]}"
        answers = app.script.get(route)
        if not answers:
            return False
        answer = answers.popleft()
        if method == "POST":
            self._body()
        if callable(answer):  # computed from the request path, e.g. a history entry for the asked prompt id
            answer = answer(path)
        if answer == "stall":
            app.released.wait(60)
            self.close_connection = True
        elif answer == "truncate":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"prompt_id": "x", "outp')
            self.wfile.flush()
            self.close_connection = True
        elif answer == "cut":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(1 << 20))
            self.end_headers()
            self.wfile.write(b"\x89PNG" + b"0" * 4096)
            self.wfile.flush()
            self.close_connection = True
        else:
            status, body, *extra = answer
            self._send(status, body if isinstance(body, bytes) else json.dumps(body).encode(),
                       headers=extra[0] if extra else None)
        return True

    def do_GET(self) -> None:  # noqa: N802
        app, path = self.app, self._path()
        app.requests.append(("GET", path))
        if self._scripted("GET", path):
            return
        q = parse_qs(urlparse(self.path).query)
        if path == "/ws":
            if app.ws_redirect:
                self.send_response(302)
                self.send_header("Location", app.ws_redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            return self._websocket(q.get("clientId", [""])[0])
        if path == "/system_stats":
            return self._send(200, {"system": {"comfyui_version": "fake"}, "devices": []})
        if path == "/object_info":
            return self._send(200, {c: {"input": {"required": spec}, "output_node": c in ("SaveImage", "PreviewImage")}
                                    for c, spec in app.known_classes().items()})
        if path == "/models" and app.model_files is not None:
            return self._send(200, list(app.model_files))
        if path.startswith("/models/") and path.split("/", 2)[2] in (app.model_files or {}):
            return self._send(200, list((app.model_files or {})[path.split("/", 2)[2]]))
        if path.startswith("/history/"):
            pid = path.split("/", 2)[2]
            entry = app.history.get(pid)
            return self._send(200, {pid: entry} if entry else {})
        if path == "/queue":
            return self._send(200, app.queue_state())
        if path == "/view":
            key = (q.get("filename", [""])[0], q.get("subfolder", [""])[0], q.get("type", ["output"])[0])
            data = app.files.get(key)
            if app.output_dir is not None and key[2] == "output":
                on_disk = app.output_dir / key[1] / key[0]
                data = on_disk.read_bytes() if ".." not in key[0] + key[1] and on_disk.is_file() else None
            if data is None:
                return self._send(404, b"not found", "text/plain")
            if isinstance(data, int):
                self._stream_bytes(data)
            else:
                self._send(200, data, "image/png")
            app.viewed()
            return None
        return self._send(404, b"404", "text/plain")

    def _stream_bytes(self, size: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        block = bytes(range(256)) * 4096
        left = size
        while left > 0:
            n = min(left, len(block))
            self.wfile.write(block[:n])
            left -= n

    def do_POST(self) -> None:  # noqa: N802
        app, path = self.app, self._path()
        app.requests.append(("POST", path))
        if self._scripted("POST", path):
            return
        if path == "/upload/image":
            body = self._body()
            name = _multipart_filename(body, self.headers.get("Content-Type", "")) or "upload.png"
            app.uploads[name] = body
            return self._send(200, {"name": name, "subfolder": "", "type": "input"})
        raw = self._body()
        if len(raw) < int(self.headers.get("Content-Length") or 0):  # the client died mid-request
            self.close_connection = True
            return
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return self._send(500, b"bad json", "text/plain")
        if path == "/prompt" and not isinstance(data.get("prompt"), dict):
            return self._send(400, {"error": {"type": "no_prompt", "message": "No prompt provided", "details": "",
                                              "extra_info": {}}, "node_errors": {}})
        if path == "/prompt":
            if app.submit_failures:
                echo = "".join(f"{k}: {v}\n" for k, v in self.headers.items()) if app.echo_headers else ""
                return self._send(app.submit_failures.popleft(), ("server error\n" + echo).encode(), "text/plain")
            prompt = data.get("prompt") or {}
            known = app.known_classes()
            missing = [n.get("class_type") for n in prompt.values() if n.get("class_type") not in known]
            if missing:
                return self._send(400, {"error": {"type": "invalid_prompt", "message": f"Cannot execute because node {missing[0]} "
                                                  "does not exist.", "details": "", "extra_info": {}}, "node_errors": {}})
            node_errors, prompt = app.validate(prompt)
            if node_errors and not any(n.get("class_type") in OUTPUT_CLASSES for n in prompt.values()):
                return self._send(400, {"error": {"type": "prompt_outputs_failed_validation", "message":
                                                  "Prompt outputs failed validation", "details": "", "extra_info": {}},
                                        "node_errors": node_errors})
            pid = data.get("prompt_id") or str(uuid.uuid4())
            app.submitted.append(data)
            app.enqueue(pid, prompt, data.get("client_id", ""))
            return self._send(200, {"prompt_id": pid, "number": len(app.submitted), "node_errors": node_errors})
        if path == "/queue":
            app.delete_pending(data.get("delete") or [])
            return self._send(200, {})
        if path == "/interrupt":
            app.interrupt(data.get("prompt_id"))
            return self._send(200, {})
        if path == "/history":
            for pid in data.get("delete") or []:
                app.history.pop(pid, None)
            return self._send(200, {})
        return self._send(404, b"404", "text/plain")

    def _websocket(self, client_id: str) -> None:
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        client = _WsClient(self.connection, client_id)
        with self.app._ws_lock:  # no event of a prompt this client submits next can go out before it is registered
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            self.wfile.flush()
            status = {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id}}
            client.send(json.dumps(status).encode())
            client.send(struct.pack(">II", 1, 2) + PNG_1PX, opcode=2)  # a binary preview frame, to be ignored
            self.app._ws.append(client)
        try:
            while client.alive:
                head = self.rfile.read(2)
                if len(head) < 2:
                    break
                opcode, length = head[0] & 0x0F, head[1] & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", self.rfile.read(2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", self.rfile.read(8))
                mask = self.rfile.read(4) if head[1] & 0x80 else b""
                payload = self.rfile.read(length)
                if mask:
                    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                if opcode == 8:
                    client.send(b"", opcode=8)
                    break
                if opcode == 9:
                    client.send(payload, opcode=10)
        except OSError:
            pass
        finally:
            client.alive = False
            if client in self.app._ws:
                self.app._ws.remove(client)
            self.close_connection = True


def _multipart_filename(body: bytes, ctype: str) -> str | None:
    marker = b'filename="'
    i = body.find(marker)
    if i < 0:
        return None
    j = body.find(b'"', i + len(marker))
    return body[i + len(marker) : j].decode("utf-8", "replace")
