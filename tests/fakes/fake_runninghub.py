"""A protocol-faithful fake RunningHub (v1 OpenAPI) on loopback, since no local RunningHub exists.

The envelope (HTTP 200 with ``code``/``msg``/``data``), the task lifecycle
QUEUED -> RUNNING -> SUCCESS/FAILED, 804/813/805 on outputs, 421 over the
key's concurrency, 809 over the upload limit, taskIds larger than 2^53 as
strings, and switches to fail, delay or drop answers.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.fake_comfyui import PNG_1PX

GOOD_KEY = "rh-test-key-0123456789"


class FakeRunningHub:
    def __init__(self, *, queue_seconds: float = 0.05, run_seconds: float = 0.1, concurrency: int = 1) -> None:
        self.queue_seconds, self.run_seconds, self.concurrency = queue_seconds, run_seconds, concurrency
        self.upload_limit = 30 * 1024 * 1024
        self.workflows: dict[str, dict[str, Any]] = {}  # workflowId -> API JSON (for getJsonApiFormat)
        self.webapps: set[str] = {"1877265245566922753"}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.bodies: list[bytes] = []
        self.http_failures: deque[tuple[str, int]] = deque()  # (path, HTTP status) for the next matching calls
        self.code_failures: deque[tuple[str, int]] = deque()  # (path, envelope code) for the next matching calls
        self.drop_create_answer = 0  # create the task, then close the connection without answering
        self.delay: dict[str, float] = {}  # path -> seconds before answering
        self.empty_outputs_first = 0  # answer code 0 + null this many times before the real outputs
        self.file_failures: deque[int] = deque()  # HTTP codes for the next GET /files/... calls
        self.outputs: list[Any] | None = None  # the outputs of every successful task (None: one image of node 9)
        self.script: dict[str, deque[bytes]] = {}  # path -> raw bodies (HTTP 200) to answer instead, once each
        self.headers: list[tuple[str, dict[str, str]]] = []  # (path, headers) of every request
        self.released = threading.Event()  # ends every delay (set by stop)
        self._next = 1900000000000000001  # > 2^53
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> FakeRunningHub:
        fake = self

        class Handler(_Handler):
            app = fake

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.released.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # -- task lifecycle (computed from the clock) ---------------------------------------------------
    def state(self, task: dict[str, Any]) -> str:
        if task["cancelled"]:
            return "FAILED"
        age = time.monotonic() - task["created"]
        if age < self.queue_seconds:
            return "QUEUED"
        if age < self.queue_seconds + self.run_seconds:
            return "RUNNING"
        return "FAILED" if task["fail"] else "SUCCESS"

    def running_count(self) -> int:
        return sum(1 for t in self.tasks.values() if self.state(t) in ("QUEUED", "RUNNING"))

    def create(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        with self._lock:
            task_id = str(self._next)
            self._next += 7
            values = [str(n.get("fieldValue")) for n in body.get("nodeInfoList") or []]
            self.tasks[task_id] = {"id": task_id, "created": time.monotonic(), "cancelled": False, "body": body,
                                   "kind": kind, "fail": "FAIL" in values}
        return {"taskId": task_id, "taskStatus": "QUEUED", "clientId": "c", "netWssUrl": "wss://x", "promptTips": "{}"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    app: FakeRunningHub

    def log_message(self, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, code: int, payload: Any, ctype: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _env(self, code: int = 0, data: Any = None, msg: str = "success") -> None:
        self._send(200, {"code": code, "msg": msg, "data": data})

    def do_GET(self) -> None:  # noqa: N802 - output files
        self.app.headers.append((self.path, dict(self.headers.items())))
        if self.path.startswith("/files/"):
            if self.app.file_failures:
                return self._send(self.app.file_failures.popleft(), b"unavailable", "text/plain")
            return self._send(200, PNG_1PX, "image/png")
        self._send(404, b"nope", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        app, path = self.app, self.path
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        app.bodies.append(raw)
        if "multipart/form-data" in self.headers.get("Content-Type", ""):
            body = _form(raw, self.headers["Content-Type"])
        else:
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self._env(301, None, "params invalid")
        app.calls.append((path, body))
        app.headers.append((path, dict(self.headers.items())))
        if path in app.delay:
            app.released.wait(app.delay[path])
        if app.script.get(path):
            return self._send(200, app.script[path].popleft())
        for queue_, send in ((app.http_failures, lambda c: self._send(c, b"err", "text/plain")), (app.code_failures, None)):
            if queue_ and queue_[0][0] == path:
                _, code = queue_.popleft()
                return send(code) if send else self._env(code, None, "forced")
        key = body.get("apikey") if path == "/uc/openapi/accountStatus" else body.get("apiKey")
        if key != GOOD_KEY:
            return self._env(802, None, "APIKEY_UNAUTHORIZED")
        if path in ("/task/openapi/create", "/task/openapi/ai-app/run"):
            if path.endswith("/create") and body.get("workflowId") not in app.workflows:
                return self._env(380, None, "WORKFLOW_NOT_EXISTS")
            if path.endswith("/run") and body.get("webappId") not in app.webapps:
                return self._env(901, None, "WEBAPP_NOT_EXISTS")
            if app.running_count() >= app.concurrency:
                return self._env(421, None, "TASK_QUEUE_MAXED")
            data = app.create(body, "app" if path.endswith("/run") else "workflow")
            if app.drop_create_answer > 0:
                app.drop_create_answer -= 1
                self.close_connection = True
                self.connection.close()
                return
            return self._env(0, data)
        if path == "/task/openapi/status":
            task = app.tasks.get(str(body.get("taskId")))
            return self._env(0, app.state(task)) if task else self._env(807, None, "TASK_NOT_FOUND")
        if path == "/task/openapi/outputs":
            task = app.tasks.get(str(body.get("taskId")))
            if not task:
                return self._env(807, None, "TASK_NOT_FOUND")
            st = app.state(task)
            if st == "QUEUED":
                return self._env(813, None, "TASK_QUEUED")
            if st == "RUNNING":
                return self._env(804, None, "TASK_RUNNING")
            if st == "FAILED":
                reason = {"node_id": "9", "node_name": "KSampler", "exception_type": "torch.OutOfMemoryError",
                          "exception_message": "CUDA out of memory", "traceback": json.dumps(["Traceback\n", "OOM\n"])}
                if task["cancelled"]:
                    reason = {"node_id": None, "node_name": None, "exception_type": "Cancelled",
                              "exception_message": "cancelled by user", "traceback": "[]"}
                return self._env(805, {"failedReason": reason}, "APIKEY_TASK_IS_FAILED")
            if app.empty_outputs_first > 0:
                app.empty_outputs_first -= 1
                return self._env(0, None)
            if app.outputs is not None:
                return self._env(0, app.outputs)
            return self._env(0, [{"fileUrl": f"{app.url}/files/{task['id']}/ComfyUI_00001_.png", "fileType": "png",
                                  "taskCostTime": "12", "nodeId": "9", "consumeCoins": "3"}])
        if path == "/task/openapi/cancel":
            task = app.tasks.get(str(body.get("taskId")))
            if task:
                task["cancelled"] = True
            return self._env(0, None)
        if path == "/task/openapi/upload":
            size = len(body.get("_file", b""))
            if size > app.upload_limit:
                return self._env(809, None, "FILE_TOO_LARGE")
            return self._env(0, {"fileName": f"api/{body.get('_filename', 'x')}", "fileType": body.get("fileType")})
        if path == "/uc/openapi/accountStatus":
            return self._env(0, {"remainCoins": "100", "currentTaskCounts": str(app.running_count()), "apiType": "NORMAL"})
        if path == "/api/openapi/getJsonApiFormat":
            wf = app.workflows.get(str(body.get("workflowId")))
            return self._env(0, {"prompt": json.dumps(wf)}) if wf else self._env(380, None, "WORKFLOW_NOT_EXISTS")
        return self._send(404, b"nope", "text/plain")


def _form(raw: bytes, ctype: str) -> dict[str, Any]:
    boundary = ctype.split("boundary=", 1)[1].encode()
    out: dict[str, Any] = {}
    for part in raw.split(b"--" + boundary):
        if b"\r\n\r\n" not in part:
            continue
        head, _, value = part.partition(b"\r\n\r\n")
        value = value[:-2] if value.endswith(b"\r\n") else value
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        if b'filename="' in head:
            out["_filename"] = head.split(b'filename="', 1)[1].split(b'"', 1)[0].decode()
            out["_file"] = value
        else:
            out[name] = value.decode()
    return out
