"""Model-aware scheduling: the planner (replayed on a virtual clock), the learned costs and slots, and the runner
grouping jobs by model key over scripted backends: resume in the middle of a group, a backend dropped mid-group."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from typing import Any

from comfykit_batch.batch.run.backend import Backend
from comfykit_batch.batch.run.keys import key_function
from comfykit_batch.batch.run.runner import BatchRunner
from comfykit_batch.batch.run.schedule import ModelScheduler
from comfykit_batch.batch.run.simulate import replay
from comfykit_batch.batch.spec.sweep import Job, Sweep
from comfykit_batch.batch.store.store import ResultStore
from comfykit_batch.defaults import DEFAULTS
from comfykit_batch.workflow import Workflow
from tests.helpers.scripted import ScriptedExecutor

CKPTS = [f"m{i}.safetensors" for i in range(6)]
WF = Workflow({
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPTS[0]}, "_meta": {"title": "$ckpt.ckpt_name"}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}, "_meta": {"title": "$prompt.text"}},
})


def sweep_keys(fastest: bool, keys: int = 6, per_key: int = 40) -> list[tuple[str, ...]]:
    """The bench's sweep: ``keys`` models x ``per_key`` other combinations, the model axis fastest or slowest."""
    pairs = itertools.product(range(per_key), range(keys)) if fastest else ((p, m) for m in range(keys) for p in range(per_key))
    return [(f"m{m}",) for _, m in pairs]


def lower_bound(keys: list[tuple[str, ...]], backends: int, switch: float, job: float) -> float:
    return (len(keys) * job + len(set(keys)) * switch) / backends


# -- the planner ----------------------------------------------------------------------------------------


def test_grouped_runs_stay_near_the_lower_bound_in_either_order_and_sweep_order_loads_per_job():
    slots = {f"b{i}": 1 for i in range(4)}
    for fastest in (True, False):
        keys = sweep_keys(fastest)
        grouped = replay(keys, slots, switch=1.0, job=0.1)
        in_order = replay(keys, slots, switch=1.0, job=0.1, scheduler=None)
        assert grouped.makespan <= 1.25 * lower_bound(keys, 4, 1.0, 0.1)
        assert sum(grouped.loads.values()) <= 8 and max(grouped.loads.values()) <= 2
        if fastest:
            assert sum(in_order.loads.values()) == len(keys) and in_order.makespan > 4 * grouped.makespan


def test_one_key_on_four_backends_loads_once_on_each():
    grouped = replay([("only",)] * 100, {f"b{i}": 1 for i in range(4)}, switch=1.0, job=0.1)
    assert grouped.loads == {f"b{i}": 1 for i in range(4)}


def test_a_key_is_split_over_an_idle_backend_only_when_that_pays():
    keys = [("a",)] * 4 + [("b",)] * 40
    cheap = replay(keys, {"x": 1, "y": 1}, switch=0.1, job=1.0)
    dear = replay(keys, {"x": 1, "y": 1}, switch=1000.0, job=1.0)
    assert sum(cheap.loads.values()) == 3  # b is split: worth a second load
    assert sum(dear.loads.values()) == 2  # never worth a 1000 s load: the one that finished a waits


def test_jobs_that_load_nothing_never_count_as_loads():
    grouped = replay([()] * 10 + [("a",)] * 10, {"x": 1, "y": 1}, switch=1.0, job=0.1)
    assert sum(grouped.loads.values()) <= 2


# -- learned costs and slots ----------------------------------------------------------------------------


def _job(i: int, key: str) -> Job:
    return Job(f"j{i}", "w", {"ckpt": key}, seq=i)


def test_costs_are_learned_from_the_intervals_between_completions():
    s = ModelScheduler(lambda j: (j.params["ckpt"],), {"x": 1})
    assert s.cost_of("x") == (DEFAULTS.model_job_time, DEFAULTS.model_switch_cost)
    now = 0.0
    for i, key in enumerate(["a"] * 5 + ["b"] * 5 + ["c"] * 5):
        s.add(_job(i, key))
    while len(s):
        item = s.take("x", lambda _: True, now)
        assert item is not None
        switched = s._started[item[0].id].switched
        now += 0.5 + (3.0 if switched else 0.0)
        s.ended(item[0], now, True)
    job, switch = s.cost_of("x")
    assert abs(job - 0.5) < 1e-9 and abs(switch - 3.0) < 1e-9  # the first switch is resolved once a job's time is seen
    assert s.switches == {"x": 3}


def test_a_backend_without_its_own_costs_borrows_the_pools():
    s = ModelScheduler(lambda j: (j.params["ckpt"],), {"x": 1, "y": 1})
    s.costs["x"].job, s.costs["x"].switch = 0.2, 4.0
    assert s.cost_of("y") == (0.2, 4.0)


