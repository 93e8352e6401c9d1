"""Which job a free backend runs next when jobs load models: grouped by model key, spread over backends.

Loading a model costs a GPU server seconds to minutes; a job, seconds. Given in sweep order, a sweep
whose model axis varies fastest makes every backend load a model for every job. This scheduler
keeps the jobs of one model key (``models.ModelKey``) together: a free backend takes, in order,

1. the next job of a key it holds (its last ``slots`` keys), so a loaded model is used up first;
2. a job that loads nothing;
3. the next job of a key no backend is working on, the one with the most jobs left first;
4. a job of the key whose owners will take longest to finish it, when that time exceeds what this
   backend pays to load the key and run a job (the learned costs, ``Costs``): splitting then shortens
   the run; otherwise the backend waits, since loading would only add a switch.

Only the order and the placement change: jobs keep their ids, records and ``seq``. The costs are learned
per backend from what the runner observes (``ended``): the time between a backend's completions is one
job's time, and the first job after a switch adds the load. Until a backend has shown both, the pool's
average applies, and before anything is seen the defaults (``DEFAULTS.model_switch_cost``/``model_job_time``).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ...defaults import DEFAULTS
from ...models import ModelKey
from ..spec.sweep import Job

#: a queued job: the job, its attempt, and the backend it last failed on
Item = tuple[Job, int, str | None]
#: jobs the runner keeps queued in a scheduler ahead of dispatch: a whole sweep up to this size is grouped at
#: once; a longer one in windows of it (its large keys are then split over backends anyway)
WINDOW = 20_000
#: the share of a new observation in a learned cost (an exponential average)
LEARN_RATE = 0.3
#: a free backend picks the largest of the first this many groups no backend works on
SCAN = 512
#: how many of a backend's recent keys are remembered for learning that it holds more than ``slots``
RECALL = 8


class Scheduler(Protocol):
    """What the runner asks of a scheduler (``ModelScheduler``; a benchmark may bring its own policy)."""

    def __len__(self) -> int: ...
    def add(self, job: Job, attempt: int = 0, avoid: str | None = None) -> None: ...
    def take(self, backend: str, may_run: Callable[[str], bool], now: float, force: bool = False,
             busy: bool = False) -> Item | None: ...
    def ended(self, job: Job, now: float, ok: bool) -> None: ...
    def forget(self, backend: str) -> None: ...
    def workflows(self) -> set[str]: ...
    def remove_workflow(self, workflow: str) -> list[Item]: ...
    def loads(self) -> Mapping[str, int]: ...


@dataclass
class Costs:
    """One backend's learned costs (seconds): a job's time, and what a model load adds to it."""

    job: float | None = None
    switch: float | None = None
    unresolved: float | None = None  # a switch's interval seen before any job's time: resolved by the first one

    def observe(self, interval: float, switched: bool) -> None:
        if not switched:
            self.job = interval if self.job is None else self.job + LEARN_RATE * (interval - self.job)
            if self.unresolved is not None:
                interval, self.unresolved = self.unresolved, None
                self._switch_seen(interval)
        elif self.job is not None:
            self._switch_seen(interval)
        else:
            self.unresolved = interval

    def _switch_seen(self, interval: float) -> None:
        assert self.job is not None
        added = max(0.0, interval - self.job)
        self.switch = added if self.switch is None else self.switch + LEARN_RATE * (added - self.switch)


@dataclass
class _Group:
    """The queued jobs of one workflow and model key, in sweep order."""

    workflow: str
    key: ModelKey
    items: deque[Item] = field(default_factory=deque)


@dataclass
class _Started:
    at: float
    backend: str
    switched: bool
    recalled: int  # >0: the key was this many keys back in the backend's history (it may still hold it)


class ModelScheduler:
    """Groups queued jobs by model key and decides which one a free backend takes (see the module's docstring)."""

    def __init__(self, key_of: Callable[[Job], ModelKey], slots: Mapping[str, int], *,
                 free_placement: Iterable[str] = ()) -> None:
        self.key_of = key_of
        self.slots = dict(slots)
        self.free_placement = frozenset(free_placement)  # platforms that place tasks themselves (RunningHub)
        self.groups: dict[tuple[str, ModelKey], _Group] = {}  # in order of first appearance
        self.by_key: dict[ModelKey, list[_Group]] = {}
        self.size = 0
        self.loaded: dict[str, list[ModelKey]] = {b: [] for b in slots}  # most recent last
        self.current: dict[str, ModelKey | None] = dict.fromkeys(slots)
        self.history: dict[str, list[ModelKey]] = {b: [] for b in slots}
        self.costs: dict[str, Costs] = {b: Costs() for b in slots}
        self.switches: dict[str, int] = dict.fromkeys(slots, 0)
        self._started: dict[str, _Started] = {}
        self._last_end: dict[str, float] = {}

    def __len__(self) -> int:
        return self.size

    def add(self, job: Job, attempt: int = 0, avoid: str | None = None) -> None:
        """Queue a job behind the others of its group."""
        group = (job.workflow, self.key_of(job))
        found = self.groups.get(group)
        if found is None:
            found = self.groups[group] = _Group(*group)
            self.by_key.setdefault(group[1], []).append(found)
        found.items.append((job, attempt, avoid))
        self.size += 1

    def resume(self, backend: str, key: ModelKey) -> None:
        """``backend`` last ran a job of ``key`` in an earlier run: it may still hold it, so it continues that group."""
        if backend in self.loaded and key:
            self.loaded[backend], self.history[backend], self.current[backend] = [key], [key], key

    def forget(self, backend: str) -> None:
        """A dropped backend works on nothing: its keys may go to the others."""
        self.current[backend] = None
        self.loaded[backend] = []

    # -- choosing -------------------------------------------------------------------------------
    def workflows(self) -> set[str]:
        """The workflows of the queued jobs."""
        return {g.workflow for g in self.groups.values()}

    def remove_workflow(self, workflow: str) -> list[Item]:
        """Take out every queued job of ``workflow`` (no backend left may run it)."""
        gone = [g for g in self.groups.values() if g.workflow == workflow]
        for g in gone:
            self._drop(g)
        taken = [item for g in gone for item in g.items]
        self.size -= len(taken)
        return taken

    def _drop(self, group: _Group) -> None:
        del self.groups[(group.workflow, group.key)]
        same = self.by_key[group.key]
        same.remove(group)
        if not same:
            del self.by_key[group.key]

    def loads(self) -> Mapping[str, int]:
        """Model loads each backend was given (the first job of a key it did not hold)."""
        return self.switches

    def take(self, backend: str, may_run: Callable[[str], bool], now: float, force: bool = False,
             busy: bool = False) -> Item | None:
        """The job ``backend`` should run next, or None when it should wait (nothing it may run pays).

        ``force``: nothing is running anywhere, so waiting gains nothing: take the largest group.
        ``busy``: the backend has jobs in flight; it then takes only a key it holds. A job of another key
        submitted beside them could reach the server first and make it load twice (A, B, A).
        """
        group = self._choose(backend, may_run, force, busy)
        if group is None:
            return None
        item = group.items.popleft()
        self.size -= 1
        if not group.items:
            self._drop(group)
        self._dispatched(backend, item[0], group.key, now)
        return item

    def _choose(self, backend: str, may_run: Callable[[str], bool], force: bool = False, busy: bool = False) -> _Group | None:
        if backend in self.free_placement:
            return next((g for g in self.groups.values() if may_run(g.workflow)), None)
        for key in [*reversed(self.loaded[backend]), ()]:  # a key it holds, then jobs that load nothing
            mine = next((g for g in self.by_key.get(key, ()) if may_run(g.workflow)), None)
            if mine is not None:
                return mine
        if busy:
            return None
        owners = self._owners()
        free = self._largest(g for g in self.groups.values() if not owners.get(g.key) and may_run(g.workflow))
        if free is not None:
            return free
        split = self._worth_splitting(backend, [g for g in self.groups.values() if may_run(g.workflow)], owners)
        return split if split is not None or not force else self._largest(g for g in self.groups.values() if may_run(g.workflow))

    @staticmethod
    def _largest(groups: Iterable[_Group]) -> _Group | None:
        """The group with the most jobs left among the first ``SCAN`` (a sweep of thousands of keys stays cheap)."""
        return max(itertools.islice(groups, SCAN), key=lambda g: len(g.items), default=None)

    def _owners(self) -> dict[ModelKey, int]:
        owners: dict[ModelKey, int] = {}
        for key in self.current.values():
            if key is not None:
                owners[key] = owners.get(key, 0) + 1
        return owners

    def _worth_splitting(self, backend: str, groups: list[_Group], owners: Mapping[ModelKey, int]) -> _Group | None:
        """The group whose owners finish last, if joining them finishes it sooner than they would alone."""
        if not groups:
            return None
        job, switch = self.cost_of(backend)
        longest = max(groups, key=lambda g: len(g.items) / max(owners.get(g.key, 0), 1))
        left = len(longest.items) * job / max(owners.get(longest.key, 0), 1)
        return longest if left > switch + job else None

    def cost_of(self, backend: str) -> tuple[float, float]:
        """(job, switch) seconds for ``backend``: its own once seen, else the pool's average, else the defaults."""
        own = self.costs.get(backend, Costs())
        jobs = [c.job for c in self.costs.values() if c.job is not None]
        switches = [c.switch for c in self.costs.values() if c.switch is not None]
        job = own.job if own.job is not None else (sum(jobs) / len(jobs) if jobs else DEFAULTS.model_job_time)
        switch = own.switch if own.switch is not None else (
            sum(switches) / len(switches) if switches else DEFAULTS.model_switch_cost)
        return job, switch

    # -- learning ---------------------------------------------------------------------------------
    def _dispatched(self, backend: str, job: Job, key: ModelKey, now: float) -> None:
        held, history = self.loaded[backend], self.history[backend]
        switched = bool(key) and key not in held and backend not in self.free_placement
        recalled = len(history) - history.index(key) if switched and key in history else 0
        if key in held:
            held.remove(key)
        held.append(key)
        del held[:-max(self.slots.get(backend, 1), 1)]
        if key in history:
            history.remove(key)
        history.append(key)
        del history[:-RECALL]
        self.current[backend] = key
        self.switches[backend] += switched
        self._started[job.id] = _Started(now, backend, switched, recalled)

    def ended(self, job: Job, now: float, ok: bool) -> None:
        """A job finished on its backend: learn from how long it took since the backend's last completion."""
        started = self._started.pop(job.id, None)
        if started is None:
            return
        b = started.backend
        interval = now - max(started.at, self._last_end.get(b, started.at))
        self._last_end[b] = now
        if not ok:
            return
        costs = self.costs[b]
        if started.recalled and costs.job is not None and costs.switch is not None and interval < costs.job + costs.switch / 2:
            self.slots[b] = max(self.slots.get(b, 1), started.recalled)  # it still held that key: more room than we thought
            return
        costs.observe(interval, started.switched)
