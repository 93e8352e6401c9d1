"""``comfykit-batch grid|gallery|export OUTPUT ...``: look at and use a batch's results."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..report.export import FORMATS, STATUSES, export
from ..report.gallery import write_gallery
from ..report.grid import default_name, make_grid
from ..report.index import load_results
from ..report.thumbs import ensure_thumbs
from .args import Parser


def _parser(command: str) -> argparse.ArgumentParser:
    p = Parser(prog=f"comfykit-batch {command}")
    p.add_argument("output", help="a batch's output folder (the one holding index.json), e.g. output/example-sweep")
    if command == "grid":
        p.description = "Draw an XY grid image of one output across two parameters."
        p.add_argument("--x", required=True, metavar="PARAM", help="parameter along the columns")
        p.add_argument("--y", metavar="PARAM", help="parameter along the rows")
        p.add_argument("--z", metavar="PARAM", help="one grid file per value of this parameter")
        p.add_argument("--where", action="append", default=[], metavar="PARAM=VALUE", help="keep only these jobs (repeatable)")
        p.add_argument("--var", metavar="NAME", help="which output to show (default: the first image output)")
        p.add_argument("--cell", type=int, default=256, metavar="PX", help="cell size in pixels (default 256)")
        p.add_argument("--font", metavar="PATH", help="a .ttf/.otf/.ttc font tried first for every label "
                       "(default: DejaVu Sans, Noto Sans CJK or another system font that has the label's characters)")
        p.add_argument("-o", "--out", metavar="FILE.png", help="where to write (default OUTPUT/grid_X_by_Y.png, or "
                       "OUTPUT/grid_X.png without --y: named by the axes, so the run's own grid.png is kept; with --z, "
                       "one file per value: FILE_Z-VALUE.png)")
    elif command == "gallery":
        p.description = "Write OUTPUT/gallery.html: every result on one static page."
        p.add_argument("--no-thumbs", action="store_true", help="link the full images instead of making thumbnails")
    else:
        p.description = "Export the results as a dataset or a table."
        p.add_argument("--format", required=True, choices=FORMATS)
        p.add_argument("--to", metavar="DIR", help="target folder (default OUTPUT/export/FORMAT)")
        captions = p.add_mutually_exclusive_group()
        captions.add_argument("--caption", metavar="TEMPLATE", help='kohya caption from parameters, e.g. "a {label} swatch, seed {seed}"')
        captions.add_argument("--caption-var", metavar="NAME", help="kohya caption from this text output")
        p.add_argument("--status", default=None, choices=STATUSES,
                       help="which jobs (default: completed; all for csv/parquet)")
        p.add_argument("--var", metavar="NAME", help="only this output")
        p.add_argument("--name-template", metavar="TEMPLATE", help="exported file names, e.g. '{workflow}/{label}_{seed}_{n}{ext}'")
    return p


def main(argv: Sequence[str]) -> int:
    command, rest = argv[0], list(argv[1:])
    args = _parser(command).parse_args(rest)
    if command == "grid":
        out = args.out or Path(args.output) / default_name(args.x, args.y)
        for path in make_grid(args.output, args.x, args.y, z=args.z, var=args.var, where=args.where, out=out, cell=args.cell,
                              font=args.font):
            print(path)
    elif command == "gallery":
        if not args.no_thumbs:  # made first, over every core and with a progress line; the page then reuses them
            results = load_results(args.output)
            ensure_thumbs(results.root, results.records, on_progress=ProgressLine("thumbnails"))
        print(write_gallery(args.output, thumbs=not args.no_thumbs))
    else:
        status = args.status or ("all" if args.format in ("csv", "parquet") else "completed")
        result = export(args.output, args.format, to=args.to, caption=args.caption, caption_var=args.caption_var, status=status,
                        name_template=args.name_template, var=args.var)
        skipped = ", ".join(f"{n} {why}" for why, n in result.skipped.items())
        what = f"{result.rows} rows" if result.index and result.files == 0 else f"{result.files} files"
        print(f"{what} -> {result.index or result.to}" + (f" (skipped: {skipped})" if skipped else ""))
    return 0


class ProgressLine:
    """``thumbnails: 1,234 / 5,000`` on stderr, redrawn at most five times a second (on a terminal) and ended at the last."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.shown = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and (not self.tty or now - self.shown < 0.2):
            return
        self.shown = now
        start, end = "\r" if self.tty else "", "\n" if done >= total else ""
        sys.stderr.write(f"{start}{self.what}: {done:,} / {total:,}{end}")
        sys.stderr.flush()
