"""The launcher: runs jobs on a thread pool, spread over backends, through ``Executor`` only.

The main thread dispatches: in sweep order, the next job goes to the eligible
backend with the fewest jobs in flight; with a scheduler (``schedule.py``: jobs
grouped by the models they load), each free backend, least loaded first, takes
the job the scheduler gives it. Each backend is capped at its own concurrency
(default 2, so the next prompt already waits in the server's queue when one
finishes and the GPU never idles). Workers run one job each (execute, then download).
Transient failures go back to the queue with backoff, maybe to another
backend; a backend that keeps failing is paused and probed later, and one that
stays down past its limit is dropped. A job whose id is already on its way (in
flight, or waiting for a retry) is folded into it, never run beside it: both would
write the same files. Nothing here knows HTTP, WebSocket or RunningHub: executors
speak only through ``Executor`` and ``errors``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...defaults import TIMINGS, Timings
from ...errors import BackendError, ComfyKitError, StorageError
from ...files import Saved
from ...models import ModelKey
from ...result import FAILURE_KINDS, ExecuteResult, Failure, OutputFile, failure_of
from ...workflow import Workflow
from ..spec.sweep import Job
from ..store.records import JobRecord, job_record
from ..store.store import ResultStore
from .backend import Backend, BackendStats, Clock
from .eta import eta as eta_rule
from .schedule import WINDOW, Scheduler
from .stall import FailureWatch, Stall

logger = logging.getLogger("comfykit_batch.runner")

RETRY_BASE, RETRY_MAX = 0.5, 30.0
DOWNLOAD_ATTEMPTS = 3


def retry_delay(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Backoff before retry ``attempt + 1`` of a job: exponential, capped, plus up to RETRY_BASE of jitter."""
    return min(RETRY_MAX, RETRY_BASE * 2**attempt) + RETRY_BASE * rng()


@dataclass
class Progress:
    """A snapshot for the progress display; ``clock`` is the runner's, so rates never mix clocks."""

    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0  # completed in an earlier run, files still there
    failed_earlier: int = 0  # failed in an earlier run with a non-transient reason, not retried
    retried: int = 0
    clock: Clock = time.monotonic
    started: float | None = None
    in_flight: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.clock()

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def settled_earlier(self) -> int:
        return self.skipped + self.failed_earlier

    def rate(self) -> float:
        elapsed = self.clock() - (self.started or 0.0)
        return self.finished / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds left at the rate so far, by the one rule ``status`` uses too."""
        return eta_rule(self.total - self.finished - self.settled_earlier, self.rate())


@dataclass
class Summary:
    """What a run did, for the CLI's closing lines and for callers of ``run_manifest``."""

    total: int
    done: int
    failed: int
    skipped: int
    interrupted: bool
    wall: float
    failures: dict[str, int]
    backends: dict[str, BackendStats]
    index: str = ""
    failed_earlier: int = 0
    not_run: int = 0  # left when every backend was dropped
    notes: list[str] = field(default_factory=list)
    folded: int = 0  # jobs given while a job with their id was on its way: not run (not in ``total``)
    name: str = ""  # the manifest's name
    stalled: Stall | None = None  # the batch stopped itself: its jobs kept failing the same way

    @property
    def exit_code(self) -> int:
        """130 interrupted; 1 while any job failed (now or earlier) or could not run, or the batch stopped itself; else 0."""
        if self.interrupted:
            return 130
        return 1 if (self.failed or self.failed_earlier or self.not_run or self.stalled) else 0


@dataclass
class _Outcome:
    job: Job
    backend: Backend
    attempt: int
    result: ExecuteResult
    record: JobRecord
    token: int = -1


@dataclass
class _Released:
    """A job's prompt is done on its server (its outputs are still downloading): the slot may take the next prompt."""

    token: int
    backend: Backend


@dataclass
class _RunState:
    """The dispatch loop's variables, so each step of the loop is a method a reader can hold."""

    source: Iterator[Job]
    progress: Progress
    retry_heap: list[tuple[float, int, Job, int, str | None]] = field(default_factory=list)
    seq: Iterator[int] = field(default_factory=itertools.count)
    held: tuple[Job, int, str | None] | None = None  # job, attempt, the backend it last failed on
    exhausted: bool = False
    in_flight: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    last_report: float | None = None
    not_run: int = 0
    active: set[str] = field(default_factory=set)  # ids taken from ``source`` and not settled yet
    folded: int = 0

    @property
    def idle(self) -> bool:
        return self.exhausted and self.held is None and not self.retry_heap and self.in_flight == 0


