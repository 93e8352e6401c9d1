"""A scripted in-memory executor: the runner's tests run without any server, fast and deterministic."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from comfykit_batch.errors import BackendError
from comfykit_batch.executors.base import Executor, ProgressCallback
from comfykit_batch.files import Saved, save_stream
from comfykit_batch.result import ExecuteResult, Failure, OutputFile
from comfykit_batch.workflow import Workflow

#: outcome names a script may return, and the failure each stands for
FAILURES: dict[str, Failure] = {
    "connection": Failure("connection", "connection refused", transient=True),
    "server": Failure("server", "prompt vanished (restarted?)", transient=True),
    "timeout": Failure("timeout", "timeout", transient=True),
    "auth": Failure("auth", "HTTP 401 (authentication required)"),
    "execution": Failure("execution", "node 1 (Boom) raised ValueError: no", node_id="1", node_type="Boom",
                         exception_type="ValueError"),
}

Script = Callable[[Mapping[str, Any], int], str]


class ScriptedExecutor(Executor):
    """Each ``execute`` asks ``script(params, n)`` (n: how often these params ran here before) for "ok" or a failure name."""

    def __init__(self, name: str, script: Script, *, concurrency: int = 2, reachable: bool = True,
                 on_download: Callable[[], None] | None = None) -> None:
        self.name = name
        self.on_download = on_download
        self.script = script
        self.concurrency = concurrency
        self.reachable = reachable
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def check(self) -> None:
        if not self.reachable:
            raise BackendError(f"{self.name}: connection refused; is ComfyUI running there?")

    def execute(self, workflow: Workflow, params: Mapping[str, Any] | None = None, *, timeout: float | None = None,
                on_progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> ExecuteResult:
        params = dict(params or {})
        with self._lock:
            n = sum(1 for c in self.calls if c == params)
            self.calls.append(params)
        outcome = self.script(params, n)
        if outcome != "ok":
            return ExecuteResult.failed(FAILURES[outcome], backend=self.name, params=params)
        result = ExecuteResult(status="completed", prompt_id=f"p{len(self.calls)}", backend=self.name, params=params)
        result.add_file(OutputFile(url=f"mem://{self.name}/{len(self.calls)}.png", filename="out.png", kind="image",
                                   var="img", node_id="9"))
        return result

    def download(self, file: OutputFile, dest: Path) -> Saved:
        if self.on_download is not None:
            self.on_download()
        return save_stream([file.url.encode()], dest)
