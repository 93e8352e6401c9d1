"""Which jobs one shard of a manifest runs: those whose id hashes to its index.

A cluster scheduler (a SLURM job array, a Kubernetes Indexed Job) starts N copies of the same
command; each picks its jobs by hashing the job id, so no coordinator is needed, every job belongs
to exactly one shard, and the shards come out within a few percent of each other in size. The hash
is of the id alone (not of a job's position), so it stays the same when the sweep is reordered.

With model scheduling (``model_shards``), a shard instead gets whole *model keys* (the model files
a job loads): hashing spreads every model over every task, so each GPU would load them all. The
assignment is computed by every task from the sweep's job counts per key alone, so it needs no
coordinator either.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ...errors import UsageError
from ...models import ModelKey

#: how far (in percent of a shard's share) model shards may stray from it to keep a key whole: the sum of
#: all overshoots stays within it, so no shard is more than this over or under, and sizes within twice it
#: (in whole jobs, so every task computes the same plan)
TOLERANCE_PERCENT = 1
#: part of a key: its jobs of rank ``start`` to ``stop`` (in sweep order, within the key) go to ``shard``
Piece = tuple[int, int, int]


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UsageError(f"shard {self.index}/{self.count}: expected 0 <= I < N and N >= 1")

    def contains(self, job_id: str) -> bool:
        """This job is this shard's."""
        return shard_of(job_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(job_id: str, count: int) -> int:
    """The shard a job belongs to among ``count``: a stable hash of its id (not Python's salted ``hash``).

    Like drawing at random, shard sizes differ by about 1/sqrt(jobs per shard): 3% at 1,000 jobs a
    shard, 1% at 10,000.
    """
    digest = hashlib.blake2b(job_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


@dataclass(frozen=True)
class ShardPlan:
    """Which of ``count`` shards runs each job of each model key (see ``model_shards``).

    ``pieces[key]`` are the key's pieces (``Piece``) in rank order: one for a key kept whole. Its
    size is O(keys + shards), whatever the number of jobs.
    """

    count: int
    pieces: Mapping[ModelKey, tuple[Piece, ...]]

    def shard_of(self, key: ModelKey, rank: int) -> int:
        """The shard of the job of rank ``rank`` (0-based, in sweep order) among the jobs of ``key``."""
        pieces = self.pieces[key]
        return pieces[max(0, bisect.bisect_right(pieces, rank, key=lambda p: p[0]) - 1)][2]

    def loads(self, shard: int) -> int:
        """How many keys ``shard`` gets (some or all of their jobs): the model loads it costs."""
        return self.loads_per_shard()[shard]

    def loads_per_shard(self) -> list[int]:
        """``loads`` of every shard, in one pass (a key has at most one piece per shard)."""
        out = [0] * self.count
        for pieces in self.pieces.values():
            for _, _, shard in pieces:
                out[shard] += 1
        return out

    def sizes(self) -> list[int]:
        """Jobs per shard."""
        out = [0] * self.count
        for pieces in self.pieces.values():
            for start, stop, shard in pieces:
                out[shard] += stop - start
        return out


def model_shards(counts: Mapping[ModelKey, int], count: int) -> ShardPlan:
    """Whole model keys to shards, balanced by job count; a key split only where the balance needs it.

    Each shard's share is a ``count``-th of the jobs (to the job). Keys go largest first (then by
    key, so any task computing it from the same counts gets the same plan, whatever their order):
    whole to the shard they fill best, over its share by at most the ``TOLERANCE_PERCENT`` left (the sum
    of overshoots stays within it); a key that fits nowhere fills a shard's room and goes on.
    A key larger than a share is thus split, a smaller one only when no shard has room for it;
    with more shards than keys, keys are split until every shard has its share.

    Greedy, not optimal (bin packing is hard), in O(pieces x shards). Which shard a split fills
    matters (the roomiest keeps pieces big; the fullest leaves big rooms for later keys to fit
    exactly): both are tried, and the plan with fewer loads kept.
    """
    if count < 1:
        raise UsageError(f"model shards: expected N >= 1, got {count}")
    if any(n < 0 for n in counts.values()):
        raise UsageError("model shards: a key has a negative job count")
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    plans = [_greedy(ordered, count, split) for split in (_roomiest, _fullest)]
    return min(plans, key=lambda plan: (sum(plan.loads_per_shard()), max(plan.loads_per_shard())))


def _greedy(ordered: list[tuple[ModelKey, int]], count: int, split: Callable[[list[int]], int]) -> ShardPlan:
    """Place the keys in this order, splitting into the shard ``split`` picks among the rooms."""
    total = sum(n for _, n in ordered)
    rooms = [(i + 1) * total // count - i * total // count for i in range(count)]
    slack = total * TOLERANCE_PERCENT // (100 * count)
    pieces: dict[ModelKey, tuple[Piece, ...]] = {}
    for key, n in ordered:
        pieces[key], slack = _place(n, rooms, slack, split)
    return ShardPlan(count, pieces)


def _place(n: int, rooms: list[int], slack: int, split: Callable[[list[int]], int]) -> tuple[tuple[Piece, ...], int]:
    """Put a key's ``n`` jobs into ``rooms`` (taken from them), whole if it fits, else piece by piece; the slack left."""
    pieces: list[Piece] = []
    start = 0
    while start < n:
        left = n - start
        shard = _fit(rooms, left, slack)
        if shard is not None:
            slack -= max(0, left - rooms[shard])
            take = left
        else:
            shard = split(rooms)
            take = rooms[shard]
        assert take > 0  # the rooms add up to the jobs not yet placed
        rooms[shard] -= take
        pieces.append((start, start + take, shard))
        start += take
    return tuple(pieces), slack


def _roomiest(rooms: list[int]) -> int:
    return max(range(len(rooms)), key=lambda i: (rooms[i], -i))


def _fullest(rooms: list[int]) -> int:
    return min((i for i, room in enumerate(rooms) if room > 0), key=lambda i: (rooms[i], i))


def _fit(rooms: list[int], n: int, slack: int) -> int | None:
    """The shard that takes ``n`` jobs whole with the least room to spare, else the least over (by at most ``slack``)."""
    fits = [i for i, room in enumerate(rooms) if room > 0 and room + slack >= n]
    return min(fits, key=lambda i: (rooms[i] < n, abs(rooms[i] - n), i), default=None)


def loads_per_shard(counts: Mapping[ModelKey, int], count: int) -> list[int]:
    """The model loads of each of ``count`` model shards of ``counts``: for benchmarks and the dry run."""
    return model_shards(counts, count).loads_per_shard()


def _int(value: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise UsageError(f"{what}: expected a whole number, got {value!r}") from None


def parse_shard(text: str | None, env: Mapping[str, str], shards: int | None = None) -> Shard | None:
    """``--shard I/N``, ``--shard auto`` (from the scheduler's environment), or None (no sharding).

    ``auto`` reads a SLURM array task (see ``_slurm``), else a Kubernetes Indexed Job
    (``JOB_COMPLETION_INDEX``, of ``shards``: ``--shards`` or the manifest, since Kubernetes does
    not pass the count). A SLURM array must be a plain range (no ``:step``).
    """
    if text is None:
        return None
    text = text.strip()
    m = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if m:
        shard = Shard(int(m[1]), int(m[2]))
        if shards is not None and shards != shard.count:
            raise UsageError(f"--shard {text} disagrees with --shards {shards}")
        return shard
    if text != "auto":
        raise UsageError(f"--shard {text!r}: expected I/N (e.g. 3/64) or auto")
    if "SLURM_ARRAY_TASK_ID" in env:
        return _slurm(env, shards)
    if "JOB_COMPLETION_INDEX" in env:
        if shards is None:
            raise UsageError("--shard auto under a Kubernetes Indexed Job needs the count: --shards N (the Job's completions)")
        return Shard(_int(env["JOB_COMPLETION_INDEX"], "JOB_COMPLETION_INDEX"), shards)
    raise UsageError("--shard auto: neither SLURM_ARRAY_TASK_ID (sbatch --array) nor JOB_COMPLETION_INDEX "
                     "(Kubernetes Indexed Job) is set; use --shard I/N")


def _slurm(env: Mapping[str, str], shards: int | None) -> Shard:
    """The shard of a SLURM array task.

    With ``--shards N`` the task id is the shard (an array ``0-(N-1)``): a task resubmitted alone
    (``sbatch --array=3``) keeps its identity. Without it, the shard is the task's place in its
    array (id minus ``SLURM_ARRAY_TASK_MIN``) of ``SLURM_ARRAY_TASK_COUNT``.
    """
    task = _int(env["SLURM_ARRAY_TASK_ID"], "SLURM_ARRAY_TASK_ID")
    if shards is not None:
        if not 0 <= task < shards:
            raise UsageError(f"SLURM_ARRAY_TASK_ID={task} is not a shard of --shards {shards}: submit --array=0-{shards - 1}")
        return Shard(task, shards)
    if "SLURM_ARRAY_TASK_COUNT" not in env:
        raise UsageError("--shard auto: SLURM_ARRAY_TASK_COUNT is not set; pass --shards N")
    low = _int(env.get("SLURM_ARRAY_TASK_MIN", "0"), "SLURM_ARRAY_TASK_MIN")
    count = _int(env["SLURM_ARRAY_TASK_COUNT"], "SLURM_ARRAY_TASK_COUNT")
    return Shard(task - low, count)
