"""Expand sweep blocks into jobs, lazily, each with a deterministic id.

A block is a product of axes (each grid key, the zipped lists, the cases, the
random samples, the seeds, the repeats). A job is addressed by its index in
that product (mixed radix), so a million-job sweep costs no memory, the count
is arithmetic, and the same manifest always yields the same jobs in the same
order with the same ids: that is what makes resuming possible.

``exclude`` rules are counted without walking the product where they allow it
(see ``block_count``): a rule fixes a few parameters, so only the axes that set
those parameters need enumerating; the rest multiply.

A job's position in the sweep (``Job.seq``) names the same job for as long as the
sweep's ``signature`` stays the same, so a resume can skip the jobs the store knows
completed by position, without making their parameters or ids (``iter_skipping``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

Axis = tuple[int, Callable[[int], dict[str, Any]]]
#: called as ``on_progress(done, total)`` while a count has to walk the combinations
CountProgress = Callable[[int, int], None]
#: enumerate at most this many combinations of coupled axes before walking the whole product instead
ENUMERATION_LIMIT = 2_000_000
PROGRESS_EVERY = 1 << 16
#: part of every sweep's signature: change it whenever a change of this module could give a position another job
#: (the order of the jobs, how parameters are made, how ids are computed)
POSITIONS_VERSION = "positions/1"


@dataclass(frozen=True)
class Job:
    """One workflow run: which workflow, with which parameters."""

    id: str
    workflow: str
    params: Mapping[str, Any]
    repeat: int = 0
    seq: int = 0  # position in the sweep (the same job's under the same ``Sweep.signature``), also the index's sweep order


def compact_json(*, sort_keys: bool) -> Callable[[Any], str]:
    """``json.dumps(value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False, default=str)``, the
    same output byte for byte, with its encoder made once: ``json.dumps`` builds a ``JSONEncoder`` per call,
    which builds a C encoder per call, about 1 us of a 2 us job id.
    """
    plain = json.JSONEncoder(sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False, default=str)
    return _c_encoder(plain, sort_keys) or plain.encode


def _c_encoder(plain: json.JSONEncoder, sort_keys: bool) -> Callable[[Any], str] | None:
    """The C encoder ``plain`` would make at each call, made once; None when this Python has none, or
    calls it otherwise. It does not look for a value that contains itself (one recurses until
    ``RecursionError`` instead of raising ``ValueError``)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        chunks = make(None, str, json.encoder.encode_basestring, None, ":", ",", sort_keys, False, True)

        def encode(value: Any) -> str:
            if isinstance(value, str):
                return plain.encode(value)
            return "".join(chunks(value, 0))

        sample = {"b": [1.5, None, True, "\u00e9\n"], "a": {"c": 10**20}}
        return encode if encode(sample) == plain.encode(sample) else None
    except TypeError:
        return None


canonical = compact_json(sort_keys=True)


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


def axis_labels(block: Mapping[str, Any]) -> list[tuple[str, frozenset[str]]]:
    """(label, parameter names it sets) for each axis of ``block_axes``, in the same order."""
    out = [(f"grid.{k}", frozenset({k})) for k in block.get("grid") or {}]
    if block.get("zip"):
        out.append(("zip(" + ", ".join(block["zip"]) + ")", frozenset(block["zip"])))
    if block.get("cases"):
        out.append(("cases", frozenset().union(*(set(c) for c in block["cases"]))))
    if block.get("random"):
        out.append(("random(" + ", ".join(sorted(block["random"]["params"])) + ")", frozenset(block["random"]["params"])))
    if block.get("seeds"):
        out.append((f"seeds.{block['seeds']['param']}", frozenset({block["seeds"]["param"]})))
    return out


def _list_axis(name: str, values: list[Any]) -> Axis:
    return len(values), lambda i: {name: values[i]}


def _zip_axis(zipped: Mapping[str, list[Any]]) -> Axis:
    return len(next(iter(zipped.values()))), lambda i: {k: v[i] for k, v in zipped.items()}


def _cases_axis(cases: list[Mapping[str, Any]]) -> Axis:
    return len(cases), lambda i: dict(cases[i])


def _seeds_axis(seeds: Mapping[str, Any]) -> Axis:
    param = seeds["param"]
    if seeds.get("values"):
        return _list_axis(param, seeds["values"])
    base = seeds.get("base", 0)
    return seeds["count"], lambda i: {param: base + i}


def block_axes(block: Mapping[str, Any]) -> list[Axis]:
    """The axes of one block, slowest-varying first: grid keys, zip, cases, random, seeds."""
    axes = [_list_axis(key, values) for key, values in (block.get("grid") or {}).items()]
    if block.get("zip"):
        axes.append(_zip_axis(block["zip"]))
    if block.get("cases"):
        axes.append(_cases_axis(block["cases"]))
    if block.get("random"):
        axes.append(_random_axis(block["random"]))
    if block.get("seeds"):
        axes.append(_seeds_axis(block["seeds"]))
    return axes


def _excluded(params: Mapping[str, Any], rules: list[Mapping[str, Any]]) -> bool:
    return any(all(k in params and params[k] == v for k, v in rule.items()) for rule in rules)


