"""``comfykit-batch MANIFEST``: run (or dry-run) a manifest's sweep and print what happened."""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import Any

from .. import __version__
from ..batch.backends import build_executor
from ..batch.manifest import Manifest, ManifestError, load_manifest
from ..batch.progress import ProgressDisplay
from ..batch.runner import PAUSE_AFTER, PAUSE_FIRST, Backend, BatchRunner, Summary
from ..batch.store import ResultStore
from ..batch.sweep import Job, Sweep
from ..errors import ComfyKitError, MissingNodesError, ParameterError, UsageError
from ..executors.comfyui_client import TransportError
from ..sources import is_runninghub_id, load_workflow, runninghub_app_id
from ..workflow import Workflow

logger = logging.getLogger("comfykit_batch.cli")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="comfykit-batch",
        description="Run a ComfyUI parameter sweep described by a YAML manifest. "
                    "Also: 'comfykit-batch list-params WORKFLOW'.",
    )
    p.add_argument("manifest", help="the manifest YAML file")
    p.add_argument("--dry-run", action="store_true", help="validate, print the job count and the first jobs; submit nothing")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N jobs of the sweep")
    p.add_argument("--only", nargs="+", metavar="ID", help="only these job ids")
    p.add_argument("--jobs", type=int, metavar="N", help="jobs in flight per backend (overrides each backend's concurrency)")
    p.add_argument("--output", metavar="DIR", help="output folder (default: the manifest's, else output/<name>)")
    p.add_argument("--retry-failed", action="store_true", help="run again the jobs that failed in an earlier run")
    p.add_argument("--force", action="store_true", help="run even though the manifest changed the ids of recorded jobs")
    p.add_argument("--verify", action="store_true", help="check the sha256 of every recorded file before skipping its job")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log lines (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display, warnings and errors only")
    p.add_argument("--version", action="version", version=f"comfykit-batch {__version__}")
    return p


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    _setup_logging(args.verbose, args.quiet)
    return run(args)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet or verbose == 0 else (logging.INFO if verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if verbose < 2:
        logging.getLogger("urllib3").setLevel(logging.WARNING)


# -- the batch ------------------------------------------------------------------------------
def load_workflows(manifest: Manifest) -> dict[str, Workflow]:
    out: dict[str, Workflow] = {}
    for i, spec in enumerate(manifest.workflows):
        try:
            app = runninghub_app_id(spec.source)
            if is_runninghub_id(spec.source) or app:
                from ..executors.runninghub import remote_workflow

                out[spec.name] = remote_workflow(app or spec.source, webapp=bool(app))
            else:
                out[spec.name] = load_workflow(spec.source)
        except ComfyKitError as exc:
            raise ManifestError(f"{manifest.path}: workflows[{i}].source: {exc}") from None
    return out


def check_sweep_params(manifest: Manifest, sweep: Sweep, workflows: dict[str, Workflow]) -> None:
    """Every swept name must be a DSL parameter; remote workflows are checked once their JSON is fetched."""
    for wf_name, names in sweep.param_sets():
        if not workflows[wf_name].nodes:
            continue
        try:
            workflows[wf_name].check_params(dict.fromkeys(names))
        except ParameterError as exc:
            raise ManifestError(f"{manifest.path}: sweep (workflow {wf_name!r}): {exc}") from None


def select(sweep: Sweep, args: argparse.Namespace) -> tuple[Iterator[Job], int]:
    jobs: Iterator[Job] = iter(sweep)
    if args.only:
        wanted = set(args.only)
        jobs = (j for j in jobs if j.id in wanted)
        total = len(wanted)
    else:
        total = sweep.count()
    if args.limit is not None:
        if args.limit < 1:
            raise UsageError("--limit must be at least 1")
        jobs = itertools.islice(jobs, args.limit)
        total = min(total, args.limit)
    return jobs, total


def run(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.manifest, output=args.output)
    workflows = load_workflows(manifest)
    sweep = Sweep(manifest.blocks, {name: wf.fingerprint() for name, wf in workflows.items()})
    check_sweep_params(manifest, sweep, workflows)
    jobs, total = select(sweep, args)

    if args.dry_run:
        print(f"{manifest.name}: {total} job{'s' if total != 1 else ''} on {len(manifest.backends)} backend(s); "
              f"output {manifest.output}")
        for job in itertools.islice(jobs, 10):
            print(f"  {job.id}  {job.workflow}  {json.dumps(dict(job.params), ensure_ascii=False, default=str)}"
                  + (f"  repeat {job.repeat}" if job.repeat else ""))
        if total > 10:
            print(f"  ... and {total - 10} more")
        return 0

    store = ResultStore(manifest.output, manifest.name).open(manifest.text)
    try:
        _refuse_changed(store, sweep, args.force, manifest)
        if len(store) >= total and all(
            store.settled(j.id, retry_failed=args.retry_failed, verify=args.verify) for j in select(sweep, args)[0]
        ):
            failed = sum(1 for j in select(sweep, args)[0] if store.status(j.id) == "failed")
            print(f"{manifest.name}: nothing to do: all {total} jobs already ran, {failed} of them failed "
                  f"(see {manifest.output / 'index.json'}; --retry-failed runs failed ones again)")
            return 1 if failed else 0
        with ExitStack() as stack:
            backends = _start_backends(manifest, workflows, stack, args.jobs)
            check_sweep_params(manifest, sweep, workflows)  # now with the JSON of remote workflows
            runner = BatchRunner(
                backends, workflows, store, timeout=manifest.timeout, retries=manifest.retries,
                save_previews=manifest.save_previews, retry_failed=args.retry_failed, verify=args.verify,
                on_progress=(display := ProgressDisplay(quiet=args.quiet)),
            )
            restore = _install_signals(runner)
            try:
                summary = runner.run(jobs, total)
            finally:
                restore()
                display.close(runner.progress)
    finally:
        store.close()
    _print_summary(summary, manifest)
    return summary.exit_code


def _refuse_changed(store: ResultStore, sweep: Sweep, force: bool, manifest: Manifest) -> None:
    if not len(store) or force:
        return
    recorded = store.ids()
    seen = sum(1 for job in sweep if job.id in recorded)
    missing = len(recorded) - seen
    if missing:
        raise UsageError(
            f"{manifest.output} holds {missing} job(s) that this manifest no longer produces (a workflow or parameter "
            "changed); use --force to add to it anyway, or --output DIR for a fresh folder"
        )


def _start_backends(manifest: Manifest, workflows: dict[str, Workflow], stack: ExitStack, jobs: int | None) -> list[Backend]:
    allowed: dict[str, set[str]] = {}
    for w in manifest.workflows:
        for b in w.backends or [s.name for s in manifest.backends]:
            allowed.setdefault(b, set()).add(w.name)
    backends: list[Backend] = []
    for spec in manifest.backends:
        names = allowed.get(spec.name, set())
        if not names:
            continue
        executor = build_executor(spec, stack)
        backend = Backend(spec.name, executor, jobs or spec.concurrency, names)
        if manifest.check_nodes:
            try:
                for name in sorted(names):
                    executor.prepare(workflows[name])
            except MissingNodesError as exc:
                raise ManifestError(f"{manifest.path}: workflow {name!r} on backend {spec.name!r}: {exc}") from None
            except TransportError as exc:
                logger.warning("backend %s is unreachable (%s); it is paused and will be retried", spec.name, exc)
                backend.consecutive_faults = PAUSE_AFTER
                backend.paused_until = time.monotonic() + PAUSE_FIRST
        backends.append(backend)
    if not backends:
        raise ManifestError(f"{manifest.path}: no backend may run any workflow")
    return backends


def _install_signals(runner: BatchRunner) -> Any:
    presses = {"n": 0}

    def handler(signum: int, frame: Any) -> None:
        presses["n"] += 1
        if presses["n"] == 1:
            print("\ninterrupting: stopping in-flight jobs and writing the index (Ctrl-C again to quit at once)",
                  file=sys.stderr, flush=True)
            runner.stop()
        else:
            # Finished jobs are already in the journal, line by line: nothing is lost.
            os._exit(130)

    old_int = signal.signal(signal.SIGINT, handler)
    old_term = signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)

    return restore


def _print_summary(s: Summary, manifest: Manifest) -> None:
    ran = s.done + s.failed
    rate = ran / s.wall if s.wall > 0 else 0.0
    state = "interrupted" if s.interrupted else "finished"
    print(f"{manifest.name}: {state}: {s.done} completed, {s.failed} failed, {s.skipped} skipped (already done) "
          f"of {s.total} in {s.wall:.1f}s ({rate:.2f} jobs/s)")
    for name, b in s.backends.items():
        print(f"  backend {name}: {b['completed']} completed, {b['failed']} failed, idle {b['idle_fraction'] * 100:.1f}%")
    if s.failures:
        print("  failures by reason:")
        for reason, n in sorted(s.failures.items(), key=lambda kv: -kv[1])[:10]:
            print(f"    {n} x {reason}")
    print(f"  index: {s.index}")
    if s.interrupted:
        print("  re-run the same command to resume")

