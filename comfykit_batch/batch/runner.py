"""The launcher: runs jobs on a thread pool, spread over backends, through ``Executor`` only.

The main thread dispatches: the next job goes to the eligible backend with the
fewest jobs in flight, each backend capped at its own concurrency (default 2,
so the next prompt already waits in the server's queue when one finishes and
the GPU never idles). Workers run one job each (execute, then download).
Transient failures go back to the queue with backoff, maybe to another
backend; a backend that keeps failing is paused and probed later. Nothing here
knows HTTP, WebSocket or RunningHub.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import tenacity

from ..errors import ComfyKitError
from ..executors.base import Executor
from ..executors.comfyui_client import TransportError
from ..result import ExecuteResult, Failure
from ..workflow import Workflow
from .store import ResultStore
from .sweep import Job

logger = logging.getLogger("comfykit_batch.runner")

#: failure kinds that say something about the backend rather than the job
BACKEND_FAULTS = frozenset({"connection", "server"})
PAUSE_AFTER = 3
PAUSE_FIRST, PAUSE_MAX = 5.0, 60.0
RETRY_BASE, RETRY_MAX = 0.5, 30.0


def retry_delay(attempt: int) -> float:
    """Backoff before retry ``attempt + 1`` of a job: exponential with jitter (tenacity's strategy)."""
    state = tenacity.RetryCallState(None, None, (), {})
    state.attempt_number = attempt + 1
    return float(_RETRY_WAIT(state))


_RETRY_WAIT = tenacity.wait_exponential(multiplier=RETRY_BASE, max=RETRY_MAX) + tenacity.wait_random(0, RETRY_BASE)


@dataclass
class Backend:
    """An executor plus the runner's bookkeeping for it."""

    name: str
    executor: Executor
    concurrency: int
    workflows: set[str] | None = None  # None: every workflow
    in_flight: int = 0
    dispatched: int = 0
    completed: int = 0
    failed: int = 0
    consecutive_faults: int = 0
    paused_until: float = 0.0
    pause_len: float = PAUSE_FIRST
    idle_since: float | None = None
    idle_total: float = 0.0

    def accepts(self, job: Job, now: float) -> bool:
        if self.workflows is not None and job.workflow not in self.workflows:
            return False
        if now < self.paused_until:
            return False
        if self.paused_until and self.in_flight:  # after a pause: one probe job at a time
            return False
        return self.in_flight < self.concurrency

    def started(self) -> None:
        now = time.monotonic()
        if self.in_flight == 0 and self.idle_since is not None:
            self.idle_total += now - self.idle_since
            self.idle_since = None
        self.in_flight += 1
        self.dispatched += 1

    def ended(self, fault: bool) -> None:
        now = time.monotonic()
        self.in_flight -= 1
        if self.in_flight == 0:
            self.idle_since = now
        if not fault:
            self.consecutive_faults, self.paused_until, self.pause_len = 0, 0.0, PAUSE_FIRST
            return
        self.consecutive_faults += 1
        if self.consecutive_faults >= PAUSE_AFTER:
            self.paused_until = now + self.pause_len
            logger.warning("backend %s paused for %.0fs after %d failures in a row", self.name, self.pause_len,
                           self.consecutive_faults)
            self.pause_len = min(self.pause_len * 2, PAUSE_MAX)


@dataclass
class Progress:
    """A snapshot for the progress display."""

    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    retried: int = 0
    started: float = field(default_factory=time.monotonic)
    in_flight: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return self.done + self.failed

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.finished / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        r = self.rate()
        left = self.total - self.finished - self.skipped
        return left / r if r > 0 else None


@dataclass
class Summary:
    total: int
    done: int
    failed: int
    skipped: int
    interrupted: bool
    wall: float
    failures: dict[str, int]
    backends: dict[str, dict[str, Any]]
    index: str = ""

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else (1 if self.failed else 0)


@dataclass
class _Outcome:
    job: Job
    backend: Backend
    attempt: int
    result: ExecuteResult
    record: dict[str, Any]


class BatchRunner:
    """Runs jobs over backends and records each outcome in the store."""

    def __init__(
        self,
        backends: list[Backend],
        workflows: dict[str, Workflow],
        store: ResultStore,
        *,
        timeout: float = 600.0,
        retries: int = 3,
        save_previews: bool = False,
        retry_failed: bool = False,
        verify: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
        progress_every: float = 0.5,
    ) -> None:
        if not backends:
            raise ValueError("no backend to run on")
        self.backends = backends
        self.workflows = workflows
        self.store = store
        self.timeout = timeout
        self.retries = retries
        self.save_previews = save_previews
        self.retry_failed = retry_failed
        self.verify = verify
        self.on_progress = on_progress
        self.progress_every = progress_every
        self.cancel = threading.Event()
        self.progress = Progress(total=0)
        self._done: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()

    def stop(self) -> None:
        """Stop dispatching; in-flight jobs interrupt their remote prompts and return."""
        self.cancel.set()

    # -- the dispatch loop ----------------------------------------------------------------
    def run(self, jobs: Iterable[Job], total: int) -> Summary:
        progress = self.progress = Progress(total=total)
        start = time.monotonic()
        for b in self.backends:
            b.idle_since = start
        workers = sum(b.concurrency for b in self.backends)
        retry_heap: list[tuple[float, int, Job, int]] = []
        seq = itertools.count()
        source = iter(jobs)
        held: tuple[Job, int] | None = None
        exhausted = False
        in_flight = 0
        failures: dict[str, int] = {}
        last_report = 0.0
        with ThreadPoolExecutor(workers, thread_name_prefix="comfykit-job") as pool:
            while True:
                now = time.monotonic()
                # 1. take in what finished
                while True:
                    try:
                        out = self._done.get_nowait()
                    except queue.Empty:
                        break
                    in_flight -= 1
                    retry = self._settle(out, progress, failures)
                    if retry is not None:
                        heapq.heappush(retry_heap, (now + retry, next(seq), out.job, out.attempt + 1))
                if self.cancel.is_set():
                    if in_flight == 0:
                        break
                    self._wait_done(0.1)
                    continue
                # 2. pick the next job: a retry that is due, else a new one
                if held is None and retry_heap and retry_heap[0][0] <= now:
                    _, _, job, attempt = heapq.heappop(retry_heap)
                    held = (job, attempt)
                while held is None and not exhausted:
                    job = next(source, None)
                    if job is None:
                        exhausted = True
                    elif self.store.settled(job.id, retry_failed=self.retry_failed, verify=self.verify):
                        progress.skipped += 1
                    else:
                        held = (job, 0)
                if held is None:
                    if exhausted and not retry_heap and in_flight == 0:
                        break
                    wait = (retry_heap[0][0] - now) if retry_heap else 0.5
                    last_report = self._maybe_report(progress, last_report)
                    self._wait_done(max(0.0, min(wait, 0.5)))
                    continue
                # 3. give it to the least-loaded backend that takes it
                backend = self._choose(held[0], now)
                if backend is None:
                    if not any(self._eligible(b, held[0]) for b in self.backends):
                        job, attempt = held
                        held = None
                        self._settle_unrunnable(job, progress, failures)
                        continue
                    last_report = self._maybe_report(progress, last_report)
                    self._wait_done(0.05 if in_flight else 0.2)
                    continue
                job, attempt = held
                held = None
                backend.started()
                in_flight += 1
                pool.submit(self._work, backend, job, attempt)
                last_report = self._maybe_report(progress, last_report)
        end = time.monotonic()
        for b in self.backends:
            if b.idle_since is not None:
                b.idle_total += end - b.idle_since
                b.idle_since = None
        index = self.store.flush()
        self._report(progress)
        wall = end - start
        return Summary(
            total=total, done=progress.done, failed=progress.failed, skipped=progress.skipped,
            interrupted=self.cancel.is_set(), wall=wall, failures=failures, index=str(index),
            backends={
                b.name: {"completed": b.completed, "failed": b.failed,
                         "idle_fraction": round(b.idle_total / wall, 4) if wall > 0 else 0.0}
                for b in self.backends
            },
        )

    def _eligible(self, b: Backend, job: Job) -> bool:
        return b.workflows is None or job.workflow in b.workflows

    def _choose(self, job: Job, now: float) -> Backend | None:
        ready = [b for b in self.backends if b.accepts(job, now)]
        if not ready:
            return None
        return min(ready, key=lambda b: (b.in_flight / b.concurrency, b.in_flight, b.dispatched))

    def _wait_done(self, seconds: float) -> None:
        """Sleep until a job finishes (or ``seconds`` pass), without losing its outcome."""
        try:
            out = self._done.get(timeout=seconds)
        except queue.Empty:
            return
        self._done.put(out)

    def _maybe_report(self, progress: Progress, last: float) -> float:
        now = time.monotonic()
        if now - last >= self.progress_every:
            self._report(progress)
            return now
        return last

    def _report(self, progress: Progress) -> None:
        if self.on_progress is None:
            return
        progress.in_flight = {b.name: b.in_flight for b in self.backends}
        try:
            self.on_progress(progress)
        except Exception:  # noqa: BLE001 - a display must not stop a batch
            logger.exception("progress display failed")

    # -- outcomes -----------------------------------------------------------------------
    def _settle(self, out: _Outcome, progress: Progress, failures: dict[str, int]) -> float | None:
        """Record an outcome; returns a retry delay when the job should run again."""
        res, b = out.result, out.backend
        fault = bool(res.failure and res.failure.kind in BACKEND_FAULTS)
        b.ended(fault)
        if res.ok:
            b.completed += 1
            progress.done += 1
            self.store.record(out.record)
            return None
        f = res.failure or Failure("unknown", res.msg or "failed")
        if f.kind == "cancelled" and self.cancel.is_set():
            return None  # not an outcome: the job runs again next time
        if f.transient and out.attempt < self.retries and not self.cancel.is_set():
            progress.retried += 1
            delay = retry_delay(out.attempt)
            logger.info("job %s on %s failed (%s), retry %d in %.1fs", out.job.id, b.name, f.message, out.attempt + 1, delay)
            return delay
        b.failed += 1
        progress.failed += 1
        reason = f.reason
        failures[reason] = failures.get(reason, 0) + 1
        self.store.record(out.record)
        return None

    def _settle_unrunnable(self, job: Job, progress: Progress, failures: dict[str, int]) -> None:
        reason = f"config: no backend may run workflow {job.workflow!r}"
        failures[reason] = failures.get(reason, 0) + 1
        progress.failed += 1
        self.store.record(_record(job, None, 0, ExecuteResult.failed(Failure("config", reason)), [], 0.0, 0.0))

    # -- one job, in a worker thread -----------------------------------------------------------
    def _work(self, backend: Backend, job: Job, attempt: int) -> None:
        started = time.time()
        files: list[dict[str, Any]] = []
        try:
            result = backend.executor.execute(self.workflows[job.workflow], job.params, timeout=self.timeout, cancel=self.cancel)
            if result.ok:
                files = self._download(backend, job, result)
        except ComfyKitError as exc:  # parameters that do not fit: the job's fault, never retried
            result = ExecuteResult.failed(Failure("invalid", str(exc)))
        except TransportError as exc:
            result = ExecuteResult.failed(Failure("connection", f"download failed: {exc}", transient=True))
        except Exception as exc:  # noqa: BLE001 - a bug in one job must not stop the batch
            logger.exception("job %s crashed", job.id)
            result = ExecuteResult.failed(Failure("client", f"{type(exc).__name__}: {exc}"))
        record = _record(job, backend.name, attempt, result, files, started, time.time())
        self._done.put(_Outcome(job, backend, attempt, result, record))

    def _download(self, backend: Backend, job: Job, result: ExecuteResult) -> list[dict[str, Any]]:
        files: list[dict[str, Any]] = []
        counts: dict[str, int] = {}
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransportError), stop=tenacity.stop_after_attempt(3),
            wait=tenacity.wait_exponential(multiplier=0.2, max=2), reraise=True,
        )
        for f in result.files:
            if f.is_temp and not self.save_previews:
                continue
            n = counts.get(f.var, 0)
            counts[f.var] = n + 1
            dest = self.store.path_for(job.workflow, job.id, f.var, n, f.filename)
            saved = retrying(backend.executor.download, f, dest)
            files.append({"var": f.var, "kind": f.kind, "path": self.store.relative(saved.path), "size": saved.size,
                          "sha256": saved.sha256, "source_name": f.filename, "node": f.node_id, "type": f.type})
        return files


def _record(job: Job, backend: str | None, attempt: int, res: ExecuteResult, files: list[dict[str, Any]],
            started: float, finished: float) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": job.id, "workflow": job.workflow, "params": dict(job.params), "repeat": job.repeat,
        "seeds": res.seeds, "backend": backend, "status": res.status, "attempts": attempt + 1,
        "prompt_id": res.prompt_id, "started": round(started, 3), "finished": round(finished, 3),
        "duration": round(res.duration, 4) if res.duration is not None else None, "files": files,
    }
    if res.texts_by_var:
        rec["texts"] = res.texts_by_var
    if res.cost:
        rec["cost"] = res.cost
    if res.failure:
        rec["error"] = res.failure.to_dict()
        rec["error"].pop("traceback", None)
        if res.failure.traceback:
            rec["error"]["traceback_tail"] = res.failure.traceback[-2000:]
    return rec
