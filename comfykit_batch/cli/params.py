"""``comfykit-batch list-params WORKFLOW [--server URL] [--json]``: a workflow's parameters."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import Any

from ..executors.factory import create_executor
from ..local_comfyui import managed_server
from ..sources import resolve_workflow
from ..workflow import InputType, Workflow
from .args import Parser


def _params_parser() -> argparse.ArgumentParser:
    p = Parser(prog="comfykit-batch list-params",
                                description="List a workflow's parameters (from the $ markers in its node titles).")
    p.add_argument("workflow", help="API-format workflow: path or http(s) URL")
    p.add_argument("--server", metavar="URL",
                   help="a ComfyUI server whose /object_info gives exact types and choices ('local': the managed one)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def main(argv: Sequence[str]) -> int:
    return list_params(_params_parser().parse_args(list(argv)[1:]))


def list_params(args: argparse.Namespace) -> int:
    wf = resolve_workflow(args.workflow)
    rows = _rows(wf, args.server)
    if args.json:
        print(json.dumps({"parameters": rows, "outputs": wf.output_names}, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print(f"{wf.source}: no parameters ($ markers in node titles)")
        return 0
    header = ("name", "required", "type", "default", "nodes", "description")
    table = [header] + [
        (r["name"], "yes" if r["required"] else "", r["type"] + (" (upload)" if r["upload"] and r["type"] != "upload" else ""),
         "" if r["default"] is None else json.dumps(r["default"], ensure_ascii=False)[:40], ", ".join(r["nodes"]),
         r["description"] or "")
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
    if wf.output_names:
        print("outputs: " + ", ".join(f"{v} (node {k})" for k, v in wf.output_names.items()))
    return 0


def _rows(wf: Workflow, server: str | None) -> list[dict[str, Any]]:
    """The parameters, with the server's exact types, ranges and choices when a server is named."""
    return wf.list_params(server_types(wf, server) if server else None)


def server_types(workflow: Workflow, server: str) -> Mapping[str, InputType]:
    """What a server (a URL, or ``local`` for the managed one) says each parameter of ``workflow`` accepts."""
    with ExitStack() as stack:
        url = stack.enter_context(managed_server()).url if server == "local" else server
        executor = stack.enter_context(create_executor(url))
        executor.check()
        executor.prepare(workflow)
        return executor.types_for(workflow)
