"""Which of the sweep's jobs a run is about: ``--only``, ``--shard``, ``--limit`` and ``--retry-failed``.

The run and the dry run read the same ``Selection``, so a dry run of ``--shard 1/4`` shows that
shard's jobs and an unknown ``--only`` id is refused by both, in the same words.

With a job's model key (``keys``), ``--shard`` gives shards whole model keys (``spec.shard.model_shards``)
rather than hashed ids, so a GPU task loads few models: two passes over the selected jobs, one
counting the jobs of each key, one keeping this shard's; memory is per key, not per job.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ...errors import UsageError
from ...models import ModelKey
from ..spec.shard import Shard, ShardPlan, model_shards
from ..spec.sweep import CountProgress, Job, Sweep


@dataclass(frozen=True)
class Selection:
    """The jobs of a sweep a run takes, in sweep order: ``only`` these ids, of ``shard``, the first ``limit``.

    ``retry_failed`` says whether jobs that failed for a lasting reason run again; it selects among
    the recorded jobs, so the store's walk applies it (the run) or counts it (the dry run).
    ``keys`` (a job's model key) makes ``shard`` model-aware; it is how, not which, so not compared.
    """

    only: frozenset[str] | None = None
    shard: Shard | None = None
    limit: int | None = None
    retry_failed: bool = False
    keys: Callable[[Job], ModelKey] | None = field(default=None, compare=False)

    @property
    def whole(self) -> bool:
        """Every job of the sweep: the store may walk it by position, counts come from its arithmetic."""
        return self.only is None and self.shard is None and self.limit is None

    def jobs(self, sweep: Sweep) -> Iterable[Job]:
        """The selected jobs, lazily past ``--only`` (whose ids are checked now); the ``Sweep`` itself when whole."""
        jobs: Iterable[Job] = sweep if self.only is None else self._only(sweep)
        if self.shard is not None and self.keys is not None:
            jobs = self._by_model(jobs, self.shard, self.keys)
        elif self.shard is not None:
            shard = self.shard
            jobs = (j for j in jobs if shard.contains(j.id))
        if self.limit is not None:
            jobs = itertools.islice(jobs, self.limit)
        return jobs

    def expected(self, sweep: Sweep, on_count: CountProgress | None = None) -> int:
        """How many jobs ``jobs`` gives, for the progress display; a shard's is its share (the summary counts exactly)."""
        total = sweep.count(on_count) if self.only is None else len(self.only)
        if self.shard is not None:
            total = -(-total // self.shard.count)
        return total if self.limit is None else min(total, self.limit)

    def model_plan(self, sweep: Sweep) -> ShardPlan | None:
        """The model shards ``jobs`` follows (a pass counting the jobs of each key), or None: hashed, or no shard."""
        if self.shard is None or self.keys is None:
            return None
        return _plan(sweep if self.only is None else self._only(sweep), self.shard.count, self.keys)

    def label(self) -> str:
        """How the dry run's first line names the selection ("" for the whole sweep)."""
        parts = []
        if self.only is not None:
            parts.append(f"(--only {len(self.only)} id{'s' if len(self.only) != 1 else ''})")
        if self.shard is not None:
            parts.append(f"(--shard {self.shard})")
        if self.limit is not None:
            parts.append(f"(--limit {self.limit:,})")
        return " ".join(parts)

    @staticmethod
    def _by_model(pool: Iterable[Job], shard: Shard, keys: Callable[[Job], ModelKey]) -> Iterator[Job]:
        """``shard``'s jobs of ``pool`` (walked twice: a ``Sweep`` or a list), by their key and rank within it."""
        plan = _plan(pool, shard.count, keys)
        ranks: Counter[ModelKey] = Counter()
        for job in pool:
            key = keys(job)
            if plan.shard_of(key, ranks[key]) == shard.index:
                yield job
            ranks[key] += 1

    def _only(self, sweep: Sweep) -> list[Job]:
        assert self.only is not None
        found = [j for j in sweep if j.id in self.only]
        unknown = self.only - {j.id for j in found}
        if unknown:
            raise UsageError(f"--only: {len(unknown)} id(s) not in this sweep: {', '.join(sorted(unknown)[:5])}"
                             " (see --dry-run for the ids)")
        return found


def _plan(pool: Iterable[Job], count: int, keys: Callable[[Job], ModelKey]) -> ShardPlan:
    """The model shards of ``pool``: every task counts the same jobs, so all make the same plan."""
    return model_shards(Counter(map(keys, pool)), count)
