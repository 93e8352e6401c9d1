"""Job ids and the sweep's signature: ids never change (every output folder depends on them), and the
signature changes whenever a position of the sweep could name another job."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest

from comfykit_batch.batch.spec.sweep import Sweep, canonical, compact_json, job_id

FP = {"w": "f" * 64}


def test_ids_are_pinned():
    """Computed with the code as it was before ``canonical`` used a prebuilt encoder: they must never change."""
    assert job_id("f" * 64, {"a": 1, "b": "x"}, 0) == "853f4f7e4cf87607853b"
    tricky = {"prompt": "caf\u00e9 \u732b \U0001F600", "cfg": 7.5, "n": {"z": [1, 2.0, None, True], "a": {"b": 1e-7}}}
    assert job_id("abc", tricky, 2) == "358bb4fce998357d652e"
    odd = {"when": datetime.date(2024, 1, 2), "big": 10**20, "f": 0.1 + 0.2, "neg": -0.0}
    assert job_id("abc", odd, 0) == "59a9284fe81de0702c91"
    grid = Sweep([{"grid": {"a": [1, 2]}, "seeds": {"param": "s", "count": 2}}], FP)
    assert [j.id for j in grid] == ["189d47072785bdf3aeca", "f36ac50ad485fcadee3e", "c9973bd9982b53006669", "642bba1dc02d3283bebf"]
    sampled = Sweep([{"random": {"samples": 3, "seed": 5, "params": {"x": {"range": [0.0, 1.0]}, "c": {"choice": ["a", "b"]}}}}], FP)
    assert [j.id for j in sampled] == ["ef3ee970650e4062b6d1", "ff1e0d6b49ea99630019", "caca2ac1eeaec0e45027"]


class Odd:
    def __str__(self) -> str:
        return "odd \u00e9"


TRICKY = [
    {"b": 1, "a": {"d": [1, 2.5, -0.0, 1e300, 1e-300], "c": None}},
    {"text": "caf\u00e9 \u732b \U0001F600 \n\t\"\\ \u2028 \x00"},
    {"\u00e9": 1, "e": 2, "Z": 3, "_": [True, False]},
    {"obj": Odd(), "date": datetime.date(2024, 1, 2), "dec": Decimal("1.10"), "big": 2**70, "neg": -(2**70)},
    {"nested": {"x": {"y": {"z": [{"b": 2, "a": 1}]}}}},
    [1, "two", 3.0, None],
    "plain",
    0.1 + 0.2,
    {2: "int keys", 1: "sorted as numbers"},
    {"tuple": (1, 2), "float_keys": {2.5: "x", 1.5: "y"}, "bool_key": {True: 1}},
    {1: "int and str keys", "a": "cannot be sorted"},
    {"nan": float("nan"), "inf": [float("inf"), float("-inf")], "none": None, True: False},
    5, 2.5, None, True, "top-level \u00e9",
]


def _outcome(encode, value):
    try:
        return encode(value)
    except TypeError as exc:  # keys that cannot be sorted: the same error either way
        return type(exc)


@pytest.mark.parametrize("value", TRICKY)
def test_canonical_is_byte_identical_to_json_dumps(value):
    expected = _outcome(lambda v: json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str), value)
    assert _outcome(canonical, value) == expected


@pytest.mark.parametrize("value", TRICKY)
def test_the_record_encoder_is_byte_identical_to_json_dumps(value):
    expected = _outcome(lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False, default=str), value)
    assert _outcome(compact_json(sort_keys=False), value) == expected


def test_the_same_sweep_has_the_same_signature():
    a = Sweep([{"grid": {"a": [1, 2], "b": ["x"]}}], FP)
    b = Sweep([{"grid": {"a": [1, 2], "b": ["x"]}}], dict(FP))
    assert a.signature == b.signature and len(a.signature) == 20


@pytest.mark.parametrize("other", [
    Sweep([{"grid": {"a": [1, 2, 3], "b": ["x"]}}], FP),  # a value added
    Sweep([{"grid": {"a": [2, 1], "b": ["x"]}}], FP),  # values reordered
    Sweep([{"grid": {"b": ["x"], "a": [1, 2]}}], FP),  # axes reordered: the same jobs in another order
    Sweep([{"grid": {"a": [1.0, 2], "b": ["x"]}}], FP),  # 1 and 1.0 are different values
    Sweep([{"grid": {"a": [1, 2], "b": ["x"]}, "repeat": 2}], FP),
    Sweep([{"grid": {"a": [1, 2], "b": ["x"]}, "exclude": [{"a": 1}]}], FP),
    Sweep([{"grid": {"a": [1, 2], "b": ["x"]}}], {"w": "0" * 64}),  # the workflow changed
    Sweep([{"grid": {"a": [1, 2], "b": ["x"]}}], {**FP, "v": "e" * 64}),  # a workflow added
    Sweep([{"grid": {"a": [1, 2], "b": ["x"]}}, {"grid": {"a": [3]}}], FP),  # a block added
])
def test_a_changed_sweep_has_another_signature(other):
    assert other.signature != Sweep([{"grid": {"a": [1, 2], "b": ["x"]}}], FP).signature


def test_the_order_of_workflows_is_part_of_the_signature():
    """A block naming no workflow runs every workflow in the manifest's order: that order places the jobs."""
    a = Sweep([{"grid": {"a": [1]}}], {"w": "1" * 64, "v": "2" * 64})
    b = Sweep([{"grid": {"a": [1]}}], {"v": "2" * 64, "w": "1" * 64})
    assert [j.id for j in a] != [j.id for j in b] and a.signature != b.signature
