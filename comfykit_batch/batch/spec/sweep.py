"""Expand sweep blocks into jobs, lazily, each with a deterministic id.

A block (``blocks.Block``, typed once when the manifest loads) is a product of
axes (``axes``: each kind of axis says its size and the parameters at an index),
times its repeats. A job is addressed by its index in that product (mixed radix),
so a million-job sweep costs no memory, the count is arithmetic, and the same
manifest always yields the same jobs in the same order with the same ids: that is
what makes resuming possible. This module knows no kind of axis by name.

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

A local file given to an upload parameter enters the id as its content (``sha256:<hex>``), not its path
(``Sweep(uploads=...)``, ``inputs``): editing a file makes a new job, moving a folder none. Such a sweep's
signature names the files' digests too, so a position never stands for a job whose input has changed.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import sys
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from .blocks import Block
from .ids import canonical, compact_json, distinct, job_id
from .inputs import HashCache, InputFile, contents_of, shared_cache, upload_values

__all__ = [
    "ENUMERATION_LIMIT", "POSITIONS_VERSION", "PROGRESS_EVERY", "Block", "CountProgress", "Folds", "Job", "Sweep",
    "block_count", "canonical", "compact_json", "distinct", "job_id",
]

#: called as ``on_progress(done, total)`` while a count has to walk the combinations
CountProgress = Callable[[int, int], None]
#: a job's parameters as its id sees them (upload files by content), and the input files it names
IdParams = Callable[[dict[str, Any]], tuple[dict[str, Any], tuple[dict[str, Any], ...]]]
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
    #: its local upload files: ``{"param", "path", "size", "sha256"}`` each (path relative to the manifest's folder)
    inputs: tuple[dict[str, Any], ...] = field(default=(), compare=False, repr=False)


def _excluded(params: Mapping[str, Any], rules: Iterable[Mapping[str, Any]]) -> bool:
    return any(all(k in params and params[k] == v for k, v in rule.items()) for rule in rules)


def _digits(block: Block) -> tuple[Iterator[tuple[int, ...]], Callable[[tuple[int, ...]], dict[str, Any]]]:
    """Every combination of one block as its axes' digits, in sweep order (the last axis varies fastest),
    and how to make a combination's parameters: apart, so a walk can step over a combination for free."""
    fixed = dict(block.fixed)
    gets = [axis.value for axis in block.axes]

    def params_of(digits: tuple[int, ...]) -> dict[str, Any]:
        params = dict(fixed)
        for get, d in zip(gets, digits, strict=True):
            params.update(get(d))
        return params

    return itertools.product(*(range(axis.size) for axis in block.axes)), params_of


def _combinations(block: Block) -> Iterator[dict[str, Any]]:
    """The parameters of every combination of one block, in sweep order, before ``exclude``."""
    digits, params_of = _digits(block)
    return map(params_of, digits)


def _groups(block: Block, rule_keys: set[str]) -> list[list[int]]:
    """Axes that set a ruled parameter, grouped so that axes setting the same parameter are together."""
    groups: list[tuple[set[str], list[int]]] = []
    for i, axis in enumerate(block.axes):
        mine = set(axis.names) & rule_keys
        if not mine:
            continue
        joined = [g for g in groups if g[0] & mine]
        merged = (mine.union(*(g[0] for g in joined)), sorted([i, *(j for g in joined for j in g[1])]))
        groups = [g for g in groups if g not in joined] + [merged]
    return [g[1] for g in groups]


def _group_masks(block: Block, group: list[int], rules: list[Mapping[str, Any]], keys: set[str]) -> Counter[int]:
    """How many combinations of the group's axes leave each set of rules (a bit mask) still matching."""
    axes = [block.axes[a] for a in group]
    fixed = {k: v for k, v in block.fixed.items() if k in keys}
    wanted = [{k: v for k, v in r.items() if k in keys} for r in rules]
    masks: Counter[int] = Counter()
    for digits in itertools.product(*(range(axis.size) for axis in axes)):
        values = dict(fixed)
        for axis, d in zip(axes, digits, strict=True):
            values.update(axis.value(d))
        mask = 0
        for bit, rule in enumerate(wanted):
            if all(k in values and values[k] == v for k, v in rule.items()):
                mask |= 1 << bit
        masks[mask] += 1
    return masks


def _count_arithmetic(block: Block) -> int | None:
    """Combinations left after the block's rules, or None when the coupled axes are too many to enumerate.

    A combination is dropped when some rule matches in every group of axes; the count of
    combinations where no rule survives all groups is a product over groups of rule masks
    (inclusion-exclusion done by the masks, so overlapping rules are counted once).
    """
    sizes = [axis.size for axis in block.axes]
    axis_keys = set().union(*(axis.names for axis in block.axes))
    settable = set(block.fixed) | axis_keys
    # a rule naming a parameter nothing sets never matches; one whose fixed-only values differ neither
    live = [r for r in block.rules if set(r) <= settable
            and all(block.fixed[k] == v for k, v in r.items() if k not in axis_keys)]
    if not live:
        return math.prod(sizes)
    groups = _groups(block, set().union(*(set(r) for r in live)))
    if any(math.prod(sizes[a] for a in g) > ENUMERATION_LIMIT for g in groups):
        return None
    outside = math.prod(n for i, n in enumerate(sizes) if not any(i in g for g in groups))
    dist: Counter[int] = Counter({(1 << len(live)) - 1: 1})
    for group in groups:
        keys = set().union(*(block.axes[a].names for a in group))
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
    typed = Block.of(block)
    total = typed.size
    if not typed.rules or not total:
        return total
    counted = _count_arithmetic(typed)
    if counted is not None:
        return counted
    kept = 0
    for done, params in enumerate(_combinations(typed), 1):
        kept += not _excluded(params, typed.rules)
        if on_progress is not None and done % PROGRESS_EVERY == 0:
            on_progress(done, total)
    if on_progress is not None:
        on_progress(total, total)
    return kept


