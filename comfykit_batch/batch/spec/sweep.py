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

One distinct combination is one job: a sweep made with ``fold=True`` gives no job at a
position whose id an earlier position already gave (two blocks or two cases making the same
parameters). Whether that can happen at all is decided from the blocks' values, without
walking (``may_repeat``); only a sweep where it can is walked once ahead, to find those
positions (``Sweep.folds``). Every other position keeps its job and its id.
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
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

Axis = tuple[int, Callable[[int], dict[str, Any]]]
#: called as ``on_progress(done, total)`` while a count has to walk the combinations
CountProgress = Callable[[int, int], None]
#: enumerate at most this many combinations of coupled axes before walking the whole product instead
ENUMERATION_LIMIT = 2_000_000
PROGRESS_EVERY = 1 << 16
#: part of every sweep's signature: change it whenever a change of this module could give a position another job
#: (the order of the jobs, how parameters are made, how ids are computed)
POSITIONS_VERSION = "positions/1"
T = TypeVar("T")


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


def distinct(items: Iterable[T]) -> list[T]:
    """``items`` with each repeat left out (the first kept): two items are one when their canonical JSON is,
    as their share of a job id is."""
    seen: set[str] = set()
    out: list[T] = []
    for item in items:
        key = canonical(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _int_range(p: Mapping[str, Any]) -> bool:
    """A random parameter's ``range`` draws integers: both ends are, unless ``type: float`` says otherwise."""
    lo, hi = p["range"]
    return p.get("type", "int" if isinstance(lo, int) and isinstance(hi, int) else "float") == "int"


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
                out[name] = rng.randint(int(lo), int(hi)) if _int_range(p) else rng.uniform(lo, hi)
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


# -- repeats: when two positions could make one job ------------------------------------------------
def block_shapes(block: Mapping[str, Any]) -> list[frozenset[str]]:
    """The sets of parameter names the block's jobs have: one per distinct case shape (one without cases)."""
    names = set(block.get("params") or {}).union(*(keys for label, keys in axis_labels(block) if label != "cases"))
    shapes = [frozenset(names | set(case)) for case in block.get("cases") or [{}]]
    return list(dict.fromkeys(shapes))


def _repeats(items: Iterable[Any]) -> bool:
    listed = list(items)
    return len(distinct(listed)) < len(listed)


def _random_may_repeat(spec: Mapping[str, Any] | None) -> bool:
    """Samples may coincide, unless one parameter is drawn from a float range: 53 random bits, never in practice."""
    if not spec or spec["samples"] < 2:
        return False
    return not any("range" in p and not _int_range(p) and p["range"][0] < p["range"][1] for p in spec["params"].values())


def _block_may_repeat(block: Mapping[str, Any]) -> bool:
    """Whether two combinations of one block could make the same parameters: a value repeated within an axis,
    two cases alike once the fixed values fill them, samples that may coincide, or a parameter set by two
    axes (the later hides the earlier's values)."""
    keys = [k for _, axis_keys in axis_labels(block) for k in axis_keys]
    fixed = block.get("params") or {}
    return (len(keys) != len(set(keys))
            or any(_repeats(values) for values in (block.get("grid") or {}).values())
            or _repeats(zip(*(block.get("zip") or {}).values(), strict=False))
            or _repeats({**fixed, **case} for case in block.get("cases") or [])
            or _repeats((block.get("seeds") or {}).get("values") or [])
            or _random_may_repeat(block.get("random")))


def _values_by_name(block: Mapping[str, Any]) -> dict[str, set[str] | None]:
    """Every value (canonical JSON) each parameter may take in the block; None where a range makes them too many to list."""
    out: dict[str, set[str] | None] = {}

    def add(name: str, values: Iterable[Any] | None) -> None:
        if name not in out or out[name] is not None:
            out[name] = None if values is None else (out.get(name) or set()) | {canonical(v) for v in values}

    for name, value in (block.get("params") or {}).items():
        add(name, [value])
    for name, values in itertools.chain((block.get("grid") or {}).items(), (block.get("zip") or {}).items()):
        add(name, values)
    for case in block.get("cases") or []:
        for name, value in case.items():
            add(name, [value])
    for name, p in ((block.get("random") or {}).get("params") or {}).items():
        add(name, p.get("choice"))
    if block.get("seeds"):
        add(block["seeds"]["param"], block["seeds"].get("values"))
    return out


def _may_overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two blocks could make the same parameters: a shape in common whose every parameter may take one value in both."""
    va, vb = _values_by_name(a), _values_by_name(b)
    return any(all(_meet(va[k], vb[k]) for k in shape) for shape in set(block_shapes(a)) & set(block_shapes(b)))


def _meet(x: set[str] | None, y: set[str] | None) -> bool:
    return x is None or y is None or not x.isdisjoint(y)


@dataclass(frozen=True)
class Folds:
    """Positions of a sweep whose job repeats an earlier position's id (1 in ``mask``), and how many per workflow."""

    mask: bytes | bytearray = b""
    by_workflow: Mapping[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(self.by_workflow.values())


def _unsettled(settled: bytes | bytearray, folded: bytes | bytearray) -> bytes | bytearray:
    """``settled`` without the folded positions: an earlier run may have recorded a repeat there, and its job is
    the first position's (found there, by id)."""
    if not folded or not settled:
        return settled
    out = bytearray(settled)
    pos = folded.find(1, 0, len(out))
    while pos >= 0:
        out[pos] = 0
        pos = folded.find(1, pos + 1, len(out))
    return out


class Sweep:
    """All jobs of a manifest's sweep blocks, for the given workflows (name -> fingerprint).

    With ``fold``, a position whose job has an earlier position's id gives no job (see ``folds``):
    two jobs with one id would write the same files at once, and run the same work twice.
    """

    def __init__(self, blocks: list[Mapping[str, Any]], fingerprints: Mapping[str, str], *, fold: bool = False) -> None:
        self.blocks = blocks
        self.fingerprints = dict(fingerprints)
        self.fold = fold

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
        for wf, n in self.folds.by_workflow.items():
            out[wf] -= n
        return out

    def count(self, on_progress: CountProgress | None = None) -> int:
        """Exact job count."""
        return sum(self.count_by_workflow(on_progress).values())

    def param_sets(self) -> Iterator[tuple[str, list[str]]]:
        """(workflow, parameter names) for every shape of job a block produces, for validation."""
        for block in self.blocks:
            for wf in self.targets(block):
                for shape in block_shapes(block):
                    yield wf, sorted(shape)

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

    def may_repeat(self) -> bool:
        """Whether two positions could give one id, decided from the values without walking: a block that may repeat
        itself (``_block_may_repeat``), or two runs of blocks on workflows alike (one fingerprint) that may overlap."""
        if any(_block_may_repeat(b) for b in self.blocks):
            return True
        runs = [(i, self.fingerprints[wf]) for i, b in enumerate(self.blocks) for wf in self.targets(b)]
        return any(fa == fb and (i == j or _may_overlap(self.blocks[i], self.blocks[j]))
                   for (i, fa), (j, fb) in itertools.combinations(runs, 2))

    @functools.cached_property
    def folds(self) -> Folds:
        """The positions a folding sweep gives no job (their id came earlier): none without walking when
        ``may_repeat`` says none can be; otherwise found by one walk of every id, the first time asked."""
        if not self.fold or not self.may_repeat():
            return Folds()
        mask = bytearray(self.upper_bound())
        seen: set[str] = set()
        by_workflow: dict[str, int] = {}
        for job in cast(Iterator[Job], self._jobs(b"", b"")):
            if job.id in seen:
                mask[job.seq] = 1
                by_workflow[job.workflow] = by_workflow.get(job.workflow, 0) + 1
            else:
                seen.add(job.id)
        return Folds(mask, by_workflow) if by_workflow else Folds()

    def __iter__(self) -> Iterator[Job]:
        return cast(Iterator[Job], self.iter_skipping(b""))  # nothing settled: every position is a Job

    def iter_skipping(self, settled: bytes | bytearray) -> Iterator[Job | int]:
        """The jobs of ``iter(sweep)``, except at each position ``seq`` where ``settled[seq]`` is not 0
        (positions past its end are not settled): there, an int ``k`` stands for ``k`` settled
        positions in a row. A settled position costs no id, and no parameters unless an ``exclude``
        rule needs them to know whether the combination is a job at all; a run of them is a few
        steps, whatever its length. A folded position gives nothing at all."""
        folded = self.folds.mask
        return self._jobs(_unsettled(settled, folded), folded)

    def _jobs(self, settled: bytes | bytearray, folded: bytes | bytearray) -> Iterator[Job | int]:
        seq = 0
        for block in self.blocks:
            for wf in self.targets(block):
                seq = yield from _block_jobs(block, wf, self.fingerprints[wf], seq, settled, folded)


def _block_jobs(block: Mapping[str, Any], wf: str, fp: str, seq: int, settled: bytes | bytearray,
                folded: bytes | bytearray) -> Generator[Job | int, None, int]:
    """One block's jobs for one workflow from position ``seq`` (see ``iter_skipping``); returns the next position.
    ``folded`` (empty, or one byte a position) marks the positions that give nothing."""
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
            if not (folded and folded[seq]):
                yield 1 if seq < known and settled[seq] else Job(job_id(fp, params, r), wf, params, r, seq)
            seq += 1
    return seq


def _run(settled: bytes | bytearray, seq: int) -> int:
    """How many positions from ``seq`` on are settled, in a row."""
    end = settled.find(0, seq)
    return (len(settled) if end < 0 else end) - seq
