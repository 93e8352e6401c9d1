"""``comfykit-batch merge OUTPUT``: combine the shards' parts of an output folder into one ``index.json``.

Exit codes: 0 every job completed, 1 some job failed, 2 no such output folder.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..errors import UsageError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="comfykit-batch merge",
        description="Combine the parts written by sharded runs (--shard) into OUTPUT/index.json: every job once, "
                    "a completed record winning over a failed one. Run it after every shard has ended.")
    p.add_argument("output", help="the manifest's output folder (the one holding parts/), or its s3://... URL")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing; the exit code says it all")
    return p


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv)[1:])
    from ..batch.merge import merge_output
    from ..batch.remote import display_url, is_remote

    if not is_remote(args.output) and not Path(args.output).is_dir():
        raise UsageError(f"merge {args.output}: no such output folder")
    result = merge_output(args.output)
    where = display_url(args.output) + "/index.json" if is_remote(args.output) else str(result.index)
    if not args.quiet:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(result.counts.items())) or "no jobs"
        print(f"merged {result.parts} part(s): {counts}")
        print(f"  index: {where}")
    return 1 if result.failed else 0