# -- repeats: when two positions could make one job ------------------------------------------------
def _may_overlap(a: Block, b: Block) -> bool:
    """Whether two blocks could make the same parameters: a shape in common whose every parameter may take one value in both."""
    va, vb = a.domain(), b.domain()
    return any(all(_meet(va[k], vb[k]) for k in shape) for shape in set(a.shapes()) & set(b.shapes()))


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

    ``uploads`` (workflow -> its upload parameters) makes a local file's content, not its path, part of the
    id; ``base`` (the manifest's folder) is what the records' input paths are relative to; ``hashes`` keeps
    digests between runs (default: the user's cache folder). Without ``uploads`` ids are as they always were.
    """

    def __init__(self, blocks: Iterable[Mapping[str, Any]], fingerprints: Mapping[str, str], *, fold: bool = False,
                 uploads: Mapping[str, Iterable[str]] | None = None, base: str | Path | None = None,
                 hashes: HashCache | None = None) -> None:
        self.blocks = [Block.of(block) for block in blocks]
        self.fingerprints = dict(fingerprints)
        self.fold = fold
        self.uploads = {wf: frozenset(names) for wf, names in (uploads or {}).items() if names}
        self.base = Path(base).resolve() if base is not None else None
        self._hashes = hashes

    @functools.cached_property
    def contents(self) -> dict[str, InputFile]:
        """value -> the local file it names, for every value the blocks give an upload parameter (hashed once, cached)."""
        if not self.uploads:
            return {}
        values = (v for block in self.blocks for wf in self.targets(block)
                  for v in upload_values(block.swept(), self.uploads.get(wf, frozenset())))
        return contents_of(values, self.base, self._hashes or shared_cache())

    def _id_params(self, block: Block, wf: str) -> IdParams | None:
        """How a job of this block and workflow is keyed when it names upload files (None: by its parameters)."""
        names = sorted(self.uploads.get(wf, frozenset()).intersection(block.names))
        contents = self.contents if names else {}
        if not contents:
            return None

        def id_params(params: dict[str, Any]) -> tuple[dict[str, Any], tuple[dict[str, Any], ...]]:
            files = [(n, contents[v]) for n in names if isinstance(v := params.get(n), str) and v in contents]
            if not files:
                return params, ()
            return {**params, **{n: f"sha256:{f.sha256}" for n, f in files}}, tuple(f.record(n) for n, f in files)

        return id_params

    def targets(self, block: Mapping[str, Any]) -> list[str]:
        """The workflows a block runs (every workflow when it names none)."""
        named = Block.of(block).workflows
        return list(self.fingerprints) if named is None else list(named)

    def upper_bound(self) -> int:
        """Job count before ``exclude`` rules: arithmetic, instant for any size."""
        return sum(block.size * block.repeat * len(self.targets(block)) for block in self.blocks)

    def count_by_workflow(self, on_progress: CountProgress | None = None) -> dict[str, int]:
        """Exact job count per workflow (arithmetic where the exclude rules allow, see ``block_count``)."""
        out = dict.fromkeys(self.fingerprints, 0)
        for block in self.blocks:
            n = block_count(block, on_progress) * block.repeat
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
                for shape in block.shapes():
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
        sampled = any(block.sampled for block in self.blocks)
        python = "{}.{}".format(*sys.version_info[:2]) if sampled else ""
        written = [block.raw for block in self.blocks]
        parts = [POSITIONS_VERSION, python, repr(written), repr(list(self.fingerprints.items()))]
        if self.contents:  # an edited input file moves its job to a new id: no position may stand for the old one
            parts.append(repr(sorted((value, f.sha256) for value, f in self.contents.items())))
        text = "\n".join(parts)
        return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()[:20]

    def may_repeat(self) -> bool:
        """Whether two positions could give one id, decided from the values without walking: a block that may repeat
        itself (``Block.may_repeat``), or two runs of blocks on workflows alike (one fingerprint) that may overlap."""
        if any(b.may_repeat() for b in self.blocks):
            return True
        digests = [f.sha256 for f in self.contents.values()]
        if len(set(digests)) < len(digests):  # two paths, one content: one id
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
                seq = yield from _block_jobs(block, wf, self.fingerprints[wf], seq, settled, folded, self._id_params(block, wf))


def _block_jobs(block: Block, wf: str, fp: str, seq: int, settled: bytes | bytearray,
                folded: bytes | bytearray, id_params: IdParams | None = None) -> Generator[Job | int, None, int]:
    """One block's jobs for one workflow from position ``seq`` (see ``iter_skipping``); returns the next position.
    ``folded`` (empty, or one byte a position) marks the positions that give nothing; ``id_params`` keys a job
    by its upload files' content."""
    repeat, rules = block.repeat, block.rules
    known = len(settled)
    digits, params_of = _digits(block)
    left = block.size  # combinations not taken from ``digits`` yet
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
        keyed, inputs = id_params(params) if id_params is not None else (params, ())
        for r in range(repeat):
            if not (folded and folded[seq]):
                yield 1 if seq < known and settled[seq] else Job(job_id(fp, keyed, r), wf, params, r, seq, inputs)
            seq += 1
    return seq


def _run(settled: bytes | bytearray, seq: int) -> int:
    """How many positions from ``seq`` on are settled, in a row."""
    end = settled.find(0, seq)
    return (len(settled) if end < 0 else end) - seq
