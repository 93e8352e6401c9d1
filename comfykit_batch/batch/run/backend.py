"""One backend as the runner sees it: an executor plus its load, pause and drop bookkeeping.

A backend that fails ``PAUSE_AFTER`` jobs in a row for backend reasons is paused
(``Timings.pause_first`` doubling up to ``Timings.pause_max``) and then probed with one job at a
time; one that has stayed down for ``down_limit`` seconds is dropped for the
rest of the run. Time comes from an injected clock, never compared with another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ...defaults import DEFAULTS, TIMINGS
from ...executors.base import Executor
from ..spec.sweep import Job

logger = logging.getLogger("comfykit_batch.runner")

Clock = Callable[[], float]

PAUSE_AFTER = 3


@dataclass(frozen=True)
class BackendStats:
    """What one backend did in a run: the summary's per-backend line."""

    completed: int
    failed: int
    dropped: bool
    drop_reason: str  # why it was dropped ("" when it was not)
    idle_fraction: float  # of the run's wall time, with no job in flight
    model_loads: int | None = None  # models it was given to load (None: jobs ran in sweep order, not counted)


@dataclass
class Backend:
    """An executor plus the runner's bookkeeping for it."""

    name: str
    executor: Executor
    concurrency: int
    workflows: set[str] | None = None  # None: every workflow
    down_limit: float = DEFAULTS.backend_down_limit
    pause_first: float = TIMINGS.pause_first
    pause_max: float = TIMINGS.pause_max
    model_slots: int = DEFAULTS.model_slots  # model sets it keeps loaded at once (the scheduler's view)
    held: bool = False  # its jobs kept failing the same way: no new job until another backend's outcome decides
    in_flight: int = 0
    dispatched: int = 0
    completed: int = 0
    failed: int = 0
    consecutive_faults: int = 0
    paused_until: float | None = None
    pause_len: float = field(default=0.0)
    down_since: float | None = None
    dropped: bool = False
    drop_reason: str = ""
    idle_since: float | None = None
    idle_total: float = 0.0

    def __post_init__(self) -> None:
        self.pause_len = self.pause_first

    def may_run(self, job: Job) -> bool:
        """Whether this backend could ever run ``job`` (its workflow is allowed and it is not dropped)."""
        return not self.dropped and self.runs(job.workflow)

    def runs(self, workflow: str) -> bool:
        """Whether this backend may run jobs of ``workflow`` (the manifest's ``backends:`` of a workflow)."""
        return self.workflows is None or workflow in self.workflows

    def accepts(self, job: Job, now: float) -> bool:
        """Whether to hand ``job`` to this backend now."""
        return self.may_run(job) and self.ready(now)

    def ready(self, now: float) -> bool:
        """Whether this backend takes a job now: not dropped, not paused (one probe at a time after a pause), a slot free."""
        if self.dropped or self.held:
            return False
        if self.paused_until is not None:
            if now < self.paused_until or self.in_flight:  # after a pause: one probe job at a time
                return False
        return self.in_flight < self.concurrency

    def started(self, now: float) -> None:
        self.mark_busy(now)
        self.in_flight += 1
        self.dispatched += 1

    def ended(self, fault: bool, now: float) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.mark_idle(now)
        if not fault:
            self.consecutive_faults, self.paused_until, self.pause_len, self.down_since = 0, None, self.pause_first, None
            return
        self.consecutive_faults += 1
        if self.down_since is None:
            self.down_since = now
        if self.consecutive_faults < PAUSE_AFTER:
            return
        if now - self.down_since >= self.down_limit:
            self.drop(f"down for {now - self.down_since:.0f}s (limit {self.down_limit:.0f}s)")
            return
        self.paused_until = now + self.pause_len
        logger.warning("backend %s paused for %.3gs after %d failures in a row", self.name, self.pause_len, self.consecutive_faults)
        self.pause_len = min(self.pause_len * 2, self.pause_max)

    def drop(self, why: str) -> None:
        """Take no more jobs for the rest of the run."""
        if not self.dropped:
            self.dropped = True
            self.drop_reason = why
            logger.warning("backend %s dropped: %s", self.name, why)

    def mark_idle(self, now: float) -> None:
        if self.in_flight == 0 and self.idle_since is None:
            self.idle_since = now

    def mark_busy(self, now: float) -> None:
        if self.idle_since is not None:
            self.idle_total += now - self.idle_since
            self.idle_since = None

    def stats(self, wall: float, model_loads: int | None = None) -> BackendStats:
        """Its figures for a run of ``wall`` seconds."""
        idle = round(self.idle_total / wall, 4) if wall > 0 else 0.0
        return BackendStats(self.completed, self.failed, self.dropped, self.drop_reason, idle, model_loads)
