"""The batch session: everything between a manifest and a finished output folder.

``run_manifest`` loads the workflows, checks every swept name and value, opens
the store, refuses to mix results of a changed workflow, starts and checks the
backends, runs the runner over the jobs that still need running, and returns a
``Summary``; ``plan`` does the checks and describes the run without submitting.
The sweep is walked once per run. The CLI only parses arguments, calls these,
and prints; notices (phases, warnings) reach it through ``on_notice``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ...defaults import TIMINGS, Timings
from ...errors import BackendError, ComfyKitError, ManifestError, MissingNodesError, ParameterError, StorageError, UsageError
from ...executors.base import Executor
from ...report.thumb_lane import ThumbLane
from ...sources import resolve_workflow
from ...uploads import redact_urls_in_text
from ...workflow import Workflow
from ..spec.inputs import upload_names
from ..spec.manifest import Manifest, check_report, load_manifest
from ..spec.shard import Shard
from ..spec.sweep import Job, Sweep
from ..store.run_state import end_run_state, write_run_state
from ..store.store import COMPLETED, FAILED, NEW, ResultStore
from .backend import Backend
from .checks import check_backends, check_sweep_names, check_sweep_values, refuse_changed_workflows
from .connect import build_executor
from .keys import KeyOf, key_function
from .notify import Notifier, run_event, run_summary
from .plan import Plan, build_plan, fold_note, open_existing_store
from .runner import BatchRunner, Progress, Summary
from .schedule import ModelScheduler, Scheduler
from .selection import Selection

logger = logging.getLogger("comfykit_batch.session")

Notice = Callable[[str], None]

#: past this many jobs the end-of-run gallery is left to ``comfykit-batch gallery`` (it reads every record)
GALLERY_MAX_JOBS = 100_000


@dataclass(frozen=True)
class RunOptions:
    """What the command line (or a caller) asks of one run, beyond the manifest."""

    limit: int | None = None
    only: Sequence[str] | None = None
    jobs: int | None = None  # jobs in flight per backend, overriding each backend's concurrency
    retry_failed: bool = False  # also re-run jobs that failed for non-transient reasons
    force: bool = False
    verify: bool = False
    save_previews: bool | None = None
    shard: Shard | None = None  # run only this shard's jobs, in its own part of the output folder
    schedule: str | None = None  # "models" or "sweep", overriding the manifest's ``defaults.schedule``
    #: a caller's own scheduling policy (a benchmark compares policies): made from the run's key function and
    #: each backend's model slots
    scheduler_factory: Callable[[KeyOf, Mapping[str, int]], Scheduler] | None = None
    timings: Timings = TIMINGS  # the waits of the runner and its executors (a test passes short ones)

    @property
    def selection(self) -> Selection:
        """The jobs this run takes (``only``, ``shard``, ``limit``, ``retry_failed``): the dry run reads the same."""
        only = frozenset(self.only) if self.only else None
        return Selection(only=only, shard=self.shard, limit=self.limit, retry_failed=self.retry_failed)

    def check(self) -> None:
        if self.jobs is not None and self.jobs < 1:
            raise UsageError(f"--jobs must be at least 1, got {self.jobs}")
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be at least 1, got {self.limit}")


@dataclass
class Prepared:
    """A manifest with its workflows loaded and its sweep checked: what both ``plan`` and ``run_manifest`` start from."""

    manifest: Manifest
    workflows: dict[str, Workflow]
    sweep: Sweep


def selection_of(options: RunOptions, prepared: Prepared) -> Selection:
    """The run's selection; with model scheduling, ``--shard`` gives shards whole model keys.

    The keys come from the workflows alone (not the servers' ``/models``), so every task of an array
    computes the same assignment whatever its server says.
    """
    selection = options.selection
    if selection.shard is None or (options.schedule or prepared.manifest.schedule) == "sweep":
        return selection
    return replace(selection, keys=key_function(prepared.workflows))


def _notice_nowhere(message: str) -> None:
    logger.info("%s", message)


def prepare(manifest: Manifest | str | Path, options: RunOptions | None = None, *, output: str | Path | None = None) -> Prepared:
    """Load the manifest and its workflows; check every swept name and value against the workflows' own types.

    The report's names are checked after the sweep's: a name misspelt in the sweep is then reported
    there, with the workflow's own name. The sweep folds repeats: one distinct combination is one job.
    """
    (options or RunOptions()).check()
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest, output=output, check_report_axes=False)
    workflows = load_workflows(manifest)
    sweep = Sweep(list(manifest.blocks), {name: wf.fingerprint() for name, wf in workflows.items()}, fold=True,
                  uploads=upload_names(workflows), base=manifest.path.parent)
    check_sweep_names(manifest, sweep, workflows)
    check_report(manifest)
    check_sweep_values(manifest, workflows, {})
    return Prepared(manifest, workflows, sweep)


def load_workflows(manifest: Manifest) -> dict[str, Workflow]:
    """Every workflow of the manifest, by name; a bad source is a ``ManifestError`` naming its key."""
    out: dict[str, Workflow] = {}
    for i, spec in enumerate(manifest.workflows):
        try:
            out[spec.name] = resolve_workflow(spec.source)
        except ComfyKitError as exc:
            raise ManifestError(f"{manifest.path}: workflows[{i}].source: {exc}") from None
    return out


# -- the jobs of this run ------------------------------------------------------------------------
@dataclass
class _Walk:
    """Counts kept while the sweep is walked (once), for the summary's notes."""

    recorded_before: int = 0  # records in the folder when the run began
    seen_recorded: int = 0  # of those, the ones this sweep still produces
    jobs: int = 0  # every job of this run's selection, settled earlier or not


def _pending(jobs: Iterable[Job], store: ResultStore, options: RunOptions, progress: Progress,
             walk: _Walk) -> Iterator[Job]:
    """The jobs that need running; completed ones (files intact) and non-transient failures are counted, not run.

    A run of the whole sweep gives the ``Sweep`` itself: the store then walks it by position, skipping
    the jobs it knows completed without making them (``ResultStore.walk``).
    """
    retry_failed = options.selection.retry_failed
    for job, state in store.walk(jobs, verify=options.verify):
        walk.jobs += 1
        if state != NEW:
            walk.seen_recorded += 1
        if state == COMPLETED:  # the job may be None: the store knew it completed by its position
            progress.skipped += 1
        elif state == FAILED and not retry_failed:
            progress.failed_earlier += 1
        else:  # NEW, MISSING files, a TRANSIENT failure, or --retry-failed
            assert job is not None, "walk gives every job it does not know completed"
            yield job


# -- running --------------------------------------------------------------------------------------
def run_manifest(
    manifest: Manifest | str | Path,
    options: RunOptions | None = None,
    *,
    output: str | Path | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_notice: Notice | None = None,
    cancel: threading.Event | None = None,
) -> Summary:
    """Run a manifest's sweep to its end (or until ``cancel`` is set) and return what happened.

    Raises ``ComfyKitError`` subclasses for anything that stops the run before its first job:
    a bad manifest, value or option, a missing node, no usable backend.
    """
    options = options or RunOptions()
    notice = on_notice or _notice_nowhere
    prepared = prepare(manifest, options, output=output)
    m = prepared.manifest
    store = _open_store(m, options.shard)
    notifier = Notifier.for_manifest(m)
    try:
        summary = _run_into(store, prepared, options, _Hooks(on_progress, notice, cancel, notifier))
    except BaseException as exc:
        end_run_state(store.home, 130 if isinstance(exc, KeyboardInterrupt) else 1, folder=store)
        with contextlib.suppress(OSError, StorageError):  # the first error is the one to report
            store.close()
        if notifier is not None and isinstance(exc, StorageError):
            notifier.run_ended("run.failed", {"failures": {"storage": 1}})
        raise
    finally:
        if notifier is not None:
            notifier.close()
    return summary


@dataclass
class _Hooks:
    """What a run reports to outside the store: progress, notices, the cancel event, the webhook."""

    on_progress: Callable[[Progress], None] | None
    notice: Notice
    cancel: threading.Event | None
    notifier: Notifier | None


def _run_into(store: ResultStore, prepared: Prepared, options: RunOptions, hooks: _Hooks) -> Summary:
    """The run proper, its store open: the pending jobs, the runner, the summary, the reports and the webhook."""
    m = prepared.manifest
    refuse_changed_workflows(store, m, prepared.workflows, force=options.force)
    store.use_sweep(prepared.sweep.signature)  # what this run records is of this sweep: each seq a position in it
    selection = selection_of(options, prepared)
    progress = Progress(total=selection.expected(prepared.sweep))
    write_run_state(store.home, name=m.name, total=progress.total, started=time.time(), folder=store)
    walk = _Walk(recorded_before=len(store))
    pending = _pending(selection.jobs(prepared.sweep), store, options, progress, walk)
    first = next(pending, None)
    if first is None:
        summary = _nothing_to_do(progress, store)
    else:
        summary = _run(prepared, options, store, itertools.chain([first], pending), progress, hooks)
    _note_removed(summary, store, walk, options)
    folded = fold_note(m.folded, prepared.sweep.folds.count + summary.folded)
    summary.notes += [folded] if folded else []
    summary.name = m.name
    if options.shard is not None and not summary.interrupted:
        summary.total = walk.jobs
    _close(store)
    if not summary.interrupted and options.shard is None:  # a shard's report waits for the merge
        _write_reports(m, summary, hooks.notice)
    end_run_state(store.home, summary.exit_code, folder=store)
    if hooks.notifier is not None:
        extra = {"shard": str(options.shard)} if options.shard is not None else {}
        hooks.notifier.run_ended(run_event(summary), {**run_summary(summary), **extra})
    return summary


def _open_store(m: Manifest, shard: Shard | None = None) -> ResultStore:
    """The output folder's store (a shard's part of it), keeping a copy of the manifest as used (signed URL queries removed)."""
    try:
        return ResultStore(m.destination, m.name, part=shard).open(redact_urls_in_text(m.text))
    except (ValueError, OSError) as exc:  # an unreadable index, a folder that cannot be made
        raise UsageError(f"{m.destination}: {exc}") from None


def _close(store: ResultStore) -> None:
    try:
        store.close()
    except OSError as exc:
        raise StorageError(f"{store.root}: could not write the index: {exc.strerror or exc}; "
                           "free some space and run again (finished jobs are in the journal)") from None


def _write_reports(m: Manifest, summary: Summary, notice: Notice) -> None:
    """The gallery (unless ``report: {gallery: false}``) and the grid the manifest asks for; a report never fails a run."""
    from ...report.gallery import write_gallery
    from ...report.grid import make_grid

    report = m.report or {}
    jobs = summary.done + summary.failed + summary.skipped + summary.failed_earlier
    if jobs > GALLERY_MAX_JOBS and report.get("gallery", True):
        summary.notes.append(f"gallery: not made for {jobs:,} jobs (more than {GALLERY_MAX_JOBS:,}); "
                             "'comfykit-batch gallery OUTPUT' makes it when wanted")
        report = {**report, "gallery": False}
    if m.output_url is not None:
        if report:
            notice(f"note: no gallery or grid for a remote output ({summary.index}); run 'comfykit-batch gallery' on a copy")
        return
    try:
        if report.get("gallery", True):
            summary.notes.append(f"gallery: {write_gallery(m.output)}")
        grid = report.get("grid")
        if grid:
            paths = make_grid(m.output, grid["x"], grid.get("y"), z=grid.get("z"), var=grid.get("var"),
                              where=grid.get("where"))
            summary.notes.append("grid: " + ", ".join(str(p) for p in paths))
    except Exception as exc:  # noqa: BLE001 - every job has landed: a report that fails must not fail the run
        kind = "" if isinstance(exc, (ComfyKitError, OSError)) else f"{type(exc).__name__}: "
        notice(f"warning: the report could not be made: {kind}{exc}")


def _run(prepared: Prepared, options: RunOptions, store: ResultStore, jobs: Iterator[Job], progress: Progress,
         hooks: _Hooks) -> Summary:
    m = prepared.manifest
    with ExitStack() as stack:
        backends = start_backends(m, prepared.workflows, stack, options, hooks.notice)
        check_sweep_names(m, prepared.sweep, prepared.workflows)  # remote workflows now have their nodes
        check_sweep_values(m, prepared.workflows, {b.name: b.executor for b in backends})
        key_of = key_function(prepared.workflows, backends)
        on_record = _record_hooks(m, store, stack, hooks)
        runner = BatchRunner(
            backends, prepared.workflows, store, timeout=m.timeout, retries=m.retries,
            save_previews=m.save_previews if options.save_previews is None else options.save_previews,
            on_progress=hooks.on_progress, timings=options.timings, scheduler=make_scheduler(m, backends, options, store, key_of),
            key_of=key_of, stop_after_failures=m.stop_after_failures,
            on_record=on_record,
        )
        if hooks.cancel is not None:
            runner.cancel = hooks.cancel
        return runner.run(jobs, progress.total, progress)


def _record_hooks(m: Manifest, store: ResultStore, stack: ExitStack, hooks: _Hooks) -> Callable[[Mapping[str, Any]], None] | None:
    """What hears of each stored record: the webhook's job events, and the thumbnail lane (thumbnails as jobs land)."""
    heard: list[Callable[[Mapping[str, Any]], None]] = [hooks.notifier.job] if hooks.notifier is not None else []
    if m.output_url is None and (m.report or {}).get("gallery", True) is not False:
        lane = ThumbLane(store.root)
        stack.callback(lane.close, 60.0)  # bounded; the end-of-run gallery makes whatever is left
        heard.append(lane.submit)
    if not heard:
        return None

    def on_record(record: Mapping[str, Any]) -> None:
        for hear in heard:
            hear(record)

    return on_record


def make_scheduler(m: Manifest, backends: list[Backend], options: RunOptions, store: ResultStore,
                   key_of: KeyOf | None) -> Scheduler | None:
    """The run's scheduler: by model key unless the sweep's order is asked for or no job loads a model file."""
    if (options.schedule or m.schedule) == "sweep" or key_of is None:
        return None
    slots = {b.name: b.model_slots for b in backends}
    if options.scheduler_factory is not None:
        return options.scheduler_factory(key_of, slots)
    scheduler = ModelScheduler(key_of, slots, free_placement=[b.name for b in backends if b.executor.places_its_own_jobs])
    for name, job in _last_jobs(store).items():
        scheduler.resume(name, key_of(job))
    return scheduler


def _last_jobs(store: ResultStore) -> dict[str, Job]:
    """Each backend's last completed job in the folder's recent records: a resumed run continues its model group."""
    last: dict[str, tuple[float, Job]] = {}
    for rec in store.records(last=256):
        name, finished = rec.get("backend"), rec.get("finished")
        if rec.get("status") == "completed" and isinstance(name, str) and isinstance(finished, (int, float)):
            if name not in last or finished > last[name][0]:
                last[name] = (finished, Job(str(rec.get("id")), str(rec.get("workflow")), rec.get("params") or {}))
    return {name: job for name, (_, job) in last.items()}


def _nothing_to_do(progress: Progress, store: ResultStore) -> Summary:
    return Summary(total=progress.total, done=0, failed=0, skipped=progress.skipped, failed_earlier=progress.failed_earlier,
                   interrupted=False, wall=0.0, failures={}, backends={}, index=str(store.flush()),
                   notes=["nothing to do: every job already ran"])


def _note_removed(summary: Summary, store: ResultStore, walk: _Walk, options: RunOptions) -> None:
    if not options.selection.whole or summary.interrupted:
        return
    gone = walk.recorded_before - walk.seen_recorded
    if gone > 0:
        summary.notes.append(f"{gone} recorded job(s) are no longer in the sweep (values removed from the manifest); "
                             "their records are kept in the index")


def start_backends(manifest: Manifest, workflows: dict[str, Workflow], stack: ExitStack, options: RunOptions,
                   notice: Notice) -> list[Backend]:
    """Executors for every backend that may run a workflow, checked before the first job.

    Unreachable backends are left out with a notice; if none is usable this raises ``BackendError``
    with one line per backend saying what is wrong and how to fix it.
    """
    allowed: dict[str, set[str]] = {}
    for w in manifest.workflows:
        for name in w.backends or [s.name for s in manifest.backends]:
            allowed.setdefault(name, set()).add(w.name)
    specs = [s for s in manifest.backends if allowed.get(s.name)]
    if not specs:
        raise ManifestError(f"{manifest.path}: no backend may run any workflow")
    timings = options.timings
    executors = {s.name: build_executor(s, stack, notice, timings) for s in specs}
    usable = check_backends(executors, notice)
    backends = [
        Backend(s.name, executors[s.name], options.jobs or s.concurrency, allowed[s.name], down_limit=manifest.backend_down_limit,
                pause_first=timings.pause_first, pause_max=timings.pause_max, model_slots=s.model_slots)
        for s in specs if s.name in usable
    ]
    if manifest.check_nodes:
        notice(f"checking nodes of {len(workflows)} workflow(s) on {len(backends)} backend(s)")
        for b in backends:
            for name in sorted(allowed[b.name]):
                _prepare_on(manifest, b.name, b.executor, workflows[name], name)
    return backends


def _prepare_on(manifest: Manifest, backend: str, executor: Executor, workflow: Workflow, name: str) -> None:
    try:
        executor.prepare(workflow)
    except (MissingNodesError, ParameterError) as exc:
        raise ManifestError(f"{manifest.path}: workflow {name!r} on backend {backend!r}: {exc}") from None


# -- dry run --------------------------------------------------------------------------------------
def plan(manifest: Manifest | str | Path, options: RunOptions | None = None, *, output: str | Path | None = None,
         show: int = 10, on_notice: Notice | None = None, on_count: Callable[[int, int], None] | None = None) -> Plan:
    """Check the manifest, its workflows and every swept value, and describe the run of ``options.selection``.

    Values are checked against the types of every backend that answers (the managed local
    server is not started for a dry run); against the workflows' own types otherwise.
    ``on_count(done, total)`` reports a count that has to walk the sweep (exclude rules that
    couple too many axes to count arithmetically, or a selection; ``total`` is 0 when unknown).
    With an earlier run's output folder, the plan also says what a re-run would skip.
    """
    options = options or RunOptions()
    notice = on_notice or _notice_nowhere
    prepared = prepare(manifest, options, output=output)
    m = prepared.manifest
    with ExitStack() as stack:
        reachable = _reachable_executors(m, stack, notice, options.timings)
        for name, ex in reachable.items():
            for wf_name, wf in prepared.workflows.items():
                _prepare_on(m, name, ex, wf, wf_name)
        check_sweep_values(m, prepared.workflows, reachable)
    store = open_existing_store(m)
    try:
        schedule = options.schedule or m.schedule
        return build_plan(m, prepared.sweep, selection=selection_of(options, prepared), store=store, jobs=options.jobs,
                          show=show, on_progress=on_count, schedule=schedule, key_of=key_function(prepared.workflows))
    finally:
        if store is not None:
            store.close()


def _reachable_executors(m: Manifest, stack: ExitStack, notice: Notice, timings: Timings) -> dict[str, Executor]:
    """Executors of the backends that answer now (never the managed server, which a dry run does not start)."""
    out: dict[str, Executor] = {}
    for spec in m.backends:
        if spec.managed:
            continue
        try:
            ex = build_executor(spec, stack, notice, timings)
            ex.check()
        except BackendError as exc:
            notice(f"backend {spec.name!r} does not answer ({exc}); values checked against the workflows' own types")
            continue
        out[spec.name] = ex
    return out
