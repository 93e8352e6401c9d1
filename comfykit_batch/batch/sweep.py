"""Expand sweep blocks into jobs, lazily, each with a deterministic id.

A block is a product of axes (each grid key, the zipped lists, the cases, the
random samples, the seeds, the repeats). A job is addressed by its index in
that product (mixed radix), so a million-job sweep costs no memory, the count
is arithmetic, and the same manifest always yields the same jobs in the same
order with the same ids: that is what makes resuming possible.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Axis = tuple[int, Callable[[int], dict[str, Any]]]


@dataclass(frozen=True)
class Job:
    """One workflow run: which workflow, with which parameters."""

    id: str
    workflow: str
    params: Mapping[str, Any]
    repeat: int = 0


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def job_id(fingerprint: str, params: Mapping[str, Any], repeat: int) -> str:
    """Same workflow content + same resolved parameters + same repeat = same id, across runs."""
    blob = f"{fingerprint}\n{canonical(params)}\n{repeat}"
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _random_axis(spec: Mapping[str, Any]) -> Axis:
    seed = spec.get("seed", 0)
    params = spec["params"]

    def sample(i: int) -> dict[str, Any]:
        rng = random.Random(f"{seed}/{i}")  # sample i does not depend on samples before it
        out: dict[str, Any] = {}
        for name in sorted(params):
            p = params[name]
            if "choice" in p:
                out[name] = rng.choice(p["choice"])
            else:
                lo, hi = p["range"]
                as_int = p.get("type", "int" if isinstance(lo, int) and isinstance(hi, int) else "float") == "int"
                out[name] = rng.randint(int(lo), int(hi)) if as_int else rng.uniform(lo, hi)
        return out

    return spec["samples"], sample


def block_axes(block: Mapping[str, Any]) -> list[Axis]:
    """The axes of one block, slowest-varying first: grid keys, zip, cases, random, seeds."""
    axes: list[Axis] = []
    for key, values in (block.get("grid") or {}).items():
        axes.append((len(values), lambda i, k=key, v=values: {k: v[i]}))
    zipped = block.get("zip") or {}
    if zipped:
        n = len(next(iter(zipped.values())))
        axes.append((n, lambda i, z=zipped: {k: v[i] for k, v in z.items()}))
    cases = block.get("cases")
    if cases:
        axes.append((len(cases), lambda i, c=cases: dict(c[i])))
    if block.get("random"):
        axes.append(_random_axis(block["random"]))
    seeds = block.get("seeds")
    if seeds:
        values = seeds.get("values")
        if values:
            axes.append((len(values), lambda i, p=seeds["param"], v=values: {p: v[i]}))
        else:
            base = seeds.get("base", 0)
            axes.append((seeds["count"], lambda i, p=seeds["param"], b=base: {p: b + i}))
    return axes


def _excluded(params: Mapping[str, Any], rules: list[Mapping[str, Any]]) -> bool:
    return any(all(k in params and params[k] == v for k, v in rule.items()) for rule in rules)


class Sweep:
    """All jobs of a manifest's sweep blocks, for the given workflows (name -> fingerprint)."""

    def __init__(self, blocks: list[Mapping[str, Any]], fingerprints: Mapping[str, str]) -> None:
        self.blocks = blocks
        self.fingerprints = dict(fingerprints)

    def _targets(self, block: Mapping[str, Any]) -> list[str]:
        w = block.get("workflow")
        if w is None:
            return list(self.fingerprints)
        return [w] if isinstance(w, str) else list(w)

    def upper_bound(self) -> int:
        """Job count before ``exclude`` rules: arithmetic, instant for any size."""
        total = 0
        for block in self.blocks:
            size = math.prod(n for n, _ in block_axes(block)) * block.get("repeat", 1)
            total += size * len(self._targets(block))
        return total

    def count(self) -> int:
        """Exact job count (walks the sweep only when exclude rules need it)."""
        if not any(b.get("exclude") for b in self.blocks):
            return self.upper_bound()
        return sum(1 for _ in self)

    def param_sets(self) -> Iterator[tuple[str, list[str]]]:
        """(workflow, parameter names) for every shape of job a block produces, for validation."""
        for block in self.blocks:
            fixed = set(block.get("params") or {})
            axes_keys = set(block.get("grid") or {}) | set(block.get("zip") or {})
            axes_keys |= set((block.get("random") or {}).get("params") or {})
            if block.get("seeds"):
                axes_keys.add(block["seeds"]["param"])
            shapes = [set(c) for c in block.get("cases") or [{}]]
            for wf in self._targets(block):
                for shape in shapes:
                    yield wf, sorted(fixed | axes_keys | shape)

    def __iter__(self) -> Iterator[Job]:
        for block in self.blocks:
            axes = block_axes(block)
            sizes = [n for n, _ in axes]
            repeat = block.get("repeat", 1)
            fixed = dict(block.get("params") or {})
            rules = block.get("exclude") or []
            for wf in self._targets(block):
                fp = self.fingerprints[wf]
                for index in range(math.prod(sizes)):
                    params = dict(fixed)
                    rest = index
                    digits = []
                    for n in reversed(sizes):
                        rest, d = divmod(rest, n)
                        digits.append(d)
                    for (_, get), d in zip(axes, reversed(digits), strict=False):
                        params.update(get(d))
                    if rules and _excluded(params, rules):
                        continue
                    for r in range(repeat):
                        yield Job(job_id(fp, params, r), wf, params, r)
