"""Model-aware shards: whole model keys to shards, balanced by job count, the same plan on every task."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from comfykit_batch.batch.run.selection import Selection
from comfykit_batch.batch.spec.shard import Shard, ShardPlan, loads_per_shard, model_shards
from comfykit_batch.batch.spec.sweep import Sweep
from comfykit_batch.errors import UsageError

FP = {"w": "f" * 64}
SIX = {(f"m{i}.safetensors",): 40 for i in range(6)}


def ckpt(job):
    return (job.params["ckpt"],)


def sweep(ckpts: int, prompts: int) -> Sweep:
    block = {"grid": {"ckpt": [f"m{i}.safetensors" for i in range(ckpts)], "prompt": [f"p{i}" for i in range(prompts)]}}
    return Sweep([block], FP)


def members(plan: ShardPlan, counts) -> dict[int, list[tuple]]:
    """Every (key, rank) of ``counts`` by the shard the plan gives it."""
    out: dict[int, list[tuple]] = {i: [] for i in range(plan.count)}
    for key, n in counts.items():
        for rank in range(n):
            out[plan.shard_of(key, rank)].append((key, rank))
    return out


def test_six_keys_on_four_shards_are_balanced_with_few_loads():
    plan = model_shards(SIX, 4)
    assert all(abs(size - 60) <= 0.02 * 60 for size in plan.sizes())
    assert plan.loads_per_shard() == [2, 2, 2, 2]  # 60 is a key and a half: each shard needs two, none more
    assert [plan.loads(i) for i in range(4)] == loads_per_shard(SIX, 4)


def test_more_shards_than_keys_splits_keys_so_every_shard_has_work():
    plan = model_shards(SIX, 64)
    sizes = plan.sizes()
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1 and sum(sizes) == 240
    assert sum(plan.loads_per_shard()) <= 6 + 64


def test_one_key_is_split_in_contiguous_ranges():
    plan = model_shards({("a",): 160}, 4)
    assert plan.pieces[("a",)] == ((0, 40, 0), (40, 80, 1), (80, 120, 2), (120, 160, 3))
    assert [plan.shard_of(("a",), r) for r in (0, 39, 40, 159)] == [0, 0, 1, 3]


def test_keys_of_very_unequal_sizes():
    counts = {("big",): 10_000, ("mid",): 700, ("small",): 3, (): 17}
    plan = model_shards(counts, 8)
    share = sum(counts.values()) / 8
    assert all(abs(size - share) <= 0.02 * share for size in plan.sizes())
    big = [p[2] for p in plan.pieces[("big",)]]
    assert len(big) == len(set(big)) >= 7  # larger than seven shares: split, once per shard
    assert len(plan.pieces[("small",)]) == len(plan.pieces[()]) == 1  # small keys stay whole


def test_a_small_key_stays_whole_within_the_tolerance():
    counts = {("a",): 1010, ("b",): 990, ("c",): 1000, ("d",): 1000}
    plan = model_shards(counts, 4)
    assert all(len(p) == 1 for p in plan.pieces.values()) and plan.loads_per_shard() == [1, 1, 1, 1]


def test_a_key_larger_than_a_share_is_split_even_when_others_are_whole():
    plan = model_shards({("a",): 300, ("b",): 100}, 4)
    assert len(plan.pieces[("a",)]) == 3 and len(plan.pieces[("b",)]) == 1 and plan.sizes() == [100] * 4


@pytest.mark.parametrize("count", [1, 3, 4, 64])
@pytest.mark.parametrize("counts", [SIX, {("a",): 1}, {("a",): 5, ("b",): 3, (): 1000, ("c", "d"): 77}])
def test_shards_partition_the_jobs_in_contiguous_runs(counts, count):
    got = members(model_shards(counts, count), counts)
    flat = [m for ms in got.values() for m in ms]
    assert sorted(flat) == sorted((k, r) for k, n in counts.items() for r in range(n))  # each job exactly once
    for ms in got.values():
        for key in {k for k, _ in ms}:
            ranks = [r for k, r in ms if k == key]
            assert ranks == list(range(ranks[0], ranks[0] + len(ranks)))  # one run of the key
    if sum(counts.values()) >= count:
        assert all(got.values())


def test_the_plan_does_not_depend_on_the_order_of_the_counts():
    counts = {(f"m{i}",): random.Random(i).randint(1, 500) for i in range(30)} | {(f"t{i}",): 40 for i in range(5)}
    items = list(counts.items())
    random.Random(7).shuffle(items)
    assert model_shards(dict(items), 16) == model_shards(counts, 16)
    assert model_shards(dict(reversed(items)), 16).pieces == model_shards(counts, 16).pieces


def test_bad_counts_are_refused():
    with pytest.raises(UsageError, match="N >= 1"):
        model_shards(SIX, 0)
    with pytest.raises(UsageError, match="negative"):
        model_shards({("a",): -1}, 2)
    assert model_shards({}, 3).sizes() == [0, 0, 0]


def test_selection_over_a_sweep_gives_each_shard_whole_keys():
    s = sweep(6, 40)
    shards = [list(Selection(shard=Shard(i, 4), keys=ckpt).jobs(s)) for i in range(4)]
    assert sorted(j.id for part in shards for j in part) == sorted(j.id for j in s)
    assert [len(part) for part in shards] == [60] * 4
    assert [len({ckpt(j) for j in part}) for part in shards] == [2, 2, 2, 2]
    assert all([j.seq for j in part] == sorted(j.seq for j in part) for part in shards)  # sweep order


def test_selection_limit_and_only_apply_with_model_shards():
    s = sweep(3, 10)
    whole = list(Selection(shard=Shard(0, 3), keys=ckpt).jobs(s))
    assert list(Selection(shard=Shard(0, 3), keys=ckpt, limit=4).jobs(s)) == whole[:4]
    only = frozenset(j.id for j in list(s)[:12])
    parts = [list(Selection(only=only, shard=Shard(i, 2), keys=ckpt).jobs(s)) for i in range(2)]
    assert sorted(j.id for p in parts for j in p) == sorted(only) and [len(p) for p in parts] == [6, 6]
    with pytest.raises(UsageError, match="--only"):
        Selection(only=frozenset({"nope"}), shard=Shard(0, 2), keys=ckpt).jobs(s)


def test_keys_do_not_change_what_a_selection_is():
    with_keys = Selection(shard=Shard(0, 2), keys=ckpt)
    assert with_keys == Selection(shard=Shard(0, 2)) and not with_keys.whole
    assert with_keys.expected(sweep(2, 5)) == 5
    assert Selection(keys=ckpt).model_plan(sweep(2, 5)) is None
    assert list(Selection(keys=ckpt).jobs(sweep(2, 5))) == list(sweep(2, 5))  # no shard: every job
    assert with_keys.model_plan(sweep(2, 5)) == model_shards({("m0.safetensors",): 5, ("m1.safetensors",): 5}, 2)


def test_a_large_sweep_is_walked_lazily():
    s = sweep(4, 50_000)  # 200,000 jobs
    jobs = Selection(shard=Shard(1, 8), keys=ckpt).jobs(s)
    assert isinstance(jobs, Iterator)  # a generator: nothing is kept but a count per key
    keys = set()
    n = 0
    for job in jobs:
        n += 1
        keys.add(ckpt(job))
    assert n == 25_000 and len(keys) == 1
