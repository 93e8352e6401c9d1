"""Which jobs one shard of a manifest runs: those whose id hashes to its index.

A cluster scheduler (a SLURM job array, a Kubernetes Indexed Job) starts N copies of the same
command; each picks its jobs by hashing the job id, so no coordinator is needed, every job belongs
to exactly one shard, and the shards come out within a few percent of each other in size. The hash
is of the id alone (not of a job's position), so it stays the same when the sweep is reordered.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ...errors import UsageError


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
