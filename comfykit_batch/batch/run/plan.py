"""The dry-run plan: what a run of this manifest would do, without submitting anything.

A user about to start a long batch wants more than a count: how the jobs split
over workflows and backends, which axes multiply to that count, what the first
jobs look like, what a re-run would skip, and a warning when the sweep is much
larger than they probably meant. Everything here is computed from the manifest,
the sweep and (when one exists) the output folder's store; counts use the
sweep's arithmetic, so a plan for ten million jobs is instant unless ``exclude``
rules couple too many axes (then ``on_progress`` reports the walk).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..spec.inputs import InputSet
from ..spec.manifest import Manifest
from ..spec.sweep import CountProgress, Job, Sweep, block_count
from ..store.store import COMPLETED, DB, FAILED, INDEX, JOURNAL, NEW, TRANSIENT, ResultStore
from .keys import KeyOf
from .model_plan import ModelPlan, model_plan
from .selection import Selection

#: past this many jobs the plan warns, with the estimated size of the run
LARGE_SWEEP = 100_000
#: bytes one index record takes when no earlier run says better (measured on the shipped example)
RECORD_BYTES = 700
SAMPLE_RECORDS = 200


class StoreView(Protocol):
    """What the plan reads from an output folder's ``ResultStore``: the resume's own walk, and sample records.

    ``walk`` may give None for the job of a ``COMPLETED`` state (a whole sweep walked by position: the
    store knew that job completed without making it); ``records`` is read for samples only then.
    """

    def __len__(self) -> int: ...
    def walk(self, jobs: Iterable[Job]) -> Iterator[tuple[Job | None, str]]: ...
    def get(self, job_id: str) -> dict[str, Any] | None: ...
    def records(self) -> Iterator[dict[str, Any]]: ...


@dataclass
class BlockPlan:
    """One sweep block: its axes (label, size), and how many combinations ``exclude`` leaves."""

    index: int
    workflows: list[str]
    axes: list[tuple[str, int]]
    fixed: list[str]
    combinations: int
    kept: int
    rules: int
    repeat: int

    @property
    def jobs(self) -> int:
        return self.kept * self.repeat * len(self.workflows)

    def line(self) -> str:
        product = " x ".join(f"{label} {n}" for label, n in self.axes) or "no axes"
        text = f"sweep[{self.index}] -> {', '.join(self.workflows)}: {product}"
        if self.rules or self.repeat != 1 or len(self.workflows) != 1:
            text += f" = {self.combinations:,}"
        if self.rules:
            text += f"; exclude ({self.rules} rule{'s' if self.rules != 1 else ''}) removes {self.combinations - self.kept:,}"
        if self.repeat != 1:
            text += f"; x repeat {self.repeat}"
        if len(self.workflows) != 1:
            text += f"; x {len(self.workflows)} workflows"
        text += f" = {self.jobs:,} job{'s' if self.jobs != 1 else ''}"
        return text + (f" (fixed: {', '.join(self.fixed)})" if self.fixed else "")


@dataclass
class Rerun:
    """What a re-run into the existing output folder would do with the selected jobs."""

    completed: int = 0  # skipped: done, files still there
    failed: int = 0  # failed in an earlier run
    transient: int = 0  # of those, failures that may pass on a retry (run again by default)
    missing_files: int = 0  # recorded completed, but a file is gone: runs again
    new: int = 0
    not_in_sweep: int | None = None  # recorded jobs this manifest no longer produces
    bytes_per_job: float | None = None  # output files, from the completed jobs sampled
    record_bytes: float | None = None


@dataclass
class Plan:
    """What a run would do, without submitting anything; ``lines`` is what the command line prints.

    ``session.plan`` (the dry run) and ``build_plan`` both give this: one description of a run.
    """

    name: str
    output: str | Path  # where the results go: a folder, or the URL of a remote one
    total: int
    upper_bound: int
    per_workflow: dict[str, int]
    per_backend: dict[str, dict[str, int]]  # backend -> workflow -> estimated jobs
    concurrency: dict[str, int]
    blocks: list[BlockPlan]
    first_jobs: list[Job]
    rerun: Rerun | None = None
    selection: Selection = field(default_factory=Selection)
    warnings: list[str] = field(default_factory=list)
    folded: int = 0  # jobs the sweep folded into an earlier job with their id (not in ``total``)
    folded_values: list[tuple[str, int]] = field(default_factory=list)  # repeated values left out at load, by key path
    models: ModelPlan | None = None  # the jobs' model keys and planned loads (None: no job loads a model file)
    input_sets: list[InputSet] = field(default_factory=list)  # each ``{from: "photos/*.jpg"}``: its count and first names

    @property
    def backends(self) -> list[str]:
        """The manifest's backends, in its order."""
        return list(self.concurrency)

    @property
    def lines(self) -> list[str]:
        s = "s" if self.total != 1 else ""
        head = f"{self.name}: {self.total:,} job{s}"
        label = self.selection.label()
        if self.upper_bound != self.total + self.folded and self.selection.whole:
            head += f" ({self.upper_bound:,} before exclude)"
        out = [head + (f" {label}" if label else "") + f"; output {self.output}"]
        out += [f"  workflow {wf}: {n:,} job{'s' if n != 1 else ''}" for wf, n in self.per_workflow.items()]
        out += self._backend_lines()
        out += self.models.lines() if self.models is not None else []
        out += ["  " + b.line() for b in self.blocks]
        out += ["  " + s.line() for s in self.input_sets]
        folded = fold_note(self.folded_values, self.folded)
        out += [f"  {folded}"] if folded else []
        out += _first_lines(self.first_jobs)
        if self.rerun is not None:
            out += _rerun_lines(self.rerun, self.selection.retry_failed)
        return out + [f"warning: {w}" for w in self.warnings]

    def _backend_lines(self) -> list[str]:
        out = []
        for name, by_wf in self.per_backend.items():
            n = sum(by_wf.values())
            detail = ", ".join(f"{wf} {k:,}" for wf, k in by_wf.items() if k) or "no workflow may run here"
            out.append(f"  backend {name} (concurrency {self.concurrency[name]}): ~{n:,} job{'s' if n != 1 else ''} ({detail})")
        return out