def _digits(block: Mapping[str, Any]) -> tuple[Iterator[tuple[int, ...]], Callable[[tuple[int, ...]], dict[str, Any]]]:
    """Every combination of one block as its axes' digits, in sweep order (the last axis varies fastest),
    and how to make a combination's parameters: apart, so a walk can step over a combination for free."""
    axes = block_axes(block)
    fixed = dict(block.get("params") or {})
    gets = [get for _, get in axes]

    def params_of(digits: tuple[int, ...]) -> dict[str, Any]:
        params = dict(fixed)
        for get, d in zip(gets, digits, strict=True):
            params.update(get(d))
        return params

    return itertools.product(*(range(n) for n, _ in axes)), params_of


def _combinations(block: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The parameters of every combination of one block, in sweep order, before ``exclude``."""
    digits, params_of = _digits(block)
    return map(params_of, digits)


def _groups(block: Mapping[str, Any], rule_keys: set[str]) -> list[list[int]]:
    """Axes that set a ruled parameter, grouped so that axes setting the same parameter are together."""
    labels = axis_labels(block)
    groups: list[tuple[set[str], list[int]]] = []
    for i, (_, keys) in enumerate(labels):
        mine = set(keys) & rule_keys
        if not mine:
            continue
        joined = [g for g in groups if g[0] & mine]
        merged = (mine.union(*(g[0] for g in joined)), sorted([i, *(j for g in joined for j in g[1])]))
        groups = [g for g in groups if g not in joined] + [merged]
    return [g[1] for g in groups]


def _group_masks(block: Mapping[str, Any], group: list[int], rules: list[Mapping[str, Any]], keys: set[str]) -> Counter[int]:
    """How many combinations of the group's axes leave each set of rules (a bit mask) still matching."""
    axes = block_axes(block)
    fixed = {k: v for k, v in (block.get("params") or {}).items() if k in keys}
    wanted = [{k: v for k, v in r.items() if k in keys} for r in rules]
    masks: Counter[int] = Counter()
    for digits in itertools.product(*(range(axes[a][0]) for a in group)):
        values = dict(fixed)
        for a, d in zip(group, digits, strict=True):
            values.update(axes[a][1](d))
        mask = 0
        for bit, rule in enumerate(wanted):
            if all(k in values and values[k] == v for k, v in rule.items()):
                mask |= 1 << bit
        masks[mask] += 1
    return masks


def _count_arithmetic(block: Mapping[str, Any], rules: list[Mapping[str, Any]]) -> int | None:
    """Combinations left after ``rules``, or None when the coupled axes are too many to enumerate.

    A combination is dropped when some rule matches in every group of axes; the count of
    combinations where no rule survives all groups is a product over groups of rule masks
    (inclusion-exclusion done by the masks, so overlapping rules are counted once).
    """
    sizes = [n for n, _ in block_axes(block)]
    fixed = block.get("params") or {}
    settable = set(fixed).union(*(k for _, k in axis_labels(block)))
    axis_keys = set().union(*(k for _, k in axis_labels(block)))
    # a rule naming a parameter nothing sets never matches; one whose fixed-only values differ neither
    live = [r for r in rules if set(r) <= settable
            and all(fixed[k] == v for k, v in r.items() if k not in axis_keys)]
    if not live:
        return math.prod(sizes)
    groups = _groups(block, set().union(*(set(r) for r in live)))
    if any(math.prod(sizes[a] for a in g) > ENUMERATION_LIMIT for g in groups):
        return None
    outside = math.prod(n for i, n in enumerate(sizes) if not any(i in g for g in groups))
    dist: Counter[int] = Counter({(1 << len(live)) - 1: 1})
    for group in groups:
        keys = set().union(*(axis_labels(block)[a][1] for a in group))
        masks = _group_masks(block, group, live, keys)
        if len(dist) * len(masks) > ENUMERATION_LIMIT:
            return None
        nxt: Counter[int] = Counter()
        for m1, c1 in dist.items():
            for m2, c2 in masks.items():
                nxt[m1 & m2] += c1 * c2
        dist = nxt
    return dist[0] * outside


def block_count(block: Mapping[str, Any], on_progress: CountProgress | None = None) -> int:
    """Combinations of one block after ``exclude``, for one workflow and one repeat.

    Arithmetic where the rules allow; otherwise the combinations are walked, with
    ``on_progress(done, total)`` called every few tens of thousands.
    """
    rules = list(block.get("exclude") or [])
    total = math.prod(n for n, _ in block_axes(block))
    if not rules or not total:
        return total
    counted = _count_arithmetic(block, rules)
    if counted is not None:
        return counted
    kept = 0
    for done, params in enumerate(_combinations(block), 1):
        kept += not _excluded(params, rules)
        if on_progress is not None and done % PROGRESS_EVERY == 0:
            on_progress(done, total)
    if on_progress is not None:
        on_progress(total, total)
    return kept


class Sweep:
    """All jobs of a manifest's sweep blocks, for the given workflows (name -> fingerprint)."""

    def __init__(self, blocks: list[Mapping[str, Any]], fingerprints: Mapping[str, str]) -> None:
        self.blocks = blocks
        self.fingerprints = dict(fingerprints)

    def targets(self, block: Mapping[str, Any]) -> list[str]:
        """The workflows a block runs (every workflow when it names none)."""
        w = block.get("workflow")
        if w is None:
            return list(self.fingerprints)
        return [w] if isinstance(w, str) else list(w)

    def upper_bound(self) -> int:
        """Job count before ``exclude`` rules: arithmetic, instant for any size."""
        total = 0
        for block in self.blocks:
            size = math.prod(n for n, _ in block_axes(block)) * block.get("repeat", 1)
            total += size * len(self.targets(block))
        return total

    def count_by_workflow(self, on_progress: CountProgress | None = None) -> dict[str, int]:
        """Exact job count per workflow (arithmetic where the exclude rules allow, see ``block_count``)."""
        out = dict.fromkeys(self.fingerprints, 0)
        for block in self.blocks:
            n = block_count(block, on_progress) * block.get("repeat", 1)
            for wf in self.targets(block):
                out[wf] = out.get(wf, 0) + n
        return out

    def count(self, on_progress: CountProgress | None = None) -> int:
        """Exact job count."""
        return sum(self.count_by_workflow(on_progress).values())

    def param_sets(self) -> Iterator[tuple[str, list[str]]]:
        """(workflow, parameter names) for every shape of job a block produces, for validation."""
        for block in self.blocks:
            fixed = set(block.get("params") or {})
            axes_keys = set(block.get("grid") or {}) | set(block.get("zip") or {})
            axes_keys |= set((block.get("random") or {}).get("params") or {})
            if block.get("seeds"):
                axes_keys.add(block["seeds"]["param"])
            shapes = [set(c) for c in block.get("cases") or [{}]]
            for wf in self.targets(block):
                for shape in shapes:
                    yield wf, sorted(fixed | axes_keys | shape)

    @functools.cached_property
    def signature(self) -> str:
        """Names what decides which job sits at each position: the blocks and the workflows, in order.

        The same manifest sweep gives the same signature, so the same positions (``Job.seq``) name
        the same jobs; anything that could move a job changes it (a value added, removed or
        reordered, axes reordered, a workflow changed). ``repr`` keeps every type apart (1, 1.0,
        True, "1") and the order of dict keys; a value whose repr changes between runs (an object
        shown by its address) only makes every signature new, which costs a slow resume, never a
        wrong skip. Random samples come from Python's ``random``, whose methods may change between
        Python versions: a sweep with samples names its Python version too.
        """
        sampled = any(block.get("random") for block in self.blocks)
        python = "{}.{}".format(*sys.version_info[:2]) if sampled else ""
        text = "\n".join([POSITIONS_VERSION, python, repr(self.blocks), repr(list(self.fingerprints.items()))])
        return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()[:20]

    def __iter__(self) -> Iterator[Job]:
        return cast(Iterator[Job], self._jobs(b""))  # nothing settled: every position is a Job

    def iter_skipping(self, settled: bytes | bytearray) -> Iterator[Job | int]:
        """The jobs of ``iter(sweep)``, except at each position ``seq`` where ``settled[seq]`` is not 0
        (positions past its end are not settled): there, an int ``k`` stands for ``k`` settled
        positions in a row. A settled position costs no id, and no parameters unless an ``exclude``
        rule needs them to know whether the combination is a job at all; a run of them is a few
        steps, whatever its length."""
        return self._jobs(settled)

    def _jobs(self, settled: bytes | bytearray) -> Iterator[Job | int]:
        seq = 0
        for block in self.blocks:
            for wf in self.targets(block):
                seq = yield from _block_jobs(block, wf, self.fingerprints[wf], seq, settled)


def _block_jobs(block: Mapping[str, Any], wf: str, fp: str, seq: int,
                settled: bytes | bytearray) -> Generator[Job | int, None, int]:
    """One block's jobs for one workflow from position ``seq`` (see ``iter_skipping``); returns the next position."""
    repeat = block.get("repeat", 1)
    rules = block.get("exclude") or []
    known = len(settled)
    digits, params_of = _digits(block)
    left = math.prod(n for n, _ in block_axes(block))  # combinations not taken from ``digits`` yet
    for d in digits:
        left -= 1
        if not rules and seq < known and settled[seq]:
            whole = min(_run(settled, seq) // repeat, left + 1)  # combinations with every repeat settled
            if whole:
                next(itertools.islice(digits, whole - 1, whole - 1), None)  # step over the others (in C)
                left -= whole - 1
                yield whole * repeat
                seq += whole * repeat
                continue
        params = params_of(d)
        if rules and _excluded(params, rules):
            continue
        for r in range(repeat):
            yield 1 if seq < known and settled[seq] else Job(job_id(fp, params, r), wf, params, r, seq)
            seq += 1
    return seq


def _run(settled: bytes | bytearray, seq: int) -> int:
    """How many positions from ``seq`` on are settled, in a row."""
    end = settled.find(0, seq)
    return (len(settled) if end < 0 else end) - seq