class BatchRunner:
    """Runs jobs over backends and records each outcome in the store."""

    def __init__(
        self,
        backends: list[Backend],
        workflows: dict[str, Workflow],
        store: ResultStore,
        *,
        timeout: float,
        retries: int,
        save_previews: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
        progress_every: float = 0.5,
        clock: Clock = time.monotonic,
        backoff: Callable[[int], float] = retry_delay,
        timings: Timings = TIMINGS,
        scheduler: Scheduler | None = None,
        stop_after_failures: int = 0,
        key_of: Callable[[Job], ModelKey] | None = None,
        on_record: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        if not backends:
            raise ValueError("no backend to run on")
        self.backends = backends
        self.workflows = workflows
        self.store = store
        self.timeout = timeout
        self.retries = retries
        self.save_previews = save_previews
        self.on_progress = on_progress
        self.progress_every = progress_every
        self.clock = clock
        self.backoff = backoff
        self.timings = timings
        self.scheduler = scheduler
        self.key_of = key_of  # a job's model files, for its record
        self.on_record = on_record  # told of each record once it is stored (the webhook's job events)
        self.watch = FailureWatch(stop_after_failures)
        self.stalled: Stall | None = None
        self.cancel = threading.Event()
        self.progress = Progress(total=0, clock=clock)
        self.storage_error: StorageError | None = None  # set when the output folder could not be written: the run stops
        self._done: queue.SimpleQueue[_Outcome | _Released] = queue.SimpleQueue()
        self._early: list[_Outcome | _Released] = []  # taken by ``_wait_done``, handled next by ``_drain``
        self._tokens = itertools.count()
        self._released: set[int] = set()  # jobs whose server slot was given back before their downloads ended
        self._fetching: dict[str, int] = {}  # backend name -> such jobs still downloading (at most its concurrency)

    def stop(self) -> None:
        """Stop dispatching; in-flight jobs interrupt their remote prompts and return."""
        self.cancel.set()

    # -- the dispatch loop ----------------------------------------------------------------
    def run(self, jobs: Iterable[Job], total: int, progress: Progress | None = None) -> Summary:
        """Run every job of ``jobs`` (already filtered to what needs running); ``progress`` may carry earlier counts."""
        self.progress = progress or Progress(total=total, clock=self.clock)
        self.progress.total = total
        self.progress.started = self.clock()  # the rate counts from the first dispatch, not from server start-up
        state = _RunState(iter(jobs), self.progress)
        start = self.clock()
        for b in self.backends:
            b.mark_idle(start)
        workers = sum(2 * b.concurrency for b in self.backends)  # a slot's next prompt runs while the last one downloads
        with ThreadPoolExecutor(workers, thread_name_prefix="comfykit-job") as pool:
            while not state.idle or self._queued():
                self._drain(state)
                if self.cancel.is_set() or self._all_dropped() or self.stalled:
                    if state.in_flight == 0:
                        break
                    self._wait_done(0.1)
                    continue
                if not self._dispatch_next(state, pool):
                    self._report_due(state)
                    self._wait_done(self._idle_wait(state))
        return self._summary(state, start)

    def _drain(self, state: _RunState) -> None:
        """Take in every outcome that finished; queue the transient ones for a retry."""
        while True:
            try:
                out = self._early.pop(0) if self._early else self._done.get_nowait()
            except queue.Empty:
                return
            if isinstance(out, _Released):
                self._release(out)
                continue
            state.in_flight -= 1
            delay = self._settle(out, state)
            self._scheduler_saw(out)
            if delay is None:
                state.active.discard(out.job.id)
            else:
                attempt = out.attempt if out.backend.dropped else out.attempt + 1
                entry = (self.clock() + delay, next(state.seq), out.job, attempt, out.backend.name)
                heapq.heappush(state.retry_heap, entry)

    def _dispatch_next(self, state: _RunState, pool: ThreadPoolExecutor) -> bool:
        """Give the next job to the least-loaded backend that takes it; False when there was nothing to do now."""
        now = self.clock()
        if state.held is None and state.retry_heap and state.retry_heap[0][0] <= now:
            _, _, job, attempt, avoid = heapq.heappop(state.retry_heap)
            state.held = (job, attempt, avoid)
        if state.held is None and self.scheduler is not None:
            return self._dispatch_scheduled(state, pool, now)
        if state.held is None and not state.exhausted:
            new = next(state.source, None)
            if new is None:
                state.exhausted = True
            elif new.id in state.active:  # its twin will make its files: one id is one job
                state.folded += 1
                state.progress.total -= 1
                return True
            else:
                state.active.add(new.id)
                state.held = (new, 0, None)
        if state.held is None:
            return False
        job, attempt, avoid = state.held
        backend = self._choose(job, now, avoid)
        if backend is None:
            if not any(b.may_run(job) for b in self.backends):
                state.held = None
                state.active.discard(job.id)
                self._settle_unrunnable(job, state)
                return True
            return False
        state.held = None
        self._start(backend, job, attempt, state, pool, now)
        return True

    def _start(self, backend: Backend, job: Job, attempt: int, state: _RunState, pool: ThreadPoolExecutor, now: float) -> None:
        backend.started(now)
        state.in_flight += 1
        pool.submit(self._work, backend, job, attempt, next(self._tokens))
        self._report_due(state)

    # -- dispatch through a scheduler -----------------------------------------------------------
    def _queued(self) -> int:
        return len(self.scheduler) if self.scheduler is not None and not self.cancel.is_set() else 0

    def _dispatch_scheduled(self, state: _RunState, pool: ThreadPoolExecutor, now: float) -> bool:
        """Each free backend, least loaded first, takes the job the scheduler gives it; False when none took one."""
        assert self.scheduler is not None
        self._feed(state)
        ready = sorted((b for b in self.backends if b.ready(now)), key=lambda b: (b.in_flight / b.concurrency, b.dispatched))
        stalled = state.in_flight == 0 and not state.retry_heap  # nothing will finish: waiting gains nothing
        for force in (False, True) if stalled else (False,):
            for b in ready:
                item = self.scheduler.take(b.name, b.runs, now, force=force, busy=b.in_flight > 0)
                if item is not None:
                    self._start(b, item[0], item[1], state, pool, now)
                    return True
        if stalled:
            self._settle_stranded(state)
        return False

    def _feed(self, state: _RunState) -> None:
        """Queue the source's next jobs in the scheduler, up to ``WINDOW`` (one id is one job, as in sweep order)."""
        assert self.scheduler is not None
        while not state.exhausted and len(self.scheduler) < WINDOW:
            new = next(state.source, None)
            if new is None:
                state.exhausted = True
            elif new.id in state.active:
                state.folded += 1
                state.progress.total -= 1
            elif not any(b.may_run(new) for b in self.backends):
                self._settle_unrunnable(new, state)
            else:
                state.active.add(new.id)
                self.scheduler.add(new)

    def _settle_stranded(self, state: _RunState) -> None:
        """Queued jobs of a workflow no backend left may run: settled as in sweep order, never waited for."""
        assert self.scheduler is not None
        for workflow in self.scheduler.workflows():
            if not any(not b.dropped and b.runs(workflow) for b in self.backends):
                for job, _, _ in self.scheduler.remove_workflow(workflow):
                    state.active.discard(job.id)
                    self._settle_unrunnable(job, state)

    def _scheduler_saw(self, out: _Outcome) -> None:
        if self.scheduler is not None:
            self.scheduler.ended(out.job, self.clock(), out.result.ok)
            if out.backend.dropped:
                self.scheduler.forget(out.backend.name)

    def _idle_wait(self, state: _RunState) -> float:
        if state.retry_heap:
            return max(0.0, min(state.retry_heap[0][0] - self.clock(), 0.5))
        return 0.05 if state.in_flight else 0.2

    def _release(self, msg: _Released) -> None:
        """Free the slot of a job whose prompt finished, unless the backend already has a slot's worth downloading.

        The server then gets its next prompt while this one's outputs download, instead of idling
        for the download and the record; the cap keeps slow downloads from piling up.
        """
        b = msg.backend
        if self._fetching.get(b.name, 0) >= b.concurrency:
            return
        self._fetching[b.name] = self._fetching.get(b.name, 0) + 1
        self._released.add(msg.token)
        b.ended(False, self.clock())  # the prompt ran: the server did its part

    def _end(self, out: _Outcome, fault: bool) -> None:
        """The backend's bookkeeping for a finished job (if its slot was freed already, only a fault still counts)."""
        b = out.backend
        if out.token not in self._released:
            b.ended(fault, self.clock())
            return
        self._released.discard(out.token)
        self._fetching[b.name] -= 1
        if fault:  # a download lost the connection: a fault of the backend, its slot already given back
            b.in_flight += 1
            b.ended(True, self.clock())

    def _all_dropped(self) -> bool:
        return all(b.dropped for b in self.backends)

    def _choose(self, job: Job, now: float, avoid: str | None = None) -> Backend | None:
        """The least-loaded backend that takes ``job`` now; a retry waits for another backend than the one it failed on."""
        if avoid is not None and any(b.may_run(job) for b in self.backends if b.name != avoid):
            ready = [b for b in self.backends if b.name != avoid and b.accepts(job, now)]
        else:
            ready = [b for b in self.backends if b.accepts(job, now)]
        if not ready:
            return None
        return min(ready, key=lambda b: (b.in_flight / b.concurrency, b.in_flight, b.dispatched))

    def _wait_done(self, seconds: float) -> None:
        """Sleep until a job finishes (or ``seconds`` pass), without losing its outcome."""
        if self._early:
            return
        try:
            self._early.append(self._done.get(timeout=seconds))  # kept in order: a job's release comes before its outcome
        except queue.Empty:
            return

    def _report_due(self, state: _RunState) -> None:
        now = self.clock()
        if state.last_report is None or now - state.last_report >= self.progress_every:
            state.last_report = now
            self._report()

    def _report(self) -> None:
        if self.on_progress is None:
            return
        self.progress.in_flight = {b.name: b.in_flight for b in self.backends if not b.dropped}
        try:
            self.on_progress(self.progress)
        except Exception:  # noqa: BLE001 - a display must not stop a batch
            logger.exception("progress display failed")

    def _summary(self, state: _RunState, start: float) -> Summary:
        end = self.clock()
        for b in self.backends:
            b.mark_busy(end)
        if self.storage_error is not None:
            raise self.storage_error  # the store keeps what it recorded (journal); the caller closes it
        index = self.store.flush()
        self._report()
        wall = end - start
        loads = self.scheduler.loads() if self.scheduler is not None else {}
        p = self.progress
        left = 0 if self.cancel.is_set() else p.total - p.finished - p.settled_earlier
        stopped = self._all_dropped() or self.stalled is not None
        return Summary(
            total=p.total, done=p.done, failed=p.failed, skipped=p.skipped, failed_earlier=p.failed_earlier,
            interrupted=self.cancel.is_set(), wall=wall, failures=state.failures, index=self.store.shown(index),
            not_run=max(0, left) if stopped else 0, stalled=self.stalled,
            backends={b.name: b.stats(wall, loads.get(b.name)) for b in self.backends}, folded=state.folded,
        )

    # -- outcomes -----------------------------------------------------------------------
    def _settle(self, out: _Outcome, state: _RunState) -> float | None:
        """Record an outcome; returns a retry delay when the job should run again."""
        res, b = out.result, out.backend
        f = res.failure
        self._end(out, f is not None and FAILURE_KINDS[f.kind].pauses_backend)
        if f is not None and f.kind == "auth":  # the backend refused our credentials: no job will do better there
            b.drop(f"its credentials were refused ({f.message})")
            if any(other.may_run(out.job) for other in self.backends) and not self.cancel.is_set():
                return 0.0  # the job itself did nothing wrong: it runs elsewhere, not counted as an attempt
        if f is not None and f.kind == "storage":
            self._stop_for_storage(StorageError(f"{self.store.root}: {f.message}; free some space and run again to resume"))
            return None  # not recorded: the job runs again next time
        if res.ok:
            b.completed += 1
            state.progress.done += 1
            self._record(out.record)
            for name in self.watch.ok(b.name):
                self._drop_failing(name)
            return None
        f = f or Failure("client", res.msg or "failed")
        if self.cancel.is_set() and f.transient:
            return None  # stopped by us (cancelled, interrupted, lost on the way out): not an outcome, it runs next time
        if f.transient and out.attempt < self.retries and not self.cancel.is_set() and not self._all_dropped():
            state.progress.retried += 1
            delay = self.backoff(out.attempt)
            logger.info("job %s on %s failed (%s), retry %d in %.1fs", out.job.id, b.name, f.message, out.attempt + 1, delay)
            return delay
        b.failed += 1
        state.progress.failed += 1
        state.failures[f.reason] = state.failures.get(f.reason, 0) + 1
        self._record(out.record)
        self._judge(b, f)
        return None

    def _drop_failing(self, name: str) -> None:
        b = next(x for x in self.backends if x.name == name)
        b.drop(f"{self.watch.limit} jobs in a row failed the same way here while other backends worked")
        if self.scheduler is not None:
            self.scheduler.forget(name)

    def _judge(self, b: Backend, f: Failure) -> None:
        """A final failure: drop a backend whose jobs all fail the same way while others work, or stop the batch."""
        verdict = self.watch.failed(b.name, f, {x.name for x in self.backends if not x.dropped})
        b.held = b.name in self.watch.held
        if isinstance(verdict, str):
            self._drop_failing(verdict)
        elif verdict is not None and self.stalled is None:
            self.stalled = verdict
            logger.info("%s", verdict.line())  # the command line prints it as the run's error

    def _record(self, record: JobRecord) -> None:
        try:
            self.store.record(record)
            if self.on_record is not None:
                self.on_record(record.to_dict())  # never blocks, never raises for the webhook
        except (OSError, StorageError) as exc:
            error = exc if isinstance(exc, StorageError) else StorageError(
                f"{self.store.root}: could not record job {record.id}: {exc.strerror or exc}; free some space and run again")
            self._stop_for_storage(error)

    def _stop_for_storage(self, error: StorageError) -> None:
        if self.storage_error is None:
            self.storage_error = error
            logger.info("stopping: %s", error)
        self.cancel.set()

    def _settle_unrunnable(self, job: Job, state: _RunState) -> None:
        reason = f"config: no backend may run workflow {job.workflow!r}"
        state.failures[reason] = state.failures.get(reason, 0) + 1
        state.progress.failed += 1
        result = ExecuteResult.failed(Failure("config", reason))
        self._record(job_record(job, None, 0, result, [], 0.0, 0.0, self._fingerprint(job)))

    def _fingerprint(self, job: Job) -> str | None:
        """The job's workflow hash for its record (None for a remote workflow not fetched yet)."""
        wf = self.workflows.get(job.workflow)
        return wf.fingerprint() if wf is not None and wf.nodes else None

    # -- one job, in a worker thread -----------------------------------------------------------
    def _work(self, backend: Backend, job: Job, attempt: int, token: int = -1) -> None:
        started = time.time()
        files: list[dict[str, Any]] = []
        result: ExecuteResult | None = None
        try:
            result = backend.executor.execute(self.workflows[job.workflow], job.params, timeout=self.timeout, cancel=self.cancel)
            if result.ok:
                if result.files:
                    self._done.put(_Released(token, backend))
                files = self._download(backend, job, result)
        except ComfyKitError as exc:  # backend trouble (auth for a download redirected to a login page), or bad parameters
            kept = {"prompt_id": result.prompt_id, "seeds": result.seeds} if result is not None else {}
            where = f"{backend.name}: {exc}" if isinstance(exc, BackendError) else None
            result = ExecuteResult.failed(failure_of(exc, where), **kept)
        except OSError as exc:  # the output disk (full, read-only): the job did not land, and neither will the next
            result = ExecuteResult.failed(Failure("storage", f"could not write an output file: {exc.strerror or exc}"))
        except Exception as exc:  # noqa: BLE001 - a bug in one job must not stop the batch
            logger.exception("job %s crashed", job.id)
            result = ExecuteResult.failed(Failure("client", f"{type(exc).__name__}: {exc}"))
        record = job_record(job, backend.name, attempt, result, files, started, time.time(), self._fingerprint(job),
                            self.key_of(job) if self.key_of is not None else ())
        self._done.put(_Outcome(job, backend, attempt, result, record, token))

    def _download(self, backend: Backend, job: Job, result: ExecuteResult) -> list[dict[str, Any]]:
        """Fetch every output the index keeps; a transient download failure is tried again a few times."""
        files: list[dict[str, Any]] = []
        counts: dict[str, int] = {}
        for f in result.files:
            if f.is_temp and not self.save_previews:
                continue
            n = counts.get(f.var, 0)
            counts[f.var] = n + 1
            dest = self.store.path_for(job.workflow, job.id, f.var, n, f.filename)
            saved = self._download_one(backend, f, dest)
            files.append({"var": f.var, "kind": f.kind, "path": self.store.commit_file(saved.path), "size": saved.size,
                          "sha256": saved.sha256, "source_name": f.filename, "node": f.node_id, "type": f.type})
        return files

    def _download_one(self, backend: Backend, f: OutputFile, dest: Path) -> Saved:
        """One output, tried again after ``download_backoff * 2**attempt`` while its failure is transient."""
        attempt = 0
        while True:
            try:
                return backend.executor.download(f, dest)
            except BackendError as exc:
                attempt += 1
                if not exc.transient or attempt == DOWNLOAD_ATTEMPTS:
                    raise
                if self.cancel.wait(self.timings.download_backoff * 2 ** (attempt - 1)):
                    raise