def _first_lines(first: Sequence[Job]) -> list[str]:
    if not first:
        return []
    out = [f"  first {len(first)} job{'s' if len(first) != 1 else ''}:"]
    return out + [f"    {j.id}  {j.workflow}  {json.dumps(dict(j.params), ensure_ascii=False, default=str)}"
                  + (f"  repeat {j.repeat}" if j.repeat else "") for j in first]


def _rerun_lines(r: Rerun, retry_failed: bool) -> list[str]:
    """What a re-run skips and runs; with ``--retry-failed`` every earlier failure runs again."""
    again = r.failed if retry_failed else r.transient
    parts = [f"{r.completed:,} completed (skipped)", f"{r.new + r.missing_files + again:,} to run"]
    if r.failed and retry_failed:
        parts.insert(1, f"{r.failed:,} failed earlier (run again: --retry-failed)")
    elif r.failed:
        parts.insert(1, f"{r.failed:,} failed earlier ({r.transient:,} transient, run again; "
                        f"{r.failed - r.transient:,} skipped unless --retry-failed)")
    if r.missing_files:
        parts.append(f"{r.missing_files:,} of them because a recorded file is gone")
    out = ["  re-run into the existing output: " + ", ".join(parts)]
    if r.not_in_sweep:
        out.append(f"  {r.not_in_sweep:,} recorded job(s) are no longer in this sweep (their records are kept)")
    return out


# -- pieces -----------------------------------------------------------------------------------------
def fold_note(values: Sequence[tuple[str, int]], jobs: int) -> str | None:
    """The line saying which repeats were folded (one distinct combination is one job); None when none were."""
    parts = [f"{where}: {n} repeated value{'s' if n != 1 else ''}" for where, n in values]
    if jobs:
        parts.append(f"{jobs:,} job{'s' if jobs != 1 else ''} with the parameters of an earlier job")
    return "folded duplicates (each distinct combination runs once): " + "; ".join(parts) if parts else None


