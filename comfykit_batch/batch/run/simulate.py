"""A run replayed on a virtual clock: how many models each backend would load, and how long it would take.

The dry run states the plan before any GPU is touched: the loads per backend under the scheduler and
the switches sweep order would cause. Both come from replaying the jobs' model keys on backends that
charge ``switch`` seconds for a key they do not hold (their last ``slots`` keys) and ``job`` seconds a
job: the same ``ModelScheduler`` the run uses, driven by events instead of threads. Tests and the
benchmark use it to compare policies without servers.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ...models import ModelKey
from ..spec.sweep import Job
from .schedule import ModelScheduler, Scheduler


@dataclass
class Replay:
    """What a replayed run did: its length (seconds) and each backend's model loads."""

    makespan: float = 0.0
    loads: dict[str, int] = field(default_factory=dict)


@dataclass
class _Server:
    """A backend as the replay charges it: its own memory of keys, whatever the scheduler believes."""

    slots: int
    held: list[ModelKey] = field(default_factory=list)
    loads: int = 0

    def run(self, key: ModelKey, switch: float, job: float) -> float:
        cost = job
        if key and key not in self.held:
            self.loads += 1
            cost += switch
        if key in self.held:
            self.held.remove(key)
        self.held.append(key)
        del self.held[:-self.slots]
        return cost


def replay(keys: Sequence[ModelKey], slots: Mapping[str, int], *, switch: float, job: float,
           scheduler: Callable[[Callable[[Job], ModelKey], Mapping[str, int]], Scheduler] | None = ModelScheduler) -> Replay:
    """Run jobs with these model keys (in sweep order) on backends ``slots``; ``scheduler=None``: sweep order."""
    jobs = [Job(str(i), "w", {}, seq=i) for i in range(len(keys))]
    servers = {b: _Server(max(n, 1)) for b, n in slots.items()}
    sched = scheduler((lambda j: keys[j.seq]), slots) if scheduler is not None else None
    for j in jobs:
        if sched is not None:
            sched.add(j)
    order = iter(jobs)
    events: list[tuple[float, int, str, Job]] = []
    idle, now, n = sorted(slots), 0.0, 0
    while True:
        for force in (False, True):  # forced only when nothing runs and no backend took a job of its own accord
            if force and events:
                break
            for b in list(idle):
                got = _next(sched, order, b, now, force=force)
                if got is not None:
                    idle.remove(b)
                    n += 1
                    heapq.heappush(events, (now + servers[b].run(keys[got.seq], switch, job), n, b, got))
        if not events:
            break
        now, _, b, done = heapq.heappop(events)
        if sched is not None:
            sched.ended(done, now, True)
        idle.append(b)
    return Replay(now, {b: s.loads for b, s in servers.items()})


def _next(sched: Scheduler | None, order: Iterator[Job], backend: str, now: float, force: bool) -> Job | None:
    if sched is None:
        return next(order, None)
    item = sched.take(backend, lambda _: True, now, force=force)
    return item[0] if item is not None else None

