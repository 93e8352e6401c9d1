import itertools
import random

from comfykit_batch.batch.spec import sweep as sweep_module
from comfykit_batch.batch.spec.sweep import Sweep, block_count, job_id

FP = {"w": "f" * 64}


def params(block, fps=FP):
    return [dict(j.params) for j in Sweep([block], fps)]


def test_grid_is_a_cartesian_product_in_written_order():
    assert params({"grid": {"a": [1, 2], "b": ["x", "y"]}}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]


def test_zip_advances_together_and_multiplies_with_grid():
    out = params({"zip": {"p": ["cat", "dog"], "n": ["blur", "dark"]}, "grid": {"cfg": [5, 7]}})
    assert len(out) == 4 and {"cfg": 5, "p": "dog", "n": "dark"} in out
    assert {"p": "cat", "n": "dark"} not in [{k: o[k] for k in ("p", "n")} for o in out]


def test_cases_fixed_params_and_override():
    out = params({"params": {"steps": 10, "w": 1}, "cases": [{"w": 512}, {"w": 768, "steps": 5}]})
    assert out == [{"steps": 10, "w": 512}, {"steps": 5, "w": 768}]


def test_seeds_count_and_values_and_repeat():
    out = params({"grid": {"a": [1]}, "seeds": {"param": "seed", "count": 3, "base": 100}})
    assert [o["seed"] for o in out] == [100, 101, 102]
    out = params({"seeds": {"param": "seed", "values": [0, 7]}})
    assert [o["seed"] for o in out] == [0, 7]
    jobs = list(Sweep([{"grid": {"a": [1]}, "repeat": 3}], FP))
    assert [j.repeat for j in jobs] == [0, 1, 2] and len({j.id for j in jobs}) == 3


def test_random_samples_are_reproducible_and_in_range():
    block = {"random": {"samples": 50, "seed": 3, "params": {"x": {"range": [1, 5]}, "y": {"range": [0.0, 1.0]},
                                                             "c": {"choice": ["a", "b"]}}}}
    a, b = params(block), params(block)
    assert a == b and len(a) == 50
    assert all(1 <= o["x"] <= 5 and isinstance(o["x"], int) and 0 <= o["y"] <= 1 and o["c"] in "ab" for o in a)
    other = dict(block, random=dict(block["random"], seed=4))
    assert params(other) != a


def test_exclude_rules():
    out = params({"grid": {"a": [1, 2], "b": [1, 2]}, "exclude": [{"a": 1, "b": 2}]})
    assert out == [{"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 2, "b": 2}]
    s = Sweep([{"grid": {"a": [1, 2], "b": [1, 2]}, "exclude": [{"a": 1, "b": 2}]}], FP)
    assert s.upper_bound() == 4 and s.count() == 3


def test_ids_are_deterministic_and_depend_on_workflow_content():
    a = [j.id for j in Sweep([{"grid": {"a": [1, 2]}}], FP)]
    assert a == [j.id for j in Sweep([{"grid": {"a": [1, 2]}}], FP)]
    assert a != [j.id for j in Sweep([{"grid": {"a": [1, 2]}}], {"w": "0" * 64})]
    assert job_id("f", {"a": 1, "b": 2}, 0) == job_id("f", {"b": 2, "a": 1}, 0)


def test_extending_a_sweep_keeps_old_ids():
    old = {j.id for j in Sweep([{"grid": {"a": [1, 2]}}], FP)}
    new = {j.id for j in Sweep([{"grid": {"a": [1, 2, 3]}}], FP)}
    assert old < new


def test_million_jobs_are_lazy(monkeypatch):
    block = {"grid": {"a": list(range(1000)), "b": list(range(1000))}}
    s = Sweep([block], FP)
    assert s.count() == 1_000_000
    made = []
    real = sweep_module.job_id
    monkeypatch.setattr(sweep_module, "job_id", lambda *a: made.append(a) or real(*a))
    first = list(itertools.islice(s, 3))
    assert [dict(j.params) for j in first] == [{"a": 0, "b": 0}, {"a": 0, "b": 1}, {"a": 0, "b": 2}]
    assert len(made) == 3  # only the jobs asked for were made


def test_exclude_count_over_ten_million_is_arithmetic(monkeypatch):
    block = {"grid": {k: list(range(10)) for k in "abcdefg"},
             "exclude": [{"a": 1, "b": 2}, {"a": 1, "c": 3}, {"d": 4}, {"e": 5, "f": 6, "g": 7}]}
    walked = []
    monkeypatch.setattr(sweep_module, "_combinations", lambda b: walked.append(b) or iter(()))
    s = Sweep([block], FP)
    # inclusion-exclusion by hand: P(keep) = P(not d=4) * (1 - P(a1b2 or a1c3 or e5f6g7))
    p_abc = 0.01 + 0.01 - 0.001
    expected = round(10**7 * 0.9 * (1 - (p_abc + 0.001 - p_abc * 0.001)))
    assert s.upper_bound() == 10**7 and s.count() == expected and not walked


def test_exclude_count_matches_walking_every_job():
    rng = random.Random(12)
    keys = ["a", "b", "c", "seed"]
    for _ in range(400):
        block = {"grid": {k: [rng.randint(0, 2) for _ in range(rng.randint(1, 3))] for k in rng.sample(keys, 2)},
                 "exclude": [{k: rng.randint(0, 2) for k in rng.sample(keys, rng.randint(1, 3))} for _ in range(3)]}
        if rng.random() < .5:
            block["cases"] = [{k: rng.randint(0, 2) for k in rng.sample(keys, rng.randint(0, 2))} for _ in range(2)]
        if rng.random() < .5:
            block["params"] = {rng.choice(keys): rng.randint(0, 2)}
        if rng.random() < .5:
            block["zip"] = {k: [0, 1] for k in rng.sample(keys, 2)}
        if rng.random() < .3:
            block["seeds"] = {"param": "seed", "count": 3}
        walked = sum(1 for _ in Sweep([block], FP))
        assert block_count(block) == walked, block


def test_exclude_count_walks_with_progress_when_axes_are_too_coupled(monkeypatch):
    monkeypatch.setattr(sweep_module, "ENUMERATION_LIMIT", 10)
    monkeypatch.setattr(sweep_module, "PROGRESS_EVERY", 8)
    block = {"zip": {"a": list(range(20)), "b": list(range(20))}, "exclude": [{"a": 3}]}
    seen = []
    assert block_count(block, lambda done, total: seen.append((done, total))) == 19
    assert seen == [(8, 20), (16, 20), (20, 20)]


def test_count_by_workflow_and_repeat():
    s = Sweep([{"grid": {"a": [1, 2, 3]}, "exclude": [{"a": 2}], "repeat": 2},
               {"workflow": "w2", "grid": {"a": [1]}}], {"w1": "x", "w2": "y"})
    assert s.count_by_workflow() == {"w1": 4, "w2": 5} and s.count() == len(list(s)) == 9


def test_block_targets_every_workflow_by_default():
    jobs = list(Sweep([{"grid": {"a": [1]}}], {"w1": "a", "w2": "b"}))
    assert [j.workflow for j in jobs] == ["w1", "w2"]


def test_param_sets_cover_cases_shapes():
    s = Sweep([{"params": {"p": 1}, "cases": [{"a": 1}, {"b": 2}], "seeds": {"param": "seed", "count": 1}}], FP)
    assert list(s.param_sets()) == [("w", ["a", "p", "seed"]), ("w", ["b", "p", "seed"])]
