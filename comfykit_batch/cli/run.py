"""``comfykit-batch MANIFEST``: run (or dry-run) a manifest's sweep and print what happened."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..batch.run.runner import Summary
from ..batch.run.session import RunOptions, plan, run_manifest
from ..batch.spec.location import is_remote_folder
from ..batch.spec.shard import parse_shard
from ..defaults import TIMINGS, Timings
from ..errors import UsageError
from .args import Parser
from .progress import ProgressDisplay


def _parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="comfykit-batch",
        description="Run a ComfyUI parameter sweep described by a YAML manifest. Subcommands: "
                    "list-params WORKFLOW, init [WORKFLOW], grid OUTPUT, gallery OUTPUT, export OUTPUT, merge OUTPUT.",
    )
    p.add_argument("manifest", help="the manifest YAML file")
    p.add_argument("--dry-run", action="store_true", help="check everything and print the plan; submit nothing")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N jobs of the sweep")
    p.add_argument("--only", nargs="+", metavar="ID", help="only these job ids")
    p.add_argument("--jobs", type=int, metavar="N", help="jobs in flight per backend (overrides each backend's concurrency)")
    p.add_argument("--output", metavar="DIR", help="output folder (default: the manifest's, else output/<name>)")
    p.add_argument("--retry-failed", action="store_true",
                   help="also run again jobs that failed for a lasting reason (transient failures always run again)")
    p.add_argument("--force", action="store_true", help="add to a folder whose jobs were made by an earlier version of a workflow")
    p.add_argument("--verify", action="store_true", help="check the sha256 of every recorded file before skipping its job")
    p.add_argument("--shard", metavar="I/N|auto",
                   help="run shard I of N (jobs whose id hashes to I), or 'auto' from SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX")
    p.add_argument("--shards", type=int, metavar="N", help="the shard count for --shard auto under Kubernetes (or a fixed SLURM array)")
    p.add_argument("--schedule", choices=("models", "sweep"),
                   help="models: jobs loading the same model files run back to back (the default); sweep: the sweep's order")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log lines (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display or notices, warnings and errors only")
    p.add_argument("--version", action="version", version=f"comfykit-batch {__version__}")
    return p


def main(argv: Sequence[str], *, timings: Timings = TIMINGS) -> int:
    """Run (or dry-run) the manifest ``argv`` names; ``timings`` lets a test shorten the run's waits."""
    args = _parser().parse_args(list(argv))
    _check_output(args.output)
    _setup_logging(args.verbose, args.quiet)
    options = RunOptions(limit=args.limit, only=args.only, jobs=args.jobs, retry_failed=args.retry_failed,
                         force=args.force, verify=args.verify, shard=parse_shard(args.shard, os.environ, args.shards),
                         timings=timings, schedule=args.schedule)
    if args.dry_run:
        counting = None if args.quiet else _counting()
        for line in plan(args.manifest, options, output=args.output, on_notice=_notice(args.quiet), on_count=counting).lines:
            print(line)
        return 0
    return _run(args, options)


def _check_output(output: str | None) -> None:
    """A file where the folder should be is refused now; a folder that cannot be made, when the run opens it."""
    if output is not None and not is_remote_folder(output) and Path(output).exists() and not Path(output).is_dir():
        raise UsageError(f"--output {output}: is a file, not a folder")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet or verbose == 0 else (logging.INFO if verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Their debug lines carry request paths with queries (signed URLs): never shown, even at -vv.
    for noisy in ("urllib3", "websocket"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _notice(quiet: bool) -> Callable[[str], None]:
    def notice(message: str) -> None:
        if not quiet or message.startswith("warning:"):
            print(message, file=sys.stderr, flush=True)

    return notice


def _counting() -> Callable[[int, int], None]:
    """A live "counting" line on stderr while a count has to walk the sweep (at most one line a second)."""
    last: dict[str, float | None] = {"at": None}

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        at = last["at"]
        if at is not None and now - at < 1.0:
            return
        last["at"] = now
        of = f" of {total:,}" if total else ""
        print(f"counting: {done:,}{of} combinations walked", file=sys.stderr, flush=True)

    return show


def _run(args: argparse.Namespace, options: RunOptions) -> int:
    display = ProgressDisplay(quiet=args.quiet)
    cancel = threading.Event()
    restore = _install_signals(cancel)
    try:
        summary = run_manifest(args.manifest, options, output=args.output, on_progress=display,
                               on_notice=_notice(args.quiet), cancel=cancel)
    finally:
        restore()
        display.close()
    _print_summary(summary)
    return summary.exit_code


def _install_signals(cancel: threading.Event) -> Callable[[], None]:
    presses = {"n": 0}

    def handler(signum: int, frame: Any) -> None:
        presses["n"] += 1
        if presses["n"] == 1:
            print("\ninterrupting: stopping in-flight jobs and writing the index (Ctrl-C again to quit at once)",
                  file=sys.stderr, flush=True)
            cancel.set()
        else:
            # Finished jobs are already in the journal, line by line: nothing is lost.
            os._exit(130)

    old_int = signal.signal(signal.SIGINT, handler)
    old_term = signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)

    return restore


def _print_summary(s: Summary) -> None:
    ran = s.done + s.failed
    rate = ran / s.wall if s.wall > 0 else 0.0
    state = "interrupted" if s.interrupted else ("stopped: every backend is down" if s.not_run and not s.stalled else "finished")
    state = "stopped: its jobs kept failing the same way" if s.stalled else state
    earlier = f", {s.skipped} completed earlier" + (f", {s.failed_earlier} failed earlier" if s.failed_earlier else "")
    print(f"{s.name}: {state}: {s.done} completed, {s.failed} failed{earlier}"
          + (f", {s.not_run} not run" if s.not_run else "") + f" of {s.total} in {s.wall:.1f}s ({rate:.2f} jobs/s)")
    for name, b in s.backends.items():
        dropped = f" (dropped: {b.drop_reason or 'stayed down'})" if b.dropped else ""
        loads = f", {b.model_loads} model load{'s' if b.model_loads != 1 else ''}" if b.model_loads is not None else ""
        print(f"  backend {name}: {b.completed} completed, {b.failed} failed, idle {b.idle_fraction * 100:.1f}%{loads}{dropped}")
    if s.failures:
        print("  failures by reason:")
        for reason, n in sorted(s.failures.items(), key=lambda kv: -kv[1])[:10]:
            print(f"    {n} x {reason}")
    for note in s.notes:
        print(f"  {note}")
    if s.failed_earlier:
        print("  --retry-failed runs the jobs that failed earlier again")
    print(f"  index: {s.index}")
    if (s.interrupted or s.not_run) and not s.stalled:
        print("  re-run the same command to resume")
    if s.stalled:
        print(f"error: {s.stalled.line()}", file=sys.stderr)