def _block_plans(sweep: Sweep, on_progress: CountProgress | None) -> list[BlockPlan]:
    out = []
    for i, block in enumerate(sweep.blocks):
        out.append(BlockPlan(
            index=i, workflows=sweep.targets(block), axes=[(axis.label, axis.size) for axis in block.axes],
            fixed=sorted(block.fixed), combinations=block.size, kept=block_count(block, on_progress),
            rules=len(block.rules), repeat=block.repeat,
        ))
    return out


def _round_shares(shares: Mapping[str, float], n: int) -> dict[str, int]:
    """Whole jobs from fractional shares, keeping the sum (largest remainders first)."""
    floors = {b: math.floor(x) for b, x in shares.items()}
    left = n - sum(floors.values())
    for b in sorted(shares, key=lambda b: floors[b] - shares[b])[:max(left, 0)]:
        floors[b] += 1
    return floors


def spread(counts: Mapping[str, int], allowed: Mapping[str, Sequence[str]], concurrency: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Estimated jobs per backend and workflow if every job took as long.

    The runner gives the next job to the least-loaded backend that may run it, so
    backends finish together: each workflow's jobs fill its backends up to a common
    level of jobs per slot, the most restricted workflows first.
    """
    load = dict.fromkeys(concurrency, 0.0)
    out: dict[str, dict[str, int]] = {b: {} for b in concurrency}
    for wf in sorted(counts, key=lambda w: len(allowed[w])):
        n, names = counts[wf], [b for b in allowed[wf] if b in concurrency]
        if not names or not n:
            continue
        lo, hi = 0.0, max((load[b] + n) / concurrency[b] for b in names)
        for _ in range(60):  # the level where the slots below it hold exactly n jobs
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if sum(max(0.0, mid * concurrency[b] - load[b]) for b in names) < n else (lo, mid)
        whole = _round_shares({b: max(0.0, hi * concurrency[b] - load[b]) for b in names}, n)
        for b, k in whole.items():
            load[b] += k
            out[b][wf] = k
    return out


def _count_selected(jobs: Iterable[Job], on_progress: CountProgress | None) -> tuple[dict[str, int], list[Job]]:
    counts: dict[str, int] = {}
    kept: list[Job] = []
    for n, job in enumerate(jobs, 1):
        counts[job.workflow] = counts.get(job.workflow, 0) + 1
        if len(kept) < SAMPLE_RECORDS:
            kept.append(job)
        if on_progress is not None and n % 65536 == 0:
            on_progress(n, 0)
    return counts, kept


def _file_bytes(record: Mapping[str, Any]) -> int:
    return sum(int(f.get("size") or 0) for f in record.get("files") or [])


def rerun_counts(jobs: Iterable[Job], store: StoreView, on_progress: CountProgress | None = None, *,
                 whole_sweep: bool = True) -> Rerun:
    """Walk the selected jobs against the store: what would be skipped, re-tried, or run for the first time."""
    r = Rerun()
    seen = 0
    samples: dict[str, dict[str, Any]] = {}  # completed records, by id
    by_position = 0  # completed jobs the walk knew by their position: they come without their job
    for n, (job, state) in enumerate(store.walk(jobs), 1):  # the states a resume sees, read as it reads them
        if state == NEW:
            r.new += 1
            continue
        seen += 1
        if state in (FAILED, TRANSIENT):
            r.failed += 1
            r.transient += state == TRANSIENT
        elif state == COMPLETED:
            r.completed += 1
            if job is None:
                by_position += 1
            elif len(samples) < SAMPLE_RECORDS and (rec := store.get(job.id)) is not None:
                samples[job.id] = rec
        else:
            r.missing_files += 1
        if on_progress is not None and n % 65536 == 0:
            on_progress(n, 0)
    if by_position and len(samples) < SAMPLE_RECORDS:
        _sample_records(store, samples)
    r.not_in_sweep = len(store) - seen if whole_sweep else None
    if samples:
        r.bytes_per_job = sum(_file_bytes(rec) for rec in samples.values()) / len(samples)
        r.record_bytes = sum(len(json.dumps(rec, ensure_ascii=False, default=str)) for rec in samples.values()) / len(samples)
    return r


def _sample_records(store: StoreView, samples: dict[str, dict[str, Any]]) -> None:
    """Add the first completed records of the index to ``samples``, up to ``SAMPLE_RECORDS``."""
    for rec in store.records():
        if len(samples) >= SAMPLE_RECORDS:
            return
        if rec.get("status") == "completed":
            samples.setdefault(str(rec.get("id")), rec)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


def size_warning(total: int, rerun: Rerun | None) -> str | None:
    """A warning for a sweep past ``LARGE_SWEEP`` jobs, with its estimated index and output size."""
    if total <= LARGE_SWEEP:
        return None
    record = (rerun.record_bytes if rerun and rerun.record_bytes else RECORD_BYTES) * total
    text = f"{total:,} jobs (over {LARGE_SWEEP:,}): the index alone will be ~{_human(record)}"
    if rerun and rerun.bytes_per_job:
        text += f", the outputs ~{_human(rerun.bytes_per_job * total)} ({_human(rerun.bytes_per_job)} per job so far)"
    else:
        text += "; output size unknown until some jobs ran (try --limit 10 first)"
    return text + "; check the axes above if that is more than you meant"


# -- the plan -------------------------------------------------------------------------------------------
def build_plan(
    manifest: Manifest,
    sweep: Sweep,
    *,
    selection: Selection | None = None,
    store: StoreView | None = None,
    jobs: int | None = None,
    show: int = 5,
    on_progress: CountProgress | None = None,
    key_of: KeyOf | None = None,
    schedule: str | None = None,
) -> Plan:
    """Describe a run of ``manifest`` over ``sweep``: counts, spread, axes, first jobs, re-run, warnings.

    ``selection`` picks jobs as the run would (``--only``, ``--shard``, ``--limit``, ``--retry-failed``);
    ``jobs`` overrides every backend's concurrency (``--jobs``); ``store`` is the output folder's open
    store, if one exists (see ``open_existing_store``). ``on_progress(done, total)`` is called while a
    count has to walk jobs (``total`` 0 when unknown). ``key_of`` (a job's model key) adds the model plan
    (``schedule`` overriding the manifest's).
    """
    selection = selection or Selection()
    blocks = _block_plans(sweep, on_progress)
    if selection.whole:
        per_workflow = _whole_counts(sweep, blocks)
        first = list(itertools.islice(sweep, show))
    else:
        per_workflow, kept = _count_selected(selection.jobs(sweep), on_progress)
        first = kept[:show]
    total = sum(per_workflow.values())
    concurrency = {b.name: jobs or b.concurrency for b in manifest.backends}
    allowed = {w.name: w.backends or list(concurrency) for w in manifest.workflows}
    per_workflow = {wf: n for wf, n in per_workflow.items() if wf in allowed}
    rerun = None
    if store is not None and len(store):
        rerun = rerun_counts(selection.jobs(sweep), store, on_progress, whole_sweep=selection.whole)
    warning = size_warning(total, rerun)
    return Plan(
        name=manifest.name, output=manifest.destination, total=total, upper_bound=sweep.upper_bound(),
        per_workflow=per_workflow, per_backend=spread(per_workflow, allowed, concurrency), concurrency=concurrency,
        blocks=blocks, first_jobs=first, rerun=rerun, selection=selection,
        warnings=[warning] if warning else [], folded=sweep.folds.count, folded_values=list(manifest.folded),
        models=model_plan(selection.jobs(sweep), key_of, {b.name: b.model_slots for b in manifest.backends},
                          schedule or manifest.schedule),
        input_sets=list(manifest.input_sets),
    )


def _whole_counts(sweep: Sweep, blocks: Sequence[BlockPlan]) -> dict[str, int]:
    """Jobs per workflow of the whole sweep, from the blocks' counts (a walked count is not walked twice)."""
    per_workflow = dict.fromkeys(sweep.fingerprints, 0)
    for b in blocks:
        for wf in b.workflows:
            per_workflow[wf] = per_workflow.get(wf, 0) + b.kept * b.repeat
    for wf, n in sweep.folds.by_workflow.items():
        per_workflow[wf] -= n
    return per_workflow


def open_existing_store(manifest: Manifest) -> ResultStore | None:
    """The output folder's store when an earlier run left one (index or journal), else None: a dry run creates nothing."""
    if not any((manifest.output / name).exists() for name in (INDEX, JOURNAL, DB)):
        return None
    return ResultStore(manifest.output, manifest.name).open()