def test_a_backend_that_keeps_two_models_is_learned_to_have_two_slots():
    s = ModelScheduler(lambda j: (j.params["ckpt"],), {"x": 1})
    s.costs["x"].job, s.costs["x"].switch = 1.0, 10.0
    now, i = 0.0, 0
    for key in ["a", "b", "a"]:  # a server with room for two: coming back to a costs no load
        s.add(_job(i, key))
        item = s.take("x", lambda _: True, now)
        assert item is not None
        now += 1.0 + (10.0 if key == "b" or i == 0 else 0.0)
        s.ended(item[0], now, True)
        i += 1
    assert s.slots["x"] == 2


# -- the runner ------------------------------------------------------------------------------------------


def _sweep(per_key: int = 4, keys: int = 3) -> list[Job]:
    block = {"grid": {"prompt": [f"p{i}" for i in range(per_key)], "ckpt": CKPTS[:keys]}}  # the model axis fastest
    return list(Sweep([block], {"w": WF.fingerprint()}))


def _run(tmp_path, backends: list[Backend], jobs: list[Job], store: ResultStore | None = None, **kw: Any):
    store = store or ResultStore(tmp_path / "out", "t").open()
    key_of = key_function({"w": WF})
    assert key_of is not None
    sched = ModelScheduler(key_of, {b.name: 1 for b in backends})
    for name, key in kw.pop("resume", {}).items():
        sched.resume(name, key)
    runner = BatchRunner(backends, {"w": WF}, store, timeout=10, retries=2, backoff=lambda a: 0.0, scheduler=sched, key_of=key_of, **kw)
    return store, runner, runner.run(jobs, len(jobs))


def _models_in_order(executor: ScriptedExecutor) -> list[str]:
    return [c["ckpt"] for c in executor.calls]


def _changes(seq: list[str]) -> int:
    return sum(1 for a, b in zip([None, *seq], seq, strict=False) if a != b)


def test_the_runner_runs_a_keys_jobs_back_to_back_and_keeps_ids_and_positions(tmp_path):
    ex = ScriptedExecutor("a", lambda p, n: "ok", concurrency=1)
    jobs = _sweep()
    store, _, summary = _run(tmp_path, [Backend("a", ex, 1)], jobs)
    assert summary.done == 12 and _changes(_models_in_order(ex)) == 3  # sweep order would switch 12 times
    assert summary.backends["a"].model_loads == 3
    recs = {r["id"]: r["seq"] for r in store.records()}
    assert recs == {j.id: j.seq for j in jobs}
    assert all(r["models"] == [r["params"]["ckpt"]] for r in store.records())  # each record names the model it loaded
    store.close()


def test_two_backends_split_the_keys_between_them(tmp_path):
    a, b = (ScriptedExecutor(n, lambda p, n: "ok", concurrency=1) for n in "ab")
    store, _, summary = _run(tmp_path, [Backend("a", a, 1), Backend("b", b, 1)], _sweep(per_key=6, keys=2))
    assert summary.done == 12
    assert _changes(_models_in_order(a)) <= 2 and _changes(_models_in_order(b)) <= 2
    store.close()


def test_a_resumed_run_continues_the_group_its_backend_was_in(tmp_path):
    ex = ScriptedExecutor("a", lambda p, n: "ok", concurrency=1)
    jobs = _sweep()
    store, _, summary = _run(tmp_path, [Backend("a", ex, 1)], jobs, resume={"a": (CKPTS[2],)})
    assert _models_in_order(ex)[:4] == [CKPTS[2]] * 4  # the key it held when the last run stopped goes first
    store.close()


def test_a_backend_dropped_mid_group_leaves_its_group_to_the_others(tmp_path):
    lock = threading.Lock()
    seen: dict[str, int] = {}

    def dies(params: Mapping[str, Any], n: int) -> str:
        with lock:
            seen["a"] = seen.get("a", 0) + 1
            return "ok" if seen["a"] <= 2 else "auth"  # its credentials refused after two jobs: dropped

    a, b = ScriptedExecutor("a", dies, concurrency=1), ScriptedExecutor("b", lambda p, n: "ok", concurrency=1)
    store, _, summary = _run(tmp_path, [Backend("a", a, 1), Backend("b", b, 1)], _sweep(per_key=6, keys=2))
    assert summary.backends["a"].dropped and summary.done == 12 and summary.failed == 0
    assert {c["ckpt"] for c in b.calls} == set(CKPTS[:2])  # b finished a's group too
    store.close()
