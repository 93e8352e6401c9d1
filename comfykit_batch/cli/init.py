"""``comfykit-batch init [WORKFLOW] [-o FILE] [--name NAME] [--server URL] [--force]``: write a starter manifest."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..batch.spec.manifest import SCHEMA_PATH
from ..batch.spec.starter import starter_manifest
from ..errors import UsageError
from ..sources import is_path_source, resolve_workflow
from .args import Parser
from .params import server_types


def _parser() -> Parser:
    p = Parser(prog="comfykit-batch init",
               description="Write a starter manifest; with a workflow, its parameters become a commented sweep.")
    p.add_argument("workflow", nargs="?", help="API-format workflow (path or http(s) URL) whose parameters to write out")
    p.add_argument("-o", "--output", metavar="FILE", default="manifest.yaml", help="the manifest to write (default manifest.yaml)")
    p.add_argument("--name", help="the batch name (default: the workflow's file name)")
    p.add_argument("--server", metavar="URL",
                   help="a ComfyUI server whose /object_info adds exact types, ranges and choices ('local': the managed one)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    return p


def _relative(target: str, folder: Path) -> str:
    """``target`` as the manifest should name it: relative to the manifest's folder when it is a local path."""
    if not is_path_source(target):
        return target
    try:
        return Path(os.path.relpath(Path(target).resolve(), folder.resolve())).as_posix()
    except ValueError:  # another drive (Windows): keep it absolute
        return Path(target).resolve().as_posix()


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv)[1:])
    out = Path(args.output)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; use --force to overwrite it, or -o FILE")
    if out.is_dir():
        raise UsageError(f"{out} is a folder; give a file name with -o FILE")
    if args.server and not args.workflow:
        raise UsageError("--server needs a WORKFLOW whose parameters it describes")
    workflow = resolve_workflow(args.workflow) if args.workflow else None
    types = server_types(workflow, args.server) if workflow is not None and args.server else None
    source = _relative(args.workflow, out.parent) if args.workflow else "workflow.json"
    text = starter_manifest(workflow, source=source, name=args.name, schema_ref=_relative(str(SCHEMA_PATH), out.parent),
                            types=types)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{out}: cannot write ({exc.strerror or exc})") from None
    count = len(workflow.parameters) if workflow is not None else 0
    what = f"{count} parameter{'s' if count != 1 else ''} from {args.workflow}" if workflow is not None else "a skeleton"
    print(f"wrote {out} ({what}); next: comfykit-batch {out} --dry-run")
    return 0
