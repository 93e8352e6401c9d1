import itertools
import time

from comfykit_batch.batch.sweep import Sweep, job_id

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


def test_million_jobs_are_lazy():
    block = {"grid": {"a": list(range(1000)), "b": list(range(1000))}}
    t = time.monotonic()
    s = Sweep([block], FP)
    assert s.count() == 1_000_000
    first = list(itertools.islice(s, 3))
    assert [dict(j.params) for j in first] == [{"a": 0, "b": 0}, {"a": 0, "b": 1}, {"a": 0, "b": 2}]
    assert time.monotonic() - t < 5  # generous: only guards against materialising the product


def test_block_targets_every_workflow_by_default():
    jobs = list(Sweep([{"grid": {"a": [1]}}], {"w1": "a", "w2": "b"}))
    assert [j.workflow for j in jobs] == ["w1", "w2"]


def test_param_sets_cover_cases_shapes():
    s = Sweep([{"params": {"p": 1}, "cases": [{"a": 1}, {"b": 2}], "seeds": {"param": "seed", "count": 1}}], FP)
    assert list(s.param_sets()) == [("w", ["a", "p", "seed"]), ("w", ["b", "p", "seed"])]
