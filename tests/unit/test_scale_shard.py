"""Shard selection: every job in exactly one shard, shards balanced, ``--shard`` parsed strictly."""

import hashlib

import pytest

from comfykit_batch.batch.spec.shard import Shard, parse_shard, shard_of
from comfykit_batch.errors import UsageError


def ids(n):
    return [hashlib.sha256(str(i).encode()).hexdigest()[:20] for i in range(n)]


def test_every_job_is_in_exactly_one_shard():
    shards = [Shard(i, 64) for i in range(64)]
    for j in ids(2000):
        assert [s.index for s in shards if s.contains(j)] == [shard_of(j, 64)]


def test_64_shards_of_a_dataset_sized_sweep_are_within_a_few_percent():
    sizes = [0] * 64
    for j in ids(640_000):
        sizes[shard_of(j, 64)] += 1
    mean = 640_000 / 64
    assert max(abs(s - mean) for s in sizes) / mean < 0.05, sizes


def test_selection_depends_on_the_id_only():
    s = Shard(3, 8)
    assert [s.contains(j) for j in ids(200)] == [Shard(3, 8).contains(j) for j in ids(200)]
    assert Shard(0, 1).contains("anything")


@pytest.mark.parametrize("text, want", [("3/64", Shard(3, 64)), (" 0 / 1 ", Shard(0, 1))])
def test_explicit_shard(text, want):
    assert parse_shard(text, {}, None) == want


def test_none_means_no_sharding():
    assert parse_shard(None, {"SLURM_ARRAY_TASK_ID": "1"}, 4) is None


def test_auto_from_a_slurm_array_counts_from_its_first_task():
    env = {"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert parse_shard("auto", env, None) == Shard(2, 4)
    assert parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "2"}, 5) == Shard(2, 5)


def test_with_shards_a_resubmitted_slurm_task_keeps_its_shard():
    env = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_COUNT": "1"}  # sbatch --array=3
    assert parse_shard("auto", env, 4) == Shard(3, 4)
    assert parse_shard("auto", env, None) == Shard(0, 1)


def test_auto_from_a_kubernetes_indexed_job_takes_the_count_from_shards():
    assert parse_shard("auto", {"JOB_COMPLETION_INDEX": "7"}, 16) == Shard(7, 16)


@pytest.mark.parametrize("text, env, shards, match", [
    ("3", {}, None, "expected I/N"),
    ("4/4", {}, None, "0 <= I < N"),
    ("1/0", {}, None, "N >= 1"),
    ("1/4", {}, 8, "disagrees"),
    ("auto", {}, None, "neither SLURM_ARRAY_TASK_ID"),
    ("auto", {"JOB_COMPLETION_INDEX": "1"}, None, "--shards N"),
    ("auto", {"JOB_COMPLETION_INDEX": "x"}, 4, "JOB_COMPLETION_INDEX: expected a whole number"),
    ("auto", {"SLURM_ARRAY_TASK_ID": "1"}, None, "SLURM_ARRAY_TASK_COUNT is not set"),
    ("auto", {"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "4"}, None, "0 <= I < N"),
    ("auto", {"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_COUNT": "9"}, 8, "submit --array=0-7"),
])
def test_bad_input_is_one_line(text, env, shards, match):
    with pytest.raises(UsageError, match=match) as info:
        parse_shard(text, env, shards)
    assert "\n" not in str(info.value)
