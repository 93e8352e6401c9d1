"""The dry run's account of models: which model keys the jobs have, and what loading them will cost.

Before a GPU is touched the user sees the keys and their job counts, the model loads each backend is
planned to make, and the loads the sweep's own order would cause: the reason ``schedule: models`` is
the default, or the warning that the sweep gains nothing from it. The loads come from replaying the
keys (``simulate.replay``) with the documented default costs; a sweep past ``WALK`` jobs is judged
from its first ``WALK``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ...defaults import DEFAULTS
from ...models import ModelKey, describe
from ..spec.sweep import Job
from .keys import KeyOf
from .simulate import replay

#: jobs the dry run reads for its model plan
WALK = 100_000
#: keys listed by name (the others are counted)
SHOWN = 8


@dataclass
class ModelPlan:
    """Model keys of the selected jobs and the loads planned, against sweep order's."""

    schedule: str
    keys: dict[ModelKey, int] = field(default_factory=dict)  # jobs per key, in order of first appearance
    walked: int = 0
    more: bool = False  # the selection has more jobs than were walked
    loads: dict[str, int] = field(default_factory=dict)  # per backend, under ``schedule``
    sweep_order_loads: int = 0

    def lines(self) -> list[str]:
        n = sum(1 for k in self.keys if k)
        scope = f" (in the first {self.walked:,} jobs)" if self.more else ""
        out = [f"  models: {n:,} model key{'s' if n != 1 else ''}{scope}; schedule: {self.schedule}"
               + (" (jobs that load the same files run back to back; defaults.schedule: sweep turns it off)"
                  if self.schedule == "models" else "")]
        for key, jobs in itertools.islice(self.keys.items(), SHOWN):
            out.append(f"    {describe(key)}: {jobs:,} job{'s' if jobs != 1 else ''}")
        if len(self.keys) > SHOWN:
            out.append(f"    ... {len(self.keys) - SHOWN:,} more")
        planned = sum(self.loads.values())
        per = ", ".join(f"{b} {k:,}" for b, k in self.loads.items())
        out.append(f"    model loads planned: {planned:,} ({per}); in sweep order: ~{self.sweep_order_loads:,}")
        return out


def model_plan(jobs: Iterable[Job], key_of: KeyOf | None, slots: Mapping[str, int], schedule: str) -> ModelPlan | None:
    """The model plan of ``jobs`` on backends with these ``slots``; None when no job loads a model file."""
    if key_of is None or not slots:
        return None
    walked = itertools.islice(jobs, WALK + 1)
    keys = [key_of(j) for j in walked]
    more = len(keys) > WALK
    del keys[WALK:]
    if not any(keys):
        return None
    counts: dict[ModelKey, int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    switch, job = DEFAULTS.model_switch_cost, DEFAULTS.model_job_time
    in_order = replay(keys, slots, switch=switch, job=job, scheduler=None)
    planned = in_order if schedule == "sweep" else replay(keys, slots, switch=switch, job=job)
    return ModelPlan(schedule, counts, len(keys), more, planned.loads, sum(in_order.loads.values()))
