"""``comfykit-batch merge OUTPUT``: combine the shards' parts of an output folder into one ``index.json``.

Exit codes: 0 every job completed; 1 some job failed; 2 no such output folder, or its own index is
unreadable; 3 the parts did not merge cleanly (a part left out, or two parts disagreeing), each named
on stderr. The index is written in every case but 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ComfyKitError, UsageError

if TYPE_CHECKING:
    from ..batch.store.merge import MergeResult

EXIT_FAILED, EXIT_UNCLEAN = 1, 3
EXIT_CODES = (f"exit codes: 0 every job completed; {EXIT_FAILED} some job failed; 2 no such output folder, or its own "
              f"index is unreadable; {EXIT_UNCLEAN} the parts did not merge cleanly: a part whose index is damaged and "
              "cannot be rebuilt from its index.json and journal (its jobs are left out), or two parts that completed "
              "the same job with different files (the record kept is the one whose files are on disk); each is named "
              "on stderr. A part rebuilt is a warning only.")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="comfykit-batch merge",
        description="Combine the parts written by sharded runs (--shard) into OUTPUT/index.json: every job once, "
                    "a completed record winning over a failed one. Run it after every shard has ended.",
        epilog=EXIT_CODES)
    p.add_argument("output", help="the manifest's output folder (the one holding parts/), or its s3://... URL")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing; the exit code says it all")
    return p


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv)[1:])
    from ..batch.spec.location import display_url, is_remote_folder
    from ..batch.store.merge import merge_output

    if not is_remote_folder(args.output) and not Path(args.output).is_dir():
        raise UsageError(f"merge {args.output}: no such output folder")
    try:
        result = merge_output(args.output)
    except ComfyKitError:  # the folder's own index.sqlite damaged (the line names it and what to do), a bad URL
        raise
    except ValueError as exc:  # its index.json unreadable, with nothing else to go by
        raise UsageError(f"merge: {exc}") from None
    where = display_url(args.output).rstrip("/") + "/index.json" if is_remote_folder(args.output) else str(result.index)
    if not args.quiet:
        _say(result, where)
    if not result.clean:
        return EXIT_UNCLEAN
    return EXIT_FAILED if result.failed else 0


def _say(result: MergeResult, where: str) -> None:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.counts.items())) or "no jobs"
    left_out = f" ({len(result.lost)} left out)" if result.lost else ""
    print(f"merged {result.parts - len(result.lost)} part(s){left_out}: {counts}")
    print(f"  index: {where}")
    for line in result.rebuilt:
        print(f"warning: {line}", file=sys.stderr)
    for line in result.lost:
        print(f"error: {line}", file=sys.stderr)
    for conflict in result.conflicts:
        print(conflict.describe(), file=sys.stderr)
    if not result.clean:
        print(f"exit {EXIT_UNCLEAN}: the parts did not merge cleanly ({len(result.lost)} left out, "
              f"{len(result.conflicts)} conflict(s)); see above", file=sys.stderr)
